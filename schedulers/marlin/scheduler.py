"""The registered MARLIN schedulers (paper section 5; SPEC 9): `marlin` (= Balanced) and the four Min* variants.

Owns: `Marlin` (per epoch: phase 1 of `agents`, phase 2 of `game`, Simulate of the consensus, the capital
update, one row of the per-epoch log `marlin_epochs.csv`), the variants' weight vectors, the ablation
switches (`marlin_ablate`) and what pre-training carries (`learned`: the agents, their capital and the head-room; the
pre-training itself is every learner's, `simcore.training`). Its parameters: `MarlinParams`.

Feasible set (Algorithm 2 line 11; the paper's problem is solved "given resource constraints"): every plan MARLIN
simulates or executes, an agent's sample, its proposal or the consensus, is first repaired so that no datacenter
is planned above the shared head-room target (`feasibility.project_to_capacity` to `feasibility.Headroom.target`:
1 / (the observed burstiness `Headroom.peak_to_mean()` x (1 + fill_error_z x the observed forecast error of
MARLIN's own plans)), the ceiling fill-* plan up to; the forecast and the requests already waiting count). The
agents' actions, what their critics and the game score, stay the plans their actors produce: the repair is part
of executing a plan (`Marlin.feasible`).

Simulate check (`marlin_simulate_check`, off by default: the paper executes the consensus): when on, the consensus
is executed only where Simulate scores it, under the run's weights, no worse than each agent's proposal and the
incumbent; else the best of those (`Marlin._simulate_check`). It is off by default because with it the game's
consensus ran in 1 epoch of 96 (24 h, D = 4): MARLIN became "the best proposal", and the game's ablations changed
little of what executes.

Budgets per scored epoch (declared in the parameters, recorded in config.json, used per epoch in
marlin_epochs.csv): Simulate, `plan_evaluations_per_epoch` (256) covers every plan scored, the J x k_opt samples,
the J proposals, the consensus, the incumbent and the uniform reference each scoring call evaluates
(`Marlin.simulate_plans`); gradient steps, J x marlin_updates_per_epoch (4 x 32) <= `gradient_steps_per_epoch`
(128). Pre-training (`--pretrain-days`) learns on other days before the scored one and is not charged to it.

A fifth agent (`--set objective_embodied=true`): the run's objectives are `Config.objectives`, and MARLIN plays one
agent per objective, `embodied` (the embodied carbon attributable to serving, `simcore.evaluator`) beside the four;
the game's weights are `Config.objective_weights`; the five agents share the gradient-step budget
(gradient_steps_per_epoch // 5 updates each when 5 x marlin_updates_per_epoch would exceed it) and the Simulate
budget (k_opt = 48 samples each). With the objective off MARLIN is the paper's four agents, unchanged.

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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from schedulers.common import EvaluatorParams, EvaluatorScheduler
from schedulers.feasibility import Headroom, project_to_capacity, sla_score
from simcore.config import OBJECTIVES
from simcore.errors import ConfigError
from simcore.interface import Observation
from simcore.params import ANY_LENGTH, ordered, param

AGENT_NAMES = OBJECTIVES  # agent j optimizes objective j: ttft, carbon, water, cost
ABLATIONS = ("no-film", "no-her", "no-predictor", "no-blend", "no-sgd", "no-veto", "no-capital")


@dataclass(frozen=True)
class MarlinParams(EvaluatorParams):
    """The agents (SAC, replay, FiLM), the game (blend, SGD, veto, capital), ablations and pre-training
    (paper section 5; the hyperparameters of section 6)."""

    marlin_actor_hidden: int = param(128, "MARLIN: actor MLP hidden units (paper section 6)", lo=1)
    marlin_critic_hidden: int = param(256, "MARLIN: twin-critic MLP hidden units (paper section 6)", lo=1)
    marlin_lr_actor: float = param(3e-4, "MARLIN: actor learning rate (paper section 6)", lo=0, lo_open=True)
    marlin_lr_critic: float = param(1e-3, "MARLIN: critic learning rate (paper section 6)", lo=0, lo_open=True)
    marlin_lr_alpha: float = param(3e-4, "MARLIN: learning rate of the automatically tuned entropy temperature", lo=0)
    marlin_alpha_init: float = param(0.01, "MARLIN: initial SAC entropy temperature (reward units ~ 1)",
                                     lo=0, lo_open=True)
    marlin_target_entropy_scale: float = param(1.0, "MARLIN: target entropy = -this x action size (SAC default 1)")
    marlin_gamma: float = param(0.95, "MARLIN: SAC discount of the next epoch's soft value in the critics' target "
                                "(paper section 6; below 1: the day has no end the critics see)", lo=0, hi=1,
                                hi_open=True)
    marlin_tau: float = param(0.005, "MARLIN: Polyak rate of the target critics (paper section 6)",
                              lo=0, lo_open=True, hi=1)
    marlin_replay_current: int = param(20000, "MARLIN: current-epoch replay capacity per agent (paper section 6)", lo=1)
    marlin_replay_cross: int = param(5000, "MARLIN: cross-epoch (HER) replay capacity per agent (paper section 6)",
                                     lo=1)
    marlin_current_share: float = param(0.3, "MARLIN: share of a batch drawn from the current-epoch buffer (30/70)",
                                        lo=0, hi=1)
    marlin_batch_size: int = param(64, "MARLIN: SAC batch size", lo=1)
    marlin_updates_per_epoch: int = param(32, "MARLIN: SAC gradient updates per agent per epoch (the 4 agents "
                                          "together within gradient_steps_per_epoch)", lo=0)
    marlin_logit_scale: float = param(6.0, "MARLIN: actions are logits in [-this, this] (tanh-squashed); plan = "
                                      "softmax",
                                      lo=0, lo_open=True)
    marlin_agent_dominant: float = param(0.7, "MARLIN: weight of an agent's own objective in its reward, the rest "
                                         "shared (1.0: each agent optimizes its objective alone; 0.7: specialists "
                                         "whose proposals stay usable on the other objectives, so a blend of "
                                         "trained agents is not a blend of extremes; docs/model.md 'Training days')",
                                         lo=0, hi=1)
    marlin_variant_dominant: float = param(0.7, "MARLIN-Min* variants: weight of the variant's objective in the game",
                                           lo=0, hi=1)
    marlin_blend_temperature: float = param(1.0, "MARLIN phase 2: softmax temperature turning utilities into shares",
                                            lo=0, lo_open=True)
    marlin_sgd_lr: float = param(0.05, "MARLIN phase 2: gradient-ascent learning rate on Q_tot (paper section 6)", lo=0)
    marlin_sgd_steps: int = param(5, "MARLIN phase 2: K_opt gradient-ascent steps on Q_tot (paper section 6)", lo=0)
    marlin_capital_start: float = param(100.0, "MARLIN: initial capital of every agent, percent "
                                        "(schedulers/marlin/game.py)")
    marlin_capital_threshold: float = param(150.0, "MARLIN: capital needed to veto, percent (paper section 6)")
    marlin_capital_min: float = param(0.0, "MARLIN: capital lower bound")
    marlin_capital_max: float = param(300.0, "MARLIN: capital upper bound")
    marlin_capital_eta: float = param(0.9, "MARLIN: capital update C = eta C + (1 - eta)(Perf + beta Bonus)",
                                      lo=0, hi=1)
    marlin_bonus_beta: float = param(1.0, "MARLIN: bonus scaling factor beta of the capital update", lo=0)
    marlin_veto_max: float = param(0.5, "MARLIN: maximal veto pull toward the vetoing agent's plan (paper section 6)",
                                   lo=0, hi=1)
    marlin_veto_delta: float = param(0.05, "MARLIN: delta_thresh, relative utility loss that justifies a veto", lo=0)
    marlin_veto_capital_scale: float = param(100.0, "MARLIN: veto strength = min(veto_max, delta x capital / this)",
                                             lo=0, lo_open=True)
    marlin_simulate_check: bool = param(False, "MARLIN phase 2: execute the consensus only where Simulate scores it "
                                        "(the run's weights, SLA step included) no worse than every proposal and "
                                        "the incumbent, else the best of those (scores Simulate already computed)")
    marlin_ablate: tuple = param((), "MARLIN ablations: any of " + ",".join(ABLATIONS),
                                 choices=ABLATIONS, length=ANY_LENGTH, item=str, flag="--ablate")
    marlin_pretrain_days: int = param(0, "MARLIN: replaced by --train-days (every learner pre-trains, simcore.training); "
                                      "refused unless 0", lo=0, flag="--pretrain-days")
    marlin_checkpoint: str = param("", "MARLIN: replaced by --checkpoint-dir (cached pre-trained states of every "
                                   "learner); refused unless empty", flag="--checkpoint")
    marlin_torch_threads: int = param(1, "MARLIN: torch CPU threads while MARLIN learns (small nets: 1 is fastest)",
                                      lo=1)

    def validate(self) -> None:
        ordered(self, "marlin_capital_min", "marlin_capital_start", "marlin_capital_max")
        ordered(self, "marlin_capital_min", "marlin_capital_threshold", "marlin_capital_max")
        if self.marlin_pretrain_days:
            raise ConfigError("--pretrain-days (marlin_pretrain_days) is replaced by --train-days N: every learner, "
                              "MARLIN included, pre-trains on N other days of the bundled week through the engine")
        if self.marlin_checkpoint:
            raise ConfigError("--checkpoint (marlin_checkpoint) is replaced by --checkpoint-dir DIR: the pre-trained "
                              "states of every learner, cached by scheduler, parameters, seed, days and D")
        steps = len(AGENT_NAMES) * self.marlin_updates_per_epoch
        if steps > self.gradient_steps_per_epoch:
            raise ConfigError(f"marlin_updates_per_epoch={self.marlin_updates_per_epoch}: its {len(AGENT_NAMES)} "
                              f"agents take {steps} gradient steps per epoch, above gradient_steps_per_epoch="
                              f"{self.gradient_steps_per_epoch}")
        if simulate_plans(len(AGENT_NAMES), 1) > self.plan_evaluations_per_epoch:
            raise ConfigError(f"plan_evaluations_per_epoch={self.plan_evaluations_per_epoch}: MARLIN needs at least "
                              f"{simulate_plans(len(AGENT_NAMES), 1)} (one sample per agent)")


def simulate_plans(agents: int, k_opt: int) -> int:
    """Plans Simulate scores in one epoch of MARLIN: each agent's k_opt samples, the agents' proposals, the
    consensus and the incumbent, plus the uniform reference each of the agents + 3 scoring calls evaluates."""
    return agents * k_opt + agents + 2 + (agents + 3)


def variant_weights(variant: str | None, dominant: float, objectives: tuple = OBJECTIVES) -> np.ndarray:
    """The run's weights w_bar over `objectives`: objective `variant` at `dominant`, the rest equal; None =
    Balanced (equal)."""
    n = len(objectives)
    if variant is None:
        return np.full(n, 1.0 / n)
    w = np.full(n, (1.0 - dominant) / (n - 1))
    w[objectives.index(variant)] = dominant
    return w


class Marlin(EvaluatorScheduler):
    """MARLIN-Balanced; subclasses set `variant` to one objective for the Min* variants."""

    variant: str | None = None
    Params = MarlinParams
    # what pre-training carries (`simcore.training`): networks, optimizers, buffers, EMA baselines, capital and the
    # head-room learned from MARLIN's own plans
    learned = ("agents", "capital", "headroom")

    # --- setup ------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        import torch

        from schedulers.marlin.agents import agent_weights, make_agents
        from schedulers.rl.nets import feature_size

        p = self.params
        self.ablate = frozenset(p.marlin_ablate)
        cfg = self.evaluator.cfg
        # one agent per objective of the run: AGENT_NAMES, and `embodied` with objective_embodied (docs/model.md
        # 'Embodied carbon'); with four agents everything below is as the paper's MARLIN
        self.names = cfg.objectives
        J = len(self.names)
        # Balanced plays the run's --weights (equal by default, so the paper's Balanced is unchanged; with
        # objective_embodied, `Config.objective_weights`); the Min* variants keep their dominant objective. The
        # --weights sweep of Fig. 4 relies on this.
        self.variant_w = np.asarray(cfg.objective_weights, dtype=float) if self.variant is None \
            else variant_weights(self.variant, p.marlin_variant_dominant, self.names)
        self.capital = np.full(J, float(p.marlin_capital_start))
        self.log_rows: list = []
        # torch is seeded from the scheduler's stream only: same seed -> same networks and samples
        net_seed, sample_seed = (int(x) for x in self.rng.integers(0, 2**31 - 1, size=2))
        self.gen = torch.Generator().manual_seed(sample_seed)
        W = agent_weights(p.marlin_agent_dominant, J)
        # the agents share the gradient-step budget: a fifth agent takes what the four leave
        # (gradient_steps_per_epoch // J each when J x marlin_updates_per_epoch would exceed it)
        agent_p = p if J * p.marlin_updates_per_epoch <= p.gradient_steps_per_epoch else \
            dataclasses.replace(p, marlin_updates_per_epoch=p.gradient_steps_per_epoch // J)
        with self._torch_threads(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(net_seed)
            self.agents = make_agents(W, feature_size(self.info), self.info.plan_shape, agent_p,
                                      film="no-film" not in self.ablate)
        # phase 1 samples per agent: the most the Simulate budget allows beside the other plans scored
        self.k_opt = (p.plan_evaluations_per_epoch - simulate_plans(J, 0)) // J
        if self.k_opt < 1:
            raise ConfigError(f"plan_evaluations_per_epoch={p.plan_evaluations_per_epoch}: MARLIN's {J} agents "
                              f"need at least {simulate_plans(J, 1)} (one sample per agent)")
        self.headroom = Headroom(p)  # the observed error of MARLIN's own plans -> the capacity ceiling
        self.incumbent = self.uniform_plan  # the plan MARLIN would run anyway: the last one executed
        self._incumbent_norm = None  # its bounded metrics and SLA rate in this epoch's state (`incumbent_scores`)
        self._candidates: dict = {}  # the plans the Simulate check chose from this epoch (`_simulate_check`)

    @contextlib.contextmanager
    def _torch_threads(self):
        """Small networks run fastest on few threads; restore the caller's setting afterwards."""
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(self.params.marlin_torch_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    # --- one epoch --------------------------------------------------------------------------------------------
    def plan(self, obs: Observation) -> np.ndarray:
        from schedulers.marlin.agents import phase1
        from schedulers.marlin.game import capital_update, phase2
        from schedulers.rl.nets import state_features

        self.headroom.learn(obs.last)
        obs = self._forecast(obs)
        state = self.epoch_state(obs)  # Algorithm 1 lines 1-2: State_e with the forecast I_e
        obs_vec = state_features(obs, self.info)
        steps_before = self.agents[0].updates
        with self._torch_threads(), self._frozen_agents():
            p1 = phase1(self.agents, obs_vec, state, self.score_feasible, self.k_opt, "no-her" not in self.ablate,
                        self.rng, self.gen, self.incumbent_scores(state))
            game = phase2(self.agents, obs_vec, p1["plans"], self.capital, self.variant_w, self.params, self.ablate)
        # Algorithm 2 line 11's feasible set includes capacity; line 19: Simulate the consensus; 20-24: capital
        plan = self.feasible(state, game.plan)
        _, blend_norm, blend_ev = self.score_plans(state, plan[None], self.variant_w)
        capital_before = self.capital.copy()
        if "no-capital" not in self.ablate and not self.frozen:
            self.capital, _, _ = capital_update(self.capital, p1["norm"], blend_norm[0], self.params)
        moved = np.abs(plan - game.plan).sum(axis=2) * state.predicted / 2  # requests the repair moved
        executed, scores = self._simulate_check(state, plan, blend_norm[0], blend_ev, p1)
        self._log(obs.epoch, p1["norm"], blend_norm[0], game, capital_before,
                  float(moved.sum() / max(float(state.predicted.sum()), 1e-12)),
                  (self.agents[0].updates - steps_before) * len(self.agents), executed, scores)
        plan = self._candidates[executed]
        self.incumbent = plan
        self.headroom.record(plan, obs.predicted_requests, obs.epoch)
        return plan

    @contextlib.contextmanager
    def _frozen_agents(self):
        """Frozen (the trained protocol's frozen test day, `--test-learning frozen`): phase 1 samples, scores and
        proposes as ever, but takes no gradient step, stores no transition and keeps each agent's EMA."""
        if not self.frozen:
            yield
            return
        kept = [(a.params, a.ema) for a in self.agents]
        for a in self.agents:
            a.params, a.pending = dataclasses.replace(a.params, marlin_updates_per_epoch=0), None
        try:
            yield
        finally:
            for a, (params, ema) in zip(self.agents, kept):
                a.params, a.ema, a.pending = params, ema, None

    def _simulate_check(self, state, consensus: np.ndarray, blend_norm: np.ndarray, blend_ev, p1: dict) -> tuple:
        """The plan to execute (its name) and the bounded scores of the candidates: the consensus, unless
        `marlin_simulate_check` and Simulate scores a proposal or the incumbent better under the run's weights
        (`feasibility.sla_score`: Eq. 11's weighted sum, every SLA-violating plan above every feasible one).

        Why: the game's utilities and its ascent on Q_tot score the proposals and their blends with each agent's
        critic, which has only ever seen its own actor's plans; and with near-linear metrics a convex blend scores
        about the omega-weighted mean of its proposals, so it cannot beat the best of them. Once the agents are
        trained specialists (the trained protocol) the blend of their extreme plans is worse than their best
        proposal (6 h, D = 4: 0.835 vs 0.774 of uniform). Simulate already scored every candidate (line 13 the
        proposals, line 19 the consensus, the incumbent for the EMA): no Simulate call is added."""
        from schedulers.common import sla_rate, weighted_score

        cands = {"consensus": consensus}
        norms, evs = [blend_norm[None]], [sla_rate(state, blend_ev)]
        if self.params.marlin_simulate_check:
            for j, name in enumerate(self.names):
                cands[f"proposal_{name}"] = self.feasible(state, p1["plans"][j:j + 1])[0]
            norms.append(p1["norm"])
            evs.append(sla_rate(state, p1["ev"]))
            if self._incumbent_norm is not None:
                cands["incumbent"] = self.feasible(state, self.incumbent[None])[0]
                norms.append(self._incumbent_norm[0])
                evs.append(self._incumbent_norm[1])
        scores = sla_score(weighted_score(np.concatenate(norms), self.variant_w), np.concatenate(evs), self.params)
        self._candidates = cands
        return list(cands)[int(np.argmin(scores))], scores

    def incumbent_scores(self, state) -> np.ndarray:
        """[J] the bounded score (`feasibility.sla_score`) of the incumbent, the plan MARLIN executed last (the
        uniform plan before any), in this epoch's state under each agent's weights: what each agent's EMA term
        tracks (one Simulate call)."""
        from schedulers.common import sla_rate, weighted_score

        _, norm, ev = self.score_feasible(state, self.incumbent[None], self.variant_w)
        rate = sla_rate(state, ev)
        self._incumbent_norm = (norm, rate)  # a candidate of the Simulate check (`_simulate_check`)
        return np.array([float(sla_score(weighted_score(norm, a.w), rate, self.params)[0]) for a in self.agents])

    # --- the capacity-feasible set ------------------------------------------------------------------------------
    def feasible(self, state, plans: np.ndarray) -> np.ndarray:
        """Plans repaired to the head-room target for the epoch's forecast (`feasibility.project_to_capacity` to
        `Headroom.target()`: room for the forecast's observed error and the within-epoch peak, as fill-* keep).

        An agent's action stays the plan its actor produced (what its critic and the game score); the repair is
        part of executing it, like the balancer inside a datacenter. Without it, the optimum of an objective that
        prefers one datacenter lies on that datacenter's capacity edge, where a plan a few percent beyond makes
        almost every request wait minutes (the fluid backlog of a whole epoch): a cliff in the reward that the
        agents' exploration keeps crossing and that their critics, fitting it with a few samples, spread into a
        slope over all plans (tests/test_marlin.py::test_mincarbon_sends_most_load_to_the_green_cheap_datacenter).
        """
        return project_to_capacity(plans, state.predicted, self.info.capacity.requests_per_epoch,
                                   self.headroom.target(), state.queued)

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
             repaired: float, gradient_steps: int, executed: str, scores: np.ndarray) -> None:
        row = {"epoch": epoch, "capacity_repair": repaired, "headroom_target": self.headroom.target(),
               "simulate_plans": simulate_plans(len(self.agents), self.k_opt), "gradient_steps": gradient_steps,
               "executed": executed, "executed_score": float(scores.min()), "consensus_score": float(scores[0])}
        for j, a in enumerate(self.names):  # agent j optimizes objective j
            for k, m in enumerate(self.names):
                row[f"proposal_{a}_{m}"] = float(prop_norm[j, k])
        for k, m in enumerate(self.names):
            row[f"blend_{m}"] = float(blend_norm[k])
        row["vetoes"] = ";".join(f"{a}:{game.veto[j]:.3f}" for j, a in enumerate(self.names) if game.veto[j] > 0)
        for j, a in enumerate(self.names):
            row[f"veto_{a}"] = float(game.veto[j])
            row[f"capital_{a}"] = float(capital_before[j])
            row[f"blend_weight_{a}"] = float(game.omega[j])
            row[f"utility_{a}"] = float(game.utilities[j])
        self.log_rows.append(row)

    def state_dict(self):
        """The learned state at the end of a day: the day's last samples are stored first, with no successor
        state (done = 1), as a day replay ends."""
        for a in self.agents:
            a.complete(None)
        return super().state_dict()

    def extra_results(self) -> dict:
        """`marlin_epochs.csv`: per epoch, the share of the forecast requests the capacity repair moved off the
        consensus (`capacity_repair`), the head-room target it repaired to (`headroom_target`), the plans Simulate
        scored (`simulate_plans`) and the gradient steps taken (`gradient_steps`, all agents), the plan executed
        (`executed`: consensus, proposal_<agent> or incumbent, by the Simulate check) with its bounded score and the
        consensus's (`executed_score`, `consensus_score`), every proposal's
        bounded normalized metrics (1.0 = the uniform plan), the consensus's, the vetoes, each agent's capital at
        the start of the game, blend weights and utilities."""
        return {"marlin_epochs": pd.DataFrame(self.log_rows)}


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
