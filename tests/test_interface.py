"""simcore owns the scheduler interface and knows no scheduler: no module of simcore imports from schedulers/, and
no scheduler reaches into the engine (it gets what the engine built through StaticInfo)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module)
    return found


def files(package: str) -> list:
    paths = sorted((ROOT / package).rglob("*.py"))
    assert paths, package
    return paths


@pytest.mark.parametrize("path", files("simcore"), ids=lambda p: str(p.relative_to(ROOT)))
def test_simcore_imports_no_scheduler(path):
    bad = sorted(m for m in imported_modules(path) if m == "schedulers" or m.startswith("schedulers."))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", files("schedulers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_schedulers_do_not_import_the_engine(path):
    assert "simcore.engine" not in imported_modules(path), f"{path.relative_to(ROOT)} imports simcore.engine"


def test_the_engine_names_no_scheduler():
    text = (ROOT / "simcore" / "engine.py").read_text().lower()
    for name in ("splitwise", "marlin", "split_phases", "phase_prompt", "phase_token"):
        assert name not in text, name
