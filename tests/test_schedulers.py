"""Contract tests over the registry: every registered scheduler passes the same interface checks, and the
registry resolves names, entry points and dotted paths as documented."""
import dataclasses
import inspect
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

from schedulers import registry
from schedulers.checker import check_scheduler, main as checker_main
from schedulers.registry import ENTRY_POINT_GROUP, available, create, resolve
from simcore.checker import CHECK_CONFIG, check_accounting
from simcore.config import Config
from simcore.engine import simulate
from simcore.errors import SchedulerNotFound
from simcore.interface import Scheduler
from tests import plugins

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(available()))
def test_registered_scheduler_passes_interface_checks(name):
    check_scheduler(name)


def test_dotted_path_plugin_passes_and_a_bad_one_fails(capsys):
    assert checker_main(["tests.plugins:AllToFirst"]) == 0
    assert checker_main(["tests.plugins:RowsDontSum"]) == 2
    assert "sums to" in capsys.readouterr().err


def test_registry_resolution():
    assert issubclass(resolve("nearest"), Scheduler)
    assert resolve("tests.plugins:AllToFirst").__name__ == "AllToFirst"
    with pytest.raises(SchedulerNotFound, match="known: .*nearest"):
        resolve("no-such-scheduler")


# the schedulers of the paper's comparison (section 6) and the references (README table); "marlin" is the
# documented alias of "marlin-balanced"
PAPER_SCHEDULERS = {
    "uniform", "nearest", "greenest", "fill-ttft", "fill-carbon", "fill-water", "fill-cost", "splitwise", "helix",
    "perllm", "nsga2", "slit", "qlearning", "ddqn", "actorcritic", "marlin", "marlin-balanced", "marlin-minlatency",
    "marlin-mincarbon", "marlin-minwater", "marlin-mincost", "oracle", "oracle-hindsight"}
ALIASES = {"marlin": "marlin-balanced"}


def test_registry_resolves_every_scheduler_to_its_own_class():
    table = available()
    assert set(table) == PAPER_SCHEDULERS  # this install adds no entry points
    classes = {name: resolve(name) for name in sorted(table)}
    for name, cls in classes.items():
        assert issubclass(cls, Scheduler) and not inspect.isabstract(cls), name
        # the class is defined in the module the registry names (one scheduler, one file), not re-exported
        assert f"{cls.__module__}:{cls.__qualname__}" == table[name]
        sched = create(name)
        assert type(sched) is cls and sched.name == name
    # no two names share a class unless one is a documented alias (a copied target string would)
    by_class = {}
    for name, cls in classes.items():
        by_class.setdefault(cls, []).append(name)
    shared = sorted(sorted(names) for names in by_class.values() if len(names) > 1)
    assert shared == sorted(sorted([alias, target]) for alias, target in ALIASES.items())


def _entry_point_table(monkeypatch, *pairs):
    eps = [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in pairs]
    monkeypatch.setattr(registry, "entry_points", lambda group: [e for e in eps if e.group == group])


def test_entry_point_is_listed_and_resolved(monkeypatch):
    _entry_point_table(monkeypatch, ("all-to-first", "tests.plugins:AllToFirst"))
    assert available()["all-to-first"] == "tests.plugins:AllToFirst"
    assert list(available()) == sorted(available())
    assert resolve("all-to-first") is plugins.AllToFirst
    assert create("all-to-first").name == "all-to-first"


@pytest.mark.parametrize("pairs", [
    [("nearest", "tests.plugins:AllToFirst")],  # shadows a built-in
    [("mine", "tests.plugins:AllToFirst"), ("mine", "tests.plugins:OnlineToLast")],  # two plug-ins, one name
])
def test_a_name_registered_twice_is_an_error(monkeypatch, pairs):
    _entry_point_table(monkeypatch, *pairs)
    with pytest.raises(SchedulerNotFound, match="registered twice"):
        resolve("uniform")


def test_accounting_check_fails_on_a_broken_record():
    """The checker's accounting rule can fail: a request left unrouted, or one counted in no epoch row."""
    rec = simulate(Config(seed=1, scheduler="uniform", **CHECK_CONFIG), create("uniform"))
    check_accounting("uniform", rec)  # the real record passes
    unrouted = dataclasses.replace(rec, req_dc=rec.req_dc.copy())
    unrouted.req_dc[np.flatnonzero(~rec.req_failed)[0]] = -1
    with pytest.raises(AssertionError, match="never routed"):
        check_accounting("uniform", unrouted)
    rows = [dict(r) for r in rec.epoch_rows]
    rows[0]["requests"] += 1
    with pytest.raises(AssertionError, match="epochs.csv counts"):
        check_accounting("uniform", dataclasses.replace(rec, epoch_rows=rows))


def test_nearest_never_imports_torch(tmp_path):
    """The registry imports a scheduler's module only when it is chosen: a `nearest` run stays free of torch
    (STYLE 6), which takes seconds to import."""
    script = ("import sys, run\n"
              "rc = run.main(sys.argv[1:])\n"
              "print('torch' in sys.modules, rc)\n")
    cmd = [sys.executable, "-c", script, "--scheduler", "nearest", "--dcs", "4", "--hours", "0.25",
           "--set", "nodes_per_dc=12", "--load-scale", "0.002", "--no-progress", "--out", str(tmp_path / "r")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False 0"
    assert (tmp_path / "r" / "summary.json").is_file()  # it really ran
