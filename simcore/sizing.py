"""Sizing the world to a trace: the load factor and the fleet (docs/model.md 'Load').

The loader reads a trace and describes it (`TraceShape`: its busiest epoch's requests before scaling, its token
and model mix); this module decides, from that description and the run's `Config`, how many real requests each
request of the trace stands for (the load factor) and how many nodes each datacenter has. Two rules:

- `load`: the trace is scaled (`load_scale auto`) so that its busiest epoch uses `peak_utilization` (the paper's
  95 %) of the reference fleet's serving capacity (`reference_dcs` x `nodes_per_dc` nodes, `simcore.capacity`);
  a number given as `load_scale` is taken as it is. The fleet is `nodes_per_dc` as configured.
- `fleet`: the trace is taken at its own volume (times `load_scale` where a number is given) and `nodes_per_dc`
  is chosen so that the busiest epoch uses `peak_utilization` of the reference fleet (at least one node of each
  type). `fleet=auto` asks for it; `load_scale auto` falls back to it when the load rule would multiply a trace file
  the user gave by more than `load_scale_auto_max` (1,000: a few hundred requests scaled a million-fold are a
  million simultaneous copies of each, not a workload). The bundled traces are a sample (Azure 2024, x2414) and
  a profile (BurstGPT, x4e5) of production services, meant to be scaled: the bound is not theirs.

`size_world(cfg, shape)` returns a `Sizing`: the factor, the nodes per datacenter, the rule used and, where the
rule was not the one asked for or the fleet was resized, one line saying so (`run.py` prints it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from simcore.errors import ConfigError


@dataclass(frozen=True)
class TraceShape:
    """What sizing needs to know of a trace, before any scaling.

    :param trace: the trace as the run named it
    :param peak_epoch_requests: requests of the trace day's busiest epoch (expected count for a rate profile)
    :param prompt_tokens: the trace's prompts as the context policy leaves them (clipped, or without dropped ones)
    :param output_tokens: their outputs
    :param model_share: (Llama-2-7B, Llama-2-70B) shares of the requests
    :param bundled: a bundled trace (a sample or a profile of a production service, meant to be scaled up: the
        `load_scale_auto_max` bound does not apply)
    """

    trace: str
    peak_epoch_requests: float
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    model_share: tuple
    bundled: bool = False


@dataclass(frozen=True)
class Sizing:
    """The world sized to a trace.

    :param load_factor: real requests per request of the trace
    :param nodes_per_dc: nodes of each datacenter
    :param rule: 'load' (the trace scaled to the fleet) or 'fleet' (the fleet sized to the trace)
    :param note: one line for the user where the rule or the fleet is not what the flags literally ask, else ''
    """

    load_factor: float
    nodes_per_dc: int
    rule: str
    note: str = ""

    def apply(self, cfg):
        """The run's Config with this fleet (unchanged where the rule kept it)."""
        return cfg if cfg.nodes_per_dc == self.nodes_per_dc else replace(cfg, nodes_per_dc=self.nodes_per_dc)


def reference_peak_requests(cfg, shape: TraceShape, nodes_per_dc: int | None = None) -> float:
    """Real requests in the busiest epoch the rules aim at: `peak_utilization` of the reference fleet's
    (`reference_dcs` datacenters of `nodes_per_dc` nodes) serving capacity per epoch, for the trace's token and
    model mix."""
    from simcore.capacity import build_fleet, serving_capacity
    from simcore.profiles import load_profiles

    c = cfg if nodes_per_dc is None else replace(cfg, nodes_per_dc=nodes_per_dc)
    fleet = build_fleet(c, c.reference_dcs)
    cap = serving_capacity(c, fleet, load_profiles(c), shape.prompt_tokens, shape.output_tokens)
    return float(c.peak_utilization * cap.mix_requests_per_epoch(shape.model_share).sum())


def load_factor(cfg, shape: TraceShape) -> float:
    """The factor `cfg.load_scale` stands for under the load rule (a number is taken as it is)."""
    if cfg.load_scale != "auto":
        return float(cfg.load_scale)
    if not shape.peak_epoch_requests > 0:
        raise ConfigError(f"--load-scale auto: trace {shape.trace!r} has no request to scale")
    return reference_peak_requests(cfg, shape) / float(shape.peak_epoch_requests)


def fleet_nodes(cfg, peak_epoch_requests: float, shape: TraceShape) -> int:
    """Nodes per datacenter whose reference fleet serves `peak_epoch_requests` in one epoch at
    `peak_utilization` (capacity grows in proportion to the nodes; at least one node of each type)."""
    from simcore.config import MAX_NODES_PER_DC

    types = len(cfg.gpu_types) * len(cfg.gpu_counts)
    per_node = reference_peak_requests(cfg, shape) / cfg.nodes_per_dc  # the mix's requests per node and epoch
    want = peak_epoch_requests / per_node if per_node > 0 else math.inf
    if not want <= MAX_NODES_PER_DC:
        raise ConfigError(f"--fleet auto: trace {shape.trace!r} would need {want:.3g} nodes per datacenter, more "
                          f"than {MAX_NODES_PER_DC} (lower --load-scale)")
    return max(types, int(round(want)))


def size_world(cfg, shape: TraceShape) -> Sizing:
    """The load factor and the fleet for `cfg` and a trace (module docstring: the two rules)."""
    if cfg.fleet == "auto":
        f = 1.0 if cfg.load_scale == "auto" else float(cfg.load_scale)
        return _fleet_rule(cfg, shape, f, f"--fleet auto: trace {shape.trace!r} at x{f:g} its own volume")
    f = load_factor(cfg, shape)
    if cfg.load_scale == "auto" and f > cfg.load_scale_auto_max and not shape.bundled:
        return _fleet_rule(cfg, shape, 1.0, f"--load-scale auto would multiply trace {shape.trace!r} by {f:.3g} "
                                            f"(> load_scale_auto_max={cfg.load_scale_auto_max:g}); it is taken at "
                                            "its own volume instead")
    return Sizing(f, cfg.nodes_per_dc, "load")


def _fleet_rule(cfg, shape: TraceShape, f: float, why: str) -> Sizing:
    if not shape.peak_epoch_requests > 0:
        raise ConfigError(f"--fleet auto: trace {shape.trace!r} has no request to size a fleet for")
    n = fleet_nodes(cfg, shape.peak_epoch_requests * f, shape)
    used = shape.peak_epoch_requests * f / reference_peak_requests(cfg, shape, n) * cfg.peak_utilization
    return Sizing(f, n, "fleet", f"{why}, and the fleet sized to it: {n} nodes per datacenter (was "
                                 f"{cfg.nodes_per_dc}), its busiest epoch at {100 * used:.2g} % of the "
                                 f"{cfg.reference_dcs}-datacenter reference fleet's capacity")
