"""Turn a run's record into result files, atomically.

A results folder holds `summary.json`, `epochs.csv` + `epochs.parquet` (one row per epoch and datacenter,
SPEC 6 columns) and `config.json` (every parameter, by the Config's field names). Everything is written into
a temporary sibling folder that is renamed into place only when complete, so a failed run leaves nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from simcore.engine import RunRecord

SUMMARY_SUMS = {"energy_kwh": "total_kwh", "cost_usd": "cost_usd", "water_l": "water_l", "carbon_kg": "carbon_kg"}


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-quantile of values each standing for `weights` real requests (plain percentile for equal weights)."""
    if len(values) == 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    if cum[-1] <= 0:
        return float("nan")
    if np.all(w == w[0]):
        return float(np.percentile(v, 100.0 * q))
    return float(v[min(int(np.searchsorted(cum, q * cum[-1], side="left")), len(v) - 1)])


def _served_rows(rec: RunRecord) -> pd.DataFrame:
    """One row per simulated request with a first token: epoch, dc, TTFT, real requests served and late."""
    ok = ~np.isnan(rec.ttft_s) & (rec.served > 0)
    return pd.DataFrame({"epoch": rec.req_epoch[ok], "dc": rec.req_dc[ok].astype(int), "ttft": rec.ttft_s[ok],
                         "w": rec.served[ok], "late": rec.sla_late[ok]})


def epoch_table(rec: RunRecord) -> pd.DataFrame:
    """The per-epoch, per-datacenter table, with TTFT statistics of the (real) requests that arrived in the epoch."""
    df = pd.DataFrame(rec.epoch_rows)
    t = _served_rows(rec)
    t["tw"] = t["ttft"] * t["w"]
    g = t.groupby(["epoch", "dc"])
    stats = pd.DataFrame({
        "served": g["w"].sum(),
        "ttft_sum_s": g["tw"].sum(),
        "sla_violations": g["late"].sum(),
        "ttft_p99_s": g.apply(lambda x: _weighted_quantile(x["ttft"].to_numpy(), x["w"].to_numpy(), 0.99),
                              include_groups=False),
    }).reset_index()
    stats["ttft_mean_s"] = stats["ttft_sum_s"] / stats["served"]
    df = df.merge(stats, on=["epoch", "dc"], how="left")
    df["served"] = df["served"].fillna(0).round().astype(np.int64)
    df["sla_violations"] = df["sla_violations"].fillna(0).round().astype(np.int64)
    df["ttft_sum_s"] = df["ttft_sum_s"].fillna(0.0)
    return df


def summary(rec: RunRecord, epochs: pd.DataFrame) -> dict:
    """The run's headline figures (issue 2 contract keys first). Counts are real requests."""
    t = _served_rows(rec)
    ttft, w = t["ttft"].to_numpy(), t["w"].to_numpy()
    C = rec.cohort
    failed = int(rec.req_failed.sum()) * C
    arrived = len(rec.ttft_s) * C
    n_served = int(round(float(w.sum())))
    late = float(t["late"].sum())
    out = {
        "scheduler": rec.scheduler,
        "dcs": rec.cfg.dcs,
        "hours": rec.cfg.hours,
        "seed": rec.cfg.seed,
        "trace": rec.trace,
        "load_scale": rec.load_scale,
        "requests_arrived": arrived,
        "requests_served": n_served,
        "requests_failed": failed,
        "requests_queued_at_end": arrived - n_served - failed,
        "ttft_mean_s": float((ttft * w).sum() / w.sum()) if n_served else None,
        "ttft_p50_s": _weighted_quantile(ttft, w, 0.5) if n_served else None,
        "ttft_p99_s": _weighted_quantile(ttft, w, 0.99) if n_served else None,
        "ttft_total_s": float((ttft * w).sum()),
        "sla_violation_rate": late / n_served if n_served else 0.0,
        "cold_starts": int(epochs["cold_starts"].sum()),
    }
    for key, col in SUMMARY_SUMS.items():
        out[key] = float(epochs[col].sum())
    out["it_kwh"] = float(epochs["it_kwh"].sum())
    out["parked_share"] = float(epochs["parked_nodes"].sum() / (len(epochs) * rec.cfg.nodes_per_dc))
    out["requests_simulated"] = len(rec.ttft_s)
    out["cohort_size"] = C
    out["requests_real"] = arrived
    fleet = epochs.assign(cap_used=epochs["utilization"] * epochs["capacity_requests"]).groupby("epoch")
    fleet_util = fleet["cap_used"].sum() / fleet["capacity_requests"].sum()
    out["peak_utilization"] = float(fleet_util.max())
    out["utilization_mean"] = float(fleet_util.mean())
    out["energy_wh_per_request"] = out["energy_kwh"] * 1000.0 / n_served if n_served else None
    out["sites"] = list(rec.sites)
    out["events"] = rec.events
    out["wall_s"] = round(rec.wall_s, 3)
    return out


def write_results(rec: RunRecord, out_dir: str | Path, extra: dict | None = None) -> dict:
    """Write summary.json, epochs.csv/.parquet and config.json into out_dir atomically; return the summary."""
    out = Path(out_dir)
    epochs = epoch_table(rec)
    summ = summary(rec, epochs)
    if extra:
        summ.update(extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        epochs.to_csv(tmp / "epochs.csv", index=False, float_format="%.10g")
        epochs.to_parquet(tmp / "epochs.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(summ, indent=2) + "\n")
        (tmp / "config.json").write_text(json.dumps(rec.cfg.to_dict(), indent=2) + "\n")
        for name, table in sorted((rec.extra_tables or {}).items()):  # scheduler-specific tables (optional)
            table.to_csv(tmp / f"{name}.csv", index=False, float_format="%.10g")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summ


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder into place, replacing an older one with the same name."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
