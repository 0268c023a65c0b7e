"""Train Stable-Baselines3 SAC on the simulator's Gymnasium environment (`marlin/GeoLLM-v0`) and write its
learning curve. Needs the `[rl]` extra (`pip install -e .[rl]`).

    python examples/sb3_sac.py [--steps 3000] [--seed 0] [--out results/sb3-sac]

One step is one 15-minute epoch of the real engine, in a small world (4 datacenters of 24 nodes, 4-hour
episodes, the auto load at 60 % of the fleet's serving capacity, coarse cohorts) so a few thousand steps train
on a CPU in minutes. Writes into OUT (a new folder, or one this script wrote before):

- `policy.zip`: the trained SAC model; `world.json`: the world it was trained on (`run.py --config` reads it);
- `learning_curve.csv` (step, reward, episode) and `learning_curve.png`;

and prints the mean reward of the first and the last 10 % of the training steps, and the deterministic policy's
mean reward over one episode next to the uniform plan's (the zero action). Play the policy back through the CLI
with `examples/play_policy.py` or `run.py --scheduler rlenv.policy_scheduler:PolicyScheduler`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

OUR_FILES = {"policy.zip", "world.json", "learning_curve.csv", "learning_curve.png"}


@dataclass
class Args:
    steps: int = 3000  # training steps (epochs played)
    seed: int = 0  # seeds SAC and the first episode (later episodes draw theirs from it)
    out: str = "results/sb3-sac"  # output folder
    hours: float = 4.0  # episode length (16 epochs)


# real requests per simulated one: the world's day (2.7e7 real requests) in ~5e4 cohorts, for speed. Given
# explicitly: cohort_size auto plays a world of fewer than 30 nodes per datacenter exactly (docs/model.md 'Cohorts')
COARSE_COHORT = 531


def world(hours: float):
    """The small world the example trains on."""
    from simcore.config import Config

    return Config(dcs=4, hours=hours, nodes_per_dc=24, reference_dcs=4, peak_utilization=0.6,
                  cohort_size=str(COARSE_COHORT), cohort_bin_s=300.0)


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or set(p.name for p in out.iterdir()) - OUR_FILES):
        print(f"--out {out}: holds files this example did not write; name a new folder", file=sys.stderr)
        sys.exit(2)


def episode_mean_reward(env, policy, seed: int) -> float:
    obs, _ = env.reset(seed=seed)
    rewards, done = [], False
    while not done:
        obs, r, done, _, _ = env.step(policy(obs))
        rewards.append(r)
    return float(np.mean(rewards))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in vars(Args()).items():
        p.add_argument(f"--{name}", type=type(default), default=default)
    args = Args(**vars(p.parse_args()))
    out = Path(args.out)
    check_out(out)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    from rlenv.gym_env import GeoLLMEnv

    torch.set_num_threads(1)
    cfg = world(args.hours)
    env = GeoLLMEnv(cfg)
    env.reset(seed=args.seed)

    class Rewards(BaseCallback):  # plumbing: every step's reward, for the curve
        def __init__(self):
            super().__init__()
            self.rewards, self.episodes, self.episode = [], [], 0

        def _on_step(self) -> bool:
            self.rewards.append(float(self.locals["rewards"][0]))
            self.episodes.append(self.episode)
            self.episode += int(self.locals["dones"][0])
            return True

    # the algorithm: SAC, short-sighted (gamma 0.9: an epoch's plan mostly shapes that epoch's reward)
    # and a small fixed entropy bonus (the automatic one keeps a 32-dimensional action near random for long)
    model = SAC("MultiInputPolicy", env, learning_starts=200, batch_size=128, learning_rate=1e-3, gamma=0.9,
                ent_coef=0.01, policy_kwargs={"net_arch": [128, 128]}, seed=args.seed, device="cpu", verbose=0)
    curve = Rewards()
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=curve)
    train_s = time.perf_counter() - t0

    r = np.asarray(curve.rewards)
    tenth = max(1, len(r) // 10)
    first, last = float(r[:tenth].mean()), float(r[-tenth:].mean())
    held_out = args.seed + 1000  # a seed the training did not start from
    trained = episode_mean_reward(env, lambda o: model.predict(o, deterministic=True)[0], held_out)
    uniform = episode_mean_reward(env, lambda o: np.zeros(env.action_space.shape, dtype=np.float32), held_out)

    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "policy.zip")
    world_params = {k: v for k, v in cfg.to_dict().items() if k != "scheduler"}
    (out / "world.json").write_text(json.dumps(world_params, indent=2) + "\n")
    np.savetxt(out / "learning_curve.csv", np.column_stack([np.arange(1, len(r) + 1), r, curve.episodes]),
               delimiter=",", header="step,reward,episode", comments="", fmt=["%d", "%.6f", "%d"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(np.arange(1, len(r) + 1), r, ".", ms=2, alpha=0.3, color="0.5", label="reward per step (epoch)")
    window = 10 * cfg.epochs
    if len(r) >= window:
        smooth = np.convolve(r, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(r) + 1), smooth, color="C0", lw=2, label=f"mean of the last {window} steps")
    ax.axhline(uniform, color="C3", ls="--", label=f"uniform plan, held-out seed ({uniform:.3f})")
    ax.axhline(trained, color="C2", ls="--", label=f"trained policy, held-out seed ({trained:.3f})")
    ax.axvline(200, color="0.3", ls=":", lw=1, label="learning starts (random actions before)")
    ax.set_xlabel("training step (one 15-min epoch of the engine)")
    ax.set_ylabel("reward  -(w . metrics / uniform's) - SLA penalty")
    ax.set_title(f"SAC on marlin/GeoLLM-v0: {cfg.dcs} DCs x {cfg.nodes_per_dc} nodes, {cfg.hours:g}-h episodes")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=120)

    print(f"trained {len(r)} steps in {train_s:.0f} s ({len(r) / train_s:.0f} steps/s)")
    trend = "up" if last > first else "NOT up"
    print(f"mean reward, first 10 % of steps: {first:.4f}; last 10 %: {last:.4f} ({trend})")
    print(f"held-out seed (seed {held_out}): trained policy {trained:.4f}, uniform plan {uniform:.4f}")
    print(f"wrote {out}/policy.zip, world.json, learning_curve.csv, learning_curve.png")


if __name__ == "__main__":
    main()
