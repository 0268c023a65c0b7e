"""`marlin/GeoLLM-v0`: the simulator as a Gymnasium environment, one step = one epoch of the real engine.

    env = gymnasium.make("marlin/GeoLLM-v0", cfg=Config(dcs=4, hours=4.0, ...))   # after `import rlenv`
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

- Constructor: `cfg`, the world and the run (`simcore.config.Config`: the same parameters and validation as
  `run.py`; `Config.from_dict` builds one from `--set`-style values); `params`, the env's own (`EnvParams`).
- `reset(seed=s)` starts a run of that world with seed s (the workload, the routing draws: everything the
  seed drives in a CLI run); without a seed, the next seed of a stream seeded by the first reset's seed (or
  cfg.seed). Same seed -> same trajectory.
- Observation: `rlenv.spaces` (a Dict of Boxes). Action: a Box [-1, 1] of shape (model, origin, datacenter),
  the plan being softmax(env_logit_scale x action) over datacenters (`rlenv.reward.plan_from_action`).
- Reward: `rlenv.reward` (minus Eq. 11's weighted objective on the epoch's measured metrics, normalised by
  the uniform plan's, minus env_sla_penalty x the SLA-violation share). `info`: the epoch's raw metrics, its
  normalised metrics (`norm_ttft`, ...) and SLA-violation share.
- `terminated` after the last epoch (the engine's `finish` has played everything after the horizon too); the
  observation returned then is the last epoch's (there is no next epoch). `truncated` is never set.
- `record()` after the end: the run's `RunRecord` (what `run.py` writes with `simcore.results`).
"""
from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from rlenv.reward import EnvParams, epoch_reward, normalized_metrics, plan_from_action, raw_metrics
from rlenv.spaces import encode, observation_space
from simcore.config import Config
from simcore.stepping import EpochStepper

SEED_BOUND = 2**31 - 1  # seeds drawn for resets without one


class RunDriver:
    """One world's runs for an environment: a new `EpochStepper` per episode, workloads cached by seed."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._workloads: dict = {}
        self.stepper = EpochStepper(cfg)  # the first run's, also for the static facts (spaces)
        self._workloads[cfg.seed] = self.stepper.engine.wl
        self.info = self.stepper.info
        self.uniform = np.full(self.info.plan_shape, 1.0 / self.info.dcs)

    def start(self, seed: int):
        """A new run with `seed`; returns its first observation."""
        cfg = self.cfg.replace(seed=int(seed))
        if not (self.stepper.epoch == -1 and self.stepper.cfg.seed == cfg.seed):  # not the fresh one
            if len(self._workloads) > 4:
                self._workloads.clear()
            self.stepper = EpochStepper(cfg, self._workloads.get(cfg.seed))
            self._workloads[cfg.seed] = self.stepper.engine.wl
            self.info = self.stepper.info
        return self.stepper.reset()

    def play(self, plan: np.ndarray):
        """Play the current epoch: (EpochResult, the observation it was planned in, the next observation)."""
        planned_in = self.stepper.obs
        result, nxt = self.stepper.step(plan)
        return result, planned_in, nxt


class GeoLLMEnv(gymnasium.Env):
    """The simulator as a Gymnasium environment (see the module docstring).

    :param cfg: the world and the run (default: `Config()`, the CLI's default day)
    :param params: the environment's parameters (`rlenv.reward.EnvParams`)
    """

    metadata = {"render_modes": []}

    def __init__(self, cfg: Config | None = None, params: EnvParams | None = None) -> None:
        self.cfg = cfg if cfg is not None else Config()
        self.params = params if params is not None else EnvParams()
        self.driver = RunDriver(self.cfg)
        info = self.driver.info
        self.observation_space = observation_space(info)
        self.action_space = spaces.Box(-1.0, 1.0, shape=info.plan_shape, dtype=np.float32)
        self._seeds: np.random.Generator | None = None
        self._obs: dict | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self._seeds is None:
            self._seeds = np.random.default_rng(self.cfg.seed if seed is None else seed)
            run_seed = self.cfg.seed if seed is None else seed
        else:
            run_seed = int(self._seeds.integers(SEED_BOUND))
        obs = self.driver.start(run_seed)
        self._obs = encode(obs, self.driver.info)
        return self._obs, {"epoch": 0, "seed": int(run_seed)}

    def step(self, action):
        if self._obs is None or self.driver.stepper.done:
            raise RuntimeError("GeoLLMEnv.step: call reset() first (the episode is over or not started)")
        d = self.driver
        plan = plan_from_action(action, self.params.env_logit_scale)
        result, planned_in, nxt = d.play(plan)
        norm, sla_rate = normalized_metrics(result, planned_in, d.info.evaluator, d.uniform)
        reward = epoch_reward(norm, sla_rate, self.cfg.objective_weights, self.params.env_sla_penalty)
        info = raw_metrics(result)
        info["sla_rate"] = sla_rate
        info.update({f"norm_{k}": (float(v) if norm is not None else float("nan"))
                     for k, v in zip(self.cfg.objectives, norm if norm is not None else [0] * 5)})
        terminated = d.stepper.done
        if nxt is not None:
            self._obs = encode(nxt, d.info)
        return self._obs, reward, terminated, False, info

    def record(self):
        """The finished run's `RunRecord` (None before the end)."""
        return self.driver.stepper.record
