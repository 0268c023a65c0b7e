"""The shared feasibility toolkit: head-room, the capacity projection and the bounded learning signal. Every
scheduler that plans against capacity or learns from Simulate's scores uses these, each in its own method's way
(its docstring says which and why); this module owns them so a fix lands once.

API (stable: other modules and branches build on these names and signatures)

Head-room (what `fill-*` introduced, now shared):

- `headroom_target(peak_to_mean, error_z, error_sd) -> float`: the utilization a datacenter is planned up to,
  1 / (peak_to_mean x (1 + error_z x error_sd)): its busiest burst (one `cohort_bin_s` bin, 10 s) must fit its
  capacity when the epoch brings 1 + error_z x error_sd times the forecast.
- `forecast_error(planned [D], arrived [D]) -> float | None`: ||arrived - planned|| / ||planned||.
- `HeadroomParams`: the `fill_*` parameters (peak-to-mean prior 1.25, burst z 2, burst EWMA alpha 0.25, error z
  2, error prior 0.1, error EWMA alpha 0.25). Scheduler parameter dataclasses extend it (`FillParams`,
  `EvaluatorParams`, `PerLLMParams`), so every scheduler's head-room is set by the same names and recorded in its
  config.json.
- `Headroom(params)`: what one scheduler has observed of the world's within-epoch burstiness and of its own
  plans' forecast error. `learn(last: EpochResult | None)` folds the finished epoch's burstiness
  (`EpochResult.peak_to_mean`, the busiest bin's arrivals over the epoch's mean per bin) into an EWMA of its mean
  and variance, and its arrivals against what was planned for it into an EWMA of the squared forecast error;
  `peak_to_mean() -> float` is the burst planned for, mean + `fill_burst_z` standard deviations;
  `record(plan [M, O, D], pred [M, O], epoch)` remembers what this epoch's plan sends each datacenter;
  `target() -> float` is `headroom_target` at the current burst and error; attributes `error_var`,
  `burst_mean`, `burst_var`, `planned`, `planned_epoch`.
- `least_latency_routing(plan [M, O, D], pred [M, O], latency [O, D]) -> [M, O, D]`: the same requests per
  (model, datacenter) as `plan`, each origin's share sent to the nearest datacenters that can take it (a
  transportation LP per model, HiGHS): carbon, water, cost and utilization are those of `plan`, the network
  latency the least they allow.

Capacity:

- `planned_utilization(plans [B, M, O, D] | [M, O, D], requests [M, O], capacity [D, M], queued [D] | None)
  -> [B, D] | [D]`: each datacenter's utilization (`simcore.capacity.datacenter_utilization`) of the requests
  a plan sends it plus the requests already waiting there (in the requests' model mix).
- `fleet_utilization(requests [M, O], capacity [D, M], queued [D] | None) -> float`: the utilization every
  datacenter would have with each model's requests spread in proportion to capacity (the highest, counting the
  backlog): the least any plan can reach, so a ceiling below it is unattainable.
- `project_to_capacity(plans, requests, capacity, target, queued=None)`: plans repaired so no datacenter is
  planned above `target` (pass `Headroom.target()` for the head-room-aware ceiling); where the whole fleet's load
  exceeds the target, every datacenter is brought to the fleet's own utilization. A plan within the target is
  returned unchanged. (`schedulers.common.capacity_feasible` is this function under its former name.)

Bounded learning signal (docs/model.md 'Objective'):

- `compress_metrics(norm [B, 4], clip) -> [B, 4]`: metrics normalised by the uniform plan's (1.0 = as uniform)
  kept as they are up to 1 and log-scaled above, 1 + ln(min(x, clip)), so no term exceeds
  `metric_cap(clip)` = 1 + ln(clip) (3.30 at the default clip 10): a plan 3e6 times worse than uniform on TTFT
  scores 3.30 on that term, not 3e6, and the other three terms still count.
- `sla_score(base [B], sla_rate [B], params) -> [B]`: the score a learner minimises: base (the weighted sum of
  compressed metrics with weights summing to 1, so 0 <= base <= metric_cap) plus, when the plan's SLA-violation
  share exceeds `reward_sla_setpoint`, metric_cap + reward_eco_weight + reward_sla_penalty x the excess. Every
  SLA-violating plan therefore scores above every plan that meets the SLA.
- `bounded_reward(base, ema, parked_share, sla_rate, params) -> [B]`: the reward of section 5.2,
  r = EMA + ECO + metric - penalty = (ema - s) + reward_eco_weight x parked_share - s with s = `sla_score`
  (the EMA term 0 while `ema` is None). Since 2 (s_violating - s_feasible) > reward_eco_weight >= the ECO
  difference, a plan violating the SLA never gets a higher reward than one meeting it in the same state.
- `update_ema(ema, score, decay)`: the running mean behind the EMA term. Learners feed it the *incumbent's*
  `sla_score` (the plan they executed, scored in the new state; the uniform plan before any), so the EMA term
  is the improvement over what they would do anyway and starts there, not at the mean of all candidates.
- `sla_score` and `bounded_reward` read `reward_norm_clip`, `reward_sla_setpoint`, `reward_sla_penalty` (> 0)
  and `reward_eco_weight` from the params object they are given (`schedulers.common.EvaluatorParams` declares
  them). `schedulers.common.EvaluatorScheduler.score_plans` returns compressed metrics and this reward;
  `plan_scores` returns `sla_score`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simcore.params import Parameters, param


# --- head-room ---------------------------------------------------------------------------------------------------
def headroom_target(peak_to_mean: float, error_z: float, error_sd: float) -> float:
    """Utilization a datacenter is planned up to: its busiest burst (`peak_to_mean` x the epoch's mean rate) must
    still fit its capacity when the epoch brings 1 + error_z x error_sd times the forecast.

    :param peak_to_mean: busiest bin's arrival rate over the epoch's mean (>= 1)
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


@dataclass(frozen=True)
class HeadroomParams(Parameters):
    """The head-room every capacity-aware scheduler leaves (`headroom_target`, `Headroom`)."""

    fill_peak_to_mean: float = param(1.25, "fill: the busiest bin's arrival rate over its epoch's mean assumed "
                                     "before any epoch has been observed; from then on the head-room plans for the "
                                     "observed burstiness (`fill_burst_z`, docs/model.md 'Head-room')", lo=1)
    fill_burst_z: float = param(2.0, "fill: burst head-room, in standard deviations of the observed busiest-bin "
                                "ratio (its running mean + this x its running standard deviation; bundled Azure "
                                "code day, 10-s bins: covers 90 % of epochs)", lo=0)
    fill_burst_ewma_alpha: float = param(0.25, "fill: weight of the newest epoch's busiest-bin ratio in the running "
                                         "estimate of its mean and variance", lo=0, lo_open=True, hi=1)
    fill_error_z: float = param(2.0, "fill: forecast head-room, in standard deviations of the observed relative "
                                "forecast error (1 + this x error)", lo=0)
    fill_error_prior: float = param(0.1, "fill: relative forecast error (standard deviation) assumed before any "
                                    "epoch has been observed", lo=0)
    fill_error_ewma_alpha: float = param(0.25, "fill: weight of the newest epoch's squared forecast error in the "
                                         "running estimate of its variance", lo=0, lo_open=True, hi=1)


class Headroom:
    """The observed within-epoch burstiness, the observed relative forecast error of one scheduler's plans, and the
    head-room target they imply.

    :param params: a HeadroomParams (or a dataclass extending it)
    """

    def __init__(self, params: HeadroomParams) -> None:
        self.params = params
        self.error_var = params.fill_error_prior ** 2  # running mean of the squared relative error
        self.burst_mean = params.fill_peak_to_mean  # running mean of the busiest bin's ratio to its epoch's mean
        self.burst_var = 0.0  # its running variance
        self.burst_epoch = None  # the last epoch whose burstiness was folded in
        self.planned = None  # [D] requests the last plan sent to each datacenter (plan x forecast)
        self.planned_epoch = None

    def peak_to_mean(self) -> float:
        """The burst planned for: the running mean of the busiest bin's ratio + `fill_burst_z` standard deviations
        (at least 1)."""
        return max(1.0, self.burst_mean + self.params.fill_burst_z * float(np.sqrt(self.burst_var)))

    def target(self) -> float:
        """The head-room target for the burstiness and forecast error seen so far (`headroom_target`)."""
        p = self.params
        return headroom_target(self.peak_to_mean(), p.fill_error_z, float(np.sqrt(self.error_var)))

    def learn(self, last) -> None:
        """Fold the finished epoch's burstiness (any epoch, once) and forecast error (its arrivals against the plan
        recorded for it; a result of another epoch than the one recorded teaches nothing) into the running
        estimates."""
        if last is None:
            return
        burst = getattr(last, "peak_to_mean", None)
        if burst is not None and last.epoch != self.burst_epoch:
            a, dev = self.params.fill_burst_ewma_alpha, float(burst) - self.burst_mean
            self.burst_mean += a * dev  # the EWMA of the mean and of the variance about it
            self.burst_var = (1.0 - a) * (self.burst_var + a * dev * dev)
            self.burst_epoch = last.epoch
        if self.planned is None or last.epoch != self.planned_epoch:
            return
        e = forecast_error(self.planned, last.requests)
        if e is not None:
            a = self.params.fill_error_ewma_alpha
            self.error_var = (1.0 - a) * self.error_var + a * e * e

    def record(self, plan: np.ndarray, pred: np.ndarray, epoch: int) -> None:
        """Remember the requests this epoch's plan [M, O, D] sends each datacenter for the forecast [M, O]."""
        self.planned = np.einsum("mod,mo->d", plan, np.asarray(pred, dtype=float))
        self.planned_epoch = epoch


LATENCY_GAIN_TOL = 1e-9  # relative latency gain below which a plan's own routing is kept (LP ties, rounding)


def least_latency_routing(plan: np.ndarray, pred: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """The plan [M, O, D] that sends each datacenter the same requests of each model as `plan` does for the forecast
    `pred` [M, O], with each origin's requests going to the datacenters nearest it (least total one-way `latency`
    [O, D] x requests): per model, a transportation LP (HiGHS) from the origins' forecasts to the datacenters'
    planned loads. What a plan costs in energy, carbon, water and money and the utilization it sets depend on the
    per-datacenter loads only, so this changes its network latency alone. Rows with nothing forecast keep `plan`'s,
    and a model whose routing is already the nearest keeps it (the LP's ties are not taken).
    """
    from scipy.optimize import linprog

    plan = np.asarray(plan, dtype=float)
    pred = np.asarray(pred, dtype=float)
    lat = np.asarray(latency, dtype=float)
    M, O, D = plan.shape
    out = plan.copy()
    for m in range(M):
        rows = pred[m] > 0
        if rows.sum() < 2:
            continue  # one origin (or none): nothing to exchange
        supply = pred[m, rows]  # [o] requests of each origin
        load = (plan[m, rows] * supply[:, None]).sum(axis=0)  # [D] requests the plan sends each datacenter
        o = len(supply)
        a_eq = np.vstack([np.kron(np.eye(o), np.ones(D)), np.kron(np.ones(o), np.eye(D))])  # rows, then columns
        scale = supply.sum()
        res = linprog(lat[rows].ravel(), A_eq=a_eq, b_eq=np.r_[supply, load] / scale, bounds=(0, None),
                      method="highs")
        own = float((lat[rows] * plan[m, rows] * supply[:, None]).sum()) / scale
        if res.status != 0 or res.fun >= own * (1.0 - LATENCY_GAIN_TOL):
            continue  # the plan's own routing is already the nearest (ties keep it)
        x = np.maximum(res.x.reshape(o, D), 0.0)
        out[m, rows] = x / np.maximum(x.sum(axis=1, keepdims=True), 1e-300)
    return out


# --- capacity ----------------------------------------------------------------------------------------------------
def _mix(req: np.ndarray) -> np.ndarray:
    per_model = req.sum(axis=1)
    total = per_model.sum()
    return per_model / total if total > 0 else np.full(len(per_model), 1.0 / len(per_model))


def _waiting(queued, req: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """[D] utilization the requests already waiting commit, in the requests' model mix."""
    from simcore.capacity import datacenter_utilization

    if queued is None:
        return np.zeros(cap.shape[0])
    return datacenter_utilization(np.asarray(queued, dtype=float)[:, None] * _mix(req)[None, :] * (cap > 0), cap)


def _as_batch(plans, requests, capacity, copy: bool = False) -> tuple:
    """(plans as a float batch [B, M, O, D], whether one plan [M, O, D] was given, requests, capacity) as floats;
    `copy` for a caller that changes the plans in place."""
    p = (np.array if copy else np.asarray)(plans, dtype=float)
    one = p.ndim == 3
    return (p[None] if one else p), one, np.asarray(requests, dtype=float), np.asarray(capacity, dtype=float)


def planned_utilization(plans: np.ndarray, requests: np.ndarray, capacity: np.ndarray,
                        queued: np.ndarray | None = None) -> np.ndarray:
    """[B, D] (or [D] for one plan [M, O, D]) utilization each datacenter is planned to: the requests the plan
    sends it over its capacity for their model (summed over models), plus what is already waiting there."""
    p, one, req, cap = _as_batch(plans, requests, capacity)
    unit = req[None, :, :, None] / np.where(cap > 0, cap, np.inf).T[None, :, None, :]  # [1, M, O, D]
    load = _waiting(queued, req, cap)[None] + (p * unit).sum(axis=(1, 2))
    return load[0] if one else load


def fleet_utilization(requests: np.ndarray, capacity: np.ndarray, queued: np.ndarray | None = None) -> float:
    """The highest datacenter utilization when each model's requests are spread in proportion to the
    datacenters' capacity for it (on top of their backlog): the whole fleet's own load."""
    cap = np.asarray(capacity, dtype=float)
    proportional = (cap / np.maximum(cap.sum(axis=0, keepdims=True), 1e-300)).T[:, None, :]  # [M, 1, D]
    req = np.asarray(requests, dtype=float)
    return float(planned_utilization(np.broadcast_to(proportional, req.shape + (cap.shape[0],)), req, cap,
                                     queued).max())


def project_to_capacity(plans: np.ndarray, requests: np.ndarray, capacity: np.ndarray, target: float,
                        queued: np.ndarray | None = None) -> np.ndarray:
    """Plans [B, M, O, D] (or one [M, O, D]) repaired so that no datacenter is planned above `target` of its
    serving capacity: the capacity constraint of the paper's problem (section 4: "given resource constraints"),
    which its Algorithm 2 line 11 projects the consensus onto. With `target` = `Headroom.target()` the ceiling
    leaves the head-room of the forecast's observed error and within-epoch peaks.

    A datacenter's utilization is `planned_utilization`. Where it exceeds the target, every row's share of it is
    scaled down to fit, and each row's removed share goes to the datacenters with room, in proportion to their
    room (so one pass fills none of them past the target where the datacenters are of one size; a few passes
    settle the rest). A model's share at a datacenter that cannot host it is moved the same way. Where the whole
    fleet's load exceeds the target, the target becomes that load: the plan then keeps every datacenter at the
    fleet's own utilization. A plan within the target is returned unchanged.

    :param requests: [M, O] requests the plan routes (the forecast)
    :param capacity: [D, M] requests per epoch of each datacenter if all its hosting nodes served model m
        (`Capacity.requests_per_epoch`)
    :param target: the highest planned utilization of a datacenter (share of its capacity)
    :param queued: [D] requests already waiting in each datacenter (None: none)
    """
    p, one, req, cap = _as_batch(plans, requests, capacity, copy=True)
    D = cap.shape[0]
    hosted = (cap > 0).T[None, :, None, :]  # [1, M, 1, D]
    per_model = req.sum(axis=1)  # [M]
    waiting = _waiting(queued, req, cap)  # [D]
    # the fleet's own utilization if every model's requests were spread in proportion to capacity
    fleet = waiting.mean() + (per_model / np.maximum(cap.sum(axis=0), 1e-300)).sum()
    top = max(target, fleet)
    unit = req[None, :, :, None] / np.where(cap > 0, cap, np.inf).T[None, :, None, :]  # [1, M, O, D] per share
    spread = np.where(hosted, cap.T[None, :, None, :], 0.0)
    spread = spread / np.maximum(spread.sum(axis=-1, keepdims=True), 1e-300)  # fallback: capacity-proportional
    tol = 1e-9
    for _ in range(D + 1):  # each pass leaves at least one more datacenter at the target
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


# --- the bounded learning signal -----------------------------------------------------------------------------------
def metric_cap(clip: float) -> float:
    """The largest value a compressed normalised metric takes (`compress_metrics`): 1 + ln(clip)."""
    return 1.0 + float(np.log(clip))


def compress_metrics(norm: np.ndarray, clip: float) -> np.ndarray:
    """Normalised metrics (1.0 = the uniform plan's) bounded: x up to 1, 1 + ln(min(x, clip)) above, so the scale
    is unchanged where plans are comparable to uniform, monotone everywhere below `clip`, and no term exceeds
    `metric_cap(clip)`."""
    x = np.asarray(norm, dtype=float)
    return np.where(x <= 1.0, x, 1.0 + np.log(np.clip(x, 1.0, clip)))


def sla_score(base: np.ndarray, sla_rate: np.ndarray, params) -> np.ndarray:
    """The bounded score (lower is better) of plans whose weighted compressed metrics are `base` (weights
    summing to 1, so base <= metric_cap) and whose SLA-violation share is `sla_rate`: base, plus
    metric_cap + reward_eco_weight + reward_sla_penalty x (sla_rate - reward_sla_setpoint) where that excess is
    positive. Any plan over the set point thus scores above every plan within it."""
    base = np.asarray(base, dtype=float)
    over = np.asarray(sla_rate, dtype=float) - params.reward_sla_setpoint
    step = metric_cap(params.reward_norm_clip) + params.reward_eco_weight + params.reward_sla_penalty * over
    return base + np.where(over > 0, step, 0.0)


def bounded_reward(base: np.ndarray, ema: float | None, parked_share: np.ndarray, sla_rate: np.ndarray,
                   params) -> np.ndarray:
    """Section 5.2: r = EMA + ECO + metric - penalty = (ema - s) + reward_eco_weight x parked_share - s, with
    s = `sla_score` (the penalty is inside s; the EMA term is 0 while `ema` is None)."""
    s = sla_score(base, sla_rate, params)
    ema_term = 0.0 if ema is None else ema - s
    return ema_term + params.reward_eco_weight * np.asarray(parked_share, dtype=float) - s


def update_ema(ema: float | None, score: float, decay: float) -> float:
    """The running mean behind the EMA term, started at the first score it is given (the incumbent's)."""
    return float(score) if ema is None else decay * ema + (1.0 - decay) * float(score)
