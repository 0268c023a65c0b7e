"""Shared by every scheduler that scores candidate plans with Simulate (MARLIN, NSGA-II, SLIT, the RL baselines).

- `EvaluatorScheduler`: a Scheduler with the epoch evaluator built from its StaticInfo, the epoch's state, and
  plan scoring with normalized metrics and the reward of section 5.2.
- The reward r = EMA + ECO + metric - penalty (Algorithm 1 line 8; SPEC 9), in one function, so MARLIN's agents
  and the RL baselines learn from the same signal:
    metric  = -score, score = w . (metrics / metrics of the uniform plan in the same state) (1.0 = as uniform)
    EMA     = ema - score: improvement over the exponential moving average of this learner's past scores
    ECO     = reward_eco_weight x share of parked nodes (consolidation bonus)
    penalty = reward_sla_penalty x max(0, SLA-violation share - reward_sla_setpoint)
"""
from __future__ import annotations

import numpy as np

from schedulers.base import Observation, Scheduler
from simcore.evaluator import EpochState, Evaluation, evaluator_from_info


def normalized_metrics(ev: Evaluation, ref: Evaluation) -> np.ndarray:
    """[B, 4] metrics relative to the reference plan's (TTFT, carbon, water, cost); 1.0 = equal."""
    return ev.metrics / np.maximum(ref.metrics, 1e-12)


def weighted_score(norm: np.ndarray, weights) -> np.ndarray:
    """Eq. 11's weighted sum on normalized metrics: [B, 4] x [4] (or [B, 4]) -> [B]; lower is better."""
    return (norm * np.asarray(weights, dtype=float)).sum(axis=-1)


def plan_reward(score: np.ndarray, ema: float | None, parked_share: np.ndarray, sla_rate: np.ndarray, cfg) -> np.ndarray:
    """Section 5.2: r = EMA + ECO + metric - penalty (see the module docstring for each term)."""
    ema_term = 0.0 if ema is None else ema - score
    eco = cfg.reward_eco_weight * parked_share
    penalty = cfg.reward_sla_penalty * np.maximum(0.0, sla_rate - cfg.reward_sla_setpoint)
    return ema_term + eco - score - penalty


def update_ema(ema: float | None, score: float, decay: float) -> float:
    """The running mean behind the EMA term."""
    return float(score) if ema is None else decay * ema + (1.0 - decay) * float(score)


class EvaluatorScheduler(Scheduler):
    """Base of schedulers that search or learn on the epoch evaluator. Subclasses call `super().setup()`."""

    def setup(self) -> None:
        self.evaluator = evaluator_from_info(self.info)
        m, o, d = self.info.plan_shape
        self.uniform_plan = np.full((m, o, d), 1.0 / d)

    def epoch_state(self, obs: Observation) -> EpochState:
        """The epoch's state for Simulate; before any history (zero forecast) one request per (model, origin)
        stands in, so that plans can still be told apart."""
        state = EpochState.from_observation(obs)
        if state.predicted.sum() <= 0:
            ones = np.ones_like(state.predicted, dtype=float)
            state = EpochState(ones, ones, state.ci_kg_per_kwh, state.gi_l_per_kwh, state.tou_usd_per_kwh,
                               state.cop, state.resident_nodes)
        return state

    def score_plans(self, state: EpochState, plans: np.ndarray, weights, ema: float | None = None):
        """Evaluate plans [B, M, O, D]: returns (reward [B], normalized metrics [B, 4], Evaluation)."""
        ev = self.evaluator.evaluate(state, plans)
        ref = self.evaluator.evaluate(state, self.uniform_plan)
        norm = normalized_metrics(ev, ref)
        n_req = max(float(state.requests.sum()), 1e-12)
        reward = plan_reward(weighted_score(norm, weights), ema, ev.parked_share, ev.sla_violations / n_req,
                             self.info.cfg)
        return reward, norm, ev
