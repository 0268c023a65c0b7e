"""Splitwise [`splitwise`] (Patel et al., "Splitwise: Efficient generative LLM inference using phase
splitting", ISCA 2024), adapted to geo-distributed routing.

Kept from the paper: each request's two phases run on different machine pools: the compute-bound prompt
(prefill) phase on compute-rich H100 nodes, the memory-bound token (decode) phase on A100 nodes, the KV cache
moving between them over the cluster interconnect (the engine pays kv_gb / splitwise_kv_link_gb_per_s); the
first token comes from the prompt machine. Splitwise is a latency/throughput-first design with no notion of
carbon, water or price, so its cluster-level routing here is latency-first, exactly `fill-ttft`
(`schedulers.fill`): every (model, origin) forecast goes to the lowest-latency datacenter until that datacenter's
utilization of its serving capacity (`StaticInfo.capacity`, requests it already has queued counted first)
reaches the fill target (head-room for the busiest minute and the forecast's observed error), spilling to the
next nearest; when every datacenter is at the target, all are filled to one common level. Split execution is
switched on by the `split_phases` flag, which only this scheduler sets; pool sizes are
`splitwise_prompt_node_share` of the warm set (config).
"""
from __future__ import annotations

from schedulers.fill import FillTTFT


class Splitwise(FillTTFT):
    """Latency-first capacity-aware routing (`fill-ttft`) with phase-split execution inside each datacenter."""

    split_phases = True
