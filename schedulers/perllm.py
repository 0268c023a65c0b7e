"""PerLLM [`perllm`] (Yang et al., "PerLLM: Personalized inference scheduling with edge-cloud collaboration
for diverse LLM services", 2024), adapted to routing each epoch's requests across datacenters.

Kept from the paper: scheduling is a constraint-satisfaction problem solved with an upper-confidence-bound
bandit (its CS-UCB): each service (here: each (model, origin) row) may only go to servers (here:
datacenters) that satisfy its constraints, and among those the arm with the highest UCB index is chosen; the
arms' statistics are learned online from the observed outcome of past decisions, not from a model of them.

- Constraints (feasibility), per row:
  * placement: some node type of the datacenter hosts the model;
  * SLA: the row's expected TTFT, network round trip 2 x LA_net (Eq. 2) + the fastest first-token compute of
    the model, is at most `perllm_sla_margin` x sla_ttft_s;
  * observed SLA: the datacenter's measured SLA-violation share last epoch is at most `perllm_max_sla_rate`;
  * capacity: the datacenter's utilization of its serving capacity (`StaticInfo.capacity`, computed once per
    run; `simcore.capacity.datacenter_utilization`, both models sharing the nodes), counting what is already
    queued there and the rows placed before, stays within `warm_target_utilization` (the load the engine sizes
    its warm set for); a row larger than what is left is split, the rest going to the next feasible arm (rows
    are placed largest first).
  A row with no feasible datacenter goes to the nearest one.
- Bandit: one arm per datacenter. Its reward, observed in `observe` for every datacenter that served requests,
  is the negative weighted cost per request with the run's weights (`StaticInfo.weights`) over (TTFT, carbon, water,
  cost), each per-request metric divided by the fleet's per-request mean of that epoch (so 1 = average, and
  the four are comparable). UCB index = mean reward + perllm_ucb_c x sqrt(ln N / n_d); an arm never played
  has an infinite index (explored first).

Adapted, and why: PerLLM's servers are edge and cloud machines with per-request decisions; here a decision is
a plan per epoch, so one epoch plays several arms (one per row) and each played arm gets one reward. The grid's
carbon intensity and price move every hour, so past rewards are discounted by `perllm_discount` per epoch
(discounted UCB, Garivier & Moulines 2011); 1.0 gives the paper's stationary UCB.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedulers.common import forecast_or_ones
from schedulers.fill import queued_utilization
from schedulers.helix import first_token_compute_table
from simcore import physics
from simcore.interface import EpochResult, Observation, Scheduler
from simcore.params import Parameters, param


@dataclass(frozen=True)
class PerLLMParams(Parameters):
    perllm_ucb_c: float = param(0.5, "PerLLM: UCB exploration coefficient (reward units: weighted metric per request "
                                "relative to the fleet mean)", lo=0)
    perllm_discount: float = param(0.9, "PerLLM: discount of past arm statistics per epoch (discounted UCB for hourly "
                                   "signals; 1.0 = the paper's stationary UCB)", lo=0, lo_open=True, hi=1)
    perllm_sla_margin: float = param(0.5, "PerLLM: a datacenter is feasible for an origin if 2 x LA_net + compute "
                                     "<= this x sla_ttft_s", lo=0, lo_open=True)
    perllm_max_sla_rate: float = param(0.05, "PerLLM: a datacenter whose observed SLA-violation share exceeds this "
                                       "is infeasible next epoch", lo=0, hi=1)


class PerLLM(Scheduler):
    """Constraint satisfaction + (discounted) UCB bandit over datacenters."""

    Params = PerLLMParams
    learned = ("n", "r_sum", "sla_rate")  # the bandit's discounted counts and rewards (`simcore.training`)

    def setup(self) -> None:
        info = self.info
        D = info.dcs
        self.n = np.zeros(D)  # discounted play counts
        self.r_sum = np.zeros(D)  # discounted reward sums
        self.sla_rate = np.zeros(D)  # last observed SLA-violation share per datacenter
        hosts = np.asarray(info.hosts, dtype=bool)  # [M, T]
        present = np.asarray(info.nodes_per_type) > 0  # [D, T]
        self.placeable = (hosts[:, None, :] & present[None, :, :]).any(axis=2)  # [M, D]
        first = first_token_compute_table(info)  # [M, T]
        fastest = np.where(hosts, first, np.inf).min(axis=1)  # [M]
        ttft = physics.round_trip_s(np.asarray(info.latency_s))[None, :, :] + fastest[:, None, None]  # [M, O, D]
        self.sla_ok = ttft <= self.params.perllm_sla_margin * info.sla_ttft_s
        self.capacity = np.asarray(info.capacity.requests_per_epoch, dtype=float)  # [D, M] requests per epoch

    # --- bandit ------------------------------------------------------------------------------------------
    def ucb(self) -> np.ndarray:
        """[D] UCB index of every datacenter (inf for arms not yet played)."""
        total = max(self.n.sum(), 1.0)
        mean = self.r_sum / np.maximum(self.n, 1e-12)
        bonus = self.params.perllm_ucb_c * np.sqrt(np.log(max(total, np.e)) / np.maximum(self.n, 1e-12))
        return np.where(self.n > 0, mean + bonus, np.inf)

    def arm_rewards(self, result: EpochResult) -> tuple[np.ndarray, np.ndarray]:
        """(reward [D], played [D]): the negative weighted per-request cost relative to the fleet mean."""
        req = np.asarray(result.requests, dtype=float)
        played = req > 0
        if not played.any():
            return np.zeros_like(req), played
        ttft = np.asarray(result.ttft_sum_s) / np.maximum(np.asarray(result.ttft_count, float), 1.0)
        per_req = np.stack([ttft, np.asarray(result.carbon_kg) / np.maximum(req, 1.0),
                            np.asarray(result.water_l) / np.maximum(req, 1.0),
                            np.asarray(result.cost_usd) / np.maximum(req, 1.0)], axis=1)  # [D, 4]
        # fleet mean per request of this epoch (request-weighted), so each metric is unitless and ~1
        ref = (per_req[played] * req[played, None]).sum(axis=0) / req[played].sum()
        norm = per_req / np.where(np.abs(ref) > 1e-12, np.abs(ref), 1.0)
        reward = -(norm * np.asarray(self.info.weights, dtype=float)).sum(axis=1)
        return np.where(played, reward, 0.0), played

    def observe(self, result: EpochResult) -> None:
        gamma = self.params.perllm_discount
        reward, played = self.arm_rewards(result)
        self.n = gamma * self.n + played
        self.r_sum = gamma * self.r_sum + reward * played
        req = np.asarray(result.requests, dtype=float)
        self.sla_rate = np.where(req > 0, np.asarray(result.sla_violations, float) / np.maximum(req, 1.0), 0.0)

    # --- constraint satisfaction -------------------------------------------------------------------------
    def feasible(self) -> np.ndarray:
        """[M, O, D] datacenters that satisfy each row's placement and SLA constraints."""
        observed_ok = self.sla_rate <= self.params.perllm_max_sla_rate  # [D]
        return self.placeable[:, None, :] & self.sla_ok & observed_ok[None, None, :]

    def plan(self, obs: Observation) -> np.ndarray:
        m_n, o_n, d_n = self.info.plan_shape
        pred = forecast_or_ones(obs.predicted_requests)  # one unit per row still lets the arms be chosen
        index = self.ucb()
        feas = self.feasible()
        # utilization each datacenter may still take: the fill target less what its queue already commits
        room = self.info.warm_target_utilization - queued_utilization(obs.queued, pred, self.capacity)
        plan = np.zeros((m_n, o_n, d_n))
        # largest rows first (ties: model, origin order) so big demands get the best arms intact
        order = sorted(((-pred[m, o], m, o) for m in range(m_n) for o in range(o_n)))
        for neg, m, o in order:
            left = -neg
            arms = np.flatnonzero(feas[m, o])
            # best UCB first; ties (e.g. several unplayed arms) broken by the seeded RNG, then lower latency
            arms = sorted(arms, key=lambda d: (-index[d], self.rng.random(), self.info.latency_s[o, d]))
            if left <= 0:  # no forecast for this row: its best arm, taking no capacity
                plan[m, o, arms[0] if len(arms) else int(np.argmin(self.info.latency_s[o]))] = 1.0
                continue
            for d in arms:
                if left <= 0:
                    break
                cap = self.capacity[d, m]
                take = min(left, max(0.0, room[d]) * cap) if cap > 0 else 0.0
                if take > 0:
                    plan[m, o, d] += take
                    room[d] -= take / cap
                    left -= take
            if left > 0:  # the constraints cannot hold the whole row: the rest to the best arm (or nearest)
                d = arms[0] if len(arms) else int(np.argmin(self.info.latency_s[o]))
                plan[m, o, d] += left
        return plan / plan.sum(axis=2, keepdims=True)
