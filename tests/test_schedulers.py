"""Contract tests over the registry: every registered scheduler passes the same interface checks, and the
registry resolves names, entry points and dotted paths as documented."""
import pytest

from schedulers.base import Scheduler
from schedulers.checker import check_scheduler, main as checker_main
from schedulers.registry import BUILTIN, available, resolve
from simcore.errors import SchedulerNotFound


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
    for name in ("uniform", "nearest", "greenest"):
        assert name in BUILTIN
