"""Turn a run's record into result files, atomically.

A results folder holds `summary.json`, `epochs.csv` + `epochs.parquet` (one row per epoch and datacenter,
SPEC 6 columns) and `config.json` (every parameter of the world, by the Config's field names, and the scheduler's
parameters in a section named after it: `run.py --config config.json` repeats the run). Everything is written into
a temporary sibling folder that is renamed into place only when complete, so a failed run leaves nothing.

A run never deletes or replaces anything it did not write (`Staging`, before the run): the results folder must be
new, an empty folder, or an earlier results folder (recognized by its manifest `.marlin-results.json`, marked
`written_by: "marlin-sim run"` and listing every file of the folder; never by file names), and an earlier one is replaced only with
`overwrite=True` (`--overwrite`). The temporary folder is made before the simulation, so an unwritable place is
found before any work is done.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from simcore import physics
from simcore.errors import ConfigError, OutputError, SchedulerError
from simcore.folders import make_dirs, remove_made_dirs
from simcore.interface import RunRecord

MANIFEST = ".marlin-results.json"  # the files a run wrote; marks its folder as a results folder
RESULT_FILES = ("summary.json", "config.json", "epochs.csv", "epochs.parquet")
RUN_FIGURES = ("timeline.png",)  # drawn by the run from its own files (`reports.timeline`)
_TABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # a scheduler's extra table: a plain file name
RUN_MARK = "marlin-sim run"  # the manifest's `written_by`: this folder is a run's results folder
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
        # (a run that served nothing has no group: apply() would return an empty frame, not a column)
        "ttft_p99_s": (g.apply(lambda x: _weighted_quantile(x["ttft"].to_numpy(), x["w"].to_numpy(), 0.99),
                               include_groups=False) if len(t) else g["ttft"].sum()),
    }).reset_index()
    stats["ttft_mean_s"] = stats["ttft_sum_s"] / stats["served"]
    df = df.merge(stats, on=["epoch", "dc"], how="left")
    df["served"] = df["served"].fillna(0).round().astype(np.int64)
    df["sla_violations"] = df["sla_violations"].fillna(0).round().astype(np.int64)
    df["ttft_sum_s"] = df["ttft_sum_s"].fillna(0.0)
    return df


def summary(rec: RunRecord, epochs: pd.DataFrame) -> dict:
    """The run's headline figures (issue 2 contract keys first). Counts are real requests.

    The SLA and the per-request figures are over the requests to serve (arrived, less the trace's failed
    requests, which ask for no token): a request never served counts as a violation, so serving less cannot
    lower `sla_violation_rate` or the cost of a request (docs/model.md 'TTFT'). TTFT statistics cover the
    served requests."""
    t = _served_rows(rec)
    ttft, w = t["ttft"].to_numpy(), t["w"].to_numpy()
    C = rec.cohort
    failed = int(rec.req_failed.sum()) * C
    arrived = len(rec.ttft_s) * C
    n_served = int(round(float(w.sum())))
    late = float(epochs["sla_violations"].sum())  # the summary's totals are epochs.csv's column sums
    unserved = arrived - n_served - failed
    to_serve = arrived - failed
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
        "requests_queued_at_end": unserved,
        "requests_unserved": unserved,
        "requests_queued_at_horizon": int(round(rec.queued_at_horizon)),
        "drain_h": rec.drain_h,
        "ttft_mean_s": float((ttft * w).sum() / w.sum()) if n_served else None,
        "ttft_p50_s": _weighted_quantile(ttft, w, 0.5) if n_served else None,
        "ttft_p99_s": _weighted_quantile(ttft, w, 0.99) if n_served else None,
        "ttft_total_s": float((ttft * w).sum()),
        "sla_violation_rate": (late + unserved) / to_serve if to_serve else 0.0,
        "cold_starts": int(epochs["cold_starts"].sum()),
    }
    for key, col in SUMMARY_SUMS.items():
        out[key] = float(epochs[col].sum())
    out["it_kwh"] = float(epochs["it_kwh"].sum())
    out["embodied_carbon_kg"] = float(epochs["embodied_carbon_kg"].sum())  # beside carbon_kg (operational)
    out["embodied_attributable_kg"] = float(epochs["embodied_attributable_kg"].sum())  # of it, the serving nodes'
    out["parked_share"] = float(physics.parked_share(epochs["active_nodes"].sum(), len(epochs) * rec.cfg.nodes_per_dc))
    out["requests_simulated"] = len(rec.ttft_s)
    out["cohort_size"] = C
    out["requests_real"] = arrived
    fleet = epochs.assign(cap_used=epochs["utilization"] * epochs["capacity_requests"]).groupby("epoch")
    fleet_util = fleet["cap_used"].sum() / fleet["capacity_requests"].sum()
    out["peak_utilization"] = float(fleet_util.max())
    out["utilization_mean"] = float(fleet_util.mean())
    out["slo_attainment"] = 1.0 - out["sla_violation_rate"]
    out["goodput_rps"] = max(n_served - late, 0.0) / rec.cfg.horizon_s  # first token within the SLA, per second
    per = 1.0 / to_serve if to_serve else None
    for key, total, unit in (("energy_wh_per_request", "energy_kwh", 1000.0), ("carbon_g_per_request", "carbon_kg",
                             1000.0), ("water_ml_per_request", "water_l", 1000.0),
                             ("cost_usd_per_1k_requests", "cost_usd", 1000.0)):
        out[key] = out[total] * unit * per if per else None
    out["requests_over_context"] = rec.over_context * C
    out["sites"] = list(rec.sites)
    out["events"] = rec.events
    out["hindsight"] = rec.hindsight  # the scheduler saw the true arrivals (a bound, not deployable)
    out["wall_s"] = round(rec.wall_s, 3)
    return out


def write_results(rec: RunRecord, out_dir: str | Path, extra: dict | None = None, overwrite: bool = False,
                  staging: "Staging | None" = None, figures=None) -> dict:
    """Write summary.json, epochs.csv/.parquet and config.json into out_dir atomically; return the summary.

    :param overwrite: replace an earlier results folder at out_dir (anything else there is never replaced)
    :param staging: the `Staging` made before the run (default: made now)
    :param figures: called with the folder being written once the tables are in it (to draw from them)
    :raises OutputError: out_dir is a file, a folder with other files, an earlier results folder without
        `overwrite`, or not writable
    """
    out = Path(out_dir)
    stage = staging if staging is not None else Staging(out, overwrite)
    try:
        epochs = epoch_table(rec)
        summ = summary(rec, epochs)
        if extra:
            summ.update(extra)
        check_finite(rec.cfg, summ)
        tmp = stage.tmp
        epochs.to_csv(tmp / "epochs.csv", index=False, float_format="%.10g")
        epochs.to_parquet(tmp / "epochs.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(summ, indent=2) + "\n")
        config = {**rec.cfg.to_dict(), rec.scheduler: rec.scheduler_params}  # the world's, then the scheduler's
        if rec.training is not None:  # how the scheduler was trained before this run (a record, not a parameter)
            config["training"] = rec.training
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for name, table in sorted(check_extra_tables(rec.scheduler, rec.extra_tables).items()):
            table.to_csv(tmp / f"{name}.csv", index=False, float_format="%.10g")  # the scheduler's own tables
        if figures is not None:
            figures(tmp)
        stage.publish()
    except BaseException:
        stage.abandon()
        raise
    return summ


def check_finite(cfg, summ: dict) -> None:
    """Refuse (ConfigError) a run whose totals overflowed (a parameter pushed a product past a float's range):
    its results would be `inf`, not figures."""
    from simcore.config import furthest_from_default

    bad = [k for k in (*SUMMARY_SUMS, "it_kwh") if not np.isfinite(summ[k])]
    if bad:
        raise ConfigError(f"the run's {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not finite: a parameter is "
                          f"out of any physical range; furthest from their defaults: {furthest_from_default(cfg)}")


def check_extra_tables(scheduler: str, tables) -> dict:
    """A scheduler's `extra_results()`: a dict of table name -> DataFrame, each name a plain file name (letters,
    digits, `_ . -`, not starting with a dot, so `<name>.csv` lands in the results folder and nowhere else) that
    is none of the run's own files; else SchedulerError, one line naming the scheduler."""
    if tables is None:
        return {}
    where = f"scheduler {scheduler}: extra_results()"
    if not isinstance(tables, dict):
        raise SchedulerError(f"{where} returned a {type(tables).__name__}, not a dict of name -> DataFrame")
    own = set(RESULT_FILES) | set(RUN_FIGURES) | {MANIFEST}
    for name, table in tables.items():
        if not (isinstance(name, str) and _TABLE_NAME.fullmatch(name)) or f"{name}.csv" in own:
            raise SchedulerError(f"{where}: table name {name!r} must be a plain file name (letters, digits, _ . -; "
                                 f"at most 100) and none of the run's own files ({', '.join(sorted(own))})")
        if not isinstance(table, pd.DataFrame):
            raise SchedulerError(f"{where}: table {name!r} is a {type(table).__name__}, not a pandas DataFrame")
    return tables


def check_out_dir(out: str | Path, overwrite: bool = False) -> None:
    """Refuse (OutputError, one line) a results path that would make the run replace what it did not write."""
    p = Path(out)
    shown = str(out)
    absolute = Path(os.path.abspath(p))
    cwd = Path.cwd()
    if absolute == cwd or absolute in cwd.parents:
        raise OutputError(f"--out {shown}: is the current folder or one of its parents; name a new folder")
    if p.is_symlink() and not p.exists():
        raise OutputError(f"--out {shown}: is a broken symbolic link; name a new folder")
    if p.exists() and not p.is_dir():
        raise OutputError(f"--out {shown}: is a file, not a folder; a run writes a results folder: name a new one")
    if p.is_dir():
        try:
            entries = sorted(os.listdir(p))
        except OSError as e:
            raise OutputError(f"--out {shown}: cannot read the folder ({e.strerror or e})") from None
        foreign = foreign_entries(p, entries) if entries else []
        if foreign:
            listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise OutputError(f"--out {shown}: folder holds files this simulator did not write ({listed}); "
                              "name a new or empty folder")
        if entries and not overwrite:
            raise OutputError(f"--out {shown}: holds earlier results; pass --overwrite to replace them")
    parent = absolute.parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"--out {shown}: {parent} is a file, not a folder")


def foreign_entries(p: Path, entries: list[str]) -> list[str]:
    """The entries of a folder that no run wrote (all of them unless it is a results folder): a results folder is
    known by its manifest (`MANIFEST`, marked `written_by: RUN_MARK`) and holds only the files it lists. File
    names alone prove nothing: a user's own `summary.json` and `config.json` are the user's."""
    written = set()
    if MANIFEST in entries:
        try:
            m = json.loads((p / MANIFEST).read_text())
            if m.get("written_by") == RUN_MARK:
                written = {f for f in m["files"] if isinstance(f, str)} | {MANIFEST}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            written = set()
    return [e for e in entries if e not in written or not (p / e).is_file() or (p / e).is_symlink()]


class Staging:
    """A results folder in the making, set up before the run.

    The checks of `check_out_dir` run now, missing parent folders are made (and remembered), and the temporary
    sibling folder the files are written into is made now, so an unwritable place is found before the
    simulation. `publish()` checks again and renames the finished folder into place; `abandon()` removes the
    temporary folder and only the parents this run made.
    """

    def __init__(self, out: str | Path, overwrite: bool = False) -> None:
        self.out, self.overwrite = Path(out), overwrite
        self.created: list[Path] = []  # parent folders this run made, outermost first
        self.tmp: Path | None = None
        check_out_dir(self.out, overwrite)
        try:
            self.created = make_dirs(Path(os.path.abspath(self.out)).parent)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        except OSError as e:
            self.abandon()
            raise OutputError(f"--out {self.out}: cannot write there ({e.strerror or e})") from None

    def publish(self) -> None:
        """Move the finished folder into place (re-checking the target: it may have changed during the run)."""
        files = sorted(os.listdir(self.tmp))
        (self.tmp / MANIFEST).write_text(json.dumps({"written_by": RUN_MARK, "files": files}, indent=2)
                                         + "\n")
        check_out_dir(self.out, self.overwrite)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp made it private; give it the mode a plain new folder gets
        try:
            replace_dir(self.tmp, self.out)
        except OSError as e:
            raise OutputError(f"--out {self.out}: cannot move the results into place ({e.strerror or e})") from None
        self.tmp, self.created = None, []

    def abandon(self) -> None:
        """Remove what this run made for its results: the temporary folder, then the parents it created."""
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        remove_made_dirs(self.created)
        self.created = []


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder into place, replacing an empty folder or an earlier results folder (checked by
    `check_out_dir` just before) with the same name."""
    if dst.exists() and os.listdir(dst):
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


# --- single files a command writes into a folder it shares with the user (report files, figures) -------------
WRITTEN_FILES = ".marlin-files.json"  # in such a folder: the files this program wrote there (it may replace them)


def written_here(folder: str | Path) -> set:
    """The names of the files this program recorded writing in `folder`."""
    try:
        names = json.loads((Path(folder) / WRITTEN_FILES).read_text())["files"]
        return {n for n in names if isinstance(n, str)}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def check_replaceable(path: str | Path) -> None:
    """Refuse (OutputError, one line) to write `path` over anything this program did not write there: a file not
    recorded in its folder's `WRITTEN_FILES`, a folder, a link, a pipe."""
    p = Path(path)
    if not os.path.lexists(p):
        return
    if p.is_symlink() or not p.is_file():
        raise OutputError(f"{p}: is not a regular file this program wrote; move it or choose another folder")
    if p.name not in written_here(p.parent):
        raise OutputError(f"{p}: a file this program did not write is there; move it or choose another folder")


def write_file_atomically(path: str | Path, write, suffix: str = "") -> None:
    """Write a file whole or not at all: `write(tmp)` fills a unique temporary name in the same folder, which
    then gets a new file's mode and is renamed onto `path`; on any failure the temporary file is removed."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.tmp-", suffix=suffix, dir=p.parent if str(p.parent) else ".")
    os.close(fd)
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp made it private; give it a new file's mode
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_written(path: str | Path) -> None:
    """Add `path` to its folder's record of the files this program wrote there (so a later run may replace it)."""
    p = Path(path)
    names = sorted(written_here(p.parent) | {p.name})
    doc = json.dumps({"written_by": "marlin-sim", "files": names}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{WRITTEN_FILES}.tmp-", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(doc)
        os.replace(tmp, p.parent / WRITTEN_FILES)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
