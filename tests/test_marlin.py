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

from schedulers.base import Observation, validate_plan
from schedulers.marlin.agents import FilmActor, agent_weights
from schedulers.marlin.game import capital_update, phase2, project_simplex
from schedulers.registry import create
from schedulers.rl.nets import feature_size
from simcore.config import MARLIN_ABLATIONS, Config
from simcore.engine import Engine, simulate
from simcore.rng import stream
from tests.conftest import small_config

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(marlin_actor_hidden=32, marlin_critic_hidden=64, marlin_batch_size=32, marlin_updates_per_epoch=4,
            plan_evaluations_per_epoch=37)


def make(name: str, **changes):
    """A MARLIN scheduler reset on the small test world (StaticInfo from an engine that is never run)."""
    cfg = small_config(scheduler=name, **{**FAST, **changes})
    sched = create(name)
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
                 np.full(4, 200.0), np.full(4, 0.25), s.info.cfg, frozenset())
    validate_plan(out.plan, s.info.plan_shape, "marlin")
    assert abs(out.omega.sum() - 1) < 1e-9 and out.omega.min() >= 0


class _FakeAgent:
    """Q_j(plan) = -1 - |plan - own plan|^2: each agent prefers its own proposal."""

    def __init__(self, own: np.ndarray) -> None:
        self.own = torch.as_tensor(own.reshape(-1), dtype=torch.float32)

    def q_value(self, obs, plans):
        return -1.0 - ((plans.float() - self.own) ** 2).sum(-1)


def test_veto_pulls_toward_the_vetoing_agent():
    cfg = Config(dcs=4)
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
    cfg = Config(dcs=4)
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
        cfg = small_config(scheduler="marlin-mincarbon", hours=0.75, **FAST)
        sched = create(cfg.scheduler)
        rec = simulate(cfg, sched)
        runs.append((rec.req_dc, rec.extra_tables["marlin_epochs"]))
    assert np.array_equal(runs[0][0], runs[1][0])
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])


@pytest.mark.xfail(strict=True, reason="issue 8 open: in the capacity-true world MARLIN-MinCarbon does not learn "
                   "within 12 epochs to prefer a greener, cheaper datacenter (share 0.13 at 30 % load)")
def test_mincarbon_sends_most_load_to_the_green_cheap_datacenter():
    # datacenter 2 is strictly greener and cheaper; everything else is equal
    ci, tou = (0.5, 0.5, 0.05, 0.5), (0.12, 0.12, 0.03, 0.12)
    s = make("marlin-mincarbon", marlin_updates_per_epoch=24)
    for e in range(12):
        plan = s.plan(hand_obs(e, ci, tou, _forecast()))
    share = plan[..., 2].mean()
    assert share > 0.5, f"share to the green datacenter {share:.2f}"
    uniform_share = 0.25
    log = s.extra_results()["marlin_epochs"]
    assert log["blend_carbon"].iloc[-1] < log["blend_carbon"].iloc[0]
    assert share > uniform_share


@pytest.mark.parametrize("switch", MARLIN_ABLATIONS)
def test_each_ablation_changes_behaviour(switch):
    def plans(ablate):
        # MinCarbon (its agent may veto from the start) with any utility loss triggering the veto
        s = make("marlin-mincarbon", marlin_ablate=ablate, marlin_veto_delta=0.0)
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
    from schedulers.base import EpochResult
    z = np.zeros(4)
    return EpochResult(epoch=e, requests=np.array([30, 10, 20, 5]), ttft_sum_s=z, ttft_count=z.astype(int),
                       sla_violations=z.astype(int), energy_kwh=z, carbon_kg=z, water_l=z, cost_usd=z,
                       parked_share=z)


def test_checkpoint_round_trip(tmp_path):
    ck = tmp_path / "marlin.pt"
    a = make("marlin", marlin_pretrain_days=1, marlin_checkpoint=str(ck), hours=0.5)
    assert ck.exists()
    b = make("marlin", marlin_checkpoint=str(ck), hours=0.5, seed=9)  # loads instead of pre-training
    for x, y in zip(a.agents, b.agents):
        for p, q in zip(x.sac.actor.parameters(), y.sac.actor.parameters()):
            assert torch.equal(p, q)


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
