"""Shared fixtures: small but real runs (real trace, real sites), cached per session."""
import numpy as np
import pytest

from schedulers.registry import create
from simcore.config import Config
from simcore.engine import simulate


def small_config(**changes) -> Config:
    """4 datacenters of 60 nodes, 2 hours, a thinned real trace: a run takes well under a second."""
    base = dict(dcs=4, hours=2.0, nodes_per_dc=60, load_scale="0.01", scheduler="uniform", seed=3)
    return Config(**{**base, **changes})


def split_changes(changes: dict) -> tuple[dict, dict]:
    """(the world's, the scheduler's) of a dict of parameter changes, by name."""
    world = set(Config.names())
    return ({k: v for k, v in changes.items() if k in world}, {k: v for k, v in changes.items() if k not in world})


def run_small(**changes):
    """A small run; `changes` may name the world's parameters and the scheduler's."""
    world, own = split_changes(changes)
    cfg = small_config(**world)
    return simulate(cfg, create(cfg.scheduler, own))


@pytest.fixture(scope="session")
def uniform_run():
    return run_small()


def reset_scheduler(name: str, eng, seed: int = 0, **params):
    """A scheduler (with parameter changes) reset on an engine's static facts, as the engine would."""
    sched = create(name, params)
    sched.reset(eng.info, np.random.default_rng(seed))
    return sched
