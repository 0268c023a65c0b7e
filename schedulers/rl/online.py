"""Shared by the online RL baselines (Q-Learning, DDQN, Actor-Critic): the reward of a measured epoch, the
epsilon schedule, and torch plumbing (seeding from the scheduler's RNG, thread count).

`observed_reward`: the shared reward (schedulers.common.plan_reward) of an epoch that really ran. Q-Learning
and DDQN learn from two kinds of experience: model-based (Dyna) transitions whose rewards come from Simulate,
and the real transition of the plan they executed. For the second to be on the same scale as the
first, the measured metrics are normalized exactly as `EvaluatorScheduler.score_plans` normalizes simulated ones:
by Simulate's metrics of the uniform plan in the epoch's state, here with the forecast's (model, origin) mix
rescaled to the number of requests that really arrived (the engine reports requests per datacenter only).
TTFT: the measured mean over the requests that got a first token, times all requests (the evaluator's total).
The normalized metrics are bounded as Simulate's are (`feasibility.compress_metrics`).
"""
from __future__ import annotations

import contextlib

import numpy as np

from schedulers.common import plan_reward, weighted_score
from schedulers.feasibility import compress_metrics
from simcore.evaluator import EpochState
from simcore.interface import EpochResult


def measured_metrics(evaluator, uniform_plan: np.ndarray, state: EpochState, result: EpochResult, k: int = 4):
    """(measured metrics [k], the uniform plan's [k]) of an epoch that really ran (TTFT total s, carbon kg, water
    L, cost USD; with k = 5 also the embodied carbon attributable to serving, kg; see the module docstring), or
    None when no request arrived. Also the RL environment's reward (`rlenv.reward`)."""
    total = float(np.sum(result.requests))
    if total <= 0:
        return None
    mix = np.asarray(state.predicted, dtype=float)
    mix = mix / mix.sum() if mix.sum() > 0 else np.full(mix.shape, 1.0 / mix.size)
    real = EpochState(state.predicted, mix * total, state.ci_kg_per_kwh, state.gi_l_per_kwh,
                      state.tou_usd_per_kwh, state.cop, state.resident_nodes)
    ref = evaluator.evaluate(real, uniform_plan).objective_metrics(k)[0]
    ttft_mean = float(np.sum(result.ttft_sum_s)) / max(float(np.sum(result.ttft_count)), 1.0)
    measured = [ttft_mean * total, np.sum(result.carbon_kg), np.sum(result.water_l), np.sum(result.cost_usd),
                np.sum(result.embodied_attributable_kg) if k > 4 else 0.0]
    return np.array(measured[:k], dtype=float), ref


def observed_reward(sched, state: EpochState, result: EpochResult, weights, ema: float | None):
    """(reward, weighted score) of the measured epoch, or None when no request arrived.

    :param sched: the EvaluatorScheduler (its evaluator, uniform plan and parameters)
    :param state: the EpochState the plan was chosen in
    """
    got = measured_metrics(sched.evaluator, sched.uniform_plan, state, result)
    if got is None:
        return None
    total = float(np.sum(result.requests))
    measured, ref = got
    norm = compress_metrics(measured / np.maximum(ref, 1e-12), sched.params.reward_norm_clip)
    score = float(weighted_score(norm, weights))
    sla_rate = float(np.sum(result.sla_violations)) / total
    reward = plan_reward(np.array([score]), ema, np.array([float(np.mean(result.parked_share))]),
                         np.array([sla_rate]), sched.params)
    return float(reward[0]), score


def linear_epsilon(epoch: int, start: float, end: float, decay_epochs: int) -> float:
    """Exploration rate of epsilon-greedy: `start` at epoch 0, linearly to `end` at `decay_epochs`, then `end`."""
    if decay_epochs <= 0:
        return end
    frac = min(1.0, epoch / decay_epochs)
    return start + frac * (end - start)


def torch_seeds(rng: np.random.Generator) -> tuple:
    """(network seed, sampling seed) drawn from the scheduler's stream: same run seed -> same nets and samples."""
    return tuple(int(x) for x in rng.integers(0, 2**31 - 1, size=2))


@contextlib.contextmanager
def torch_threads(n: int):
    """Small networks run fastest on few threads; restore the caller's setting afterwards."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
