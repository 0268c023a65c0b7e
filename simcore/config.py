"""The world's parameters: every parameter of the simulated world and the run, in one frozen dataclass, with its
default and its unit. A scheduler's parameters are its own (`Scheduler.Params`, declared beside its class).

Field names carry their unit (`_s`, `_kwh`, `_l`, `_kg`, `_usd`, `_w`, `_gb`, ...); each field's `help`
metadata cites docs/model.md / the paper. Nothing else in the code holds a tunable number of the world. `run.py`
builds the CLI overrides from these fields (and the chosen scheduler's) and writes both to `config.json`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from simcore.errors import ConfigError
from simcore.params import ANY_LENGTH, Parameters, monotone, ordered, param, sums_to_one

MODELS = ("Llama-2-7B", "Llama-2-70B")  # index 0 = ChatGPT-class, 1 = GPT-4-class (docs/model.md 'Workload')
OBJECTIVES = ("ttft", "carbon", "water", "cost")  # the order of --weights (Eq. 11: w1..w4)
EMBODIED = "embodied"  # the fifth objective with objective_embodied=true (attributable embodied carbon)
MIN_DCS, MAX_DCS = 4, 12
MAX_NODES_PER_DC = 100_000  # per-node state is kept in Python lists (about 1 KB per node)
MAX_HOURS = 8760.0  # one year: the grid and weather signals cover 2023
MAX_PEAK_UTILIZATION = 2.0  # auto load may overload the reference fleet up to twice its capacity


@dataclass(frozen=True)
class Config(Parameters):
    # --- run -----------------------------------------------------------------------------------
    scheduler: str = param("nearest", "scheduler name, entry point or dotted path module:Class")
    dcs: int = param(8, "number of datacenters D, the first D of the site order (docs/model.md 'Sites') (4..12)",
                     lo=MIN_DCS, hi=MAX_DCS, flag="--dcs")
    hours: float = param(24.0, "simulated horizon in hours (a whole number of epochs)",
                         lo=0, lo_open=True, hi=MAX_HOURS, flag="--hours")
    epoch_s: float = param(900.0, "epoch length t_e in seconds (the paper's 15 minutes; docs/model.md 'Conventions')",
                           lo=60, hi=86400)
    seed: int = param(0, "the one seed every random stream is spawned from", lo=0, flag="--seed")
    start: str = param("2023-07-03", "UTC date of epoch 0 for the grid/weather signals (2023 data)", flag="--start")
    weights: tuple = param((0.25, 0.25, 0.25, 0.25), "Eq. 11 weights w1..w4 (TTFT, carbon, water, cost), sum 1",
                           lo=0, flag="--weights")
    train_days: int = param(0, "pre-training (the trained protocol): a learner first plays this many other days of "
                            "the bundled week, each with its own arrivals and signals (simcore.training); 0 = the "
                            "paper's online protocol", lo=0, hi=6, flag="--train-days")
    plan_timeout_s: float = param(600.0, "a scheduler's plan() that has not returned after this long ends the run "
                                  "(one line naming it; a stuck plug-in must not hang a run or a sweep)",
                                  lo=0, lo_open=True)
    # --- workload (docs/model.md 'Workload', 'Load', 'Cohorts') -----------------------------------
    trace: str = param("azure-code-2024", "bundled trace name (azure-code-2024, burstgpt-profile, azure-conv-2023, "
                       "azure-code-2023) or a CSV path",
                       flag="--trace")
    trace_day: str = param("2024-05-13", "day of the bundled Azure 2024 code trace used for arrivals")
    load_scale: str = param("auto", "arrival-rate multiplier, or 'auto' (the trace day's busiest epoch at "
                            "peak_utilization of the reference fleet's serving capacity; docs/model.md 'Load')",
                            flag="--load-scale")
    peak_utilization: float = param(0.95, "auto load: share of the reference fleet's serving capacity the trace day's "
                                    "busiest epoch uses (paper section 6: 95 %)",
                                    lo=0, lo_open=True, hi=MAX_PEAK_UTILIZATION)
    load_scale_auto_max: float = param(1000.0, "load_scale auto: the most it may multiply a trace file by; above, "
                                       "the file is taken at its own volume and the fleet sized to it (the bundled "
                                       "traces, samples meant to be scaled, are exempt; docs/model.md 'Load')",
                                       lo=1)
    fleet: str = param("fixed", "nodes per datacenter: 'fixed' (nodes_per_dc) or 'auto' (sized so the trace's busiest "
                       "epoch uses peak_utilization of the reference fleet; docs/model.md 'Load')",
                       choices=("fixed", "auto"), flag="--fleet")
    reference_dcs: int = param(8, "auto load: datacenters of the reference fleet (load is kept when --dcs changes)",
                               lo=1, hi=MAX_DCS)
    cohort_size: str = param("auto", "real requests each simulated request stands for: 1 = exact per-request "
                             "simulation, 'auto' = about cohort_auto_requests_per_day simulated per day "
                             "(docs/model.md 'Cohorts')", flag="--cohort-size")
    cohort_auto_requests_per_day: float = param(1.2e6, "cohort_size auto: simulated requests per trace day aimed at",
                                                lo=1)
    gpt4_share: float = param(0.153, "share of GPT-4-class (Llama-2-70B) requests when a trace has no model column",
                              lo=0, hi=1)
    model_context_tokens: tuple = param((4096, 4096), "context window per model, tokens (Llama-2: 4,096)", lo=1)
    context_policy: str = param("clip", "a prompt longer than its model's context window: 'clip' it to the window, "
                                "'drop' the request, or 'refuse' the trace; clipped or dropped requests are counted "
                                "in summary.json (requests_over_context)", choices=("clip", "drop", "refuse"))
    max_workload_requests: int = param(20_000_000, "most requests a run's workload may hold (trace x load scale); "
                                       "more is refused before it is generated (the engine keeps ~0.6 KB per "
                                       "request)", lo=1)
    # --- datacenters and nodes (docs/model.md 'Capacity', 'Warm set') ----------------------------
    nodes_per_dc: int = param(1000, "nodes per datacenter, the six node types interleaved (shares differ by <= 1; "
                              "fewer nodes than types: the first types in order)",
                              lo=1, hi=MAX_NODES_PER_DC)
    gpu_types: tuple = param(("A100-80GB", "H100-80GB"), "GPU types", length=ANY_LENGTH)
    gpu_counts: tuple = param((2, 4, 8), "GPUs per node", lo=1, length=ANY_LENGTH)
    gpu_mem_gb: tuple = param((80.0, 80.0), "HBM per GPU, GB, per GPU type", lo=0, lo_open=True, length="gpu_types")
    gpu_tdp_w: tuple = param((400.0, 700.0), "GPU TDP in W, per GPU type", lo=0, lo_open=True, length="gpu_types")
    host_tdp_w_per_gpu: float = param(150.0, "host power share per GPU, W (node TDP = GPUs x (GPU TDP + this))", lo=0)
    gpu_hbm_tb_per_s: tuple = param((2.0, 3.35), "HBM bandwidth per GPU, TB/s, per GPU type",
                                    lo=0, lo_open=True, length="gpu_types")
    gpu_tflops: tuple = param((312.0, 989.0), "dense bf16 TFLOP/s per GPU, per GPU type",
                              lo=0, lo_open=True, length="gpu_types")
    load_bw_gb_per_s: tuple = param((7.0, 14.0), "BW_n: weight-load bandwidth of a node, GB/s, per GPU type",
                                    lo=0, lo_open=True, length="gpu_types")
    max_batch: int = param(64, "most requests a node runs at once", lo=1)
    prefill_mfu: tuple = param((0.5, 0.42), "roofline: model-FLOPs utilization of prefill where no profile exists, "
                               "per GPU type (calibrated on vidur's Llama-2-7B prefill; docs/model.md 'Validation', "
                               "rung 0)", lo=0, lo_open=True, hi=1, length="gpu_types")
    decode_bw_fraction: float = param(0.9, "roofline: share of HBM bandwidth reached by decode (calibrated on vidur's "
                                      "Llama-2-7B capacity; docs/model.md 'Validation', rung 0)",
                                      lo=0, lo_open=True, hi=1)
    model_weights_gb: tuple = param((13.5, 138.0), "MF_v: fp16 weights per model, GB (7B, 70B)", lo=0, lo_open=True)
    model_kv_mb_per_token: tuple = param((0.5, 0.3125), "KV cache per token, MB, per model (70B uses GQA)",
                                         lo=0, lo_open=True)
    model_params_b: tuple = param((6.74, 68.98), "parameters per model, billions (roofline FLOPs)", lo=0, lo_open=True)
    kv_tokens_for_fit: int = param(4096, "a model is placed on a node only if weights + KV of this many tokens fit",
                                   lo=1)
    decode_context_tokens: float = param(1280.0, "roofline: mean context (tokens) whose KV each decode step reads",
                                         lo=0)
    warm_target_utilization: float = param(0.9, "warm set: nodes kept warm = predicted work / (node capacity x this) "
                                           "(docs/model.md 'Warm set')", lo=0, lo_open=True, hi=1)
    min_warm_nodes: int = param(1, "warm set: minimum warm nodes per hosted model per datacenter", lo=1)
    cohort_bin_s: float = param(10.0, "cohorts: pools are played in bins of this length, their cohorts arriving at a "
                                "constant rate within a bin (docs/model.md 'Cohorts'), s", lo=1)
    drain: bool = param(True, "after the horizon arrivals stop and the fleet keeps serving until every arrived request "
                        "has its first token (or drain_max_h passes); its epochs count in every total "
                        "(docs/model.md 'Drain'); --no-drain cuts the run at the horizon", flag="--no-drain")
    drain_max_h: float = param(24.0, "the drain's cap, hours: requests still waiting then are requests_unserved",
                               lo=0, hi=MAX_HOURS)
    # --- latency (Eq. 2-3; docs/model.md 'Network latency', 'TTFT') -----------------------------
    lambda_media_ms_per_km: float = param(0.005, "propagation latency of the medium, ms per km (fibre)", lo=0)
    sigma_hop_ms: float = param(1.0, "processing latency per network hop, ms", lo=0)
    backbone_neighbours: int = param(3, "backbone: each location is linked to its k nearest neighbours",
                                     lo=1, hi=MAX_DCS - 1)
    ttft_model: str = param("prefill", "first-token compute: 'prefill' (the first token is out when the prompt's "
                            "prefill pass ends; a first-token time) or 'eq3' (LA_exec / T_i, the paper's term read "
                            "literally; docs/model.md 'TTFT')",
                            choices=("eq3", "prefill"))
    sla_ttft_s: float = param(2.0, "SLA: a TTFT above this is a violation, s", lo=0, lo_open=True)
    # --- energy (Eq. 4-6) -----------------------------------------------------------------------
    pc_parked: float = param(0.05, "PC of a parked node (no request, not kept warm)", lo=0, hi=1)
    pc_pstates: tuple = param((1.00, 0.80, 0.60, 0.40), "PC of P0, P1, P2, P3", lo=0, lo_open=True, hi=1)
    pstate_busy_limits: tuple = param((0.75, 0.5, 0.25), "busy-fraction upper limits of P1, P2, P3",
                                      lo=0, lo_open=True, hi=1, hi_open=True)
    cooling_multiplier: float = param(3.0, "E_cool = this x E_CRAC (chiller + auxiliaries ~ CRAC)", lo=0)
    infra_fraction: float = param(0.13, "E_infra = this x E_IT", lo=0)
    cop_mode: str = param("annual", "COP_d from the site's 'annual' mean wet bulb or 'hourly'",
                          choices=("annual", "hourly"), flag="--cop")
    cop_ref: float = param(4.78, "COP at the reference wet bulb (HP Labs CRAC model at 25 C supply)",
                           lo=0, lo_open=True)
    cop_slope_per_c: float = param(0.02, "COP loss per degree C of wet bulb above the reference (assumption)", lo=0)
    cop_ref_wet_bulb_c: float = param(15.0, "reference wet-bulb temperature, C", lo=-273.15)
    cop_min: float = param(2.0, "COP lower clamp", lo=0, lo_open=True)
    cop_max: float = param(8.0, "COP upper clamp", lo=0, lo_open=True)
    # --- water and carbon (Eq. 8-10) ------------------------------------------------------------
    j_water_kj_per_kg: float = param(2257.0, "latent heat of vaporization of water, kJ/kg (1 kg = 1 L)",
                                     lo=0, lo_open=True)
    phi: float = param(0.2, "blowdown pollutant threshold (assumption): G_blow = G_E / (1 - phi)",
                       lo=0, hi=1, hi_open=True)
    ei_pot_kwh_per_l: float = param(0.0005, "energy intensity of potable water production, kWh/L", lo=0)
    ei_waste_kwh_per_l: float = param(0.0006, "energy intensity of wastewater treatment, kWh/L", lo=0)
    water_factors: str = param("macknick2012", "per-fuel water factors for GI_d (Macknick et al. 2012 medians)",
                               choices=("macknick2012",))
    # --- embodied carbon (docs/model.md 'Embodied carbon'; figures: simcore/data/SOURCES.md) ---------------
    gpu_embodied_kg: tuple = param((518.0, 1023.0), "embodied (manufacturing) carbon of one GPU with its share of "
                                   "the host server, kg CO2e, per GPU type, both from one method (EcoLogits/Boavizta: "
                                   "A100 143 + 3,000 / 8 = 518, H100 273 + 6,000 / 8 = 1,023; simcore/data/SOURCES.md)",
                                   lo=0, length="gpu_types")
    service_life_years: float = param(4.0, "service life the embodied carbon is amortised over, years, by node-hours "
                                      "powered (parked nodes count: the hardware exists)", lo=0, lo_open=True)
    objective_embodied: bool = param(False, "a fifth objective: the embodied carbon attributable to serving (nodes "
                                     "warm or busy), for the evaluator, MARLIN (a fifth agent), the RL environments "
                                     "and the report; its weight is 1/5, --weights share the other 4/5")
    # --- predictor (section 5.1) ----------------------------------------------------------------
    predictor_window_epochs: int = param(8, "tw: past epochs the predictor regresses on", lo=1)
    predictor_ewma_alpha: float = param(0.5, "EWMA weight of the newest epoch in the predictor's regression",
                                        lo=0, lo_open=True, hi=1)

    # ------------------------------------------------------------------------------------------
    @property
    def epochs(self) -> int:
        return int(round(self.hours * 3600.0 / self.epoch_s))

    @property
    def objectives(self) -> tuple:
        """The run's objectives in weight order: OBJECTIVES, plus EMBODIED with objective_embodied."""
        return OBJECTIVES + ((EMBODIED,) if self.objective_embodied else ())

    @property
    def objective_weights(self) -> tuple:
        """Eq. 11's weights over `objectives`: --weights; with objective_embodied the fifth objective takes an
        equal share, 1/5, and w1..w4 are scaled by 4/5 (equal --weights: five equal weights; docs/model.md
        'Embodied carbon'), still summing to 1."""
        if not self.objective_embodied:
            return tuple(self.weights)
        fifth = 1.0 / len(self.objectives)
        return tuple((1.0 - fifth) * w for w in self.weights) + (fifth,)

    @property
    def horizon_s(self) -> float:
        return self.epochs * self.epoch_s

    def validate(self) -> None:
        """Refuse values that contradict each other (each field alone was checked against what it declares)."""
        c = self
        if c.epochs < 1:
            raise ConfigError(f"--hours {c.hours:g}: must be at least one {c.epoch_s:g}-s epoch")
        if abs(c.hours * 3600.0 / c.epoch_s - c.epochs) > 1e-9:
            raise ConfigError(f"--hours {c.hours}: must be a whole number of {c.epoch_s:g}-s epochs")
        sums_to_one(c, "weights")
        _auto_or(c.cohort_size, "--cohort-size", int, lambda v, text: v >= 1 and str(v) == text.strip(),
                 "a whole number >= 1")
        _auto_or(c.load_scale, "--load-scale", float, lambda v, text: v > 0 and math.isfinite(v), "a positive number")
        if len(set(c.gpu_types)) != len(c.gpu_types):
            raise ConfigError(f"gpu_types={','.join(c.gpu_types)}: must not repeat a GPU type")
        if len(set(c.gpu_counts)) != len(c.gpu_counts):
            raise ConfigError(f"gpu_counts={','.join(map(str, c.gpu_counts))}: must not repeat a GPU count")
        ordered(c, "cop_min", "cop_max")
        monotone(c, "pc_pstates", increasing=False, strict=False, what="P0 down to P3, non-increasing")
        monotone(c, "pstate_busy_limits", increasing=False, strict=True, what="P1 down to P3, decreasing")
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


def furthest_from_default(cfg, n: int = 2) -> str:
    """The `n` numeric parameters of `cfg` furthest from their defaults (by orders of magnitude), as
    'name=value (default d)': where a result is absurd (infinite totals, no request served), the likely cause."""
    scored = []
    for f in dataclasses.fields(cfg):
        value, default = getattr(cfg, f.name), f.default
        pairs = zip(value, default) if isinstance(value, tuple) and isinstance(default, tuple) else [(value, default)]
        for v, d in pairs:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not isinstance(d, (int, float)) or v == d:
                continue
            if v == 0 or d == 0:
                score = 1.0
            else:
                score = abs(math.log10(abs(v) / abs(d)))
            scored.append((score, f.name, value, default))
            break
    scored.sort(key=lambda x: -x[0])
    shown = [f"{name}={_text(v)} (default {_text(d)})" for _, name, v, d in scored[:n]]
    return ", ".join(shown) if shown else "no parameter differs from its default"


def _text(v) -> str:
    return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) if isinstance(v, tuple) else (
        f"{v:g}" if isinstance(v, float) else str(v))


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


def load_json(path: str | Path) -> dict:
    """Read a JSON file of parameter overrides (flat, by field name)."""
    p = Path(path)
    if p.exists() and not p.is_dir() and not p.is_file():  # reading a pipe or device would wait forever
        raise ConfigError(f"{p}: is not a regular file (a pipe, socket or device); give a JSON file")
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
