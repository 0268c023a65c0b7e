"""The SimPy event engine: the ground truth for every reported number (SPEC 2, 4-6; docs/model.md).

This module is the epoch loop. Each epoch: the predictor forecasts, the scheduler plans, each datacenter picks
its warm set (nodes enough for its predicted work at `warm_target_utilization` of their serving capacity,
`simcore.capacity`), and the epoch's requests are routed and played by the run's node model
(`simcore.nodes.NodeModel`), one of two:

- **exact** (`cohort_size` = 1, `simcore.exact.ExactNodes`): every request is one real request, played through
  the balancer, each node's memory, batch and GPU (a continuous-batching server), and its pool's queue;
- **cohorts** (`cohort_size` = C > 1, `simcore.cohorts.CohortNodes`): each simulated request stands for C real
  ones and carries its pool's arrival rate into a fluid FIFO server (docs/model.md 'Cohorts').

At each epoch end every node gets a p-state from its utilization (share of its serving capacity used, Eq. 4) or
is parked (dropping its models), and the epoch's energy, cost, water and carbon follow from Eq. 4-10
(`simcore.physics`, shared with the evaluator).

**Drain** (`cfg.drain`, on by default): after the horizon no request arrives and the epochs go on, each with a
warm set sized to the backlog (no plan is asked for, nothing is observed), until every arrived request has its
first token or `drain_max_h` has passed; the drain's epochs are rows with `drain = 1` and count in every total, so
a scheduler that leaves a backlog pays for serving it (docs/model.md 'Drain').
"""
from __future__ import annotations

import functools
import math
import time

import numpy as np
import simpy

from simcore import physics
from simcore.capacity import build_fleet, datacenter_utilization, serving_capacity
from simcore.cohorts import CohortNodes
from simcore.config import MODELS, Config
from simcore.epochs import Epoch, Epochs, other_days
from simcore.evaluator import EpochEvaluator
from simcore.exact import WRR_RESOLUTION, ExactNodes, wrr_sequence  # noqa: F401 (re-exported)
from simcore.interface import EpochResult, Observation, Request, RunRecord, Scheduler, StaticInfo
from simcore.profiles import load_profiles
from simcore.queueing import arrival_peak_to_mean, bin_rate_profile, bins_per_epoch
from simcore.rng import stream
from topology.graph import latency_matrix_s
from topology.sites import HOURS_IN_DATA, S_PER_HOUR, epoch_hour_index, site_signals
from traces.loader import Workload, load_workload


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
            evaluator=EpochEvaluator(cfg, self.lat, self.fleet, self.prof, *sample, self.capacity, rate_profile,
                                     arrival_s=None if self.C > 1 else self.wl.t_s[~self.wl.failed], exact=self.C == 1),
            token_sample=sample, cohort_size=self.C, rate_profile=rate_profile,
            other_days=functools.partial(other_days, cfg), plan_timeout_s=cfg.plan_timeout_s)

    # ------------------------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        self.start()
        return self.finish()

    def start(self, gate=None) -> None:
        """Set the run up and start its epoch process (nothing is played until the SimPy environment runs).

        :param gate: None, or `gate(obs)` -> a SimPy event the epoch process waits for after building each
            epoch's observation and before asking the scheduler for the plan (`simcore.stepping` drives a run
            epoch by epoch through it)
        """
        self.t_wall = time.perf_counter()
        self.gate = gate
        cfg, wl, fl = self.cfg, self.wl, self.fleet
        self.env = simpy.Environment()
        self.sched.reset(self.info, stream(cfg.seed, "scheduler"))
        n_nodes = len(fl.node_dc)
        M, D = len(MODELS), cfg.dcs
        self.mode = self.sched.execution()  # whole, or split in phases (`simcore.execution`)
        self.mode.check(cfg.gpu_types, self.sched.label())
        self.phases = self.mode.phases
        self.last_phase = len(self.phases) - 1
        self.K = len(self.phases) * M  # pool keys per datacenter: phase j of model m is key j x M + m

        self.r_epoch = self.epochs.epoch_of
        # per-node state
        self.n_type = fl.node_type.tolist()
        self.n_mem = fl.mem_gb.tolist()
        self.res = [0] * n_nodes  # bitmask of resident models
        self.res_w = [0.0] * n_nodes  # resident weights, GB
        self.ready = [[0.0] * M for _ in range(n_nodes)]  # time each resident model is loaded
        self.kv = [0.0] * n_nodes  # KV cache of the running requests, GB (exact play)
        self.act = [0] * n_nodes  # requests admitted (a batch slot and their KV held) (exact play)
        self.owner = [-1] * n_nodes  # the pool a node serves this epoch (`_set_warm`)
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
        self.nodes = (CohortNodes if self.C > 1 else ExactNodes)(self)  # the node model (simcore.nodes)

        self.bar = None
        if self.progress:
            from tqdm import tqdm
            self.bar = tqdm(total=cfg.epochs, desc=f"{self.sched.label()} D={D}", unit="epoch")
        self.epoch_process = self.env.process(self._epochs(self.bar))

    def finish(self) -> RunRecord:
        """Play the run to its end, the drain included (from wherever `start` or a driver left it), and return
        its record."""
        cfg, wl, bar = self.cfg, self.wl, self.bar
        self.env.run(until=self.epoch_process)
        self.nodes.finish()
        self._close_epoch(self.last_epoch)
        if bar is not None:
            bar.update(1)
            bar.close()
        out = self.nodes.record()
        return RunRecord(
            cfg=cfg, scheduler=self.sched.label(), scheduler_params=self.sched.params.to_dict(), trace=wl.name,
            load_scale=wl.scale, sites=self.info.sites, epoch_rows=self.epoch_rows, req_epoch=self.r_epoch,
            req_dc=np.asarray(out["req_dc"], dtype=np.int16), req_failed=self.failed,
            ttft_s=out["ttft_s"], cold=np.asarray(out["cold"]), events=self.events,
            wall_s=time.perf_counter() - self.t_wall, prompt_node=np.asarray(out["prompt_node"]),
            token_node=np.asarray(out["token_node"]), extra_tables=self.sched.extra_results(), cohort=self.C,
            served=out["served"], sla_late=out["sla_late"], queued_at_horizon=self.queued_at_horizon,
            over_context=wl.over_context,
            drain_h=((self.last_epoch - cfg.epochs) * cfg.epoch_s + self.epoch_len_s) / S_PER_HOUR
            if self.last_epoch >= cfg.epochs else 0.0, hindsight=self.sched.hindsight)

    # --- epochs ------------------------------------------------------------------------------------------
    def _epochs(self, bar):
        cfg = self.cfg
        for ep in self.epochs:
            e = ep.index
            self.events += 1
            obs = self._observation(ep)
            if self.gate is not None:  # an outside driver chooses when the epoch starts (`simcore.stepping`)
                yield self.gate(obs)
            self._start_epoch(ep, obs)
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
        """Play one epoch in the node model's steps (cohort pools: bin by bin); a drain epoch ends at the first
        step with no backlog left."""
        steps = self.nodes.steps_per_epoch(drain)
        for b in range(steps):
            yield self.env.timeout(self.cfg.epoch_s / steps)
            self.nodes.tick()
            if drain:
                self.epoch_len_s = (b + 1) * self.cfg.epoch_s / steps
                if not self._backlog():
                    return

    def _backlog(self) -> float:
        """Real requests that arrived and have no first token yet (the drain goes on while there are any)."""
        return self.nodes.backlog()

    def _observation(self, ep: Epoch) -> Observation:
        """The epoch's observation (`Epochs.observation`) with the fleet's state at its start."""
        D, M = self.cfg.dcs, len(MODELS)
        idle = self.nodes.idle()
        res = np.asarray(self.res)
        resident = np.stack([np.bincount(self.fleet.node_dc, weights=(res >> m) & 1, minlength=D)
                             for m in range(M)], axis=1)
        return self.epochs.observation(
            ep, free_nodes=np.bincount(self.fleet.node_dc, weights=idle, minlength=D).astype(int),
            resident_nodes=resident.astype(int), queued_by_model=self._queued_real(), last=self.last,
            hindsight=self.sched.hindsight)

    def _queued_real(self) -> np.ndarray:
        """[D, M] real requests waiting for a node, by model."""
        return self.nodes.queued_real()

    def _start_epoch(self, ep: Epoch, obs: Observation) -> None:
        wl, e = self.wl, ep.index
        plan = self.sched.decide(obs)
        # warm sets follow what the scheduler planned with: the forecast, or the truth for a hindsight bound
        planned_with = ep.forecast if obs.true_requests is None else obs.true_requests
        self._set_warm(e, np.einsum("mod,mo->dm", plan, planned_with))
        lo, hi = ep.first, ep.stop
        self.nodes.start_epoch(lo, hi)
        if self.sched.routes_online():
            self.env.process(self._online_arrivals(lo, hi, plan))
            return
        idx = np.arange(lo, hi)[~self.failed[lo:hi]]
        dc = draw_datacenters(plan, wl.model[idx], wl.origin[idx], self.route_rng, low_discrepancy=self.nodes.low_discrepancy)
        net = self.lat[wl.origin[idx], dc]
        arr = wl.t_s[idx] + net
        self.nodes.arrive(e, plan, idx, dc, net, arr)

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
            req = Request(i, t, m, o, int(wl.prompt_tokens[i]), int(wl.output_tokens[i]))
            d = self.sched.route(req, live)
            if d is None:
                d = min(int(np.searchsorted(cum[m, o], self.route_rng.random(), side="right")), self.cfg.dcs - 1)
            elif not 0 <= d < self.cfg.dcs:  # its type is checked by the hook's guard (simcore.interface.RETURNS)
                from simcore.errors import PlanError
                raise PlanError(f"scheduler {self.sched.label()}: route() returned {d!r} for request {i}, "
                                f"not a datacenter index in [0, {self.cfg.dcs})")
            net = float(self.lat[o, d])
            self.nodes.arrive_one(i, d, m, net, t)

    # --- warm set ------------------------------------------------------------------------------------------------
    def _set_warm(self, e: int, expected: np.ndarray) -> None:
        """Warm set (SPEC 6): per datacenter and model, the nodes whose serving capacity covers the predicted
        work `expected` [D, M] (plan x forecast; in the drain, the backlog) at `warm_target_utilization`, at least
        `min_warm_nodes`; resident nodes first.

        Each pool's warm nodes and the cold nodes it may spill to go to the node model (`NodeModel.add_pool`).
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
        now = self.env.now
        gpu_of_type = np.array([cfg.gpu_types.index(g) for g, _ in fl.node_types])
        self.nodes.epoch_reset(now)
        self.owner = [-1] * len(fl.node_dc)  # the pool a node serves this epoch (a node serves one pool)
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
                        self._preload(n, m, now, e == 0)
                    shared = not len(nodes)
                    if shared:  # fewer nodes than pools (a small fleet): share the other pools' nodes
                        nodes = np.flatnonzero(hosts[m][types] & taken) + base
                    self.nodes.add_pool(d, key, m, nodes, (rest + base).tolist(), pool_id, shared, now)
        self.nodes.pools_ready(now)

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
        u, active = self.nodes.utilization(e, length_s)
        pc = physics.pstate_power_fraction(np.minimum(u, 1.0), active, cfg.pc_pstates, cfg.pstate_busy_limits,
                                           cfg.pc_parked)
        node_kwh = physics.node_it_kwh(pc, fl.tdp_w, length_s)
        it = physics.datacenter_it_kwh(node_kwh, fl.node_dc, cfg.dcs)
        met = physics.datacenter_epoch_metrics(it, s.cop[e], s.tou_usd_per_kwh[e], s.gi_l_per_kwh,
                                               s.ci_kg_per_kwh[e], cfg)
        # every node is powered all epoch, parked or not: its share of the embodied carbon
        met["embodied_carbon_kg"] = physics.embodied_carbon_kg(
            np.bincount(fl.node_dc, weights=fl.embodied_kg, minlength=cfg.dcs), length_s / S_PER_HOUR,
            cfg.service_life_years)
        # the share attributable to serving: the nodes reserved for it this epoch, warm or busy (SCI time-share)
        met["embodied_attributable_kg"] = physics.embodied_carbon_kg(
            np.bincount(fl.node_dc, weights=fl.embodied_kg * active, minlength=cfg.dcs), length_s / S_PER_HOUR,
            cfg.service_life_years)
        for n in np.flatnonzero(~active).tolist():
            self.res[n], self.res_w[n] = 0, 0.0

        # p-state census, so Eq. 4-5 can be re-checked from the results file
        levels = np.where(active, np.searchsorted(-np.asarray(cfg.pc_pstates), -pc), len(cfg.pc_pstates))
        tdp_kw = np.zeros((cfg.dcs, len(cfg.pc_pstates) + 1))
        np.add.at(tdp_kw, (fl.node_dc, levels), fl.tdp_w / 1000.0)
        warm = np.bincount(fl.node_dc, weights=self.warm, minlength=cfg.dcs)
        n_active = np.bincount(fl.node_dc, weights=active, minlength=cfg.dcs)
        lo, hi = (len(self.wl), len(self.wl)) if drain else (int(self.epochs.bounds[e]), int(self.epochs.bounds[e + 1]))
        dcs, ttft, w_all, late_all = self.nodes.epoch_requests(lo, hi)
        burst = None if drain else arrival_peak_to_mean(self.wl.t_s[lo:hi], e * cfg.epoch_s, cfg.epoch_s,
                                                        cfg.cohort_bin_s)
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
                   "capacity_requests": float(cap_mix[d]), "utilization": float(util[d]),
                   "arrival_peak_to_mean": float("nan") if burst is None else burst}
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
            cost_usd=met["cost_usd"], parked_share=parked_share, utilization=util, capacity_requests=cap_mix,
            embodied_carbon_kg=met["embodied_carbon_kg"], embodied_attributable_kg=met["embodied_attributable_kg"],
            peak_to_mean=burst)
        self.sched.observe(self.last)

    def _model_share(self) -> tuple:
        """The workload's model mix (shares of real requests), for capacity of an epoch with nothing served."""
        c = np.bincount(self.wl.model[~self.failed], minlength=len(MODELS)).astype(float)
        return tuple(c / c.sum()) if c.sum() > 0 else (1.0,) + (0.0,) * (len(MODELS) - 1)


def drain_epochs(cfg: Config) -> int:
    """The most epochs the drain may add: `drain_max_h` in whole epochs (rounded up), within the grid data's year
    (0 without the drain)."""
    if not cfg.drain:
        return 0
    end_s = epoch_hour_index(cfg)[0] * S_PER_HOUR + cfg.horizon_s  # epoch 0 starts on the hour (a date)
    left = int((HOURS_IN_DATA * S_PER_HOUR - end_s) // cfg.epoch_s)
    return max(0, min(math.ceil(cfg.drain_max_h * S_PER_HOUR / cfg.epoch_s - 1e-9), left))


# requests whose token pairs stand for the workload in service-time means (capacity, the evaluator): the mean
# service time's sampling error is ~0.5 % at this size; at 20,000 it was ~1.7 %, which near saturation moved the
# default day's uniform SLA violations between 0.29 and 0.69 % with the draw (the peak epoch at 0.94-0.955)
TOKEN_SAMPLE_SIZE = 200_000


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
