"""simcore.execution: the execution modes a scheduler declares (whole, or split into a prefill phase and a decode
phase on separate pools) and what the engine reads of them; a second split scheduler runs unchanged."""
import numpy as np
import pytest

from schedulers.registry import create
from simcore.config import Config
from simcore.engine import Engine
from simcore.errors import ConfigError
from simcore.execution import WHOLE, Execution, Phase, split_execution
from simcore.physics import kv_transfer_latency_s, request_kv_gb


def _never():
    raise AssertionError("a whole-request mode needs no phase means")


def test_whole_is_the_default_one_phase_mode():
    assert create("nearest").execution() is WHOLE
    (phase,) = WHOLE.phases
    assert phase.prefill and phase.decode and phase.gpu is None
    assert WHOLE.pool_nodes(7, 1) == [7] and WHOLE.pool_nodes(0, 2) == [2]
    rps = np.array([[3.0, 4.0], [1.0, 2.0]])
    assert WHOLE.node_rps(rps, np.ones((2, 2)), _never, _never) == [rps.tolist()]


def test_split_pools_rps_and_transfer():
    mode = split_execution("H100-80GB", "A100-80GB", 0.35, 50.0)
    prompt, token = mode.phases
    assert (prompt.prefill, prompt.decode, prompt.gpu) == (True, False, "H100-80GB")
    assert (token.prefill, token.decode, token.gpu) == (False, True, "A100-80GB")
    assert mode.pool_nodes(10, 1) == [4, 7]  # ceil(3.5), ceil(6.5): each pool rounds up
    assert mode.pool_nodes(0, 1) == [1, 1]  # at least the minimum warm set each
    batch = np.array([[8.0, 16.0]])
    pre, dec = np.array([[0.5, 0.25]]), np.array([[4.0, 2.0]])
    # prompts one prefill pass after another (1 / prefill), decodes B* at a time (B* / decode)
    assert mode.node_rps(np.zeros((1, 2)), batch, lambda: pre, lambda: dec) == [[[2.0, 4.0]], [[2.0, 8.0]]]
    tokens = np.array([0, 1000, 4096])
    np.testing.assert_array_equal(mode.transfer_s(tokens, 0.5), kv_transfer_latency_s(request_kv_gb(tokens, 0.5), 50.0))


def test_a_mode_is_one_phase_or_prefill_then_decode():
    prefill, decode = Phase("p", True, False), Phase("d", False, True)
    with pytest.raises(ValueError):
        Execution((decode, prefill))
    with pytest.raises(ValueError):
        Execution((prefill, decode, decode))
    with pytest.raises(ValueError):
        Execution((prefill,))


def test_a_phase_on_a_gpu_type_the_world_lacks_is_refused():
    with pytest.raises(ConfigError, match="scheduler s: its token phase runs on GPU type V100"):
        split_execution("H100-80GB", "V100", 0.5, 1.0).check(("A100-80GB", "H100-80GB"), "s")


@pytest.mark.parametrize("cohort_size", ["1", "20"])
def test_a_second_split_scheduler_runs_without_an_engine_change(cohort_size):
    """tests.plugins:SplitNearest declares the reverse of Splitwise's pools: prefill on A100, decode on H100."""
    cfg = Config(dcs=4, hours=0.5, nodes_per_dc=60, load_scale="0.01", seed=2, cohort_size=cohort_size)
    eng = Engine(cfg, create("tests.plugins:SplitNearest"))
    rec = eng.run()
    served = ~np.isnan(rec.ttft_s)
    assert served.sum() > 10
    gpu = np.array([cfg.gpu_types.index(g) for g, _ in eng.fleet.node_types])[eng.fleet.node_type]
    if cohort_size == "1":  # each request's two nodes are known in exact mode
        assert np.all(gpu[rec.prompt_node[served]] == cfg.gpu_types.index("A100-80GB"))
        assert np.all(gpu[rec.token_node[served]] == cfg.gpu_types.index("H100-80GB"))
    else:  # cohorts: the phases' pools are the datacenters' warm nodes of those GPU types
        M = len(eng.info.models)  # pool d x K + j x M + m: datacenter 0's pools of model 0, prefill then decode
        assert set(gpu[eng.nodes.pNodes[0]]) == {cfg.gpu_types.index("A100-80GB")}
        assert set(gpu[eng.nodes.pNodes[M]]) == {cfg.gpu_types.index("H100-80GB")}
