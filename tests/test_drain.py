"""The drain (docs/model.md 'Drain'): after the horizon the fleet serves the backlog, and pays for it.

A hand-sized world: 4 datacenters of two nodes (one 1-GPU and one 2-GPU H100 node), one request at a time per
node, every request the same (512 prompt, 256 output tokens of Llama-2-7B) and routed to datacenter 0, where only
the 1-GPU node serves the 7B model (the 2-GPU node is the 70B model's warm node). A burst of requests one second
before the horizon is a backlog of known size that this node serves one after another, S seconds each.
"""
import math

import numpy as np
import pytest

from simcore import physics
from simcore.config import Config
from simcore.engine import Engine
from simcore.profiles import load_profiles
from simcore.results import epoch_table, summary
from tests.plugins import AllToFirst
from topology.graph import latency_matrix_s
from traces.loader import Workload

PROMPT, OUTPUT = 512, 256
SMALL_W, LARGE_W = 1 * (700 + 150), 2 * (700 + 150)  # node TDP: GPUs x (GPU TDP + host share), W


def world(**changes) -> Config:
    base = dict(dcs=4, hours=0.5, nodes_per_dc=2, gpu_types=("H100-80GB",), gpu_counts=(1, 2), gpu_mem_gb=(80.0,),
                gpu_tdp_w=(700.0,), gpu_hbm_tb_per_s=(3.35,), gpu_tflops=(989.0,), load_bw_gb_per_s=(14.0,),
                gpu_embodied_kg=(318.0,), prefill_mfu=(0.42,), max_batch=1, cohort_size="1", load_scale="1")
    return Config(**{**base, **changes})


def burst(cfg: Config, rows: int, cohort: int) -> Workload:
    """`rows` requests (each `cohort` real ones) from origin 0 one second before the horizon."""
    return Workload("burst", np.full(rows, cfg.horizon_s - 1.0), np.zeros(rows), np.full(rows, PROMPT),
                    np.full(rows, OUTPUT), np.zeros(rows), 1.0, "a test burst", cohort=cohort)


def run(cfg: Config, rows: int, cohort: int):
    rec = Engine(cfg, AllToFirst(), burst(cfg, rows, cohort)).run()
    ep = epoch_table(rec)
    return ep, summary(rec, ep)


def service_s(cfg: Config) -> float:
    """One request on the 1-GPU node alone: prefill + 256 decode steps at batch 1."""
    prof = load_profiles(cfg)
    return prof.prefill_s(0, 0, PROMPT) + OUTPUT * prof.decode_step(0, 0, 1)


@pytest.mark.parametrize("cohort", [1, 100])
def test_backlog_drains_in_the_predicted_time_and_draws_the_predicted_energy(cohort):
    cfg = world(cohort_size=str(cohort))
    n = 1600  # real requests: about 1,950 s of the one node's work (S = 1.216 s)
    ep, s = run(cfg, n // cohort, cohort)
    S = service_s(cfg)
    H = cfg.horizon_s
    if cohort == 1:  # exact: request i starts at its arrival + i x S; the last start ends the backlog
        last = H - 1.0 + latency_matrix_s(cfg)[0, 0] + (n - 1) * S
        backlog = n - 1  # the first started before the horizon
    else:  # cohorts: the bin's arrivals spread from its start, the node's one batch slot takes a request at once
        # (as exact play's first start; filling the slot takes ~0.1 s, a tenth of a request) and it drains 1/S per
        # second from the bin's start
        backlog = n - 1 - cfg.cohort_bin_s / S
        last = H + backlog * S
    drain_s = math.ceil((last - H) / cfg.cohort_bin_s) * cfg.cohort_bin_s  # the drain ends at a bin's end
    assert drain_s > 2 * cfg.epoch_s  # two full drain epochs and a partial one
    assert s["requests_queued_at_horizon"] == round(backlog)
    assert s["drain_h"] == pytest.approx(drain_s / 3600)
    drain = ep[ep["drain"] == 1]
    assert sorted(drain["epoch"].unique()) == [2, 3, 4]
    np.testing.assert_allclose(drain.groupby("dc")["epoch_h"].sum(), drain_s / 3600)
    # during the drain datacenter 0's 1-GPU node is busy (its p-state from its busy share: the work it started in
    # the epoch, exact, or its busy time, cohorts) and its 2-GPU node warm and idle (P3, PC 0.4); the other
    # datacenters keep both nodes warm and idle
    it = drain.groupby("dc")["it_kwh"].sum().to_numpy()
    hours = drain_s / 3600
    small_kwh = 0.0
    for t0, h in zip(H + np.arange(3) * cfg.epoch_s, drain[drain["dc"] == 0]["epoch_h"]):
        t1 = t0 + h * 3600
        if cohort == 1:
            starts = H - 1.0 + latency_matrix_s(cfg)[0, 0] + np.arange(n) * S
            busy = np.count_nonzero((starts >= t0) & (starts < t1)) * S
        else:
            busy = min(t1, last) - t0
        pc = physics.pstate_power_fraction(min(busy / (t1 - t0), 1.0), True, cfg.pc_pstates,
                                           cfg.pstate_busy_limits, cfg.pc_parked)
        small_kwh += pc * SMALL_W * h / 1000
    np.testing.assert_allclose(it, [small_kwh + 0.4 * LARGE_W * hours / 1000]
                               + [0.4 * (SMALL_W + LARGE_W) * hours / 1000] * 3, rtol=1e-9)
    # every request is served, and the totals are the sums over every row, the drain's included
    assert s["requests_served"] == n and s["requests_unserved"] == 0
    assert s["requests_arrived"] == s["requests_served"] + s["requests_failed"] + s["requests_unserved"]
    assert s["energy_kwh"] == pytest.approx(ep["total_kwh"].sum())
    assert s["carbon_kg"] == pytest.approx(ep["carbon_kg"].sum())
    assert drain["total_kwh"].sum() > 0.3 * s["energy_kwh"]


def test_no_drain_cuts_the_run_at_the_horizon():
    cfg = world(drain=False)
    ep, s = run(cfg, 1500, 1)
    assert (ep["drain"] == 0).all() and ep["epoch"].max() == cfg.epochs - 1
    assert s["requests_served"] == 1 and s["requests_unserved"] == 1499 and s["drain_h"] == 0
    assert s["requests_arrived"] == s["requests_served"] + s["requests_failed"] + s["requests_unserved"]
    # the whole fleet idles warm (PC 0.4) through both epochs: the backlog costs nothing
    assert s["it_kwh"] == pytest.approx(4 * 0.4 * (SMALL_W + LARGE_W) * cfg.hours / 1000)


def test_requests_still_waiting_at_the_cap_are_unserved():
    cfg = world(drain_max_h=0.5)  # two epochs of drain, for about 2,300 s of work
    ep, s = run(cfg, 1500, 1)
    start0 = cfg.horizon_s - 1.0 + latency_matrix_s(cfg)[0, 0]
    started = math.floor((cfg.horizon_s + 1800 - start0) / service_s(cfg)) + 1
    assert s["drain_h"] == pytest.approx(0.5)
    assert s["requests_served"] == started
    assert s["requests_unserved"] == 1500 - started
    assert s["requests_arrived"] == s["requests_served"] + s["requests_failed"] + s["requests_unserved"]


def test_drain_stops_at_the_end_of_the_grid_data():
    from simcore.engine import drain_epochs
    assert drain_epochs(world(start="2023-12-31", hours=23.0)) == 4  # one hour of 2023 left
    assert drain_epochs(world(hours=0.5, drain_max_h=0.3)) == 2  # rounded up to whole epochs
    assert drain_epochs(world(drain=False)) == 0
