"""The fidelity ladder (reports/validate.py, docs/model.md 'Validation'): rung 0 against the committed vidur table,
the quick grid of rungs 2-3, and the pieces the rungs rest on checked by hand (the continuous-batching node, its
capacity, the prefill-queue wait, small fleets)."""
import csv
import math

import numpy as np
import pytest

from schedulers.registry import create
from reports import validate as V
from simcore.config import Config
from simcore.engine import Engine, simulate
from simcore.exact import ExactNodes
from simcore.profiles import load_profiles
from simcore.queueing import prefill_queue_wait
from traces.loader import Workload


@pytest.fixture(scope="module")
def ladder():
    return V.run_ladder(quick=True, progress=lambda _: None)


def test_rung0_holds_against_vidur_except_the_measured_70b(ladder):
    rows = [r for r in ladder if r["rung"] == 0]
    print("\nrung 0 (exact engine vs vidur):")
    for r in rows:
        print(f"  {r['cell']:18s} {r['quantity']:14s} vidur {r['reference']:8.4g} sim {r['simulated']:8.4g} "
              f"error {r['error']:+.1%}{'  (kept measurement)' if r['exception'] else ''}")
    # 4 replicas x (node_rps, saturated, TTFT mean / p99 at 50 % and 80 %), the two 70B also at their own capacity
    assert len(rows) == 4 * 6 + 2 * 4
    assert all(r["holds"] for r in rows if not r["exception"])
    assert {r["cell"].split(" @")[0] for r in rows if r["exception"]} <= {"70B 4xA100", "70B 8xH100"}
    # the engine reaches the capacity it announces (the load rule's and the warm sets' figure), 7B and 70B alike
    for rep in V.REPLICAS:
        cap = {r["quantity"]: r["simulated"] for r in rows if r["cell"] == rep.label}
        assert cap["saturated_rps"] == pytest.approx(cap["node_rps"], rel=0.05)


def test_quick_grid_holds_and_writes_every_row(ladder, tmp_path):
    grid = [r for r in ladder if r["rung"] in (2, 3)]
    assert {r["rung"] for r in grid} == {2, 3}
    bad = [(r["cell"], r["quantity"], round(r["error"], 3)) for r in grid if not r["holds"]]
    assert not bad, bad
    out = tmp_path / "validation.csv"
    V.write_csv(ladder, out)
    with open(out, newline="") as f:
        read = list(csv.DictReader(f))
    assert len(read) == len(ladder) and set(V.COLUMNS) <= set(read[0])
    assert "rung 0:" in V.report(ladder) and "rung 2:" in V.report(ladder)
    # two quick cells (12 and 4 nodes per datacenter) are worlds cohort_size auto plays exactly; in the third (30
    # nodes) auto plays cohorts, and those are held to exact play too (rows '<cell> cohort C')
    auto = {r["nodes_per_dc"]: r["auto_cohort"] for r in grid}
    assert auto[12] == auto[4] == 1 and auto[30] > 1
    assert any(r["rung"] == 2 and f"cohort {auto[30]} " in r["cell"] for r in grid)


def test_report_counts_rung2_failures_where_auto_plays_exactly_apart():
    row = dict(rung=2, cell="N=4 U=0.8 conv23 uniform run", quantity="ttft_mean", reference=1.0, simulated=0.5,
               error=-0.5, tolerance=0.25, holds=False, exception=False)
    text = V.report([{**row, "auto_cohort": 1}, {**row, "cell": "N=30 U=0.5 azure uniform run", "auto_cohort": 98}])
    assert "NO, auto exact" in text
    assert "of the 2 that fail, 1 are in cells cohort_size auto plays exactly; 1 where auto plays cohorts" in text


def test_capacity_is_one_over_a_requests_gpu_time_by_hand():
    cfg = Config()
    p = load_profiles(cfg)
    # 7B on (A100, 2): prefill of 1000 tokens 2 x 6.74e9 x 1000 / (0.5 x 2 x 312e12) = 43.205 ms; step(64) =
    # (13.5 + 64 x 0.625) GB / (0.9 x 2 x 2 TB/s) = 14.861 ms; 100 output tokens: 43.205 + 100 x 14.861 / 64 ms
    g = p.gpu_s_array(0, 0, np.array([1000.0]), np.array([100.0]), 64)[0]
    assert g == pytest.approx(2 * 6.74e9 * 1000 / (0.5 * 2 * 312e12) + 100 * 53.5e9 / 3.6e12 / 64)


def test_prefill_queue_wait_is_pollaczek_khinchine_by_hand():
    # one node type: gpu time 0.1 s per request, rho 0.5 -> 5 requests/s; prefill mean 0.04 s, second moment
    # 0.002 s^2: busy 0.2, wait 5 x 0.002 / (2 x 0.8) = 0.00625 s; late beyond 0.1 s: 0.2 exp(-0.1 x 0.2 / 0.00625)
    w, late = prefill_queue_wait(0.5, np.array([0.04]), np.array([0.002]), np.array([0.1]), np.array([1.0]), 0.1)
    assert w == pytest.approx(0.00625)
    assert late == pytest.approx(0.2 * math.exp(-0.1 * 0.2 / 0.00625))
    w0, late0 = prefill_queue_wait(0.5, np.array([0.0]), np.array([0.0]), np.array([0.1]), np.array([1.0]), 0.1)
    assert (w0, late0) == (0.0, 0.0)  # a decode-only pool prefills nothing


def _replica_requests(t, prompt, output):
    """Requests of Llama-2-7B at times t into the rung-0 replica (7B on one A100, alone in its pool)."""
    rep = V.Replica("Llama-2-7B", "A100-80GB", 1)
    cfg = V.replica_world(rep, hours=0.25)
    n = len(t)
    wl = Workload(name="hand", t_s=np.asarray(t, float), model=np.zeros(n, np.int8),
                  prompt_tokens=np.asarray(prompt, np.int32), output_tokens=np.asarray(output, np.int32),
                  origin=np.zeros(n, np.int16), scale=1.0, source="hand")
    eng = Engine(cfg, create("nearest"), workload=wl)
    return eng, eng.run()


def test_continuous_batching_node_by_hand():
    eng, rec = _replica_requests([1.0, 1.0, 2.0], [1000, 2000, 500], [10, 10, 10])
    t = eng.n_type[0]
    pf = [eng.prof.prefill_s(0, t, x) for x in (1000, 2000, 500)]
    # the first prompt is prefilled at once, the second after it (one prefill pass at a time), the third alone
    assert rec.ttft_s[0] == pytest.approx(pf[0])
    assert rec.ttft_s[1] == pytest.approx(pf[0] + pf[1])
    # the third arrives after the first two are done: its prefill starts at once
    assert rec.ttft_s[2] == pytest.approx(pf[2])
    step2 = eng.prof.decode_step(0, t, 2)
    assert 2.0 > 1.0 + pf[0] + pf[1] + 10 * step2  # the first two finished their 10 tokens before t = 2
    assert eng.act[0] == 0 and eng.nodes.dv[0] == 0.0 and not eng.nodes.dheap[0]


def test_memory_limited_nodes_of_a_mixed_pool_serve_more_than_b_star_as_sorted_admission_says():
    # a 70B pool of five nodes (A100 x 2, 4, 8, H100 x 2, 4; the 7B keeps the sixth) offered 1.5x its capacity: the
    # exact engine admits by each request's own KV, so the 2-GPU nodes (B* 48, memory-limited) take the small
    # requests and run more of them at once, the others exactly their full-batch work (`capacity.sorted_admission`)
    cfg = Config(dcs=4, reference_dcs=4, nodes_per_dc=6, scheduler="nearest", cohort_size="1", hours=0.5)
    probe = Engine(cfg, create("nearest"), workload=V.replica_workload(cfg, 1, 1.0, 0))
    cap, types = probe.capacity, probe.fleet.node_type[:5]
    limited = cap.memory_limited[1, types]
    assert limited.tolist() == [True, False, False, True, False] and cap.batch[1, types[0]] < cfg.max_batch
    assert (cap.sorted_batch[1, types][limited] == cfg.max_batch).all()
    wl = V.replica_workload(cfg, 1, 1.5 * cap.sorted_rps[1, types].sum(), 0)
    eng = Engine(cfg, create("nearest"), workload=wl)
    rec = eng.run()
    first = wl.t_s + np.nan_to_num(rec.ttft_s, nan=np.inf)
    lo, hi = 0.2 * cfg.horizon_s, 0.8 * cfg.horizon_s  # saturated: every node full
    node = np.asarray(eng.nodes.r_node)
    for n, t in enumerate(types.tolist()):
        k = (first >= lo) & (first < hi) & (node == n)
        work = eng.prof.gpu_s_array(1, t, wl.prompt_tokens[k].astype(float), wl.output_tokens[k].astype(float),
                                    int(cap.batch[1, t])).sum() / (hi - lo)  # GPU seconds at B* per second
        predicted = cap.sorted_rps[1, t] / cap.node_rps[1, t]
        if limited[n]:
            assert work > 1.04 and work == pytest.approx(predicted, rel=0.03), (n, work, predicted)
        else:
            assert predicted == 1.0 and work == pytest.approx(1.0, abs=0.01), (n, work)


def test_small_fleets_play_exactly(tmp_path):
    # one node per datacenter: both models share it (it used to end in an internal error)
    cfg = Config(nodes_per_dc=1, dcs=4, hours=0.5, scheduler="uniform", cohort_size="1", reference_dcs=4)
    eng = Engine(cfg, create("uniform"))
    rec = eng.run()
    assert np.isfinite(rec.ttft_s[~np.isnan(rec.ttft_s)]).all() and (~np.isnan(rec.ttft_s)).sum() > 0
    served = ~np.isnan(rec.ttft_s)
    assert set(np.asarray(rec.req_dc)[served].tolist()) == {0, 1, 2, 3}  # every datacenter served
    assert set(eng.wl.model[served].tolist()) == {0, 1}  # both models, on the one node they share
    from simcore.errors import ConfigError
    with pytest.raises(ConfigError, match="cohorts need a node per pool"):
        simulate(cfg.replace(cohort_size="4"), create("uniform"))


def test_no_request_waits_while_a_node_of_its_pool_has_room(monkeypatch):
    # a 6-node world overloaded (batches of at most 4): whenever a request was queued, every warm node of its
    # pool was full (the pool's queue is served by the first node with room)
    cfg = Config(nodes_per_dc=6, dcs=4, reference_dcs=4, hours=0.25, scheduler="uniform", cohort_size="1",
                 max_batch=4, trace="burstgpt-profile", load_scale="400")
    seen = []
    place = ExactNodes._place

    def watched(nodes, i, key):
        before = sum(len(q) for q in nodes.pq.values())
        place(nodes, i, key)
        if sum(len(q) for q in nodes.pq.values()) > before:
            pool = nodes.pools[nodes.r_dc[i]][key]
            seen.append(all(not nodes._fits(n, nodes.r_model[i], nodes.r_kv[i]) for n in pool[0]))
    monkeypatch.setattr(ExactNodes, "_place", watched)
    Engine(cfg, create("uniform")).run()
    assert seen and all(seen)


def test_validate_command_refuses_to_replace_a_file_it_did_not_write(tmp_path, capsys):
    import run
    out = tmp_path / "validation.csv"
    out.write_text("mine")
    assert run.main(["validate", "--quick", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "mine"


def test_grid_measures_100_nodes_per_datacenter_on_the_azure_day_and_burstgpt():
    cells = V.grid_cells()
    names = [V.cell_name(c) for c in cells]
    assert len(names) == len(set(names))  # every cell once
    big = {(c["trace"], c["peak_utilization"], c["scheduler"]) for c in cells if c["nodes_per_dc"] == 100}
    assert big == {(t, u, "uniform") for t in ("azure-code-2024", "burstgpt-profile") for u in (0.5, 0.95)}
    assert {c["nodes_per_dc"] for c in cells} == {4, 12, 30, 100}
    assert "N=100 U=0.95 azure uniform" in names and "N=100 U=0.5 burstgpt uniform" in names
    # the quick grid (CI) stays on three small cells, one where auto plays cohorts
    assert [c["nodes_per_dc"] for c in V.grid_cells(quick=True)] == [12, 4, 30]


def test_workers_give_the_serial_rows_in_the_serial_order(ladder, tmp_path):
    # the quick cells in two processes (the larger ones start first) against the serial fixture's rows
    parallel = V.run_ladder(quick=True, progress=None, cells=" U=0.", workers=2)
    serial = [r for r in ladder if r["rung"] != 0]
    assert [r["cell"] for r in parallel] == [r["cell"] for r in serial]
    V.write_csv(serial, tmp_path / "serial.csv")
    V.write_csv(parallel, tmp_path / "parallel.csv")
    assert (tmp_path / "parallel.csv").read_text() == (tmp_path / "serial.csv").read_text()


@pytest.mark.parametrize("value, says", [("0", "--workers 0: need at least 1"), ("-2", "--workers -2: need at least 1"),
                                         ("two", "argument --workers: invalid int value: 'two'")])
def test_validate_refuses_a_bad_workers_value_in_one_line(tmp_path, capsys, value, says):
    import run
    out = tmp_path / "validation.csv"
    assert run.main(["validate", "--quick", "--workers", value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {says}" and not out.exists()
