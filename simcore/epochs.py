"""The epochs of a run, computed in one place (SPEC 1, 3; docs/model.md 'Workload'): the epoch each request falls
in, the real requests arriving per (epoch, model, origin), the forecast a scheduler gets at each epoch start (the
EWMA predictor of section 5.1, fed an epoch's arrivals once the epoch is over) and what a scheduler observes of
the world at an epoch start (the site signals and what one kWh of IT energy costs in carbon, water and money at
each site, Eq. 6-10).

The engine plays these epochs (`Engine` iterates an `Epochs` and adds the fleet's live state to each
observation); `other_days` replays the training days (`simcore.training`) through the same iterator, each with
its own signals (offered to schedulers as `StaticInfo.other_days`), as an RL environment stepping epoch by epoch
would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from simcore import physics
from simcore.config import MODELS, Config
from simcore.interface import EpochResult, Observation
from simcore.predictor import EwmaRegression
from simcore.rng import stream
from topology.sites import SiteSignals
from traces.loader import Workload, load_workload


@dataclass(frozen=True)
class Epoch:
    """One epoch as the iterator hands it out.

    :param index: epoch index e
    :param start_s: simulated time of its start, e x epoch_s
    :param forecast: [M, O] real requests the predictor expects in it
    :param first, stop: its requests are the workload's rows [first, stop) (the workload is sorted by arrival)
    """

    index: int
    start_s: float
    forecast: np.ndarray
    first: int
    stop: int


class Epochs:
    """The epochs of one workload in one world; iterate it for each epoch's `Epoch` (the forecast is made when
    the epoch is handed out, and the epoch's arrivals are fed to the predictor when the next one is asked for).

    :param cfg: the world (`simcore.config.Config`)
    :param workload: the run's requests (`traces.loader.load_workload`)
    :param signals: the sites' signals over the run's epochs (`topology.sites.site_signals(cfg)`)
    """

    def __init__(self, cfg: Config, workload: Workload, signals: SiteSignals) -> None:
        self.cfg, self.workload, self.signals = cfg, workload, signals
        #: [n] each request's epoch; [E, M, O] real requests arriving per (epoch, model, origin)
        self.epoch_of, self.counts = arrivals(cfg, workload)
        #: [E + 1] epoch e's requests are the rows bounds[e]:bounds[e + 1]
        self.bounds = np.searchsorted(workload.t_s, np.arange(cfg.epochs + 1) * cfg.epoch_s)

    def __iter__(self) -> Iterator[Epoch]:
        cfg = self.cfg
        predictor = EwmaRegression(cfg.predictor_window_epochs, cfg.predictor_ewma_alpha)
        for e in range(cfg.epochs):
            forecast = predictor.predict()
            if forecast is None:  # warm start: the service ran before the horizon, its controller knows the load
                forecast = self.counts[0].astype(float)
            yield Epoch(e, e * cfg.epoch_s, forecast, int(self.bounds[e]), int(self.bounds[e + 1]))
            predictor.update(self.counts[e])

    def observation(self, epoch: Epoch, free_nodes: np.ndarray | None = None,
                    resident_nodes: np.ndarray | None = None, queued_by_model: np.ndarray | None = None,
                    last: EpochResult | None = None, hindsight: bool = False) -> Observation:
        """What a scheduler sees at the start of `epoch`: the forecast and the sites' signals, and the fleet's state
        as given; by default an idle fleet (every node free, nothing resident or waiting), all that an offline
        learner replaying a day knows. `hindsight` adds the epoch's true arrivals (`Scheduler.hindsight`)."""
        cfg, s, e = self.cfg, self.signals, epoch.index
        D = cfg.dcs
        per_kwh = physics.datacenter_epoch_metrics(np.ones(D), s.cop[e], s.tou_usd_per_kwh[e], s.gi_l_per_kwh,
                                                   s.ci_kg_per_kwh[e], cfg)
        return Observation(
            epoch=e, time_s=epoch.start_s, predicted_requests=epoch.forecast,
            free_nodes=np.full(D, cfg.nodes_per_dc) if free_nodes is None else free_nodes,
            resident_nodes=resident_nodes,
            queued=np.zeros(D, dtype=int) if queued_by_model is None else queued_by_model.sum(axis=1),
            queued_by_model=queued_by_model, ci_kg_per_kwh=s.ci_kg_per_kwh[e], gi_l_per_kwh=s.gi_l_per_kwh,
            tou_usd_per_kwh=s.tou_usd_per_kwh[e], cop=s.cop[e], carbon_kg_per_it_kwh=per_kwh["carbon_kg"],
            water_l_per_it_kwh=per_kwh["water_l"], cost_usd_per_it_kwh=per_kwh["cost_usd"], last=last,
            true_requests=self.counts[e].astype(float) if hindsight else None)


def arrivals(cfg: Config, workload: Workload) -> tuple[np.ndarray, np.ndarray]:
    """(each request's epoch [n], the real requests arriving per (epoch, model, origin) [E, M, O], failures left
    out): what the predictor is fed and what a forecast is scored against."""
    E = cfg.epochs
    epoch_of = np.minimum((workload.t_s // cfg.epoch_s).astype(np.int64), E - 1)
    ok = ~workload.failed
    counts = np.zeros((E, len(MODELS), cfg.dcs), dtype=np.int64)
    np.add.at(counts, (epoch_of[ok], workload.model[ok], workload.origin[ok]), 1)
    return epoch_of, counts * int(workload.cohort)


def other_days(cfg: Config, n: int) -> Iterator[Epochs]:
    """The epochs of the n training days of this run (`simcore.training.training_days`: other days of the bundled
    week, the test day's kind first, nearest first), each with its own date's arrivals and signals, loaded when the
    iterator reaches it; for a learner that replays days itself (whole engine runs of them: `simcore.training`).

    :raises ConfigError: the trace is not the bundled week, or it has fewer than n other days
    """
    from simcore.training import training_days
    from topology.sites import site_signals

    return (Epochs(c, load_workload(c, stream(c.seed, "trace")), site_signals(c)) for c in training_days(cfg, n))
