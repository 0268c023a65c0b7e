"""Hand-computed examples for each equation of sections 3.1-3.5 (Eq. 1-10)."""
import numpy as np
import pytest

from simcore import physics as ph
from simcore.config import Config


def test_eq1_node_memory_weights_plus_kv():
    kv = ph.request_kv_gb(2048, 0.5)  # 2048 tokens x 0.5 MB = 1024 MB = 1 GB
    assert kv == pytest.approx(1.0)
    assert ph.node_memory_gb(13.5, kv) == pytest.approx(14.5)
    # 70B with GQA: 4096 tokens x 0.3125 MB = 1.25 GB next to 138 GB of weights
    assert ph.node_memory_gb(138.0, ph.request_kv_gb(4096, 0.3125)) == pytest.approx(139.25)


def test_eq2_network_latency():
    # 1000 km of fibre at 0.005 ms/km = 5 ms, plus 3 hops x 1 ms = 8 ms
    assert ph.network_latency_s(1000.0, 3, 0.005, 1.0) == pytest.approx(0.008)
    assert ph.network_latency_s(0.0, 0, 0.005, 1.0) == 0.0


def test_weight_load_latency():
    assert ph.weight_load_latency_s(138.0, 7.0) == pytest.approx(19.714285714)
    assert ph.weight_load_latency_s(13.5, 14.0) == pytest.approx(0.9642857)


def test_eq3_ttft_terms():
    # exec 3.0 s over 30 output tokens -> LA_exec / T_i = 0.1 s
    first = ph.first_token_compute_s("eq3", 3.0, 30, 0.2, 0.03)
    assert first == pytest.approx(0.1)
    # the default: the prefill pass emits the first token (0.2 s), the decode step is not part of it
    assert ph.first_token_compute_s("prefill", 3.0, 30, 0.2, 0.03) == pytest.approx(0.2)
    # wait 0.1 + load 2 + 2 x 8 ms + 0.1
    assert ph.request_ttft_s(0.1, 2.0, 0.008, first) == pytest.approx(2.216)


def test_pstates_from_busy_fraction():
    u = np.array([0.0, 0.2, 0.25, 0.3, 0.5, 0.6, 0.75, 0.8, 1.0])
    c = Config()
    pc = ph.pstate_power_fraction(u, np.ones_like(u, bool), c.pc_pstates, c.pstate_busy_limits, c.pc_parked)
    np.testing.assert_allclose(pc, [0.4, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1.0, 1.0])
    parked = ph.pstate_power_fraction(u, np.zeros_like(u, bool), c.pc_pstates, c.pstate_busy_limits, c.pc_parked)
    np.testing.assert_allclose(parked, 0.05)


def test_eq4_eq5_it_energy():
    # 8 x A100 node: 8 x (400 + 150) W = 4400 W at P3 (0.4) for 900 s = 1.584 MJ = 0.44 kWh
    assert ph.node_it_kwh(0.4, 4400.0, 900.0) == pytest.approx(0.44)
    it = ph.datacenter_it_kwh(np.array([0.44, 0.1, 0.2, 0.3]), np.array([0, 1, 0, 1]), 3)
    np.testing.assert_allclose(it, [0.64, 0.4, 0.0])


def test_eq6_to_eq10_hand_example():
    c = Config()
    m = ph.datacenter_epoch_metrics(100.0, 4.0, 0.05, 2.0, 0.4, c)
    assert m["cooling_kwh"] == pytest.approx(75.0)  # 3 x 100 / 4
    assert m["infra_kwh"] == pytest.approx(13.0)
    assert m["total_kwh"] == pytest.approx(188.0)  # Eq. 6
    assert m["cost_usd"] == pytest.approx(9.4)  # Eq. 7
    evap = 100 * 3600 / 2257
    assert m["water_evap_l"] == pytest.approx(159.5037660)
    assert m["water_blowdown_l"] == pytest.approx(evap / 0.8)
    assert m["water_grid_l"] == pytest.approx(376.0)
    assert m["water_l"] == pytest.approx(evap + evap / 0.8 + 376.0)  # Eq. 8
    z_water = ((evap / 0.8 + evap) * 0.0005 + 376.0 * 0.0006) * 0.4
    assert m["carbon_water_kg"] == pytest.approx(z_water)  # Eq. 9
    assert m["carbon_grid_kg"] == pytest.approx(75.2)
    assert m["carbon_kg"] == pytest.approx(75.2 + z_water)  # Eq. 10
    assert m["carbon_kg"] == pytest.approx(75.36204, rel=1e-6)


def test_metrics_vectorize_over_batches():
    c = Config()
    it = np.array([[100.0, 50.0], [0.0, 10.0]])
    m = ph.datacenter_epoch_metrics(it, np.array([4.0, 5.0]), np.array([0.05, 0.1]), np.array([2.0, 1.0]),
                                    np.array([0.4, 0.1]), c)
    assert m["total_kwh"].shape == (2, 2)
    assert m["total_kwh"][0, 0] == pytest.approx(188.0)
    np.testing.assert_allclose(m["total_kwh"], m["it_kwh"] + m["cooling_kwh"] + m["infra_kwh"])
