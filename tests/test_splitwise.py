"""Splitwise: prefill and decode really run on different nodes (H100 prompt pool, A100 token pool) and the KV
cache transfer is paid; routing is latency-first with spill-over."""
import numpy as np
import pytest

from schedulers.registry import create
from simcore.config import Config
from simcore.engine import Engine
from simcore.epochs import Epoch
from simcore.errors import ConfigError
from simcore.physics import kv_transfer_latency_s, request_kv_gb


@pytest.fixture(scope="module")
def split_run():
    cfg = Config(dcs=4, hours=1.0, nodes_per_dc=60, load_scale="0.01", scheduler="splitwise", seed=5)
    eng = Engine(cfg, create("splitwise"))
    rec = eng.run()
    return cfg, eng, rec


def test_prefill_on_h100_decode_on_a100(split_run):
    cfg, eng, rec = split_run
    served = ~np.isnan(rec.ttft_s)
    assert served.sum() > 100
    gpu_of_type = np.array([cfg.gpu_types.index(g) for g, _ in eng.fleet.node_types])
    p_gpu = gpu_of_type[eng.fleet.node_type[rec.prompt_node[served]]]
    t_gpu = gpu_of_type[eng.fleet.node_type[rec.token_node[served]]]
    assert np.all(p_gpu == cfg.gpu_types.index("H100-80GB"))
    assert np.all(t_gpu == cfg.gpu_types.index("A100-80GB"))
    assert np.all(rec.prompt_node[served] != rec.token_node[served])


def kv_world(link_gb_per_s: float, ttft_model: str = "eq3"):
    """Exact mode, one one-hour epoch (one plan, made before any request: both links route alike), 8-GPU nodes
    only and one request per node at a time, so a token node's decode step is the same whichever A100 node it
    runs on: TTFTs of the same request under two links differ by the KV transfer alone."""
    cfg = Config(dcs=4, hours=1.0, epoch_s=3600.0, nodes_per_dc=12, load_scale="0.003", scheduler="splitwise",
                 seed=5, cohort_size="1", gpu_counts=(8,), max_batch=1, ttft_model=ttft_model)
    eng = Engine(cfg, create("splitwise", {"splitwise_kv_link_gb_per_s": link_gb_per_s}))
    return cfg, eng, eng.run()


def test_exact_mode_ttft_includes_the_kv_transfer():
    cfg, eng, fast = kv_world(50.0)  # a 400 Gb/s link: milliseconds
    _, _, slow = kv_world(0.01)  # 10 MB/s: a 4,096-token 7B prompt (2 GB) takes 200 s
    both = ~np.isnan(fast.ttft_s) & ~np.isnan(slow.ttft_s)
    assert both.sum() > 150
    np.testing.assert_array_equal(fast.prompt_node[both], slow.prompt_node[both])  # the same prefill
    wl = eng.wl
    kv = request_kv_gb(wl.prompt_tokens, np.asarray(cfg.model_kv_mb_per_token)[wl.model])  # the prompt's KV
    extra = kv_transfer_latency_s(kv, 0.01) - kv_transfer_latency_s(kv, 50.0)
    # Eq. 3's compute term is LA_exec / T_i, and in exact mode LA_exec = prefill + transfer + decode (docs/model.md
    # 'Split execution'): a slower link adds its extra transfer time over the request's output tokens
    expected = extra / np.maximum(wl.output_tokens, 1)
    np.testing.assert_allclose((slow.ttft_s - fast.ttft_s)[both], expected[both], rtol=1e-9, atol=1e-9)
    assert np.mean(expected[both]) > 1.0  # seconds: the transfer is no rounding error here


def test_the_first_token_leaves_the_prompt_node_before_the_kv_transfer():
    # the default first-token time: the prompt node's prefill pass emits the first token, the KV cache moves after
    _, _, fast = kv_world(50.0, "prefill")
    _, _, slow = kv_world(0.01, "prefill")
    both = ~np.isnan(fast.ttft_s) & ~np.isnan(slow.ttft_s)
    assert both.sum() > 150
    np.testing.assert_array_equal(fast.ttft_s[both], slow.ttft_s[both])


def test_other_schedulers_do_not_split():
    cfg = Config(dcs=4, hours=0.5, nodes_per_dc=60, load_scale="0.01")
    rec = Engine(cfg, create("nearest")).run()
    assert np.all(rec.prompt_node == -1)


def test_latency_first_plan_spills_when_full(split_run):
    cfg, eng, _ = split_run
    sched = create("splitwise")
    sched.reset(eng.info, np.random.default_rng(0))
    cap = sched.target() * eng.info.capacity.requests_per_epoch[0, 0]  # model 0 fill room per dc (fill-ttft's)
    pred = np.zeros((2, 4))
    pred[0, 0] = 3 * cap  # origin 0 alone needs three datacenters' worth of warm capacity
    plan = sched.decide(eng.epochs.observation(Epoch(0, 0.0, pred, 0, 0)))
    order = np.argsort(eng.info.latency_s[0], kind="stable")
    np.testing.assert_allclose(plan[0, 0, order[:3]], 1 / 3)
    assert plan[1, 1, np.argmin(eng.info.latency_s[1])] == 1.0


@pytest.mark.parametrize("name", ["splitwise_prompt_gpu", "splitwise_token_gpu"])
def test_a_pool_on_a_gpu_type_the_world_lacks_is_refused_naming_the_parameter(name):
    cfg = Config(dcs=4, hours=0.25, nodes_per_dc=12, load_scale="0.001")
    with pytest.raises(ConfigError, match=f"^{name}=V100: must be one of gpu_types"):
        Engine(cfg, create("splitwise", {name: "V100"})).run()
