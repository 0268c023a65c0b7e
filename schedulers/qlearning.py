"""Q-Learning [`qlearning`] (Watkins 1989; Watkins and Dayan, "Q-learning", Machine Learning 1992), with
Dyna-style model-based updates (Sutton, "Integrated architectures for learning, planning, and reacting", 1990),
adapted to choosing each epoch's routing plan.

Kept from the original: a table Q(s, a) over a discrete state and a discrete action set, the off-policy update
Q(s, a) += alpha [r + gamma max_a' Q(s', a') - Q(s, a)], and epsilon-greedy behaviour.

Adapted to this problem:
- actions: the K named candidate plans of `schedulers.rl.discrete` (uniform, capacity-proportional and seven
  fill-style plans: nearest, greenest, driest, cheapest, weighted, ... first), rebuilt every epoch from the
  epoch's signals. Every candidate is capacity-aware (feasibility toolkit: filled up to, then projected onto,
  the head-room target of this learner's `Headroom`), i.e. the table's actions are masked to feasible plans,
  which tabular Q-learning allows: the action set stays fixed and finite;
- state: (forecast load bin, hour-of-day bin, index of the lowest-carbon datacenter); the load is the forecast
  total divided by the fleet's serving capacity per epoch for the forecast's model mix (`StaticInfo.capacity`,
  summed over the datacenters), i.e. the share of the fleet's capacity the forecast would use, binned at
  `qlearning_load_edges`; the hour is UTC, in `qlearning_hour_bins` equal bins. |S| = (edges + 1) x bins x D;
- reward: the feasibility toolkit's bounded signal (`feasibility.bounded_reward`, shared with MARLIN's agents:
  EMA + ECO + metric - penalty on compressed metrics, every SLA-violating plan below every feasible one) with the
  run's weights self.info.weights, the EMA over the incumbent's score (`score_with_incumbent`);
- experience, twice per epoch:
  1. model-based (Dyna planning): every candidate is scored in one batched Simulate call (K <=
     plan_evaluations_per_epoch, the budget MARLIN has), and each (s, k) is updated with its simulated reward.
     The model's next state is this state with the clock advanced one epoch (load and signals persist);
  2. real: the executed plan's measured reward (`observe`, normalized like Simulate's, see rl.online) updates
     (s, a) with step `qlearning_observed_alpha`, completed at the next epoch start when the real s' is known.
- discount: `qlearning_gamma` (default 0.5). The plan hardly changes the next epoch's state (only the resident
  warm set), so a short horizon; 0 turns the method into a contextual bandit.
- exploration only in Simulate (issue 18): every action is scored in Simulate every epoch (step 1), so the
  live action is greedy by default (`qlearning_epsilon_start` = `qlearning_epsilon_end` = 0); a positive
  epsilon explores in the live system and charges it to the scored day;
- the table starts at 0; ties in argmax go to the lowest action index (uniform first); exploration draws from
  the scheduler's seeded generator, so the same seed gives the same plans. Tabular: no gradient steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedulers.common import EvaluatorParams, EvaluatorScheduler
from schedulers.feasibility import Headroom
from schedulers.fill import mix_share
from schedulers.rl.discrete import candidate_names, candidate_plans
from schedulers.rl.online import linear_epsilon, observed_reward
from simcore.interface import EpochResult, Observation
from simcore.params import ANY_LENGTH, monotone, param

S_PER_DAY = 86400.0


def fleet_load(pred: np.ndarray, capacity) -> float:
    """Share of the fleet's capacity per epoch a forecast [M, O] uses: its total over the requests per epoch all
    datacenters together serve at full utilization for the forecast's model mix (0 when nothing is forecast)."""
    total = float(np.sum(pred))
    if total <= 0:
        return 0.0
    fleet = float(capacity.mix_requests_per_epoch(mix_share(pred)).sum())
    return total / max(fleet, 1e-12)


@dataclass(frozen=True)
class QLearningParams(EvaluatorParams):
    """Step sizes, discount, exploration and the state's bins (module docstring)."""

    qlearning_alpha: float = param(0.3, "Q-Learning: step size of the tabular update Q += alpha (target - Q)",
                                   lo=0, hi=1)
    qlearning_gamma: float = param(0.5, "Q-Learning: discount of max Q(next state) in the target (0 = contextual "
                                   "bandit; a plan barely moves the next epoch's state)", lo=0, hi=1)
    qlearning_observed_alpha: float = param(0.3, "Q-Learning: step size of the update from the measured epoch "
                                            "(observe); 0 = learn from Simulate only", lo=0, hi=1)
    qlearning_epsilon_start: float = param(0.0, "Q-Learning: epsilon-greedy exploration in the live system at "
                                           "epoch 0 (0: explore only in Simulate, where every action is scored "
                                           "each epoch)", lo=0, hi=1)
    qlearning_epsilon_end: float = param(0.0, "Q-Learning: live epsilon after the decay", lo=0, hi=1)
    qlearning_epsilon_decay_epochs: int = param(48, "Q-Learning: epochs of the linear epsilon decay", lo=1)
    qlearning_load_edges: tuple = param((0.15, 0.35, 0.65), "Q-Learning: state bin edges of the forecast load = "
                                        "predicted requests / the fleet's serving capacity per epoch",
                                        lo=0, length=ANY_LENGTH)
    qlearning_hour_bins: int = param(4, "Q-Learning: state bins of the hour of day (UTC)", lo=1, hi=24)

    def validate(self) -> None:
        monotone(self, "qlearning_load_edges", increasing=True, strict=True, what="increasing")


class QLearning(EvaluatorScheduler):
    """Tabular Q-learning over K candidate plans with Dyna updates from Simulate and real updates from observe."""

    Params = QLearningParams
    learned = ("q", "ema", "headroom")  # carried by pre-training: the Q-table, reward baseline, head-room

    def setup(self) -> None:
        super().setup()
        p = self.params
        self.names = candidate_names(self.info)
        self.edges = np.asarray(p.qlearning_load_edges, dtype=float)
        self.q = np.zeros((len(self.edges) + 1, p.qlearning_hour_bins, self.info.dcs, len(self.names)))
        self.capacity = self.info.capacity  # simcore.capacity.Capacity, computed once per run by the engine
        self.ema: float | None = None
        self.last: tuple | None = None  # (state index, action, EpochState) of the executed plan
        self.pending: tuple | None = None  # (state index, action, measured reward) waiting for its s'
        self.actions: list = []  # chosen action index per epoch (for tests and inspection)
        self.headroom = Headroom(p)  # the candidates' capacity target, from the observed forecast error
        self.epoch_spend = (0, 0)  # (plans simulated, gradient steps) of the last epoch: the declared budgets

    # --- state ----------------------------------------------------------------------------------------------
    def discretize(self, obs: Observation, time_s: float | None = None) -> tuple:
        """(load bin, hour bin, greenest datacenter) of an observation (at `time_s`, default the epoch's)."""
        t = obs.time_s if time_s is None else time_s
        load = fleet_load(obs.predicted_requests, self.capacity)
        hour_bin = int((t % S_PER_DAY) / S_PER_DAY * self.params.qlearning_hour_bins)
        return int(np.searchsorted(self.edges, load, side="right")), hour_bin, int(np.argmin(obs.ci_kg_per_kwh))

    # --- the update -------------------------------------------------------------------------------------------
    def update(self, s: tuple, actions: np.ndarray, rewards: np.ndarray, s_next: tuple, alpha: float) -> None:
        """Q(s, a) += alpha [r + gamma max Q(s', .) - Q(s, a)] for every (a, r) given (synchronously)."""
        target = rewards + self.params.qlearning_gamma * self.q[s_next].max()
        self.q[s][actions] += alpha * (target - self.q[s][actions])

    # --- one epoch --------------------------------------------------------------------------------------------
    def plan(self, obs: Observation) -> np.ndarray:
        p = self.params
        s = self.discretize(obs)
        self.headroom.learn(obs.last)
        if self.pending is not None and not self.frozen:  # last epoch's real transition, its next state now known
            s0, a0, r0 = self.pending
            self.update(s0, np.array([a0]), np.array([r0]), s, p.qlearning_observed_alpha)
        self.pending = None
        # Dyna planning: all K candidates in one Simulate call; model next state = clock + one epoch
        state = self.epoch_state(obs)
        plans = candidate_plans(obs, self.info, self.headroom.target())
        incumbent = 0 if self.last is None else self.last[1]  # the action run last epoch (uniform before any)
        if not self.frozen:  # a frozen table (the trained protocol's frozen test day) plans on what it learned
            reward, _, _, self.ema = self.score_with_incumbent(state, plans, self.info.weights, self.ema, incumbent)
            s_model = self.discretize(obs, obs.time_s + self.info.epoch_s)
            self.update(s, np.arange(len(plans)), reward, s_model, p.qlearning_alpha)
        # act epsilon-greedily on the table
        eps = linear_epsilon(obs.epoch + self.experience_epochs, p.qlearning_epsilon_start, p.qlearning_epsilon_end,
                             p.qlearning_epsilon_decay_epochs)
        if self.rng.random() < eps:
            a = int(self.rng.integers(len(plans)))
        else:
            a = int(np.argmax(self.q[s]))
        self.last = (s, a, state)
        self.actions.append(a)
        self.headroom.record(plans[a], obs.predicted_requests, obs.epoch)
        self.epoch_spend = (0 if self.frozen else len(plans), 0)
        return plans[a]

    def observe(self, result: EpochResult) -> None:
        if self.last is None or self.params.qlearning_observed_alpha <= 0 or self.frozen:
            return
        s, a, state = self.last
        got = observed_reward(self, state, result, self.info.weights, self.ema)
        if got is not None:
            self.pending = (s, a, got[0])
