"""Execution profiles (simcore/profiles.py): real measured values, the roofline by hand, fit, scalar = vector."""
import numpy as np
import pytest

from simcore.config import MODELS, Config
from simcore.profiles import (SOURCE_MEASURED, SOURCE_ROOFLINE, TABLE_PATH, load_profiles, read_table,
                              summary_rows)

M7, M70 = MODELS.index("Llama-2-7B"), MODELS.index("Llama-2-70B")
# node types with the default config: (A100,2), (A100,4), (A100,8), (H100,2), (H100,4), (H100,8)
A100x2, A100x4, A100x8, H100x2, H100x4, H100x8 = range(6)


def cfg(**changes):
    """The default config with `changes`."""
    return Config(**changes)


@pytest.fixture(scope="module")
def prof():
    return load_profiles(cfg())


def test_node_type_order_and_sources(prof):
    assert prof.node_types == (("A100-80GB", 2), ("A100-80GB", 4), ("A100-80GB", 8),
                               ("H100-80GB", 2), ("H100-80GB", 4), ("H100-80GB", 8))
    assert prof.node_type_index("H100-80GB", 8) == H100x8
    assert all(s == SOURCE_MEASURED for s in prof.source[M70])
    assert all(s == SOURCE_ROOFLINE for s in prof.source[M7])


def test_table_is_committed_in_the_package():
    # the simulator must run without /work/shared: the profile reads only this file
    assert TABLE_PATH.exists() and TABLE_PATH.parent.name == "data" and TABLE_PATH.parent.parent.name == "simcore"
    prefill, decode = read_table()
    assert len(prefill) == 6 and len(decode) == 6


def test_measured_70b_h100x8_prefill_2048(prof):
    # Mean prompt_time of the 5 runs llama2-70b, h100-80gb, tensor_parallel 8, prompt_size 2048, batch_size 1 in
    # splitwise-sim data/perf_model.csv (/work/shared/data/profiles/splitwise-sim/): 136.576 ms.
    measured_s = 0.136576
    assert prof.prefill_s(M70, H100x8, 2048) == pytest.approx(measured_s, rel=0.10)


def test_measured_70b_decode_step_values(prof):
    # Mean token_time, llama2-70b a100-80gb tp 2, prompt 512, batch 1, 128 tokens (15 runs): 54.842 ms;
    # h100-80gb tp 8, batch 64: 49.987 ms.
    assert prof.decode_step(M70, A100x2, 1) == pytest.approx(0.054842, rel=0.01)
    assert prof.decode_step(M70, H100x8, 64) == pytest.approx(0.049987, rel=0.01)


def test_prefill_between_and_beyond_measured_sizes(prof):
    p = [prof.prefill_s(M70, t, n) for t in range(6) for n in (0, 100, 128, 3000, 8192, 16384)]
    p = np.array(p).reshape(6, 6)
    assert np.all(np.diff(p, axis=1) >= 0)  # more tokens never take less time
    assert np.all(p[:, 0] > 0)  # measured curves keep their overhead floor down to 0 tokens
    t = H100x8
    assert prof.prefill_s(M70, t, 2048) < prof.prefill_s(M70, t, 3000) < prof.prefill_s(M70, t, 4096)
    # beyond the last measured size the last segment's slope continues
    slope = (prof.prefill_s(M70, t, 8192) - prof.prefill_s(M70, t, 4096)) / 4096
    assert prof.prefill_s(M70, t, 12288) == pytest.approx(prof.prefill_s(M70, t, 8192) + 4096 * slope)


def test_prompts_in_one_pass_cost_their_total_tokens(prof):
    assert prof.prefill_s(M70, A100x4, 512, 4) == pytest.approx(prof.prefill_s(M70, A100x4, 2048))


def test_decode_step_non_decreasing_in_batch(prof):
    d = prof.decode_step_s
    assert d.shape == (len(MODELS), 6, cfg().max_batch + 1)
    assert np.all(np.diff(d[:, :, 1:], axis=2) >= 0)
    assert np.array_equal(d[:, :, 0], d[:, :, 1])
    assert np.all(d > 0)


def test_decode_beyond_measured_batches_extrapolates():
    p = load_profiles(cfg(max_batch=128))
    d = p.decode_step_s[M70, H100x8]
    assert np.all(np.diff(d[1:]) >= 0)
    slope = d[64] - d[63]
    assert d[128] == pytest.approx(d[64] + 64 * slope)


def test_roofline_7b_a100x2_by_hand():
    p = load_profiles(cfg().replace(decode_context_tokens=1280.0))
    # decode: (13.5 GB weights + b x 1280 tokens x 0.5 MB / 1024) / (0.9 x 2 GPUs x 2.0 TB/s)
    #   b = 1: (13.5 + 0.625) GB = 14.125e9 B / 3.6e12 B/s = 3.9236 ms
    #   b = 64: (13.5 + 40) GB = 53.5e9 B / 3.6e12 B/s = 14.861 ms
    assert p.decode_step(M7, A100x2, 1) == pytest.approx(14.125e9 / 3.6e12)
    assert p.decode_step(M7, A100x2, 64) == pytest.approx(53.5e9 / 3.6e12)
    assert p.decode_step(M7, A100x2, 0) == p.decode_step(M7, A100x2, 1)
    # prefill: 2 x 6.74e9 params x 1000 tokens / (0.5 x 2 GPUs x 312e12 FLOP/s) = 43.205 ms
    assert p.prefill_s(M7, A100x2, 1000) == pytest.approx(2 * 6.74e9 * 1000 / (0.5 * 2 * 312e12))
    assert p.prefill_s(M7, A100x2, 0) == 0.0


def test_hosts():
    # 70B: 138 GB + 4096 x 0.3125 MB = 139.25 GB <= 2 x 80 GB: every node type hosts both models by default
    assert load_profiles(cfg()).hosts.all()
    # 2 x 69.6 GB = 139.2 GB holds the weights but not the KV of a 4096-token request; it does hold 1024 tokens
    small = cfg(gpu_mem_gb=(69.6, 80.0))
    h = load_profiles(small.replace(kv_tokens_for_fit=4096)).hosts
    assert not h[M70, A100x2] and h[M70, A100x4] and h[M70, H100x2] and h[M7].all()
    assert load_profiles(small.replace(kv_tokens_for_fit=1024)).hosts[M70, A100x2]


def test_exec_s_is_prefill_plus_steps(prof):
    for m in range(len(MODELS)):
        for t in range(6):
            for prompt, out, b in ((1, 1, 1), (700, 250, 13), (2048, 28, 64), (9000, 3, 0)):
                want = prof.prefill_s(m, t, prompt) + out * prof.decode_step(m, t, b)
                assert prof.exec_s(m, t, prompt, out, b) == pytest.approx(want, rel=1e-12)


def test_vectorized_equals_scalar(prof):
    rng = np.random.default_rng(7)
    n = 2000
    m = rng.integers(0, len(MODELS), n)
    t = rng.integers(0, 6, n)
    prompt = rng.integers(0, 20000, n)
    prompt[:20] = [0, 1, 127, 128, 129, 256, 512, 1024, 2048, 4096, 8191, 8192, 8193, 5, 64, 300, 3000, 6000,
                   10000, 19999]
    out = rng.integers(1, 2000, n)
    batch = rng.integers(0, prof.max_batch + 1, n)
    vec = prof.exec_s_array(m, t, prompt, out, batch)
    sca = np.array([prof.exec_s(int(a), int(b), int(c), int(d), int(e))
                    for a, b, c, d, e in zip(m, t, prompt, out, batch)])
    np.testing.assert_allclose(vec, sca, rtol=1e-12)
    np.testing.assert_allclose(prof.prefill_s_array(m, t, prompt, 2),
                               [prof.prefill_s(int(a), int(b), int(c), 2) for a, b, c in zip(m, t, prompt)], rtol=1e-12)
    np.testing.assert_array_equal(prof.decode_step_array(m, t, batch),
                                  [prof.decode_step(int(a), int(b), int(c)) for a, b, c in zip(m, t, batch)])


def test_cached_and_read_only():
    a, b = load_profiles(cfg()), load_profiles(cfg(seed=5))  # seed does not change the profile
    assert a is b
    assert load_profiles(cfg(prefill_mfu=(0.4, 0.4))) is not a
    with pytest.raises(ValueError):
        a.decode_step_s[0, 0, 1] = 1.0


def test_summary_rows():
    rows = summary_rows(cfg())
    assert len(rows) == len(MODELS) * 6
    assert {r["source"] for r in rows} == {SOURCE_MEASURED, SOURCE_ROOFLINE}
