"""Check a scheduler against the interface, by name (`simcore.checker`: the checks every scheduler passes).

    python -m schedulers.checker NAME_OR_pkg.mod:Class     # prints "ok" or the first failure, exit 0 / 2
"""
from __future__ import annotations

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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m schedulers.checker NAME_OR_pkg.mod:Class", file=sys.stderr)
        return 2
    try:
        check_scheduler(argv[0])
    except (AssertionError, SimError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
