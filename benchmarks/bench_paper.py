"""The whole paper's wall time (issue 22): `python run.py paper` + `report`, timed study by study.

    python benchmarks/bench_paper.py [--out results/bench-paper] [any `run.py paper` flag: --seeds 5 --hours 24
                                     --protocol trained --workers 2 ...]

Runs the four sweeps exactly as `paper` does (the same runs, the same links between identical runs, the same
checkpoint cache under the trained protocol), then the report, and prints each one's wall time, the total and the
machine's load average (a shared machine's timings are not an idle machine's), then one JSON line.

    python benchmarks/bench_paper.py --floor [paper flags]

runs nothing of the paper: it counts the epochs in which MARLIN's agents learn over the four studies (every MARLIN
run's test day unless the protocol is trained-frozen, plus each distinct trained state's training days under a
trained protocol; runs linked to an identical run are counted once), times MARLIN's SAC learning per epoch at each
D on this machine (`bench_marlin.bench`, its declared budget: 4 agents x marlin_updates_per_epoch), and prints the
product divided by --workers: a lower bound on the paper's wall time here, whatever else is made faster.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


FLOOR_EPOCHS = 6  # MARLIN epochs timed per D for --floor (after one warm-up epoch)


def learning_epochs(sweeps: list, protocol: str, train_days: int) -> dict:
    """{D: epochs in which MARLIN's agents learn} over the sweeps' runs: each MARLIN-family run's test day (not
    under trained-frozen) and, under a trained protocol, each distinct trained state's training days (a state is
    one scheduler, weights, ablations, seed and world; `simcore.training.checkpoint_key`)."""
    from reports.experiments import TRAINED, family
    from simcore.config import Config

    epochs: dict = {}
    states = set()
    for sw in sweeps:
        for r in sw.runs:
            if r.same_as or family(r.scheduler) != "marlin":
                continue
            n = Config(dcs=r.dcs, hours=r.hours).epochs
            if protocol != "trained-frozen":
                epochs[r.dcs] = epochs.get(r.dcs, 0) + n
            state = (r.scheduler, r.weights, r.ablate, r.seed, r.dcs, r.reference_dcs)
            if protocol in TRAINED and state not in states:
                states.add(state)
                epochs[r.dcs] = epochs.get(r.dcs, 0) + train_days * n
    return epochs


def floor(sweeps: list, a) -> int:
    """Print the paper's MARLIN-learning lower bound on this machine (module docstring) and one JSON line."""
    from bench_marlin import bench

    epochs = learning_epochs(sweeps, a.protocol, a.train_days)
    total = 0.0
    per_d = {}
    for d in sorted(epochs):
        s = bench(d, FLOOR_EPOCHS + 1, "marlin")["learn_s_per_epoch"]
        per_d[d] = {"learning_epochs": epochs[d], "learn_s_per_epoch": round(s, 3)}
        total += epochs[d] * s
        print(f"D={d:<3} {epochs[d]:7d} learning epochs x {s:.3f} s = {epochs[d] * s / 3600:6.2f} h", flush=True)
    wall = total / a.workers
    days = f", {a.train_days} training days" if a.protocol != "online" else ""
    print(f"floor    {wall / 60:8.1f} min wall with --workers {a.workers} (MARLIN's SAC learning alone; seeds "
          f"{a.seeds}, {a.hours:g} h, {a.protocol} protocol{days}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f})")
    print(json.dumps({"floor_s": round(wall, 1), "per_dcs": per_d, "seeds": a.seeds, "hours": a.hours,
                      "protocol": a.protocol, "train_days": a.train_days, "workers": a.workers}))
    return 0


def main(argv: list[str]) -> int:
    from reports import experiments
    from reports.report import write_report

    only_floor = "--floor" in argv
    argv = [x for x in argv if x != "--floor"]
    if "--out" not in argv:
        argv = [*argv, "--out", "results/bench-paper"]
    a = experiments._parser("paper").parse_args(argv)
    sweeps = experiments.sweeps_from_args("paper", a)
    if only_floor:
        return floor(sweeps, a)
    for sw in sweeps:  # a folder holding a different sweep is refused before anything runs
        experiments._merge_manifest(sw)
    load0 = os.getloadavg()
    times, total0 = {}, time.perf_counter()
    for sw in sweeps:
        res = experiments.execute(sw, a.workers, a.executor, progress=not a.no_progress)
        times[sw.kind] = res.wall_s
        print(f"{sw.kind:<8} {res.wall_s:8.1f} s  ({len(res.ran)} run, {len(res.skipped)} already done, "
              f"{len(res.failures)} failed)", flush=True)
    t0 = time.perf_counter()
    write_report(a.out)
    times["report"] = time.perf_counter() - t0
    total = time.perf_counter() - total0
    load1 = os.getloadavg()
    print(f"{'report':<8} {times['report']:8.1f} s")
    print(f"{'total':<8} {total:8.1f} s = {total / 60:.1f} min  (seeds {a.seeds}, {a.hours:g} h, "
          f"{a.protocol} protocol, --workers {a.workers}; load average {load0[0]:.1f} at the start, "
          f"{load1[0]:.1f} at the end, {os.cpu_count()} cores)")
    print(json.dumps({"studies_s": {k: round(v, 1) for k, v in times.items()}, "total_s": round(total, 1),
                      "seeds": a.seeds, "hours": a.hours, "protocol": a.protocol, "workers": a.workers,
                      "load_start": load0[0], "load_end": load1[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
