"""Epoch-evaluator throughput: plans scored per second, batch 256, D = 4, 8, 12, one thread.

Two states: a light one (a few hundred requests per origin: every pool at its minimum warm set) and, for D = 12,
a loaded one as in the default world (the forecast at 80 % of the fleet's serving capacity, random plans that
overload some datacenters, the default day's within-epoch rate profile), where every closed form engages.
The loaded state is also scored as in an exact run (`exact=True`, the workload's per-second bursts:
`queueing.BurstTable`, built once at the first evaluation, its build time printed apart).
Prints, as its last line, one JSON object with plans_per_s for D = 12 (light), plans_per_s_d4 / _d8 / _d12,
plans_per_s_d12_loaded, plans_per_s_d12_exact and burst_table_build_s.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 256
REPEATS = 40
BUILD_S: dict = {}  # (D, loaded, exact) -> seconds of the first (warm-up) evaluation


def bench(d: int, loaded: bool = False, exact: bool = False) -> float:
    from simcore.config import Config
    from simcore.capacity import build_fleet, serving_capacity
    from simcore.evaluator import EpochEvaluator, EpochState
    from simcore.profiles import load_profiles
    from simcore.queueing import bin_rate_profile
    from simcore.rng import stream
    from topology.graph import latency_matrix_s
    from topology.sites import site_signals
    from traces.loader import load_workload, token_pairs

    cfg = Config(dcs=d)
    s = site_signals(cfg)
    prompt, output = token_pairs()
    fleet, prof = build_fleet(cfg), load_profiles(cfg)
    rng = np.random.default_rng(0)
    profile = arrivals = None
    cap = serving_capacity(cfg, fleet, prof, prompt, output)
    if loaded:
        wl = load_workload(cfg, stream(cfg.seed, "trace"))
        profile = bin_rate_profile(wl.t_s, cfg.epoch_s, cfg.cohort_bin_s, cfg.horizon_s)
        arrivals = wl.t_s if exact else None
        share = np.array([1.0 - cfg.gpt4_share, cfg.gpt4_share])
        total = 0.8 * cap.mix_requests_per_epoch(share).sum()
        pred = np.repeat((total * share / d)[:, None], d, axis=1)
    else:
        pred = rng.uniform(100, 2000, size=(2, d))
    ev = EpochEvaluator(cfg, latency_matrix_s(cfg), fleet, prof, prompt, output, cap,
                        rate_profile=None if exact else profile, arrival_s=arrivals, exact=exact)
    st = EpochState(pred, pred, s.ci_kg_per_kwh[0], s.gi_l_per_kwh, s.tou_usd_per_kwh[0], s.cop[0],
                    np.zeros((d, 2)))
    plans = rng.dirichlet(np.ones(d), size=(BATCH, 2, d))
    t = time.perf_counter()
    ev.evaluate(st, plans)  # warm-up (an exact run's burst table is built here)
    BUILD_S[(d, loaded, exact)] = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(REPEATS):
        ev.evaluate(st, plans)
    return BATCH * REPEATS / (time.perf_counter() - t)


def main() -> None:
    res = {f"plans_per_s_d{d}": round(bench(d), 1) for d in (4, 8, 12)}
    res["plans_per_s_d12_loaded"] = round(bench(12, loaded=True), 1)
    res["plans_per_s_d12_exact"] = round(bench(12, loaded=True, exact=True), 1)
    res["burst_table_build_s"] = round(BUILD_S[(12, True, True)] - BUILD_S[(12, True, False)], 3)
    for k, v in res.items():
        print(f"{k}: {v:,.3f} s" if k.endswith("_s") else f"{k}: {v:,.0f} plans/s (batch {BATCH})")
    print(json.dumps({"plans_per_s": res["plans_per_s_d12"], "batch": BATCH, **res}))


if __name__ == "__main__":
    main()
