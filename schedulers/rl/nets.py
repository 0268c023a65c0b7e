"""Pieces every learning scheduler shares (so a fix lands once): state features, plan <-> action mapping,
MLP and FiLM layers, and a replay buffer. torch is imported here only, so `--scheduler nearest` never loads it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from simcore.interface import Observation, StaticInfo

S_PER_DAY = 86400.0
BACKLOG_FEATURE_CLIP = 10.0  # a backlog of 10 epochs of capacity is as bad as it gets for the networks' input


def state_features(obs: Observation, info: StaticInfo, backlog: bool = False) -> np.ndarray:
    """A fixed-length float32 vector describing the epoch (the agents' State_e).

    Forecast requests per (model, origin) as shares and total on a log scale; per datacenter: carbon intensity,
    grid water intensity, price, COP (each scaled by its mean over the datacenters), idle-node share; the time
    of day as sine and cosine. With `backlog`, per datacenter also the utilization its waiting requests already
    commit (`obs.queued` in the forecast's model mix over its capacity, `fill.queued_utilization`; clipped at
    10), which a plan must leave room for.
    """
    pred = np.asarray(obs.predicted_requests, dtype=float)
    total = pred.sum()
    shares = (pred / total).ravel() if total > 0 else np.full(pred.size, 1.0 / pred.size)
    rel = [np.asarray(x, dtype=float) / max(float(np.mean(x)), 1e-9) if np.mean(x) > 0 else np.zeros(info.dcs)
           for x in (obs.ci_kg_per_kwh, obs.gi_l_per_kwh, obs.tou_usd_per_kwh, obs.cop)]
    idle = np.asarray(obs.free_nodes, dtype=float) / max(info.nodes_per_dc, 1)
    phase = 2 * np.pi * (obs.time_s % S_PER_DAY) / S_PER_DAY
    parts = [shares, [np.log1p(total) / 10.0], *rel, idle, [np.sin(phase), np.cos(phase)]]
    if backlog:
        from schedulers.fill import queued_utilization
        parts.append(np.minimum(queued_utilization(obs.queued, pred, info.capacity.requests_per_epoch),
                                BACKLOG_FEATURE_CLIP))
    return np.concatenate(parts).astype(np.float32)


def feature_size(info: StaticInfo, backlog: bool = False) -> int:
    m, o, d = info.plan_shape
    return m * o + 1 + 5 * d + 2 + (d if backlog else 0)


def logits_to_plan(logits, shape: tuple):
    """Softmax over datacenters: an action (logits, any leading batch dims) -> plan [..., M, O, D]."""
    if isinstance(logits, torch.Tensor):
        return torch.softmax(logits.reshape(*logits.shape[:-1], *shape), dim=-1)
    z = np.asarray(logits, dtype=float).reshape(*np.shape(logits)[:-1], *shape)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def mlp(sizes: list, out_act: type | None = None) -> nn.Sequential:
    """Linear layers with ReLU between them (and `out_act` after the last, if given)."""
    layers: list = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act())
    return nn.Sequential(*layers)


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018): h -> gamma(c) * h + beta(c) for a condition c.

    Initialized to the identity (gamma = 1, beta = 0), so an untrained FiLM leaves features unchanged.
    """

    def __init__(self, cond_size: int, features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_size, 2 * features)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond).chunk(2, dim=-1)
        return (1.0 + gamma) * h + beta


class ReplayBuffer:
    """A ring buffer of transitions stored as numpy arrays; sampling uses the caller's generator.

    :param capacity: most transitions kept (the oldest are overwritten)
    :param fields: name -> per-item shape, e.g. {"obs": (F,), "act": (A,), "rew": ()}
    """

    def __init__(self, capacity: int, fields: dict) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.data = {k: np.zeros((capacity, *shape), dtype=np.float32) for k, shape in fields.items()}

    def add(self, **batch: np.ndarray) -> None:
        """Append a batch (every field with the same leading length)."""
        n = len(next(iter(batch.values())))
        for start in range(0, n, self.capacity):
            chunk = {k: np.asarray(v)[start:start + self.capacity] for k, v in batch.items()}
            m = len(next(iter(chunk.values())))
            idx = (self.pos + np.arange(m)) % self.capacity
            for k, v in chunk.items():
                self.data[k][idx] = v
            self.pos = int((self.pos + m) % self.capacity)
            self.size = min(self.capacity, self.size + m)

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        idx = rng.integers(0, self.size, size=n)
        return {k: v[idx] for k, v in self.data.items()}

    def keep_newest(self, n: int) -> None:
        """Forget all but the newest `n` transitions (in insertion order; the next add follows them)."""
        n = max(0, min(int(n), self.size))
        order = (self.pos - n + np.arange(n)) % self.capacity  # oldest kept first
        for k, v in self.data.items():
            kept = v[order]
            v[:] = 0
            v[:n] = kept
        self.size, self.pos = n, n % self.capacity

    def __len__(self) -> int:
        return self.size
