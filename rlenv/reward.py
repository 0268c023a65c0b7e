"""What the RL environments give back: the plan an action stands for, and the reward of an epoch that really ran.

Action -> plan: the action is a [model, origin, datacenter] array in [-1, 1]; the plan is
softmax(env_logit_scale x action) over the datacenters, so every action is a valid plan (rows non-negative,
summing to 1) and a zero action is the uniform plan.

Reward of epoch e (played by the real engine with the plan chosen at its start):

    r_e = -(w . m_e) - env_sla_penalty x v_e

- m_e [k]: the epoch's measured metrics (total TTFT, carbon, water, cost; with `objective_embodied=true` also
  the embodied carbon attributable to serving, k = 5) over the uniform plan's in the same state, Simulate's
  estimate with the requests that really arrived (`schedulers.rl.online.measured_metrics`, the normalisation the
  project's learning schedulers use; 1.0 = as good as uniform).
- w: the run's Eq. 11 weights (`Config.objective_weights`: --weights, and the fifth with objective_embodied);
  v_e: the epoch's SLA-violation share (violations / requests).
- An epoch without arrivals has r_e = 0 (nothing to normalise by).

The multi-agent environment gives agent j (objective j) r_e^j = -m_e[j] - env_sla_penalty x v_e.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from schedulers.common import forecast_or_ones, weighted_score
from schedulers.rl.online import measured_metrics
from simcore.evaluator import EpochState
from simcore.interface import EpochResult, Observation
from simcore.params import Parameters, param

BLENDS = ("mean", "capital")  # how the multi-agent environment blends the agents' proposals (`rlenv.pz_env`)


@dataclass(frozen=True)
class EnvParams(Parameters):
    """The environments' own parameters (the world's are the `Config` they are built with)."""

    env_sla_penalty: float = param(10.0, "reward: weight of the SLA term, per unit share of the epoch's requests "
                                   "that violated the SLA", lo=0)
    env_logit_scale: float = param(5.0, "action: the plan is softmax(this x action) over datacenters, action in "
                                   "[-1, 1] (5: one datacenter can get e^10 = 22,000 x another's share)",
                                   lo=0, lo_open=True)
    env_blend: str = param("mean", "multi-agent env: how the agents' plans are blended: 'mean' (equal weights) or "
                           "'capital' (MARLIN's capital game, Algorithm 2 lines 4-6 and 20-24)", choices=BLENDS)


def plan_from_action(action: np.ndarray, scale: float) -> np.ndarray:
    """softmax(scale x action) over the last (datacenter) axis, in float64."""
    z = scale * np.asarray(action, dtype=float)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def epoch_state(obs: Observation) -> EpochState:
    """The state Simulate normalises by, as the evaluator schedulers build it (`EvaluatorScheduler.epoch_state`)."""
    pred = forecast_or_ones(obs.predicted_requests)
    return dataclasses.replace(EpochState.from_observation(obs), predicted=pred, requests=pred)


def normalized_metrics(result: EpochResult, obs: Observation, evaluator, uniform_plan: np.ndarray):
    """(m_e [k] or None when no request arrived, v_e the SLA-violation share) of a finished epoch; k = the run's
    objectives (`Config.objectives`)."""
    got = measured_metrics(evaluator, uniform_plan, epoch_state(obs), result, len(evaluator.cfg.objectives))
    if got is None:
        return None, 0.0
    measured, ref = got
    total = float(np.sum(result.requests))
    return measured / np.maximum(ref, 1e-12), float(np.sum(result.sla_violations)) / total


def epoch_reward(norm: np.ndarray | None, sla_rate: float, weights, sla_penalty: float) -> float:
    """r_e = -(w . m_e) - sla_penalty x v_e (0 for an epoch without arrivals)."""
    if norm is None:
        return 0.0
    return float(-weighted_score(norm, weights) - sla_penalty * sla_rate)


def objective_rewards(norm: np.ndarray | None, sla_rate: float, sla_penalty: float, k: int = 4) -> np.ndarray:
    """[k]: each objective's own reward -m_e[j] - sla_penalty x v_e (zeros for an epoch without arrivals)."""
    if norm is None:
        return np.zeros(k)
    return -np.asarray(norm, dtype=float) - sla_penalty * sla_rate


def raw_metrics(result: EpochResult) -> dict:
    """The epoch's measured metrics, fleet totals (the environments' `info`)."""
    served = float(np.sum(result.ttft_count))
    return {
        "epoch": int(result.epoch),
        "requests": float(np.sum(result.requests)),
        "ttft_mean_s": float(np.sum(result.ttft_sum_s)) / served if served > 0 else float("nan"),
        "sla_violations": float(np.sum(result.sla_violations)),
        "energy_kwh": float(np.sum(result.energy_kwh)),
        "carbon_kg": float(np.sum(result.carbon_kg)),
        "embodied_carbon_kg": float(np.sum(result.embodied_carbon_kg)) if result.embodied_carbon_kg is not None
        else 0.0,
        "embodied_attributable_kg": float(np.sum(result.embodied_attributable_kg))
        if result.embodied_attributable_kg is not None else 0.0,
        "water_l": float(np.sum(result.water_l)),
        "cost_usd": float(np.sum(result.cost_usd)),
        "parked_share": float(np.mean(result.parked_share)),
    }
