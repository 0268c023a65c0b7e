"""The LP oracle (schedulers/oracle.py): the routing LP on hand-solved worlds, its queueing lines and marginal
energy, and the hindsight privilege (only a class declaring `Scheduler.hindsight` sees the true arrivals)."""
import numpy as np
import pytest

from schedulers.feasibility import headroom_target
from schedulers.oracle import marginal_it_kwh, queue_penalty_lines, routing_lp
from schedulers.registry import create
from simcore.capacity import datacenter_utilization
from simcore.engine import Engine
from simcore.interface import Scheduler
from simcore.physics import J_PER_KWH
from tests.conftest import small_config


def test_routing_lp_fills_the_cheaper_datacenter_up_to_its_ceiling_for_the_origin_that_gains_most():
    """1 model, 2 origins of 60 requests, 2 datacenters of 100, ceiling 0.8. Per request: origin 0 pays 1 at
    dc 0 and 3 at dc 1, origin 1 pays 1 and 2. dc 0 has room for 80: origin 0's 60 (saving 2 each), then 20 of
    origin 1 (saving 1 each); the other 40 of origin 1 go to dc 1. Objective 60 + 20 + 40 x 2 = 160."""
    cost = np.array([[[1.0, 3.0], [1.0, 2.0]]])
    x, excess, obj = routing_lp(np.array([[60.0, 60.0]]), cost, np.array([[100.0], [100.0]]),
                                np.array([0.8, 0.8]), np.zeros(2))
    assert np.allclose(x, [[[60, 0], [20, 40]]], atol=1e-6)
    assert excess == pytest.approx(0.0, abs=1e-9)
    assert obj == pytest.approx(160.0)


def test_routing_lp_trades_the_queueing_penalty_against_the_unit_cost():
    """1 model, 1 origin of 120 requests, 2 datacenters of 100 (ceiling 1): dc 0 costs 1 per request, dc 1
    costs 2, and each datacenter's queueing penalty is max(0, 300 (u - 0.5)). Past 50 requests dc 0's marginal
    cost is 1 + 3 = 4, above dc 1's 2 (up to its 50), so both take 50; the last 20 go to dc 0 (4 < 2 + 3).
    x = (70, 50); objective 70 + 100 + 3 x 20 = 230."""
    lines = np.array([[[0.0, 0.0], [-150.0, 300.0]]] * 2)  # (intercept, slope): max(0, 300 u - 150)
    x, _, obj = routing_lp(np.array([[120.0]]), np.array([[[1.0, 2.0]]]), np.array([[100.0], [100.0]]),
                           np.ones(2), np.zeros(2), lines, queue_weight=1.0)
    assert np.allclose(x, [[[70, 50]]], atol=1e-6)
    assert obj == pytest.approx(230.0)


def test_routing_lp_overload_spreads_to_a_common_level_and_counts_what_waits():
    """200 requests into 2 datacenters of 100 at ceiling 0.8, 0.1 already committed at dc 1: 2.1 of utilization
    over 2 datacenters needs 1.05 each, 0.25 over the ceiling, and neither is asked more (the cheaper dc 0 does
    not take the excess alone): dc 0 takes 105, dc 1 95 (0.95 + 0.1 waiting)."""
    x, excess, _ = routing_lp(np.array([[200.0]]), np.array([[[1.0, 2.0]]]), np.array([[100.0], [100.0]]),
                              np.array([0.8, 0.8]), np.array([0.0, 0.1]))
    assert excess == pytest.approx(0.25)
    assert x.sum() == pytest.approx(200.0)
    assert x[0, 0, 0] == pytest.approx(105.0, abs=1e-4)


def test_routing_lp_never_routes_a_model_where_it_is_not_hosted():
    cost = np.array([[[5.0, 1.0]], [[5.0, 1.0]]])  # dc 1 is cheaper, but hosts only model 0
    x, _, _ = routing_lp(np.array([[10.0], [10.0]]), cost, np.array([[100.0, 100.0], [100.0, 0.0]]),
                         np.ones(2), np.zeros(2))
    assert x[1, 0, 1] == 0.0 and x[1, 0, 0] == pytest.approx(10.0)
    assert x[0, 0, 1] == pytest.approx(10.0)


def test_queue_penalty_lines_are_convex_zero_when_idle_and_steep_past_capacity():
    u = np.linspace(0, 1, 11)
    lines = queue_penalty_lines(mu_rps=10.0, slots=8.0, scv=1.0, limit_s=5.0, epoch_s=900.0, bin_s=60.0,
                                rate_profile=np.array([0.8, 1.2]), breakpoints=u, overload_wait_s=450.0)
    assert lines.shape == (11, 2)  # 10 pieces up to u = 1, and the line past it
    assert np.all(np.diff(lines[:, 1]) >= 0)  # non-decreasing slopes: a convex function
    f = lambda x: (lines[:, 0] + lines[:, 1] * x).max()  # noqa: E731
    assert f(0.0) == pytest.approx(0.0, abs=1e-9)
    assert f(0.9) > f(0.5) > 0
    assert lines[-1, 1] == pytest.approx(10.0 * 900.0 * 450.0)  # each request past capacity waits 450 s


def test_marginal_it_kwh_by_hand():
    """One model, two node types of 10 nodes: type 0 serves 2 req/s at 1000 W, type 1 1 req/s at 500 W. A request
    takes 0.5 node-s on type 0 ((1 - 0.05) x 1000 W -> 475 J) and 1 node-s on type 1 (475 J); the requests split
    2:1, so 475 J = 475 / 3.6e6 kWh either way."""
    kwh = marginal_it_kwh(np.array([[2.0, 1.0]]), np.array([[True, True]]), np.array([10, 10]),
                          np.array([1000.0, 500.0]), 1.0, 0.05)
    assert kwh == pytest.approx([475.0 / J_PER_KWH])


class _Recorder(Scheduler):
    """Records what each observation carried of the truth."""

    def plan(self, obs):
        self.seen = getattr(self, "seen", []) + [obs.true_requests]
        return np.full(self.info.plan_shape, 1.0 / self.info.dcs)


class _HindsightRecorder(_Recorder):
    hindsight = True


def test_only_a_hindsight_scheduler_is_given_the_true_arrivals():
    cfg = small_config(hours=1.0)
    plain, privileged = _Recorder(), _HindsightRecorder()
    rec_plain = Engine(cfg, plain).run()
    eng = Engine(cfg, privileged)
    rec = eng.run()
    assert all(t is None for t in plain.seen) and not rec_plain.hindsight
    assert rec.hindsight
    assert len(privileged.seen) == cfg.epochs
    for e, t in enumerate(privileged.seen):
        assert np.array_equal(t, eng.epochs.counts[e])  # exactly the epoch's arrivals
    # what the engine counted as routed in each epoch is what the hindsight scheduler was told
    per_epoch = np.bincount(rec.req_epoch[~rec.req_failed], minlength=cfg.epochs) * rec.cohort
    assert np.array_equal(per_epoch, [t.sum() for t in privileged.seen])


def test_oracle_hindsight_plans_every_datacenter_within_the_peak_head_room():
    """On a small real world with room to spare, the hindsight oracle's plan on the true arrivals keeps every
    datacenter at most at 1 / fill_peak_to_mean of its capacity (no forecast error to cover)."""
    cfg = small_config(hours=1.0)
    eng = Engine(cfg, create("oracle-hindsight"))
    sched = eng.sched
    plans, truths = [], []
    decide = sched.decide

    def spy(obs):
        plans.append(decide(obs))
        truths.append(obs.true_requests)
        return plans[-1]

    sched.decide = spy
    eng.run()
    cap = eng.capacity.requests_per_epoch
    target = headroom_target(sched.params.fill_peak_to_mean, sched.params.fill_error_z, 0.0)
    for plan, truth in zip(plans, truths):
        load = np.einsum("mod,mo->dm", plan, truth)
        assert datacenter_utilization(load, cap).max() <= target + 1e-6
