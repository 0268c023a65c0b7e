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
    "ablate_unknown": (["--scheduler", "marlin", "--ablate", "no-such-part"], "--ablate no-such-part: unknown entry"),
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


# --- issue 9: no input loses a user's data or ends in a traceback ------------------------------------------------
import run as run_cli  # noqa: E402  (in-process: the same main() as the command line, much faster)

TINY = ["--scheduler", "nearest", "--dcs", "4", "--hours", "0.25", "--set", "nodes_per_dc=12", "--load-scale",
        "0.001", "--no-progress"]


def main_here(args, capsys):
    rc = run_cli.main(list(args))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_one_line(rc, err, needle, code=2):
    lines = err.strip().splitlines()
    assert rc == code, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle in lines[0], lines[0]


FOUND = {  # the rows of issue 9's "Found", re-run as written
    "hours_nan": (["--hours", "nan"], "--hours nan"),
    "hours_inf": (["--hours", "inf"], "--hours inf"),
    "epoch_nan": (["--set", "epoch_s=nan"], "epoch_s=nan"),
    "warm_zero": (["--set", "warm_target_utilization=0"], "warm_target_utilization=0.0: must be"),
    "cohort_zero": (["--cohort-size", "0"], "--cohort-size '0'"),
    # one simulated request per real one (cohort 1): 1e6 x the trace is too many to simulate; under the default
    # auto cohorts the same load is simulable (tests/test_traces.py::test_workloads_a_run_cannot_count_are_refused)
    "load_scale_1e6": (["--load-scale", "1e6", "--cohort-size", "1"], "max_workload_requests"),
    "tdp_one_number": (["--set", "gpu_tdp_w=400"], "gpu_tdp_w=400.0: must be 2 entries"),
    "tdp_negative": (["--set", "gpu_tdp_w=-400,700"], "gpu_tdp_w=-400.0,700.0"),
    "pc_parked_negative": (["--set", "pc_parked=-1"], "pc_parked=-1.0: must be a number in [0, 1]"),
    "cop_min_above_max": (["--set", "cop_min=9"], "cop_min <= cop_max"),
    "sla_negative": (["--set", "sla_ttft_s=-1"], "sla_ttft_s=-1.0"),
    "int_given_fraction": (["--set", "max_batch=1.5"], "max_batch=1.5: must be a whole number"),
    "pstates_not_decreasing": (["--set", "pc_pstates=1,0.9,0.95,0.4"], "pc_pstates"),
    "model_fits_no_node": (["--set", "gpu_counts=1"], "Llama-2-70B needs"),
    "ablate_not_marlin": (["--ablate", "no-her"], "unrecognized arguments: --ablate no-her"),
    "trace_day_flag_named_right": (["--set", "trace_day=2020-01-01"], "trace_day=2020-01-01"),
    "init_raises": (["--scheduler", "tests.plugins:RaisesInInit"],
                    "tests.plugins:RaisesInInit: __init__() raised RuntimeError: broken constructor"),
    "setup_raises": (["--scheduler", "tests.plugins:RaisesInSetup"], "setup() raised KeyError"),
    "plan_raises": (["--scheduler", "tests.plugins:RaisesInPlan"], "plan() raised ZeroDivisionError"),
    "observe_raises": (["--scheduler", "tests.plugins:RaisesInObserve"], "observe() raised ValueError: cannot learn"),
    "out_proc": (["--out", "/proc/x/y"], "--out /proc/x/y"),
    "out_dot": (["--out", "."], "current folder"),
    "out_dotdot": (["--out", ".."], "current folder"),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_issue9_rows_exit_2_one_line(case, tmp_path, capsys, monkeypatch):
    args, needle = FOUND[case]
    monkeypatch.chdir(ROOT)
    keep = tmp_path / "keep.txt"
    keep.write_text("user data")
    out = ["--out", str(tmp_path / "out")] if "--out" not in args else []
    rc, _, err = main_here(TINY + args + out, capsys)
    assert_one_line(rc, err, needle)
    assert keep.read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_out_user_folder_is_refused_and_kept(tmp_path, capsys):
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "chapter1.tex").write_text("\\chapter{One}")
    (user / "data.csv").write_text("a,b\n1,2\n")
    rc, _, err = main_here(TINY + ["--out", str(user)], capsys)
    assert_one_line(rc, err, "chapter1.tex")
    assert sorted(p.name for p in user.iterdir()) == ["chapter1.tex", "data.csv"]
    assert (user / "chapter1.tex").read_text() == "\\chapter{One}"
    rc, _, err = main_here(TINY + ["--out", str(user), "--overwrite"], capsys)  # not even with --overwrite
    assert_one_line(rc, err, "did not write")
    assert sorted(p.name for p in user.iterdir()) == ["chapter1.tex", "data.csv"]


def test_out_file_is_refused_and_kept(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    rc, _, err = main_here(TINY + ["--out", str(f)], capsys)
    assert_one_line(rc, err, "is a file")
    assert f.read_text() == "keep me"
    rc, _, err = main_here(TINY + ["--out", str(f / "sub")], capsys)
    assert_one_line(rc, err, "is a file")
    assert f.read_text() == "keep me"


def test_earlier_results_need_overwrite(tmp_path, capsys):
    out = tmp_path / "res"
    assert main_here(TINY + ["--out", str(out)], capsys)[0] == 0
    first = json.loads((out / "summary.json").read_text())
    rc, _, err = main_here(TINY + ["--out", str(out), "--seed", "5"], capsys)
    assert_one_line(rc, err, "--overwrite")
    assert json.loads((out / "summary.json").read_text()) == first
    rc, _, err = main_here(TINY + ["--out", str(out), "--seed", "5", "--overwrite"], capsys)
    assert rc == 0, err
    assert json.loads((out / "summary.json").read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # no temporary or old folder left behind
    (out / "my_notes.txt").write_text("mine")  # a user's file in a results folder: never replaced
    rc, _, err = main_here(TINY + ["--out", str(out), "--overwrite"], capsys)
    assert_one_line(rc, err, "my_notes.txt")
    assert (out / "my_notes.txt").read_text() == "mine"


def test_empty_folder_is_used_and_failed_run_removes_the_parents_it_made(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main_here(TINY + ["--out", str(empty)], capsys)[0] == 0
    assert (empty / "summary.json").exists()
    deep = tmp_path / "new" / "deeper" / "out"
    rc, _, err = main_here(TINY + ["--out", str(deep), "--scheduler", "tests.plugins:RaisesInPlan"], capsys)
    assert_one_line(rc, err, "plan() raised")
    assert not (tmp_path / "new").exists()


def test_internal_error_is_one_line_pointing_to_a_crash_log(tmp_path, capsys, monkeypatch):
    import simcore.engine

    def boom(*a, **k):
        raise RuntimeError("boom inside the engine")
    monkeypatch.setattr(simcore.engine, "simulate", boom)
    rc, _, err = main_here(TINY + ["--out", str(tmp_path / "out")], capsys)
    assert_one_line(rc, err, "RuntimeError: boom inside the engine", code=1)
    log = Path(err.strip().rsplit("traceback in ", 1)[1])
    text = log.read_text()
    assert "Traceback" in text and "boom inside the engine" in text
    assert log.parent != tmp_path and not (tmp_path / "out").exists()
    log.unlink()


def test_interrupt_is_one_line_exit_130_no_results(tmp_path, capsys, monkeypatch):
    import simcore.engine

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(simcore.engine, "simulate", interrupted)
    rc, _, err = main_here(TINY + ["--out", str(tmp_path / "out")], capsys)
    assert_one_line(rc, err, "interrupted", code=130)
    assert list(tmp_path.iterdir()) == []


def test_gpu_counts_given_as_one_number_is_a_tuple(tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = main_here(TINY + ["--set", "gpu_counts=16", "--out", str(out)], capsys)
    assert rc == 0, err
    assert json.loads((out / "config.json").read_text())["gpu_counts"] == [16]


def test_config_file_that_is_a_directory_or_binary(tmp_path, capsys):
    rc, _, err = main_here(TINY + ["--config", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert_one_line(rc, err, "is a directory")
    b = tmp_path / "b.json"
    b.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00")
    rc, _, err = main_here(TINY + ["--config", str(b), "--out", str(tmp_path / "o")], capsys)
    assert_one_line(rc, err, "b.json")
    assert not (tmp_path / "o").exists()


def _csv(path, rows):
    path.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                    + "".join(f"{t},{m},{p},{o},{p + o},Conversation log\n" for t, m, p, o in rows))
    return str(path)


def test_trace_with_a_quiet_morning_runs(tmp_path, capsys):
    # arrivals only in hour 2 of a 4-hour run: epochs 0-7 and 12-15 have none
    rows = [(7200 + 12 * i, "ChatGPT", 100 + i, 20) for i in range(300)]
    trace = _csv(tmp_path / "quiet.csv", rows)
    out = tmp_path / "out"
    rc, _, err = main_here(["--scheduler", "uniform", "--dcs", "4", "--hours", "4", "--set", "nodes_per_dc=12",
                            "--trace", trace, "--load-scale", "1", "--no-progress", "--out", str(out)], capsys)
    assert rc == 0, err
    import pandas as pd
    per_epoch = pd.read_csv(out / "epochs.csv").groupby("epoch")["requests"].sum()
    assert per_epoch.loc[0:7].sum() == 0 and per_epoch.loc[8:11].sum() == 300
    s = json.loads((out / "summary.json").read_text())
    assert s["requests_arrived"] == 300 and s["requests_served"] == 300 and s["requests_over_context"] == 0


def test_bundled_trace_at_tiny_load_runs(tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = main_here(TINY[:-3] + ["--load-scale", "0.00001", "--hours", "2", "--no-progress", "--out",
                                        str(out)], capsys)
    assert rc == 0, err
    assert json.loads((out / "summary.json").read_text())["requests_arrived"] < 10


@pytest.mark.parametrize("policy", ["clip", "drop", "refuse"])
def test_prompts_beyond_the_context_window(policy, tmp_path, capsys):
    rows = [(10 * i, "ChatGPT", 6000 if i % 4 == 0 else 500, 30) for i in range(80)]  # 20 of 80 over 4,096
    trace = _csv(tmp_path / "long.csv", rows)
    out = tmp_path / "out"
    rc, _, err = main_here(["--scheduler", "nearest", "--dcs", "4", "--hours", "0.25", "--set", "nodes_per_dc=12",
                            "--trace", trace, "--load-scale", "1", "--set", f"context_policy={policy}",
                            "--no-progress", "--out", str(out)], capsys)
    if policy == "refuse":
        assert_one_line(rc, err, f"{trace}:0: 20 of 80 real requests have a prompt longer")
        assert not out.exists()
        return
    assert rc == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert s["requests_over_context"] == 20
    assert s["requests_arrived"] == (80 if policy == "clip" else 60)


def test_plugin_from_the_current_folder(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("import numpy as np\nfrom simcore.interface import Scheduler\n\n\n"
                                "class Mine(Scheduler):\n    def plan(self, obs):\n"
                                "        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)\n")
    p = subprocess.run([sys.executable, str(ROOT / "run.py"), *TINY, "--scheduler", "mypkg.mod:Mine", "--out",
                        str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["scheduler"] == "mypkg.mod:Mine"


def test_list_params_into_a_closed_pipe_is_quiet():
    p = subprocess.Popen([sys.executable, "run.py", "--list-params"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0
    assert first.startswith("scheduler") and err == ""


def test_download_without_network_leaves_no_folder(tmp_path, capsys):
    from traces.download import main as download
    out = tmp_path / "new" / "traces"
    rc = download(["--release", "1", "--out", str(out), "--url-base", "http://127.0.0.1:9", "--timeout-s", "2"])
    assert rc == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()
