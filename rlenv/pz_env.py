"""The simulator as a PettingZoo `ParallelEnv`: MARLIN's objectives as agents on the real engine.

Agents `ttft`, `carbon`, `water`, `cost` (and `embodied` with `objective_embodied=true`: the embodied carbon
attributable to serving, `Config.objectives`) each see the epoch's observation (`rlenv.spaces`, the same for all)
and propose a plan (an action as in `rlenv.gym_env`: a Box [-1, 1] per (model, origin, datacenter), the plan
softmax(env_logit_scale x action)). The environment blends the proposals into the epoch's plan by the rule
`env_blend` chosen at construction, plays one epoch of the engine with it, and gives agent j its own objective's
reward -m_e[j] - env_sla_penalty x v_e (`rlenv.reward`). All agents end together after the last epoch.

Blend rules:
- `mean`: the equal-weight mean of the proposals (a convex mix of plans is a plan).
- `capital`: MARLIN's game without its critics (`schedulers.marlin.game`): each proposal's utility is minus
  its own objective's normalised metric under Simulate in the epoch's state (Algorithm 2 lines 1-3, Simulate
  standing in for the critic Q_j), shares softmax(utility / marlin_blend_temperature) (lines 4-5) times the
  agents' effective capital (line 6) weight the blend; after the epoch, capital is updated from Simulate's
  metrics of the proposals and the measured metrics of the blend (lines 20-24, `capital_update`). The
  gradient ascent on Q_tot and the vetoes (lines 7-18) need the agents' critics and are not played here.
"""
from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from rlenv.gym_env import SEED_BOUND, RunDriver
from rlenv.reward import EnvParams, epoch_state, normalized_metrics, objective_rewards, plan_from_action, raw_metrics
from rlenv.spaces import encode, observation_space
from schedulers.common import normalized_metrics as simulated_norm
from simcore.config import Config


class GeoLLMParallelEnv(ParallelEnv):
    """The run's objectives as agents (see the module docstring).

    :param cfg: the world and the run (default: `Config()`)
    :param params: `rlenv.reward.EnvParams` (`env_blend`: 'mean' or 'capital')
    """

    metadata = {"render_modes": [], "name": "marlin_geollm_v0"}

    def __init__(self, cfg: Config | None = None, params: EnvParams | None = None) -> None:
        self.cfg = cfg if cfg is not None else Config()
        self.params = params if params is not None else EnvParams()
        self.driver = RunDriver(self.cfg)
        self.possible_agents = list(self.cfg.objectives)
        self.agents: list = []
        self._obs_space = observation_space(self.driver.info)
        self._act_space = spaces.Box(-1.0, 1.0, shape=self.driver.info.plan_shape, dtype=np.float32)
        self._seeds: np.random.Generator | None = None
        if self.params.env_blend == "capital":
            from schedulers.marlin.scheduler import MarlinParams
            self.game_params = MarlinParams()
        self.capital = None

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return self._obs_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None or self._seeds is None:
            run_seed = self.cfg.seed if seed is None else seed
            self._seeds = np.random.default_rng(run_seed)
        else:
            run_seed = int(self._seeds.integers(SEED_BOUND))
        obs = encode(self.driver.start(run_seed), self.driver.info)
        self.agents = list(self.possible_agents)
        if self.params.env_blend == "capital":
            self.capital = np.full(len(self.agents), self.game_params.marlin_capital_start)
        return {a: obs for a in self.agents}, {a: {"epoch": 0, "seed": int(run_seed)} for a in self.agents}

    def blend(self, proposals: np.ndarray):
        """The epoch's plan from the proposals [J, M, O, D]; with 'capital', also Simulate's normalised metrics of
        each proposal [J, J] (for the capital update)."""
        if self.params.env_blend == "mean":
            return proposals.mean(axis=0), None
        from schedulers.marlin.game import effective_capital

        d = self.driver
        state = epoch_state(d.stepper.obs)
        ev = d.info.evaluator
        norm = simulated_norm(ev.evaluate(state, proposals), ev.evaluate(state, d.uniform), len(self.agents))
        q = -np.diag(norm)  # each agent's utility: minus its own objective on its own proposal
        z = q / self.game_params.marlin_blend_temperature
        u = np.exp(z - z.max())
        u /= u.sum()
        start = u * effective_capital(self.capital, np.asarray(self.cfg.objective_weights, dtype=float))
        omega = start / start.sum() if start.sum() > 0 else np.full(len(q), 1.0 / len(q))
        plan = np.tensordot(omega, proposals, axes=1)
        return plan / plan.sum(axis=-1, keepdims=True), norm

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError("GeoLLMParallelEnv.step: call reset() first (the episode is over)")
        d = self.driver
        proposals = np.stack([plan_from_action(actions[a], self.params.env_logit_scale) for a in self.agents])
        plan, prop_norm = self.blend(proposals)
        result, planned_in, nxt = d.play(plan)
        norm, sla_rate = normalized_metrics(result, planned_in, d.info.evaluator, d.uniform)
        if prop_norm is not None and norm is not None:
            from schedulers.marlin.game import capital_update
            self.capital = capital_update(self.capital, prop_norm, norm, self.game_params)[0]
        rewards = dict(zip(self.agents, objective_rewards(norm, sla_rate, self.params.env_sla_penalty,
                                                          len(self.agents)).tolist()))
        info = raw_metrics(result)
        info["sla_rate"] = sla_rate
        info.update({f"norm_{k}": float(norm[j]) if norm is not None else float("nan")
                     for j, k in enumerate(self.possible_agents)})
        done = d.stepper.done
        obs = encode(nxt if nxt is not None else planned_in, d.info)
        agents = self.agents
        out = ({a: obs for a in agents}, rewards, {a: done for a in agents}, {a: False for a in agents},
               {a: dict(info) for a in agents})
        if done:
            self.agents = []
        return out

    def record(self):
        """The finished run's `RunRecord` (None before the end)."""
        return self.driver.stepper.record
