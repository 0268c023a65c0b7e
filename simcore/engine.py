"""The SimPy event engine: the ground truth for every reported number (SPEC 2, 4-6).

Each epoch: the predictor forecasts, the scheduler plans, each datacenter picks its warm set, and the epoch's
requests are routed. Every request is then played as SimPy events:

    arrival at the datacenter (trace arrival + one-way network transfer, Eq. 2)
      -> weighted round-robin balancer over the warm set, spilling to cold nodes (ref. [26])
      -> admission if the node's memory holds it (Eq. 1) and its batch is not full, else the node's FIFO queue
      -> weight load if the model is not resident (LA_load) -> first token (TTFT, Eq. 3) -> completion
      (KV released, queued requests admitted)

At each epoch end every node gets a p-state from its busy fraction (or is parked, dropping its models) and the
epoch's energy, cost, water and carbon follow from Eq. 4-10 (`simcore.physics`, shared with the evaluator).

Performance: per-node state lives in plain Python lists (scalar indexing of numpy arrays is slow), each
request costs two SimPy events (datacenter arrival, completion), and everything per-epoch is vectorized.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from schedulers.base import EpochResult, Observation, Request, Scheduler, StaticInfo
from simcore import physics
from simcore.config import MODELS, Config
from simcore.predictor import EwmaRegression
from simcore.profiles import load_profiles
from simcore.rng import stream
from topology.graph import latency_matrix_s
from topology.sites import site_signals
from traces.loader import Workload, load_workload


PHASE_WHOLE, PHASE_PROMPT, PHASE_TOKEN = 0, 1, 2  # a request runs whole, or split (Splitwise) in two phases


@dataclass
class Fleet:
    """Static description of the nodes of the D datacenters (node n of datacenter d is n // nodes_per_dc)."""

    node_dc: np.ndarray  # [N] datacenter of each node
    node_type: np.ndarray  # [N] node-type index t = gpu_type * len(gpu_counts) + count_index
    gpus: np.ndarray  # [N]
    mem_gb: np.ndarray  # [N] pooled GPU memory
    tdp_w: np.ndarray  # [N] node TDP = GPUs x (GPU TDP + host share)
    node_types: tuple  # ((gpu type, gpus), ...)
    nodes_per_type: np.ndarray  # [D, T]
    load_s: np.ndarray  # [M, T] LA_load of each model on each node type


def build_fleet(cfg: Config) -> Fleet:
    """1000 nodes per datacenter (default), the six node types interleaved so any prefix mixes all types."""
    types = tuple((g, c) for g in cfg.gpu_types for c in cfg.gpu_counts)
    n_types = len(types)
    per_dc = np.arange(cfg.nodes_per_dc) % n_types
    node_type = np.tile(per_dc, cfg.dcs)
    gi = node_type // len(cfg.gpu_counts)
    gpus = np.asarray(cfg.gpu_counts)[node_type % len(cfg.gpu_counts)]
    mem = gpus * np.asarray(cfg.gpu_mem_gb)[gi]
    tdp = gpus * (np.asarray(cfg.gpu_tdp_w)[gi] + cfg.host_tdp_w_per_gpu)
    counts = np.tile(np.bincount(per_dc, minlength=n_types), (cfg.dcs, 1))
    t_gpu = np.array([cfg.gpu_types.index(g) for g, _ in types])
    load = physics.weight_load_latency_s(np.asarray(cfg.model_weights_gb)[:, None],
                                         np.asarray(cfg.load_bw_gb_per_s)[t_gpu][None, :])
    return Fleet(np.repeat(np.arange(cfg.dcs), cfg.nodes_per_dc), node_type, gpus, mem.astype(float),
                 tdp.astype(float), types, counts, load)


def wrr_sequence(nodes: np.ndarray, weights: np.ndarray) -> list:
    """One cycle of smooth weighted round-robin: node j appears weights[j] times, spread evenly."""
    if len(nodes) == 0:
        return []
    w = weights.astype(int)
    rep = np.repeat(np.arange(len(nodes)), w)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(w) - w, w)
    pos = (within + 0.5) / np.repeat(w, w)
    order = np.lexsort((rep, pos))
    return nodes[rep[order]].tolist()


@dataclass
class RunRecord:
    """Everything a run produced, for `simcore.results` to write."""

    cfg: Config
    scheduler: str
    trace: str
    load_scale: float
    sites: tuple
    epoch_rows: list  # one dict per (epoch, datacenter)
    req_epoch: np.ndarray
    req_dc: np.ndarray
    req_failed: np.ndarray
    ttft_s: np.ndarray  # NaN where no first token by the horizon
    cold: np.ndarray
    events: int
    wall_s: float
    prompt_node: np.ndarray | None = None  # split execution: the node that ran each request's prefill
    token_node: np.ndarray | None = None  # the node that ran its decode (the only node when not split)
    extra_tables: dict | None = None  # the scheduler's extra_results(): name -> DataFrame, written as <name>.csv


class LiveView:
    """What an online `route` sees: time and per-datacenter running / queued request counts (read-only)."""

    def __init__(self, engine: "Engine") -> None:
        self._e = engine

    @property
    def now(self) -> float:
        return self._e.env.now

    def running(self, dc: int) -> int:
        return self._e.dc_running[dc]

    def queued(self, dc: int) -> int:
        return self._e.dc_queued[dc]


class Engine:
    """One simulation run of `scheduler` under `cfg`.

    :param cfg: the run's Config
    :param scheduler: a Scheduler instance (reset by the engine)
    :param workload: the requests (default: loaded from cfg.trace with the 'trace' stream)
    :param progress: show a tqdm bar over epochs
    """

    def __init__(self, cfg: Config, scheduler: Scheduler, workload: Workload | None = None,
                 progress: bool = False) -> None:
        self.cfg, self.sched, self.progress = cfg, scheduler, progress
        self.wl = workload if workload is not None else load_workload(cfg, stream(cfg.seed, "trace"))
        self.signals = site_signals(cfg)
        self.lat = latency_matrix_s(cfg)
        self.prof = load_profiles(cfg)
        self.fleet = build_fleet(cfg)
        self.route_rng = stream(cfg.seed, "routing")
        self.predictor = EwmaRegression(cfg.predictor_window_epochs, cfg.predictor_ewma_alpha)
        self.info = StaticInfo(
            dcs=cfg.dcs, sites=tuple(s.zone for s in self.signals.sites), models=MODELS,
            node_types=self.fleet.node_types, nodes_per_type=self.fleet.nodes_per_type,
            hosts=self.prof.hosts, latency_s=self.lat, epoch_s=cfg.epoch_s, epochs=cfg.epochs,
            weights=cfg.weights, cfg=cfg, token_sample=token_sample(self.wl))

    # ------------------------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        t_wall = time.perf_counter()
        cfg, wl, fl = self.cfg, self.wl, self.fleet
        self.env = simpy.Environment()
        self.sched.reset(self.info, stream(cfg.seed, "scheduler"))
        n_req, n_nodes = len(wl), len(fl.node_dc)
        M, D = len(MODELS), cfg.dcs

        # per-request state (plain lists in the hot path)
        self.r_model = wl.model.tolist()
        self.r_prompt = wl.prompt_tokens.tolist()
        self.r_output = wl.output_tokens.tolist()
        kv = physics.request_kv_gb(wl.prompt_tokens + wl.output_tokens,
                                   np.asarray(cfg.model_kv_mb_per_token)[wl.model])
        self.r_kv = kv.tolist()
        self.r_epoch = np.minimum((wl.t_s // cfg.epoch_s).astype(np.int64), cfg.epochs - 1)
        self.r_dc = [-1] * n_req
        self.r_net = [0.0] * n_req
        self.r_arr = [0.0] * n_req  # arrival time at the datacenter
        self.r_node = [-1] * n_req
        self.r_ttft = [math.nan] * n_req
        self.r_cold = [False] * n_req
        # split execution (Splitwise): phase, prompt node, (prompt wait, prompt load, prefill, step), KV transfer
        self.split = bool(getattr(self.sched, "split_phases", False))
        self.r_phase = [PHASE_WHOLE] * n_req
        self.r_pnode = [-1] * n_req
        self.r_split = [None] * n_req if self.split else None
        self.r_xfer = [0.0] * n_req if self.split else None

        # per-node state
        self.n_type = fl.node_type.tolist()
        self.n_mem = fl.mem_gb.tolist()
        self.res = [0] * n_nodes  # bitmask of resident models
        self.res_w = [0.0] * n_nodes  # resident weights, GB
        self.ready = [[0.0] * M for _ in range(n_nodes)]  # time each resident model is loaded
        self.kv = [0.0] * n_nodes
        self.act = [0] * n_nodes
        self.q = [None] * n_nodes
        self.busy_since = [0.0] * n_nodes
        self.busy_acc = [0.0] * n_nodes
        self.used_epoch = [-1] * n_nodes
        self.dc_running = [0] * D
        self.dc_queued = [0] * D
        self.weights_gb = list(cfg.model_weights_gb)
        self.load_s = fl.load_s.tolist()
        self.hosts = self.prof.hosts.tolist()
        self.events = 0
        self.cold_starts = np.zeros(D, dtype=np.int64)
        self.epoch_rows: list = []
        self.last: EpochResult | None = None
        self.failed = wl.failed
        counts = np.zeros((cfg.epochs, M, D), dtype=np.int64)  # arrivals per (epoch, model, origin), not failed
        ok = ~self.failed
        np.add.at(counts, (self.r_epoch[ok], wl.model[ok], wl.origin[ok]), 1)
        self.counts = counts
        self.bounds = np.searchsorted(wl.t_s, np.arange(cfg.epochs + 1) * cfg.epoch_s)

        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=cfg.epochs, desc=f"{self.sched.label()} D={D}", unit="epoch")
        self.env.process(self._epochs(bar))
        self.env.run(until=cfg.horizon_s)
        self._close_epoch(cfg.epochs - 1)
        if bar is not None:
            bar.update(1)
            bar.close()
        return RunRecord(
            cfg=cfg, scheduler=self.sched.label(), trace=wl.name, load_scale=wl.scale,
            sites=self.info.sites, epoch_rows=self.epoch_rows, req_epoch=self.r_epoch,
            req_dc=np.asarray(self.r_dc, dtype=np.int16), req_failed=self.failed,
            ttft_s=np.asarray(self.r_ttft), cold=np.asarray(self.r_cold), events=self.events,
            wall_s=time.perf_counter() - t_wall, prompt_node=np.asarray(self.r_pnode),
            token_node=np.asarray(self.r_node), extra_tables=self.sched.extra_results())

    # --- epochs ------------------------------------------------------------------------------------------
    def _epochs(self, bar):
        cfg = self.cfg
        for e in range(cfg.epochs):
            self.events += 1
            self._start_epoch(e)
            yield self.env.timeout(cfg.epoch_s)
            if e < cfg.epochs - 1:
                self._close_epoch(e)
                if bar is not None:
                    bar.update(1)

    def _observation(self, e: int, predicted: np.ndarray) -> Observation:
        D, M = self.cfg.dcs, len(MODELS)
        act = np.asarray(self.act)
        queued = np.array([len(x) if x else 0 for x in self.q])
        idle = (act == 0) & (queued == 0)
        res = np.asarray(self.res)
        resident = np.stack([np.bincount(self.fleet.node_dc, weights=(res >> m) & 1, minlength=D)
                             for m in range(M)], axis=1)
        s = self.signals
        return Observation(
            epoch=e, time_s=self.env.now, predicted_requests=predicted,
            free_nodes=np.bincount(self.fleet.node_dc, weights=idle, minlength=D).astype(int),
            resident_nodes=resident.astype(int), queued=np.asarray(self.dc_queued),
            ci_kg_per_kwh=s.ci_kg_per_kwh[e], gi_l_per_kwh=s.gi_l_per_kwh, tou_usd_per_kwh=s.tou_usd_per_kwh[e],
            cop=s.cop[e], last=self.last)

    def _start_epoch(self, e: int) -> None:
        cfg, wl = self.cfg, self.wl
        pred = self.predictor.predict()
        if pred is None:
            pred = np.zeros((len(MODELS), cfg.dcs))
        plan = self.sched.decide(self._observation(e, pred))
        self._set_warm(e, plan, pred)
        lo, hi = int(self.bounds[e]), int(self.bounds[e + 1])
        if self.sched.routes_online():
            self.env.process(self._online_arrivals(lo, hi, plan))
            return
        idx = np.arange(lo, hi)[~self.failed[lo:hi]]
        dc = draw_datacenters(plan, wl.model[idx], wl.origin[idx], self.route_rng)
        net = self.lat[wl.origin[idx], dc]
        arr = wl.t_s[idx] + net
        now = self.env.now
        env, cb = self.env, self._at_dc
        for i, d, n_s, a in zip(idx.tolist(), dc.tolist(), net.tolist(), arr.tolist()):
            self.r_dc[i], self.r_net[i], self.r_arr[i] = d, n_s, a
            env.timeout(a - now, i).callbacks.append(cb)

    def _online_arrivals(self, lo: int, hi: int, plan: np.ndarray):
        """Arrivals for a scheduler that routes each request itself (`route`), in trace order."""
        wl, env, live = self.wl, self.env, LiveView(self)
        cum = np.cumsum(plan, axis=2)
        for i in range(lo, hi):
            t = float(wl.t_s[i])
            if t > env.now:
                yield env.timeout(t - env.now)
            self.events += 1
            if self.failed[i]:
                continue
            m, o = int(wl.model[i]), int(wl.origin[i])
            req = Request(i, t, m, o, self.r_prompt[i], self.r_output[i])
            d = self.sched.route(req, live)
            if d is None:
                d = min(int(np.searchsorted(cum[m, o], self.route_rng.random(), side="right")), self.cfg.dcs - 1)
            elif not (isinstance(d, (int, np.integer)) and 0 <= d < self.cfg.dcs):
                from simcore.errors import PlanError
                raise PlanError(f"scheduler {self.sched.label()}: route() returned {d!r} for request {i}, "
                                f"not a datacenter index in [0, {self.cfg.dcs})")
            net = float(self.lat[o, d])
            self.r_dc[i], self.r_net[i], self.r_arr[i] = int(d), net, t + net
            env.timeout(net, i).callbacks.append(self._at_dc)

    def _set_warm(self, e: int, plan: np.ndarray, pred: np.ndarray) -> None:
        """Warm set (SPEC 6): per datacenter and model, plan x forecast / requests_per_warm_node nodes.

        Each (datacenter, pool) gets a weighted round-robin sequence over its warm nodes and a list of cold
        nodes to spill to. Pool m serves model m; with split execution (Splitwise) pool M + m is model m's
        prompt pool (prompt-GPU nodes) and pool 2M + m its token pool (token-GPU nodes).
        """
        cfg, fl = self.cfg, self.fleet
        N, M, D = cfg.nodes_per_dc, len(MODELS), cfg.dcs
        expected = np.einsum("mod,mo->dm", plan, pred)  # [D, M]
        res = np.asarray(self.res)
        self.warm = np.zeros(len(fl.node_dc), dtype=bool)
        self.pools = [dict() for _ in range(D)]
        now = self.env.now
        gpu_of_type = np.array([cfg.gpu_types.index(g) for g, _ in fl.node_types])
        for d in range(D):
            base = d * N
            types = fl.node_type[base:base + N]
            taken = np.zeros(N, dtype=bool)
            for m in range(M - 1, -1, -1):  # the large model first: it fits fewer places
                can = np.asarray(self.hosts[m])[types]
                k = max(cfg.min_warm_nodes, math.ceil(expected[d, m] / cfg.requests_per_warm_node - 1e-9))
                resident = ((res[base:base + N] >> m) & 1).astype(bool)
                if self.split:
                    share = cfg.splitwise_prompt_node_share
                    roles = ((M + m, cfg.splitwise_prompt_gpu, math.ceil(k * share)),
                             (2 * M + m, cfg.splitwise_token_gpu, math.ceil(k * (1.0 - share))))
                else:
                    roles = ((m, None, k),)
                for key, gpu, k_role in roles:
                    ok = can if gpu is None else can & (gpu_of_type[types] == cfg.gpu_types.index(gpu))
                    order = np.lexsort((np.arange(N), ~resident, taken, ~ok))
                    order = order[ok[order]]
                    k_role = max(cfg.min_warm_nodes, k_role)
                    chosen, rest = order[:k_role], order[k_role:]
                    taken[chosen] = True
                    nodes = chosen + base
                    self.warm[nodes] = True
                    # [WRR sequence, its pointer, cold nodes, their pointer]
                    self.pools[d][key] = [wrr_sequence(nodes, fl.gpus[nodes] // min(cfg.gpu_counts)), 0,
                                          (rest + base).tolist(), 0]
                    for n in nodes.tolist():
                        self._preload(n, m, now)

    def _preload(self, n: int, m: int, now: float) -> None:
        """A newly warm node starts loading the model at the epoch start (ready LA_load later)."""
        if (self.res[n] >> m) & 1:
            return
        if self.act[n] == 0 and self.res_w[n] + self.weights_gb[m] > self.n_mem[n]:
            self.res[n], self.res_w[n] = 0, 0.0  # evict idle models to make room
        if self.res_w[n] + self.weights_gb[m] + self.kv[n] <= self.n_mem[n]:
            self._load(n, m, now)

    def _load(self, n: int, m: int, now: float) -> None:
        """Model m's weights become resident on node n, usable LA_load from now."""
        self.res[n] |= 1 << m
        self.res_w[n] += self.weights_gb[m]
        self.ready[n][m] = now + self.load_s[m][self.n_type[n]]

    def _close_epoch(self, e: int) -> None:
        """Eq. 4-10 for epoch e, then park the nodes that did nothing (they drop their models)."""
        cfg, fl, s = self.cfg, self.fleet, self.signals
        now = (e + 1) * cfg.epoch_s
        act = np.asarray(self.act)
        for n in np.flatnonzero(act).tolist():  # still busy: split the busy time at the boundary
            self.busy_acc[n] += now - self.busy_since[n]
            self.busy_since[n] = now
            self.used_epoch[n] = e + 1  # ... and it is active in the next epoch too
        busy = np.asarray(self.busy_acc) / cfg.epoch_s
        active = self.warm | (np.asarray(self.used_epoch) >= e) | (act > 0)
        pc = physics.pstate_power_fraction(busy, active, cfg.pc_pstates, cfg.pstate_busy_limits, cfg.pc_parked)
        node_kwh = physics.node_it_kwh(pc, fl.tdp_w, cfg.epoch_s)
        it = physics.datacenter_it_kwh(node_kwh, fl.node_dc, cfg.dcs)
        met = physics.datacenter_epoch_metrics(it, s.cop[e], s.tou_usd_per_kwh[e], s.gi_l_per_kwh,
                                               s.ci_kg_per_kwh[e], cfg)
        for n in np.flatnonzero(~active).tolist():
            self.res[n], self.res_w[n] = 0, 0.0
        self.busy_acc = [0.0] * len(self.busy_acc)

        # p-state census, so Eq. 4-5 can be re-checked from the results file
        levels = np.where(active, np.searchsorted(-np.asarray(cfg.pc_pstates), -pc), len(cfg.pc_pstates))
        tdp_kw = np.zeros((cfg.dcs, len(cfg.pc_pstates) + 1))
        np.add.at(tdp_kw, (fl.node_dc, levels), fl.tdp_w / 1000.0)
        warm = np.bincount(fl.node_dc, weights=self.warm, minlength=cfg.dcs)
        n_active = np.bincount(fl.node_dc, weights=active, minlength=cfg.dcs)
        lo, hi = int(self.bounds[e]), int(self.bounds[e + 1])
        dcs = np.asarray(self.r_dc[lo:hi], dtype=np.int64)  # int even for an epoch without arrivals
        requests = np.bincount(dcs[dcs >= 0], minlength=cfg.dcs)
        ttft = np.asarray(self.r_ttft[lo:hi])
        done = (dcs >= 0) & ~np.isnan(ttft)
        tsum = np.bincount(dcs[done], weights=ttft[done], minlength=cfg.dcs)
        tcnt = np.bincount(dcs[done], minlength=cfg.dcs)
        viol = np.bincount(dcs[done], weights=ttft[done] > cfg.sla_ttft_s, minlength=cfg.dcs)
        parked_share = 1.0 - n_active / cfg.nodes_per_dc
        for d in range(cfg.dcs):
            row = {"epoch": e, "dc": d, "site": self.info.sites[d], "epoch_h": cfg.epoch_s / 3600.0,
                   "requests": int(requests[d]), "active_nodes": int(n_active[d]), "warm_nodes": int(warm[d]),
                   "parked_nodes": int(cfg.nodes_per_dc - n_active[d]), "cold_starts": int(self.cold_starts[d])}
            for j, name in enumerate(("p0", "p1", "p2", "p3", "parked")):
                row[f"tdp_kw_{name}"] = float(tdp_kw[d, j])
            row.update({"cop": float(s.cop[e, d]), "tou_usd_per_kwh": float(s.tou_usd_per_kwh[e, d]),
                        "ci_kg_per_kwh": float(s.ci_kg_per_kwh[e, d]), "gi_l_per_kwh": float(s.gi_l_per_kwh[d])})
            row.update({k: float(v[d]) for k, v in met.items()})
            self.epoch_rows.append(row)
        self.cold_starts[:] = 0
        self.last = EpochResult(
            epoch=e, requests=requests, ttft_sum_s=tsum, ttft_count=tcnt, sla_violations=viol.astype(int),
            energy_kwh=met["total_kwh"], carbon_kg=met["carbon_kg"], water_l=met["water_l"],
            cost_usd=met["cost_usd"], parked_share=parked_share)
        self.predictor.update(self.counts[e])
        self.sched.observe(self.last)

    # --- requests (the hot path) -------------------------------------------------------------------------------
    def _fits(self, n: int, m: int, kv: float) -> bool:
        """Admission test (Eq. 1): weights (+ the model if not resident) + KV within the pooled memory."""
        if self.act[n] >= self.cfg.max_batch:
            return False
        w = self.res_w[n] if (self.res[n] >> m) & 1 else self.res_w[n] + self.weights_gb[m]
        if physics.node_memory_gb(w, self.kv[n] + kv) <= self.n_mem[n]:
            return True
        # an idle node may drop its other models to make room
        return self.act[n] == 0 and physics.node_memory_gb(self.weights_gb[m], kv) <= self.n_mem[n]

    def _at_dc(self, ev) -> None:
        """A request reaches its datacenter: the balancer places it (its prompt phase under split execution)."""
        self.events += 1
        i = ev.value
        m = self.r_model[i]
        if self.split:
            self.r_phase[i] = PHASE_PROMPT
            self._place(i, len(MODELS) + m)
        else:
            self._place(i, m)

    def _place(self, i: int, key: int) -> None:
        """Weighted round-robin over the pool's warm nodes, skipping full ones, then spill to cold nodes; when
        every node is full, wait in the FIFO queue of the warm node with the shortest queue."""
        d, m, kv = self.r_dc[i], self.r_model[i], self.r_kv[i]
        q, fits = self.q, self._fits
        pool = self.pools[d][key]
        seq = pool[0]
        L = len(seq)
        p = pool[1]
        for _ in range(L):
            n = seq[p]
            p = p + 1 if p + 1 < L else 0
            if not q[n] and fits(n, m, kv):
                pool[1] = p
                self._start(n, i)
                return
        cold = pool[2]
        c = pool[3]
        while c < len(cold):  # spill over to cold nodes (they join the rotation)
            n = cold[c]
            c += 1
            if not q[n] and fits(n, m, kv):
                pool[3] = c
                seq.append(n)
                self._start(n, i)
                return
        pool[3] = c
        n = min(seq, key=lambda k: len(q[k]) if q[k] else 0)
        if q[n] is None:
            q[n] = deque()
        q[n].append(i)
        self.dc_queued[d] += 1

    def _start(self, n: int, i: int) -> None:
        """Start request i (or its current phase) on node n: weight load if cold, then compute."""
        env = self.env
        now = env.now
        m, t = self.r_model[i], self.n_type[n]
        if not (self.res[n] >> m) & 1:  # cold start: load the weights (evicting idle models if needed)
            if self.res_w[n] + self.weights_gb[m] + self.kv[n] + self.r_kv[i] > self.n_mem[n]:
                self.res[n], self.res_w[n] = 0, 0.0
            self._load(n, m, now)
            if self.r_phase[i] != PHASE_TOKEN:
                self.r_cold[i] = True
            self.cold_starts[self.r_dc[i]] += 1
        load_wait = max(0.0, self.ready[n][m] - now)
        batch = self.act[n] + 1
        out = self.r_output[i]
        phase = self.r_phase[i]
        if phase == PHASE_PROMPT:  # Splitwise prompt phase: prefill only; the first token comes from here
            prefill = self.prof.prefill_s(m, t, self.r_prompt[i])
            self.r_split[i] = (now - self.r_arr[i], load_wait, prefill, self.prof.decode_step(m, t, batch))
            busy_s = load_wait + prefill
            self.r_pnode[i] = n
        elif phase == PHASE_TOKEN:  # Splitwise token phase: decode on the token node, after the KV transfer
            wait, p_load, prefill, p_step = self.r_split[i]
            decode = out * self.prof.decode_step(m, t, batch)
            exec_s = prefill + self.r_xfer[i] + decode
            first = physics.first_token_compute_s(self.cfg.ttft_model, exec_s, out, prefill, p_step)
            self.r_ttft[i] = physics.request_ttft_s(wait, p_load, self.r_net[i], first)
            busy_s = load_wait + decode
            self.r_node[i] = n
        else:
            prefill = self.prof.prefill_s(m, t, self.r_prompt[i])
            step = self.prof.decode_step(m, t, batch)
            exec_s = prefill + out * step
            first = physics.first_token_compute_s(self.cfg.ttft_model, exec_s, out, prefill, step)
            self.r_ttft[i] = physics.request_ttft_s(now - self.r_arr[i], load_wait, self.r_net[i], first)
            busy_s = load_wait + exec_s
            self.r_node[i] = n
        if self.act[n] == 0:
            self.busy_since[n] = now
        self.act[n] = batch
        self.kv[n] += self.r_kv[i]
        self.used_epoch[n] = max(self.used_epoch[n], int(now // self.cfg.epoch_s))
        if phase != PHASE_TOKEN:
            self.dc_running[self.r_dc[i]] += 1
        env.timeout(busy_s, i).callbacks.append(self._finish)

    def _finish(self, ev) -> None:
        """A node finishes its part of request i: release the KV cache, admit queued requests in FIFO order;
        after a Splitwise prompt phase, send the KV cache to the token pool."""
        self.events += 1
        i = ev.value
        phase = self.r_phase[i]
        n = self.r_pnode[i] if phase == PHASE_PROMPT else self.r_node[i]
        self.act[n] -= 1
        self.kv[n] -= self.r_kv[i]
        now = self.env.now
        if self.act[n] == 0:
            self.kv[n] = 0.0  # no float drift
            self.busy_acc[n] += now - self.busy_since[n]
        if phase == PHASE_PROMPT:
            self.r_phase[i] = PHASE_TOKEN
            self.r_xfer[i] = physics.kv_transfer_latency_s(
                physics.request_kv_gb(self.r_prompt[i], self.cfg.model_kv_mb_per_token[self.r_model[i]]),
                self.cfg.splitwise_kv_link_gb_per_s)
            self.env.timeout(self.r_xfer[i], i).callbacks.append(self._to_token_pool)
        else:
            self.dc_running[self.r_dc[i]] -= 1
        qn = self.q[n]
        while qn:
            j = qn[0]
            if not self._fits(n, self.r_model[j], self.r_kv[j]):
                break
            qn.popleft()
            self.dc_queued[self.r_dc[j]] -= 1
            self._start(n, j)
        self.used_epoch[n] = max(self.used_epoch[n], int(now // self.cfg.epoch_s))

    def _to_token_pool(self, ev) -> None:
        """The KV cache has reached the token pool: place the decode phase."""
        self.events += 1
        i = ev.value
        self._place(i, 2 * len(MODELS) + self.r_model[i])


TOKEN_SAMPLE_SIZE = 20000  # requests whose token pairs stand for the workload in service-time means


def token_sample(wl: Workload) -> tuple:
    """(prompt, output) of an evenly spaced sample of the workload's served requests (deterministic)."""
    ok = np.flatnonzero(~wl.failed)
    if len(ok) > TOKEN_SAMPLE_SIZE:
        ok = ok[np.linspace(0, len(ok) - 1, TOKEN_SAMPLE_SIZE).astype(int)]
    if len(ok) == 0:
        from traces.loader import token_pairs
        return token_pairs()
    return wl.prompt_tokens[ok], wl.output_tokens[ok]


def draw_datacenters(plan: np.ndarray, model: np.ndarray, origin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each request's datacenter, drawn from its (model, origin) row of the plan (vectorized)."""
    if len(model) == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(plan, axis=2)[model, origin]  # [n, D]
    u = rng.random(len(model))
    return np.minimum((u[:, None] >= cum).sum(axis=1), plan.shape[2] - 1)


def simulate(cfg: Config, scheduler: Scheduler, workload: Workload | None = None, progress: bool = False) -> RunRecord:
    """Run one simulation and return its record."""
    return Engine(cfg, scheduler, workload, progress).run()
