"""The discrete action set of the value-based RL baselines (Q-Learning, DDQN): K named candidate plans.

Q-learning and DQN choose among a finite set of actions, but a plan is continuous ([M, O, D] fractions). The two
baselines therefore act over a fixed, documented list of K candidate plans. The *names* (the actions) are fixed
for a run, so a Q-value of action k keeps one meaning across epochs; the plans behind the "-now" actions are
rebuilt every epoch from the epoch's signals (e.g. "greenest" is the lowest-carbon datacenter of this epoch).

    uniform            every row split equally over the datacenters
    nearest            each origin to its lowest-latency datacenter (Eq. 2)
    nearest2           each origin split evenly over its two lowest-latency datacenters
    greenest           everything to the lowest carbon intensity CI_d of the epoch (as the `greenest` reference)
    cheapest           everything to the lowest cost per IT kWh of the epoch (price x PUE, Eq. 6-7)
    driest             everything to the lowest water per IT kWh of the epoch (evaporation, blowdown, grid; Eq. 8)
    green-half         split evenly over the ceil(D/2) datacenters with the lowest carbon per IT kWh
    weighted-best      everything to the datacenter with the lowest run-weighted sum of carbon, water and cost per
                       IT kWh (each divided by its fleet mean; the run's weights w2..w4)
    weighted-nearest   each origin to the datacenter with the lowest run-weighted sum of latency (w1) and the
                       three intensities above (each divided by its fleet mean)
    split-by-model     the small model (latency-bound chat) to `nearest`, the large model to `weighted-best`
    dc-<d>             everything to datacenter d (one action per datacenter)

K = 10 + D. Per-kWh intensities are the observation's (`Observation.carbon_kg_per_it_kwh` etc., Eq. 6-10), so
no equation is re-written here. Ties go to the lowest datacenter index (numpy argmin / stable argsort).
"""
from __future__ import annotations

import numpy as np

from schedulers.common import one_hot_plan
from simcore.interface import Observation, StaticInfo

BASE_NAMES = ("uniform", "nearest", "nearest2", "greenest", "cheapest", "driest", "green-half", "weighted-best",
              "weighted-nearest", "split-by-model")


def candidate_names(info: StaticInfo) -> tuple:
    """The K action names of a run, in action-index order."""
    return BASE_NAMES + tuple(f"dc-{d}" for d in range(info.dcs))


def per_kwh_intensities(obs: Observation) -> np.ndarray:
    """[3, D]: carbon (kg), water (L) and cost (USD) caused by 1 kWh of IT energy at each datacenter this epoch."""
    return np.stack([obs.carbon_kg_per_it_kwh, obs.water_l_per_it_kwh, obs.cost_usd_per_it_kwh])


def _relative(x: np.ndarray) -> np.ndarray:
    """Divide by the mean over the last axis (so quantities of different units can be weighted together)."""
    return x / np.maximum(np.abs(x).mean(axis=-1, keepdims=True), 1e-12)


def candidate_plans(obs: Observation, info: StaticInfo) -> np.ndarray:
    """The K candidate plans [K, M, O, D] of this epoch, in `candidate_names` order."""
    shape = info.plan_shape
    m_n, o_n, d_n = shape
    w = np.asarray(info.weights, dtype=float)
    lat = np.asarray(info.latency_s, dtype=float)  # [O, D]
    inten = per_kwh_intensities(obs)  # [3, D]

    def everything_to(d: int) -> np.ndarray:
        return one_hot_plan(np.full((m_n, o_n), int(d)), shape)

    def per_origin(choice_o: np.ndarray) -> np.ndarray:
        return one_hot_plan(np.broadcast_to(choice_o, (m_n, o_n)), shape)

    def split_over(sets: np.ndarray) -> np.ndarray:
        """[O, D] 0/1 membership -> plan splitting each origin evenly over its members."""
        rows = sets / sets.sum(axis=1, keepdims=True)
        return np.broadcast_to(rows, shape).copy()

    nearest = np.argmin(lat, axis=1)
    order = np.argsort(lat, axis=1, kind="stable")
    near2 = np.zeros((o_n, d_n))
    near2[np.arange(o_n)[:, None], order[:, :min(2, d_n)]] = 1.0
    green_rank = np.argsort(inten[0], kind="stable")[: (d_n + 1) // 2]
    half = np.zeros((o_n, d_n))
    half[:, green_rank] = 1.0
    site_score = (w[1:, None] * _relative(inten)).sum(axis=0)  # [D] weighted carbon, water, cost
    best = int(np.argmin(site_score))
    near_score = w[0] * _relative(lat) + site_score[None, :]  # [O, D]
    split = per_origin(nearest)
    split[1:] = everything_to(best)[1:]  # models 1.. (the large model) to weighted-best

    plans = [np.full(shape, 1.0 / d_n), per_origin(nearest), split_over(near2),
             everything_to(int(np.argmin(obs.ci_kg_per_kwh))), everything_to(int(np.argmin(inten[2]))),
             everything_to(int(np.argmin(inten[1]))), split_over(half), everything_to(best),
             per_origin(np.argmin(near_score, axis=1)), split]
    plans += [everything_to(d) for d in range(d_n)]
    return np.stack(plans)
