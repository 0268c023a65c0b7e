#!/usr/bin/env python
"""Command line: parse flags -> Config -> simulate -> results folder. No simulation logic lives here.

    python run.py --scheduler nearest --dcs 12 [--hours 24] [--seed 0] [--trace azure-code-2024]
                  [--start 2023-07-03] [--load-scale auto] [--weights 0.25,0.25,0.25,0.25] [--out DIR]
                  [--config FILE.json] [--set name=value ...]
    python run.py predictor-report [--dcs 8] [--seed 0] [--out FILE.json]
    python run.py compare|scale|ablate|pareto|paper [--schedulers a,b] [--seeds 5] [--out DIR] [--workers N]
    python run.py report DIR
    python run.py validate [--quick] [--out validation.csv]

Any user error (bad flag, unknown scheduler, malformed trace, invalid plan, a plug-in scheduler that raises,
an unusable --out) ends with one line on stderr and exit code 2, and leaves no results folder behind; an
unexpected internal error ends with one line naming a crash log that holds the traceback (exit code 1); Ctrl-C
ends with one line and exit code 130. A run never replaces anything it did not write (see `simcore.results`).
The current folder is on the import path, as with `python -m`, so `--scheduler mypkg.mod:Class` finds a
package in the folder the command is run from.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import time
import traceback

from simcore.errors import ConfigError, SimError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="run.py", description="MARLIN geo-distributed LLM inference simulator")
    p.add_argument("--scheduler", default=None, help="scheduler name (see --list-schedulers) or pkg.mod:Class")
    p.add_argument("--dcs", type=int, default=None, help="number of datacenters, 4..12 (default 8)")
    p.add_argument("--hours", type=float, default=None, help="simulated hours (default 24)")
    p.add_argument("--seed", type=int, default=None, help="the one seed (default 0)")
    p.add_argument("--trace", default=None, help="azure-code-2024 (default), burstgpt-profile, or a CSV path")
    p.add_argument("--start", default=None, help="UTC date of epoch 0 for grid signals (default 2023-07-03)")
    p.add_argument("--load-scale", default=None, help="'auto' (default) or an arrival-rate multiplier")
    p.add_argument("--cohort-size", default=None, help="real requests per simulated request: 'auto' (default) or "
                   "a whole number; 1 = exact per-request simulation")
    p.add_argument("--weights", default=None, help="w1,w2,w3,w4 for TTFT, carbon, water, cost (sum 1)")
    p.add_argument("--cop", dest="cop_mode", default=None, choices=("annual", "hourly"), help="COP model")
    p.add_argument("--out", default=None, help="results folder (default results/<scheduler>-d<D>-s<seed>); must be "
                   "new, empty, or an earlier results folder (with --overwrite)")
    p.add_argument("--no-drain", dest="drain", action="store_false", default=None,
                   help="stop at the horizon: no drain of the backlog (docs/model.md 'Drain')")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier results folder at --out")
    p.add_argument("--config", default=None, help="JSON file of parameters: the world's by name, the scheduler's "
                   "by name or in a section named after the scheduler (as config.json records them)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set one parameter, the world's or the scheduler's (see --list-params)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-schedulers", action="store_true", help="list registered schedulers and exit")
    p.add_argument("--list-params", action="store_true", help="list the world's parameters with their defaults "
                   "and exit; with --scheduler NAME, that scheduler's")
    return p


def _scheduler_parser(cls: type) -> argparse.ArgumentParser:
    """The flags a scheduler's parameters declare (`param(..., flag="--ablate")`), read as text."""
    p = _Parser(prog="run.py", add_help=False)
    for f in dataclasses.fields(cls.Params):
        flag = f.metadata["allowed"].flag
        if flag:
            p.add_argument(flag, dest=f.name, default=None, metavar="VALUE")
    return p


def build_config(argv: list[str]):
    """The command line -> (its flags, the world's Config, the scheduler's parameter values by name).

    Defaults <- --config file <- --set <- explicit flags. A name the world's Config has sets the world; any other
    name is the scheduler's (its `Params` refuses names it does not have). A --config section named after a
    scheduler holds that scheduler's parameters (one file may hold several; a run reads its own scheduler's).
    Flags the scheduler's parameters declare (MARLIN's --ablate) are read once the scheduler is known.
    """
    from schedulers.registry import resolve
    from simcore.config import Config, load_json

    args, rest = _parser().parse_known_args(argv)
    values: dict = {}
    sections: dict = {}
    if args.config:
        for name, value in load_json(args.config).items():
            (sections if isinstance(value, dict) else values)[name] = value
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE")
        values[name.strip()] = value  # parsed by the parameter's type: tuples from comma-separated text
    flags = {"scheduler": args.scheduler, "dcs": args.dcs, "hours": args.hours, "seed": args.seed,
             "trace": args.trace, "start": args.start, "load_scale": args.load_scale, "cop_mode": args.cop_mode,
             "cohort_size": args.cohort_size, "weights": args.weights, "drain": args.drain}
    values.update({k: v for k, v in flags.items() if v is not None})
    world = set(Config.names())
    cfg = Config.from_dict({k: v for k, v in values.items() if k in world}, where="parameters")
    for name in sections:  # a section must name a scheduler (a typo is refused); a run reads its scheduler's
        resolve(name)
    own = {**sections.get(cfg.scheduler, {}), **{k: v for k, v in values.items() if k not in world}}
    if rest:
        known, unknown = _scheduler_parser(resolve(cfg.scheduler)).parse_known_args(rest)
        if unknown:
            raise ConfigError(f"unrecognized arguments: {' '.join(unknown)}")
        own.update({k: v for k, v in vars(known).items() if v is not None})
    return args, cfg, own


def _table(s: dict) -> str:
    rows = [("scheduler", s["scheduler"]), ("datacenters", s["dcs"]), ("hours", s["hours"]),
            ("trace", f"{s['trace']} (load x{s['load_scale']:.4g})"),
            ("requests arrived / served / failed / queued",
             f"{s['requests_arrived']} / {s['requests_served']} / {s['requests_failed']} / {s['requests_queued_at_end']}"),
            ("TTFT mean / p50 / p99 (s)", f"{s['ttft_mean_s']:.4f} / {s['ttft_p50_s']:.4f} / {s['ttft_p99_s']:.4f}"
             if s["ttft_mean_s"] is not None else "n/a"),
            ("SLA violation rate", f"{s['sla_violation_rate']:.4%}"),
            ("energy (kWh)", f"{s['energy_kwh']:.1f}"), ("cost (USD)", f"{s['cost_usd']:.2f}"),
            ("water (L)", f"{s['water_l']:.1f}"), ("carbon (kg CO2e)", f"{s['carbon_kg']:.1f}"),
            ("wall time (s)", f"{s['wall_s']:.1f}")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _emit(text: str) -> None:
    """Print to stdout; a reader that stops early (`| head`) is not an error."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        raise _StopOutput from None


class _StopOutput(Exception):
    """stdout was closed by its reader."""


def _close_progress_bars() -> bool:
    """End a progress bar's open line, so the next message starts on its own line; whether there was one."""
    tqdm_mod = sys.modules.get("tqdm")
    bars = list(getattr(getattr(tqdm_mod, "tqdm", None), "_instances", []) or [])
    for bar in bars:
        try:
            bar.close()
        except Exception:  # a bar that cannot redraw: the message below starts with a line break instead
            sys.stderr.write("\n")
    return bool(bars)


def _line_break_on_terminal() -> None:
    """On a terminal, start the next message on a new line (output may have been cut mid-line)."""
    if not _close_progress_bars() and sys.stderr.isatty():
        sys.stderr.write("\n")


def _ignore_sigint() -> None:
    """A second Ctrl-C while cleaning up must not interrupt the clean-up."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to set
        pass


def _crash_log(argv: list[str]) -> str:
    """Write the current exception's traceback to a file in the system temp folder; return its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, path = tempfile.mkstemp(prefix=f"marlin-crash-{stamp}-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"python run.py {' '.join(argv)}\n\n{traceback.format_exc()}")
    return path


def _list_params(scheduler: str | None) -> None:
    """The world's parameters, or with a scheduler named, its own: name, default, help (and the flag that sets it)."""
    from schedulers.registry import resolve
    from simcore.config import Config

    table = resolve(scheduler).Params if scheduler else Config
    flags = {f.name: f.metadata["allowed"].flag for f in dataclasses.fields(table)}
    for name, default, text in table.help_table():
        _emit(f"{name:<26} {str(default):<28} {text}" + (f" ({flags[name]})" if flags[name] else ""))
    if scheduler and not flags:
        _emit(f"scheduler {scheduler} has no parameters")


def _simulate(argv: list[str]) -> int:
    args = _parser().parse_known_args(argv)[0]
    if args.list_schedulers:
        from schedulers.registry import available
        for name, target in available().items():
            _emit(f"{name:<20} {target}")
        return 0
    if args.list_params:
        _list_params(args.scheduler)
        return 0
    args, cfg, params = build_config(argv)
    from schedulers.registry import create
    from simcore.engine import simulate
    from simcore.results import Staging, write_results
    from simcore.rng import stream
    from traces.loader import load_workload

    out = args.out or f"results/{cfg.scheduler.replace(':', '_').replace('/', '_')}-d{cfg.dcs}-s{cfg.seed}"
    sched = create(cfg.scheduler, params)
    stage = Staging(out, args.overwrite)  # before the run: refuse a bad --out now, not after hours
    try:
        wl = load_workload(cfg, stream(cfg.seed, "trace"))
        rec = simulate(cfg, sched, workload=wl, progress=not args.no_progress)
        summ = write_results(rec, out, extra={"requests_over_context": wl.over_context}, staging=stage)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            _ignore_sigint()
        stage.abandon()
        raise
    try:
        _emit(_table(summ))
        _emit(f"results: {out}/ (summary.json, epochs.csv, epochs.parquet, config.json)")
    except KeyboardInterrupt:  # the results are complete: say so, do not claim otherwise
        _ignore_sigint()
        _line_break_on_terminal()
        print(f"interrupted: the results are complete in {out}/", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def main(argv: list[str] | None = None) -> int:
    command_line = argv is None  # the process ends right after: keep ignoring a late Ctrl-C
    argv = sys.argv[1:] if argv is None else list(argv)
    cwd = os.getcwd()
    if cwd not in sys.path:  # as `python -m` does: `--scheduler mypkg.mod:Class` from the current folder
        sys.path.insert(1, cwd)
    previous = signal.getsignal(signal.SIGINT)
    try:
        if argv[:1] == ["predictor-report"]:  # accuracy and speed of the workload predictors (section 5.1)
            from reports.predictor_report import main as report
            return report(argv[1:])
        if argv[:1] and argv[0] in ("compare", "scale", "ablate", "pareto", "paper"):  # sweeps (paper section 6)
            from reports.experiments import main as sweep
            return sweep(argv)
        if argv[:1] == ["validate"]:  # the fidelity ladder (issue 19; docs/model.md 'Validation')
            from reports.validate import main as validate
            return validate(argv[1:])
        if argv[:1] == ["report"]:  # a sweep folder -> report.md / report.html
            from reports.report import main as study_report
            return study_report(argv[1:])
        return _simulate(argv)
    except _StopOutput:
        return 0
    except SimError as e:
        _close_progress_bars()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _ignore_sigint()
        _line_break_on_terminal()
        print("interrupted: no results written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        _close_progress_bars()
        try:
            where = f"traceback in {_crash_log(argv)}"
        except OSError as log_error:
            where = f"no crash log ({_one_line(log_error)})"
        print(f"internal error (a bug, please report it): {type(e).__name__}: {_one_line(e)}; {where}",
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    finally:
        if not command_line:  # called in-process (tests, notebooks): give Ctrl-C back
            try:
                signal.signal(signal.SIGINT, previous)
            except (ValueError, TypeError):
                pass


if __name__ == "__main__":
    code = main()
    _ignore_sigint()  # a Ctrl-C during interpreter shutdown would print a traceback from threading
    sys.exit(code)
