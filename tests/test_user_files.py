"""Issue 20: no file a command did not write is replaced (one test per class), no nonsense is accepted with exit
0, and nothing hangs on a pipe or a stuck plug-in. In-process through `run.main`, on a tiny world."""
import json
import os
from pathlib import Path

import pytest

import run as cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--scheduler", "nearest", "--dcs", "4", "--hours", "0.25", "--set", "nodes_per_dc=12", "--load-scale",
        "0.001", "--no-progress"]


def main_here(args, capsys):
    rc = cli.main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_one_line(rc, err, needle, code=2):
    lines = err.strip().splitlines()
    assert rc == code and len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0], lines[0]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- item 3: each class of data loss ----------------------------------------------------------------------------
def test_predictor_report_out_never_replaces_a_users_file(tmp_path, capsys, monkeypatch):
    from reports import predictor_report as pr

    monkeypatch.setattr(pr, "predictor_report", lambda cfg: {"accuracy": 0.9})  # the report's figures: not tested here
    monkeypatch.setattr(pr, "format_table", lambda r: "table")
    mine = tmp_path / "results.json"
    mine.write_text('{"my": "thesis numbers"}')
    rc, _, err = main_here(["predictor-report", "--out", mine], capsys)
    assert_one_line(rc, err, "did not write")
    assert mine.read_text() == '{"my": "thesis numbers"}'
    new = tmp_path / "report.json"
    assert main_here(["predictor-report", "--out", new], capsys)[0] == 0
    assert json.loads(new.read_text())["accuracy"] == 0.9
    assert main_here(["predictor-report", "--out", new], capsys)[0] == 0  # its own file: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "results.json"]


def test_report_never_replaces_a_users_report_or_table(tmp_path, capsys):
    from reports import report

    assert cli.main(["compare", "--schedulers", "nearest", "--seeds", "1", "--dcs", "4", "--hours", "0.25",
                     *TINY[6:-1], "--workers", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    for name in ("report.md", "stats.csv"):
        (tmp_path / name).write_text("mine")
        before = snapshot(tmp_path)
        rc, _, err = main_here(["report", tmp_path], capsys)
        assert_one_line(rc, err, f"{name}: a file this program did not write")
        assert snapshot(tmp_path) == before
        (tmp_path / name).unlink()
    assert main_here(["report", tmp_path], capsys)[0] == 0
    assert main_here(["report", tmp_path], capsys)[0] == 0  # its own files: replaced
    assert (tmp_path / "report.md").read_text().startswith("#")
    assert report.REPORT_TABLES[0] == "stats.csv"


def test_compare_never_replaces_a_users_file_in_its_folder(tmp_path, capsys):
    folder = tmp_path / "compare"
    folder.mkdir()
    (folder / "failures.json").write_text("my list")
    rc, _, err = main_here(["compare", "--schedulers", "nearest", "--seeds", "1", "--dcs", "4", "--hours", "0.25",
                            *TINY[6:-1], "--workers", "1", "--out", tmp_path, "--no-progress"], capsys)
    assert_one_line(rc, err, "holds files no sweep wrote (failures.json)")
    assert sorted(p.name for p in folder.iterdir()) == ["failures.json"]
    assert (folder / "failures.json").read_text() == "my list"


def test_overwrite_never_replaces_a_users_summary_and_config(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "summary.json").write_text('{"mine": 1}')
    (user / "config.json").write_text('{"mine": 2}')
    rc, _, err = main_here([*TINY, "--out", user, "--overwrite"], capsys)
    assert_one_line(rc, err, "did not write")
    assert snapshot(user) == {"summary.json": b'{"mine": 1}', "config.json": b'{"mine": 2}'}
    # a manifest without the program's mark proves nothing either
    (user / ".marlin-results.json").write_text('{"files": ["summary.json", "config.json"]}')
    rc, _, err = main_here([*TINY, "--out", user, "--overwrite"], capsys)
    assert_one_line(rc, err, "did not write")
    # the program's own folder is replaced with --overwrite
    ours = tmp_path / "ours"
    assert main_here([*TINY, "--out", ours], capsys)[0] == 0
    assert main_here([*TINY, "--out", ours, "--overwrite"], capsys)[0] == 0


@pytest.mark.parametrize("plugin, says", [("TableOutside", "'../victim'"), ("TableEpochs", "'epochs'")])
def test_a_plugins_table_never_lands_outside_out_or_on_the_runs_own_files(tmp_path, capsys, plugin, says):
    victim = tmp_path / "victim.csv"
    victim.write_text("precious")
    out = tmp_path / "out"
    rc, _, err = main_here([*TINY, "--scheduler", f"tests.plugins:{plugin}", "--out", out], capsys)
    assert_one_line(rc, err, says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.csv"] and victim.read_text() == "precious"


def test_a_checkpoints_temporary_file_is_unique_and_its_own(tmp_path, capsys):
    """Pre-training's checkpoint folder: the user's files there are kept; a file at the checkpoint's own name that
    this training did not write is refused in one line and kept."""
    pytest.importorskip("torch")
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "notes.pt.tmp").write_text("the user's own file")
    args = [*TINY, "--scheduler", "qlearning", "--train-days", "1", "--checkpoint-dir", ck]
    rc, _, err = main_here([*args, "--out", tmp_path / "out"], capsys)
    assert rc == 0, err
    (saved,) = [p for p in ck.iterdir() if p.name != "notes.pt.tmp"]
    assert saved.suffix == ".pt" and saved.stat().st_size > 0 and (ck / "notes.pt.tmp").read_text() == "the user's own file"
    saved.write_text("not a checkpoint")
    rc, _, err = main_here([*args, "--out", tmp_path / "out2"], capsys)
    assert_one_line(rc, err, f"{saved.name} is not a checkpoint of this training")
    assert saved.read_text() == "not a checkpoint" and not (tmp_path / "out2").exists()


# --- item 4: nonsense is refused with the parameter named --------------------------------------------------------
NONSENSE = {
    # (the default fleet of 1000 nodes: its energy times 1e308 overflows)
    "totals_overflow": (["--set", "nodes_per_dc=1000", "--set", "cooling_multiplier=1e308"],
                        "cooling_multiplier=1e+308"),
    "no_request_served": (["--set", "gpu_tflops=1e-300,1e-300"], "gpu_tflops=1e-300,1e-300"),
    "cohort_auto_one": (["--set", "nodes_per_dc=30", "--set", "cohort_auto_requests_per_day=1"],  # auto plays
                        "cohort_auto_requests_per_day=1"),  # fewer nodes exactly (docs/model.md 'Cohorts')
    "cohort_2_53": (["--cohort-size", str(2 ** 53)], f"--cohort-size {2 ** 53}"),
    "hours_tiny": (["--hours", "1e-10"], "--hours 1e-10: must be at least one"),
    "overridden_flag": (["--set", "hours=nan", "--hours", "0.25"], "--hours nan"),
    "overridden_set": (["--set", "seed=-1", "--set", "seed=2"], "--seed -1"),
    "complex_plan": (["--scheduler", "tests.plugins:ComplexPlan"], "plan is not an array of real numbers"),
    "extra_not_dict": (["--scheduler", "tests.plugins:ExtraNotADict"], "ExtraNotADict: extra_results() returned list"),
    "execution_text": (["--scheduler", "tests.plugins:ExecutionText"], "ExecutionText: execution() returned str"),
    "route_bool": (["--scheduler", "tests.plugins:RouteTrue"], "RouteTrue: route() returned bool True"),
    "plan_sys_exit": (["--scheduler", "tests.plugins:ExitsInPlan"], "ExitsInPlan: plan() called sys.exit(3)"),
}


@pytest.mark.parametrize("case", sorted(NONSENSE))
def test_nonsense_is_one_line_exit_2_naming_the_parameter(case, tmp_path, capsys):
    args, needle = NONSENSE[case]
    rc, _, err = main_here([*TINY, *args, "--out", tmp_path / "out"], capsys)
    assert_one_line(rc, err, needle)
    assert not list(tmp_path.iterdir())


def test_a_boolean_trace_cell_is_not_a_token_count(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("Timestamp,Model,Request tokens,Response tokens\n1.0,ChatGPT,True,20\n2.0,ChatGPT,False,20\n")
    rc, _, err = main_here([*TINY, "--trace", f, "--out", tmp_path / "out"], capsys)
    assert_one_line(rc, err, "t.csv:2: Request tokens 'True' is not a whole number")


@pytest.mark.parametrize("args, says", [
    (["--set", "seed=7"], "--set seed"), (["--set", "dcs=5"], "--set dcs"), (["--set", "hours=2"], "--set hours"),
    (["--set", "scheduler=uniform"], "--set scheduler"), (["--schedulers", ""], "--schedulers: no scheduler"),
    (["--trace", "/nonexistent.csv"], "/nonexistent.csv:0: file not found"),
    (["--start", "1999-01-01"], "--start 1999-01-01"), (["--load-scale", "1e308"], "--load-scale 1e308"),
])
def test_a_bad_sweep_is_refused_before_any_run(tmp_path, capsys, args, says):
    rc, _, err = main_here(["compare", "--schedulers", "nearest", "--seeds", "1", "--dcs", "4", "--hours", "0.25",
                            *args, "--out", tmp_path / "study", "--no-progress"], capsys)
    assert_one_line(rc, err, says)
    assert not (tmp_path / "study").exists()


def test_duplicate_sweep_values_are_run_once(tmp_path):
    from reports import experiments

    a = experiments._parser("paper").parse_args(
        ["--schedulers", "uniform,uniform,nearest", "--dcs-list", "4,4", "--ablations", "no-veto,no-veto",
         "--weights", "0.4,0.4,0.1,0.1;0.4,0.4,0.1,0.1", "--seeds", "1", "--dcs", "4", "--out", str(tmp_path)])
    compare, scale, ablate, pareto = experiments.sweeps_from_args("paper", a)
    assert [r.name for r in compare.runs] == ["uniform-d4-s0", "nearest-d4-s0"]
    assert len(scale.runs) == 2 and len(ablate.runs) == 2 and len(pareto.runs) == 1


# --- item 6: no hang ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, says", [("--trace", "is not a regular file"), ("--config", "is not a regular file")])
def test_a_fifo_is_refused_not_read(tmp_path, capsys, flag, says):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    rc, _, err = main_here([*TINY, flag, fifo, "--out", tmp_path / "out"], capsys)
    assert_one_line(rc, err, says)


def test_a_stuck_plan_ends_the_run_after_plan_timeout_s(tmp_path, capsys):
    rc, _, err = main_here([*TINY, "--scheduler", "tests.plugins:Stuck", "--set", "plan_timeout_s=0.5",
                            "--out", tmp_path / "out"], capsys)
    assert_one_line(rc, err, "Stuck: plan() did not return within plan_timeout_s=0.5 s")
    assert not list(tmp_path.iterdir())
