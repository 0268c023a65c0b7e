"""Pre-training (simcore.training): the days it plays, that it never reads the test day, cached and resumed
checkpoints, the state every learner carries into the test day, and the sweeps' trained protocol."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

import simcore.engine as engine_mod
import simcore.training as training
import traces.loader
from schedulers.registry import create
from simcore.engine import simulate
from simcore.errors import ConfigError
from tests.conftest import small_config

LEARNERS = ("qlearning", "ddqn", "actorcritic", "slit", "perllm", "marlin")
SMALL = {"ddqn": {"ddqn_hidden": 16, "ddqn_updates_per_epoch": 2},
         "actorcritic": {"actorcritic_hidden": 16},
         "marlin": {"marlin_actor_hidden": 16, "marlin_critic_hidden": 16, "marlin_batch_size": 16,
                    "marlin_updates_per_epoch": 1, "plan_evaluations_per_epoch": 17}}
# what a learner restarts when a day starts from a trained state, switched off: then the state survives `reset` exactly
KEEP_ALL = {"ddqn": {"ddqn_warm_replay_keep": 20000}, "actorcritic": {"actorcritic_warm_log_std": -3.0}}


def _small(name: str, keep_all: bool = False) -> dict:
    return {**SMALL.get(name, {}), **(KEEP_ALL.get(name, {}) if keep_all else {})}


def _state_bytes(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _same(a, b) -> bool:
    """Whether two learned states hold the same values (arrays, tensors, modules, optimizers, plain objects)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (torch.nn.Module, torch.optim.Optimizer)):
        return type(a) is type(b) and _same(a.state_dict(), b.state_dict())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return type(a) is type(b) and _same(vars(a), vars(b))
    return a == b


def _world(**changes):
    return small_config(hours=1.0, **changes)


def test_training_days_are_other_days_of_the_same_kind_first_with_their_own_signals():
    cfg = _world()  # Monday 2024-05-13, grid signals from Monday 2023-07-03
    days = training.training_days(cfg, 4)
    assert [c.trace_day for c in days] == ["2024-05-14", "2024-05-15", "2024-05-10", "2024-05-16"]  # ties: earlier
    assert [c.start for c in days] == ["2023-07-04", "2023-07-05", "2023-06-30", "2023-07-06"]
    assert all(c.replace(trace_day=cfg.trace_day, start=cfg.start) == cfg for c in days)  # nothing else changes
    sat = training.training_days(_world(trace_day="2024-05-11", start="2023-07-01"), 3)
    assert [c.trace_day for c in sat] == ["2024-05-12", "2024-05-10", "2024-05-13"]  # Sunday, then the nearest
    assert [c.start for c in sat] == ["2023-07-02", "2023-06-30", "2023-07-03"]
    with pytest.raises(ConfigError, match="only 6 days other than the test day"):
        training.training_days(cfg, 7)
    with pytest.raises(ConfigError, match="has no other days"):
        training.training_days(_world(trace="burstgpt-profile"), 1)


def test_pretraining_never_reads_the_test_days_trace_or_signals(monkeypatch):
    """Change the test day's arrivals (x3) and grid signals (carbon x5): the trained state is byte-identical, and
    no load during training names the test day; the change is real (the test day's own run sees it)."""
    cfg = _world(scheduler="qlearning")
    clean = create("qlearning")
    training.pretrain(cfg, clean, 2)
    reference = _state_bytes(clean.state_dict())

    loaded_days, loaded_starts = [], []
    real_load, real_signals = traces.loader.load_workload, engine_mod.site_signals

    def load(c, rng):
        loaded_days.append(c.trace_day)
        return real_load(c.replace(load_scale=str(float(c.load_scale) * 3)) if c.trace_day == cfg.trace_day
                         else c, rng)

    def signals(c):
        loaded_starts.append(c.start)
        s = real_signals(c)
        if c.start == cfg.start:
            s.ci_kg_per_kwh[...] *= 5.0
        return s

    monkeypatch.setattr(engine_mod, "load_workload", load)
    monkeypatch.setattr(traces.loader, "load_workload", load)
    monkeypatch.setattr(engine_mod, "site_signals", signals)
    changed = create("qlearning")
    training.pretrain(cfg, changed, 2)
    assert cfg.trace_day not in loaded_days and cfg.start not in loaded_starts
    assert loaded_days == ["2024-05-14", "2024-05-15"] and loaded_starts == ["2023-07-04", "2023-07-05"]
    assert _state_bytes(changed.state_dict()) == reference
    # the patched test day is a different day: its run differs from the clean one
    a = simulate(cfg, create("qlearning"))
    monkeypatch.undo()
    b = simulate(cfg, create("qlearning"))
    assert sum(r["carbon_kg"] for r in a.epoch_rows) != sum(r["carbon_kg"] for r in b.epoch_rows)


@pytest.mark.parametrize("name", LEARNERS)
def test_every_learner_carries_what_it_learned_into_the_test_day(name):
    """After training, the test day's run starts from the trained state (not setup's fresh one) and plays
    differently from an untrained run wherever it has a choice; the trained state survives `reset`."""
    cfg = _world(scheduler=name)
    trained = create(name, _small(name, keep_all=True))
    record = training.pretrain(cfg, trained, 1)
    assert record["learns"] and record["epochs_trained"] == cfg.epochs and record["days_played"] == 1
    state = trained.state_dict()
    engine = engine_mod.Engine(cfg, trained)
    trained.reset(engine.info, np.random.default_rng(0))  # what the test day's run does first
    assert _same(trained.state_dict(), state)
    fresh = create(name, _small(name, keep_all=True))
    fresh.reset(engine.info, np.random.default_rng(0))
    assert not _same(fresh.state_dict(), state)
    online, warm = _plans(cfg, create(name, _small(name, keep_all=True))), _plans(cfg, trained)
    if len({str(p) for p in online + warm}) > 1:  # (where this small world leaves it a choice at all)
        assert online != warm


@pytest.mark.parametrize("name", LEARNERS)
def test_a_frozen_learner_changes_none_of_its_learned_state_on_the_test_day(name):
    """--test-learning frozen: after training, the test day changes nothing the learner learned (but the
    constraints' observations it declares, `adapts_frozen`); the same learner with --test-learning online does."""
    def learned(sched) -> dict:
        state = sched.state_dict()
        return {k: v for k, v in state.items() if k not in sched.adapts_frozen}

    changed = {}
    for mode in ("frozen", "online"):
        cfg = _world(scheduler=name, train_days=1)
        sched = create(name, SMALL.get(name, {}))
        record = training.pretrain(cfg, sched, cfg.train_days, test_learning=mode)
        assert record["test_learning"] == mode and sched.frozen == (mode == "frozen")
        before = learned(sched)
        simulate(cfg, sched)
        changed[mode] = not _same(learned(sched), before)
    assert changed == {"frozen": False, "online": True}


def test_frozen_needs_training_and_shares_the_online_test_days_checkpoint(tmp_path):
    from schedulers.options import build_config

    with pytest.raises(ConfigError, match="must be trained first"):
        build_config(["--scheduler", "qlearning", "--test-learning", "frozen"])
    with pytest.raises(ConfigError, match="must be trained first"):
        training.pretrain(_world(), create("qlearning"), 0, test_learning="frozen")
    cfg = _world(scheduler="qlearning")
    online = training.pretrain(cfg, create("qlearning"), 1, tmp_path)
    frozen = training.pretrain(cfg, create("qlearning"), 1, tmp_path, test_learning="frozen")
    assert frozen["checkpoint"] == online["checkpoint"] and frozen["reused"] and frozen["days_played"] == 0


def _plans(cfg, sched) -> list:
    """The plans a scheduler executes over a run of cfg."""
    plans, decide = [], sched.decide

    def record(obs):
        plan = decide(obs)
        plans.append(plan.round(9).tolist())
        return plan

    sched.decide = record
    simulate(cfg, sched)
    return plans


def test_a_scheduler_that_learns_nothing_plays_no_training_day(monkeypatch):
    monkeypatch.setattr(engine_mod, "simulate", lambda *a, **k: pytest.fail("a training day was played"))
    rec = training.pretrain(_world(scheduler="uniform"), create("uniform"), 3)
    assert rec["learns"] is False and rec["days_played"] == 0 and rec["days"][0] == "2024-05-14"
    assert training.pretrain(_world(), create("uniform"), 0) == {"protocol": "online", "train_days": 0}


def test_a_cached_checkpoint_is_loaded_and_an_interrupted_training_resumes(tmp_path, monkeypatch):
    cfg = _world(scheduler="qlearning")
    straight = create("qlearning")
    training.pretrain(cfg, straight, 2)  # no cache: the reference

    calls = []
    real = engine_mod.simulate

    def interrupted(c, s, **kw):
        calls.append(c.trace_day)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(c, s, **kw)

    monkeypatch.setattr(engine_mod, "simulate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.pretrain(cfg, create("qlearning"), 2, tmp_path)
    (partial,) = tmp_path.glob("*.partial.pt")
    assert torch.load(partial, weights_only=False)["days_done"] == 1
    monkeypatch.setattr(engine_mod, "simulate", real)
    resumed = create("qlearning")
    rec = training.pretrain(cfg, resumed, 2, tmp_path)
    assert (rec["resumed_from_day"], rec["days_played"], rec["reused"]) == (1, 1, False)
    assert not list(tmp_path.glob("*.partial.pt")) and len(list(tmp_path.glob("*.pt"))) == 1
    assert _same(resumed.state_dict(), straight.state_dict())

    monkeypatch.setattr(engine_mod, "simulate", lambda *a, **k: pytest.fail("trained again"))
    again = create("qlearning")
    rec = training.pretrain(cfg, again, 2, tmp_path)
    assert rec["reused"] and rec["days_played"] == 0 and rec["epochs_trained"] == 2 * cfg.epochs
    assert again.experience_epochs == 2 * cfg.epochs
    assert _same(again._warm, straight.state_dict())


def test_the_key_names_scheduler_parameters_seed_days_and_d():
    cfg = _world(scheduler="qlearning")
    base = training.checkpoint_key(create("qlearning"), training.training_days(cfg, 2))
    same = training.checkpoint_key(create("qlearning"), training.training_days(cfg, 2))
    assert base == same
    for sched, c, n in ((create("qlearning", {"qlearning_alpha": 0.2}), cfg, 2), (create("qlearning"), cfg, 1),
                        (create("qlearning"), cfg.replace(seed=4), 2), (create("qlearning"), cfg.replace(dcs=5), 2)):
        assert training.checkpoint_key(sched, training.training_days(c, n)) != base


def test_marlins_old_pretraining_flags_point_to_the_new_ones():
    with pytest.raises(ConfigError, match="replaced by --train-days"):
        create("marlin", {"marlin_pretrain_days": "2"})
    with pytest.raises(ConfigError, match="replaced by --checkpoint-dir"):
        create("marlin", {"marlin_checkpoint": "ck.pt"})


def test_the_second_study_reuses_the_first_ones_checkpoints(tmp_path, capsys):
    """compare then scale at the same D, trained protocol: scale plays no training day; config.json says so."""
    from reports import experiments

    online = ["--seeds", "1", "--hours", "1", "--workers", "1", "--no-progress", "--out", str(tmp_path),
              "--set", "nodes_per_dc=60", "--load-scale", "0.01"]
    common = [*online, "--protocol", "trained", "--train-days", "1"]
    assert experiments.main(["compare", "--schedulers", "qlearning,uniform", "--dcs", "4", *common]) == 0
    (ck,) = (tmp_path / "checkpoints").glob("*.pt")
    stamp = ck.stat().st_mtime_ns
    assert experiments.main(["scale", "--schedulers", "qlearning", "--dcs-list", "4", "--load", "fixed", *common]) == 0
    first = json.loads((tmp_path / "compare" / "qlearning-d4-s0" / "config.json").read_text())["training"]
    second = json.loads((tmp_path / "scale" / "qlearning-d4-s0" / "config.json").read_text())["training"]
    assert (first["days_played"], first["reused"]) == (1, False)
    assert (second["days_played"], second["reused"], second["checkpoint"]) == (0, True, first["checkpoint"])
    assert ck.stat().st_mtime_ns == stamp
    uniform = json.loads((tmp_path / "compare" / "uniform-d4-s0" / "config.json").read_text())["training"]
    assert uniform["learns"] is False
    manifest = json.loads((tmp_path / "scale" / "sweep.json").read_text())
    assert (manifest["protocol"], manifest["train_days"]) == ("trained", 1)
    # the same folder under the other protocol is refused, naming it
    assert experiments.main(["scale", "--schedulers", "qlearning", "--dcs-list", "4", "--load", "fixed", *online]) == 2
    assert "protocol='trained', not 'online'" in capsys.readouterr().err


def test_the_trained_frozen_protocol_gives_every_run_a_frozen_test_day_and_says_so(tmp_path):
    from reports import experiments
    from reports.report import _protocol

    argv = ["--schedulers", "qlearning", "--seeds", "1", "--hours", "1", "--dcs", "4", "--out", str(tmp_path),
            "--protocol", "trained-frozen", "--train-days", "2"]
    (sweep,) = experiments.sweeps_from_args("compare", experiments._parser("compare").parse_args(argv))
    args = dict(zip(sweep.run_args[::2], sweep.run_args[1::2]))
    assert (args["--train-days"], args["--test-learning"]) == ("2", "frozen")
    assert args["--checkpoint-dir"] == str((tmp_path / "checkpoints").resolve())  # the study's cache
    assert (sweep.protocol, sweep.settings["train_days"]) == ("trained-frozen", 2)
    assert "then the scored day frozen" in _protocol({"protocol": "trained-frozen", "train_days": 2})
    assert "then the scored day online" in _protocol({"protocol": "trained", "train_days": 2})


def test_the_record_states_the_declared_budget_of_the_training():
    cfg = _world(scheduler="ddqn")
    rec = training.pretrain(cfg, create("ddqn", {"ddqn_hidden": 16, "ddqn_updates_per_epoch": 2}), 1)
    assert rec["budget"]["per_epoch"] == {"plan_evaluations_per_epoch": 256, "gradient_steps_per_epoch": 128,
                                          "ddqn_updates_per_epoch": 2}
    assert rec["budget"]["training_total"] == {"plan_evaluations_per_epoch": 256 * 4,
                                               "gradient_steps_per_epoch": 128 * 4, "ddqn_updates_per_epoch": 8}


def test_actor_critics_mean_logits_stay_within_their_bound():
    """Unbounded, three training days drove the mean logits to |x| ~ 200-300 (a one-hot plan no update moves); the
    squash keeps them in [-bound, bound] and is about the identity near 0 (the untrained policy is unchanged)."""
    from schedulers.actorcritic import GaussianActor

    actor = GaussianActor(3, 4, 8, 0.0, logit_bound=6.0)
    with torch.no_grad():
        actor.head[-1].bias.copy_(torch.tensor([1000.0, -1000.0, 0.3, 0.0]))
    with torch.no_grad():
        out = actor.mean(torch.zeros(1, 3))[0]
    assert torch.all(out.abs() <= 6.0) and out[0] > 5.99 and out[1] < -5.99
    assert abs(float(out[2]) - 0.3) < 1e-3 and float(out[3]) == 0.0


def test_the_training_benchmark_scores_each_learner_on_its_own_objective():
    """benchmarks/bench_training.py: SLIT's objective is its own `slit_weights` (carbon and water first), a MARLIN
    Min* variant's is its dominant objective, the others' the run's weights; `--set` values count."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"
    spec = importlib.util.spec_from_file_location("bench_training", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    equal = (0.25, 0.25, 0.25, 0.25)
    assert bench.own_weights("qlearning", equal) == equal
    assert bench.own_weights("slit", equal) == (0.1, 0.4, 0.4, 0.1)
    assert bench.own_weights("slit", equal, ["slit_weights=0.25,0.25,0.25,0.25", "reference_dcs=4"]) == equal
    assert np.allclose(bench.own_weights("marlin-mincarbon", equal), (0.1, 0.7, 0.1, 0.1))
    assert np.allclose(bench.own_weights("marlin-mincarbon", equal, ["marlin_variant_dominant=0.4"]),
                       (0.2, 0.4, 0.2, 0.2))


def test_a_replay_buffer_keeps_its_newest_transitions_in_order():
    from schedulers.rl.nets import ReplayBuffer

    buf = ReplayBuffer(4, {"x": ()})
    buf.add(x=np.arange(6.0))  # the ring holds 2, 3, 4, 5 (pos 2: 4, 5, 2, 3)
    buf.keep_newest(2)
    assert len(buf) == 2 and buf.data["x"][:2].tolist() == [4.0, 5.0]
    buf.add(x=np.array([6.0]))  # appended after the kept ones
    assert len(buf) == 3 and buf.data["x"][:3].tolist() == [4.0, 5.0, 6.0]
    buf.keep_newest(0)
    assert len(buf) == 0 and buf.pos == 0


def _trained_then_reset(name: str, params: dict, frozen: bool = False):
    """(the learner's state at the end of one training day, the learner after the next day's `reset`)."""
    cfg = _world(scheduler=name)
    sched = create(name, {**SMALL.get(name, {}), **params})
    training.pretrain(cfg, sched, 1)
    state = sched.state_dict()
    sched.frozen = frozen
    sched.reset(engine_mod.Engine(cfg, sched).info, np.random.default_rng(0))
    return state, sched


def test_ddqn_starts_a_day_from_a_trained_state_with_its_newest_transitions_only():
    """ddqn_warm_replay_keep: the networks and the optimizer are carried, the replay is cut to its newest
    transitions (default 0: empty, the day's own transitions are not outnumbered by older days'); frozen: kept."""
    state, sched = _trained_then_reset("ddqn", {})
    assert len(state["buffer"]) > 0 and len(sched.buffer) == 0
    assert _same(sched.q_net, state["q_net"]) and _same(sched.optimizer, state["optimizer"])
    state, sched = _trained_then_reset("ddqn", {"ddqn_warm_replay_keep": 3})
    n = len(state["buffer"])
    assert len(sched.buffer) == 3 and np.array_equal(sched.buffer.data["rew"][:3],
                                                      state["buffer"].data["rew"][(n - 3 + np.arange(3)) % n])
    state, sched = _trained_then_reset("ddqn", {}, frozen=True)
    assert len(sched.buffer) == len(state["buffer"])


def test_actor_critic_starts_a_day_from_a_trained_state_with_its_spread_restored():
    """actorcritic_warm_log_std: a trained policy's log std is raised to at least it (default 0, the initial
    spread) and its Adam moments restart; the mean policy and the critic are carried; frozen: kept as trained."""
    state, sched = _trained_then_reset("actorcritic", {"actorcritic_init_log_std": -2.0})
    assert float(state["actor"].log_std.detach().max()) < 0.0
    assert torch.all(sched.actor.log_std == 0.0) and sched.actor.log_std not in sched.actor_opt.state
    assert torch.equal(sched.actor.head[-1].weight, state["actor"].head[-1].weight)
    assert _same(sched.critic, state["critic"])
    state, sched = _trained_then_reset("actorcritic", {"actorcritic_init_log_std": -2.0}, frozen=True)
    assert torch.equal(sched.actor.log_std, state["actor"].log_std)



def test_the_training_benchmark_calls_trained_better_only_when_the_seeds_interval_is_below_zero():
    """bench_training.seeds_table: per learner the mean of the paired per-seed changes and its t-interval; a
    learner better on every seed by 1-3 % is 'better', one that flips sign is 'not shown'."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"
    spec = importlib.util.spec_from_file_location("bench_training", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def row(name, seed, trained, frozen):
        return {"learner": name, "seed": seed, "objective": {"online": 1.0, "trained": trained, "frozen": frozen}}
    rows = [row("a", s, t, t) for s, t in enumerate((0.99, 0.98, 0.97))]
    rows += [row("b", s, t, 1.0) for s, t in enumerate((0.99, 1.01))]
    ch = bench.seed_changes(rows, "trained")
    assert np.allclose(ch["a"], [-1.0, -2.0, -3.0]) and np.allclose(ch["b"], [-1.0, 1.0])
    table = bench.seeds_table(rows)
    # a: mean -2 %, s = 1, t(0.975, 2) = 4.303: -2 +- 2.48 -> [-4.48, +0.48]: not shown; b: not shown
    assert "| a | 3 | -2.00 % [-4.48, +0.48] | 3 of 3 | not shown |" in table
    rows += [row("a", 3, 0.98, 0.98)]  # four seeds: -2 +- 3.182 * 0.8165 / 2 = [-3.30, -0.70]
    assert "| a | 4 | -2.00 % [-3.30, -0.70] | 4 of 4 | better |" in bench.seeds_table(rows)
    assert "| b | 2 | +0.00 % [-12.71, +12.71] | 1 of 2 | not shown |" in table
