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
    each site this epoch (`Observation.carbon_kg_per_it_kwh` etc., Eq. 6-10), so cooling (COP), infrastructure
    overhead, evaporative + blowdown + grid water and the carbon of water are all counted, not just the raw
    grid intensity; the same order for every origin;
- filling: the forecast `predicted_requests` [M, O] is placed row by row (rows of `fill-ttft` in order of
  their best latency, so the demand closest to a site gets it first; the others in (model, origin) order).
  A datacenter's utilization is `simcore.capacity.datacenter_utilization` (sum over models of requests /
  capacity[d, m]; both models share the nodes) and it takes requests until it reaches the fill target. Requests
  already waiting there (`obs.queued`) count first, assumed to have the forecast's model mix;
- the fill target leaves head-room for what the forecast cannot see (`schedulers.feasibility.headroom_target`
  and `Headroom`, the shared toolkit this module's machinery moved to):

      target = 1 / (peak_to_mean x (1 + fill_error_z x sigma))

  * within the epoch, arrivals are not flat: the busiest 10-s bin (`cohort_bin_s`) brings peak_to_mean times the
    epoch's mean rate, and a datacenter whose busiest bursts exceed its capacity queues past the SLA.
    peak_to_mean is observed: the running mean of each finished epoch's busiest-bin ratio
    (`EpochResult.peak_to_mean`) + `fill_burst_z` standard deviations, from the prior `fill_peak_to_mean`;
  * the epoch's arrivals are not the forecast: sigma is the forecast's observed relative error, the error of
    each finished epoch's per-datacenter arrivals (`obs.last.requests`) against the loads this scheduler
    planned for it (plan x forecast), ||arrived - planned|| / ||planned|| (`feasibility.forecast_error`),
    averaged as an exponentially weighted mean of its square (`fill_error_ewma_alpha`), starting from
    `fill_error_prior`;
    `fill_error_z` standard deviations of it are held free. The target drops after an epoch the forecast
    missed and rises back as it hits again;
- overflow: when the forecast does not fit under the target everywhere, every datacenter is filled to the
  common level the forecast needs (its utilization if spread in proportion to capacity, on top of what each
  already holds, `common_level`), so no site runs hotter than the others while they all have to run hot;
  demand a datacenter cannot host goes to the row's best datacenter;
- rows without forecast (epoch 0, or a (model, origin) pair that forecasts nothing) go entirely to the row's
  best datacenter;
- routing: the filled loads fix each datacenter's requests of each model, and with them its energy, carbon,
  water, cost and utilization; which origin's requests make them up only changes the network latency, so each
  origin is sent to the nearest datacenters that can take it (`feasibility.least_latency_routing`, a
  transportation LP): a carbon-filled plan pays the farther, greener site's latency only for the requests that
  must travel there.

Cold starts (a site that gets more work than last epoch loads weights onto new nodes) get no head-room of their
own: on the default day they cost < 0.1 point of SLA violations (docs/model.md 'Fill references').

Capacity is `StaticInfo.capacity.requests_per_epoch` [D, M], computed once per run by the engine; these
schedulers never recompute it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedulers.feasibility import Headroom, HeadroomParams, least_latency_routing
from simcore.interface import EpochResult, Observation, Scheduler


def mix_share(pred: np.ndarray) -> np.ndarray:
    """[M] each model's share of the forecast (equal shares when nothing is forecast)."""
    per_model = np.asarray(pred, dtype=float).sum(axis=1)
    total = per_model.sum()
    return per_model / total if total > 0 else np.full(len(per_model), 1.0 / len(per_model))


def request_utilization(pred: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """[D] share of each datacenter's capacity one request in the forecast's model mix uses: sum_m share[m] /
    cap[d, m], over the models d hosts (shares renormalized over them)."""
    cap = np.asarray(cap, dtype=float)
    hosted = cap > 0
    share = np.where(hosted, mix_share(pred)[None, :], 0.0)
    share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
    return np.where(hosted, share / np.where(hosted, cap, 1.0), 0.0).sum(axis=1)


def queued_utilization(queued: np.ndarray, pred: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """[D] utilization the requests waiting in each datacenter already commit, taking them to have the
    forecast's model mix (`request_utilization`; only models d hosts can be waiting there)."""
    return np.asarray(queued, dtype=float) * request_utilization(pred, cap)


def common_level(pred: np.ndarray, cap: np.ndarray, used: np.ndarray) -> float:
    """Utilization every datacenter reaches when the forecast, in its model mix, is spread in proportion to
    capacity on top of the utilization `used` [D] each already holds (exact while no datacenter holds more)."""
    per_request = request_utilization(pred, cap)
    cap_mix = np.where(per_request > 0, 1.0 / np.maximum(per_request, 1e-300), 0.0)  # [D] requests per epoch
    total = cap_mix.sum()
    if total <= 0:
        return 0.0
    return float((np.asarray(pred, dtype=float).sum() + (np.asarray(used, dtype=float) * cap_mix).sum()) / total)


def fill_plan(pred: np.ndarray, order: np.ndarray, cap: np.ndarray, target: float,
              queued: np.ndarray | None = None, row_order=None) -> np.ndarray:
    """Fill datacenters in preference order up to a utilization target, or up to the common level when the
    forecast does not fit under the target (`common_level`); the plan [M, O, D].

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
    level = max(target, common_level(pred, cap, used))
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
            take = min(left, max(0.0, level - used[d]) * cap[d, m])
            if take > 0:
                plan[m, o, d] += take
                used[d] += take / cap[d, m]
                left -= take
            if left <= 0:
                break
        if left > 0:  # what no datacenter has room for (rounding, or models only some host): the best one
            plan[m, o, best] += left
    return plan / plan.sum(axis=2, keepdims=True)


@dataclass(frozen=True)
class FillParams(HeadroomParams):
    """The fill target's head-room (`schedulers.feasibility.Headroom`): the shared head-room parameters."""


class FillScheduler(Scheduler):
    """Fill the best datacenter for one objective up to the fill target, then the next (see module doc).

    Subclasses write `rank`; `fill-ttft` also orders the rows by their best latency (`row_order`). The fill
    target follows the forecast's observed error (`learn_error`, `target`).
    """

    Params = FillParams

    def setup(self) -> None:
        self.headroom = Headroom(self.params)  # the forecast's observed error -> the fill target

    @property
    def error_var(self) -> float:
        return self.headroom.error_var

    @property
    def planned(self):
        return self.headroom.planned

    @property
    def planned_epoch(self):
        return self.headroom.planned_epoch

    def target(self) -> float:
        """The fill target for the forecast error seen so far (`feasibility.headroom_target`)."""
        return self.headroom.target()

    def learn_error(self, last: EpochResult | None) -> None:
        """Fold the finished epoch's forecast error into the head-room (`feasibility.Headroom.learn`)."""
        self.headroom.learn(last)

    def rank(self, obs: Observation) -> np.ndarray:
        """[O, D] datacenters of each origin, best first."""
        raise NotImplementedError

    def row_order(self, obs: Observation) -> list:
        """(model, origin) rows in the order they are placed (default: model-major index order)."""
        m_n, o_n, _ = self.info.plan_shape
        return [(m, o) for m in range(m_n) for o in range(o_n)]

    def same_order_for_all(self, score: np.ndarray) -> np.ndarray:
        """[O, D] the ascending order of a per-site score (ties: lowest index), for every origin."""
        return np.tile(np.argsort(score, kind="stable"), (self.info.dcs, 1))

    def plan(self, obs: Observation) -> np.ndarray:
        self.learn_error(obs.last)
        pred = np.asarray(obs.predicted_requests, dtype=float)
        plan = fill_plan(pred, self.rank(obs), self.info.capacity.requests_per_epoch, self.target(), obs.queued,
                         self.row_order(obs))
        plan = least_latency_routing(plan, pred, self.info.latency_s)  # the same loads, each origin to its nearest
        self.headroom.record(plan, pred, obs.epoch)
        return plan


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
        return self.same_order_for_all(obs.carbon_kg_per_it_kwh)


class FillWater(FillScheduler):
    """Lowest water (evaporative + blowdown + grid water) per kWh of IT energy first."""

    def rank(self, obs: Observation) -> np.ndarray:
        return self.same_order_for_all(obs.water_l_per_it_kwh)


class FillCost(FillScheduler):
    """Lowest electricity cost (time-of-use price x total energy with cooling) per kWh of IT energy first."""

    def rank(self, obs: Observation) -> np.ndarray:
        return self.same_order_for_all(obs.cost_usd_per_it_kwh)
