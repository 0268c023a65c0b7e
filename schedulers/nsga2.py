"""NSGA-II [`nsga2`] (Deb, Pratap, Agarwal and Meyarivan, "A fast and elitist multiobjective genetic algorithm:
NSGA-II", IEEE TEC 2002), searching each epoch's routing plan on the epoch evaluator.

Kept from the paper, by using pymoo's implementation (not re-written here): fast non-dominated sorting,
crowding distance, elitist (mu + lambda) survival, binary tournament selection, SBX crossover and polynomial
mutation, and Deb's constraint handling (constrained domination: a feasible solution dominates an infeasible
one, infeasible ones are ranked by their constraint violation); the four objectives are optimised as a vector,
not a weighted sum.

Feasibility toolkit (issue 18): capacity and SLA are declared as pymoo inequality constraints G <= 0, which is
how NSGA-II handles constraints in its own paper (section on constrained NSGA-II), not a penalty or a repair:
  G_d     = planned utilization of datacenter d (`feasibility.planned_utilization`, the forecast plus its
            backlog) - the head-room target (`feasibility.Headroom`, from this scheduler's observed forecast
            error; where the whole fleet's load exceeds the target, the fleet's own utilization), one per
            datacenter;
  G_sla   = Simulate's SLA-violation share - reward_sla_setpoint.
The objectives are the bounded normalised metrics (`feasibility.compress_metrics`: monotone, so dominance is
unchanged, but one catastrophic genome no longer stretches the crowding distances by 1e6).

Adapted to this problem:
- genome: one logit per plan entry (model, origin, datacenter), bounded to [-nsga2_logit_bound,
  nsga2_logit_bound]; a softmax over each row decodes it into a valid plan (non-negative rows summing to 1),
  so every genome is feasible and the bound caps how one-hot a row can get (e^{2 bound} : 1);
- fitness: Simulate (simcore.evaluator) of the epoch's state (the forecast; one request per row before any
  history), the four objectives (total TTFT, carbon, water, cost) divided by those of the uniform plan in the
  same state. The whole population is scored in one vectorized call (pymoo Problem, elementwise=False);
- budget: nsga2_pop_size x nsga2_generations plan evaluations per epoch (pymoo evaluates the initial population
  in the first generation and pop_size offspring in each later one), at most plan_evaluations_per_epoch;
- warm start: an epoch's initial population is the previous epoch's final population (the signals change
  slowly, so yesterday's front is a good start) with three members replaced, every epoch, by the incumbent
  (the genome chosen last epoch), the uniform plan and the nearest-datacenter plan (issue 18: these seeds
  entered only at epoch 0, and by the peak the population had lost every plan that spread the load); the first
  epoch starts from random logits plus the same three;
- the pick: NSGA-II returns a front (its feasible non-dominated members; where no member is feasible, pymoo's
  least-violating one), a run needs one plan. `nsga2_pick = "weights"` (default) takes the front
  member with the lowest weighted sum of bounded normalized objectives under the run's weights (Eq. 11);
  "knee" takes the member farthest below the hyperplane through the front's extreme points (objectives
  rescaled to [0, 1] over the front; the knee in the sense of Das 1999 / Branke et al. 2004);
- randomness: pymoo gets a fresh seed drawn from the scheduler's own generator every epoch (same run seed ->
  same plans).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
from pymoo.core.problem import Problem
from pymoo.optimize import minimize

from schedulers.common import EvaluatorParams, EvaluatorScheduler, normalized_metrics, sla_rate, weighted_score
from schedulers.feasibility import Headroom, compress_metrics, fleet_utilization, planned_utilization
from simcore.errors import ConfigError
from simcore.interface import Observation
from simcore.params import param

SEED_HIGH = 2**31 - 1  # pymoo seeds are plain ints


def logits_to_plans(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Genomes [B, M*O*D] of logits -> plans [B, M, O, D] (softmax over each row)."""
    z = np.asarray(x, dtype=float).reshape((-1,) + tuple(shape))
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def one_hot_logits(choice: np.ndarray, shape: tuple, bound: float) -> np.ndarray:
    """The genome of a plan sending row (m, o) to choice[m, o]: +bound there, -bound elsewhere."""
    g = np.full(shape, -bound)
    m, o = np.indices(choice.shape)
    g[m, o, choice] = bound
    return g.ravel()


class PlanProblem(Problem):
    """Four bounded objectives and D + 1 inequality constraints of a batch of plans for one epoch (vectorized:
    one Simulate call per population).

    :param evaluator: the epoch evaluator
    :param state: the epoch's EpochState
    :param reference: Evaluation of the uniform plan in `state` (normalization)
    :param shape: plan shape (M, O, D)
    :param bound: logit bound of the genome
    :param capacity: [D, M] requests per epoch of each datacenter (`Capacity.requests_per_epoch`)
    :param ceiling: the highest planned utilization a datacenter may have (the head-room target, or the fleet's
        own utilization where that is higher)
    :param params: NSGA2Params (the bounded signal's clip and the SLA set point)
    """

    def __init__(self, evaluator, state, reference, shape: tuple, bound: float, capacity, ceiling: float,
                 params) -> None:
        n = int(np.prod(shape))
        super().__init__(n_var=n, n_obj=4, n_ieq_constr=shape[2] + 1, xl=np.full(n, -bound), xu=np.full(n, bound),
                         elementwise=False)
        self.evaluator, self.state, self.reference, self.shape = evaluator, state, reference, shape
        self.capacity, self.ceiling, self.params = capacity, ceiling, params
        self.n_plans = 0

    def _evaluate(self, x, out, *args, **kwargs):
        plans = logits_to_plans(x, self.shape)
        ev = self.evaluator.evaluate(self.state, plans)
        self.n_plans += len(x)
        out["F"] = compress_metrics(normalized_metrics(ev, self.reference), self.params.reward_norm_clip)
        util = planned_utilization(plans, self.state.predicted, self.capacity, self.state.queued)
        out["G"] = np.hstack([util - self.ceiling,
                              (sla_rate(self.state, ev) - self.params.reward_sla_setpoint)[:, None]])


@dataclass(frozen=True)
class NSGA2Params(EvaluatorParams):
    """Population, generations, genome bound and the pick from the front (module docstring)."""

    nsga2_pop_size: int = param(32, "NSGA-II: population size (x nsga2_generations <= plan_evaluations_per_epoch)",
                                lo=2)
    nsga2_generations: int = param(8, "NSGA-II: generations per epoch (the first evaluates the initial population)",
                                   lo=1)
    nsga2_logit_bound: float = param(4.0, "NSGA-II: genome = per-row logits in [-bound, bound], softmax -> plan row",
                                     lo=0, lo_open=True)
    nsga2_pick: str = param("weights", "NSGA-II: final plan from the front: 'weights' (min weighted normalized "
                            "objectives) or 'knee' (farthest from the line of extremes)", choices=("weights", "knee"))

    def validate(self) -> None:
        if self.nsga2_pop_size * self.nsga2_generations > self.plan_evaluations_per_epoch:
            raise ConfigError(f"nsga2_pop_size x nsga2_generations = {self.nsga2_pop_size * self.nsga2_generations}"
                              f" exceeds plan_evaluations_per_epoch {self.plan_evaluations_per_epoch}")


class NSGA2(EvaluatorScheduler):
    """pymoo NSGA-II over plan genomes, fitness = Simulate's four normalized objectives, warm-started."""

    Params = NSGA2Params

    def setup(self) -> None:
        super().setup()
        self.population: np.ndarray | None = None  # last epoch's final genomes (warm start)
        self.front_x: np.ndarray | None = None  # last epoch's non-dominated genomes and objectives
        self.front_f: np.ndarray | None = None
        self.evaluations = 0  # plan evaluations of the last epoch
        self.incumbent: np.ndarray | None = None  # the genome chosen last epoch
        self.headroom = Headroom(self.params)
        self.epoch_spend = (0, 0)  # (plans simulated, gradient steps) of the last epoch

    def seed_genomes(self) -> np.ndarray:
        """The genomes every epoch's population holds: the incumbent (if any), the uniform and the nearest plan."""
        shape, bound = self.info.plan_shape, self.params.nsga2_logit_bound
        m, o, _ = shape
        nearest = np.broadcast_to(np.argmin(self.info.latency_s, axis=1), (m, o))
        seeds = [np.zeros(int(np.prod(shape))), one_hot_logits(nearest, shape, bound)]
        return np.asarray(seeds if self.incumbent is None else [self.incumbent] + seeds)

    def initial_population(self) -> np.ndarray:
        p, shape = self.params, self.info.plan_shape
        pop, bound = p.nsga2_pop_size, p.nsga2_logit_bound
        seeds = self.seed_genomes()[:pop]
        if self.population is not None and len(self.population) == pop:
            rest = self.population[: pop - len(seeds)]  # the warm start, its last members making room
        else:
            rest = self.rng.uniform(-bound, bound, size=(max(pop - len(seeds), 0), int(np.prod(shape))))
        return np.vstack([seeds, rest])

    def pick(self, f: np.ndarray) -> int:
        """Index of the chosen front member (see the module docstring)."""
        if self.params.nsga2_pick == "weights":
            return int(np.argmin(weighted_score(f, self.info.weights)))
        lo, hi = f.min(axis=0), f.max(axis=0)
        z = (f - lo) / np.where(hi > lo, hi - lo, 1.0)
        return int(np.argmin(z.sum(axis=1)))  # farthest below the hyperplane sum(z) = 1 through the extremes

    def plan(self, obs: Observation) -> np.ndarray:
        p, shape = self.params, self.info.plan_shape
        self.headroom.learn(obs.last)
        state = self.epoch_state(obs)
        reference = self.evaluator.evaluate(state, self.uniform_plan)
        cap = self.info.capacity.requests_per_epoch
        fleet = fleet_utilization(state.predicted, cap, state.queued)
        problem = PlanProblem(self.evaluator, state, reference, shape, p.nsga2_logit_bound, cap,
                              max(self.headroom.target(), fleet), p)
        algorithm = PymooNSGA2(pop_size=p.nsga2_pop_size, sampling=self.initial_population(),
                               eliminate_duplicates=True)
        res = minimize(problem, algorithm, ("n_gen", p.nsga2_generations),
                       seed=int(self.rng.integers(SEED_HIGH)), verbose=False)
        self.evaluations = problem.n_plans
        self.population = res.pop.get("X")
        opt = res.opt  # the feasible non-dominated members, or pymoo's least-violating one
        if opt is None or len(opt) == 0:  # no feasible member and pymoo kept none: the least-violating ones
            cv = res.pop.get("CV")[:, 0]
            opt = res.pop[cv <= cv.min()]
        self.front_x, self.front_f = np.atleast_2d(opt.get("X")), np.atleast_2d(opt.get("F"))
        self.incumbent = self.front_x[self.pick(self.front_f)].copy()
        plan = logits_to_plans(self.incumbent, shape)[0]
        self.headroom.record(plan, obs.predicted_requests, obs.epoch)
        self.epoch_spend = (self.evaluations, 0)
        return plan
