"""Cohorts held to the exact thing: a world small enough to play request by request (cohort_size = 1) against
the same world played in cohorts (each simulated request standing for C real ones), and the fluid FIFO's closed
forms against hand-computed cases."""
import math

import pytest

from schedulers.registry import create
from simcore.config import Config
from simcore.engine import simulate
import numpy as np

from simcore.cohorts import CohortNodes
from simcore.queueing import (PROFILE_QUANTILES, bin_rate_profile, bins_per_epoch, fluid_segment, pool_queueing_wait,
                              segment_waits, slot_fill_s, stationary_wait, transient_wait)
from simcore.results import epoch_table, summary

ENERGY_TOL, TTFT_TOL, SLA_POINTS, UTIL_POINTS = 0.05, 0.25, 0.02, 0.03
COHORT = 4  # small enough that every pool gets ~20 cohorts per bin (docs/model.md "Cohorts")


def _summary(**changes) -> dict:
    cfg = Config(**changes)
    rec = simulate(cfg, create(cfg.scheduler))
    return summary(rec, epoch_table(rec))


# 4 datacenters of 12 nodes (2 of each type), batches of at most 8: pools of a few nodes, 1 hour (4 epochs) of the
# BurstGPT profile (Poisson within the hour) scaled so the datacenters run at about 73 % of their serving capacity
# (normal: queueing is the stochastic wait) and at about 150 % (overloaded: a backlog builds up through every
# epoch), compared over the horizon (no drain, docs/model.md 'Drain'). The Azure code trace's per-second bursts
# (which 60-s bins smoothed out, 10-s bins keep) are rung 2's grid (`python run.py validate`, docs/model.md
# 'Validation').
WORLD = dict(dcs=4, reference_dcs=4, nodes_per_dc=12, hours=1.0, max_batch=8, scheduler="uniform", seed=1,
             warm_target_utilization=0.6, trace="burstgpt-profile", drain=False)
LOADS = {"normal": "700", "overloaded": "1400"}


@pytest.fixture(scope="module", params=sorted(LOADS))
def pair(request):
    load = LOADS[request.param]
    exact = _summary(cohort_size="1", load_scale=load, **WORLD)
    cohorts = _summary(cohort_size=str(COHORT), load_scale=load, **WORLD)
    return request.param, exact, cohorts


def test_cohorts_agree_with_exact_simulation(pair):
    name, a, b = pair
    err = {
        "energy": b["energy_kwh"] / a["energy_kwh"] - 1.0,
        "ttft_mean": b["ttft_mean_s"] / a["ttft_mean_s"] - 1.0,
        "sla_points": b["sla_violation_rate"] - a["sla_violation_rate"],
        "utilization_points": b["utilization_mean"] - a["utilization_mean"],
    }
    print(f"\ncohorts (C={COHORT}) vs exact, {name} load: "
          + ", ".join(f"{k} {v:+.4f}" for k, v in err.items())
          + f"; utilization exact {a['utilization_mean']:.3f}, SLA exact {a['sla_violation_rate']:.4f}")
    assert a["requests_real"] == pytest.approx(b["requests_real"], rel=0.01)
    assert abs(err["energy"]) <= ENERGY_TOL
    assert abs(err["ttft_mean"]) <= TTFT_TOL
    assert abs(err["sla_points"]) <= SLA_POINTS
    assert abs(err["utilization_points"]) <= UTIL_POINTS


def test_fluid_segment_hand_computed():
    # backlog 10 at the start, arrivals 5/s, drain 10/s for 4 s: the backlog empties at x = 2 s
    end, wait_sum, late = fluid_segment(10.0, 5.0, 10.0, 4.0, wait_limit_s=0.5)
    assert end == 0.0
    # integral of W over [0, 2] = 10 x 2 - 5 x 2^2 / 2 = 10; summed wait = lam x 10 / mu = 5
    assert wait_sum == pytest.approx(5.0)
    # wait > 0.5 s <=> W > 5 <=> x < 1 s: 5 requests
    assert late == pytest.approx(5.0)
    # overload: no backlog, arrivals 12/s, drain 10/s for 10 s -> backlog 20, summed wait 12 x (2 x 100 / 2) / 10
    end, wait_sum, late = fluid_segment(0.0, 12.0, 10.0, 10.0, wait_limit_s=1.0)
    assert end == pytest.approx(20.0)
    assert wait_sum == pytest.approx(12.0 * 100.0 / 10.0)
    assert late == pytest.approx(12.0 * 5.0)  # W > 10 after x = 5 s


def test_segment_waits_follow_capacity_that_arrives_later():
    # 10 requests arrive at 1/s over [0, 10]; nothing departs until t = 5, then 2/s: the one at position x
    # (arriving at x) departs at 5 + x / 2 and waits 5 - x / 2, 2.5 s on average
    waits = segment_waits(0.0, 10.0, 0.0, 10.0, [0.0, 5.0, 10.0], [0.0, 0.0, 10.0], 1.0, 4)
    assert waits == pytest.approx([5 - 1.25 / 2, 5 - 3.75 / 2, 5 - 6.25 / 2, 5 - 8.75 / 2])
    assert waits.mean() == pytest.approx(2.5)
    # by t = 7.5 only positions [0, 5] departed: share 0.5, waits 5 - x / 2 for x in [0, 5]
    assert segment_waits(0.0, 10.0, 0.0, 10.0, [0.0, 5.0, 7.5], [0.0, 0.0, 5.0], 0.5, 2) == \
        pytest.approx([5 - 1.25 / 2, 5 - 3.75 / 2])


def test_transient_wait_hand_computed():
    mu, scv, T = 1000.0, 1.0, 60.0
    sigma = math.sqrt(mu + mu * scv)  # at lam = mu: variance rate lam + mu scv = 2000 /s
    # at saturation E Q(t) = sigma sqrt(2 t / pi); averaged over [0, T]: (2 / 3) sigma sqrt(2 T / pi)
    w, _ = transient_wait(mu, mu, scv, T, 2.0)
    assert float(w) == pytest.approx(2.0 / 3.0 * sigma * math.sqrt(2.0 * T / math.pi) / mu, rel=1e-3)
    # a long interval below saturation reaches the stationary diffusion: sigma^2 / (2 (mu - lam)) / mu, the
    # Allen-Cunneen wait with P_wait = 1 (lam = 900: (900 + 1000) / 200 / 1000 = 9.5 ms)
    w, late = transient_wait(900.0, mu, scv, 1e8, 2.0)
    assert float(w) == pytest.approx(1900.0 / 200.0 / mu, rel=1e-3)
    assert float(late) < 1e-12
    # far past saturation the fluid backlog dominates: (lam - mu) T / 2 / mu = 1.5 s, plus sigma^2 / (2 theta mu)
    w, late = transient_wait(1100.0, mu, scv, T, 2.0)
    assert float(w) == pytest.approx(0.1 * T / 2.0 + 2100.0 / 200.0 / mu, rel=0.02)
    # waits pass 2 s once the fluid backlog (lam - mu) t exceeds 2 mu, i.e. after t = 20 s: two thirds of the bin,
    # a little more as the reflected diffusion spreads the backlog upward (sigma sqrt(t) ~ 0.3 s of wait at 20 s)
    assert 2.0 / 3.0 < float(late) < 2.0 / 3.0 + 0.04


def test_pool_queueing_wait_is_continuous_through_saturation():
    lam = np.array([0.99, 0.999, 0.9999, 1.0, 1.0001, 1.001, 1.5]) * 1000.0
    w, _ = pool_queueing_wait(lam, 1000.0, 640.0, 1.0, 2.0, 60.0)
    assert np.all(np.isfinite(w)) and np.all(np.diff(w) > 0)
    assert w[3] - w[2] < 0.01 and w[4] - w[3] < 0.01  # no jump at lam = mu (the old half-bin cap jumped 30 s)
    # far below saturation the M/G/c stationary wait is the smaller and is kept
    ws, _ = stationary_wait(800.0, 1000.0, 640.0, 1.0, 2.0)
    assert float(pool_queueing_wait(800.0, 1000.0, 640.0, 1.0, 2.0, 60.0)[0]) == pytest.approx(float(ws[()]))


def test_bin_rate_profile_hand_computed():
    assert PROFILE_QUANTILES == 8 and bins_per_epoch(900.0, 60.0) == 15 and bins_per_epoch(900.0, 2000.0) == 1
    # epochs of 4 s in 1-s bins: epoch 0 one request per bin (ratio 1 each); epoch 1 three in its first bin and
    # one in its second (mean 1 per bin: ratios 3, 1, 0, 0). By request: five at ratio 1, three at ratio 3;
    # the bins' request midpoints sit at 0.5/8 .. 4.5/8 (ratio 1) and 6.5/8 (ratio 3), so the quantile midpoints
    # (k + 0.5) / 8 read 1 five times, 2 halfway between, then 3
    t = [0.5, 1.5, 2.5, 3.5, 4.1, 4.2, 4.3, 5.5]
    assert bin_rate_profile(t, 4.0, 1.0, 8.0) == pytest.approx([1, 1, 1, 1, 1, 2, 3, 3])
    # an evenly spread workload is flat; none at all is flat too
    assert bin_rate_profile(np.arange(0.5, 8.0), 4.0, 1.0, 8.0) == pytest.approx(np.ones(8))
    assert bin_rate_profile([], 4.0, 1.0, 8.0) == pytest.approx(np.ones(8))


def test_balancer_shares_follow_the_exact_balancers_weights():
    """A pool's served work over its nodes as the exact balancer spreads it (`cohorts.balancer_shares`): warm nodes
    by their WRR weights (8 x throughput / the slowest warm node's: 8 and 16), a spilled node once (weight 1);
    a node cannot use more than it was available, its excess goes to the others by their room. By hand: nodes of
    10, 20, 10 requests/s, 100 s each, the last spilled in."""
    from simcore.cohorts import balancer_shares

    rps, avail = np.array([10.0, 20.0, 10.0]), np.full(3, 100.0)
    # 1,500 requests: shares 8 / 25, 16 / 25, 1 / 25 -> 480, 960, 60 requests -> 48, 48, 6 node-seconds
    np.testing.assert_allclose(balancer_shares(rps, avail, 2, 1500.0), [48.0, 48.0, 6.0])
    # 3,500: 112, 112, 14 would pass the warm nodes' 100 s; their 360 requests go to the spilled node (+36 s)
    np.testing.assert_allclose(balancer_shares(rps, avail, 2, 3500.0), [100.0, 100.0, 50.0])
    # without a warm set every node takes weight 1; nothing served, nothing used
    np.testing.assert_allclose(balancer_shares(rps, avail, 0, 300.0), [10.0, 5.0, 10.0])
    assert not balancer_shares(rps, avail, 2, 0.0).any()


def test_slot_fill_s_hand_computed():
    # 100 of 200 slots busy, each served in 2 s, arrivals at 300/s (steady state 600 in service): full after
    # 2 ln((600 - 100) / (600 - 200)) = 2 ln 1.25 s; arrivals the slots keep up with never fill them
    assert slot_fill_s(100.0, 600.0, 200.0, 2.0) == pytest.approx(2.0 * math.log(1.25))
    assert slot_fill_s(100.0, 200.0, 200.0, 2.0) == math.inf
    assert slot_fill_s(200.0, 600.0, 200.0, 2.0) == 0.0


def test_segment_waits_read_arrivals_between_their_knots():
    # nothing arrives in [0, 1), 10 requests in [1, 2); served from t = 1 at 5/s: the request at position x
    # arrives at 1 + x / 10 and departs at 1 + x / 5, so it waits x / 10 (positions 2.5 and 7.5)
    w = segment_waits(0.0, 10.0, 0.0, 2.0, [1.0, 3.0], [0.0, 10.0], 1.0, 2, arrivals=[0.0, 0.0, 10.0])
    assert w == pytest.approx([0.25, 0.75])


def _pool(mu: float, slots: float, in_service: float) -> CohortNodes:
    """One cohort pool's fluid state, nothing else (for `CohortNodes._advance`)."""
    nodes = CohortNodes.__new__(CohortNodes)
    nodes.pW, nodes.pT, nodes.pMu, nodes.pS, nodes.pX, nodes.pBp, nodes.pA = \
        [0.0], [0.0], [mu], [slots], [in_service], [[]], [0.0]
    return nodes


def test_free_batch_slots_absorb_a_burst_before_anyone_waits():
    # 200 slots served at 100/s (2 s each), 100 busy (the steady state of 50/s); 1-s steps of a 4-s bin
    calm, burst, flood = [150.0, 50.0, 50.0, 50.0], [300.0, 50.0, 50.0, 50.0], [150.0] * 4
    pool = _pool(100.0, 200.0, 100.0)
    drained, curve, _ = pool._advance(0, 0.0, 4.0, calm)
    # 150/s for 1 s: the slots (steady state 300 > 200) would fill after 2 ln 2 = 1.39 s: nobody waits
    assert pool.pW[0] == 0.0 and drained == pytest.approx(300.0)
    assert pool.pX[0] < 200.0
    pool = _pool(100.0, 200.0, 100.0)
    drained, curve, _ = pool._advance(0, 0.0, 4.0, burst)
    # 300/s: full after 2 ln 1.25 s, then a backlog grows at 200/s to t = 1 and drains at 50/s from there
    fill = 2.0 * math.log(1.25)
    w1 = 200.0 * (1.0 - fill)
    assert curve[0] == pytest.approx((fill, 300.0 * fill))
    assert curve[1] == pytest.approx((1.0, 300.0 - w1))
    assert pool.pW[0] == pytest.approx(max(0.0, w1 - 3 * 50.0)) and drained == pytest.approx(450.0)
    # the slots already full (no buffer, as the fluid without slots was): 150/s queue at once, 50/s for 4 s
    pool = _pool(100.0, 200.0, 200.0)
    pool._advance(0, 0.0, 4.0, flood)
    assert pool.pW[0] == pytest.approx(200.0)
    # no step above the drain rate: the slots never fill, and the bin's curve is its end point alone
    pool = _pool(100.0, 200.0, 100.0)
    drained, curve, stepped = pool._advance(0, 0.0, 4.0, [90.0, 10.0, 100.0, 50.0])
    assert (drained, curve, stepped, pool.pW[0]) == (250.0, [(4.0, 250.0)], False, 0.0)


def test_a_cohort_arrives_evenly_since_the_previous_one_of_its_stream():
    from types import SimpleNamespace

    nodes = CohortNodes.__new__(CohortNodes)
    nodes.bin_s = 10.0
    # bin [10, 20) in 1-s steps: two 7B cohorts (plan-routed: one stream) at 12.5 and 14, a 70B cohort at 11
    nodes.f_arr, nodes.f_routed = np.array([12.5, 14.0, 11.0]), np.array([True, True, True])
    nodes.wl = SimpleNamespace(model=np.array([0, 0, 1]))
    w = nodes._step_shares(np.arange(3), np.array([0, 0, 1]), 10.0, 10)
    # the first 7B cohort over [10, 12.5], the second over [12.5, 14], the 70B one over [10, 11]
    assert w[0, :3] == pytest.approx([0.4, 0.4, 0.2]) and w[0, 3:].sum() == 0.0
    assert w[1, 2:4] == pytest.approx([1 / 3, 2 / 3]) and w[1].sum() == pytest.approx(1.0)
    assert w[2, 0] == pytest.approx(1.0)
