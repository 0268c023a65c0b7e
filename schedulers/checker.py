"""Check a scheduler against the interface, by name (`simcore.checker`: the checks every scheduler passes).

    python -m schedulers.checker NAME_OR_pkg.mod:Class     # prints "ok" or the first failure, exit 0 / 2
"""
from __future__ import annotations

import argparse
import os
import sys

from schedulers.registry import create, resolve
from simcore import checker
from simcore.errors import SimError

# a tiny learning budget where a scheduler has one: the checks are about the interface, not plan quality
SMALL_BUDGET = {"marlin_updates_per_epoch": 2}


def check_scheduler(name: str) -> None:
    """Raise AssertionError (or SimError) describing the first rule `name` breaks (`simcore.checker`)."""
    own = set(resolve(name).Params.names())
    checker.check_scheduler(lambda: create(name, {k: v for k, v in SMALL_BUDGET.items() if k in own}), name)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"error: {message} (usage: python -m schedulers.checker NAME_OR_pkg.mod:Class)", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m schedulers.checker",
                description="Check a scheduler against the interface every scheduler passes (simcore.checker): "
                            "prints 'ok' (exit 0) or the first rule it breaks (exit 2).")
    p.add_argument("scheduler", help="a registered name (marlin-sim --list-schedulers) or pkg.mod:Class, found "
                                     "from the current folder or PYTHONPATH")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    if os.getcwd() not in sys.path:  # as `python -m` does, also when called as a function
        sys.path.insert(1, os.getcwd())
    try:
        check_scheduler(a.scheduler)
    except (AssertionError, SimError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
