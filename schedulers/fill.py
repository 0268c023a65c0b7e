"""Capacity-aware "fill" reference schedulers: `fill-ttft`, `fill-carbon`, `fill-water`, `fill-cost`.

What a sensible operator does by hand for one objective: rank the datacenters for that objective, send the
forecast demand to the best one until it is as busy as it should be, then to the next best, and so on. They are
the honest single-objective baselines of a capacity-true world: unlike `nearest` / `greenest`, which send
everything to one site whatever its size, they never plan more work into a datacenter than it can serve while
a better-than-last site still has room.

Per epoch:

- ranking, per origin ([O, D] order, `FillScheduler.rank`):
  * `fill-ttft`: one-way network latency from the origin (Eq. 2, `latency_s[origin, d]`), so each origin has
    its own order;
  * `fill-carbon`, `fill-water`, `fill-cost`: carbon (kg), water (L) and cost (USD) of one kWh of IT energy at
    each site this epoch (`physics.datacenter_epoch_metrics`, Eq. 6-10), so cooling (COP), infrastructure
    overhead, evaporative + blowdown + grid water and the carbon of water are all counted, not just the raw
    grid intensity; the same order for every origin;
- filling: the forecast `predicted_requests` [M, O] is placed row by row (rows of `fill-ttft` in order of
  their best latency, so the demand closest to a site gets it first; the others in (model, origin) order).
  A datacenter's utilization is `simcore.capacity.datacenter_utilization` (sum over models of requests /
  capacity[d, m]; both models share the nodes) and it takes requests until it reaches the fill target
  (`Config.warm_target_utilization`: the load the engine sizes its warm set for, so a filled site runs its
  nodes as busy as the engine aims to, with the same head-room for forecast error). Requests already waiting
  there (`obs.queued`) count first, assumed to have the forecast's model mix;
- overflow: demand left when every datacenter is at the target goes to the row's best datacenter;
- rows without forecast (epoch 0, or a (model, origin) pair that forecasts nothing) go entirely to the row's
  best datacenter.

Capacity is `StaticInfo.capacity.requests_per_epoch` [D, M], computed once per run by the engine; these
schedulers never recompute it.
"""
from __future__ import annotations

import numpy as np

from schedulers.base import Observation, Scheduler
from simcore import physics


def mix_share(pred: np.ndarray) -> np.ndarray:
    """[M] each model's share of the forecast (equal shares when nothing is forecast)."""
    per_model = np.asarray(pred, dtype=float).sum(axis=1)
    total = per_model.sum()
    return per_model / total if total > 0 else np.full(len(per_model), 1.0 / len(per_model))


def queued_utilization(queued: np.ndarray, pred: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """[D] utilization the requests waiting in each datacenter already commit, taking them to have the
    forecast's model mix: a request costs sum_m share[m] / cap[d, m] of datacenter d's capacity (over the models
    d hosts, since only those can be waiting there)."""
    cap = np.asarray(cap, dtype=float)
    hosted = cap > 0
    share = np.where(hosted, mix_share(pred)[None, :], 0.0)
    share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
    per_request = np.where(hosted, share / np.where(hosted, cap, 1.0), 0.0).sum(axis=1)
    return np.asarray(queued, dtype=float) * per_request


def fill_plan(pred: np.ndarray, order: np.ndarray, cap: np.ndarray, target: float,
              queued: np.ndarray | None = None, row_order=None) -> np.ndarray:
    """Fill datacenters in preference order up to a utilization target; the plan [M, O, D].

    :param pred: [M, O] forecast requests of the epoch
    :param order: [O, D] datacenters of each origin, best first
    :param cap: [D, M] requests per epoch of each datacenter if all its nodes served model m
    :param target: utilization a datacenter is filled to (share of its capacity, `datacenter_utilization`)
    :param queued: [D] requests already waiting in each datacenter (the forecast's model mix), counted first
    :param row_order: (model, origin) pairs in the order they are placed (default: model-major index order)
    """
    pred = np.asarray(pred, dtype=float)
    cap = np.asarray(cap, dtype=float)
    M, O = pred.shape
    D = cap.shape[0]
    used = np.zeros(D) if queued is None else queued_utilization(queued, pred, cap)  # already committed
    plan = np.zeros((M, O, D))
    rows = row_order if row_order is not None else [(m, o) for m in range(M) for o in range(O)]
    for m, o in rows:
        best = int(order[o][0])
        left = pred[m, o]
        if left <= 0:  # nothing forecast: the whole row to its best datacenter, using no capacity
            plan[m, o, best] = 1.0
            continue
        for d in order[o]:
            if cap[d, m] <= 0:  # the datacenter cannot host this model
                continue
            take = min(left, max(0.0, target - used[d]) * cap[d, m])
            if take > 0:
                plan[m, o, d] += take
                used[d] += take / cap[d, m]
                left -= take
            if left <= 0:
                break
        if left > 0:  # every datacenter is at the target: the rest to the best one
            plan[m, o, best] += left
    return plan / plan.sum(axis=2, keepdims=True)


class FillScheduler(Scheduler):
    """Fill the best datacenter for one objective up to the fill target, then the next (see module doc).

    Subclasses write `rank`; `fill-ttft` also orders the rows by their best latency (`row_order`).
    """

    def rank(self, obs: Observation) -> np.ndarray:
        """[O, D] datacenters of each origin, best first."""
        raise NotImplementedError

    def row_order(self, obs: Observation) -> list:
        """(model, origin) rows in the order they are placed (default: model-major index order)."""
        m_n, o_n, _ = self.info.plan_shape
        return [(m, o) for m in range(m_n) for o in range(o_n)]

    def site_metric(self, obs: Observation, key: str) -> np.ndarray:
        """[D] `key` of `physics.datacenter_epoch_metrics` for 1 kWh of IT energy at each site this epoch."""
        per_kwh = physics.datacenter_epoch_metrics(np.ones(self.info.dcs), obs.cop, obs.tou_usd_per_kwh,
                                                   obs.gi_l_per_kwh, obs.ci_kg_per_kwh, self.info.cfg)
        return np.asarray(per_kwh[key], dtype=float)

    def same_order_for_all(self, score: np.ndarray) -> np.ndarray:
        """[O, D] the ascending order of a per-site score (ties: lowest index), for every origin."""
        return np.tile(np.argsort(score, kind="stable"), (self.info.dcs, 1))

    def plan(self, obs: Observation) -> np.ndarray:
        return fill_plan(obs.predicted_requests, self.rank(obs), self.info.capacity.requests_per_epoch,
                         self.info.cfg.warm_target_utilization, obs.queued, self.row_order(obs))


class FillTTFT(FillScheduler):
    """Nearest first (one-way latency from each origin, Eq. 2), rows with the closest best site placed first."""

    def rank(self, obs: Observation) -> np.ndarray:
        return np.argsort(self.info.latency_s, axis=1, kind="stable")

    def row_order(self, obs: Observation) -> list:
        best = np.asarray(self.info.latency_s).min(axis=1)
        return [(m, o) for _, m, o in sorted((best[o], m, o) for m, o in super().row_order(obs))]


class FillCarbon(FillScheduler):
    """Lowest carbon (grid + water carbon, with cooling) per kWh of IT energy first."""

    def rank(self, obs: Observation) -> np.ndarray:
        return self.same_order_for_all(self.site_metric(obs, "carbon_kg"))


class FillWater(FillScheduler):
    """Lowest water (evaporative + blowdown + grid water) per kWh of IT energy first."""

    def rank(self, obs: Observation) -> np.ndarray:
        return self.same_order_for_all(self.site_metric(obs, "water_l"))


class FillCost(FillScheduler):
    """Lowest electricity cost (time-of-use price x total energy with cooling) per kWh of IT energy first."""

    def rank(self, obs: Observation) -> np.ndarray:
        return self.same_order_for_all(self.site_metric(obs, "cost_usd"))
