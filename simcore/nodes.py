"""The node-model interface: what the engine's epoch loop (`simcore.engine`) asks of a node model, and nothing else.

Two implementations, each a file: `simcore.exact.ExactNodes` (every request through the balancer, the nodes'
memory, batches and GPUs, and the pools' queues; the ground truth) and `simcore.cohorts.CohortNodes` (cohorts
carrying arrival rates into fluid FIFO pools). The engine owns the epochs (plan, warm sets, epoch close and its
accounting, the drain) and the nodes' residency (which models each node holds and when they are ready,
`Engine._load`); a node model owns how the requests of an epoch are played on the pools the warm set gives it.
Rung 2 of the fidelity ladder (`reports.validate`) plays one world through both and compares them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class NodeModel(ABC):
    """How requests are played on the datacenters' pools. The engine calls, per epoch: `epoch_reset`, then
    `add_pool` for each pool of the new warm set, `pools_ready`, `start_epoch`, `arrive` (or `arrive_one` per
    request of an online scheduler), then `steps_per_epoch` x (a SimPy timeout, `tick`), and at the epoch's close
    `utilization` and `epoch_requests`; `backlog`, `idle` and `queued_real` whenever it needs them; `finish` and
    `record` at the end of the run.

    :param engine: the `simcore.engine.Engine` whose run this is (its world, fleet, shared node residency)
    """

    low_discrepancy: bool = False  # route with low-discrepancy draws (`engine.draw_datacenters`)

    def __init__(self, engine) -> None:
        self.e = engine

    @abstractmethod
    def epoch_reset(self, now: float) -> None:
        """A new warm set is about to be built: pools lose their nodes."""

    @abstractmethod
    def add_pool(self, d: int, key: int, m: int, nodes: np.ndarray, cold: list, pool_id: int, shared: bool,
                 now: float) -> None:
        """Pool `key` of datacenter d (model m) gets its warm `nodes` and the `cold` nodes it may spill to;
        `shared`: the nodes are other pools' (a fleet with fewer nodes than pools)."""

    @abstractmethod
    def pools_ready(self, now: float) -> None:
        """Every pool of the warm set is built (requests still waiting may start)."""

    @abstractmethod
    def start_epoch(self, lo: int, hi: int) -> None:
        """The epoch's requests are workload rows [lo, hi)."""

    @abstractmethod
    def arrive(self, e: int, plan: np.ndarray, idx: np.ndarray, dc: np.ndarray, net: np.ndarray,
               arr: np.ndarray) -> None:
        """Requests `idx`, routed by the epoch's plan to datacenters `dc`, reach them at `arr` (after `net`)."""

    @abstractmethod
    def arrive_one(self, i: int, d: int, m: int, net: float, t: float) -> None:
        """Request i (model m, trace time t), routed online to datacenter d, reaches it after `net`."""

    @abstractmethod
    def steps_per_epoch(self, drain: bool) -> int:
        """How many equal steps the engine plays an epoch in (`tick` after each)."""

    @abstractmethod
    def tick(self) -> None:
        """A step of the epoch has passed."""

    @abstractmethod
    def backlog(self) -> float:
        """Real requests that arrived and have no first token yet."""

    @abstractmethod
    def idle(self) -> np.ndarray:
        """[N] nodes with nothing to do."""

    @abstractmethod
    def queued_real(self) -> np.ndarray:
        """[D, M] real requests waiting for a node."""

    @abstractmethod
    def utilization(self, e: int, length_s: float) -> tuple:
        """([N] share of each node's serving capacity used over the epoch's `length_s`, [N] active nodes)."""

    @abstractmethod
    def epoch_requests(self, lo: int, hi: int) -> tuple:
        """Of workload rows [lo, hi): (datacenter or -1, TTFT or NaN, real requests served, real requests late)."""

    @abstractmethod
    def finish(self) -> None:
        """The run is over: settle what can be settled."""

    @abstractmethod
    def record(self) -> dict:
        """Per request: ttft_s, served, sla_late, req_dc, cold, prompt_node, token_node (`RunRecord` fields)."""
