"""Helix [`helix`] (Mei et al., "Helix: Serving large language models over heterogeneous GPUs and network via
max-flow", ASPLOS 2025), adapted to routing each epoch's requests across datacenters.

Kept from the paper: the cluster is a flow network whose capacities are the request throughput of
heterogeneous GPU nodes and whose paths carry requests; the schedule is read off a max-flow (Helix: max-flow
for throughput, then per-request weighted round-robin over the flow). We solve max-flow *min-cost* (networkx
`max_flow_min_cost`, network simplex), so that among the throughput-maximal flows the one with the lowest
latency is taken, and turn the flow into plan fractions.

The graph, per epoch::

    source -> (model, origin) -> (model, datacenter) -> (model, datacenter, node type) -> sink
    supply = forecast     cost = 2 x LA_net (ms)        cost = first-token compute (ms)   capacity = throughput

- supply: the forecast requests of each (model, origin) (obs.predicted_requests, rounded up); before any
  history the forecast is zero and every row carries one unit, so the flow still says where it would go;
- node-type capacity (requests per epoch) = nodes x node throughput x epoch_s x `helix_capacity_share`, the
  throughput (requests/s of one node at full batch, Eq. 1 batch over the mean service time of the run's token
  mix) read from `StaticInfo.capacity.node_rps`, the capacity the engine enforces, computed once per run;
  requests still queued at a datacenter use up that much of its capacity first;
- edge costs: network round trip 2 x LA_net (Eq. 2) on origin -> datacenter, first-token compute time (Eq. 3
  term) on datacenter -> node type, in integer milliseconds (network simplex wants integers).

Adapted, and why: Helix places one model's layers over GPUs (a MILP) and routes within one cluster; here the
placement is given (every node type that `hosts` a model may serve it) and the question is which datacenter,
so the flow's middle layer is the datacenter. Two models share the nodes, which a single-commodity flow cannot
express exactly: each node type's nodes are divided between the models in proportion to the node-time their
forecast needs (the model-placement step, simplified), then one max-flow min-cost is solved. Helix knows
nothing of carbon, water or price, so neither does this scheduler: under light load it routes nearest, and
demand beyond a datacenter's capacity flows to the next cheapest path.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from schedulers.common import forecast_or_ones
from simcore import physics
from simcore.interface import Observation, Scheduler
from simcore.params import Parameters, param

MS_PER_S = 1000.0  # edge costs are integer milliseconds (unit conversion, not a tunable)
SOURCE, SINK = "source", "sink"


@dataclass(frozen=True)
class HelixParams(Parameters):
    helix_capacity_share: float = param(1.0, "Helix: share of a node type's peak throughput (nodes x concurrency x "
                                        "epoch / service time) offered as flow capacity", lo=0, lo_open=True)


class Helix(Scheduler):
    """Max-flow min-cost routing over (model, origin) -> datacenter -> node type (networkx network simplex)."""

    Params = HelixParams

    def setup(self) -> None:
        info = self.info
        first = first_token_compute_table(info)
        hosts = np.asarray(info.hosts, dtype=bool)
        rps = np.asarray(info.capacity.node_rps, dtype=float)  # [M, T] requests/s of one node at full batch
        #: [M, T] requests per epoch one node of type t serves of model m (0 where it cannot host it)
        self.node_rate = np.where(hosts, rps * info.epoch_s * self.params.helix_capacity_share, 0.0)
        self.node_time = np.where(hosts, info.capacity.cost_s, np.inf)  # [M, T] node-seconds one request uses
        self.first_ms = np.rint(first * MS_PER_S).astype(int)  # [M, T]
        self.net_ms = np.rint(physics.round_trip_s(np.asarray(info.latency_s)) * MS_PER_S).astype(int)  # [O, D]
        self.last_solution: dict | None = None

    # --- the flow problem --------------------------------------------------------------------------------
    def capacities(self, supply: np.ndarray, queued: np.ndarray | None = None) -> np.ndarray:
        """[M, D, T] requests per epoch each node type offers each model.

        Node types are divided between the models by the node-time their supply needs (placement step);
        requests queued at a datacenter take their share first.
        """
        nodes = np.asarray(self.info.nodes_per_type, dtype=float)  # [D, T]
        need = supply.sum(axis=1)[:, None] * np.where(np.isfinite(self.node_time), self.node_time, 0.0)  # [M, T]
        hosted = need > 0
        share = np.where(hosted.any(axis=0), need / np.maximum(need.sum(axis=0), 1e-12), 0.0)  # [M, T]
        # a type no model's demand needs is still offered to every model that it hosts
        share = np.where(hosted.any(axis=0)[None, :], share,
                         np.asarray(self.info.hosts, float) / np.maximum(np.sum(self.info.hosts, 0), 1))
        cap = share[:, None, :] * nodes[None, :, :] * self.node_rate[:, None, :]  # [M, D, T]
        if queued is not None and np.sum(queued) > 0:
            used = np.asarray(queued, float)[None, :, None] * cap / np.maximum(cap.sum(axis=(0, 2), keepdims=True),
                                                                                 1e-12)
            cap = np.maximum(0.0, cap - used)
        return np.floor(cap)

    def solve(self, supply: np.ndarray, queued: np.ndarray | None = None) -> dict:
        """Max-flow min-cost for integer `supply` [M, O]; returns flow [M, O, D], type_flow [M, D, T], capacity."""
        M, O = supply.shape
        D, T = self.info.dcs, len(self.info.node_types)
        cap = self.capacities(supply, queued)
        g = nx.DiGraph()
        for m in range(M):
            for o in range(O):
                if supply[m, o] > 0:
                    g.add_edge(SOURCE, ("mo", m, o), capacity=int(supply[m, o]), weight=0)
                    for d in range(D):  # uncapacitated: the network is not the bottleneck, the nodes are
                        g.add_edge(("mo", m, o), ("md", m, d), weight=int(self.net_ms[o, d]))
            for d in range(D):
                for t in range(T):
                    if cap[m, d, t] > 0:
                        g.add_edge(("md", m, d), ("mdt", m, d, t), capacity=int(cap[m, d, t]),
                                   weight=int(self.first_ms[m, t]))
                        g.add_edge(("mdt", m, d, t), SINK, weight=0)
        flow = np.zeros((M, O, D))
        type_flow = np.zeros((M, D, T))
        if g.has_node(SOURCE) and g.has_node(SINK):
            f = nx.max_flow_min_cost(g, SOURCE, SINK)
            for m in range(M):
                for o in range(O):
                    for d, v in ((n[2], v) for n, v in f.get(("mo", m, o), {}).items()):
                        flow[m, o, d] = v
                for d in range(D):
                    for (_, _, _, t), v in f.get(("md", m, d), {}).items():
                        type_flow[m, d, t] = v
        return {"flow": flow, "type_flow": type_flow, "capacity": cap, "supply": supply}

    # --- the hook --------------------------------------------------------------------------------------------
    def plan(self, obs: Observation) -> np.ndarray:
        pred = forecast_or_ones(obs.predicted_requests)  # one unit per row still shows the cheapest path
        supply = np.ceil(pred - 1e-9).astype(int)
        sol = self.solve(supply, obs.queued)
        self.last_solution = sol
        flow = sol["flow"]
        rows = flow.sum(axis=2, keepdims=True)
        # a row the flow could not (fully) carry keeps the flow's split; a row without any flow goes nearest
        nearest = np.zeros_like(flow)
        o_ix = np.arange(flow.shape[1])
        nearest[:, o_ix, np.argmin(self.info.latency_s, axis=1)] = 1.0
        return np.where(rows > 0, flow / np.maximum(rows, 1e-12), nearest)


def first_token_compute_table(info) -> np.ndarray:
    """[M, T] mean first-token compute time (s) of each model on each node type at batch 1 (Eq. 3 term), over
    the run's token sample (`StaticInfo.profiles`)."""
    prof = info.profiles
    M, T = len(info.models), len(info.node_types)
    prompt, output = (np.asarray(x, dtype=float) for x in info.token_sample)
    keep = output > 0
    prompt, output = prompt[keep], output[keep]
    m_ix, t_ix = np.indices((M, T))
    pre = prof.prefill_s_array(m_ix[..., None], t_ix[..., None], prompt[None, None, :])
    step1 = prof.decode_step_s[:, :, 1][..., None]
    return physics.first_token_compute_s(info.ttft_model, pre + output * step1, output, pre, step1).mean(axis=2)
