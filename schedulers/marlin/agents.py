"""MARLIN phase 1 (paper Algorithm 1; SPEC 9): the objective agents (four; five with objective_embodied), each a
SAC learner with a FiLM actor, and the two replay buffers with HER cross-labelling.

Owns: `FilmActor` (the actor MLP with its FiLM layer), `ObjectiveAgent` (one agent's networks, buffers and EMA
baseline), `agent_weights` (each agent's weight vector, its own objective dominant), `make_agents` (the J agents,
their networks joined in one `learner.AgentStack`) and `phase1` (one epoch of Algorithm 1 for all agents: sample,
Simulate, reward, store, learn, exploit, evaluate, cross-label).

Learning: each agent draws its epoch's batches and sampling noise in turn, in the order the agents would use them
learning one after the other; then the SAC updates of all agents run together, batched (`learner.AgentStack`).
The agents share no parameters, so this is the same computation as one agent's updates after the other's.

Design choices where the paper is silent (each is documented where it is made):
- An action is a vector of logits in [-marlin_logit_scale, marlin_logit_scale]^(M x O x D) (tanh-squashed
  Gaussian); the plan is its softmax over datacenters (`logits_to_plan`). The critics score the *plan*, not the
  logits, so phase 2 can score blended plans that no actor produced.
- FiLM (Algorithm 1 lines 6 and 12) sits inside the actor MLP, conditioned on [the weight vector, State_e];
  the critics also take the weight vector. That makes each agent a goal-conditioned learner, which is what lets
  HER's relabelled transitions (same state and plan, another agent's weights and reward) train it.
- Returns over epochs (the paper: "Q_j estimates the long-term importance"): a sample of epoch e is the
  transition (State_e, plan, r, State_e+1), its critic target SAC's bootstrapped r + gamma (Q'(State_e+1, a')
  - alpha log pi(a'|State_e+1)) (`learner.td_target`, marlin_gamma 0.95, the target critics Q'). State_e+1 is
  known only when epoch e + 1 starts, so an epoch's samples wait there (`ObjectiveAgent.pending`) and are
  completed and stored at the next epoch's start (`ObjectiveAgent.complete`): the updates of epoch e learn from
  the transitions of the epochs before it. The last epoch of a pre-training day is stored with done = 1 (the
  next day is not its successor).
- Replay: B_replay (capacity marlin_replay_current, 20,000 as in section 6) is a ring of the agent's own most
  recent transitions, no longer emptied each epoch (at k_opt = 62 samples per epoch it holds the last ~320
  epochs); HER copies each transition into B_cross (capacity marlin_replay_cross, 5,000), once with the agent's
  own weights and once relabelled with each other agent's weights (4 x 62 per epoch: its last ~20 epochs).
  Updates draw marlin_current_share (30 %) of a batch from B_replay and the rest (70 %) from B_cross.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from schedulers.common import plan_reward, update_ema, weighted_score
from schedulers.marlin.learner import AgentNets, AgentStack
from schedulers.rl.nets import FiLM, ReplayBuffer, logits_to_plan
from schedulers.rl.sac import SACHyper, TwinQ

J = 4  # agents: one per objective of Eq. 11 (TTFT, carbon, water, cost), in simcore.config.OBJECTIVES order; a
# run's agents are its `Config.objectives` (a fifth, `embodied`, with objective_embodied)


def agent_weights(dominant: float, n: int = J) -> np.ndarray:
    """[n, n]: agent j's weight vector over the n objectives, objective j at `dominant` and the rest sharing
    1 - dominant."""
    w = np.full((n, n), (1.0 - dominant) / (n - 1))
    np.fill_diagonal(w, dominant)
    return w


class NoFilm(nn.Module):
    """The `no-film` ablation: the FiLM layer replaced by the identity (the condition is ignored)."""

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return h


class FilmActor(nn.Module):
    """State -> hidden -> FiLM(hidden | [weights, state]) -> hidden -> (mean, log_std) of the logits."""

    def __init__(self, obs_size: int, cond_size: int, act_size: int, hidden: int, film: bool) -> None:
        super().__init__()
        self.inp = nn.Linear(obs_size, hidden)
        self.film = FiLM(cond_size + obs_size, hidden) if film else NoFilm()
        self.mid = nn.Linear(hidden, hidden)
        self.mean = nn.Linear(hidden, act_size)
        self.log_std = nn.Linear(hidden, act_size)

    def forward(self, obs: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.inp(obs))
        h = self.film(h, torch.cat([cond, obs], dim=-1))
        h = torch.relu(self.mid(h))
        return self.mean(h), self.log_std(h)


class ObjectiveAgent:
    """Agent j: a SAC learner for its weight vector, its two buffers and the EMA baseline of its reward. Its
    networks (`sac`) learn in the AgentStack that `make_agents` joins them to.

    :param j: objective index (0 TTFT, 1 carbon, 2 water, 3 cost)
    :param weights: [J] its weight vector (one weight per objective: J = the number of agents)
    :param obs_size: state feature size F
    :param plan_shape: (M, O, D)
    :param params: MarlinParams (marlin_* fields and the reward terms)
    :param film: False for the no-film ablation
    """

    def __init__(self, j: int, weights: np.ndarray, obs_size: int, plan_shape: tuple, params, film: bool) -> None:
        self.j, self.w, self.plan_shape, self.params = j, np.asarray(weights, dtype=float), tuple(plan_shape), params
        act_size = int(np.prod(plan_shape))
        J = len(self.w)  # the condition's size: one weight per objective
        actor = FilmActor(obs_size, J, act_size, params.marlin_actor_hidden, film)
        critic = TwinQ(obs_size, act_size, J, params.marlin_critic_hidden)
        hp = SACHyper(lr_actor=params.marlin_lr_actor, lr_critic=params.marlin_lr_critic,
                      lr_alpha=params.marlin_lr_alpha, gamma=params.marlin_gamma, tau=params.marlin_tau,
                      alpha_init=params.marlin_alpha_init,
                      target_entropy=-params.marlin_target_entropy_scale * act_size,
                      action_scale=params.marlin_logit_scale)
        self.sac = AgentNets(actor, critic, self.to_plan_flat, hp)  # its tensors join the AgentStack (make_agents)
        self.stack: AgentStack | None = None
        fields = {"obs": (obs_size,), "x": (act_size,), "rew": (), "cond": (J,), "next_obs": (obs_size,), "done": ()}
        self.current = ReplayBuffer(params.marlin_replay_current, fields)
        self.cross = ReplayBuffer(params.marlin_replay_cross, fields)
        self.ema: float | None = None
        self.updates = 0  # SAC gradient updates taken so far
        self.cond_size = J
        #: the last epoch's samples, waiting for the next state: (obs [n, F], x [n, A], [(rew [n], cond [J])] for
        #: B_replay's own label first, then every HER label for B_cross)
        self.pending: tuple | None = None

    def to_plan_flat(self, logits: torch.Tensor) -> torch.Tensor:
        return logits_to_plan(logits, self.plan_shape).flatten(start_dim=-3)

    # --- acting ---------------------------------------------------------------------------------------------
    def sample_plans(self, obs: np.ndarray, n: int, gen: torch.Generator) -> np.ndarray:
        """Algorithm 1 line 5 (+ FiLM inside the actor, line 6): n plans a_j ~ pi(.|State_e), [n, M, O, D]."""
        with torch.no_grad():
            o = torch.as_tensor(obs).expand(n, -1)
            c = torch.as_tensor(self.w, dtype=torch.float32).expand(n, -1)
            a, _ = self.sac.act(o, c, gen)
            return self.to_plan_flat(a).double().numpy().reshape(n, *self.plan_shape)

    def exploit(self, obs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Algorithm 1 lines 11-12: the deterministic plan (the policy's mean), [M, O, D]."""
        w = self.w if weights is None else weights
        with torch.no_grad():
            a, _ = self.sac.act(torch.as_tensor(obs)[None], torch.as_tensor(w, dtype=torch.float32)[None],
                                deterministic=True)
            return self.to_plan_flat(a)[0].double().numpy().reshape(self.plan_shape)

    def q_value(self, obs: np.ndarray, plans: torch.Tensor) -> torch.Tensor:
        """Q_j(State_e, plan) for plans [B, M*O*D] (differentiable in the plans): phase 2's utility."""
        n = plans.shape[0]
        o = torch.as_tensor(obs).expand(n, -1)
        c = torch.as_tensor(self.w, dtype=torch.float32).expand(n, -1)
        return self.sac.critic.min_q(o, plans.float(), c)

    # --- learning -------------------------------------------------------------------------------------------
    def complete(self, next_obs: np.ndarray | None) -> None:
        """Store the pending transitions with their next state `next_obs` [F] (None: the day ended, done = 1):
        the own-label ones into B_replay, every label (own included) into B_cross (HER, line 15)."""
        if self.pending is None:
            return
        obs, x, labels = self.pending
        n = len(obs)
        done = np.full(n, 1.0 if next_obs is None else 0.0, dtype=np.float32)
        nxt = np.broadcast_to(obs[0] if next_obs is None else next_obs, obs.shape)
        (rew, cond), *_ = labels
        shape = (n, self.cond_size)
        self.current.add(obs=obs, x=x, rew=rew, cond=np.broadcast_to(cond, shape), next_obs=nxt, done=done)
        for rew, cond in labels[1:]:
            self.cross.add(obs=obs, x=x, rew=rew, cond=np.broadcast_to(cond, shape), next_obs=nxt, done=done)
        self.pending = None

    def draw_batches(self, updates: int, rng: np.random.Generator, gen: torch.Generator) -> dict:
        """The batches of `updates` SAC updates, drawn 30/70 from the current-epoch and cross-epoch buffers, and
        each update's actor sampling noise: {"obs": [U, B, F], "x", "rew", "cond", "noise": [U, B, A]}.

        Draws from `rng` and `gen` in the order one-update-at-a-time learning would (per update: the current
        buffer's indices, the cross buffer's indices, the next action's noise (SAC.update samples it first, where
        gamma > 0), then the actor's noise), so learning all agents at once (AgentStack.learn) sees the same
        batches and noise as learning each agent in turn."""
        params = self.params
        n_cur = int(round(params.marlin_batch_size * params.marlin_current_share)) if len(self.cross) else \
            params.marlin_batch_size
        n_cross = params.marlin_batch_size - n_cur
        act_size = int(np.prod(self.plan_shape))
        noise = torch.empty((updates, params.marlin_batch_size, act_size))
        boot = self.sac.hp.gamma > 0
        noise_next = torch.empty((updates, params.marlin_batch_size, act_size)) if boot else None
        i_cur = np.empty((updates, n_cur), dtype=np.int64)
        i_cross = np.empty((updates, n_cross), dtype=np.int64)
        for u in range(updates):
            i_cur[u] = rng.integers(0, self.current.size, size=n_cur)  # = ReplayBuffer.sample's draw
            if n_cross:
                i_cross[u] = rng.integers(0, self.cross.size, size=n_cross)
            if boot:
                torch.randn((params.marlin_batch_size, act_size), generator=gen, out=noise_next[u])
            torch.randn((params.marlin_batch_size, act_size), generator=gen, out=noise[u])  # = squashed_sample's
        out = {k: np.concatenate([self.current.data[k][i_cur], self.cross.data[k][i_cross]], axis=1)
               for k in self.current.data}
        out["noise"] = noise
        if boot:
            out["noise_next"] = noise_next
        return out


def make_agents(weights: np.ndarray, obs_size: int, plan_shape: tuple, params, film: bool) -> list:
    """The J ObjectiveAgents (agent j with weights[j]), their networks joined in one AgentStack."""
    agents = [ObjectiveAgent(j, w, obs_size, plan_shape, params, film) for j, w in enumerate(weights)]
    stack = AgentStack([a.sac for a in agents], plan_shape)
    for a in agents:
        a.stack = stack
    return agents


def phase1(agents: list, obs_vec: np.ndarray, state, scorer, k_opt: int, her: bool,
           rng: np.random.Generator, gen: torch.Generator, incumbent_scores: np.ndarray) -> dict:
    """One epoch of Algorithm 1 for every agent.

    :param agents: the J ObjectiveAgents
    :param obs_vec: State_e as features [F] (lines 1-2: the forecast is already in it)
    :param state: the EpochState for Simulate
    :param scorer: EvaluatorScheduler.score_plans
    :param k_opt: plans sampled per agent (line 4)
    :param her: cross-label with the other agents' objectives (line 15); False for the no-her ablation
    :param incumbent_scores: [J] the bounded score (`feasibility.sla_score`) of the plan executed last, in this
        state, under each agent's weights: each agent's EMA takes it first, so the EMA term of the reward is the
        improvement over what would run anyway (`feasibility.update_ema`)
    :returns: {"plans": [J, M, O, D] proposals a_j*', "norm": [J, J] their normalized metrics,
               "ev": their Evaluation}
    """
    params = agents[0].params
    W = np.stack([a.w for a in agents])
    n_req = max(float(state.requests.sum()), 1e-12)
    for ag, inc in zip(agents, incumbent_scores):
        ag.complete(obs_vec)  # the last epoch's samples get this epoch's state as their next state (lines 9, 15)
        ag.ema = update_ema(ag.ema, float(inc), params.reward_ema_decay)
    epoch = []
    for ag in agents:  # line 3: the agents are independent; run one after the other, deterministically
        plans = ag.sample_plans(obs_vec, k_opt, gen)  # lines 4-6
        reward, norm, ev = scorer(state, plans, ag.w, ag.ema)  # lines 7-8: one batched Simulate call
        flat = plans.reshape(k_opt, -1).astype(np.float32)
        obs_b = np.ascontiguousarray(np.broadcast_to(obs_vec, (k_opt, len(obs_vec))))
        # lines 9 and 15 (HER), completed at the next epoch: the own label for B_replay, then the same metrics
        # relabelled with every agent's weights and EMA (own one included) for B_cross
        sla_rate = ev.sla_violations / n_req
        labels = [(reward, ag.w)] + [
            (plan_reward(weighted_score(norm, other.w), other.ema, ev.parked_share, sla_rate, params), other.w)
            for other in (agents if her else [ag])]
        ag.pending = (obs_b, flat, labels)
        # SAC update of theta_j and Q_j on the stored transitions: its batches and noise drawn now, the updates
        # run for all agents at once
        if params.marlin_updates_per_epoch and len(ag.current):
            epoch.append(ag.draw_batches(params.marlin_updates_per_epoch, rng, gen))
    if len(epoch) == len(agents):  # (all agents store alike: either every one has transitions or none has)
        agents[0].stack.learn(epoch)
        for ag in agents:
            ag.updates += params.marlin_updates_per_epoch
    # lines 11-13: exploit each policy and evaluate the J deterministic proposals in one Simulate call
    props = np.stack([ag.exploit(obs_vec) for ag in agents])
    _, norm, ev = scorer(state, props, W[0])
    return {"plans": props, "norm": norm, "ev": ev}
