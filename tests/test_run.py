"""simcore.run: one run is one library call; the command line and the sweeps make their runs through it."""
import ast
import json
from pathlib import Path

import pytest

import run as cli
from schedulers.options import build_config
from schedulers.registry import create
from simcore.errors import OutputError
from simcore.run import RunOutput, run
from tests.conftest import small_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--scheduler", "nearest", "--dcs", "4", "--hours", "0.5", "--set", "nodes_per_dc=12", "--load-scale",
        "0.001", "--no-progress"]


def test_the_library_call_writes_the_files_of_the_command_line(tmp_path):
    assert cli.main([*TINY, "--out", str(tmp_path / "cli")]) == 0
    _, cfg, params = build_config(TINY)
    res = run(cfg, create(cfg.scheduler, params), tmp_path / "lib")
    assert isinstance(res, RunOutput) and res.out == tmp_path / "lib"
    for name in ("epochs.csv", "epochs.parquet", "config.json"):
        assert (tmp_path / "lib" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("cli", "lib"))
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b and res.summary["requests_arrived"] == b["requests_arrived"]
    assert set(res.files) >= {"summary.json", "config.json", "epochs.csv", "epochs.parquet"}


def test_a_failing_library_run_leaves_nothing_and_raises_the_users_error(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    cfg = small_config(hours=0.25)
    with pytest.raises(OutputError, match="did not write"):
        run(cfg, create("uniform", {}), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    with pytest.raises(Exception, match="plug-in bug"):
        run(cfg, create("tests.plugins:Raises", {}), tmp_path / "new" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]  # neither the folder nor its parents


def imported(path: Path) -> set:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["reports", "simcore", "schedulers", "traces"])
def test_no_library_module_imports_the_command_line(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        assert "run" not in imported(path), path


def test_the_loader_sizes_no_fleet():
    assert not {"simcore.capacity", "simcore.profiles"} & imported(ROOT / "traces" / "loader.py")
