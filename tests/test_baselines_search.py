"""Helix, PerLLM, NSGA-II, SLIT: each one's defining behaviour, valid plans, same seed -> same plan, CLI smoke."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from schedulers.common import normalized_metrics, weighted_score
from schedulers.feasibility import compress_metrics, planned_utilization
from schedulers.nsga2 import PlanProblem, logits_to_plans, one_hot_logits
from schedulers.registry import create
from schedulers.slit import plan_features, slit_score
from simcore.capacity import datacenter_utilization
from simcore.config import Config
from simcore.engine import Engine
from simcore.epochs import Epoch
from simcore.interface import EpochResult, Observation, validate_plan
from tests.conftest import reset_scheduler

NAMES = ("helix", "perllm", "nsga2", "slit")
ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**changes) -> Config:
    base = dict(dcs=4, hours=2.0, nodes_per_dc=60, load_scale="0.01", seed=11)
    return Config(**{**base, **changes})


@pytest.fixture(scope="module")
def engine():
    return Engine(tiny_config(), create("uniform"))


make = reset_scheduler


def observation(eng: Engine, epoch: int = 4, per_row: float | None = None, last=None) -> Observation:
    """A real epoch's signals with a forecast of `per_row` requests per (model, origin); by default a load that
    fills half the fleet's serving capacity in the workload's model mix (85 % / 15 %), so capacity matters."""
    D = eng.cfg.dcs
    if per_row is None:
        share = np.array([1.0 - eng.cfg.gpt4_share, eng.cfg.gpt4_share])
        fleet = eng.capacity.mix_requests_per_epoch(share).sum()
        pred = np.repeat((0.5 * fleet * share / D)[:, None], D, axis=1)
    else:
        pred = np.full((2, D), per_row)
    return eng.epochs.observation(Epoch(epoch, epoch * eng.cfg.epoch_s, pred, 0, 0), resident_nodes=np.zeros((D, 2)),
                                  last=last)


def epoch_result(epoch: int, cost_per_req: np.ndarray, requests: float = 100.0) -> EpochResult:
    """Synthetic measured metrics: every datacenter served `requests`, each metric = cost_per_req x requests."""
    d = len(cost_per_req)
    req = np.full(d, requests)
    c = np.asarray(cost_per_req, dtype=float) * requests
    return EpochResult(epoch, req, ttft_sum_s=c, ttft_count=req, sla_violations=np.zeros(d), energy_kwh=c,
                       carbon_kg=c, water_l=c, cost_usd=c, parked_share=np.zeros(d))


# --- Helix ---------------------------------------------------------------------------------------------------
def test_helix_flow_respects_capacities_and_spills(engine):
    h = make("helix", engine, helix_capacity_share=0.001)
    supply = np.zeros((2, 4), dtype=int)
    supply[1, :] = 1
    supply[0, 0] = 10_000_000  # origin 0's small-model demand far beyond its own datacenter's capacity
    sol = h.solve(supply)
    cap, tf, flow = sol["capacity"], sol["type_flow"], sol["flow"]
    assert np.all(tf <= cap + 1e-9)  # no node-type edge above its capacity
    np.testing.assert_allclose(flow.sum(axis=1), tf.sum(axis=2))  # conservation at each (model, datacenter)
    assert flow[0, 0, 0] == pytest.approx(cap[0, 0].sum())  # the home datacenter is saturated ...
    assert flow[0, 0, 1:].sum() > 0  # ... and the excess goes elsewhere
    assert flow.sum() == pytest.approx(min(supply.sum(), cap.sum()))  # a maximum flow
    obs = observation(engine)
    obs = Observation(**{**obs.__dict__, "predicted_requests": supply.astype(float)})
    plan = h.decide(obs)
    assert plan[0, 0, 0] < 1.0 and plan[0, 0, 1:].sum() > 0


def test_helix_light_load_is_nearest_by_latency(engine):
    h = make("helix", engine)
    plan = h.decide(observation(engine, per_row=5.0))
    near = np.argmin(engine.info.latency_s, axis=1)
    for m in range(2):
        np.testing.assert_allclose(plan[m, np.arange(4), near], 1.0)


def test_helix_without_forecast_sends_one_unit_per_row_nearest(engine):
    # epoch 0 has no forecast: every row carries one unit, so the flow still picks each row's cheapest path
    h = make("helix", engine)
    plan = h.decide(observation(engine, epoch=0, per_row=0.0))
    np.testing.assert_array_equal(h.last_solution["supply"], np.ones((2, 4), dtype=int))
    np.testing.assert_array_equal(plan, h.decide(observation(engine, epoch=0, per_row=1.0)))
    near = np.argmin(engine.info.latency_s, axis=1)
    for m in range(2):
        np.testing.assert_array_equal(plan[m, np.arange(4), near], 1.0)


def test_helix_row_without_forecast_goes_nearest_when_others_spill(engine):
    h = make("helix", engine, helix_capacity_share=0.001)
    obs = observation(engine)
    pred = np.ones((2, 4))
    pred[0, 0] = 10_000_000  # origin 0's small-model demand far beyond its own datacenter's capacity ...
    pred[1, :2] = 0.0  # ... and two rows without any forecast
    plan = h.decide(Observation(**{**obs.__dict__, "predicted_requests": pred}))
    assert plan[0, 0].max() < 1.0  # the loaded row was split over several datacenters
    near = np.argmin(engine.info.latency_s, axis=1)
    np.testing.assert_array_equal(plan[1, [0, 1], near[:2]], 1.0)  # the empty rows: their nearest, whole


# --- PerLLM --------------------------------------------------------------------------------------------------
def test_perllm_bandit_shifts_after_cost_rises(engine):
    p = make("perllm", engine, perllm_ucb_c=0.05)
    costs = np.array([1.0, 2.0, 2.0, 2.0])  # datacenter 0 cheapest
    for e in range(10):
        p.observe(epoch_result(e, costs))
    obs = observation(engine, per_row=1.0)
    before = p.decide(obs)
    assert np.all(np.argmax(p.ucb(), axis=1) == 0)  # the best arm of every origin
    assert before[:, :, 0].mean() > 0.99  # every row fits datacenter 0's capacity
    costs = np.array([5.0, 2.0, 1.5, 2.0])  # datacenter 0's observed cost rises; 2 is now the cheapest
    p.sent = None  # the synthetic results below come from every origin to every datacenter, not from that plan
    for e in range(10, 40):
        p.observe(epoch_result(e, costs))
    after = p.decide(obs)
    assert np.all(np.argmax(p.ucb(), axis=1) == 2)
    assert after[:, :, 0].max() < 1e-9 and after[:, :, 2].mean() > 0.99


def test_perllm_capacity_constraint_splits_rows(engine):
    p = make("perllm", engine)
    for e in range(5):
        p.observe(epoch_result(e, np.array([1.0, 2.0, 3.0, 4.0])))
    cap, target = engine.info.capacity.requests_per_epoch, p.headroom.target()
    room = target * cap.min()  # requests of the scarcer model that fill one datacenter to the target
    obs = observation(engine, per_row=room / 2)  # 8 rows of at most half a datacenter each: needs four
    plan = p.decide(obs)
    load = np.einsum("mod,mo->dm", plan, obs.predicted_requests)
    assert np.all(datacenter_utilization(load, cap) <= target + 1e-6)


def test_perllm_overflow_keeps_every_datacenter_within_the_headroom(engine):
    p = make("perllm", engine)
    p.sla_rate = np.array([0.0, 1.0, 1.0, 1.0])  # datacenters 1-3 slipped on the SLA: only 0 is a feasible arm
    obs = observation(engine)  # half the fleet's capacity: twice what datacenter 0 holds
    plan = p.decide(obs)
    util = planned_utilization(plan, obs.predicted_requests, engine.info.capacity.requests_per_epoch, obs.queued)
    assert util[0] == pytest.approx(p.headroom.target())  # the feasible arm is filled to the head-room ...
    assert util.max() <= p.headroom.target() + 1e-9  # ... and the overflow goes where there is room, not onto it


def test_perllm_unplayed_arms_first(engine):
    p = make("perllm", engine)
    assert np.all(np.isinf(p.ucb()))
    p.observe(epoch_result(0, np.array([1.0, 1.0, 1.0, 1.0])))
    assert np.all(np.isfinite(p.ucb()))


def test_perllm_stale_arm_mean_decays_toward_the_prior(engine):
    p = make("perllm", engine, perllm_discount=0.9, perllm_prior_plays=1.0)
    assert p.prior_reward() == pytest.approx(-1.0)  # equal weights summing to 1: the fleet's mean per request
    p.n[0, 1], p.r_sum[0, 1] = 2.0, -8.0  # arm (origin 0, datacenter 1): two plays, mean reward -4
    assert p.arm_means()[0, 1] == pytest.approx((-8.0 - 1.0) / 3.0)  # the prior's one pseudo-play: -3
    p.sent = np.ones((engine.cfg.dcs, engine.cfg.dcs))
    p.sent[0, 1] = 0.0  # origin 0 sends datacenter 1 nothing: its arm stays unplayed
    for e in range(5):
        p.observe(epoch_result(e, np.ones(engine.cfg.dcs)))
    g = 0.9 ** 5  # the unplayed arm's count and sum decayed by 0.9 an epoch, the prior did not
    assert p.n[0, 1] == pytest.approx(2.0 * g)
    assert p.arm_means()[0, 1] == pytest.approx((-8.0 * g - 1.0) / (2.0 * g + 1.0))  # -2.6245: 0.54 of the way back
    q = make("perllm", engine, perllm_discount=0.9, perllm_prior_plays=0.0)  # without the prior: the mean is kept
    q.n[0, 1], q.r_sum[0, 1] = 2.0, -8.0
    q.sent = p.sent.copy()
    for e in range(5):
        q.observe(epoch_result(e, np.ones(engine.cfg.dcs)))
    assert q.arm_means()[0, 1] == pytest.approx(-4.0)


def test_perllm_site_woken_from_idle_records_no_reward(engine):
    p = make("perllm", engine, perllm_discount=0.5, perllm_wake_growth=4.0)
    d_n = engine.cfg.dcs

    def result(e, requests, cost):
        req, c = np.asarray(requests, float), np.asarray(cost, float) * np.asarray(requests, float)
        return EpochResult(e, req, ttft_sum_s=c, ttft_count=req, sla_violations=np.zeros(d_n), energy_kwh=c,
                           carbon_kg=c, water_l=c, cost_usd=c, parked_share=np.zeros(d_n))
    p.observe(result(0, [100, 0, 100, 100], [1, 1, 1, 1]))  # datacenter 1 idle: nothing served, no play
    np.testing.assert_array_equal(p.n[:, 1], 0.0)
    p.observe(result(1, [100, 100, 100, 100], [1, 5, 1, 1]))  # 1 woke (0 -> 100): its warm-up is not its reward
    np.testing.assert_array_equal(p.n[:, 1], 0.0)
    np.testing.assert_allclose(p.n[:, 0], 1.5)  # the others played twice: 0.5 x 1 + 1
    p.observe(result(2, [100, 300, 100, 100], [1, 5, 1, 1]))  # grew 3-fold, under the 4-fold of a wake: recorded
    np.testing.assert_allclose(p.n[:, 1], 1.0)
    assert np.all(p.arm_means()[:, 1] < p.arm_means()[:, 0])


def test_perllm_reward_charges_only_the_energy_above_the_observed_idle_draw(engine):
    p = make("perllm", engine, perllm_idle_credit=True)
    d_n = engine.cfg.dcs
    idle = EpochResult(0, np.array([100.0, 0.0, 100.0, 100.0]), ttft_sum_s=np.full(d_n, 10.0),
                       ttft_count=np.array([100.0, 0.0, 100.0, 100.0]), sla_violations=np.zeros(d_n),
                       energy_kwh=np.array([50.0, 70.0, 50.0, 50.0]), carbon_kg=np.full(d_n, 7.0),
                       water_l=np.full(d_n, 7.0), cost_usd=np.full(d_n, 7.0), parked_share=np.zeros(d_n))
    p.observe(idle)  # datacenter 1 served nothing and drew 70 kWh: its idle draw
    np.testing.assert_array_equal(p.idle_kwh, [0.0, 70.0, 0.0, 0.0])
    busy = EpochResult(1, np.full(d_n, 100.0), ttft_sum_s=np.full(d_n, 10.0), ttft_count=np.full(d_n, 100.0),
                       sla_violations=np.zeros(d_n), energy_kwh=np.array([140.0, 140.0, 140.0, 140.0]),
                       carbon_kg=np.full(d_n, 14.0), water_l=np.full(d_n, 14.0), cost_usd=np.full(d_n, 14.0),
                       parked_share=np.zeros(d_n))
    np.testing.assert_allclose(p.serving_share(busy), [1.0, 0.5, 1.0, 1.0])  # (140 - 70) / 140 drawn for serving
    reward, played = p.arm_rewards(busy)
    # carbon, water and cost per request: 0.14 everywhere, 0.07 at datacenter 1; the fleet's mean 0.1225
    site = 0.25 * 3 * np.array([0.14, 0.07, 0.14, 0.14]) / 0.1225
    ttft = np.maximum(0.1 - p.rtt.mean(axis=0), 0.0)[None, :] + p.rtt  # every origin sent alike (no plan known)
    np.testing.assert_allclose(reward, -(0.25 * ttft / 0.1 + site[None, :]))
    q = make("perllm", engine, perllm_idle_credit=False)
    q.observe(idle)
    np.testing.assert_allclose(q.serving_share(busy), 1.0)  # the whole draw: every site alike


def test_perllm_row_without_forecast_takes_the_best_arm_even_when_full(engine):
    p = make("perllm", engine)
    for e in range(5):
        p.observe(epoch_result(e, np.array([2.0, 2.0, 1.0, 2.0])))  # datacenter 2 cheapest: the best arm
    assert np.all(np.argmax(p.ucb(), axis=1) == 2)
    obs = observation(engine)
    pred = obs.predicted_requests.copy()
    pred[1, :2] = 0.0  # some rows forecast nothing while others do
    plan = p.decide(Observation(**{**obs.__dict__, "predicted_requests": pred}))
    assert plan[1, 2, 2] < 1.0  # the forecast filled datacenter 2: a loaded row had to spill ...
    np.testing.assert_array_equal(plan[1, :2, 2], 1.0)  # ... the empty rows take no capacity: best arm, whole


@pytest.mark.parametrize("name", ["nsga2", "slit"])
def test_search_with_empty_rows_still_beats_uniform(engine, name):
    s = make(name, engine)
    obs = observation(engine)
    pred = obs.predicted_requests.copy()
    pred[1, :2] = 0.0  # rows without requests count for nothing in Simulate
    obs = Observation(**{**obs.__dict__, "predicted_requests": pred})
    plan = s.decide(obs)
    state = s.epoch_state(obs)
    norm = normalized_metrics(s.evaluator.evaluate(state, plan), s.evaluator.evaluate(state, s.uniform_plan))
    weights = s.weights if name == "slit" else engine.cfg.weights  # SLIT optimizes its own weights
    assert weighted_score(norm, weights)[0] < 0.95


# --- NSGA-II -------------------------------------------------------------------------------------------------
def test_nsga2_front_is_non_dominated_and_within_budget(engine):
    n = make("nsga2", engine)
    plan = n.decide(observation(engine))
    f = n.front_f
    assert len(f) >= 2
    nd = NonDominatedSorting().do(f, only_non_dominated_front=True)
    assert len(nd) == len(f)  # nobody on the returned front is dominated by another member
    assert n.evaluations <= n.params.plan_evaluations_per_epoch
    chosen = compress_metrics(normalized_metrics(n.evaluator.evaluate(n.epoch_state(observation(engine)), plan),
                                                 n.evaluator.evaluate(n.epoch_state(observation(engine)),
                                                                      n.uniform_plan)),
                              n.params.reward_norm_clip)  # the front holds the bounded metrics it was scored on
    assert weighted_score(chosen, n.info.weights)[0] == pytest.approx(weighted_score(f, n.info.weights).min())
    assert weighted_score(chosen, n.info.weights)[0] < 1.0  # better than the uniform plan


def test_nsga2_warm_starts_from_last_population(engine):
    n = make("nsga2", engine)
    n.decide(observation(engine, epoch=4))
    last = n.population.copy()
    init = n.initial_population()
    np.testing.assert_array_equal(init[3:], last[:-3])  # the warm start, making room for the three seeds
    n.decide(observation(engine, epoch=5))
    assert n.population.shape == last.shape


def test_nsga2_population_always_holds_the_incumbent_uniform_and_nearest(engine):
    n = make("nsga2", engine)
    d = engine.cfg.dcs
    nearest = logits_to_plans(n.initial_population()[1], n.info.plan_shape)[0]
    assert nearest[0, np.arange(d), np.argmin(n.info.latency_s, axis=1)].min() > 0.99
    for e in range(4, 8):
        plan = n.decide(observation(engine, epoch=e))
        init = n.initial_population()  # what the next epoch starts from
        np.testing.assert_array_equal(init[0], n.incumbent)  # the genome just chosen ...
        np.testing.assert_allclose(logits_to_plans(init[0], n.info.plan_shape)[0], plan)  # ... is the plan run
        np.testing.assert_array_equal(init[1], 0.0)  # the uniform plan
        assert len(init) == n.params.nsga2_pop_size


def test_nsga2_declares_capacity_and_sla_as_constraints(engine):
    n = make("nsga2", engine)
    obs = observation(engine)  # half the fleet's capacity
    plan = n.decide(obs)
    state = n.epoch_state(obs)
    util = planned_utilization(plan, state.predicted, n.info.capacity.requests_per_epoch, state.queued)
    assert util.max() <= n.headroom.target() + 1e-9  # the chosen plan keeps every site within the head-room
    m, o, _ = n.info.plan_shape  # everything to datacenter 0: twice its capacity, so infeasible to pymoo
    one_site = one_hot_logits(np.zeros((m, o), dtype=int), n.info.plan_shape, n.params.nsga2_logit_bound)
    problem = PlanProblem(n.evaluator, state, n.evaluator.evaluate(state, n.uniform_plan), n.info.plan_shape,
                          n.params.nsga2_logit_bound, n.info.capacity.requests_per_epoch, n.headroom.target(),
                          n.params)
    out = {}
    problem._evaluate(np.stack([n.incumbent, one_site]), out)
    assert out["G"].shape == (2, engine.cfg.dcs + 1)
    assert out["G"][0].max() <= 1e-9 < out["G"][1].max()


def test_nsga2_knee_and_weighted_picks_differ_on_a_skewed_front(engine):
    # four members trading TTFT (range 0..10) for carbon (range 0..1), water and cost equal. Equal weights (the
    # default) sum the raw objectives: A = 0 + 1 = 1.0 is lowest (C = 2.3, D = 5.05, B = 10). The knee rescales
    # each objective to [0, 1] over the front first: A = 1, B = 1, C = 0.2 + 0.3 = 0.5, D = 0.5 + 0.05 = 0.55
    front = np.array([[0.0, 1.0, 1.0, 1.0],  # A
                      [10.0, 0.0, 1.0, 1.0],  # B
                      [2.0, 0.3, 1.0, 1.0],  # C: the knee
                      [5.0, 0.05, 1.0, 1.0]])  # D
    assert make("nsga2", engine).pick(front) == 0
    knee = make("nsga2", engine, nsga2_pick="knee")
    assert knee.pick(front) == 2
    # and decide() returns the front member its pick chose
    plan = knee.decide(observation(engine))
    np.testing.assert_allclose(plan, logits_to_plans(knee.front_x[knee.pick(knee.front_f)], knee.info.plan_shape)[0])


# --- SLIT ----------------------------------------------------------------------------------------------------
def test_slit_surrogate_accurate_on_carbon_water_cost_and_plan_beats_uniform(engine):
    s = make("slit", engine)
    for e in range(3, 6):  # a few epochs: the surrogate is refined online
        plan = s.decide(observation(engine, epoch=e))
        assert s.evaluations <= s.params.plan_evaluations_per_epoch
    obs = observation(engine, epoch=5)
    state = s.epoch_state(obs)
    ref = s.evaluator.evaluate(state, s.uniform_plan)
    rng = np.random.default_rng(123)  # held-out plans, not seen in training
    g = np.vstack([rng.uniform(-4, 4, (100, s.n_var)), s.incumbent + rng.normal(0, 1, (100, s.n_var))])
    plans = logits_to_plans(g, s.info.plan_shape)
    y = compress_metrics(normalized_metrics(s.evaluator.evaluate(state, plans), ref), s.params.reward_norm_clip)
    y_hat = s.surrogate.predict(plan_features(plans, state, s.lat, s.cap))[:, :4]  # the 5th: the stressed SLA
    err = np.mean(np.abs(y_hat - y) / y, axis=0)  # per objective (TTFT, carbon, water, cost)
    print(f"\nSLIT surrogate mean relative error per objective: {np.round(err, 3)}")
    # carbon, water, cost (SLIT's weights: 0.4, 0.4, 0.1) are near linear in the plan features; TTFT (weight 0.1)
    # is not once capacity binds (waits grow with the excess over capacity): its error is printed, not bounded
    assert (err[1:] < 0.10).all()
    # ... so SLIT's weighted score is held to its carbon, water and cost part (the extreme held-out plans overload
    # pools, whose waits grow by orders of magnitude: the surrogate's TTFT is not a ranking there)
    w = np.array([0.0, *s.weights[1:]]) / np.sum(s.weights[1:])
    score = weighted_score(y, w)
    assert np.mean(np.abs(weighted_score(y_hat, w) - score)) < 0.1 * np.std(score) + 0.02
    chosen = normalized_metrics(s.evaluator.evaluate(state, plan), ref)
    assert weighted_score(chosen, s.weights)[0] < 1.0  # beats uniform on SLIT's carbon+water weighted score
    # ... on carbon and water together (since issue 19's capacities the plan trades 26 % less carbon for +0.2 %
    # water in this world: SLIT weighs them equally, so either may tie with uniform, not their sum)
    assert chosen[0, 1] + chosen[0, 2] < 2.0 and min(chosen[0, 1], chosen[0, 2]) < 1.0


def test_slit_fitness_carries_the_sla(engine):
    s = make("slit", engine)
    # a plan as good as uniform that meets the SLA, and one ten times better on every metric that violates it
    y = np.array([[1.0, 1.0, 1.0, 1.0, 0.0], [0.1, 0.1, 0.1, 0.1, 0.5]])
    fit = slit_score(y, s.weights, s.params)
    assert fit[0] == pytest.approx(1.0) and fit[1] > fit[0]


def test_slit_genomes_decode_within_the_headroom(engine):
    s = make("slit", engine)
    obs = observation(engine)  # half the fleet's capacity: every site can stay within the head-room
    plan = s.decide(obs)
    one_site = np.full((1, s.n_var), -s.params.slit_logit_bound)
    one_site.reshape(1, *s.info.plan_shape)[..., 0] = s.params.slit_logit_bound  # everything to datacenter 0
    cap = s.info.capacity.requests_per_epoch
    for p in (plan, s.decode(one_site)[0]):
        util = planned_utilization(p, obs.predicted_requests, cap, obs.queued)
        assert util.max() <= s.headroom.target() + 1e-9


# --- all four ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_valid_and_deterministic(engine, name):
    plans = []
    for _ in range(2):
        s = make(name, engine, seed=42)
        out = [s.decide(observation(engine, epoch=0, per_row=0.0))]
        s.observe(epoch_result(0, np.array([1.0, 1.5, 2.0, 1.2])))
        out.append(s.decide(observation(engine, epoch=1)))
        for p in out:
            validate_plan(p, engine.info.plan_shape, name)
        plans.append(np.stack(out))
    np.testing.assert_array_equal(plans[0], plans[1])


@pytest.mark.parametrize("name", NAMES)
def test_cli_smoke(name, tmp_path):
    out = tmp_path / name
    cmd = [sys.executable, str(ROOT / "run.py"), "--scheduler", name, "--dcs", "4", "--hours", "1",
           "--set", "nodes_per_dc=60", "--load-scale", "0.01", "--no-progress", "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scheduler"] == name and summary["requests_served"] > 0
