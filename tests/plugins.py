"""Plug-in schedulers used by the CLI tests (loaded by dotted path, as a user's would be)."""
import numpy as np

from simcore.interface import Scheduler


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
