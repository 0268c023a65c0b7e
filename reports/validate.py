"""The fidelity ladder (docs/model.md 'Validation'): each rung held to the one below it, over a grid of worlds.

- rung 0, node serving vs an independent reference: one serving replica (Llama-2-7B on one A100 / H100,
  Llama-2-70B on 4 x A100 / 8 x H100) played by the exact engine against vidur's figures on the same Azure 2023
  token pairs (`simcore/data/vidur/`): capacity (`node_rps` and the engine's saturated throughput) within 20 %,
  TTFT mean within 30 % and p99 within 50 % at 50 % and 80 % of vidur's capacity;
- rung 2, cohorts vs exact play: the same world played request by request and in cohorts (energy, TTFT mean and
  p99, SLA violations, utilization);
- rung 3, the epoch evaluator vs the engine: each epoch's observation, plan and true counts fed to the evaluator
  (energy, cost, water, carbon; mean TTFT).

`python run.py validate [--quick] [--out validation.csv] [--overwrite] [--cells NAME] [--workers N]` runs the grid
(`--workers` pieces at a time, each in its own process; the rows are a serial run's), prints every cell's errors and
the worst per rung, and writes `validation.csv` (one row per cell and quantity). It is a library call
(`run_ladder`); the command line only parses and prints. It lives in reports/ because it plays schedulers
(simcore knows none).
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simcore.config import MODELS, Config
from simcore.errors import SimError

VIDUR_TABLE = Path(__file__).resolve().parents[1] / "simcore" / "data" / "vidur" / "vidur_llama2_azure2023.csv"

# --- tolerances (the issue's, docs/model.md 'Validation') -------------------------------------------------------
RUNG0_CAPACITY_TOL = 0.20  # relative, node_rps and saturated throughput vs vidur's capacity
RUNG0_TTFT_MEAN_TOL = 0.30  # relative, at 50 % and 80 % of vidur's capacity
RUNG0_TTFT_P99_TOL = 0.50
RUNG0_LOADS = (0.5, 0.8)  # shares of vidur's capacity the TTFT is compared at
RUNG0_SATURATION_LOAD = 1.5  # offered load (x vidur's capacity) at which the saturated throughput is measured
RUNG0_WINDOW = (0.2, 0.8)  # part of the horizon whose first tokens count for the saturated throughput
# a replica the project's profile keeps against vidur (docs/model.md 'Validation': Splitwise's measured 70B)
MEASURED_EXCEPTIONS = ("Llama-2-70B",)


@dataclass(frozen=True)
class Replica:
    """One serving replica of the reference: a model on `gpus` GPUs of one type, tensor parallel."""

    model: str
    gpu: str
    gpus: int

    @property
    def label(self) -> str:
        return f"{self.model.split('-')[-1]} {self.gpus}x{self.gpu.split('-')[0]}"


REPLICAS = (Replica("Llama-2-7B", "A100-80GB", 1), Replica("Llama-2-7B", "H100-80GB", 1),
            Replica("Llama-2-70B", "A100-80GB", 4), Replica("Llama-2-70B", "H100-80GB", 8))


def read_vidur(path: str | Path = VIDUR_TABLE) -> dict:
    """{(model, gpu, tp): {"capacity": rps, "rows": [(offered_rps, ttft_mean_s, ttft_p99_s), ...]}}."""
    out: dict = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["model"], r["gpu"], int(r["tensor_parallel"]))
            e = out.setdefault(key, {"capacity": math.nan, "rows": []})
            if r["offered_rps"] == "saturated":
                e["capacity"] = float(r["throughput_rps"])
            else:
                e["rows"].append((float(r["offered_rps"]), float(r["ttft_mean_s"]), float(r["ttft_p99_s"])))
    return out


def reference_at(entry: dict, share: float) -> tuple:
    """vidur's (offered rps, TTFT mean, TTFT p99) at the row whose offered rate is nearest `share` of capacity."""
    cap = entry["capacity"]
    return min(entry["rows"], key=lambda r: (abs(r[0] / cap - share), r[0]))


def replica_world(rep: Replica, **changes) -> Config:
    """A world whose datacenter 0 holds the replica as its node for `rep.model` and one node for the other model
    (a pool per model), every request of `rep.model` coming from region 0 and served there (`nearest`).
    Datacenters 1-3 stand idle (the world's minimum is 4)."""
    other = 8 if rep.model == MODELS[0] else 1  # the other model's node: 70B needs 8 GPUs, 7B fits one
    world = Config()
    g = world.gpu_types.index(rep.gpu)
    per_gpu = {f.name: (getattr(world, f.name)[g],) for f in dataclasses.fields(Config)  # one entry per GPU type
               if f.metadata["allowed"].length == "gpu_types"}
    return Config(dcs=4, reference_dcs=4, nodes_per_dc=2, gpu_types=(rep.gpu,), gpu_counts=(rep.gpus, other),
                  scheduler="nearest", cohort_size="1", **{**per_gpu, **changes})


def replica_workload(cfg: Config, model: int, rps: float, seed: int):
    """Poisson arrivals at `rps` over the horizon from region 0, token pairs drawn from the Azure 2023 pairs with
    prompts clipped to 4096 - output, as vidur's replay was (`simcore/data/vidur/README.md`)."""
    from simcore.rng import stream
    from traces.loader import Workload, token_pairs

    rng = stream(seed, "validation")
    p_all, o_all = token_pairs()
    n = int(rng.poisson(rps * cfg.horizon_s))
    t = np.sort(rng.uniform(0.0, cfg.horizon_s, n))
    k = rng.integers(0, len(p_all), n)
    o = o_all[k].astype(np.int32)
    p = np.minimum(p_all[k], cfg.model_context_tokens[model] - o).astype(np.int32)
    return Workload(name="validation", t_s=t, model=np.full(n, model, dtype=np.int8), prompt_tokens=p,
                    output_tokens=o, origin=np.zeros(n, dtype=np.int16), scale=1.0,
                    source="Azure 2023 token pairs, Poisson arrivals (rung 0)")


def replica_node_rps(rep: Replica, cfg: Config) -> float:
    """`Capacity.node_rps` of the replica for the clipped token pairs (what the load rule and warm sets use)."""
    from simcore.capacity import build_fleet, serving_capacity
    from simcore.profiles import load_profiles
    from traces.loader import token_pairs

    p, o = token_pairs()
    m = MODELS.index(rep.model)
    p = np.minimum(p, cfg.model_context_tokens[m] - o)
    cap = serving_capacity(cfg, build_fleet(cfg), load_profiles(cfg), p, o)
    return float(cap.node_rps[m, cfg.gpu_counts.index(rep.gpus)])


def play_replica(rep: Replica, rps: float, hours: float, seed: int = 0) -> dict:
    """The exact engine on the replica at `rps`: TTFT mean / p99 of the served requests and the rate of first
    tokens in the middle of the horizon (the replica's throughput when it is saturated)."""
    from schedulers.registry import create
    from simcore.engine import Engine

    cfg = replica_world(rep, hours=hours)
    m = MODELS.index(rep.model)
    wl = replica_workload(cfg, m, rps, seed)
    rec = Engine(cfg, create("nearest"), workload=wl).run()
    ttft = rec.ttft_s
    ok = ~np.isnan(ttft)
    first = wl.t_s[ok] + ttft[ok]
    lo, hi = (x * cfg.horizon_s for x in RUNG0_WINDOW)
    return {"ttft_mean_s": float(ttft[ok].mean()), "ttft_p99_s": float(np.percentile(ttft[ok], 99)),
            "throughput_rps": float(((first >= lo) & (first < hi)).sum() / (hi - lo)), "requests": int(len(wl))}


def rung0(quick: bool = False) -> list[dict]:
    """Rung 0 cells: per replica, capacity (node_rps, saturated throughput) and TTFT at 50 % / 80 % load."""
    ref = read_vidur()
    hours = 0.25 if quick else 0.5
    rows = []
    for rep in REPLICAS:
        e = ref[(rep.model, rep.gpu, rep.gpus)]
        cap = e["capacity"]
        exception = rep.model in MEASURED_EXCEPTIONS
        base = {"rung": 0, "cell": rep.label, "exception": exception}
        rows.append({**base, "quantity": "node_rps", "reference": cap,
                     "simulated": replica_node_rps(rep, replica_world(rep)), "tolerance": RUNG0_CAPACITY_TOL})
        sat = play_replica(rep, RUNG0_SATURATION_LOAD * cap, hours)
        rows.append({**base, "quantity": "saturated_rps", "reference": cap, "simulated": sat["throughput_rps"],
                     "tolerance": RUNG0_CAPACITY_TOL})
        own = rows[-2]["simulated"]  # the replica's own capacity (node_rps)
        for share in RUNG0_LOADS:
            offered, mean, p99 = reference_at(e, share)
            # at vidur's rate; a kept measurement also at the same share of its own capacity (the load rule's)
            for label, rate in [(f"@{share:.0%}", offered)] + ([(f"@{share:.0%} own", share * own)] if exception
                                                                 else []):
                got = play_replica(rep, rate, hours)
                cell = {**base, "cell": f"{rep.label} {label}"}
                rows.append({**cell, "quantity": "ttft_mean_s", "reference": mean, "simulated": got["ttft_mean_s"],
                             "tolerance": RUNG0_TTFT_MEAN_TOL})
                rows.append({**cell, "quantity": "ttft_p99_s", "reference": p99, "simulated": got["ttft_p99_s"],
                             "tolerance": RUNG0_TTFT_P99_TOL})
    for r in rows:
        r["error"] = r["simulated"] / r["reference"] - 1.0
        r["holds"] = abs(r["error"]) <= r["tolerance"]
    return rows


# --- rungs 2 and 3: a grid of worlds played exactly and in cohorts ---------------------------------------------
RUNG2_TOL = {"energy": 0.05, "ttft_mean": 0.25, "ttft_p99": 0.50, "sla": 0.25, "utilization": 0.03}
RUNG2_ABS = {"ttft_mean": 0.05, "sla": 0.01}  # an error within this absolute amount holds too (s, share)
RUNG3_TOL = {"energy": 0.10, "cost": 0.10, "water": 0.10, "carbon": 0.10, "ttft_mean": 0.25}
RUNG3_TTFT_ABS_S = 0.05  # as tests/test_evaluator.py: 2.5 % of the SLA
RUNG3_CARRY_LIMIT = 0.05  # an epoch whose backlog at its end exceeds this share of its arrivals is not its own
GRID_DCS = 4
GRID_HOURS = 0.5  # two epochs: epoch 0 (warm start) and epoch 1 (the first planned on a forecast)
GRID = {"nodes_per_dc": (4, 12, 30, 100), "peak_utilization": (0.5, 0.8, 0.95, 1.2),
        "trace": ("azure-code-2024", "burstgpt-profile", "azure-conv-2023", "azure-code-2023"),
        "scheduler": ("uniform", "nearest", "fill-carbon")}
# the full factorial is ~100 exact runs of up to 8e6 requests, past the 20-minute budget on this machine: for the
# Azure code day and the BurstGPT profile every (nodes, utilization) with `uniform` (at 30 and 100 nodes only the
# 0.5 and 0.95 loads: a 100-node cell at 0.95 is ~8e6 exact requests, ~4.5 min of CPU), and the other schedulers at
# 12 nodes and 0.95 (their plans concentrate load: the cells where pools are smallest); for the two Azure 2023
# hours `uniform` on 4 and 12 nodes at 0.5, 0.8 and 0.95
GRID_SKIP = {(30, 0.8), (30, 1.2), (100, 0.8), (100, 1.2)}
HOUR_TRACES = ("azure-conv-2023", "azure-code-2023")
HOUR_CELLS = {"nodes_per_dc": (4, 12), "peak_utilization": (0.5, 0.8, 0.95)}
# CI's cells: two worlds auto plays exactly (4 and 12 nodes) and the smallest where it plays cohorts (30 nodes, auto's
# cohorts of 98 and the grid's 8 held to exact play; 1.3e6 exact requests, ~30 s of CPU)
QUICK = (dict(nodes_per_dc=12, peak_utilization=0.8, trace="burstgpt-profile", scheduler="uniform"),
         dict(nodes_per_dc=4, peak_utilization=0.95, trace="azure-code-2024", scheduler="nearest"),
         dict(nodes_per_dc=30, peak_utilization=0.5, trace="azure-code-2024", scheduler="uniform"))
GRID_COHORT = 8  # cohort size of the cohort runs (small worlds: the auto rule would play them exactly)


def grid_cells(quick: bool = False) -> list[dict]:
    """The cells of the grid (GRID's combinations as its comment says), or the QUICK few."""
    if quick:
        return [dict(c) for c in QUICK]
    cells = []
    for trace in GRID["trace"]:
        if trace in HOUR_TRACES:
            cells += [dict(nodes_per_dc=n, peak_utilization=u, trace=trace, scheduler="uniform")
                      for n in HOUR_CELLS["nodes_per_dc"] for u in HOUR_CELLS["peak_utilization"]]
            continue
        for n in GRID["nodes_per_dc"]:
            for u in GRID["peak_utilization"]:
                if (n, u) not in GRID_SKIP:
                    cells.append(dict(nodes_per_dc=n, peak_utilization=u, trace=trace, scheduler="uniform"))
        for sched in GRID["scheduler"][1:]:
            cells.append(dict(nodes_per_dc=12, peak_utilization=0.95, trace=trace, scheduler=sched))
    return cells


def window_load_scale(cell: dict) -> float:
    """The load factor that puts the busiest epoch of the cell's horizon (not of the whole trace day) at the cell's
    peak utilization of its own fleet, so a short horizon from midnight runs at the load the cell names."""
    from simcore.sizing import TraceShape, reference_peak_requests
    from traces.loader import AZURE_2023, azure2023_hour, epoch_peak_requests, token_pairs

    cfg = cell_config(cell, cohort="1", load_scale="auto")
    peak = epoch_peak_requests(cfg, cfg.epochs)
    p, o = azure2023_hour(cfg.trace)[1:3] if cfg.trace in AZURE_2023 else token_pairs()
    shape = TraceShape(cfg.trace, float(peak), p, o, (1.0 - cfg.gpt4_share, cfg.gpt4_share))
    return reference_peak_requests(cfg, shape) / peak


def cell_config(cell: dict, cohort: str, load_scale: str) -> Config:
    """A cell's world, compared over its horizon (no drain: the two node models' drains end at different bins,
    docs/model.md 'Drain')."""
    return Config(dcs=GRID_DCS, reference_dcs=GRID_DCS, hours=GRID_HOURS, nodes_per_dc=cell["nodes_per_dc"],
                  peak_utilization=cell["peak_utilization"], trace=cell["trace"], scheduler=cell["scheduler"],
                  cohort_size=cohort, load_scale=load_scale, drain=False)


def play_cell(cell: dict, cohort: str, load_scale: str, record: bool = False):
    """One run of a cell: (RunRecord, its epoch table, the engine, [(observation, plan)] if `record`)."""
    from schedulers.registry import create
    from simcore.engine import Engine
    from simcore.results import epoch_table

    cfg = cell_config(cell, cohort, load_scale)
    sched = create(cfg.scheduler)
    seen: list = []
    if record:
        decide = sched.decide

        def recording(obs):
            plan = decide(obs)
            seen.append((obs, np.array(plan)))
            return plan
        sched.decide = recording
    eng = Engine(cfg, sched)
    rec = eng.run()
    return rec, epoch_table(rec), eng, seen


def _rel(a: float, b: float) -> float:
    return a / b - 1.0 if b else (0.0 if a == b else math.inf)


def _figures(table):
    """Per-epoch figures of a run's epoch table (real requests; utilization averaged over datacenters)."""
    g = table.groupby("epoch")
    return g.agg({"total_kwh": "sum", "ttft_sum_s": "sum", "served": "sum", "sla_violations": "sum",
                  "utilization": "mean"})


def _quantile(rec, q: float) -> float:
    from simcore.results import _weighted_quantile

    ok = ~np.isnan(rec.ttft_s)
    w = rec.served[ok] if rec.served is not None else np.ones(ok.sum())
    return float(_weighted_quantile(rec.ttft_s[ok], w, q)) if ok.any() else math.nan


def _holds(quantity: str, err: float, exact: float, tol: dict, absolute: dict) -> bool:
    if quantity in ("utilization",):
        return abs(err) <= tol[quantity]  # points
    if abs(err) <= tol[quantity]:
        return True
    return quantity in absolute and abs(err * exact) <= absolute[quantity]


def rung2_rows(name: str, exact, cohorts) -> list[dict]:
    """Cohorts vs exact of one cell: whole run and each epoch (energy, TTFT mean / p99, SLA share, utilization)."""
    (rec_a, tab_a), (rec_b, tab_b) = exact, cohorts
    a, b = _figures(tab_a), _figures(tab_b)
    rows = []

    def add(cell, quantity, x_exact, x_cohort, points=False):
        err = (x_cohort - x_exact) if points else _rel(x_cohort, x_exact)
        rows.append({"rung": 2, "cell": cell, "quantity": quantity, "reference": x_exact, "simulated": x_cohort,
                     "error": err, "tolerance": RUNG2_TOL[quantity],
                     "holds": _holds(quantity, err, x_exact, RUNG2_TOL, RUNG2_ABS), "exception": False})

    for label, sel in [("run", slice(None))] + [(f"epoch {e}", [e]) for e in a.index]:
        x, y = a.loc[sel], b.loc[sel]
        if label != "run":
            x, y = x.iloc[[0]], y.iloc[[0]]
        sa, sb = float(x["served"].sum()), float(y["served"].sum())
        add(f"{name} {label}", "energy", float(x["total_kwh"].sum()), float(y["total_kwh"].sum()))
        if sa > 0 and sb > 0:
            add(f"{name} {label}", "ttft_mean", float(x["ttft_sum_s"].sum()) / sa, float(y["ttft_sum_s"].sum()) / sb)
            add(f"{name} {label}", "sla", float(x["sla_violations"].sum()) / sa, float(y["sla_violations"].sum()) / sb)
        add(f"{name} {label}", "utilization", float(x["utilization"].mean()), float(y["utilization"].mean()),
            points=True)
        if label == "run":
            add(f"{name} run", "ttft_p99", _quantile(rec_a, 0.99), _quantile(rec_b, 0.99))
    return rows


def rung3_rows(name: str, eng, rec, table, seen) -> list[dict]:
    """The epoch evaluator vs the exact engine of one cell, per epoch: energy, cost, water, carbon; mean TTFT on
    the epochs that are the engine's own (at most RUNG3_CARRY_LIMIT of their arrivals still waiting at the end),
    on the last epoch over the requests served by the horizon on both sides (`EpochState.served_by_end`: the
    engine's figure leaves out those still waiting, the cells have no drain). The evaluator is fed the epoch's
    truth (counts, arrival times, token mix and each arrival's work), so what it misses is its own."""
    from simcore.evaluator import EpochState

    truth = table.groupby("epoch")[["total_kwh", "cost_usd", "water_l", "carbon_kg", "ttft_sum_s", "served"]].sum()
    ev = eng.info.evaluator
    rows = []
    wl = eng.wl
    for e, (obs, plan) in enumerate(seen):
        counts = eng.epochs.counts[e].astype(float)
        # the truth of the epoch, as a scheduler's forecast would ideally be: its counts, its arrivals' bursts and
        # its token mix, in all and as it arrives (`EpochState.arrival_s`, `work_scale`, `arrival_work`)
        lo, hi = int(eng.epochs.bounds[e]), int(eng.epochs.bounds[e + 1])
        ok = ~wl.failed[lo:hi]
        mix = (wl.model[lo:hi][ok], wl.prompt_tokens[lo:hi][ok], wl.output_tokens[lo:hi][ok])
        scale, work = ev.epoch_truth(*mix)
        state = EpochState.from_observation(obs, requests=counts, arrival_s=wl.t_s[lo:hi][ok], work_scale=scale,
                                            arrival_work=work)
        # the cell's runs end with their last epoch (no drain): the engine's figure for it is over the requests
        # served by the horizon, those still waiting left out; the evaluator's is made the same quantity
        state = dataclasses.replace(state, served_by_end=e == len(seen) - 1)
        est = ev.evaluate(state, plan)
        t = truth.loc[e]
        pairs = {"energy": (est.energy_kwh[0], t.total_kwh), "cost": (est.cost_usd[0], t.cost_usd),
                 "water": (est.water_l[0], t.water_l), "carbon": (est.carbon_kg[0], t.carbon_kg)}
        waiting = np.sum(seen[e + 1][0].queued) if e + 1 < len(seen) else rec.queued_at_horizon
        carry = float(waiting) / max(float(counts.sum()), 1.0)
        if t.served and carry <= RUNG3_CARRY_LIMIT:
            pairs["ttft_mean"] = (est.ttft_mean_s[0], t.ttft_sum_s / t.served)
        for q, (x_est, x_true) in pairs.items():
            err = _rel(float(x_est), float(x_true))
            ok = abs(err) <= RUNG3_TOL[q] or (q == "ttft_mean" and abs(x_est - x_true) <= RUNG3_TTFT_ABS_S)
            rows.append({"rung": 3, "cell": f"{name} epoch {e}", "quantity": q, "reference": float(x_true),
                         "simulated": float(x_est), "error": err, "tolerance": RUNG3_TOL[q], "holds": bool(ok),
                         "exception": False})
    return rows


TRACE_LABELS = {"azure-code-2024": "azure", "burstgpt-profile": "burstgpt", "azure-conv-2023": "conv23",
                "azure-code-2023": "code23"}  # short names of the grid's traces in its cell names


def cell_name(cell: dict) -> str:
    return (f"N={cell['nodes_per_dc']} U={cell['peak_utilization']:g} {TRACE_LABELS[cell['trace']]} "
            f"{cell['scheduler']}")


def auto_cohort(cell: dict, load_scale: str) -> int:
    """The cohort `cohort_size` auto gives the cell's run (`traces.loader.run_cohort`): 1 where it plays exactly."""
    from simcore.rng import stream
    from traces.loader import load_workload

    cfg = cell_config(cell, "auto", load_scale)
    return int(load_workload(cfg, stream(cfg.seed, "trace")).cohort)


def run_cell(cell: dict) -> list[dict]:
    """Rungs 2 and 3 of one cell: one exact run (recording the plans), one cohort run at the same load, and the
    cohort auto would use there (a rung-2 row that fails where auto plays exactly is no error of a run); where auto
    plays cohorts of another size, a run in those too (rung-2 rows named '<cell> cohort <size>')."""
    scale = repr(float(window_load_scale(cell)))
    rec_a, tab_a, eng, seen = play_cell(cell, "1", scale, record=True)
    rec_b, tab_b, _, _ = play_cell(cell, str(GRID_COHORT), scale)
    name = cell_name(cell)
    rows = rung2_rows(name, (rec_a, tab_a), (rec_b, tab_b)) + rung3_rows(name, eng, rec_a, tab_a, seen)
    auto = auto_cohort(cell, scale)
    if auto not in (1, GRID_COHORT):  # the cohort auto plays the cell in, held to exact play too
        rec_c, tab_c, _, _ = play_cell(cell, str(auto), scale)
        rows += rung2_rows(f"{name} cohort {auto}", (rec_a, tab_a), (rec_c, tab_c))
    for r in rows:
        r.update({k: cell[k] for k in GRID}, exact_requests=len(rec_a.ttft_s), auto_cohort=auto)
    return rows


# --- the ladder ------------------------------------------------------------------------------------------------
COLUMNS = ("rung", "cell", "quantity", "reference", "simulated", "error", "tolerance", "holds", "exception",
           "nodes_per_dc", "peak_utilization", "trace", "scheduler", "exact_requests", "auto_cohort")


def ladder_tasks(quick: bool = False, cells: str | None = None) -> list[tuple]:
    """The ladder's independent pieces in report order: ("rung 0", None) unless `cells` is given, then
    ("cell", cell) for each grid cell (or QUICK cell) whose name contains `cells`."""
    chosen = [c for c in grid_cells(quick) if cells is None or cells in cell_name(c)]
    if cells is not None and not chosen:
        raise SimError(f"--cells {cells!r}: no grid cell's name contains it (names like 'N=12 U=0.95 azure uniform')")
    return ([] if cells is not None else [("rung 0", None)]) + [("cell", c) for c in chosen]


def run_task(kind: str, cell: dict | None, quick: bool) -> list[dict]:
    """One piece of the ladder: rung 0's rows, or one cell's rungs 2 and 3."""
    return rung0(quick) if kind == "rung 0" else run_cell(cell)


def _timed_task(kind: str, cell: dict | None, quick: bool) -> tuple:
    """(None, wall seconds, rows, CPU seconds) of one piece (`run_task`), the shape `run_ladder`'s `done` takes."""
    t0, c0 = time.perf_counter(), time.process_time()
    rows = run_task(kind, cell, quick)
    return None, time.perf_counter() - t0, rows, time.process_time() - c0


def _process_task(argv: tuple, out: str) -> tuple:
    """A piece run in its own process (`reports.executors.run_in_processes`): `_timed_task`'s tuple, or (error,
    wall seconds, None, 0.0) for a piece that raised."""
    t0 = time.perf_counter()
    try:
        return _timed_task(*argv)
    except Exception as e:  # noqa: BLE001  (reported by the parent, which ends the ladder with it)
        return f"{type(e).__name__}: {e}", time.perf_counter() - t0, None, 0.0


def run_ladder(quick: bool = False, progress=print, cells: str | None = None, workers: int = 1,
               bar: bool = False, cpu: dict | None = None) -> list[dict]:
    """Every rung's rows: rung 0 (vidur), then rungs 2 and 3 over the grid (or its QUICK cells); with `cells`, only
    the grid cells whose name contains it (no rung 0). `workers` > 1: the pieces (rung 0, each cell) run in that
    many processes at a time (`reports.executors`); the rows are those of a serial run, in its order. `progress`
    gets a line per piece as it ends (or None); `bar`: a tqdm bar over the pieces (where stderr is a terminal);
    `cpu`, a dict: its "s" gets the pieces' CPU seconds added, in whichever process they ran."""
    from tqdm import tqdm

    tasks = ladder_tasks(quick, cells)
    names = ["rung 0" if kind == "rung 0" else f"cell {cell_name(cell)}" for kind, cell in tasks]
    results: list = [None] * len(tasks)
    shown = tqdm(total=len(tasks), desc="validate", unit="piece", disable=None if bar else True, dynamic_ncols=True)
    say = shown.write if not shown.disable else (progress or (lambda _: None))

    def done(i: int, error: str | None, seconds: float, rows: list | None = None, cpu_s: float = 0.0) -> None:
        if error:  # a bug, not the user's: an internal error (exit 1), the other pieces stopped
            raise RuntimeError(f"validate: {names[i]} failed: {error}")
        results[i] = rows
        if cpu is not None:
            cpu["s"] = cpu.get("s", 0.0) + cpu_s
        say(f"  {names[i]}: {seconds:.1f} s (CPU {cpu_s:.1f} s)")
        shown.update(1)

    try:
        if workers <= 1 or len(tasks) <= 1:
            for i, (kind, cell) in enumerate(tasks):
                done(i, *_timed_task(kind, cell, quick))
        else:
            from reports.executors import run_in_processes

            # the biggest pieces first, so the last to end is a small one (same rows: they are put back in order)
            order = sorted(range(len(tasks)), key=lambda i: -_cost(*tasks[i], quick))
            # a piece writes no file: the executor's `out` (what it cleans after a killed process) is the null device
            run_in_processes([(i, (*tasks[i], quick), os.devnull) for i in order], min(workers, len(tasks)),
                             _process_task, done)
    finally:
        shown.close()
    return [r for rows in results for r in rows]


def _cost(kind: str, cell: dict | None, quick: bool) -> float:
    """A piece's rough CPU time, to start the longest first: a cell's nodes x load (its exact requests); rung 0
    (about a minute, less than the large cells) is put last."""
    return 0.0 if kind == "rung 0" else cell["nodes_per_dc"] * cell["peak_utilization"]


def write_csv(rows: list[dict], path: str | Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def severity(r: dict) -> float:
    """How far a row is from its tolerance (1 = at it): relative error over tolerance, or the absolute error over
    its absolute allowance where the quantity has one and that is the smaller."""
    rel = abs(r["error"]) / r["tolerance"]
    allow = {2: RUNG2_ABS, 3: {"ttft_mean": RUNG3_TTFT_ABS_S}}.get(r["rung"], {}).get(r["quantity"])
    if allow is None or r["quantity"] == "utilization":
        return rel
    return min(rel, abs(r["simulated"] - r["reference"]) / allow)


def auto_exact(r: dict) -> bool:
    """A rung-2 row of a cell that `cohort_size` auto plays exactly (its cohorts are never used there)."""
    return r["rung"] == 2 and r.get("auto_cohort") == 1


def report(rows: list[dict]) -> str:
    """Every cell's errors, then the worst per rung (those that hold and those kept out as exceptions apart;
    rung 2's rows that fail where auto plays exactly marked 'NO, auto exact' and counted apart)."""
    lines = [f"{'rung':>4}  {'cell':44s} {'quantity':14s} {'reference':>10s} {'simulated':>10s} {'error':>9s}  holds"]
    for r in rows:
        pct = r["quantity"] == "utilization" and r["rung"] == 2
        err = f"{r['error'] * 100:+.1f}{'pt' if pct else '%'}"
        mark = ("yes" if r["holds"] else "exception" if r["exception"] else
                "NO, auto exact" if auto_exact(r) else "NO")
        lines.append(f"{r['rung']:>4}  {r['cell'][:44]:44s} {r['quantity']:14s} {r['reference']:10.4g} "
                     f"{r['simulated']:10.4g} {err:>9s}  {mark}")
    lines.append("")
    for rung in sorted({r["rung"] for r in rows}):
        rs = [r for r in rows if r["rung"] == rung and not r["exception"] and np.isfinite(r["error"])]
        bad = [r for r in rs if not r["holds"]]
        worst = max(rs, key=severity) if rs else None
        if worst:
            lines.append(f"rung {rung}: {len(rs) - len(bad)} of {len(rs)} hold; worst {worst['cell']} "
                         f"{worst['quantity']} {worst['error']:+.3f} (tolerance {worst['tolerance']:g})")
        if rung == 2 and bad:
            kept = [r for r in bad if auto_exact(r)]
            lines.append(f"rung 2: of the {len(bad)} that fail, {len(kept)} are in cells cohort_size auto plays "
                         f"exactly; {len(bad) - len(kept)} where auto plays cohorts")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`python run.py validate [--quick] [--out validation.csv] [--overwrite] [--cells NAME] [--workers N]
    [--no-progress]`."""
    from schedulers.options import Parser

    ap = Parser(prog="run.py validate", description="the fidelity ladder (docs/model.md "
                                 "'Validation'): rung 0 vs vidur, rungs 2-3 over the grid")
    ap.add_argument("--quick", action="store_true", help="rung 0 and a few cells (CI, under 2 minutes)")
    ap.add_argument("--out", default="validation.csv", help="the CSV written (default validation.csv)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    ap.add_argument("--cells", default=None, help="only the grid cells whose name contains this (e.g. 'conv23', "
                    "'N=12 U=0.95'); rung 0 left out")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="pieces (rung 0, each grid cell) run at a time, each in its own process; the rows are a "
                    "serial run's (default: the machine's cores)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    if a.workers < 1:
        raise SimError(f"--workers {a.workers}: need at least 1")
    out = Path(a.out)
    if out.exists() and not out.is_file():
        raise SimError(f"--out {out}: not a file")
    if out.exists() and not a.overwrite:
        raise SimError(f"--out {out}: exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise SimError(f"--out {out}: no folder {out.parent}")
    t0, cpu = time.perf_counter(), {"s": 0.0}
    rows = run_ladder(a.quick, cells=a.cells, workers=a.workers, bar=not a.no_progress, cpu=cpu)
    print(report(rows))
    write_csv(rows, out)
    print(f"{len(rows)} rows -> {out} (wall {time.perf_counter() - t0:.0f} s, CPU {cpu['s']:.0f} s in the pieces, "
          f"{a.workers} worker{'s' * (a.workers > 1)})")
    return 0
