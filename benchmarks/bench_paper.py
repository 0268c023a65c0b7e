"""The whole paper's wall time (issue 22): `python run.py paper` + `report`, timed study by study.

    python benchmarks/bench_paper.py [--out results/bench-paper] [any `run.py paper` flag: --seeds 5 --hours 24
                                     --protocol trained --workers 2 ...]

Runs the four sweeps exactly as `paper` does (the same runs, the same links between identical runs, the same
checkpoint cache under the trained protocol), then the report, and prints each one's wall time, the total and the
machine's load average (a shared machine's timings are not an idle machine's), then one JSON line.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str]) -> int:
    from reports import experiments
    from reports.report import write_report

    if "--out" not in argv:
        argv = [*argv, "--out", "results/bench-paper"]
    a = experiments._parser("paper").parse_args(argv)
    sweeps = experiments.sweeps_from_args("paper", a)
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
