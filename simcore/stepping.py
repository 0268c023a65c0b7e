"""A run played epoch by epoch from outside: the engine's epoch loop as a stepper (what an RL environment steps).

`Engine.run` drives itself: its epoch process asks the scheduler for a plan at each epoch start. `EpochStepper`
plays the same engine (exact or cohort node model, as the Config says) with a scheduler adapter whose `plan`
returns the plan the caller gave, and pauses the SimPy run at each epoch start, after the epoch's observation is
built and before the plan is used (`Engine.start(gate=...)`):

    stepper = EpochStepper(cfg)
    obs = stepper.reset()                   # epoch 0's Observation
    while not stepper.done:
        result, obs = stepper.step(plan)    # play one epoch with `plan`; its EpochResult, the next Observation
    record = stepper.record                 # the RunRecord, as `Engine.run` returns it

The pause and the resume are SimPy events scheduled at the current time with URGENT priority (as
`simpy.Environment.run(until=...)` schedules its own stop), so no other event of that instant runs in between:
a run stepped with the plans a scheduler would choose is event for event the run `Engine.run` plays
(`tests/test_stepping.py`). The last step plays the rest of the run (`Engine.finish`: the last epoch and
whatever the engine does after the horizon); every epoch the engine closes after the one played (a drain
after the horizon) is added into the step's result (`merge_results`), so the last step carries what serving
the backlog cost.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from simpy.events import URGENT, Event

from simcore.config import Config
from simcore.engine import Engine
from simcore.interface import EpochResult, Observation, RunRecord, Scheduler, StaticInfo


class Driven(Scheduler):
    """The scheduler adapter an `EpochStepper` plays: its plan is the one the stepper was given."""

    name = "driven"

    def __init__(self) -> None:
        super().__init__()
        self.next_plan: np.ndarray | None = None
        self.results: list = []  # the epochs closed since the last step began

    def plan(self, obs: Observation) -> np.ndarray:
        return self.next_plan

    def observe(self, result: EpochResult) -> None:
        self.results.append(result)


# EpochResult fields that add up over epochs (per datacenter)
SUMMED = ("requests", "ttft_sum_s", "ttft_count", "sla_violations", "energy_kwh", "carbon_kg", "water_l", "cost_usd",
          "embodied_carbon_kg", "embodied_attributable_kg")


def merge_results(results: list) -> EpochResult:
    """One EpochResult for the epoch played (the first) and the epochs closed after it within the same step: the
    per-datacenter counts and amounts summed, the shares (parked, utilization, capacity) of the epoch played."""
    first = results[0]
    summed = {}
    for name in SUMMED:
        parts = [getattr(r, name) for r in results]
        summed[name] = None if any(p is None for p in parts) else np.sum(np.stack(parts), axis=0)
    return dataclasses.replace(first, **summed)


def _fire(env, event: Event) -> None:
    """Trigger `event` now, ahead of every other event of this instant."""
    event._ok, event._value = True, None  # what Environment.run does for its `until` event
    env.schedule(event, URGENT)


class EpochStepper:
    """One run of `cfg`'s world played one epoch per `step`.

    :param cfg: the world and the run (`simcore.config.Config`, validated as the CLI validates it)
    :param workload: the requests (default: loaded from cfg.trace with the 'trace' stream, as `Engine` does)
    :param scheduler: the adapter to play (default: a new `Driven`); its `next_plan` is set by `step`
    """

    def __init__(self, cfg: Config, workload=None, scheduler: Driven | None = None) -> None:
        self.cfg = cfg
        self.sched = scheduler if scheduler is not None else Driven()
        self.engine = Engine(cfg, self.sched, workload)
        self.obs: Observation | None = None
        self.epoch = -1
        self.record: RunRecord | None = None
        self._resume: Event | None = None
        self._pause: Event | None = None

    @property
    def info(self) -> StaticInfo:
        return self.engine.info

    @property
    def done(self) -> bool:
        return self.record is not None

    def reset(self) -> Observation:
        """Start the run; returns epoch 0's observation."""
        self.record, self.epoch = None, 0
        self.engine.start(gate=self._gate)
        self._run_to_gate()
        return self.obs

    def step(self, plan: np.ndarray) -> tuple[EpochResult, Observation | None]:
        """Play the current epoch with `plan` ([model, origin, datacenter], rows summing to 1; validated as any
        scheduler's). Returns the epoch's measured `EpochResult` and the next epoch's observation (None after
        the last epoch, when `record` holds the run's record)."""
        if self.done or self._resume is None:
            raise RuntimeError("EpochStepper.step: call reset() first (the run is over or not started)")
        self.sched.next_plan = plan
        self.sched.results = []
        resume, self._resume = self._resume, None
        _fire(self.engine.env, resume)
        if self.epoch < self.cfg.epochs - 1:
            self._run_to_gate()
        else:
            self.record = self.engine.finish()
            self.obs = None
        self.epoch += 1
        done = self.sched.results
        return (done[0] if len(done) == 1 else merge_results(done)), self.obs

    # --- the gate ----------------------------------------------------------------------------------
    def _gate(self, obs: Observation) -> Event:
        """Called by the engine's epoch process at an epoch start: stop the run here until `step` resumes it."""
        self.obs = obs
        self._resume = self.engine.env.event()
        _fire(self.engine.env, self._pause)
        return self._resume

    def _run_to_gate(self) -> None:
        self._pause = self.engine.env.event()
        self.engine.env.run(until=self._pause)
