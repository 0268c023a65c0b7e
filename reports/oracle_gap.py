"""Every scheduler's gap to the LP oracle's hindsight bound (`oracle-hindsight`, schedulers/oracle.py), per
objective: the report's 'Gap to the LP oracle' section and `oracle_gap.csv` (issue 18, item 5).

For each sweep kind, D and horizon that holds `oracle-hindsight` runs, every label's mean over seeds of the four
objectives (mean TTFT, carbon, water, energy cost) beside the bound's mean over its seeds, and the gap
100 x (mean - bound) / bound in %. The bound minimises the run's Eq. 11 weighted sum (equal weights by default)
under the LP's linear model of the world, so a single-objective scheduler can beat it on its one metric (a
negative gap), and the engine's measurement of the bound carries the model's error; the SLA column says which
schedulers serve their load (`reports.analysis.SLA_GATE`). Reads only the study's table of runs.
"""
from __future__ import annotations

import pandas as pd

from reports.analysis import SLA_GATE
from reports.study import METRICS, OBJECTIVE_KEYS, display, label_order

BOUND = "oracle-hindsight"
TABLE = "oracle_gap.csv"  # the file the report writes from this module
_SHORT = {"ttft_mean_s": "ttft", "carbon_kg": "carbon", "water_l": "water", "cost_usd": "cost"}
COLUMNS = ["kind", "dcs", "hours", "label", "seeds", "sla_violation_rate", "serves_load",
           *[c for k in OBJECTIVE_KEYS for c in (k, f"{_SHORT[k]}_gap_pct")]]


def oracle_gap_table(runs: pd.DataFrame, gate: float = SLA_GATE) -> pd.DataFrame:
    """One row per (kind, dcs, hours, label) of the groups that hold `oracle-hindsight` runs (COLUMNS); a label
    serves its load when its mean SLA violation share is at most `gate` (the report's --sla-gate)."""
    rows = []
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    for (kind, dcs, hours), g in runs.groupby(["kind", "dcs", "hours"], sort=True):
        bound = g[g["label"] == BOUND]
        if bound.empty:
            continue
        ref = bound[list(OBJECTIVE_KEYS)].mean()
        for label in label_order(g):
            r = g[g["label"] == label]
            mean = r[[*OBJECTIVE_KEYS, "sla_violation_rate"]].mean()
            row = {"kind": kind, "dcs": int(dcs), "hours": float(hours), "label": label, "seeds": len(r),
                   "sla_violation_rate": float(mean["sla_violation_rate"]),
                   "serves_load": bool(mean["sla_violation_rate"] <= gate)}
            for k in OBJECTIVE_KEYS:
                row[k] = float(mean[k])
                row[f"{_SHORT[k]}_gap_pct"] = 100.0 * (mean[k] - ref[k]) / ref[k] if ref[k] else float("nan")
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def add_section(doc, runs: pd.DataFrame, gate: float = SLA_GATE) -> dict:
    """Append the section to a `reports.report.Doc` (nothing where no group holds the bound); returns the CSV
    table {"oracle_gap.csv": DataFrame}."""
    t = oracle_gap_table(runs, gate)
    if len(t):
        doc.h(2, "Gap to the LP oracle (oracle-hindsight)")
        doc.p(f"Each scheduler's mean over seeds against {BOUND}, the routing LP solved on each epoch's true "
              "arrivals (a lower bound, not deployable; schedulers/oracle.py): gap = 100 x (mean - bound) / bound, "
              "in %, lower is better. The bound minimises the run's Eq. 11 weighted sum under the LP's linear "
              "model, so a single-objective scheduler can beat it on its one metric (a negative gap). 'serves "
              f"load': mean SLA violation share <= {gate * 100:g} %.")
        for (kind, dcs, hours), g in t.groupby(["kind", "dcs", "hours"], sort=True):
            doc.p(f"{kind}, D = {dcs}, {hours:g} h:")
            show = pd.DataFrame({"scheduler": g["label"].map(display), "seeds": g["seeds"],
                                 "SLA violations (%)": 100.0 * g["sla_violation_rate"],
                                 "serves load": g["serves_load"]})
            for k in OBJECTIVE_KEYS:
                show[f"{METRICS[k][0]} gap (%)"] = g[f"{_SHORT[k]}_gap_pct"].to_numpy()
            doc.table(show)
    return {TABLE: t}
