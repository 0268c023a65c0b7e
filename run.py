#!/usr/bin/env python
"""Command line: parse flags -> Config -> simulate -> results folder. No simulation logic lives here.

    python run.py --scheduler nearest --dcs 12 [--hours 24] [--seed 0] [--trace azure-code-2024]
                  [--start 2023-07-03] [--load-scale auto] [--weights 0.25,0.25,0.25,0.25] [--out DIR]
                  [--config FILE.json] [--set name=value ...]
    python run.py predictor-report [--dcs 8] [--seed 0] [--out FILE.json]

Any user error (bad flag, unknown scheduler, malformed trace, invalid plan) ends with one line on stderr and
exit code 2, and leaves no results folder behind.
"""
from __future__ import annotations

import argparse
import os
import sys

from simcore.errors import ConfigError, SimError

EXIT_USER_ERROR = 2


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
    p.add_argument("--weights", default=None, help="w1,w2,w3,w4 for TTFT, carbon, water, cost (sum 1)")
    p.add_argument("--cop", dest="cop_mode", default=None, choices=("annual", "hourly"), help="COP model")
    p.add_argument("--out", default=None, help="results folder (default results/<scheduler>-d<D>-s<seed>)")
    p.add_argument("--config", default=None, help="JSON file of parameter overrides (flat, by name)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one parameter")
    p.add_argument("--ablate", default=None, metavar="LIST",
                   help="MARLIN ablations, comma-separated: no-film,no-her,no-predictor,no-blend,no-sgd,no-veto,"
                        "no-capital")
    p.add_argument("--pretrain-days", dest="marlin_pretrain_days", type=int, default=None, metavar="N",
                   help="MARLIN: pre-train the agents on N other days of the bundled trace")
    p.add_argument("--checkpoint", dest="marlin_checkpoint", default=None, metavar="PATH",
                   help="MARLIN: torch checkpoint, loaded if it exists, else saved after pre-training")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-schedulers", action="store_true", help="list registered schedulers and exit")
    p.add_argument("--list-params", action="store_true", help="list every parameter with default and exit")
    return p


def build_config(args: argparse.Namespace):
    """Defaults <- --config file <- --set <- explicit flags."""
    from simcore.config import Config, from_dict, load_json

    values: dict = {}
    if args.config:
        values.update(load_json(args.config))
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE")
        values[name.strip()] = value.split(",") if "," in value else value
    flags = {"scheduler": args.scheduler, "dcs": args.dcs, "hours": args.hours, "seed": args.seed,
             "trace": args.trace, "start": args.start, "load_scale": args.load_scale, "cop_mode": args.cop_mode}
    values.update({k: v for k, v in flags.items() if v is not None})
    marlin = {"marlin_pretrain_days": args.marlin_pretrain_days, "marlin_checkpoint": args.marlin_checkpoint}
    values.update({k: v for k, v in marlin.items() if v is not None})
    if args.ablate is not None:
        values["marlin_ablate"] = tuple(x.strip() for x in args.ablate.split(",") if x.strip())
    if args.weights is not None:
        try:
            values["weights"] = tuple(float(x) for x in args.weights.split(","))
        except ValueError:
            raise ConfigError(f"--weights {args.weights!r}: expected four numbers separated by commas") from None
    return from_dict(values, where="parameters") if values else Config()


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["predictor-report"]:  # accuracy and speed of the workload predictors (section 5.1)
        from reports.predictor_report import main as report
        return report(argv[1:])
    if argv[:1] and argv[0] in ("compare", "scale", "ablate", "pareto", "paper"):  # sweeps (paper section 6)
        from reports.experiments import main as sweep
        return sweep(argv)
    if argv[:1] == ["report"]:  # a sweep folder -> report.md / report.html
        from reports.report import main as study_report
        return study_report(argv[1:])
    try:
        args = _parser().parse_args(argv)
        if args.list_schedulers:
            from schedulers.registry import available
            for name, target in available().items():
                print(f"{name:<20} {target}")
            return 0
        if args.list_params:
            from simcore.config import help_table
            for name, default, text in help_table():
                print(f"{name:<26} {str(default):<28} {text}")
            return 0
        cfg = build_config(args)
        from schedulers.registry import create
        from simcore.engine import simulate
        from simcore.results import write_results

        sched = create(cfg.scheduler)
        out = args.out or f"results/{cfg.scheduler.replace(':', '_').replace('/', '_')}-d{cfg.dcs}-s{cfg.seed}"
        rec = simulate(cfg, sched, progress=not args.no_progress)
        summ = write_results(rec, out)
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: no results written", file=sys.stderr)
        return 130
    try:
        print(_table(summ))
        print(f"results: {out}/ (summary.json, epochs.csv, epochs.parquet, config.json)")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `| head`: the results are written; silence the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
