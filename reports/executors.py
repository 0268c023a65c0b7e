"""Running a sweep's members on this machine: one process per run, a lock per sweep folder, a clean stop.

- `run_in_processes(tasks, workers, done)`: each run in its own process (`forkserver`: forked from a small
  server that has imported the simulator once, so a run starts in a fraction of a second and inherits no thread
  of this process), at most `workers` at a time. A run that kills its own process (a plug-in calling `os._exit`,
  running out of memory) fails alone: `done` gets its name and the exit code, the others go on.
- Stopping: Ctrl-C, SIGTERM or SIGHUP in this process (`simcore.interrupts`: a KeyboardInterrupt) sends SIGTERM to
  every running run, whose own handler removes its half-written results (`simcore.results.Staging.abandon`), waits
  for them (`STOP_GRACE_S`, then SIGKILL) and removes any temporary folder a killed run left; no process outlives
  the sweep. Even a sweep killed outright (SIGKILL) leaves none: each run gets SIGTERM when its parent, the fork
  server, ends with the sweep (Linux `PR_SET_PDEATHSIG`).
- `sweep_lock(folder)`: one sweep at a time in a folder (an `fcntl` lock on `.sweep.lock`, released by the
  kernel if the process dies); a second sweep on the same folder is refused at once with one line.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import time
from pathlib import Path

from simcore import interrupts
from simcore.errors import ConfigError

LOCK_FILE = ".sweep.lock"
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends
STOP_GRACE_S = 30.0  # a stopped run's time to remove its temporary folder before it is killed
# imported once by the fork server, so no run pays them again: the engine, the timeline's matplotlib and the
# results' parquet writer; for a sweep with a learner also torch and the learners (a learner's run, and every run of
# the trained protocol, whose checkpoints torch writes, would otherwise import torch itself: 1.5-6 s a run on this
# 2-core machine, by its load)
PRELOAD = ("numpy", "pandas", "simpy", "simcore.run", "simcore.engine", "schedulers.options",
           "schedulers.registry", "traces.loader", "topology.sites", "reports.timeline", "pyarrow.parquet")
LEARNER_PRELOAD = ("torch", "simcore.training", "schedulers.rl.sac", "schedulers.marlin.scheduler",
                   "schedulers.marlin.agents", "schedulers.ddqn", "schedulers.actorcritic")


def _child(conn, task, argv: list, out: str) -> None:
    """A run's process: Ctrl-C, SIGTERM and SIGHUP interrupt the run (which removes its temporary folder)."""
    from simcore import interrupts

    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.termination_handlers()
    _end_with_parent()
    try:
        result = task(argv, out)
    except KeyboardInterrupt:
        os._exit(interrupts.EXIT_INTERRUPTED)
    conn.send(result)
    conn.close()


def _end_with_parent() -> None:
    """Linux: SIGTERM this run when its parent (the fork server, which ends when the sweep does) ends, so even a
    sweep killed outright (SIGKILL) leaves no run behind, and each run still removes its temporary folder."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: a killed sweep's runs end when they finish
        pass


def _context(learners: bool = False):
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD + (LEARNER_PRELOAD if learners else ())))
    return ctx


def run_in_processes(tasks: list, workers: int, task, done, learners: bool = False) -> None:
    """Run `task(argv, out) -> (error, seconds)` for each `(key, argv, out)` of `tasks`, each in its own process,
    `workers` at a time; call `done(key, error, seconds)` as each ends (in this process). `learners`: some run
    learns (or pre-trains), so the fork server imports torch and the learners once for all of them."""
    ctx = _context(learners)
    queue = list(tasks)
    running: dict = {}  # process sentinel -> (process, result pipe, key, out, start time)
    try:
        while queue or running:
            while queue and len(running) < workers:
                key, argv, out = queue.pop(0)
                # a stop signal is held from the start of a run's process until it is registered, so `stop`
                # always sees every process this sweep started (a signal inside `start` left one unregistered)
                with interrupts.held():
                    recv, send = ctx.Pipe(duplex=False)
                    proc = ctx.Process(target=_child, args=(send, task, argv, out), daemon=True)
                    proc.start()
                    send.close()
                    running[proc.sentinel] = (proc, recv, key, out, time.perf_counter())
            for sentinel in multiprocessing.connection.wait(list(running)):
                proc, recv, key, out, t0 = running.pop(sentinel)
                proc.join()
                result = None
                with contextlib.suppress(EOFError, OSError):
                    if recv.poll():
                        result = recv.recv()
                recv.close()
                if result is None:
                    _remove_temporary(out)
                    result = (f"the run's process ended without a result (exit code {proc.exitcode}: the scheduler "
                              "ended the process, e.g. os._exit, or it ran out of memory)", time.perf_counter() - t0)
                done(key, *result)
    except BaseException:
        stop(running.values())
        raise


def stop(running) -> None:
    """SIGTERM each running run, wait for it to clean up (then SIGKILL), remove what a killed run left."""
    running = list(running)
    for proc, *_ in running:
        with contextlib.suppress(OSError, ValueError):
            proc.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for proc, recv, key, out, _ in running:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
        recv.close()
        _remove_temporary(out)


def _remove_temporary(out: str) -> None:
    """Remove the temporary folders a run of `out` made and could not remove (`Staging`: `.<name>.tmp-*`)."""
    p = Path(out)
    for tmp in p.parent.glob(f".{p.name}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def sweep_lock(folder: Path):
    """Hold the sweep folder's lock for the block; refuse (ConfigError) if another sweep holds it."""
    import fcntl

    path = Path(folder) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise ConfigError(f"{folder}: another sweep is running in this folder (pid {holder}); wait for it to "
                              "finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
