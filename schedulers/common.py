"""Shared by the schedulers: `one_hot_plan`; and by every one that scores candidate plans with Simulate (MARLIN,
NSGA-II, SLIT, the RL baselines):

- `EvaluatorScheduler`: a Scheduler with the run's epoch evaluator (`StaticInfo.evaluator`), the epoch's state,
  and plan scoring with bounded normalized metrics and the reward of section 5.2; its parameters
  (`EvaluatorParams`: the Simulate and gradient-step budgets, the reward's terms, the shared head-room) are
  shared by its subclasses' parameter dataclasses.
- The reward r = EMA + ECO + metric - penalty (Algorithm 1 line 8; SPEC 9) is the feasibility toolkit's bounded
  signal (`schedulers.feasibility.bounded_reward`, here also under its former name `plan_reward`), so MARLIN's
  agents and the RL baselines learn from the same signal:
    metric  = -score, score = w . compress(metrics / metrics of the uniform plan in the same state) (1.0 = as
              uniform; compress keeps x <= 1 and log-scales above, capped at 1 + ln(reward_norm_clip))
    penalty = inside the score: a step above every SLA-meeting score plus reward_sla_penalty x the excess
              share over reward_sla_setpoint
    EMA     = ema - score: improvement over the exponential moving average of the incumbent's score
    ECO     = reward_eco_weight x share of parked nodes (consolidation bonus)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from schedulers.feasibility import (HeadroomParams, bounded_reward, compress_metrics, project_to_capacity,
                                    sla_score, update_ema)
from simcore.evaluator import EpochState, Evaluation
from simcore.interface import Observation, Scheduler
from simcore.params import param

# The reward of section 5.2 and the capacity repair live in the feasibility toolkit; these names stay for the
# modules that import them from here (MARLIN's agents and scheduler).
plan_reward = bounded_reward
capacity_feasible = project_to_capacity


def one_hot_plan(choice: np.ndarray, shape: tuple) -> np.ndarray:
    """A plan sending each (model, origin) row entirely to datacenter choice[model, origin]."""
    p = np.zeros(shape)
    m, o = np.indices(choice.shape)
    p[m, o, choice] = 1.0
    return p


def forecast_or_ones(predicted) -> np.ndarray:
    """The forecast to plan with: before any history (a zero forecast) one request per (model, origin) stands in,
    so that plans can still be told apart."""
    pred = np.asarray(predicted, dtype=float)
    return np.ones_like(pred) if pred.sum() <= 0 else pred


def normalized_metrics(ev: Evaluation, ref: Evaluation, k: int = 4) -> np.ndarray:
    """[B, k] metrics relative to the reference plan's (TTFT, carbon, water, cost, and with k = 5 the attributable
    embodied carbon: `Evaluation.objective_metrics`); 1.0 = equal."""
    return ev.objective_metrics(k) / np.maximum(ref.objective_metrics(k), 1e-12)


def sla_rate(state: EpochState, ev: Evaluation) -> np.ndarray:
    """[B] Simulate's SLA-violation share of each plan (violations over the requests of the state)."""
    return ev.sla_violations / max(float(np.asarray(state.requests).sum()), 1e-12)


def weighted_score(norm: np.ndarray, weights) -> np.ndarray:
    """Eq. 11's weighted sum on normalized metrics: [B, 4] x [4] (or [B, 4]) -> [B]; lower is better."""
    return (norm * np.asarray(weights, dtype=float)).sum(axis=-1)


@dataclass(frozen=True)
class EvaluatorParams(HeadroomParams):
    """The Simulate and gradient-step budgets, the reward's terms (docs/model.md 'Objective') and the shared
    head-room (`feasibility.HeadroomParams`), shared by every scheduler that searches or learns on the evaluator
    (each one's parameters extend these; config.json records them)."""

    plan_evaluations_per_epoch: int = param(256, "Simulate budget per epoch of every search/learning scheduler", lo=1)
    gradient_steps_per_epoch: int = param(128, "gradient-step budget per epoch of every learning scheduler (all its "
                                          "networks together; MARLIN's 4 agents x 32)", lo=0)
    reward_norm_clip: float = param(10.0, "bounded reward: a normalised metric (1 = the uniform plan's) counts as "
                                    "itself up to 1 and as 1 + ln(min(x, this)) above (feasibility.compress_metrics)",
                                    lo=1)
    reward_ema_decay: float = param(0.9, "reward EMA term: decay of the running mean of the weighted score", lo=0, hi=1)
    reward_eco_weight: float = param(0.1, "reward ECO term: bonus per unit share of parked nodes", lo=0)
    reward_sla_setpoint: float = param(0.01, "reward penalty: SLA-violation share tolerated before the penalty",
                                       lo=0, hi=1)
    reward_sla_penalty: float = param(10.0, "reward penalty: per unit of SLA-violation share above the set point, on "
                                      "top of the step that puts every violating plan below every feasible one",
                                      lo=0, lo_open=True)


class EvaluatorScheduler(Scheduler):
    """Base of schedulers that search or learn on the epoch evaluator. Subclasses call `super().setup()`."""

    Params = EvaluatorParams

    def setup(self) -> None:
        self.evaluator = self.info.evaluator
        m, o, d = self.info.plan_shape
        self.uniform_plan = np.full((m, o, d), 1.0 / d)

    def epoch_state(self, obs: Observation) -> EpochState:
        """The epoch's state for Simulate, with the forecast to plan with (`forecast_or_ones`)."""
        pred = forecast_or_ones(obs.predicted_requests)
        return dataclasses.replace(EpochState.from_observation(obs), predicted=pred, requests=pred)

    def score_plans(self, state: EpochState, plans: np.ndarray, weights, ema: float | None = None):
        """Evaluate plans [B, M, O, D]: returns (reward [B], bounded normalized metrics [B, k]
        (`feasibility.compress_metrics`), Evaluation); k = the weights' length: 4 (Eq. 11), or 5 with the
        attributable embodied carbon (`Config.objective_weights` with objective_embodied)."""
        ev = self.evaluator.evaluate(state, plans)
        ref = self.evaluator.evaluate(state, self.uniform_plan)
        norm = compress_metrics(normalized_metrics(ev, ref, np.shape(weights)[-1]), self.params.reward_norm_clip)
        reward = plan_reward(weighted_score(norm, weights), ema, ev.parked_share, sla_rate(state, ev), self.params)
        return reward, norm, ev

    def score_with_incumbent(self, state: EpochState, plans: np.ndarray, weights, ema: float | None,
                             incumbent: int):
        """Evaluate plans [B, M, O, D] of which plans[incumbent] is the plan the learner would run anyway (what it
        executed last, in this epoch's state): the EMA first takes the incumbent's bounded score
        (`feasibility.update_ema`, so it starts there), then every plan's reward is computed against it.
        Returns (reward [B], bounded normalized metrics [B, 4], Evaluation, the new EMA)."""
        _, norm, ev = self.score_plans(state, plans, weights)
        base = weighted_score(norm, weights)
        rate = sla_rate(state, ev)
        ema = update_ema(ema, float(sla_score(base[incumbent:incumbent + 1], rate[incumbent:incumbent + 1],
                                              self.params)[0]), self.params.reward_ema_decay)
        return plan_reward(base, ema, ev.parked_share, rate, self.params), norm, ev, ema

    def plan_scores(self, state: EpochState, plans: np.ndarray, weights) -> np.ndarray:
        """[B] bounded scores (`feasibility.sla_score`, lower is better; what the EMA tracks) of plans."""
        _, norm, ev = self.score_plans(state, plans, weights)
        return sla_score(weighted_score(norm, weights), sla_rate(state, ev), self.params)
