"""The environments' observation: an epoch's `Observation` as a `gymnasium.spaces.Dict` of float32 boxes.

Every entry is scaled to order one, so a learner sees comparable magnitudes whatever the world's size, and the
layout suits `gymnasium.wrappers.FlattenObservation` (a Dict of Boxes flattens to one vector, keys in sorted
order). O = D origins, M models:

| key | shape | meaning |
|---|---|---|
| `forecast` | [M, O] | the epoch's forecast real requests over the fleet's serving capacity per epoch (model's) |
| `backlog` | [D, M] | real requests waiting at each datacenter over its serving capacity per epoch for that model |
| `grid` | [4, D] | carbon (kg), water (L), cost (USD) one kWh of IT energy causes this epoch (Eq. 6-10); the COP |
| `capacity` | [1 + M, D] | share of each datacenter's nodes idle, then the share holding each model's weights |
| `latency` | [O, D] | one-way network latency (Eq. 2) over the SLA |
| `last` | [3, D] | the previous epoch's SLA-violation share, utilization and mean TTFT over the SLA (0 at epoch 0) |
| `time` | [2] | sin and cos of the time of day |
"""
from __future__ import annotations

import numpy as np

from simcore.interface import Observation, StaticInfo

SECONDS_PER_DAY = 86400.0


def observation_space(info: StaticInfo):
    """The Dict space of `encode`'s observations for the world `info` describes."""
    from gymnasium import spaces

    M, D = len(info.models), info.dcs
    box = lambda shape, lo=0.0, hi=np.inf: spaces.Box(lo, hi, shape=shape, dtype=np.float32)  # noqa: E731
    return spaces.Dict({
        "forecast": box((M, D)), "backlog": box((D, M)), "grid": box((4, D)), "capacity": box((1 + M, D), hi=1.0),
        "latency": box((D, D)), "last": box((3, D)), "time": box((2,), lo=-1.0, hi=1.0)})


def _share(x, y) -> np.ndarray:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return np.where(y > 0, x / np.where(y > 0, y, 1.0), 0.0)


def encode(obs: Observation, info: StaticInfo) -> dict:
    """The observation of `obs` as `observation_space(info)` lays it out (float32)."""
    M, D = len(info.models), info.dcs
    cap = np.asarray(info.capacity.requests_per_epoch, dtype=float)  # [D, M]
    nodes = float(info.nodes_per_dc)
    queued = obs.queued_by_model if obs.queued_by_model is not None else np.zeros((D, M))
    resident = obs.resident_nodes if obs.resident_nodes is not None else np.zeros((D, M))
    last = np.zeros((3, D))
    if obs.last is not None:
        req = np.asarray(obs.last.requests, dtype=float)
        last[0] = _share(obs.last.sla_violations, req)
        last[1] = obs.last.utilization if obs.last.utilization is not None else 0.0
        last[2] = _share(obs.last.ttft_sum_s, obs.last.ttft_count) / info.sla_ttft_s
    angle = 2.0 * np.pi * (obs.time_s % SECONDS_PER_DAY) / SECONDS_PER_DAY
    out = {
        "forecast": _share(obs.predicted_requests, cap.sum(axis=0)[:, None]),
        "backlog": _share(queued, cap),
        "grid": np.stack([obs.carbon_kg_per_it_kwh, obs.water_l_per_it_kwh, obs.cost_usd_per_it_kwh, obs.cop]),
        "capacity": np.vstack([np.asarray(obs.free_nodes, dtype=float)[None] / nodes,
                               np.asarray(resident, dtype=float).T / nodes]),
        "latency": np.asarray(info.latency_s, dtype=float) / info.sla_ttft_s,
        "last": np.maximum(last, 0.0),
        "time": np.array([np.sin(angle), np.cos(angle)]),
    }
    return {k: np.clip(v, 0.0 if k != "time" else -1.0, 1.0 if k == "capacity" else None).astype(np.float32)
            for k, v in out.items()}
