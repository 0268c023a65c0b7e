"""SLIT [`slit`] (Moore et al., GLSVLSI 2025: the MARLIN authors' earlier carbon- and water-aware scheduler for
geo-distributed LLM inference), adapted to this simulator.

Kept from the paper: a genetic algorithm searches the routing of requests over datacenters, and its fitness
is not a simulation but a learned surrogate model of the metrics (TTFT, carbon, water, cost), trained on
simulated samples; the objective weighs carbon and water first (`slit_weights`, default 0.1/0.4/0.4/0.1 for
TTFT/carbon/water/cost: SLIT is the sustainability-first framework the paper compares against; set
slit_weights to the run's --weights to make it follow them).

Each epoch, within the Simulate budget (slit_train_samples + slit_verify <= plan_evaluations_per_epoch):
1. samples: `slit_train_samples` plans scored on the epoch evaluator (bounded normalized metrics, 1.0 = the
   uniform plan in the same state, `feasibility.compress_metrics`, and the SLA-violation share): a share `slit_explore_share` drawn at random (softmax of uniform logits), the rest
   Gaussian perturbations (std `slit_sample_sigma`) of the incumbent plan's logits, so the surrogate is accurate
   where the GA will search;
2. surrogate: a ridge regression (closed form, numpy) from plan features to the four metrics and the SLA share,
   refitted every epoch on the samples of the last `slit_memory_epochs` epochs (online refinement). Features
   are built to carry across epochs: each datacenter's share of each model's requests, the same shares weighted
   by the datacenter's current carbon intensity, grid water intensity, price and 1/COP (each relative to the
   fleet mean, so they mean the same in every epoch), their square roots (warm-set and p-state effects are
   concave), the mean network latency relative to the uniform plan's, and each datacenter's excess of load over
   its serving capacity and its square (capacity binds: waits grow with the excess);
3. GA on the surrogate: pymoo's single-objective GA (tournament selection, SBX, polynomial mutation) over
   per-row logit genomes (softmax -> plan), `slit_pop_size` x `slit_generations`, the fitness the surrogate's
   bounded score with the SLA (`feasibility.sla_score` of the predicted weighted metrics and predicted SLA
   share: a plan predicted to violate the SLA ranks below every plan predicted to meet it); seeded with the
   incumbent and the best sampled plans;
4. verification: the `slit_verify` best distinct GA candidates are scored on the evaluator; the plan is the
   best evaluator-verified plan of the epoch (candidates and samples) by the same bounded score with the SLA,
   which becomes the next incumbent.

Feasibility toolkit (issue 18), in a GA's own two ways:
- fitness: SLIT's fitness is its framework's objective, so the SLA enters it there, as the toolkit's bounded
  score (`feasibility.sla_score`) on its own weights: the paper's SLIT schedules under a latency SLO, and with
  TTFT weighted 0.1 and no SLA term the GA planned sites to 0.9-1.1 of their capacity at the peak. The
  surrogate learns Simulate's SLA-violation share as a fifth target;
- repair: a genome decodes to its softmax plan projected onto the head-room target
  (`feasibility.project_to_capacity` at this scheduler's `feasibility.Headroom` target; where the whole fleet
  is past it, the fleet's own level), a repair operator, the standard way a GA keeps to a hard constraint.
  Simulate scores the epoch's forecast, which cannot show the within-epoch peaks and the forecast's error;
  the head-room is what covers them (an SLA term alone, measured on the forecast, left 10.9 % violations over
  the default day). Samples, the GA's population and the verified candidates are all decoded this way. The
  uniform plan is among every epoch's samples.

Adapted, and why: SLIT's surrogate and GA work on its own job model; here the decision is a plan per epoch, so
the genome is the plan and the surrogate's inputs are plan features. A linear-in-features ridge is used as the
learned model because it trains in microseconds on a few hundred samples and its error is checked in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.problem import Problem
from pymoo.optimize import minimize

from schedulers.common import EvaluatorParams, EvaluatorScheduler, normalized_metrics, sla_rate, weighted_score
from schedulers.feasibility import Headroom, compress_metrics, project_to_capacity, sla_score
from schedulers.nsga2 import SEED_HIGH, logits_to_plans
from simcore.capacity import datacenter_utilization
from simcore.errors import ConfigError
from simcore.interface import Observation
from simcore.params import param, sums_to_one


def plan_features(plans: np.ndarray, state, latency_s: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """[B, F] features of plans [B, M, O, D] in an epoch `state` (see the module docstring, step 2);
    `capacity` [D, M] is the requests per epoch each datacenter serves (`StaticInfo.capacity.requests_per_epoch`)."""
    req = np.asarray(state.requests, dtype=float)  # [M, O]
    r = np.einsum("bmod,mo->bmd", plans, req)  # requests per (model, datacenter)
    share = r / np.maximum(req.sum(axis=1), 1e-12)[None, :, None]  # [B, M, D] share of each model's requests
    signals = [np.asarray(x, dtype=float) for x in (state.ci_kg_per_kwh, state.gi_l_per_kwh,
                                                   state.tou_usd_per_kwh, 1.0 / np.asarray(state.cop, float))]
    rel = [s / np.where(np.abs(s.mean()) > 1e-12, np.abs(s.mean()), 1.0) for s in signals]
    weighted = [share * s[None, None, :] for s in rel]
    lat = np.einsum("bmod,mo,od->b", plans, req, latency_s)
    lat_uniform = (req.sum(axis=0) * latency_s.mean(axis=1)).sum()
    b = plans.shape[0]
    queued = np.zeros(r.shape[2]) if state.queued is None else np.asarray(state.queued, dtype=float)
    util = datacenter_utilization(np.swapaxes(r, 1, 2), capacity) + datacenter_utilization(
        queued[:, None] * (req.sum(axis=1) / max(req.sum(), 1e-12))[None, :], capacity)[None, :]  # [B, D]
    excess = np.maximum(util - 1.0, 0.0)  # capacity binds: the backlog's wait grows with the excess
    return np.concatenate([share.reshape(b, -1), *(w.reshape(b, -1) for w in weighted),
                           np.sqrt(share).reshape(b, -1), (lat / max(lat_uniform, 1e-12))[:, None],
                           excess, excess ** 2], axis=1)


class RidgeSurrogate:
    """Ridge regression features -> normalized metrics (standardized inputs, closed form).

    :param alpha: L2 penalty
    """

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.coef: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> "RidgeSurrogate":
        self.mu, self.sd = x.mean(axis=0), x.std(axis=0)
        self.sd = np.where(self.sd > 1e-12, self.sd, 1.0)
        z = np.hstack([(x - self.mu) / self.sd, np.ones((len(x), 1))])
        reg = self.alpha * len(x) * np.eye(z.shape[1])
        reg[-1, -1] = 0.0  # the intercept is not shrunk
        self.coef = np.linalg.solve(z.T @ z + reg, z.T @ y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.hstack([(x - self.mu) / self.sd, np.ones((len(x), 1))])
        return z @ self.coef


class SurrogateProblem(Problem):
    """Weighted surrogate score of a batch of genomes (vectorized).

    :param surrogate: fitted RidgeSurrogate
    :param state: the epoch's EpochState
    :param latency_s: [O, D] one-way latency
    :param capacity: [D, M] requests per epoch each datacenter serves
    :param shape: plan shape (M, O, D)
    :param weights: objective weights (TTFT, carbon, water, cost)
    :param bound: logit bound of the genome
    :param params: SLITParams (the SLA set point and penalty, the bounded signal's clip)
    :param decode: genomes [B, n] -> repaired plans [B, M, O, D] (`SLIT.decode`)
    """

    def __init__(self, surrogate, state, latency_s, capacity, shape: tuple, weights, bound: float, params,
                 decode) -> None:
        n = int(np.prod(shape))
        super().__init__(n_var=n, n_obj=1, xl=np.full(n, -bound), xu=np.full(n, bound), elementwise=False)
        self.surrogate, self.state, self.lat, self.shape, self.weights = surrogate, state, latency_s, shape, weights
        self.cap, self.params, self.decode = capacity, params, decode

    def _evaluate(self, x, out, *args, **kwargs):
        feats = plan_features(self.decode(x), self.state, self.lat, self.cap)
        out["F"] = slit_score(self.surrogate.predict(feats), self.weights, self.params)[:, None]


def slit_score(y: np.ndarray, weights, params) -> np.ndarray:
    """[B] SLIT's fitness of targets y [B, 5] (four bounded normalized metrics, the SLA share): the toolkit's
    bounded score with the SLA (`feasibility.sla_score`) on SLIT's weights."""
    return sla_score(weighted_score(y[:, :4], weights), y[:, 4], params)


@dataclass(frozen=True)
class SLITParams(EvaluatorParams):
    """Objective weights, sample and verification budget, surrogate and GA (module docstring)."""

    slit_weights: tuple = param((0.1, 0.4, 0.4, 0.1), "SLIT: its objective weights (TTFT, carbon, water, cost), "
                                "carbon and water first as in the paper; sum 1", lo=0)
    slit_train_samples: int = param(224, "SLIT: evaluator samples per epoch that train the surrogate", lo=1)
    slit_verify: int = param(32, "SLIT: surrogate-best GA candidates verified on the evaluator (+ train <= budget)",
                             lo=1)
    slit_memory_epochs: int = param(8, "SLIT: epochs of past samples kept for the online surrogate refit", lo=1)
    slit_ridge_alpha: float = param(1e-3, "SLIT: ridge (L2) penalty of the surrogate regression", lo=0)
    slit_pop_size: int = param(64, "SLIT: GA population on the surrogate", lo=2)
    slit_generations: int = param(40, "SLIT: GA generations on the surrogate", lo=1)
    slit_logit_bound: float = param(4.0, "SLIT: genome = per-row logits in [-bound, bound], softmax -> plan row",
                                    lo=0, lo_open=True)
    slit_sample_sigma: float = param(1.0, "SLIT: std of the logit noise around the incumbent for training samples",
                                     lo=0)
    slit_explore_share: float = param(0.5, "SLIT: share of training samples drawn at random (the rest near the "
                                      "incumbent plan)", lo=0, hi=1)

    def validate(self) -> None:
        sums_to_one(self, "slit_weights")
        if self.slit_train_samples + self.slit_verify > self.plan_evaluations_per_epoch:
            raise ConfigError(f"slit_train_samples + slit_verify = {self.slit_train_samples + self.slit_verify} "
                              f"exceeds plan_evaluations_per_epoch {self.plan_evaluations_per_epoch}")


class SLIT(EvaluatorScheduler):
    """GA over plans on a ridge surrogate of Simulate, trained online on evaluator samples."""

    Params = SLITParams
    # carried by pre-training (simcore.training): the surrogate's samples and the head-room (the last plan of another
    # day is no knowledge of this one: each day starts from the uniform incumbent)
    learned = ("memory", "headroom")

    def setup(self) -> None:
        super().setup()
        p = self.params
        self.weights = np.asarray(p.slit_weights, dtype=float)
        self.lat = np.asarray(self.info.latency_s, dtype=float)
        self.cap = np.asarray(self.info.capacity.requests_per_epoch, dtype=float)  # [D, M]
        self.n_var = int(np.prod(self.info.plan_shape))
        self.incumbent = np.zeros(self.n_var)  # logits of the last chosen plan (zeros = uniform)
        self.memory: list[tuple[np.ndarray, np.ndarray]] = []  # (features, normalized metrics) per epoch
        self.surrogate = RidgeSurrogate(p.slit_ridge_alpha)
        self.evaluations = 0
        self.headroom = Headroom(p)
        self.epoch_spend = (0, 0)  # (plans simulated, gradient steps) of the last epoch

    # --- steps ---------------------------------------------------------------------------------------------
    def sample_genomes(self, n: int) -> np.ndarray:
        """Training genomes: the incumbent, the uniform plan (a plan that spreads the load is always among the
        candidates, so the SLA can always be met where the fleet can meet it), random ones and perturbations of
        the incumbent (step 1)."""
        p = self.params
        bound = p.slit_logit_bound
        n_rand = int(round(n * p.slit_explore_share))
        rand = self.rng.uniform(-bound, bound, size=(n_rand, self.n_var))
        near = self.incumbent[None, :] + self.rng.normal(0.0, p.slit_sample_sigma, size=(n - n_rand, self.n_var))
        uniform = np.zeros((1, self.n_var))
        return np.clip(np.vstack([self.incumbent[None, :], uniform, rand, near])[:n], -bound, bound)

    def decode(self, genomes: np.ndarray) -> np.ndarray:
        """Genomes [B, n] -> plans [B, M, O, D]: the softmax of each row, repaired onto the head-room target for
        this epoch's forecast and backlog (`feasibility.project_to_capacity`)."""
        return project_to_capacity(logits_to_plans(genomes, self.info.plan_shape), self.state.predicted, self.cap,
                                   self.headroom.target(), self.state.queued)

    def evaluate(self, state, reference, genomes: np.ndarray) -> np.ndarray:
        """[B, 5] targets of genomes on Simulate: bounded normalized metrics [B, 4] and the SLA share (counts
        against the budget)."""
        self.evaluations += len(genomes)
        ev = self.evaluator.evaluate(state, self.decode(genomes))
        norm = compress_metrics(normalized_metrics(ev, reference), self.params.reward_norm_clip)
        return np.hstack([norm, sla_rate(state, ev)[:, None]])

    def fit_surrogate(self) -> RidgeSurrogate:
        x = np.vstack([f for f, _ in self.memory])
        y = np.vstack([t for _, t in self.memory])
        return self.surrogate.fit(x, y)

    def plan(self, obs: Observation) -> np.ndarray:
        p, shape = self.params, self.info.plan_shape
        self.evaluations = 0
        self.headroom.learn(obs.last)
        state = self.state = self.epoch_state(obs)
        reference = self.evaluator.evaluate(state, self.uniform_plan)
        # 1-2: sample, remember, refit
        g_train = self.sample_genomes(p.slit_train_samples)
        y_train = self.evaluate(state, reference, g_train)
        if not self.frozen:  # frozen (the trained protocol's frozen test day): the trained surrogate's samples only
            self.memory.append((plan_features(self.decode(g_train), state, self.lat, self.cap), y_train))
            self.memory = self.memory[-p.slit_memory_epochs:]
        self.fit_surrogate()
        # 3: GA on the surrogate, seeded with the incumbent and the best samples
        true_train = slit_score(y_train, self.weights, p)
        order = np.argsort(true_train, kind="stable")
        n_seed = min(p.slit_pop_size // 2, len(order))
        rand = self.rng.uniform(-p.slit_logit_bound, p.slit_logit_bound,
                                size=(p.slit_pop_size - n_seed, self.n_var))
        x0 = np.vstack([g_train[order[:n_seed]], rand])
        problem = SurrogateProblem(self.surrogate, state, self.lat, self.cap, shape, self.weights, p.slit_logit_bound,
                                   p, self.decode)
        # no duplicate elimination: genomes are continuous, exact duplicates are rare, and pymoo's pairwise
        # check would cost more than the surrogate itself
        res = minimize(problem, GA(pop_size=p.slit_pop_size, sampling=x0, eliminate_duplicates=False),
                       ("n_gen", p.slit_generations), seed=int(self.rng.integers(SEED_HIGH)), verbose=False)
        # 4: verify the surrogate's best candidates on Simulate; keep the best verified plan of the epoch
        pop_x, pop_f = res.pop.get("X"), res.pop.get("F")[:, 0]
        pop_x, first = np.unique(pop_x, axis=0, return_index=True)  # verify each distinct candidate once
        pop_f = pop_f[first]
        cand = pop_x[np.argsort(pop_f, kind="stable")[: p.slit_verify]]
        if len(cand):
            y_cand = self.evaluate(state, reference, cand)
            if not self.frozen:
                self.memory[-1] = (np.vstack([self.memory[-1][0], plan_features(self.decode(cand), state,
                                                                                 self.lat, self.cap)]),
                                   np.vstack([self.memory[-1][1], y_cand]))
            g_all, score = np.vstack([g_train, cand]), np.concatenate([true_train,
                                                                       slit_score(y_cand, self.weights, p)])
        else:
            g_all, score = g_train, true_train
        best = int(np.argmin(score))
        self.incumbent = g_all[best].copy()
        plan = self.decode(self.incumbent[None])[0]
        self.headroom.record(plan, obs.predicted_requests, obs.epoch)
        self.epoch_spend = (self.evaluations, 0)
        return plan
