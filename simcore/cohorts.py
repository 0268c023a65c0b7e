"""The cohort node model (`cohort_size` = C > 1): each simulated request stands for C real requests, those that
reached its datacenter pool since the pool's previous cohort (docs/model.md 'Cohorts').

A pool (datacenter x model, or x phase under split execution) is a fluid FIFO server: its nodes drain the backlog
at their summed throughput (node capacity `node_rps`, from Eq. 1 and the profiles), a node adding its capacity
once its weights are loaded, and a request waits only once the pool's batch slots are full (a burst first fills
the free slots). Between two cohorts the arrival rate is C / gap (played in 1-s steps), so the backlog follows in
closed form, and each real request's wait is read off the pool's cumulative arrival and departure curves once it has
departed (exact whatever the capacity does after it arrived); when the backlog grows faster than the pool drains,
cold nodes are drawn in (they pay LA_load), and when no node is left the backlog grows: capacity binds. Below
saturation each request adds the pool's stochastic wait (M/G/c over its batch slots, bounded by what a bin can
build) and its node's prefill-queue wait (`simcore.queueing`). Its agreement with the exact model: docs/model.md
'Validation' (rung 2) and `tests/test_cohorts.py`. A cohort costs one event; everything per bin is vectorized.
"""
from __future__ import annotations

import bisect
import math
from collections import deque

import numpy as np

from simcore import physics
from simcore.config import MODELS
from simcore.errors import ConfigError
from simcore.exact import wrr_weights
from simcore.nodes import NodeModel
from simcore.queueing import pool_queueing_wait, prefill_queue_wait, segment_waits, slot_fill_s

WAIT_SAMPLES = 16  # positions of a cohort pool's arrival segment at which its fluid wait is read off the curves
RESOLVE_TOLERANCE = 1e-9  # relative: a segment counts as departed when D is this close to its end
DRAIN_TOLERANCE = 1e-6  # real requests: a cohort pool's backlog below this is float residue, not a request
# a pool with a backlog draws in cold nodes until it covers its arrivals plus draining the backlog within this time
# (the bin length until issue 19 moved bins from 60 to 10 s: a burst of a few seconds that the warm nodes absorb
# within a minute draws no cold node; the evaluator's spill estimate uses the same time)
SPILL_DRAIN_S = 60.0
# a bin's arrivals are played at this resolution (the bundled traces' per-second counts): a pool's batch slots absorb
# bursts of a few seconds, and a lull inside a bin leaves capacity idle that a burst after it cannot use (issue 19:
# at one rate per 10-s bin the 100-node Azure cell at 95 % was 25-33 % optimistic on epoch 1's SLA share)
ARRIVAL_STEP_S = 1.0
# ... in bins up to this long (the default 10 s, where rung 2 holds them): the spill rule (`_spill`) decides once per
# bin from its mean rate, so in a longer bin (the RL world's 300 s) a stepped pool queued through bursts that exact
# play spills to cold nodes (SLA violations 11.4 % vs exact 0.10 %, docs/model.md 'Cohorts'); such bins keep one rate
STEPPED_BIN_MAX_S = 10.0


def balancer_shares(rps: np.ndarray, avail_s: np.ndarray, warm: int, served: float) -> np.ndarray:
    """How the exact balancer (`simcore.exact`: smooth weighted round-robin) spreads a pool's `served` real
    requests over its nodes, as node-seconds of serving capacity used: the first `warm` nodes (the warm set) take
    requests in proportion to their weights (`exact.wrr_weights` of the warm nodes' throughputs), a node
    spilled in joins the rotation once (weight 1), each for the `avail_s` it serves; a node's use is capped at its
    `avail_s` and what a full node cannot take goes to the others in proportion to their room (the balancer
    skips a node without a free batch slot).

    :returns: [nodes] node-seconds used (served x share / rps)
    """
    rps = np.asarray(rps, dtype=float)
    avail = np.asarray(avail_s, dtype=float)
    weight = np.ones(len(rps))
    if warm:
        weight[:warm] = wrr_weights(rps[:warm])
    want = weight * avail  # requests in proportion
    total = want.sum()
    if total <= 0 or served <= 0:
        return np.zeros(len(rps))
    use = served * want / total / np.maximum(rps, 1e-300)  # node-seconds
    for _ in range(len(rps)):  # water-filling: a full node's excess to the others by their room
        over = use > avail
        if not over.any():
            break
        excess = float(((use - avail)[over] * rps[over]).sum())  # real requests
        use[over] = avail[over]
        room = np.where(over, 0.0, (avail - use) * rps)
        if room.sum() <= 0:
            break
        use += excess * room / room.sum() / np.maximum(rps, 1e-300)
    return np.minimum(use, avail)


class CohortNodes(NodeModel):
    """Fluid FIFO pools per (datacenter, pool key), played bin by bin; cohorts carry their arrival rates."""

    low_discrepancy = True  # routing spreads each plan row's cohorts evenly (`engine.draw_datacenters`)

    def __init__(self, engine) -> None:
        """Pool p = d x K + key (K pool keys per datacenter): backlog W (real requests), time of its last update,
        drain rate mu (real requests/s of its ready nodes), pending capacity changes [(time, d_mu, d_slots)], its
        nodes."""
        super().__init__(engine)
        e = engine
        self.cfg, self.wl, self.fleet, self.prof, self.capacity, self.info = e.cfg, e.wl, e.fleet, e.prof, \
            e.capacity, e.info
        self.C, self.K, self.mode, self.phases, self.last_phase = e.C, e.K, e.mode, e.phases, e.last_phase
        self.bin_s, self.bins_per_epoch, self.r_epoch = e.bin_s, e.bins_per_epoch, e.r_epoch
        # the node state the engine's warm sets share (never rebound)
        self.res, self.res_w, self.ready, self.n_type, self.n_mem = e.res, e.res_w, e.ready, e.n_type, e.n_mem
        self.weights_gb, self.batch_full, self.step_full, self.scv = e.weights_gb, e.batch_full, e.step_full, e.scv
        cfg, M, D = self.cfg, len(MODELS), self.cfg.dcs
        P = D * self.K
        self.pool_dc = np.repeat(np.arange(D), self.K)
        self.pool_model = [(p % self.K) % M for p in range(P)]
        self.pW = [0.0] * P
        self.pT = [0.0] * P
        self.pMu = [0.0] * P
        self.pBp = [[] for _ in range(P)]
        self.pNodes = [[] for _ in range(P)]
        self.pWarm = [0] * P
        self.pCold = [[] for _ in range(P)]
        self.pColdPtr = [0] * P
        self.pServed = [0.0] * P  # real requests served this epoch
        # real requests in service (in batch slots) and the slots of the ready nodes: a request waits only once the
        # slots are full (`_advance`); None until the pool's first bin (the warm start's steady state)
        self.pX = [None] * P
        self.pS = [0.0] * P
        # cumulative real arrivals A and the departure curve D(t) (times, counts; D strictly increasing) since the
        # oldest unresolved arrival segment, and the unresolved segments: (A0, A1, t0, t1, cohorts, wait limit)
        self.pA = [0.0] * P
        self.pCurveT = [[0.0] for _ in range(P)]
        self.pCurveD = [[0.0] for _ in range(P)]
        self.pOpen = [deque() for _ in range(P)]
        # per pool over its nodes this epoch (ready or loading): summed throughput (real requests/s), batch
        # slots (sum B*) and throughput-weighted service-time SCV, for the spill rule and the M/G/c wait
        self.pRpsSum, self.pSlotSum, self.pScvSum = [0.0] * P, [0.0] * P, [0.0] * P
        self.node_pool = [-1] * len(self.fleet.node_dc)
        self.node_ready = [0.0] * len(self.fleet.node_dc)
        # node throughput per phase: whole requests, or a phase's part (prefill, or decode at B*)
        p_mean, o_mean = (np.asarray(x, dtype=float) for x in self.info.token_sample)
        keep = o_mean > 0
        self.key_rps = self.mode.node_rps(
            self.capacity.node_rps, self.capacity.batch,
            lambda: np.array([[self.prof.prefill_s_array(m, t, p_mean[keep]).mean()
                               for t in range(len(self.fleet.node_types))] for m in range(M)]),
            lambda: o_mean[keep].mean() * np.asarray(self.step_full))
        self.prefill_queue = self._prefill_queue_moments(p_mean[keep], o_mean[keep])
        n = len(self.wl)
        self.f_first = np.zeros(n)  # first-token compute (Eq. 3's term)
        self.f_net = np.zeros(n)
        self.f_dc = np.full(n, -1, dtype=np.int64)
        self.f_pool = np.zeros(n, dtype=np.int64)
        self.f_arr = np.zeros(n)  # arrival at the pool (its step within the bin, `_play_bin`)
        self.f_routed = np.zeros(n, dtype=bool)  # routed by the epoch's plan (not online, not a later phase)
        self.plan_mean = np.zeros((cfg.epochs, M, cfg.dcs))  # each epoch's plan averaged over origins [M, D]
        self.f_ttft = np.full(n, math.nan)
        self.f_served = np.zeros(n)
        self.f_late = np.zeros(n)
        self.bin_next = 0
        self.pending: dict = {}

    # --- the engine's calls (simcore.nodes.NodeModel) -------------------------------------------------------------
    def epoch_reset(self, now: float) -> None:
        self._fluid_epoch_reset(now)

    def add_pool(self, d: int, key: int, m: int, nodes: np.ndarray, cold: list, pool_id: int, shared: bool,
                 now: float) -> None:
        if shared:
            if self.cfg.nodes_per_dc < self.K * self.cfg.min_warm_nodes:  # fewer nodes than pools: a tiny fleet
                raise ConfigError(f"nodes_per_dc={self.cfg.nodes_per_dc}: datacenter {d} has no node left for a "
                                  f"pool of {MODELS[m]}; cohorts need a node per pool (use --cohort-size 1)")
            # a fleet with a node per pool whose nodes of this pool's kind the other pools took this epoch (split
            # execution at the peak: the 70B's prompt pool holds every H100): the pool has no warm node and
            # serves nothing until it spills to a cold one or the next epoch gives it nodes
            nodes = nodes[:0]
        self._fluid_pool(d, key, m, nodes.tolist(), cold, now)

    def pools_ready(self, now: float) -> None:
        pass  # backlogs carry over in the pools themselves

    def start_epoch(self, lo: int, hi: int) -> None:
        self._epoch_first_token(lo, hi)

    def arrive(self, e: int, plan: np.ndarray, idx: np.ndarray, dc: np.ndarray, net: np.ndarray,
               arr: np.ndarray) -> None:
        self.f_dc[idx], self.f_net[idx] = dc, net
        self.f_routed[idx] = True
        self.plan_mean[e] = plan.mean(axis=1)
        self._to_bins(idx, dc * self.K + self.wl.model[idx].astype(np.int64), arr)

    def arrive_one(self, i: int, d: int, m: int, net: float, t: float) -> None:
        self.f_dc[i], self.f_net[i] = d, net
        self._to_bins(np.array([i]), np.array([int(d) * self.K + m]), np.array([t + net]))

    def steps_per_epoch(self, drain: bool) -> int:
        return self.bins_per_epoch

    def tick(self) -> None:
        self._play_bin()

    def backlog(self) -> float:
        first = [p for p in range(len(self.pW)) if (p % self.K) < len(MODELS)]
        waiting = sum(self.pW[p] for p in first)
        on_way = sum(int(np.count_nonzero(self.f_pool[np.concatenate(parts)] % self.K < len(MODELS)))
                     for parts in self.pending.values())  # first phases still on their way to their pool
        return waiting + on_way * self.C if waiting > DRAIN_TOLERANCE or on_way else 0.0

    def idle(self) -> np.ndarray:
        return np.asarray(self.node_pool) < 0

    def queued_real(self) -> np.ndarray:
        D, M = self.cfg.dcs, len(MODELS)
        key = np.asarray(self.pool_dc) * M + np.asarray(self.pool_model)
        return np.bincount(key, weights=self.pW, minlength=D * M).reshape(D, M)

    def utilization(self, e: int, length_s: float) -> tuple:
        return self._fluid_utilization(e, length_s)

    def epoch_requests(self, lo: int, hi: int) -> tuple:
        return np.asarray(self.f_dc[lo:hi], dtype=np.int64), self.f_ttft[lo:hi], self.f_served[lo:hi], \
            self.f_late[lo:hi]

    def finish(self) -> None:
        self._resolve_at_horizon()

    def record(self) -> dict:
        n = len(self.wl)
        return {"ttft_s": self.f_ttft, "served": self.f_served, "sla_late": self.f_late, "req_dc": self.f_dc.tolist(),
                "cold": [False] * n, "prompt_node": [-1] * n, "token_node": [-1] * n}

    # --- the pools ----------------------------------------------------------------------------------------------
    def _prefill_queue_moments(self, p: np.ndarray, o: np.ndarray) -> tuple:
        """Per pool key [K, T]: the prefill time's mean and second moment over the token sample (0 for a decode
        phase), the GPU time of a request at full batch (1 / the key's node throughput) and each node type's share
        of the model's capacity, for `queueing.prefill_queue_wait`."""
        M, T = len(MODELS), len(self.fleet.node_types)
        a, b = np.zeros((self.K, T)), np.zeros((self.K, T))
        g, share = np.ones((self.K, T)), np.zeros((self.K, T))
        for key in range(self.K):
            j, m = divmod(key, M)
            rps = np.asarray(self.key_rps[j][m])
            w = self.fleet.nodes_per_type[0] * rps
            share[key] = w / max(w.sum(), 1e-300)
            g[key] = np.where(rps > 0, 1.0 / np.maximum(rps, 1e-300), 0.0)
            if self.phases[j].prefill:
                for t in range(T):
                    x = self.prof.prefill_s_array(m, t, p)
                    a[key, t], b[key, t] = x.mean(), (x * x).mean()
        return a, b, g, share

    def _rps(self, key: int, n: int) -> float:
        M = len(MODELS)
        return self.key_rps[key // M][key % M][self.n_type[n]]

    def _fluid_epoch_reset(self, now: float) -> None:
        """Epoch start: pools lose their nodes (the warm set is chosen anew); pending capacity is rebased."""
        for p in range(len(self.pW)):
            mu, slots = self.pMu[p], self.pS[p]
            keep = [bp for bp in self.pBp[p] if bp[0] <= now]
            for _, dmu, ds in keep:
                mu += dmu
                slots += ds
            self.pBp[p] = keep + [(now, -mu, -slots)] if mu or slots else keep  # capacity drops to 0 ...
            for n in self.pNodes[p]:
                self.node_pool[n] = -1
            self.pNodes[p], self.pCold[p], self.pColdPtr[p], self.pWarm[p] = [], [], 0, 0
            self.pServed[p] = 0.0
            self.pRpsSum[p] = self.pSlotSum[p] = self.pScvSum[p] = 0.0
        self.epoch_start = now

    def _fluid_pool(self, d: int, key: int, m: int, nodes: list, cold: list, now: float) -> None:
        """... and is rebuilt from the new warm set: each node adds its throughput once its weights are ready."""
        p = d * self.K + key
        self.pWarm[p] = len(nodes)  # the pool's first nodes are its warm set, those after them spilled in
        for n in nodes:
            self._join(p, key, m, n, now)
        self.pCold[p] = cold

    def _join(self, p: int, key: int, m: int, n: int, now: float) -> None:
        """Node n serves pool p from when model m is ready on it."""
        self.node_pool[n] = p
        ready = max(now, self.ready[n][m])
        self.node_ready[n] = ready
        r = self._rps(key, n)
        self.pNodes[p].append(n)
        t = self.n_type[n]
        bisect.insort(self.pBp[p], (ready, r, float(self.batch_full[m][t])))
        self.pRpsSum[p] += r
        self.pSlotSum[p] += self.batch_full[m][t]
        self.pScvSum[p] += r * self.scv[m][t]

    def _epoch_first_token(self, lo: int, hi: int) -> None:
        """Each cohort's first-token compute (Eq. 3's term) at full batch, averaged over the node types by their
        share of the model's capacity (the balancer's weights)."""
        wl, cfg, cap = self.wl, self.cfg, self.capacity
        if hi <= lo:
            return
        m = wl.model[lo:hi].astype(int)
        p = wl.prompt_tokens[lo:hi].astype(float)
        o = wl.output_tokens[lo:hi].astype(float)
        share = self.fleet.nodes_per_type[0][None, :] * cap.node_rps
        share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)  # [M, T]
        first = np.zeros(hi - lo)
        for t in range(len(self.fleet.node_types)):
            b = np.maximum(cap.batch[m, t], 1)
            pre = self.prof.prefill_s_array(m, t, p)
            step = self.prof.decode_step_s[m, t, b]
            first += share[m, t] * physics.first_token_compute_s(cfg.ttft_model, pre + o * step, o, pre, step)
        self.f_first[lo:hi] = first

    def _to_bins(self, idx: np.ndarray, pool: np.ndarray, arr: np.ndarray) -> None:
        """Cohorts reaching pools at times `arr` wait to be played with their bin (never one already played)."""
        b = np.maximum((arr // self.bin_s).astype(np.int64), self.bin_next)
        self.f_pool[idx] = pool
        self.f_arr[idx] = arr
        order = np.argsort(b, kind="stable")
        b, idx = b[order], idx[order]
        cuts = np.flatnonzero(np.diff(b)) + 1
        for part, key in zip(np.split(idx, cuts), b[np.concatenate(([0], cuts))].tolist() if len(b) else []):
            self.pending.setdefault(key, []).append(part)

    def _advance(self, p: int, t0: float, t1: float, lams: list) -> tuple:
        """Play pool p's fluid FIFO over the bin [t0, t1), its arrivals at rate `lams[k]`/s in the k-th of
        len(lams) equal steps (capacity changes inside the bin split them further). A request is admitted to a
        batch slot at once while the pool's slots (S, the ready nodes' B*) have room and waits only once they are
        full: the requests in service X follow dX/dt = lam - X / T_s with T_s = S / mu (S slots served at mu), so a
        burst fills the free slots, (S - X), before a backlog W grows at lam - mu (`queueing.slot_fill_s`); a
        backlog drains at mu - lam and leaves the slots full. No node ready: W grows at lam.

        :returns: (real requests admitted, the departure curve's points in the bin [(t, D)], whether the curve
            follows the steps: False where nobody waited and only the bin's end is given); the pool's state
            (backlog, requests in service, drain rate, slots, pending capacity) is left at t1
        """
        W0 = W = self.pW[p]
        s, mu, S, bps = max(self.pT[p], t0), self.pMu[p], self.pS[p], self.pBp[p]
        while bps and bps[0][0] <= s:  # capacity that arrived while nothing waited
            _, dmu, ds = bps.pop(0)
            mu, S = mu + dmu, S + ds
        X = self.pX[p]
        if X is None:  # the pool's first bin: the service was running, its slots as full as its first rate keeps them
            X = min(lams[0] * S / mu, S) if mu > 1e-12 else 0.0
        steps = len(lams)
        h = (t1 - t0) / steps
        a = self.pA[p]  # cumulative arrivals at s
        arrived = sum(lams) * h
        if W <= 0 and mu > 1e-12 and S > 0 and max(lams) <= mu and not (bps and bps[0][0] < t1):
            # no step outruns the pool: its slots never fill and nobody waits (D = A all through the bin, whose
            # segment then reads zero waits off the bin's end point alone: `_play_bin`)
            T = S / mu
            decay = math.exp(-h / T)
            X = min(X, S)
            for lam in lams:
                X = lam * T + (X - lam * T) * decay
            self.pT[p], self.pMu[p], self.pS[p], self.pX[p] = t1, mu, S, X
            return arrived, [(t1, a + arrived)], False
        curve = []
        k = 0
        while s < t1:
            end = t0 + (k + 1) * h if k < steps - 1 else t1
            if bps and bps[0][0] < end:
                b, change = bps[0][0], bps.pop(0)
            else:
                b, change = end, None
            lam, length = lams[k], b - s
            if length > 0:
                if mu <= 1e-12 or S <= 0:  # no node ready: every arrival waits
                    W += lam * length
                    X = 0.0
                else:
                    tau = 0.0
                    X = min(X, S)
                    if W > 0:  # a backlog: the slots are full; it drains at mu - lam
                        X = S
                        if lam < mu and W / (mu - lam) < length:
                            tau = W / (mu - lam)
                            W = 0.0
                            curve.append((s + tau, a + lam * tau))
                        else:
                            W = max(0.0, W + (lam - mu) * length)
                            tau = length
                    if tau < length:  # no backlog: arrivals fill the free slots
                        T = S / mu
                        full = slot_fill_s(X, lam * T, S, T)
                        if full < length - tau:
                            tau += full
                            curve.append((s + tau, a + lam * tau))
                            X, W = S, (lam - mu) * (length - tau)
                        else:
                            X = lam * T + (X - lam * T) * math.exp(-(length - tau) / T)
                curve.append((b, a + lam * length - W))
                a += lam * length
            s = b
            if change is not None:
                mu, S = mu + change[1], S + change[2]
            elif b >= end:
                k += 1
        self.pW[p], self.pT[p], self.pMu[p], self.pS[p], self.pX[p] = W, t1, max(mu, 0.0), max(S, 0.0), X
        return W0 + arrived - W, curve, True

    def _play_bin(self) -> None:
        """Play every pool over the bin that just ended: the bin's cohorts arrive at a constant rate in each of its
        arrival steps (their real requests spread as `_step_shares` says; one step in a bin longer than
        STEPPED_BIN_MAX_S) and the fluid FIFO drains them at the pool's capacity, which may change later (nodes ready,
        cold nodes drawn in, a new epoch's warm set). A pool's arrivals of one bin form a segment [A0, A1] of its
        cumulative arrival curve A(t); the segment is resolved once the departure curve D(t) has passed A1: a
        real request at position x waits D^-1(x) - A^-1(x) (`_resolve`). Below saturation the M/G/c wait of the
        bin's arrivals is added. Cold nodes join pools whose backlog outgrows them."""
        b = self.bin_next
        self.bin_next += 1
        t0, t1 = b * self.bin_s, (b + 1) * self.bin_s
        parts = self.pending.pop(b, None)
        idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self.e.events += len(idx)  # a cohort is one event: its arrival at the pool
        P, C, M = len(self.pW), self.C, len(MODELS)
        pool = self.f_pool[idx]
        n_p = np.bincount(pool, minlength=P)
        # each pool's cohorts per arrival step of the bin (ARRIVAL_STEP_S), and their sum
        steps = max(1, int(round(self.bin_s / ARRIVAL_STEP_S))) if self.bin_s <= STEPPED_BIN_MAX_S + 1e-9 else 1
        lam_nk = self._expected_cohorts(idx, pool, self._step_shares(idx, pool, t0, steps)).reshape(P, steps)
        lam_n = lam_nk.sum(axis=1)
        h = self.bin_s / steps
        knots = np.zeros((P, steps + 1))  # each pool's real arrivals at the steps' ends since the bin's start
        np.cumsum(lam_nk * C, axis=1, out=knots[:, 1:])
        rates = (lam_nk * (C / h)).tolist()
        base = physics.round_trip_s(self.f_net[idx]) + self.f_first[idx]
        base_p = np.bincount(pool, weights=base, minlength=P) / np.maximum(n_p, 1)
        sla = self.cfg.sla_ttft_s
        played = []
        stationary = []  # (pool, lam, mu, limit) of the bin's pools without backlog: their M/G/c wait
        for p in range(P):
            n = float(lam_n[p])
            if n <= 0 and self.pW[p] <= 0 and not (self.pBp[p] and self.pBp[p][0][0] <= t1):
                continue
            lam = n * C / self.bin_s
            later_phase = (p % self.K) // M > 0  # its requests' first token came from their first phase
            limit = sla - base_p[p]
            lams = rates[p]
            saved = (self.pW[p], self.pT[p], self.pMu[p], self.pS[p], self.pX[p], list(self.pBp[p]))
            drained, curve, stepped = self._advance(p, t0, t1, lams)
            n_before = len(self.pNodes[p])
            if self.pW[p] > 0 and self._spill(p, p % self.K, self.pool_model[p], t0, lam):
                # the balancer spills as soon as the warm nodes are full: replay the bin with the cold nodes
                # drawn in from its start (their capacity steps, by node: a step may equal one already pending)
                m = self.pool_model[p]
                joined = [(self.node_ready[n], self._rps(p % self.K, n), float(self.batch_full[m][self.n_type[n]]))
                          for n in self.pNodes[p][n_before:]]
                self.pW[p], self.pT[p], self.pMu[p], self.pS[p], self.pX[p], self.pBp[p] = saved
                for bp in joined:
                    bisect.insort(self.pBp[p], bp)
                drained, curve, stepped = self._advance(p, t0, t1, lams)
            self.pServed[p] += drained
            self._extend_curve(p, curve)
            a0 = self.pA[p]
            self.pA[p] += n * C
            if not later_phase:
                self.e.served_dm[self.pool_dc[p], self.pool_model[p]] += drained
            if n > 0:
                if not later_phase and n_p[p]:
                    self.pOpen[p].append([a0, self.pA[p], t0, t1, idx[pool == p], limit, 0.0, 0.0,
                                          a0 + knots[p] if stepped else None])
                if 0 < lam < self.pMu[p] and self.pW[p] <= 0:
                    stationary.append((p, lam, self.pMu[p], limit))
            played.append(p)
        if stationary:  # stationary bins: the M/G/c wait of the bin's real requests, one call for all pools
            p, lam, mu, limit = (np.array(x) for x in zip(*stationary))
            rps = np.maximum(np.asarray(self.pRpsSum)[p], 1e-300)
            scv = np.asarray(self.pScvSum)[p] / rps
            w_q, p_late = pool_queueing_wait(lam, mu, mu * np.asarray(self.pSlotSum)[p] / rps, scv, limit,
                                             self.bin_s)
            key = p % self.K  # and each prompt's wait for the prefill passes before it at its node
            a, b, g, share = (x[key] for x in self.prefill_queue)
            w_pf, late_pf = prefill_queue_wait(lam / mu, a, b, g, share, limit)
            w_q, p_late = w_q + w_pf, 1.0 - (1.0 - p_late) * (1.0 - late_pf)
            for q, w, late in zip(p.tolist(), w_q.tolist(), p_late.tolist()):
                if self.pOpen[q] and self.pOpen[q][-1][3] == t1:
                    self.pOpen[q][-1][6:8] = [w, late]
        for p in played:
            done = self.pA[p] - self.pW[p]
            open_ = self.pOpen[p]
            while open_ and open_[0][1] <= done + RESOLVE_TOLERANCE * max(1.0, open_[0][1]):
                self._resolve(p, open_.popleft(), 1.0)
            self._trim_curve(p)

    def _extend_curve(self, p: int, curve: list) -> None:
        """Append a bin's departure points; where D stays flat the last point moves forward in time, so that
        D^-1(x) is the first time D reaches x."""
        ts, ds = self.pCurveT[p], self.pCurveD[p]
        for t, d in curve:
            if d <= ds[-1] + RESOLVE_TOLERANCE * max(1.0, ds[-1]):
                ts[-1] = t
                ds[-1] = max(ds[-1], d)
            else:
                ts.append(t)
                ds.append(d)

    def _trim_curve(self, p: int) -> None:
        """Forget the departure curve before the oldest unresolved position."""
        ds = self.pCurveD[p]
        keep_from = self.pOpen[p][0][0] if self.pOpen[p] else ds[-1]
        i = bisect.bisect_right(ds, keep_from) - 1
        if i > 0:
            del ds[:i], self.pCurveT[p][:i]

    def _resolve(self, p: int, seg: list, share: float) -> None:
        """The cohorts of one arrival segment get their wait: the real requests at positions x of the segment's
        first `share` (all of it, or what was served by the horizon) wait D^-1(x) - A^-1(x), sampled at
        WAIT_SAMPLES evenly spaced positions, plus the segment's M/G/c wait; their mean is each cohort's wait,
        the share past the wait limit each cohort's late share. Under split execution the cohorts' next phase goes
        to its pool at the segment's mean departure."""
        a0, a1, t0, t1, idx, limit, w_q, p_late, knots = seg
        wait = segment_waits(a0, a1, t0, t1, self.pCurveT[p], self.pCurveD[p], share, WAIT_SAMPLES, knots)
        late = np.count_nonzero(wait > limit) / len(wait)  # the mean of the samples (np.mean is slow on 16)
        late += (1.0 - late) * p_late
        mean_wait = float(wait.sum()) / len(wait) + w_q
        self.f_ttft[idx] = physics.request_ttft_s(mean_wait, 0.0, self.f_net[idx], self.f_first[idx])
        self.f_served[idx] = self.C * share
        self.f_late[idx] = min(late, 1.0) * self.C * share
        if self.last_phase:  # the next phase reaches its pools after this one and the KV transfer
            m = self.wl.model[idx].astype(np.int64)
            xfer = self.mode.transfer_s(self.wl.prompt_tokens[idx], np.asarray(self.cfg.model_kv_mb_per_token)[m])
            t_next = t0 + 0.5 * share * (t1 - t0) + mean_wait + self.f_first[idx] + xfer
            self.f_routed[idx] = False  # a later phase counts whole in its pool (`_expected_cohorts`)
            self._to_bins(idx, self.f_dc[idx] * self.K + len(MODELS) + m, t_next)

    def _step_shares(self, idx: np.ndarray, pool: np.ndarray, t0: float, steps: int) -> np.ndarray:
        """How each cohort of the bin spreads over the bin's `steps` arrival steps: its C real requests arrive
        evenly between the previous cohort of its stream and its own arrival (the previous one in the bin, or the
        bin's start), a stream being a model's plan-routed cohorts (they reach every datacenter by the plan's
        shares, `_expected_cohorts`) or one pool's other cohorts. Cohorts are sampled every C-th real request
        (docs/model.md 'Cohorts'), so this is the real arrival curve to within a cohort, where counting each
        cohort whole in its step would make bursts of C at few cohorts per step.

        :returns: [cohorts, steps], rows summing to 1
        """
        n = len(idx)
        if n == 0:
            return np.zeros((0, steps))
        h = self.bin_s / steps
        arr = np.clip(self.f_arr[idx] - t0, 0.0, self.bin_s)
        stream = np.where(self.f_routed[idx], -1 - self.wl.model[idx].astype(np.int64), pool)
        order = np.lexsort((arr, stream))
        start = np.zeros(n)
        same = stream[order][1:] == stream[order][:-1]
        start[order[1:]] = np.where(same, arr[order][:-1], 0.0)
        edges = np.arange(steps + 1) * h
        cover = np.clip(np.minimum(arr[:, None], edges[None, 1:]) - np.maximum(start[:, None], edges[None, :-1]),
                        0.0, None)  # [n, steps] seconds of each step inside the cohort's spread
        total = cover.sum(axis=1)
        at = np.minimum((arr / h).astype(np.int64), steps - 1)  # a cohort spread over no time: its own step
        cover[total <= 0, at[total <= 0]] = 1.0
        return cover / np.maximum(cover.sum(axis=1, keepdims=True), 1e-300)

    def _expected_cohorts(self, idx: np.ndarray, pool: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """Cohorts reaching each pool in each arrival step of the bin (`spread`: each cohort's shares of the steps,
        `_step_shares`), for its arrival rate: a plan-routed cohort counts as its model's plan shares over the
        datacenters averaged over the origins (the C real requests it stands for come from every region alike,
        SPEC origins are uniform, and split as the plan says), so a pool's rate carries no rounding of cohorts to
        origins and datacenters; online-routed cohorts and later phases count whole.

        :returns: [pools x steps] (pool-major)
        """
        steps = spread.shape[1]
        size = len(self.pW) * steps
        col = np.arange(steps)[None, :]
        routed = self.f_routed[idx]
        own = ~routed
        out = np.bincount((pool[own, None] * steps + col).ravel(), weights=spread[own].ravel(),
                          minlength=size).astype(float)
        if not routed.any():
            return out
        i = idx[routed]
        m = self.wl.model[i].astype(np.int64)
        shares = self.plan_mean[self.r_epoch[i], m]  # [k, D]
        D = shares.shape[1]
        target = (np.arange(D)[None, :, None] * self.K + m[:, None, None]) * steps + col[:, None, :]  # [k, D, steps]
        out += np.bincount(target.ravel(), weights=(shares[:, :, None] * spread[routed][:, None, :]).ravel(),
                           minlength=size)
        return out

    def _spill(self, p: int, key: int, m: int, now: float, lam: float) -> bool:
        """Backlog outgrows the pool: draw in cold nodes (in the balancer's order) until the pool's capacity,
        counting nodes still loading, covers the bin's arrival rate plus draining the backlog within
        SPILL_DRAIN_S (not within a bin: a burst of a few seconds that the warm nodes absorb within a
        minute draws no cold node, docs/model.md 'Cohorts')."""
        need = lam + self.pW[p] / SPILL_DRAIN_S - self.pRpsSum[p]
        cold, ptr = self.pCold[p], self.pColdPtr[p]
        joined = False
        while need > 0 and ptr < len(cold):
            n = cold[ptr]
            ptr += 1
            if self.node_pool[n] >= 0:
                continue
            if not (self.res[n] >> m) & 1:
                if self.res_w[n] + self.weights_gb[m] > self.n_mem[n]:
                    self.res[n], self.res_w[n] = 0, 0.0
                self.e._load(n, m, now)
            self._join(p, key, m, n, now)
            need -= self._rps(key, n)
            joined = True
        self.pColdPtr[p] = ptr
        return joined

    def _fluid_utilization(self, e: int, length_s: float) -> tuple:
        """Per node: the share of its serving capacity used over the epoch's `length_s` (each pool spreads its
        served work over its nodes in proportion to their throughput while ready, as the weighted balancer does),
        and whether it was active."""
        t0 = e * self.cfg.epoch_s
        t1 = t0 + length_s
        u = np.zeros(len(self.node_pool))
        active = np.asarray(self.node_pool) >= 0
        for p, nodes in enumerate(self.pNodes):
            if not nodes:
                continue
            key = p % self.K
            ready = np.asarray([self.node_ready[n] for n in nodes])
            avail = np.clip(t1 - np.maximum(ready, t0), 0.0, length_s)
            rps = np.asarray([self._rps(key, n) for n in nodes])
            work = balancer_shares(rps, avail, self.pWarm[p], self.pServed[p])
            u[nodes] = work / length_s
        return u, active

    def _resolve_at_horizon(self) -> None:
        """Arrival segments the departure curve has not passed by the horizon: the share of each that was served
        gets its waits; the rest still waits (`requests_queued_at_end`: its cohorts' unserved real requests)."""
        for p, open_ in enumerate(self.pOpen):
            done = self.pA[p] - self.pW[p]
            while open_:
                seg = open_.popleft()
                share = (done - seg[0]) / (seg[1] - seg[0]) if seg[1] > seg[0] else 0.0
                if share > 0:
                    self._resolve(p, seg, min(share, 1.0))
