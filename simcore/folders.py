"""Folders a command makes for its output, and taking them back: it never removes what it did not make."""
from __future__ import annotations

import os
from pathlib import Path


def make_dirs(folder: str | Path) -> list[Path]:
    """Create `folder` and its missing parents; return the folders made, outermost first.

    On failure the folders already made are removed again and the OSError is raised.
    """
    missing = []
    d = Path(os.path.abspath(folder))
    while not os.path.lexists(d):
        missing.append(d)
        d = d.parent
    made: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            made.append(d)
    except OSError:
        remove_made_dirs(made)
        raise
    return made


def remove_made_dirs(made: list[Path]) -> None:
    """Remove folders `make_dirs` made, innermost first, only while they are still empty (never what someone else
    put there)."""
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            break
