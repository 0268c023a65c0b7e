"""Predictor accuracy and speed on the bundled trace (SPEC 3, paper section 5.1): EWMA regression vs the MLP baseline.

This module owns `predictor_report(cfg)` and its command line
`python -m reports.predictor_report [--dcs 8] [--seed 0] [--out FILE.json]`. Unlike the other reports it reads no
result folder: it loads the bundled Azure 2024 code trace itself (`traces.loader.load_workload`, the run's
"trace" stream, `load_scale` as configured) and counts requests per origin per `epoch_s` epoch.

Protocol (stated in the output too):
- test day `cfg.trace_day` (default 2024-05-13), horizon `cfg.hours`; training days for the MLP: every other
  day of the bundled week 2024-05-10..16 whose horizon fits in the bundle (by default 05-10, 11, 12, 14, 15,
  16). The MLP trains on each training day's per-origin series and its aggregate (sum over origins) series.
  With `load_scale auto` each day is scaled to its own peak; both predictors are scale-free per window
  (the MLP normalizes by the window mean, the regression is linear), so this does not favour either.
- one step ahead, all origins at once: before epoch e each predictor forecasts e from the true counts of the
  epochs before it, then is fed e's true counts. Epochs e < tw (not a full window of history) are not scored.
- accuracy = 1 - MAPE, MAPE = mean of |forecast - truth| / truth over every (series, scored epoch) with
  truth > 0 (epochs with zero truth are left out and counted). "per origin": the `dcs` origin series;
  "aggregate": the one series of their sum, forecast by separate predictor instances.
- a last-value (persistence) forecast is scored too, as a reference point only.
- speed: wall time of predict() with a full window of history on the per-origin vector (`dcs` elements),
  median over repeats of many calls; reported per call and per series element (per call / dcs).

It writes nothing unless `--out` is given (then one JSON file, atomically: temp file + rename).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simcore.config import Config
from simcore.epochs import arrivals
from simcore.errors import ConfigError, SimError
from simcore.params import ANY_LENGTH, Parameters, param
from simcore.predictor import EwmaRegression, MlpPredictor
from simcore.rng import stream
from traces.loader import AZURE_2024, SECONDS_PER_DAY, bundled_counts, load_workload

@dataclass(frozen=True)
class MlpBaseline(Parameters):
    """The MLP baseline predictor the report compares the EWMA regression with (`simcore.predictor.MlpPredictor`)."""

    predictor_mlp_hidden: tuple = param((32, 32), "MLP baseline predictor: hidden layer widths",
                                        lo=1, length=ANY_LENGTH)
    predictor_mlp_steps: int = param(400, "MLP baseline predictor: Adam steps of the fit", lo=1)
    predictor_mlp_lr: float = param(3e-3, "MLP baseline predictor: Adam learning rate", lo=0, lo_open=True)
    predictor_mlp_batch: int = param(256, "MLP baseline predictor: windows per minibatch", lo=1)


TIMING_CALLS = 2000  # predict() calls per timing repeat
TIMING_REPEATS = 5


class _LastValue:
    """Persistence forecast (next epoch = this epoch), the reference row of the report."""

    def __init__(self) -> None:
        self.last = None

    def update(self, counts) -> None:
        self.last = np.asarray(counts, dtype=float)

    def predict(self):
        return None if self.last is None else self.last.copy()


def origin_counts(cfg: Config, day: str) -> np.ndarray:
    """Real requests per (epoch, origin) of bundled day `day`, as the engine feeds its predictor
    (`simcore.epochs.arrivals`: failed requests left out), shape (cfg.epochs, cfg.dcs)."""
    c = cfg.replace(trace_day=day)
    return arrivals(c, load_workload(c, stream(c.seed, "trace")))[1].sum(axis=1)


def one_step_forecasts(predictor, series: np.ndarray) -> np.ndarray:
    """Forecast of each epoch of series [epochs, n] from the epochs before it (NaN where predict() gives None)."""
    out = np.full(series.shape, np.nan)
    for e in range(len(series)):
        p = predictor.predict()
        if p is not None:
            out[e] = p
        predictor.update(series[e])
    return out


def score(forecast: np.ndarray, truth: np.ndarray, first: int) -> dict:
    """1 - MAPE over epochs >= first and series with truth > 0."""
    f, t = forecast[first:], truth[first:].astype(float)
    nz = t > 0
    ape = np.abs(f[nz] - t[nz]) / t[nz]
    mape = float(ape.mean()) if ape.size else float("nan")
    return {"accuracy": 1.0 - mape, "mape": mape, "points": int(nz.sum()), "zero_truth_skipped": int((~nz).sum())}


def time_predict(predictor, calls: int = TIMING_CALLS, repeats: int = TIMING_REPEATS) -> float:
    """Median over `repeats` of the mean seconds per predict() call."""
    per = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            predictor.predict()
        per.append((time.perf_counter() - t0) / calls)
    return float(np.median(per))


def predictor_report(cfg: Config, mlp: MlpBaseline = MlpBaseline()) -> dict:
    """Accuracy (1 - MAPE) and microseconds per prediction of EwmaRegression and MlpPredictor (module docstring)."""
    t_start = time.perf_counter()
    if cfg.trace != AZURE_2024:
        raise ConfigError(f"predictor report: runs on the bundled {AZURE_2024} trace, not {cfg.trace!r}")
    days = bundled_counts()[0]
    if cfg.trace_day not in days:
        raise ConfigError(f"--trace-day {cfg.trace_day}: the bundled {AZURE_2024} trace holds {days[0]}..{days[-1]}")
    n_days = -(-int(np.ceil(cfg.horizon_s)) // SECONDS_PER_DAY)
    train_days = [d for i, d in enumerate(days) if d != cfg.trace_day and i + n_days <= len(days)]
    tw, alpha = cfg.predictor_window_epochs, cfg.predictor_ewma_alpha
    if cfg.epochs <= tw:
        raise ConfigError(f"predictor report: --hours {cfg.hours:g} gives {cfg.epochs} epochs; need more than "
                          f"tw = {tw} to score any forecast")

    # Train the baseline on the other days (per-origin series and their aggregate).
    train = []
    for d in train_days:
        c = origin_counts(cfg, d)
        train += [c, c.sum(axis=1)]
    t0 = time.perf_counter()
    mlp_proto = MlpPredictor(tw, seed=cfg.seed, hidden=mlp.predictor_mlp_hidden, steps=mlp.predictor_mlp_steps,
                             lr=mlp.predictor_mlp_lr, batch=mlp.predictor_mlp_batch).fit(train)
    fit_s = time.perf_counter() - t0

    def fresh_mlp() -> MlpPredictor:
        m = MlpPredictor(tw, seed=cfg.seed, hidden=mlp_proto.hidden)
        m.layers = mlp_proto.layers  # share the trained weights; each instance keeps its own history
        return m

    makers = {"ewma": lambda: EwmaRegression(tw, alpha), "mlp": fresh_mlp, "last_value": _LastValue}
    test = origin_counts(cfg, cfg.trace_day)
    agg = test.sum(axis=1, keepdims=True)
    per_origin = {k: score(one_step_forecasts(mk(), test), test, tw) for k, mk in makers.items()}
    aggregate = {k: score(one_step_forecasts(mk(), agg), agg, tw) for k, mk in makers.items()}

    speed = {}
    for k in ("ewma", "mlp"):
        p = makers[k]()
        for e in range(tw):
            p.update(test[e])
        s = time_predict(p)
        speed[k] = {"us_per_call": s * 1e6, "us_per_element": s * 1e6 / cfg.dcs, "elements_per_call": cfg.dcs}

    return {
        "trace": AZURE_2024, "test_day": cfg.trace_day, "train_days": train_days, "dcs": cfg.dcs,
        "seed": cfg.seed, "epoch_s": cfg.epoch_s, "epochs": cfg.epochs, "tw": tw, "alpha": alpha,
        "load_scale": cfg.load_scale,
        "scored_epochs": [tw, cfg.epochs - 1],
        "protocol": (f"one-step-ahead on {cfg.trace_day}, true counts fed as they arrive; epochs 0..{tw - 1} "
                     f"(no full tw-window of history) not scored; accuracy = 1 - MAPE over (series, epoch) with "
                     f"truth > 0; MLP trained on {', '.join(train_days)} (per-origin and aggregate series)"),
        "per_origin": per_origin,
        "aggregate": aggregate,
        "speed": speed,
        "speed_note": (f"median over {TIMING_REPEATS} repeats of {TIMING_CALLS} predict() calls on the per-origin "
                       f"vector ({cfg.dcs} elements) with a full window; MLP inference runs in numpy"),
        "mlp": {"hidden": list(mlp_proto.hidden), "steps": mlp_proto.steps, "lr": mlp_proto.lr,
                "batch": mlp_proto.batch, "train_windows": mlp_proto.train_windows,
                "train_l1_normalized": mlp_proto.final_loss, "fit_s": fit_s},
        "paper_claim": "over 90 % accuracy, ~100 us per prediction, +19.01 % accuracy over the NN baseline",
        "wall_s": time.perf_counter() - t_start,
    }


def format_table(r: dict) -> str:
    """The report as a small text table."""
    lines = [f"Predictor report: {r['trace']}, test day {r['test_day']}, {r['dcs']} origins, "
             f"{r['epoch_s'] / 60:g}-min epochs, tw = {r['tw']}, alpha = {r['alpha']}, seed {r['seed']}",
             f"MLP trained on {', '.join(r['train_days'])} ({r['mlp']['train_windows']} windows, "
             f"{r['mlp']['fit_s']:.2f} s); scored epochs {r['scored_epochs'][0]}..{r['scored_epochs'][1]}, "
             "accuracy = 1 - MAPE over nonzero truth", "",
             f"{'predictor':<22}{'acc/origin':>11}{'acc/aggregate':>15}{'us/call':>10}{'us/element':>12}"]
    names = {"ewma": "EWMA regression", "mlp": "MLP baseline", "last_value": "last value (reference)"}
    for k, name in names.items():
        sp = r["speed"].get(k)
        t = f"{sp['us_per_call']:>10.1f}{sp['us_per_element']:>12.2f}" if sp else f"{'-':>10}{'-':>12}"
        lines.append(f"{name:<22}{r['per_origin'][k]['accuracy'] * 100:>10.2f}%"
                     f"{r['aggregate'][k]['accuracy'] * 100:>14.2f}%{t}")
    skipped = r["per_origin"]["ewma"]["zero_truth_skipped"]
    lines += ["", f"{r['per_origin']['ewma']['points']} per-origin points scored ({skipped} with zero truth left out); "
              f"paper: {r['paper_claim']}; report took {r['wall_s']:.1f} s"]
    return "\n".join(lines)


WRITTEN_BY = "marlin-sim predictor-report"  # the mark of a report file this command wrote (it may replace it)


def check_out_file(out: str | Path) -> None:
    """Refuse (ConfigError) an --out this command may not write: a missing folder, or anything already there
    that is not a report it wrote (a user's file, a folder, a link, a pipe)."""
    p = Path(out)
    if not p.resolve().parent.is_dir():
        raise ConfigError(f"--out {out}: folder does not exist")
    if not os.path.lexists(p):
        return
    mine = False
    if p.is_file() and not p.is_symlink():
        try:
            mine = json.loads(p.read_text()).get("written_by") == WRITTEN_BY
        except (OSError, ValueError, AttributeError):
            mine = False
    if not mine:
        raise ConfigError(f"--out {out}: a file or folder this command did not write is there; choose a new name")


def write_json_atomic(obj: dict, path: str | Path) -> None:
    """Write obj as JSON to path via a temp file in the same folder and a rename."""
    from simcore.results import write_file_atomically

    write_file_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2) + "\n"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="marlin-sim predictor-report",
                                 description="EWMA-regression predictor vs MLP baseline on the bundled trace")
    ap.add_argument("--dcs", type=int, default=Config.dcs, help="origin regions (4..12)")
    ap.add_argument("--seed", type=int, default=Config.seed, help="seed of the trace and MLP streams")
    ap.add_argument("--out", default=None, help="also write the report as JSON to this file (a new file, or one "
                    "this command wrote)")
    args = ap.parse_args(argv)
    try:
        if args.out is not None:
            check_out_file(args.out)
        r = predictor_report(Config(dcs=args.dcs, seed=args.seed))
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(r))
    if args.out is not None:
        check_out_file(args.out)  # again: the file may have appeared while the report ran
        write_json_atomic({"written_by": WRITTEN_BY, **r}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
