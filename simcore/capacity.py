"""Serving capacity: how many requests a node, a datacenter and the reference fleet can serve (SPEC 3-4).

Computed once per run (the engine hands the result to the schedulers in `StaticInfo.capacity`) and nowhere else:

- batch B*[m, t]: the largest batch of mean-size requests of model m whose KV fits beside the weights in a node
  of type t (Eq. 1, `physics.max_batch_in_memory`), capped by `max_batch`;
- GPU time G[m, t]: what one request takes of its node's GPU when the node serves a full batch as a
  continuous-batching server does (docs/model.md 'Capacity'): its prefill alone (a prefill pass occupies the
  GPU; the running decodes wait) plus its share of the decode steps, output x decode_step(B*) / B*, averaged
  over the run's token mix (`simcore.profiles`);
- node throughput rps[m, t] = 1 / G: requests per second a node of type t serves at full batch;
- a request's capacity cost on type t: 1 / rps seconds of one node's capacity; a node's utilization in an epoch
  is the cost of the requests it started divided by the epoch length, 1.0 = served at full throughput;
- in a mixed pool, sorted_batch / sorted_rps [m, t]: a node whose memory holds fewer than `max_batch` mean requests
  admits by each request's own KV (Eq. 1, as the exact engine does): beside nodes that take any request it ends up
  serving the small ones, more at once (`sorted_admission`).

A datacenter's capacity for model m is every hosting node serving m: `requests_per_epoch[d, m]`. Both models share
the nodes, so a datacenter's utilization under a load R[d, m] is sum_m R[d, m] / requests_per_epoch[d, m]
(`datacenter_utilization`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simcore import physics


@dataclass
class Fleet:
    """Static description of the nodes of the D datacenters (node n of datacenter d is n // nodes_per_dc)."""

    node_dc: np.ndarray  # [N] datacenter of each node
    node_type: np.ndarray  # [N] node-type index t = gpu_type * len(gpu_counts) + count_index
    gpus: np.ndarray  # [N]
    mem_gb: np.ndarray  # [N] pooled GPU memory
    tdp_w: np.ndarray  # [N] node TDP = GPUs x (GPU TDP + host share)
    node_types: tuple  # ((gpu type, gpus), ...)
    nodes_per_type: np.ndarray  # [D, T]
    load_s: np.ndarray  # [M, T] LA_load of each model on each node type
    embodied_kg: np.ndarray | None = None  # [N] embodied carbon = GPUs x gpu_embodied_kg (host share included)


def build_fleet(cfg, dcs: int | None = None) -> Fleet:
    """1000 nodes per datacenter (default), the six node types interleaved so any prefix mixes all types.

    :param dcs: datacenters (default cfg.dcs; the auto load uses the reference fleet's `reference_dcs`)
    """
    n_dc = cfg.dcs if dcs is None else dcs
    types = tuple((g, c) for g in cfg.gpu_types for c in cfg.gpu_counts)
    n_types = len(types)
    per_dc = np.arange(cfg.nodes_per_dc) % n_types
    node_type = np.tile(per_dc, n_dc)
    gi = node_type // len(cfg.gpu_counts)
    gpus = np.asarray(cfg.gpu_counts)[node_type % len(cfg.gpu_counts)]
    mem = gpus * np.asarray(cfg.gpu_mem_gb)[gi]
    tdp = gpus * (np.asarray(cfg.gpu_tdp_w)[gi] + cfg.host_tdp_w_per_gpu)
    counts = np.tile(np.bincount(per_dc, minlength=n_types), (n_dc, 1))
    t_gpu = np.array([cfg.gpu_types.index(g) for g, _ in types])
    load = physics.weight_load_latency_s(np.asarray(cfg.model_weights_gb)[:, None],
                                         np.asarray(cfg.load_bw_gb_per_s)[t_gpu][None, :])
    return Fleet(np.repeat(np.arange(n_dc), cfg.nodes_per_dc), node_type, gpus, mem.astype(float),
                 tdp.astype(float), types, counts, load, (gpus * np.asarray(cfg.gpu_embodied_kg)[gi]).astype(float))


@dataclass(frozen=True)
class Capacity:
    """Serving capacity of a fleet (all arrays read-only).

    :param batch: [M, T] B*, requests a node runs at once (Eq. 1, max_batch)
    :param service_s: [M, T] mean time a request holds one of the B* batch slots of a saturated node, B* / node_rps,
        s (the M/G/c service time of a slot)
    :param node_rps: [M, T] requests per second of one node at full batch (0 where the model does not fit)
    :param requests_per_epoch: [D, M] requests per epoch of each datacenter if all its hosting nodes served m
    :param epoch_s: epoch length the per-epoch figures refer to, s
    :param service_scv: [M, T] squared coefficient of variation of a request's GPU time at batch B* over the token
        mix (var / mean^2), for the queueing wait of `stationary_wait`
    :param sorted_batch: [M, T] requests a node runs at once when it serves in a pool beside nodes that B* does not
        limit by memory (`sorted_admission`; B* where memory does not bind)
    :param sorted_rps: [M, T] its throughput there, in requests of the pool's mix per second
    """

    batch: np.ndarray
    service_s: np.ndarray
    node_rps: np.ndarray
    requests_per_epoch: np.ndarray
    epoch_s: float
    service_scv: np.ndarray
    sorted_batch: np.ndarray | None = None
    sorted_rps: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.sorted_batch is None:  # no memory-limited node type: every node as alone
            object.__setattr__(self, "sorted_batch", self.batch.copy())
            object.__setattr__(self, "sorted_rps", self.node_rps.copy())
        for a in (self.batch, self.service_s, self.node_rps, self.requests_per_epoch, self.service_scv,
                  self.sorted_batch, self.sorted_rps):
            a.setflags(write=False)

    @property
    def memory_limited(self) -> np.ndarray:
        """[M, T] node types whose B* is set by their memory, not `max_batch`, and that run more at once in a mixed
        pool (`sorted_admission`)."""
        return self.sorted_batch > self.batch

    @property
    def cost_s(self) -> np.ndarray:
        """[M, T] seconds of one node's capacity a mean request takes (inf where the model does not fit)."""
        with np.errstate(divide="ignore"):
            return np.where(self.node_rps > 0, 1.0 / np.maximum(self.node_rps, 1e-300), np.inf)

    def mix_requests_per_epoch(self, model_share) -> np.ndarray:
        """[D] requests per epoch each datacenter serves at full utilization for a model mix (shares sum to 1)."""
        s = np.asarray(model_share, dtype=float)
        per_req = (s[None, :] / np.maximum(self.requests_per_epoch, 1e-300)).sum(axis=1)
        return 1.0 / per_req


def serving_capacity(cfg, fleet, profiles, prompt_tokens, output_tokens) -> Capacity:
    """The fleet's capacity for the token mix of (prompt_tokens, output_tokens) (a sample of the run's requests)."""
    p = np.asarray(prompt_tokens, dtype=float)
    o = np.asarray(output_tokens, dtype=float)
    keep = o > 0
    p, o = (p[keep], o[keep]) if keep.any() else (np.array([1.0]), np.array([1.0]))
    M, T = len(cfg.model_weights_gb), len(fleet.node_types)
    mem_t = np.array([count * cfg.gpu_mem_gb[cfg.gpu_types.index(gpu)] for gpu, count in fleet.node_types],
                     dtype=float)  # pooled memory of each type, whether or not a datacenter has one
    kv = physics.request_kv_gb((p + o).mean(), np.asarray(cfg.model_kv_mb_per_token, dtype=float))  # [M]
    batch = physics.max_batch_in_memory(mem_t[None, :], np.asarray(cfg.model_weights_gb)[:, None],
                                        kv[:, None], cfg.max_batch)  # [M, T]
    batch = np.where(profiles.hosts, batch, 0)
    gpu_s = np.ones((M, T))
    scv = np.zeros((M, T))
    for m in range(M):
        for t in range(T):
            x = profiles.gpu_s_array(m, t, p, o, max(int(batch[m, t]), 1))
            gpu_s[m, t] = x.mean()
            scv[m, t] = x.var() / max(x.mean() ** 2, 1e-300)
    rps = np.where(batch > 0, 1.0 / gpu_s, 0.0)
    service = np.where(batch > 0, batch * gpu_s, 0.0)
    _check_service(cfg, batch, service)
    per_epoch = (fleet.nodes_per_type[:, None, :] * rps[None, :, :]).sum(axis=2) * cfg.epoch_s  # [D, M]
    s_batch, s_rps = sorted_admission(cfg, fleet, profiles, p, o, batch, rps, mem_t)
    return Capacity(batch.astype(int), service, rps, per_epoch, float(cfg.epoch_s), scv, s_batch, s_rps)


def sorted_admission(cfg, fleet, profiles, p: np.ndarray, o: np.ndarray, batch: np.ndarray,
                     rps: np.ndarray, mem_t: np.ndarray) -> tuple:
    """([M, T] batch, [M, T] requests/s) of each node type in a saturated pool that mixes it with nodes whose
    memory does not limit their batch, under the exact engine's admission (Eq. 1 per request, the pool's FIFO
    queue served by the first node with room, `simcore.exact`).

    A node type whose memory holds fewer than `max_batch` mean requests (B* < max_batch) admits the queue's head
    only if its own KV fits: beside nodes that take any request, it serves the small ones. Taken to the limit
    (the pool sorts by KV): its nodes serve the share f of the pool's requests their throughput gives them
    (`fleet.nodes_per_type` x rps over the hosting types) or more, the smallest by KV: as many of them as it
    can hold `max_batch` of (their mean KV within free memory / max_batch: a node at full batch admits what fits
    in what its batch leaves), so they run min(max_batch, free memory / their mean KV) at once. Their throughput in
    requests of the pool's mix is then
    rps x G(B*) / G(B) over those requests (G: a request's GPU time at a batch, `Profiles.gpu_s_array`): the same
    requests' work done at the larger batch, the pool's other nodes serving the rest at their full throughput.
    Where memory does not bind, or no type of a model is free of it, the node's B* and rps. `mem_t` [T]: each
    node type's pooled GPU memory, GB (`serving_capacity`'s)."""
    M, T = batch.shape
    s_batch, s_rps = batch.astype(int).copy(), rps.astype(float).copy()
    count = np.asarray(fleet.nodes_per_type, dtype=float).sum(axis=0)  # [T] nodes of each type, all datacenters
    for m in range(M):
        limited = (batch[m] > 0) & (batch[m] < cfg.max_batch)
        free_ok = (batch[m] >= cfg.max_batch)
        if not limited.any() or not (free_ok & (count > 0)).any():
            continue
        kv = physics.request_kv_gb(p + o, cfg.model_kv_mb_per_token[m])
        share = count * rps[m] * (batch[m] > 0)
        f = float((share * limited).sum() / max(share.sum(), 1e-300))  # the limited types' share of the requests
        if f <= 0.0:
            continue
        order = np.argsort(kv, kind="stable")
        smallest_mean = np.cumsum(kv[order]) / np.arange(1, len(kv) + 1)  # [k] mean KV of the k + 1 smallest
        for t in np.flatnonzero(limited):
            # the requests it takes: as many of the smallest as it can hold max_batch of, at least its share f
            fit = int(np.searchsorted(smallest_mean, (mem_t[t] - cfg.model_weights_gb[m]) / cfg.max_batch,
                                      side="right"))
            small = order[:max(fit, int(round(f * len(kv))), 1)]
            b = int(physics.max_batch_in_memory(mem_t[t], cfg.model_weights_gb[m], kv[small].mean(), cfg.max_batch))
            if b <= batch[m, t]:
                continue
            g_star = profiles.gpu_s_array(m, t, p[small], o[small], int(batch[m, t])).mean()
            g_b = profiles.gpu_s_array(m, t, p[small], o[small], b).mean()
            s_batch[m, t], s_rps[m, t] = b, rps[m, t] * g_star / g_b
    return s_batch, s_rps


def datacenter_utilization(requests, requests_per_epoch) -> np.ndarray:
    """Share of each datacenter's serving capacity a load uses: sum_m R[..., d, m] / capacity[d, m] ([..., D])."""
    cap = np.asarray(requests_per_epoch, dtype=float)
    return (np.asarray(requests, dtype=float) / np.maximum(cap, 1e-300)).sum(axis=-1)


def _check_service(cfg, batch, service) -> None:
    """Refuse (ConfigError) a world where some model is served by no node type within one epoch (parameters out of
    any physical range: a run would simulate no request served)."""
    from simcore.config import MODELS, furthest_from_default
    from simcore.errors import ConfigError

    for m, model in enumerate(MODELS[:len(batch)]):
        fastest = np.where(batch[m] > 0, service[m], np.inf).min()
        if not fastest <= cfg.epoch_s:
            raise ConfigError(f"{model}: a mean request takes {fastest:.3g} s on the fastest node type, more than one "
                              f"{cfg.epoch_s:g}-s epoch; furthest from their defaults: {furthest_from_default(cfg)}")
