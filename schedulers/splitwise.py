"""Splitwise [`splitwise`] (Patel et al., "Splitwise: Efficient generative LLM inference using phase
splitting", ISCA 2024), adapted to geo-distributed routing.

Kept from the paper: each request's two phases run on different machine pools: the compute-bound prompt
(prefill) phase on compute-rich H100 nodes, the memory-bound token (decode) phase on A100 nodes, the KV cache
moving between them over the cluster interconnect (kv_gb / splitwise_kv_link_gb_per_s); the first token comes
from the prompt machine. The scheduler declares this split execution (`execution()`,
`simcore.execution.split_execution`); the engine plays it. Splitwise is a latency/throughput-first design with no
notion of carbon, water or price, so its cluster-level routing here is latency-first, exactly `fill-ttft`
(`schedulers.fill`): every (model, origin) forecast goes to the lowest-latency datacenter until that datacenter's
utilization of its serving capacity (`StaticInfo.capacity`, requests it already has queued counted first)
reaches the fill target (head-room for the busiest minute and the forecast's observed error), spilling to the
next nearest; when every datacenter is at the target, all are filled to one common level. The prompt pool gets
`splitwise_prompt_node_share` of a model's warm set, the token pool the rest.
"""
from __future__ import annotations

from dataclasses import dataclass

from schedulers.fill import FillParams, FillTTFT
from simcore.errors import ConfigError
from simcore.execution import Execution, split_execution
from simcore.params import param


@dataclass(frozen=True)
class SplitwiseParams(FillParams):
    """The two pools and the link between them (docs/model.md 'Split execution'), and fill-ttft's head-room."""

    splitwise_prompt_gpu: str = param("H100-80GB", "Splitwise: GPU type of the prompt (prefill) pool")
    splitwise_token_gpu: str = param("A100-80GB", "Splitwise: GPU type of the token (decode) pool")
    splitwise_prompt_node_share: float = param(
        0.55, "Splitwise: share of a warm set given to the prompt pool (since issue 19's node model a prefill pass "
        "occupies the GPU and takes 40-64 % of a request's node time; on the default day 0.45 leaves 2.9 % of "
        "requests over the SLA, 0.55 0.76 %, 0.65 starves the token pools: 33 %)",
        lo=0, hi=1, lo_open=True, hi_open=True)
    splitwise_kv_link_gb_per_s: float = param(50.0, "Splitwise: KV-cache transfer bandwidth between nodes, GB/s "
                                              "(one 400 Gb/s InfiniBand link, as in Splitwise's DGX clusters)",
                                              lo=0, lo_open=True)


class Splitwise(FillTTFT):
    """Latency-first capacity-aware routing (`fill-ttft`) with phase-split execution inside each datacenter."""

    Params = SplitwiseParams

    def execution(self) -> Execution:
        p = self.params
        gpu_types = tuple(dict.fromkeys(gpu for gpu, _ in self.info.node_types))
        for name in ("splitwise_prompt_gpu", "splitwise_token_gpu"):
            if getattr(p, name) not in gpu_types:
                raise ConfigError(f"{name}={getattr(p, name)}: must be one of gpu_types ({', '.join(gpu_types)})")
        return split_execution(p.splitwise_prompt_gpu, p.splitwise_token_gpu, p.splitwise_prompt_node_share,
                               p.splitwise_kv_link_gb_per_s)
