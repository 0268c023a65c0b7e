"""MARLIN (schedulers/marlin): FiLM conditioning, the phase 2 game (valid blend, veto, bounded capital),
determinism, a green-datacenter case, every ablation switch, checkpoints and a CLI smoke run. Kept small:
4 datacenters of 60 nodes, a few epochs, small networks and few updates."""
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from schedulers.marlin.agents import FilmActor, agent_weights
from schedulers.marlin.game import capital_update, phase2, project_simplex
from schedulers.marlin.scheduler import ABLATIONS, MarlinParams
from schedulers.registry import create
from schedulers.rl.nets import feature_size
from simcore.engine import Engine, simulate
from simcore.interface import Observation, validate_plan
from simcore.rng import stream
from tests.conftest import small_config, split_changes

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(marlin_actor_hidden=32, marlin_critic_hidden=64, marlin_batch_size=32, marlin_updates_per_epoch=4,
            plan_evaluations_per_epoch=37)


def make(name: str, **changes):
    """A MARLIN scheduler (FAST, with the scheduler's `changes`) reset on the small test world (with the world's
    `changes`; StaticInfo from an engine that is never run)."""
    world, own = split_changes(changes)
    cfg = small_config(scheduler=name, **world)
    sched = create(name, {**FAST, **own})
    eng = Engine(cfg, sched)
    sched.reset(eng.info, stream(cfg.seed, "scheduler"))
    return sched


@functools.cache
def _forecast() -> np.ndarray:
    """[2, 4] a forecast filling 30 % of the small world's serving capacity (85 % / 15 % model mix), so where the
    load goes changes the nodes kept warm and the energy."""
    eng = Engine(small_config(), create("uniform"))
    share = np.array([0.85, 0.15])
    per_row = 0.3 * eng.capacity.mix_requests_per_epoch(share).sum() * share / 4
    return np.repeat(per_row[:, None], 4, axis=1)


def hand_obs(e: int, ci=(0.4, 0.4, 0.4, 0.4), tou=(0.1, 0.1, 0.1, 0.1), pred=None) -> Observation:
    d = 4
    pred = np.full((2, d), 40.0) if pred is None else pred
    return Observation(epoch=e, time_s=e * 900.0, predicted_requests=pred,
                       free_nodes=np.full(d, 60), resident_nodes=np.zeros((d, 2), dtype=int),
                       queued=np.zeros(d, dtype=int), ci_kg_per_kwh=np.asarray(ci, dtype=float),
                       gi_l_per_kwh=np.full(d, 1.0), tou_usd_per_kwh=np.asarray(tou, dtype=float),
                       cop=np.full(d, 4.0), last=None)


def test_film_conditions_the_actor():
    torch.manual_seed(0)
    actor = FilmActor(obs_size=6, cond_size=4, act_size=8, hidden=16, film=True)
    torch.nn.init.normal_(actor.film.proj.weight)  # FiLM starts as the identity; give it non-zero parameters
    obs = torch.randn(1, 6)
    w = torch.as_tensor(agent_weights(0.7), dtype=torch.float32)
    means = [actor(obs, w[j:j + 1])[0] for j in range(4)]
    assert not torch.allclose(means[0], means[1])
    plain = FilmActor(obs_size=6, cond_size=4, act_size=8, hidden=16, film=False)  # no-film: the identity
    assert torch.allclose(plain(obs, w[0:1])[0], plain(obs, w[1:2])[0])


def test_simplex_projection():
    for v in (np.array([0.2, 0.3, 0.5]), np.array([2.0, -1.0, 0.1]), np.array([-5.0, -5.0, -5.0])):
        p = project_simplex(v)
        assert p.min() >= 0 and abs(p.sum() - 1) < 1e-12
    assert np.allclose(project_simplex(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])


def test_blend_is_a_valid_plan():
    s = make("marlin")
    for e in range(2):
        plan = s.plan(hand_obs(e))
        validate_plan(plan, s.info.plan_shape, "marlin")
    rng = np.random.default_rng(1)
    props = rng.dirichlet(np.ones(4), size=(4, 2, 4))
    out = phase2(s.agents, np.zeros(feature_size(s.info), dtype=np.float32), props,
                 np.full(4, 200.0), np.full(4, 0.25), s.params, frozenset())
    validate_plan(out.plan, s.info.plan_shape, "marlin")
    assert abs(out.omega.sum() - 1) < 1e-9 and out.omega.min() >= 0


def test_objective_embodied_adds_a_fifth_agent_and_off_keeps_the_four():
    four = make("marlin")
    assert four.names == ("ttft", "carbon", "water", "cost") and len(four.agents) == 4
    s = make("marlin", objective_embodied=True)
    assert s.names == ("ttft", "carbon", "water", "cost", "embodied") and len(s.agents) == 5
    assert np.allclose(s.variant_w, 0.2)  # Balanced: the run's five equal objective weights
    # the embodied agent weighs its own objective at marlin_agent_dominant (0.7), the other four share 0.3
    assert np.allclose(s.agents[4].w, [0.075, 0.075, 0.075, 0.075, 0.7])
    assert s.k_opt == (37 - (5 + 2 + 8)) // 5  # the Simulate budget shared by five agents
    for e in range(2):
        validate_plan(s.plan(hand_obs(e, pred=_forecast())), s.info.plan_shape, "marlin")
    row = s.log_rows[-1]
    assert {"proposal_embodied_embodied", "proposal_ttft_embodied", "blend_embodied", "capital_embodied",
            "veto_embodied", "blend_weight_embodied"} <= set(row)
    four.plan(hand_obs(0, pred=_forecast()))
    assert not any("embodied" in k for k in four.log_rows[-1])
    mincarbon = make("marlin-mincarbon", objective_embodied=True)
    assert np.allclose(mincarbon.variant_w, [0.075, 0.7, 0.075, 0.075, 0.075])


def test_five_agents_share_the_gradient_step_budget():
    s = make("marlin", objective_embodied=True, marlin_updates_per_epoch=32)  # 5 x 32 > 128
    assert [a.params.marlin_updates_per_epoch for a in s.agents] == [25] * 5  # 128 // 5
    assert make("marlin", marlin_updates_per_epoch=32).agents[0].params.marlin_updates_per_epoch == 32


def test_the_embodied_agents_reward_prefers_the_plan_that_keeps_fewer_nodes_serving():
    s = make("marlin", objective_embodied=True)
    from simcore.evaluator import EpochState
    D, M = 4, 2
    pred = _forecast()
    state = EpochState(pred, pred, np.full(D, 0.3), np.full(D, 2.0), np.full(D, 0.1), np.full(D, 4.0),
                       np.zeros((D, M)))
    uniform, two = np.full((M, D, D), 1.0 / D), np.zeros((M, D, D))
    two[:, :, :2] = 0.5
    reward, norm, ev = s.score_plans(state, np.stack([uniform, two]), s.agents[4].w)
    assert norm.shape == (2, 5) and norm[0, 4] == pytest.approx(1.0)  # normalised by the uniform plan's
    assert ev.embodied_attributable_kg[1] > ev.embodied_attributable_kg[0]  # two DCs keep more nodes serving
    ratio = ev.embodied_attributable_kg[1] / ev.embodied_attributable_kg[0]  # bounded above 1 (compress_metrics)
    assert norm[1, 4] == pytest.approx(1.0 + np.log(ratio))
    assert reward[0] > reward[1]


class _FakeAgent:
    """Q_j(plan) = -1 - |plan - own plan|^2: each agent prefers its own proposal."""

    def __init__(self, own: np.ndarray) -> None:
        self.own = torch.as_tensor(own.reshape(-1), dtype=torch.float32)

    def q_value(self, obs, plans):
        return -1.0 - ((plans.float() - self.own) ** 2).sum(-1)


def test_veto_pulls_toward_the_vetoing_agent():
    cfg = MarlinParams()
    props = np.stack([np.eye(4)[[j] * 8].reshape(2, 4, 4) for j in range(4)])  # agent j: all to datacenter j
    agents = [_FakeAgent(p) for p in props]
    capital = np.array([100.0, 250.0, 100.0, 100.0])  # only agent 1 may veto
    w = np.full(4, 0.25)
    with_veto = phase2(agents, None, props, capital, w, cfg, frozenset())
    without = phase2(agents, None, props, capital, w, cfg, frozenset({"no-veto"}))
    assert with_veto.veto[1] > 0 and with_veto.veto[[0, 2, 3]].sum() == 0
    assert with_veto.plan[..., 1].mean() > without.plan[..., 1].mean()
    assert np.abs(with_veto.plan - props[1]).sum() < np.abs(without.plan - props[1]).sum()


def test_capital_stays_bounded():
    cfg = MarlinParams()
    rng = np.random.default_rng(0)
    cap = np.full(4, cfg.marlin_capital_start)
    for _ in range(2000):
        prop = rng.uniform(0.05, 3.0, size=(4, 4))
        blend = rng.uniform(0.01, 5.0, size=4)
        cap, perf, bonus = capital_update(cap, prop, blend, cfg)
        assert np.all((cap >= cfg.marlin_capital_min) & (cap <= cfg.marlin_capital_max))
        assert np.all((perf >= 0) & (perf <= 100) & (bonus >= 0) & (bonus <= 100))
    # a perfectly served agent climbs above the veto threshold (the threshold is reachable)
    cap = np.full(4, cfg.marlin_capital_start)
    prop = np.array([[0.5, 1, 1, 1], [1, 0.5, 1, 1], [1, 1, 0.5, 1], [1, 1, 1, 0.5]])
    for _ in range(100):
        cap, _, _ = capital_update(cap, prop, prop[1], cfg)
    assert cap[1] > cfg.marlin_capital_threshold


def test_same_seed_same_result():
    runs = []
    for _ in range(2):
        cfg = small_config(scheduler="marlin-mincarbon", hours=0.75)
        sched = create(cfg.scheduler, FAST)
        rec = simulate(cfg, sched)
        runs.append((rec.req_dc, rec.extra_tables["marlin_epochs"]))
    assert np.array_equal(runs[0][0], runs[1][0])
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])


def test_mincarbon_sends_most_load_to_the_green_cheap_datacenter():
    # datacenter 2 is strictly greener and cheaper; everything else is equal. The forecast is 30 % of the fleet's
    # capacity, i.e. 120 % of one datacenter's: all of it to datacenter 2 would overload it, half of it fills 60 %,
    # and the head-room target (1 / (1.25 x (1 + 2 x 0.1)) = 0.67 before any error is observed) lets it take up to
    # 56 %. The best plan therefore
    # fills datacenter 2 to its ceiling; before MARLIN's plans were repaired to capacity, the agents' exploration
    # crossed that edge, and the critics turned against the green datacenter (share 0.13 after 12 epochs).
    ci, tou = (0.5, 0.5, 0.05, 0.5), (0.12, 0.12, 0.03, 0.12)
    s = make("marlin-mincarbon", marlin_updates_per_epoch=24)
    for e in range(12):
        plan = s.plan(hand_obs(e, ci, tou, _forecast()))
    share = plan[..., 2].mean()
    most = s.headroom.target() / 1.2  # the share that fills datacenter 2 to the head-room target (0.56)
    assert share > 0.8 * most, f"share to the green datacenter {share:.2f} of at most {most:.2f}"
    uniform_share = 0.25
    log = s.extra_results()["marlin_epochs"]
    assert log["blend_carbon"].iloc[-1] < log["blend_carbon"].iloc[0]
    assert share > uniform_share


def test_plans_are_repaired_to_the_capacity_ceiling():
    from schedulers.common import capacity_feasible
    from simcore.capacity import datacenter_utilization

    s = make("marlin-mincarbon")
    cap = s.info.capacity.requests_per_epoch
    pred = _forecast()  # 30 % of the fleet: 120 % of one datacenter
    rng = np.random.default_rng(0)
    plans = rng.dirichlet(np.full(4, 0.3), size=(64, 2, 4))
    plans[0] = 0.25  # uniform: 30 % everywhere, within the ceiling
    plans[1] = np.eye(4)[2]  # everything to datacenter 2

    def util(p):
        return datacenter_utilization(np.einsum("bmod,mo->bdm", p, pred), cap)

    out = capacity_feasible(plans, pred, cap, 0.9)
    for p in out:
        validate_plan(p, (2, 4, 4), "repair")
    assert util(out).max() <= 0.9 + 1e-6
    within = util(plans).max(axis=1) <= 0.9
    assert within.any() and np.allclose(out[within], plans[within])  # a feasible plan is left as it is
    assert np.allclose(util(out[1:2])[0, 2], 0.9)  # the preferred datacenter stays full
    # waiting requests count first: datacenter 2 with a backlog of half its capacity takes less new work
    queued = np.array([0.0, 0.0, 0.5 * cap[2].min(), 0.0])
    assert capacity_feasible(plans[1], pred, cap, 0.9, queued)[..., 2].mean() < out[1][..., 2].mean()
    # a fleet loaded beyond the ceiling: every datacenter at the fleet's own utilization
    heavy = capacity_feasible(plans[1], pred * 4, cap, 0.9)
    assert np.allclose(util(heavy[None])[0] * 4, 1.2, rtol=1e-6)


@pytest.mark.parametrize("check", [True, False])
def test_simulate_check_executes_a_better_scored_plan_than_a_bad_consensus(monkeypatch, check):
    """A game whose consensus sends every request to the dirtiest, dearest datacenter: with the Simulate check
    MARLIN executes a candidate Simulate scores better (a proposal or the incumbent); without it, the consensus."""
    import schedulers.marlin.game as game

    real = game.phase2

    def bad(*a, **k):
        out = real(*a, **k)
        out.plan = np.zeros_like(out.plan)
        out.plan[..., 0] = 1.0
        return out

    monkeypatch.setattr(game, "phase2", bad)
    s = make("marlin", marlin_simulate_check=check)
    obs = [hand_obs(e, ci=(2.0, 0.2, 0.2, 0.2), tou=(1.0, 0.1, 0.1, 0.1), pred=_forecast()) for e in range(2)]
    plans = [s.plan(o) for o in obs]
    for plan, row in zip(plans, s.log_rows):
        if check:
            assert row["executed"] != "consensus" and row["executed_score"] < row["consensus_score"]
            assert plan[..., 0].mean() < 0.4
        else:
            assert row["executed"] == "consensus" and row["executed_score"] == row["consensus_score"]
            assert plan[..., 0].mean() > 0.5  # as much on datacenter 0 as its head-room takes


@pytest.mark.parametrize("switch", ABLATIONS)
def test_each_ablation_changes_behaviour(switch):
    def plans(ablate):
        # MinCarbon (its agent may veto from the start) with any utility loss triggering the veto
        # (the Simulate check off: on these few epochs it executes the incumbent whatever the game decides)
        s = make("marlin-mincarbon", marlin_ablate=ablate, marlin_veto_delta=0.0, marlin_simulate_check=False)
        last = None
        out = []
        for e in range(3):
            obs = hand_obs(e)
            if e:
                obs = Observation(**{**obs.__dict__, "last": last})
            out.append(s.plan(obs))
            last = _fake_result(e)
        return np.stack(out)

    assert not np.allclose(plans(()), plans((switch,)))


def _fake_result(e: int):
    from simcore.interface import EpochResult
    z = np.zeros(4)
    return EpochResult(epoch=e, requests=np.array([30, 10, 20, 5]), ttft_sum_s=z, ttft_count=z.astype(int),
                       sla_violations=z.astype(int), energy_kwh=z, carbon_kg=z, water_l=z, cost_usd=z,
                       parked_share=z)


def test_state_dict_round_trip():
    """MARLIN's learned state (agents, capital) loaded into a fresh scheduler of another seed: the same actors."""
    a = make("marlin", hours=0.5)
    for ag in a.agents:
        for p in ag.sac.actor.parameters():
            p.data.add_(0.5)
    b = create("marlin", FAST)
    b.warm_start(a.state_dict(), 2)
    b.reset(a.info, stream(9, "scheduler"))  # loads the state right after setup
    for x, y in zip(a.agents, b.agents):
        for p, q in zip(x.sac.actor.parameters(), y.sac.actor.parameters()):
            assert torch.equal(p, q)
    assert b.experience_epochs == 2 and np.array_equal(a.capital, b.capital)


def test_bad_ablation_is_one_clear_line():
    r = subprocess.run([sys.executable, "run.py", "--scheduler", "marlin", "--ablate", "no-film,no-such"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no-such" in r.stderr and "no-capital" in r.stderr


def test_cli_smoke_writes_marlin_epochs(tmp_path):
    out = tmp_path / "res"
    cmd = [sys.executable, "run.py", "--scheduler", "marlin", "--dcs", "4", "--hours", "0.5", "--load-scale",
           "0.01", "--no-progress", "--out", str(out), "--ablate", "no-her",
           *sum((["--set", f"{k}={v}"] for k, v in {**FAST, "nodes_per_dc": 60}.items()), [])]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    log = pd.read_csv(out / "marlin_epochs.csv")
    assert len(log) == 2
    for col in ("epoch", "proposal_carbon_carbon", "blend_water", "veto_cost", "capital_ttft",
                "blend_weight_water", "vetoes"):
        assert col in log.columns


# --- the batched learner (schedulers/marlin/learner.py) against the per-agent SAC it replaces --------------------

def _stacked_agents(film: bool, seed: int = 0):
    """Small agents joined in one AgentStack, with non-trivial FiLM weights and some log-stds past their clamp."""
    from schedulers.marlin.agents import make_agents
    cfg = MarlinParams(**FAST)
    torch.manual_seed(seed)
    agents = make_agents(agent_weights(1.0), 10, (2, 4, 4), cfg, film)
    with torch.no_grad():
        for a in agents:
            if film:
                torch.nn.init.normal_(a.sac.actor.film.proj.weight, std=0.2)
            a.sac.actor.log_std.bias[:5] = 3.0  # above LOG_STD_MAX: the clamp's gradient mask matters
    return agents


def _reference_sac(agent):
    """Agent `agent`'s networks, copied into the per-agent learner schedulers.rl.sac.SAC."""
    from schedulers.marlin.agents import FilmActor
    from schedulers.rl.sac import SAC, TwinQ
    cfg, sd = agent.params, agent.sac.state_dict()
    act_size = int(np.prod(agent.plan_shape))
    film = hasattr(agent.sac.actor.film, "proj")
    actor = FilmActor(sd["actor"]["inp.weight"].shape[1], 4, act_size, cfg.marlin_actor_hidden, film)
    critic = TwinQ(sd["actor"]["inp.weight"].shape[1], act_size, 4, cfg.marlin_critic_hidden)
    actor.load_state_dict(sd["actor"])
    critic.load_state_dict(sd["critic"])
    sac = SAC(actor, critic, agent.to_plan_flat, agent.sac.hp)
    sac.critic_target.load_state_dict(sd["critic_target"])
    with torch.no_grad():
        sac.log_alpha.copy_(sd["log_alpha"])
    return sac


def _assert_same_networks(agents, refs, atol=2e-5):
    for a, ref in zip(agents, refs):
        mine, theirs = a.sac.state_dict(), ref.state_dict()
        for part in ("actor", "critic", "critic_target"):
            for k, v in theirs[part].items():
                torch.testing.assert_close(mine[part][k], v, rtol=1e-4, atol=atol, msg=f"agent {a.j} {part} {k}")
        torch.testing.assert_close(mine["log_alpha"], theirs["log_alpha"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("film", [True, False])
def test_batched_updates_equal_per_agent_sac(film):
    agents = _stacked_agents(film)
    refs = [_reference_sac(a) for a in agents]
    rng = np.random.default_rng(0)
    for a in agents:
        for buf, n in ((a.current, 9), (a.cross, 40)):
            buf.add(obs=rng.normal(size=(n, 10)), x=rng.dirichlet(np.ones(4), (n, 8)).reshape(n, -1),
                    rew=rng.normal(size=n), cond=rng.dirichlet(np.ones(4), n), next_obs=rng.normal(size=(n, 10)),
                    done=(rng.random(n) < 0.3).astype(float))  # bootstrapped targets, some terminal
    updates = 12
    # all agents at once, on batches drawn in the per-agent order ...
    rng1, gen1 = np.random.default_rng(5), torch.Generator().manual_seed(5)
    agents[0].stack.learn([a.draw_batches(updates, rng1, gen1) for a in agents])
    # ... and one agent after the other with SAC.update, as ObjectiveAgent.learn did
    rng2, gen2 = np.random.default_rng(5), torch.Generator().manual_seed(5)
    cfg = agents[0].params
    n_cur = int(round(cfg.marlin_batch_size * cfg.marlin_current_share))
    for a, ref in zip(agents, refs):
        for _ in range(updates):
            parts = [a.current.sample(n_cur, rng2), a.cross.sample(cfg.marlin_batch_size - n_cur, rng2)]
            ref.update({k: torch.as_tensor(np.concatenate([p[k] for p in parts])) for k in parts[0]}, gen2)
    _assert_same_networks(agents, refs)
    assert agents[0].sac.log_alpha != refs[0].log_alpha.new_tensor(np.log(agents[0].sac.hp.alpha_init))


def test_phase1_equals_agents_learning_one_after_the_other():
    """phase1 (batches drawn in turn, then the batched updates, then HER) against Algorithm 1 run agent by agent
    with the per-agent SAC, on a smooth stand-in for Simulate (the evaluator's discrete outcomes would amplify
    rounding differences)."""
    from types import SimpleNamespace

    from schedulers.common import plan_reward, update_ema, weighted_score
    from schedulers.marlin.agents import phase1
    from schedulers.rl.nets import ReplayBuffer

    agents = _stacked_agents(film=True)
    cfg = agents[0].params
    target = np.random.default_rng(3).dirichlet(np.ones(4), (4, 2, 4))  # agent j's metrics fall toward target j

    def scorer(state, plans, w, ema=None):
        norm = np.stack([1.0 + ((plans - target[m]) ** 2).sum(axis=(1, 2, 3)) for m in range(4)], axis=1)
        ev = SimpleNamespace(sla_violations=np.zeros(len(plans)), parked_share=np.full(len(plans), 0.1))
        return plan_reward(weighted_score(norm, w), ema, ev.parked_share, 0.0, cfg), norm, ev

    fields = {f: v.shape[1:] for f, v in agents[0].current.data.items()}
    refs = [SimpleNamespace(sac=_reference_sac(a), w=a.w, ema=None, to_plan=a.to_plan_flat,
                            current=ReplayBuffer(cfg.marlin_replay_current, fields),
                            cross=ReplayBuffer(cfg.marlin_replay_cross, fields)) for a in agents]
    state = SimpleNamespace(requests=np.full(3, 10.0))
    k = 6
    rng1, gen1 = np.random.default_rng(1), torch.Generator().manual_seed(1)
    rng2, gen2 = np.random.default_rng(1), torch.Generator().manual_seed(1)
    pending = [None] * len(refs)
    for e in range(4):
        obs = np.random.default_rng(10 + e).normal(size=10).astype(np.float32)
        incumbent = np.random.default_rng(20 + e).uniform(0.5, 1.5, 4)  # the incumbent's score per agent
        out = phase1(agents, obs, state, scorer, k, True, rng1, gen1, incumbent)
        # Algorithm 1 agent by agent: the last epoch's samples stored with this epoch's state as their next state
        # (own label in B_replay, every label in B_cross), the EMAs take the incumbent's score, then each agent
        # samples, scores, learns
        for i, r in enumerate(refs):
            r.ema = update_ema(r.ema, incumbent[i], cfg.reward_ema_decay)
            if pending[i] is not None:
                obs_p, flat_p, labels = pending[i]
                extra = dict(next_obs=np.broadcast_to(obs, (k, 10)), done=np.zeros(k))
                r.current.add(obs=obs_p, x=flat_p, rew=labels[0][0], cond=np.broadcast_to(labels[0][1], (k, 4)),
                              **extra)
                for rew, w in labels[1:]:
                    r.cross.add(obs=obs_p, x=flat_p, rew=rew, cond=np.broadcast_to(w, (k, 4)), **extra)
        for i, r in enumerate(refs):
            with torch.no_grad():
                w = torch.as_tensor(r.w, dtype=torch.float32)
                a, _ = r.sac.act(torch.as_tensor(obs).expand(k, -1), w.expand(k, -1), gen2)
                plans = r.to_plan(a).double().numpy().reshape(k, 2, 4, 4)
            reward, norm, ev = scorer(state, plans, r.w, r.ema)
            flat = plans.reshape(k, -1).astype(np.float32)
            obs_b = np.broadcast_to(obs, (k, 10))
            pending[i] = (obs_b, flat, [(reward, r.w)] + [
                (plan_reward(weighted_score(norm, other.w), other.ema, ev.parked_share, 0.0, cfg), other.w)
                for other in refs])
            bs = cfg.marlin_batch_size
            n_cur = int(round(bs * cfg.marlin_current_share)) if len(r.cross) else bs
            for _ in range(cfg.marlin_updates_per_epoch if len(r.current) else 0):
                parts = [r.current.sample(n_cur, rng2)] + ([r.cross.sample(bs - n_cur, rng2)] if bs - n_cur else [])
                r.sac.update({f: torch.as_tensor(np.concatenate([p[f] for p in parts])) for f in fields}, gen2)
        with torch.no_grad():  # lines 11-12: the deterministic proposals
            props = np.stack([r.to_plan(r.sac.act(torch.as_tensor(obs)[None], torch.as_tensor(r.w[None]).float(),
                                                  deterministic=True)[0]).numpy().reshape(2, 4, 4) for r in refs])
        np.testing.assert_allclose(out["plans"], props, atol=1e-5)
        np.testing.assert_allclose([a.ema for a in agents], [r.ema for r in refs], rtol=1e-6)
        for a, r in zip(agents, refs):
            np.testing.assert_allclose(a.cross.data["rew"][:a.cross.size], r.cross.data["rew"][:r.cross.size],
                                       atol=1e-5)
    _assert_same_networks(agents, [r.sac for r in refs], atol=5e-5)


def test_phase2_batched_utilities_equal_per_agent_ones():
    s = make("marlin-mincarbon", marlin_veto_delta=0.0)
    for e in range(2):
        s.plan(hand_obs(e))

    class PerAgent:  # the same agents without their stack: phase 2 asks each critic in turn
        def __init__(self, a):
            self.a, self.w = a, a.w

        def q_value(self, obs, plans):
            return self.a.q_value(obs, plans)

    rng = np.random.default_rng(1)
    vetoed = False
    for _ in range(4):
        props = rng.dirichlet(np.ones(4), size=(4, 2, 4))
        obs = rng.normal(size=feature_size(s.info)).astype(np.float32)
        args = (props, rng.uniform(100, 300, 4), np.array([0.1, 0.7, 0.1, 0.1]), s.params, frozenset())
        fast = phase2(s.agents, obs, *args)
        slow = phase2([PerAgent(a) for a in s.agents], obs, *args)
        for f in ("plan", "utilities", "omega", "veto", "delta"):
            np.testing.assert_allclose(getattr(fast, f), getattr(slow, f), rtol=1e-5, atol=1e-6, err_msg=f)
        vetoed |= bool(fast.veto.any())
    assert vetoed


def test_critic_target_discounts_the_next_epoch_with_gamma():
    """Two-step hand example. Epoch 0's state s0 earns r = 1 and leads to s1; s1 earns r = 2 and ends the day
    (done = 1). With gamma = 0.5 and (almost) no entropy term the critics' fixed point is Q(s1) = 2 and
    Q(s0) = 1 + 0.5 x Q(s1) = 2 whatever the plan; a one-step critic would learn Q(s0) = 1. The target critics
    follow the critics at once (tau = 1) so the fixed point is reached in a few hundred updates."""
    from schedulers.marlin.agents import make_agents
    from schedulers.marlin.learner import td_target

    assert td_target(1.0, 0.5, 0.0, 2.0, 0.0, 0.0) == 2.0 and td_target(1.0, 0.5, 1.0, 2.0, 0.0, 0.0) == 1.0
    assert td_target(1.0, 0.5, 0.0, 2.0, -3.0, 0.1) == pytest.approx(1.0 + 0.5 * (2.0 + 0.3))

    def fixed_point(gamma: float) -> tuple:
        cfg = MarlinParams(**{**FAST, "marlin_gamma": gamma, "marlin_tau": 1.0, "marlin_alpha_init": 1e-9,
                              "marlin_lr_alpha": 0.0, "marlin_lr_critic": 3e-3, "marlin_batch_size": 16})
        torch.manual_seed(0)
        agents = make_agents(agent_weights(1.0), 3, (1, 2, 2), cfg, film=True)
        s0, s1 = np.array([1.0, 0.0, 0.0], dtype=np.float32), np.array([0.0, 1.0, 0.0], dtype=np.float32)
        rng = np.random.default_rng(0)
        for a in agents:
            n = 8
            plans = rng.dirichlet(np.ones(2), (n, 2)).reshape(n, -1)
            for buf in (a.current, a.cross):
                buf.add(obs=np.repeat([s0, s1], n // 2, axis=0), x=plans, rew=np.repeat([1.0, 2.0], n // 2),
                        cond=np.broadcast_to(a.w, (n, 4)), next_obs=np.repeat([s1, s1], n // 2, axis=0),
                        done=np.repeat([0.0, 1.0], n // 2))
        gen = torch.Generator().manual_seed(0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small networks: one thread is fastest (as marlin_torch_threads)
        try:
            agents[0].stack.learn([a.draw_batches(400, rng, gen) for a in agents])
        finally:
            torch.set_num_threads(threads)
        plan = torch.full((1, 4), 0.5)
        q = [[float(a.q_value(s, plan)[0]) for s in (s0, s1)] for a in agents]
        return np.array(q)  # [agent, state]

    q = fixed_point(0.5)
    np.testing.assert_allclose(q[:, 1], 2.0, atol=0.1)  # the last epoch: its reward
    np.testing.assert_allclose(q[:, 0], 2.0, atol=0.15)  # 1 + gamma x 2
    np.testing.assert_allclose(fixed_point(0.0)[:, 0], 1.0, atol=0.1)  # gamma 0: the reward alone


def test_marlin_plans_within_the_head_room_target_that_follows_its_forecast_error():
    """Every plan MARLIN executes keeps each datacenter within the shared head-room target (feasibility.Headroom:
    0.67 of its capacity before any error is seen); an epoch whose arrivals missed the plan by 50 % lowers the
    target (1 / (1.25 (1 + 2 sigma))) for the next plan, which the repair then keeps."""
    from schedulers.feasibility import headroom_target, planned_utilization
    from simcore.interface import EpochResult

    ci, tou = (0.5, 0.5, 0.05, 0.5), (0.12, 0.12, 0.03, 0.12)
    s = make("marlin-mincarbon")
    cap = s.info.capacity.requests_per_epoch
    pred = _forecast()
    plan = s.plan(hand_obs(0, ci, tou, pred))
    assert s.headroom.target() == pytest.approx(headroom_target(1.25, 2.0, 0.1))
    assert planned_utilization(plan, pred, cap).max() <= s.headroom.target() + 1e-6
    planned = np.einsum("mod,mo->d", plan, pred)
    z = np.zeros(4)
    missed = EpochResult(epoch=0, requests=1.5 * planned, ttft_sum_s=z, ttft_count=z.astype(int),
                         sla_violations=z.astype(int), energy_kwh=z, carbon_kg=z, water_l=z, cost_usd=z,
                         parked_share=z)
    before = s.headroom.target()
    obs = Observation(**{**hand_obs(1, ci, tou, pred).__dict__, "last": missed})
    plan = s.plan(obs)
    assert s.headroom.target() < before - 0.1  # sigma^2 = 0.75 x 0.01 + 0.25 x 0.25: target 0.67 -> 0.52
    assert planned_utilization(plan, pred, cap).max() <= s.headroom.target() + 1e-6
    log = s.extra_results()["marlin_epochs"]
    assert log["headroom_target"].iloc[1] == pytest.approx(s.headroom.target())
    assert (log["simulate_plans"] <= s.params.plan_evaluations_per_epoch).all()
    assert list(log["gradient_steps"]) == [0, 4 * s.params.marlin_updates_per_epoch]  # epoch 0 has no transition


def test_game_reads_discounted_utilities_in_one_epochs_reward_units():
    """Critics that learnt discounted returns hold ~ r / (1 - gamma): agents whose proposals earn r = (-1.0, -1.2)
    an epoch have utilities (-20, -24) at gamma 0.95. The game's utility shares and veto losses are those of the
    one-epoch rewards (gamma 0: utilities -1.0, -1.2), not a 20x sharper softmax."""
    class Critic:  # Q_j(plan): a constant per agent, plus a loss for the plan away from its proposal
        def __init__(self, j, q, w):
            self.j, self.q, self.w = j, q, w

        def q_value(self, obs, plans):
            away = (plans - torch.as_tensor(props[self.j].reshape(1, -1), dtype=torch.float32)).abs().sum(-1)
            return self.q - 0.1 * away * self.scale

    props = np.stack([np.eye(4)[[j] * 8].reshape(2, 4, 4) for j in range(2)])  # agent j: all to datacenter j

    def outcome(gamma):
        rewards = ((-1.0, [1, 0, 0, 0]), (-1.2, [0, 1, 0, 0]))
        agents = [Critic(j, r / (1.0 - gamma), w) for j, (r, w) in enumerate(rewards)]
        for a in agents:
            a.scale = 1.0  # the plans differ in this epoch's reward only: the same loss at any gamma
        params = MarlinParams(**{**FAST, "marlin_gamma": gamma, "marlin_veto_delta": 0.0})
        return phase2(agents, np.zeros(3, dtype=np.float32), props, np.array([200.0, 200.0]), np.full(2, 0.5),
                      params, frozenset({"no-sgd"}))

    one, disc = outcome(0.0), outcome(0.95)
    np.testing.assert_allclose(disc.utility_weights, one.utility_weights, rtol=1e-5)
    assert one.utility_weights[0] == pytest.approx(np.exp(0.2) / (1 + np.exp(0.2)))  # softmax(-1.0, -1.2)
    np.testing.assert_allclose(disc.delta, one.delta, rtol=1e-4)
    assert (one.delta > 0).all()
