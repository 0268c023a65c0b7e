"""The paper's models, sections 3.1-3.5: one pure function per equation (Eq. 1-10).

This module is the only place where memory, latency, energy, cost, water and carbon are computed. The event
engine, the epoch evaluator and the schedulers call these functions; they work on Python floats and on numpy
arrays alike (elementwise), so the engine can call them per request and the evaluator per batch of plans.
Units are in the names: `_gb`, `_s`, `_kwh`, `_usd`, `_l`, `_kg`.
"""
from __future__ import annotations

import numpy as np

J_PER_KWH = 3.6e6
KJ_PER_KWH = 3600.0
MS_PER_S = 1000.0
MB_PER_GB = 1024.0


# --- 3.1 workload: memory and latency ---------------------------------------------------------------
def node_memory_gb(resident_weights_gb, kv_cache_gb):
    """Eq. 1: node memory M_{n,e} = sum of resident model weights MF_v + sum of the active requests' KV cache.

    A request is admitted only while this stays within the node's pooled memory M_tot,n.
    """
    return resident_weights_gb + kv_cache_gb


def request_kv_gb(tokens, kv_mb_per_token):
    """The KV term of Eq. 1 for one request: KV_{v,i,tau} summed over its tokens (prompt + output), GB."""
    return tokens * kv_mb_per_token / MB_PER_GB


def network_latency_s(path_km, hops, lambda_media_ms_per_km, sigma_hop_ms):
    """Eq. 2: LA_net = dist x lambda_media + R_{source,dest} x sigma_hop (one way), in seconds."""
    return (path_km * lambda_media_ms_per_km + hops * sigma_hop_ms) / MS_PER_S


def weight_load_latency_s(weights_gb, load_bw_gb_per_s):
    """Section 3.1: LA_load = MF_v / BW_n, the time to bring a model's weights into GPU memory."""
    return weights_gb / load_bw_gb_per_s


def kv_transfer_latency_s(kv_gb, link_gb_per_s):
    """Split execution (Splitwise, not a paper equation): time to move a request's KV cache between nodes."""
    return kv_gb / link_gb_per_s


def first_token_compute_s(ttft_model, exec_s, output_tokens, prefill_s, decode_step_s):
    """Eq. 3's compute term: the prompt's prefill pass, which emits the first token ('prefill', the default: a
    first-token time), or LA_{tot,exec,i} / T_i ('eq3', the paper's term read literally: the mean time per output
    token, shorter than the prefill for long outputs). `decode_step_s` is unused by both (callers keep one call
    for every model)."""
    if ttft_model == "prefill":
        return prefill_s
    return exec_s / np.maximum(output_tokens, 1)


def round_trip_s(net_s):
    """Eq. 3's network term: the prompt travels to the datacenter and the first token back, 2 x LA_net (Eq. 2)."""
    return 2.0 * net_s


def request_ttft_s(wait_s, load_s, net_s, first_token_s):
    """Eq. 3 (one request's term, plus its queue wait, SPEC 5): TTFT = wait + LA_load + 2 x LA_net + compute.

    The paper's LA_tot,e is the sum of this over the epoch's requests.
    """
    return wait_s + load_s + round_trip_s(net_s) + first_token_s


def sla_violated(ttft_s, sla_ttft_s):
    """SPEC 5: whether each request's TTFT exceeds the SLA (a request without a first token, NaN, does not)."""
    return np.nan_to_num(ttft_s, nan=0.0) > sla_ttft_s


# --- 3.3 energy ----------------------------------------------------------------------------------------
def pstate_power_fraction(busy_fraction, active, pc_pstates, busy_limits, pc_parked):
    """Section 3.3: PC_pstate of each node from its busy fraction u; inactive nodes are parked.

    P0 (u > limits[0]), P1 (u <= limits[0]), P2 (u <= limits[1]), P3 (u <= limits[2]); pc_pstates = (P0..P3).
    """
    u = np.asarray(busy_fraction, dtype=float)
    level = (u <= busy_limits[0]).astype(int) + (u <= busy_limits[1]) + (u <= busy_limits[2])
    pc = np.asarray(pc_pstates, dtype=float)[level]
    return np.where(active, pc, pc_parked)


def parked_share(active_nodes, nodes):
    """Share of the nodes parked (no work, not kept warm): the consolidation the ECO reward term pays (section 5.2)."""
    return 1.0 - active_nodes / nodes


def node_it_kwh(pc, tdp_w, epoch_s):
    """Eq. 4: E_IT,n,e = PC_pstate x TDP_n x t_e, in kWh."""
    return pc * tdp_w * epoch_s / J_PER_KWH


def datacenter_it_kwh(node_kwh, node_dc, dcs):
    """Eq. 5: E_IT,d,e = sum over the datacenter's nodes of E_IT,n,e (node_dc gives each node's datacenter)."""
    return np.bincount(node_dc, weights=node_kwh, minlength=dcs)


def cooling_kwh(it_kwh, cop, cooling_multiplier):
    """Section 3.3: E_cool = cooling_multiplier x E_CRAC with E_CRAC = E_IT / COP_d (term of Eq. 6)."""
    return cooling_multiplier * it_kwh / cop


def infra_kwh(it_kwh, infra_fraction):
    """Section 3.3: E_infra = infra_fraction x E_IT (term of Eq. 6)."""
    return infra_fraction * it_kwh


def total_energy_kwh(it_kwh, cooling, infra):
    """Eq. 6: E_tot,d,e = E_IT + E_cool + E_infra."""
    return it_kwh + cooling + infra


def energy_cost_usd(total_kwh, tou_usd_per_kwh):
    """Eq. 7 (one datacenter's term): E_tot,d,e x TOU_d,e."""
    return total_kwh * tou_usd_per_kwh


# --- 3.4 water -------------------------------------------------------------------------------------------
def evaporative_water_l(it_kwh, j_water_kj_per_kg):
    """Section 3.4: G_E = H_cool / J_water, the heat removed being the IT energy; 1 kg of water = 1 L."""
    return it_kwh * KJ_PER_KWH / j_water_kj_per_kg


def blowdown_water_l(evap_l, phi):
    """Section 3.4: G_blow = G_E / (1 - phi), as the paper writes it."""
    return evap_l / (1.0 - phi)


def grid_water_l(total_kwh, gi_l_per_kwh):
    """Section 3.4: G_grid = E_tot x GI_d."""
    return total_kwh * gi_l_per_kwh


def total_water_l(evap_l, blowdown_l, grid_l):
    """Eq. 8 (one datacenter's term): G_E + G_blow + G_grid."""
    return evap_l + blowdown_l + grid_l


# --- 3.5 carbon ------------------------------------------------------------------------------------------
def grid_carbon_kg(total_kwh, ci_kg_per_kwh):
    """Section 3.5: Z_grid = CI_d,e x E_tot,d,e."""
    return total_kwh * ci_kg_per_kwh


def water_carbon_kg(evap_l, blowdown_l, grid_l, ei_pot_kwh_per_l, ei_waste_kwh_per_l, ci_kg_per_kwh):
    """Eq. 9: Z_G = (Z_pot + Z_waste) x CI with Z_pot = (G_blow + G_E) x EI_pot, Z_waste = G_grid x EI_waste."""
    return ((blowdown_l + evap_l) * ei_pot_kwh_per_l + grid_l * ei_waste_kwh_per_l) * ci_kg_per_kwh


def total_carbon_kg(grid_kg, water_kg):
    """Eq. 10 (one datacenter's term): Z_grid + Z_G."""
    return grid_kg + water_kg


HOURS_PER_YEAR = 8760.0  # 365 x 24: the service life's hours


def embodied_carbon_kg(embodied_kg, powered_h, service_life_years):
    """Embodied carbon (not a paper equation; its future work, section 7): the manufacturing carbon of hardware,
    amortised linearly over its service life by the hours it is powered: embodied_kg x powered_h /
    (service_life_years x 8760). A node powered for one epoch carries epoch_h / life_h of its embodied carbon,
    parked or busy (the hardware exists either way). Valid for a fleet replaced at the end of its service life;
    it ignores end-of-life credits and the datacenter building's own embodied carbon.

    The same amortisation gives the share attributable to a workload when `powered_h` is the time the hardware is
    reserved for it (time-share allocation: the Green Software Foundation's SCI, M = TE x TR / EL; EcoLogits'
    I_request = dT / dL x I_server): the engine and the evaluator pass the embodied carbon of the nodes that serve
    (warm or busy, not parked) for `embodied_attributable_kg` (docs/model.md 'Embodied carbon').
    """
    return embodied_kg * powered_h / (service_life_years * HOURS_PER_YEAR)


# --- composition, shared by both engines ---------------------------------------------------------------------
def datacenter_epoch_metrics(it_kwh, cop, tou_usd_per_kwh, gi_l_per_kwh, ci_kg_per_kwh, cfg) -> dict:
    """Eq. 6-10 for one epoch, from each datacenter's IT energy (any array shape, elementwise).

    Returns every intermediate term, so results files can show them and tests can re-check them.
    """
    cool = cooling_kwh(it_kwh, cop, cfg.cooling_multiplier)
    infra = infra_kwh(it_kwh, cfg.infra_fraction)
    tot = total_energy_kwh(it_kwh, cool, infra)
    evap = evaporative_water_l(it_kwh, cfg.j_water_kj_per_kg)
    blow = blowdown_water_l(evap, cfg.phi)
    gridw = grid_water_l(tot, gi_l_per_kwh)
    zgrid = grid_carbon_kg(tot, ci_kg_per_kwh)
    zwater = water_carbon_kg(evap, blow, gridw, cfg.ei_pot_kwh_per_l, cfg.ei_waste_kwh_per_l, ci_kg_per_kwh)
    return {
        "it_kwh": it_kwh,
        "cooling_kwh": cool,
        "infra_kwh": infra,
        "total_kwh": tot,
        "cost_usd": energy_cost_usd(tot, tou_usd_per_kwh),
        "water_evap_l": evap,
        "water_blowdown_l": blow,
        "water_grid_l": gridw,
        "water_l": total_water_l(evap, blow, gridw),
        "carbon_grid_kg": zgrid,
        "carbon_water_kg": zwater,
        "carbon_kg": total_carbon_kg(zgrid, zwater),
    }


# --- capacity (Eq. 1 solved for the batch) --------------------------------------------------------------------
def max_batch_in_memory(mem_gb, weights_gb, kv_gb_per_request, max_batch):
    """Eq. 1 solved for the batch: the most requests of `kv_gb_per_request` whose KV fits beside the weights
    (weights + batch x KV <= M_tot,n), at least 1 where the weights fit, at most `max_batch`; 0 where they do not."""
    free = np.asarray(mem_gb, dtype=float) - weights_gb
    b = np.floor(free / np.maximum(kv_gb_per_request, 1e-12))
    return np.where(free > 0, np.clip(b, 1, max_batch), 0).astype(int)
