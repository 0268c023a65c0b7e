"""Three simple reference schedulers that prove the interface (SPEC 8; issue 2).

- `uniform`: every (model, origin) row split equally over the datacenters.
- `nearest`: every request to the datacenter with the lowest network latency (Eq. 2) from its origin.
- `greenest`: every request to the datacenter with the lowest carbon intensity this epoch.
"""
from __future__ import annotations

import numpy as np

from schedulers.common import one_hot_plan
from simcore.interface import Observation, Scheduler


class Uniform(Scheduler):
    """Equal split over all datacenters."""

    def plan(self, obs: Observation) -> np.ndarray:
        m, o, d = self.info.plan_shape
        return np.full((m, o, d), 1.0 / d)


class Nearest(Scheduler):
    """Lowest one-way network latency from the request's origin (ties: lowest index)."""

    def plan(self, obs: Observation) -> np.ndarray:
        m, o, _ = self.info.plan_shape
        choice = np.broadcast_to(np.argmin(self.info.latency_s, axis=1), (m, o))
        return one_hot_plan(choice, self.info.plan_shape)


class Greenest(Scheduler):
    """Lowest current grid carbon intensity CI_{d,e} (ties: lowest index)."""

    def plan(self, obs: Observation) -> np.ndarray:
        m, o, _ = self.info.plan_shape
        choice = np.full((m, o), int(np.argmin(obs.ci_kg_per_kwh)))
        return one_hot_plan(choice, self.info.plan_shape)
