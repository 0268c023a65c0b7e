"""The workload of a run (SPEC 3): which requests arrive when, from where, for which model, with how many tokens.

This module owns
- `Workload`, the arrays the engines play (one row per request, sorted by arrival time);
- `load_workload(cfg, rng)`, which builds it from a bundled real trace or from a user's CSV, applies the load
  factor (decided by `simcore.sizing` from the trace's busiest epoch and token mix, which this module
  describes: the loader reads traces, it does not size fleets) and draws the per-request choices the trace does not hold (model class where there is
  no model column, token pairs for the per-second bundle, origin region);
- the CSV reader for BurstGPT (every release) and Azure LLM inference (2023, 2024) files, with its checks:
  a malformed file raises `TraceError("<path>:<line>: <reason>")` (1-based lines, header = line 1; line 0 means
  the file as a whole, e.g. a missing file).

Bundled traces (data and licences in `traces/data/`, see its SOURCES.md):
- `azure-code-2024`: the real per-second request counts of the Azure LLM inference trace 2024 (code), day
  `cfg.trace_day` (horizons past 24 h run on into the following days of the bundled week). Each second's
  requests arrive uniformly within that second; each request's (prompt, output) tokens are drawn with
  replacement from the real pairs of the Azure 2023 code and conversation traces, pooled.
- `burstgpt-profile`: BurstGPT_1's mean requests per hour of day as a piecewise-constant Poisson rate
  (repeated daily past 24 h); the same token pairs.
- `azure-conv-2023`, `azure-code-2023`: the real hour of the Azure LLM inference trace 2023 (conversation,
  19,366 requests over 58.4 min; code, 8,819 over 57.3 min; 2023-11-16 from 18:15:46 / 18:17:03 UTC), each
  request at its own arrival (ms) with its own tokens, from the file's first request's whole second; past the
  file's last request the hour repeats (`Workload.notes`). Scaled per request (below). `cohort_size` auto plays
  them exactly wherever the run holds at most `max_workload_requests` real requests (cohorts are not held to exact
  play on them, docs/model.md 'Validation'); a larger run gets auto's cohorts and a note saying so. So does a world
  of fewer than `COHORT_AUTO_MIN_NODES_PER_DC` (30) nodes per datacenter on any trace (`run_cohort`).

Load factor f (SPEC 3; the rule is `simcore.sizing`'s): `auto` = peak_utilization x the serving capacity of the
reference fleet (reference_dcs x nodes_per_dc nodes) in one epoch / (most arrivals in one `epoch_s` epoch of the
whole trace day, before scaling); it depends neither on `cfg.dcs` nor on the horizon, so the scaling experiment keeps one
workload. Each simulated request then stands for `cohort` real requests (`cfg.cohort_size`; docs/model.md). For `burstgpt-profile` the pre-scaling epoch count is the profile's
expected count (the profile is a rate, not a draw). f < 1 thins, f > 1 multiplies:
- per-second counts: binomial(count, f) when thinning, count x f rounded stochastically when multiplying;
- Poisson profile: the rate is multiplied by f (exact for a Poisson process either way);
- the 2023 hours: request i is played count_i times, count_i drawn as a per-second count is (f x 1 per
  request), every copy at the request's arrival plus a uniform jitter in [-0.5, +0.5) s (a copy jittered before
  0 is mirrored back after it); the first copy with the request's tokens, each other with those of a request of
  the hour drawn within `HOUR_TOKEN_WINDOW_S` around it (`_neighbour_tokens`: no burst of identical prompts);
- CSV traces: thinning keeps each request with probability f; multiplying keeps every request and adds
  floor(f) - 1 replicas, plus one more with probability frac(f), each replica moved by a uniform jitter in
  [-0.5, +0.5) s (same tokens, same model); a replica jittered before the trace's first request is mirrored
  back after it (none arrives before the trace starts), one jittered past the horizon is dropped.

Notes (`Workload.notes`, printed by `run.py`): a horizon past a CSV trace's last request (the hours after it have
no arrivals); a bundled Azure run past 24 h (the following hours are the trace's next real days, each busier or
quieter than the first, at the first day's load factor); a profile run past 24 h (the day repeats).

Context window (`cfg.context_policy`): a prompt longer than its model's context (`cfg.model_context_tokens`,
Llama-2: 4,096 tokens) is clipped to the window (`clip`, the default: the request keeps its arrival and output),
or the request is dropped (`drop`), or the whole trace is refused (`refuse`, one line naming the file and the
count of real requests). `Workload.over_context` counts the clipped or dropped real requests (rows x cohort;
summary.json: `requests_over_context`); real long-context traces hold many. The load factor is computed from the
trace as the policy leaves it (clipped prompts; without the dropped requests), so it is the load of the requests
the run serves; the policy itself applies to the drawn requests after scaling.

Size: a workload above `cfg.max_workload_requests` simulated requests is refused from its expected count
(trace x load factor / cohort) before any array of that size is made; so is one standing for more real requests
(trace x load factor), or with a larger cohort, than a run counts exactly (`MAX_REAL_REQUESTS` = 2**53).

Randomness comes only from the generator passed in (the run's "trace" stream), drawn in a fixed order:
load scaling, arrival times, token pairs, model class, origin. Origins are drawn last, so changing `cfg.dcs`
changes nothing but the origins.
"""
from __future__ import annotations

import csv
import functools
import gzip
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simcore.errors import ConfigError, TraceError

DATA_DIR = Path(__file__).resolve().parent / "data"
COUNTS_FILE = DATA_DIR / "azure2024_code_week_per_second.npz"
PAIRS_FILE = DATA_DIR / "azure2023_token_pairs.csv.gz"
PROFILE_FILE = DATA_DIR / "burstgpt1_hour_of_day_avg_requests.csv"
HOURS_FILE = DATA_DIR / "azure2023_hours.csv.gz"

AZURE_2024 = "azure-code-2024"
BURSTGPT_PROFILE = "burstgpt-profile"
AZURE_2023 = {"azure-conv-2023": "conv", "azure-code-2023": "code"}  # trace name -> source in HOURS_FILE
_SOURCES = {
    AZURE_2024: "Azure LLM inference trace 2024 (code), per-second arrivals of {days} "
                "(Azure Public Dataset, CC-BY-4.0; Stojkovic et al., DynamoLLM, HPCA 2025; via tu-nv/drafas, MIT)",
    BURSTGPT_PROFILE: "BurstGPT_1 mean requests per hour of day as a Poisson rate "
                      "(Wang et al., BurstGPT, KDD 2025, CC-BY-4.0; aggregated by IsabellaLiu99/burstgpt_analysis)",
    **{name: f"Azure LLM inference trace 2023 ({src}), its hour of 2023-11-16 with arrivals and tokens "
             "(Azure Public Dataset, CC-BY-4.0; Patel et al., Splitwise, ISCA 2024)" for name, src in AZURE_2023.items()},
}
_PAIRS_SOURCE = "tokens: Azure LLM inference trace 2023 code+conv pairs (CC-BY-4.0; Patel et al., Splitwise, ISCA 2024)"

SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600
_MODEL_NAMES = ("Llama-2-7B", "Llama-2-70B")  # simcore.config.MODELS (the model axis of the workload)
MODEL_CODES = {"chatgpt": 0, "gpt-4": 1}  # SPEC 3: ChatGPT -> Llama-2-7B (0), GPT-4 -> Llama-2-70B (1)

# Column names, lower-cased (files are matched case-insensitively, surrounding blanks ignored).
BURSTGPT_COLUMNS = ("timestamp", "model", "request tokens", "response tokens")
BURSTGPT_REQUIRED = ("timestamp", "request tokens", "response tokens")
AZURE_COLUMNS = ("timestamp", "contexttokens", "generatedtokens")
_INT32_MAX = np.iinfo(np.int32).max
MAX_REAL_REQUESTS = 2 ** 53  # most real requests a run may stand for (counted exactly in float64 and int64)
# cohort_size auto plays a world of fewer nodes per datacenter exactly (where the run fits max_workload_requests):
# the validation grid holds cohorts to exact play on 30-node datacenters and fails only on 4 and 12 (docs/model.md
# 'Cohorts'). A module constant, not a Config field: it is the grid's finding, not a property of a world.
COHORT_AUTO_MIN_NODES_PER_DC = 30
# copies of a scaled 2023-hour request take the tokens of a request within this window around it (s): ~330
# conversation / ~150 code requests, more than the copies of one request (f <= 180), and short against the hour's
# drift in token lengths (docs/model.md 'Workload')
HOUR_TOKEN_WINDOW_S = 60.0
_BLOCK_BYTES = 1 << 26  # bytes scanned at once when counting fields (bounds the scan's memory)


def trace_names() -> tuple[str, ...]:
    """The bundled traces `cfg.trace` may name (anything else must be a CSV path)."""
    return (AZURE_2024, BURSTGPT_PROFILE, *AZURE_2023)


# ------------------------------------------------------------------------------------------------
# The workload
# ------------------------------------------------------------------------------------------------
@dataclass
class Workload:
    """One row per request, sorted by arrival time.

    :param name: the trace as the run named it (`cfg.trace`)
    :param t_s: arrival time, seconds since the start of epoch 0 (float64, ascending, in [0, horizon))
    :param model: 0 = Llama-2-7B (ChatGPT-class), 1 = Llama-2-70B (GPT-4-class) (int8)
    :param prompt_tokens: prompt (context) tokens (int32)
    :param output_tokens: output (generated) tokens (int32); 0 marks a failed request
    :param origin: region the request comes from, in [0, cfg.dcs) (int16)
    :param scale: the load factor that was applied (real requests per request of the trace)
    :param source: one line citing the data
    :param cohort: real requests each row stands for (`cfg.cohort_size`; 1 = every row is one real request)
    :param over_context: real requests whose prompt exceeded their model's context window (clipped or dropped)
    :param sizing: the `simcore.sizing.Sizing` that gave the load factor (and the fleet the run must use)
    :param notes: one-line remarks for the user about how the trace was read (horizon past its span, ...)
    """

    name: str
    t_s: np.ndarray
    model: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    origin: np.ndarray
    scale: float
    source: str
    cohort: int = 1
    over_context: int = 0
    sizing: object = None
    notes: tuple = ()

    def __post_init__(self) -> None:
        self.t_s = np.ascontiguousarray(self.t_s, dtype=np.float64)
        self.model = np.ascontiguousarray(self.model, dtype=np.int8)
        self.prompt_tokens = np.ascontiguousarray(self.prompt_tokens, dtype=np.int32)
        self.output_tokens = np.ascontiguousarray(self.output_tokens, dtype=np.int32)
        self.origin = np.ascontiguousarray(self.origin, dtype=np.int16)
        n = len(self.t_s)
        for f in ("model", "prompt_tokens", "output_tokens", "origin"):
            if len(getattr(self, f)) != n:
                raise ValueError(f"Workload.{f} has {len(getattr(self, f))} rows, t_s has {n}")

    def __len__(self) -> int:
        return len(self.t_s)

    @property
    def failed(self) -> np.ndarray:
        """Zero-response requests: failures, counted but not served (SPEC 3)."""
        return self.output_tokens == 0


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------
def load_workload(cfg, rng: np.random.Generator, sizing=None) -> Workload:
    """The requests arriving in [0, cfg.horizon_s) of trace `cfg.trace`, scaled by the load factor.

    :param cfg: the run's `simcore.config.Config`
    :param rng: the run's "trace" stream (`simcore.rng.stream(cfg.seed, "trace")`)
    :param sizing: `(cfg, simcore.sizing.TraceShape) -> simcore.sizing.Sizing`, which decides the load factor
        (default `simcore.sizing.size_world`); the loader reads and describes the trace, it sizes nothing. The
        Sizing it returned is `Workload.sizing`.
    :raises ConfigError: unknown trace name, day outside the bundle, horizon past the bundled week
    :raises TraceError: a CSV trace that is missing or malformed
    """
    if cfg.trace == AZURE_2024:
        return _azure_bundle(cfg, rng, sizing)
    if cfg.trace == BURSTGPT_PROFILE:
        return _burstgpt_profile(cfg, rng, sizing)
    if cfg.trace in AZURE_2023:
        return _azure2023_hour(cfg, rng, sizing)
    path = Path(cfg.trace)
    if path.exists() or _looks_like_path(cfg.trace):
        return _csv_workload(cfg, rng, path, sizing)
    raise ConfigError(f"--trace {cfg.trace!r}: neither a bundled trace ({', '.join(trace_names())}) "
                      "nor an existing CSV file")


def _sized(cfg, sizing, trace_peak: float, prompt, output, model_share, bundled: bool = True):
    """Ask the world's sizing (`simcore.sizing.size_world`, or the `sizing` the caller passed) for the load factor
    of a trace whose unscaled busiest epoch holds `trace_peak` requests; return (factor, the Sizing)."""
    from simcore.sizing import TraceShape, size_world

    shape = TraceShape(cfg.trace, float(trace_peak), prompt, output, tuple(model_share), bundled)
    s = (sizing or size_world)(cfg, shape)
    return s.load_factor, s


def cohort_size(cfg, day_requests: float) -> int:
    """Real requests per simulated request: `cfg.cohort_size`, or for 'auto' the whole number that simulates
    about `cohort_auto_requests_per_day` requests per trace day (`day_requests` = real requests of the day)."""
    if cfg.cohort_size != "auto":
        return int(cfg.cohort_size)
    c = day_requests / cfg.cohort_auto_requests_per_day
    return max(1, int(round(c if c < MAX_REAL_REQUESTS else MAX_REAL_REQUESTS)))  # inf: _check_size refuses it


def run_cohort(cfg, sized, day_requests: float, run_requests: float) -> tuple[int, tuple]:
    """The run's cohort and its note, if any: `cohort_size(cfg, day_requests)`, but `auto` plays exactly a run of
    at most `max_workload_requests` real requests (`run_requests`) where cohorts are not held to exact play
    (docs/model.md 'Cohorts', 'Validation'): a world of fewer than `COHORT_AUTO_MIN_NODES_PER_DC` nodes per
    datacenter (its pools are a few nodes; the grid's failing cells are all on 4 and 12 nodes, every 30-node cell
    holds), and the Azure 2023 hours at any size. A larger run of such a world gets auto's cohorts and a note."""
    cohort = cohort_size(cfg, day_requests)
    if cfg.cohort_size != "auto" or cohort == 1:
        return cohort, ()
    nodes = sized.nodes_per_dc if sized is not None else cfg.nodes_per_dc
    where = (f"{cfg.trace}" if cfg.trace in AZURE_2023 else
             f"{nodes} nodes per datacenter (fewer than {COHORT_AUTO_MIN_NODES_PER_DC})"
             if nodes < COHORT_AUTO_MIN_NODES_PER_DC else None)
    if where is None:
        return cohort, ()
    if run_requests <= cfg.max_workload_requests:
        return 1, ()
    return cohort, (f"cohorts of {cohort} on {where}, where they are not held to exact play (docs/model.md "
                    "'Validation'); the run is too large to play exactly",)


def _scale_counts(counts: np.ndarray, g: float, rng: np.random.Generator, systematic: bool) -> np.ndarray:
    """Simulated arrivals per bin from unscaled counts and the factor g = load factor / cohort.

    Exact runs (cohort 1) draw each bin's count (binomial thinning, or stochastic rounding when multiplying).
    Cohort runs sample systematically (one random offset, then every 1/g-th request of the cumulative count),
    so a cohort stands for the real requests around it and thinning adds no burstiness of its own.
    """
    if systematic:
        cum = np.cumsum(counts * g) + rng.random()
        return np.diff(np.floor(np.concatenate(([cum[0] - counts[0] * g], cum)))).astype(np.int64)
    if g < 1.0:
        return rng.binomial(counts, g)
    if g > 1.0:
        x = counts * g
        base = np.floor(x)
        return (base + (rng.random(len(counts)) < (x - base))).astype(np.int64)
    return counts.astype(np.int64)


def _check_size(cfg, trace_requests: float, f: float, cohort: int) -> None:
    """Refuse a workload larger than cfg.max_workload_requests before it is generated (it would exhaust memory),
    and one whose real requests (`trace_requests` x f) or cohort a run could not count exactly."""
    real = trace_requests * f
    if not real <= MAX_REAL_REQUESTS:  # also catches an overflow to inf or NaN
        raise ConfigError(f"--load-scale {cfg.load_scale}: trace {cfg.trace!r} over {cfg.hours:g} h would stand for "
                          f"about {real:.3g} real requests, more than a run can count exactly "
                          f"({MAX_REAL_REQUESTS:.3g}; lower --load-scale or --hours)")
    if not cohort <= MAX_REAL_REQUESTS:
        raise ConfigError(f"--cohort-size {cfg.cohort_size}: more real requests per simulated request than a run "
                          f"can count exactly ({MAX_REAL_REQUESTS:.3g})")
    expected_requests = real / cohort
    if real >= 1 and expected_requests < 1:
        flag, fix = ((f"--cohort-size {cfg.cohort_size}", "lower it") if cfg.cohort_size != "auto" else
                     (f"cohort_auto_requests_per_day={cfg.cohort_auto_requests_per_day:g}", "raise it"))
        raise ConfigError(f"{flag}: cohorts of {cohort:.3g} real requests leave {expected_requests:.2g} simulated "
                          f"requests for the {real:.3g} real ones of the run; {fix}")
    if not expected_requests <= cfg.max_workload_requests:
        raise ConfigError(f"--load-scale {cfg.load_scale}: trace {cfg.trace!r} over {cfg.hours:g} h would hold about "
                          f"{expected_requests:.3g} simulated requests, more than max_workload_requests="
                          f"{cfg.max_workload_requests} (lower --load-scale or --hours, raise --cohort-size, or "
                          "raise the limit)")


def _fit_context(cfg, where: str, t, model, prompt, output, origin, cohort: int = 1) -> tuple:
    """Apply cfg.context_policy to prompts longer than their model's context window; return the (possibly
    clipped or filtered) arrays and the number of requests over the window."""
    window = np.asarray(cfg.model_context_tokens, dtype=np.int64)[model]
    over = prompt > window
    n_over = int(over.sum())
    if n_over == 0:
        return t, model, prompt, output, origin, 0
    if cfg.context_policy == "refuse":
        i = int(np.argmax(np.where(over, prompt - window, -1)))
        raise TraceError(f"{where}: {n_over * cohort} of {len(t) * cohort} real requests have a prompt longer than "
                         f"their model's context "
                         f"window (up to {int(prompt[i])} tokens > {int(window[i])} for {_MODEL_NAMES[model[i]]}); "
                         "set context_policy=clip or context_policy=drop to run it")
    if cfg.context_policy == "clip":
        return t, model, np.minimum(prompt, window).astype(np.int32), output, origin, n_over
    keep = ~over  # drop
    return t[keep], model[keep], prompt[keep], output[keep], origin[keep], n_over


def _windows(cfg, model):
    """Each request's context window (the smaller window where the model is not known yet)."""
    return (np.asarray(cfg.model_context_tokens, dtype=np.int64)[model] if model is not None
            else min(cfg.model_context_tokens))


def _as_policy_leaves(cfg, prompt, output, model=None) -> tuple:
    """(prompt, output, kept share) of a trace's requests as the context policy leaves them: clipped to the
    window, or without the requests it drops (`refuse` leaves them: the run is refused later if any is over).
    Where the model is unknown (drawn later), the smaller window applies. The load factor is computed from these,
    so it is the load of the requests the run will really serve."""
    window = _windows(cfg, model)
    over = prompt > window
    if not over.any() or cfg.context_policy == "refuse":
        return prompt, output, 1.0
    if cfg.context_policy == "clip":
        return np.minimum(prompt, window).astype(np.int32), output, 1.0
    keep = ~over
    return prompt[keep], output[keep], float(keep.mean())


def _looks_like_path(s: str) -> bool:
    return "/" in s or "\\" in s or s.lower().endswith((".csv", ".csv.gz", ".gz"))


# ------------------------------------------------------------------------------------------------
# Bundled data (read once per process; arrays are made read-only so no caller can alter the cache)
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def bundled_counts() -> tuple[tuple[str, ...], np.ndarray]:
    """(days, counts): requests per UTC second of each bundled day of the Azure 2024 code trace (7 x 86,400)."""
    with np.load(COUNTS_FILE, allow_pickle=False) as z:
        days = tuple(str(d) for d in z["days"])
        counts = z["counts"]
    counts.setflags(write=False)
    return days, counts


@functools.lru_cache(maxsize=None)
def token_pairs() -> tuple[np.ndarray, np.ndarray]:
    """(prompt, output) token arrays of the real Azure 2023 code + conversation requests (pooled, file order)."""
    df = pd.read_csv(PAIRS_FILE, dtype={"source": str, "ContextTokens": np.int32, "GeneratedTokens": np.int32})
    prompt = df["ContextTokens"].to_numpy(np.int32)
    output = df["GeneratedTokens"].to_numpy(np.int32)
    prompt.setflags(write=False)
    output.setflags(write=False)
    return prompt, output


@functools.lru_cache(maxsize=None)
def burstgpt_hourly_profile() -> np.ndarray:
    """BurstGPT_1's mean requests per hour, for hours of day 0..23."""
    df = pd.read_csv(PROFILE_FILE)
    v = df.sort_values("hour_of_day")["avg_requests_per_hour"].to_numpy(np.float64)
    v.setflags(write=False)
    return v


@functools.lru_cache(maxsize=None)
def azure2023_hour(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(arrival s, prompt, output, period s) of a bundled 2023 hour (`AZURE_2023`): arrivals from the file's first
    request's whole second, in order; the period is the last arrival rounded up to the second (the hour repeats
    after it)."""
    df = pd.read_csv(HOURS_FILE, dtype={"source": str, "offset_ms": np.int64, "ContextTokens": np.int32,
                                        "GeneratedTokens": np.int32})
    df = df[df["source"] == AZURE_2023[name]]
    t = df["offset_ms"].to_numpy(np.float64) / 1000.0
    out = (t, df["ContextTokens"].to_numpy(np.int32), df["GeneratedTokens"].to_numpy(np.int32))
    for a in out:
        a.setflags(write=False)
    return (*out, float(math.floor(t[-1]) + 1.0))


def epoch_peak_requests(cfg, epochs: int | None = None) -> float:
    """Most unscaled arrivals in one `epoch_s` epoch of a bundled trace's day (`cfg.trace_day` for the Azure
    2024 code trace; the profile's expected count; a 2023 hour repeated over the day), or of its first `epochs`
    epochs (`reports.validate`: a short horizon's own peak). Before the context policy."""
    n = SECONDS_PER_DAY // int(cfg.epoch_s) if epochs is None else epochs
    if cfg.trace == AZURE_2024:
        days, week = bundled_counts()
        per_s = week[days.index(cfg.trace_day)].astype(np.float64)
    elif cfg.trace == BURSTGPT_PROFILE:
        per_s = np.repeat(burstgpt_hourly_profile() / SECONDS_PER_HOUR, SECONDS_PER_HOUR)
    else:
        t, _, _, period = azure2023_hour(cfg.trace)
        reps = int(math.ceil(max(n * cfg.epoch_s, SECONDS_PER_DAY) / period))
        t = (t[None, :] + period * np.arange(reps)[:, None]).ravel()
        per_s = np.bincount(t.astype(np.int64), minlength=SECONDS_PER_DAY).astype(np.float64)
    per_s = np.resize(per_s, max(len(per_s), int(n * cfg.epoch_s)))  # a day repeats past its end
    ep = np.arange(len(per_s)) // int(cfg.epoch_s)
    return float(np.bincount(ep, weights=per_s)[:n].max())


# ------------------------------------------------------------------------------------------------
# Bundled traces
# ------------------------------------------------------------------------------------------------
def _azure_bundle(cfg, rng: np.random.Generator, sizing) -> Workload:
    days, week = bundled_counts()
    if cfg.trace_day not in days:
        raise ConfigError(f"trace_day={cfg.trace_day}: the bundled {AZURE_2024} trace holds {days[0]}..{days[-1]}")
    horizon = cfg.horizon_s
    n_sec = int(math.ceil(horizon))
    first = days.index(cfg.trace_day)
    n_days = -(-n_sec // SECONDS_PER_DAY)
    if first + n_days > len(days):
        raise ConfigError(f"--hours {cfg.hours:g} from trace_day={cfg.trace_day} needs {n_days} days of "
                          f"{AZURE_2024}, which ends on {days[-1]}")
    counts = week[first:first + n_days].reshape(-1)[:n_sec].astype(np.int64)
    sec = np.arange(n_sec, dtype=np.float64)

    # Load factor from the whole trace day (not the run's horizon): its busiest epoch before scaling
    day = week[first].astype(np.int64)
    ep = np.arange(SECONDS_PER_DAY) // int(cfg.epoch_s)
    prompt, output, kept = _as_policy_leaves(cfg, *token_pairs())
    peak = np.bincount(ep, weights=day).max() * kept  # the requests the policy keeps (expected, `drop`)
    f, sized = _sized(cfg, sizing, peak, prompt, output, (1.0 - cfg.gpt4_share, cfg.gpt4_share))
    cohort, notes = run_cohort(cfg, sized, float(day.sum()) * f, float(counts.sum()) * f)
    _check_size(cfg, float(counts.sum()), f, cohort)
    if n_days > 1:  # the horizon runs on into the following real days, at this day's load factor
        growth = ", ".join(f"{d} {week[first + k].sum() / day.sum() - 1:+.0%}" for k, d in
                           enumerate(days[first + 1:first + n_days], start=1))
        notes += (f"hours past 24 play the trace's next real days ({growth} requests against {cfg.trace_day}) at "
                 f"{cfg.trace_day}'s load factor x{f:.4g}, fixed from the first day",)

    # (1) scaling, (2) arrival times
    counts = _scale_counts(counts, f / cohort, rng, cohort > 1)
    t = np.repeat(sec, counts) + rng.random(int(counts.sum()))
    t.sort()  # seconds are already in order; this orders the arrivals within each second
    t = t[t < horizon]  # only a fractional last second reaches past the horizon

    last = days[first + n_days - 1]
    span = cfg.trace_day if n_days == 1 else f"{cfg.trace_day}..{last}"
    return _with_bundled_tokens(cfg, rng, t, f, _SOURCES[AZURE_2024].format(days=span), cohort, sized, notes)


def _burstgpt_profile(cfg, rng: np.random.Generator, sizing) -> Workload:
    per_hour = burstgpt_hourly_profile()
    horizon = cfg.horizon_s
    n_hours = int(math.ceil(horizon / SECONDS_PER_HOUR))
    start = np.arange(n_hours, dtype=np.float64) * SECONDS_PER_HOUR
    dur = np.minimum(start + SECONDS_PER_HOUR, horizon) - start
    rate = per_hour[np.arange(n_hours) % len(per_hour)] / SECONDS_PER_HOUR  # requests per second

    # Load factor from one whole day of the profile: its busiest epoch's expected arrivals
    day_s = np.arange(SECONDS_PER_DAY, dtype=np.float64)
    per_s = per_hour[(day_s // SECONDS_PER_HOUR).astype(int)] / SECONDS_PER_HOUR
    prompt, output, kept = _as_policy_leaves(cfg, *token_pairs())
    peak = np.bincount((day_s // cfg.epoch_s).astype(np.int64), weights=per_s).max() * kept
    f, sized = _sized(cfg, sizing, peak, prompt, output, (1.0 - cfg.gpt4_share, cfg.gpt4_share))
    cohort, notes = run_cohort(cfg, sized, float(per_hour.sum()) * f, float((rate * dur).sum()) * f)
    _check_size(cfg, float((rate * dur).sum()), f, cohort)

    # (1)+(2): a Poisson process at rate f x rate (real requests): exactly, a Poisson count per hour and uniform
    # times within it; in cohorts, every cohort-th of its arrivals (`_systematic_poisson`)
    if cohort > 1:
        t = _systematic_poisson(f * rate * dur, start, dur, cohort, rng)
    else:
        n = rng.poisson(f * rate * dur)
        t = np.repeat(start, n) + rng.random(int(n.sum())) * np.repeat(dur, n)
        t.sort()
    notes += (f"hours past 24 repeat {BURSTGPT_PROFILE}'s one day (an hour-of-day profile)",) if n_hours > 24 else ()
    return _with_bundled_tokens(cfg, rng, t, f, _SOURCES[BURSTGPT_PROFILE], cohort, sized, notes)


def _systematic_poisson(expected: np.ndarray, start: np.ndarray, dur: np.ndarray, cohort: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Every `cohort`-th arrival of a Poisson process whose expected count is `expected[k]` over [start[k],
    start[k] + dur[k]) at a constant rate, from a uniform offset (the first kept is the j-th, j uniform in
    1..cohort): the systematic sample `_scale_counts` takes of a counted trace, for a rate. In the process's own
    clock (expected arrivals so far) the gaps between kept arrivals are Gamma(cohort, 1), so a cohort's arrival
    count over a window has the real requests' Poisson variance over cohort^2 (a Poisson draw of cohorts would
    carry cohort x the real variance, a burstiness the real traffic does not have).

    :returns: sorted arrival times (s)
    """
    edges = np.concatenate(([0.0], np.cumsum(expected)))
    total = float(edges[-1])
    first = rng.gamma(float(rng.integers(1, cohort + 1)))
    n = int(total / cohort + 6.0 * math.sqrt(total / cohort + 1.0) + 16)
    clock = first + np.concatenate(([0.0], np.cumsum(rng.gamma(float(cohort), size=n))))
    while clock[-1] < total:  # a draw past the margin (never in practice): extend it
        clock = np.concatenate((clock, clock[-1] + np.cumsum(rng.gamma(float(cohort), size=n))))
    clock = clock[clock < total]
    k = np.minimum(np.searchsorted(edges, clock, side="right") - 1, len(expected) - 1)
    return start[k] + (clock - edges[k]) / np.maximum(expected[k], 1e-300) * dur[k]


def _azure2023_hour(cfg, rng: np.random.Generator, sizing) -> Workload:
    t_hour, p_hour, o_hour, period = azure2023_hour(cfg.trace)
    horizon = cfg.horizon_s
    reps = int(math.ceil((horizon + 1.0) / period))  # + 1 s: a copy's jitter reaches half a second forward
    idx = np.tile(np.arange(len(t_hour)), reps)
    t = (t_hour[None, :] + period * np.arange(reps)[:, None]).ravel()

    # Load factor from a day of the hour repeated: its busiest epoch before scaling
    p_left, o_left, kept = _as_policy_leaves(cfg, p_hour, o_hour)
    peak = epoch_peak_requests(cfg) * kept
    f, sized = _sized(cfg, sizing, peak, p_left, o_left, (1.0 - cfg.gpt4_share, cfg.gpt4_share))
    run_real = float(np.count_nonzero(t < horizon)) * f
    notes = ((f"--hours {cfg.hours:g} runs past the {cfg.trace} file's {period / 60:.3g} min: the hour repeats",)
             if horizon > period else ())
    cohort, more = run_cohort(cfg, sized, len(t_hour) * SECONDS_PER_DAY / period * f, run_real)
    notes += more
    _check_size(cfg, float(np.count_nonzero(t < horizon)), f, cohort)

    # (1) scaling: per request, as a per-second count is; (2) arrival times: a jitter for every copy;
    # (3) tokens: the first copy keeps the request's own, the others those of a request near it (`_neighbour_tokens`)
    counts = _scale_counts(np.ones(len(t)), f / cohort, rng, cohort > 1)
    sel = np.repeat(np.arange(len(t)), counts)
    arrive = np.abs(t[sel] + rng.random(len(sel)) - 0.5)
    tok = _neighbour_tokens(t, sel, counts, HOUR_TOKEN_WINDOW_S, rng)
    order = np.argsort(arrive, kind="stable")
    order = order[arrive[order] < horizon]
    t, sel = arrive[order], idx[tok[order]]
    n = len(t)
    u = _uniforms(rng, n, cohort > 1)  # (4) model class, (5) origin
    model = (u[:, 0] < cfg.gpt4_share).astype(np.int8)
    origin = np.minimum((u[:, 1] * cfg.dcs).astype(np.int16), cfg.dcs - 1)
    t, model, p, o, origin, over = _fit_context(cfg, f"--trace {cfg.trace}", t, model, p_hour[sel], o_hour[sel],
                                                origin, cohort)
    return Workload(cfg.trace, t, model, p, o, origin, f, _SOURCES[cfg.trace], cohort, over * cohort, sized, notes)


def _neighbour_tokens(t: np.ndarray, sel: np.ndarray, counts: np.ndarray, window_s: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Which request's tokens each copy of a scaled-up 2023 hour carries (indices into `t`, the repeated hour's
    arrivals, ascending): the first copy of request i its own; each further copy those of a request drawn
    uniformly among the hour's requests that arrive within `window_s` centred on i (i itself included).

    A copy is a request the real service did not see: a service f times busier gets f times the requests in that
    second, not f copies of one prompt. Identical copies make every second's work the work of its few real
    requests repeated (a 4,000-token prompt copied 100 times is 100 prefills in one second), a burst of work no
    real trace of that volume has and that the cohort pools, which drain requests at the mix's mean rate, cannot
    see. The window keeps the copies' tokens those of the trace around that moment (its slow drift in prompt and
    output lengths) and the arrivals stay the trace's own (docs/model.md 'Workload').

    :param sel: the source request of every copy, ascending (`np.repeat(arange, counts)`)
    :param counts: copies per request
    """
    first = np.zeros(len(sel), dtype=bool)
    first[(np.cumsum(counts) - counts)[counts > 0]] = True
    half = 0.5 * window_s
    lo = np.searchsorted(t, t[sel] - half, side="left")
    hi = np.searchsorted(t, t[sel] + half, side="right")
    drawn = lo + (rng.random(len(sel)) * (hi - lo)).astype(np.int64)
    return np.where(first, sel, np.minimum(drawn, hi - 1))


_PLASTIC = 1.324717957244746  # x^3 = x + 1: the R2 sequence's base (Roberts 2018), evenly spread in 2-D
R2_STEPS = (1.0 / _PLASTIC, 1.0 / _PLASTIC ** 2)


def _uniforms(rng: np.random.Generator, n: int, low_discrepancy: bool) -> np.ndarray:
    """[n, 2] uniforms for (model class, origin): independent draws for exact runs; for cohort runs the R2
    low-discrepancy sequence from a random start, so every (model, origin) stream of cohorts is evenly spread
    in time, as the many real requests a cohort stands for are."""
    if not low_discrepancy:
        return np.stack([rng.random(n), rng.random(n)], axis=1) if n else np.zeros((0, 2))
    k = np.arange(n, dtype=np.float64)[:, None]
    return (rng.random(2)[None, :] + k * np.asarray(R2_STEPS)[None, :]) % 1.0


def _with_bundled_tokens(cfg, rng, t: np.ndarray, f: float, source: str, cohort: int, sized,
                         notes: tuple = ()) -> Workload:
    prompt, output = token_pairs()
    n = len(t)
    pick = rng.integers(0, len(prompt), n)  # (3) token pairs, with replacement
    u = _uniforms(rng, n, cohort > 1)
    model = (u[:, 0] < cfg.gpt4_share).astype(np.int8)  # (4) model class
    origin = np.minimum((u[:, 1] * cfg.dcs).astype(np.int16), cfg.dcs - 1)  # (5) origin, uniform over the regions
    t, model, p, o, origin, over = _fit_context(cfg, f"--trace {cfg.trace}", t, model, prompt[pick], output[pick],
                                                origin, cohort)
    return Workload(cfg.trace, t, model, p, o, origin, f, f"{source}; {_PAIRS_SOURCE}", cohort, over * cohort, sized,
                    notes)


# ------------------------------------------------------------------------------------------------
# CSV traces
# ------------------------------------------------------------------------------------------------
def _csv_workload(cfg, rng: np.random.Generator, path: Path, sizing) -> Workload:
    tab = read_trace_csv(path)
    horizon = cfg.horizon_s
    keep = tab["t_s"] < horizon  # timestamps are >= 0 (checked when read)
    t = tab["t_s"][keep]
    prompt, output = tab["prompt_tokens"][keep], tab["output_tokens"][keep]
    model = tab["model"][keep] if tab["model"] is not None else None

    # Load factor from the whole file (not the run's horizon): its busiest epoch before scaling
    all_t, all_model = tab["t_s"], tab["model"]
    share70 = float(np.mean(all_model == 1)) if all_model is not None and len(all_t) else cfg.gpt4_share
    p_left, o_left, _ = _as_policy_leaves(cfg, tab["prompt_tokens"], tab["output_tokens"], all_model)
    kept_t = all_t if cfg.context_policy != "drop" else all_t[tab["prompt_tokens"] <= _windows(cfg, all_model)]
    peak = np.bincount(np.floor(kept_t / cfg.epoch_s).astype(np.int64)).max() if len(kept_t) else 0
    f, sized = _sized(cfg, sizing, peak, p_left, o_left, (1.0 - share70, share70), bundled=False)
    span_days = max(float(all_t.max()) / SECONDS_PER_DAY, 1.0) if len(all_t) else 1.0
    cohort, auto_note = run_cohort(cfg, sized, len(all_t) * f / span_days, float(len(t)) * f)
    f_sim = f / cohort
    _check_size(cfg, float(len(t)), f, cohort)

    # (1) scaling
    if f_sim < 1.0:
        sel = np.flatnonzero(rng.random(len(t)) < f_sim)
        t = t[sel]
    elif f_sim > 1.0:
        whole = math.floor(f_sim)
        copies = whole + (rng.random(len(t)) < (f_sim - whole))
        sel = np.repeat(np.arange(len(t)), copies)
        t = t[sel]
        is_replica = np.ones(len(sel), dtype=bool)
        is_replica[np.cumsum(copies) - copies] = False  # the first copy of each request stays where it was
        t[is_replica] += rng.random(int(is_replica.sum())) - 0.5
        t0 = float(all_t[0]) if len(all_t) else 0.0  # the trace's first request: no replica arrives before it
        t = np.where(t < t0, 2.0 * t0 - t, t)  # mirrored back into the trace (the count is kept)
        inside = t < horizon
        order = np.argsort(t[inside], kind="stable")
        sel = sel[inside][order]
        t = t[inside][order]
    else:
        sel = np.arange(len(t))
    prompt, output = prompt[sel], output[sel]
    # (4) model class where the trace has none, (5) origins
    u = _uniforms(rng, len(t), cohort > 1)
    model = model[sel] if model is not None else (u[:, 0] < cfg.gpt4_share).astype(np.int8)
    origin = np.minimum((u[:, 1] * cfg.dcs).astype(np.int16), cfg.dcs - 1)
    fmt = {"burstgpt": "BurstGPT", "azure": "Azure LLM inference"}[tab["format"]]
    end = float(all_t[-1]) if len(all_t) else 0.0
    past = ((f"--hours {cfg.hours:g} runs past the trace's last request (at {end / SECONDS_PER_HOUR:.3g} h): "
             "the hours after it have no arrivals",) if horizon - end > cfg.epoch_s else ())
    notes = auto_note + past
    t, model, prompt, output, origin, over = _fit_context(cfg, f"{path}:0", t, model, prompt, output, origin, cohort)
    return Workload(cfg.trace, t, model, prompt, output, origin, f, f"{fmt} trace CSV {path}", cohort, over * cohort,
                    sized, notes)


def _fail(path, line: int, reason: str):
    raise TraceError(f"{path}:{line}: {reason}")


def _read_bytes(path: Path) -> bytes:
    if path.exists() and not path.is_dir() and not path.is_file():  # reading a pipe or device would wait forever
        _fail(path, 0, "is not a regular file (a pipe, socket or device); give a CSV file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        _fail(path, 0, "file not found")
    except IsADirectoryError:
        _fail(path, 0, "is a directory, not a CSV file")
    except OSError as e:
        _fail(path, 0, f"cannot read ({e.strerror})")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            _fail(path, 0, f"corrupt gzip file ({e})")
    return raw


def _parse_header(path, first_line: bytes) -> tuple[str, list[str], dict[str, int]]:
    """(format, column names, lower-case name -> position of every column the loader reads)."""
    try:
        text = first_line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        _fail(path, 1, "header is not UTF-8 text")
    if not text.strip():
        _fail(path, 1, "empty header line (expected CSV column names)")
    names = next(csv.reader([text]))
    keys = [n.strip().lower() for n in names]
    if "contexttokens" in keys or "generatedtokens" in keys:
        fmt, wanted, required = "azure", AZURE_COLUMNS, AZURE_COLUMNS
        display = "TIMESTAMP, ContextTokens, GeneratedTokens"
    elif "request tokens" in keys or "response tokens" in keys:
        fmt, wanted, required = "burstgpt", BURSTGPT_COLUMNS, BURSTGPT_REQUIRED
        display = "Timestamp, Request tokens, Response tokens (and Model)"
    else:
        _fail(path, 1, "unrecognized header: expected BurstGPT columns (Timestamp, Model, Request tokens, "
                       "Response tokens, ...) or Azure columns (TIMESTAMP, ContextTokens, GeneratedTokens)")
    cols = {}
    for k in wanted:
        where = [i for i, key in enumerate(keys) if key == k]
        if len(where) > 1:
            _fail(path, 1, f"column {names[where[0]].strip()!r} appears {len(where)} times")
        if where:
            cols[k] = where[0]
        elif k in required:
            _fail(path, 1, f"missing column {k!r} ({fmt} format needs {display})")
    return fmt, names, cols


def detect_format(path: str | Path) -> str:
    """'burstgpt' or 'azure', from the header alone; TraceError if neither (used by `traces.download`)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            zipped = fh.read(2) == b"\x1f\x8b"
        with (gzip.open(p, "rb") if zipped else open(p, "rb")) as fh:
            first = fh.readline(1 << 20)
    except FileNotFoundError:
        _fail(p, 0, "file not found")
    except (OSError, EOFError) as e:
        _fail(p, 0, f"cannot read ({e})")
    if not first:
        _fail(p, 1, "empty file (no header)")
    return _parse_header(p, first)[0]


def _line_bounds(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without the line break) of every line; the final newline starts no line."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    nl = np.concatenate([np.flatnonzero(buf[o:o + _BLOCK_BYTES] == 10) + o
                         for o in range(0, len(buf), _BLOCK_BYTES)] or [np.empty(0, np.int64)])
    starts = np.concatenate(([0], nl + 1))
    ends = np.append(nl, len(buf))
    if starts[-1] == len(buf):  # the file ends with a line break
        starts, ends = starts[:-1], ends[:-1]
    # a CRLF file: drop the carriage return from the line's content
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - cr


def _comma_counts(raw: bytes, starts: np.ndarray) -> np.ndarray:
    """Commas on each line (lines given by their starts), scanned block by block to bound memory."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    out = np.empty(len(starts), dtype=np.int64)
    i = 0
    while i < len(starts):
        j = int(np.searchsorted(starts, starts[i] + _BLOCK_BYTES, side="left"))
        j = max(j, i + 1)
        lo, hi = int(starts[i]), int(starts[j]) if j < len(starts) else len(buf)
        commas = np.flatnonzero(buf[lo:hi] == 44)
        out[i:j] = np.diff(np.searchsorted(commas, np.append(starts[i:j] - lo, hi - lo)))
        i = j
    return out


def _check_fields_fast(path, raw: bytes, ncols: int) -> int:
    """Check every line of an unquoted file has `ncols` fields; return the number of data rows."""
    starts, ends = _line_bounds(raw)
    empty = ends == starts
    n = len(starts)
    while n > 1 and empty[n - 1]:  # blank lines at the very end are tolerated (common artefact)
        n -= 1
    starts, empty = starts[:n], empty[:n]
    if n > 1 and empty[1:].any():
        _fail(path, int(np.flatnonzero(empty[1:])[0]) + 2, "empty line")
    fields = _comma_counts(raw, starts) + 1
    bad = np.flatnonzero(fields[1:] != ncols)
    if len(bad):
        i = int(bad[0]) + 1
        _fail(path, i + 1, f"wrong field count: expected {ncols} (as in the header), got {int(fields[i])}")
    return n - 1


def _check_fields_careful(path, raw: bytes, ncols: int) -> np.ndarray:
    """Quoted files: field counts with the csv module; return the 1-based starting line of every data row."""
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline=""))
    lines = []
    blank = 0  # first blank line seen so far; blank lines are only tolerated at the very end
    prev = 0
    try:
        for rec in reader:
            first_line, prev = prev + 1, reader.line_num
            if first_line == 1:
                continue
            if not rec:
                blank = blank or first_line
                continue
            if blank:
                _fail(path, blank, "empty line")
            if len(rec) != ncols:
                _fail(path, first_line, f"wrong field count: expected {ncols} (as in the header), got {len(rec)}")
            lines.append(first_line)
    except csv.Error as e:
        _fail(path, prev + 1, f"CSV syntax error ({e})")
    return np.asarray(lines, dtype=np.int64)


def read_trace_csv(path: str | Path) -> dict:
    """Parse and check a BurstGPT or Azure LLM CSV (columns by name, any order).

    Returns a dict: `format` ('burstgpt' | 'azure'), `t_s` (float64 seconds, ascending: BurstGPT's Timestamp as
    is, Azure's TIMESTAMP as seconds since 00:00 UTC of the first request's day), `prompt_tokens`,
    `output_tokens` (int32), `model` (int8, or None where the file has no model column), `rows` (data rows).
    Rows out of time order are sorted (stable), not refused.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if not raw.strip():
        _fail(path, 1, "empty file (no header)")
    nl = raw.find(b"\n")
    first = raw if nl < 0 else raw[:nl]
    fmt, names, cols = _parse_header(path, first)
    ncols = len(names)

    if b'"' in raw:  # quoted fields may hold commas or line breaks: count fields the slow, exact way
        row_line = _check_fields_careful(path, raw, ncols)
        nrows = len(row_line)
    else:
        nrows = _check_fields_fast(path, raw, ncols)
        row_line = None  # data row i is line i + 2
    if nrows == 0:
        _fail(path, 2, "no data rows after the header")

    def line_of(i: int) -> int:
        return int(row_line[i]) if row_line is not None else i + 2

    use = sorted(cols.values())
    label = {pos: names[pos].strip() for pos in use}
    text_cols = [cols[k] for k in ("model",) if k in cols]
    if fmt == "azure":
        text_cols.append(cols["timestamp"])
    try:
        df = pd.read_csv(io.BytesIO(raw), header=None, skiprows=1, usecols=use, encoding="utf-8",
                         dtype={p: str for p in text_cols}, skip_blank_lines=True, engine="c",
                         keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        # the field-count scan passed, so this is an encoding or tokenizer oddity: find the line it is on
        _locate_parse_error(path, raw, e)
    if len(df) != nrows:
        _fail(path, 0, f"read {len(df)} rows but the file holds {nrows} data lines")

    def col(k):
        return df[cols[k]]

    if fmt == "burstgpt":
        t = _number_column(path, col("timestamp"), label[cols["timestamp"]], line_of)
        prompt = _token_column(path, col("request tokens"), label[cols["request tokens"]], line_of)
        output = _token_column(path, col("response tokens"), label[cols["response tokens"]], line_of)
        model = _model_column(path, col("model"), line_of) if "model" in cols else None
    else:
        t = _datetime_column(path, col("timestamp"), label[cols["timestamp"]], line_of)
        prompt = _token_column(path, col("contexttokens"), label[cols["contexttokens"]], line_of)
        output = _token_column(path, col("generatedtokens"), label[cols["generatedtokens"]], line_of)
        model = None

    if len(t) > 1 and (np.diff(t) < 0).any():
        order = np.argsort(t, kind="stable")
        t, prompt, output = t[order], prompt[order], output[order]
        model = model[order] if model is not None else None
    return {"format": fmt, "t_s": t, "prompt_tokens": prompt, "output_tokens": output, "model": model,
            "rows": nrows}


def _locate_parse_error(path, raw: bytes, err: Exception):
    for i, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8-sig" if i == 1 else "utf-8")
        except UnicodeDecodeError:
            _fail(path, i, "not UTF-8 text")
        if b"\x00" in line:
            _fail(path, i, "NUL byte in line")
    _fail(path, 0, f"cannot parse CSV ({err})")


def _first_bad(path, mask: np.ndarray, line_of, reason) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        _fail(path, line_of(i), reason(i))


def _number_column(path, s: pd.Series, label: str, line_of) -> np.ndarray:
    """Non-negative finite seconds (BurstGPT Timestamp)."""
    _not_boolean(path, s, label, line_of, "a number")
    v = pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    _first_bad(path, ~np.isfinite(v), line_of, lambda i: f"{label} {_shown(s.iloc[i])} is not a number")
    _first_bad(path, v < 0, line_of, lambda i: f"negative {label} {s.iloc[i]}")
    return v


def _token_column(path, s: pd.Series, label: str, line_of) -> np.ndarray:
    """Non-negative integers that fit int32."""
    _not_boolean(path, s, label, line_of, "a whole number")
    if pd.api.types.is_integer_dtype(s.dtype):
        v = s.to_numpy(np.int64)
    else:
        f = pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        _first_bad(path, ~np.isfinite(f) | (f != np.floor(f)), line_of,
                   lambda i: f"{label} {_shown(s.iloc[i])} is not a whole number")
        _first_bad(path, np.abs(f) > _INT32_MAX, line_of, lambda i: f"{label} {s.iloc[i]} is too large")
        v = f.astype(np.int64)
    _first_bad(path, v < 0, line_of, lambda i: f"negative {label} {v[i]}")
    _first_bad(path, v > _INT32_MAX, line_of, lambda i: f"{label} {v[i]} is too large")
    return v.astype(np.int32)


def _not_boolean(path, s: pd.Series, label: str, line_of, what: str) -> None:
    """pandas reads a column of True / False as booleans, which would pass as 1 / 0: refuse them by name."""
    if pd.api.types.is_bool_dtype(s.dtype):
        _fail(path, line_of(0), f"{label} {_shown(s.iloc[0])} is not {what}")


def _model_column(path, s: pd.Series, line_of) -> np.ndarray:
    # a handful of distinct names over millions of rows: map the categories, not the rows
    cat = s.astype("category")
    names = [str(c).strip().lower() for c in cat.cat.categories]
    lut = np.array([MODEL_CODES.get(k, -1) for k in names] + [-1], dtype=np.int8)  # code -1 (missing) -> last
    codes = lut[cat.cat.codes.to_numpy()]
    _first_bad(path, codes < 0, line_of, lambda i: f"unknown Model {_shown(s.iloc[i])} (expected ChatGPT or GPT-4)")
    return codes


def _datetime_column(path, s: pd.Series, label: str, line_of) -> np.ndarray:
    """Azure TIMESTAMP strings -> seconds since 00:00 UTC of the first request's day (naive = UTC)."""
    ts = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
    _first_bad(path, ts.isna().to_numpy(), line_of, lambda i: f"{label} {_shown(s.iloc[i])} is not a date-time")
    day0 = ts.min().floor("D")
    return (ts - day0).dt.total_seconds().to_numpy(np.float64)


def _shown(v) -> str:
    return "(empty)" if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "" else repr(str(v))
