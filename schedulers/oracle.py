"""The LP oracle: `oracle` (on the forecast) and `oracle-hindsight` (on the epoch's true arrivals), reference
bounds for every other scheduler (issue 18, item 5; docs/model.md 'LP oracle').

Each epoch solves the routing problem as a linear program (scipy's HiGHS, `routing_lp`): how many real requests
x[m, o, d] of each (model, origin) row go to each datacenter, minimising Eq. 11's weighted sum with every term
linear in x:

- carbon, water, cost: each request adds its marginal IT energy at the site (`marginal_it_kwh`: its share of a
  node's capacity at full batch, at the busiest p-state's power above a parked node's, Eq. 4) times what one
  kWh of IT energy costs there this epoch (`Observation.carbon_kg_per_it_kwh` etc., Eq. 6-10); the fleet's idle
  and parked power is the same whatever the routing and drops out;
- TTFT: the round trip 2 x LA_net (Eq. 2-3) per request, plus each datacenter's queueing wait, a convex
  piecewise-linear function of its utilization u_d (`queue_penalty_lines`: the M/G/c wait of the datacenter as
  one pool, over the workload's within-epoch bin rates, `simcore.queueing.pool_queueing_wait`; past full
  capacity the fluid backlog), written as an epigraph variable per datacenter; the first-token compute is
  the same at every site and drops out;
- each metric is divided by the uniform plan's (Simulate, `StaticInfo.evaluator`), as every scheduler's Eq. 11
  score is (`schedulers.common.normalized_metrics`);

subject to: every row's requests routed (sum_d x = requests), a model only where it is hosted, and each
datacenter's utilization u_d = sum_m (x[m, :, d] summed) / capacity[d, m] + what already waits there at most
the shared head-room target (`schedulers.feasibility.Headroom`: room for the within-epoch peak and the forecast's
observed error, the target fill-* and MARLIN plan up to). Where the load does not fit under the target
everywhere, a first LP finds the least excess over the target that every datacenter may have to take (one
common slack: the overload spread to a common level, as fill-* spread it, not piled onto the cheapest site, which
put the default day's busiest datacenter at 0.973 of capacity against uniform's 0.949), and the second keeps it:
the oracle never buys a metric with overload.

- `oracle` plans on the forecast (`Observation.predicted_requests`) and keeps head-room for the forecast's error
  (its own plans' observed error, `Headroom.learn`): deployable, the best plan a linear model of the world
  finds on what a scheduler knows.
- `oracle-hindsight` declares `Scheduler.hindsight`: the engine gives it the epoch's true real-request counts
  (`Observation.true_requests`, which no other scheduler receives), so it plans on the truth and keeps head-room
  for the within-epoch peak only (no forecast error). Not deployable: a lower bound against which the report
  measures every scheduler's gap (`reports/oracle_gap.py`). It is a bound on the routing decision under the
  LP's linear model, not on the engine's every effect (warm sets follow the forecast, cold starts and p-state
  steps are not in the LP).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from schedulers.feasibility import Headroom, HeadroomParams, headroom_target
from schedulers.fill import mix_share
from simcore import physics
from simcore.errors import SimError
from simcore.evaluator import EpochState
from simcore.interface import Observation, Scheduler
from simcore.params import param
from simcore.queueing import pool_queueing_wait

SLACK_TOLERANCE = 1e-9  # relative: the second LP may exceed the first's least total excess by this much


def marginal_it_kwh(node_rps: np.ndarray, hosts: np.ndarray, type_nodes: np.ndarray, type_tdp_w: np.ndarray,
                    pc_busy: float, pc_parked: float) -> np.ndarray:
    """[M] IT energy one more request of each model adds to a datacenter, kWh (Eq. 4 per request): the node-seconds
    it takes at full batch (1 / node_rps) at the busiest p-state's power above a parked node's, averaged over the
    node types in proportion to the requests each serves (its nodes x throughput, as the evaluator spreads them).

    :param node_rps: [M, T] requests per second of one node at full batch (`Capacity.node_rps`)
    :param hosts: [M, T] whether a node type hosts the model
    :param type_nodes: [T] nodes of each type in a datacenter
    :param type_tdp_w: [T] TDP of a node of each type, W
    :param pc_busy, pc_parked: power fractions of a busy (P0) and a parked node
    """
    rps = np.where(hosts, np.asarray(node_rps, dtype=float), 0.0)
    share = rps * np.asarray(type_nodes, dtype=float)[None, :]
    share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
    node_s = np.where(rps > 0, 1.0 / np.maximum(rps, 1e-300), 0.0)  # node-seconds per request
    kwh = physics.node_it_kwh(pc_busy - pc_parked, np.asarray(type_tdp_w, dtype=float)[None, :], node_s)
    return (share * kwh).sum(axis=1)


def queue_penalty_lines(mu_rps: float, slots: float, scv: float, limit_s: float, epoch_s: float, bin_s: float,
                        rate_profile: np.ndarray, breakpoints: np.ndarray, overload_wait_s: float) -> np.ndarray:
    """[K + 1, 2] (intercept, slope) of the lines whose maximum is a datacenter's summed queueing wait over an epoch
    (s) as a function of its utilization u: convex and piecewise linear, the LP's TTFT queueing term.

    At each of the K + 1 breakpoints u_k (0 to 1) the datacenter, one M/G/c pool of `slots` servers draining
    `mu_rps` (`pool_queueing_wait`), gets arrivals at u_k x mu x r in the bins of the workload's bin rates r
    (`rate_profile`, equally weighted quantiles of the requests); its summed wait is u_k x mu x epoch_s x the
    mean wait over the bins. The slopes between breakpoints are made non-decreasing (the convex majorant through
    the first point), so the epigraph is an LP; past u = 1 each further request waits `overload_wait_s` (the
    fluid backlog), the last line.

    :param mu_rps: the datacenter's serving capacity, requests/s, for the epoch's model mix
    :param slots: its batch slots summed over nodes (the c of M/G/c)
    :param scv: squared coefficient of variation of the service time
    :param limit_s: the wait beyond which a request is late (`pool_queueing_wait` needs it; only the mean is used)
    :param epoch_s: epoch length, s
    :param bin_s: the engine's bin length, s
    :param rate_profile: bin rates over the epoch's mean at equally weighted quantiles of the requests
    :param breakpoints: increasing utilizations from 0 to 1
    :param overload_wait_s: mean wait of a request beyond full capacity, s
    """
    u = np.asarray(breakpoints, dtype=float)
    r = np.asarray(rate_profile, dtype=float)
    lam = u[:, None] * r[None, :] * mu_rps  # [K + 1, bins]
    wait, _ = pool_queueing_wait(lam, mu_rps, slots, scv, limit_s, bin_s)
    total = u * mu_rps * epoch_s * np.where(np.isfinite(wait), wait, 0.0).mean(axis=1)  # [K + 1] s per epoch
    slopes = np.maximum.accumulate(np.maximum(np.diff(total) / np.diff(u), 0.0))  # [K]
    values = total[0] + np.concatenate([[0.0], np.cumsum(slopes * np.diff(u))])  # the majorant at each u_k
    slopes = np.append(slopes, max(slopes[-1], mu_rps * epoch_s * overload_wait_s))  # [K + 1], the last past u = 1
    return np.stack([values - slopes * u, slopes], axis=1)


def routing_lp(requests: np.ndarray, unit_cost: np.ndarray, capacity: np.ndarray, ceiling: np.ndarray,
               waiting: np.ndarray, queue_lines: np.ndarray | None = None, queue_weight: float = 0.0) -> tuple:
    """Solve the epoch's routing LP (module docstring) with HiGHS; returns (x [M, O, D] requests routed, the
    excess utilization over the ceilings every datacenter may have to take (0 where the load fits), objective
    value).

    :param requests: [M, O] requests of each row
    :param unit_cost: [M, O, D] objective per request routed (the linear terms)
    :param capacity: [D, M] requests per epoch of each datacenter if all its nodes served model m (0: not hosted)
    :param ceiling: [D] highest utilization planned at each datacenter (share of its capacity)
    :param waiting: [D] utilization already committed by requests waiting there
    :param queue_lines: [D, K, 2] (intercept, slope) of the lines whose maximum is each datacenter's queueing
        penalty as a function of its utilization (None: no queueing term)
    :param queue_weight: objective per unit of queueing penalty
    """
    req = np.asarray(requests, dtype=float)
    cost = np.asarray(unit_cost, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    M, O, D = cost.shape
    nx = M * O * D
    nq = 0 if queue_lines is None else D
    n = nx + nq + 1  # x, queue epigraph t_d, the common slack s
    idx = np.arange(nx).reshape(M, O, D)
    hosted = (cap > 0).T  # [M, D]
    per_use = np.where(hosted, 1.0 / np.where(cap > 0, cap, 1.0).T, 0.0)  # [M, D] utilization per request

    a_eq = np.zeros((M * O, n))
    for m in range(M):
        for o in range(O):
            a_eq[m * O + o, idx[m, o]] = 1.0
    use = np.zeros((D, n))  # u_d - waiting_d as a row over the variables
    for d in range(D):
        use[d, idx[:, :, d].ravel()] = np.repeat(per_use[:, d], O)
    cap_rows = use.copy()
    cap_rows[:, nx + nq] = -1.0  # u_d - s <= ceiling_d
    rows, rhs = [cap_rows], [np.asarray(ceiling, dtype=float) - np.asarray(waiting, dtype=float)]
    if queue_lines is not None:
        lines = np.asarray(queue_lines, dtype=float)
        for d in range(D):  # t_d >= a_k + g_k u_d  <=>  g_k (u_d - waiting_d) - t_d <= -(a_k + g_k waiting_d)
            q = use[d][None, :] * lines[d, :, 1:2]
            q[:, nx + d] = -1.0
            rows.append(q)
            rhs.append(-(lines[d, :, 0] + lines[d, :, 1] * waiting[d]))
    a_ub, b_ub = np.vstack(rows), np.concatenate(rhs)
    bounds = [(0.0, None if hosted[m, d] else 0.0) for m in range(M) for _ in range(O) for d in range(D)]
    bounds += [(0.0, None)] * (nq + 1)

    def solve(c, a_ub, b_ub):
        res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=req.ravel(), bounds=bounds, method="highs")
        if res.status != 0:
            raise SimError(f"oracle: the routing LP failed ({res.message})")
        return res

    # first: the least excess over the ceilings that every datacenter may take (0 where the load fits): one
    # common slack, so an overload is spread to a common level, not piled onto the cheapest site
    c1 = np.zeros(n)
    c1[nx + nq] = 1.0
    excess = float(solve(c1, a_ub, b_ub).fun)
    # then: the objective, keeping that excess
    c2 = np.concatenate([cost.ravel(), np.full(nq, queue_weight), np.zeros(1)])
    keep = c1[None, :]
    res = solve(c2, np.vstack([a_ub, keep]), np.append(b_ub, excess * (1.0 + SLACK_TOLERANCE) + SLACK_TOLERANCE))
    x = np.maximum(res.x[:nx].reshape(M, O, D), 0.0)
    return x, excess, float(res.fun)


@dataclass(frozen=True)
class OracleParams(HeadroomParams):
    """The shared head-room (`feasibility.HeadroomParams`) and the queueing term's pieces."""

    oracle_queue_breakpoints: int = param(20, "oracle: pieces of the piecewise-linear queueing wait between "
                                          "utilization 0 and 1", lo=1)
    oracle_overload_wait_epochs: float = param(0.5, "oracle: mean wait of a request beyond a datacenter's full "
                                               "capacity, in epochs (a fluid backlog built evenly over the "
                                               "epoch waits half of it on average)", lo=0)


class Oracle(Scheduler):
    """The routing LP on the forecast, with the shared head-room (module docstring)."""

    Params = OracleParams

    def setup(self) -> None:
        self.headroom = Headroom(self.params)  # the forecast's observed error -> the utilization target
        info = self.info
        cfg = info.evaluator.cfg  # the world's power fractions (Eq. 4)
        cap = info.capacity
        fleet = info.fleet
        n = info.nodes_per_dc
        types = fleet.node_type[:n]
        T = len(fleet.node_types)
        type_nodes = np.bincount(types, minlength=T).astype(float)
        type_tdp = np.array([fleet.tdp_w[:n][types == t][0] if (types == t).any() else 0.0 for t in range(T)])
        self.kwh_per_request = marginal_it_kwh(cap.node_rps, info.hosts, type_nodes, type_tdp,
                                               cfg.pc_pstates[0], cfg.pc_parked)  # [M]
        m, o, d = info.plan_shape
        self.uniform_plan = np.full((m, o, d), 1.0 / d)
        self.breakpoints = np.linspace(0.0, 1.0, self.params.oracle_queue_breakpoints + 1)
        self.rate_profile = np.ones(1) if info.rate_profile is None else np.asarray(info.rate_profile, dtype=float)
        self.log_rows: list = []

    # --- what the LP routes ----------------------------------------------------------------------------------
    def requests(self, obs: Observation) -> np.ndarray:
        """[M, O] the requests to route: the forecast (the hindsight oracle: the truth)."""
        return np.asarray(obs.predicted_requests, dtype=float)

    def target(self) -> float:
        """The utilization each datacenter is planned up to (`Headroom.target`)."""
        return self.headroom.target()

    # --- the LP's coefficients -----------------------------------------------------------------------------
    def queue_lines(self, mix: np.ndarray) -> np.ndarray:
        """[D, K, 2] each datacenter's queueing-penalty lines for the model mix `mix` [M] (`queue_penalty_lines`)."""
        info, cap = self.info, self.info.capacity
        hosts = np.asarray(info.hosts, dtype=float)
        out = []
        mu_epoch = cap.mix_requests_per_epoch(mix)  # [D]
        for d in range(info.dcs):
            nodes = np.asarray(info.nodes_per_type[d], dtype=float)  # [T]
            slots = float((mix[:, None] * hosts * cap.batch * nodes[None, :]).sum())
            w = hosts * cap.node_rps * nodes[None, :]
            w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
            scv = float((mix * (w * cap.service_scv).sum(axis=1)).sum())
            out.append(queue_penalty_lines(mu_epoch[d] / info.epoch_s, slots, scv, info.sla_ttft_s, info.epoch_s,
                                           info.evaluator.bin_s, self.rate_profile, self.breakpoints,
                                           self.params.oracle_overload_wait_epochs * info.epoch_s))
        return np.stack(out)

    def unit_cost(self, obs: Observation, ref: np.ndarray) -> tuple:
        """([M, O, D] normalized objective per request routed, objective per second of queueing wait): Eq. 11's
        weights over the uniform plan's metrics `ref` (TTFT s, carbon kg, water L, cost USD)."""
        w = np.asarray(self.info.weights, dtype=float)
        scale = w / np.maximum(ref, 1e-12)
        lat = physics.round_trip_s(np.asarray(self.info.latency_s, dtype=float))  # [O, D]
        kwh = self.kwh_per_request[:, None]  # [M, 1]
        per_kwh = (scale[1] * obs.carbon_kg_per_it_kwh + scale[2] * obs.water_l_per_it_kwh
                   + scale[3] * obs.cost_usd_per_it_kwh)  # [D]
        cost = scale[0] * lat[None, :, :] + (kwh * per_kwh[None, :])[:, None, :]
        return cost, float(scale[0])

    def plan(self, obs: Observation) -> np.ndarray:
        self.headroom.learn(obs.last)
        info = self.info
        req = self.requests(obs)
        cap = np.asarray(info.capacity.requests_per_epoch, dtype=float)  # [D, M]
        state = dataclasses.replace(EpochState.from_observation(obs), predicted=req, requests=req)
        ref = info.evaluator.evaluate(state, self.uniform_plan).metrics[0]
        cost, queue_weight = self.unit_cost(obs, ref)
        mix = mix_share(req)
        if obs.queued_by_model is not None:
            waiting = (np.asarray(obs.queued_by_model, dtype=float) / np.maximum(cap, 1e-300)).sum(axis=1)
        else:
            per_req = (mix[None, :] / np.maximum(cap, 1e-300)).sum(axis=1)
            waiting = np.asarray(obs.queued, dtype=float) * per_req
        target = self.target()
        x, excess, objective = routing_lp(req, cost, cap, np.full(info.dcs, target), waiting, self.queue_lines(mix),
                                          queue_weight)
        self.log_rows.append({"epoch": obs.epoch, "headroom_target": target, "excess_utilization": excess,
                              "lp_objective": objective})
        rows = x.sum(axis=2, keepdims=True)
        best = np.argmin(np.where((cap > 0).T[:, None, :], cost, np.inf), axis=2)  # rows with nothing to route
        empty = np.zeros_like(x)
        np.put_along_axis(empty, best[..., None], 1.0, axis=2)
        plan = np.where(rows > 0, x / np.maximum(rows, 1e-300), empty)
        self.headroom.record(plan, obs.predicted_requests, obs.epoch)
        return plan

    def extra_results(self) -> dict:
        """`oracle_epochs.csv`: per epoch, the utilization target (`headroom_target`), the least excess over it
        the load forced on the datacenters (`excess_utilization`, the common slack; 0 when it fits) and the LP's
        objective (Eq. 11's normalised weighted sum of the routing-dependent terms, `lp_objective`)."""
        import pandas as pd

        return {"oracle_epochs": pd.DataFrame(self.log_rows)}


class OracleHindsight(Oracle):
    """The routing LP on the epoch's true arrivals (privileged: `hindsight`), head-room for the within-epoch peak
    only. A lower bound, not a deployable scheduler."""

    hindsight = True

    def requests(self, obs: Observation) -> np.ndarray:
        if obs.true_requests is None:
            raise SimError(f"{self.label()}: the engine gave no true arrivals (Scheduler.hindsight)")
        return np.asarray(obs.true_requests, dtype=float)

    def target(self) -> float:
        """No forecast error to cover: the truth is known; the within-epoch bursts (observed so far, not known
        ahead) still need head-room."""
        return headroom_target(self.headroom.peak_to_mean(), self.params.fill_error_z, 0.0)
