"""Property-based test (hypothesis): whatever a user types, run.py exits 0 with a results folder, or exits 2 with
exactly one line on stderr and no results folder; a user's file is never touched.

Runs `run.main` in-process on tiny worlds (4 datacenters of 12 nodes, 15 minutes) so the examples stay fast.
"""
import json
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings, strategies as st  # noqa: E402

import run as run_cli  # noqa: E402
from simcore.config import Config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE = ["--dcs", "4", "--hours", "0.25", "--set", "nodes_per_dc=12", "--load-scale", "0.001", "--no-progress"]
ODD = ["0", "-1", "1", "2", "nan", "inf", "-inf", "1.5", "abc", "", " ", "400", "2,4", "1e300", "-0.0", "0.5",
       "true", "1,2,3,4", "0.25,0.25,0.25,0.25", "H100-80GB", "no-her", "1" + "0" * 30]
# parameters whose valid odd values would make a long run (a long horizon), not a wrong one
SLOW = {"hours"}
NAMES = sorted(set(Config.names()) - SLOW)
PROFILE = settings(deadline=None, max_examples=300, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

flag_values = st.one_of(
    st.tuples(st.just("--dcs"), st.sampled_from(["3", "4", "5", "12", "13", "-1", "x", "4.5"])),
    st.tuples(st.just("--hours"), st.sampled_from(["0.25", "0.5", "0", "-1", "nan", "inf", "0.1", "1e9", "x"])),
    st.tuples(st.just("--load-scale"), st.sampled_from(["0.001", "1e-9", "0", "-1", "nan", "inf", "1e6", "1e300",
                                                        "auto", "x"])),
    st.tuples(st.just("--weights"), st.sampled_from(["0.25,0.25,0.25,0.25", "1,0,0,0", "0.5,0.5", "a,b", "nan,0,0,1",
                                                     "-1,1,0.5,0.5", ""])),
    st.tuples(st.just("--seed"), st.sampled_from(["0", "7", "-1", "1.5", "x"])),
    st.tuples(st.just("--start"), st.sampled_from(["2023-07-03", "2023-01-01", "2024-06-01", "yesterday", ""])),
    st.tuples(st.just("--scheduler"), st.sampled_from(["nearest", "uniform", "greenest", "nope", "a.b:C",
                                                       "tests.plugins:RaisesInPlan", "tests.plugins:NanPlan"])),
    st.tuples(st.just("--ablate"), st.sampled_from(["no-her", "bogus", ""])),
    st.tuples(st.just("--set"), st.builds(lambda n, v: f"{n}={v}", st.sampled_from(NAMES), st.sampled_from(ODD))),
    st.tuples(st.just("--set"), st.sampled_from(["novalue", "=1", "unknown_param=1"])),
)


def _check(args, out_choice, capsys):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        user = d / "user"
        user.mkdir()
        keep = user / "keep.txt"
        keep.write_text("precious")
        out = {"new": d / "new" / "out", "user": user, "file": keep, "under_file": keep / "x"}[out_choice]
        rc = run_cli.main(args + ["--out", str(out)])
        err = capsys.readouterr().err
        assert keep.read_text() == "precious"
        assert sorted(p.name for p in user.iterdir()) == ["keep.txt"]
        if rc == 0:
            assert out_choice == "new"
            assert 4 <= json.loads((out / "summary.json").read_text())["dcs"] <= 12
            assert (out / "config.json").exists() and (out / "epochs.csv").exists()
        else:
            assert rc == 2, err
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
            assert sorted(p.name for p in d.iterdir()) == ["user"]  # no results folder, no temporary one


@PROFILE
@given(flags=st.lists(flag_values, max_size=4), out_choice=st.sampled_from(["new", "new", "user", "file", "under_file"]))
# cases that once ended in an internal error, always tried: a load so small that no request arrives (a run that
# serves nothing); loads and cohorts whose real request counts overflow (auto cohorts keep them simulable)
@example(flags=[("--load-scale", "1e-9")], out_choice="new")
@example(flags=[("--load-scale", "1e300")], out_choice="new")
@example(flags=[("--set", "cohort_size=1" + "0" * 30)], out_choice="new")
def test_cli_values_and_overrides(flags, out_choice, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["--scheduler", "nearest", *BASE] + [x for pair in flags for x in pair]
    _check(args, out_choice, capsys)


cell = st.one_of(st.integers(-5, 9000).map(str), st.sampled_from(["", "x", "nan", "1.5", "1e12", "-0"]))
row = st.tuples(st.one_of(st.floats(0, 1799, allow_nan=False).map(lambda t: f"{t:.3f}"), cell),
                st.sampled_from(["ChatGPT", "GPT-4", "gpt-4", "Llama", ""]), cell, cell)


@PROFILE
@given(rows=st.lists(row, max_size=25), header=st.sampled_from(["Timestamp,Model,Request tokens,Response tokens",
                                                                  "Timestamp,Request tokens,Response tokens",
                                                                  "Time,Foo", ""]),
       policy=st.sampled_from(["clip", "drop", "refuse"]), scale=st.sampled_from(["1", "0.5", "3", "auto"]))
# once an internal error: a trace whose only request failed (0 output tokens), so the run serves nothing
@example(rows=[("0.000", "ChatGPT", "0", "0")], header="Timestamp,Model,Request tokens,Response tokens",
         policy="clip", scale="1")
def test_csv_traces(rows, header, policy, scale, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with tempfile.TemporaryDirectory() as d:
        trace = Path(d) / "trace.csv"
        n = header.count(",") + 1
        body = "".join(",".join(([t, m, p, o] if n == 4 else [t, p, o] if n == 3 else [t, p][:n])) + "\n"
                       for t, m, p, o in rows)
        trace.write_text(header + "\n" + body)
        args = ["--scheduler", "nearest", *BASE, "--trace", str(trace), "--load-scale", scale,
                "--set", f"context_policy={policy}"]
        _check(args, "new", capsys)
