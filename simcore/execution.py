"""Execution modes: how a request's work runs on a datacenter's nodes (docs/model.md 'Split execution').

A scheduler declares its mode (`Scheduler.execution()`, default `WHOLE`); the engine plays every mode the same
way, phase by phase:

- `WHOLE`: one phase, prefill and decode on one node.
- `split_execution(prompt_gpu, token_gpu, prompt_node_share, kv_link_gb_per_s)`: a prompt phase (the prefill) on
  nodes of one GPU type, then the prompt's KV cache crosses a link to a token phase (the decode) on nodes of
  another (Splitwise's phase splitting, Patel et al., ISCA 2024). The first token comes from the prompt phase.

Phase j of model m is served by its own pool per datacenter, pool key j x M + m. This module says what each phase
runs, how many of a model's k warm nodes its pool gets and of which GPU type, how fast one node serves it, and
what the KV transfer between phases takes; the engine does the rest (`Engine._set_warm`, `_start`, `_finish`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from simcore import physics
from simcore.errors import ConfigError


@dataclass(frozen=True)
class Phase:
    """One part of a request's work.

    :param name: for messages ('whole', 'prompt', 'token')
    :param prefill: runs the prompt's prefill
    :param decode: runs the output's decode steps
    :param gpu: GPU type of the nodes its pool takes (None: any node that hosts the model)
    :param node_share: its pool's share of a model's warm nodes (rounded up)
    """

    name: str
    prefill: bool
    decode: bool
    gpu: str | None = None
    node_share: float = 1.0


@dataclass(frozen=True)
class Execution:
    """The phases of every request, in order, and the KV link between consecutive phases.

    :param phases: one (whole) or two (a prefill phase, then a decode phase)
    :param kv_link_gb_per_s: bandwidth the KV cache crosses between phases, GB/s
    """

    phases: tuple
    kv_link_gb_per_s: float = math.inf

    def __post_init__(self) -> None:
        first, last = self.phases[0], self.phases[-1]
        if len(self.phases) > 2 or not (first.prefill and last.decode):
            raise ValueError("an execution is one phase (prefill and decode) or two (prefill, then decode)")

    def pool_nodes(self, k: int, minimum: int) -> list:
        """Nodes each phase's pool gets when a model keeps k nodes warm: ceil(k x its share), at least `minimum`."""
        return [max(minimum, math.ceil(k * ph.node_share)) for ph in self.phases]

    def transfer_s(self, prompt_tokens, kv_mb_per_token):
        """Time to move a request's prompt KV cache to its next phase (`physics.kv_transfer_latency_s`)."""
        return physics.kv_transfer_latency_s(physics.request_kv_gb(prompt_tokens, kv_mb_per_token),
                                             self.kv_link_gb_per_s)

    def node_rps(self, whole_rps: np.ndarray, batch: np.ndarray, prefill_s: Callable[[], np.ndarray],
                 decode_s: Callable[[], np.ndarray]) -> list:
        """[phase] -> [M][T] requests per second one node serves of each phase at full batch: whole requests
        (`Capacity.node_rps`), prompts one prefill pass after another (1 / mean prefill), or decodes B* at a time
        (B* / mean decode time); the means are computed on demand.

        :param whole_rps: [M, T] `Capacity.node_rps`
        :param batch: [M, T] B*
        :param prefill_s, decode_s: () -> [M, T] mean prefill and decode time of a request at B*
        """
        out = []
        for ph in self.phases:
            if ph.prefill and ph.decode:
                out.append(np.asarray(whole_rps).tolist())
            elif ph.prefill:  # a prefill pass occupies the GPU: prompts go one after another
                out.append((np.where(np.asarray(batch) > 0, 1.0, 0.0) / prefill_s()).tolist())
            else:
                out.append((np.asarray(batch, dtype=float) / decode_s()).tolist())
        return out

    def check(self, gpu_types: tuple, who: str) -> None:
        """Refuse a phase on a GPU type the world does not have."""
        for ph in self.phases:
            if ph.gpu is not None and ph.gpu not in gpu_types:
                raise ConfigError(f"scheduler {who}: its {ph.name} phase runs on GPU type {ph.gpu}, not one of "
                                  f"gpu_types ({', '.join(gpu_types)})")


WHOLE = Execution((Phase("whole", prefill=True, decode=True),))


def split_execution(prompt_gpu: str, token_gpu: str, prompt_node_share: float,
                    kv_link_gb_per_s: float) -> Execution:
    """Prefill on `prompt_gpu` nodes (share `prompt_node_share` of a model's warm set), decode on `token_gpu`
    nodes (the rest), the prompt's KV cache crossing a `kv_link_gb_per_s` link between them."""
    return Execution((Phase("prompt", prefill=True, decode=False, gpu=prompt_gpu, node_share=prompt_node_share),
                      Phase("token", prefill=False, decode=True, gpu=token_gpu, node_share=1.0 - prompt_node_share)),
                     kv_link_gb_per_s)
