"""MARLIN phase 1 (paper Algorithm 1; SPEC 9): the four objective agents, each a SAC learner with a FiLM actor,
and the two replay buffers with HER cross-labelling.

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
- Contextual-bandit view: a plan hardly changes the next epoch's state (the workload and the grid do not react
  to it; only the warm set carries over, and the reward already prices its cold starts), so each sample is a
  one-step transition (done = 1, target = r). marlin_gamma is kept for the shared SAC update, which bootstraps
  only transitions that carry a next state; MARLIN stores none.
- Replay: B_replay (capacity marlin_replay_current) holds the current epoch's samples and is emptied at the next
  epoch; at the end of an epoch HER copies its transitions into B_cross (capacity marlin_replay_cross), once with
  the agent's own weights and once relabelled with each other agent's weights. Updates draw marlin_current_share
  (30 %) of a batch from B_replay and the rest (70 %) from B_cross.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from schedulers.common import plan_reward, update_ema, weighted_score
from schedulers.marlin.learner import AgentNets, AgentStack
from schedulers.rl.nets import FiLM, ReplayBuffer, logits_to_plan
from schedulers.rl.sac import SACHyper, TwinQ

J = 4  # agents: one per objective of Eq. 11 (TTFT, carbon, water, cost), in simcore.config.OBJECTIVES order


def agent_weights(dominant: float) -> np.ndarray:
    """[J, 4]: agent j's weight vector, objective j at `dominant` and the rest sharing 1 - dominant."""
    w = np.full((J, J), (1.0 - dominant) / (J - 1))
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
    :param weights: [4] its weight vector
    :param obs_size: state feature size F
    :param plan_shape: (M, O, D)
    :param params: MarlinParams (marlin_* fields and the reward terms)
    :param film: False for the no-film ablation
    """

    def __init__(self, j: int, weights: np.ndarray, obs_size: int, plan_shape: tuple, params, film: bool) -> None:
        self.j, self.w, self.plan_shape, self.params = j, np.asarray(weights, dtype=float), tuple(plan_shape), params
        act_size = int(np.prod(plan_shape))
        actor = FilmActor(obs_size, J, act_size, params.marlin_actor_hidden, film)
        critic = TwinQ(obs_size, act_size, J, params.marlin_critic_hidden)
        hp = SACHyper(lr_actor=params.marlin_lr_actor, lr_critic=params.marlin_lr_critic,
                      lr_alpha=params.marlin_lr_alpha, gamma=params.marlin_gamma, tau=params.marlin_tau,
                      alpha_init=params.marlin_alpha_init,
                      target_entropy=-params.marlin_target_entropy_scale * act_size,
                      action_scale=params.marlin_logit_scale)
        self.sac = AgentNets(actor, critic, self.to_plan_flat, hp)  # its tensors join the AgentStack (make_agents)
        self.stack: AgentStack | None = None
        fields = {"obs": (obs_size,), "x": (act_size,), "rew": (), "cond": (J,)}
        self.current = ReplayBuffer(params.marlin_replay_current, fields)
        self.cross = ReplayBuffer(params.marlin_replay_cross, fields)
        self.ema: float | None = None

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
    def draw_batches(self, updates: int, rng: np.random.Generator, gen: torch.Generator) -> dict:
        """The batches of `updates` SAC updates, drawn 30/70 from the current-epoch and cross-epoch buffers, and
        each update's actor sampling noise: {"obs": [U, B, F], "x", "rew", "cond", "noise": [U, B, A]}.

        Draws from `rng` and `gen` in the order one-update-at-a-time learning would (per update: the current
        buffer's indices, the cross buffer's indices, then the actor's noise), so learning all agents at once
        (AgentStack.learn) sees the same batches and noise as learning each agent in turn."""
        params = self.params
        n_cur = int(round(params.marlin_batch_size * params.marlin_current_share)) if len(self.cross) else \
            params.marlin_batch_size
        n_cross = params.marlin_batch_size - n_cur
        act_size = int(np.prod(self.plan_shape))
        noise = torch.empty((updates, params.marlin_batch_size, act_size))
        i_cur = np.empty((updates, n_cur), dtype=np.int64)
        i_cross = np.empty((updates, n_cross), dtype=np.int64)
        for u in range(updates):
            i_cur[u] = rng.integers(0, self.current.size, size=n_cur)  # = ReplayBuffer.sample's draw
            if n_cross:
                i_cross[u] = rng.integers(0, self.cross.size, size=n_cross)
            torch.randn((params.marlin_batch_size, act_size), generator=gen, out=noise[u])  # = squashed_sample's
        out = {k: np.concatenate([self.current.data[k][i_cur], self.cross.data[k][i_cross]], axis=1)
               for k in self.current.data}
        out["noise"] = noise
        return out


def make_agents(weights: np.ndarray, obs_size: int, plan_shape: tuple, params, film: bool) -> list:
    """The J ObjectiveAgents (agent j with weights[j]), their networks joined in one AgentStack."""
    agents = [ObjectiveAgent(j, w, obs_size, plan_shape, params, film) for j, w in enumerate(weights)]
    stack = AgentStack([a.sac for a in agents], plan_shape)
    for a in agents:
        a.stack = stack
    return agents


def phase1(agents: list, obs_vec: np.ndarray, state, scorer, k_opt: int, her: bool,
           rng: np.random.Generator, gen: torch.Generator) -> dict:
    """One epoch of Algorithm 1 for every agent.

    :param agents: the J ObjectiveAgents
    :param obs_vec: State_e as features [F] (lines 1-2: the forecast is already in it)
    :param state: the EpochState for Simulate
    :param scorer: EvaluatorScheduler.score_plans
    :param k_opt: plans sampled per agent (line 4)
    :param her: cross-label with the other agents' objectives (line 15); False for the no-her ablation
    :returns: {"plans": [J, M, O, D] proposals a_j*', "norm": [J, 4] their normalized metrics,
               "ev": their Evaluation}
    """
    params = agents[0].params
    W = np.stack([a.w for a in agents])
    n_req = max(float(state.requests.sum()), 1e-12)
    epoch = []
    for ag in agents:  # line 3: the agents are independent; run one after the other, deterministically
        ag.current.size = ag.current.pos = 0  # B_replay holds the current epoch only
        plans = ag.sample_plans(obs_vec, k_opt, gen)  # lines 4-6
        reward, norm, ev = scorer(state, plans, ag.w, ag.ema)  # lines 7-8: one batched Simulate call
        flat = plans.reshape(k_opt, -1).astype(np.float32)
        obs_b = np.broadcast_to(obs_vec, (k_opt, len(obs_vec)))
        ag.current.add(obs=obs_b, x=flat, rew=reward, cond=np.broadcast_to(ag.w, (k_opt, J)))  # line 9
        # SAC update of theta_j and Q_j: its batches and noise drawn now, the updates run for all agents at once
        epoch.append((ag.draw_batches(params.marlin_updates_per_epoch, rng, gen), flat, obs_b, norm, ev))
    if params.marlin_updates_per_epoch:
        agents[0].stack.learn([e[0] for e in epoch])
    new_ema = []
    for ag, (_, flat, obs_b, norm, ev) in zip(agents, epoch):
        # line 15 (HER): the epoch's transitions go to B_cross under every agent's objective (own one included),
        # the relabelled reward computed from the same normalized metrics with the other agent's weights and EMA
        # (after learning: an agent's updates draw from its B_cross as it was before this epoch)
        sla_rate = ev.sla_violations / n_req
        goals = agents if her else [ag]
        for other in goals:
            r = plan_reward(weighted_score(norm, other.w), other.ema, ev.parked_share, sla_rate, params)
            ag.cross.add(obs=obs_b, x=flat, rew=r, cond=np.broadcast_to(other.w, (k_opt, J)))
        new_ema.append(update_ema(ag.ema, float(np.mean(weighted_score(norm, ag.w))), params.reward_ema_decay))
    for ag, e in zip(agents, new_ema):  # after the loop, so every agent's HER labels saw the same baselines
        ag.ema = e
    # lines 11-13: exploit each policy and evaluate the J deterministic proposals in one Simulate call
    props = np.stack([ag.exploit(obs_vec) for ag in agents])
    _, norm, ev = scorer(state, props, W[0])
    return {"plans": props, "norm": norm, "ev": ev}
