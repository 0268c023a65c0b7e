"""Interface checks every scheduler must pass, built-in or plug-in (the idea of PettingZoo's API tests).

    python -m schedulers.checker NAME_OR_pkg.mod:Class     # prints "ok" or the first failure, exit 0 / 2

`check_scheduler` plays a short real run (4 datacenters, 3 epochs, small fleet, few gradient updates) twice
with one seed, and checks that: every plan the scheduler returns is valid (the engine validates each one), the
run accounts for every request, the same seed gives the same plans, and `observe` is called with real results.
"""
from __future__ import annotations

import sys

import numpy as np

from schedulers.base import Scheduler
from schedulers.registry import create
from simcore.config import Config
from simcore.engine import Engine
from simcore.errors import SimError

# a short run with a tiny learning budget: the checks are about the interface, not plan quality
CHECK_CONFIG = dict(dcs=4, hours=0.75, nodes_per_dc=30, load_scale="0.004",
                    marlin_updates_per_epoch=2)


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


def _play(name: str, seed: int) -> tuple[_Spy, object]:
    cfg = Config(seed=seed, scheduler=name, **CHECK_CONFIG)
    spy = _Spy(create(name))
    rec = Engine(cfg, spy.inner).run()
    return spy, rec


def check_scheduler(name: str) -> None:
    """Raise AssertionError (or SimError) describing the first broken rule."""
    a, rec = _play(name, seed=1)
    b, _ = _play(name, seed=1)
    assert len(a.plans) == Config(**CHECK_CONFIG).epochs, f"{name}: plan() not called once per epoch"
    assert a.observed == len(a.plans), f"{name}: observe() not called after every epoch"
    for p, q in zip(a.plans, b.plans):
        assert np.array_equal(p, q), f"{name}: the same seed gave different plans"
    served = ~np.isnan(rec.ttft_s)
    queued = ~served & ~rec.req_failed
    assert served.sum() + rec.req_failed.sum() + queued.sum() == len(rec.ttft_s)
    assert served.sum() > 0, f"{name}: no request was served"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m schedulers.checker NAME_OR_pkg.mod:Class", file=sys.stderr)
        return 2
    try:
        check_scheduler(argv[0])
    except (AssertionError, SimError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
