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
    queued there and the rows placed before, stays within the head-room target of the feasibility toolkit
    (`feasibility.Headroom`: room for the forecast's observed error and within-epoch peaks); a row larger than
    what is left is split, the rest going to the next feasible arm (rows are placed largest first).
  Overflow (what no feasible arm has room for) and rows with no feasible datacenter first go to the best arm
  (or the nearest datacenter), and then the whole plan is projected onto the head-room target
  (`feasibility.project_to_capacity`): the excess moves to the datacenters with room, and where the whole fleet
  is past the target every datacenter runs at the fleet's own utilization. So capacity, the constraint that
  defines CS-UCB's feasible set, holds on every placement, overflow included (issue 18: the overflow went to
  the top-ranked site unchecked, 3.3-7.2x its capacity); the softer SLA constraints give way to it.
- Bandit: one arm per (origin, datacenter) pair, PerLLM's (service, server) pair: the service's latency to a
  server is part of what the arm yields. Its reward, observed in `observe` for every pair that carried requests,
  is the negative weighted cost per request with the run's weights (`StaticInfo.weights`) over (TTFT, carbon,
  water, cost), each per-request metric divided by the fleet's per-request mean of that epoch (so 1 = average,
  and the four are comparable). The engine measures per datacenter, so a pair's TTFT is the datacenter's
  measured mean TTFT less the mean network round trip of the requests the plan sent it, plus this origin's
  round trip (Eq. 2); carbon, water and cost per request are the datacenter's. UCB index = mean reward +
  perllm_ucb_c x sqrt(ln N_o / n_od), N_o the origin's plays; an arm never played has an infinite index
  (explored first). (Issue 18: with one arm per datacenter, every origin chased the same far, clean site and the
  TTFT term could not tell them apart.)

Adapted, and why: PerLLM's servers are edge and cloud machines with per-request decisions; here a decision is
a plan per epoch, so one epoch plays several arms (one per row) and each played arm gets one reward. The grid's
carbon intensity and price move every hour, so past rewards are discounted by `perllm_discount` per epoch
(discounted UCB, Garivier & Moulines 2011); 1.0 gives the paper's stationary UCB.

Options, off by default (issue 22; measured in README 'Protocols'): a stale arm's mean forgotten toward the prior
(`perllm_prior_plays`), a site's reward counting only its energy above its observed idle draw
(`perllm_idle_credit`), and no reward recorded for a site in the epoch it woke from idle (`perllm_wake_growth`).
Each made the online bandit worse (24 h, D = 4, mean over seeds 0-4: defaults 0.962 of uniform's Eq. 11 score,
0.975 to 0.986 with them): the per-request rewards that charge a lightly loaded site its idle draw and warm-up
are what make it concentrate the load on few warm sites at low load, which is what pays on this fleet.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedulers.common import forecast_or_ones
from schedulers.feasibility import Headroom, HeadroomParams, project_to_capacity
from schedulers.fill import queued_utilization
from schedulers.helix import first_token_compute_table
from simcore import physics
from simcore.errors import ConfigError
from simcore.interface import EpochResult, Observation, Scheduler
from simcore.params import param


@dataclass(frozen=True)
class PerLLMParams(HeadroomParams):
    """The bandit, the SLA constraints, and the shared head-room of the capacity constraint."""

    perllm_ucb_c: float = param(0.5, "PerLLM: UCB exploration coefficient (reward units: weighted metric per request "
                                "relative to the fleet mean)", lo=0)
    perllm_discount: float = param(0.9, "PerLLM: discount of past arm statistics per epoch (discounted UCB for hourly "
                                   "signals; 1.0 = the paper's stationary UCB)", lo=0, lo_open=True, hi=1)
    perllm_sla_margin: float = param(0.5, "PerLLM: a datacenter is feasible for an origin if 2 x LA_net + compute "
                                     "<= this x sla_ttft_s", lo=0, lo_open=True)
    perllm_max_sla_rate: float = param(0.05, "PerLLM: a datacenter whose observed SLA-violation share exceeds this "
                                       "is infeasible next epoch", lo=0, hi=1)
    # the three below are off by default: each makes the online bandit worse (README 'Protocols', PerLLM)
    perllm_prior_plays: float = param(0.0, "PerLLM: pseudo-plays of the prior reward (-sum of the weights: the fleet's "
                                      "mean per request) in each arm's mean, so an arm left unplayed forgets its mean "
                                      "as its discounted count decays (0 = a stale mean is kept)", lo=0)
    perllm_idle_credit: bool = param(False, "PerLLM: a datacenter's reward charges only the energy it drew above its "
                                     "observed idle draw (the energy of its last epoch that served nothing, which the "
                                     "fleet pays whatever the plan), scaling its carbon, water and cost alike; false = "
                                     "its whole draw")
    perllm_wake_growth: float = param(0.0, "PerLLM: a datacenter whose served requests grew more than this factor "
                                      "over the epoch before woke from idle: its arms' rewards of that epoch (its "
                                      "warm-up, which any site taking the load pays) are not recorded (0 = off; "
                                      "else > 1)", lo=0)

    def validate(self) -> None:
        super().validate()
        if 0 < self.perllm_wake_growth <= 1:
            raise ConfigError(f"perllm_wake_growth = {self.perllm_wake_growth:g}: 0 (off) or above 1 (a growth of at "
                              "most 1 would mark every site woken)")


class PerLLM(Scheduler):
    """Constraint satisfaction + (discounted) UCB bandit over datacenters."""

    Params = PerLLMParams
    # the bandit's counts and rewards, the constraints' observations, head-room (simcore.training)
    learned = ("n", "r_sum", "sla_rate", "idle_kwh", "headroom")
    adapts_frozen = ("sla_rate", "idle_kwh", "headroom")  # the constraints' observations: kept up when frozen

    def setup(self) -> None:
        info = self.info
        D = info.dcs
        self.n = np.zeros(info.plan_shape[1:])  # discounted play counts per (origin, datacenter)
        self.r_sum = np.zeros(info.plan_shape[1:])  # discounted reward sums
        self.rtt = physics.round_trip_s(np.asarray(info.latency_s, dtype=float))  # [O, D]
        self.sent = None  # [O, D] requests the last plan sent from each origin to each datacenter
        self.sla_rate = np.zeros(D)  # last observed SLA-violation share per datacenter
        self.idle_kwh = np.zeros(D)  # energy of each datacenter's last epoch that served nothing (0: none seen)
        self.prev_requests = None  # [D] requests each datacenter served last epoch (None: a day's first epoch)
        hosts = np.asarray(info.hosts, dtype=bool)  # [M, T]
        present = np.asarray(info.nodes_per_type) > 0  # [D, T]
        self.placeable = (hosts[:, None, :] & present[None, :, :]).any(axis=2)  # [M, D]
        first = first_token_compute_table(info)  # [M, T]
        fastest = np.where(hosts, first, np.inf).min(axis=1)  # [M]
        ttft = physics.round_trip_s(np.asarray(info.latency_s))[None, :, :] + fastest[:, None, None]  # [M, O, D]
        self.sla_ok = ttft <= self.params.perllm_sla_margin * info.sla_ttft_s
        self.capacity = np.asarray(info.capacity.requests_per_epoch, dtype=float)  # [D, M] requests per epoch
        self.headroom = Headroom(self.params)

    # --- bandit ------------------------------------------------------------------------------------------
    def ucb(self) -> np.ndarray:
        """[O, D] UCB index of every (origin, datacenter) arm (inf for arms not yet played)."""
        total = np.maximum(self.n.sum(axis=1, keepdims=True), 1.0)
        mean = self.arm_means()
        bonus = self.params.perllm_ucb_c * np.sqrt(np.log(np.maximum(total, np.e)) / np.maximum(self.n, 1e-12))
        return np.where(self.n > 0, mean + bonus, np.inf)

    def prior_reward(self) -> float:
        """The reward of a datacenter as good as the fleet's mean per request in every metric: -sum(weights)."""
        return -float(np.sum(self.info.weights))

    def arm_means(self) -> np.ndarray:
        """[O, D] each arm's discounted mean reward with `perllm_prior_plays` pseudo-plays of the prior reward: as an
        unplayed arm's discounted count n decays by `perllm_discount` an epoch, its mean's distance to the prior
        shrinks by n / (n + n0), so a mean measured long ago is forgotten (the discounted sums alone keep it)."""
        n0 = self.params.perllm_prior_plays
        return (self.r_sum + n0 * self.prior_reward()) / np.maximum(self.n + n0, 1e-12)

    def woke(self, result: EpochResult) -> np.ndarray:
        """[D] datacenters that woke from idle this epoch: served requests grew more than `perllm_wake_growth`-fold
        over the epoch before (none in a day's first epoch, whose first warm set starts loaded)."""
        req = np.asarray(result.requests, dtype=float)
        growth = self.params.perllm_wake_growth
        if self.prev_requests is None or growth <= 0:
            return np.zeros(len(req), dtype=bool)
        return req > growth * self.prev_requests

    def serving_share(self, result: EpochResult) -> np.ndarray:
        """[D] the share of each datacenter's energy drawn for serving: above its observed idle draw
        (`perllm_idle_credit`; 1 where no idle epoch was observed yet, or with the credit off)."""
        energy = np.asarray(result.energy_kwh, dtype=float)
        if not self.params.perllm_idle_credit:
            return np.ones_like(energy)
        return np.where(energy > 0, np.maximum(energy - self.idle_kwh, 0.0) / np.maximum(energy, 1e-300), 1.0)

    def arm_rewards(self, result: EpochResult) -> tuple[np.ndarray, np.ndarray]:
        """(reward [O, D], played [O, D]): the negative weighted per-request cost relative to the fleet mean."""
        req = np.asarray(result.requests, dtype=float)
        served = req > 0
        o_n = self.rtt.shape[0]
        sent = np.ones((o_n, len(req))) if self.sent is None else self.sent  # no plan known: every origin alike
        played = (sent > 0) & served[None, :]
        if not played.any():
            return np.zeros_like(sent), played
        ttft = np.asarray(result.ttft_sum_s) / np.maximum(np.asarray(result.ttft_count, float), 1.0)
        # the datacenter's own part of TTFT (queueing and compute): its mean less the mean round trip it was sent
        mean_rtt = (sent * self.rtt).sum(axis=0) / np.maximum(sent.sum(axis=0), 1e-300)
        ttft_od = np.maximum(ttft - mean_rtt, 0.0)[None, :] + self.rtt  # [O, D]
        per_req = np.stack([np.asarray(result.carbon_kg), np.asarray(result.water_l), np.asarray(result.cost_usd)],
                           axis=1) * self.serving_share(result)[:, None] / np.maximum(req, 1.0)[:, None]  # [D, 3]
        # fleet mean per request of this epoch (request-weighted), so each metric is unitless and ~1
        ref_ttft = float((ttft[served] * req[served]).sum() / req[served].sum())
        ref = (per_req[served] * req[served, None]).sum(axis=0) / req[served].sum()
        w = np.asarray(self.info.weights, dtype=float)
        site = (per_req / np.where(np.abs(ref) > 1e-12, np.abs(ref), 1.0) * w[1:]).sum(axis=1)  # [D]
        reward = -(w[0] * ttft_od / (ref_ttft if ref_ttft > 1e-12 else 1.0) + site[None, :])
        return np.where(played, reward, 0.0), played

    def observe(self, result: EpochResult) -> None:
        gamma = self.params.perllm_discount
        if not self.frozen:  # frozen (the trained protocol's frozen test day): the bandit plays what it learned
            reward, played = self.arm_rewards(result)
            played = played & ~self.woke(result)[None, :]  # a warm-up measures no site: not a play of its arms
            self.n = gamma * self.n + played
            self.r_sum = gamma * self.r_sum + reward * played
        req = np.asarray(result.requests, dtype=float)
        self.prev_requests = req
        self.idle_kwh = np.where(req > 0, self.idle_kwh, np.asarray(result.energy_kwh, dtype=float))
        self.sla_rate = np.where(req > 0, np.asarray(result.sla_violations, float) / np.maximum(req, 1.0), 0.0)

    # --- constraint satisfaction -------------------------------------------------------------------------
    def feasible(self) -> np.ndarray:
        """[M, O, D] datacenters that satisfy each row's placement and SLA constraints."""
        observed_ok = self.sla_rate <= self.params.perllm_max_sla_rate  # [D]
        return self.placeable[:, None, :] & self.sla_ok & observed_ok[None, None, :]

    def plan(self, obs: Observation) -> np.ndarray:
        m_n, o_n, d_n = self.info.plan_shape
        self.headroom.learn(obs.last)
        target = self.headroom.target()
        pred = forecast_or_ones(obs.predicted_requests)  # one unit per row still lets the arms be chosen
        index = self.ucb()
        feas = self.feasible()
        # utilization each datacenter may still take: the head-room target less what its queue already commits
        room = target - queued_utilization(obs.queued, pred, self.capacity)
        plan = np.zeros((m_n, o_n, d_n))
        # largest rows first (ties: model, origin order) so big demands get the best arms intact
        order = sorted(((-pred[m, o], m, o) for m in range(m_n) for o in range(o_n)))
        for neg, m, o in order:
            left = -neg
            arms = np.flatnonzero(feas[m, o])
            # best UCB first; ties (e.g. several unplayed arms) broken by the seeded RNG, then lower latency
            arms = sorted(arms, key=lambda d: (-index[o, d], self.rng.random(), self.info.latency_s[o, d]))
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
        plan = project_to_capacity(plan / plan.sum(axis=2, keepdims=True), pred, self.capacity, target, obs.queued)
        self.headroom.record(plan, obs.predicted_requests, obs.epoch)
        self.sent = np.einsum("mod,mo->od", plan, pred)
        return plan
