"""The SimPy event engine: the ground truth for every reported number (SPEC 2, 4-6; docs/model.md).

Each epoch: the predictor forecasts, the scheduler plans, each datacenter picks its warm set (nodes enough for
its predicted work at `warm_target_utilization` of their serving capacity, `simcore.capacity`), and the epoch's
requests are routed. Requests are then played as SimPy events, in one of two node models:

**Exact (cohort_size = 1)**: every request is one real request.

    arrival at the datacenter (trace arrival + one-way network transfer, Eq. 2)
      -> weighted round-robin balancer over the warm set, spilling to cold nodes (ref. [26])
      -> admission if the node's memory holds it (Eq. 1) and its batch is not full, else the pool's FIFO queue
         (served by the first of its nodes with room)
      -> weight load if the model is not resident (LA_load) -> its prefill pass, after the node's pending ones
         (the GPU's decode steps wait) -> first token (TTFT, Eq. 3) -> decode steps shared with the node's batch
         -> completion (KV released, queued requests admitted)

A node is a continuous-batching server (docs/model.md 'Exact mode'): its decode clock counts the decode steps
run, each step timed by the node's batch, and stands still during prefill passes; a request is done when the
clock has run its output tokens. One event per node completion, whatever the batch.

**Cohorts (cohort_size = C > 1)**: each simulated request stands for C real requests, those that reached its
datacenter pool since the pool's previous cohort. A pool (datacenter x model, or x phase under split execution)
is a fluid FIFO server: its nodes drain the backlog at their summed throughput (node capacity `node_rps`, from
Eq. 1 and the profiles), a node adding its capacity once its weights are loaded. Between two cohorts the
arrival rate is C / gap, so the backlog follows in closed form, and each real request's wait is read off the
pool's cumulative arrival and departure curves once it has departed (exact whatever the capacity does after it
arrived); when the backlog grows faster than the pool drains, cold nodes are drawn in (they pay LA_load),
and when no node is left the backlog grows: capacity binds. Why this design, and its agreement with the exact
model: docs/model.md "Cohorts" and `tests/test_cohorts.py`.

**Drain** (`cfg.drain`, on by default): after the horizon no request arrives and the epochs go on, each with a
warm set sized to the backlog (no plan is asked for, nothing is observed), until every arrived request has its
first token or `drain_max_h` has passed; the drain's epochs are rows with `drain = 1` and count in every total, so
a scheduler that leaves a backlog pays for serving it (docs/model.md 'Drain').

At each epoch end every node gets a p-state from its utilization (share of its serving capacity used, Eq. 4) or
is parked (dropping its models), and the epoch's energy, cost, water and carbon follow from Eq. 4-10
(`simcore.physics`, shared with the evaluator).

Performance: per-node and per-pool state lives in plain Python lists (scalar indexing of numpy arrays is slow);
an exact request costs two SimPy events (datacenter arrival, completion), a cohort one; everything per-epoch
is vectorized.
"""
from __future__ import annotations

import bisect
import heapq
import functools
import math
import time
from collections import deque

import numpy as np
import simpy

from simcore import physics
from simcore.capacity import build_fleet, datacenter_utilization, serving_capacity
from simcore.config import MODELS, Config
from simcore.epochs import Epoch, Epochs, other_days
from simcore.errors import ConfigError
from simcore.evaluator import EpochEvaluator
from simcore.interface import EpochResult, Observation, Request, RunRecord, Scheduler, StaticInfo
from simcore.profiles import load_profiles
from simcore.queueing import bin_rate_profile, bins_per_epoch, pool_queueing_wait, prefill_queue_wait, segment_waits
from simcore.rng import stream
from topology.graph import latency_matrix_s
from topology.sites import HOURS_IN_DATA, S_PER_HOUR, epoch_hour_index, site_signals
from traces.loader import Workload, load_workload


WRR_RESOLUTION = 8  # balancer weights resolve node throughputs to 1/8 of the slowest node's
WAIT_SAMPLES = 16  # positions of a cohort pool's arrival segment at which its fluid wait is read off the curves
RESOLVE_TOLERANCE = 1e-9  # relative: a segment counts as departed when D is this close to its end
DECODE_CLOCK_TOLERANCE = 1e-7  # decode steps: a request counts as done when the node's clock is this close
DRAIN_TOLERANCE = 1e-6  # real requests: a cohort pool's backlog below this is float residue, not a request


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
        return int(self._e.dc_queued[dc])


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
        self.C = int(self.wl.cohort)
        self.drain_cap = drain_epochs(cfg)
        # the grid signals cover the drain's real hours too (epochs E .. E + drain_cap - 1)
        self.signals = site_signals(cfg.replace(hours=cfg.hours + self.drain_cap * cfg.epoch_s / S_PER_HOUR)
                                    if self.drain_cap else cfg)
        self.lat = latency_matrix_s(cfg)
        self.prof = load_profiles(cfg)
        self.fleet = build_fleet(cfg)
        sample = token_sample(self.wl)
        self.capacity = serving_capacity(cfg, self.fleet, self.prof, *sample)
        self.route_rng = stream(cfg.seed, "routing")
        self.epochs = Epochs(cfg, self.wl, self.signals)
        rate_profile = (bin_rate_profile(self.wl.t_s[~self.wl.failed], cfg.epoch_s, cfg.cohort_bin_s, cfg.horizon_s)
                        if self.C > 1 else None)
        self.info = StaticInfo(
            dcs=cfg.dcs, sites=tuple(s.zone for s in self.signals.sites), models=MODELS, latency_s=self.lat,
            epoch_s=cfg.epoch_s, epochs=cfg.epochs, weights=cfg.weights, sla_ttft_s=cfg.sla_ttft_s,
            ttft_model=cfg.ttft_model, warm_target_utilization=cfg.warm_target_utilization, fleet=self.fleet,
            profiles=self.prof, capacity=self.capacity,
            evaluator=EpochEvaluator(cfg, self.lat, self.fleet, self.prof, *sample, self.capacity, rate_profile),
            token_sample=sample, cohort_size=self.C, rate_profile=rate_profile,
            other_days=functools.partial(other_days, cfg, self.signals))

    # ------------------------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        t_wall = time.perf_counter()
        cfg, wl, fl = self.cfg, self.wl, self.fleet
        self.env = simpy.Environment()
        self.sched.reset(self.info, stream(cfg.seed, "scheduler"))
        n_req, n_nodes = len(wl), len(fl.node_dc)
        M, D = len(MODELS), cfg.dcs
        self.fluid = self.C > 1
        self.mode = self.sched.execution()  # whole, or split in phases (`simcore.execution`)
        self.mode.check(cfg.gpu_types, self.sched.label())
        self.phases = self.mode.phases
        self.last_phase = len(self.phases) - 1
        self.K = len(self.phases) * M  # pool keys per datacenter: phase j of model m is key j x M + m

        # per-request state (plain lists in the hot path)
        self.r_model = wl.model.tolist()
        self.r_prompt = wl.prompt_tokens.tolist()
        self.r_output = wl.output_tokens.tolist()
        kv = physics.request_kv_gb(wl.prompt_tokens + wl.output_tokens,
                                   np.asarray(cfg.model_kv_mb_per_token)[wl.model])
        self.r_kv = kv.tolist()
        self.r_epoch = self.epochs.epoch_of
        self.r_dc = [-1] * n_req
        self.r_net = [0.0] * n_req
        self.r_arr = [0.0] * n_req  # arrival time at the datacenter
        self.r_node = [-1] * n_req
        self.r_ttft = [math.nan] * n_req
        self.r_cold = [False] * n_req
        # phases (`simcore.execution`): the current one, the node of the first when split, what the first token
        # waited for at the first phase (wait, weight load, prefill, decode step), the KV transfer before the last
        self.r_phase = [0] * n_req
        self.r_pnode = [-1] * n_req
        self.r_split = [None] * n_req if self.last_phase else None
        self.r_xfer = [0.0] * n_req if self.last_phase else None

        # per-node state
        self.n_type = fl.node_type.tolist()
        self.n_mem = fl.mem_gb.tolist()
        self.res = [0] * n_nodes  # bitmask of resident models
        self.res_w = [0.0] * n_nodes  # resident weights, GB
        self.ready = [[0.0] * M for _ in range(n_nodes)]  # time each resident model is loaded
        self.kv = [0.0] * n_nodes
        self.act = [0] * n_nodes  # requests admitted (a batch slot and their KV held), in prefill or decoding
        # the node's GPU (`_start`, `_advance_node`): prefill passes run one after another until pf_free; the
        # decode clock dv counts decode steps done (it stands still during prefill passes and weight loads);
        # each admitted request finishes when dv reaches its entry in dheap; dnext / dver: the node's scheduled
        # completion event and its version (an earlier one supersedes it)
        self.pf_free = [0.0] * n_nodes
        self.dv = [0.0] * n_nodes
        self.dv_t = [0.0] * n_nodes
        self.dheap = [[] for _ in range(n_nodes)]
        self.dnext = [math.inf] * n_nodes
        self.dver = [0] * n_nodes
        self.dmodel = [0] * n_nodes  # the model whose decode step times the node's steps (the newest admitted)
        self.serves = [()] * n_nodes  # pools whose queue the node takes requests from this epoch
        self.pq: dict = {}  # pool id -> its FIFO queue of requests waiting for a batch slot (kept across epochs)
        self._step = self.prof.decode_step_s.tolist()
        self.util_acc = [0.0] * n_nodes  # node-seconds of serving capacity used this epoch (Eq. 4's utilization)
        self.used_epoch = [-1] * n_nodes
        self.dc_running = [0] * D
        self.dc_queued = [0] * D
        self.dcm_queued = [[0] * M for _ in range(D)]  # the same by model
        self.weights_gb = list(cfg.model_weights_gb)
        self.load_s = fl.load_s.tolist()
        self.hosts = self.prof.hosts.tolist()
        self.batch_full = self.capacity.batch.tolist()  # [M][T] B*
        self.scv = self.capacity.service_scv.tolist()  # [M][T] service-time SCV at B*
        self.step_full = [[self.prof.decode_step(m, t, max(b, 1)) for t, b in enumerate(row)]
                          for m, row in enumerate(self.batch_full)]
        self.served_dm = np.zeros((D, M))  # real requests started per (datacenter, model) this epoch
        self.events = 0
        self.cold_starts = np.zeros(D, dtype=np.int64)
        self.epoch_rows: list = []
        self.last: EpochResult | None = None
        self.failed = wl.failed
        # cohort pools are played in bins; the drain checks its backlog at the same steps
        self.bins_per_epoch = bins_per_epoch(cfg.epoch_s, cfg.cohort_bin_s)
        self.bin_s = cfg.epoch_s / self.bins_per_epoch
        self.epoch_len_s = cfg.epoch_s
        self.unserved = int(np.count_nonzero(~wl.failed))  # exact: requests whose first token is not yet known
        if self.fluid:
            self._init_pools()

        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=cfg.epochs, desc=f"{self.sched.label()} D={D}", unit="epoch")
        self.env.run(until=self.env.process(self._epochs(bar)))
        if self.fluid:
            self._resolve_at_horizon()
        self._close_epoch(self.last_epoch)
        if bar is not None:
            bar.update(1)
            bar.close()
        if self.fluid:
            ttft, served, late = self.f_ttft, self.f_served, self.f_late
            self.r_dc = self.f_dc.tolist()
        else:
            ttft = np.asarray(self.r_ttft)
            served = (~np.isnan(ttft)).astype(float)
            late = physics.sla_violated(ttft, cfg.sla_ttft_s).astype(float)
        return RunRecord(
            cfg=cfg, scheduler=self.sched.label(), scheduler_params=self.sched.params.to_dict(), trace=wl.name,
            load_scale=wl.scale, sites=self.info.sites, epoch_rows=self.epoch_rows, req_epoch=self.r_epoch,
            req_dc=np.asarray(self.r_dc, dtype=np.int16), req_failed=self.failed,
            ttft_s=ttft, cold=np.asarray(self.r_cold), events=self.events,
            wall_s=time.perf_counter() - t_wall, prompt_node=np.asarray(self.r_pnode),
            token_node=np.asarray(self.r_node), extra_tables=self.sched.extra_results(), cohort=self.C,
            served=served, sla_late=late, queued_at_horizon=self.queued_at_horizon,
            drain_h=((self.last_epoch - cfg.epochs) * cfg.epoch_s + self.epoch_len_s) / S_PER_HOUR
            if self.last_epoch >= cfg.epochs else 0.0)

    # --- epochs ------------------------------------------------------------------------------------------
    def _epochs(self, bar):
        cfg = self.cfg
        for ep in self.epochs:
            e = ep.index
            self.events += 1
            self._start_epoch(ep)
            yield from self._play_epoch()
            if e < cfg.epochs - 1:
                self._close_epoch(e)
                if bar is not None:
                    bar.update(1)
        self.last_epoch = e = cfg.epochs - 1
        self.queued_at_horizon = self._backlog()
        while e < cfg.epochs - 1 + self.drain_cap and self._backlog():
            self._close_epoch(e)
            self.last_epoch = e = e + 1
            self._set_warm(e, self._queued_real())  # the drain's predicted work: the backlog
            yield from self._play_epoch(drain=True)

    def _play_epoch(self, drain: bool = False):
        """Play one epoch (cohort pools bin by bin); a drain epoch ends at the first bin with no backlog left."""
        if not (self.fluid or drain):
            yield self.env.timeout(self.cfg.epoch_s)
            return
        for b in range(self.bins_per_epoch):
            yield self.env.timeout(self.bin_s)
            if self.fluid:
                self._play_bin()
            if drain:
                self.epoch_len_s = (b + 1) * self.cfg.epoch_s / self.bins_per_epoch
                if not self._backlog():
                    return

    def _backlog(self) -> float:
        """Real requests that arrived and have no first token yet (the drain goes on while there are any)."""
        if not self.fluid:
            return float(self.unserved)
        first = [p for p in range(len(self.pW)) if (p % self.K) < len(MODELS)]
        waiting = sum(self.pW[p] for p in first)
        on_way = sum(int(np.count_nonzero(self.f_pool[np.concatenate(parts)] % self.K < len(MODELS)))
                     for parts in self.pending.values())  # first phases still on their way to their pool
        return waiting + on_way * self.C if waiting > DRAIN_TOLERANCE or on_way else 0.0

    def _observation(self, ep: Epoch) -> Observation:
        """The epoch's observation (`Epochs.observation`) with the fleet's state at its start."""
        D, M = self.cfg.dcs, len(MODELS)
        if self.fluid:
            idle = np.asarray(self.node_pool) < 0
        else:
            idle = np.asarray(self.act) == 0
        res = np.asarray(self.res)
        resident = np.stack([np.bincount(self.fleet.node_dc, weights=(res >> m) & 1, minlength=D)
                             for m in range(M)], axis=1)
        return self.epochs.observation(
            ep, free_nodes=np.bincount(self.fleet.node_dc, weights=idle, minlength=D).astype(int),
            resident_nodes=resident.astype(int), queued_by_model=self._queued_real(), last=self.last)

    def _queued_real(self) -> np.ndarray:
        """[D, M] real requests waiting for a node, by model."""
        if self.fluid:
            D, M = self.cfg.dcs, len(MODELS)
            key = np.asarray(self.pool_dc) * M + np.asarray(self.pool_model)
            return np.bincount(key, weights=self.pW, minlength=D * M).reshape(D, M)
        return np.asarray(self.dcm_queued, dtype=float)

    def _start_epoch(self, ep: Epoch) -> None:
        wl, e = self.wl, ep.index
        plan = self.sched.decide(self._observation(ep))
        self._set_warm(e, np.einsum("mod,mo->dm", plan, ep.forecast))
        lo, hi = ep.first, ep.stop
        if self.fluid:
            self._epoch_first_token(lo, hi)
        if self.sched.routes_online():
            self.env.process(self._online_arrivals(lo, hi, plan))
            return
        idx = np.arange(lo, hi)[~self.failed[lo:hi]]
        dc = draw_datacenters(plan, wl.model[idx], wl.origin[idx], self.route_rng, low_discrepancy=self.fluid)
        net = self.lat[wl.origin[idx], dc]
        arr = wl.t_s[idx] + net
        if self.fluid:
            self.f_dc[idx], self.f_net[idx] = dc, net
            self.f_routed[idx] = True
            self.plan_mean[e] = plan.mean(axis=1)
            self._to_bins(idx, dc * self.K + wl.model[idx].astype(np.int64), arr)
            return
        now = self.env.now
        env, cb = self.env, self._at_dc
        for i, d, n_s, a in zip(idx.tolist(), dc.tolist(), net.tolist(), arr.tolist()):
            self.r_dc[i], self.r_net[i], self.r_arr[i] = d, n_s, a
            env.timeout(a - now, i).callbacks.append(cb)

    def _online_arrivals(self, lo: int, hi: int, plan: np.ndarray):
        """Arrivals for a scheduler that routes each request itself (`route`), in trace order."""
        wl, env, live = self.wl, self.env, LiveView(self)
        cum = np.cumsum(plan, axis=2)
        cb = self._at_dc
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
            if self.fluid:
                self.f_dc[i], self.f_net[i] = d, net
                self._to_bins(np.array([i]), np.array([int(d) * self.K + m]), np.array([t + net]))
            else:
                env.timeout(net, i).callbacks.append(cb)

    # --- warm set ------------------------------------------------------------------------------------------------
    def _set_warm(self, e: int, expected: np.ndarray) -> None:
        """Warm set (SPEC 6): per datacenter and model, the nodes whose serving capacity covers the predicted
        work `expected` [D, M] (plan x forecast; in the drain, the backlog) at `warm_target_utilization`, at least
        `min_warm_nodes`; resident nodes first.

        Exact model: each (datacenter, pool) gets a weighted round-robin sequence over its warm nodes and a list
        of cold nodes to spill to. Cohorts: each pool's nodes and spill list set its fluid capacity.
        """
        cfg, fl = self.cfg, self.fleet
        N, M, D = cfg.nodes_per_dc, len(MODELS), cfg.dcs
        # a datacenter whose forecast needs more than the target share of its capacity keeps nodes warm at the
        # forecast's own utilization (capped at 1), so every model gets its share rather than the first-placed
        target = np.clip(datacenter_utilization(expected, self.capacity.requests_per_epoch),
                         cfg.warm_target_utilization, 1.0)  # [D]
        per_node = self.capacity.node_rps * cfg.epoch_s  # [M, T] at full utilization
        res = np.asarray(self.res)
        self.warm = np.zeros(len(fl.node_dc), dtype=bool)
        self.pools = [dict() for _ in range(D)]
        now = self.env.now
        gpu_of_type = np.array([cfg.gpu_types.index(g) for g, _ in fl.node_types])
        if self.fluid:
            self._fluid_epoch_reset(now)
        self.owner = [-1] * len(fl.node_dc)  # the pool a node serves this epoch (a node serves one pool)
        self.serves = [()] * len(fl.node_dc)
        hosts = np.asarray(self.hosts, dtype=bool)
        for d in range(D):
            base = d * N
            types = fl.node_type[base:base + N]
            taken = np.zeros(N, dtype=bool)
            for m in range(M - 1, -1, -1):  # the large model first: it fits fewer places
                # nodes the models still to place need for their minimum warm sets (one pool per phase)
                reserve = cfg.min_warm_nodes * len(self.phases) * m
                can = hosts[m][types] & ~taken
                resident = ((res[base:base + N] >> m) & 1).astype(bool)
                order = np.lexsort((np.arange(N), ~resident, ~can))
                order = order[can[order]]
                cum = np.cumsum(per_node[m][types[order]] * target[d])
                k = int(np.searchsorted(cum, expected[d, m] - 1e-9)) + 1 if expected[d, m] > 0 else 0
                k = max(cfg.min_warm_nodes * len(self.phases), min(k, len(order) - reserve))
                for j, (phase, k_role) in enumerate(zip(self.phases, self.mode.pool_nodes(k, cfg.min_warm_nodes))):
                    key = j * M + m
                    ok = hosts[m][types] & ~taken
                    if phase.gpu is not None:
                        ok &= gpu_of_type[types] == cfg.gpu_types.index(phase.gpu)
                    order = np.lexsort((np.arange(N), ~resident, ~ok))
                    order = order[ok[order]]
                    chosen, rest = order[:k_role], order[k_role:]
                    taken[chosen] = True
                    nodes = chosen + base
                    self.warm[nodes] = True
                    pool_id = d * self.K + key
                    for n in nodes.tolist():
                        self.owner[n] = pool_id
                        self.serves[n] = (pool_id,)
                        self._preload(n, m, now, e == 0)
                    if not len(nodes) and self.fluid:
                        raise ConfigError(f"nodes_per_dc={N}: datacenter {d} has no node left for a pool of "
                                          f"{MODELS[m]}; cohorts need a node per pool (use --cohort-size 1)")
                    if not len(nodes):  # fewer nodes than pools (a small fleet): share the other pools' nodes
                        nodes = np.flatnonzero(hosts[m][types] & taken) + base
                        for n in nodes.tolist():
                            self.serves[n] = self.serves[n] + (pool_id,)
                    if self.fluid:
                        self._fluid_pool(d, key, m, nodes.tolist(), (rest + base).tolist(), now)
                    else:  # [WRR sequence, its pointer, cold nodes, their pointer, pool id]
                        self.pools[d][key] = [wrr_sequence(nodes, self._wrr_weights(key, m, nodes)), 0,
                                              (rest + base).tolist(), 0, pool_id]
        if not self.fluid:  # requests still queued for a batch slot go to the pools' new nodes
            for pool_id, q in self.pq.items():
                if q:
                    for n in self.pools[pool_id // self.K][pool_id % self.K][0]:
                        self._admit(n, now)

    def _wrr_weights(self, key: int, m: int, nodes: np.ndarray) -> np.ndarray:
        """Balancer weights: each node's throughput for the pool's work, in whole multiples of 1/WRR_RESOLUTION of
        the slowest node's."""
        rps = self.capacity.node_rps[m][self.fleet.node_type[nodes]]
        if not len(rps):
            return np.zeros(0, dtype=int)
        return np.maximum(np.rint(WRR_RESOLUTION * rps / max(rps.min(), 1e-300)), 1).astype(int)

    def _preload(self, n: int, m: int, now: float, running: bool = False) -> None:
        """A newly warm node starts loading the model at the epoch start (ready LA_load later); with `running`
        (epoch 0: the service was running before the horizon) the model is already resident."""
        if (self.res[n] >> m) & 1:
            return
        if self.act[n] == 0 and self.res_w[n] + self.weights_gb[m] > self.n_mem[n]:
            self.res[n], self.res_w[n] = 0, 0.0  # evict idle models to make room
        if self.res_w[n] + self.weights_gb[m] + self.kv[n] <= self.n_mem[n]:
            self._load(n, m, now, running)

    def _load(self, n: int, m: int, now: float, resident: bool = False) -> None:
        """Model m's weights become resident on node n, usable LA_load from now (a cold start), or at once if
        they were `resident` before the horizon (no cold start)."""
        self.res[n] |= 1 << m
        self.res_w[n] += self.weights_gb[m]
        if resident:
            self.ready[n][m] = now
            return
        self.ready[n][m] = now + self.load_s[m][self.n_type[n]]
        self.cold_starts[n // self.cfg.nodes_per_dc] += 1

    # --- epoch accounting ---------------------------------------------------------------------------------------
    def _close_epoch(self, e: int) -> None:
        """Eq. 4-10 for epoch e, then park the nodes that did nothing (they drop their models). A drain epoch
        (e >= cfg.epochs) has no arrivals of its own, and the scheduler observes nothing of it."""
        cfg, fl, s = self.cfg, self.fleet, self.signals
        drain = e >= cfg.epochs
        length_s = self.epoch_len_s  # a full epoch, or the drain's last one cut where the backlog ran out
        if self.fluid:
            u, active = self._fluid_utilization(e, length_s)
        else:
            u = np.asarray(self.util_acc) / length_s
            act = np.asarray(self.act)
            for n in np.flatnonzero(act).tolist():  # still busy: active in the next epoch too
                self.used_epoch[n] = e + 1
            active = self.warm | (np.asarray(self.used_epoch) >= e) | (act > 0)
        pc = physics.pstate_power_fraction(np.minimum(u, 1.0), active, cfg.pc_pstates, cfg.pstate_busy_limits,
                                           cfg.pc_parked)
        node_kwh = physics.node_it_kwh(pc, fl.tdp_w, length_s)
        it = physics.datacenter_it_kwh(node_kwh, fl.node_dc, cfg.dcs)
        met = physics.datacenter_epoch_metrics(it, s.cop[e], s.tou_usd_per_kwh[e], s.gi_l_per_kwh,
                                               s.ci_kg_per_kwh[e], cfg)
        for n in np.flatnonzero(~active).tolist():
            self.res[n], self.res_w[n] = 0, 0.0
        self.util_acc = [0.0] * len(self.util_acc)

        # p-state census, so Eq. 4-5 can be re-checked from the results file
        levels = np.where(active, np.searchsorted(-np.asarray(cfg.pc_pstates), -pc), len(cfg.pc_pstates))
        tdp_kw = np.zeros((cfg.dcs, len(cfg.pc_pstates) + 1))
        np.add.at(tdp_kw, (fl.node_dc, levels), fl.tdp_w / 1000.0)
        warm = np.bincount(fl.node_dc, weights=self.warm, minlength=cfg.dcs)
        n_active = np.bincount(fl.node_dc, weights=active, minlength=cfg.dcs)
        lo, hi = (len(self.wl), len(self.wl)) if drain else (int(self.epochs.bounds[e]), int(self.epochs.bounds[e + 1]))
        if self.fluid:
            dcs, ttft = np.asarray(self.f_dc[lo:hi], dtype=np.int64), self.f_ttft[lo:hi]
            w_all, late_all = self.f_served[lo:hi], self.f_late[lo:hi]
        else:
            dcs = np.asarray(self.r_dc[lo:hi], dtype=np.int64)  # int even for an epoch without arrivals
            ttft = np.asarray(self.r_ttft[lo:hi], dtype=np.float64)
            w_all, late_all = np.ones(hi - lo), physics.sla_violated(ttft, cfg.sla_ttft_s).astype(float)
        requests = np.bincount(dcs[dcs >= 0], minlength=cfg.dcs) * self.C
        done = (dcs >= 0) & ~np.isnan(ttft)
        w, late = w_all[done], late_all[done]
        tsum = np.bincount(dcs[done], weights=ttft[done] * w, minlength=cfg.dcs)
        tcnt = np.bincount(dcs[done], weights=w, minlength=cfg.dcs)
        viol = np.bincount(dcs[done], weights=late, minlength=cfg.dcs).astype(float)
        # requests still waiting at the epoch's end are already known to be late once they waited past the SLA
        waiting = (dcs >= 0) & np.isnan(ttft) & (self.env.now - self.wl.t_s[lo:hi] > cfg.sla_ttft_s)
        viol += np.bincount(dcs[waiting], minlength=cfg.dcs) * float(self.C)
        parked_share = physics.parked_share(n_active, cfg.nodes_per_dc)
        cap_dm = self.capacity.requests_per_epoch * (length_s / cfg.epoch_s)
        served_dm = self.served_dm
        util = datacenter_utilization(served_dm, cap_dm)
        mix = served_dm / np.maximum(served_dm.sum(axis=1, keepdims=True), 1e-300)
        mix[served_dm.sum(axis=1) <= 0] = np.asarray(self._model_share())
        cap_mix = 1.0 / (mix / np.maximum(cap_dm, 1e-300)).sum(axis=1)
        for d in range(cfg.dcs):
            row = {"epoch": e, "dc": d, "site": self.info.sites[d], "epoch_h": length_s / S_PER_HOUR,
                   "drain": int(drain),
                   "requests": int(requests[d]), "active_nodes": int(n_active[d]), "warm_nodes": int(warm[d]),
                   "parked_nodes": int(cfg.nodes_per_dc - n_active[d]), "cold_starts": int(self.cold_starts[d]),
                   "capacity_requests": float(cap_mix[d]), "utilization": float(util[d])}
            for j, name in enumerate(("p0", "p1", "p2", "p3", "parked")):
                row[f"tdp_kw_{name}"] = float(tdp_kw[d, j])
            row.update({"cop": float(s.cop[e, d]), "tou_usd_per_kwh": float(s.tou_usd_per_kwh[e, d]),
                        "ci_kg_per_kwh": float(s.ci_kg_per_kwh[e, d]), "gi_l_per_kwh": float(s.gi_l_per_kwh[d])})
            row.update({k: float(v[d]) for k, v in met.items()})
            self.epoch_rows.append(row)
        self.cold_starts[:] = 0
        self.served_dm = np.zeros_like(self.served_dm)
        if drain:
            return
        self.last = EpochResult(
            epoch=e, requests=requests, ttft_sum_s=tsum, ttft_count=tcnt, sla_violations=viol,
            energy_kwh=met["total_kwh"], carbon_kg=met["carbon_kg"], water_l=met["water_l"],
            cost_usd=met["cost_usd"], parked_share=parked_share, utilization=util, capacity_requests=cap_mix)
        self.sched.observe(self.last)

    def _model_share(self) -> tuple:
        """The workload's model mix (shares of real requests), for capacity of an epoch with nothing served."""
        c = np.bincount(self.wl.model[~self.failed], minlength=len(MODELS)).astype(float)
        return tuple(c / c.sum()) if c.sum() > 0 else (1.0,) + (0.0,) * (len(MODELS) - 1)

    # --- exact requests (the hot path) ------------------------------------------------------------------------
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
        """A request reaches its datacenter: the balancer places it (its first phase) in its model's pool."""
        self.events += 1
        i = ev.value
        self._place(i, self.r_model[i])

    def _place(self, i: int, key: int) -> None:
        """The balancer: weighted round-robin over the pool's warm nodes, skipping a node without a free batch
        slot or memory, then spill to cold nodes; when every node is full the request waits in the pool's FIFO
        queue, which the first node with room serves (so no request waits at one node while another has room)."""
        d, m, kv = self.r_dc[i], self.r_model[i], self.r_kv[i]
        fits = self._fits
        pool = self.pools[d][key]
        me = pool[4]
        q = self.pq.get(me)
        if not q:  # first come, first served: nobody overtakes a waiting request
            seq = pool[0]
            L = len(seq)
            p = pool[1]
            for _ in range(L):
                n = seq[p]
                p = p + 1 if p + 1 < L else 0
                if fits(n, m, kv):
                    pool[1] = p
                    self._start(n, i)
                    return
            cold, owner = pool[2], self.owner
            c = pool[3]
            while c < len(cold):  # spill over to cold nodes no other pool serves (they join the rotation)
                n = cold[c]
                if owner[n] >= 0 and owner[n] != me:
                    c += 1
                    continue
                if fits(n, m, kv):
                    owner[n] = me
                    self.serves[n] = (me,)
                    pool[3] = c + 1
                    seq.append(n)
                    self._start(n, i)
                    return
                c += 1
            pool[3] = c
            if q is None:
                q = self.pq[me] = deque()
        q.append(i)
        self.dc_queued[d] += 1
        self.dcm_queued[d][m] += 1

    def _admit(self, n: int, now: float) -> None:
        """Node n takes waiting requests, in FIFO order, from the queues of the pools it serves while it has room."""
        for p in self.serves[n]:
            q = self.pq.get(p)
            while q:
                j = q[0]
                if not self._fits(n, self.r_model[j], self.r_kv[j]):
                    break
                q.popleft()
                self.dc_queued[self.r_dc[j]] -= 1
                self.dcm_queued[self.r_dc[j]][self.r_model[j]] -= 1
                self._start(n, j)

    def _advance_node(self, n: int, now: float) -> None:
        """Bring node n's decode clock to `now`: it ran decode steps of its current batch since its last update or
        the end of its prefill passes, whichever is later."""
        a = self.act[n]
        if a:
            s = self.dv_t[n]
            pf = self.pf_free[n]
            if pf > s:
                s = pf
            if now > s:
                self.dv[n] += (now - s) / self._step[self.dmodel[n]][self.n_type[n]][a]
        self.dv_t[n] = now

    def _schedule_node(self, n: int, now: float) -> None:
        """Node n's next completion: when its decode clock reaches the smallest entry of its heap at the current
        batch. A later time keeps the scheduled event (it fires, finds nothing done and reschedules)."""
        h = self.dheap[n]
        if not h:
            self.dnext[n] = math.inf
            return
        pf = self.pf_free[n]
        left = h[0][0] - self.dv[n]
        t = (pf if pf > now else now) + (left if left > 0 else 0.0) * self._step[self.dmodel[n]][self.n_type[n]][
            self.act[n]]
        if t < self.dnext[n] - 1e-12:
            self.dver[n] += 1
            self.dnext[n] = t
            self.env.timeout(t - now, (n, self.dver[n])).callbacks.append(self._node_event)

    def _start(self, n: int, i: int) -> None:
        """Admit request i's current phase on node n: weight load if cold, then its prefill pass after the node's
        pending ones (the GPU's decode steps wait), then its decode steps with the node's batch. Its first token is
        out when its prefill pass ends; it is known at the last phase (the first phase's wait, weight load and
        prefill, the KV transfer between phases, the decode)."""
        env = self.env
        now = env.now
        m, t = self.r_model[i], self.n_type[n]
        j = self.r_phase[i]
        phase = self.phases[j]
        if not (self.res[n] >> m) & 1:  # cold start: load the weights (evicting idle models if needed)
            if self.res_w[n] + self.weights_gb[m] + self.kv[n] + self.r_kv[i] > self.n_mem[n]:
                self.res[n], self.res_w[n] = 0, 0.0
            self._load(n, m, now)
            if j == 0:
                self.r_cold[i] = True
        self._advance_node(n, now)
        ready = self.ready[n][m]
        load_wait = ready - now if ready > now else 0.0
        pf = self.pf_free[n]
        begin = pf if pf > now else now
        if ready > begin:
            begin = ready
        prefill = self.prof.prefill_s(m, t, self.r_prompt[i]) if phase.prefill else 0.0
        self.pf_free[n] = begin + prefill
        batch = self.act[n] + 1
        out = self.r_output[i]
        steps = out if phase.decode else 0
        step = self._step[m][t][batch]
        if j == 0:  # wait for a batch slot and for the node's earlier prefill passes; the weight load apart
            first_token = (begin - load_wait - self.r_arr[i], load_wait, prefill, step)
        else:
            first_token = self.r_split[i]
        if j == self.last_phase:
            wait, p_load, p_prefill, p_step = first_token
            exec_s = p_prefill + (self.r_xfer[i] if j else 0.0) + steps * step
            first = physics.first_token_compute_s(self.cfg.ttft_model, exec_s, out, p_prefill, p_step)
            self.r_ttft[i] = physics.request_ttft_s(wait, p_load, self.r_net[i], first)
            self.unserved -= 1
            self.r_node[i] = n
        else:
            self.r_split[i] = first_token
            self.r_pnode[i] = n
        # GPU seconds at full batch (`Profiles.gpu_s_array`): Eq. 4's utilization counts the share of capacity used
        self.util_acc[n] += prefill + (steps * self.step_full[m][t] / self.batch_full[m][t] if steps else 0.0)
        self.act[n] = batch
        self.dmodel[n] = m
        self.kv[n] += self.r_kv[i]
        heapq.heappush(self.dheap[n], (self.dv[n] + steps, i))
        self.used_epoch[n] = max(self.used_epoch[n], int(now // self.cfg.epoch_s))
        if j == 0:
            d = self.r_dc[i]
            self.dc_running[d] += 1
            self.served_dm[d, m] += 1
        self._schedule_node(n, now)

    def _node_event(self, ev) -> None:
        """Node n's decode clock reached its next completion (unless a newer event superseded this one): finish
        every request done, then admit waiting ones."""
        n, version = ev.value
        if version != self.dver[n]:
            return
        self.events += 1
        now = self.env.now
        self.dnext[n] = math.inf
        self._advance_node(n, now)
        h = self.dheap[n]
        done = self.dv[n] + DECODE_CLOCK_TOLERANCE
        while h and h[0][0] <= done:
            self._finish(n, heapq.heappop(h)[1], now)
        if not h:
            self.dv[n] = 0.0  # an idle node's clock restarts (no float drift)
        self._admit(n, now)
        self._schedule_node(n, now)

    def _finish(self, n: int, i: int, now: float) -> None:
        """Node n finishes its part of request i: release the batch slot and KV cache; after a phase that is not
        the last, send the KV cache on to the next phase's pool."""
        j = self.r_phase[i]
        self.act[n] -= 1
        self.kv[n] -= self.r_kv[i]
        if self.act[n] == 0:
            self.kv[n] = 0.0  # no float drift
        if j < self.last_phase:
            self.r_phase[i] = j + 1
            self.r_xfer[i] = self.mode.transfer_s(self.r_prompt[i],
                                                  self.cfg.model_kv_mb_per_token[self.r_model[i]])
            self.env.timeout(self.r_xfer[i], i).callbacks.append(self._next_phase)
        else:
            self.dc_running[self.r_dc[i]] -= 1
        self.used_epoch[n] = max(self.used_epoch[n], int(now // self.cfg.epoch_s))

    def _next_phase(self, ev) -> None:
        """The KV cache has reached the next phase's pool: place that phase."""
        self.events += 1
        i = ev.value
        self._place(i, self.r_phase[i] * len(MODELS) + self.r_model[i])

    # --- cohorts: fluid pools -----------------------------------------------------------------------------------
    def _init_pools(self) -> None:
        """Pool p = d x K + key (K pool keys per datacenter): backlog W (real requests), time of its last update,
        drain rate mu (real requests/s of its ready nodes), pending capacity changes [(time, d_mu)], its nodes."""
        cfg, M, D = self.cfg, len(MODELS), self.cfg.dcs
        P = D * self.K
        self.pool_dc = np.repeat(np.arange(D), self.K)
        self.pool_model = [(p % self.K) % M for p in range(P)]
        self.pW = [0.0] * P
        self.pT = [0.0] * P
        self.pMu = [0.0] * P
        self.pBp = [[] for _ in range(P)]
        self.pNodes = [[] for _ in range(P)]
        self.pCold = [[] for _ in range(P)]
        self.pColdPtr = [0] * P
        self.pServed = [0.0] * P  # real requests served this epoch
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
        self.f_routed = np.zeros(n, dtype=bool)  # routed by the epoch's plan (not online, not a later phase)
        self.plan_mean = np.zeros((cfg.epochs, M, cfg.dcs))  # each epoch's plan averaged over origins [M, D]
        self.f_ttft = np.full(n, math.nan)
        self.f_served = np.zeros(n)
        self.f_late = np.zeros(n)
        self.bin_next = 0
        self.pending: dict = {}

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
            mu = self.pMu[p]
            keep = [bp for bp in self.pBp[p] if bp[0] <= now]
            for _, dmu in keep:
                mu += dmu
            self.pBp[p] = keep + [(now, -mu)] if mu else keep  # capacity drops to 0 at the epoch start ...
            for n in self.pNodes[p]:
                self.node_pool[n] = -1
            self.pNodes[p], self.pCold[p], self.pColdPtr[p] = [], [], 0
            self.pServed[p] = 0.0
            self.pRpsSum[p] = self.pSlotSum[p] = self.pScvSum[p] = 0.0
        self.epoch_start = now

    def _fluid_pool(self, d: int, key: int, m: int, nodes: list, cold: list, now: float) -> None:
        """... and is rebuilt from the new warm set: each node adds its throughput once its weights are ready."""
        p = d * self.K + key
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
        bisect.insort(self.pBp[p], (ready, r))
        t = self.n_type[n]
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
        order = np.argsort(b, kind="stable")
        b, idx = b[order], idx[order]
        cuts = np.flatnonzero(np.diff(b)) + 1
        for part, key in zip(np.split(idx, cuts), b[np.concatenate(([0], cuts))].tolist() if len(b) else []):
            self.pending.setdefault(key, []).append(part)

    def _advance(self, p: int, t0: float, t1: float, lam: float) -> tuple:
        """Play pool p's fluid FIFO over the bin [t0, t1) with arrivals at `lam`/s (capacity changes inside
        the bin split it into segments).

        :returns: (real requests drained, the departure curve's points in the bin [(t, D)]); the pool's state
            (backlog, drain rate, pending capacity) is left at t1
        """
        W0 = W = self.pW[p]
        s, mu, bps = max(self.pT[p], t0), self.pMu[p], self.pBp[p]
        while bps and bps[0][0] <= s:  # capacity that arrived while nothing waited
            mu += bps.pop(0)[1]
        a0 = self.pA[p]  # cumulative arrivals at t0 (the bin's arrive uniformly over it)
        curve = []
        while True:
            if bps and bps[0][0] <= t1:
                b, dmu = bps.pop(0)
            else:
                b, dmu = t1, None
            length = b - s
            if length > 0:
                drain = mu if mu > 1e-12 else 0.0  # no node ready: the backlog only grows
                if W > 0 and drain > lam and W / (drain - lam) < length:  # the backlog drains inside the segment
                    x0 = s + W / (drain - lam)
                    curve.append((x0, a0 + lam * (x0 - t0)))
                W = max(0.0, W + (lam - drain) * length)  # queueing.fluid_segment's backlog
                curve.append((b, a0 + lam * (b - t0) - W))
            s = b
            if dmu is None:
                break
            mu += dmu
        self.pW[p], self.pT[p], self.pMu[p] = W, t1, max(mu, 0.0)
        return W0 + lam * (t1 - t0) - W, curve

    def _play_bin(self) -> None:
        """Play every pool over the bin that just ended: the bin's cohorts arrive at a constant rate (their real
        requests) and the fluid FIFO drains them at the pool's capacity, which may change later (nodes ready,
        cold nodes drawn in, a new epoch's warm set). A pool's arrivals of one bin form a segment [A0, A1] of its
        cumulative arrival curve A(t); the segment is resolved once the departure curve D(t) has passed A1: a
        real request at position x waits D^-1(x) - A^-1(x) (`_resolve`). Below saturation the M/G/c wait of the
        bin's arrivals is added. Cold nodes join pools whose backlog outgrows them."""
        b = self.bin_next
        self.bin_next += 1
        t0, t1 = b * self.bin_s, (b + 1) * self.bin_s
        parts = self.pending.pop(b, None)
        idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self.events += len(idx)  # a cohort is one event: its arrival at the pool
        P, C, M = len(self.pW), self.C, len(MODELS)
        pool = self.f_pool[idx]
        n_p = np.bincount(pool, minlength=P)
        lam_n = self._expected_cohorts(idx, pool, n_p)
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
            saved = (self.pW[p], self.pT[p], self.pMu[p], list(self.pBp[p]))
            drained, curve = self._advance(p, t0, t1, lam)
            n_before = len(self.pNodes[p])
            if self.pW[p] > 0 and self._spill(p, p % self.K, self.pool_model[p], t0, lam):
                # the balancer spills as soon as the warm nodes are full: replay the bin with the cold nodes
                # drawn in from its start (their capacity steps, by node: a step may equal one already pending)
                joined = [(self.node_ready[n], self._rps(p % self.K, n)) for n in self.pNodes[p][n_before:]]
                self.pW[p], self.pT[p], self.pMu[p], self.pBp[p] = saved[0], saved[1], saved[2], saved[3]
                for bp in joined:
                    bisect.insort(self.pBp[p], bp)
                drained, curve = self._advance(p, t0, t1, lam)
            self.pServed[p] += drained
            self._extend_curve(p, curve)
            a0 = self.pA[p]
            self.pA[p] += n * C
            if not later_phase:
                self.served_dm[self.pool_dc[p], self.pool_model[p]] += drained
            if n > 0:
                if not later_phase and n_p[p]:
                    self.pOpen[p].append([a0, self.pA[p], t0, t1, idx[pool == p], limit, 0.0, 0.0])
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
        a0, a1, t0, t1, idx, limit, w_q, p_late = seg
        wait = segment_waits(a0, a1, t0, t1, self.pCurveT[p], self.pCurveD[p], share, WAIT_SAMPLES)
        late = float(np.mean(wait > limit))
        late += (1.0 - late) * p_late
        mean_wait = float(wait.mean()) + w_q
        self.f_ttft[idx] = physics.request_ttft_s(mean_wait, 0.0, self.f_net[idx], self.f_first[idx])
        self.f_served[idx] = self.C * share
        self.f_late[idx] = min(late, 1.0) * self.C * share
        if self.last_phase:  # the next phase reaches its pools after this one and the KV transfer
            m = self.wl.model[idx].astype(np.int64)
            xfer = self.mode.transfer_s(self.wl.prompt_tokens[idx], np.asarray(self.cfg.model_kv_mb_per_token)[m])
            t_next = t0 + 0.5 * share * (t1 - t0) + mean_wait + self.f_first[idx] + xfer
            self.f_routed[idx] = False  # a later phase counts whole in its pool (`_expected_cohorts`)
            self._to_bins(idx, self.f_dc[idx] * self.K + len(MODELS) + m, t_next)

    def _expected_cohorts(self, idx: np.ndarray, pool: np.ndarray, n_p: np.ndarray) -> np.ndarray:
        """Cohorts reaching each pool in the bin, for its arrival rate: a plan-routed cohort counts as its model's
        plan shares over the datacenters averaged over the origins (the C real requests it stands for come from
        every region alike, SPEC origins are uniform, and split as the plan says), so a pool's rate carries no
        rounding of cohorts to origins and datacenters; online-routed cohorts and later phases count whole."""
        out = n_p.astype(float)
        routed = self.f_routed[idx]
        if not routed.any():
            return out
        i = idx[routed]
        m = self.wl.model[i].astype(np.int64)
        shares = self.plan_mean[self.r_epoch[i], m]  # [k, D]
        D = shares.shape[1]
        target = np.arange(D)[None, :] * self.K + m[:, None]
        out -= np.bincount(pool[routed], minlength=len(out))
        out += np.bincount(target.ravel(), weights=shares.ravel(), minlength=len(out))
        return out

    def _spill(self, p: int, key: int, m: int, now: float, lam: float) -> bool:
        """Backlog outgrows the pool: draw in cold nodes (in the balancer's order) until the pool's capacity,
        counting nodes still loading, covers the bin's arrival rate plus draining the backlog within a bin."""
        need = lam + self.pW[p] / self.bin_s - self.pRpsSum[p]
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
                self._load(n, m, now)
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
            capacity = float((rps * avail).sum())
            rho = min(1.0, self.pServed[p] / capacity) if capacity > 0 else 0.0
            u[nodes] = rho * avail / length_s
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


def drain_epochs(cfg: Config) -> int:
    """The most epochs the drain may add: `drain_max_h` in whole epochs (rounded up), within the grid data's year
    (0 without the drain)."""
    if not cfg.drain:
        return 0
    end_s = epoch_hour_index(cfg)[0] * S_PER_HOUR + cfg.horizon_s  # epoch 0 starts on the hour (a date)
    left = int((HOURS_IN_DATA * S_PER_HOUR - end_s) // cfg.epoch_s)
    return max(0, min(math.ceil(cfg.drain_max_h * S_PER_HOUR / cfg.epoch_s - 1e-9), left))


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


GOLDEN_FRACTION = (math.sqrt(5.0) - 1.0) / 2.0  # the additive recurrence with the most even spread


def draw_datacenters(plan: np.ndarray, model: np.ndarray, origin: np.ndarray, rng: np.random.Generator,
                     low_discrepancy: bool = False) -> np.ndarray:
    """Each request's datacenter, drawn from its (model, origin) row of the plan (vectorized).

    With `low_discrepancy` (cohort runs) the k-th request of each row uses u = frac(u0 + k x golden fraction)
    instead of an independent uniform: each datacenter gets its plan share of a row's cohorts spread evenly in
    time, as the C real requests of a cohort would split, so routing adds no burstiness of its own.
    """
    if len(model) == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(plan, axis=2)[model, origin]  # [n, D]
    if low_discrepancy:
        row = model.astype(np.int64) * plan.shape[1] + origin
        order = np.argsort(row, kind="stable")
        first = np.searchsorted(row[order], row[order], side="left")
        k = np.empty(len(row), dtype=np.int64)
        k[order] = np.arange(len(row)) - first
        u = (rng.random(plan.shape[0] * plan.shape[1])[row] + k * GOLDEN_FRACTION) % 1.0
    else:
        u = rng.random(len(model))
    return np.minimum((u[:, None] >= cum).sum(axis=1), plan.shape[2] - 1)


def simulate(cfg: Config, scheduler: Scheduler, workload: Workload | None = None, progress: bool = False) -> RunRecord:
    """Run one simulation and return its record."""
    return Engine(cfg, scheduler, workload, progress).run()
