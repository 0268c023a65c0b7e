"""run.py through a subprocess: one good run, and every bad input of DEVELOPERS.md -> exit 2, one line."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--hours", "1", "--set", "nodes_per_dc=30", "--load-scale", "0.005", "--no-progress"]


def run(args, tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "run.py", *args, "--out", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    return p, out


def test_good_run_writes_all_files(tmp_path):
    p, out = run(["--scheduler", "nearest", "--dcs", "4", *SMALL], tmp_path)
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    for key in ("scheduler", "dcs", "hours", "seed", "requests_arrived", "requests_served", "requests_failed",
                "requests_queued_at_end", "ttft_mean_s", "ttft_p50_s", "ttft_p99_s", "sla_violation_rate",
                "energy_kwh", "cost_usd", "water_l", "carbon_kg", "wall_s"):
        assert key in s
    assert s["scheduler"] == "nearest" and s["dcs"] == 4
    cfg = json.loads((out / "config.json").read_text())
    for key in ("phi", "ei_pot_kwh_per_l", "ei_waste_kwh_per_l", "j_water_kj_per_kg", "infra_fraction",
                "cooling_multiplier"):
        assert key in cfg
    assert (out / "epochs.csv").exists() and (out / "epochs.parquet").exists()
    assert "requests arrived" in p.stdout
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_plugin_by_dotted_path_and_online_route(tmp_path):
    p, out = run(["--scheduler", "tests.plugins:OnlineToLast", "--dcs", "4", *SMALL], tmp_path)
    assert p.returncode == 0, p.stderr
    import pandas as pd
    ep = pd.read_csv(out / "epochs.csv")
    assert ep.groupby("dc")["requests"].sum().loc[[0, 1, 2]].sum() == 0
    assert ep.groupby("dc")["requests"].sum().loc[3] > 0


def _bad_trace(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                 "0.5,ChatGPT,100,20,120,Conversation log\n"
                 "1.0,ChatGPT,abc,20,120,Conversation log\n")
    return str(f)


BAD = {
    "dcs3": (["--dcs", "3"], "--dcs 3"),
    "dcs13": (["--dcs", "13"], "--dcs 13"),
    "dcs99": (["--dcs", "99"], "--dcs 99"),
    "weights_sum": (["--weights", "0.5,0.5,0.5,0.5"], "sum to 1"),
    "weights_negative": (["--weights", "1.5,-0.5,0,0"], "non-negative"),
    "weights_text": (["--weights", "a,b"], "--weights"),
    "unknown_scheduler": (["--scheduler", "nope"], "unknown scheduler 'nope'"),
    "dotted_missing": (["--scheduler", "nopkg.mod:X"], "cannot import"),
    "not_a_scheduler": (["--scheduler", "tests.plugins:NotAScheduler"], "not a subclass"),
    "plan_rows": (["--scheduler", "tests.plugins:RowsDontSum"], "sums to"),
    "plan_shape": (["--scheduler", "tests.plugins:WrongShape"], "shape"),
    "plan_negative": (["--scheduler", "tests.plugins:NegativeEntry"], "negative entry"),
    "plan_nan": (["--scheduler", "tests.plugins:NanPlan"], "NaN"),
    "route_out_of_range": (["--scheduler", "tests.plugins:RouteOutOfRange"], "route() returned 99"),
    "config_missing": (["--config", "/nonexistent/c.json"], "/nonexistent/c.json"),
    "ablate_unknown": (["--ablate", "no-such-part"], "no-such-part"),
    "trace_missing": (["--trace", "/nonexistent/trace.csv"], "/nonexistent/trace.csv"),
    "trace_unknown_name": (["--trace", "no-such-trace"], "no-such-trace"),
    "start_outside": (["--start", "2024-06-01"], "2024-06-01"),
    "load_scale": (["--load-scale", "-2"], "--load-scale"),
    "hours_fraction": (["--hours", "0.1"], "--hours"),
    "unknown_param": (["--set", "nonsense=1"], "nonsense"),
    "unknown_flag": (["--frobnicate"], "frobnicate"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line(case, tmp_path):
    args, needle = BAD[case]
    base = ["--scheduler", "nearest", "--dcs", "4", *SMALL]
    p, out = run(base + args, tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert needle in lines[0]
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))


def test_malformed_trace_line_is_named(tmp_path):
    path = _bad_trace(tmp_path)
    p, out = run(["--scheduler", "nearest", "--dcs", "4", *SMALL, "--trace", path], tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip().startswith(f"error: {path}:3:")
    assert not out.exists()


def test_bad_config_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"phi": 0.3, "bogus": 1}')
    p, out = run(["--config", str(f), *SMALL], tmp_path)
    assert p.returncode == 2 and "bogus" in p.stderr and not out.exists()


def test_config_file_with_bad_json(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"phi": 0.3,')
    p, out = run(["--config", str(f), *SMALL], tmp_path)
    assert p.returncode == 2 and "not valid JSON" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists()
