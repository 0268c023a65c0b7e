"""Every parameter of the simulator, in one frozen dataclass, with the SPEC's default and its unit.

Field names carry their unit (`_s`, `_kwh`, `_l`, `_kg`, `_usd`, `_w`, `_gb`, ...); each field's `help`
metadata cites the SPEC / paper. Nothing else in the code holds a tunable number. `run.py` builds the CLI
overrides from these fields and writes the resolved object to `config.json`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simcore.errors import ConfigError

MODELS = ("Llama-2-7B", "Llama-2-70B")  # index 0 = ChatGPT-class, 1 = GPT-4-class (SPEC 3)
OBJECTIVES = ("ttft", "carbon", "water", "cost")  # the order of --weights (Eq. 11: w1..w4)
MIN_DCS, MAX_DCS = 4, 12
MARLIN_ABLATIONS = ("no-film", "no-her", "no-predictor", "no-blend", "no-sgd", "no-veto", "no-capital")


def _f(default: Any, help: str) -> Any:
    """A dataclass field with its help text (the CLI and the docs read it)."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for defaults")
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    # --- run -----------------------------------------------------------------------------------
    scheduler: str = _f("nearest", "scheduler name, entry point or dotted path module:Class")
    dcs: int = _f(8, "number of datacenters D, the first D of the SPEC 4 site order (4..12)")
    hours: float = _f(24.0, "simulated horizon in hours (a whole number of epochs)")
    epoch_s: float = _f(900.0, "epoch length t_e in seconds (SPEC 1: 15 minutes)")
    seed: int = _f(0, "the one seed every random stream is spawned from")
    start: str = _f("2023-07-03", "UTC date of epoch 0 for the grid/weather signals (2023 data)")
    weights: tuple = _f((0.25, 0.25, 0.25, 0.25), "Eq. 11 weights w1..w4 (TTFT, carbon, water, cost), sum 1")
    # --- workload (SPEC 3) ----------------------------------------------------------------------
    trace: str = _f("azure-code-2024", "bundled trace name (azure-code-2024, burstgpt-profile) or a CSV path")
    trace_day: str = _f("2024-05-13", "day of the bundled Azure 2024 code trace used for arrivals")
    load_scale: str = _f("auto", "arrival-rate multiplier, or 'auto' (the trace day's busiest epoch at "
                         "peak_utilization of the reference fleet's serving capacity; docs/model.md 'Load')")
    peak_utilization: float = _f(0.95, "auto load: share of the reference fleet's serving capacity the trace day's "
                                 "busiest epoch uses (paper section 6: 95 %)")
    reference_dcs: int = _f(8, "auto load: datacenters of the reference fleet (load is kept when --dcs changes)")
    cohort_size: str = _f("auto", "real requests each simulated request stands for: 1 = exact per-request "
                          "simulation, 'auto' = about cohort_auto_requests_per_day simulated per day "
                          "(docs/model.md 'Cohorts')")
    cohort_auto_requests_per_day: float = _f(1.2e6, "cohort_size auto: simulated requests per trace day aimed at")
    gpt4_share: float = _f(0.153, "share of GPT-4-class (Llama-2-70B) requests when a trace has no model column")
    # --- datacenters and nodes (SPEC 4) ---------------------------------------------------------
    nodes_per_dc: int = _f(1000, "nodes per datacenter, the six node types interleaved (shares differ by <= 1)")
    gpu_types: tuple = _f(("A100-80GB", "H100-80GB"), "GPU types")
    gpu_counts: tuple = _f((2, 4, 8), "GPUs per node")
    gpu_mem_gb: tuple = _f((80.0, 80.0), "HBM per GPU, GB, per GPU type")
    gpu_tdp_w: tuple = _f((400.0, 700.0), "GPU TDP in W, per GPU type")
    host_tdp_w_per_gpu: float = _f(150.0, "host power share per GPU, W (node TDP = GPUs x (GPU TDP + this))")
    gpu_hbm_tb_per_s: tuple = _f((2.0, 3.35), "HBM bandwidth per GPU, TB/s, per GPU type")
    gpu_tflops: tuple = _f((312.0, 989.0), "dense bf16 TFLOP/s per GPU, per GPU type")
    load_bw_gb_per_s: tuple = _f((7.0, 14.0), "BW_n: weight-load bandwidth of a node, GB/s, per GPU type")
    max_batch: int = _f(64, "most requests a node runs at once")
    prefill_mfu: float = _f(0.5, "roofline: model-FLOPs utilization of prefill where no profile exists")
    decode_bw_fraction: float = _f(0.7, "roofline: share of HBM bandwidth reached by decode")
    model_weights_gb: tuple = _f((13.5, 138.0), "MF_v: fp16 weights per model, GB (7B, 70B)")
    model_kv_mb_per_token: tuple = _f((0.5, 0.3125), "KV cache per token, MB, per model (70B uses GQA)")
    model_params_b: tuple = _f((6.74, 68.98), "parameters per model, billions (roofline FLOPs)")
    kv_tokens_for_fit: int = _f(4096, "a model is placed on a node only if weights + KV of this many tokens fit")
    decode_context_tokens: float = _f(1280.0, "roofline: mean context (tokens) whose KV each decode step reads")
    warm_target_utilization: float = _f(0.9, "warm set: nodes kept warm = predicted work / (node capacity x this) "
                                        "(docs/model.md 'Warm set')")
    min_warm_nodes: int = _f(1, "warm set: minimum warm nodes per hosted model per datacenter")
    cohort_bin_s: float = _f(60.0, "cohorts: pools are played in bins of this length, their cohorts arriving at a "
                             "constant rate within a bin (docs/model.md 'Cohorts'), s")
    # --- latency (SPEC 5, Eq. 2-3) --------------------------------------------------------------
    lambda_media_ms_per_km: float = _f(0.005, "propagation latency of the medium, ms per km (fibre)")
    sigma_hop_ms: float = _f(1.0, "processing latency per network hop, ms")
    backbone_neighbours: int = _f(3, "backbone: each location is linked to its k nearest neighbours")
    ttft_model: str = _f("eq3", "first-token compute: 'eq3' (LA_exec / T_i) or 'prefill' (prefill + one step)")
    sla_ttft_s: float = _f(2.0, "SLA: a TTFT above this is a violation, s")
    # --- energy (Eq. 4-6) -----------------------------------------------------------------------
    pc_parked: float = _f(0.05, "PC of a parked node (no request, not kept warm)")
    pc_pstates: tuple = _f((1.00, 0.80, 0.60, 0.40), "PC of P0, P1, P2, P3")
    pstate_busy_limits: tuple = _f((0.75, 0.5, 0.25), "busy-fraction upper limits of P1, P2, P3")
    cooling_multiplier: float = _f(3.0, "E_cool = this x E_CRAC (chiller + auxiliaries ~ CRAC)")
    infra_fraction: float = _f(0.13, "E_infra = this x E_IT")
    cop_mode: str = _f("annual", "COP_d from the site's 'annual' mean wet bulb or 'hourly'")
    cop_ref: float = _f(4.78, "COP at the reference wet bulb (HP Labs CRAC model at 25 C supply)")
    cop_slope_per_c: float = _f(0.02, "COP loss per degree C of wet bulb above the reference (assumption)")
    cop_ref_wet_bulb_c: float = _f(15.0, "reference wet-bulb temperature, C")
    cop_min: float = _f(2.0, "COP lower clamp")
    cop_max: float = _f(8.0, "COP upper clamp")
    # --- water and carbon (Eq. 8-10) ------------------------------------------------------------
    j_water_kj_per_kg: float = _f(2257.0, "latent heat of vaporization of water, kJ/kg (1 kg = 1 L)")
    phi: float = _f(0.2, "blowdown pollutant threshold (assumption): G_blow = G_E / (1 - phi)")
    ei_pot_kwh_per_l: float = _f(0.0005, "energy intensity of potable water production, kWh/L")
    ei_waste_kwh_per_l: float = _f(0.0006, "energy intensity of wastewater treatment, kWh/L")
    water_factors: str = _f("macknick2012", "per-fuel water factors for GI_d (Macknick et al. 2012 medians)")
    # --- predictor (section 5.1) ----------------------------------------------------------------
    predictor_window_epochs: int = _f(8, "tw: past epochs the predictor regresses on")
    predictor_ewma_alpha: float = _f(0.5, "EWMA weight of the newest epoch in the predictor's regression")
    predictor_mlp_hidden: tuple = _f((32, 32), "MLP baseline predictor: hidden layer widths")
    predictor_mlp_steps: int = _f(400, "MLP baseline predictor: Adam steps of the fit")
    predictor_mlp_lr: float = _f(3e-3, "MLP baseline predictor: Adam learning rate")
    predictor_mlp_batch: int = _f(256, "MLP baseline predictor: windows per minibatch")

    # --- Splitwise split execution (SPEC 10) ------------------------------------------------------
    splitwise_prompt_gpu: str = _f("H100-80GB", "Splitwise: GPU type of the prompt (prefill) pool")
    splitwise_token_gpu: str = _f("A100-80GB", "Splitwise: GPU type of the token (decode) pool")
    splitwise_prompt_node_share: float = _f(0.35, "Splitwise: share of a warm set given to the prompt pool")
    splitwise_kv_link_gb_per_s: float = _f(50.0, "Splitwise: KV-cache transfer bandwidth between nodes, GB/s "
                                           "(one 400 Gb/s InfiniBand link, as in Splitwise's DGX clusters)")
    # --- learning schedulers: shared reward and evaluator budget (SPEC 9-10) ---------------------
    plan_evaluations_per_epoch: int = _f(256, "Simulate budget per epoch of every search/learning scheduler")
    reward_ema_decay: float = _f(0.9, "reward EMA term: decay of the running mean of the weighted score")
    reward_eco_weight: float = _f(0.1, "reward ECO term: bonus per unit share of parked nodes")
    reward_sla_setpoint: float = _f(0.01, "reward penalty: SLA-violation share tolerated before the penalty")
    reward_sla_penalty: float = _f(10.0, "reward penalty: per unit of SLA-violation share above the set point")
    # --- baselines: Helix, PerLLM, NSGA-II, SLIT (SPEC 10) ---
    helix_capacity_share: float = _f(1.0, "Helix: share of a node type's peak throughput (nodes x concurrency x "
                                     "epoch / service time) offered as flow capacity")
    perllm_ucb_c: float = _f(0.5, "PerLLM: UCB exploration coefficient (reward units: weighted metric per request "
                             "relative to the fleet mean)")
    perllm_discount: float = _f(0.9, "PerLLM: discount of past arm statistics per epoch (discounted UCB for hourly "
                                "signals; 1.0 = the paper's stationary UCB)")
    perllm_sla_margin: float = _f(0.5, "PerLLM: a datacenter is feasible for an origin if 2 x LA_net + compute "
                                  "<= this x sla_ttft_s")
    perllm_max_sla_rate: float = _f(0.05, "PerLLM: a datacenter whose observed SLA-violation share exceeds this "
                                    "is infeasible next epoch")
    nsga2_pop_size: int = _f(32, "NSGA-II: population size (x nsga2_generations <= plan_evaluations_per_epoch)")
    nsga2_generations: int = _f(8, "NSGA-II: generations per epoch (the first evaluates the initial population)")
    nsga2_logit_bound: float = _f(4.0, "NSGA-II: genome = per-row logits in [-bound, bound], softmax -> plan row")
    nsga2_pick: str = _f("weights", "NSGA-II: final plan from the front: 'weights' (min weighted normalized "
                         "objectives) or 'knee' (farthest from the line of extremes)")
    slit_weights: tuple = _f((0.1, 0.4, 0.4, 0.1), "SLIT: its objective weights (TTFT, carbon, water, cost), "
                             "carbon and water first as in the paper; sum 1")
    slit_train_samples: int = _f(224, "SLIT: evaluator samples per epoch that train the surrogate")
    slit_verify: int = _f(32, "SLIT: surrogate-best GA candidates verified on the evaluator (+ train <= budget)")
    slit_memory_epochs: int = _f(8, "SLIT: epochs of past samples kept for the online surrogate refit")
    slit_ridge_alpha: float = _f(1e-3, "SLIT: ridge (L2) penalty of the surrogate regression")
    slit_pop_size: int = _f(64, "SLIT: GA population on the surrogate")
    slit_generations: int = _f(40, "SLIT: GA generations on the surrogate")
    slit_logit_bound: float = _f(4.0, "SLIT: genome = per-row logits in [-bound, bound], softmax -> plan row")
    slit_sample_sigma: float = _f(1.0, "SLIT: std of the logit noise around the incumbent for training samples")
    slit_explore_share: float = _f(0.5, "SLIT: share of training samples drawn at random (the rest near the "
                                   "incumbent plan)")
    # --- RL baselines (SPEC 10) ---
    qlearning_alpha: float = _f(0.3, "Q-Learning: step size of the tabular update Q += alpha (target - Q)")
    qlearning_gamma: float = _f(0.5, "Q-Learning: discount of max Q(next state) in the target (0 = contextual "
                                "bandit; a plan barely moves the next epoch's state)")
    qlearning_observed_alpha: float = _f(0.3, "Q-Learning: step size of the update from the measured epoch "
                                         "(observe); 0 = learn from Simulate only")
    qlearning_epsilon_start: float = _f(0.2, "Q-Learning: epsilon-greedy exploration at epoch 0")
    qlearning_epsilon_end: float = _f(0.02, "Q-Learning: epsilon after the decay")
    qlearning_epsilon_decay_epochs: int = _f(48, "Q-Learning: epochs of the linear epsilon decay")
    qlearning_load_edges: tuple = _f((0.15, 0.35, 0.65), "Q-Learning: state bin edges of the forecast load = "
                                     "predicted requests / (D x nodes_per_dc x requests_per_warm_node)")
    qlearning_hour_bins: int = _f(4, "Q-Learning: state bins of the hour of day (UTC)")
    ddqn_hidden: int = _f(64, "DDQN: hidden units of the two hidden layers of the Q-network")
    ddqn_lr: float = _f(1e-3, "DDQN: Adam learning rate")
    ddqn_gamma: float = _f(0.5, "DDQN: discount of the double-Q target (a plan barely moves the next state)")
    ddqn_buffer_size: int = _f(20000, "DDQN: replay buffer capacity (transitions)")
    ddqn_batch_size: int = _f(64, "DDQN: minibatch size")
    ddqn_updates_per_epoch: int = _f(16, "DDQN: gradient steps per epoch")
    ddqn_target_sync_steps: int = _f(100, "DDQN: gradient steps between hard copies online -> target network")
    ddqn_grad_clip: float = _f(10.0, "DDQN: gradient-norm clip")
    ddqn_epsilon_start: float = _f(0.5, "DDQN: epsilon-greedy exploration at epoch 0")
    ddqn_epsilon_end: float = _f(0.02, "DDQN: epsilon after the decay")
    ddqn_epsilon_decay_epochs: int = _f(48, "DDQN: epochs of the linear epsilon decay")
    ddqn_torch_threads: int = _f(1, "DDQN: torch CPU threads (small nets: 1 is fastest)")
    actorcritic_hidden: int = _f(64, "Actor-Critic: hidden units of the actor's and the critic's two hidden layers")
    actorcritic_lr_actor: float = _f(1e-2, "Actor-Critic: Adam learning rate of the actor")
    actorcritic_lr_critic: float = _f(1e-2, "Actor-Critic: Adam learning rate of the critic")
    actorcritic_samples_per_epoch: int = _f(256, "Actor-Critic: plans sampled from the policy and simulated per "
                                            "epoch (capped at plan_evaluations_per_epoch)")
    actorcritic_updates_per_epoch: int = _f(1, "Actor-Critic: gradient steps per epoch on the epoch's samples")
    actorcritic_entropy_coef: float = _f(1e-3, "Actor-Critic: weight of the policy-entropy bonus")
    actorcritic_init_log_std: float = _f(0.0, "Actor-Critic: initial log std of the Gaussian over plan logits")
    actorcritic_min_log_std: float = _f(-3.0, "Actor-Critic: lower clamp of the log std")
    actorcritic_max_log_std: float = _f(1.0, "Actor-Critic: upper clamp of the log std")
    actorcritic_grad_clip: float = _f(1.0, "Actor-Critic: gradient-norm clip")
    actorcritic_torch_threads: int = _f(1, "Actor-Critic: torch CPU threads (small nets: 1 is fastest)")
    # --- MARLIN (SPEC 9) ---
    marlin_actor_hidden: int = _f(128, "MARLIN: actor MLP hidden units (SPEC 9)")
    marlin_critic_hidden: int = _f(256, "MARLIN: twin-critic MLP hidden units (SPEC 9)")
    marlin_lr_actor: float = _f(3e-4, "MARLIN: actor learning rate (SPEC 9)")
    marlin_lr_critic: float = _f(1e-3, "MARLIN: critic learning rate (SPEC 9)")
    marlin_lr_alpha: float = _f(3e-4, "MARLIN: learning rate of the automatically tuned entropy temperature")
    marlin_alpha_init: float = _f(0.01, "MARLIN: initial SAC entropy temperature (reward units ~ 1)")
    marlin_target_entropy_scale: float = _f(1.0, "MARLIN: target entropy = -this x action size (SAC default 1)")
    marlin_gamma: float = _f(0.95, "MARLIN: SAC discount (SPEC 9); MARLIN stores one-step transitions (bandit view)")
    marlin_tau: float = _f(0.005, "MARLIN: Polyak rate of the target critics (SPEC 9)")
    marlin_replay_current: int = _f(20000, "MARLIN: current-epoch replay capacity per agent (SPEC 9)")
    marlin_replay_cross: int = _f(5000, "MARLIN: cross-epoch (HER) replay capacity per agent (SPEC 9)")
    marlin_current_share: float = _f(0.3, "MARLIN: share of a batch drawn from the current-epoch buffer (30/70)")
    marlin_batch_size: int = _f(64, "MARLIN: SAC batch size")
    marlin_updates_per_epoch: int = _f(32, "MARLIN: SAC gradient updates per agent per epoch")
    marlin_logit_scale: float = _f(6.0, "MARLIN: actions are logits in [-this, this] (tanh-squashed); plan = softmax")
    marlin_agent_dominant: float = _f(1.0, "MARLIN: weight of an agent's own objective in its reward, rest shared "
                                      "(1.0: each agent optimizes its single objective, paper section 5)")
    marlin_variant_dominant: float = _f(0.7, "MARLIN-Min* variants: weight of the variant's objective in the game")
    marlin_blend_temperature: float = _f(1.0, "MARLIN phase 2: softmax temperature turning utilities into shares")
    marlin_sgd_lr: float = _f(0.05, "MARLIN phase 2: gradient-ascent learning rate on Q_tot (SPEC 9)")
    marlin_sgd_steps: int = _f(5, "MARLIN phase 2: K_opt gradient-ascent steps on Q_tot (SPEC 9)")
    marlin_capital_start: float = _f(100.0, "MARLIN: initial capital of every agent, percent (SPEC 9)")
    marlin_capital_threshold: float = _f(150.0, "MARLIN: capital needed to veto, percent (SPEC 9)")
    marlin_capital_min: float = _f(0.0, "MARLIN: capital lower bound")
    marlin_capital_max: float = _f(300.0, "MARLIN: capital upper bound")
    marlin_capital_eta: float = _f(0.9, "MARLIN: capital update C = eta C + (1 - eta)(Perf + beta Bonus)")
    marlin_bonus_beta: float = _f(1.0, "MARLIN: bonus scaling factor beta of the capital update")
    marlin_veto_max: float = _f(0.5, "MARLIN: maximal veto pull toward the vetoing agent's plan (SPEC 9)")
    marlin_veto_delta: float = _f(0.05, "MARLIN: delta_thresh, relative utility loss that justifies a veto")
    marlin_veto_capital_scale: float = _f(100.0, "MARLIN: veto strength = min(veto_max, delta x capital / this)")
    marlin_ablate: tuple = _f((), "MARLIN ablations: any of " + ",".join(MARLIN_ABLATIONS))
    marlin_pretrain_days: int = _f(0, "MARLIN: pre-train the agents on this many other days of the bundled trace")
    marlin_checkpoint: str = _f("", "MARLIN: torch checkpoint; loaded if it exists, else written after pre-training")
    marlin_torch_threads: int = _f(1, "MARLIN: torch CPU threads while MARLIN learns (small nets: 1 is fastest)")

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        validate(self)

    @property
    def epochs(self) -> int:
        return int(round(self.hours * 3600.0 / self.epoch_s))

    @property
    def horizon_s(self) -> float:
        return self.epochs * self.epoch_s

    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> "Config":
        return from_dict({**self.to_dict(), **changes})


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def validate(c: Config) -> None:
    """Refuse impossible values with a message naming the parameter."""
    if not (MIN_DCS <= c.dcs <= MAX_DCS):
        raise ConfigError(f"--dcs {c.dcs}: must be between {MIN_DCS} and {MAX_DCS}")
    if c.epoch_s <= 0 or c.hours <= 0:
        raise ConfigError(f"hours ({c.hours}) and epoch_s ({c.epoch_s}) must be positive")
    if abs(c.hours * 3600.0 / c.epoch_s - c.epochs) > 1e-9:
        raise ConfigError(f"--hours {c.hours}: must be a whole number of {c.epoch_s:g}-s epochs")
    w = c.weights
    if len(w) != len(OBJECTIVES) or any((not math.isfinite(x)) or x < 0 for x in w):
        raise ConfigError(f"--weights {','.join(map(str, w))}: need 4 non-negative numbers (TTFT, carbon, water, cost)")
    if abs(sum(w) - 1.0) > 1e-6:
        raise ConfigError(f"--weights {','.join(map(str, w))}: must sum to 1 (they sum to {sum(w):g})")
    if c.cohort_size != "auto":
        try:
            cs = int(c.cohort_size)
        except ValueError:
            raise ConfigError(f"cohort_size {c.cohort_size!r}: must be 'auto' or a whole number >= 1") from None
        if cs < 1 or str(cs) != str(c.cohort_size).strip():
            raise ConfigError(f"cohort_size {c.cohort_size!r}: must be 'auto' or a whole number >= 1")
    if not (0 < c.warm_target_utilization <= 1):
        raise ConfigError(f"warm_target_utilization {c.warm_target_utilization}: must be in (0, 1]")
    if not (0 < c.peak_utilization and math.isfinite(c.peak_utilization)):
        raise ConfigError(f"peak_utilization {c.peak_utilization}: must be a positive number")
    if c.load_scale != "auto":
        try:
            ls = float(c.load_scale)
        except ValueError:
            raise ConfigError(f"--load-scale {c.load_scale!r}: must be 'auto' or a positive number") from None
        if not (ls > 0 and math.isfinite(ls)):
            raise ConfigError(f"--load-scale {c.load_scale!r}: must be 'auto' or a positive number")
    if c.ttft_model not in ("eq3", "prefill"):
        raise ConfigError(f"ttft_model {c.ttft_model!r}: must be 'eq3' or 'prefill'")
    if c.cop_mode not in ("annual", "hourly"):
        raise ConfigError(f"cop_mode {c.cop_mode!r}: must be 'annual' or 'hourly'")
    if not (0 <= c.phi < 1):
        raise ConfigError(f"phi {c.phi}: must be in [0, 1)")
    if c.nodes_per_dc < len(c.gpu_types) * len(c.gpu_counts):
        raise ConfigError(f"nodes_per_dc {c.nodes_per_dc}: need at least one node of each type")
    if not (0 <= c.gpt4_share <= 1):
        raise ConfigError(f"gpt4_share {c.gpt4_share}: must be in [0, 1]")
    for name in ("splitwise_prompt_gpu", "splitwise_token_gpu"):
        if getattr(c, name) not in c.gpu_types:
            raise ConfigError(f"{name} {getattr(c, name)!r}: must be one of {', '.join(c.gpu_types)}")
    if c.seed < 0:
        raise ConfigError(f"--seed {c.seed}: must be non-negative")
    bad = [a for a in c.marlin_ablate if a not in MARLIN_ABLATIONS]
    if bad:
        raise ConfigError(f"--ablate {','.join(map(str, bad))}: unknown switch; known: {','.join(MARLIN_ABLATIONS)}")
    if c.marlin_pretrain_days < 0:
        raise ConfigError(f"--pretrain-days {c.marlin_pretrain_days}: must be non-negative")


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def from_dict(d: dict, where: str = "config") -> Config:
    """Build a Config from plain values (JSON lists become tuples); unknown keys are refused."""
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}")
    vals = {}
    for k, v in d.items():
        default = _FIELDS[k].default
        try:
            if isinstance(default, tuple):
                v = tuple(type(default[0])(x) for x in v) if default else tuple(v)
            elif isinstance(default, bool):
                v = bool(v)
            elif isinstance(default, (int, float)) and not isinstance(v, str):
                v = type(default)(v)
            elif isinstance(default, (int, float)):
                v = type(default)(float(v)) if isinstance(default, float) else int(v)
            else:
                v = str(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: parameter {k}={v!r} is not a valid {type(default).__name__}") from None
        vals[k] = v
    return Config(**vals)


def load_json(path: str | Path) -> dict:
    """Read a JSON file of parameter overrides (flat, by field name)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p}: must hold one JSON object of parameters")
    return d


def help_table() -> list[tuple[str, Any, str]]:
    """(name, default, help) of every parameter, for docs and `run.py --list-params`."""
    return [(f.name, _jsonable(f.default), f.metadata["help"]) for f in dataclasses.fields(Config)]
