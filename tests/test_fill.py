"""fill-ttft / fill-carbon / fill-water / fill-cost: fill the best datacenter up to the fill target, then the next.

Hand-made facts: 3 datacenters, 2 models, capacity [D, M] below, fill target 0.9 (set explicitly, so the expected
fractions do not depend on the Config default).
"""
import numpy as np
import pytest

from schedulers.base import Observation, StaticInfo
from schedulers.registry import create
from simcore.capacity import Capacity, datacenter_utilization
from simcore.config import Config
from tests.conftest import run_small

TARGET = 0.9
CAP = np.array([[100.0, 50.0],  # datacenter 0
                [200.0, 100.0],  # datacenter 1
                [100.0, 50.0]])  # datacenter 2
CI = np.array([0.5, 0.1, 0.3])  # carbon order 1, 2, 0 (everything else equal across sites)
FILL = ("fill-ttft", "fill-carbon", "fill-water", "fill-cost")


def make(name, latency=None):
    cfg = Config(warm_target_utilization=TARGET)  # only its physics and fill target are read
    lat = np.full((3, 3), 0.05) if latency is None else np.asarray(latency, dtype=float)
    ones = np.ones((2, 2))
    cap = Capacity(ones.astype(int), ones, ones, CAP.copy(), cfg.epoch_s, ones)
    info = StaticInfo(3, ("a", "b", "c"), ("small", "large"), (("H100", 1), ("A100", 1)), np.ones((3, 2)),
                      np.ones((2, 2), dtype=bool), lat, cfg.epoch_s, 4, cfg.weights, cfg, capacity=cap)
    s = create(name)
    s.reset(info, np.random.default_rng(0))
    return s


def obs(pred, queued=(0.0, 0.0, 0.0), ci=CI, gi=(1.0, 1.0, 1.0), tou=(0.1, 0.1, 0.1), cop=(4.0, 4.0, 4.0)):
    a = lambda x: np.asarray(x, dtype=float)  # noqa: E731
    return Observation(1, 900.0, a(pred), np.zeros(3), np.zeros((3, 2)), a(queued), a(ci), a(gi), a(tou), a(cop),
                       None)


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


def test_overflow_beyond_every_datacenter_goes_to_best():
    # 1000 requests: 180 to 1, 90 to 2, 90 to 0; the 640 left over to the best (1): 820
    plan = make("fill-carbon").decide(obs([[1000.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(plan[0, 0], [0.09, 0.82, 0.09])


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
