"""Shared fixtures: small but real runs (real trace, real sites), cached per session."""
import dataclasses

import numpy as np
import pytest

from schedulers.registry import create
from simcore.config import Config
from simcore.engine import simulate


def small_config(**changes) -> Config:
    """4 datacenters of 60 nodes, 2 hours, a thinned real trace: a run takes well under a second."""
    base = dict(dcs=4, hours=2.0, nodes_per_dc=60, load_scale="0.01", scheduler="uniform", seed=3)
    return Config(**{**base, **changes})


def run_small(**changes):
    cfg = small_config(**changes)
    return simulate(cfg, create(cfg.scheduler))


@pytest.fixture(scope="session")
def uniform_run():
    return run_small()


def reset_scheduler(name: str, eng, seed: int = 0, **changes):
    """A scheduler reset on an engine's static facts (with config changes), as the engine would."""
    sched = create(name)
    info = eng.info if not changes else dataclasses.replace(eng.info, cfg=eng.info.cfg.replace(**changes))
    sched.reset(info, np.random.default_rng(seed))
    return sched
