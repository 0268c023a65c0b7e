"""simcore.results: the summary's counts and sums add up, the tables agree with the record, and a results folder
is written atomically and never replaces what a run did not write."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from schedulers.registry import create
from simcore.config import Config
from simcore.engine import Engine
from simcore.errors import OutputError
from simcore.results import MANIFEST, RESULT_FILES, _weighted_quantile, epoch_table, summary, write_results
from simcore.rng import stream
from tests.conftest import small_config
from traces.loader import load_workload

FAIL_EVERY = 7  # every 7th request of the trace fails (zero output tokens: counted, never served)


def overloaded_run(cohort_size: str):
    """One overloaded epoch (6 nodes per datacenter, one request per node at a time) on the real trace, with
    failed requests: cut at the horizon (no drain), some requests are still queued, some failed, the rest served."""
    cfg = small_config(nodes_per_dc=6, max_batch=1, load_scale="0.5", hours=0.25, cohort_size=cohort_size,
                       drain=False)
    wl = load_workload(cfg, stream(cfg.seed, "trace"))
    out = wl.output_tokens.copy()
    out[::FAIL_EVERY] = 0
    wl = dataclasses.replace(wl, output_tokens=out)
    return Engine(cfg, create("uniform"), workload=wl).run()


@pytest.fixture(scope="module")
def exact():
    return overloaded_run("1")


@pytest.fixture(scope="module")
def cohorts():
    return overloaded_run("10")


def test_exact_summary_counts_each_request_once(exact):
    rec = exact
    s = summary(rec, epoch_table(rec))
    n = len(rec.ttft_s)
    failed = np.zeros(n, dtype=bool)
    failed[::FAIL_EVERY] = True
    first_token = ~np.isnan(rec.ttft_s)
    assert s["requests_arrived"] == s["requests_real"] == s["requests_simulated"] == n
    assert s["requests_failed"] == failed.sum() == -(-n // FAIL_EVERY)
    assert s["requests_served"] == first_token.sum()
    assert s["requests_queued_at_end"] == (~failed & ~first_token).sum() > 0  # the overload left a queue
    assert not (failed & first_token).any()
    assert s["requests_served"] + s["requests_failed"] + s["requests_queued_at_end"] == s["requests_arrived"]


def test_cohort_summary_counts_real_requests(cohorts):
    rec = cohorts
    s = summary(rec, epoch_table(rec))
    n = len(rec.ttft_s)
    assert rec.cohort == s["cohort_size"] == 10
    assert s["requests_simulated"] == n
    assert s["requests_arrived"] == s["requests_real"] == 10 * n
    assert s["requests_failed"] == 10 * -(-n // FAIL_EVERY)
    assert s["requests_served"] == round(rec.served.sum())  # a cohort row may be partly served at the horizon
    assert s["requests_served"] + s["requests_failed"] + s["requests_queued_at_end"] == s["requests_arrived"]
    assert s["requests_queued_at_end"] >= 0


@pytest.mark.parametrize("which", ["exact", "cohorts"])
def test_epoch_table_adds_up_to_the_summary(which, request):
    rec = request.getfixturevalue(which)
    ep = epoch_table(rec)
    s = summary(rec, ep)
    assert len(ep) == rec.cfg.epochs * rec.cfg.dcs
    # every request that did not fail was routed, and is counted in its epoch's row of its datacenter
    assert ep["requests"].sum() == s["requests_arrived"] - s["requests_failed"]
    assert abs(ep["served"].sum() - s["requests_served"]) <= len(ep)  # rows round their (cohort) shares
    # the energy, cost, water and carbon of the summary are the epoch rows' sums, and energy its three parts
    for key, col in (("energy_kwh", "total_kwh"), ("cost_usd", "cost_usd"), ("water_l", "water_l"),
                     ("carbon_kg", "carbon_kg"), ("it_kwh", "it_kwh")):
        assert s[key] == pytest.approx(ep[col].sum(), rel=1e-12)
    parts = ep["it_kwh"].sum() + ep["cooling_kwh"].sum() + ep["infra_kwh"].sum()
    assert s["energy_kwh"] == pytest.approx(parts, rel=1e-9)
    assert s["energy_wh_per_request"] == pytest.approx(s["energy_kwh"] * 1000.0 / s["requests_served"])
    # the TTFT sum of the rows is the summary's total
    assert ep["ttft_sum_s"].sum() == pytest.approx(s["ttft_total_s"], rel=1e-9)


def test_exact_ttft_statistics_are_plain_statistics(exact):
    rec = exact
    s = summary(rec, epoch_table(rec))
    t = rec.ttft_s[~np.isnan(rec.ttft_s)]
    assert s["ttft_mean_s"] == pytest.approx(t.mean(), rel=1e-12)
    assert s["ttft_p50_s"] == pytest.approx(np.percentile(t, 50), rel=1e-12)
    assert s["ttft_p99_s"] == pytest.approx(np.percentile(t, 99), rel=1e-12)
    assert s["sla_violation_rate"] == pytest.approx(np.mean(t > rec.cfg.sla_ttft_s))


def test_weighted_quantile_by_hand():
    v, w = np.array([4.0, 1.0, 3.0, 2.0]), np.array([7.0, 1.0, 1.0, 1.0])
    # sorted values 1, 2, 3, 4 carry weights 1, 1, 1, 7 -> cumulative 1, 2, 3, 10; the q-quantile is the first
    # value whose cumulative weight reaches q x 10
    assert _weighted_quantile(v, w, 0.5) == 4.0  # 5 of 10: only the heavy 4 reaches it
    assert _weighted_quantile(v, w, 0.2) == 2.0  # 2 of 10: reached at 2
    assert _weighted_quantile(v, w, 0.25) == 3.0  # 2.5 of 10: reached at 3
    assert _weighted_quantile(v, np.ones(4), 0.5) == 2.5  # equal weights: numpy's interpolated percentile
    assert np.isnan(_weighted_quantile(np.array([]), np.array([]), 0.5))


# --- the results folder --------------------------------------------------------------------------------------
def test_write_results_files_manifest_and_config(exact, tmp_path):
    out = tmp_path / "r"
    s = write_results(exact, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES + (MANIFEST,))
    assert json.loads((out / MANIFEST).read_text())["files"] == sorted(RESULT_FILES)
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(s))
    config = json.loads((out / "config.json").read_text())  # every parameter by name, the scheduler's in its section
    assert config.pop(exact.scheduler) == exact.scheduler_params == {}  # uniform has no parameters
    assert Config.from_dict(config) == exact.cfg
    csv, parquet = pd.read_csv(out / "epochs.csv"), pd.read_parquet(out / "epochs.parquet")
    assert list(csv.columns) == list(parquet.columns)
    assert csv["requests"].tolist() == parquet["requests"].tolist() == epoch_table(exact)["requests"].tolist()
    assert not list(tmp_path.glob(".r.tmp-*"))  # the temporary folder was renamed into place


def test_a_folder_with_other_files_is_never_replaced(exact, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="notes.txt"):
            write_results(exact, out, overwrite=overwrite)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_earlier_results_are_replaced_only_with_overwrite(exact, cohorts, tmp_path):
    out = tmp_path / "r"
    write_results(exact, out)
    with pytest.raises(OutputError, match="--overwrite"):
        write_results(cohorts, out)
    assert json.loads((out / "summary.json").read_text())["cohort_size"] == 1
    write_results(cohorts, out, overwrite=True)
    assert json.loads((out / "summary.json").read_text())["cohort_size"] == 10
    (out / "draft.md").write_text("mine")  # a file the run did not write, put into its folder
    with pytest.raises(OutputError, match="draft.md"):
        write_results(exact, out, overwrite=True)
    assert (out / "draft.md").read_text() == "mine"


def disk_full(*args, **kwargs):
    raise OSError("disk full")


def test_a_failed_write_leaves_nothing_behind(exact, tmp_path, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)  # the second file of four
    out = tmp_path / "new" / "deeper" / "r"
    with pytest.raises(OSError, match="disk full"):
        write_results(exact, out)
    assert list(tmp_path.iterdir()) == []  # no results, no temporary folder, not even the parents it made


def test_a_failed_overwrite_keeps_the_earlier_results(exact, cohorts, tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_results(exact, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(OSError, match="disk full"):
        write_results(cohorts, out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_an_unwritable_place_is_refused_before_writing(exact, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        write_results(exact, tmp_path / "file")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        write_results(exact, tmp_path / "file" / "r")
    assert (tmp_path / "file").read_text() == "x"
