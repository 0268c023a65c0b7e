"""Splitwise: prefill and decode really run on different nodes (H100 prompt pool, A100 token pool) and the KV
cache transfer is paid; routing is latency-first with spill-over."""
import numpy as np
import pytest

from schedulers.registry import create
from simcore.config import Config
from simcore.engine import Engine
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


def test_kv_transfer_is_paid(split_run):
    cfg, eng, rec = split_run
    served = np.flatnonzero(~np.isnan(rec.ttft_s))
    i = int(served[0])
    kv = request_kv_gb(eng.r_prompt[i], cfg.model_kv_mb_per_token[eng.r_model[i]])
    assert eng.r_xfer[i] == pytest.approx(kv_transfer_latency_s(kv, cfg.splitwise_kv_link_gb_per_s))
    assert eng.r_xfer[i] > 0


def test_other_schedulers_do_not_split():
    cfg = Config(dcs=4, hours=0.5, nodes_per_dc=60, load_scale="0.01")
    rec = Engine(cfg, create("nearest")).run()
    assert np.all(rec.prompt_node == -1)


def test_latency_first_plan_spills_when_full(split_run):
    cfg, eng, _ = split_run
    sched = create("splitwise")
    sched.reset(eng.info, np.random.default_rng(0))
    from schedulers.base import Observation
    cap = sched.target() * eng.info.capacity.requests_per_epoch[0, 0]  # model 0 fill room per dc (fill-ttft's)
    pred = np.zeros((2, 4))
    pred[0, 0] = 3 * cap  # origin 0 alone needs three datacenters' worth of warm capacity
    obs = Observation(0, 0.0, pred, np.zeros(4), np.zeros((4, 2)), np.zeros(4), np.ones(4), np.ones(4),
                      np.ones(4), np.ones(4), None)
    plan = sched.decide(obs)
    order = np.argsort(eng.info.latency_s[0], kind="stable")
    np.testing.assert_allclose(plan[0, 0, order[:3]], 1 / 3)
    assert plan[1, 1, np.argmin(eng.info.latency_s[1])] == 1.0
