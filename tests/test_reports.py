"""Comparative studies: hypervolume, intervals, sweeps (resume, failures, local pool, Ray) and the report."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

import run
from reports import analysis, experiments
from reports.experiments import RunSpec, Sweep, execute
from reports.hypervolume import box_volume, hypervolume, non_dominated, normalize, study_hypervolumes
from reports.report import write_report
from reports.stats import diff_ci, mean_ci, overlap
from reports.study import load

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "nodes_per_dc=30", "--load-scale", "0.004"]  # 4 DCs x 30 nodes, a thinned real day


def _cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "run.py", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


# --- hypervolume ------------------------------------------------------------------------------------------------
def test_hypervolume_2d_staircase_by_hand():
    # (1,3), (2,2), (3,1) up to (4,4): strips of width 1 and heights 1, 2, 3 -> 6
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1]]), np.array([4, 4])) == pytest.approx(6.0)
    # adding a dominated point and a point beyond the reference changes nothing
    pts = np.array([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]])
    assert hypervolume(pts, np.array([4, 4])) == pytest.approx(6.0)
    assert box_volume(np.array([1, 1]), np.array([4, 4])) == pytest.approx(9.0)
    assert hypervolume(np.array([[1, 1]]), np.array([4, 4])) == pytest.approx(9.0)


def test_hypervolume_4d_two_boxes_by_hand():
    a, b = [0, 0, 0.5, 0.5], [0.5, 0.5, 0, 0]
    ref = np.ones(4)
    # |A| = 1*1*.5*.5, |B| = .5*.5*1*1, |A and B| = .5^4: union 0.25 + 0.25 - 0.0625
    assert hypervolume(np.array([a, b]), ref) == pytest.approx(0.4375)
    assert hypervolume(np.array([a, b, [0.6, 0.6, 0.6, 0.6]]), ref) == pytest.approx(0.4375)
    assert box_volume(np.array(a), ref) == pytest.approx(0.25)
    # a point on the reference in one objective contributes nothing (the paper's rule, no offset)
    assert hypervolume(np.array([[0, 0, 0, 1.0]]), ref) == 0.0


def test_study_normalization_and_reference_offset():
    groups = {"A": np.array([[0.0, 10.0], [10.0, 0.0]]), "B": np.array([[5.0, 5.0]])}
    strict = study_hypervolumes(groups, ref_offset=0.0)
    assert strict["A"]["phv"] == 0.0  # both points are the worst of the study in one objective
    assert strict["B"]["phv"] == pytest.approx(0.25)
    off = study_hypervolumes(groups, ref_offset=0.01)
    assert off["A"]["phv"] == pytest.approx(2 * 1.01 * 0.01 - 0.01 ** 2)
    assert off["B"]["phv"] == pytest.approx(0.51 ** 2)
    assert off["A"]["front"] == 2 and off["B"]["points"] == 1
    np.testing.assert_allclose(normalize(np.array([[2.0, 5.0], [4.0, 5.0]])), [[0, 0], [1, 0]])
    assert len(non_dominated(np.array([[1, 2], [2, 1], [2, 2], [1, 2]]))) == 2


# --- intervals --------------------------------------------------------------------------------------------------
def test_intervals_of_quantities_stay_non_negative_and_rates_in_0_1():
    # DDQN's water over two seeds: a plain t-interval ran to [-311,482, 986,452] L
    a, b = 170_000.0, 505_000.0
    m, s = (a + b) / 2, abs(a - b) / math.sqrt(2)
    t = sps.t.ppf(0.975, 1)
    plain = mean_ci([a, b])
    assert plain.low < 0
    log = mean_ci([a, b], scale="log")
    h = t * (s / math.sqrt(2)) / m  # delta method: the standard error of log(mean) is s / (m sqrt n)
    assert log.mean == m and log.low == pytest.approx(m * math.exp(-h)) and log.high == pytest.approx(m * math.exp(h))
    assert 0 < log.low < m < log.high
    rate = mean_ci([0.001, 0.05], scale="logit")
    assert 0 < rate.low < rate.mean < rate.high < 1
    z = math.log(0.0255 / 0.9745)
    h = t * (0.049 / math.sqrt(2) / math.sqrt(2)) / (0.0255 * 0.9745)
    assert rate.low == pytest.approx(1 / (1 + math.exp(-(z - h))))
    assert mean_ci([0.0, 0.0], scale="logit") == (2, 0.0, 0.0, 0.0)  # no spread: collapses


def test_t_interval_on_a_known_sample():
    ci = mean_ci([1, 2, 3, 4, 5])
    # s = sqrt(2.5), sem = s / sqrt(5) = 0.70711, t(0.975, 4) = 2.776445
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (ci.n, ci.mean) == (5, 3.0)
    assert ci.low == pytest.approx(3 - half) and ci.high == pytest.approx(3 + half)
    assert ci.low == pytest.approx(1.0367568385224393)
    one = mean_ci([7.0])
    assert one.mean == 7.0 and math.isnan(one.low)
    assert mean_ci([2.0, 2.0, 2.0])[1:] == (2.0, 2.0, 2.0)
    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 4.0, 6.0, 7.0]
    d = diff_ci(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.mean == pytest.approx(2.5 - 5.0)
    assert (d.low, d.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert overlap(mean_ci([1, 2]), mean_ci([1.5, 2.5])) and not overlap(mean_ci([1, 1.1]), mean_ci([5, 5.1]))


# --- sweeps -----------------------------------------------------------------------------------------------------
def _sweep(tmp_path, schedulers=("uniform", "nearest"), seeds=(0, 1), kind="compare"):
    runs = experiments.compare_runs(schedulers, seeds, 4, 2.0)
    return Sweep(kind, tmp_path / kind, runs, 2.0, list(TINY), {"schedulers": list(schedulers)})


def test_tiny_sweep_end_to_end_through_the_report(tmp_path):
    out = tmp_path / "study"
    r = _cli("compare", "--schedulers", "uniform,nearest", "--seeds", "2", "--hours", "2", "--dcs", "4", *TINY,
             "--workers", "2", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "compare: 4 run, 0 already done, 0 failed" in r.stdout
    man = json.loads((out / "compare" / "sweep.json").read_text())
    assert man["kind"] == "compare" and man["seeds"] == [0, 1] and man["hours"] == 2.0
    assert sorted(x["name"] for x in man["runs"]) == ["nearest-d4-s0", "nearest-d4-s1", "uniform-d4-s0",
                                                      "uniform-d4-s1"]
    assert json.loads((out / "compare" / "failures.json").read_text()) == []
    # a sweep's run is the command line's run: same seed, same files
    solo = tmp_path / "solo"
    assert run.main(["--scheduler", "nearest", "--dcs", "4", "--seed", "1", "--hours", "2", *TINY, "--out", str(solo),
                     "--no-progress"]) == 0
    assert (solo / "epochs.csv").read_bytes() == (out / "compare" / "nearest-d4-s1" / "epochs.csv").read_bytes()

    r = _cli("report", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "## Reproduction of the paper's claims" in md and "## State-of-the-art comparison (Fig. 3), D = 4" in md
    assert "| nearest | 4 | 2 |" in md and "| uniform | 4 | 2 |" in md
    assert "![Fig. 3, D=4](figures/fig3_compare_d4.png)" in md
    pngs = sorted((out / "figures").glob("*.png"))
    assert [p.name for p in pngs] == ["fig3_compare_d4.png", "fig4_hypervolume_d4.png"]
    import matplotlib.image as mpimg

    for p in pngs:
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img[..., :3].std() > 0.01  # not a blank canvas
    assert html.count("data:image/png;base64,") == len(pngs)
    st = __import__("pandas").read_csv(out / "stats.csv")
    t = st[(st["metric"] == "ttft_mean_s")].set_index("label")
    for lab in ("uniform", "nearest"):
        vals = [json.loads((out / "compare" / f"{lab}-d4-s{k}" / "summary.json").read_text())["ttft_mean_s"]
                for k in (0, 1)]
        assert t.loc[lab, "n"] == 2 and t.loc[lab, "mean"] == pytest.approx(np.mean(vals))
        assert t.loc[lab, "ci_low"] == pytest.approx(mean_ci(vals, scale="log").low)  # a quantity: log scale
    assert "feasible" in st.columns and st["feasible"].all()  # both serve their load
    hv = __import__("pandas").read_csv(out / "hypervolume.csv")
    assert set(hv["framework"]) == {"uniform", "nearest"} and (hv["phv"] >= 0).all()
    assert (hv["hv_feasible"] > 0).all()
    rep = __import__("pandas").read_csv(out / "reproduction.csv")
    assert len(rep) == len(analysis.CLAIMS) and "subject" in rep.columns


def test_resume_skips_finished_runs_and_reruns_incomplete_ones(tmp_path):
    sw = _sweep(tmp_path)
    first = execute(sw, workers=1, progress=False)
    assert sorted(first.ran) == sorted(r.name for r in sw.runs) and not first.skipped
    kept = {r.name: (sw.path / r.name / "summary.json").stat().st_mtime_ns for r in sw.runs}
    broken = sw.path / "uniform-d4-s1"
    (broken / "summary.json").unlink()
    (broken / "note.txt").write_text("mine")
    again = execute(sw, workers=1, progress=False)
    assert again.ran == ["uniform-d4-s1"]
    assert sorted(again.skipped) == ["nearest-d4-s0", "nearest-d4-s1", "uniform-d4-s0"]
    for name in again.skipped:
        assert (sw.path / name / "summary.json").stat().st_mtime_ns == kept[name]
    assert (broken / "summary.json").is_file() and not (broken / "note.txt").exists()
    aside = [Path(p) for p in again.set_aside]
    assert len(aside) == 1 and (aside[0] / "note.txt").read_text() == "mine"  # moved aside, not deleted
    assert execute(sw, workers=1, progress=False).ran == []
    other = Sweep("compare", sw.path, experiments.compare_runs(("uniform",), (0,), 4, 1.0), 1.0, list(TINY))
    with pytest.raises(experiments.ConfigError, match="hours=2.0, not 1.0"):
        execute(other, workers=1, progress=False)


def test_failing_runs_are_reported_by_name_and_do_not_stop_the_others(tmp_path):
    sw = _sweep(tmp_path, schedulers=("tests.plugins:Raises", "uniform", "tests.plugins:WrongShape"), seeds=(0,))
    res = execute(sw, workers=2, progress=False)
    assert res.ran == ["uniform-d4-s0"]
    failed = {f["run"]: f["error"] for f in res.failures}
    assert set(failed) == {"tests.plugins_Raises-d4-s0", "tests.plugins_WrongShape-d4-s0"}
    assert "plan() raised RuntimeError: plug-in bug" in failed["tests.plugins_Raises-d4-s0"]
    assert "plan has shape" in failed["tests.plugins_WrongShape-d4-s0"]
    assert json.loads((sw.path / "failures.json").read_text()) == res.failures
    study = load(tmp_path)
    assert list(study.runs["run"]) == ["uniform-d4-s0"]
    assert {m["run"] for m in study.missing} == set(failed)


def test_a_sweeps_scheduler_parameter_goes_to_the_runs_of_schedulers_that_have_it(tmp_path):
    a = experiments._parser("compare").parse_args(
        ["--schedulers", "uniform,marlin", "--seeds", "1", "--dcs", "4", "--set", "marlin_updates_per_epoch=2",
         "--set", "nodes_per_dc=30", "--out", str(tmp_path)])
    (sweep,) = experiments.sweeps_from_args("compare", a)
    argv = {r.scheduler: r.argv(sweep.run_args) for r in sweep.runs}
    assert "marlin_updates_per_epoch=2" in argv["marlin"] and "marlin_updates_per_epoch=2" not in argv["uniform"]
    assert "nodes_per_dc=30" in argv["uniform"] and "nodes_per_dc=30" in argv["marlin"]


@pytest.mark.parametrize("args, says", [
    (["compare", "--schedulers", "nope"], "unknown scheduler 'nope'"),
    (["compare", "--schedulers", "uniform,nearest", "--set", "marlin_gamma=0.5"], "marlin_gamma"),
    (["compare", "--seeds", "0"], "--seeds 0"),
    (["compare", "--set", "no_such=1"], "no_such"),
    (["compare", "--dcs", "3"], "--dcs"),
    (["pareto", "--weights", "0.5,0.5,0.5,0.5"], "sum to 2"),
    (["report"], "no such folder"),
])
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, says):
    out = tmp_path / "study"
    argv = [*args, str(out)] if args == ["report"] else [*args, "--out", str(out), "--no-progress"]
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not out.exists()


def test_ray_executor_on_a_local_ray(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is an optional extra (pip install marlin-sim[ray]); CI installs it")
    experiments.local_ray(2)
    try:
        sw = _sweep(tmp_path, schedulers=("nearest", "tests.plugins:Raises"), seeds=(0,))
        res = execute(sw, workers=2, executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert res.ran == ["nearest-d4-s0"]
    assert [f["run"] for f in res.failures] == ["tests.plugins_Raises-d4-s0"]
    solo = tmp_path / "solo"
    assert run.main(["--scheduler", "nearest", "--dcs", "4", "--seed", "0", "--hours", "2", *TINY, "--out", str(solo),
                     "--no-progress"]) == 0
    for name in ("epochs.csv", "config.json"):
        assert (sw.path / "nearest-d4-s0" / name).read_bytes() == (solo / name).read_bytes()


# --- the report on a made-up study (exact numbers, no simulation) -----------------------------------------------
def _fake_study(root: Path, kind: str, values: dict, dcs: int = 8) -> None:
    """values: (label, scheduler, ablate) -> list over seeds of (ttft, carbon, water, cost[, SLA violation share])."""
    runs = []
    for (label, sched, ablate), per_seed in values.items():
        for seed, (t, c, w, k, *sla) in enumerate(per_seed):
            name = f"{label}-d{dcs}-s{seed}".replace("[", "_").replace("]", "")
            runs.append(RunSpec(name, sched, dcs, seed, 24.0, label, ablate=ablate))
            folder = root / kind / name
            folder.mkdir(parents=True)
            (folder / "summary.json").write_text(json.dumps(
                {"ttft_mean_s": t, "carbon_kg": c, "water_l": w, "cost_usd": k, "wall_s": 1.0,
                 "sla_violation_rate": sla[0] if sla else 0.0}))
    experiments.write_json(root / kind / "sweep.json", Sweep(kind, root / kind, runs, 24.0, [], {"dcs": [dcs]})
                           .manifest())


def test_reproduction_verdicts_hypervolume_and_ablation_on_known_numbers(tmp_path):
    jitter = (0.99, 1.0, 1.01)

    def seeds(t, c, w, k):
        return [(t * j, c * j, w * j, k * j) for j in jitter]

    _fake_study(tmp_path, "compare", {
        ("marlin-minlatency", "marlin-minlatency", ()): seeds(1.0, 80, 800, 8),
        ("marlin-mincarbon", "marlin-mincarbon", ()): seeds(3.0, 40, 700, 7),
        ("marlin", "marlin", ()): seeds(2.0, 60, 600, 6),
        ("qlearning", "qlearning", ()): seeds(2.0, 100, 1000, 10),
        ("slit", "slit", ()): seeds(2.5, 120, 600, 6),
        ("nearest", "nearest", ()): seeds(0.5, 200, 2000, 20),
    })
    _fake_study(tmp_path, "ablate", {
        ("marlin", "marlin", ()): seeds(1.0, 1.0, 1.0, 1.0),
        ("marlin[no-veto]", "marlin", ("no-veto",)): seeds(2.0, 2.0, 2.0, 2.0),
    })
    files = write_report(tmp_path)
    rep = __import__("pandas").read_csv(files["reproduction.csv"]).set_index("claim")
    ttft = rep.loc["MARLIN-MinLatency reduces TTFT by 18.67 % over the best baseline (QLearning)"]
    assert (ttft["subject_label"], ttft["versus_label"]) == ("marlin-minlatency", "qlearning")
    assert ttft["measured_pct"] == pytest.approx(-50.0) and ttft["verdict"] == "holds"
    carbon = rep.loc["MARLIN-MinCarbon reduces carbon 33.61 % more than the best baseline (QLearning)"]
    assert carbon["versus_label"] == "qlearning"
    assert carbon["measured_pct"] == pytest.approx(-60.0) and carbon["verdict"] == "holds"
    assert rep.loc["MARLIN-MinLatency beats the best reference scheduler on TTFT", "verdict"] == "does not hold"
    # each claim is judged on the variant the paper names, not on whichever MARLIN variant is best
    assert carbon["subject"] == carbon["subject_label"] == "marlin-mincarbon"
    assert ttft["subject"] == "marlin-minlatency"
    assert rep.loc["MARLIN-Balanced vs SLIT: carbon -61.07 %", "subject"] == "marlin"
    assert rep.loc["MARLIN-Balanced vs SLIT: water -81.11 %", "verdict"] == "inconclusive"  # equal numbers
    assert rep.loc["MARLIN-Balanced vs SLIT: carbon -61.07 %", "measured_pct"] == pytest.approx(-50.0)
    # a bound: Balanced's TTFT (2.0) vs QLearning's (2.0) is +0 %, within "at most 23.61 % slower"; its carbon
    # (60 vs 100, -40 %) is within "at most 2.77 % higher"; its water -40 % meets "at least 18.66 % less"
    for claim in ("MARLIN-Balanced is at most 2.77 % higher in carbon than the best RL baseline (QLearning)",
                  "MARLIN-Balanced reduces water by at least 18.66 % vs the best RL baseline (DDQN)"):
        assert rep.loc[claim, "measured_pct"] == pytest.approx(-40.0) and rep.loc[claim, "verdict"] == "holds"
    assert rep.loc["MARLIN-Balanced is at most 23.61 % slower in TTFT than the best RL baseline (QLearning)",
                   "verdict"] == "holds"
    veto = rep.loc["without the veto, MARLIN's PHV decreases 14.9 %"]
    assert veto["verdict"] == "holds" and veto["verdict_paper"] == "holds"
    # ablation study normalized over its 6 points: full's seeds are the best three, no-veto's the worst three;
    # no-veto's best point (1.98 in every objective) sits at (1.98-0.99)/(2.02-0.99) of the range
    z = (1.98 - 0.99) / (2.02 - 0.99)
    abl = __import__("pandas").read_csv(files["ablation.csv"]).set_index("ablation")
    assert abl.loc["no-veto", "phv"] == pytest.approx((1.01 - z) ** 4)
    assert abl.loc["full", "phv"] == pytest.approx(1.01 ** 4)
    assert veto["measured_paper_pct"] == pytest.approx(100 * ((1.01 - z) ** 4 / 1.01 ** 4 - 1))
    # the feasible hypervolume takes TTFT on the log10 scale: in TTFT no-veto's best seed sits at
    # log(1.98 / 0.99) / log(2.02 / 0.99) of the range, in the other three objectives as before
    zt = math.log10(1.98 / 0.99) / math.log10(2.02 / 0.99)
    assert abl.loc["no-veto", "hv_feasible"] == pytest.approx((1.01 - zt) * (1.01 - z) ** 3)
    assert veto["measured_pct"] == pytest.approx(100 * ((1.01 - zt) * (1.01 - z) ** 3 / 1.01 ** 4 - 1))
    hv = __import__("pandas").read_csv(files["hypervolume.csv"]).set_index("framework")
    assert hv.loc["MARLIN", "points"] == 9 and hv.loc["qlearning", "points"] == 3 and hv.loc["slit", "points"] == 1
    assert hv.loc["MARLIN", "phv_pct_of_marlin"] == pytest.approx(100.0)
    assert hv.loc["MARLIN", "hv_feasible_pct_of_marlin"] == pytest.approx(100.0) and hv["feasible"].all()
    assert hv.loc["slit", "phv"] < hv.loc["MARLIN", "phv"]  # SLIT's point is dominated by MARLIN-Balanced's
    names = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert names == ["fig3_compare_d8.png", "fig4_hypervolume_d8.png", "fig6_ablation_d8.png"]


def test_both_sides_of_a_claim_are_held_to_the_sla_gate(tmp_path):
    # Q-learning has the lowest TTFT and carbon of the baselines but leaves half its requests late: the best
    # baseline that serves its load is SLIT (0 % violations), against which MinLatency's TTFT is 1.0 vs 2.5 s
    _fake_study(tmp_path, "compare", {
        ("marlin-minlatency", "marlin-minlatency", ()): [(1.0 * j, 80, 800, 8, 0.001) for j in (0.99, 1.0, 1.01)],
        ("qlearning", "qlearning", ()): [(0.5 * j, 10, 100, 1, 0.5) for j in (0.99, 1.0, 1.01)],
        ("slit", "slit", ()): [(2.5 * j, 120, 600, 6, 0.0) for j in (0.99, 1.0, 1.01)],
        ("marlin", "marlin", ()): [(2.0 * j, 60, 600, 6, 0.02) for j in (0.99, 1.0, 1.01)],
    })
    files = write_report(tmp_path)
    rep = __import__("pandas").read_csv(files["reproduction.csv"]).set_index("claim")
    row = rep.loc["MARLIN-MinLatency reduces TTFT by 18.67 % over the best baseline (QLearning)"]
    assert (row["versus_label"], row["verdict"]) == ("slit", "holds")
    assert row["measured_pct"] == pytest.approx(-60.0)
    assert (row["versus_paper_label"], row["verdict_paper"]) == ("qlearning", "does not hold")  # the paper's rule
    # MARLIN-Balanced has 2 % violations: every claim on it reads "MARLIN infeasible", never a percentage
    bal = rep.loc["MARLIN-Balanced vs SLIT: carbon -61.07 %"]
    assert bal["verdict"] == "MARLIN infeasible" and math.isnan(bal["measured_pct"])
    assert bal["verdict_paper"] == "holds"
    # no RL baseline serves its load: MinLatency has no feasible RL to be judged against either
    assert rep.loc["the best RL baseline covers at most 68.27 % of MARLIN's hypervolume (-31.73 %)",
                   "verdict"] == "no feasible RL baseline"
    md = (tmp_path / "report.md").read_text()
    assert "| MARLIN-Balanced ✗ |" in md and "| QLearning ✗ |" in md and "| SLIT |" in md
    assert "MARLIN infeasible" in md and "Not judged" in md  # absent schedulers: one line, not a row each
    assert md.index("## Reproduction of the paper's claims") > md.index("## Pareto hypervolume (Fig. 4)")


def test_infeasible_scheduler_is_never_named_best(tmp_path):
    # greenest is lowest on carbon, water and cost by far, with 79 % of its requests late or unserved
    _fake_study(tmp_path, "compare", {
        ("greenest", "greenest", ()): [(7000.0 * j, 20, 200, 2, 0.79) for j in (0.99, 1.0, 1.01)],
        ("uniform", "uniform", ()): [(0.2 * j, 100 * j, 1000, 10, 0.001) for j in (0.99, 1.0, 1.01)],
        ("fill-carbon", "fill-carbon", ()): [(0.1 * j, 50 * j, 1000 * j, 10.05 * j, 0.002) for j in (0.99, 1.0, 1.01)],
    })
    files = write_report(tmp_path)
    st = __import__("pandas").read_csv(files["stats.csv"])
    feas = st.drop_duplicates("label").set_index("label")["feasible"]
    assert not feas["greenest"] and feas["uniform"] and feas["fill-carbon"]
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| greenest ✗ |"))
    assert "**" not in row and "tied" not in row
    fill = next(line for line in md.splitlines() if line.startswith("| fill-carbon |"))
    assert "**50.0 [" in fill  # its carbon interval separates from uniform's: the best feasible, bold
    assert "(tied)" in fill  # cost 10.05 vs 10 with overlapping intervals: tied, no winner
    hv = __import__("pandas").read_csv(files["hypervolume.csv"]).set_index("framework")
    assert hv.loc["greenest", "hv_feasible"] == 0 and not hv.loc["greenest", "feasible"]
    assert hv.loc["greenest", "phv"] > 0  # the paper's rule counts it


def test_hypervolume_cannot_rise_by_serving_less():
    """A scheduler serving 50 % of its load, then serving less (lower carbon, water and cost, more violations):
    its hypervolume is 0 both times and nobody else's changes; serving its load, it has one."""
    from reports.analysis import hypervolume_table
    from reports.study import Study
    import pandas as pd

    def study(x_point, x_sla):
        rows = []
        for lab, point, sla in (("uniform", (0.2, 100, 1000, 10), 0.0), ("nearest", (0.05, 150, 900, 12), 0.0),
                                ("x", x_point, x_sla)):
            for seed in (0, 1):
                rows.append({"kind": "compare", "label": lab, "family": "reference", "dcs": 8, "hours": 24.0,
                             "seed": seed, **dict(zip(analysis.OBJECTIVE_KEYS, point)),
                             "sla_violation_rate": sla})
        return Study(Path("."), pd.DataFrame(rows))

    half = hypervolume_table(study((0.3, 60, 600, 6), 0.5)).set_index("framework")
    less = hypervolume_table(study((0.3, 30, 300, 3), 0.75)).set_index("framework")
    full = hypervolume_table(study((0.3, 60, 600, 6), 0.005)).set_index("framework")
    assert half.loc["x", "hv_feasible"] == less.loc["x", "hv_feasible"] == 0.0
    assert less.loc["x", "phv"] >= half.loc["x", "phv"]  # the paper's rule rewards serving less ...
    for lab in ("uniform", "nearest"):  # ... the feasible hypervolume does not see x at all
        assert less.loc[lab, "hv_feasible"] == pytest.approx(half.loc[lab, "hv_feasible"])
    assert full.loc["x", "hv_feasible"] > 0


def test_study_without_marlin_renders_without_empty_figures(tmp_path):
    import matplotlib.image as mpimg

    _fake_study(tmp_path, "compare", {
        ("uniform", "uniform", ()): [(0.2 * j, 100 * j, 1000 * j, 10 * j, 0.001) for j in (0.99, 1.01)],
        ("nearest", "nearest", ()): [(0.05 * j, 150 * j, 900 * j, 12 * j, 0.0) for j in (0.99, 1.01)],
        ("greenest", "greenest", ()): [(7000 * j, 20 * j, 200 * j, 2 * j, 0.8) for j in (0.99, 1.01)],
    })
    files = write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Indicative only" in md  # two seeds
    for p in sorted((tmp_path / "figures").glob("*.png")):
        img = mpimg.imread(p)[..., :3]
        # a figure with bars: dark pixels (bars' edges, text) well beyond the axes' frame
        assert (img.mean(axis=2) < 0.5).mean() > 0.01, p.name
    hv = __import__("pandas").read_csv(files["hypervolume.csv"]).set_index("framework")
    assert hv.loc["uniform", "hv_feasible"] > 0 and hv.loc["nearest", "hv_feasible"] > 0
    rep = __import__("pandas").read_csv(files["reproduction.csv"])
    assert (rep["verdict"] == "no data").all() and f"Not judged ({len(analysis.CLAIMS)} claims" in md


def test_marlin_balanced_plays_the_run_weights():
    """The pareto sweep re-weights MARLIN-Balanced with --weights; the Min* variants keep their own weights."""
    from schedulers.registry import create
    from simcore.engine import Engine
    from simcore.rng import stream
    from tests.conftest import small_config

    def variant_w(name, **changes):
        cfg = small_config(scheduler=name, **changes)
        sched = create(name)
        sched.reset(Engine(cfg, sched).info, stream(cfg.seed, "scheduler"))
        return sched.variant_w

    np.testing.assert_array_equal(variant_w("marlin"), np.full(4, 0.25))
    np.testing.assert_array_equal(variant_w("marlin", weights=(0.4, 0.4, 0.1, 0.1)), [0.4, 0.4, 0.1, 0.1])
    np.testing.assert_allclose(variant_w("marlin-mincarbon", weights=(0.4, 0.4, 0.1, 0.1)), [0.1, 0.7, 0.1, 0.1])


def test_paper_links_runs_that_repeat_the_comparison(tmp_path):
    a = experiments._parser("paper").parse_args(
        ["--schedulers", "uniform,marlin", "--seeds", "2", "--dcs", "8", "--dcs-list", "4,8", "--ablations", "no-veto",
         "--out", str(tmp_path)])
    compare, scale, ablate, pareto = experiments.sweeps_from_args("paper", a)
    linked = {r.name: r.same_as for r in scale.runs if r.same_as}
    assert linked == {f"{s}-d8-s{k}": f"../compare/{s}-d8-s{k}" for s in ("uniform", "marlin") for k in (0, 1)}
    assert {r.name: r.same_as for r in ablate.runs if r.same_as} == {
        "marlin-full-d8-s0": "../compare/marlin-d8-s0", "marlin-full-d8-s1": "../compare/marlin-d8-s1"}
    assert not any(r.same_as for r in pareto.runs) and len(pareto.runs) == 2 * 6
    assert not tmp_path.joinpath("compare").exists()  # planning writes nothing


def test_sla_gate_outside_0_1_is_one_line_exit_2(tmp_path, capsys):
    from reports import report

    assert report.main([str(tmp_path), "--sla-gate", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sla-gate 2.0: must be a share in [0, 1]" in err


def test_the_report_names_the_schedulers_whose_sla_interval_contains_the_gate():
    import pandas as pd

    from reports.report import _undecided_at_gate

    rows = [("compare", 8, "a", 0.008, 0.005, 0.012),  # interval [0.5, 1.2] % contains the 1 % gate: undecided
            ("compare", 8, "b", 0.004, 0.003, 0.006),  # wholly below: feasible, established
            ("compare", 8, "c", 0.020, 0.015, 0.030),  # wholly above: infeasible, established
            ("compare", 8, "d", 0.011, 0.009, 0.014)]  # mean past the gate, interval across it: undecided
    stats = pd.DataFrame([{"kind": k, "dcs": d, "label": lab, "metric": "sla_violation_rate", "mean": m,
                           "ci_low": lo, "ci_high": hi} for k, d, lab, m, lo, hi in rows])
    lines = _undecided_at_gate(stats, 0.01)
    assert len(lines) == 1
    assert "a 0.80 % [0.50, 1.20], d 1.10 % [0.90, 1.40]" in lines[0]
    assert " b " not in lines[0] and " c " not in lines[0]
    assert _undecided_at_gate(stats, 0.05) == []  # a gate above every interval decides them all


def _bench_paper():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_paper", Path(__file__).parents[1] / "benchmarks" /
                                                  "bench_paper.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("protocol, expected", [
    # online: compare's MARLIN at D=8 (4 epochs), scale's at D=4 (its D=8 run is compare's, linked), ablate's 7
    # ablations (its full MARLIN is compare's) and pareto's 6 weight vectors at D=8: 4 + 28 + 24 = 56
    ("online", {8: 56, 4: 4}),
    # trained: 2 training days x 4 epochs more for each of the 14 states at D=8 and the one at D=4
    ("trained", {8: 56 + 14 * 8, 4: 4 + 8}),
    ("trained-frozen", {8: 14 * 8, 4: 8}),
])
def test_the_paper_floor_counts_each_learning_epoch_of_marlin_once(tmp_path, protocol, expected):
    from reports.experiments import DEFAULT_PARETO_WEIGHTS, MARLIN_ABLATIONS
    assert (len(MARLIN_ABLATIONS), len(DEFAULT_PARETO_WEIGHTS)) == (7, 6)  # the counts above assume these
    argv = ["--schedulers", "marlin,uniform", "--seeds", "1", "--hours", "1", "--dcs", "8", "--dcs-list", "4,8",
            "--protocol", protocol, "--train-days", "2", "--out", str(tmp_path)]
    a = experiments._parser("paper").parse_args(argv)
    sweeps = experiments.sweeps_from_args("paper", a)
    assert _bench_paper().learning_epochs(sweeps, a.protocol, a.train_days) == expected
