"""Workload traces (traces/loader.py, traces/download.py): bundled real data, load scaling, CSV parsing, errors."""
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simcore.config import Config
from simcore.errors import ConfigError, TraceError
from simcore.rng import stream
from traces import download
from traces.loader import (HOURS_FILE, Workload, _neighbour_tokens, _systematic_poisson, azure2023_hour,
                           bundled_counts, burstgpt_hourly_profile, detect_format, epoch_peak_requests, load_workload,
                           read_trace_csv, run_cohort, token_pairs, trace_names)
from simcore.sizing import TraceShape, reference_peak_requests

SHARED = Path("/work/shared/data/traces")  # the unpacked originals, where this machine has them
DAYS = ("2024-05-10", "2024-05-11", "2024-05-12", "2024-05-13", "2024-05-14", "2024-05-15", "2024-05-16")
DAY_TOTALS = (2_490_144, 969_781, 929_659, 2_937_292, 3_210_786, 3_191_468, 3_074_565)
WEEK_TOTAL = 16_803_695
PEAK_0513 = 73_561  # busiest 15-minute epoch of 2024-05-13 (the default day), before scaling


def cfg(**changes):
    return Config(**changes)


def load(seed=0, **changes):
    c = cfg(**changes)
    return load_workload(c, stream(seed, "trace"))


@pytest.fixture(scope="module")
def default():
    return load()


def pair_keys(prompt, output):
    return np.asarray(prompt, np.int64) * (1 << 32) + np.asarray(output, np.int64)


def target_peak_requests(c, prompt, output, share):
    """Real requests in the busiest epoch the load rule aims at (`simcore.sizing`) for a token and model mix."""
    return reference_peak_requests(c, TraceShape("t", 1.0, prompt, output, share))


def bundled_target(c):
    """Real requests in the busiest epoch that auto load aims at for the bundled traces' token pairs and mix, the
    prompts as the default context policy leaves them (clipped to the 4,096-token window)."""
    prompt, output = token_pairs()
    return target_peak_requests(c, np.minimum(prompt, 4096), output, (1.0 - c.gpt4_share, c.gpt4_share))


def auto_cohort(real_per_day, c=None):
    """cohort_size auto, by hand: about cohort_auto_requests_per_day (1.2 million) simulated requests a day."""
    per_day = (c or cfg()).cohort_auto_requests_per_day
    assert per_day == 1.2e6
    return max(1, round(real_per_day / per_day))


# ------------------------------------------------------------------------------------------------
# bundled data
# ------------------------------------------------------------------------------------------------
def test_bundle_per_day_and_week_totals():
    days, counts = bundled_counts()
    assert days == DAYS
    assert counts.shape == (7, 86_400) and counts.dtype == np.uint8
    assert tuple(int(x) for x in counts.sum(axis=1, dtype=np.int64)) == DAY_TOTALS
    assert int(counts.sum(dtype=np.int64)) == WEEK_TOTAL
    assert int(counts.max()) == 146


@pytest.mark.skipif(not (SHARED / "azure2024-code-week/raw/2024-05-13.txt").exists(), reason="originals absent")
def test_bundle_equals_raw_files():
    days, counts = bundled_counts()
    for d in ("2024-05-13", "2024-05-11"):
        raw = np.loadtxt(SHARED / f"azure2024-code-week/raw/{d}.txt", dtype=np.int64)
        assert np.array_equal(counts[days.index(d)], raw[:, 1])


def test_token_pairs_are_the_azure_2023_requests():
    prompt, output = token_pairs()
    assert len(prompt) == 8_819 + 19_366
    assert (prompt[0], output[0]) == (4808, 10)  # first request of AzureLLMInferenceTrace_code.csv
    assert (prompt[8_819], output[8_819]) == (374, 44)  # first of _conv.csv
    assert prompt.min() >= 2 and output.min() >= 6 and prompt.max() == 14_050
    if (SHARED / "azure2023").exists():
        real = pd.concat([pd.read_csv(SHARED / f"azure2023/AzureLLMInferenceTrace_{k}.csv") for k in ("code", "conv")])
        assert np.array_equal(prompt, real.ContextTokens) and np.array_equal(output, real.GeneratedTokens)


def test_burstgpt_profile_values():
    v = burstgpt_hourly_profile()
    assert v.shape == (24,)
    assert v[0] == pytest.approx(940.3) and v[14] == pytest.approx(1795.9) and v[7] == pytest.approx(153.3)
    assert v.sum() == pytest.approx(23_438.3)


def test_trace_names():
    assert trace_names() == ("azure-code-2024", "burstgpt-profile", "azure-conv-2023", "azure-code-2023")


# ------------------------------------------------------------------------------------------------
# azure-code-2024 (default)
# ------------------------------------------------------------------------------------------------
def test_default_auto_factor_and_size(default):
    c = cfg()
    target = bundled_target(c)  # 0.95 x the 8 x 1000-node reference fleet's requests per epoch (Eq. 1 + profiles)
    assert 8.4e7 < target < 9.1e7  # 87.6e6 since issue 19's continuous-batching capacity (was 177.6e6)
    day = bundled_counts()[1][DAYS.index("2024-05-13")].astype(np.int64)
    peak = day.reshape(96, 900).sum(axis=1).max()  # busiest 15-minute epoch, before scaling
    assert peak == PEAK_0513
    assert default.scale == pytest.approx(target / peak)
    assert 1_150 < default.scale < 1_230  # about 1,191 real requests per trace request (clipped prompts)
    real = DAY_TOTALS[3] * default.scale  # about 3.50e9 real requests in the day
    assert 3.4e9 < real < 3.6e9
    assert default.cohort == auto_cohort(real) and 2_850 < default.cohort < 2_990
    # systematic sampling: the simulated count is the real count / cohort to within one request
    assert abs(len(default) - real / default.cohort) <= 1
    assert default.name == "azure-code-2024" and "2024-05-13" in default.source and "Azure" in default.source


def test_default_arrays(default):
    w = default
    assert w.t_s.dtype == np.float64 and w.model.dtype == np.int8 and w.origin.dtype == np.int16
    assert w.prompt_tokens.dtype == np.int32 and w.output_tokens.dtype == np.int32
    assert (np.diff(w.t_s) >= 0).all() and w.t_s[0] >= 0 and w.t_s[-1] < 86_400
    # tokens come from the real pairs, prompts clipped to the 4,096-token context window (context_policy clip)
    prompt, output = token_pairs()
    clipped = np.minimum(prompt, 4096)
    assert np.isin(pair_keys(w.prompt_tokens, w.output_tokens), pair_keys(clipped, output)).all()
    assert w.prompt_tokens.max() == 4096
    # 5.8 % of the real prompts are longer; counted in real requests (rows x cohort)
    assert w.over_context % w.cohort == 0
    assert abs(w.over_context / (len(w) * w.cohort) - (prompt > 4096).mean()) < 0.005
    assert w.over_context <= (w.prompt_tokens == 4096).sum() * w.cohort
    assert not w.failed.any()  # no Azure 2023 request generated 0 tokens
    # GPT-4-class share, drawn with gpt4_share = 0.153
    assert abs(w.model.mean() - 0.153) < 0.003
    # origins uniform over the 8 regions
    share = np.bincount(w.origin, minlength=8) / len(w)
    assert w.origin.min() == 0 and w.origin.max() == 7 and np.abs(share - 1 / 8).max() < 0.005
    # epoch counts: all arrivals counted; each epoch holds its trace count x f / cohort to within one (systematic
    # sampling), so the busiest holds the target's real requests / cohort
    e = np.bincount((w.t_s // 900.0).astype(np.int64), minlength=96)
    day = bundled_counts()[1][DAYS.index("2024-05-13")].astype(np.int64).reshape(96, 900).sum(axis=1)
    assert len(e) == 96 and np.abs(e - day * w.scale / w.cohort).max() <= 1
    assert abs(e.max() - bundled_target(cfg()) / w.cohort) <= 1


def test_load_scale_one_replays_the_day_exactly():
    w = load(load_scale="1", cohort_size="1")  # one simulated request per real request
    day = bundled_counts()[1][DAYS.index("2024-05-13")]
    assert len(w) == DAY_TOTALS[3] and w.scale == 1.0 and w.cohort == 1
    assert np.array_equal(np.bincount(np.floor(w.t_s).astype(np.int64), minlength=86_400), day)


def test_load_scale_above_one_rounds_each_second_stochastically():
    w = load(load_scale="2.5", hours=1.0, cohort_size="1")
    assert w.cohort == 1
    day = bundled_counts()[1][DAYS.index("2024-05-13"), :3600].astype(np.int64)
    per_s = np.bincount(np.floor(w.t_s).astype(np.int64), minlength=3600)
    assert ((per_s == np.floor(day * 2.5)) | (per_s == np.ceil(day * 2.5))).all()
    assert abs(len(w) - day.sum() * 2.5) < 5 * np.sqrt(day.sum())


def test_auto_load_is_independent_of_the_horizon(default, tmp_path):
    # the factor and the cohort come from the whole trace day, not from the run's horizon
    day = bundled_counts()[1][DAYS.index("2024-05-13")].astype(np.int64)
    for hours in (0.25, 1.0):
        short = load(hours=hours)
        assert short.scale == default.scale and short.cohort == default.cohort
        n = day[:int(hours * 3600)].sum()
        assert abs(len(short) - n * short.scale / short.cohort) <= 1
    # so a 15-minute run is not scaled up to the target: its first epoch is far below the day's busiest
    first = load(hours=0.25)
    assert len(first) < 0.5 * bundled_target(cfg()) / first.cohort
    for trace in ("burstgpt-profile",):
        a, b = load(trace=trace, hours=0.25), load(trace=trace, hours=24.0)
        assert a.scale == b.scale and a.cohort == b.cohort and a.cohort > 1
    # a CSV trace: a quiet first epoch of ChatGPT requests, a busy second one of half GPT-4: the factor comes
    # from the whole file's busiest epoch (600 requests) and the whole file's model share (300 / 700)
    rows = [f"{i * 9.0},ChatGPT,200,20,220,API log" for i in range(100)]
    rows += [f"{900 + i * 1.5},{('ChatGPT', 'GPT-4')[i % 2]},200,20,220,API log" for i in range(600)]
    p = write(tmp_path / "two_epochs.csv", R1_HEADER + "\n" + "\n".join(rows) + "\n")
    tab = read_trace_csv(p)
    f = target_peak_requests(cfg(), tab["prompt_tokens"], tab["output_tokens"], (400 / 700, 300 / 700)) / 600
    short, whole = (load(trace=str(p), hours=h, load_scale_auto_max=1e9) for h in (0.25, 1.0))  # the load rule
    assert short.scale == pytest.approx(f) and whole.scale == pytest.approx(f)
    assert short.cohort == whole.cohort == auto_cohort(700 * f)
    assert (short.model == 0).all() and abs(len(short) - 100 * f / short.cohort) < 5 * np.sqrt(100 * f / short.cohort)


def test_cohort_workload_simulates_real_count_over_cohort():
    day = bundled_counts()[1][DAYS.index("2024-05-13"), :3600].astype(np.int64)
    for scale, cohort in (("auto", "100"), ("3", "2"), ("500", "1000")):
        w = load(hours=1.0, load_scale=scale, cohort_size=cohort)
        C = int(cohort)
        assert w.cohort == C
        real = day.sum() * w.scale
        assert abs(len(w) - real / C) <= 1  # systematic sampling: the real count / C to within one request
        # each second holds its own real count / C, rounded down or up (no burstiness added by thinning)
        per_s = np.bincount(np.floor(w.t_s).astype(np.int64), minlength=3600)
        g = w.scale / C
        assert ((per_s == np.floor(day * g)) | (per_s == np.ceil(day * g))).all()
        assert np.abs(np.cumsum(per_s) - np.cumsum(day) * g).max() <= 1
    # cohort runs spread model classes and origins evenly in time (R2 sequence): every run of 1,000 consecutive
    # requests holds its 153 GPT-4-class ones and 125 per region to within a few (independent draws: about +-40)
    w = load(hours=1.0, cohort_size="100")
    n = len(w) // 1000 * 1000
    gpt4 = w.model[:n].reshape(-1, 1000).sum(axis=1)
    regions = np.stack([np.bincount(r, minlength=8) for r in w.origin[:n].reshape(-1, 1000)])
    assert np.abs(gpt4 - 153).max() <= 8 and np.abs(regions - 125).max() <= 8


def test_workloads_a_run_cannot_count_are_refused():
    # real requests (trace x f) and the cohort must be countable exactly (2**53), whatever the cohort
    with pytest.raises(ConfigError, match=r"--load-scale 1e300: .* real requests, more than a run can count"):
        load(load_scale="1e300", hours=0.25)
    with pytest.raises(ConfigError, match="real requests"):
        load(load_scale="1e308", hours=0.25, trace="burstgpt-profile")
    with pytest.raises(ConfigError, match=rf"--cohort-size {2 ** 60}: more real requests"):
        load(cohort_size=str(2 ** 60), hours=0.25)
    # simulated requests above max_workload_requests: refused before they are made
    with pytest.raises(ConfigError, match="max_workload_requests=20000000 .*--cohort-size"):
        load(load_scale="1e6", cohort_size="1", hours=0.25)
    assert len(load(load_scale="1e6", hours=0.25)) < 2e6  # auto cohorts keep the same load simulable


def test_determinism_and_dcs_only_changes_origins(default):
    again = load()
    for f in ("t_s", "model", "prompt_tokens", "output_tokens", "origin"):
        assert np.array_equal(getattr(default, f), getattr(again, f))
    other = load(seed=1)
    assert len(other) != len(default) or not np.array_equal(other.t_s, default.t_s)
    four = load(dcs=4)
    assert four.scale == default.scale  # auto load does not depend on --dcs
    for f in ("t_s", "model", "prompt_tokens", "output_tokens"):
        assert np.array_equal(getattr(four, f), getattr(default, f))
    assert four.origin.max() == 3


def test_multi_day_horizon_and_limits():
    w = load(trace_day="2024-05-15", hours=48.0, load_scale="1", cohort_size="1")
    assert len(w) == DAY_TOTALS[5] + DAY_TOTALS[6] and w.t_s[-1] < 2 * 86_400
    assert "2024-05-15..2024-05-16" in w.source
    with pytest.raises(ConfigError, match="2024-05-16"):
        load(trace_day="2024-05-16", hours=48.0)
    with pytest.raises(ConfigError, match="2024-05-10..2024-05-16"):
        load(trace_day="2024-06-01")


def test_unknown_trace_name_lists_bundled():
    with pytest.raises(ConfigError, match="azure-code-2024, burstgpt-profile, azure-conv-2023, azure-code-2023"):
        load(trace="no-such-trace")


# ------------------------------------------------------------------------------------------------
# burstgpt-profile
# ------------------------------------------------------------------------------------------------
def test_burstgpt_profile_workload():
    w = load(trace="burstgpt-profile")
    v = burstgpt_hourly_profile()
    f = bundled_target(cfg()) / (v.max() * 900 / 3600)  # peak expected epoch: a quarter of the busiest hour
    assert w.scale == pytest.approx(f)
    C = auto_cohort(v.sum() * f)
    assert w.cohort == C and C > 1
    sim = v.sum() * f / C  # expected simulated requests: a Poisson count
    assert abs(len(w) - sim) < 5 * np.sqrt(sim)
    per_hour = np.bincount(np.floor(w.t_s / 3600).astype(np.int64), minlength=24) * C / f  # real / f
    assert np.abs(per_hour - v).max() < 5 * np.sqrt(v.max() * C / f) + C / f
    assert (np.diff(w.t_s) >= 0).all() and abs(w.model.mean() - 0.153) < 0.004
    prompt, output = token_pairs()
    # the real pairs, prompts clipped to the 4,096-token context window (context_policy clip)
    assert np.isin(pair_keys(w.prompt_tokens, w.output_tokens), pair_keys(np.minimum(prompt, 4096), output)).all()
    assert w.over_context > 0


def test_systematic_poisson_keeps_every_cohort_th_arrival():
    """Cohorts of a Poisson rate: every C-th arrival, so a window's cohort count has the real Poisson variance over
    C^2 (variance / mean = 1 / C in cohorts), not a Poisson draw of cohorts (variance / mean = 1); an hour with no
    expected arrivals gets none."""
    rng = np.random.default_rng(3)
    expected = np.array([4.0e5, 0.0, 2.0e5])  # real arrivals per hour
    start, dur = np.arange(3) * 3600.0, np.full(3, 3600.0)
    C = 8
    t = _systematic_poisson(expected, start, dur, C, rng)
    assert (np.diff(t) >= 0).all() and not ((t >= 3600) & (t < 7200)).any()
    # an hour's real count is Poisson: its cohorts are within 5 real standard deviations / C
    assert abs((t < 3600).sum() - 4.0e5 / C) < 5 * np.sqrt(4.0e5) / C
    assert abs((t >= 7200).sum() - 2.0e5 / C) < 5 * np.sqrt(2.0e5) / C
    n = np.bincount((t[t < 3600] // 10).astype(int), minlength=360)  # 10-s windows: 138.9 cohorts each
    assert n.mean() == pytest.approx(4.0e5 / C / 360, rel=0.01)
    assert 0.7 / C < n.var() / n.mean() < 1.4 / C


# ------------------------------------------------------------------------------------------------
# azure-conv-2023, azure-code-2023: the real hours with arrivals
# ------------------------------------------------------------------------------------------------
def test_azure2023_hours_bundle():
    raw = pd.read_csv(HOURS_FILE)
    for name, src, n, last_s in (("azure-conv-2023", "conv", 19_366, 3502.4), ("azure-code-2023", "code", 8_819, 3436.9)):
        t, p, o, period = azure2023_hour(name)
        part = raw[raw.source == src]
        assert len(t) == n and np.array_equal(p, part.ContextTokens) and np.array_equal(o, part.GeneratedTokens)
        assert (np.diff(t) >= 0).all() and t[0] < 1.0 and t[-1] == pytest.approx(last_s, abs=0.1)
        assert period == np.floor(t[-1]) + 1.0
        # the busiest of the first two 15-min epochs, counted by hand
        c = cfg(trace=name, hours=0.5)
        by_hand = max(((part.offset_ms >= k * 900_000) & (part.offset_ms < (k + 1) * 900_000)).sum() for k in (0, 1))
        assert epoch_peak_requests(c, 2) == by_hand
    # the whole tokens pairs file is the same requests (without their arrivals)
    prompt, _ = token_pairs()
    assert len(prompt) == len(raw)


@pytest.mark.parametrize("cohort", ["1", "8"])
def test_azure2023_hour_workload(cohort):
    """The conversation hour, exactly and in cohorts: every request one of the hour's (its tokens, prompts clipped
    to the context window) near its real arrival, f x the hour's requests in the horizon (real requests)."""
    c = cfg(trace="azure-conv-2023", hours=0.5, dcs=4, reference_dcs=4, nodes_per_dc=12, cohort_size=cohort)
    w = load_workload(c, stream(0, "trace"))
    t, p, o, _ = azure2023_hour("azure-conv-2023")
    n_in = float((t < c.horizon_s).sum())
    assert w.cohort == int(cohort) and w.scale > 1
    real = len(w) * w.cohort
    edge = w.scale * (np.abs(t - c.horizon_s) < 0.5).sum()  # copies jittered across the horizon
    assert abs(real - w.scale * n_in) < edge + (3 * np.sqrt(w.scale * n_in) if cohort == "1" else 2 * w.cohort)
    assert np.isin(pair_keys(w.prompt_tokens, w.output_tokens), pair_keys(np.minimum(p, 4096), o)).all()
    assert (np.diff(w.t_s) >= 0).all() and w.t_s.min() >= 0 and w.t_s.max() < c.horizon_s
    # each simulated request within half a second of a real arrival
    gap = np.abs(w.t_s[:, None] - t[None, :]).min(axis=1) if len(w) < 20_000 else \
        np.abs(w.t_s - t[np.clip(np.searchsorted(t, w.t_s), 0, len(t) - 1)])
    near = np.minimum(gap, np.abs(w.t_s - t[np.clip(np.searchsorted(t, w.t_s) - 1, 0, len(t) - 1)]))
    assert near.max() <= 0.5


def test_auto_cohort_plays_the_2023_hours_exactly_where_the_run_fits():
    """Cohorts do not hold on the 2023 hours (docs/model.md 'Validation'): `auto` plays a run of them exactly when it
    holds at most max_workload_requests real requests, and otherwise says that its cohorts do not hold."""
    small = load(trace="azure-conv-2023", hours=0.5, dcs=4, reference_dcs=4, nodes_per_dc=12)
    assert small.cohort == 1 and len(small) > 100_000 and not small.notes
    big = load(trace="azure-conv-2023", hours=0.25)  # the default 8 x 1000-node world
    assert big.cohort > 1 and len(big) * big.cohort > Config().max_workload_requests
    assert any("not held to exact play" in n for n in big.notes)
    assert load(trace="azure-conv-2023", hours=0.5, dcs=4, reference_dcs=4, nodes_per_dc=12,
                cohort_size="8").cohort == 8


def test_copies_of_a_2023_request_take_tokens_of_its_neighbours():
    """The first copy keeps the request's own tokens; the others those of a request within the window around it
    (by hand: arrivals 0, 1, ..., 99 s, a 10-s window: request 50's copies come from requests 45..55)."""
    t = np.arange(100, dtype=float)
    counts = np.array([0] * 50 + [400] + [1] * 49)
    sel = np.repeat(np.arange(100), counts)
    tok = _neighbour_tokens(t, sel, counts, 10.0, np.random.default_rng(0))
    assert tok[0] == 50 and set(tok[:400].tolist()) == set(range(45, 56))  # 11 neighbours, each drawn
    assert np.abs(np.bincount(tok[1:400], minlength=56)[45:56] / 399 - 1 / 11).max() < 0.05
    assert (tok[400:] == np.arange(51, 100)).all()  # single copies keep their own tokens
    assert (_neighbour_tokens(t, sel, counts, 0.0, np.random.default_rng(0)) == sel).all()  # no window: own


def test_scaled_2023_hour_is_not_bursts_of_identical_prompts():
    """A second of the scaled conversation hour holds as many distinct (prompt, output) pairs as ~all its
    requests, not the few real requests of that second repeated f times; the hour's token mix is kept."""
    w = load(trace="azure-conv-2023", hours=0.25, dcs=4, reference_dcs=4, nodes_per_dc=4, cohort_size="1")
    _, p, o, _ = azure2023_hour("azure-conv-2023")
    assert w.scale > 10
    sec = w.t_s.astype(int)
    keys = pair_keys(w.prompt_tokens, w.output_tokens)
    distinct = np.array([len(np.unique(keys[sec == s])) / max((sec == s).sum(), 1) for s in range(100, 160)])
    assert distinct.mean() > 0.6  # identical copies: ~1 / f of them (0.11 at f = 18)
    assert w.prompt_tokens.mean() == pytest.approx(np.minimum(p, 4096)[:len(p) // 4].mean(), rel=0.1)


def test_auto_cohort_plays_small_worlds_exactly_where_the_run_fits():
    """cohort_size auto plays a world of fewer than COHORT_AUTO_MIN_NODES_PER_DC (30) nodes per datacenter
    exactly when the run holds at most max_workload_requests real requests; a larger run gets the cohorts of
    the per-day rule (1.2e8 / 1.2e6 = 100) and a note; a 30-node world, or a given size, keeps them."""
    c = cfg(nodes_per_dc=12)
    assert run_cohort(c, None, 1.2e8, 1e6) == (1, ())
    big, note = run_cohort(c, None, 1.2e8, 3e7)
    assert big == 100 and "12 nodes per datacenter" in note[0] and "not held to exact play" in note[0]
    assert run_cohort(cfg(nodes_per_dc=30), None, 1.2e8, 1e6) == (100, ())
    assert run_cohort(cfg(nodes_per_dc=12, cohort_size="8"), None, 1.2e8, 1e6) == (8, ())
    assert run_cohort(cfg(nodes_per_dc=12), None, 1e6, 1e6) == (1, ())  # the per-day rule's own exact run
    # through the loader: the Azure code day on 4 x 12 nodes is played exactly, on 4 x 30 in cohorts
    small = load(hours=0.25, dcs=4, reference_dcs=4, nodes_per_dc=12)
    assert small.cohort == 1 and len(small) > 100_000 and not small.notes
    assert load(hours=0.25, dcs=4, reference_dcs=4, nodes_per_dc=30).cohort > 1


def test_azure2023_hour_repeats_past_its_end():
    w = load(trace="azure-code-2023", hours=2.0, dcs=4, reference_dcs=4, nodes_per_dc=4, cohort_size="1")
    t, _, _, period = azure2023_hour("azure-code-2023")
    assert any("the hour repeats" in x for x in w.notes)
    first = np.bincount((w.t_s // 60).astype(int), minlength=120)
    real = np.bincount(((t + period) // 60).astype(int), minlength=120)
    assert first[int(period // 60) + 2:int(period // 60) + 40].sum() > 0.9 * w.scale * real[
        int(period // 60) + 2:int(period // 60) + 40].sum()


# ------------------------------------------------------------------------------------------------
# CSV traces
# ------------------------------------------------------------------------------------------------
R1_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"
R1_ROWS = [
    "5,ChatGPT,472,18,490,Conversation log",
    "45,ChatGPT,1087,0,1087,Conversation log",  # zero response: a failure
    "12,GPT-4,417,276,693,API log",  # out of order: sorted by the loader
    "118.5,gpt-4,2360,35,2395,Conversation log",
    "200,CHATGPT,20,3,23,API log",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def burstgpt_r1(tmp_path):
    return write(tmp_path / "BurstGPT_1.csv", "\n".join([R1_HEADER, *R1_ROWS]) + "\n")


def check_r1(w):
    assert np.array_equal(w.t_s, [5.0, 12.0, 45.0, 118.5, 200.0])
    assert np.array_equal(w.model, [0, 1, 0, 1, 0])
    assert np.array_equal(w.prompt_tokens, [472, 417, 1087, 2360, 20])
    assert np.array_equal(w.output_tokens, [18, 276, 0, 35, 3])
    assert np.array_equal(w.failed, [False, False, True, False, False])
    assert w.scale == 1.0 and "BurstGPT" in w.source


def test_burstgpt_release1_csv(tmp_path):
    p = burstgpt_r1(tmp_path)
    assert detect_format(p) == "burstgpt"
    check_r1(load(trace=str(p), load_scale="1"))


def test_burstgpt_release3_csv_any_column_order(tmp_path):
    header = "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type"
    rows = ["5,1001,3.2,ChatGPT,472,18,490,Conversation log", "45,1002,1.0,ChatGPT,1087,0,1087,Conversation log",
            "12,,7.5,GPT-4,417,276,693,API log", "118.5,1001,2.2,gpt-4,2360,35,2395,Conversation log",
            "200,,0.4,CHATGPT,20,3,23,API log"]
    p = write(tmp_path / "BurstGPT_3.csv", "\n".join([header, *rows]) + "\n")
    check_r1(load(trace=str(p), load_scale="1"))
    # columns shuffled, CRLF line ends, quoted fields: read by name all the same
    df = pd.read_csv(p, dtype=str, keep_default_na=False)[["Log Type", "Response tokens", "Model", "Session ID",
                                                           "Timestamp", "Elapsed time", "Request tokens"]]
    q = tmp_path / "shuffled.csv"
    df.to_csv(q, index=False, lineterminator="\r\n", quoting=1)
    check_r1(load(trace=str(q), load_scale="1"))


def test_azure_csv_2023_and_2024_formats(tmp_path):
    p23 = write(tmp_path / "azure23.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
                "2023-11-16 18:17:03.9799600,4808,10\r\n2023-11-16 18:17:04.0319600,3180,8")
    w = load(trace=str(p23), load_scale="1")
    assert np.allclose(w.t_s, [18 * 3600 + 17 * 60 + 3.97996, 18 * 3600 + 17 * 60 + 4.03196])
    # 4,808 prompt tokens exceed Llama-2's 4,096-token context: clipped (context_policy clip) and counted
    assert np.array_equal(w.prompt_tokens, [4096, 3180]) and np.array_equal(w.output_tokens, [10, 8])
    assert w.over_context == 1
    assert "Azure" in w.source
    p24 = write(tmp_path / "azure24.csv", "ContextTokens,TIMESTAMP,GeneratedTokens\n"
                "2048,2024-05-10 00:00:00.009930+00:00,28\n100,2024-05-10 00:00:01.5+00:00,7\n")
    w = load(trace=str(p24), load_scale="1")
    assert np.allclose(w.t_s, [0.00993, 1.5]) and np.array_equal(w.prompt_tokens, [2048, 100])


@pytest.mark.skipif(not (SHARED / "azure2023").exists(), reason="originals absent")
def test_real_azure_2023_file_and_drawn_models():
    r = read_trace_csv(SHARED / "azure2023/AzureLLMInferenceTrace_conv.csv")
    assert r["rows"] == 19_366 and r["model"] is None
    assert r["t_s"][0] == pytest.approx(18 * 3600 + 15 * 60 + 46.68059)
    w = load(trace=str(SHARED / "azure2023/AzureLLMInferenceTrace_conv.csv"), load_scale="1")
    assert len(w) == 19_366 and abs(w.model.mean() - 0.153) < 0.015  # no model column: drawn with gpt4_share


def test_csv_load_scaling(tmp_path):
    n = 2000
    t = np.sort(np.random.default_rng(5).uniform(0, 3600, n)).round(3)
    body = "\n".join(f"{x},ChatGPT,10,{i % 7},0,API log" for i, x in enumerate(t))
    p = write(tmp_path / "b.csv", R1_HEADER + "\n" + body + "\n")
    half = load(trace=str(p), load_scale="0.5")
    assert half.scale == 0.5 and abs(len(half) - n / 2) < 5 * np.sqrt(n / 4)
    assert np.isin(half.t_s, t).all()
    tripled = load(trace=str(p), load_scale="3")
    assert abs(len(tripled) - 3 * n) < 10  # only replicas jittered outside [0, horizon) are lost
    assert np.isin(t, tripled.t_s).all()  # every original kept at its own time
    nearest = np.abs(tripled.t_s[:, None] - t[None, :]).min(axis=1)
    assert nearest.max() <= 0.5 and (np.diff(tripled.t_s) >= 0).all()
    auto = load(trace=str(p), load_scale_auto_max=1e9)  # the load rule, however far it multiplies the file
    peak = np.bincount(np.floor(t / 900).astype(int)).max()
    tab = read_trace_csv(p)  # the target is for the file's own tokens and model mix (all ChatGPT here)
    target = target_peak_requests(cfg(), tab["prompt_tokens"], tab["output_tokens"], (1.0, 0.0))
    assert target > bundled_target(cfg())  # 10-token prompts and at most 6 output tokens: cheap requests
    assert auto.scale == pytest.approx(target / peak)
    assert auto.cohort == auto_cohort(n * auto.scale)  # the file spans less than a day: its count is per day
    assert abs(len(auto) - n * auto.scale / auto.cohort) < 5 * np.sqrt(n * auto.scale / auto.cohort)
    assert (auto.model == 0).all()  # the file's own model column, not gpt4_share
    one_h = load(trace=str(p), load_scale="1", hours=0.5)  # the horizon cuts the trace
    assert len(one_h) == (t < 1800).sum()


# ------------------------------------------------------------------------------------------------
# malformed files: "<path>:<line>: <reason>"
# ------------------------------------------------------------------------------------------------
GOOD = [R1_HEADER, *R1_ROWS]
MALFORMED = {
    "missing column": (["Timestamp,Model,Request tokens,Total tokens,Log Type", "5,ChatGPT,472,490,API log"],
                       1, "missing column 'response tokens'"),
    "unknown header": (["a,b,c", "1,2,3"], 1, "unrecognized header"),
    "non-numeric tokens": (GOOD[:3] + ["12,GPT-4,lots,276,693,API log"] + GOOD[4:], 4, "not a whole number"),
    "negative tokens": (GOOD[:2] + ["45,ChatGPT,1087,-3,1084,API log"], 3, "negative Response tokens -3"),
    "empty timestamp": (GOOD[:4] + [",gpt-4,2360,35,2395,Conversation log"], 5, "Timestamp (empty) is not a number"),
    "text timestamp": (GOOD[:2] + ["soon,ChatGPT,1,1,2,API log"], 3, "Timestamp 'soon' is not a number"),
    "nan timestamp": (GOOD[:2] + ["nan,ChatGPT,1,1,2,API log"], 3, "is not a number"),
    "too many fields": (GOOD[:3] + ["12,GPT-4,417,276,693,API log,extra"], 4, "expected 6 (as in the header), got 7"),
    "too few fields": (GOOD + ["300,ChatGPT,20,3,23"], 7, "expected 6 (as in the header), got 5"),
    "unknown model": (GOOD[:5] + ["9,Claude,1,1,2,API log"], 6, "unknown Model 'Claude'"),
    "header only": ([R1_HEADER], 2, "no data rows"),
    "blank line inside": (GOOD[:3] + [""] + GOOD[3:], 4, "empty line"),
    "azure bad date": (["TIMESTAMP,ContextTokens,GeneratedTokens", "2023-11-16 18:17:03.97,4808,10",
                        "2023-13-45 99:00:00,1,1"], 3, "TIMESTAMP '2023-13-45 99:00:00' is not a date-time"),
    "quoted wrong count": ([R1_HEADER, '5,ChatGPT,472,18,490,"Conversation, log"', '6,"ChatGPT",1,1,2'], 3,
                           "expected 6 (as in the header), got 5"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_csv(tmp_path, case):
    lines, line, reason = MALFORMED[case]
    p = write(tmp_path / "bad.csv", "\n".join(lines) + "\n")
    with pytest.raises(TraceError) as e:
        load(trace=str(p))
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert reason in msg, msg


def test_empty_and_missing_files(tmp_path):
    empty = write(tmp_path / "empty.csv", "")
    with pytest.raises(TraceError, match=rf"^{empty}:1: empty file"):
        load(trace=str(empty))
    missing = tmp_path / "nope.csv"
    with pytest.raises(TraceError, match=rf"^{missing}:0: file not found"):
        load(trace=str(missing))


def test_gzipped_csv(tmp_path):
    p = tmp_path / "BurstGPT_1.csv.gz"
    p.write_bytes(gzip.compress(("\n".join(GOOD) + "\n").encode()))
    check_r1(load(trace=str(p), load_scale="1"))


def test_workload_rejects_ragged_arrays():
    with pytest.raises(ValueError):
        Workload("x", np.zeros(3), np.zeros(2), np.zeros(3), np.zeros(3), np.zeros(3), 1.0, "")


# ------------------------------------------------------------------------------------------------
# download
# ------------------------------------------------------------------------------------------------
def test_download_from_file_url(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    src = burstgpt_r1(mirror)
    out = tmp_path / "out"
    assert download.main(["--release", "1", "--out", str(out), "--url-base", mirror.as_uri()]) == 0
    assert (out / "BurstGPT_1.csv").read_bytes() == src.read_bytes()
    assert os.listdir(out) == ["BurstGPT_1.csv"]  # no temporary file left
    check_r1(load(trace=str(out / "BurstGPT_1.csv"), load_scale="1"))


def test_download_errors_exit_2_with_one_line(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    out = tmp_path / "out"
    assert download.main(["--release", "2", "--out", str(out), "--url-base", mirror.as_uri()]) == 2  # absent
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("download: ") and "BurstGPT_2.csv" in err[0]
    write(mirror / "BurstGPT_3.csv", "a,b\n1,2\n")  # not a BurstGPT header
    assert download.main(["--release", "3", "--out", str(out), "--url-base", mirror.as_uri()]) == 2
    err = capsys.readouterr().err
    assert "unrecognized header" in err and err.count("\n") == 1
    assert not out.exists()  # a failed download leaves no folder it made
    assert download.candidate_urls(1)[0] == "https://github.com/HPMLL/BurstGPT/releases/download/v1.1/BurstGPT_1.csv"


# --- issue 20: a user's trace taken at its word ------------------------------------------------------------------
def small_burstgpt(tmp_path, n=400, start_s=0.0, prompt=500, name="b400.csv"):
    """n ChatGPT requests spread over a day after `start_s`."""
    t = start_s + np.arange(n) * (86_400.0 - start_s) / n
    rows = [f"{x:.3f},ChatGPT,{prompt},100,{prompt + 100},Conversation log" for x in t]
    return write(tmp_path / name, R1_HEADER + "\n" + "\n".join(rows) + "\n"), t


def test_a_small_trace_is_taken_at_its_volume_and_the_fleet_sized_to_it(tmp_path):
    from simcore.sizing import TraceShape, reference_peak_requests

    p, t = small_burstgpt(tmp_path)
    w = load(trace=str(p))  # --load-scale auto would multiply it ~1e7-fold: past load_scale_auto_max
    assert w.scale == 1.0 and len(w) == 400 and w.sizing.rule == "fleet"
    assert "load_scale_auto_max=1000" in w.sizing.note and "nodes per datacenter" in w.sizing.note
    # the fleet the busiest epoch (ten requests of 500 + 100 tokens) would use at 95 %: less than one node of each
    # type, so the smallest fleet that has every type
    assert w.sizing.nodes_per_dc == 6
    tab = read_trace_csv(p)
    peak = np.bincount(np.floor(t / 900).astype(int)).max()
    per_node = target_peak_requests(cfg(), tab["prompt_tokens"], tab["output_tokens"], (1.0, 0.0)) / 1000
    assert peak / per_node < 6
    # --fleet auto with a load a fleet of 1000-ish nodes needs: nodes = peak x factor / (95 % of a node's share)
    big = load(trace=str(p), fleet="auto", load_scale="3e8")
    want = peak * 3e8 / per_node
    assert big.scale == 3e8 and big.sizing.nodes_per_dc == round(want) and 100 < want < 100_000
    used = peak * 3e8 / reference_peak_requests(cfg(nodes_per_dc=big.sizing.nodes_per_dc),
                                                TraceShape("t", 1.0, tab["prompt_tokens"], tab["output_tokens"],
                                                           (1.0, 0.0))) * 0.95
    assert abs(used - 0.95) < 0.01
    # the load rule where the factor is within the bound, as before
    within = load(trace=str(p), load_scale_auto_max=1e9)
    assert within.sizing.rule == "load" and within.sizing.nodes_per_dc == 1000 and within.scale > 1e6


def test_hours_past_the_trace_say_so(tmp_path):
    p, _ = small_burstgpt(tmp_path, start_s=0.0)
    short = tmp_path / "short.csv"
    short.write_text(p.read_text().splitlines()[0] + "\n" + "\n".join(p.read_text().splitlines()[1:41]) + "\n")
    w = load(trace=str(short), load_scale="1", hours=24.0)  # 40 requests over the first 2.34 h
    assert len(w.notes) == 1 and "past the trace's last request (at 2.34 h)" in w.notes[0]
    assert load(trace=str(short), load_scale="1", hours=2.0).notes == ()
    day2 = load(hours=48.0)
    growth = DAY_TOTALS[4] / DAY_TOTALS[3] - 1  # 2024-05-14 holds 9 % more requests than 2024-05-13
    assert round(growth * 100) == 9 and "2024-05-14 +9%" in day2.notes[0] and "load factor" in day2.notes[0]
    assert load(hours=24.0).notes == ()


def test_no_replica_arrives_before_the_traces_first_request(tmp_path):
    p, t = small_burstgpt(tmp_path, n=200, start_s=3_600.0)
    w = load(trace=str(p), load_scale="3", cohort_size="1")
    assert w.t_s.min() >= t[0]
    assert len(w) == 600  # every replica kept (none past the 24-h horizon: the last request is 1.8 min before it)


@pytest.mark.parametrize("policy", ["clip", "drop"])
def test_the_load_factor_is_that_of_the_prompts_the_policy_leaves(tmp_path, policy):
    rows = [f"{i * 2.0},ChatGPT,{9000 if i % 4 == 0 else 1000},100,0,x" for i in range(400)]
    p = write(tmp_path / "long.csv", R1_HEADER + "\n" + "\n".join(rows) + "\n")
    w = load(trace=str(p), context_policy=policy, load_scale_auto_max=1e12)
    prompt = np.array([9000 if i % 4 == 0 else 1000 for i in range(400)])
    if policy == "clip":
        left, peak = np.minimum(prompt, 4096), 400
    else:
        left, peak = prompt[prompt <= 4096], 300
    assert w.scale == pytest.approx(target_peak_requests(cfg(), left, np.full(len(left), 100), (1.0, 0.0)) / peak)
    assert w.over_context % w.cohort == 0 and w.over_context > 0  # counted in real requests


def test_the_refuse_message_counts_real_requests(tmp_path):
    rows = [f"{i * 2.0},ChatGPT,{9000 if i % 4 == 0 else 1000},100,0,x" for i in range(400)]
    p = write(tmp_path / "long.csv", R1_HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(TraceError, match=r"300 of 1200 real requests have a prompt longer"):
        load(trace=str(p), context_policy="refuse", load_scale="3", cohort_size="1")
