"""One run's options: the flags of a run -> the world's `Config` and the chosen scheduler's parameter values.

The command line (`run.py`) and the sweeps (`reports.experiments`) both read a run's flags here, so a sweep's
run is configured exactly as the same flags typed at the command line; neither imports the other. Precedence:
defaults <- `--config` file <- `--set` <- explicit flags. A name the world's Config has sets the world; any other
name is the scheduler's (its `Params` refuses names it does not have). A `--config` section named after a
scheduler holds that scheduler's parameters (one file may hold several; a run reads its own scheduler's). Flags a
scheduler's parameters declare (MARLIN's `--ablate`) are read once the scheduler is known.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from simcore.errors import ConfigError
from simcore.training import TEST_LEARNING, check_test_learning


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (ConfigError), not usage + message."""

    def error(self, message: str) -> None:
        raise ConfigError(message)


def prog() -> str:
    """The command's name as the user typed it: `marlin-sim` (installed) or `run.py`."""
    name = os.path.basename(sys.argv[0] or "")
    return "marlin-sim" if name.startswith("marlin-sim") else "run.py"


def command() -> str:
    """The command that works from the current folder, to print in hints: `marlin-sim` where it was used,
    `python run.py` where run.py is in this folder, else `python -m run`."""
    if prog() == "marlin-sim":
        return "marlin-sim"
    return "python run.py" if os.path.isfile("run.py") else "python -m run"


def run_parser(add_help: bool = True, prog_name: str | None = None) -> argparse.ArgumentParser:
    """The flags of one run (`run.py --scheduler ...`)."""
    p = Parser(prog=prog_name or prog(), add_help=add_help,
               description="MARLIN geo-distributed LLM inference simulator: one run, or a subcommand")
    p.add_argument("--scheduler", default=None, help="scheduler name (see --list-schedulers) or pkg.mod:Class")
    p.add_argument("--dcs", type=int, default=None, help="number of datacenters, 4..12 (default 8)")
    p.add_argument("--hours", type=float, default=None, help="simulated hours (default 24)")
    p.add_argument("--seed", type=int, default=None, help="the one seed (default 0)")
    p.add_argument("--trace", default=None, help="azure-code-2024 (default), burstgpt-profile, or a CSV path")
    p.add_argument("--start", default=None, help="UTC date of epoch 0 for grid signals (default 2023-07-03)")
    p.add_argument("--load-scale", default=None, help="'auto' (default) or an arrival-rate multiplier")
    p.add_argument("--fleet", default=None, help="'fixed' (default: nodes_per_dc) or 'auto': nodes per datacenter "
                   "sized to the trace's busiest epoch")
    p.add_argument("--cohort-size", default=None, help="real requests per simulated request: 'auto' (default) or "
                   "a whole number; 1 = exact per-request simulation")
    p.add_argument("--weights", default=None, help="w1,w2,w3,w4 for TTFT, carbon, water, cost (sum 1)")
    p.add_argument("--cop", dest="cop_mode", default=None, choices=("annual", "hourly"), help="COP model")
    p.add_argument("--out", default=None, help="results folder (default results/<scheduler>-d<D>-s<seed>); must be "
                   "new, empty, or an earlier results folder (with --overwrite)")
    p.add_argument("--no-drain", dest="drain", action="store_false", default=None,
                   help="stop at the horizon: no drain of the backlog (docs/model.md 'Drain')")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier results folder at --out")
    p.add_argument("--train-days", dest="train_days", default=None,
                   help="the trained protocol: pre-train a learner on this many other days of the bundled week "
                   "(default 0: the paper's online protocol; simcore.training)")
    p.add_argument("--test-learning", dest="test_learning", default=None, choices=TEST_LEARNING,
                   help="with --train-days: the test day goes on learning (online, default) or plays frozen "
                   "(simcore.training)")
    p.add_argument("--checkpoint-dir", default=None, help="cache of pre-trained states: reused when the scheduler, "
                   "its parameters, the seed, the days and D match; an interrupted training resumes from it")
    p.add_argument("--config", default=None, help="JSON file of parameters: the world's by name, the scheduler's "
                   "by name or in a section named after the scheduler (as config.json records them)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set one parameter, the world's or the scheduler's (see --list-params)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-schedulers", action="store_true", help="list registered schedulers and exit")
    p.add_argument("--list-params", action="store_true", help="list the world's parameters with their defaults "
                   "and exit; with --scheduler NAME, that scheduler's (and the flags it declares)")
    return p


def scheduler_parser(cls: type) -> argparse.ArgumentParser:
    """The flags a scheduler's parameters declare (`param(..., flag="--ablate")`), read as text."""
    p = Parser(prog=prog(), add_help=False)
    for f in dataclasses.fields(cls.Params):
        flag = f.metadata["allowed"].flag
        if flag:
            p.add_argument(flag, dest=f.name, default=None, metavar="VALUE")
    return p


def build_config(argv: list[str]):
    """The command line -> (its flags, the world's Config, the scheduler's parameter values by name)."""
    from schedulers.registry import resolve
    from simcore.config import Config, load_json

    args, rest = run_parser(add_help=False).parse_known_args(argv)
    values: dict = {}
    sections: dict = {}
    shadowed: list = []  # (name, value) set earlier and overridden later: still checked
    if args.config:
        for name, value in load_json(args.config).items():
            (sections if isinstance(value, dict) else values)[name] = value
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE")
        if name.strip() in values:
            shadowed.append((name.strip(), values[name.strip()]))
        values[name.strip()] = value  # parsed by the parameter's type: tuples from comma-separated text
    flags = {"scheduler": args.scheduler, "dcs": args.dcs, "hours": args.hours, "seed": args.seed,
             "trace": args.trace, "start": args.start, "load_scale": args.load_scale, "cop_mode": args.cop_mode,
             "cohort_size": args.cohort_size, "weights": args.weights, "fleet": args.fleet,
             "drain": args.drain, "train_days": args.train_days}
    for k, v in flags.items():
        if v is not None:
            if k in values:
                shadowed.append((k, values[k]))
            values[k] = v
    world = set(Config.names())
    cfg = Config.from_dict({k: v for k, v in values.items() if k in world}, where="parameters")
    if args.test_learning is not None:  # refused before anything runs (a sweep: before its first run)
        check_test_learning(args.test_learning, cfg.train_days)
    sections.pop("training", None)  # config.json's record of a run's pre-training, not a parameter
    for name in sections:  # a section must name a scheduler (a typo is refused); a run reads its scheduler's
        resolve(name)
    for name, value in shadowed:
        if name in world:
            cfg.check_value(name, value)
    section = sections.get(cfg.scheduler, {})
    own = {**section, **{k: v for k, v in values.items() if k not in world}}
    shadowed += [(k, section[k]) for k in section if k in values]
    if rest:
        known, unknown = scheduler_parser(resolve(cfg.scheduler)).parse_known_args(rest)
        if unknown:
            raise ConfigError(f"unrecognized arguments: {' '.join(unknown)}")
        given = {k: v for k, v in vars(known).items() if v is not None}
        shadowed += [(k, own[k]) for k in given if k in own]
        own.update(given)
    late = [(k, v) for k, v in shadowed if k not in world]
    if late:  # the scheduler's overridden values, checked against its parameters as they will be built
        base = resolve(cfg.scheduler).Params()
        for name, value in late:
            base.check_value(name, value)
    return args, cfg, own
