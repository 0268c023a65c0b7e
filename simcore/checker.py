"""Interface checks every scheduler must pass, built-in or plug-in (the idea of PettingZoo's API tests: they ship
with the interface; `python -m schedulers.checker NAME` runs them on a scheduler by name).

`check_scheduler` plays a short real run (4 datacenters, 3 epochs, small fleet, few gradient updates) twice
with one seed, and checks that: every plan the scheduler returns is valid (the engine validates each one), the
run accounts for every request (each one that did not fail routed once and counted in its epoch's rows; some
served, never more than were routed), the same seed gives the same plans, and `observe` is called with real
results.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from simcore.config import Config
from simcore.engine import Engine
from simcore.interface import Scheduler
from simcore.results import epoch_table, summary

# a short run: the checks are about the interface, not plan quality
CHECK_CONFIG = dict(dcs=4, hours=0.75, nodes_per_dc=30, load_scale="0.004")


class _Spy:
    """Wraps a scheduler to record its plans and how often observe() was called."""

    def __init__(self, inner: Scheduler) -> None:
        self.inner, self.plans, self.observed = inner, [], 0
        original_decide, original_observe = inner.decide, inner.observe

        def decide(obs):
            plan = original_decide(obs)
            self.plans.append(plan.copy())
            return plan

        def observe(result):
            self.observed += 1
            return original_observe(result)

        inner.decide, inner.observe = decide, observe


def _play(make: Callable[[], Scheduler], seed: int) -> tuple[_Spy, object]:
    cfg = Config(seed=seed, **CHECK_CONFIG)
    spy = _Spy(make())
    rec = Engine(cfg, spy.inner).run()
    return spy, rec


def check_scheduler(make: Callable[[], Scheduler], name: str) -> None:
    """Raise AssertionError (or SimError) describing the first broken rule.

    :param make: builds a fresh scheduler (with its parameters), called once per run
    :param name: the scheduler's name in messages
    """
    a, rec = _play(make, seed=1)
    b, _ = _play(make, seed=1)
    assert len(a.plans) == Config(**CHECK_CONFIG).epochs, f"{name}: plan() not called once per epoch"
    assert a.observed == len(a.plans), f"{name}: observe() not called after every epoch"
    for p, q in zip(a.plans, b.plans):
        assert np.array_equal(p, q), f"{name}: the same seed gave different plans"
    check_accounting(name, rec)


def check_accounting(name: str, rec) -> None:
    """Every request that did not fail was routed to one datacenter, once, and counted there; no more real
    requests were served than were routed; failed requests were never served."""
    routed = ~rec.req_failed
    dc = rec.req_dc[routed]
    assert np.all((dc >= 0) & (dc < rec.cfg.dcs)), f"{name}: a request was never routed to a datacenter"
    epochs = epoch_table(rec)  # the engine counts each epoch's routed requests per datacenter as it closes it
    n_routed = int(routed.sum()) * rec.cohort  # real requests
    assert int(epochs["requests"].sum()) == n_routed, \
        f"{name}: epochs.csv counts {int(epochs['requests'].sum())} routed requests, {n_routed} did not fail"
    served = summary(rec, epochs)["requests_served"]
    assert 0 < served <= n_routed, f"{name}: served {served} real requests of {n_routed} routed"
    assert not np.any(rec.served[rec.req_failed] > 0), f"{name}: a failed request was served"

