"""The registered MARLIN schedulers (paper section 5; SPEC 9): `marlin` (= Balanced) and the four Min* variants.

Owns: `Marlin` (per epoch: phase 1 of `agents`, phase 2 of `game`, Simulate of the consensus, the capital
update, one row of the per-epoch log `marlin_epochs.csv`), the variants' weight vectors, the ablation
switches (Config.marlin_ablate), pre-training on other days of the bundled trace and torch checkpoints.

Feasible set (Algorithm 2 line 11; the paper's problem is solved "given resource constraints"): every plan MARLIN
simulates or executes, an agent's sample, its proposal or the consensus, is first repaired so that no datacenter
is planned above `marlin_capacity_ceiling` of its serving capacity (`common.capacity_feasible`; the forecast and
the requests already waiting count). The agents' actions, what their critics and the game score, stay the plans
their actors produce: the repair is part of executing a plan (`Marlin.feasible`).

Ablations, each removing its component:
  no-film       the actor's FiLM layer is the identity (the actor ignores the weight vector)
  no-her        no cross-labelling: B_cross receives only the agent's own transitions
  no-predictor  the forecast is replaced by a flat one: last epoch's observed total requests (all datacenters)
                spread evenly over the (model, origin) rows (zero at epoch 0), in the state and in Simulate
  no-blend      no game: the consensus is the variant's agent's proposal (Balanced: the equal-weight average)
  no-sgd        no gradient steps on Q_tot: the blend weights stay at omega_1
  no-veto       no vetoes
  no-capital    capital stays at marlin_capital_start (no update); weights then come from the variant alone
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from schedulers.common import EvaluatorScheduler, capacity_feasible
from simcore.config import OBJECTIVES
from simcore.errors import ConfigError
from simcore.interface import Observation

AGENT_NAMES = OBJECTIVES  # agent j optimizes objective j: ttft, carbon, water, cost
CHECKPOINT_VERSION = 1


def variant_weights(variant: str | None, dominant: float) -> np.ndarray:
    """The run's weights w_bar: objective `variant` at `dominant`, the rest equal; None = Balanced (equal)."""
    n = len(OBJECTIVES)
    if variant is None:
        return np.full(n, 1.0 / n)
    w = np.full(n, (1.0 - dominant) / (n - 1))
    w[OBJECTIVES.index(variant)] = dominant
    return w


class Marlin(EvaluatorScheduler):
    """MARLIN-Balanced; subclasses set `variant` to one objective for the Min* variants."""

    variant: str | None = None

    # --- setup ------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        import torch

        from schedulers.marlin.agents import agent_weights, make_agents
        from schedulers.rl.nets import feature_size

        cfg = self.info.cfg
        self.ablate = frozenset(cfg.marlin_ablate)
        # Balanced plays the run's --weights (equal by default, so the paper's Balanced is unchanged); the Min*
        # variants keep their dominant objective. The --weights sweep of Fig. 4 relies on this.
        self.variant_w = np.asarray(cfg.weights, dtype=float) if self.variant is None \
            else variant_weights(self.variant, cfg.marlin_variant_dominant)
        self.capital = np.full(len(AGENT_NAMES), float(cfg.marlin_capital_start))
        self.log_rows: list = []
        # torch is seeded from the scheduler's stream only: same seed -> same networks and samples
        net_seed, sample_seed = (int(x) for x in self.rng.integers(0, 2**31 - 1, size=2))
        self.gen = torch.Generator().manual_seed(sample_seed)
        W = agent_weights(cfg.marlin_agent_dominant)
        with self._torch_threads(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(net_seed)
            self.agents = make_agents(W, feature_size(self.info), self.info.plan_shape, cfg,
                                      film="no-film" not in self.ablate)
        # phase 1 samples per agent: the shared Simulate budget less the J proposals and the consensus
        self.k_opt = max(1, (cfg.plan_evaluations_per_epoch - len(self.agents) - 1) // len(self.agents))
        self._pretrain_or_load()

    @contextlib.contextmanager
    def _torch_threads(self):
        """Small networks run fastest on few threads; restore the caller's setting afterwards."""
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(self.info.cfg.marlin_torch_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    # --- one epoch --------------------------------------------------------------------------------------------
    def plan(self, obs: Observation) -> np.ndarray:
        from schedulers.marlin.agents import phase1
        from schedulers.marlin.game import capital_update, phase2
        from schedulers.rl.nets import state_features

        cfg = self.info.cfg
        obs = self._forecast(obs)
        state = self.epoch_state(obs)  # Algorithm 1 lines 1-2: State_e with the forecast I_e
        obs_vec = state_features(obs, self.info)
        with self._torch_threads():
            p1 = phase1(self.agents, obs_vec, state, self.score_feasible, self.k_opt, "no-her" not in self.ablate,
                        self.rng, self.gen)
            game = phase2(self.agents, obs_vec, p1["plans"], self.capital, self.variant_w, cfg, self.ablate)
        # Algorithm 2 line 11's feasible set includes capacity; line 19: Simulate the consensus; 20-24: capital
        plan = self.feasible(state, game.plan)
        _, blend_norm, _ = self.score_plans(state, plan[None], self.variant_w)
        capital_before = self.capital.copy()
        if "no-capital" not in self.ablate:
            self.capital, _, _ = capital_update(self.capital, p1["norm"], blend_norm[0], cfg)
        moved = np.abs(plan - game.plan).sum(axis=2) * state.predicted / 2  # requests the repair moved
        self._log(obs.epoch, p1["norm"], blend_norm[0], game, capital_before,
                  float(moved.sum() / max(float(state.predicted.sum()), 1e-12)))
        return plan

    # --- the capacity-feasible set ------------------------------------------------------------------------------
    def feasible(self, state, plans: np.ndarray) -> np.ndarray:
        """Plans repaired to the capacity ceiling for the epoch's forecast (`common.capacity_feasible`).

        An agent's action stays the plan its actor produced (what its critic and the game score); the repair is
        part of executing it, like the balancer inside a datacenter. Without it, the optimum of an objective that
        prefers one datacenter lies on that datacenter's capacity edge, where a plan a few percent beyond makes
        almost every request wait minutes (the fluid backlog of a whole epoch): a cliff in the reward that the
        agents' exploration keeps crossing and that their critics, fitting it with a few samples, spread into a
        slope over all plans (tests/test_marlin.py::test_mincarbon_sends_most_load_to_the_green_cheap_datacenter).
        """
        return capacity_feasible(plans, state.predicted, self.info.capacity.requests_per_epoch,
                                 self.info.cfg.marlin_capacity_ceiling, state.queued)

    def score_feasible(self, state, plans: np.ndarray, weights, ema: float | None = None):
        """`score_plans` of the plans as executed: repaired to the capacity ceiling first."""
        return self.score_plans(state, self.feasible(state, plans), weights, ema)

    def _forecast(self, obs: Observation) -> Observation:
        """no-predictor: a flat forecast from the last epoch's observed total instead of the predictor's."""
        if "no-predictor" not in self.ablate:
            return obs
        m, o, _ = self.info.plan_shape
        total = 0.0 if obs.last is None else float(np.sum(obs.last.requests))
        return dataclasses.replace(obs, predicted_requests=np.full((m, o), total / (m * o)))

    # --- the per-epoch log --------------------------------------------------------------------------------------
    def _log(self, epoch: int, prop_norm: np.ndarray, blend_norm: np.ndarray, game, capital_before,
             repaired: float) -> None:
        row = {"epoch": epoch, "capacity_repair": repaired}
        for j, a in enumerate(AGENT_NAMES):
            for k, m in enumerate(OBJECTIVES):
                row[f"proposal_{a}_{m}"] = float(prop_norm[j, k])
        for k, m in enumerate(OBJECTIVES):
            row[f"blend_{m}"] = float(blend_norm[k])
        row["vetoes"] = ";".join(f"{a}:{game.veto[j]:.3f}" for j, a in enumerate(AGENT_NAMES) if game.veto[j] > 0)
        for j, a in enumerate(AGENT_NAMES):
            row[f"veto_{a}"] = float(game.veto[j])
            row[f"capital_{a}"] = float(capital_before[j])
            row[f"blend_weight_{a}"] = float(game.omega[j])
            row[f"utility_{a}"] = float(game.utilities[j])
        self.log_rows.append(row)

    def extra_results(self) -> dict:
        """`marlin_epochs.csv`: per epoch, the share of the forecast requests the capacity repair moved off the
        consensus (`capacity_repair`), every proposal's normalized metrics (1.0 = the uniform plan), the
        consensus's, the vetoes, each agent's capital at the start of the game, blend weights and utilities."""
        return {"marlin_epochs": pd.DataFrame(self.log_rows)}

    # --- pre-training and checkpoints ---------------------------------------------------------------------------
    def _pretrain_or_load(self) -> None:
        cfg = self.info.cfg
        path = Path(cfg.marlin_checkpoint) if cfg.marlin_checkpoint else None
        if path is not None and path.exists():
            self.load_checkpoint(path)
            return
        if cfg.marlin_pretrain_days > 0:
            self.pretrain(cfg.marlin_pretrain_days)
        if path is not None:
            self.save_checkpoint(path)

    def pretrain(self, days: int) -> None:
        """Phase 1 learning on the epochs of `days` other days of the bundled trace (the days before
        cfg.trace_day, nearest first, then the days after), with this run's site signals; evaluator only."""
        from schedulers.marlin.agents import phase1
        from schedulers.rl.nets import state_features
        from simcore.predictor import EwmaRegression
        from simcore.rng import stream
        from topology.sites import site_signals
        from traces.loader import bundled_counts, load_workload

        cfg = self.info.cfg
        all_days = bundled_counts()[0]
        if cfg.trace_day not in all_days:
            raise ConfigError(f"--pretrain-days: trace day {cfg.trace_day} is not in the bundled trace")
        i = all_days.index(cfg.trace_day)
        others = list(all_days[:i][::-1]) + list(all_days[i + 1:])
        if days > len(others):
            raise ConfigError(f"--pretrain-days {days}: the bundled trace has only {len(others)} other days")
        sig = site_signals(cfg)
        m, o, d = self.info.plan_shape
        for day in others[:days]:
            day_cfg = cfg.replace(trace_day=day)
            wl = load_workload(day_cfg, stream(cfg.seed, "trace"))
            e_idx = np.minimum((wl.t_s // cfg.epoch_s).astype(np.int64), cfg.epochs - 1)
            ok = ~wl.failed
            counts = np.zeros((cfg.epochs, m, o))
            np.add.at(counts, (e_idx[ok], wl.model[ok].astype(int), wl.origin[ok].astype(int)), 1)
            pred = EwmaRegression(cfg.predictor_window_epochs, cfg.predictor_ewma_alpha)
            for e in range(cfg.epochs):
                fc = pred.predict()
                obs = Observation(
                    epoch=e, time_s=e * cfg.epoch_s, predicted_requests=np.zeros((m, o)) if fc is None else fc,
                    free_nodes=np.full(d, cfg.nodes_per_dc), resident_nodes=None, queued=np.zeros(d, dtype=int),
                    ci_kg_per_kwh=sig.ci_kg_per_kwh[e], gi_l_per_kwh=sig.gi_l_per_kwh,
                    tou_usd_per_kwh=sig.tou_usd_per_kwh[e], cop=sig.cop[e], last=None)
                state = self.epoch_state(obs)
                with self._torch_threads():
                    phase1(self.agents, state_features(obs, self.info), state, self.score_feasible, self.k_opt,
                           "no-her" not in self.ablate, self.rng, self.gen)
                pred.update(counts[e])

    def save_checkpoint(self, path: Path) -> None:
        import torch
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {"version": CHECKPOINT_VERSION, "plan_shape": tuple(self.info.plan_shape),
                "film": "no-film" not in self.ablate, "agents": [a.sac.state_dict() for a in self.agents],
                "ema": [a.ema for a in self.agents]}
        tmp = path.with_name(path.name + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)

    def load_checkpoint(self, path: Path) -> None:
        import torch
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # a corrupt or foreign file: one clear line, not a traceback
            raise ConfigError(f"--checkpoint {path}: cannot read a MARLIN checkpoint ({type(e).__name__})") from None
        if not isinstance(blob, dict) or blob.get("version") != CHECKPOINT_VERSION:
            raise ConfigError(f"--checkpoint {path}: not a MARLIN checkpoint (version {CHECKPOINT_VERSION})")
        if tuple(blob["plan_shape"]) != tuple(self.info.plan_shape) or blob["film"] != ("no-film" not in self.ablate):
            raise ConfigError(f"--checkpoint {path}: saved for plan shape {tuple(blob['plan_shape'])}, film="
                              f"{blob['film']}; this run has {tuple(self.info.plan_shape)}, "
                              f"film={'no-film' not in self.ablate}")
        for a, sd, ema in zip(self.agents, blob["agents"], blob["ema"]):
            a.sac.load_state_dict(sd)
            a.ema = ema


class MarlinBalanced(Marlin):
    """MARLIN-Balanced: the run's --weights (equal by default)."""


class MarlinMinLatency(Marlin):
    variant = "ttft"


class MarlinMinCarbon(Marlin):
    variant = "carbon"


class MarlinMinWater(Marlin):
    variant = "water"


class MarlinMinCost(Marlin):
    variant = "cost"
