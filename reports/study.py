"""Read a study folder (one or more sweeps of `reports.experiments`) into one table of runs; files only.

A study folder is either one sweep folder (it holds `sweep.json`) or a folder of sweeps (`DIR/<kind>/sweep.json`,
as `python run.py compare|scale|ablate|pareto|paper --out DIR` writes them). Each run listed in a manifest is
read from its folder's `summary.json`; a run without one is listed as missing, and the manifest's
`failures.json` says why where the run failed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports.experiments import FAILURES, MANIFEST, SUMMARY, family
from simcore.errors import ConfigError

METRICS = {  # summary.json key -> (label, unit); the first four are the paper's objectives (Fig. 3)
    "ttft_mean_s": ("TTFT mean", "s"),
    "carbon_kg": ("carbon", "kg CO2e"),
    "water_l": ("water", "L"),
    "cost_usd": ("energy cost", "USD"),
    "ttft_total_s": ("TTFT total", "s"),
    "ttft_p99_s": ("TTFT p99", "s"),
    "energy_kwh": ("energy", "kWh"),
    "embodied_carbon_kg": ("embodied carbon", "kg CO2e"),  # the hardware's share (NaN in runs written before it)
    "embodied_attributable_kg": ("embodied, serving", "kg CO2e"),  # of it, the nodes kept warm or busy
    "sla_violation_rate": ("SLA violation rate", ""),
    "slo_attainment": ("SLO attainment", ""),
    "goodput_rps": ("goodput", "req/s"),
    "requests_served": ("requests served", ""),
    "requests_unserved": ("requests unserved", ""),
    "drain_h": ("drain", "h"),
    "energy_wh_per_request": ("energy per request", "Wh"),
    "carbon_g_per_request": ("carbon per request", "g"),
    "water_ml_per_request": ("water per request", "mL"),
    "cost_usd_per_1k_requests": ("cost per 1k requests", "USD"),
    "wall_s": ("wall time", "s"),
}
# The four objectives of the figures, the hypervolume and the claims. Mean TTFT rather than total: the total
# also falls when a scheduler leaves requests unserved at the horizon, the mean does not reward that.
OBJECTIVE_KEYS = ("ttft_mean_s", "carbon_kg", "water_l", "cost_usd")
RATES = ("sla_violation_rate", "slo_attainment")  # shares in [0, 1]; every other metric is a non-negative quantity
HIGHER_IS_BETTER = ("slo_attainment", "goodput_rps", "requests_served")

DISPLAY = {
    "marlin": "MARLIN-Balanced", "marlin-balanced": "MARLIN-Balanced", "marlin-minlatency": "MARLIN-MinLatency",
    "marlin-mincarbon": "MARLIN-MinCarbon", "marlin-minwater": "MARLIN-MinWater", "marlin-mincost": "MARLIN-MinCost",
    "helix": "Helix", "splitwise": "Splitwise", "nsga2": "NSGA-II", "perllm": "PerLLM", "slit": "SLIT",
    "qlearning": "QLearning", "ddqn": "DDQN", "actorcritic": "ActorCritic",
}
FAMILY_ORDER = ("marlin", "heuristic", "rl", "reference", "other")


def display(label: str) -> str:
    """The paper's name of a scheduler label (others unchanged); "marlin[no-veto]" -> "MARLIN-Balanced [no-veto]"."""
    base, bracket, rest = label.partition("[")
    return DISPLAY.get(base, base) + (f" [{rest}" if bracket else "")


@dataclass
class Study:
    root: Path
    runs: pd.DataFrame  # one row per finished run: kind, run, label, scheduler, family, dcs, seed, hours, metrics
    sweeps: list = field(default_factory=list)  # (folder, manifest)
    missing: list = field(default_factory=list)  # {"kind", "run", "error"}: listed but without summary.json

    def kind(self, kind: str) -> pd.DataFrame:
        return self.runs[self.runs["kind"] == kind] if len(self.runs) else self.runs


def sweep_folders(root: Path) -> list:
    """Folders holding a sweep manifest: root itself, or its immediate subfolders (sorted)."""
    if (root / MANIFEST).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file()) if root.is_dir() else []


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None


def load(root: str | Path) -> Study:
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"report {root}: no such folder")
    folders = sweep_folders(root)
    if not folders:
        raise ConfigError(f"report {root}: no {MANIFEST} in it or its subfolders "
                          "(make one with python run.py compare|scale|ablate|pareto --out DIR)")
    rows, sweeps, missing = [], [], []
    for folder in folders:
        man = _read_json(folder / MANIFEST)
        sweeps.append((folder, man))
        kind = man.get("kind", folder.name)
        failed = {f["run"]: f["error"] for f in _read_json(folder / FAILURES)} if (folder / FAILURES).is_file() else {}
        for r in man.get("runs", []):
            path = folder / r["name"] / SUMMARY
            if not path.is_file():
                missing.append({"kind": kind, "run": r["name"], "error": failed.get(r["name"], "not run yet")})
                continue
            s = _read_json(path)
            row = {"kind": kind, "run": r["name"], "label": r["label"], "scheduler": r["scheduler"],
                   "family": family(r["scheduler"]), "dcs": int(r["dcs"]), "seed": int(r["seed"]),
                   "hours": float(r["hours"]), "weights": tuple(r["weights"]) if r.get("weights") else None,
                   "ablate": tuple(r.get("ablate") or ())}
            row.update({k: (float(s[k]) if s.get(k) is not None else float("nan")) for k in METRICS})
            rows.append(row)
    cols = ["kind", "run", "label", "scheduler", "family", "dcs", "seed", "hours", "weights", "ablate", *METRICS]
    return Study(root, pd.DataFrame(rows, columns=cols), sweeps, missing)


def label_order(df: pd.DataFrame) -> list:
    """Labels sorted by family (MARLIN, heuristics, RL, references, others), then by first appearance."""
    first = {}
    for lab, fam in zip(df["label"], df["family"]):
        first.setdefault(lab, fam)
    return sorted(first, key=lambda lab: (FAMILY_ORDER.index(first[lab]), list(first).index(lab)))
