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


def epoch_table(rec: RunRecord) -> pd.DataFrame:
    """The per-epoch, per-datacenter table, with TTFT statistics of the requests that arrived in the epoch."""
    df = pd.DataFrame(rec.epoch_rows)
    served = ~np.isnan(rec.ttft_s)
    sla = rec.cfg.sla_ttft_s
    t = pd.DataFrame({"epoch": rec.req_epoch[served], "dc": rec.req_dc[served].astype(int),
                      "ttft": rec.ttft_s[served], "cold": rec.cold[served]})
    g = t.groupby(["epoch", "dc"])["ttft"]
    stats = pd.DataFrame({
        "served": g.size(),
        "ttft_mean_s": g.mean(),
        "ttft_p99_s": g.quantile(0.99),
        "sla_violations": t.assign(v=t.ttft > sla).groupby(["epoch", "dc"])["v"].sum(),
        "ttft_sum_s": g.sum(),
    }).reset_index()
    df = df.merge(stats, on=["epoch", "dc"], how="left")
    df["served"] = df["served"].fillna(0).astype(int)
    df["sla_violations"] = df["sla_violations"].fillna(0).astype(int)
    df["ttft_sum_s"] = df["ttft_sum_s"].fillna(0.0)
    return df


def summary(rec: RunRecord, epochs: pd.DataFrame) -> dict:
    """The run's headline figures (issue 2 contract keys first)."""
    served = ~np.isnan(rec.ttft_s)
    ttft = rec.ttft_s[served]
    arrived = len(rec.ttft_s)
    failed = int(rec.req_failed.sum())
    n_served = int(served.sum())
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
        "ttft_mean_s": float(ttft.mean()) if n_served else None,
        "ttft_p50_s": float(np.percentile(ttft, 50)) if n_served else None,
        "ttft_p99_s": float(np.percentile(ttft, 99)) if n_served else None,
        "ttft_total_s": float(ttft.sum()),
        "sla_violation_rate": float((ttft > rec.cfg.sla_ttft_s).mean()) if n_served else 0.0,
        "cold_starts": int(rec.cold.sum()),
    }
    for key, col in SUMMARY_SUMS.items():
        out[key] = float(epochs[col].sum())
    out["it_kwh"] = float(epochs["it_kwh"].sum())
    out["parked_share"] = float(epochs["parked_nodes"].sum() / (len(epochs) * rec.cfg.nodes_per_dc))
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
