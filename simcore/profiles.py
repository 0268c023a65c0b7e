"""Execution profiles: how long a request computes on each node type (SPEC 4, "Execution profile").

This module owns, per (model, node type), three things and nothing else:

- the prefill time of a prompt (`prefill_s`),
- the time of one decode iteration when `batch` requests run together (`decode_step`),
- whether the model can be placed on the node at all (`hosts`: weights + KV of one request fit the pooled memory).

Node type index t = gpu_type_index * len(cfg.gpu_counts) + count_index, i.e. with the defaults
(A100,2), (A100,4), (A100,8), (H100,2), (H100,4), (H100,8). Model index m follows `config.MODELS`.

Where real measurements exist they are used: Llama-2-70B on DGX-A100 / DGX-H100 at tensor parallelism 2/4/8,
from the Splitwise measurements (Patel et al., ISCA 2024) published in Mutinifni/splitwise-sim
`data/perf_model.csv`. The compact derived table `simcore/data/profiles_llama2_70b_splitwise.csv` is committed
(see `simcore/data/SOURCES.md`); `load_profiles` reads only that file, so the simulator needs no external data.
`build_table` regenerates it from the raw CSV. Every other (model, node type) uses a roofline:

- prefill, compute-bound:  2 x params x prompt_tokens / (prefill_mfu x gpus x TFLOP/s)
- decode step, bandwidth-bound:  (weights + batch x KV of a mean context) / (decode_bw_fraction x gpus x HBM)

How the measurements are turned into a profile (and why, from the data):

- Prefill is piecewise linear in prompt tokens between the measured prompt sizes (128 ... 8192): the measured
  curve is not a line (flat ~50-80 ms overhead floor up to ~512 tokens, then super-linear from attention), and a
  least-squares `a + b x tokens` misses it by up to +48 % (H100x8 at 2048 tokens) and goes negative at the origin.
  Below the first measured size the time is held at that size's value (the floor); above the last it grows with
  the last segment's slope. Values are made non-decreasing (measurement noise at the floor).
- Prompts prefilled in one pass: the measured batch runs (b prompts of 512 tokens prefilled together) take about
  as long as one prompt of b x 512 tokens (ratio 0.80 .. 1.34, median ~1.0, over the 34 batch points but the
  two broken tp2 x 64 runs): batching prompts gives no per-token gain, so a pass over several prompts is timed
  as one prompt of their total length (`prompts_in_pass`).
- `token_time` is the time of one decode iteration: e2e_time = prompt_time + (token_size - 1) x token_time holds
  to 0.1 % in the runs. The decode step vs batch size is interpolated linearly between the measured batch sizes
  1..64 (at a 512-token prompt). A batch run whose e2e_time disagrees with that identity by more than 5 % did not
  run as one plain batch (A100x2 at 32 and 64, H100x2 at 64: e2e 1.2-17 x too long, prompt_time lower at 64 than
  at 32: memory-starved, preempting) and is replaced by linear extrapolation from the valid batch sizes.

How a node shares its GPU (the exact engine's node, `simcore.engine`; docs/model.md 'Capacity'): a node is a
continuous-batching server as vLLM's (and vidur's vLLM scheduler) is. A prompt's prefill is a pass that occupies
the whole GPU, one prompt after another (not chunked): the running requests' decode steps wait for it. Between
prefills the GPU runs decode steps over every running request, one token each, `decode_step(batch)`. So a
request takes of its node's GPU `gpu_s = prefill_s(prompt) + output_tokens x decode_step(batch) / batch`
(`gpu_s_array`), and its first token is out when its prefill pass ends.

Calibration (docs/model.md 'Validation', rung 0), against the independent reference `simcore/data/vidur/`:
`prefill_mfu` = (0.5, 0.42) for (A100, H100) is the prefill time vidur gives the mean Azure 2023 prompt (1,333
tokens) at 50 % load, TTFT minus scheduling delay (0.116 s, 0.043 s); `decode_bw_fraction` = 0.9 (was 0.7) then
brings the 7B capacities within 10 % of vidur's. The 70B measurements are kept (docs/model.md 'Validation').

Placement uses `cfg.kv_tokens_for_fit` (4096 = Llama-2's context window); the roofline decode step reads the KV
of `cfg.decode_context_tokens` (1280 ~ the output-weighted mean context of the Azure 2023 token pairs).
"""
from __future__ import annotations

import bisect
import csv
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simcore import physics
from simcore.config import MODELS, Config
from simcore.errors import ConfigError


SOURCE_MEASURED = "splitwise-sim measured"
SOURCE_ROOFLINE = "roofline"

TABLE_PATH = Path(__file__).resolve().parent / "data" / "profiles_llama2_70b_splitwise.csv"
TABLE_COLUMNS = ("model", "hardware", "tensor_parallel", "quantity", "x", "value_s", "measured_mean_s",
                 "n_runs", "note")

# Unit conversions (not tunables): config carries GB, TB/s, TFLOP/s, billions of parameters.
_BYTES_PER_GB = 1e9
_BYTES_PER_TB = 1e12
_FLOP_PER_TFLOP = 1e12
_PARAMS_PER_B = 1e9
_FLOP_PER_PARAM_TOKEN = 2.0  # a forward pass costs 2 FLOPs per parameter per token (multiply + add)
_MS_PER_S = 1000.0


def _key(name: str) -> str:
    """Name normalisation so config names meet the data's: 'Llama-2-70B' ~ 'llama2-70b', 'A100-80GB' ~ 'a100-80gb'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# --- roofline ------------------------------------------------------------------------------------------------
def roofline_prefill_s_per_token(params_b, gpus, tflops_per_gpu, prefill_mfu):
    """Compute-bound prefill: 2 x params FLOPs per prompt token at `prefill_mfu` of the node's peak (elementwise).

    The attention term (~ layers x d_model x tokens^2) is left out: for Llama-2-7B at 2048 tokens it is ~4 %.
    """
    return (_FLOP_PER_PARAM_TOKEN * params_b * _PARAMS_PER_B) / (prefill_mfu * gpus * tflops_per_gpu * _FLOP_PER_TFLOP)


def roofline_decode_step_s(weights_gb, kv_mb_per_token, context_tokens, batch, gpus, hbm_tb_per_s, bw_fraction):
    """Bandwidth-bound decode iteration: read all weights once plus each request's KV cache (elementwise).

    KV size uses physics.request_kv_gb (the Eq. 1 memory accounting), so memory and time agree on units.
    """
    gb = weights_gb + batch * physics.request_kv_gb(context_tokens, kv_mb_per_token)
    return gb * _BYTES_PER_GB / (bw_fraction * gpus * hbm_tb_per_s * _BYTES_PER_TB)


# --- the profile object --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profiles:
    """Execution profile of every (model m, node type t); arrays are read-only.

    prefill_knots_tokens[K]        prompt sizes (tokens) where the prefill curve has a knot; knot 0 is 0 tokens
    prefill_knot_s[M, T, K]        prefill time (s) of one prompt of prefill_knots_tokens[k] tokens
    prefill_slope_s_per_token[M, T, K]  slope (s/token) from knot k to k+1; the last one applies beyond the last knot
    decode_step_s[M, T, max_batch + 1]  one decode iteration (s) with `batch` requests running; [.., 0] == [.., 1]
    hosts[M, T]                    the model's weights + KV of one kv_tokens_for_fit-token request fit the node
    source[M][T]                   SOURCE_MEASURED or SOURCE_ROOFLINE
    """

    models: tuple
    node_types: tuple  # ((gpu_type, gpu_count), ...) in node-type index order
    max_batch: int
    kv_tokens_for_fit: int
    decode_context_tokens: float
    prefill_knots_tokens: np.ndarray
    prefill_knot_s: np.ndarray
    prefill_slope_s_per_token: np.ndarray
    decode_step_s: np.ndarray
    hosts: np.ndarray
    source: tuple
    # Python copies for the scalar methods: the event engine calls them once per request, where numpy scalar
    # indexing would cost more than the arithmetic.
    _knots: list = field(init=False, repr=False, compare=False)
    _pf_v: list = field(init=False, repr=False, compare=False)
    _pf_slope: list = field(init=False, repr=False, compare=False)
    _step: list = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("prefill_knots_tokens", "prefill_knot_s", "prefill_slope_s_per_token", "decode_step_s", "hosts"):
            getattr(self, name).setflags(write=False)  # shared through the cache: nobody may edit them
        object.__setattr__(self, "_knots", self.prefill_knots_tokens.tolist())
        object.__setattr__(self, "_pf_v", self.prefill_knot_s.tolist())
        object.__setattr__(self, "_pf_slope", self.prefill_slope_s_per_token.tolist())
        object.__setattr__(self, "_step", self.decode_step_s.tolist())

    # --- scalar, per request --------------------------------------------------------------------------------
    def prefill_s(self, m: int, t: int, prompt_tokens: float, prompts_in_pass: int = 1) -> float:
        """Prefill time (s) of a pass over `prompts_in_pass` prompts of `prompt_tokens` each (default: alone).

        The measurements show no per-token gain from prefilling prompts together, so a pass is timed as one
        prompt of the total length.
        """
        n = prompt_tokens * prompts_in_pass
        k = bisect.bisect_right(self._knots, n) - 1
        if k < 0:
            k = 0
        return self._pf_v[m][t][k] + self._pf_slope[m][t][k] * (n - self._knots[k])

    def decode_step(self, m: int, t: int, batch: int) -> float:
        """Time (s) of one decode iteration with `batch` requests running (0 counts as 1)."""
        return self._step[m][t][batch]

    def exec_s(self, m: int, t: int, prompt_tokens: float, output_tokens: float, batch: int) -> float:
        """Execution time (s) of one request alone on the GPU: its prefill + output_tokens decode steps at `batch`
        (Eq. 3's LA_tot,exec)."""
        return self.prefill_s(m, t, prompt_tokens) + output_tokens * self._step[m][t][batch]

    # --- vectorized, for the epoch evaluator (elementwise, numpy broadcasting) -----------------------------
    def prefill_s_array(self, m_idx, t_idx, prompt_tokens, prompts_in_pass=1) -> np.ndarray:
        """`prefill_s` elementwise over arrays of model index, node-type index and prompt tokens."""
        knots = self.prefill_knots_tokens
        n = np.asarray(prompt_tokens, dtype=float) * prompts_in_pass
        k = np.clip(np.searchsorted(knots, n, side="right") - 1, 0, knots.size - 1)
        return self.prefill_knot_s[m_idx, t_idx, k] + self.prefill_slope_s_per_token[m_idx, t_idx, k] * (n - knots[k])

    def decode_step_array(self, m_idx, t_idx, batch) -> np.ndarray:
        """`decode_step` elementwise (batch: integer array in 0..max_batch)."""
        return self.decode_step_s[m_idx, t_idx, batch]

    def exec_s_array(self, m_idx, t_idx, prompt_tokens, output_tokens, batch) -> np.ndarray:
        """`exec_s` elementwise."""
        return (self.prefill_s_array(m_idx, t_idx, prompt_tokens)
                + np.asarray(output_tokens, dtype=float) * self.decode_step_s[m_idx, t_idx, batch])

    def gpu_s_array(self, m_idx, t_idx, prompt_tokens, output_tokens, batch) -> np.ndarray:
        """GPU time (s) one request takes of a node serving `batch` requests (elementwise): its prefill pass alone,
        plus its share of the decode steps, output_tokens x decode_step(batch) / batch."""
        b = np.maximum(np.asarray(batch), 1)
        return (self.prefill_s_array(m_idx, t_idx, prompt_tokens)
                + np.asarray(output_tokens, dtype=float) * self.decode_step_s[m_idx, t_idx, batch] / b)

    # --- lookups -------------------------------------------------------------------------------------------
    def node_type_index(self, gpu_type: str, gpu_count: int) -> int:
        """Index t of a (GPU type, GPU count) node type."""
        try:
            return self.node_types.index((gpu_type, gpu_count))
        except ValueError:
            raise ConfigError(f"no node type ({gpu_type}, {gpu_count}) among {self.node_types}") from None


# --- the committed table -------------------------------------------------------------------------------------
def read_table(path: str | Path = TABLE_PATH) -> tuple[dict, dict]:
    """Read the derived table: ({(model_key, hw_key, tp): {prompt_tokens: s}}, {(...): {batch: s}})."""
    prefill: dict = {}
    decode: dict = {}
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                key = (_key(row["model"]), _key(row["hardware"]), int(row["tensor_parallel"]))
                x, v = float(row["x"]), float(row["value_s"])
                target = {"prefill_s": prefill, "decode_step_s": decode}[row["quantity"]]
            except (KeyError, ValueError) as e:
                raise ConfigError(f"{path}:{line}: malformed profile row ({e})") from None
            target.setdefault(key, {})[x] = v
    return prefill, decode


def _interp_extrap(x_known, y_known, x_new):
    """Linear interpolation; outside the known range, linear extrapolation with the end segment's slope."""
    x_known = np.asarray(x_known, dtype=float)
    y_known = np.asarray(y_known, dtype=float)
    x_new = np.asarray(x_new, dtype=float)
    y = np.interp(x_new, x_known, y_known)
    if x_known.size >= 2:
        lo = (y_known[1] - y_known[0]) / (x_known[1] - x_known[0])
        hi = (y_known[-1] - y_known[-2]) / (x_known[-1] - x_known[-2])
        y = np.where(x_new < x_known[0], y_known[0] + lo * (x_new - x_known[0]), y)
        y = np.where(x_new > x_known[-1], y_known[-1] + hi * (x_new - x_known[-1]), y)
    return y


# --- building the profiles from the config -------------------------------------------------------------------
def load_profiles(cfg: Config) -> Profiles:
    """The profiles of `cfg` (cached on the values they depend on); reads only the committed table."""
    kv_tokens_for_fit, decode_context_tokens = cfg.kv_tokens_for_fit, cfg.decode_context_tokens
    n_gpu = len(cfg.gpu_types)
    for name in ("gpu_mem_gb", "gpu_hbm_tb_per_s", "gpu_tflops", "prefill_mfu"):
        if len(getattr(cfg, name)) != n_gpu:
            raise ConfigError(f"{name}: needs one value per GPU type ({n_gpu}), got {len(getattr(cfg, name))}")
    for name in ("model_weights_gb", "model_kv_mb_per_token", "model_params_b"):
        if len(getattr(cfg, name)) != len(MODELS):
            raise ConfigError(f"{name}: needs one value per model {MODELS}, got {len(getattr(cfg, name))}")
    if cfg.max_batch < 1:
        raise ConfigError(f"max_batch {cfg.max_batch}: must be at least 1")
    if not (min(cfg.prefill_mfu) > 0 and cfg.decode_bw_fraction > 0):
        raise ConfigError("prefill_mfu and decode_bw_fraction must be positive")
    return _build(
        tuple(cfg.gpu_types), tuple(cfg.gpu_counts), tuple(cfg.gpu_mem_gb), tuple(cfg.gpu_hbm_tb_per_s),
        tuple(cfg.gpu_tflops), tuple(map(float, cfg.prefill_mfu)), float(cfg.decode_bw_fraction), tuple(cfg.model_weights_gb),
        tuple(cfg.model_kv_mb_per_token), tuple(cfg.model_params_b), int(cfg.max_batch), int(kv_tokens_for_fit),
        float(decode_context_tokens), str(TABLE_PATH))


@functools.lru_cache(maxsize=16)
def _build(gpu_types, gpu_counts, gpu_mem_gb, hbm, tflops, mfu, bw_frac, weights_gb, kv_mb, params_b,
           max_batch, kv_tokens_for_fit, ctx_tokens, table_path) -> Profiles:
    measured_prefill, measured_decode = read_table(table_path)
    node_types = tuple((g, c) for g in gpu_types for c in gpu_counts)
    M, T = len(MODELS), len(node_types)

    # One knot grid for every (m, t), so the vectorized lookup needs a single searchsorted. The roofline is a
    # line through 0, exact at any knots; a measured curve is held at its first value down to 0 tokens.
    sizes = sorted({x for curve in measured_prefill.values() for x in curve})
    knots = np.array([0.0] + [x for x in sizes if x > 0], dtype=float)
    K = knots.size
    pf = np.zeros((M, T, K))
    slope = np.zeros((M, T, K))
    step = np.zeros((M, T, max_batch + 1))
    hosts = np.zeros((M, T), dtype=bool)
    batches = np.arange(max_batch + 1, dtype=float)
    batches[0] = 1.0  # index 0 = an empty node's first request = batch 1
    source = []
    for m, model in enumerate(MODELS):
        row = []
        for t, (gpu, count) in enumerate(node_types):
            gi = gpu_types.index(gpu)
            key = (_key(model), _key(gpu), int(count))
            need = physics.node_memory_gb(weights_gb[m], physics.request_kv_gb(kv_tokens_for_fit, kv_mb[m]))
            hosts[m, t] = need <= count * gpu_mem_gb[gi]
            if key in measured_prefill and key in measured_decode:
                px, py = zip(*sorted(measured_prefill[key].items()))
                v = np.interp(knots, px, py)  # held flat below the first measured size
                tail = (py[-1] - py[-2]) / (px[-1] - px[-2]) if len(px) >= 2 else 0.0
                v = np.maximum.accumulate(v)  # more prompt tokens never take less time
                pf[m, t] = v
                slope[m, t, :-1] = np.diff(v) / np.diff(knots)
                slope[m, t, -1] = max(tail, 0.0)
                bx, by = zip(*sorted(measured_decode[key].items()))
                step[m, t] = np.maximum.accumulate(_interp_extrap(bx, by, batches))
                row.append(SOURCE_MEASURED)
            else:
                per_tok = roofline_prefill_s_per_token(params_b[m], count, tflops[gi], mfu[gi])
                pf[m, t] = per_tok * knots
                slope[m, t, :] = per_tok
                step[m, t] = roofline_decode_step_s(weights_gb[m], kv_mb[m], ctx_tokens, batches, count, hbm[gi],
                                                    bw_frac)
                row.append(SOURCE_ROOFLINE)
        source.append(tuple(row))
    return Profiles(models=MODELS, node_types=node_types, max_batch=max_batch, kv_tokens_for_fit=kv_tokens_for_fit,
                    decode_context_tokens=ctx_tokens, prefill_knots_tokens=knots, prefill_knot_s=pf,
                    prefill_slope_s_per_token=slope, decode_step_s=step, hosts=hosts, source=tuple(source))


# --- regenerating the committed table (offline; not run by tests) --------------------------------------------
def build_table(perf_model_csv_path: str | Path, out_path: str | Path = TABLE_PATH, model: str = "llama2-70b",
                hardware: tuple = ("a100-80gb", "h100-80gb"), max_e2e_mismatch: float = 0.05) -> list[dict]:
    """Derive `profiles_llama2_70b_splitwise.csv` from splitwise-sim's raw `data/perf_model.csv`.

    For each (hardware, tensor_parallel) of `model`:
      prefill_s at each measured prompt size = mean prompt_time of its batch-1 runs (ms -> s), made
        non-decreasing in prompt size;
      decode_step_s at each measured batch size = mean token_time of the batch sweep (512-token prompts, 128
        output tokens). A batch whose runs break e2e = prompt + (tokens - 1) x token_time by more than
        `max_e2e_mismatch` did not run as one plain batch: it is replaced by linear interpolation/extrapolation
        from the valid batch sizes. Then made non-decreasing in batch.
    Writes `out_path` (columns TABLE_COLUMNS) and returns its rows. Usage:
        python -c "from simcore.profiles import build_table; build_table('/path/to/perf_model.csv')"
    """
    runs: dict = {}
    with open(perf_model_csv_path, newline="") as f:
        for r in csv.DictReader(f):
            if r["model"] != model or r["hardware"] not in hardware:
                continue
            runs.setdefault((r["hardware"], int(r["tensor_parallel"])), []).append(
                {k: float(r[k]) for k in ("prompt_size", "batch_size", "token_size", "prompt_time", "token_time",
                                          "e2e_time")})
    if not runs:
        raise ConfigError(f"{perf_model_csv_path}: no rows of {model} on {hardware}")
    out = []
    for (hw, tp) in sorted(runs, key=lambda k: (hardware.index(k[0]), k[1])):
        rs = runs[(hw, tp)]
        # prefill vs prompt size, batch 1 (prompt_time does not depend on the output length asked for)
        sizes = sorted({r["prompt_size"] for r in rs if r["batch_size"] == 1})
        level = 0.0
        for p in sizes:
            times = [r["prompt_time"] / _MS_PER_S for r in rs if r["batch_size"] == 1 and r["prompt_size"] == p]
            mean = sum(times) / len(times)
            note = "" if mean >= level else "raised to the previous size's value (non-decreasing)"
            level = max(level, mean)
            out.append(dict(model=model, hardware=hw, tensor_parallel=tp, quantity="prefill_s", x=int(p),
                            value_s=level, measured_mean_s=mean, n_runs=len(times), note=note))
        # decode step vs batch: the batch sweep runs at the smallest output length with batch > 1 runs
        sweep_tokens = min(r["token_size"] for r in rs if r["batch_size"] > 1)
        sweep_prompt = min(r["prompt_size"] for r in rs if r["batch_size"] > 1)
        sweep = [r for r in rs if r["token_size"] == sweep_tokens and r["prompt_size"] == sweep_prompt]
        stats = {}
        for b in sorted({r["batch_size"] for r in sweep}):
            bs = [r for r in sweep if r["batch_size"] == b]
            mean = sum(r["token_time"] for r in bs) / len(bs) / _MS_PER_S
            ratio = sum(r["e2e_time"] / (r["prompt_time"] + (r["token_size"] - 1) * r["token_time"])
                        for r in bs) / len(bs)
            stats[b] = (mean, len(bs), ratio)
        valid = [b for b, (_, _, ratio) in stats.items() if abs(ratio - 1.0) <= max_e2e_mismatch]
        filled = _interp_extrap(valid, [stats[b][0] for b in valid], list(stats))
        level = 0.0
        for b, v in zip(stats, filled):
            mean, n, ratio = stats[b]
            note = "" if b in valid else (f"run inconsistent (e2e {ratio:.2f} x prompt + (tokens-1) x step): "
                                          f"interpolated/extrapolated from valid batch sizes")
            if v < level:
                note = (note + "; " if note else "") + "raised to the previous batch's value (non-decreasing)"
            level = max(level, float(v))
            out.append(dict(model=model, hardware=hw, tensor_parallel=tp, quantity="decode_step_s", x=int(b),
                            value_s=level, measured_mean_s=mean, n_runs=n, note=note))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TABLE_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in out:
            w.writerow({**r, "value_s": f"{r['value_s']:.6f}", "measured_mean_s": f"{r['measured_mean_s']:.6f}"})
    return out


def summary_rows(cfg: Config, batches=(1, 8, 64), prompts=(512, 2048, 8192)) -> list[dict]:
    """A readable table of the profiles (ms) for docs and reports: one row per (model, node type)."""
    p = load_profiles(cfg)
    rows = []
    for m, model in enumerate(p.models):
        for t, (gpu, count) in enumerate(p.node_types):
            r = {"model": model, "gpu": gpu, "gpus": count, "source": p.source[m][t], "hosts": bool(p.hosts[m, t])}
            r.update({f"prefill_{n}_ms": _MS_PER_S * p.prefill_s(m, t, n) for n in prompts})
            r.update({f"step_b{b}_ms": _MS_PER_S * p.decode_step(m, t, b) for b in batches if b <= p.max_batch})
            rows.append(r)
    return rows


__all__ = ["Profiles", "load_profiles", "build_table", "read_table", "summary_rows", "roofline_prefill_s_per_token",
           "roofline_decode_step_s", "SOURCE_MEASURED",
           "SOURCE_ROOFLINE", "TABLE_PATH"]
