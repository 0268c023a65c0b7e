"""Event-engine throughput on the default scenario: 8 datacenters, 24 h, `nearest`, bundled trace.

Prints a few lines and, as its last line, one JSON object with requests_simulated, requests_real (each simulated
request is a cohort of `cohort_size` real ones), wall_s, requests_per_s (simulated), real_requests_per_s,
events_per_s (SimPy events handled: datacenter arrivals, completions, epoch ticks). Single process, one core.
Target (issue 8): >= 50,000 simulated requests/s; exact play (issue 19: `--exact`, i.e. `--cohort-size 1
--nodes-per-dc 30 --hours 0.5`, 8 datacenters of 30 nodes, ~1.1e6 requests) >= 25,000 requests/s.
Usage: python benchmarks/bench_engine.py [--dcs 8] [--hours 24] [--scheduler nearest] [--nodes-per-dc 1000]
       [--cohort-size auto] [--exact]
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

from schedulers.registry import create  # noqa: E402
from simcore.config import Config  # noqa: E402
from simcore.engine import Engine  # noqa: E402
from simcore.rng import stream  # noqa: E402
from traces.loader import load_workload  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dcs", type=int, default=8)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--scheduler", default="nearest")
    ap.add_argument("--nodes-per-dc", type=int, default=Config().nodes_per_dc)
    ap.add_argument("--cohort-size", default="auto", help="1 = exact play")
    ap.add_argument("--exact", action="store_true", help="exact play's figure: --cohort-size 1 --nodes-per-dc 30 "
                    "--hours 0.5 (the other flags as given)")
    a = ap.parse_args()
    if a.exact:
        a.cohort_size, a.nodes_per_dc, a.hours = "1", 30, 0.5
    cfg = Config(dcs=a.dcs, hours=a.hours, scheduler=a.scheduler, nodes_per_dc=a.nodes_per_dc,
                 cohort_size=a.cohort_size)
    t0 = time.perf_counter()
    wl = load_workload(cfg, stream(cfg.seed, "trace"))
    t_load = time.perf_counter() - t0
    eng = Engine(cfg, create(cfg.scheduler), workload=wl)
    t1 = time.perf_counter()
    rec = eng.run()
    wall = time.perf_counter() - t1
    n = len(wl)
    real = n * int(wl.cohort)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, "
          f"{os.cpu_count()} cores (engine is single-threaded)")
    print(f"trace load {t_load:.2f} s; engine {wall:.2f} s for {n} requests, {rec.events} events")
    print(json.dumps({"scenario": f"{a.scheduler} D={a.dcs} {a.hours:g} h N={a.nodes_per_dc}", "requests_simulated": n,
                      "cohort_size": int(wl.cohort), "requests_real": real, "events": rec.events,
                      "wall_s": round(wall, 3), "requests_per_s": round(n / wall, 1),
                      "real_requests_per_s": round(real / wall, 1), "events_per_s": round(rec.events / wall, 1)}))


if __name__ == "__main__":
    main()
