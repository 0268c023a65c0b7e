"""Trained vs online, per learner (issue 22): each learner plays the same test day twice, untrained (the paper's
online protocol) and after `--train-days` other days of the bundled week (`simcore.training`), and this prints
both on its own objective.

A learner's objective is the run's Eq. 11 weighted sum (equal weights by default; MARLIN-Balanced's and the
baselines' reward) of its four metrics, each over the same run of the uniform plan on the same day (1.0 = as
uniform, lower is better): mean TTFT, carbon, water and cost; the SLA-violation rate (late or unserved over
arrived) is printed beside it, since a lower objective bought with violations is not a better scheduler.

    python benchmarks/bench_training.py [--dcs 4] [--hours 8] [--train-days 3] [--seeds 0] [--learners a,b]

Figures, not a test: the machine's load changes the walls, never the metrics (same seed, same output).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LEARNERS = ("qlearning", "ddqn", "actorcritic", "slit", "perllm", "marlin")
METRICS = ("ttft_mean_s", "carbon_kg", "water_l", "cost_usd")


def _run(argv: list, out: Path) -> dict:
    import run as cli
    with contextlib.redirect_stdout(io.StringIO()):  # the run's own table: this script prints its own
        rc = cli.main([*argv, "--out", str(out), "--no-progress"])
    if rc != 0:
        raise SystemExit(f"run failed ({rc}): {' '.join(argv)}")
    summ = json.loads((out / "summary.json").read_text())
    summ["training"] = json.loads((out / "config.json").read_text()).get("training", {})
    return summ


def objective(summ: dict, ref: dict, weights: tuple) -> float:
    """Eq. 11's weighted sum of the run's metrics over the reference run's (1.0 = as the reference)."""
    return float(sum(w * summ[m] / ref[m] for w, m in zip(weights, METRICS)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dcs", type=int, default=4)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--train-days", type=int, default=3)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--learners", default=",".join(LEARNERS))
    a = ap.parse_args()
    world = ["--dcs", str(a.dcs), "--hours", f"{a.hours:g}"]
    weights = (0.25, 0.25, 0.25, 0.25)
    print(f"D={a.dcs}, {a.hours:g} h, train days {a.train_days}; objective = Eq. 11 equal weights over uniform's "
          "(lower is better)")
    print(f"{'learner':<12} {'seed':>4} {'online obj':>10} {'trained obj':>11} {'change':>8} "
          f"{'viol online':>11} {'viol trained':>12} {'train s':>8} {'test s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in a.seeds.split(","):
            w = [*world, "--seed", seed]
            ref = _run(["--scheduler", "uniform", *w], tmp / f"uniform-{seed}")
            for name in a.learners.split(","):
                online = _run(["--scheduler", name, *w], tmp / f"{name}-{seed}-online")
                t0 = time.perf_counter()
                trained = _run(["--scheduler", name, *w, "--train-days", str(a.train_days)],
                               tmp / f"{name}-{seed}-trained")
                wall = time.perf_counter() - t0
                o, t = objective(online, ref, weights), objective(trained, ref, weights)
                train_s = trained["training"].get("train_wall_s", 0.0)
                print(f"{name:<12} {seed:>4} {o:>10.4f} {t:>11.4f} {100 * (t / o - 1):>+7.2f}% "
                      f"{online['sla_violation_rate']:>11.4%} {trained['sla_violation_rate']:>12.4%} "
                      f"{train_s:>8.1f} {wall - train_s:>7.1f}", flush=True)
                print(f"{'':<12} trained / online: " + ", ".join(
                    f"{m} {trained[m] / online[m]:.3f}" for m in METRICS), flush=True)


if __name__ == "__main__":
    main()
