"""The discrete action set of the value-based RL baselines (Q-Learning, DDQN): K named candidate plans.

Q-learning and DQN choose among a finite set of actions, but a plan is continuous ([M, O, D] fractions). The two
baselines therefore act over a fixed, documented list of K candidate plans. The *names* (the actions) are fixed
for a run, so a Q-value of action k keeps one meaning across epochs; the plans behind them are rebuilt every
epoch from the epoch's signals, forecast and backlog (e.g. "fill-carbon" fills this epoch's lowest-carbon
datacenters first).

Every candidate is capacity-aware, built with the feasibility toolkit: the `fill-*` ones fill datacenters in a
preference order up to the head-room target (`schedulers.fill.fill_plan`, the target the learner's own
`feasibility.Headroom` gives from its observed forecast error), and every candidate is then projected onto that
target (`feasibility.project_to_capacity`). This is action masking in the sense DQN allows: the action set is
fixed, and no action plans a datacenter past its head-room (issue 18: the former set held 12 one-datacenter
plans out of 18, each overloading that site at the peak, so the learners had mostly infeasible choices).

    uniform                every row split equally over the datacenters
    proportional           every row split in proportion to each datacenter's capacity for its model
    fill-ttft              nearest first, per origin (Eq. 2); rows with the closest best site placed first
    fill-carbon            lowest carbon per IT kWh first (Eq. 6-10, `Observation.carbon_kg_per_it_kwh`)
    fill-water             lowest water per IT kWh first
    fill-cost              lowest cost per IT kWh first
    fill-weighted          lowest run-weighted sum of carbon, water and cost per IT kWh first (each divided by
                           its fleet mean; the run's weights w2..w4)
    fill-weighted-nearest  per origin, lowest run-weighted sum of latency (w1) and the three intensities above
    fill-split-by-model    the small model (latency-bound chat) by `fill-ttft`'s order, the others by
                           `fill-weighted`'s

K = 9 for every D. Ties go to the lowest datacenter index (stable argsort).
"""
from __future__ import annotations

import numpy as np

from schedulers.common import forecast_or_ones
from schedulers.feasibility import project_to_capacity
from schedulers.fill import fill_plan
from simcore.interface import Observation, StaticInfo

BASE_NAMES = ("uniform", "proportional", "fill-ttft", "fill-carbon", "fill-water", "fill-cost", "fill-weighted",
              "fill-weighted-nearest", "fill-split-by-model")


def candidate_names(info: StaticInfo) -> tuple:
    """The K action names of a run, in action-index order."""
    return BASE_NAMES


def per_kwh_intensities(obs: Observation) -> np.ndarray:
    """[3, D]: carbon (kg), water (L) and cost (USD) caused by 1 kWh of IT energy at each datacenter this epoch."""
    return np.stack([obs.carbon_kg_per_it_kwh, obs.water_l_per_it_kwh, obs.cost_usd_per_it_kwh])


def _relative(x: np.ndarray) -> np.ndarray:
    """Divide by the mean over the last axis (so quantities of different units can be weighted together)."""
    return x / np.maximum(np.abs(x).mean(axis=-1, keepdims=True), 1e-12)


def candidate_plans(obs: Observation, info: StaticInfo, target: float) -> np.ndarray:
    """The K candidate plans [K, M, O, D] of this epoch, in `candidate_names` order, each within the head-room
    `target` (share of a datacenter's capacity) wherever the fleet can hold the forecast under it."""
    shape = info.plan_shape
    m_n, o_n, d_n = shape
    w = np.asarray(info.weights, dtype=float)
    lat = np.asarray(info.latency_s, dtype=float)  # [O, D]
    cap = np.asarray(info.capacity.requests_per_epoch, dtype=float)  # [D, M]
    pred = forecast_or_ones(obs.predicted_requests)
    inten = per_kwh_intensities(obs)  # [3, D]
    rows = [(m, o) for m in range(m_n) for o in range(o_n)]
    best_lat = lat.min(axis=1)
    near_rows = [(m, o) for _, m, o in sorted((best_lat[o], m, o) for m, o in rows)]

    def fill(order: np.ndarray, row_order=None) -> np.ndarray:
        return fill_plan(pred, order, cap, target, obs.queued, row_order)

    def same_for_all(score: np.ndarray) -> np.ndarray:
        return np.tile(np.argsort(score, kind="stable"), (o_n, 1))

    near_order = np.argsort(lat, axis=1, kind="stable")
    site_score = (w[1:, None] * _relative(inten)).sum(axis=0)  # [D] weighted carbon, water, cost
    weighted_order = same_for_all(site_score)
    split = fill(weighted_order)
    split[0] = fill(near_order, near_rows)[0]  # model 0 (the small, latency-bound one) nearest first
    proportional = np.broadcast_to((cap / np.maximum(cap.sum(axis=0, keepdims=True), 1e-300)).T[:, None, :],
                                   shape).copy()
    plans = [np.full(shape, 1.0 / d_n), proportional, fill(near_order, near_rows),
             fill(same_for_all(inten[0])), fill(same_for_all(inten[1])), fill(same_for_all(inten[2])),
             fill(weighted_order), fill(np.argsort(w[0] * _relative(lat) + site_score[None, :], axis=1,
                                                    kind="stable")), split]
    return project_to_capacity(np.stack(plans), pred, cap, target, obs.queued)
