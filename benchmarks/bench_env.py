"""Speed of the RL environment (`marlin/GeoLLM-v0`, `rlenv.gym_env.GeoLLMEnv`) on the default world: 8
datacenters of 1000 nodes, the default day's load and cohorts, random actions. Needs the `[rl]` extra.

Prints a few lines and, as its last line, one JSON object: construct_s (building the env: the world, the
workload, the engine), reset_s (starting a run of a seed already loaded), epochs (steps played),
epochs_per_s (steps per second of wall time, reward and observation included) and engine_share (the share of
the step time spent in the engine; the rest is the reward's Simulate calls and the observation's encoding).
Single process, one core.
Usage: python benchmarks/bench_env.py [--dcs 8] [--hours 24] [--episodes 1]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from rlenv.gym_env import GeoLLMEnv  # noqa: E402
from simcore.config import Config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dcs", type=int, default=8)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--episodes", type=int, default=1)
    a = ap.parse_args()
    cfg = Config(dcs=a.dcs, hours=a.hours)
    t0 = time.perf_counter()
    env = GeoLLMEnv(cfg)
    construct_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    reset_s, step_s, engine_s, epochs = 0.0, 0.0, 0.0, 0
    play = env.driver.play

    def timed_play(plan):  # plumbing: the engine's share of each step
        nonlocal engine_s
        t = time.perf_counter()
        out = play(plan)
        engine_s += time.perf_counter() - t
        return out

    env.driver.play = timed_play
    for _ in range(a.episodes):
        t = time.perf_counter()
        env.reset(seed=cfg.seed)
        reset_s += time.perf_counter() - t
        done = False
        t = time.perf_counter()
        while not done:
            done = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[2]
            epochs += 1
        step_s += time.perf_counter() - t
    out = {"dcs": a.dcs, "hours": a.hours, "cohort_size": int(env.driver.stepper.engine.C),
           "construct_s": round(construct_s, 3), "reset_s": round(reset_s / a.episodes, 3), "epochs": epochs,
           "epochs_per_s": round(epochs / step_s, 2), "engine_share": round(engine_s / step_s, 3),
           "python": platform.python_version(), "cpus": os.cpu_count()}
    print(f"env built in {construct_s:.2f} s; {epochs} epochs in {step_s:.2f} s = {epochs / step_s:.1f} epochs/s "
          f"({100 * engine_s / step_s:.0f} % in the engine)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
