"""Q-Learning, DDQN, Actor-Critic: they improve their reward on a tiny repeated scenario, give valid plans, are
deterministic per seed; DDQN's target network; the candidate set; the measured reward; CLI smoke runs."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from schedulers.feasibility import planned_utilization
from schedulers.registry import create
from schedulers.rl.discrete import candidate_names, candidate_plans
from schedulers.rl.online import linear_epsilon, observed_reward
from simcore.config import Config
from simcore.engine import Engine
from simcore.epochs import Epoch
from simcore.interface import EpochResult, Observation, validate_plan
from tests.conftest import reset_scheduler

NAMES = ("qlearning", "ddqn", "actorcritic")
ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**changes) -> Config:
    base = dict(dcs=4, hours=2.0, nodes_per_dc=60, load_scale="0.01", seed=5)
    return Config(**{**base, **changes})


@pytest.fixture(scope="module")
def engine():
    return Engine(tiny_config(), create("uniform"))


make = reset_scheduler


def observation(eng: Engine, epoch: int = 4, per_row: float = 30.0) -> Observation:
    """A real epoch's signals (of epoch 4) with a flat forecast; `epoch` only moves the exploration schedule."""
    D = eng.cfg.dcs
    obs = eng.epochs.observation(Epoch(4, 4 * eng.cfg.epoch_s, np.full((2, D), per_row), 0, 0),
                                 resident_nodes=np.zeros((D, 2)))
    return dataclasses.replace(obs, epoch=epoch)


def repeated_run(sched, eng: Engine, epochs: int) -> list:
    """Plans chosen over `epochs` epochs of the same state, each checked valid."""
    plans = []
    for e in range(epochs):
        plans.append(validate_plan(sched.decide(observation(eng, epoch=e)), eng.info.plan_shape, sched.name))
    return plans


def plain_reward(sched, eng: Engine, plans) -> np.ndarray:
    """The shared reward of plans in the repeated state, without the learner's EMA term (comparable)."""
    state = sched.epoch_state(observation(eng))
    return sched.score_plans(state, np.stack(plans), eng.cfg.weights)[0]


# --- the candidate set -----------------------------------------------------------------------------------------
def test_candidates_are_valid_named_and_within_the_headroom(engine):
    info = engine.info
    cap = info.capacity.requests_per_epoch
    target = 0.6
    names = candidate_names(info)
    one = observation(engine, per_row=1.0)  # the forecast scaled so the fleet as a whole is at 0.4 (< the target)
    per_row = 0.4 / planned_utilization(candidate_plans(one, info, target)[1], one.predicted_requests, cap).max()
    obs = dataclasses.replace(observation(engine, per_row=per_row), queued=np.zeros(info.dcs))
    plans = candidate_plans(obs, info, target)
    assert len(names) == len(plans) == 9 and len(set(names)) == len(names)
    for p in plans:
        validate_plan(p, info.plan_shape, "candidates")
    util = planned_utilization(plans, obs.predicted_requests, cap)
    fleet = planned_utilization(plans[names.index("proportional")], obs.predicted_requests, cap).max()
    assert fleet == pytest.approx(0.4)
    assert util.max() <= target + 1e-6  # no candidate plans a datacenter past the head-room
    # fill-carbon: the lowest-carbon datacenter is filled to the target before any other gets work
    green = int(np.argmin(obs.carbon_kg_per_it_kwh))
    assert util[names.index("fill-carbon"), green] == pytest.approx(target)


def test_epsilon_schedule():
    assert linear_epsilon(0, 0.5, 0.1, 10) == 0.5
    assert linear_epsilon(5, 0.5, 0.1, 10) == pytest.approx(0.3)
    assert linear_epsilon(50, 0.5, 0.1, 10) == pytest.approx(0.1)


# --- learning on a tiny repeated scenario ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ("qlearning", "ddqn"))
def test_value_based_agents_beat_random_choice(engine, name):
    sched = make(name, engine)
    plans = repeated_run(sched, engine, 30)
    cand = plain_reward(sched, engine, list(candidate_plans(observation(engine), engine.info,
                                                            sched.headroom.target())))
    last = plain_reward(sched, engine, plans[-8:])
    assert last.mean() > cand.mean() + 0.5 * (cand.max() - cand.mean())  # well above a random candidate
    assert np.median(last) == pytest.approx(cand.max())  # mostly the best candidate, exploration aside


def test_actorcritic_improves_its_mean_plan(engine):
    sched = make("actorcritic", engine)
    plans = repeated_run(sched, engine, 30)
    r = plain_reward(sched, engine, plans)
    assert r[-5:].mean() > r[0] + 0.02  # the mean plan (uniform at first) got better
    assert np.abs(plans[-1] - plans[0]).max() > 0.05  # it moved away from the uniform start


# --- held to account --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_learners_spend_within_their_declared_budgets(engine, name):
    sched = make(name, engine)
    p = sched.params
    for e in range(8):  # DDQN starts learning once its buffer holds a minibatch (64 of 9 per epoch: epoch 7)
        sched.decide(observation(engine, epoch=e))
        plans, steps = sched.epoch_spend
        assert 0 < plans <= p.plan_evaluations_per_epoch and steps <= p.gradient_steps_per_epoch
    if name != "qlearning":  # the tabular learner takes no gradient steps
        assert steps > 0


# --- determinism ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_plans(engine, name):
    a = repeated_run(make(name, engine, seed=7), engine, 4)
    b = repeated_run(make(name, engine, seed=7), engine, 4)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)


# --- DDQN's target network -------------------------------------------------------------------------------------
def test_ddqn_target_network_syncs(engine):
    sched = make("ddqn", engine, ddqn_target_sync_steps=5, ddqn_updates_per_epoch=0, ddqn_batch_size=8)

    def same() -> bool:
        return all(torch.equal(p, q) for p, q in zip(sched.q_net.state_dict().values(),
                                                     sched.target_net.state_dict().values()))

    assert same()  # a copy at the start
    sched.decide(observation(engine))  # fills the replay buffer with the K simulated transitions
    for _ in range(3):
        sched.train_step()
    assert not same()  # between syncs the online network has moved, the target has not
    frozen = [p.clone() for p in sched.target_net.parameters()]
    sched.train_step()
    assert all(torch.equal(p, q) for p, q in zip(frozen, sched.target_net.parameters()))
    sched.train_step()  # the 5th gradient step: hard copy
    assert same()


# --- the measured reward -----------------------------------------------------------------------------------------
def test_observed_reward_matches_simulated_scale(engine):
    sched = make("qlearning", engine)
    obs = observation(engine)
    state = sched.epoch_state(obs)
    ev = sched.evaluator.evaluate(state, sched.uniform_plan)
    d = engine.cfg.dcs
    share = np.full(d, 1.0 / d)  # a "measured" epoch equal to Simulate's uniform plan, spread over the sites
    n = float(state.requests.sum())
    res = EpochResult(0, requests=n * share, ttft_sum_s=ev.ttft_total_s[0] * share, ttft_count=n * share,
                      sla_violations=np.zeros(d), energy_kwh=ev.energy_kwh[0] * share,
                      carbon_kg=ev.carbon_kg[0] * share, water_l=ev.water_l[0] * share,
                      cost_usd=ev.cost_usd[0] * share, parked_share=np.full(d, ev.parked_share[0]))
    reward, score = observed_reward(sched, state, res, engine.cfg.weights, None)
    sim_reward = sched.score_plans(state, sched.uniform_plan[None], engine.cfg.weights)[0][0]
    assert score == pytest.approx(1.0)  # as the uniform plan's own normalization
    assert reward == pytest.approx(sim_reward)


# --- CLI smoke runs --------------------------------------------------------------------------------------------
def test_cli_smoke_runs(tmp_path):
    procs = {}
    for name in NAMES:  # in parallel: each run is mostly interpreter and torch start-up
        out = tmp_path / name
        procs[name] = (out, subprocess.Popen(
            [sys.executable, "run.py", "--scheduler", name, "--dcs", "4", "--hours", "1", "--set",
             "nodes_per_dc=60", "--load-scale", "0.01", "--no-progress", "--out", str(out)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for name, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}: {stderr}"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["scheduler"] == name and summary["requests_served"] > 0
        declared = json.loads((out / "config.json").read_text())[name]  # the budgets it is held to, on record
        assert declared["plan_evaluations_per_epoch"] == 256 and declared["gradient_steps_per_epoch"] == 128
