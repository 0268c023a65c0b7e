"""Every parameter of the simulator, in one frozen dataclass, with its default and its unit.

Field names carry their unit (`_s`, `_kwh`, `_l`, `_kg`, `_usd`, `_w`, `_gb`, ...); each field's `help`
metadata cites docs/model.md / the paper. Nothing else in the code holds a tunable number. `run.py` builds the CLI
overrides from these fields and writes the resolved object to `config.json`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simcore.errors import ConfigError

MODELS = ("Llama-2-7B", "Llama-2-70B")  # index 0 = ChatGPT-class, 1 = GPT-4-class (docs/model.md 'Workload')
OBJECTIVES = ("ttft", "carbon", "water", "cost")  # the order of --weights (Eq. 11: w1..w4)
MIN_DCS, MAX_DCS = 4, 12
MARLIN_ABLATIONS = ("no-film", "no-her", "no-predictor", "no-blend", "no-sgd", "no-veto", "no-capital")


ANY_LENGTH = "any"  # `length=ANY_LENGTH`: a tuple of one or more entries
MAX_NODES_PER_DC = 100_000  # per-node state is kept in Python lists (about 1 KB per node)
MAX_HOURS = 8760.0  # one year: the grid and weather signals cover 2023
MAX_PEAK_UTILIZATION = 2.0  # auto load may overload the reference fleet up to twice its capacity
MAX_INT = 2**63 - 1  # integer parameters fit a 64-bit integer (numpy, seeds)


@dataclass(frozen=True)
class Allowed:
    """What a field accepts, declared with the field (`_f(..., lo=0, lo_open=True)`) and checked by `validate`.

    :param lo, hi: bounds of a number, or of every entry of a tuple (None = unbounded); closed unless `lo_open`
        / `hi_open`
    :param choices: the values a string (or every entry of a tuple of strings) may take
    :param length: a tuple's number of entries: an int, the name of another tuple field whose length it must
        match, or ANY_LENGTH (one or more); default: the length of the field's default
    :param item: the type of a tuple's entries where the default is empty
    :param flag: the command-line flag that sets the field, used in messages instead of `name=value`
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    length: int | str | None = None
    item: type | None = None
    flag: str | None = None


def _f(default: Any, help: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
       hi_open: bool = False, choices: tuple | None = None, length: int | str | None = None,
       item: type | None = None, flag: str | None = None) -> Any:
    """A dataclass field with its help text (the CLI and the docs read it) and what it accepts (`Allowed`):
    type from the annotation, numbers finite, plus the bounds, choices and tuple length given here."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for defaults")
    allowed = Allowed(lo, hi, lo_open, hi_open, choices, length, item, flag)
    return field(default=default, metadata={"help": help, "allowed": allowed})


@dataclass(frozen=True)
class Config:
    # --- run -----------------------------------------------------------------------------------
    scheduler: str = _f("nearest", "scheduler name, entry point or dotted path module:Class")
    dcs: int = _f(8, "number of datacenters D, the first D of the site order (docs/model.md 'Sites') (4..12)",
                  lo=MIN_DCS, hi=MAX_DCS, flag="--dcs")
    hours: float = _f(24.0, "simulated horizon in hours (a whole number of epochs)",
                      lo=0, lo_open=True, hi=MAX_HOURS, flag="--hours")
    epoch_s: float = _f(900.0, "epoch length t_e in seconds (the paper's 15 minutes; docs/model.md 'Conventions')",
                        lo=60, hi=86400)
    seed: int = _f(0, "the one seed every random stream is spawned from", lo=0, flag="--seed")
    start: str = _f("2023-07-03", "UTC date of epoch 0 for the grid/weather signals (2023 data)", flag="--start")
    weights: tuple = _f((0.25, 0.25, 0.25, 0.25), "Eq. 11 weights w1..w4 (TTFT, carbon, water, cost), sum 1",
                        lo=0, flag="--weights")
    # --- workload (docs/model.md 'Workload', 'Load', 'Cohorts') -----------------------------------
    trace: str = _f("azure-code-2024", "bundled trace name (azure-code-2024, burstgpt-profile) or a CSV path",
                    flag="--trace")
    trace_day: str = _f("2024-05-13", "day of the bundled Azure 2024 code trace used for arrivals")
    load_scale: str = _f("auto", "arrival-rate multiplier, or 'auto' (the trace day's busiest epoch at "
                         "peak_utilization of the reference fleet's serving capacity; docs/model.md 'Load')",
                         flag="--load-scale")
    peak_utilization: float = _f(0.95, "auto load: share of the reference fleet's serving capacity the trace day's "
                                 "busiest epoch uses (paper section 6: 95 %)", lo=0, lo_open=True, hi=MAX_PEAK_UTILIZATION)
    reference_dcs: int = _f(8, "auto load: datacenters of the reference fleet (load is kept when --dcs changes)",
                            lo=1, hi=MAX_DCS)
    cohort_size: str = _f("auto", "real requests each simulated request stands for: 1 = exact per-request "
                          "simulation, 'auto' = about cohort_auto_requests_per_day simulated per day "
                          "(docs/model.md 'Cohorts')", flag="--cohort-size")
    cohort_auto_requests_per_day: float = _f(1.2e6, "cohort_size auto: simulated requests per trace day aimed at",
                                             lo=1)
    gpt4_share: float = _f(0.153, "share of GPT-4-class (Llama-2-70B) requests when a trace has no model column",
                           lo=0, hi=1)
    model_context_tokens: tuple = _f((4096, 4096), "context window per model, tokens (Llama-2: 4,096)", lo=1)
    context_policy: str = _f("clip", "a prompt longer than its model's context window: 'clip' it to the window, "
                             "'drop' the request, or 'refuse' the trace; clipped or dropped requests are counted "
                             "in summary.json (requests_over_context)", choices=("clip", "drop", "refuse"))
    max_workload_requests: int = _f(20_000_000, "most requests a run's workload may hold (trace x load scale); "
                                    "more is refused before it is generated (the engine keeps ~0.6 KB per "
                                    "request)", lo=1)
    # --- datacenters and nodes (docs/model.md 'Capacity', 'Warm set') ----------------------------
    nodes_per_dc: int = _f(1000, "nodes per datacenter, the six node types interleaved (shares differ by <= 1)",
                           lo=1, hi=MAX_NODES_PER_DC)
    gpu_types: tuple = _f(("A100-80GB", "H100-80GB"), "GPU types", length=ANY_LENGTH)
    gpu_counts: tuple = _f((2, 4, 8), "GPUs per node", lo=1, length=ANY_LENGTH)
    gpu_mem_gb: tuple = _f((80.0, 80.0), "HBM per GPU, GB, per GPU type", lo=0, lo_open=True, length="gpu_types")
    gpu_tdp_w: tuple = _f((400.0, 700.0), "GPU TDP in W, per GPU type", lo=0, lo_open=True, length="gpu_types")
    host_tdp_w_per_gpu: float = _f(150.0, "host power share per GPU, W (node TDP = GPUs x (GPU TDP + this))", lo=0)
    gpu_hbm_tb_per_s: tuple = _f((2.0, 3.35), "HBM bandwidth per GPU, TB/s, per GPU type",
                                 lo=0, lo_open=True, length="gpu_types")
    gpu_tflops: tuple = _f((312.0, 989.0), "dense bf16 TFLOP/s per GPU, per GPU type",
                           lo=0, lo_open=True, length="gpu_types")
    load_bw_gb_per_s: tuple = _f((7.0, 14.0), "BW_n: weight-load bandwidth of a node, GB/s, per GPU type",
                                 lo=0, lo_open=True, length="gpu_types")
    max_batch: int = _f(64, "most requests a node runs at once", lo=1)
    prefill_mfu: float = _f(0.5, "roofline: model-FLOPs utilization of prefill where no profile exists",
                            lo=0, lo_open=True, hi=1)
    decode_bw_fraction: float = _f(0.7, "roofline: share of HBM bandwidth reached by decode", lo=0, lo_open=True, hi=1)
    model_weights_gb: tuple = _f((13.5, 138.0), "MF_v: fp16 weights per model, GB (7B, 70B)", lo=0, lo_open=True)
    model_kv_mb_per_token: tuple = _f((0.5, 0.3125), "KV cache per token, MB, per model (70B uses GQA)",
                                      lo=0, lo_open=True)
    model_params_b: tuple = _f((6.74, 68.98), "parameters per model, billions (roofline FLOPs)", lo=0, lo_open=True)
    kv_tokens_for_fit: int = _f(4096, "a model is placed on a node only if weights + KV of this many tokens fit", lo=1)
    decode_context_tokens: float = _f(1280.0, "roofline: mean context (tokens) whose KV each decode step reads", lo=0)
    warm_target_utilization: float = _f(0.9, "warm set: nodes kept warm = predicted work / (node capacity x this) "
                                        "(docs/model.md 'Warm set')", lo=0, lo_open=True, hi=1)
    min_warm_nodes: int = _f(1, "warm set: minimum warm nodes per hosted model per datacenter", lo=1)
    cohort_bin_s: float = _f(60.0, "cohorts: pools are played in bins of this length, their cohorts arriving at a "
                             "constant rate within a bin (docs/model.md 'Cohorts'), s", lo=1)
    # --- latency (Eq. 2-3; docs/model.md 'Network latency', 'TTFT') -----------------------------
    lambda_media_ms_per_km: float = _f(0.005, "propagation latency of the medium, ms per km (fibre)", lo=0)
    sigma_hop_ms: float = _f(1.0, "processing latency per network hop, ms", lo=0)
    backbone_neighbours: int = _f(3, "backbone: each location is linked to its k nearest neighbours",
                                  lo=1, hi=MAX_DCS - 1)
    ttft_model: str = _f("eq3", "first-token compute: 'eq3' (LA_exec / T_i) or 'prefill' (prefill + one step)",
                         choices=("eq3", "prefill"))
    sla_ttft_s: float = _f(2.0, "SLA: a TTFT above this is a violation, s", lo=0, lo_open=True)
    # --- energy (Eq. 4-6) -----------------------------------------------------------------------
    pc_parked: float = _f(0.05, "PC of a parked node (no request, not kept warm)", lo=0, hi=1)
    pc_pstates: tuple = _f((1.00, 0.80, 0.60, 0.40), "PC of P0, P1, P2, P3", lo=0, lo_open=True, hi=1)
    pstate_busy_limits: tuple = _f((0.75, 0.5, 0.25), "busy-fraction upper limits of P1, P2, P3",
                                   lo=0, lo_open=True, hi=1, hi_open=True)
    cooling_multiplier: float = _f(3.0, "E_cool = this x E_CRAC (chiller + auxiliaries ~ CRAC)", lo=0)
    infra_fraction: float = _f(0.13, "E_infra = this x E_IT", lo=0)
    cop_mode: str = _f("annual", "COP_d from the site's 'annual' mean wet bulb or 'hourly'",
                       choices=("annual", "hourly"), flag="--cop")
    cop_ref: float = _f(4.78, "COP at the reference wet bulb (HP Labs CRAC model at 25 C supply)", lo=0, lo_open=True)
    cop_slope_per_c: float = _f(0.02, "COP loss per degree C of wet bulb above the reference (assumption)", lo=0)
    cop_ref_wet_bulb_c: float = _f(15.0, "reference wet-bulb temperature, C", lo=-273.15)
    cop_min: float = _f(2.0, "COP lower clamp", lo=0, lo_open=True)
    cop_max: float = _f(8.0, "COP upper clamp", lo=0, lo_open=True)
    # --- water and carbon (Eq. 8-10) ------------------------------------------------------------
    j_water_kj_per_kg: float = _f(2257.0, "latent heat of vaporization of water, kJ/kg (1 kg = 1 L)",
                                  lo=0, lo_open=True)
    phi: float = _f(0.2, "blowdown pollutant threshold (assumption): G_blow = G_E / (1 - phi)",
                    lo=0, hi=1, hi_open=True)
    ei_pot_kwh_per_l: float = _f(0.0005, "energy intensity of potable water production, kWh/L", lo=0)
    ei_waste_kwh_per_l: float = _f(0.0006, "energy intensity of wastewater treatment, kWh/L", lo=0)
    water_factors: str = _f("macknick2012", "per-fuel water factors for GI_d (Macknick et al. 2012 medians)",
                            choices=("macknick2012",))
    # --- predictor (section 5.1) ----------------------------------------------------------------
    predictor_window_epochs: int = _f(8, "tw: past epochs the predictor regresses on", lo=1)
    predictor_ewma_alpha: float = _f(0.5, "EWMA weight of the newest epoch in the predictor's regression",
                                     lo=0, lo_open=True, hi=1)
    predictor_mlp_hidden: tuple = _f((32, 32), "MLP baseline predictor: hidden layer widths", lo=1, length=ANY_LENGTH)
    predictor_mlp_steps: int = _f(400, "MLP baseline predictor: Adam steps of the fit", lo=1)
    predictor_mlp_lr: float = _f(3e-3, "MLP baseline predictor: Adam learning rate", lo=0, lo_open=True)
    predictor_mlp_batch: int = _f(256, "MLP baseline predictor: windows per minibatch", lo=1)

    # --- Splitwise split execution (docs/model.md 'Split execution') ------------------------------
    splitwise_prompt_gpu: str = _f("H100-80GB", "Splitwise: GPU type of the prompt (prefill) pool")
    splitwise_token_gpu: str = _f("A100-80GB", "Splitwise: GPU type of the token (decode) pool")
    splitwise_prompt_node_share: float = _f(0.35, "Splitwise: share of a warm set given to the prompt pool",
                                            lo=0, hi=1, lo_open=True, hi_open=True)
    splitwise_kv_link_gb_per_s: float = _f(50.0, "Splitwise: KV-cache transfer bandwidth between nodes, GB/s "
                                           "(one 400 Gb/s InfiniBand link, as in Splitwise's DGX clusters)",
                                           lo=0, lo_open=True)
    # --- fill references: fill-ttft, fill-carbon, fill-water, fill-cost (docs/model.md 'Fill references') ---
    fill_peak_to_mean: float = _f(1.25, "fill: the busiest minute's arrival rate over its epoch's mean that a filled "
                                  "datacenter must still serve (bundled Azure code day: median 1.16, 90th "
                                  "percentile 1.26 over its 96 epochs); the fill target is 1 / (this x forecast "
                                  "head-room)", lo=1)
    fill_error_z: float = _f(2.0, "fill: forecast head-room, in standard deviations of the observed relative "
                             "forecast error (1 + this x error)", lo=0)
    fill_error_prior: float = _f(0.1, "fill: relative forecast error (standard deviation) assumed before any "
                                 "epoch has been observed", lo=0)
    fill_error_ewma_alpha: float = _f(0.25, "fill: weight of the newest epoch's squared forecast error in the "
                                      "running estimate of its variance", lo=0, lo_open=True, hi=1)
    # --- learning schedulers: shared reward and evaluator budget (docs/model.md 'Objective') -----
    plan_evaluations_per_epoch: int = _f(256, "Simulate budget per epoch of every search/learning scheduler", lo=1)
    reward_ema_decay: float = _f(0.9, "reward EMA term: decay of the running mean of the weighted score", lo=0, hi=1)
    reward_eco_weight: float = _f(0.1, "reward ECO term: bonus per unit share of parked nodes", lo=0)
    reward_sla_setpoint: float = _f(0.01, "reward penalty: SLA-violation share tolerated before the penalty",
                                    lo=0, hi=1)
    reward_sla_penalty: float = _f(10.0, "reward penalty: per unit of SLA-violation share above the set point", lo=0)
    # --- baselines: Helix, PerLLM, NSGA-II, SLIT (paper section 6; each scheduler's module docstring) ---
    helix_capacity_share: float = _f(1.0, "Helix: share of a node type's peak throughput (nodes x concurrency x "
                                     "epoch / service time) offered as flow capacity", lo=0, lo_open=True)
    perllm_ucb_c: float = _f(0.5, "PerLLM: UCB exploration coefficient (reward units: weighted metric per request "
                             "relative to the fleet mean)", lo=0)
    perllm_discount: float = _f(0.9, "PerLLM: discount of past arm statistics per epoch (discounted UCB for hourly "
                                "signals; 1.0 = the paper's stationary UCB)", lo=0, lo_open=True, hi=1)
    perllm_sla_margin: float = _f(0.5, "PerLLM: a datacenter is feasible for an origin if 2 x LA_net + compute "
                                  "<= this x sla_ttft_s", lo=0, lo_open=True)
    perllm_max_sla_rate: float = _f(0.05, "PerLLM: a datacenter whose observed SLA-violation share exceeds this "
                                    "is infeasible next epoch", lo=0, hi=1)
    nsga2_pop_size: int = _f(32, "NSGA-II: population size (x nsga2_generations <= plan_evaluations_per_epoch)", lo=2)
    nsga2_generations: int = _f(8, "NSGA-II: generations per epoch (the first evaluates the initial population)", lo=1)
    nsga2_logit_bound: float = _f(4.0, "NSGA-II: genome = per-row logits in [-bound, bound], softmax -> plan row",
                                  lo=0, lo_open=True)
    nsga2_pick: str = _f("weights", "NSGA-II: final plan from the front: 'weights' (min weighted normalized "
                         "objectives) or 'knee' (farthest from the line of extremes)", choices=("weights", "knee"))
    slit_weights: tuple = _f((0.1, 0.4, 0.4, 0.1), "SLIT: its objective weights (TTFT, carbon, water, cost), "
                             "carbon and water first as in the paper; sum 1", lo=0)
    slit_train_samples: int = _f(224, "SLIT: evaluator samples per epoch that train the surrogate", lo=1)
    slit_verify: int = _f(32, "SLIT: surrogate-best GA candidates verified on the evaluator (+ train <= budget)", lo=1)
    slit_memory_epochs: int = _f(8, "SLIT: epochs of past samples kept for the online surrogate refit", lo=1)
    slit_ridge_alpha: float = _f(1e-3, "SLIT: ridge (L2) penalty of the surrogate regression", lo=0)
    slit_pop_size: int = _f(64, "SLIT: GA population on the surrogate", lo=2)
    slit_generations: int = _f(40, "SLIT: GA generations on the surrogate", lo=1)
    slit_logit_bound: float = _f(4.0, "SLIT: genome = per-row logits in [-bound, bound], softmax -> plan row",
                                 lo=0, lo_open=True)
    slit_sample_sigma: float = _f(1.0, "SLIT: std of the logit noise around the incumbent for training samples", lo=0)
    slit_explore_share: float = _f(0.5, "SLIT: share of training samples drawn at random (the rest near the "
                                   "incumbent plan)", lo=0, hi=1)
    # --- RL baselines (paper section 6) ---
    qlearning_alpha: float = _f(0.3, "Q-Learning: step size of the tabular update Q += alpha (target - Q)", lo=0, hi=1)
    qlearning_gamma: float = _f(0.5, "Q-Learning: discount of max Q(next state) in the target (0 = contextual "
                                "bandit; a plan barely moves the next epoch's state)", lo=0, hi=1)
    qlearning_observed_alpha: float = _f(0.3, "Q-Learning: step size of the update from the measured epoch "
                                         "(observe); 0 = learn from Simulate only", lo=0, hi=1)
    qlearning_epsilon_start: float = _f(0.2, "Q-Learning: epsilon-greedy exploration at epoch 0", lo=0, hi=1)
    qlearning_epsilon_end: float = _f(0.02, "Q-Learning: epsilon after the decay", lo=0, hi=1)
    qlearning_epsilon_decay_epochs: int = _f(48, "Q-Learning: epochs of the linear epsilon decay", lo=1)
    qlearning_load_edges: tuple = _f((0.15, 0.35, 0.65), "Q-Learning: state bin edges of the forecast load = "
                                     "predicted requests / the fleet's serving capacity per epoch",
                                     lo=0, length=ANY_LENGTH)
    qlearning_hour_bins: int = _f(4, "Q-Learning: state bins of the hour of day (UTC)", lo=1, hi=24)
    ddqn_hidden: int = _f(64, "DDQN: hidden units of the two hidden layers of the Q-network", lo=1)
    ddqn_lr: float = _f(1e-3, "DDQN: Adam learning rate", lo=0, lo_open=True)
    ddqn_gamma: float = _f(0.5, "DDQN: discount of the double-Q target (a plan barely moves the next state)",
                           lo=0, hi=1)
    ddqn_buffer_size: int = _f(20000, "DDQN: replay buffer capacity (transitions)", lo=1)
    ddqn_batch_size: int = _f(64, "DDQN: minibatch size", lo=1)
    ddqn_updates_per_epoch: int = _f(16, "DDQN: gradient steps per epoch", lo=0)
    ddqn_target_sync_steps: int = _f(100, "DDQN: gradient steps between hard copies online -> target network", lo=1)
    ddqn_grad_clip: float = _f(10.0, "DDQN: gradient-norm clip", lo=0, lo_open=True)
    ddqn_epsilon_start: float = _f(0.5, "DDQN: epsilon-greedy exploration at epoch 0", lo=0, hi=1)
    ddqn_epsilon_end: float = _f(0.02, "DDQN: epsilon after the decay", lo=0, hi=1)
    ddqn_epsilon_decay_epochs: int = _f(48, "DDQN: epochs of the linear epsilon decay", lo=1)
    ddqn_torch_threads: int = _f(1, "DDQN: torch CPU threads (small nets: 1 is fastest)", lo=1)
    actorcritic_hidden: int = _f(64, "Actor-Critic: hidden units of the actor's and the critic's two hidden layers",
                                 lo=1)
    actorcritic_lr_actor: float = _f(1e-2, "Actor-Critic: Adam learning rate of the actor", lo=0, lo_open=True)
    actorcritic_lr_critic: float = _f(1e-2, "Actor-Critic: Adam learning rate of the critic", lo=0, lo_open=True)
    actorcritic_samples_per_epoch: int = _f(256, "Actor-Critic: plans sampled from the policy and simulated per "
                                            "epoch (capped at plan_evaluations_per_epoch)", lo=1)
    actorcritic_updates_per_epoch: int = _f(1, "Actor-Critic: gradient steps per epoch on the epoch's samples", lo=0)
    actorcritic_entropy_coef: float = _f(1e-3, "Actor-Critic: weight of the policy-entropy bonus", lo=0)
    actorcritic_init_log_std: float = _f(0.0, "Actor-Critic: initial log std of the Gaussian over plan logits")
    actorcritic_min_log_std: float = _f(-3.0, "Actor-Critic: lower clamp of the log std")
    actorcritic_max_log_std: float = _f(1.0, "Actor-Critic: upper clamp of the log std")
    actorcritic_grad_clip: float = _f(1.0, "Actor-Critic: gradient-norm clip", lo=0, lo_open=True)
    actorcritic_torch_threads: int = _f(1, "Actor-Critic: torch CPU threads (small nets: 1 is fastest)", lo=1)
    # --- MARLIN (paper section 5; the hyperparameters of section 6) ---
    marlin_actor_hidden: int = _f(128, "MARLIN: actor MLP hidden units (paper section 6)", lo=1)
    marlin_critic_hidden: int = _f(256, "MARLIN: twin-critic MLP hidden units (paper section 6)", lo=1)
    marlin_lr_actor: float = _f(3e-4, "MARLIN: actor learning rate (paper section 6)", lo=0, lo_open=True)
    marlin_lr_critic: float = _f(1e-3, "MARLIN: critic learning rate (paper section 6)", lo=0, lo_open=True)
    marlin_lr_alpha: float = _f(3e-4, "MARLIN: learning rate of the automatically tuned entropy temperature", lo=0)
    marlin_alpha_init: float = _f(0.01, "MARLIN: initial SAC entropy temperature (reward units ~ 1)",
                                  lo=0, lo_open=True)
    marlin_target_entropy_scale: float = _f(1.0, "MARLIN: target entropy = -this x action size (SAC default 1)")
    marlin_gamma: float = _f(0.95, "MARLIN: SAC discount (paper section 6); MARLIN stores one-step transitions "
                             "(bandit view)", lo=0, hi=1)
    marlin_tau: float = _f(0.005, "MARLIN: Polyak rate of the target critics (paper section 6)",
                           lo=0, lo_open=True, hi=1)
    marlin_replay_current: int = _f(20000, "MARLIN: current-epoch replay capacity per agent (paper section 6)", lo=1)
    marlin_replay_cross: int = _f(5000, "MARLIN: cross-epoch (HER) replay capacity per agent (paper section 6)", lo=1)
    marlin_current_share: float = _f(0.3, "MARLIN: share of a batch drawn from the current-epoch buffer (30/70)",
                                     lo=0, hi=1)
    marlin_batch_size: int = _f(64, "MARLIN: SAC batch size", lo=1)
    marlin_updates_per_epoch: int = _f(32, "MARLIN: SAC gradient updates per agent per epoch", lo=0)
    marlin_logit_scale: float = _f(6.0, "MARLIN: actions are logits in [-this, this] (tanh-squashed); plan = softmax",
                                   lo=0, lo_open=True)
    marlin_agent_dominant: float = _f(1.0, "MARLIN: weight of an agent's own objective in its reward, rest shared "
                                      "(1.0: each agent optimizes its single objective, paper section 5)", lo=0, hi=1)
    marlin_variant_dominant: float = _f(0.7, "MARLIN-Min* variants: weight of the variant's objective in the game",
                                        lo=0, hi=1)
    marlin_blend_temperature: float = _f(1.0, "MARLIN phase 2: softmax temperature turning utilities into shares",
                                         lo=0, lo_open=True)
    marlin_sgd_lr: float = _f(0.05, "MARLIN phase 2: gradient-ascent learning rate on Q_tot (paper section 6)", lo=0)
    marlin_sgd_steps: int = _f(5, "MARLIN phase 2: K_opt gradient-ascent steps on Q_tot (paper section 6)", lo=0)
    marlin_capital_start: float = _f(100.0, "MARLIN: initial capital of every agent, percent "
                                     "(schedulers/marlin/game.py)")
    marlin_capital_threshold: float = _f(150.0, "MARLIN: capital needed to veto, percent (paper section 6)")
    marlin_capital_min: float = _f(0.0, "MARLIN: capital lower bound")
    marlin_capital_max: float = _f(300.0, "MARLIN: capital upper bound")
    marlin_capital_eta: float = _f(0.9, "MARLIN: capital update C = eta C + (1 - eta)(Perf + beta Bonus)", lo=0, hi=1)
    marlin_bonus_beta: float = _f(1.0, "MARLIN: bonus scaling factor beta of the capital update", lo=0)
    marlin_veto_max: float = _f(0.5, "MARLIN: maximal veto pull toward the vetoing agent's plan (paper section 6)",
                                lo=0, hi=1)
    marlin_veto_delta: float = _f(0.05, "MARLIN: delta_thresh, relative utility loss that justifies a veto", lo=0)
    marlin_veto_capital_scale: float = _f(100.0, "MARLIN: veto strength = min(veto_max, delta x capital / this)",
                                          lo=0, lo_open=True)
    marlin_capacity_ceiling: float = _f(0.9, "MARLIN: highest forecast utilization (share of serving capacity) a "
                                        "plan may give a datacenter; every plan MARLIN simulates or executes is "
                                        "repaired to it (the paper's feasible set; default = "
                                        "warm_target_utilization, the fill schedulers' target)", lo=0, lo_open=True)
    marlin_ablate: tuple = _f((), "MARLIN ablations: any of " + ",".join(MARLIN_ABLATIONS),
                              choices=MARLIN_ABLATIONS, length=ANY_LENGTH, item=str, flag="--ablate")
    marlin_pretrain_days: int = _f(0, "MARLIN: pre-train the agents on this many other days of the bundled trace",
                                   lo=0, flag="--pretrain-days")
    marlin_checkpoint: str = _f("", "MARLIN: torch checkpoint; loaded if it exists, else written after pre-training",
                                flag="--checkpoint")
    marlin_torch_threads: int = _f(1, "MARLIN: torch CPU threads while MARLIN learns (small nets: 1 is fastest)", lo=1)

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


def _auto_or(value: str, flag: str, parse, ok, what: str) -> None:
    """A setting that is 'auto' or a number: refuse text that `parse` cannot read or whose value fails
    `ok(value, text)`, naming the flag and what it takes."""
    if value == "auto":
        return
    message = f"{flag} {value!r}: must be 'auto' or {what}"
    try:
        v = parse(value)
    except ValueError:
        raise ConfigError(message) from None
    if not ok(v, str(value)):
        raise ConfigError(message)


def validate(c: Config) -> None:
    """Refuse impossible values with one line naming the parameter, the value and what is allowed: first each
    field against what it declares (`Allowed`), then the relations between fields."""
    for f in _FIELD_LIST:
        _check_field(f, getattr(c, f.name), c)
    if abs(c.hours * 3600.0 / c.epoch_s - c.epochs) > 1e-9:
        raise ConfigError(f"--hours {c.hours}: must be a whole number of {c.epoch_s:g}-s epochs")
    for name, flag in (("weights", "--weights"), ("slit_weights", "slit_weights=")):
        w = getattr(c, name)
        if abs(sum(w) - 1.0) > 1e-6:
            sep = "" if flag.endswith("=") else " "
            raise ConfigError(f"{flag}{sep}{','.join(map(str, w))}: must sum to 1 (they sum to {sum(w):g})")
    _auto_or(c.cohort_size, "--cohort-size", int, lambda v, text: v >= 1 and str(v) == text.strip(),
             "a whole number >= 1")
    _auto_or(c.load_scale, "--load-scale", float, lambda v, text: v > 0 and math.isfinite(v), "a positive number")
    if len(set(c.gpu_types)) != len(c.gpu_types):
        raise ConfigError(f"gpu_types={','.join(c.gpu_types)}: must not repeat a GPU type")
    if len(set(c.gpu_counts)) != len(c.gpu_counts):
        raise ConfigError(f"gpu_counts={','.join(map(str, c.gpu_counts))}: must not repeat a GPU count")
    if c.nodes_per_dc < len(c.gpu_types) * len(c.gpu_counts):
        raise ConfigError(f"nodes_per_dc={c.nodes_per_dc}: need at least one node of each type "
                          f"({len(c.gpu_types) * len(c.gpu_counts)})")
    for name in ("splitwise_prompt_gpu", "splitwise_token_gpu"):
        if getattr(c, name) not in c.gpu_types:
            raise ConfigError(f"{name}={getattr(c, name)}: must be one of gpu_types ({', '.join(c.gpu_types)})")
    _ordered(c, "cop_min", "cop_max")
    _ordered(c, "actorcritic_min_log_std", "actorcritic_max_log_std")
    _ordered(c, "marlin_capital_min", "marlin_capital_start", "marlin_capital_max")
    _ordered(c, "marlin_capital_min", "marlin_capital_threshold", "marlin_capital_max")
    _monotone(c, "pc_pstates", increasing=False, strict=False, what="P0 down to P3, non-increasing")
    _monotone(c, "pstate_busy_limits", increasing=False, strict=True, what="P1 down to P3, decreasing")
    _monotone(c, "qlearning_load_edges", increasing=True, strict=True, what="increasing")
    from simcore import physics  # Eq. 1, as the profiles decide where a model can be placed
    largest = max(n * mem for n in c.gpu_counts for mem in c.gpu_mem_gb)
    for m, model in enumerate(MODELS):
        need = physics.node_memory_gb(c.model_weights_gb[m],
                                      physics.request_kv_gb(c.kv_tokens_for_fit, c.model_kv_mb_per_token[m]))
        if need > largest:
            raise ConfigError(f"{model} needs {need:.4g} GB (model_weights_gb + KV of kv_tokens_for_fit tokens), "
                              f"more than the largest node holds ({largest:g} GB = gpu_counts x gpu_mem_gb)")
    if c.pc_parked > min(c.pc_pstates):
        raise ConfigError(f"pc_parked={c.pc_parked}: must be at most the lowest p-state's PC "
                          f"(pc_pstates={','.join(map(str, c.pc_pstates))})")


def _ordered(c: Config, *names: str) -> None:
    """Relation: getattr(c, names[0]) <= getattr(c, names[1]) <= ..."""
    vals = [getattr(c, n) for n in names]
    if any(a > b for a, b in zip(vals, vals[1:])):
        shown = ", ".join(f"{n}={v}" for n, v in zip(names, vals))
        raise ConfigError(f"{shown}: must satisfy {' <= '.join(names)}")


def _monotone(c: Config, name: str, increasing: bool, strict: bool, what: str) -> None:
    v = np.asarray(getattr(c, name), dtype=float)
    d = np.diff(v) if increasing else -np.diff(v)
    if np.any(d <= 0) if strict else np.any(d < 0):
        raise ConfigError(f"{name}={','.join(map(str, getattr(c, name)))}: must be {what}")


# --- the generic, per-field part ----------------------------------------------------------------------------
def _kind(f: dataclasses.Field) -> str:
    """'int', 'float', 'str', 'bool' or 'tuple', from the annotation."""
    return f.type if isinstance(f.type, str) else f.type.__name__


def _item_kind(f: dataclasses.Field) -> str:
    a: Allowed = f.metadata["allowed"]
    t = a.item or (type(f.default[0]) if f.default else str)
    return t.__name__


def _shown(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    return str(v) if not isinstance(v, str) or v.strip() else repr(v)


def _label(f: dataclasses.Field, v: Any) -> str:
    flag = f.metadata["allowed"].flag
    return f"{flag} {_shown(v)}" if flag else f"{f.name}={_shown(v)}"


def _expected_length(f: dataclasses.Field, c: Config | None) -> int | None:
    """The entries a tuple field must have (None: one or more)."""
    length = f.metadata["allowed"].length
    if length is None:
        return len(f.default) if f.default else None
    if length == ANY_LENGTH:
        return None
    if isinstance(length, str):
        return len(getattr(c, length)) if c is not None else None
    return length


def _describe(f: dataclasses.Field, c: Config | None = None) -> str:
    """What a field accepts, in words ('a whole number in [4, 12]', '2 entries (one per gpu_types entry), ...')."""
    a: Allowed = f.metadata["allowed"]
    kind = _kind(f)
    if kind == "tuple":
        n = _expected_length(f, c)
        length = a.length
        if isinstance(length, str) and length != ANY_LENGTH:
            count = (f"{n} entr{'y' if n == 1 else 'ies'} (one per {length} entry)" if n is not None
                     else f"one entry per {length} entry")
        elif n is None:
            count = "one or more entries" if f.default or a.length == ANY_LENGTH else "entries"
        else:
            count = f"{n} entries" if n != 1 else "1 entry"
        return f"{count}, each {_describe_scalar(_item_kind(f), a)}"
    return _describe_scalar(kind, a)


def _describe_scalar(kind: str, a: Allowed) -> str:
    if a.choices is not None:
        return "one of " + ", ".join(map(str, a.choices))
    if kind == "str":
        return "text"
    if kind == "bool":
        return "true or false"
    base = "whole number" if kind == "int" else "number"
    lo, hi = a.lo, a.hi
    if lo is None and hi is None:
        return f"a finite {base}" if kind == "float" else f"a {base}"
    if hi is None and lo == 0:
        return f"a positive {base}" if a.lo_open else f"a non-negative {base}"
    if hi is None:
        return f"a {base} {'>' if a.lo_open else '>='} {lo:g}"
    if lo is None:
        return f"a {base} {'<' if a.hi_open else '<='} {hi:g}"
    return f"a {base} in {'(' if a.lo_open else '['}{lo:g}, {hi:g}{')' if a.hi_open else ']'}"


def _scalar_ok(kind: str, x: Any, a: Allowed) -> bool:
    if kind == "bool":
        return isinstance(x, bool)
    if kind == "str":
        return isinstance(x, str) and (a.choices is None or x in a.choices)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    if kind == "int" and not (isinstance(x, int) and abs(x) <= MAX_INT):
        return False
    if not math.isfinite(x):
        return False
    if a.lo is not None and (x <= a.lo if a.lo_open else x < a.lo):
        return False
    if a.hi is not None and (x >= a.hi if a.hi_open else x > a.hi):
        return False
    return True


def _check_field(f: dataclasses.Field, v: Any, c: Config) -> None:
    a: Allowed = f.metadata["allowed"]
    kind = _kind(f)
    if kind != "tuple":
        if not _scalar_ok(kind, v, a):
            raise ConfigError(f"{_label(f, v)}: must be {_describe(f, c)}")
        return
    if not isinstance(v, tuple):
        raise ConfigError(f"{_label(f, v)}: must be {_describe(f, c)}")
    item = _item_kind(f)
    for x in v:
        if not _scalar_ok(item, x, a):
            what = "unknown entry" if a.choices is not None else "entry"
            raise ConfigError(f"{_label(f, v)}: {what} {_shown(x)!s}; must be {_describe(f, c)}")
    n = _expected_length(f, c)
    if (n is not None and len(v) != n) or (n is None and not v and f.default):
        raise ConfigError(f"{_label(f, v)}: must be {_describe(f, c)} (got {len(v)})")


def _parse_scalar(kind: str, x: Any) -> Any:
    """Text or JSON value -> the field's type; ValueError if it is not one (never truncates, never splits)."""
    if kind == "bool":
        if isinstance(x, bool):
            return x
        if isinstance(x, str) and x.strip().lower() in ("true", "false"):
            return x.strip().lower() == "true"
        raise ValueError
    if kind == "str":
        if isinstance(x, str):
            return x
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            return str(x)
        raise ValueError
    if isinstance(x, bool):
        raise ValueError
    if isinstance(x, str):
        text = x.strip()
        if kind == "int":
            try:
                return int(text)
            except ValueError:
                x = float(text)  # '1e3' is a whole number; '1.5' is refused below
        else:
            return float(text)
    if not isinstance(x, (int, float)):
        raise ValueError
    if kind == "int":
        if isinstance(x, float) and not (math.isfinite(x) and x.is_integer()):
            raise ValueError
        return int(x)
    return float(x)


def _parse(f: dataclasses.Field, v: Any) -> Any:
    kind = _kind(f)
    if kind != "tuple":
        return _parse_scalar(kind, v)
    if isinstance(v, str):  # '400' -> ('400',), 'a,b' -> ('a', 'b'): entries, never characters
        items = [x.strip() for x in v.split(",")] if v.strip() else []
    elif isinstance(v, (list, tuple)):
        items = list(v)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        items = [v]
    else:
        raise ValueError
    item = _item_kind(f)
    return tuple(_parse_scalar(item, x) for x in items)


_FIELD_LIST = dataclasses.fields(Config)
_FIELDS = {f.name: f for f in _FIELD_LIST}


def from_dict(d: dict, where: str = "config") -> Config:
    """Build a Config from plain values (text from the command line, JSON values from a file); tuples may be
    lists or comma-separated text; unknown keys are refused."""
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}")
    vals = {}
    for k, v in d.items():
        f = _FIELDS[k]
        try:
            vals[k] = _parse(f, v)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{_label(f, v)}: must be {_describe(f)}") from None
    return Config(**vals)


def load_json(path: str | Path) -> dict:
    """Read a JSON file of parameter overrides (flat, by field name)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a JSON config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text (UTF-8 JSON) file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the config file ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p}: must hold one JSON object of parameters")
    return d


def help_table() -> list[tuple[str, Any, str]]:
    """(name, default, help) of every parameter, for docs and `run.py --list-params`."""
    return [(f.name, _jsonable(f.default), f.metadata["help"]) for f in dataclasses.fields(Config)]
