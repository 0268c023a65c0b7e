"""The numbers of a study report, from the table of runs (`reports.study`): intervals, hypervolumes, claims.

- `interval_table`: per (label, D) and metric, the mean over seeds and its 95 % t-interval (Fig. 3, Fig. 5).
- `hypervolume_table` (Fig. 4): per D of the compare / pareto runs, each framework's PHV on the four objectives
  normalized over the study, reference point = the worst observed value (+ `REF_OFFSET`, see
  `reports.hypervolume`). Frameworks: MARLIN = every MARLIN run (the five variants and the `--weights` sweep,
  every seed); each RL baseline = its runs, one point per seed; heuristics, references and plug-ins = one point,
  the mean over seeds (the paper: "the population of points along the Pareto front was 1 for heuristic
  frameworks"). `phv_pct_of_marlin` = PHV / MARLIN's PHV x 100.
- `ablation_table` (Fig. 6): MARLIN full vs each ablation switch, each with its seeds as points, normalized over
  the ablation study; `phv_norm` = PHV / full's PHV.
- `reproduction_table`: each headline claim of the paper (constants `CLAIMS`, with their section) beside our
  measured value. Metric claims compare means over seeds: measured delta = (subject - versus) / versus x 100,
  its 95 % interval from Welch's interval of the difference; verdict "holds" when the two schedulers' 95 %
  intervals do not overlap and the difference has the claimed sign, "does not hold" when they do not overlap and
  it has the other sign, "inconclusive" when they overlap (or a side has fewer than two seeds). Bound claims
  ("at most 23.61 % slower", "at least 18.66 % less water": `Claim.bound`) hold when the whole interval of the
  delta is at or below the paper's value, do not hold when it is wholly above, else are inconclusive. PHV
  claims have no interval (one front per framework); their verdict is the sign alone. Metric claims are judged
  twice: against the best of the group by the paper's rule, and against the best of the group among the
  schedulers that serve their load (mean SLA violation share <= `SLA_GATE`; `versus_sla_label`,
  `measured_sla_pct`, `verdict_sla`): in a capacity-true world the lowest carbon, water or cost can come from
  requests left unserved, which the paper's four objectives do not count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.experiments import ABLATION_BASE, BASELINES, DEFAULT_DCS, HEURISTICS, MARLIN_VARIANTS, RL_BASELINES
from reports.hypervolume import REF_OFFSET, study_hypervolumes
from reports.stats import Interval, diff_ci, mean_ci, overlap
from reports.study import METRICS, OBJECTIVE_KEYS, Study, display, label_order

MARLIN_FRAMEWORK = "MARLIN"  # the name of MARLIN's one front in the hypervolume table
SLA_GATE = 0.01  # a scheduler serves its load when at most this share of its requests violate the SLA (the bar
# the fill-* references meet, 0.14-0.17 % on the default day)
SLA_METRIC = "sla_violation_rate"


# --- intervals --------------------------------------------------------------------------------------------------
def interval_table(runs: pd.DataFrame, metrics=tuple(METRICS)) -> pd.DataFrame:
    """Long table: label, family, dcs, hours, metric, n, mean, ci_low, ci_high (one row per group and metric)."""
    rows = []
    if runs.empty:
        return pd.DataFrame(columns=["label", "family", "dcs", "hours", "metric", "n", "mean", "ci_low", "ci_high"])
    order = {lab: i for i, lab in enumerate(label_order(runs))}
    for (lab, d, h), g in runs.groupby(["label", "dcs", "hours"], sort=False):
        for m in metrics:
            ci = mean_ci(g[m])
            rows.append({"label": lab, "family": g["family"].iloc[0], "dcs": d, "hours": h, "metric": m,
                         "n": ci.n, "mean": ci.mean, "ci_low": ci.low, "ci_high": ci.high})
    out = pd.DataFrame(rows)
    return out.sort_values(["dcs", "label"], key=lambda s: s.map(order) if s.name == "label" else s,
                           kind="stable").reset_index(drop=True)


def _interval(runs: pd.DataFrame, label: str, metric: str) -> Interval:
    return mean_ci(runs.loc[runs["label"] == label, metric])


# --- hypervolume ------------------------------------------------------------------------------------------------
def framework_points(runs: pd.DataFrame) -> tuple:
    """(name -> raw objective points, name -> family) under the paper's per-framework rule (module docstring)."""
    points, fam = {}, {}
    marlin = runs[runs["family"] == "marlin"]
    if len(marlin):
        points[MARLIN_FRAMEWORK] = marlin[list(OBJECTIVE_KEYS)].to_numpy(float)
        fam[MARLIN_FRAMEWORK] = "marlin"
    for lab in label_order(runs):
        g = runs[runs["label"] == lab]
        f = g["family"].iloc[0]
        if f == "marlin":
            continue
        p = g[list(OBJECTIVE_KEYS)].to_numpy(float)
        points[lab] = p if f == "rl" else p.mean(axis=0, keepdims=True)
        fam[lab] = f
    return points, fam


def hypervolume_table(study: Study, ref_offset: float = REF_OFFSET) -> pd.DataFrame:
    runs = study.runs[study.runs["kind"].isin(["compare", "pareto"])].dropna(subset=list(OBJECTIVE_KEYS))
    rows = []
    for (d, h), g in runs.groupby(["dcs", "hours"]):
        points, fam = framework_points(g)
        hv = study_hypervolumes(points, ref_offset)
        base = hv.get(MARLIN_FRAMEWORK, {}).get("phv", math.nan)
        for name, v in hv.items():
            pct = 100.0 * v["phv"] / base if base and base > 0 else math.nan
            rows.append({"dcs": d, "hours": h, "framework": name, "family": fam[name], "points": v["points"],
                         "front": v["front"], "phv": v["phv"], "phv_pct_of_marlin": pct})
    cols = ["dcs", "hours", "framework", "family", "points", "front", "phv", "phv_pct_of_marlin"]
    return pd.DataFrame(rows, columns=cols)


def ablation_table(study: Study, ref_offset: float = REF_OFFSET) -> pd.DataFrame:
    runs = study.kind("ablate").dropna(subset=list(OBJECTIVE_KEYS))
    rows = []
    for (d, h), g in runs.groupby(["dcs", "hours"]):
        labels = label_order(g)
        points = {lab: g.loc[g["label"] == lab, list(OBJECTIVE_KEYS)].to_numpy(float) for lab in labels}
        hv = study_hypervolumes(points, ref_offset)
        full = hv.get(ABLATION_BASE, {}).get("phv", math.nan)
        for lab in labels:
            sub = g[g["label"] == lab]
            ratio = hv[lab]["phv"] / full if full and full > 0 else math.nan
            row = {"dcs": d, "hours": h, "label": lab, "ablation": ",".join(sub["ablate"].iloc[0]) or "full",
                   "seeds": len(sub), "phv": hv[lab]["phv"], "phv_norm": ratio,
                   "phv_loss_pct": 100.0 * (1.0 - ratio) if not math.isnan(ratio) else math.nan}
            row.update({m: float(sub[m].mean()) for m in OBJECTIVE_KEYS})
            rows.append(row)
    cols = ["dcs", "hours", "label", "ablation", "seeds", "phv", "phv_norm", "phv_loss_pct", *OBJECTIVE_KEYS]
    return pd.DataFrame(rows, columns=cols)


# --- the paper's claims -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One claim: `subject` vs `versus` on `metric` differs by `claimed_pct` % (None: only its sign, `sign`)."""

    section: str
    text: str
    metric: str  # a summary key, or "phv" (Fig. 4) / "ablation-phv" (Fig. 6)
    subject: str  # a label, or best-marlin / best-baseline / best-rl / best-heuristic / best-reference
    versus: str
    claimed_pct: float | None
    sign: int = -1  # -1: the subject is lower (better); +1: higher
    dcs: int | None = None  # None: the comparison's D (DEFAULT_DCS where the study has it, else its first D)
    scale: bool = False  # a Fig. 5 claim: at `dcs` if the scale sweep has it, else at its largest D
    bound: bool = False  # "at most / at least": the measured delta must stay on the good side of claimed_pct


_M = dict(zip(("ttft", "carbon", "water", "cost"), OBJECTIVE_KEYS))
CLAIMS = (
    # Section 6.1 (and the conclusion's rounded 18 / 33 / 43 / 11 %): each single-metric MARLIN variant vs the
    # best baseline on that metric (the paper: QLearning, QLearning, DDQN, ActorCritic).
    Claim("6.1", "MARLIN-MinLatency reduces TTFT by 18.67 % over the best baseline (QLearning)",
          _M["ttft"], "best-marlin", "best-baseline", -18.67),
    Claim("6.1", "MARLIN-MinCarbon reduces carbon 33.61 % more than the best baseline (QLearning)",
          _M["carbon"], "best-marlin", "best-baseline", -33.61),
    Claim("6.1", "MARLIN-MinWater reduces water 43.88 % more than the best baseline (DDQN)",
          _M["water"], "best-marlin", "best-baseline", -43.88),
    Claim("6.1", "MARLIN-MinCost reduces cost 11.72 % more than the best baseline (ActorCritic)",
          _M["cost"], "best-marlin", "best-baseline", -11.72),
    # Our stricter bar (no claim in the paper): the best MARLIN variant vs the best reference scheduler.
    Claim("ours", "the best MARLIN variant beats the best reference scheduler on TTFT",
          _M["ttft"], "best-marlin", "best-reference", None),
    Claim("ours", "... on carbon", _M["carbon"], "best-marlin", "best-reference", None),
    Claim("ours", "... on water", _M["water"], "best-marlin", "best-reference", None),
    Claim("ours", "... on cost", _M["cost"], "best-marlin", "best-reference", None),
    # Section 6.1: MARLIN-Balanced vs the RL baselines and the heuristics.
    Claim("6.1", "MARLIN-Balanced is at most 23.61 % slower in TTFT than the best RL baseline (QLearning)",
          _M["ttft"], "marlin", "best-rl", 23.61, sign=+1, bound=True),
    Claim("6.1", "MARLIN-Balanced is at most 2.77 % higher in carbon than the best RL baseline (QLearning)",
          _M["carbon"], "marlin", "best-rl", 2.77, sign=+1, bound=True),
    Claim("6.1", "MARLIN-Balanced reduces water by at least 18.66 % vs the best RL baseline (DDQN)",
          _M["water"], "marlin", "best-rl", -18.66, bound=True),
    Claim("6.1", "MARLIN-Balanced reduces cost by at least 18.94 % vs the best RL baseline (ActorCritic)",
          _M["cost"], "marlin", "best-rl", -18.94, bound=True),
    Claim("6.1", "MARLIN-Balanced outperforms the heuristics on carbon", _M["carbon"], "marlin", "best-heuristic", None),
    Claim("6.1", "... on water", _M["water"], "marlin", "best-heuristic", None),
    Claim("6.1", "... on cost", _M["cost"], "marlin", "best-heuristic", None),
    Claim("6.1", "MARLIN-Balanced vs SLIT: TTFT -2.29 %", _M["ttft"], "marlin", "slit", -2.29),
    Claim("6.1", "MARLIN-Balanced vs SLIT: carbon -61.07 %", _M["carbon"], "marlin", "slit", -61.07),
    Claim("6.1", "MARLIN-Balanced vs SLIT: water -81.11 %", _M["water"], "marlin", "slit", -81.11),
    Claim("6.1", "MARLIN-Balanced vs SLIT: cost -60.90 %", _M["cost"], "marlin", "slit", -60.90),
    # Section 6.1, Fig. 4: PHV as a share of MARLIN's (subject's PHV / MARLIN's - 100 %).
    Claim("6.1", "SLIT covers 40.09 % of MARLIN's hypervolume (-59.91 %)", "phv", "slit", MARLIN_FRAMEWORK, -59.91),
    Claim("6.1", "the best RL baseline covers at most 68.27 % of MARLIN's hypervolume (-31.73 %)", "phv", "best-rl",
          MARLIN_FRAMEWORK, -31.73),
    # Section 6.2 (12 datacenters): MARLIN-Balanced vs SLIT.
    Claim("6.2", "at 12 DCs MARLIN-Balanced vs SLIT: TTFT -4.66 %", _M["ttft"], "marlin", "slit", -4.66, dcs=12, scale=True),
    Claim("6.2", "at 12 DCs MARLIN-Balanced vs SLIT: carbon -65.22 %", _M["carbon"], "marlin", "slit", -65.22, dcs=12, scale=True),
    Claim("6.2", "at 12 DCs MARLIN-Balanced vs SLIT: water -81.7 %", _M["water"], "marlin", "slit", -81.7, dcs=12, scale=True),
    Claim("6.2", "at 12 DCs MARLIN-Balanced vs SLIT: cost -56.59 %", _M["cost"], "marlin", "slit", -56.59, dcs=12, scale=True),
    # Section 6.3, Fig. 6: PHV of an ablation vs the full framework (ablation's PHV / full's - 100 %).
    Claim("6.3", "without the veto, MARLIN's PHV decreases 14.9 %", "ablation-phv", "marlin[no-veto]",
          ABLATION_BASE, -14.9),
    Claim("6.3", "without the phase-2 blending, MARLIN's PHV decreases 66.5 %", "ablation-phv", "marlin[no-blend]",
          ABLATION_BASE, -66.5),
    Claim("6.3", "the full framework's PHV exceeds the best ablation's by at least 14.6 % (best ablation "
          "-12.7 % of full)", "ablation-phv", "best-ablation", ABLATION_BASE, -12.74),
)
GROUPS = {"best-marlin": MARLIN_VARIANTS, "best-baseline": BASELINES, "best-rl": RL_BASELINES,
          "best-heuristic": HEURISTICS}


def _pick(runs: pd.DataFrame, selector: str, metric: str, refs: tuple, gate: float | None = None) -> str | None:
    """The label a selector names: the lowest mean on `metric` within a group (with `gate`, among the group's
    labels whose mean SLA violation share is at most `gate`), or the label itself."""
    present = set(runs["label"])
    group = refs if selector == "best-reference" else GROUPS.get(selector)
    if group is None:
        return selector if selector in present else None
    if gate is not None:
        sla = runs.groupby("label")[SLA_METRIC].mean() if SLA_METRIC in runs else pd.Series(dtype=float)
        present = {lab for lab in present if lab in sla.index and sla[lab] <= gate}
    means = {lab: runs.loc[runs["label"] == lab, metric].mean() for lab in group if lab in present}
    means = {k: v for k, v in means.items() if not math.isnan(v)}
    return min(means, key=means.get) if means else None


def _verdict(sub: Interval, ver: Interval, sign: int) -> str:
    if sub.n < 2 or ver.n < 2 or overlap(sub, ver):
        return "inconclusive"
    lower = sub.high < ver.low
    return "holds" if lower == (sign < 0) else "does not hold"


def _metric_row(c: Claim, runs: pd.DataFrame, refs: tuple) -> dict:
    """The claim against the best of its group by the paper's rule, and against the best that serves its load."""
    row = _compare(c, runs, refs, None)
    gated = _compare(c, runs, refs, SLA_GATE)
    return {**row, "versus_sla_label": gated.get("versus_label"), "measured_sla_pct": gated.get("measured_pct"),
            "verdict_sla": gated["verdict"]}


def _compare(c: Claim, runs: pd.DataFrame, refs: tuple, gate: float | None) -> dict:
    sub, ver = _pick(runs, c.subject, c.metric, refs), _pick(runs, c.versus, c.metric, refs, gate)
    row = {"subject_label": sub, "versus_label": ver}
    if sub is None or ver is None:
        return {**row, "verdict": "no data"}
    a, b = runs.loc[runs["label"] == sub, c.metric], runs.loc[runs["label"] == ver, c.metric]
    si, vi, d = mean_ci(a), mean_ci(b), diff_ci(a, b)
    scale = 100.0 / vi.mean if vi.mean else math.nan
    low, high = d.low * scale, d.high * scale
    inside = (low <= c.claimed_pct <= high) if c.claimed_pct is not None and not math.isnan(low) else None
    if c.bound:  # "at most claimed_pct": our whole interval of the delta must lie at or below it
        verdict = "inconclusive" if math.isnan(low) or low <= c.claimed_pct < high else \
            ("holds" if high <= c.claimed_pct else "does not hold")
    else:
        verdict = _verdict(si, vi, c.sign)
    return {**row, "subject_mean": si.mean, "versus_mean": vi.mean, "measured_pct": d.mean * scale,
            "ci_low_pct": low, "ci_high_pct": high, "claimed_in_ci": inside, "verdict": verdict}


def _sign_verdict(measured: float, sign: int) -> str:
    if math.isnan(measured):
        return "no data"
    return "holds" if (measured < 0) == (sign < 0) and measured != 0 else "does not hold"


def _claim_dcs(c: Claim, runs: pd.DataFrame, kinds: tuple) -> int | None:
    have = sorted(runs.loc[runs["kind"].isin(kinds), "dcs"].unique())
    if not have:
        return None
    want = c.dcs if c.dcs is not None else DEFAULT_DCS
    if want in have:
        return int(want)
    return int(have[-1] if c.scale else have[0])


def reproduction_table(study: Study, hv: pd.DataFrame, abl: pd.DataFrame, refs: tuple) -> pd.DataFrame:
    """One row per claim of `CLAIMS` (module docstring: how a verdict is reached)."""
    runs = study.runs
    rows = []
    for c in CLAIMS:
        row = {"section": c.section, "claim": c.text, "metric": c.metric, "paper_pct": c.claimed_pct}
        if c.metric == "phv":
            d = _claim_dcs(c, runs, ("compare", "pareto"))
            t = hv[hv["dcs"] == d]
            rl = t[t["family"] == "rl"]
            name = (rl.loc[rl["phv"].idxmax(), "framework"] if len(rl) else None) if c.subject == "best-rl" \
                else (c.subject if c.subject in set(t["framework"]) else None)
            pct = float(t.loc[t["framework"] == name, "phv_pct_of_marlin"].iloc[0]) - 100.0 if name else math.nan
            row.update({"dcs": d, "subject_label": name, "versus_label": c.versus, "measured_pct": pct,
                        "verdict": _sign_verdict(pct, c.sign)})
        elif c.metric == "ablation-phv":
            d = _claim_dcs(c, runs, ("ablate",))
            t = abl[abl["dcs"] == d]
            others = t[t["label"] != c.versus]
            name = (others.loc[others["phv"].idxmax(), "label"] if len(others) else None) \
                if c.subject == "best-ablation" else (c.subject if c.subject in set(t["label"]) else None)
            pct = float(t.loc[t["label"] == name, "phv_norm"].iloc[0]) * 100.0 - 100.0 if name else math.nan
            row.update({"dcs": d, "subject_label": name, "versus_label": c.versus, "measured_pct": pct,
                        "verdict": _sign_verdict(pct, c.sign)})
        else:
            kind = "scale" if c.scale else "compare"
            d = _claim_dcs(c, runs, (kind,))
            g = runs[(runs["kind"] == kind) & (runs["dcs"] == d)]
            if len(g):
                g = g[g["hours"] == g["hours"].max()]
            row.update({"dcs": d, **(_metric_row(c, g, refs) if len(g) else {"verdict": "no data"})})
        rows.append(row)
    cols = ["section", "claim", "metric", "dcs", "subject_label", "versus_label", "subject_mean", "versus_mean",
            "paper_pct", "measured_pct", "ci_low_pct", "ci_high_pct", "claimed_in_ci", "verdict",
            "versus_sla_label", "measured_sla_pct", "verdict_sla"]
    return pd.DataFrame(rows).reindex(columns=cols)


def wide_intervals(stats: pd.DataFrame, metrics=OBJECTIVE_KEYS) -> pd.DataFrame:
    """One row per (label, dcs): n and 'mean [low, high]' text per metric (for the Markdown / HTML tables)."""
    out = []
    for (lab, d), g in stats.groupby(["label", "dcs"], sort=False):
        row = {"scheduler": display(lab), "D": int(d), "seeds": int(g["n"].max())}
        for m in metrics:
            r = g[g["metric"] == m].iloc[0]
            row[f"{METRICS[m][0]} ({METRICS[m][1]})"] = fmt_interval(r["mean"], r["ci_low"], r["ci_high"])
        out.append(row)
    return pd.DataFrame(out)


def fmt_num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 0.01 or a == 0:
        return f"{x:.4g}"
    return f"{x:.3g}"


def fmt_interval(mean: float, low: float, high: float) -> str:
    if math.isnan(low):
        return fmt_num(mean)
    return f"{fmt_num(mean)} [{fmt_num(low)}, {fmt_num(high)}]"


def seeds_of(runs: pd.DataFrame) -> np.ndarray:
    return np.sort(runs["seed"].unique())
