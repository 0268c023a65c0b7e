"""The fast epoch evaluator: the paper's Simulate(State_e, a) (Algorithm 1 line 7, Algorithm 2 line 19).

Scores a batch of candidate plans [B, model, origin, datacenter] for one epoch at once, vectorized over plans
(no Python loop over plans or requests), with the same physics functions as the event engine (Eq. 1-10 live in
`simcore.physics` only) and a queueing approximation in place of playing requests:

- warm set: as the engine, max(min_warm_nodes, ceil(plan x forecast / requests_per_warm_node)) nodes per
  datacenter and model, taken from the front of the datacenter's interleaved node order (cumulative TDP);
- concurrency per warm node by Little's law (arrival rate x mean service time); the decode step is read from
  the profiles at that batch size; demand beyond the warm set's memory / batch capacity spills to cold nodes;
- p-state from the mean busy fraction of the active nodes (Eq. 4-5), the rest parked;
- cold starts: a newly warm node loads its model from the epoch start, so requests reaching it in the first
  LA_load seconds wait (mean LA_load^2 / (2 t_e) per request, SLA violated when the wait exceeds the SLA);
- TTFT per request = 2 x LA_net (Eq. 2) + mean first-token compute (Eq. 3) + the cold-start wait.

Deterministic: no randomness at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simcore import physics
from simcore.config import Config


@dataclass(frozen=True)
class EpochState:
    """What Simulate needs about one epoch.

    :param predicted: [M, O] forecast requests (sizes the warm set, as in the engine)
    :param requests: [M, O] requests to score (the forecast at decision time; the truth in agreement tests)
    :param ci_kg_per_kwh, gi_l_per_kwh, tou_usd_per_kwh, cop: [D] site signals of the epoch
    :param resident_nodes: [D, M] nodes already holding each model (None: the warm set is already loaded)
    """

    predicted: np.ndarray
    requests: np.ndarray
    ci_kg_per_kwh: np.ndarray
    gi_l_per_kwh: np.ndarray
    tou_usd_per_kwh: np.ndarray
    cop: np.ndarray
    resident_nodes: np.ndarray | None = None

    @classmethod
    def from_observation(cls, obs, requests: np.ndarray | None = None) -> "EpochState":
        """The state a scheduler sees at an epoch start (requests default to the forecast)."""
        pred = obs.predicted_requests
        return cls(pred, pred if requests is None else requests, obs.ci_kg_per_kwh, obs.gi_l_per_kwh,
                   obs.tou_usd_per_kwh, obs.cop, obs.resident_nodes)


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
    :param fleet: `simcore.engine.Fleet`
    :param profiles: `simcore.profiles.Profiles`
    :param prompt_tokens, output_tokens: a sample of the workload's token pairs (mean service times)
    """

    def __init__(self, cfg: Config, latency_s: np.ndarray, fleet, profiles, prompt_tokens: np.ndarray,
                 output_tokens: np.ndarray) -> None:
        self.cfg, self.lat = cfg, np.asarray(latency_s, dtype=float)
        N, M = cfg.nodes_per_dc, len(cfg.model_weights_gb)
        types = fleet.node_type[:N]
        T = len(fleet.node_types)
        # cumulative TDP along the datacenter's node order: the warm set is (mostly) a prefix of it
        self.cum_tdp_w = np.concatenate([[0.0], np.cumsum(fleet.tdp_w[:N])])
        # node-type mix seen by the weighted round-robin balancer: weight = GPUs x nodes of that type
        count_t = np.bincount(types, minlength=T).astype(float)
        gpus_t = np.array([g for _, g in fleet.node_types], dtype=float)
        hosts = np.asarray(profiles.hosts, dtype=bool)  # [M, T]
        share = hosts * (gpus_t * count_t)[None, :]
        self.type_share = share / share.sum(axis=1, keepdims=True)  # [M, T] over the whole datacenter
        # node types among the first n nodes: the warm set of the large model is (mostly) the front of the node
        # order and the small model's the next stretch (the engine's choice when nothing is resident yet)
        self.cum_types = np.concatenate([np.zeros((1, T)), np.cumsum(np.eye(T)[types], axis=0)])  # [N + 1, T]
        self.rr_weight = hosts * gpus_t[None, :]  # [M, T] balancer weight of one node of each type
        self.host_nodes = (hosts * count_t[None, :]).sum(axis=1)  # [M] hosting nodes per datacenter

        keep = output_tokens > 0
        p = np.asarray(prompt_tokens)[keep].astype(float)
        o = np.asarray(output_tokens)[keep].astype(float)
        m_idx = np.arange(M)[:, None, None]
        t_idx = np.arange(T)[None, :, None]
        prefill = profiles.prefill_s_array(m_idx, t_idx, p[None, None, :])  # [M, T, S]
        step1 = profiles.decode_step_s[:, :, 1][:, :, None]
        exec1 = prefill + o * step1
        self.prefill_per_token_out = (prefill / o).mean(axis=2)  # E[prefill / T]   [M, T]
        self.prefill_mean = prefill.mean(axis=2)  # [M, T]
        self.mean_output = o.mean()
        self.exec_mean1 = exec1.mean(axis=2)  # [M, T] service time at batch 1
        self.decode_step = np.asarray(profiles.decode_step_s)  # [M, T, max_batch + 1]
        self.capacity = requests_per_node(cfg, fleet, p, o).astype(float)  # [M, T] requests at once
        self.load_s = fleet.load_s  # [M, T]

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
        k = np.maximum(cfg.min_warm_nodes, np.ceil(P / cfg.requests_per_warm_node - 1e-9))
        k = np.minimum(k, self.host_nodes)
        share = self._warm_type_share(k)  # [B, D, M, T] share of each model's requests per node type

        # Little's law: concurrent requests per warm node, capacity from memory (Eq. 1) and max_batch
        exec1 = (share * self.exec_mean1).sum(axis=3)  # [B, D, M]
        conc = R * exec1 / t_e  # [B, D, M] requests in service at once
        cap = (share * self.capacity).sum(axis=3)  # [B, D, M]
        spill = np.maximum(0.0, np.ceil(conc / cap) - k)  # cold nodes drawn in beyond the warm set
        nodes = np.minimum(k + spill, self.host_nodes)
        per_node = conc / nodes
        batch = np.clip(np.rint(1.0 + per_node), 1, cfg.max_batch).astype(int)  # [B, D, M]
        m_ix = np.arange(R.shape[2])[None, None, :, None]
        t_ix = np.arange(share.shape[3])[None, None, None, :]
        step = self.decode_step[m_ix, t_ix, batch[..., None]]  # [B, D, M, T]
        if cfg.ttft_model == "prefill":
            first_t = self.prefill_mean + step
        else:
            first_t = physics.first_token_compute_s(
                "eq3", self.prefill_per_token_out * self.mean_output + step * self.mean_output,
                self.mean_output, 0.0, 0.0)
        first = (share * first_t).sum(axis=3)  # [B, D, M]

        # cold starts: newly warm nodes load from the epoch start; spilled nodes load on first use
        resident = state.resident_nodes
        new = k if resident is None else np.maximum(0.0, k - np.asarray(resident, dtype=float)[None])
        new = new + spill
        L = self.load_s  # [M, T]
        wait_per_req = (share * L ** 2).sum(axis=3) / (2.0 * t_e)  # mean wait of requests at a loading node
        late_share = (share * np.maximum(0.0, L - cfg.sla_ttft_s)).sum(axis=3) / t_e  # share waiting past SLA
        cold_frac = np.where(nodes > 0, new / np.maximum(nodes, 1.0), 0.0)
        load_wait = cold_frac * wait_per_req  # [B, D, M]

        net = np.einsum("bmod,mo,od->bdm", plans, state.requests, self.lat)  # sum of one-way latencies
        ttft_dc = physics.request_ttft_s(0.0, R * load_wait, net, R * first)  # [B, D, M] summed over requests
        ttft_total = ttft_dc.sum(axis=(1, 2))
        n_req = R.sum(axis=(1, 2))
        sla = (R * cold_frac * late_share).sum(axis=(1, 2))

        # energy: active nodes at the p-state of their mean busy fraction, the others parked (Eq. 4-5)
        active = np.minimum(nodes.sum(axis=2), N)  # [B, D]
        busy_s = (R * exec1).sum(axis=2) + (new * (share * L).sum(axis=3)).sum(axis=2)
        u = busy_s / np.maximum(active, 1.0) / t_e
        pc = physics.pstate_power_fraction(u, True, cfg.pc_pstates, cfg.pstate_busy_limits, cfg.pc_parked)
        a_idx = np.rint(active).astype(int)
        tdp_active = self.cum_tdp_w[a_idx]
        tdp_parked = self.cum_tdp_w[N] - tdp_active
        it = physics.node_it_kwh(pc, tdp_active, t_e) + physics.node_it_kwh(cfg.pc_parked, tdp_parked, t_e)
        met = physics.datacenter_epoch_metrics(it, state.cop, state.tou_usd_per_kwh, state.gi_l_per_kwh,
                                               state.ci_kg_per_kwh, cfg)
        return Evaluation(
            ttft_total_s=ttft_total, ttft_mean_s=ttft_total / np.maximum(n_req, 1e-12),
            carbon_kg=met["carbon_kg"].sum(axis=1), water_l=met["water_l"].sum(axis=1),
            cost_usd=met["cost_usd"].sum(axis=1), energy_kwh=met["total_kwh"].sum(axis=1),
            sla_violations=sla, parked_share=1.0 - active.sum(axis=1) / (N * active.shape[1]),
            dc_energy_kwh=met["total_kwh"], dc_requests=R.sum(axis=2))


    def _warm_type_share(self, k: np.ndarray) -> np.ndarray:
        """[B, D, M, T]: how each model's requests spread over node types (balancer weight x warm nodes)."""
        N = self.cfg.nodes_per_dc
        M = k.shape[2]
        hi = np.zeros_like(k)
        lo = np.zeros_like(k)
        end = 0.0
        for m in range(M - 1, -1, -1):  # the engine fills the large model's warm set first
            lo[..., m] = end
            end = np.minimum(end + k[..., m], N)
            hi[..., m] = end
        counts = self.cum_types[hi.astype(int)] - self.cum_types[lo.astype(int)]  # [B, D, M, T]
        w = counts * self.rr_weight[None, None]
        total = w.sum(axis=3, keepdims=True)
        return np.where(total > 0, w / np.maximum(total, 1e-12), self.type_share[None, None])


def requests_per_node(cfg: Config, fleet, prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """[M, T] requests of mean size a node of each type runs at once: the KV caches that fit its pooled memory
    beside the model's weights (Eq. 1), at least 1 and at most max_batch."""
    T = len(fleet.node_types)
    kv_gb = physics.request_kv_gb((np.asarray(prompt_tokens, dtype=float) + output_tokens).mean(),
                                  np.asarray(cfg.model_kv_mb_per_token))  # [M]
    types = fleet.node_type[:cfg.nodes_per_dc]
    mem_t = np.bincount(types, weights=fleet.mem_gb[:cfg.nodes_per_dc], minlength=T) / np.bincount(types, minlength=T)
    free_gb = mem_t[None, :] - np.asarray(cfg.model_weights_gb)[:, None]  # [M, T] memory left for KV
    return np.clip(np.floor(free_gb / kv_gb[:, None]), 1, cfg.max_batch).astype(int)


def evaluator_from_info(info) -> EpochEvaluator:
    """The evaluator a scheduler builds from its StaticInfo (same fleet, profiles, latencies, token sample)."""
    from simcore.engine import build_fleet
    from simcore.profiles import load_profiles

    prompt, output = info.token_sample
    return EpochEvaluator(info.cfg, info.latency_s, build_fleet(info.cfg), load_profiles(info.cfg), prompt, output)


def evaluator_for(engine) -> EpochEvaluator:
    """The evaluator matching an engine: its fleet, profiles and latencies, and the token sample its scheduler
    sees (so tests check the evaluator the schedulers use)."""
    prompt, output = engine.info.token_sample
    return EpochEvaluator(engine.cfg, engine.lat, engine.fleet, engine.prof, prompt, output)
