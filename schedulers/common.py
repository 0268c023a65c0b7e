"""Shared by the schedulers: `one_hot_plan`; and by every one that scores candidate plans with Simulate (MARLIN,
NSGA-II, SLIT, the RL baselines):

- `EvaluatorScheduler`: a Scheduler with the run's epoch evaluator (`StaticInfo.evaluator`), the epoch's state,
  and plan scoring with normalized metrics and the reward of section 5.2; its parameters (`EvaluatorParams`: the
  Simulate budget and the reward's terms) are shared by its subclasses' parameter dataclasses.
- The reward r = EMA + ECO + metric - penalty (Algorithm 1 line 8; SPEC 9), in one function, so MARLIN's agents
  and the RL baselines learn from the same signal:
    metric  = -score, score = w . (metrics / metrics of the uniform plan in the same state) (1.0 = as uniform)
    EMA     = ema - score: improvement over the exponential moving average of this learner's past scores
    ECO     = reward_eco_weight x share of parked nodes (consolidation bonus)
    penalty = reward_sla_penalty x max(0, SLA-violation share - reward_sla_setpoint)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from simcore.evaluator import EpochState, Evaluation
from simcore.interface import Observation, Scheduler
from simcore.params import Parameters, param


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


def normalized_metrics(ev: Evaluation, ref: Evaluation) -> np.ndarray:
    """[B, 4] metrics relative to the reference plan's (TTFT, carbon, water, cost); 1.0 = equal."""
    return ev.metrics / np.maximum(ref.metrics, 1e-12)


def weighted_score(norm: np.ndarray, weights) -> np.ndarray:
    """Eq. 11's weighted sum on normalized metrics: [B, 4] x [4] (or [B, 4]) -> [B]; lower is better."""
    return (norm * np.asarray(weights, dtype=float)).sum(axis=-1)


def plan_reward(score: np.ndarray, ema: float | None, parked_share: np.ndarray, sla_rate: np.ndarray,
                params: "EvaluatorParams") -> np.ndarray:
    """Section 5.2: r = EMA + ECO + metric - penalty (see the module docstring for each term)."""
    ema_term = 0.0 if ema is None else ema - score
    eco = params.reward_eco_weight * parked_share
    penalty = params.reward_sla_penalty * np.maximum(0.0, sla_rate - params.reward_sla_setpoint)
    return ema_term + eco - score - penalty


def update_ema(ema: float | None, score: float, decay: float) -> float:
    """The running mean behind the EMA term."""
    return float(score) if ema is None else decay * ema + (1.0 - decay) * float(score)


@dataclass(frozen=True)
class EvaluatorParams(Parameters):
    """The Simulate budget and the reward's terms (docs/model.md 'Objective'), shared by every scheduler that
    searches or learns on the evaluator (each one's parameters extend these)."""

    plan_evaluations_per_epoch: int = param(256, "Simulate budget per epoch of every search/learning scheduler", lo=1)
    reward_ema_decay: float = param(0.9, "reward EMA term: decay of the running mean of the weighted score", lo=0, hi=1)
    reward_eco_weight: float = param(0.1, "reward ECO term: bonus per unit share of parked nodes", lo=0)
    reward_sla_setpoint: float = param(0.01, "reward penalty: SLA-violation share tolerated before the penalty",
                                       lo=0, hi=1)
    reward_sla_penalty: float = param(10.0, "reward penalty: per unit of SLA-violation share above the set point", lo=0)


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
        """Evaluate plans [B, M, O, D]: returns (reward [B], normalized metrics [B, 4], Evaluation)."""
        ev = self.evaluator.evaluate(state, plans)
        ref = self.evaluator.evaluate(state, self.uniform_plan)
        norm = normalized_metrics(ev, ref)
        n_req = max(float(state.requests.sum()), 1e-12)
        reward = plan_reward(weighted_score(norm, weights), ema, ev.parked_share, ev.sla_violations / n_req,
                             self.params)
        return reward, norm, ev


def capacity_feasible(plans: np.ndarray, requests: np.ndarray, capacity: np.ndarray, ceiling: float,
                      queued: np.ndarray | None = None) -> np.ndarray:
    """Plans [B, M, O, D] (or one [M, O, D]) repaired so that no datacenter is planned above `ceiling` of its
    serving capacity: the capacity constraint of the paper's problem (section 4: "given resource constraints"),
    which its Algorithm 2 line 11 projects the consensus onto.

    A datacenter's utilization is `simcore.capacity.datacenter_utilization` of the requests the plan sends it
    (plan x `requests`) plus the requests already waiting there (`queued`, in the requests' model mix). Where it
    exceeds the ceiling, every row's share of it is scaled down to fit, and each row's removed share goes to the
    datacenters with room, in proportion to their room (so one pass fills none of them past the ceiling where the
    datacenters are of one size; a few passes settle the rest). Where the whole fleet's load exceeds the ceiling,
    the ceiling becomes that load: the plan then keeps every datacenter at the fleet's own utilization. A plan
    within the ceiling is returned unchanged.

    :param requests: [M, O] requests the plan routes (the forecast)
    :param capacity: [D, M] requests per epoch of each datacenter if all its hosting nodes served model m
        (`Capacity.requests_per_epoch`)
    :param ceiling: the highest planned utilization of a datacenter (share of its capacity)
    :param queued: [D] requests already waiting in each datacenter (None: none)
    """
    from simcore.capacity import datacenter_utilization

    p = np.array(plans, dtype=float)
    one = p.ndim == 3
    if one:
        p = p[None]
    req = np.asarray(requests, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    D = cap.shape[0]
    hosted = (cap > 0).T[None, :, None, :]  # [1, M, 1, D]
    per_model = req.sum(axis=1)  # [M]
    mix = per_model / per_model.sum() if per_model.sum() > 0 else np.full(len(per_model), 1.0 / len(per_model))
    waiting = np.zeros(D) if queued is None else datacenter_utilization(
        np.asarray(queued, dtype=float)[:, None] * mix[None, :] * (cap > 0), cap)  # [D]
    # the fleet's own utilization if every model's requests were spread in proportion to capacity
    fleet = waiting.mean() + (per_model / np.maximum(cap.sum(axis=0), 1e-300)).sum()
    top = max(ceiling, fleet)
    unit = req[None, :, :, None] / np.where(cap > 0, cap, np.inf).T[None, :, None, :]  # [1, M, O, D] per share
    spread = np.where(hosted, cap.T[None, :, None, :], 0.0)
    spread = spread / np.maximum(spread.sum(axis=-1, keepdims=True), 1e-300)  # fallback: capacity-proportional
    tol = 1e-9
    for _ in range(D + 1):  # each pass leaves at least one more datacenter at the ceiling
        removed = np.where(hosted, 0.0, p)  # a datacenter that cannot host a model serves none of it
        p = p - removed
        load = waiting[None] + (p * unit).sum(axis=(1, 2))  # [B, D]
        over = load > top + tol
        if not over.any() and not removed.any():
            break
        planned = load - waiting[None]
        keep = np.where(over, np.clip((top - waiting[None]) / np.maximum(planned, 1e-300), 0.0, 1.0), 1.0)
        cut = p * (1.0 - keep[:, None, None, :])
        p = p - cut
        left = (removed + cut).sum(axis=-1, keepdims=True)  # [B, M, O, 1]
        room = np.where(over, 0.0, np.maximum(0.0, top - load))[:, None, None, :] * hosted  # [B, M, O, D]
        share = np.where(room.sum(axis=-1, keepdims=True) > tol,
                         room / np.maximum(room.sum(axis=-1, keepdims=True), 1e-300), spread)
        p = p + left * share
    p = p / p.sum(axis=-1, keepdims=True)
    return p[0] if one else p
