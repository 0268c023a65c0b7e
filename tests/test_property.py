"""Property-based test (hypothesis): whatever a user types, run.py exits 0 with a results folder whose totals are
finite and whose arrivals are accounted for, or exits 2 with exactly one line on stderr and no results folder; no
file that existed before (the user's files, the trace, the config file) is changed.

The classes thrown at it: CLI values and overrides (overridden ones too), config JSON files, trace cells, plug-in
return values, `--out` targets (a user's folder or file, a user's look-alike results folder with --overwrite, a
pipe) and sweep flags.

Runs `run.main` in-process on tiny worlds (4 datacenters of 12 nodes, 15 minutes) so the examples stay fast.
"""
import json
import math
import os
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
SLOW = {"hours", "plan_timeout_s"}
PLUGINS = ("RaisesInPlan", "NanPlan", "ComplexPlan", "TableOutside", "TableEpochs", "ExtraNotADict", "ExecutionText",
           "RouteTrue", "ExitsInPlan", "OnlineToLast")
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
                                                       *(f"tests.plugins:{c}" for c in PLUGINS)])),
    st.tuples(st.just("--fleet"), st.sampled_from(["auto", "fixed", "x", ""])),
    st.tuples(st.just("--cohort-size"), st.sampled_from(["1", "auto", str(2 ** 53), "0", "1.5"])),
    st.tuples(st.just("--ablate"), st.sampled_from(["no-her", "bogus", ""])),
    st.tuples(st.just("--set"), st.builds(lambda n, v: f"{n}={v}", st.sampled_from(NAMES), st.sampled_from(ODD))),
    st.tuples(st.just("--set"), st.sampled_from(["novalue", "=1", "unknown_param=1"])),
)


def _files(folder: Path) -> dict:
    """Every entry below `folder` and its content (a pipe or folder by its kind)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else "dir" if p.is_dir() else "other")
            for p in sorted(folder.rglob("*"))}


def _check(args, out_choice, capsys, inputs: Path | None = None):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        user = d / "user"
        user.mkdir()
        keep = user / "keep.txt"
        keep.write_text("precious")
        lookalike = user / "old"  # a user's folder holding files named like a run's
        lookalike.mkdir()
        (lookalike / "summary.json").write_text('{"mine": 1}')
        (lookalike / "config.json").write_text('{"mine": 2}')
        os.mkfifo(user / "pipe")
        out, extra = {"new": (d / "new" / "out", []), "user": (user, []), "file": (keep, []),
                      "under_file": (keep / "x", []), "lookalike": (lookalike, ["--overwrite"]),
                      "pipe": (user / "pipe", [])}[out_choice]
        before = _files(user), (_files(inputs) if inputs else None)
        rc = run_cli.main(args + ["--out", str(out), *extra])
        err = capsys.readouterr().err
        assert (_files(user), (_files(inputs) if inputs else None)) == before  # nothing that existed was changed
        if rc == 0:
            assert out_choice == "new"
            s = json.loads((out / "summary.json").read_text())
            assert 4 <= s["dcs"] <= 12
            assert (out / "config.json").exists() and (out / "epochs.csv").exists()
            assert all(math.isfinite(s[k]) for k in ("energy_kwh", "cost_usd", "water_l", "carbon_kg", "it_kwh"))
            assert s["requests_arrived"] == s["requests_served"] + s["requests_failed"] + s["requests_queued_at_end"]
            assert min(s["requests_served"], s["requests_failed"], s["requests_queued_at_end"]) >= 0
        else:
            assert rc == 2, err
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
            assert sorted(p.name for p in d.iterdir()) == ["user"]  # no results folder, no temporary one


@PROFILE
@given(flags=st.lists(flag_values, max_size=4),
       out_choice=st.sampled_from(["new", "new", "new", "user", "file", "under_file", "lookalike", "pipe"]))
# cases that once ended in an internal error, always tried: a load so small that no request arrives (a run that
# serves nothing); loads and cohorts whose real request counts overflow (auto cohorts keep them simulable)
@example(flags=[("--load-scale", "1e-9")], out_choice="new")
@example(flags=[("--load-scale", "1e300")], out_choice="new")
@example(flags=[("--set", "cohort_size=1" + "0" * 30)], out_choice="new")
def test_cli_values_and_overrides(flags, out_choice, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["--scheduler", "nearest", *BASE] + [x for pair in flags for x in pair]
    _check(args, out_choice, capsys)


cell = st.one_of(st.integers(-5, 9000).map(str), st.sampled_from(["", "x", "nan", "1.5", "1e12", "-0", "True",
                                                                  "False"]))
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
        _check(args, "new", capsys, inputs=Path(d))


json_value = st.one_of(st.sampled_from([0, -1, 1, 2, 0.5, 1e308, -1e308, 1e-300, True, None, "", "x", "auto", [],
                                        [1, 2], [400, 700], {"a": 1}, "1" + "0" * 30]),
                       st.floats(allow_nan=True, allow_infinity=True))


@settings(deadline=None, max_examples=120, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(entries=st.dictionaries(st.sampled_from(NAMES + ["nearest", "marlin", "no_such"]), json_value, max_size=4),
       raw=st.sampled_from([None, "", "[1]", "{", "null", "\u0000"]))
def test_config_files(entries, raw, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "c.json"
        f.write_text(raw if raw is not None else json.dumps(entries))
        _check(["--scheduler", "nearest", *BASE, "--config", str(f)], "new", capsys, inputs=Path(d))


SWEEP_FLAGS = st.one_of(
    st.tuples(st.just("--set"), st.sampled_from(["seed=7", "dcs=5", "hours=1", "scheduler=uniform", "weights=1,0,0,0",
                                                 "nodes_per_dc=0", "no_such=1"])),
    st.tuples(st.just("--schedulers"), st.sampled_from(["", "nearest,nearest", "nope", ","])),
    st.tuples(st.just("--trace"), st.sampled_from(["/nonexistent.csv", "nope"])),
    st.tuples(st.just("--start"), st.sampled_from(["1999-01-01", "x"])),
    st.tuples(st.just("--load-scale"), st.sampled_from(["1e308", "0", "x"])),
    st.tuples(st.just("--seeds"), st.sampled_from(["0", "-1", "x"])),
    st.tuples(st.just("--dcs"), st.sampled_from(["3", "13"])),
)


@settings(deadline=None, max_examples=25, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(flags=st.lists(SWEEP_FLAGS, min_size=1, max_size=2))
def test_bad_sweep_flags_are_refused_before_any_run(flags, capsys, monkeypatch):
    """Every flag above is bad: the sweep is refused with one line before it makes any folder or process."""
    monkeypatch.chdir(ROOT)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "study"
        args = ["compare", "--schedulers", "nearest", "--seeds", "1", "--dcs", "4", "--hours", "0.25",
                "--workers", "1", "--no-progress", "--out", str(out)]
        rc = run_cli.main(args + [x for pair in flags for x in pair])
        err = capsys.readouterr().err
        if flags == [("--schedulers", "nearest,nearest")] or all(f == ("--schedulers", "nearest,nearest")
                                                                 for f in flags):
            assert rc == 0, err  # a name given twice is run once
            return
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert not out.exists()
