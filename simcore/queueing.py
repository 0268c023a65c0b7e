"""Queueing closed forms shared by the event engine's cohort pools and the epoch evaluator (docs/model.md
'Cohorts', 'Epoch evaluator').

- `fluid_segment`: a FIFO fluid queue over one segment of constant arrival and drain rates (the deterministic
  backlog of an overloaded pool or datacenter);
- `segment_waits`: the exact FIFO waits of a segment of arrivals, from the cumulative arrival and departure
  curves (the engine's cohort pools, whose capacity changes after requests arrive);
- `stationary_wait`: the stochastic M/G/c queueing wait below saturation, which a fluid leaves out;
- `transient_wait`: the same queue's wait over one bin that starts empty (heavy-traffic diffusion), which bounds
  the stationary wait near saturation, where the stationary state takes far longer than a bin to reach
  (`pool_queueing_wait` combines the two);
- `prefill_queue_wait`: the wait of a prompt for the prefill passes queued before it at its node (M/G/1), which
  the pooled M/G/c wait leaves out: a continuous-batching node prefills one prompt at a time;
- `bin_rate_profile`: how a workload's arrival rate spreads over the engine's bins within an epoch (the
  evaluator's within-epoch burstiness);
- `arrival_peak_to_mean`: how bursty one epoch's arrivals were over the same bins (what every scheduler's
  head-room learns, `EpochResult.peak_to_mean`);
- `BurstTable`: the wait for a batch slot of a pool whose arrivals follow the workload's own per-second sequence
  (the evaluator's queueing near saturation in exact runs).

`fluid_segment` works on Python floats and on numpy arrays alike (elementwise).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, log_ndtr, ndtr
from scipy.stats import poisson

TRANSIENT_NODES = 8  # Gauss-Legendre points over a bin at which `transient_wait` reads the diffusion
TRANSIENT_RELAXED = 50.0  # (mu - lam)^2 T / sigma^2 above this: the bin's queue has relaxed (`pool_queueing_wait`)
PROFILE_QUANTILES = 8  # equally weighted quantiles of the requests' bin rates in `bin_rate_profile`
PREFILL_BUSY_MAX = 0.99  # a node's prefill passes busy at most this share in `prefill_queue_wait` (rho < 1 there)
BURST_STEP_S = 1.0  # `BurstTable`: the exact engine plays each request; its pools queue in bursts of seconds
BURST_MIN_ARRIVALS = 100  # `burst_step_s`: arrivals a step holds at least (Poisson noise within 10 % of them)
BURST_EPOCHS = 8  # `BurstTable` plays the busiest complete epochs of the workload (where queueing matters)
BURST_RHO = np.linspace(0.0, 2.0, 81)  # `BurstTable`: pool utilizations tabulated
BURST_Z_S = np.concatenate([[0.0], np.geomspace(1e-3, 1e4, 57)])  # `BurstTable`: wait thresholds tabulated, s
BURST_FROM_STEPS = 8  # `BurstTable`: the fluid restarted empty at k / 8 of the epoch (a pool busy until then)


class _Scalar:
    """numpy's elementwise operations for plain floats (the engine's per-pool calls; numpy on scalars is ~10x
    slower), so each closed form below is written once for floats and arrays alike."""

    minimum, maximum = staticmethod(min), staticmethod(max)

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    @staticmethod
    def clip(x, lo, hi):
        return min(max(x, lo), hi)


def _ops(*values):
    """`_Scalar` when every value is a Python float or int, else numpy."""
    return _Scalar if all(isinstance(v, (int, float)) for v in values) else np


def _share_positive(c0, c1, length):
    """Length of the x in [0, length] where c0 + c1 x > 0 (elementwise)."""
    xp = _ops(c0, c1, length)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = xp.clip(xp.where(c1 != 0, -c0 / xp.where(c1 != 0, c1, 1.0), 0.0), 0.0, length)
    return xp.where(c1 > 0, length - x, xp.where(c1 < 0, x, xp.where(c0 > 0, length, 0.0)))


def fluid_segment(backlog, lam, mu, length, wait_limit_s):
    """A FIFO fluid queue over `length` seconds: arrivals at `lam`/s, drained at `mu`/s (> 0), `backlog` waiting
    at the start. A request arriving at x waits W(x) / mu with W(x) = max(0, backlog + (lam - mu) x).

    :returns: (backlog at the end, summed wait of the lam x length arrivals, how many of them wait > wait_limit_s)
    """
    xp = _ops(backlog, lam, mu, length, wait_limit_s)
    k = lam - mu
    with np.errstate(divide="ignore", invalid="ignore"):
        drains = xp.minimum(length, backlog / -xp.where(k < 0, k, -1.0))
    x0 = xp.where(k >= 0, length, drains)
    area = backlog * x0 + 0.5 * k * x0 * x0
    end = xp.maximum(0.0, backlog + k * length)
    late = xp.where(wait_limit_s <= 0, length, _share_positive(backlog - wait_limit_s * mu, k, length))
    return end, lam * area / mu, lam * late


_MIDPOINTS: dict = {}  # samples -> the midpoints (k + 0.5) / samples, made once (`segment_waits` runs per bin)
_KNOTS: dict = {}  # knots -> their evenly spaced fractions of a segment, made once (`segment_waits`)


def slot_fill_s(in_service: float, steady: float, slots: float, service_s: float) -> float:
    """How long until a pool's batch slots are full: requests in service X follow dX/dt = lam - X / T_s (each slot
    served in T_s, arrivals lam admitted while a slot is free), from X = `in_service` towards `steady` = lam T_s;
    they reach `slots` after T_s ln((steady - X) / (steady - slots)), never when steady <= slots (a pool whose
    arrivals it serves without filling its slots). The cohort pools' buffer against bursts (docs/model.md
    'Cohorts').

    :returns: seconds (math.inf if never)
    """
    if steady <= slots:
        return math.inf
    if in_service >= slots:
        return 0.0
    return service_s * math.log((steady - in_service) / (steady - slots))


def segment_waits(a0: float, a1: float, t0: float, t1: float, curve_t, curve_d, share: float,
                  samples: int, arrivals=None) -> np.ndarray:
    """Waits in a FIFO fluid queue read off its cumulative curves: a segment of arrivals over [t0, t1] occupies
    positions [a0, a1] of the arrival curve A(t), at a constant rate, or with `arrivals` the values of A at
    len(arrivals) evenly spaced times from t0 to t1 (a0 first, a1 last; A linear between them); the departure
    curve D(t) is piecewise linear through (curve_t, curve_d), strictly increasing in D. The real request at
    position x waits D^-1(x) - A^-1(x), exact whatever the capacity did after it arrived; read at `samples`
    evenly spaced positions (midpoints) of the segment's first `share`.

    :returns: [samples] waits (s)
    """
    mid = _MIDPOINTS.get(samples)
    if mid is None:
        mid = _MIDPOINTS[samples] = (np.arange(samples) + 0.5) / samples
    frac = mid * share
    x = a0 + frac * (a1 - a0)
    depart = np.interp(x, curve_d, curve_t)
    if arrivals is None:
        return np.maximum(depart - (t0 + frac * (t1 - t0)), 0.0)
    knots = _KNOTS.get(len(arrivals))
    if knots is None:
        knots = _KNOTS[len(arrivals)] = np.linspace(0.0, 1.0, len(arrivals))
    arrive = np.interp(x, arrivals, t0 + knots * (t1 - t0))
    return np.maximum(depart - arrive, 0.0)


def stationary_wait(lam, mu, slots, scv, limit_s):
    """Mean queueing wait and the share waiting longer than `limit_s` of an M/G/c queue (elementwise): arrivals at
    `lam`/s, `slots` = c servers (a node's batch slots summed over the pool) draining `mu`/s together, service
    times with squared coefficient of variation `scv`. Erlang C (M/M/c, from the Erlang B formula written with the
    Poisson distribution so it is stable for thousands of slots) with the Allen-Cunneen factor (1 + scv) / 2:

        P_wait = B / (1 - rho (1 - B)),  B = Poisson(c; a) / PoissonCDF(c; a),  a = c lam / mu,  rho = lam / mu
        W = P_wait / (mu - lam) x (1 + scv) / 2,   P(wait > t) = P_wait exp(-(mu - lam) t x 2 / (1 + scv))

    Where lam >= mu the queue has no stationary state: (inf, 1) (the fluid backlog handles overload).
    """
    lam, mu, slots, scv, limit_s = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in
                                                         (lam, mu, slots, scv, limit_s)))
    wait = np.full(lam.shape, np.inf)
    late = np.ones(lam.shape)
    ok = (lam < mu) & (mu > 0)
    wait[lam <= 0] = 0.0
    late[lam <= 0] = 0.0
    ok &= lam > 0
    if ok.any():
        c = np.maximum(np.round(slots[ok]), 1.0)
        rho = lam[ok] / mu[ok]
        a = c * rho
        b = poisson.pmf(c, a) / np.maximum(poisson.cdf(c, a), 1e-300)
        p_wait = b / (1.0 - rho * (1.0 - b))
        k = (1.0 + scv[ok]) / 2.0
        gap = mu[ok] - lam[ok]
        wait[ok] = p_wait / gap * k
        late[ok] = p_wait * np.exp(-gap * np.maximum(limit_s[ok], 0.0) / k)
    return wait, late


_GL_U, _GL_W = np.polynomial.legendre.leggauss(TRANSIENT_NODES)
_GL_U, _GL_W = 0.5 * (_GL_U + 1.0), 0.5 * _GL_W  # on [0, 1]
_PHI0 = 1.0 / math.sqrt(2.0 * math.pi)


def transient_wait(lam, mu, scv, length_s, limit_s):
    """Mean queueing wait and the share waiting longer than `limit_s` of requests arriving uniformly over
    `length_s` at an M/G/c queue that starts the interval empty with its servers busy (elementwise), in the
    heavy-traffic limit: the queue is a Brownian motion X with drift theta = lam - mu and variance rate
    sigma^2 = lam + mu scv (Poisson arrivals, departures of SCV `scv` while all servers are busy) reflected at 0,
    so Q(t) has the law of max_{s <= t} X(s) and, with z = theta sqrt(t) / sigma,

        E Q(t) = sigma sqrt(t) phi(z) + theta t Phi(z) + sigma^2 / (2 theta) (2 Phi(z) - 1)
        P(Q(t) > x) = Phi^c((x - theta t) / (sigma sqrt(t))) + exp(2 theta x / sigma^2) Phi^c((x + theta t) / (sigma sqrt(t)))

    (reflection principle; E Q(t) -> sigma^2 / (2 (mu - lam)) as t grows, the Allen-Cunneen wait with P_wait = 1,
    and sigma sqrt(2 t / pi) at lam = mu). An arrival at t waits Q(t) / mu; both are averaged over t in
    [0, length_s] (Gauss-Legendre in sqrt(t)). Defined on both sides of saturation and continuous through it.

    :returns: (mean wait, s; share waiting > limit_s)
    """
    lam, mu, scv, length_s, limit_s = (np.asarray(x, dtype=float)[..., None] for x in
                                       (lam, mu, scv, length_s, limit_s))
    t = length_s * _GL_U ** 2  # t = T u^2: the sqrt(t) behaviour at 0 becomes smooth in u
    w = 2.0 * _GL_U * _GL_W  # dt / T = 2 u du
    theta = lam - mu
    sigma = np.sqrt(np.maximum(lam + mu * scv, 1e-300))
    st = sigma * np.sqrt(t)
    z = theta * np.sqrt(t) / sigma
    small = np.abs(z) < 1e-8
    half_erf = np.where(small, _PHI0, erf(z / math.sqrt(2.0)) / (2.0 * np.where(small, 1.0, z)))
    queue = st * np.exp(-0.5 * z * z) * _PHI0 + theta * t * ndtr(z) + st * half_erf
    x = np.maximum(limit_s, 0.0) * mu
    late = ndtr(-(x - theta * t) / st) + np.exp(2.0 * theta * x / sigma ** 2 + log_ndtr(-(x + theta * t) / st))
    mu_ = np.maximum(mu[..., 0], 1e-300)
    return (queue * w).sum(axis=-1) / mu_, np.clip((late * w).sum(axis=-1), 0.0, 1.0)


def pool_queueing_wait(lam, mu, slots, scv, limit_s, bin_s):
    """The stochastic queueing wait of a pool over one bin it starts without backlog (elementwise; the engine's
    cohort pools and the evaluator's alike): the M/G/c stationary wait (`stationary_wait`), bounded by what the
    queue can build within the bin (`transient_wait`) where the stationary state would take longer to reach
    (near saturation); at or past saturation only the bound applies. The late share is the smaller likewise.
    The bound is computed at or past saturation and where the queue relaxes slowly, (mu - lam)^2 bin_s / (lam + mu scv) <
    TRANSIENT_RELAXED: beyond, the transient mean is within a few % of the diffusion's stationary mean
    (1 + scv) / (2 (mu - lam)), above the M/G/c wait whenever its P_wait is below ~0.8, which it is there.

    :returns: (mean wait, s; share waiting > limit_s)
    """
    w, late = stationary_wait(lam, mu, slots, scv, limit_s)
    lam, mu, scv, limit_s = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (lam, mu, scv, limit_s)))
    near = (lam >= mu) | ((mu - lam) ** 2 * bin_s < TRANSIENT_RELAXED * np.maximum(lam + mu * scv, 1e-300))
    if near.any():
        w_t, late_t = transient_wait(lam[near], mu[near], scv[near], bin_s, limit_s[near])
        w[near], late[near] = np.minimum(w[near], w_t), np.minimum(late[near], late_t)
    return w, late


def prefill_queue_wait(rho, prefill_mean_s, prefill_m2_s2, gpu_s, share, limit_s, arrival_scv=1.0):
    """A prompt's wait for the prefill passes queued before it at its node, averaged over node types (elementwise
    over the leading axes; the node-type axis is the last of the per-type arrays).

    A continuous-batching node runs one prefill pass at a time and gives it the GPU before decode steps
    (docs/model.md 'Exact mode'), so its prompts queue as an M/G/1 queue of prefill passes (Pollaczek-Khinchine):
    a node of type t at the pool's utilization rho takes lam_t = rho / gpu_s[t] requests/s (the weighted balancer
    keeps every node at the pool's utilization), its prefill pass is busy rho_t = lam_t E[P_t] of the time and a
    prompt waits W_t = lam_t E[P_t^2] / (2 (1 - rho_t)); P(wait > x) ~ rho_t exp(-x rho_t / W_t) (the
    exponential tail with the exact mean and P(wait > 0) = rho_t). With `arrival_scv` c_a^2 < 1 (the exact
    balancer's round-robin deals a node every k-th request of its pool: c_a^2 ~ 1 / k) the wait is Kingman's
    GI/G/1 correction of it, W_t (c_a^2 + c_s^2) / (1 + c_s^2), c_s^2 the prefill time's SCV.

    :param rho: the pools' utilizations (lam / mu), below 1
    :param prefill_mean_s, prefill_m2_s2: [..., T] mean and second moment of a prompt's prefill time (0: none)
    :param gpu_s: [..., T] GPU time of a request at full batch, 1 / node_rps
    :param share: [..., T] share of the pool's requests a node type takes (sums to 1)
    :param limit_s: the wait above which a request is late (broadcast with rho)
    :param arrival_scv: SCV of a node's interarrival times (broadcast with rho; 1: Poisson, Pollaczek-Khinchine)
    :returns: (mean wait, s; share waiting longer than limit_s), rho's shape
    """
    rho = np.asarray(rho, dtype=float)[..., None]
    lam = rho / np.maximum(gpu_s, 1e-300)
    busy = np.minimum(lam * prefill_mean_s, PREFILL_BUSY_MAX)
    w = lam * prefill_m2_s2 / (2.0 * (1.0 - busy))
    if not np.all(np.asarray(arrival_scv) == 1.0):
        scv_s = np.maximum(prefill_m2_s2 / np.maximum(prefill_mean_s ** 2, 1e-300) - 1.0, 0.0)
        w = w * (np.asarray(arrival_scv, dtype=float)[..., None] + scv_s) / (1.0 + scv_s)
    x = np.asarray(limit_s, dtype=float)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        late = np.where(w > 0, busy * np.exp(-np.maximum(x, 0.0) * busy / np.maximum(w, 1e-300)), 0.0)
    return (share * w).sum(axis=-1), (share * late).sum(axis=-1)


def bins_per_epoch(epoch_s: float, cohort_bin_s: float) -> int:
    """The equal bins an epoch is played in (the engine's cohort pools, the evaluator's in-bin waits, the rate
    profile): round(epoch_s / cohort_bin_s), at least one; each bin lasts epoch_s / that."""
    return max(1, int(round(epoch_s / cohort_bin_s)))


def bin_rate_profile(arrival_s: np.ndarray, epoch_s: float, bin_s: float, horizon_s: float) -> np.ndarray:
    """How a workload's arrivals spread over the engine's bins within their epochs (docs/model.md 'Epoch
    evaluator'): a bin's arrival count over its epoch's mean count per bin, as the requests see it (weighted by
    the bin's count), at the midpoints of PROFILE_QUANTILES equally weighted quantiles; over the complete epochs
    before `horizon_s` that hold arrivals (all epochs with arrivals if none is complete).

    :returns: [PROFILE_QUANTILES] non-decreasing ratios (all 1 without arrivals)
    """
    t = np.asarray(arrival_s, dtype=float)
    if len(t) == 0:
        return np.ones(PROFILE_QUANTILES)
    per_epoch = bins_per_epoch(epoch_s, bin_s)
    epochs = int(t.max() // epoch_s) + 1
    counts = np.bincount((t // (epoch_s / per_epoch)).astype(np.int64), minlength=epochs * per_epoch)
    counts = counts[:epochs * per_epoch].reshape(epochs, per_epoch).astype(float)
    complete = int(horizon_s // epoch_s + 1e-9)
    if 0 < complete < epochs:
        counts = counts[:complete]
    counts = counts[counts.sum(axis=1) > 0]
    ratio, weight = (counts / counts.mean(axis=1, keepdims=True)).ravel(), counts.ravel()
    order = np.argsort(ratio, kind="stable")
    ratio, weight = ratio[order], weight[order]
    cdf = (np.cumsum(weight) - 0.5 * weight) / weight.sum()
    return np.interp((np.arange(PROFILE_QUANTILES) + 0.5) / PROFILE_QUANTILES, cdf, ratio)


def arrival_peak_to_mean(arrival_s: np.ndarray, start_s: float, epoch_s: float, bin_s: float) -> float | None:
    """How bursty an epoch's arrivals were: the busiest of its equal bins (`bins_per_epoch`, the length the cohort
    pools are played in) over the epoch's mean count per bin; None when nothing arrived.

    :param arrival_s: [n] arrival times within [start_s, start_s + epoch_s), s
    """
    t = np.asarray(arrival_s, dtype=float)
    if len(t) == 0:
        return None
    n = bins_per_epoch(epoch_s, bin_s)
    k = np.clip(((t - start_s) * (n / epoch_s)).astype(np.int64), 0, n - 1)
    counts = np.bincount(k, minlength=n)
    return float(counts.max() * n / len(t))


def _flat_stop_loss(rho, z, length_s):
    """E[(W - z)+] over arrivals uniform in [0, length_s] of a fluid at utilization rho that starts empty:
    W(t) = (rho - 1)+ t (`BurstTable`'s flat reference)."""
    slope = np.maximum(rho - 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(slope > 0, np.maximum(length_s - z / np.where(slope > 0, slope, 1.0), 0.0), 0.0)
    return 0.5 * slope * over * over / length_s


class BurstTable:
    """How long requests wait for a batch slot in a pool whose arrivals follow the workload's own sequence within
    its epochs (docs/model.md 'Epoch evaluator'), as a function of the pool's mean utilization rho and its free
    batch slots.

    The arrivals per `step_s` of the workload's busiest complete epochs (`BURST_EPOCHS`), each over its epoch's
    mean, times rho, drive a fluid at capacity that starts the epoch empty: W(t + h) = max(0, W(t) + (rho r(t) -
    1) h), the work waiting in seconds of the pool's capacity (scale-free: the same for every pool at rho). A pool
    holds the excess in its free batch slots before anyone waits: at rho its nodes run rho x its slots, so a
    request waits (W - b)+ with b = S (1 - rho), S = slots / mu the time a full pool takes to turn its slots over
    (`slot_buffer_s`). Tabulated once over `BURST_RHO` x `BURST_Z_S`: the stop-loss E[(W - z)+] and the share
    P(W > z) over the requests (each step's two ends, weighted by its arrivals); read by linear interpolation.
    A pool busy with a backlog until a fraction `start` of the epoch meets only the bursts after it: the same
    tables of the fluid restarted empty at k / BURST_FROM_STEPS of the epoch (over the arrivals from then on),
    built when first read, interpolated in `start`.
    """

    def __init__(self, counts: np.ndarray, step_s: float) -> None:
        r = np.asarray(counts, dtype=float)
        r = r / np.maximum(r.mean(axis=1, keepdims=True), 1e-300)  # [E, K]
        E, K = r.shape
        self.step_s, self.length_s = float(step_s), K * step_s
        self._r = r
        W, self.stop_loss, self.survival = self._tables(r, step_s)
        self.peak_s = W.max(axis=2).mean(axis=1)  # [R] an epoch's largest wait, averaged over the epochs
        self.end_s = W[:, :, -1].copy()  # [R, E] each epoch's wait at its end (work it leaves to the next)
        self._from = {0: (self.stop_loss, self.survival)}  # start step -> tables of the fluid restarted there

    @staticmethod
    def _tables(r: np.ndarray, step_s: float) -> tuple:
        """(W [R, E, K + 1] the fluid's wait at each step end, stop-loss [R, Z], survival [R, Z]) of rate ratios
        r [E, K] from an empty start."""
        E, K = r.shape
        rho = BURST_RHO[:, None]
        W = np.zeros((len(BURST_RHO), E, K + 1))
        w = np.zeros((len(BURST_RHO), E))
        for k in range(K):
            w = np.maximum(0.0, w + (rho * r[:, k] - 1.0) * step_s)
            W[:, :, k + 1] = w
        vals = np.concatenate([W[:, :, :-1], W[:, :, 1:]], axis=2).reshape(len(BURST_RHO), -1)
        weight = np.concatenate([r, r], axis=1).ravel()
        weight = weight / weight.sum()
        order = np.argsort(vals, axis=1, kind="stable")
        v = np.take_along_axis(vals, order, axis=1)
        wt = weight[order]
        # tail sums from each sorted position: share above and weighted sum above
        tail_w = np.cumsum(wt[:, ::-1], axis=1)[:, ::-1]
        tail_vw = np.cumsum((wt * v)[:, ::-1], axis=1)[:, ::-1]
        tail_w = np.concatenate([tail_w, np.zeros((len(BURST_RHO), 1))], axis=1)
        tail_vw = np.concatenate([tail_vw, np.zeros((len(BURST_RHO), 1))], axis=1)
        pos = np.stack([np.searchsorted(row, BURST_Z_S, side="right") for row in v])  # first value above z
        above = np.take_along_axis(tail_w, pos, axis=1)
        return W, np.take_along_axis(tail_vw, pos, axis=1) - BURST_Z_S * above, above  # [R, Z] each

    def _from_step(self, j: int) -> tuple:
        """(stop-loss, survival, length s) of the fluid restarted empty at j / BURST_FROM_STEPS of the epoch
        (None at the end: no arrivals after it)."""
        K = self._r.shape[1]
        k0 = int(round(j * K / BURST_FROM_STEPS))
        if k0 >= K:
            return None
        if j not in self._from:
            self._from[j] = self._tables(self._r[:, k0:], self.step_s)[1:]
        return (*self._from[j], (K - k0) * self.step_s)

    def _by_start(self, value, start, *arrays) -> np.ndarray:
        """`value(tables, *arrays)` read at each element's `start` (fraction of the epoch the pool is busy before
        its bursts count; None: 0), linear between the tabulated restarts, 0 at the epoch's end."""
        arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in arrays))
        if start is None:
            return value(self._from_step(0), *arrays)
        fr = np.broadcast_to(np.clip(np.asarray(start, dtype=float), 0.0, 1.0) * BURST_FROM_STEPS, arrays[0].shape)
        j = np.minimum(fr.astype(np.int64), BURST_FROM_STEPS - 1)
        a = fr - j
        out = np.zeros(arrays[0].shape)
        for jj in np.unique(j):
            sel = j == jj
            part = [x[sel] for x in arrays]
            lo, hi = self._from_step(int(jj)), self._from_step(int(jj) + 1)
            v_hi = value(hi, *part) if hi is not None else 0.0
            out[sel] = value(lo, *part) * (1.0 - a[sel]) + v_hi * a[sel]
        return out

    @classmethod
    def from_arrivals(cls, arrival_s: np.ndarray, epoch_s: float, horizon_s: float,
                      work: np.ndarray | None = None) -> "BurstTable":
        """The table of a workload's arrival times (trace seconds), in steps of `burst_step_s`; with `work` (each
        arrival's GPU time over the mean, where known) the steps carry the work that arrives, not the count."""
        step = burst_step_s(arrival_s, epoch_s, horizon_s)
        return cls(burst_counts(arrival_s, epoch_s, step, horizon_s, BURST_EPOCHS, work), step)

    @staticmethod
    def _rho_bracket(rho: np.ndarray) -> tuple:
        """(i, a): rho lies between the tabulated BURST_RHO[i] and BURST_RHO[i + 1], a fraction a of the way (clipped
        to the table's range; BURST_RHO is evenly spaced from 0)."""
        fr = np.clip(rho, BURST_RHO[0], BURST_RHO[-1]) / (BURST_RHO[1] - BURST_RHO[0])
        i = np.minimum(fr.astype(np.int64), len(BURST_RHO) - 2)
        return i, fr - i

    def _read(self, table: np.ndarray, rho, z) -> np.ndarray:
        rho, z = np.broadcast_arrays(np.asarray(rho, dtype=float), np.asarray(z, dtype=float))
        i, a = self._rho_bracket(rho)
        zc = np.clip(z, 0.0, BURST_Z_S[-1])
        j = np.clip(np.searchsorted(BURST_Z_S, zc, side="right") - 1, 0, len(BURST_Z_S) - 2)
        z0, z1 = BURST_Z_S[j], BURST_Z_S[j + 1]
        c = (zc - z0) / (z1 - z0)
        lo = table[i, j] * (1.0 - c) + table[i, j + 1] * c
        hi = table[i + 1, j] * (1.0 - c) + table[i + 1, j + 1] * c
        return lo * (1.0 - a) + hi * a

    @staticmethod
    def slot_buffer_s(rho, slots, mu) -> np.ndarray:
        """b = S (1 - rho), S = slots / mu: the seconds of the pool's capacity its free slots hold at rho."""
        return np.asarray(slots, dtype=float) / np.maximum(mu, 1e-300) * np.maximum(1.0 - np.asarray(rho), 0.0)

    def overflow_s(self, rho, buffer_s) -> np.ndarray:
        """The largest excess over the buffer in an epoch, (max_t W(t) - b)+, in seconds of the pool's capacity
        (mean over the epochs): the work that finds every slot taken at the epoch's worst burst."""
        rho = np.asarray(rho, dtype=float)
        return np.maximum(np.interp(rho, BURST_RHO, self.peak_s) - np.asarray(buffer_s, dtype=float), 0.0)

    def carry_s(self, rho, buffer_s) -> np.ndarray:
        """The work left waiting at the epoch's end, (W(end) - b)+ in seconds of the pool's capacity (mean over
        the epochs; linear in rho between the tabulated utilizations): what a burst late in the epoch leaves to
        the next one, beyond the slots' buffer (its requests are admitted, and their GPU time counted, then)."""
        rho, b = np.broadcast_arrays(np.asarray(rho, dtype=float), np.asarray(buffer_s, dtype=float))
        i, a = self._rho_bracket(rho)
        a = a[..., None]
        end = self.end_s[i] * (1.0 - a) + self.end_s[i + 1] * a  # [..., E]
        return np.maximum(end - b[..., None], 0.0).mean(axis=-1)

    def excess_wait(self, rho, buffer_s, start=None) -> np.ndarray:
        """Mean wait for a slot beyond a flat fluid's at the same rho (`fluid_segment` holds that part), s, of the
        requests after `start` (fraction of the epoch; None: 0) in a pool whose bursts count from then on."""
        def value(t, rho, b):
            return np.maximum(self._read(t[0], rho, b) - _flat_stop_loss(rho, b, t[2]), 0.0)
        return self._by_start(value, start, rho, buffer_s)

    def late_share(self, rho, buffer_s, limit_s, start=None) -> np.ndarray:
        """Share of the requests (after `start`, as `excess_wait`) whose wait for a slot exceeds limit_s."""
        def value(t, rho, z):
            return np.clip(self._read(t[1], rho, z), 0.0, 1.0)
        return self._by_start(value, start, rho, np.asarray(buffer_s) + np.maximum(limit_s, 0.0))


def burst_step_s(arrival_s: np.ndarray, epoch_s: float, horizon_s: float) -> float:
    """The step a workload's bursts are read in: BURST_STEP_S, or longer where its busiest epochs hold fewer than
    BURST_MIN_ARRIVALS per step (a fluid of a few requests per step would read their Poisson noise as bursts: a
    thin trace is played in steps that each hold that many), a whole divisor of the epoch."""
    counts = burst_counts(arrival_s, epoch_s, epoch_s, horizon_s, BURST_EPOCHS)  # [E, 1] arrivals per epoch
    steps = int(np.clip(counts.mean() // BURST_MIN_ARRIVALS, 1, max(1, round(epoch_s / BURST_STEP_S))))
    return epoch_s / steps


def burst_counts(arrival_s: np.ndarray, epoch_s: float, step_s: float, horizon_s: float, epochs: int,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """The arrivals per `step_s` of the `epochs` busiest complete epochs before `horizon_s` ([E, K], in time
    order; all epochs with arrivals if none is complete; one flat epoch without arrivals); with `weights`, each
    arrival counts its weight."""
    t = np.asarray(arrival_s, dtype=float)
    per_epoch = max(1, int(round(epoch_s / step_s)))
    if len(t) == 0:
        return np.ones((1, per_epoch))
    n_epochs = int(t.max() // epoch_s) + 1
    idx = np.minimum((t % epoch_s) // (epoch_s / per_epoch), per_epoch - 1).astype(np.int64)
    counts = np.bincount((t // epoch_s).astype(np.int64) * per_epoch + idx, weights=weights,
                         minlength=n_epochs * per_epoch)
    counts = counts[:n_epochs * per_epoch].reshape(n_epochs, per_epoch).astype(float)
    complete = int(horizon_s // epoch_s + 1e-9)
    if 0 < complete < n_epochs:
        counts = counts[:complete]
    counts = counts[counts.sum(axis=1) > 0]
    busiest = np.argsort(-counts.sum(axis=1), kind="stable")[:epochs]
    return counts[np.sort(busiest)]
