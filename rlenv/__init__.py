"""The simulator as a reinforcement-learning environment (optional extra `[rl]`: gymnasium, pettingzoo).

- `rlenv.gym_env.GeoLLMEnv`: a Gymnasium `Env`, one step = one epoch of the real engine
  (`simcore.stepping.EpochStepper`), registered as `marlin/GeoLLM-v0` when this package is imported.
- `rlenv.pz_env.GeoLLMParallelEnv`: a PettingZoo `ParallelEnv`, the four objectives as agents.
- `rlenv.reward`: the reward both give (minus Eq. 11's weighted objective on the epoch's measured metrics).
- `rlenv.policy_scheduler.PolicyScheduler`: a `Scheduler` that plays a trained policy file through `run.py`.

Nothing in simcore imports this package; it imports gymnasium / pettingzoo only in the modules that need them.
"""
from __future__ import annotations

ENV_ID = "marlin/GeoLLM-v0"


def register() -> None:
    """Register `marlin/GeoLLM-v0` with gymnasium (idempotent)."""
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="rlenv.gym_env:GeoLLMEnv")


try:  # registration needs gymnasium, which is an optional extra: the package imports without it
    register()
except ImportError:
    pass
