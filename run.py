#!/usr/bin/env python
"""Command line: parse flags -> Config -> `simcore.run.run` -> print. No simulation logic lives here.

Installed (`pip install -e .`), the command is `marlin-sim` (entry point `run:main`); in the repository
`python run.py` is the same command.

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
ends with one line and exit code 130, SIGTERM / SIGHUP likewise with 143 / 129. A run never replaces anything it did not write (see `simcore.results`).
The current folder is on the import path, as with `python -m`, so `--scheduler mypkg.mod:Class` finds a
package in the folder the command is run from.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import tempfile
import time
import traceback

from schedulers.options import build_config, run_parser  # noqa: F401  (build_config: also this module's API)
from simcore import interrupts
from simcore.errors import SimError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
SWEEPS = ("compare", "scale", "ablate", "pareto", "paper")


SUBCOMMANDS = (  # name -> what it does (the module that owns it parses its own flags: `SUBCOMMAND --help`)
    ("compare", "sweep: every scheduler x seeds at one D (paper Fig. 3, 4)"),
    ("scale", "sweep: schedulers x seeds x D values (Fig. 5)"),
    ("ablate", "sweep: MARLIN against each of its ablation switches (Fig. 6)"),
    ("pareto", "sweep: MARLIN-Balanced under several weight vectors"),
    ("paper", "all four sweeps into one folder"),
    ("report", "a sweep folder -> report.md, report.html, figures, CSV tables"),
    ("predictor-report", "accuracy and speed of the workload predictors (paper section 5.1)"),
    ("validate", "the fidelity ladder: node serving vs vidur, cohorts vs exact, evaluator vs engine"),
)


def _help_text() -> str:
    """`--help`: the run's flags, then every subcommand, then where each scheduler's own flags are listed."""
    p = run_parser()
    subs = "\n".join(f"  {name:<18} {what}" for name, what in SUBCOMMANDS)
    name = p.prog
    return (f"{p.format_help()}\nsubcommands ({name} SUBCOMMAND --help for its flags):\n{subs}\n\n"
            f"a scheduler's own parameters and the flags they declare: {name} --list-params --scheduler NAME\n")


def _table(s: dict) -> str:
    rows = [("scheduler", s["scheduler"]), ("datacenters", s["dcs"]), ("hours", s["hours"]),
            ("trace", f"{s['trace']} (load x{s['load_scale']:.4g})"),
            ("requests arrived / served / failed / unserved",
             f"{s['requests_arrived']} / {s['requests_served']} / {s['requests_failed']} / {s['requests_unserved']}"),
            ("drain after the horizon (h)", f"{s['drain_h']:.2f} ({s['requests_queued_at_horizon']} waiting then)"),
            ("TTFT mean / p50 / p99 (s)", f"{s['ttft_mean_s']:.4f} / {s['ttft_p50_s']:.4f} / {s['ttft_p99_s']:.4f}"
             if s["ttft_mean_s"] is not None else "n/a"),
            ("SLA violations (late or unserved)", f"{s['sla_violation_rate']:.4%} of arrived requests"),
            ("energy (kWh)", f"{s['energy_kwh']:.1f}"), ("cost (USD)", f"{s['cost_usd']:.2f}"),
            ("water (L)", f"{s['water_l']:.1f}"), ("carbon (kg CO2e)", f"{s['carbon_kg']:.1f}"),
            ("embodied carbon (kg CO2e)", f"{s['embodied_carbon_kg']:.1f}"),
            ("  of it attributable to serving", f"{s['embodied_attributable_kg']:.1f}"),
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
    """A second Ctrl-C (or SIGTERM, SIGHUP) while cleaning up must not interrupt the clean-up."""
    interrupts.ignore_stops()


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
    args = run_parser(add_help=False).parse_known_args(argv)[0]
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
    from simcore.run import run

    out = args.out or f"results/{cfg.scheduler.replace(':', '_').replace('/', '_')}-d{cfg.dcs}-s{cfg.seed}"
    result = run(cfg, create(cfg.scheduler, params), out, overwrite=args.overwrite, progress=not args.no_progress,
                 checkpoint_dir=args.checkpoint_dir, test_learning=args.test_learning or "online")
    try:
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        _emit(_table(result.summary))
        _emit(f"results: {out}/ ({', '.join(f for f in result.files if not f.startswith('.'))})")
    except KeyboardInterrupt as e:  # the results are complete: say so, do not claim otherwise
        _ignore_sigint()
        _line_break_on_terminal()
        print(f"{interrupts.word(e)}: the results are complete in {out}/", file=sys.stderr)
        return interrupts.exit_code(e)
    return 0


def main(argv: list[str] | None = None) -> int:
    command_line = argv is None  # the process ends right after: keep ignoring a late Ctrl-C
    argv = sys.argv[1:] if argv is None else list(argv)
    cwd = os.getcwd()
    if cwd not in sys.path:  # as `python -m` does: `--scheduler mypkg.mod:Class` from the current folder
        sys.path.insert(1, cwd)
    previous = signal.getsignal(signal.SIGINT)
    replaced = interrupts.termination_handlers()
    try:
        if argv[:1] == ["predictor-report"]:  # accuracy and speed of the workload predictors (section 5.1)
            from reports.predictor_report import main as report
            return report(argv[1:])
        if argv[:1] and argv[0] in SWEEPS:  # sweeps (paper section 6)
            from reports.experiments import main as sweep
            return sweep(argv)
        if argv[:1] == ["validate"]:  # the fidelity ladder (issue 19; docs/model.md 'Validation')
            from reports.validate import main as validate
            return validate(argv[1:])
        if argv[:1] == ["report"]:  # a sweep folder -> report.md / report.html
            from reports.report import main as study_report
            return study_report(argv[1:])
        if "-h" in argv or "--help" in argv:
            _emit(_help_text())
            return 0
        return _simulate(argv)
    except _StopOutput:
        return 0
    except SimError as e:
        _close_progress_bars()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as e:
        _ignore_sigint()
        _line_break_on_terminal()
        print(f"{interrupts.word(e)}: no results written", file=sys.stderr)
        return interrupts.exit_code(e)
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
        if not command_line:  # called in-process (tests, notebooks): give the signals back
            interrupts.restore({signal.SIGINT: previous, **replaced})


if __name__ == "__main__":
    code = main()
    _ignore_sigint()  # a Ctrl-C during interpreter shutdown would print a traceback from threading
    sys.exit(code)
