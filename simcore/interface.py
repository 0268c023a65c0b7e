"""The scheduler interface (SPEC 8): what the simulator tells a scheduler and what it must answer, and what a
run produced (`RunRecord`). simcore owns it; simcore knows no scheduler.

A scheduler subclasses `Scheduler`, declares its parameters in a frozen dataclass beside it (`Params`, a
`simcore.params.Parameters`; `self.params` holds the run's values) and writes the hooks below; the base class does
the bookkeeping (keeps the static facts and the seeded RNG, validates every plan):

    plan(obs) -> Plan          required: at each epoch start, the fractions [model, origin, datacenter]
    setup()                    optional: after `reset`, build models from `self.info` / `self.rng`
    route(request, live) -> dc optional: per-request online routing; default None = draw from the plan
    observe(result)            optional: the epoch's measured metrics (learning schedulers)
    extra_results() -> dict    optional: extra tables (name -> DataFrame) for the results folder
    execution() -> Execution   optional: how each request's work runs on nodes, `simcore.execution.WHOLE`
                               (default: prefill and decode on one node) or `split_execution(...)` (prefill and
                               decode on separate node pools, the KV cache sent between them)
    learned                    a learner: the names of the attributes holding what it learned (default `state_dict`
                               / `load_state_dict` deep-copy them; override both for another format)

Pre-training (`simcore.training`, `--train-days`) plays the same scheduler object through whole engine runs of
other days: `warm_start(state, epochs)` before a run makes `reset` load `state` right after `setup`, so what the
learner learned survives the new run's `setup`; `experience_epochs` is how many epochs it played before this run
(an exploration schedule may continue from it).

The engine calls the public methods `reset(info, rng)`, `execution()`, `decide(obs)` (plan + validation) and
`observe`.
Every hook a subclass writes is guarded (`Scheduler.__init_subclass__`): an exception raised inside it becomes a
`SchedulerError` naming the scheduler, the method and the error, so the user sees one line, not a traceback
(a `SimError` the hook raises on purpose passes through unchanged).
"""
from __future__ import annotations

import copy
import contextlib
import functools
import math
import signal
import threading
import types
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Optional

import numpy as np

from simcore.errors import PlanError, SchedulerError, SimError
from simcore.execution import WHOLE, Execution
from simcore.params import Parameters

PLAN_ROW_TOLERANCE = 1e-6  # rows of a plan must sum to 1 within this
HOOKS = ("setup", "plan", "route", "observe", "extra_results", "execution")  # the methods a subclass writes (guarded)


def _is_route(value) -> bool:
    return value is None or (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)))


# what a hook must return (where its caller reads the value): the check and the words of the message
RETURNS = {
    "route": (_is_route, "None or a datacenter index (an int)"),
    "extra_results": (lambda v: isinstance(v, dict), "a dict of table name -> pandas DataFrame"),
    "execution": (lambda v: isinstance(v, Execution), "a simcore.execution.Execution (WHOLE or split_execution)"),
}


def _guarded(method: str, fn: Callable) -> Callable:
    """`fn` with any exception except a SimError, and a `sys.exit` inside it, turned into a SchedulerError naming
    scheduler and method; a return value of the wrong type (`RETURNS`) likewise."""
    expect = RETURNS.get(method)

    @functools.wraps(fn)
    def hook(self, *args, **kwargs):
        try:
            value = fn(self, *args, **kwargs)
        except SimError:
            raise
        except SystemExit as e:  # a plug-in ending the process would take the whole run (or sweep) with it
            raise SchedulerError(f"scheduler {self.label()}: {method}() called sys.exit({e.code!r})") from None
        except Exception as e:
            raise SchedulerError(f"scheduler {self.label()}: {method}() raised {type(e).__name__}: {e}") from e
        if expect is not None and not expect[0](value):
            raise SchedulerError(f"scheduler {self.label()}: {method}() returned {_shown(value)}, not {expect[1]}")
        return value
    hook.__guarded__ = True
    return hook


def _shown(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


class _PlanTimeout(BaseException):
    """Raised inside a plan() past its deadline (a BaseException: a plug-in's `except Exception` cannot eat it)."""


def _raise_timeout(signum, frame) -> None:
    raise _PlanTimeout()


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise _PlanTimeout in this block after `seconds` (SIGALRM; only in the main thread, and only where no one
    else uses SIGALRM: elsewhere the block runs unbounded)."""
    usable = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None) and math.isfinite(seconds))
    if not usable:
        yield
        return
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


@dataclass(frozen=True)
class StaticInfo:
    """Facts that do not change during a run, as the engine built them once: use them, never rebuild them.

    :param dcs: number of datacenters D (= number of origin regions)
    :param sites: zone id of each datacenter, in order
    :param models: model names (plan axis 0)
    :param latency_s: [origin, D] one-way network latency (Eq. 2) over the backbone (the topology), seconds
    :param epoch_s: epoch length, seconds
    :param epochs: number of epochs of the run
    :param weights: Eq. 11 weights (TTFT, carbon, water, cost)
    :param sla_ttft_s: the SLA: a request whose TTFT exceeds this is a violation, s
    :param ttft_model: Eq. 3's first-token compute term, 'eq3' or 'prefill' (`physics.first_token_compute_s`)
    :param warm_target_utilization: the share of its serving capacity a datacenter keeps its warm set at
    :param fleet: `simcore.capacity.Fleet`, the nodes of the D datacenters (types, memory, TDP, load times)
    :param profiles: `simcore.profiles.Profiles`, execution times per (model, node type, batch)
    :param capacity: `simcore.capacity.Capacity`, the serving capacity the engine enforces
        (`capacity.requests_per_epoch[d, m]` real requests per epoch)
    :param evaluator: `simcore.evaluator.EpochEvaluator`, Simulate(State_e, a) of this world
    :param token_sample: (prompt, output) token arrays of a sample of the run's requests (service-time means)
    :param cohort_size: real requests each simulated request stands for (1 = exact simulation)
    :param rate_profile: how an epoch's arrivals spread over the engine's cohort bins: a bin's rate over its
        epoch's mean, at equally weighted quantiles of the requests (`simcore.queueing.bin_rate_profile`; None in
        exact runs, whose Poisson arrivals the M/G/c wait covers)
    :param other_days: `other_days(n)`: the `simcore.epochs.Epochs` of this run's n training days (other days of
        the bundled week, each with its own arrivals and signals; `simcore.epochs.other_days`)
    :param plan_timeout_s: a `plan()` that has not returned after this long ends the run (`Scheduler.decide`)
    """

    dcs: int
    sites: tuple
    models: tuple
    latency_s: np.ndarray
    epoch_s: float
    epochs: int
    weights: tuple
    sla_ttft_s: float
    ttft_model: str
    warm_target_utilization: float
    fleet: Any = None
    profiles: Any = None
    capacity: Any = None
    evaluator: Any = None
    token_sample: tuple = ()
    cohort_size: int = 1
    rate_profile: Any = None
    other_days: Optional[Callable[[int], Iterator]] = None
    plan_timeout_s: float = 600.0

    @property
    def plan_shape(self) -> tuple:
        return (len(self.models), self.dcs, self.dcs)

    @property
    def node_types(self) -> tuple:
        """(gpu type, gpus per node) of each node type."""
        return self.fleet.node_types

    @property
    def nodes_per_type(self) -> np.ndarray:
        """[D, T] node counts."""
        return self.fleet.nodes_per_type

    @property
    def nodes_per_dc(self) -> int:
        return int(self.fleet.nodes_per_type[0].sum())

    @property
    def hosts(self) -> np.ndarray:
        """[M, T] whether a node type can host a model."""
        return self.profiles.hosts


@dataclass(frozen=True)
class Observation:
    """What a scheduler sees at the start of epoch `epoch`.

    :param epoch: epoch index
    :param time_s: simulated time of the epoch start
    :param predicted_requests: [M, origin] forecast of this epoch's real requests (the predictor, section 5.1)
    :param free_nodes: [D] nodes that are idle (no running or queued request) at the epoch start
    :param resident_nodes: [D, M] nodes holding each model's weights
    :param queued: [D] real requests waiting for a node (what the datacenter is already committed to)
    :param ci_kg_per_kwh: [D] carbon intensity of this epoch
    :param gi_l_per_kwh: [D] grid water intensity
    :param tou_usd_per_kwh: [D] electricity price of this epoch
    :param cop: [D] cooling COP of this epoch
    :param last: the previous epoch's measured per-datacenter metrics (`EpochResult`), None at epoch 0
    :param queued_by_model: [D, M] `queued` by model (None where not known)
    :param carbon_kg_per_it_kwh, water_l_per_it_kwh, cost_usd_per_it_kwh: [D] carbon, water and cost that one kWh
        of IT energy causes at each datacenter this epoch, cooling and infrastructure included (Eq. 6-10)
    :param true_requests: [M, origin] the real requests that will arrive in this epoch: None for every
        scheduler except one whose class declares `Scheduler.hindsight` (a bound, not a deployable scheduler)
    """

    epoch: int
    time_s: float
    predicted_requests: np.ndarray
    free_nodes: np.ndarray
    resident_nodes: np.ndarray
    queued: np.ndarray
    ci_kg_per_kwh: np.ndarray
    gi_l_per_kwh: np.ndarray
    tou_usd_per_kwh: np.ndarray
    cop: np.ndarray
    last: Optional["EpochResult"]
    queued_by_model: Optional[np.ndarray] = None
    carbon_kg_per_it_kwh: Optional[np.ndarray] = None
    water_l_per_it_kwh: Optional[np.ndarray] = None
    cost_usd_per_it_kwh: Optional[np.ndarray] = None
    true_requests: Optional[np.ndarray] = None


@dataclass(frozen=True)
class EpochResult:
    """Measured metrics of one finished epoch, per datacenter ([D] arrays), as the engine accounted them.

    TTFT figures cover the requests that got their first token by the epoch's end; `sla_violations` counts those
    served past the SLA and those still waiting whose wait already exceeds it. Counts are real requests.
    `utilization` is the share of each datacenter's serving capacity (`capacity_requests`, for the epoch's
    model mix) its served requests used. `carbon_kg` is operational (Eq. 10); `embodied_carbon_kg` is the
    epoch's amortised share of the hardware's manufacturing carbon (`physics.embodied_carbon_kg`), and
    `embodied_attributable_kg` the part of it on the nodes that served (warm or busy; docs/model.md).
    `peak_to_mean` is how bursty the epoch's arrivals were: the fleet's busiest `cohort_bin_s` bin over the
    epoch's mean per bin (`simcore.queueing.arrival_peak_to_mean`; None when nothing arrived).
    """

    epoch: int
    requests: np.ndarray
    ttft_sum_s: np.ndarray
    ttft_count: np.ndarray
    sla_violations: np.ndarray
    energy_kwh: np.ndarray
    carbon_kg: np.ndarray
    water_l: np.ndarray
    cost_usd: np.ndarray
    parked_share: np.ndarray
    utilization: np.ndarray | None = None
    capacity_requests: np.ndarray | None = None
    embodied_carbon_kg: np.ndarray | None = None  # the epoch's share of the hardware's embodied carbon
    embodied_attributable_kg: np.ndarray | None = None  # of it, the nodes reserved for serving (warm or busy)
    peak_to_mean: float | None = None  # the fleet's busiest bin (cohort_bin_s) of arrivals over the epoch's mean bin


@dataclass(frozen=True)
class Request:
    """One request as `route` sees it."""

    index: int
    t_s: float
    model: int
    origin: int
    prompt_tokens: int
    output_tokens: int


class Scheduler(ABC):
    """Base of every scheduler. Subclasses write `plan` (and optionally `setup`, `route`, `observe`).

    :param params: the scheduler's parameters, an instance of its `Params` (default: `Params()`, the declared
        defaults); `schedulers.registry.create` builds it from `--set` / `--config` values. A constructor a
        subclass writes takes `params` and passes it on to `super().__init__(params)`.
    """

    #: registry name; set by subclasses for messages
    name: str = ""
    #: the class's parameters: a frozen dataclass of `simcore.params.param` fields (none by default)
    Params: ClassVar[type[Parameters]] = Parameters
    #: a learner's learned state: names of attributes `setup` builds and the run then changes (empty: learns nothing)
    learned: ClassVar[tuple[str, ...]] = ()
    #: the `learned` attributes a frozen learner (`frozen`) still updates: observations of its constraints (the
    #: head-room's forecast error, an SLA rate), not what it learned
    adapts_frozen: ClassVar[tuple[str, ...]] = ("headroom",)
    #: privileged: the engine gives this class the epoch's true arrivals (`Observation.true_requests`) at each
    #: epoch start. Only for bounds that no deployment could run (the LP oracle's `oracle-hindsight`); every
    #: other scheduler sees the forecast alone. `summary.json` records it (`hindsight`).
    hindsight: ClassVar[bool] = False

    def __init__(self, params: Parameters | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.info: Optional[StaticInfo] = None
        self.rng: Optional[np.random.Generator] = None
        self.experience_epochs = 0  # epochs played in earlier runs (pre-training) before this one
        self._warm: Any = None  # the state `reset` loads after `setup` (`warm_start`)
        #: the trained protocol's frozen test day (`--test-learning frozen`, set by `simcore.training`): a learner
        #: acts on what it learned and changes none of its `learned` state but `adapts_frozen`
        self.frozen = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in HOOKS:  # guard the hooks this class writes itself (inherited ones are guarded already)
            fn = cls.__dict__.get(name)
            if isinstance(fn, types.FunctionType) and not getattr(fn, "__guarded__", False):
                setattr(cls, name, _guarded(name, fn))

    # --- public, called by the engine ------------------------------------------------------------
    def reset(self, info: StaticInfo, rng: np.random.Generator) -> None:
        """Start a run: keep the static facts and the seeded RNG, then call `setup`."""
        self.info, self.rng = info, rng
        self.setup()
        warm = getattr(self, "_warm", None)  # (a plug-in's own __init__ may not have called ours)
        if warm is not None:  # pre-trained: what it learned on earlier runs replaces setup's fresh state
            self.load_state_dict(warm)

    def warm_start(self, state: Any, experience_epochs: int) -> None:
        """Make the next `reset` load `state` (a `state_dict()` of this class; None: start fresh) and record the
        epochs it was learned over."""
        self._warm, self.experience_epochs = state, int(experience_epochs)

    @classmethod
    def learns(cls) -> bool:
        """Whether this class carries learned state from one run to the next (`learned`, or its own state_dict)."""
        return bool(cls.learned) or cls.state_dict is not Scheduler.state_dict

    def state_dict(self) -> Any:
        """What this scheduler learned, detached from it (a deep copy of its `learned` attributes, taken together so
        that shared references, an optimizer's parameters, stay shared); None for a scheduler that learns nothing."""
        if not self.learned:
            return None
        return copy.deepcopy({name: getattr(self, name) for name in self.learned})

    def load_state_dict(self, state: Any) -> None:
        """Replace the learned attributes by (a copy of) `state`, called after `setup`."""
        if state is None:
            return
        for name, value in copy.deepcopy(state).items():
            setattr(self, name, value)

    def decide(self, obs: Observation) -> np.ndarray:
        """The plan for this epoch, validated (a bad plan raises PlanError naming the scheduler); a plan() that
        does not return within `info.plan_timeout_s` raises SchedulerError."""
        with _deadline(self.info.plan_timeout_s):
            try:
                plan = self.plan(obs)
            except _PlanTimeout:
                raise SchedulerError(f"scheduler {self.label()}: plan() did not return within plan_timeout_s="
                                     f"{self.info.plan_timeout_s:g} s") from None
        return validate_plan(plan, self.info.plan_shape, self.label())

    def label(self) -> str:
        return self.name or type(self).__name__

    # --- hooks ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Optional: build internal state from `self.info` and `self.rng`."""

    @abstractmethod
    def plan(self, obs: Observation) -> np.ndarray:
        """Required: fractions [model, origin, datacenter], non-negative, each (model, origin) row summing to 1."""

    def route(self, request: Request, live: Any) -> Optional[int]:
        """Optional per-request routing; return a datacenter index, or None to draw from the plan."""
        return None

    def observe(self, result: EpochResult) -> None:
        """Optional: learn from the finished epoch's measured metrics."""

    def extra_results(self) -> dict:
        """Optional: name -> pandas.DataFrame of scheduler-specific tables, written as `<name>.csv` into the
        results folder with the rest (e.g. MARLIN's `marlin_epochs`). Called once, after the last epoch."""
        return {}

    def execution(self) -> Execution:
        """Optional: the execution mode of this run's requests (called once, after `setup`); default WHOLE."""
        return WHOLE

    @classmethod
    def routes_online(cls) -> bool:
        """Whether this class overrides `route` (the engine then asks it for every request)."""
        return cls.route is not Scheduler.route


def validate_plan(plan: Any, shape: tuple, who: str) -> np.ndarray:
    """Check a plan's shape, finiteness, sign and row sums; return it as a float array."""
    try:
        raw = np.asarray(plan)
        if raw.dtype.kind not in "biuf":  # complex, object, text: never silently cast (numpy drops imaginary parts)
            raise TypeError(raw.dtype)
        p = raw.astype(float)
    except (TypeError, ValueError, OverflowError):
        raise PlanError(f"scheduler {who}: plan is not an array of real numbers") from None
    if p.shape != tuple(shape):
        raise PlanError(f"scheduler {who}: plan has shape {p.shape}, expected {tuple(shape)} "
                        "(model, origin, datacenter)")
    if not np.all(np.isfinite(p)):
        raise PlanError(f"scheduler {who}: plan contains NaN or infinite entries")
    if np.any(p < 0):
        m, o, d = np.argwhere(p < 0)[0]
        raise PlanError(f"scheduler {who}: plan has a negative entry at model {m}, origin {o}, datacenter {d}")
    rows = p.sum(axis=2)
    bad = np.argwhere(np.abs(rows - 1.0) > PLAN_ROW_TOLERANCE)
    if len(bad):
        m, o = bad[0]
        raise PlanError(f"scheduler {who}: plan row (model {m}, origin {o}) sums to {rows[m, o]:.6g}, not 1")
    return p


@dataclass
class RunRecord:
    """Everything a run produced, for `simcore.results` to write. Per-row arrays have one entry per simulated
    request; `served` and `sla_late` are real-request counts (a cohort row stands for `cohort` real requests)."""

    cfg: Any  # simcore.config.Config: the world
    scheduler: str
    scheduler_params: dict  # the scheduler's parameters by name (`Parameters.to_dict`)
    trace: str
    load_scale: float
    sites: tuple
    epoch_rows: list  # one dict per (epoch, datacenter)
    req_epoch: np.ndarray
    req_dc: np.ndarray
    req_failed: np.ndarray
    ttft_s: np.ndarray  # mean TTFT of the row's served real requests; NaN where none got a first token by the end
    # of the run (the horizon, or the drain's end)
    cold: np.ndarray
    events: int
    wall_s: float
    prompt_node: np.ndarray | None = None  # split execution: the node that ran each request's prefill
    token_node: np.ndarray | None = None  # the node that ran its decode (the only node when not split)
    extra_tables: dict | None = None  # the scheduler's extra_results(): name -> DataFrame, written as <name>.csv
    cohort: int = 1
    served: np.ndarray | None = None  # real requests of the row that got their first token by the end of the run
    sla_late: np.ndarray | None = None  # real requests of the row whose TTFT exceeded sla_ttft_s
    queued_at_horizon: float = 0.0  # real requests without a first token at the horizon (the drain's backlog)
    drain_h: float = 0.0  # hours the drain ran after the horizon (0 without it, or with nothing to drain)
    over_context: int = 0  # simulated requests whose prompt exceeded their model's context window
    training: dict | None = None  # pre-training's record (`simcore.training.pretrain`), config.json's 'training'
    hindsight: bool = False  # the scheduler saw each epoch's true arrivals (`Scheduler.hindsight`): a bound
