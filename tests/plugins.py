"""Plug-in schedulers used by the CLI tests (loaded by dotted path, as a user's would be)."""
from dataclasses import dataclass

import numpy as np

from simcore.errors import ConfigError
from simcore.execution import split_execution
from simcore.interface import Scheduler
from simcore.params import Parameters, param


class RowsDontSum(Scheduler):
    def plan(self, obs):
        return np.full(self.info.plan_shape, 0.5)


class WrongShape(Scheduler):
    def plan(self, obs):
        return np.ones((2, 2))


class AllToFirst(Scheduler):
    def plan(self, obs):
        p = np.zeros(self.info.plan_shape)
        p[:, :, 0] = 1.0
        return p


class OnlineToLast(Scheduler):
    """Routes every request itself (exercises `route`)."""

    def plan(self, obs):
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)

    def route(self, request, live):
        return self.info.dcs - 1


class NotAScheduler:
    pass


class NegativeEntry(Scheduler):
    def plan(self, obs):
        p = np.zeros(self.info.plan_shape)
        p[:, :, 0] = 2.0
        p[:, :, 1] = -1.0
        return p


class NanPlan(Scheduler):
    def plan(self, obs):
        return np.full(self.info.plan_shape, np.nan)


class RouteOutOfRange(Scheduler):
    def plan(self, obs):
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)

    def route(self, request, live):
        return 99


class RaisesInInit(Scheduler):
    def __init__(self, params=None):
        super().__init__(params)
        raise RuntimeError("broken constructor")

    def plan(self, obs):
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)


class RaisesInSetup(Scheduler):
    def setup(self):
        raise KeyError("missing table")

    def plan(self, obs):
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)


class RaisesInPlan(Scheduler):
    def plan(self, obs):
        raise ZeroDivisionError("division by zero in plan")


class RaisesInObserve(Scheduler):
    def plan(self, obs):
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)

    def observe(self, result):
        raise ValueError("cannot learn")


class Raises(Scheduler):
    """A scheduler with a bug (not a user error): the sweep tests check it is reported by run name."""

    def plan(self, obs):
        raise RuntimeError("plug-in bug")


class SplitNearest(Scheduler):
    """Nearest routing with its own split execution, the reverse of Splitwise's (prefill on A100 nodes, decode on
    H100 nodes): a second split scheduler, which the engine must play unchanged."""

    def plan(self, obs):
        p = np.zeros(self.info.plan_shape)
        p[:, np.arange(self.info.dcs), np.argmin(self.info.latency_s, axis=1)] = 1.0
        return p

    def execution(self):
        return split_execution("A100-80GB", "H100-80GB", 0.5, 10.0)


@dataclass(frozen=True)
class ThresholdParams(Parameters):
    threshold_s: float = param(0.5, "latency below which a datacenter counts as near, s", lo=0, lo_open=True)
    spread: tuple = param((1.0, 1.0), "weights of the near and the far datacenters", lo=0)

    def validate(self) -> None:
        if sum(self.spread) <= 0:
            raise ConfigError(f"spread={','.join(map(str, self.spread))}: must not be all zero")


class WithParams(Scheduler):
    """A plug-in with parameters of its own: near datacenters (one-way latency below `threshold_s`) get weight
    spread[0], the others spread[1]."""

    Params = ThresholdParams

    def plan(self, obs):
        near = np.asarray(self.info.latency_s) < self.params.threshold_s
        w = np.where(near, self.params.spread[0], self.params.spread[1]) + 1e-12
        return np.broadcast_to(w / w.sum(axis=1, keepdims=True), self.info.plan_shape)


# --- issue 20: plug-ins that end the process, hang, or return the wrong kind of value -------------------------
class _Even(Scheduler):
    def plan(self, obs):
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)


class ExitsInPlan(Scheduler):
    def plan(self, obs):
        import sys
        sys.exit(3)


class HardExit(Scheduler):
    """Ends its own process without any clean-up: in a sweep, only its own run may fail."""

    def plan(self, obs):
        import os
        os._exit(7)


class Stuck(Scheduler):
    def plan(self, obs):
        import time
        while True:
            try:
                time.sleep(60)
            except Exception:  # a plug-in that swallows exceptions must still be stopped
                pass


class Slow(_Even):
    """Takes a second per epoch: a sweep of it is still running when the tests send it a signal."""

    def plan(self, obs):
        import time
        time.sleep(1.0)
        return super().plan(obs)


class ComplexPlan(Scheduler):
    def plan(self, obs):
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs + 1j)


class TableOutside(_Even):
    def extra_results(self):
        import pandas as pd
        return {"../victim": pd.DataFrame({"a": [1]})}


class TableEpochs(_Even):
    def extra_results(self):
        import pandas as pd
        return {"epochs": pd.DataFrame({"a": [1]})}


class ExtraNotADict(_Even):
    def extra_results(self):
        return [1, 2]


class ExecutionText(_Even):
    def execution(self):
        return "whole"


class RouteTrue(_Even):
    def route(self, request, live):
        return True
