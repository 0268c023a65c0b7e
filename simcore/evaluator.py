"""The fast epoch evaluator: the paper's Simulate(State_e, a) (Algorithm 1 line 7, Algorithm 2 line 19).

Scores a batch of candidate plans [B, model, origin, datacenter] for one epoch at once, vectorized over plans
(no Python loop over plans or requests), with the same physics functions as the event engine (Eq. 1-10 live in
`simcore.physics` only) and the same serving capacity (`simcore.capacity`), in closed form:

- warm set: as the engine, the nodes whose capacity covers plan x forecast at `warm_target_utilization`
  (at least `min_warm_nodes`), the large model first; demand beyond the warm set draws in cold nodes;
- capacity binds: each datacenter is a FIFO fluid queue (`simcore.queueing.fluid_segment`, the engine's cohort
  pools' closed form) that drains work at its full capacity behind what already waits (`queued`); it gives the
  mean wait and the share waiting past the SLA; below saturation each model's pool adds the M/G/c wait
  (`stationary_wait`) as the engine's pools do;
- cold starts: a newly warm node loads its model from the epoch start, so requests reaching it in the first
  LA_load seconds wait (mean LA_load^2 / (2 t_e) per request, SLA violated when the wait exceeds the SLA);
- p-state of each model's pool from its utilization (Eq. 4-5), the rest parked;
- TTFT per request = 2 x LA_net (Eq. 2) + first-token compute at full batch (Eq. 3) + the waits above.

Deterministic: no randomness at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simcore import physics
from simcore.config import Config
from simcore.queueing import fluid_segment, pool_queueing_wait

HALFIN_WHITT_NEGLIGIBLE = 6.0  # sqrt(slots) x (1 - rho) above this: the queueing wait is negligible

@dataclass(frozen=True)
class EpochState:
    """What Simulate needs about one epoch.

    :param predicted: [M, O] forecast requests (sizes the warm set, as in the engine)
    :param requests: [M, O] requests to score (the forecast at decision time; the truth in agreement tests)
    :param ci_kg_per_kwh, gi_l_per_kwh, tou_usd_per_kwh, cop: [D] site signals of the epoch
    :param resident_nodes: [D, M] nodes already holding each model (None: the warm set is already loaded)
    :param queued: [D] real requests already waiting in each datacenter (None: none)
    """

    predicted: np.ndarray
    requests: np.ndarray
    ci_kg_per_kwh: np.ndarray
    gi_l_per_kwh: np.ndarray
    tou_usd_per_kwh: np.ndarray
    cop: np.ndarray
    resident_nodes: np.ndarray | None = None
    queued: np.ndarray | None = None

    @classmethod
    def from_observation(cls, obs, requests: np.ndarray | None = None) -> "EpochState":
        """The state a scheduler sees at an epoch start (requests default to the forecast)."""
        pred = obs.predicted_requests
        return cls(pred, pred if requests is None else requests, obs.ci_kg_per_kwh, obs.gi_l_per_kwh,
                   obs.tou_usd_per_kwh, obs.cop, obs.resident_nodes, obs.queued)


@dataclass(frozen=True)
class Evaluation:
    """Per-plan estimates ([B] arrays; per-datacenter ones [B, D])."""

    ttft_total_s: np.ndarray
    ttft_mean_s: np.ndarray
    carbon_kg: np.ndarray
    water_l: np.ndarray
    cost_usd: np.ndarray
    energy_kwh: np.ndarray
    sla_violations: np.ndarray
    parked_share: np.ndarray
    dc_energy_kwh: np.ndarray
    dc_requests: np.ndarray

    @property
    def metrics(self) -> np.ndarray:
        """[B, 4]: total TTFT (s, Eq. 3), carbon (kg, Eq. 10), water (L, Eq. 8), cost (USD, Eq. 7)."""
        return np.stack([self.ttft_total_s, self.carbon_kg, self.water_l, self.cost_usd], axis=1)


class EpochEvaluator:
    """Simulate(State_e, a) over a batch of plans.

    :param cfg: the run's Config
    :param latency_s: [O, D] one-way network latency (Eq. 2)
    :param fleet: `simcore.capacity.Fleet`
    :param profiles: `simcore.profiles.Profiles`
    :param prompt_tokens, output_tokens: a sample of the workload's token pairs (mean service times)
    :param capacity: `simcore.capacity.Capacity` of the run (computed from the token sample if None)
    """

    def __init__(self, cfg: Config, latency_s: np.ndarray, fleet, profiles, prompt_tokens: np.ndarray,
                 output_tokens: np.ndarray, capacity=None) -> None:
        from simcore.capacity import serving_capacity

        self.cfg, self.lat = cfg, np.asarray(latency_s, dtype=float)
        N, M = cfg.nodes_per_dc, len(cfg.model_weights_gb)
        self.cap = capacity if capacity is not None else serving_capacity(cfg, fleet, profiles, prompt_tokens,
                                                                          output_tokens)
        types = fleet.node_type[:N]
        T = len(fleet.node_types)
        count_t = np.bincount(types, minlength=T).astype(float)
        hosts = np.asarray(profiles.hosts, dtype=bool)  # [M, T]
        # the warm set is a prefix of the interleaved node order: its nodes mix the types in their shares
        self.cum_tdp_w = np.concatenate([[0.0], np.cumsum(fleet.tdp_w[:N])])
        self.host_nodes = (hosts * count_t[None, :]).sum(axis=1)  # [M]
        self.node_epoch_capacity = ((hosts * count_t[None, :] * self.cap.node_rps).sum(axis=1)
                                    / np.maximum(self.host_nodes, 1) * cfg.epoch_s)  # [M] requests per node
        share = hosts * count_t[None, :] * self.cap.node_rps
        self.type_share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)  # [M, T] of requests

        keep = np.asarray(output_tokens) > 0
        p = np.asarray(prompt_tokens)[keep].astype(float)
        o = np.asarray(output_tokens)[keep].astype(float)
        m_idx = np.arange(M)[:, None, None]
        t_idx = np.arange(T)[None, :, None]
        b = np.maximum(self.cap.batch, 1)[:, :, None]
        prefill = profiles.prefill_s_array(m_idx, t_idx, p[None, None, :])  # [M, T, S]
        step = profiles.decode_step_s[m_idx, t_idx, b]
        first = physics.first_token_compute_s(cfg.ttft_model, prefill + o * step, o, prefill, step)
        self.first_token_s = (self.type_share * first.mean(axis=2)).sum(axis=1)  # [M]
        self.load_s = fleet.load_s  # [M, T]
        L = self.load_s
        self.cold_wait_s = (self.type_share * L ** 2).sum(axis=1) / (2.0 * cfg.epoch_s)  # [M] per request
        self.cold_late = (self.type_share * np.maximum(0.0, L - cfg.sla_ttft_s)).sum(axis=1) / cfg.epoch_s  # [M]
        self.bin_s = cfg.epoch_s / max(1, int(round(cfg.epoch_s / cfg.cohort_bin_s)))  # the engine's cohort bins
        # per model, over the node types in their share of the requests: batch slots per node, service SCV
        self.slots_per_node = (hosts * count_t[None, :] * self.cap.batch).sum(axis=1) / np.maximum(self.host_nodes, 1)
        self.scv = (self.type_share * self.cap.service_scv).sum(axis=1)  # [M]

    def _stationary(self, lam, rho, nodes, limit) -> tuple:
        """The stochastic queueing wait and late share of each pool ([B, D, M]) below saturation, as the engine's
        cohort pools add it per bin (`simcore.queueing.pool_queueing_wait`: M/G/c, bounded by what a bin can
        build near saturation); computed only where it is not negligible (Halfin-Whitt: sqrt(c) (1 - rho) >
        HALFIN_WHITT_NEGLIGIBLE gives P_wait < 1e-9)."""
        wait, late = np.zeros(lam.shape), np.zeros(lam.shape)
        slots = nodes * self.slots_per_node  # [B, D, M]
        live = (lam > 0) & (rho < 1.0) & (np.sqrt(slots) * (1.0 - rho) < HALFIN_WHITT_NEGLIGIBLE)
        if live.any():
            mu = (lam / np.maximum(rho, 1e-12))[live]
            m = np.broadcast_to(np.arange(lam.shape[-1]), lam.shape)[live]
            wait[live], late[live] = pool_queueing_wait(lam[live], mu, slots[live], self.scv[m], limit[m],
                                                        self.bin_s)
        return wait, late

    # ------------------------------------------------------------------------------------------------------------
    def evaluate(self, state: EpochState, plans: np.ndarray) -> Evaluation:
        """Score plans [B, M, O, D] (or one plan [M, O, D]) for the epoch `state`."""
        cfg = self.cfg
        plans = np.asarray(plans, dtype=float)
        if plans.ndim == 3:
            plans = plans[None]
        N, t_e = cfg.nodes_per_dc, cfg.epoch_s
        R = np.einsum("bmod,mo->bdm", plans, state.requests)  # requests to score [B, D, M]
        P = np.einsum("bmod,mo->bdm", plans, state.predicted)  # forecast, sizes the warm set
        cap_node = self.node_epoch_capacity  # [M]
        # warm set as the engine's: at warm_target_utilization, or at the forecast's own utilization where that
        # is higher (capped at 1)
        target = np.clip((P / (cap_node * self.host_nodes)).sum(axis=2), cfg.warm_target_utilization, 1.0)
        k = np.maximum(cfg.min_warm_nodes, np.ceil(P / (cap_node * target[..., None]) - 1e-9))
        k = np.minimum(k, self.host_nodes)
        # load in node-epochs of work (what waits from before counts)
        queued = np.zeros(R.shape[1]) if state.queued is None else np.asarray(state.queued, dtype=float)
        total = np.asarray(state.requests, dtype=float).sum(axis=1)  # [M]
        mix_all = total / total.sum() if total.sum() > 0 else np.full(len(total), 1.0 / len(total))
        R_dc = R.sum(axis=2, keepdims=True)
        mix = np.where(R_dc > 0, R / np.maximum(R_dc, 1e-12), mix_all)  # a datacenter given nothing new drains
        backlog = queued[None, :, None] * mix  # [B, D, M] real requests waiting, in the plan's model mix
        work = (R + backlog) / cap_node  # [B, D, M]
        need = np.maximum(k, np.ceil(work - 1e-9))
        nodes = need * np.minimum(1.0, N / np.maximum(need.sum(axis=2, keepdims=True), 1e-12))

        resident = state.resident_nodes
        new = k if resident is None else np.maximum(0.0, k - np.asarray(resident, dtype=float)[None])
        new = new + np.maximum(0.0, nodes - k)
        cold_frac = np.where(nodes > 0, new / np.maximum(nodes, 1.0), 0.0)
        load_wait = cold_frac * self.cold_wait_s  # [B, D, M]
        rho = np.minimum(work / np.maximum(nodes, 1e-12), 1.0)  # [B, D, M] each pool's utilization
        limit = cfg.sla_ttft_s - self.first_token_s  # [M] (network latency aside)
        stat_wait, stat_late = self._stationary(R / t_e, rho, nodes, limit)
        net = np.einsum("bmod,mo,od->bdm", plans, state.requests, self.lat)  # sum of one-way latencies
        mean_net = net / np.maximum(R, 1e-12)
        slack = np.maximum(0.0, limit - 2.0 * mean_net)  # [B, D, M]

        # capacity binds: the datacenter drains its work (node-epochs) at N per epoch, FIFO behind what already
        # waits (its nodes pass between the models' pools as their backlogs need them, within the epoch by spills
        # and across epochs by the warm sets); the fluid queue gives each datacenter's mean wait and each pool's
        # share past its SLA slack
        lam = (R / cap_node).sum(axis=2, keepdims=True) / t_e
        mu = N / t_e
        _, wait_sum, late_n = fluid_segment((backlog / cap_node).sum(axis=2, keepdims=True), lam, mu, t_e,
                                            slack * mu)
        arrivals = np.maximum(lam * t_e, 1e-300)
        queue_wait = wait_sum / arrivals  # [B, D, 1]
        late_q = np.minimum(late_n / arrivals, 1.0)  # [B, D, M]
        ttft_dc = physics.request_ttft_s(R * (queue_wait + stat_wait), R * load_wait, net, R * self.first_token_s)
        ttft_total = ttft_dc.sum(axis=(1, 2))
        n_req = R.sum(axis=(1, 2))
        sla = (R * np.maximum(np.maximum(late_q, stat_late), cold_frac * self.cold_late)).sum(axis=(1, 2))

        # energy: each model's pool at the p-state of its utilization (Eq. 4-5), the large model's pool first in
        # the node order (as the engine places it), the other nodes parked
        active = np.minimum(nodes.sum(axis=2), N)  # [B, D]
        pc = physics.pstate_power_fraction(rho, True, cfg.pc_pstates, cfg.pstate_busy_limits, cfg.pc_parked)
        ends = np.cumsum(nodes[..., ::-1], axis=2)[..., ::-1]  # [B, D, M] end of each pool in the node order
        idx = lambda x: np.clip(np.ceil(x - 1e-9), 0, N).astype(int)  # noqa: E731
        tdp_pool = self.cum_tdp_w[idx(ends)] - self.cum_tdp_w[idx(ends - nodes)]
        tdp_parked = self.cum_tdp_w[N] - self.cum_tdp_w[idx(active)]
        it = (physics.node_it_kwh(pc, tdp_pool, t_e).sum(axis=2)
              + physics.node_it_kwh(cfg.pc_parked, tdp_parked, t_e))
        met = physics.datacenter_epoch_metrics(it, state.cop, state.tou_usd_per_kwh, state.gi_l_per_kwh,
                                               state.ci_kg_per_kwh, cfg)
        return Evaluation(
            ttft_total_s=ttft_total, ttft_mean_s=ttft_total / np.maximum(n_req, 1e-12),
            carbon_kg=met["carbon_kg"].sum(axis=1), water_l=met["water_l"].sum(axis=1),
            cost_usd=met["cost_usd"].sum(axis=1), energy_kwh=met["total_kwh"].sum(axis=1),
            sla_violations=sla, parked_share=1.0 - active.sum(axis=1) / (N * active.shape[1]),
            dc_energy_kwh=met["total_kwh"], dc_requests=R.sum(axis=2))


def evaluator_from_info(info) -> EpochEvaluator:
    """The evaluator a scheduler builds from its StaticInfo (same fleet, profiles, latencies, token sample)."""
    from simcore.capacity import build_fleet
    from simcore.profiles import load_profiles

    prompt, output = info.token_sample
    return EpochEvaluator(info.cfg, info.latency_s, build_fleet(info.cfg), load_profiles(info.cfg), prompt, output,
                          info.capacity)


def evaluator_for(engine) -> EpochEvaluator:
    """The evaluator matching an engine: its fleet, profiles and latencies, and the token sample its scheduler
    sees (so tests check the evaluator the schedulers use)."""
    prompt, output = engine.info.token_sample
    return EpochEvaluator(engine.cfg, engine.lat, engine.fleet, engine.prof, prompt, output, engine.capacity)
