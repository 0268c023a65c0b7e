"""Sweeps of independent runs (paper section 6, SPEC 11): what to run, where it goes, and who runs it.

    python run.py compare [--schedulers a,b,c] [--seeds 5] [--dcs 8] [--hours 24]      # Fig. 3 (+ Fig. 4 points)
    python run.py scale   [--schedulers a,b,c] [--seeds 5] [--dcs-list 4,6,8,10,12]    # Fig. 5
                          [--load paper|fixed]
    python run.py ablate  [--ablations no-veto,...] [--seeds 5] [--dcs 8]              # Fig. 6
    python run.py pareto  [--weights "w1,w2,w3,w4;..."] [--seeds 5] [--dcs 8]          # MARLIN's --weights sweep
    python run.py paper   [...]                                                        # all four, one folder
    common: [--out results/study] [--workers N] [--executor local|ray] [--first-seed 0] [--no-progress]
            and the run flags passed to every run: [--set NAME=VALUE ...] [--config F] [--load-scale X]
            [--trace T] [--start DATE] [--cop annual|hourly]

Layout: sweep kind K writes `OUT/K/` holding `sweep.json` (the manifest: kind, schedulers, seeds, dcs, hours,
weights, ablations, the run flags, and one entry per run with its folder name), `failures.json` (the runs that
failed in the last attempt, by name, with the error), and one ordinary results folder per run
(`<scheduler>-d<D>-s<seed>`, `marlin-<ablation|full>-d<D>-s<seed>`, `marlin-w<w1>_<w2>_<w3>_<w4>-d<D>-s<seed>`).

Each run is `python run.py --scheduler X --dcs D --seed S --hours H <run flags> --out FOLDER`, made as the
command line makes it: its flags read by `schedulers.options.build_config`, then the one library call of a run,
`simcore.run.run` (the same seed gives the same files; only `wall_s` differs). A run whose `summary.json`
exists is never re-run, so an interrupted sweep resumes where it stopped; a folder without `summary.json`
(nothing we wrote: results are renamed into place only when complete) is moved aside to
`.<name>.incomplete-<time>` and re-run, never deleted. A failing run is reported by name and does not stop the
others. In `paper`, a run of `scale` or `ablate` identical to one of `compare` (same scheduler, D, seed, hours,
flags) is a symbolic link to it.

Before any run starts the whole sweep is checked: every scheduler and parameter, every distinct configuration
(as its runs will read it), each distinct world's trace, load and start date (its workload and grid signals are
built once), and the folder: new, empty, or one this program's sweep wrote (`sweep.json`'s mark), and not in use
by another sweep (a lock). Ctrl-C, SIGTERM and SIGHUP stop the running runs, which remove their half-written
folders; no process is left behind (`reports.executors`).

Load in `scale` (`--load`): `paper` (default), the paper's rule at every D: the trace day's busiest epoch at
`peak_utilization` (95 %) of that fleet's own capacity, i.e. each run of D datacenters gets
`--set reference_dcs=D` (`load_scale auto`; docs/model.md 'Load'); `fixed`, the 8-DC fleet's load for every D
(`reference_dcs` as set, default 8), so D = 4 is twice overloaded for every scheduler and D = 12 two-thirds idle.
A numeric `--load-scale` sets the load itself and goes with `--load fixed` only.

Executors: `local` (default), `--workers` runs at a time (default: the machine's cores), each in its own
process, so a plug-in that ends its process (`os._exit`) fails its own run only; `ray`, one Ray task per run on the cluster that `ray.init(address="auto")` finds, else on a
local Ray with `--workers` CPUs. A Ray task writes its results in a temporary folder on its node and returns
the files, which this process writes into the sweep folder (no shared file system needed). Ray is an optional
extra: `pip install marlin-sim[ray]`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from reports.executors import LOCK_FILE, run_in_processes, sweep_lock
from schedulers.marlin.scheduler import ABLATIONS as MARLIN_ABLATIONS
from simcore.config import OBJECTIVES
from simcore.errors import ConfigError, SimError

KINDS = ("compare", "scale", "ablate", "pareto")
HEURISTICS = ("helix", "splitwise", "nsga2", "perllm", "slit")  # paper section 6: five heuristic baselines
RL_BASELINES = ("qlearning", "ddqn", "actorcritic")  # ... and three RL baselines
BASELINES = HEURISTICS + RL_BASELINES
MARLIN_VARIANTS = ("marlin", "marlin-minlatency", "marlin-mincarbon", "marlin-minwater", "marlin-mincost")
MARLIN_ALIASES = ("marlin-balanced",)
REFERENCE_CANDIDATES = ("uniform", "nearest", "greenest", "fill-ttft", "fill-carbon", "fill-water", "fill-cost")
ORACLES = ("oracle", "oracle-hindsight")  # the LP oracle and its hindsight bound (family 'other': never a baseline)

DEFAULT_OUT = "results/study"  # a sweep of kind K goes to DEFAULT_OUT/K
DEFAULT_SEEDS = 5  # paper Fig. 3: >= 5 seeds (SPEC 11)
DEFAULT_DCS = 8  # paper section 6: 8 datacenters
DEFAULT_HOURS = 24.0  # paper section 6: 24 hours
DEFAULT_DCS_LIST = (4, 6, 8, 10, 12)  # paper Fig. 5
LOAD_RULES = ("paper", "fixed")  # scale's --load: each D at the paper's 95 % rule, or the 8-DC load for every D
DEFAULT_PARETO_WEIGHTS = (  # MARLIN-Balanced re-weighted towards each pair of objectives (TTFT, carbon, water, cost)
    (0.4, 0.4, 0.1, 0.1), (0.4, 0.1, 0.4, 0.1), (0.4, 0.1, 0.1, 0.4),
    (0.1, 0.4, 0.4, 0.1), (0.1, 0.4, 0.1, 0.4), (0.1, 0.1, 0.4, 0.4),
)
ABLATION_BASE = "marlin"  # the full framework the ablation switches are taken from (MARLIN-Balanced)
RUN_FLAGS = ("--config", "--load-scale", "--trace", "--start", "--cop")  # passed through to every run
# learners learn only inside the scored day (the paper's), or pre-train first and then play the scored day learning
# online as the paper's learners do, or frozen (`--test-learning`, simcore.training)
PROTOCOLS = ("online", "trained", "trained-frozen")
TRAINED = ("trained", "trained-frozen")
DEFAULT_PROTOCOL = "online"
DEFAULT_TRAIN_DAYS = 3  # trained protocol: other days of the bundled week each learner plays first (simcore.training)
CHECKPOINTS = "checkpoints"  # OUT/checkpoints: pre-trained states, shared by the study's sweeps
MANIFEST = "sweep.json"
FAILURES = "failures.json"
SUMMARY = "summary.json"
WRITTEN_BY = "marlin-sim sweep"  # sweep.json's mark: the folder is a sweep folder this program wrote


def family(name: str) -> str:
    """marlin | heuristic | rl | reference | other, from a run's scheduler name."""
    if name in MARLIN_VARIANTS or name in MARLIN_ALIASES:
        return "marlin"
    if name in HEURISTICS:
        return "heuristic"
    if name in RL_BASELINES:
        return "rl"
    if name in REFERENCE_CANDIDATES:
        return "reference"
    return "other"


def references() -> tuple:
    """The reference schedulers registered now (fill-* only where another branch has added them)."""
    from schedulers.registry import available

    known = available()
    return tuple(r for r in REFERENCE_CANDIDATES if r in known)


def default_schedulers() -> tuple:
    """The paper's 13 (8 baselines + 5 MARLIN variants), every registered reference scheduler and the LP oracles
    (the report's gap to `oracle-hindsight`)."""
    return BASELINES + MARLIN_VARIANTS + references() + ORACLES


def _safe(name: str) -> str:
    return name.replace(":", "_").replace("/", "_")


def _fmt(x: float) -> str:
    return f"{x:g}"


# --- what to run ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its folder name and the flags that make it."""

    name: str
    scheduler: str
    dcs: int
    seed: int
    hours: float
    label: str  # the framework the run belongs to in reports: scheduler, "marlin[no-veto]", "marlin[w=...]"
    weights: tuple | None = None
    ablate: tuple = ()
    same_as: str | None = None  # `paper`: the identical run of another sweep ("../compare/<run>"), linked not re-run
    reference_dcs: int | None = None  # scale's `--load paper`: the auto load's reference fleet is this run's own D

    def argv(self, run_args: list) -> list:
        a = ["--scheduler", self.scheduler, "--dcs", str(self.dcs), "--seed", str(self.seed),
             "--hours", _fmt(self.hours), *_run_args_for(self.scheduler, run_args)]
        if self.weights is not None:
            a += ["--weights", ",".join(_fmt(w) for w in self.weights)]
        if self.ablate:
            a += ["--ablate", ",".join(self.ablate)]
        if self.reference_dcs is not None:
            a += ["--set", f"reference_dcs={self.reference_dcs}"]
        return a + ["--no-progress"]


def _cost_rank(r: RunSpec) -> int:
    """Start the slow runs first (MARLIN, then RL, then search) so the pool's last runs are short ones."""
    fam = family(r.scheduler)
    return {"marlin": 0, "rl": 1}.get(fam, 2 if r.scheduler in ("nsga2", "slit", "splitwise") else 3)


def _ordered(runs: list) -> list:
    return sorted(runs, key=lambda r: (_cost_rank(r), -r.dcs, r.seed, r.name))


def compare_runs(schedulers, seeds, dcs: int, hours: float) -> list:
    return [RunSpec(f"{_safe(s)}-d{dcs}-s{k}", s, dcs, k, hours, s) for s in schedulers for k in seeds]


def scale_runs(schedulers, seeds, dcs_list, hours: float, load: str = "paper") -> list:
    """The runs of `scale`; `load` 'paper' gives each D the paper's load for its own fleet (`--set reference_dcs=D`
    where D is not already the default reference fleet's), 'fixed' the reference fleet's for every D."""
    from simcore.config import Config

    default = Config().reference_dcs
    return [replace(r, reference_dcs=d if load == "paper" and d != default else None)
            for d in dcs_list for r in compare_runs(schedulers, seeds, d, hours)]


def ablate_runs(ablations, seeds, dcs: int, hours: float, base: str = ABLATION_BASE) -> list:
    runs = [RunSpec(f"{_safe(base)}-full-d{dcs}-s{k}", base, dcs, k, hours, base) for k in seeds]
    for a in ablations:
        runs += [RunSpec(f"{_safe(base)}-{a}-d{dcs}-s{k}", base, dcs, k, hours, f"{base}[{a}]", ablate=(a,))
                 for k in seeds]
    return runs


def weights_tag(w) -> str:
    return "_".join(_fmt(x) for x in w)


def pareto_runs(weights_list, seeds, dcs: int, hours: float, base: str = ABLATION_BASE) -> list:
    return [RunSpec(f"{_safe(base)}-w{weights_tag(w)}-d{dcs}-s{k}", base, dcs, k, hours,
                    f"{base}[w={weights_tag(w)}]", weights=tuple(w)) for w in weights_list for k in seeds]


# --- running one ------------------------------------------------------------------------------------------------
def run_one(argv: list, out: str) -> None:
    """One sweep member: its flags read as the command line reads them (`schedulers.options`), then the one
    library call every run is (`simcore.run.run`): the same code path and files as `run.py <argv> --out out`.
    Raises what the run raises."""
    from schedulers.options import build_config
    from schedulers.registry import create
    from simcore.run import run

    args, cfg, params = build_config(argv)
    run(cfg, create(cfg.scheduler, params), out, progress=False, checkpoint_dir=args.checkpoint_dir,
        test_learning=args.test_learning or "online")


def _describe(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(e).__name__}: {e}{at}"


def run_error(argv: list, out: str) -> str | None:
    """Run one member; None on success, else one line saying why it failed. Never raises an error of the run
    (a SimError is the user's one line; anything else, a bug, is named with where it was raised)."""
    try:
        run_one(argv, out)
    except SimError as e:
        return " ".join(str(e).split())
    except SystemExit as e:  # sys.exit outside a guarded hook (a plug-in's import, its constructor's callees)
        return f"the run called sys.exit({e.code!r})"
    except Exception as e:
        return _describe(e)
    return None


def local_task(argv: list, out: str) -> tuple:
    """(error or None, seconds) of one member run in this process."""
    t0 = time.perf_counter()
    error = run_error(argv, out)
    return error, time.perf_counter() - t0


def files_task(argv: list) -> tuple:
    """Worker of the Ray executor: run into a temporary folder, return (error, seconds, {file name: bytes})."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="marlin-run-") as tmp:
        out = Path(tmp) / "run"
        error = run_error(argv, str(out))
        files = {} if error else {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    return error, time.perf_counter() - t0, files


# --- files ------------------------------------------------------------------------------------------------------
def write_json(path: Path, obj) -> None:
    """Write JSON atomically (temporary sibling + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_run_files(files: dict, out: Path) -> None:
    """A run's returned files into folder `out`, complete or not at all (temporary sibling + rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.replace(tmp, out)
    except BaseException:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
        raise


def finished(folder: Path) -> bool:
    return (folder / SUMMARY).is_file()


def _set_aside(folder: Path) -> Path:
    """Keep a folder we did not complete (no summary.json) under a hidden name instead of deleting it."""
    dest = folder.with_name(f".{folder.name}.incomplete-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    os.replace(folder, dest)
    return dest


# --- a sweep ----------------------------------------------------------------------------------------------------
@dataclass
class Sweep:
    """A kind of sweep, its runs and the flags passed to each; `path` is its folder."""

    kind: str
    path: Path
    runs: list
    hours: float
    run_args: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # schedulers, seeds, dcs, weights, ablations (manifest only)

    def manifest(self) -> dict:
        return {"written_by": WRITTEN_BY, "kind": self.kind, **self.settings, "hours": self.hours,
                "run_args": list(self.run_args), "protocol": self.protocol, "runs": [asdict(r) for r in self.runs]}

    @property
    def protocol(self) -> str:
        return self.settings.get("protocol", DEFAULT_PROTOCOL)


@dataclass
class Outcome:
    ran: list = field(default_factory=list)  # run names completed now
    skipped: list = field(default_factory=list)  # already finished
    failures: list = field(default_factory=list)  # {"run", "scheduler", "error"}
    set_aside: list = field(default_factory=list)  # incomplete folders moved aside
    wall_s: float = 0.0


def _merge_manifest(sweep: Sweep) -> dict:
    """This sweep's manifest, merged with one already in its folder (same hours and run flags, or an error)."""
    new = sweep.manifest()
    path = sweep.path / MANIFEST
    if not path.is_file():
        return new
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable sweep manifest ({e}); choose another --out") from None
    old.setdefault("protocol", DEFAULT_PROTOCOL)  # manifests written before protocols were online ones
    for key in ("kind", "protocol", "hours", "run_args", "load"):
        if old.get(key) != new.get(key):
            raise ConfigError(f"{sweep.path}: holds a {old.get('kind')} sweep with {key}={old.get(key)!r}, "
                              f"not {new.get(key)!r}; choose another --out")
    names = {r["name"] for r in new["runs"]}
    new["runs"] = [r for r in old.get("runs", []) if r["name"] not in names] + new["runs"]
    for key, value in new.items():
        if isinstance(value, list) and key not in ("runs", "run_args"):
            merged = {json.dumps(v): v for v in [*old.get(key, []), *value]}  # values may be lists (weights)
            new[key] = list(merged.values())
    return new


def check_folder(path: Path) -> None:
    """Refuse (ConfigError) a sweep folder that holds files no sweep wrote: it must be new, empty, or hold a
    sweep manifest this program wrote (its `written_by` mark, or the kind and runs of manifests written before
    the mark), so a sweep never replaces a user's own `failures.json` or `sweep.json`."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise ConfigError(f"{path}: is a file, not a sweep folder; choose another --out")
    entries = set(os.listdir(path)) - {LOCK_FILE}
    if entries and not _is_sweep_manifest(path / MANIFEST):
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(f"{path}: holds files no sweep wrote ({shown}); choose another --out")


def _is_sweep_manifest(path: Path) -> bool:
    try:
        m = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, ValueError):
        return False
    if not isinstance(m, dict):
        return False
    return m.get("written_by") == WRITTEN_BY or (m.get("kind") in KINDS and isinstance(m.get("runs"), list))


def execute(sweep: Sweep, workers: int, executor: str = "local", progress: bool = True) -> Outcome:
    """Run every unfinished run of `sweep` into its folder; write sweep.json first and failures.json last.

    One sweep at a time per folder (`reports.executors.sweep_lock`); each local run in its own process."""
    check_folder(sweep.path)
    sweep.path.mkdir(parents=True, exist_ok=True)
    with sweep_lock(sweep.path):
        return _execute(sweep, workers, executor, progress)


def _execute(sweep: Sweep, workers: int, executor: str, progress: bool) -> Outcome:
    from tqdm import tqdm

    from schedulers.registry import resolve

    t0 = time.perf_counter()
    write_json(sweep.path / MANIFEST, _merge_manifest(sweep))
    res = Outcome()
    pending = []
    for r in _ordered(sweep.runs):
        folder = sweep.path / r.name
        if r.same_as and not folder.exists() and not folder.is_symlink() and finished(sweep.path / r.same_as):
            os.symlink(r.same_as, folder, target_is_directory=True)  # the identical run, done by another sweep
        if finished(folder):
            res.skipped.append(r.name)
            continue
        if folder.exists():
            res.set_aside.append(str(_set_aside(folder)))
        pending.append(r)
    # the bar counts days played: a run's test day, plus its training days where no cached state spares them
    days = {r.name: run_days(r, sweep.run_args) for r in pending}
    bar = tqdm(total=len(res.skipped) + sum(days.values()), initial=len(res.skipped),
               desc=f"{sweep.kind} ({sweep.protocol})", unit="day", disable=not progress, dynamic_ncols=True)

    def done(r: RunSpec, error: str | None, seconds: float) -> None:
        if error:
            res.failures.append({"run": r.name, "scheduler": r.scheduler, "error": error})
            bar.write(f"FAILED {sweep.kind}/{r.name}: {error}")
        else:
            res.ran.append(r.name)
        bar.update(days.get(r.name, 1))
        bar.set_postfix_str(f"{r.name} {seconds:.0f}s, {len(res.failures)} failed", refresh=True)

    try:
        if executor == "ray":
            _run_ray(sweep, pending, workers, done)
        else:
            tasks = [(r, r.argv(sweep.run_args), str(sweep.path / r.name)) for r in pending]
            learners = any(resolve(r.scheduler).learns() for r in pending)
            run_in_processes(tasks, min(workers, max(len(pending), 1)), local_task, done, learners)
    finally:
        bar.close()
        res.wall_s = time.perf_counter() - t0
        write_json(sweep.path / FAILURES, res.failures)
    return res


def run_days(r: RunSpec, run_args: list) -> int:
    """Days a run will play: its test day, and its training days unless it learns nothing or its trained state is
    cached already (`simcore.training`)."""
    from schedulers.options import build_config
    from schedulers.registry import create, resolve
    from simcore.training import checkpoint_key, training_days

    _, cfg, params = build_config(r.argv(run_args))
    if cfg.train_days == 0 or not resolve(cfg.scheduler).learns():
        return 1
    argv = r.argv(run_args)
    cache = Path(argv[argv.index("--checkpoint-dir") + 1]) if "--checkpoint-dir" in argv else None
    key = checkpoint_key(create(cfg.scheduler, params), training_days(cfg, cfg.train_days))
    return 1 + (0 if cache is not None and (cache / f"{key}.pt").is_file() else cfg.train_days)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray: ray is not installed (pip install 'marlin-sim[ray]')") from None
    return ray


def local_ray(num_cpus: int) -> None:
    """Start a local Ray with `num_cpus` CPUs whose workers import this repository's code."""
    ray = _import_ray()
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(address="local", num_cpus=num_cpus, log_to_driver=False, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})


def ray_init(workers: int) -> None:
    """Connect to the Ray cluster that `address="auto"` finds, or start a local Ray with `workers` CPUs.

    On a cluster our code travels as the job's working directory (results, virtualenvs and git excluded)."""
    ray = _import_ray()
    if ray.is_initialized():
        return
    root = str(Path(__file__).resolve().parents[1])
    try:
        ray.init(address="auto", log_to_driver=False,
                 runtime_env={"working_dir": root, "excludes": [".git", ".venv", "results", "*.egg-info"]})
    except ConnectionError:  # no cluster reachable
        local_ray(workers)


def _run_ray(sweep: Sweep, pending: list, workers: int, done) -> None:
    ray_init(workers)
    import ray

    task = ray.remote(num_cpus=1, max_retries=0)(files_task)
    refs = {task.remote(r.argv(sweep.run_args)): r for r in pending}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            r = refs.pop(ready[0])
            try:
                error, seconds, files = ray.get(ready[0])
                if not error:
                    write_run_files(files, sweep.path / r.name)
            except Exception as e:  # the task's worker died, or its files could not be written
                error, seconds = _describe(e), 0.0
            done(r, error, seconds)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise


# --- command line -----------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise ConfigError(f"{self.prog}: {message}")


def _int_list(text: str, flag: str) -> tuple:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected whole numbers separated by commas") from None


def _weights_list(text: str) -> tuple:
    out = []
    for part in (p for p in text.split(";") if p.strip()):
        try:
            w = tuple(float(x) for x in part.split(","))
        except ValueError:
            raise ConfigError(f"--weights {part!r}: expected four numbers separated by commas") from None
        if len(w) != len(OBJECTIVES) or min(w) < 0 or abs(sum(w) - 1.0) > 1e-6:
            raise ConfigError(f"--weights {part!r}: need {len(OBJECTIVES)} non-negative numbers summing to 1 "
                              f"(they sum to {sum(w):g})")
        out.append(w)
    if not out:
        raise ConfigError("--weights: no weight vector given")
    return tuple(out)


def _parser(kind: str) -> argparse.ArgumentParser:
    from schedulers.options import prog

    p = _Parser(prog=f"{prog()} {kind}", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help=f"study folder; this sweep goes to OUT/<kind> (default {DEFAULT_OUT})")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds per configuration (default {DEFAULT_SEEDS})")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    p.add_argument("--hours", type=float, default=DEFAULT_HOURS, help=f"simulated hours per run (default {DEFAULT_HOURS:g})")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel runs (local processes, or local Ray CPUs); default: the machine's cores")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="local process pool or Ray")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if kind in ("compare", "scale", "paper"):
        p.add_argument("--schedulers", default=None,
                       help="comma-separated names (default: the 13 of the paper, the registered references "
                            "and the LP oracles)")
    if kind in ("compare", "ablate", "pareto", "paper"):
        p.add_argument("--dcs", type=int, default=DEFAULT_DCS, help=f"datacenters (default {DEFAULT_DCS})")
    if kind in ("scale", "paper"):
        p.add_argument("--dcs-list", default=",".join(map(str, DEFAULT_DCS_LIST)),
                       help="datacenter counts (default 4,6,8,10,12)")
        p.add_argument("--load", default="paper", choices=LOAD_RULES,
                       help="scale's load: 'paper' (default) each D's busiest epoch at 95 %% of that fleet's "
                            "capacity; 'fixed' the 8-DC load for every D")
    if kind in ("ablate", "paper"):
        p.add_argument("--ablations", default=",".join(MARLIN_ABLATIONS),
                       help=f"MARLIN switches, each run alone against the full framework (default all: "
                            f"{','.join(MARLIN_ABLATIONS)})")
    if kind in ("pareto", "paper"):
        p.add_argument("--weights", default=";".join(",".join(_fmt(x) for x in w) for w in DEFAULT_PARETO_WEIGHTS),
                       help="MARLIN weight vectors, ';'-separated, each w1,w2,w3,w4 summing to 1 "
                            "(default: each pair of objectives at 0.4, the others at 0.1)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help="online: every learner learns only inside the scored day (the paper's protocol, default); "
                        "trained: each first plays --train-days other days of the bundled week (simcore.training), "
                        "its state cached in OUT/checkpoints and reused by every sweep of the study, then plays "
                        "the scored day learning online; trained-frozen: the same training (the same checkpoints), "
                        "then the scored day frozen (no learner updates)")
    p.add_argument("--train-days", type=int, default=DEFAULT_TRAIN_DAYS,
                   help=f"trained protocol: training days per learner (default {DEFAULT_TRAIN_DAYS})")
    g = p.add_argument_group("run flags (passed to every run, as for `python run.py`)")
    g.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one parameter")
    g.add_argument("--config", default=None, help="JSON file of parameter overrides")
    g.add_argument("--load-scale", default=None, help="'auto' or an arrival-rate multiplier")
    g.add_argument("--trace", default=None, help="trace name or CSV path")
    g.add_argument("--start", default=None, help="UTC date of epoch 0 for grid signals")
    g.add_argument("--cop", default=None, choices=("annual", "hourly"), help="COP model")
    return p


def _run_args(a: argparse.Namespace) -> list:
    out = []
    for item in a.set:
        out += ["--set", item]
    for flag in RUN_FLAGS:
        value = getattr(a, flag[2:].replace("-", "_"))
        if value is not None:
            out += [flag, str(Path(value).resolve()) if flag == "--config" else value]
    if a.protocol in TRAINED:  # every run trains (a learner) or notes that it learns nothing
        out += ["--train-days", str(a.train_days), "--checkpoint-dir", str((Path(a.out) / CHECKPOINTS).resolve())]
        if a.protocol == "trained-frozen":
            out += ["--test-learning", "frozen"]
    return out


def _set_names(run_args: list) -> list:
    """The parameter names the sweep's `--set NAME=VALUE` flags set."""
    return [v.partition("=")[0].strip() for f, v in zip(run_args[::2], run_args[1::2]) if f == "--set"]


def _run_args_for(scheduler: str, run_args: list) -> list:
    """The sweep's run flags for one run: a `--set` of a scheduler's parameter goes only to the runs of the
    schedulers that have it (the world's parameters go to every run)."""
    from schedulers.registry import resolve
    from simcore.config import Config

    known = set(Config.names()) | set(resolve(scheduler).Params.names())
    out = []
    for flag, value in zip(run_args[::2], run_args[1::2]):
        if flag != "--set" or value.partition("=")[0].strip() in known or "=" not in value:
            out += [flag, value]
    return out


def _check(runs: list, run_args: list) -> None:
    """Refuse a bad sweep before running anything: unknown schedulers or parameters, bad flags (read as the
    command line reads them), and a trace, start date or load that no run could use (each distinct world's
    workload and grid signals are built once here, as its runs will build them)."""
    from schedulers.options import build_config
    from schedulers.registry import create, resolve
    from simcore.config import Config
    from simcore.rng import stream
    from topology.sites import site_signals
    from traces.loader import load_workload

    names = list(dict.fromkeys(r.scheduler for r in runs))
    known = set(Config.names()).union(*(resolve(name).Params.names() for name in names))
    unknown = sorted(set(_set_names(run_args)) - known)
    if unknown:
        raise ConfigError(f"--set: unknown parameter(s) {', '.join(unknown)} (neither the world's nor one of "
                          f"{', '.join(names)}'s)")
    seen, worlds, sites = set(), set(), set()
    for r in runs:  # every distinct configuration once (scheduler, weights, ablations, D)
        key = (r.scheduler, r.dcs, r.weights, r.ablate)
        if key in seen:
            continue
        seen.add(key)
        _, cfg, params = build_config(r.argv(run_args))
        create(cfg.scheduler, params)
        world = replace(cfg, scheduler=Config().scheduler, weights=Config().weights, dcs=Config().dcs)
        if world not in worlds:  # the workload does not depend on the scheduler or D (only its origins do)
            worlds.add(world)
            load_workload(world, stream(world.seed, "trace"))
        if (cfg.dcs, cfg.start, cfg.hours) not in sites:
            sites.add((cfg.dcs, cfg.start, cfg.hours))
            site_signals(cfg)


SWEEP_AXES = ("scheduler", "seed", "dcs", "hours")  # set per run by the sweep itself, never by --set


def _once(items) -> tuple:
    """The items in their order, each once (a name or value given twice is run once)."""
    return tuple(dict.fromkeys(items))


def sweeps_from_args(kind: str, a: argparse.Namespace) -> list:
    if a.seeds < 1:
        raise ConfigError(f"--seeds {a.seeds}: need at least 1")
    if a.workers < 1:
        raise ConfigError(f"--workers {a.workers}: need at least 1")
    if a.protocol in TRAINED and a.train_days < 1:
        raise ConfigError(f"--train-days {a.train_days}: the trained protocol needs at least 1")
    seeds = tuple(range(a.first_seed, a.first_seed + a.seeds))
    root = Path(a.out)
    run_args = _run_args(a)
    axes = SWEEP_AXES + (("weights",) if kind in ("pareto", "paper") else ()) + (
        ("marlin_ablate",) if kind in ("ablate", "paper") else ())
    fixed = sorted(set(_set_names(run_args)) & set(axes))
    if fixed:
        raise ConfigError(f"--set {', '.join(fixed)}: a sweep sets {'it' if len(fixed) == 1 else 'them'} for each "
                          f"run; use the sweep's own flags (--schedulers, --seeds / --first-seed, --dcs / --dcs-list, "
                          "--hours, --weights, --ablations)")
    out = []
    kinds = KINDS if kind == "paper" else (kind,)
    for k in kinds:
        if k in ("compare", "scale"):
            names = _once(s.strip() for s in a.schedulers.split(",") if s.strip()) if a.schedulers is not None \
                else default_schedulers()
            if not names:
                raise ConfigError("--schedulers: no scheduler named")
        if k == "compare":
            runs = compare_runs(names, seeds, a.dcs, a.hours)
            settings = {"schedulers": list(names), "seeds": list(seeds), "dcs": [a.dcs]}
        elif k == "scale":
            dcs_list = _once(_int_list(a.dcs_list, "--dcs-list"))
            if not dcs_list:
                raise ConfigError("--dcs-list: no datacenter count given")
            _check_load(a.load, run_args)
            runs = scale_runs(names, seeds, dcs_list, a.hours, a.load)
            settings = {"schedulers": list(names), "seeds": list(seeds), "dcs": list(dcs_list), "load": a.load}
        elif k == "ablate":
            abl = _once(x.strip() for x in a.ablations.split(",") if x.strip())
            if not abl:
                raise ConfigError("--ablations: no ablation named")
            runs = ablate_runs(abl, seeds, a.dcs, a.hours)
            settings = {"schedulers": [ABLATION_BASE], "seeds": list(seeds), "dcs": [a.dcs], "ablations": list(abl)}
        else:
            wl = _once(_weights_list(a.weights))
            runs = pareto_runs(wl, seeds, a.dcs, a.hours)
            settings = {"schedulers": [ABLATION_BASE], "seeds": list(seeds), "dcs": [a.dcs],
                        "weights": [list(w) for w in wl]}
        _check(runs, run_args)
        settings["protocol"] = a.protocol
        if a.protocol in TRAINED:
            settings["train_days"] = a.train_days
        out.append(Sweep(k, root / k, runs, a.hours, run_args, settings))
    if kind == "paper":  # scale at the compare D and ablate's full MARLIN repeat compare's runs: link them
        done = {_identity(r): f"../compare/{r.name}" for r in out[0].runs}
        for sw in out[1:]:
            sw.runs = [replace(r, same_as=done.get(_identity(r))) for r in sw.runs]
    return out


def _check_load(load: str, run_args: list) -> None:
    """`--load paper` sets each run's reference fleet itself: refuse a sweep that also sets it, or sets a
    numeric load (which the paper's rule would not apply to)."""
    if load != "paper":
        return
    if "reference_dcs" in _set_names(run_args):
        raise ConfigError("--load paper sets reference_dcs to each run's D; use --load fixed to set it yourself")
    scale = dict(zip(run_args[::2], run_args[1::2])).get("--load-scale")
    if scale is not None and scale != "auto":
        raise ConfigError(f"--load-scale {scale}: a fixed multiplier goes with --load fixed (--load paper is the "
                          "auto load at each D)")


def _identity(r: RunSpec) -> tuple:
    return r.scheduler, r.dcs, r.seed, r.hours, r.weights, tuple(r.ablate), r.reference_dcs


def main(argv: list) -> int:
    """`run.py {compare|scale|ablate|pareto|paper} ...`: 0 all runs done, 1 some failed, 2 bad input, 130 / 143 /
    129 stopped by Ctrl-C / SIGTERM / SIGHUP (finished runs kept, no process or half-written folder left)."""
    from schedulers.options import command
    from simcore import interrupts

    kind = argv[0]
    try:
        a = _parser(kind).parse_args(argv[1:])
        sweeps = sweeps_from_args(kind, a)
        for sw in sweeps:  # a folder holding a different sweep, or files no sweep wrote, is refused before any run
            check_folder(sw.path)
            _merge_manifest(sw)
        failed = 0
        for sw in sweeps:
            res = execute(sw, a.workers, a.executor, progress=not a.no_progress)
            failed += len(res.failures)
            print(f"{sw.kind}: {len(res.ran)} run, {len(res.skipped)} already done, {len(res.failures)} failed, "
                  f"{res.wall_s:.1f} s, {sw.protocol} protocol -> {sw.path}/")
            for f in res.failures:
                print(f"  FAILED {f['run']}: {f['error']}")
            for p in res.set_aside:
                print(f"  an incomplete folder was kept as {p}")
    except SimError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        interrupts.ignore_stops()
        print(f"{interrupts.word(e)}: finished runs are kept; the same command resumes the sweep", file=sys.stderr)
        return interrupts.exit_code(e)
    print(f"report: {command()} report {a.out}")
    return 1 if failed else 0
