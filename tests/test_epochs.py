"""simcore.epochs: one epoch iterator for the engine and MARLIN's pre-training (arrivals per epoch, the forecast
with its warm start, the observation)."""

import numpy as np
import pytest

from schedulers.registry import create
from simcore import physics
from simcore.engine import Engine
from simcore.epochs import Epochs, arrivals
from simcore.errors import ConfigError
from simcore.predictor import EwmaRegression
from simcore.rng import stream
from tests.conftest import small_config
from topology.sites import site_signals
from traces.loader import load_workload


@pytest.fixture(scope="module")
def world():
    cfg = small_config(hours=3.0)
    return cfg, load_workload(cfg, stream(cfg.seed, "trace"))


def test_arrivals_are_real_requests_per_epoch_without_failures(world):
    cfg, wl = world
    epoch_of, counts = arrivals(cfg, wl)
    assert counts.shape == (cfg.epochs, 2, cfg.dcs)
    assert counts.sum() == (~wl.failed).sum() * wl.cohort
    np.testing.assert_array_equal(epoch_of, (wl.t_s // cfg.epoch_s).astype(int))
    e = 5
    ok = (epoch_of == e) & ~wl.failed & (wl.model == 1) & (wl.origin == 2)
    assert counts[e, 1, 2] == ok.sum() * wl.cohort


def test_the_forecast_starts_warm_and_is_fed_each_finished_epoch(world):
    cfg, wl = world
    epochs = Epochs(cfg, wl, site_signals(cfg))
    handed = list(epochs)
    assert [ep.index for ep in handed] == list(range(cfg.epochs))
    np.testing.assert_array_equal(handed[0].forecast, epochs.counts[0])  # warm start: the first epoch's load
    ref = EwmaRegression(cfg.predictor_window_epochs, cfg.predictor_ewma_alpha)
    for ep in handed[1:]:
        ref.update(epochs.counts[ep.index - 1])
        np.testing.assert_array_equal(ep.forecast, ref.predict())
    assert handed[3].start_s == 3 * cfg.epoch_s
    assert (handed[3].first, handed[3].stop) == tuple(np.searchsorted(wl.t_s, [3 * cfg.epoch_s, 4 * cfg.epoch_s]))


def test_the_default_observation_is_an_idle_fleet_with_the_epochs_signals(world):
    cfg, wl = world
    s = site_signals(cfg)
    epochs = Epochs(cfg, wl, s)
    ep = list(epochs)[2]
    obs = epochs.observation(ep)
    assert obs.epoch == 2 and obs.time_s == ep.start_s and obs.predicted_requests is ep.forecast
    np.testing.assert_array_equal(obs.free_nodes, np.full(cfg.dcs, cfg.nodes_per_dc))
    assert obs.resident_nodes is None and obs.last is None and not np.any(obs.queued)
    np.testing.assert_array_equal(obs.ci_kg_per_kwh, s.ci_kg_per_kwh[2])
    per_kwh = physics.datacenter_epoch_metrics(np.ones(cfg.dcs), s.cop[2], s.tou_usd_per_kwh[2], s.gi_l_per_kwh,
                                               s.ci_kg_per_kwh[2], cfg)
    np.testing.assert_array_equal(obs.carbon_kg_per_it_kwh, per_kwh["carbon_kg"])
    np.testing.assert_array_equal(obs.cost_usd_per_it_kwh, per_kwh["cost_usd"])
    queued = np.array([[3.0, 1.0]] * cfg.dcs)
    np.testing.assert_array_equal(epochs.observation(ep, queued_by_model=queued).queued, np.full(cfg.dcs, 4.0))


def test_the_engine_plays_the_iterators_epochs(world):
    cfg, wl = world
    sched = create("uniform")
    seen = []
    decide = sched.decide
    sched.decide = lambda obs: seen.append(obs) or decide(obs)
    eng = Engine(cfg, sched, wl)
    eng.run()
    handed = list(Epochs(cfg, wl, site_signals(cfg)))
    assert len(seen) == len(handed)
    for obs, ep in zip(seen, handed):
        assert (obs.epoch, obs.time_s) == (ep.index, ep.start_s)
        np.testing.assert_array_equal(obs.predicted_requests, ep.forecast)


def test_other_days_replays_the_training_days_each_with_its_own_signals():
    cfg = small_config(hours=0.5)
    eng = Engine(cfg, create("uniform"))
    days = list(eng.info.other_days(2))
    assert [e.cfg.trace_day for e in days] == ["2024-05-14", "2024-05-15"]  # after Monday 2024-05-13, nearest first
    for epochs in days:
        own = site_signals(epochs.cfg)
        np.testing.assert_array_equal(epochs.signals.ci_kg_per_kwh, own.ci_kg_per_kwh)
        assert not np.array_equal(epochs.signals.ci_kg_per_kwh, eng.signals.ci_kg_per_kwh[:cfg.epochs])
        assert len(list(epochs)) == cfg.epochs
    with pytest.raises(ConfigError, match="only 6 days other than the test day"):
        list(eng.info.other_days(7))
