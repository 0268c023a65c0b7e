"""Stopping a run from outside: Ctrl-C (SIGINT), SIGTERM and SIGHUP are all an interruption.

`termination_handlers()` turns SIGTERM and SIGHUP into `Terminated`, a KeyboardInterrupt, so every clean-up
path written for Ctrl-C (a run's `Staging.abandon`, a sweep stopping its workers) runs for them too; the
process then exits with 128 + the signal's number, as shells report it. `held()` delays these signals while
a clean-up runs, so a second one cannot cut it short.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
STOP_SIGNALS = (signal.SIGINT, *TERMINATION_SIGNALS)
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is, as Ctrl-C's KeyboardInterrupt is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


def termination_handlers() -> dict:
    """Turn SIGTERM and SIGHUP into `Terminated` in this (main) thread; return the handlers they replace."""
    old = {}
    for sig in TERMINATION_SIGNALS:
        try:
            old[sig] = signal.signal(sig, _raise_terminated)
        except (ValueError, OSError):  # not the main thread: signals are not ours to set
            pass
    return old


def restore(handlers: dict) -> None:
    for sig, handler in handlers.items():
        try:
            signal.signal(sig, handler)
        except (ValueError, TypeError, OSError):
            pass


def ignore_stops() -> None:
    """Ignore further Ctrl-C / SIGTERM / SIGHUP (the process is cleaning up and about to exit)."""
    for sig in STOP_SIGNALS:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            pass


def exit_code(e: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + the signal for SIGTERM (143) and SIGHUP (129)."""
    return 128 + e.signum if isinstance(e, Terminated) else EXIT_INTERRUPTED


def word(e: KeyboardInterrupt) -> str:
    """'interrupted', or 'interrupted (SIGTERM)'."""
    return f"interrupted ({e})" if isinstance(e, Terminated) else "interrupted"


@contextmanager
def held():
    """Hold Ctrl-C and termination signals while a clean-up runs; they are delivered when it is done."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    except (AttributeError, ValueError, OSError):  # no POSIX signal masks here
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
