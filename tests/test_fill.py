"""fill-ttft / fill-carbon / fill-water / fill-cost: fill the best datacenter up to the fill target, then the next.

Hand-made facts: 3 datacenters, 2 models, capacity [D, M] below. Most tests fix the fill target at 0.9 (no
forecast error assumed, busiest minute 1 / 0.9 of the mean: set explicitly, so the expected fractions do not
depend on the defaults); the head-room tests use the head-room parameters written out below.
"""
import numpy as np
import pytest

from schedulers.feasibility import forecast_error, headroom_target
from schedulers.fill import common_level
from schedulers.registry import create
from simcore import physics
from simcore.capacity import Capacity, datacenter_utilization
from simcore.config import Config
from simcore.engine import simulate
from simcore.interface import EpochResult, Observation, StaticInfo
from tests.conftest import run_small, small_config

TARGET = 0.9
FIXED = dict(fill_peak_to_mean=1.0 / TARGET, fill_error_prior=0.0)  # fill target TARGET whatever the error
# head-room: busiest minute 1.25 x the mean, 2 standard deviations of error, 10 % before any is seen
HEADROOM = dict(fill_peak_to_mean=1.25, fill_error_z=2.0, fill_error_prior=0.1, fill_error_ewma_alpha=0.25)
CAP = np.array([[100.0, 50.0],  # datacenter 0
                [200.0, 100.0],  # datacenter 1
                [100.0, 50.0]])  # datacenter 2
CI = np.array([0.5, 0.1, 0.3])  # carbon order 1, 2, 0 (everything else equal across sites)
FILL = ("fill-ttft", "fill-carbon", "fill-water", "fill-cost")


def make(name, latency=None, **fill):
    cfg = Config()
    lat = np.full((3, 3), 0.05) if latency is None else np.asarray(latency, dtype=float)
    ones = np.ones((2, 2))
    cap = Capacity(ones.astype(int), ones, ones, CAP.copy(), cfg.epoch_s, ones)
    info = StaticInfo(3, ("a", "b", "c"), ("small", "large"), lat, cfg.epoch_s, 4, cfg.weights, cfg.sla_ttft_s,
                      cfg.ttft_model, cfg.warm_target_utilization, capacity=cap)
    s = create(name, fill or FIXED)
    s.reset(info, np.random.default_rng(0))
    return s


def obs(pred, queued=(0.0, 0.0, 0.0), ci=CI, gi=(1.0, 1.0, 1.0), tou=(0.1, 0.1, 0.1), cop=(4.0, 4.0, 4.0),
        epoch=1, last=None):
    a = lambda x: np.asarray(x, dtype=float)  # noqa: E731
    per_kwh = physics.datacenter_epoch_metrics(np.ones(3), a(cop), a(tou), a(gi), a(ci), Config())
    return Observation(epoch, 900.0 * epoch, a(pred), np.zeros(3), np.zeros((3, 2)), a(queued), a(ci), a(gi),
                       a(tou), a(cop), last, carbon_kg_per_it_kwh=per_kwh["carbon_kg"],
                       water_l_per_it_kwh=per_kwh["water_l"], cost_usd_per_it_kwh=per_kwh["cost_usd"])


def result(epoch, requests):
    """A finished epoch's measured metrics, of which the fill schedulers read `epoch` and `requests`."""
    z = np.zeros(3)
    return EpochResult(epoch, np.asarray(requests, dtype=float), z, z, z, z, z, z, z, z)


def test_registered_and_plans_valid():
    pred = np.array([[30.0, 500.0, 7.0], [0.0, 40.0, 300.0]])
    for name in FILL:
        s = make(name, latency=[[0.01, 0.05, 0.09], [0.06, 0.02, 0.08], [0.07, 0.05, 0.03]])
        plan = s.decide(obs(pred, queued=(10.0, 0.0, 50.0)))  # decide validates shape, sign and row sums
        assert plan.shape == (2, 3, 3)
        np.testing.assert_allclose(plan.sum(axis=2), 1.0)


def test_carbon_below_capacity_all_to_lowest_carbon():
    # datacenter 1 (lowest carbon): 60/200 + 20/100 = 0.5 of its capacity < 0.9, so it takes everything
    plan = make("fill-carbon").decide(obs([[20.0, 20.0, 20.0], [10.0, 0.0, 10.0]]))
    np.testing.assert_allclose(plan[:, :, 1], 1.0)


def test_carbon_spills_exact_excess_in_carbon_order():
    # 300 requests of model 0; datacenter 1 holds 0.9 x 200 = 180, datacenter 2 0.9 x 100 = 90, then datacenter 0.
    # rows in origin order: origin 0 (100) all to 1; origin 1: 80 to 1, 20 to 2; origin 2: 70 to 2, 30 to 0
    plan = make("fill-carbon").decide(obs([[100.0, 100.0, 100.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(plan[0, 0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(plan[0, 1], [0.0, 0.8, 0.2])
    np.testing.assert_allclose(plan[0, 2], [0.3, 0.0, 0.7])
    np.testing.assert_allclose(plan[1, :, 1], 1.0)  # model 1 forecasts nothing: all to the lowest carbon
    load = np.einsum("mod,mo->dm", plan, [[100.0, 100.0, 100.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(datacenter_utilization(load, CAP), [0.3, 0.9, 0.9])


def test_queued_requests_count_first():
    # datacenter 1 already has 90 model-0 requests waiting (0.45 of its capacity): 90 more fit, 10 spill to 2
    plan = make("fill-carbon").decide(obs([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]], queued=(0.0, 90.0, 0.0)))
    np.testing.assert_allclose(plan[0, 0], [0.0, 0.9, 0.1])


def test_mixed_models_share_the_nodes():
    # model 0 is placed first: its 90 requests (origin 1) fill datacenter 1 to 90/200 = 0.45. Model 1's 100
    # requests (origin 0) then find (0.9 - 0.45) x 100 = 45 of room in datacenter 1, 0.9 x 50 = 45 in
    # datacenter 2 and the last 10 in datacenter 0
    plan = make("fill-carbon").decide(obs([[0.0, 90.0, 0.0], [100.0, 0.0, 0.0]]))
    np.testing.assert_allclose(plan[0, 1], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(plan[1, 0], [0.10, 0.45, 0.45])


def test_overflow_fills_every_datacenter_to_a_common_level():
    # 1000 requests of model 0 need 2.5 x the 400 requests of model-0 capacity: every datacenter is filled to
    # 2.5 of its capacity (1: 500, 2: 250, 0: 250) instead of the excess piling onto the best one
    plan = make("fill-carbon").decide(obs([[1000.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(plan[0, 0], [0.25, 0.5, 0.25])


def test_overflow_level_counts_queued_work():
    # 300 model-0 requests forecast, 100 waiting in datacenter 1 (0.5 of it): (300 + 100) / 400 = 1.0 is the
    # common level (above the target 0.9); datacenter 1 takes 200 - 100 = 100, datacenters 2 and 0 100 each
    assert common_level([[300.0, 0.0, 0.0], [0.0, 0.0, 0.0]], CAP, [0.0, 0.5, 0.0]) == pytest.approx(1.0)
    plan = make("fill-carbon").decide(obs([[300.0, 0.0, 0.0], [0.0, 0.0, 0.0]], queued=(0.0, 100.0, 0.0)))
    np.testing.assert_allclose(plan[0, 0], [1 / 3, 1 / 3, 1 / 3])


def test_headroom_fill_by_hand():
    # before any epoch is seen the error is the prior 0.1: target 2/3. Datacenter 1 holds 2/3 x 200 = 133.3 of
    # model 0, datacenter 2 2/3 x 100 = 66.7: origin 0 (100) all to 1; origin 1: 33.3 to 1, 66.7 to 2
    s = make("fill-carbon", **HEADROOM)
    assert s.target() == pytest.approx(2 / 3)
    plan = s.decide(obs([[100.0, 100.0, 0.0], [0.0, 0.0, 0.0]], epoch=0))
    np.testing.assert_allclose(plan[0, 0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(plan[0, 1], [0.0, 1 / 3, 2 / 3], atol=1e-12)
    np.testing.assert_allclose(s.planned, [0.0, 400 / 3, 200 / 3], atol=1e-9)


def test_target_drops_after_a_miss_and_rises_back():
    s = make("fill-carbon", **HEADROOM)
    pred = [[150.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    s.decide(obs(pred, epoch=0))  # target 2/3: datacenter 1 takes 133.3 of the 150, datacenter 2 the rest
    np.testing.assert_allclose(s.planned, [0.0, 400 / 3, 50 / 3], atol=1e-9)
    # epoch 0 brought 30 % more than planned everywhere: error 0.3, variance 0.75 x 0.01 + 0.25 x 0.09 = 0.03
    p1 = s.decide(obs(pred, epoch=1, last=result(0, 1.3 * s.planned)))
    low = 1.0 / (1.25 * (1.0 + 2.0 * np.sqrt(0.03)))  # 0.594
    assert s.target() == pytest.approx(low)
    np.testing.assert_allclose(p1[0, 0], [0.0, low * 200 / 150, 1.0 - low * 200 / 150], atol=1e-12)
    # epoch 1 came as planned: variance 0.75 x 0.03 = 0.0225, sd 0.15: the target rises back
    s.decide(obs(pred, epoch=2, last=result(1, s.planned)))
    assert s.target() == pytest.approx(1.0 / (1.25 * 1.3))
    assert s.target() > low
    # a result that is not of the epoch last planned (a scheduler reset mid-run, say) teaches nothing
    before = s.target()
    s.decide(obs(pred, epoch=3, last=result(0, 5.0 * s.planned)))
    assert s.target() == pytest.approx(before)


def test_no_forecast_rows_to_best():
    plan = make("fill-carbon").decide(obs(np.zeros((2, 3))))
    np.testing.assert_allclose(plan[:, :, 1], 1.0)


def test_water_and_cost_rank_by_their_metric():
    pred = [[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    water = make("fill-water").decide(obs(pred, gi=(3.0, 2.0, 1.0)))  # least grid water: datacenter 2
    np.testing.assert_allclose(water[0, 0], [0.0, 0.0, 1.0])
    cost = make("fill-cost").decide(obs(pred, tou=(0.05, 0.2, 0.1)))  # cheapest: datacenter 0
    np.testing.assert_allclose(cost[0, 0], [1.0, 0.0, 0.0])


def test_carbon_counts_cooling():
    # same grid carbon everywhere; datacenter 2 cools worst (lowest COP) -> most energy per IT kWh -> last
    s = make("fill-carbon")
    order = s.rank(obs(np.zeros((2, 3)), ci=(0.3, 0.3, 0.3), cop=(4.0, 6.0, 1.5)))
    assert list(order[0]) == [1, 0, 2]


def test_ttft_nearest_first_per_origin():
    lat = [[0.01, 0.05, 0.09], [0.06, 0.02, 0.08], [0.07, 0.05, 0.03]]  # origin o nearest datacenter o
    plan = make("fill-ttft", lat).decide(obs([[10.0, 10.0, 10.0], [5.0, 5.0, 5.0]]))
    for o in range(3):
        np.testing.assert_allclose(plan[:, o, o], 1.0)


def test_ttft_closest_demand_fills_first():
    # both origins nearest datacenter 0 (room 0.9 x 100 = 90 of model 0); origin 1 is closer (10 ms), so it
    # is placed first: 90 to 0, 10 to its next nearest 1; origin 0 then finds 0 full and goes to 1 (50 ms)
    lat = [[0.03, 0.05, 0.09], [0.01, 0.06, 0.08], [0.07, 0.05, 0.03]]
    plan = make("fill-ttft", lat).decide(obs([[100.0, 100.0, 0.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(plan[0, 1], [0.9, 0.1, 0.0])
    np.testing.assert_allclose(plan[0, 0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(plan[0, 2], [0.0, 0.0, 1.0])  # no forecast: nearest


@pytest.mark.parametrize("name", FILL)
def test_runs_in_the_engine(name):
    res = run_small(scheduler=name)
    assert res is not None


def test_engine_run_learns_the_forecast_error():
    # in the small world every finished epoch but the last is compared with what the plan sent to each
    # datacenter: the arrivals are real requests on the plan's scale (errors of a few %, not a unit mix-up)
    cfg = small_config(scheduler="fill-carbon")
    s = create("fill-carbon")
    seen = []
    plan = s.plan

    def recording(o):
        if o.last is not None:
            seen.append((o.last.epoch, s.planned_epoch, s.planned.copy(), np.asarray(o.last.requests, float)))
        return plan(o)

    s.plan = recording
    simulate(cfg, s)
    assert [(a, b) for a, b, _, _ in seen] == [(e, e) for e in range(cfg.epochs - 1)]
    p = s.params
    var = p.fill_error_prior ** 2
    for _, _, planned, arrived in seen:
        e = forecast_error(planned, arrived)
        assert e < 0.3
        var = (1 - p.fill_error_ewma_alpha) * var + p.fill_error_ewma_alpha * e * e
    assert s.error_var == pytest.approx(var)
    assert s.target() == pytest.approx(headroom_target(s.headroom.peak_to_mean(), p.fill_error_z, np.sqrt(var)))
    assert s.headroom.burst_epoch == cfg.epochs - 2  # the burstiness of every finished epoch was folded in
