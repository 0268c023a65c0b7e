"""The fast epoch evaluator: the paper's Simulate(State_e, a) (Algorithm 1 line 7, Algorithm 2 line 19).

Scores a batch of candidate plans [B, model, origin, datacenter] for one epoch at once, vectorized over plans
(no Python loop over plans or requests), with the same physics functions as the event engine (Eq. 1-10 live in
`simcore.physics` only) and the same serving capacity (`simcore.capacity`), in closed form:

- warm set: as the engine, the nodes whose capacity covers plan x forecast at `warm_target_utilization`
  (at least `min_warm_nodes`), the large model first; demand beyond the warm set draws in cold nodes;
- capacity binds: each datacenter is a FIFO fluid queue (`simcore.queueing.fluid_segment`, the engine's cohort
  pools' closed form) that drains work at its full capacity behind what already waits (`queued`); it gives the
  mean wait and the share waiting past the SLA; below saturation each model's pool adds the M/G/c wait
  (`stationary_wait`) as the engine's cohort pools do;
- exact runs (`exact`): the exact engine plays every request of the trace, whose per-second bursts fill a pool's
  batch slots near saturation: each pool adds the wait for a slot in the workload's own per-second sequence
  (`queueing.BurstTable`, beyond the flat fluid's) and its node's prefill-queue wait at the per-second rates
  (round-robin arrivals, Kingman), in place of the cohort pools' M/G/c wait; a pool spills to the fewest nodes
  after which its worst burst no longer fills its batch slots; a node spilled in joins the balancer's rotation
  with one turn and stays (the warm set takes rotation / (rotation + spilled) of the requests); what a burst late
  in the epoch leaves waiting at its end (`BurstTable.carry_s`) is served, and counted, in the next epoch; a pool
  that mixes memory-limited nodes with others serves as the engine's per-request KV admission sorts it
  (`Capacity.sorted_rps`: its rate when saturated; its slots and spills stay at B*);
- a pool that starts with a backlog meets only the bursts after its drain (`BurstTable` restarted there);
- agreement checks (rung 3) may feed an epoch's truth: its own arrivals' bursts (`EpochState.arrival_s`, each
  arrival weighted by its work, `arrival_work`) and token mix per node type (`EpochState.work_scale`), and ask for
  the TTFT of the requests served by the epoch's end only (`served_by_end`); a scheduler never has them;
- cold starts: a newly warm node loads its model from the epoch start, so requests reaching it in the first
  LA_load seconds wait (mean LA_load^2 / (2 t_e) per request, SLA violated when the wait exceeds the SLA);
- p-states (Eq. 4-5): a pool's warm nodes at their utilization, its spilled nodes at the overflow's, as the engine's
  balancer spreads the work (`simcore.cohorts.balancer_shares`); the rest parked;
- TTFT per request = 2 x LA_net (Eq. 2) + first-token compute at full batch (Eq. 3) + the waits above.

Deterministic: no randomness at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simcore import physics
from simcore.config import Config
from simcore.cohorts import SPILL_DRAIN_S
from simcore.exact import wrr_weight
from simcore.queueing import (BurstTable, bin_rate_profile, bins_per_epoch, fluid_segment,
                              pool_queueing_wait, prefill_queue_wait)

SPILL_NODES_MAX = 16  # exact runs: most nodes a pool's per-second bursts spill to (`EpochEvaluator._burst_spill`)
HALFIN_WHITT_NEGLIGIBLE = 6.0  # sqrt(slots) x (1 - rho) above this: the queueing wait is negligible


def _prefix(x: np.ndarray) -> np.ndarray:
    """[M, N + 1] prefix sums of x [M, N] along the node order, from 0: a range of nodes [a, b) sums to
    out[:, b] - out[:, a]."""
    x = np.asarray(x)
    return np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)


def _wrr_range_sums(rps: np.ndarray) -> np.ndarray:
    """[N + 1, N + 1]: entry [a, b] the exact balancer's rotation length over a warm set of nodes [a, b) along the
    node order, the sum of the balancer weights (`exact.wrr_weight`) of the nodes that serve the model (rps > 0; 0
    if none)."""
    rps = np.asarray(rps, dtype=float)
    N = len(rps)
    out = np.zeros((N + 1, N + 1))
    for a in range(N):
        r = rps[a:]
        ok = r > 0
        low = np.minimum.accumulate(np.where(ok, r, np.inf))  # [b - a] the slowest node of [a, b]
        w = np.where(ok[None, :], wrr_weight(r[None, :], low[:, None]), 0.0)
        w = np.where(np.tri(len(r), dtype=bool), w, 0.0)  # node j counts in [a, a + i] for j <= i
        out[a, a + 1:] = w.sum(axis=1)
    return out


@dataclass(frozen=True)
class EpochState:
    """What Simulate needs about one epoch.

    :param predicted: [M, O] forecast requests (sizes the warm set, as in the engine)
    :param requests: [M, O] requests to score (the forecast at decision time; the truth in agreement tests)
    :param ci_kg_per_kwh, gi_l_per_kwh, tou_usd_per_kwh, cop: [D] site signals of the epoch
    :param resident_nodes: [D, M] nodes already holding each model (None: the warm set is already loaded)
    :param queued: [D] real requests already waiting in each datacenter (None: none)
    :param queued_by_model: [D, M] the same by model (None: `queued` in the plan's model mix)
    :param arrival_s: the epoch's own arrival times (s, any origin; None: not known). Only an agreement check that
        feeds the truth gives them (`reports/validate.py` rung 3): an exact evaluation then reads the bursts of
        this epoch rather than the workload's busiest epochs'. A scheduler never has them (they are the epoch's
        arrivals).
    :param work_scale: [M] the epoch's own mean GPU time per request over the workload's
        (`EpochEvaluator.epoch_truth`; None: 1). Likewise only an agreement check's truth: a real epoch's token mix
        is a few % heavier or lighter than the workload's, which moves a node near a p-state limit across it.
    :param arrival_work: with `arrival_s`, each arrival's work (`EpochEvaluator.epoch_truth`; None: 1 each). Likewise
        the truth only: the bursts then carry the work that arrives, so a heavier stretch of the epoch weighs more.
    :param served_by_end: exact runs: the TTFT figures count only the requests whose first token comes before the
        epoch's end (in each pool's fluid, the arrivals before (mu t_e - backlog) / lam), the quantity an engine run
        that ends with the epoch (no drain) reports for its last epoch; else (default) every request the epoch
        scores, its wait counted in full as if the capacity persisted. Only an agreement check sets it.
    """

    predicted: np.ndarray
    requests: np.ndarray
    ci_kg_per_kwh: np.ndarray
    gi_l_per_kwh: np.ndarray
    tou_usd_per_kwh: np.ndarray
    cop: np.ndarray
    resident_nodes: np.ndarray | None = None
    queued: np.ndarray | None = None
    queued_by_model: np.ndarray | None = None
    arrival_s: np.ndarray | None = None
    work_scale: np.ndarray | None = None
    arrival_work: np.ndarray | None = None
    served_by_end: bool = False

    @classmethod
    def from_observation(cls, obs, requests: np.ndarray | None = None, arrival_s: np.ndarray | None = None,
                         work_scale: np.ndarray | None = None,
                         arrival_work: np.ndarray | None = None) -> "EpochState":
        """The state a scheduler sees at an epoch start (requests default to the forecast). At epoch 0 the service
        was already running (`Engine._preload`: the first warm set starts loaded, no cold start), so whatever
        warm set a plan asks for is resident (`resident_nodes` None), though no node holds a model yet."""
        pred = obs.predicted_requests
        resident = None if obs.epoch == 0 else obs.resident_nodes
        return cls(pred, pred if requests is None else requests, obs.ci_kg_per_kwh, obs.gi_l_per_kwh,
                   obs.tou_usd_per_kwh, obs.cop, resident, obs.queued, obs.queued_by_model, arrival_s,
                   work_scale, arrival_work)


@dataclass(frozen=True)
class Evaluation:
    """Per-plan estimates ([B] arrays; per-datacenter ones [B, D])."""

    ttft_total_s: np.ndarray
    ttft_mean_s: np.ndarray
    carbon_kg: np.ndarray
    water_l: np.ndarray
    cost_usd: np.ndarray
    energy_kwh: np.ndarray
    sla_violations: np.ndarray
    parked_share: np.ndarray
    dc_energy_kwh: np.ndarray
    dc_requests: np.ndarray
    embodied_attributable_kg: np.ndarray | None = None  # [B] embodied carbon of the nodes each plan keeps serving

    @property
    def metrics(self) -> np.ndarray:
        """[B, 4]: total TTFT (s, Eq. 3), carbon (kg, Eq. 10), water (L, Eq. 8), cost (USD, Eq. 7)."""
        return np.stack([self.ttft_total_s, self.carbon_kg, self.water_l, self.cost_usd], axis=1)

    def objective_metrics(self, k: int = 4) -> np.ndarray:
        """[B, k]: the first k of (TTFT, carbon, water, cost, attributable embodied carbon kg), the order of
        `Config.objectives` (k = 5 with objective_embodied)."""
        if k == 4:
            return self.metrics
        return np.concatenate([self.metrics, self.embodied_attributable_kg[:, None]], axis=1)[:, :k]


class EpochEvaluator:
    """Simulate(State_e, a) over a batch of plans.

    :param cfg: the run's Config
    :param latency_s: [O, D] one-way network latency (Eq. 2)
    :param fleet: `simcore.capacity.Fleet`
    :param profiles: `simcore.profiles.Profiles`
    :param prompt_tokens, output_tokens: a sample of the workload's token pairs (mean service times)
    :param capacity: `simcore.capacity.Capacity` of the run (`StaticInfo.capacity`)
    :param rate_profile: the workload's bin rates over their epoch's mean (`simcore.queueing.bin_rate_profile`,
        `StaticInfo.rate_profile`); None: every bin at the epoch's mean rate
    :param arrival_s: the workload's arrival times (trace seconds), for an exact run's bursts (None: none)
    :param exact: score plans as the exact engine plays them (`cohort_size` 1), else as its cohort pools do
    """

    def __init__(self, cfg: Config, latency_s: np.ndarray, fleet, profiles, prompt_tokens: np.ndarray,
                 output_tokens: np.ndarray, capacity, rate_profile=None, arrival_s: np.ndarray | None = None,
                 exact: bool = False) -> None:
        self.cfg, self.lat = cfg, np.asarray(latency_s, dtype=float)
        self.exact = bool(exact)
        self._arrival_s = None if arrival_s is None else np.asarray(arrival_s, dtype=float)
        self._burst = None  # (BurstTable, per-second rate profile, BurstTable of counts), at the first exact evaluation
        N, M = cfg.nodes_per_dc, len(cfg.model_weights_gb)
        self.cap = capacity
        types = fleet.node_type[:N]
        T = len(fleet.node_types)
        count_t = np.bincount(types, minlength=T).astype(float)
        hosts = np.asarray(profiles.hosts, dtype=bool)  # [M, T]
        self.cum_tdp_w = np.concatenate([[0.0], np.cumsum(fleet.tdp_w[:N])])
        # embodied carbon attributable to serving: the nodes before a plan's last pool end serve (warm or busy), so
        # a prefix sum over the node order gives each plan's share (`physics.embodied_carbon_kg`, one epoch)
        self.cum_embodied_kg = physics.embodied_carbon_kg(
            np.concatenate([[0.0], np.cumsum(fleet.embodied_kg[:N])]), cfg.epoch_s / 3600.0, cfg.service_life_years)
        share = hosts * count_t[None, :] * self.cap.node_rps
        self.type_share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)  # [M, T] of requests

        keep = np.asarray(output_tokens) > 0
        p = np.asarray(prompt_tokens)[keep].astype(float)
        o = np.asarray(output_tokens)[keep].astype(float)
        m_idx = np.arange(M)[:, None, None]
        t_idx = np.arange(T)[None, :, None]
        b = np.maximum(self.cap.batch, 1)[:, :, None]
        prefill = profiles.prefill_s_array(m_idx, t_idx, p[None, None, :])  # [M, T, S]
        step = profiles.decode_step_s[m_idx, t_idx, b]
        first = physics.first_token_compute_s(cfg.ttft_model, prefill + o * step, o, prefill, step)
        self.first_token_s = (self.type_share * first.mean(axis=2)).sum(axis=1)  # [M]
        # a prompt's wait for its node's earlier prefill passes (`queueing.prefill_queue_wait`), per [M, T]
        self.prefill_moments = (prefill.mean(axis=2), (prefill ** 2).mean(axis=2),
                                np.where(self.cap.node_rps > 0, 1.0 / np.maximum(self.cap.node_rps, 1e-300), 0.0))
        self._profiles = profiles
        self.load_s = fleet.load_s  # [M, T]
        L = self.load_s
        self.cold_wait_s = (self.type_share * L ** 2).sum(axis=1) / (2.0 * cfg.epoch_s)  # [M] per request
        self.cold_late = (self.type_share * np.maximum(0.0, L - cfg.sla_ttft_s)).sum(axis=1) / cfg.epoch_s  # [M]
        # the engine places pools along the datacenter's node order (the large model's warm set first, then the
        # next, then spills): prefix sums over that order of each model's node throughput (real requests/s),
        # batch slots and throughput-weighted service SCV, so a pool of nodes [a, b) has exactly its nodes' figures
        rps = hosts[:, types] * self.cap.node_rps[:, types]  # [M, N] (0 where the node cannot host the model)
        self.pre_rps = _prefix(rps)  # [M, N + 1]
        self.pre_hosts = _prefix(rps > 0)
        self.pre_slots = _prefix(hosts[:, types] * self.cap.batch[:, types])
        self.pre_scv = _prefix(rps * self.cap.service_scv[:, types])
        # exact runs: a memory-limited node in a pool with a node memory does not limit serves the small requests,
        # more at once (`capacity.sorted_admission`): what it adds then, and how many such other nodes a range has
        gain = hosts[:, types] * (self.cap.sorted_rps[:, types] - self.cap.node_rps[:, types]) * self.exact
        unlimited = hosts[:, types] & ~self.cap.memory_limited[:, types]
        self.rps, self.gain, self.node_types = rps, gain, types  # [M, N], [M, N], [N]
        self.pre_gain = _prefix(gain)  # [M, N + 1]
        self.pre_unlimited = _prefix(unlimited)
        self.wrr_sum = np.stack([_wrr_range_sums(r) for r in rps]) if self.exact else None  # [M, N + 1, N + 1]
        self.bin_s = cfg.epoch_s / bins_per_epoch(cfg.epoch_s, cfg.cohort_bin_s)  # the engine's cohort bins
        self.rate_profile = np.ones(1) if rate_profile is None else np.asarray(rate_profile, dtype=float)
        if self.rate_profile.ndim != 1 or not len(self.rate_profile) or (self.rate_profile < 0).any():
            raise ValueError(f"rate_profile: non-negative bin-rate ratios expected, got {rate_profile!r}")

    def _type_work(self, model: np.ndarray, prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
        """[len, T] each request's GPU time at full batch (`Profiles.gpu_s_array`, what the engine's utilization
        counts) on each node type over its model's mean there on the workload sample (1 / node_rps); 0 where the
        type does not serve the model or the request has no output tokens."""
        model = np.asarray(model)
        p_all, o_all = np.asarray(prompt_tokens, dtype=float), np.asarray(output_tokens, dtype=float)
        M, T = self.type_share.shape
        work = np.zeros((len(model), T))
        for m in range(M):
            sel = (model == m) & (o_all > 0)
            for t in range(T):
                if sel.any() and self.cap.node_rps[m, t] > 0:
                    work[sel, t] = self.cap.node_rps[m, t] * self._profiles.gpu_s_array(
                        m, t, p_all[sel], o_all[sel], int(self.cap.batch[m, t]))
        return work

    def epoch_truth(self, model: np.ndarray, prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> tuple:
        """An epoch's token mix, as rung 3 feeds it (`EpochState.work_scale`, `EpochState.arrival_work`), from one
        pass over its requests' GPU times (`_type_work`):

        - work_scale [M, T]: the requests' mean GPU time on each node type over the workload sample's, by model (1
          for a model without requests or a type that does not serve it);
        - arrival_work [n]: each request's GPU time over the mean request's, averaged over the node types as its
          model's requests spread (`type_share`)."""
        model = np.asarray(model)
        work = self._type_work(model, prompt_tokens, output_tokens)
        served = np.asarray(output_tokens) > 0
        scale = np.ones(self.type_share.shape)
        for m in range(len(scale)):
            sel = (model == m) & served
            if sel.any():
                mean = work[sel].mean(axis=0)
                scale[m] = np.where(mean > 0, mean, 1.0)
        return scale, (work * self.type_share[model]).sum(axis=1)

    def _stationary(self, lam, mu, slots, scv, spare, limit) -> tuple:
        """The stochastic queueing wait and late share of each pool ([B, D, M]) below saturation, as the engine's
        cohort pools add it per bin (`simcore.queueing.pool_queueing_wait`: M/G/c, bounded by what a bin can build
        near saturation), averaged over the workload's bin rates (`rate_profile`: the engine's bins are as bursty as
        the trace). A bin whose rate exceeds the pool's capacity spills as the engine's balancer does: nodes join
        for 2 (lam - mu), as far as the datacenter's `spare` capacity (requests/s) reaches. Computed only where the
        wait is not negligible (Halfin-Whitt: sqrt(c) (1 - rho) > HALFIN_WHITT_NEGLIGIBLE gives P_wait < 1e-9 at
        the busiest bin)."""
        wait, late = np.zeros(lam.shape), np.zeros(lam.shape)
        rho = lam / np.maximum(mu, 1e-300)
        peak = rho * self.rate_profile.max()
        live = (lam > 0) & (rho < 1.0) & (np.sqrt(slots) * (1.0 - peak) < HALFIN_WHITT_NEGLIGIBLE)
        if live.any():
            m = np.broadcast_to(np.arange(lam.shape[-1]), lam.shape)[live]
            mu0 = mu[live]
            lam_bin = lam[live] * self.rate_profile[:, None]  # [levels, k]
            mu_bin = np.minimum(np.maximum(mu0, 2.0 * lam_bin - mu0), mu0 + spare[live])
            slots_bin = slots[live] * mu_bin / mu0
            hot = np.sqrt(slots_bin) * (1.0 - lam_bin / mu_bin) < HALFIN_WHITT_NEGLIGIBLE  # the bins that wait
            w, lt = np.zeros(lam_bin.shape), np.zeros(lam_bin.shape)
            pick = lambda x: np.broadcast_to(x, lam_bin.shape)[hot]  # noqa: E731
            w[hot], lt[hot] = pool_queueing_wait(lam_bin[hot], mu_bin[hot], slots_bin[hot], pick(scv[live]),
                                                 pick(limit[m]), self.bin_s)
            wait[live], late[live] = w.mean(axis=0), lt.mean(axis=0)
        return wait, late

    def _burst_model(self, arrival_s: np.ndarray | None = None, work: np.ndarray | None = None) -> tuple:
        """The exact engine's per-second bursts (`queueing.BurstTable` and the per-second rate profile of the
        arrivals): the workload's, built once (a few tenths of a second) at the first evaluation of an exact run,
        or one epoch's own (`EpochState.arrival_s`, an agreement check's truth), built for that evaluation."""
        cfg = self.cfg
        if arrival_s is not None:
            t = np.asarray(arrival_s, dtype=float)
            t = t - np.floor(t.min() / cfg.epoch_s) * cfg.epoch_s if len(t) else t  # one epoch from 0
            table = BurstTable.from_arrivals(t, cfg.epoch_s, cfg.epoch_s, work)
            # a burst takes a batch slot per request whatever its work: the spills read the counts' table
            counts = table if work is None else BurstTable.from_arrivals(t, cfg.epoch_s, cfg.epoch_s)
            return table, bin_rate_profile(t, cfg.epoch_s, table.step_s, cfg.epoch_s), counts
        if self._burst is None:
            t = np.zeros(0) if self._arrival_s is None else self._arrival_s
            table = BurstTable.from_arrivals(t, cfg.epoch_s, cfg.horizon_s)
            self._burst = (table, bin_rate_profile(t, cfg.epoch_s, table.step_s, cfg.horizon_s), table)
        return self._burst

    def _exact_waits(self, burst, lam, mu, rho, buffer_s, nodes, backlog, limit, slack) -> tuple:
        """Each pool's ([B, D, M]) waits in the exact engine below and around saturation: for a batch slot in the
        workload's per-second bursts (`BurstTable`, beyond the flat fluid's wait), and for its node's earlier
        prefill passes at the per-second rates (`queueing.prefill_queue_wait`, a bin past the pool's capacity
        admitting at it; the balancer's round-robin deals a node every k-th request, c_a^2 = 1 / k). A pool that
        starts with a backlog is busy until the backlog drains at mu - lam: bursts before then only move its wait
        about the flat fluid's, so the burst wait counts for the share of the epoch after it, and only the bursts
        after it (`BurstTable` restarted there: the exact engine's code hour at N=12 U=0.5 opens with a burst its
        70B pool meets with a backlog). `rho` = lam / mu and `buffer_s`, the seconds its free slots hold
        (`BurstTable.slot_buffer_s`), are `evaluate`'s."""
        table, profile = burst[:2]
        with np.errstate(divide="ignore", invalid="ignore"):
            drain_s = np.where(backlog > 0, backlog / np.maximum(mu - lam, 0.0), 0.0)
        busy = np.clip(np.nan_to_num(drain_s, nan=np.inf) / self.cfg.epoch_s, 0.0, 1.0)
        after = 1.0 - busy
        w_slot = after * table.excess_wait(rho, buffer_s, busy)
        late_slot = after * table.late_share(rho, buffer_s, slack, busy)
        rho_bin = np.minimum(rho[None] * profile[:, None, None, None], 1.0)  # [levels, B, D, M]
        a, b, g = self.prefill_moments
        w_pf, late_pf = prefill_queue_wait(rho_bin, a, b, g, self.type_share, limit, 1.0 / np.maximum(nodes, 1.0))
        w_pf, late_pf = w_pf.mean(axis=0), late_pf.mean(axis=0)
        return w_slot + w_pf, 1.0 - (1.0 - late_slot) * (1.0 - late_pf)

    def _prefill_wait(self, lam, mu, limit) -> tuple:
        """Each pool's ([B, D, M]) wait for its nodes' earlier prefill passes (`queueing.prefill_queue_wait`, as the
        engine's cohort pools add it), averaged over the workload's bin rates; 0 where the pool is saturated (its
        backlog's fluid wait stands for it)."""
        rho = lam / np.maximum(mu, 1e-300)
        rho_bin = rho[None] * self.rate_profile[:, None, None, None]  # [levels, B, D, M]
        ok = (rho_bin > 0) & (rho_bin < 1.0)
        a, b, g = self.prefill_moments
        w, late = prefill_queue_wait(np.where(ok, rho_bin, 0.0), a, b, g, self.type_share, limit)
        return np.where(ok, w, 0.0).mean(axis=0), np.where(ok, late, 0.0).mean(axis=0)

    def _take(self, m: int, start: np.ndarray, rate: np.ndarray, pre: np.ndarray | None = None) -> np.ndarray:
        """How many nodes from position `start` on the engine's cumulative rule takes for model m: the fewest whose
        summed throughput reaches `rate` (real requests/s; 0 where rate <= 0; past the last node if it never does);
        with `pre`, the same over that prefix sum (the throughput of the epoch's own requests)."""
        pre = self.pre_rps[m] if pre is None else pre
        j = np.searchsorted(pre, pre[start] + rate - 1e-9, side="left")
        return np.where(rate > 0, np.maximum(j - start, 0), 0)

    def _mixed(self, m: int, a, b, start, c, pre_gain: np.ndarray | None = None) -> np.ndarray:
        """What the memory-limited nodes of a pool (model m, nodes [a, b) and [start, c)) add to its throughput
        when the pool also has a node memory does not limit (`capacity.sorted_admission`: the rate of a saturated
        pool, whose queue the nodes sort; what a burst finds, the slots and the spills they set, stays B*'s);
        exact runs only, else 0."""
        def span(pre):
            return pre[b] - pre[a] + pre[c] - pre[start]
        pre_gain = self.pre_gain[m] if pre_gain is None else pre_gain
        return np.where(span(self.pre_unlimited[m]) > 0, span(pre_gain), 0.0)

    def _burst_spill(self, table, m: int, lam: np.ndarray, a: np.ndarray, b: np.ndarray,
                     start: np.ndarray, pre_r: np.ndarray) -> np.ndarray:
        """Exact runs: the nodes from `start` on a pool (model m, warm nodes [a, b)) spills to in the workload's
        per-second bursts. The exact balancer sends a request to the next cold node when every batch slot of the
        pool is taken, and the node stays in the rotation: the fewest nodes (at most SPILL_NODES_MAX) after which
        the epoch's worst burst (`BurstTable.overflow_s`) no longer fills the pool's slots (`pre_r`: the nodes'
        throughput at the epoch's mix, at B*: a burst meets the pool before its queue sorts, `_mixed`)."""
        N = self.cfg.nodes_per_dc
        pre_s = self.pre_slots[m]
        k = np.zeros(start.shape, dtype=np.int64)
        more = np.ones(start.shape, dtype=bool)
        for _ in range(SPILL_NODES_MAX + 1):
            c = np.minimum(start + k, N)
            mu = pre_r[b] - pre_r[a] + pre_r[c] - pre_r[start]
            slots = pre_s[b] - pre_s[a] + pre_s[c] - pre_s[start]
            rho = lam / np.maximum(mu, 1e-300)
            over = table.overflow_s(rho, BurstTable.slot_buffer_s(rho, slots, mu)) * mu  # real requests
            more &= (over >= 1.0) & (c < N) & (lam > 0)
            if not more.any():
                break
            k = k + more
        return np.minimum(k, SPILL_NODES_MAX)

    def _pools(self, P: np.ndarray, lam: np.ndarray, backlog: np.ndarray, burst=None,
               inv_scale: np.ndarray | None = None, resident: np.ndarray | None = None) -> dict:
        """The engine's pools of each plan ([B, D, M] each, node positions [B, D]): warm sets along the node order,
        the large model first (`Engine._set_warm`: nodes whose throughput covers the forecast at the target
        utilization, at least `min_warm_nodes`, the other models' minimum warm sets kept), then spills from the
        free nodes in pool order (`Engine._spill`): a pool whose arrivals outrun its warm capacity, or with a
        backlog, draws nodes for 2 (lam - mu) + backlog / bin, the capacity the balancer reaches after one bin.
        Exact runs: a free node that holds another model's weights (and not this one's) is left to that model's
        pool (`ExactNodes._spill`); `resident` [D, M] counts the nodes holding each model, so max(0, resident -
        warm nodes) of another model's are kept from a pool's spills (**assumption**: they are free nodes, not in
        the other pool's warm set)."""
        cfg, N, t_e = self.cfg, self.cfg.nodes_per_dc, self.cfg.epoch_s
        M = P.shape[-1]
        # what the nodes serve of this epoch's requests (`inv_scale` [M, N]: the workload's mean request over the
        # epoch's on each node's type); the warm sets are sized on the workload's, as the engine sizes them
        pre_mu = self.pre_rps if inv_scale is None else _prefix(self.rps * inv_scale)
        pre_gain = self.pre_gain if inv_scale is None else _prefix(self.gain * inv_scale)
        cap_dc = self.pre_rps[:, N] * t_e  # [M] requests per epoch of a whole datacenter
        target = np.clip((P / cap_dc).sum(axis=2), cfg.warm_target_utilization, 1.0)  # [B, D]
        start = np.zeros(P.shape[:2], dtype=np.int64)
        ranges = [None] * M
        for m in range(M - 1, -1, -1):
            k = self._take(m, start, P[..., m] / (t_e * target))
            k = np.maximum(cfg.min_warm_nodes, np.minimum(k, N - start - cfg.min_warm_nodes * m))
            ranges[m] = [start, start + k]
            start = start + k
        if self.exact and resident is not None:  # free nodes holding each model's weights (left to its spills)
            held = np.maximum(np.asarray(resident, dtype=float)[None] - np.stack(
                [r[1] - r[0] for r in ranges], axis=-1), 0.0)  # [B, D, M]
        else:
            held = np.zeros(P.shape)
        out = {k: np.zeros(P.shape) for k in ("warm", "nodes", "mu", "slots", "scv", "tdp_w", "warm_mu", "warm_tdp_w",
                                              "rotation", "spilled", "mu_base")}
        for m in range(M):
            a, b = ranges[m]
            warm_mu = pre_mu[m][b] - pre_mu[m][a]
            if self.exact:
                # the exact balancer spills when a request finds every batch slot of the pool taken: the nodes
                # the workload's worst burst needs (`_burst_spill`), besides what the mean rate and a backlog need
                want = np.maximum(2.0 * (lam[..., m] - warm_mu), 0.0) + backlog[..., m] / SPILL_DRAIN_S
                # the free nodes that hold another model's weights go to that model's pool first
                # (`ExactNodes._spill`): this pool's bursts do not reach them, its shortfall or backlog may
                kept = np.rint(held.sum(axis=-1) - held[..., m]).astype(np.int64)
                extra = np.maximum(np.minimum(self._burst_spill(burst[2], m, lam[..., m], a, b, start, pre_mu[m]),
                                              np.maximum(N - start - kept, 0)),
                                   np.where((lam[..., m] > warm_mu) | (backlog[..., m] > 0),
                                            self._take(m, start, want, pre_mu[m]), 0))
                extra = np.minimum(extra, N - start)
            else:
                # the cohort pools spill in their busiest bins: the profile's top rate (the mean of the busiest
                # requests' bins)
                peak = lam[..., m] * self.rate_profile.max()
                want = np.maximum(2.0 * (lam[..., m] - warm_mu), peak - warm_mu) \
                    + backlog[..., m] / SPILL_DRAIN_S  # as the engine spills
                want = np.where((peak > warm_mu) | (backlog[..., m] > 0), want, 0.0)
                extra = np.minimum(self._take(m, start, want, pre_mu[m]), N - start)
            c = start + extra
            for key, pre in (("mu", pre_mu[m]), ("slots", self.pre_slots[m]), ("scv", self.pre_scv[m]),
                             ("tdp_w", self.cum_tdp_w)):
                out[key][..., m] = pre[b] - pre[a] + pre[c] - pre[start]
            rps_span = self.pre_rps[m][b] - self.pre_rps[m][a] + self.pre_rps[m][c] - self.pre_rps[m][start]
            out["scv"][..., m] /= np.maximum(rps_span, 1e-300)  # throughput-weighted
            out["mu_base"][..., m] = out["mu"][..., m]
            out["mu"][..., m] += self._mixed(m, a, b, start, c, pre_gain[m])  # served (utilization: at B*)
            out["warm_mu"][..., m] = warm_mu
            out["warm_tdp_w"][..., m] = self.cum_tdp_w[b] - self.cum_tdp_w[a]
            if self.exact:  # the rotation's length over the warm set; each node spilled in joins it once
                out["rotation"][..., m] = self.wrr_sum[m][a, b]
                out["spilled"][..., m] = self.pre_hosts[m][c] - self.pre_hosts[m][start]
            out["warm"][..., m] = b - a
            out["nodes"][..., m] = b - a + extra
            start = c
        out["active"] = start  # [B, D] the nodes before this position serve a pool, the rest are parked
        # what the free nodes could add to each model's pool (requests/s), for in-bin spills
        out["spare"] = pre_mu[:, N] - pre_mu[np.arange(M), start[..., None]]
        return out

    # ------------------------------------------------------------------------------------------------------------
    def evaluate(self, state: EpochState, plans: np.ndarray) -> Evaluation:
        """Score plans [B, M, O, D] (or one plan [M, O, D]) for the epoch `state`."""
        cfg = self.cfg
        plans = np.asarray(plans, dtype=float)
        if plans.ndim == 3:
            plans = plans[None]
        N, t_e = cfg.nodes_per_dc, cfg.epoch_s
        R = np.einsum("bmod,mo->bdm", plans, state.requests)  # requests to score [B, D, M]
        P = np.einsum("bmod,mo->bdm", plans, state.predicted)  # forecast, sizes the warm set
        if state.queued_by_model is not None:  # what already waits, by model (else in the plan's model mix)
            backlog = np.broadcast_to(np.asarray(state.queued_by_model, dtype=float)[None], R.shape)
        else:
            queued = np.zeros(R.shape[1]) if state.queued is None else np.asarray(state.queued, dtype=float)
            total = np.asarray(state.requests, dtype=float).sum(axis=1)  # [M]
            mix_all = total / total.sum() if total.sum() > 0 else np.full(len(total), 1.0 / len(total))
            R_dc = R.sum(axis=2, keepdims=True)
            mix = np.where(R_dc > 0, R / np.maximum(R_dc, 1e-12), mix_all)
            backlog = queued[None, :, None] * mix  # [B, D, M]
        lam = R / t_e
        burst = self._burst_model(state.arrival_s, state.arrival_work) if self.exact else None
        if state.work_scale is None:
            pool = self._pools(P, lam, backlog, burst, resident=state.resident_nodes)
        else:  # the epoch's own token mix: its pools serve fewer (more) requests, and spill as its work needs
            scale = np.asarray(state.work_scale, dtype=float)
            scale = np.broadcast_to(scale[:, None] if scale.ndim == 1 else scale, self.type_share.shape)
            pool = self._pools(P, lam, backlog, burst, 1.0 / scale[:, self.node_types], state.resident_nodes)
        nodes, mu = pool["nodes"], pool["mu"]

        resident = state.resident_nodes
        warm = pool["warm"]
        new = warm if resident is None else np.maximum(0.0, warm - np.asarray(resident, dtype=float)[None])
        new = new + (nodes - warm)
        cold_frac = np.where(nodes > 0, new / np.maximum(nodes, 1.0), 0.0)
        load_wait = cold_frac * self.cold_wait_s  # [B, D, M]
        limit = cfg.sla_ttft_s - self.first_token_s  # [M] (network latency aside)
        net = np.einsum("bmod,mo,od->bdm", plans, state.requests, self.lat)  # sum of one-way latencies
        mean_net = net / np.maximum(R, 1e-12)
        slack = np.maximum(0.0, limit - physics.round_trip_s(mean_net))  # [B, D, M]
        if self.exact:  # each pool's utilization and the seconds of capacity its free batch slots hold
            rho = lam / np.maximum(mu, 1e-300)
            buffer_s = BurstTable.slot_buffer_s(rho, pool["slots"], mu)
            stat_wait, stat_late = self._exact_waits(burst, lam, mu, rho, buffer_s, nodes, backlog, limit, slack)
        else:
            stat_wait, stat_late = self._stationary(lam, mu, pool["slots"], pool["scv"], pool["spare"], limit)
            pf_wait, pf_late = self._prefill_wait(lam, mu, limit)
            stat_wait, stat_late = stat_wait + pf_wait, 1.0 - (1.0 - stat_late) * (1.0 - pf_late)

        # capacity binds: each pool drains its arrivals at its capacity, FIFO behind what already waits for it (a
        # fluid queue; the capacity is taken to persist until they are served)
        mu_ = np.maximum(mu, 1e-12)
        _, wait_sum, late_n = fluid_segment(backlog, lam, mu_, t_e, slack * mu_)
        queue_wait = wait_sum / np.maximum(R, 1e-300)  # [B, D, M]
        late_q = np.minimum(late_n / np.maximum(R, 1e-300), 1.0)
        ttft_dc = physics.request_ttft_s(R * (queue_wait + stat_wait), R * load_wait, net, R * self.first_token_s)
        n_req = R.sum(axis=(1, 2))
        if self.exact and state.served_by_end:  # the arrivals before (mu t_e - backlog) / lam start by the end
            with np.errstate(divide="ignore", invalid="ignore"):
                cut = np.clip(np.where(lam > 0, (mu_ * t_e - backlog) / lam, t_e), 0.0, t_e)
            share = cut / t_e  # [B, D, M] of each pool's arrivals
            head_wait = fluid_segment(backlog, lam, mu_, cut, slack * mu_)[1]
            R_in = R * share
            ttft_dc = physics.request_ttft_s(R_in * stat_wait + head_wait, R_in * load_wait, net * share,
                                             R_in * self.first_token_s)
            n_req = R_in.sum(axis=(1, 2))
        ttft_total = ttft_dc.sum(axis=(1, 2))
        sla = (R * np.maximum(np.maximum(late_q, stat_late), cold_frac * self.cold_late)).sum(axis=(1, 2))

        # energy: each pool's nodes at the p-state of their utilization (served work over capacity, Eq. 4-5), the
        # nodes past the last pool parked. The balancer's weights give the warm set the work up to its capacity and
        # the nodes spilled in what it cannot take (`cohorts.balancer_shares`, as the engine's pools spread it).
        # Exact runs: what a burst late in the epoch leaves waiting at its end is admitted, its GPU time counted,
        # in the next epoch (`BurstTable.carry_s`)
        work = np.minimum(R + backlog, mu * t_e)
        warm_mu, warm_tdp = pool["warm_mu"], pool["warm_tdp_w"]
        warm_work = work
        if self.exact:
            work = np.maximum(work - burst[0].carry_s(rho, buffer_s) * mu, 0.0)
            # the exact rotation: the warm set's weights and one turn for each node spilled in (it stays in)
            rot = pool["rotation"]
            warm_work = work * rot / np.maximum(rot + pool["spilled"], 1e-300)
        mu_b = pool["mu_base"]  # the work counted at B* (as the engine's utilization counts it)
        rho_w = np.minimum(warm_work / np.maximum(warm_mu * t_e, 1e-300), 1.0)
        rho_s = np.clip((work - rho_w * warm_mu * t_e) / np.maximum((mu_b - warm_mu) * t_e, 1e-300), 0.0, 1.0)
        pc_w, pc_s = (physics.pstate_power_fraction(r, True, cfg.pc_pstates, cfg.pstate_busy_limits, cfg.pc_parked)
                      for r in (rho_w, rho_s))
        active = pool["active"]  # [B, D]
        tdp_parked = self.cum_tdp_w[N] - self.cum_tdp_w[active]
        it = ((physics.node_it_kwh(pc_w, warm_tdp, t_e) + physics.node_it_kwh(pc_s, pool["tdp_w"] - warm_tdp, t_e))
              .sum(axis=2) + physics.node_it_kwh(cfg.pc_parked, tdp_parked, t_e))
        met = physics.datacenter_epoch_metrics(it, state.cop, state.tou_usd_per_kwh, state.gi_l_per_kwh,
                                               state.ci_kg_per_kwh, cfg)
        return Evaluation(
            ttft_total_s=ttft_total, ttft_mean_s=ttft_total / np.maximum(n_req, 1e-12),
            carbon_kg=met["carbon_kg"].sum(axis=1), water_l=met["water_l"].sum(axis=1),
            cost_usd=met["cost_usd"].sum(axis=1), energy_kwh=met["total_kwh"].sum(axis=1),
            sla_violations=sla, parked_share=physics.parked_share(active.sum(axis=1), N * active.shape[1]),
            dc_energy_kwh=met["total_kwh"], dc_requests=R.sum(axis=2),
            embodied_attributable_kg=self.cum_embodied_kg[active].sum(axis=1))

