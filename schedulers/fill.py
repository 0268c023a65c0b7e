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
- the fill target leaves head-room for what the forecast cannot see (`fill_target`):

      target = 1 / (fill_peak_to_mean x (1 + fill_error_z x sigma))

  * within the epoch, arrivals are not flat: the busiest minute brings `fill_peak_to_mean` (1.25) times the
    epoch's mean rate, and a datacenter whose busiest minute exceeds its capacity queues past the SLA;
  * the epoch's arrivals are not the forecast: sigma is the forecast's observed relative error, the error of
    each finished epoch's per-datacenter arrivals (`obs.last.requests`) against the loads this scheduler
    planned for it (plan x forecast), ||arrived - planned|| / ||planned|| (`forecast_error`), averaged as an
    exponentially weighted mean of its square (`fill_error_ewma_alpha`), starting from `fill_error_prior`;
    `fill_error_z` standard deviations of it are held free. The target drops after an epoch the forecast
    missed and rises back as it hits again;
- overflow: when the forecast does not fit under the target everywhere, every datacenter is filled to the
  common level the forecast needs (its utilization if spread in proportion to capacity, on top of what each
  already holds, `common_level`), so no site runs hotter than the others while they all have to run hot;
  demand a datacenter cannot host goes to the row's best datacenter;
- rows without forecast (epoch 0, or a (model, origin) pair that forecasts nothing) go entirely to the row's
  best datacenter.

Cold starts (a site that gets more work than last epoch loads weights onto new nodes) get no head-room of their
own: on the default day they cost < 0.1 point of SLA violations (docs/model.md 'Fill references').

Capacity is `StaticInfo.capacity.requests_per_epoch` [D, M], computed once per run by the engine; these
schedulers never recompute it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simcore.interface import EpochResult, Observation, Scheduler
from simcore.params import Parameters, param


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


def fill_target(peak_to_mean: float, error_z: float, error_sd: float) -> float:
    """Utilization a datacenter is filled to: its busiest minute (`peak_to_mean` x the epoch's mean rate) must
    still fit its capacity when the epoch brings 1 + error_z x error_sd times the forecast.

    :param peak_to_mean: busiest minute's arrival rate over the epoch's mean (>= 1)
    :param error_z: standard deviations of forecast error held free
    :param error_sd: the forecast's relative error (standard deviation, `forecast_error`)
    """
    return 1.0 / (peak_to_mean * (1.0 + error_z * error_sd))


def forecast_error(planned: np.ndarray, arrived: np.ndarray) -> float | None:
    """Relative error of an epoch's per-datacenter arrivals against the loads planned for them,
    ||arrived - planned|| / ||planned|| (|r - 1| when every datacenter got r times its plan); None when nothing
    was planned."""
    planned = np.asarray(planned, dtype=float)
    norm = float(np.linalg.norm(planned))
    if norm <= 0:
        return None
    return float(np.linalg.norm(np.asarray(arrived, dtype=float) - planned)) / norm


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
class FillParams(Parameters):
    """The fill target's head-room (`fill_target`, `FillScheduler.learn_error`)."""

    fill_peak_to_mean: float = param(1.25, "fill: the busiest minute's arrival rate over its epoch's mean that a "
                                     "filled datacenter must still serve (bundled Azure code day: median 1.16, 90th "
                                     "percentile 1.26 over its 96 epochs); the fill target is 1 / (this x forecast "
                                     "head-room)", lo=1)
    fill_error_z: float = param(2.0, "fill: forecast head-room, in standard deviations of the observed relative "
                                "forecast error (1 + this x error)", lo=0)
    fill_error_prior: float = param(0.1, "fill: relative forecast error (standard deviation) assumed before any "
                                    "epoch has been observed", lo=0)
    fill_error_ewma_alpha: float = param(0.25, "fill: weight of the newest epoch's squared forecast error in the "
                                         "running estimate of its variance", lo=0, lo_open=True, hi=1)


class FillScheduler(Scheduler):
    """Fill the best datacenter for one objective up to the fill target, then the next (see module doc).

    Subclasses write `rank`; `fill-ttft` also orders the rows by their best latency (`row_order`). The fill
    target follows the forecast's observed error (`learn_error`, `target`).
    """

    Params = FillParams

    def setup(self) -> None:
        self.error_var = self.params.fill_error_prior ** 2  # running mean of the squared relative error
        self.planned = None  # [D] requests the last plan sent to each datacenter (plan x forecast)
        self.planned_epoch = None

    def target(self) -> float:
        """The fill target for the forecast error seen so far (`fill_target`)."""
        p = self.params
        return fill_target(p.fill_peak_to_mean, p.fill_error_z, float(np.sqrt(self.error_var)))

    def learn_error(self, last: EpochResult | None) -> None:
        """Fold the finished epoch's forecast error (its arrivals against this scheduler's plan for it) into the
        running mean of the squared error."""
        if last is None or self.planned is None or last.epoch != self.planned_epoch:
            return
        e = forecast_error(self.planned, last.requests)
        if e is not None:
            a = self.params.fill_error_ewma_alpha
            self.error_var = (1.0 - a) * self.error_var + a * e * e

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
        self.planned = np.einsum("mod,mo->d", plan, pred)
        self.planned_epoch = obs.epoch
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
