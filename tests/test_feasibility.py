"""The shared feasibility toolkit (schedulers.feasibility): head-room, capacity projection, bounded signal."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedulers.common import EvaluatorParams
from schedulers.feasibility import (Headroom, HeadroomParams, bounded_reward, compress_metrics, forecast_error,
                                    headroom_target, least_latency_routing,
                                    metric_cap, planned_utilization, project_to_capacity, sla_score, update_ema)


def test_headroom_target_by_hand():
    # 1 / (1.25 x (1 + 2 x 0.1)) = 1 / 1.5; 1 / (1.25 x 1.6) = 0.5; no peak, no error: 1
    assert headroom_target(1.25, 2.0, 0.1) == pytest.approx(2 / 3)
    assert headroom_target(1.25, 2.0, 0.3) == pytest.approx(0.5)
    assert headroom_target(1.0, 0.0, 0.5) == 1.0


def test_forecast_error_by_hand():
    # every datacenter 10 % over its plan; a datacenter that got 30 with nothing planned: ||(0, 30)|| / 100
    assert forecast_error([100.0, 200.0, 0.0], [110.0, 220.0, 0.0]) == pytest.approx(0.1)
    assert forecast_error([100.0, 0.0], [100.0, 30.0]) == pytest.approx(0.3)
    assert forecast_error([0.0, 0.0], [5.0, 0.0]) is None


def test_headroom_tracker_learns_the_observed_error_by_hand():
    h = Headroom(HeadroomParams())
    assert h.target() == pytest.approx(2 / 3)  # the prior 0.1
    plan = np.zeros((1, 1, 2))
    plan[0, 0] = [0.25, 0.75]
    h.record(plan, np.array([[400.0]]), epoch=3)
    np.testing.assert_allclose(h.planned, [100.0, 300.0])
    # 30 % more than planned everywhere: error 0.3, variance 0.75 x 0.01 + 0.25 x 0.09 = 0.03
    h.learn(SimpleNamespace(epoch=3, requests=[130.0, 390.0]))
    assert h.error_var == pytest.approx(0.03)
    assert h.target() == pytest.approx(1 / (1.25 * (1 + 2 * math.sqrt(0.03))))
    h.learn(SimpleNamespace(epoch=2, requests=[0.0, 0.0]))  # not the recorded epoch: nothing learnt
    assert h.error_var == pytest.approx(0.03)


def test_headroom_learns_the_observed_burstiness_by_hand():
    h = Headroom(HeadroomParams())  # prior 1.25, variance 0, alpha 0.25, z 2
    assert h.peak_to_mean() == pytest.approx(1.25)
    # an epoch whose busiest bin brought 1.65 x its mean: deviation 0.4, mean 1.25 + 0.25 x 0.4 = 1.35,
    # variance 0.75 x (0 + 0.25 x 0.16) = 0.03, so the burst planned for is 1.35 + 2 sqrt(0.03)
    h.learn(SimpleNamespace(epoch=0, requests=[1.0], peak_to_mean=1.65))
    assert (h.burst_mean, h.burst_var) == (pytest.approx(1.35), pytest.approx(0.03))
    assert h.peak_to_mean() == pytest.approx(1.35 + 2 * math.sqrt(0.03))
    assert h.target() == pytest.approx(1 / ((1.35 + 2 * math.sqrt(0.03)) * 1.2))  # the error is still the prior
    h.learn(SimpleNamespace(epoch=0, requests=[1.0], peak_to_mean=3.0))  # the same epoch again: folded once
    assert h.burst_mean == pytest.approx(1.35)
    h.learn(SimpleNamespace(epoch=1, requests=[1.0], peak_to_mean=None))  # nothing arrived: nothing learnt
    assert h.burst_mean == pytest.approx(1.35)


def test_least_latency_routing_keeps_the_loads_and_sends_each_origin_nearest():
    # two origins of 100 requests, two datacenters, origin o nearest datacenter o. The plan sends both origins
    # half to each (loads 100 / 100, total latency 100 x (0.01 + 0.05)): the same loads with each origin kept
    # at home cost 200 x 0.01
    lat = np.array([[0.01, 0.05], [0.05, 0.01]])
    plan = np.full((1, 2, 2), 0.5)
    out = least_latency_routing(plan, np.array([[100.0, 100.0]]), lat)
    np.testing.assert_allclose(out[0], np.eye(2), atol=1e-9)
    # 150 from origin 0, 50 from origin 1, the plan sends 80 % to datacenter 1 (160): origin 1's 50 stay home,
    # origin 0 makes up the other 110 (and keeps 40)
    plan = np.zeros((1, 2, 2))
    plan[0, :, 1], plan[0, :, 0] = 0.8, 0.2
    out = least_latency_routing(plan, np.array([[150.0, 50.0]]), lat)
    np.testing.assert_allclose(out[0], [[40 / 150, 110 / 150], [0.0, 1.0]], atol=1e-9)
    loads = np.einsum("mod,mo->md", out, [[150.0, 50.0]])
    np.testing.assert_allclose(loads, [[40.0, 160.0]])
    # equal latencies: nothing to gain, the plan is kept as it was
    np.testing.assert_array_equal(least_latency_routing(plan, np.array([[150.0, 50.0]]), np.full((2, 2), 0.03)),
                                  plan)


CAP = np.array([[100.0], [100.0]])  # two datacenters, one model, 100 requests per epoch each


def test_planned_utilization_by_hand():
    plan = np.array([[[0.75, 0.25]]])
    # 80 requests: 60 / 100 and 20 / 100, plus 10 waiting in datacenter 1 (0.1)
    np.testing.assert_allclose(planned_utilization(plan, [[80.0]], CAP, queued=[0.0, 10.0]), [0.6, 0.3])


def test_projection_moves_the_excess_to_the_datacenter_with_room():
    everything_to_0 = np.array([[[1.0, 0.0]]])
    # 120 requests at 1.2 of datacenter 0, target 0.8: it keeps 80 (2/3), datacenter 1 takes 40
    np.testing.assert_allclose(project_to_capacity(everything_to_0, [[120.0]], CAP, 0.8), [[[2 / 3, 1 / 3]]])
    # within the target: unchanged
    np.testing.assert_allclose(project_to_capacity(everything_to_0, [[50.0]], CAP, 0.8), everything_to_0)
    # 300 requests exceed the whole fleet's 0.8 (fleet utilization 1.5): both at 1.5
    np.testing.assert_allclose(project_to_capacity(everything_to_0, [[300.0]], CAP, 0.8), [[[0.5, 0.5]]])
    # the head-room-aware target of the tracker's prior (2/3): 66.7 of the 120 stay, 53.3 move
    t = Headroom(HeadroomParams()).target()
    out = project_to_capacity(everything_to_0, [[120.0]], CAP, t)
    np.testing.assert_allclose(planned_utilization(out, [[120.0]], CAP), [2 / 3, 1.2 - 2 / 3])


def test_compress_metrics_by_hand():
    x = np.array([0.5, 1.0, math.e, 3e6])
    np.testing.assert_allclose(compress_metrics(x, 10.0), [0.5, 1.0, 2.0, 1 + math.log(10.0)])
    assert metric_cap(10.0) == pytest.approx(3.302585, abs=1e-6)


def test_sla_score_and_reward_by_hand():
    p = EvaluatorParams()  # set point 0.01, penalty 10, eco 0.1, clip 10
    # feasible: 0.9; violating at 5 %: 0.9 + (1 + ln 10) + 0.1 + 10 x 0.04
    np.testing.assert_allclose(sla_score([0.9, 0.9], [0.005, 0.05], p), [0.9, 0.9 + 1 + math.log(10) + 0.1 + 0.4])
    # r = (ema - s) + 0.1 x parked - s
    np.testing.assert_allclose(bounded_reward([0.9], 1.0, [0.5], [0.0], p), [0.1 + 0.05 - 0.9])
    np.testing.assert_allclose(bounded_reward([0.9], None, [0.0], [0.0], p), [-0.9])
    assert update_ema(None, 1.0, 0.9) == 1.0 and update_ema(1.0, 2.0, 0.9) == pytest.approx(1.1)


unit = st.floats(0.0, 1.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.0, 1e9), min_size=4, max_size=4), st.lists(st.floats(0.0, 1e9), min_size=4, max_size=4),
       unit, unit, st.floats(0.0, 0.01), st.floats(0.0100001, 1.0), st.floats(-10.0, 10.0),
       st.sampled_from([(0.25, 0.25, 0.25, 0.25), (1.0, 0.0, 0.0, 0.0), (0.1, 0.4, 0.4, 0.1)]))
def test_a_sla_violating_plan_never_out_scores_a_feasible_one(norm_f, norm_v, parked_f, parked_v, rate_f, rate_v,
                                                              ema, weights):
    p = EvaluatorParams()
    w = np.asarray(weights)
    base = [float(compress_metrics(np.asarray(n), p.reward_norm_clip) @ w) for n in (norm_f, norm_v)]
    s_f, s_v = sla_score(base, [rate_f, rate_v], p)
    r_f, r_v = bounded_reward(base, ema, [parked_f, parked_v], [rate_f, rate_v], p)
    assert s_v > s_f
    assert r_v < r_f
