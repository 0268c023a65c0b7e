"""simcore.params: a scheduler declares its parameters in a frozen dataclass beside its class, and the command line
reaches them as it reaches the world's (`--list-params --scheduler`, `--set`, `--config`, config.json), built-in or
plug-in (tests.plugins:WithParams, whose `ThresholdParams` has `threshold_s` and `spread`)."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import run as run_cli
from schedulers.registry import available, create, resolve
from simcore.config import Config
from simcore.errors import ConfigError, SchedulerNotFound
from simcore.interface import Scheduler
from simcore.params import Parameters, param
from tests import plugins

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "tests.plugins:WithParams"
TINY = ["--dcs", "4", "--hours", "0.25", "--set", "nodes_per_dc=12", "--load-scale", "0.001", "--no-progress"]


def main_here(args, capsys):
    rc = run_cli.main(list(args))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# --- the dataclass ----------------------------------------------------------------------------------------------
def test_fields_are_checked_as_declared_and_relations_by_validate():
    p = plugins.ThresholdParams()
    assert (p.threshold_s, p.spread) == (0.5, (1.0, 1.0))
    assert plugins.ThresholdParams.from_dict({"threshold_s": "0.2", "spread": "2, 0"}).spread == (2.0, 0.0)
    with pytest.raises(ConfigError, match=r"^threshold_s=0.0: must be a positive number"):
        plugins.ThresholdParams(threshold_s=0.0)
    with pytest.raises(ConfigError, match=r"^spread=1.0: must be 2 entries"):
        plugins.ThresholdParams.from_dict({"spread": "1"})
    with pytest.raises(ConfigError, match=r"^spread=0.0,0.0: must not be all zero"):
        plugins.ThresholdParams(spread=(0.0, 0.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.threshold_s = 1.0


@pytest.mark.parametrize("name", sorted(available()))
def test_every_registered_scheduler_declares_valid_parameters(name):
    cls = resolve(name)
    params = cls.Params()  # the defaults are valid
    assert create(name).params == params
    for f in dataclasses.fields(cls.Params):
        assert len(f.metadata["help"].split()) >= 2, f"{name}: {f.name} has no help"
        assert f.name not in Config.names(), f"{name}: {f.name} is also a world parameter"
    assert cls.Params.from_dict(json.loads(json.dumps(params.to_dict()))) == params  # config.json round trip


def test_create_builds_the_parameters_and_refuses_unknown_names():
    s = create(PLUGIN, {"threshold_s": "0.01"})
    assert s.params == plugins.ThresholdParams(threshold_s=0.01)
    with pytest.raises(ConfigError, match=r"^parameters: unknown parameter\(s\) marlin_gamma"):
        create(PLUGIN, {"marlin_gamma": 0.5})
    assert create("marlin", {"marlin_gamma": "0.5"}).params.marlin_gamma == 0.5


def test_params_must_be_a_frozen_parameters_dataclass(monkeypatch):
    class Loose(Parameters):  # not a dataclass: its annotation would be no parameter at all
        x_s: float = param(1.0, "a number, s")

    class Uses(Scheduler):
        Params = Loose

        def plan(self, obs):
            return None

    monkeypatch.setattr(plugins, "Uses", Uses, raising=False)
    with pytest.raises(SchedulerNotFound, match="Params must be a @dataclass"):
        resolve("tests.plugins:Uses")


# --- the command line -------------------------------------------------------------------------------------------
def test_list_params_lists_the_world_or_the_named_schedulers(capsys):
    rc, out, _ = main_here(["--list-params"], capsys)
    names = [line.split()[0] for line in out.splitlines()]
    assert rc == 0 and names == list(Config.names())
    rc, out, _ = main_here(["--list-params", "--scheduler", PLUGIN], capsys)
    assert rc == 0 and [line.split()[0] for line in out.splitlines()] == ["threshold_s", "spread"]
    assert "latency below which a datacenter counts as near" in out
    rc, out, _ = main_here(["--list-params", "--scheduler", "marlin"], capsys)
    assert rc == 0 and "(--ablate)" in out and "marlin_gamma" in out and "dcs " not in out
    rc, out, _ = main_here(["--list-params", "--scheduler", "nearest"], capsys)
    assert rc == 0 and out.strip() == "scheduler nearest has no parameters"


def test_set_reaches_a_plugins_parameter_and_config_json_records_it(tmp_path):
    out = tmp_path / "r"
    r = subprocess.run([sys.executable, "run.py", "--scheduler", PLUGIN, *TINY, "--set", "threshold_s=0.004",
                        "--set", "spread=3,1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["scheduler"] == PLUGIN and config[PLUGIN] == {"threshold_s": 0.004, "spread": [3.0, 1.0]}
    # the file repeats the run: the world's parameters by name, the scheduler's from its section
    args, cfg, own = run_cli.build_config(["--config", str(out / "config.json")])
    assert cfg == Config.from_dict({k: v for k, v in config.items() if k not in (PLUGIN, "training")})
    assert create(cfg.scheduler, own).params == plugins.ThresholdParams(threshold_s=0.004, spread=(3.0, 1.0))


@pytest.mark.parametrize("args, needle", [
    (["--set", "threshold_s=-1"], "threshold_s=-1.0: must be a positive number"),
    (["--set", "threshold_s=near"], "threshold_s=near: must be a positive number"),
    (["--set", "spread=0,0"], "spread=0.0,0.0: must not be all zero"),
    (["--set", "no_such_param=1"], "unknown parameter(s) no_such_param"),
])
def test_a_bad_value_is_one_line_naming_the_parameter(args, needle, capsys, tmp_path):
    rc, _, err = main_here(["--scheduler", PLUGIN, *TINY, *args, "--out", str(tmp_path / "r")], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "r").exists()


def test_a_bad_value_through_a_subprocess_exits_2_without_a_traceback(tmp_path):
    r = subprocess.run([sys.executable, "run.py", "--scheduler", PLUGIN, *TINY, "--set", "threshold_s=0",
                        "--out", str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "error: threshold_s=0.0: must be a positive number"


def test_config_sections_name_schedulers(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"dcs": 5, "marlin": {"marlin_gamma": 0.5}, PLUGIN: {"threshold_s": 0.1}}))
    _, cfg, own = run_cli.build_config(["--config", str(f), "--scheduler", PLUGIN, "--set", "spread=1,2"])
    assert cfg.dcs == 5 and own == {"threshold_s": 0.1, "spread": "1,2"}  # each run reads its own section
    _, _, own = run_cli.build_config(["--config", str(f), "--scheduler", "marlin"])
    assert own == {"marlin_gamma": 0.5}
    f.write_text(json.dumps({"marlim": {"marlin_gamma": 0.5}}))
    with pytest.raises(SchedulerNotFound, match="unknown scheduler 'marlim'"):
        run_cli.build_config(["--config", str(f)])


def test_a_flag_a_parameter_declares_is_read_for_its_scheduler_only():
    _, _, own = run_cli.build_config(["--scheduler", "marlin", "--ablate", "no-her,no-veto"])
    assert own == {"marlin_ablate": "no-her,no-veto"}
    assert create("marlin", own).params.marlin_ablate == ("no-her", "no-veto")
    with pytest.raises(ConfigError, match="unrecognized arguments: --ablate no-her"):
        run_cli.build_config(["--scheduler", "nearest", "--ablate", "no-her"])
    with pytest.raises(ConfigError, match=r"^--ablate no-fun: unknown entry no-fun"):
        create("marlin", {"marlin_ablate": "no-fun"})
