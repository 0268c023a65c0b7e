"""Find a scheduler class by name: built-ins ("module:Class" strings imported only when chosen), then
setup.cfg entry points (group `marlin_sim.schedulers`), then a literal dotted path `pkg.mod:Class`.

Importing lazily keeps `--scheduler nearest` from importing torch. A name registered twice is an error; an
unknown name lists what exists. `create` builds the scheduler with its parameters (its class's `Params`).
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from simcore.errors import ConfigError, SchedulerError, SchedulerNotFound, SimError
from simcore.interface import Scheduler
from simcore.params import Parameters

ENTRY_POINT_GROUP = "marlin_sim.schedulers"

BUILTIN = {
    "uniform": "schedulers.reference:Uniform",
    "nearest": "schedulers.reference:Nearest",
    "greenest": "schedulers.reference:Greenest",
    "fill-ttft": "schedulers.fill:FillTTFT",
    "fill-carbon": "schedulers.fill:FillCarbon",
    "fill-water": "schedulers.fill:FillWater",
    "fill-cost": "schedulers.fill:FillCost",
    "splitwise": "schedulers.splitwise:Splitwise",
    "helix": "schedulers.helix:Helix",
    "perllm": "schedulers.perllm:PerLLM",
    "nsga2": "schedulers.nsga2:NSGA2",
    "slit": "schedulers.slit:SLIT",
    "qlearning": "schedulers.qlearning:QLearning",
    "ddqn": "schedulers.ddqn:DDQN",
    "actorcritic": "schedulers.actorcritic:ActorCritic",
    "marlin": "schedulers.marlin.scheduler:MarlinBalanced",
    "marlin-balanced": "schedulers.marlin.scheduler:MarlinBalanced",
    "marlin-minlatency": "schedulers.marlin.scheduler:MarlinMinLatency",
    "marlin-mincarbon": "schedulers.marlin.scheduler:MarlinMinCarbon",
    "marlin-minwater": "schedulers.marlin.scheduler:MarlinMinWater",
    "marlin-mincost": "schedulers.marlin.scheduler:MarlinMinCost",
    "oracle": "schedulers.oracle:Oracle",
    "oracle-hindsight": "schedulers.oracle:OracleHindsight",
}


def _entry_points() -> dict:
    found = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        if ep.name in BUILTIN or ep.name in found:
            raise SchedulerNotFound(f"scheduler name {ep.name!r} is registered twice (entry point {ep.value})")
        found[ep.name] = ep.value
    return found


def available() -> dict:
    """name -> "module:Class" of every registered scheduler (built-ins and entry points), sorted by name."""
    return dict(sorted({**BUILTIN, **_entry_points()}.items()))


def _import(target: str, name: str) -> type:
    mod_name, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise SchedulerNotFound(f"scheduler {name!r}: cannot import {target} ({e}; a module of your own is found "
                                "from the current folder or PYTHONPATH)") from None
    except SimError:
        raise
    except Exception as e:  # the module itself raised while being imported (a syntax error, a failing import-time call)
        raise SchedulerNotFound(f"scheduler {name!r}: importing {mod_name} raised {type(e).__name__}: {e}") from None
    if not (isinstance(obj, type) and issubclass(obj, Scheduler)):
        raise SchedulerNotFound(f"scheduler {name!r}: {target} is not a subclass of simcore.interface.Scheduler")
    p = obj.Params
    if not (isinstance(p, type) and issubclass(p, Parameters) and "__dataclass_fields__" in vars(p)
            and p.__dataclass_params__.frozen):
        raise SchedulerNotFound(f"scheduler {name!r}: {target}.Params must be a @dataclass(frozen=True) subclass of "
                                "simcore.params.Parameters")
    return obj


def resolve(name: str) -> type:
    """The scheduler class for `name` (registered name or `pkg.mod:Class`)."""
    table = available()
    if name in table:
        return _import(table[name], name)
    if ":" in name:
        return _import(name, name)
    raise SchedulerNotFound(f"unknown scheduler {name!r}; known: {', '.join(table)} (or pkg.module:Class)")


def create(name: str, values: dict | None = None, where: str = "parameters") -> Scheduler:
    """A fresh instance of the named scheduler with its parameters (`Params` built from `values`, text or JSON
    values by parameter name; unknown names refused), its `name` set to what the user asked for."""
    cls = resolve(name)
    values = dict(values or {})
    unknown = sorted(set(values) - set(cls.Params.names()))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)} (run.py --list-params lists the "
                          f"world's, --list-params --scheduler {name} the scheduler's)")
    params = cls.Params.from_dict(values, where)
    try:
        sched = cls(params)
    except SimError:
        raise
    except Exception as e:  # the plug-in's own constructor failed: one line naming it, not a traceback
        raise SchedulerError(f"scheduler {name}: __init__() raised {type(e).__name__}: {e}") from e
    sched.name = name
    return sched
