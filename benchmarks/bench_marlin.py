"""MARLIN learning speed: seconds per epoch of MARLIN (phase 1 with its SAC updates, phase 2, the consensus's
Simulate) at D = 8 and D = 12 with the default parameters, the part of it spent in SAC learning (drawing the
batches and running the updates), and the SAC updates per second of that part (one update = one agent's gradient
step on one batch; J x marlin_updates_per_epoch = 128 per epoch).

The scheduler is driven directly, epoch by epoch, on the run's epochs (`simcore.epochs`: the bundled trace's
per-epoch real arrivals as a perfect forecast, the run's site signals), so the figures exclude the request-level
engine. One torch thread (marlin_torch_threads), one process. Prints a few lines and, as its last line, one JSON object with
s_per_epoch_d8 / _d12, learn_s_per_epoch_d8 / _d12 and updates_per_s_d8 / _d12.
Usage: python benchmarks/bench_marlin.py [--epochs 16] [--dcs 8,12] [--scheduler marlin]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _observations(eng, epochs: int) -> list:
    """The first `epochs` epochs' observations (`simcore.epochs`): forecast = the epoch's real arrivals, idle fleet."""
    return [dataclasses.replace(eng.epochs.observation(ep), predicted_requests=eng.epochs.counts[ep.index] * 1.0)
            for ep in itertools.islice(eng.epochs, epochs)]


class _Timer:
    """Wraps a function and adds up the seconds spent in it."""

    def __init__(self, owner, name: str) -> None:
        self.owner, self.name, self.fn, self.s = owner, name, getattr(owner, name), 0.0
        setattr(owner, name, self)

    def __call__(self, *a, **k):
        t = time.perf_counter()
        try:
            return self.fn(*a, **k)
        finally:
            self.s += time.perf_counter() - t

    def __get__(self, obj, cls=None):  # as a method
        return self if obj is None else (lambda *a, **k: self(obj, *a, **k))

    def restore(self) -> None:
        setattr(self.owner, self.name, self.fn)


def bench(d: int, epochs: int, scheduler: str) -> dict:
    from schedulers.registry import create
    from simcore.config import Config
    from simcore.engine import Engine
    from simcore.rng import stream

    cfg = Config(dcs=d, hours=max(1.0, epochs * 900 / 3600), scheduler=scheduler)
    sched = create(scheduler)
    eng = Engine(cfg, sched)  # never run: it only builds the StaticInfo
    sched.reset(eng.info, stream(cfg.seed, "scheduler"))
    obs = _observations(eng, epochs)
    # SAC learning: drawing the batches and noise (ObjectiveAgent.draw_batches) and the updates of all agents at
    # once (AgentStack.learn); in trees before the batched learner, ObjectiveAgent.learn (one agent's updates)
    import schedulers.marlin.agents as agents_mod
    if hasattr(agents_mod, "AgentStack"):
        timers = [_Timer(agents_mod.ObjectiveAgent, "draw_batches"), _Timer(agents_mod.AgentStack, "learn")]
    else:
        timers = [_Timer(agents_mod.ObjectiveAgent, "learn")]
    try:
        sched.plan(obs[0])  # warm-up (first-call allocations), not counted
        for tm in timers:
            tm.s = 0.0
        t = time.perf_counter()
        for ob in obs[1:]:
            sched.plan(ob)
        wall = time.perf_counter() - t
    finally:
        for tm in timers:
            tm.restore()
    learn = sum(tm.s for tm in timers)
    n = len(obs) - 1
    updates = n * len(sched.agents) * sched.params.marlin_updates_per_epoch
    return {"s_per_epoch": wall / n, "learn_s_per_epoch": learn / n, "updates_per_s": updates / learn,
            "plan_shape": list(sched.info.plan_shape)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=16, help="epochs timed per D (after one warm-up epoch)")
    ap.add_argument("--dcs", default="8,12")
    ap.add_argument("--scheduler", default="marlin")
    a = ap.parse_args()
    import torch
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, "
          f"torch {torch.__version__}, {os.cpu_count()} cores (MARLIN learns on one torch thread)")
    res: dict = {"scheduler": a.scheduler, "epochs": a.epochs}
    for d in (int(x) for x in a.dcs.split(",")):
        r = bench(d, a.epochs + 1, a.scheduler)
        print(f"D={d} plan {tuple(r['plan_shape'])}: {r['s_per_epoch']:.3f} s/epoch, of which SAC learning "
              f"{r['learn_s_per_epoch']:.3f} s ({r['updates_per_s']:.0f} updates/s)")
        for k in ("s_per_epoch", "learn_s_per_epoch", "updates_per_s"):
            res[f"{k}_d{d}"] = round(r[k], 4 if "per_epoch" in k else 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
