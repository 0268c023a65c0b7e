"""`scale --load` (reports/experiments.py): each D at the paper's load rule by default, the 8-DC load on request."""
import pytest

import run
from reports import experiments
from simcore.errors import ConfigError


def _sweep(*args):
    a = experiments._parser("scale").parse_args(["--schedulers", "uniform", "--seeds", "1", "--dcs-list", "4,8,12",
                                                 *args])
    return experiments.sweeps_from_args("scale", a)[0]


def _cfg(run_spec, sweep):
    return run.build_config(run_spec.argv(sweep.run_args))[1]


def test_scale_gives_each_fleet_the_paper_load_by_default(tmp_path):
    """Default: the auto load's reference fleet is each run's own D (busiest epoch at 95 % of that fleet)."""
    sw = _sweep("--out", str(tmp_path))
    assert sw.settings["load"] == "paper"
    assert {r.dcs: _cfg(r, sw).reference_dcs for r in sw.runs} == {4: 4, 8: 8, 12: 12}
    assert all(_cfg(r, sw).load_scale == "auto" for r in sw.runs)


def test_scale_load_fixed_keeps_the_8_dc_load_for_every_d(tmp_path):
    sw = _sweep("--load", "fixed", "--out", str(tmp_path))
    assert sw.settings["load"] == "fixed"
    assert {r.dcs: _cfg(r, sw).reference_dcs for r in sw.runs} == {4: 8, 8: 8, 12: 8}


def test_paper_load_at_d4_is_half_the_fixed_load():
    """The two rules' arrivals at D = 4: the paper's rule scales the day to 4 DCs' capacity, half of 8's."""
    from simcore.engine import Engine
    from schedulers.registry import create

    counts = {}
    for ref in (4, 8):
        cfg = run.build_config(["--dcs", "4", "--hours", "1", "--set", "nodes_per_dc=30",
                                "--set", f"reference_dcs={ref}"])[1]
        counts[ref] = Engine(cfg, create("uniform")).wl.scale
    assert counts[4] == pytest.approx(counts[8] / 2, rel=1e-9)


@pytest.mark.parametrize("args, match", [
    (["--set", "reference_dcs=6"], "--load fixed"),
    (["--load-scale", "0.5"], "--load fixed"),
])
def test_scale_paper_load_refuses_what_would_override_it(tmp_path, args, match):
    with pytest.raises(ConfigError, match=match):
        _sweep("--out", str(tmp_path), *args)
    _sweep("--out", str(tmp_path), "--load", "fixed", *args)  # accepted with the fixed load


def test_a_scale_folder_of_the_other_load_rule_is_refused(tmp_path):
    sw = _sweep("--load", "fixed", "--out", str(tmp_path))
    sw.path.mkdir(parents=True)
    experiments.write_json(sw.path / experiments.MANIFEST, sw.manifest())
    with pytest.raises(ConfigError, match="load='fixed'"):
        experiments._merge_manifest(_sweep("--out", str(tmp_path)))
