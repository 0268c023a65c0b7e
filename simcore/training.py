"""Pre-training, one hook for every learner (issue 22): the train / test split of the trained protocol.

Owns: which days a run trains on (`training_days`), the key its trained state is cached under
(`checkpoint_key`), and the driver (`pretrain`) that plays the run's scheduler object through whole engine runs of
those days before the test day, so every learner learns through its own online rule (its `plan` / `observe`)
with its own per-epoch budget (its Simulate calls and gradient steps are its parameters, `config.json` records
them), and then carries what it learned into the test day (`Scheduler.warm_start`). The test day, for all learners
alike (`--test-learning`, a run's argument like `--checkpoint-dir`, not a parameter of the world): `online` plays the same online rule from there (the paper's online protocol with a head
start), `frozen` sets `Scheduler.frozen`, so the learner acts on what it learned and updates none of its learned
state (but the constraints' observations it declares in `adapts_frozen`, the head-room). Training days always
learn, and the key does not hold the test-day rule: both share one checkpoint.

A training day is another day of the bundled week (never the test day), replayed as a run of its own: that
date's arrivals (`trace_day`; with `load_scale auto`, scaled by that day's busiest epoch), its grid, price and
weather signals (`start` moved by the same number of days as `trace_day`), the same fleet, seed and engine
(drain included). Days of the test day's kind (weekday or weekend) come first, nearest first, then the others:
a Monday is trained on Tuesday, Wednesday, Friday, Thursday, then Sunday, Saturday (with more than 4 days the
weekend makes the learners worse: README 'Protocols'). So nothing of the test day is read before it is played
(`tests/test_training.py` changes the test day's trace and signals and gets the identical checkpoint).

Checkpoints: `<dir>/<key>.pt` (torch.save of the learned state, the days and the epochs it was learned over),
key = a hash of the scheduler, its parameters and every training day's world (seed, D, days, hours, weights,
...). A cached one is loaded instead of training; after each day the state so far is saved as
`<key>.partial.pt`, so an interrupted training resumes at its next day.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from simcore.config import Config
from simcore.errors import ConfigError
from simcore.interface import Scheduler

FORMAT_VERSION = 5  # of the checkpoint files and of the key: bump when either changes meaning (3: the burst; 4: DDQN's
# and actor-critic's training days restart their replay / spread; 5: PerLLM carries each site's observed idle draw)
BUNDLED_WEEK_TRACE = "azure-code-2024"  # the trace whose bundled days are the training days
WEEKEND = (5, 6)  # date.weekday() of Saturday and Sunday


def training_days(cfg: Config, n: int) -> list[Config]:
    """The worlds of the n training days of a run: other days of the bundled week, the test day's kind first,
    nearest first, each with its own date's arrivals and signals.

    :raises ConfigError: the trace is not the bundled week, or it has fewer than n other days
    """
    from traces.loader import bundled_counts

    if cfg.trace != BUNDLED_WEEK_TRACE:
        raise ConfigError(f"--train-days {n}: pre-training replays other days of the bundled {BUNDLED_WEEK_TRACE} "
                          f"week; trace {cfg.trace!r} has no other days")
    days = [dt.date.fromisoformat(d) for d in bundled_counts()[0]]
    test = dt.date.fromisoformat(cfg.trace_day)
    if test not in days:
        raise ConfigError(f"--train-days {n}: trace day {cfg.trace_day} is not in the bundled week")
    weekend = test.weekday() in WEEKEND
    others = sorted((d for d in days if d != test),
                    key=lambda d: ((d.weekday() in WEEKEND) != weekend, abs((d - test).days), d))
    if n > len(others):
        raise ConfigError(f"--train-days {n}: the bundled week has only {len(others)} days other than the test day")
    start = dt.date.fromisoformat(cfg.start)
    return [cfg.replace(trace_day=d.isoformat(), start=(start + (d - test)).isoformat()) for d in others[:n]]


def checkpoint_key(sched: Scheduler, days: list[Config]) -> str:
    """The cache key of a trained state: the scheduler (name, class and what it carries), its parameters and the
    training days' worlds (these hold the seed, D, the dates and every other parameter of the world)."""
    blob = {"format": FORMAT_VERSION, "scheduler": days[0].scheduler,
            "class": f"{type(sched).__module__}.{type(sched).__qualname__}", "learned": list(type(sched).learned),
            "params": sched.params.to_dict(),
            "days": [c.to_dict() for c in days]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:20]


def declared_budget(sched: Scheduler, epochs: int) -> dict:
    """The scheduler's declared per-epoch budgets (its parameters named `*_per_epoch`: Simulate calls, gradient
    steps, samples) and what `epochs` training epochs allow of each."""
    per_epoch = {k: v for k, v in sched.params.to_dict().items() if k.endswith("_per_epoch")}
    return {"per_epoch": per_epoch, "training_total": {k: v * epochs for k, v in per_epoch.items()}}


def _save(path: Path, blob: dict, replace: bool) -> None:
    """Write a checkpoint through a temporary file of our own (unique name, never a user's file); `replace` only a
    file this training wrote itself (its partial state), else link it into place without replacing anything."""
    import tempfile

    import torch
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        torch.save(blob, tmp)
        if replace:
            os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half of one
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:  # another run of the same key finished first: its state is the same
                pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path, key: str) -> dict | None:
    """A checkpoint written for `key`, or None when the file is unreadable or was written for another key (torch's
    full unpickler: a checkpoint folder is trusted as the run's own, like its results folder)."""
    import torch
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a torn or foreign file: train again rather than fail
        return None
    return blob if isinstance(blob, dict) and blob.get("key") == key else None


def _play(cfg: Config, sched: Scheduler, progress: bool) -> None:
    """One training day: its workload loaded and its world sized as a run's are (`simcore.run`), then played."""
    from simcore.engine import simulate  # here: simcore.engine imports this module's neighbours, not the reverse
    from simcore.rng import stream
    from traces.loader import load_workload

    wl = load_workload(cfg, stream(cfg.seed, "trace"))
    sizing = getattr(wl, "sizing", None)  # the sizing rule's world (fleet, load) where the loader chose one
    simulate(sizing.apply(cfg) if sizing is not None else cfg, sched, workload=wl, progress=progress)


TEST_LEARNING = ("online", "frozen")  # the test day after training: the learner's online rule, or no update


def check_test_learning(test_learning: str, n_days: int) -> None:
    """Refuse an unknown test-day rule, or 'frozen' without training (ConfigError, one line)."""
    if test_learning not in TEST_LEARNING:
        raise ConfigError(f"test_learning={test_learning!r}: one of {', '.join(TEST_LEARNING)}")
    if test_learning == "frozen" and n_days <= 0:
        raise ConfigError("--test-learning frozen: a frozen learner must be trained first (--train-days N >= 1)")


def pretrain(cfg: Config, sched: Scheduler, n_days: int, cache_dir: str | Path | None = None,
             progress: bool = False, test_learning: str = "online") -> dict:
    """Train `sched` on n_days other days (or load the cached state), leave it warm-started for the test day's
    run, and return the record `config.json` keeps under 'training'.

    :param cache_dir: folder of cached checkpoints (None: train, keep nothing)
    :param progress: one engine progress bar per training day
    :param test_learning: 'online' (the test day learns by the learner's online rule) or 'frozen' (`Scheduler.frozen`)
    :raises ConfigError: an unknown test_learning, or 'frozen' without training
    """
    check_test_learning(test_learning, n_days)
    sched.frozen = False  # training days learn; the test day is frozen only once training is done (below)
    if n_days <= 0:
        return {"protocol": "online", "train_days": 0}
    days = training_days(cfg, n_days)
    record: dict[str, Any] = {"protocol": "trained", "train_days": n_days, "test_learning": test_learning,
                              "days": [c.trace_day for c in days], "starts": [c.start for c in days]}
    if not sched.learns():  # nothing to carry: the days would be played for nothing
        return {**record, "learns": False, "epochs_trained": 0, "days_played": 0, "reused": False}
    record.update(_train(sched, days, checkpoint_key(sched, days), cache_dir, progress))
    sched.frozen = test_learning == "frozen"
    return record


def _train(sched: Scheduler, days: list[Config], key: str, cache_dir, progress: bool) -> dict:
    """Train `sched` on `days` (or load its cached state under `key`) and warm-start it with the result; return
    the training fields of the record."""
    n_days = len(days)
    record: dict[str, Any] = {"learns": True, "checkpoint": key,
                              "budget": declared_budget(sched, sum(c.epochs for c in days))}
    final = partial = None
    blob = None
    if cache_dir is not None:
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        final, partial = folder / f"{key}.pt", folder / f"{key}.partial.pt"
        for path in (final, partial):  # a file of that name this training did not write is kept and refused
            if path.exists() and _load(path, key) is None:
                raise ConfigError(f"--checkpoint-dir {folder}: {path.name} is not a checkpoint of this training "
                                  "(unreadable, or written for another key); it is kept: move it or choose another "
                                  "--checkpoint-dir")
        blob = _load(final, key) if final.exists() else None
        if blob is not None:
            sched.warm_start(blob["state"], blob["experience_epochs"])
            return {**record, "epochs_trained": blob["experience_epochs"], "days_played": 0, "reused": True,
                    "train_wall_s": blob.get("train_wall_s", 0.0)}
        blob = _load(partial, key) if partial.exists() else None
    done, state, epochs, wall = (0, None, 0, 0.0) if blob is None else \
        (blob["days_done"], blob["state"], blob["experience_epochs"], blob["train_wall_s"])
    resumed = done
    for k in range(done, n_days):
        t0 = time.perf_counter()
        sched.warm_start(state, epochs)
        _play(days[k], sched, progress)
        state, epochs = sched.state_dict(), epochs + days[k].epochs
        wall += time.perf_counter() - t0
        if partial is not None:
            _save(partial, {"key": key, "format": FORMAT_VERSION, "days_done": k + 1, "state": state,
                            "experience_epochs": epochs, "train_wall_s": wall}, replace=True)
    if final is not None:
        _save(final, {"key": key, "format": FORMAT_VERSION, "days_done": n_days, "state": state,
                      "experience_epochs": epochs, "train_wall_s": wall, "days": [c.trace_day for c in days]},
              replace=False)
        partial.unlink(missing_ok=True)  # ours: written above or by the interrupted run of this same key
    sched.warm_start(state, epochs)
    return {**record, "epochs_trained": epochs, "days_played": n_days - resumed, "resumed_from_day": resumed,
            "reused": False, "train_wall_s": round(wall, 3)}
