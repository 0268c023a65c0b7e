"""Splitwise [`splitwise`] (Patel et al., "Splitwise: Efficient generative LLM inference using phase
splitting", ISCA 2024), adapted to geo-distributed routing.

Kept from the paper: each request's two phases run on different machine pools: the compute-bound prompt
(prefill) phase on compute-rich H100 nodes, the memory-bound token (decode) phase on A100 nodes, the KV cache
moving between them over the cluster interconnect (the engine pays kv_gb / splitwise_kv_link_gb_per_s); the
first token comes from the prompt machine. Splitwise is a latency/throughput-first design with no notion of
carbon, water or price, so its cluster-level routing here is latency-first: every (model, origin) forecast goes
to the lowest-latency datacenter that still has warm capacity (nodes_per_dc x requests_per_warm_node requests
per epoch), spilling to the next nearest. Split execution is switched on by the `split_phases` flag, which
only this scheduler sets; pool sizes are `splitwise_prompt_node_share` of the warm set (config).
"""
from __future__ import annotations

import numpy as np

from schedulers.base import Observation, Scheduler


class Splitwise(Scheduler):
    """Latency-first routing with phase-split execution inside each datacenter."""

    split_phases = True

    def plan(self, obs: Observation) -> np.ndarray:
        cfg, info = self.info.cfg, self.info
        m_n, o_n, d_n = info.plan_shape
        pred = np.asarray(obs.predicted_requests, dtype=float)
        if pred.sum() <= 0:
            pred = np.ones_like(pred)  # no forecast yet: route as if every row carried one request
        room = np.full(d_n, cfg.nodes_per_dc * cfg.requests_per_warm_node, dtype=float)
        plan = np.zeros((m_n, o_n, d_n))
        # rows in order of their best latency, so the closest demand is served first (ties: index order)
        rows = sorted(((info.latency_s[o].min(), m, o) for m in range(m_n) for o in range(o_n)))
        for _, m, o in rows:
            left = pred[m, o]
            for d in np.argsort(info.latency_s[o], kind="stable"):
                take = min(left, room[d])
                plan[m, o, d] += take
                room[d] -= take
                left -= take
                if left <= 0:
                    break
            if left > 0:  # every datacenter full: the rest to the nearest
                plan[m, o, int(np.argmin(info.latency_s[o]))] += left
        empty = plan.sum(axis=2) <= 0  # rows with no forecast: nearest datacenter
        for m, o in zip(*np.nonzero(empty)):
            plan[m, o, int(np.argmin(info.latency_s[o]))] = 1.0
        return plan / plan.sum(axis=2, keepdims=True)
