"""rlenv: the Gymnasium and PettingZoo environments pass their libraries' checkers, play the real engine,
and are deterministic per seed."""
import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("pettingzoo")

import rlenv  # noqa: E402  (registers marlin/GeoLLM-v0)
from rlenv.gym_env import GeoLLMEnv  # noqa: E402
from rlenv.pz_env import GeoLLMParallelEnv  # noqa: E402
from rlenv.reward import EnvParams, plan_from_action  # noqa: E402
from schedulers.registry import create  # noqa: E402
from simcore.engine import Engine  # noqa: E402
from simcore.results import epoch_table  # noqa: E402
from tests.conftest import small_config  # noqa: E402


def env_config(**changes):
    return small_config(**{"nodes_per_dc": 24, "load_scale": "0.02", **changes})


def test_gymnasium_env_checker_passes():
    from gymnasium.utils.env_checker import check_env
    check_env(GeoLLMEnv(env_config()), skip_render_check=True)


@pytest.mark.parametrize("blend", ["mean", "capital"])
def test_pettingzoo_parallel_api_test_passes(blend):
    from pettingzoo.test import parallel_api_test
    parallel_api_test(GeoLLMParallelEnv(env_config(), EnvParams(env_blend=blend)), num_cycles=10)


def test_registered_id_makes_the_env_and_an_episode_is_one_run():
    cfg = env_config()
    env = gymnasium.make(rlenv.ENV_ID, cfg=cfg)
    env.reset(seed=1)
    steps, terminated = 0, False
    while not terminated:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        assert not truncated
    assert steps == cfg.epochs == 8
    assert env.unwrapped.record() is not None


def trajectory(seed: int, n: int = 8):
    env = GeoLLMEnv(env_config())
    obs, _ = env.reset(seed=seed)
    acts = np.random.default_rng(0)
    out = [obs]
    for _ in range(n):
        obs, r, term, _, info = env.step(acts.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        out.append((obs, r, info["carbon_kg"], info["ttft_mean_s"]))
    return out


def flat(traj):
    vals = []
    for item in traj:
        obs = item[0] if isinstance(item, tuple) else item
        vals += [v.ravel() for _, v in sorted(obs.items())]
        if isinstance(item, tuple):
            vals.append(np.array(item[1:], dtype=float))
    return np.concatenate(vals)


def test_same_seed_same_trajectory_other_seed_differs():
    a, b, c = flat(trajectory(5)), flat(trajectory(5)), flat(trajectory(6))
    assert np.array_equal(a, b, equal_nan=True)
    assert not np.array_equal(a, c, equal_nan=True)


def test_zero_action_plays_the_uniform_scheduler_run_of_the_cli():
    """What the agent learns on is what the CLI reports: the zero action is the uniform plan, and an episode of
    it writes the epochs.csv `run.py --scheduler uniform` writes (same seed)."""
    cfg = env_config()
    env = GeoLLMEnv(cfg)
    env.reset(seed=cfg.seed)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    assert np.allclose(plan_from_action(zero, 5.0), 1.0 / cfg.dcs)
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(zero)
    assert epoch_table(env.record()).equals(epoch_table(Engine(cfg, create("uniform")).run()))


def test_reward_is_minus_the_weighted_normalised_metrics_minus_the_sla_penalty():
    cfg = env_config(weights=(0.1, 0.2, 0.3, 0.4))
    env = GeoLLMEnv(cfg, EnvParams(env_sla_penalty=7.0))
    env.reset(seed=2)
    for _ in range(3):
        _, r, _, _, info = env.step(env.action_space.sample())
        norm = np.array([info[f"norm_{k}"] for k in ("ttft", "carbon", "water", "cost")])
        assert r == pytest.approx(-(norm @ np.array([0.1, 0.2, 0.3, 0.4])) - 7.0 * info["sla_rate"])
        assert info["sla_rate"] == pytest.approx(info["sla_violations"] / info["requests"])


def test_agents_get_their_own_objectives_reward():
    env = GeoLLMParallelEnv(env_config(), EnvParams(env_sla_penalty=3.0))
    env.reset(seed=2)
    for _ in range(3):
        actions = {a: env.action_space(a).sample() for a in env.agents}
        _, rewards, _, _, infos = env.step(actions)
        assert list(rewards) == ["ttft", "carbon", "water", "cost"]
        for agent, r in rewards.items():
            info = infos[agent]
            assert r == pytest.approx(-info[f"norm_{agent}"] - 3.0 * info["sla_rate"])


def test_objective_embodied_adds_the_embodied_agent_and_a_fifth_reward_term():
    from pettingzoo.test import parallel_api_test
    cfg = env_config(objective_embodied=True)
    parallel_api_test(GeoLLMParallelEnv(cfg, EnvParams(env_blend="capital")), num_cycles=10)
    env = GeoLLMParallelEnv(cfg, EnvParams(env_sla_penalty=3.0))
    env.reset(seed=2)
    assert env.agents == ["ttft", "carbon", "water", "cost", "embodied"]
    _, rewards, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    info = infos["embodied"]
    assert 0 < info["embodied_attributable_kg"] <= info["embodied_carbon_kg"]
    assert rewards["embodied"] == pytest.approx(-info["norm_embodied"] - 3.0 * info["sla_rate"])
    single = GeoLLMEnv(cfg, EnvParams(env_sla_penalty=3.0))
    single.reset(seed=2)
    _, r, _, _, info = single.step(single.action_space.sample())
    norm = np.array([info[f"norm_{k}"] for k in cfg.objectives])
    assert r == pytest.approx(-(norm @ np.full(5, 0.2)) - 3.0 * info["sla_rate"])


def test_a_policy_trained_through_the_env_plays_in_a_compare_study_next_to_built_ins(tmp_path):
    """A Stable-Baselines3 policy file (here after a few updates) is played through run.py by
    rlenv.policy_scheduler, and `compare` runs it beside a built-in: both get results folders and a summary."""
    sb3 = pytest.importorskip("stable_baselines3")
    import json

    import run

    cfg = env_config()
    env = GeoLLMEnv(cfg)
    model = sb3.SAC("MultiInputPolicy", env, learning_starts=8, batch_size=8, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [16]})
    model.learn(total_timesteps=16)
    model.save(tmp_path / "policy.zip")
    world = tmp_path / "world.json"
    world.write_text(json.dumps({k: v for k, v in cfg.to_dict().items() if k != "scheduler"}))
    target = "rlenv.policy_scheduler:PolicyScheduler"
    assert run.main(["compare", "--schedulers", f"uniform,{target}", "--config", str(world),
                     "--set", f"policy_path={tmp_path / 'policy.zip'}", "--dcs", "4", "--hours", "2",
                     "--seeds", "1", "--workers", "1", "--out", str(tmp_path / "study"), "--no-progress"]) == 0
    runs = sorted(p.name for p in (tmp_path / "study" / "compare").iterdir() if (p / "summary.json").is_file())
    assert len(runs) == 2 and any(r.startswith("uniform") for r in runs)
    played = next(p for p in (tmp_path / "study" / "compare").iterdir() if p.name.startswith("rlenv"))
    summary = json.loads((played / "summary.json").read_text())
    assert summary["scheduler"] == target and summary["requests_served"] > 0
    # the CLI run is the environment's episode under the policy's deterministic actions (same seed)
    import pandas as pd
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, _, done, _, _ = env.step(model.predict(obs, deterministic=True)[0])
    mine, cli = epoch_table(env.record()), pd.read_csv(played / "epochs.csv")
    numeric = [c for c in mine.columns if c != "site"]
    assert np.allclose(mine[numeric].to_numpy(float), cli[numeric].to_numpy(float), rtol=1e-8, equal_nan=True)


@pytest.mark.parametrize("blend", ["mean", "capital"])
def test_parallel_env_same_seed_same_rewards(blend):
    def rewards(seed):
        env = GeoLLMParallelEnv(env_config(), EnvParams(env_blend=blend))
        env.reset(seed=seed)
        acts = np.random.default_rng(1)
        out = []
        while env.agents:
            _, r, _, _, _ = env.step({a: acts.uniform(-1, 1, env.action_space(a).shape).astype(np.float32)
                                      for a in env.agents})
            out.append([r[a] for a in sorted(r)])
        return np.array(out)

    a, b = rewards(4), rewards(4)
    assert a.shape == (8, 4) and np.array_equal(a, b)
    assert not np.array_equal(a, rewards(5))
