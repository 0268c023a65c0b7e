"""A `Scheduler` that plays a policy trained through the environment (`rlenv.gym_env`) in `run.py`, so its run
writes the results folder every scheduler writes and `compare` can put it next to the built-ins:

    python run.py --scheduler rlenv.policy_scheduler:PolicyScheduler --set policy_path=results/sb3-sac/policy.zip \
        --config results/sb3-sac/world.json

At each epoch start it encodes the observation as the environment does (`rlenv.spaces.encode`), asks the
policy for its deterministic action and plays softmax(policy_logit_scale x action) (`rlenv.reward`), the
plan the environment would have played. The policy file is a Stable-Baselines3 model (`model.save(path)`) of
the algorithm `policy_algo`, trained on a world of the same shape (datacenters and models); a mismatch ends
the run with one line naming this scheduler.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlenv.reward import plan_from_action
from rlenv.spaces import encode
from simcore.errors import ConfigError
from simcore.interface import Observation, Scheduler
from simcore.params import Parameters, param

ALGORITHMS = ("SAC", "TD3", "DDPG", "PPO", "A2C")  # Stable-Baselines3 algorithms with a continuous action


@dataclass(frozen=True)
class PolicyParams(Parameters):
    policy_path: str = param("results/sb3-sac/policy.zip", "the trained policy: a Stable-Baselines3 model file")
    policy_algo: str = param("SAC", "the Stable-Baselines3 algorithm the policy file was saved by",
                             choices=ALGORITHMS)
    policy_logit_scale: float = param(5.0, "the plan is softmax(this x action); the env_logit_scale it was trained "
                                      "with", lo=0, lo_open=True)


class PolicyScheduler(Scheduler):
    """Plays a trained policy file (see the module docstring)."""

    name = "policy"
    Params = PolicyParams

    def setup(self) -> None:
        import os

        try:
            import stable_baselines3
        except ImportError:
            raise ConfigError("scheduler policy: needs stable-baselines3 (pip install -e .[rl])") from None
        path = self.params.policy_path
        if not os.path.isfile(path):
            raise ConfigError(f"scheduler policy: policy_path {path}: no such file (train one with "
                              "examples/sb3_sac.py)")
        self.model = getattr(stable_baselines3, self.params.policy_algo).load(path, device="cpu")

    def plan(self, obs: Observation) -> np.ndarray:
        action, _ = self.model.predict(encode(obs, self.info), deterministic=True)
        return plan_from_action(np.asarray(action).reshape(self.info.plan_shape), self.params.policy_logit_scale)
