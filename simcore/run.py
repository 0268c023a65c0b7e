"""One run, one library call: a configured world and a scheduler in, a results folder out.

    from schedulers.options import build_config      # or build the Config and parameters yourself
    from schedulers.registry import create
    from simcore.run import run

    _, cfg, params = build_config(["--scheduler", "nearest", "--dcs", "4", "--hours", "2"])
    result = run(cfg, create(cfg.scheduler, params), "results/x")
    result.out, result.summary["carbon_kg"], result.notes

`run(cfg, scheduler, out, overwrite=False, progress=False) -> RunOutput` is the only way a run is made: the
command line (`run.py`), the sweeps (`reports.experiments`, one call per sweep member) and the RL environment
call it, so each writes the same files from the same code path (the same seed gives byte-identical files; only
`wall_s` differs). The scheduler is built by the caller (`schedulers.registry.create`; simcore knows no
scheduler). In order:

1. `simcore.results.Staging(out, overwrite)`: the results folder is checked and its temporary sibling made
   before any work, so a bad `--out` fails at once (a run never replaces what it did not write);
2. with `cfg.train_days` > 0, the training days (`simcore.training.pretrain`: the scheduler plays other days of
   the bundled week first, or loads its cached trained state from `checkpoint_dir`);
3. the workload (`traces.loader.load_workload`), sized by `simcore.sizing.size_world` (load factor and fleet;
   the Config the engine gets carries the fleet the sizing chose);
4. the simulation (`simcore.engine.simulate`);
5. the result files (`simcore.results.write_results`: summary.json, epochs.csv/.parquet, config.json, the
   scheduler's extra tables) and `timeline.png` (`reports.timeline`, drawn from those files), published
   together; anything raised on the way (an error, Ctrl-C, a termination signal turned into an exception)
   removes the temporary folder and the parents the run made, and is raised again.

Errors the user can cause are `simcore.errors.SimError` (one line); anything else is a bug.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simcore import interrupts
from simcore.errors import SimError  # noqa: F401  (documented above: what run() raises for the user's errors)


@dataclass
class RunOutput:
    """What a run made.

    :param out: the results folder
    :param summary: summary.json's content
    :param notes: one-line remarks on how the trace and the world were sized (printed by `run.py`)
    :param files: the files written into `out`, by name
    """

    out: Path
    summary: dict
    notes: list = field(default_factory=list)
    files: list = field(default_factory=list)


def run(cfg, scheduler, out: str | Path, *, overwrite: bool = False, progress: bool = False,
        checkpoint_dir: str | Path | None = None, test_learning: str = "online") -> RunOutput:
    """Simulate `cfg` with `scheduler` and write its results folder `out` (module docstring: the steps).

    :param cfg: the world (`simcore.config.Config`)
    :param scheduler: a `simcore.interface.Scheduler` built for this run (`schedulers.registry.create`)
    :param out: the results folder: new, empty, or an earlier results folder (replaced only with `overwrite`)
    :param overwrite: replace an earlier results folder at `out`
    :param progress: show a progress bar
    :param checkpoint_dir: cache of pre-trained states (`cfg.train_days` > 0: `simcore.training.pretrain`)
    :param test_learning: after pre-training, the test day learns 'online' or plays 'frozen' (`simcore.training`)
    :raises SimError: bad input, an unusable `out`, or a scheduler that fails (nothing is left behind)
    """
    from simcore.results import Staging

    stage = Staging(out, overwrite)  # before the run: refuse a bad --out now, not after hours
    try:
        # overflow in parameters far out of range is refused with the parameter named (finite totals, a request
        # served within an epoch), not printed as numpy warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _run(cfg, scheduler, out, stage, progress, checkpoint_dir, test_learning)
    except BaseException:
        with interrupts.held():
            stage.abandon()
        raise


def _run(cfg, scheduler, out, stage, progress: bool, checkpoint_dir=None,
         test_learning: str = "online") -> RunOutput:
    from simcore.engine import simulate
    from simcore.results import write_results
    from simcore.rng import stream
    from simcore.training import pretrain
    from traces.loader import load_workload

    # the trained protocol: the learner first plays its training days (never the test day), or loads them cached
    training = pretrain(cfg, scheduler, cfg.train_days, checkpoint_dir, progress=progress,
                        test_learning=test_learning)
    wl = load_workload(cfg, stream(cfg.seed, "trace"))
    notes = [n for n in ((wl.sizing.note if wl.sizing is not None else ""), *wl.notes) if n]
    world = wl.sizing.apply(cfg) if wl.sizing is not None else cfg
    rec = simulate(world, scheduler, workload=wl, progress=progress)
    rec.training = training
    summ = write_results(rec, out, extra={"requests_over_context": wl.over_context}, staging=stage,
                         figures=_timeline)
    return RunOutput(Path(out), summ, notes, sorted(p.name for p in Path(out).iterdir()))


def _timeline(folder: Path) -> None:
    """timeline.png, drawn from the run's own files in the folder being written (`reports.timeline`)."""
    from reports.timeline import draw_timeline

    draw_timeline(folder)
