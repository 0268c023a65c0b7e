"""Actor-Critic [`actorcritic`]: advantage actor-critic in the A2C form (Mnih et al., "Asynchronous methods for
deep reinforcement learning", ICML 2016, the synchronous variant; on policy gradients with a learned baseline,
Sutton et al., NIPS 2000), with a continuous plan as the action.

Kept from the original: a stochastic actor pi(a | s) and a critic V(s) trained together on on-policy samples;
the policy gradient -E[A log pi(a | s)] with the advantage A = R - V(s) (the critic as the baseline), a value
loss (R - V(s))^2 and an entropy bonus; a batch of samples per synchronous update.

Adapted to this problem:
- action: a continuous plan. The actor outputs mean logits for every (model, origin, datacenter) entry, with a
  learned state-independent log std (clamped to [actorcritic_min_log_std, actorcritic_max_log_std]); a sample
  is a Gaussian draw of the logits, turned into a plan by a softmax over each (model, origin) row
  (`schedulers.rl.nets.logits_to_plan`). The mean head starts at zero, so the first mean plan is uniform;
- state: `schedulers.rl.nets.state_features` with the committed backlog per datacenter (issue 18: without it the
  policy could not see the queue its night-time plans built);
- feasibility toolkit: every plan the actor proposes is projected onto the head-room target
  (`feasibility.project_to_capacity` at this learner's `Headroom` target) before Simulate scores it and before
  it is executed: a repair that is part of the environment, so the policy gradient of the Gaussian over logits
  is unchanged (the paper's actor-critic acts in a constrained environment; it does not need to learn the
  constraint by failing it live);
- samples: each epoch `actorcritic_samples_per_epoch` plans (with the incumbent, capped at
  plan_evaluations_per_epoch, MARLIN's budget) are drawn from the policy and scored in one batched Simulate call
  with the toolkit's bounded signal (`feasibility.bounded_reward`, the run's weights; its EMA starts from and
  follows the incumbent, the mean plan, scored in the same call). These are the A2C rollouts: the synchronous
  "workers" are the Simulate copies of the epoch;
- returns: one-step, R = r (a contextual bandit, gamma = 0): the plan does not change the next epoch's forecast
  or grid signals, so the epoch's reward is the whole consequence the critic has to predict. The measured
  epoch is not used: the executed plan is the policy's mean, not a sample of it (on-policy learning);
- update: `actorcritic_updates_per_epoch` steps (default 64: one critic and one actor gradient step each, the
  declared budget gradient_steps_per_epoch = 128 per epoch that MARLIN's four agents get; one step per epoch
  left the policy untrained); the critic is fitted first, then the advantages R - V(s) use it, standardized
  over the batch (as in common A2C/PPO implementations);
- acting: the mean plan (softmax of the mean logits), projected onto the head-room target; the mean logits are
  tanh-squashed into [-actorcritic_logit_bound, actorcritic_logit_bound] (as MARLIN's actions are): unbounded,
  they saturated the softmax after a few days of training and the policy stopped learning;
- pre-training (`--train-days`): the networks, optimizers, EMA and head-room are carried from day to day; each
  day played from a trained state (not a frozen one) restarts the policy's spread at `actorcritic_warm_log_std`;
- determinism: networks initialized under torch.random.fork_rng with a seed from the scheduler's generator,
  samples drawn with a torch.Generator seeded from it; one torch thread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from schedulers.common import EvaluatorParams, EvaluatorScheduler
from schedulers.feasibility import Headroom, project_to_capacity
from schedulers.rl.nets import feature_size, logits_to_plan, mlp, state_features
from schedulers.rl.online import torch_seeds, torch_threads
from simcore.errors import ConfigError
from simcore.interface import Observation
from simcore.params import ordered, param


class GaussianActor(nn.Module):
    """Mean logits [A] from state features; one learned log std per logit (state-independent, as in A2C)."""

    def __init__(self, n_feat: int, n_act: int, hidden: int, init_log_std: float, logit_bound: float) -> None:
        super().__init__()
        self.head = mlp([n_feat, hidden, hidden, n_act])
        nn.init.zeros_(self.head[-1].weight)  # the first mean plan is the uniform one
        nn.init.zeros_(self.head[-1].bias)
        self.log_std = nn.Parameter(torch.full((n_act,), float(init_log_std)))
        self.logit_bound = float(logit_bound)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean logits, tanh-squashed into [-logit_bound, logit_bound] (about the identity near 0). Unbounded, they
        grew to |logit| ~ 200-300 over three training days: a one-hot softmax whose plan no further update moves
        (its gradient vanishes), so the trained policy was stuck on one corner (issue 22's measurement)."""
        return self.logit_bound * torch.tanh(self.head(x) / self.logit_bound)


@dataclass(frozen=True)
class ActorCriticParams(EvaluatorParams):
    """Networks, learning rates, samples, updates and the policy's spread (module docstring)."""

    actorcritic_hidden: int = param(64, "Actor-Critic: hidden units of the actor's and the critic's two hidden layers",
                                    lo=1)
    actorcritic_lr_actor: float = param(1e-3, "Actor-Critic: Adam learning rate of the actor", lo=0, lo_open=True)
    actorcritic_lr_critic: float = param(1e-3, "Actor-Critic: Adam learning rate of the critic", lo=0, lo_open=True)
    actorcritic_samples_per_epoch: int = param(256, "Actor-Critic: plans sampled from the policy and simulated per "
                                               "epoch (capped at plan_evaluations_per_epoch)", lo=1)
    actorcritic_updates_per_epoch: int = param(64, "Actor-Critic: updates per epoch on the epoch's samples, each one "
                                               "critic and one actor gradient step (2 x this <= "
                                               "gradient_steps_per_epoch)", lo=0)
    actorcritic_entropy_coef: float = param(1e-3, "Actor-Critic: weight of the policy-entropy bonus", lo=0)
    actorcritic_init_log_std: float = param(0.0, "Actor-Critic: initial log std of the Gaussian over plan logits")
    actorcritic_min_log_std: float = param(-3.0, "Actor-Critic: lower clamp of the log std")
    actorcritic_max_log_std: float = param(1.0, "Actor-Critic: upper clamp of the log std")
    actorcritic_warm_log_std: float = param(0.0, "Actor-Critic: a day played from a trained state starts with the "
                                            "policy's log std raised to at least this (and its Adam moments "
                                            "restarted): the spread its rollouts search with, which training "
                                            "collapses (-2.8 after 3 days); <= actorcritic_min_log_std keeps it as "
                                            "trained; a frozen day keeps it")
    actorcritic_logit_bound: float = param(6.0, "Actor-Critic: the mean logits are tanh-squashed into [-this, this] "
                                           "(a plan entry's share at most e^(2 x this) times another's; MARLIN's "
                                           "marlin_logit_scale)", lo=0, lo_open=True)
    actorcritic_grad_clip: float = param(1.0, "Actor-Critic: gradient-norm clip", lo=0, lo_open=True)
    actorcritic_torch_threads: int = param(1, "Actor-Critic: torch CPU threads (small nets: 1 is fastest)", lo=1)

    def validate(self) -> None:
        ordered(self, "actorcritic_min_log_std", "actorcritic_max_log_std")
        if 2 * self.actorcritic_updates_per_epoch > self.gradient_steps_per_epoch:
            raise ConfigError(f"2 x actorcritic_updates_per_epoch = {2 * self.actorcritic_updates_per_epoch} "
                              f"exceeds gradient_steps_per_epoch {self.gradient_steps_per_epoch}")


class ActorCritic(EvaluatorScheduler):
    """A2C: Gaussian actor over plan logits, critic V(s), one-step returns from Simulate samples."""

    Params = ActorCriticParams
    learned = ("actor", "critic", "actor_opt", "critic_opt", "grad_steps", "ema", "headroom")  # simcore.training

    def setup(self) -> None:
        super().setup()
        p = self.params
        n_feat, n_act = feature_size(self.info, backlog=True), int(np.prod(self.info.plan_shape))
        net_seed, sample_seed = torch_seeds(self.rng)
        self.gen = torch.Generator().manual_seed(sample_seed)
        with torch_threads(p.actorcritic_torch_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(net_seed)
            self.actor = GaussianActor(n_feat, n_act, p.actorcritic_hidden, p.actorcritic_init_log_std,
                                       p.actorcritic_logit_bound)
            self.critic = mlp([n_feat, p.actorcritic_hidden, p.actorcritic_hidden, 1])
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=p.actorcritic_lr_actor)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=p.actorcritic_lr_critic)
        # the incumbent (the mean plan) is scored with the samples, within the Simulate budget
        self.n_samples = max(1, min(p.actorcritic_samples_per_epoch, p.plan_evaluations_per_epoch - 1))
        self.ema: float | None = None
        self.headroom = Headroom(p)
        self.grad_steps = 0
        self.epoch_spend = (0, 0)  # (plans simulated, gradient steps) of the last epoch: the declared budgets
        self.history: list = []  # per epoch: (mean sampled reward, critic value) for inspection

    def load_state_dict(self, state) -> None:
        """The trained state, its policy's spread raised to `actorcritic_warm_log_std` (not on a frozen day): the
        exploration restarts, the mean policy, the critic and the rest of the optimizers' state are carried. The
        test day's plans are searched by sampling around the mean; at the trained spread (log std -2.8, samples
        within ~0.06 logit of the mean) a day of updates hardly moved the policy (24 h, D = 4: 1.86 % worse than
        untrained on seed 1; restored to 0: README 'Protocols')."""
        super().load_state_dict(state)
        floor = self.params.actorcritic_warm_log_std
        if state is not None and not self.frozen and floor > self.params.actorcritic_min_log_std:
            with torch.no_grad():
                self.actor.log_std.clamp_(min=floor)
            self.actor_opt.state.pop(self.actor.log_std, None)

    def log_std(self) -> torch.Tensor:
        p = self.params
        return self.actor.log_std.clamp(p.actorcritic_min_log_std, p.actorcritic_max_log_std)

    # --- learning ---------------------------------------------------------------------------------------------
    def update(self, x: torch.Tensor, logits: torch.Tensor, ret: torch.Tensor) -> None:
        """One A2C step on a batch of (state, sampled logits, one-step return) of one epoch."""
        p = self.params
        # critic: V(s) -> R (the one-step return)
        v = self.critic(x).squeeze(-1)
        critic_loss = ((ret - v) ** 2).mean()
        self.critic_opt.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), p.actorcritic_grad_clip)
        self.critic_opt.step()
        # actor: advantage R - V(s) with the refitted critic, standardized over the batch
        with torch.no_grad():
            adv = ret - self.critic(x).squeeze(-1)
            if len(adv) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        log_std = self.log_std()
        dist = torch.distributions.Normal(self.actor.mean(x), log_std.exp())
        log_prob = dist.log_prob(logits).sum(-1)
        entropy = dist.entropy().sum(-1).mean()
        actor_loss = -(adv * log_prob).mean() - p.actorcritic_entropy_coef * entropy
        self.actor_opt.zero_grad()
        actor_loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), p.actorcritic_grad_clip)
        self.actor_opt.step()
        self.grad_steps += 2

    # --- one epoch --------------------------------------------------------------------------------------------
    def plan(self, obs: Observation) -> np.ndarray:
        p = self.params
        shape = self.info.plan_shape
        self.headroom.learn(obs.last)
        state = self.epoch_state(obs)
        cap, target = self.info.capacity.requests_per_epoch, self.headroom.target()

        def feasible(plans: np.ndarray) -> np.ndarray:
            return project_to_capacity(plans, state.predicted, cap, target, obs.queued)

        x1 = torch.as_tensor(state_features(obs, self.info, backlog=True))[None]
        x = x1.expand(self.n_samples, -1)
        steps0 = self.grad_steps
        with torch_threads(p.actorcritic_torch_threads):
            if self.frozen:  # the trained protocol's frozen test day: the learned policy's mean plan, no rollouts
                with torch.no_grad():
                    mean_plan = feasible(logits_to_plan(self.actor.mean(x1)[0].double(), shape).numpy())
                self.headroom.record(mean_plan, obs.predicted_requests, obs.epoch)
                self.epoch_spend = (0, 0)
                return mean_plan
            with torch.no_grad():  # rollouts: sample plans from pi(. | s)
                mean = self.actor.mean(x1)
                noise = torch.randn((self.n_samples, mean.shape[-1]), generator=self.gen)
                logits = mean + self.log_std().exp() * noise
                incumbent = logits_to_plan(mean.double(), shape).numpy()
            plans = feasible(np.concatenate([incumbent, logits_to_plan(logits.double(), shape).numpy()]))
            reward, _, _, self.ema = self.score_with_incumbent(state, plans, self.info.weights, self.ema, 0)
            ret = torch.as_tensor(reward[1:], dtype=torch.float32)  # one Simulate call; index 0 the incumbent
            for _ in range(p.actorcritic_updates_per_epoch):
                self.update(x, logits, ret)
            with torch.no_grad():
                mean_plan = feasible(logits_to_plan(self.actor.mean(x1)[0].double(), shape).numpy())
                self.history.append((float(reward[1:].mean()), float(self.critic(x1)[0, 0])))
        self.headroom.record(mean_plan, obs.predicted_requests, obs.epoch)
        self.epoch_spend = (len(plans), self.grad_steps - steps0)
        return mean_plan
