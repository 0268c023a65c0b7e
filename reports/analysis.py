"""The numbers of a study report, from the table of runs (`reports.study`): intervals, hypervolumes, claims.

Only runs that serve their load are judged: a scheduler is SLA-feasible at a D when its mean
`sla_violation_rate` over seeds (late or never served, over arrivals) is at most the gate (`--sla-gate`, default
`SLA_GATE`). Infeasible schedulers stay in every table, marked; they are never named best (`rank`).

- `interval_table`: per (label, D) and metric, the mean over seeds and its 95 % interval (`reports.stats`: on the
  log scale for quantities, the logit scale for rates), and `feasible` (Fig. 3, Fig. 5).
- `rank`: the best feasible scheduler on a metric, named only when its interval separates from the runner-up's,
  else the feasible ones tied with it.
- `hypervolume_table` (Fig. 4): per D of the compare / pareto runs, each framework's hypervolume twice.
  `hv_feasible`: over the feasible schedulers' points only (an infeasible one gets 0), TTFT on the log10 scale,
  every objective normalized over those feasible points, reference point = their worst value + `ref_offset`.
  `phv`: the paper's literal rule (all points, min-max over all of them, reference = the worst observed), kept
  to compare with the paper. Frameworks: MARLIN = every MARLIN run (the five variants and the `--weights` sweep,
  every seed); each RL baseline = its runs, one point per seed; heuristics, references and plug-ins = one point,
  the mean over seeds (the paper: "the population of points along the Pareto front was 1 for heuristic
  frameworks"). `*_pct_of_marlin` = the value / MARLIN's x 100.
- `ablation_table` (Fig. 6): MARLIN full vs each ablation switch, each with its seeds as points, normalized over
  the ablation study, with the same two hypervolumes; `hv_feasible_norm` = hv_feasible / full's.
- `reproduction_table`: each headline claim of the paper (constants `CLAIMS`, with their section) beside our
  measured value. Its subject is the variant the paper names (`subject`: MinLatency for TTFT, MinCarbon for
  carbon, ...; Balanced vs SLIT), and both sides are held to the gate: an infeasible subject reads "MARLIN
  infeasible", the versus side is the best feasible scheduler of its group. Metric claims compare means over
  seeds: measured delta = (subject - versus) / versus x 100, its 95 % interval from Welch's interval of the
  difference; verdict "holds" when the two schedulers' 95 % intervals do not overlap and the difference has the
  claimed sign, "does not hold" when they do not overlap and it has the other sign, "inconclusive" when they
  overlap (or a side has fewer than two seeds). Bound claims ("at most 23.61 % slower", "at least 18.66 % less
  water": `Claim.bound`) hold when the whole interval of the delta is at or below the paper's value, do not hold
  when it is wholly above, else are inconclusive. Hypervolume claims have no interval (one front per
  framework); their verdict is the sign alone, on `hv_feasible`. The paper's rule (best of the group, SLA
  ignored) is kept beside it: `versus_paper_label`, `measured_paper_pct`, `verdict_paper`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.experiments import ABLATION_BASE, BASELINES, DEFAULT_DCS, HEURISTICS, MARLIN_VARIANTS, RL_BASELINES
from reports.hypervolume import REF_OFFSET, study_hypervolumes
from reports.stats import Interval, diff_ci, mean_ci, overlap
from reports.study import HIGHER_IS_BETTER, METRICS, OBJECTIVE_KEYS, RATES, Study, display, label_order

MARLIN_FRAMEWORK = "MARLIN"  # the name of MARLIN's one front in the hypervolume table
SLA_GATE = 0.01  # default --sla-gate: a scheduler serves its load when at most this share of its arrived requests
# are late or never served (the bar the fill-* references meet on the default day)
SLA_METRIC = "sla_violation_rate"
LOG_OBJECTIVES = ("ttft_mean_s",)  # hv_feasible takes these on the log10 scale (TTFT spans 0.02 s .. hours)
INTERVAL_COLUMNS = ["label", "family", "dcs", "hours", "metric", "n", "mean", "ci_low", "ci_high", "feasible"]


def scale_of(metric: str) -> str:
    """The scale a metric's interval is computed on (`reports.stats`): rates on logit, quantities on log."""
    return "logit" if metric in RATES else "log"


def feasible_labels(runs: pd.DataFrame, gate: float) -> set:
    """The labels of `runs` whose mean SLA violation share over their runs is at most `gate` (unknown: not)."""
    if SLA_METRIC not in runs or runs.empty:
        return set()
    sla = runs.groupby("label")[SLA_METRIC].mean()
    return {lab for lab, v in sla.items() if v <= gate}


# --- intervals --------------------------------------------------------------------------------------------------
def interval_table(runs: pd.DataFrame, metrics=tuple(METRICS), gate: float = SLA_GATE) -> pd.DataFrame:
    """Long table: label, family, dcs, hours, metric, n, mean, ci_low, ci_high, feasible (one row per group and
    metric)."""
    rows = []
    if runs.empty:
        return pd.DataFrame(columns=INTERVAL_COLUMNS)
    order = {lab: i for i, lab in enumerate(label_order(runs))}
    for (lab, d, h), g in runs.groupby(["label", "dcs", "hours"], sort=False):
        feasible = bool(g[SLA_METRIC].mean() <= gate) if SLA_METRIC in g else False
        for m in metrics:
            ci = mean_ci(g[m], scale=scale_of(m))
            rows.append({"label": lab, "family": g["family"].iloc[0], "dcs": d, "hours": h, "metric": m,
                         "n": ci.n, "mean": ci.mean, "ci_low": ci.low, "ci_high": ci.high, "feasible": feasible})
    out = pd.DataFrame(rows)
    return out.sort_values(["dcs", "label"], key=lambda s: s.map(order) if s.name == "label" else s,
                           kind="stable").reset_index(drop=True)


def rank(rows: pd.DataFrame, metric: str) -> tuple:
    """(winner, tied) among the feasible rows of one metric and D (label, mean, ci_low, ci_high, feasible):
    the best mean is the winner when its interval and the runner-up's do not overlap; otherwise there is no
    winner and `tied` lists the feasible labels whose intervals overlap the best's (best first)."""
    f = rows[rows["feasible"].astype(bool) & rows["mean"].notna()]
    if f.empty:
        return None, ()
    f = f.sort_values("mean", ascending=metric not in HIGHER_IS_BETTER, kind="stable")
    iv = [Interval(0, r.mean, r.ci_low, r.ci_high) for r in f.itertuples(index=False)]
    if len(f) == 1 or not overlap(iv[0], iv[1]):
        return f["label"].iloc[0], ()
    return None, tuple(lab for lab, x in zip(f["label"], iv) if overlap(iv[0], x))


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


def _feasible_hypervolumes(points: dict, ref_offset: float) -> dict:
    """hv_feasible of each group of feasible points: TTFT on log10, normalized over these points (module doc)."""
    log = [OBJECTIVE_KEYS.index(k) for k in LOG_OBJECTIVES]
    return study_hypervolumes(points, ref_offset, log_columns=log)


def _ratio(v: float, base: float, times: float = 100.0) -> float:
    return times * v / base if base and base > 0 and not math.isnan(base) else math.nan


def hypervolume_table(study: Study, ref_offset: float = REF_OFFSET, gate: float = SLA_GATE) -> pd.DataFrame:
    runs = study.runs[study.runs["kind"].isin(["compare", "pareto"])].dropna(subset=list(OBJECTIVE_KEYS))
    rows = []
    for (d, h), g in runs.groupby(["dcs", "hours"]):
        points, fam = framework_points(g)
        hv = study_hypervolumes(points, ref_offset)
        feas_points, _ = framework_points(g[g["label"].isin(feasible_labels(g, gate))])
        hvf = _feasible_hypervolumes(feas_points, ref_offset)
        base = hv.get(MARLIN_FRAMEWORK, {}).get("phv", math.nan)
        base_f = hvf.get(MARLIN_FRAMEWORK, {}).get("phv", math.nan)
        for name, v in hv.items():
            ok = name in feas_points
            f = hvf[name]["phv"] if ok else 0.0
            rows.append({"dcs": d, "hours": h, "framework": name, "family": fam[name], "feasible": ok,
                         "points": v["points"], "feasible_points": len(feas_points[name]) if ok else 0,
                         "front": v["front"], "hv_feasible": f, "hv_feasible_pct_of_marlin": _ratio(f, base_f),
                         "phv": v["phv"], "phv_pct_of_marlin": _ratio(v["phv"], base)})
    cols = ["dcs", "hours", "framework", "family", "feasible", "points", "feasible_points", "front", "hv_feasible",
            "hv_feasible_pct_of_marlin", "phv", "phv_pct_of_marlin"]
    return pd.DataFrame(rows, columns=cols)


def ablation_table(study: Study, ref_offset: float = REF_OFFSET, gate: float = SLA_GATE) -> pd.DataFrame:
    runs = study.kind("ablate").dropna(subset=list(OBJECTIVE_KEYS))
    rows = []
    for (d, h), g in runs.groupby(["dcs", "hours"]):
        labels = label_order(g)
        points = {lab: g.loc[g["label"] == lab, list(OBJECTIVE_KEYS)].to_numpy(float) for lab in labels}
        hv = study_hypervolumes(points, ref_offset)
        feas = feasible_labels(g, gate)
        hvf = _feasible_hypervolumes({k: v for k, v in points.items() if k in feas}, ref_offset)
        full = hv.get(ABLATION_BASE, {}).get("phv", math.nan)
        full_f = hvf.get(ABLATION_BASE, {}).get("phv", math.nan)
        for lab in labels:
            sub = g[g["label"] == lab]
            ratio = _ratio(hv[lab]["phv"], full, 1.0)
            f = hvf[lab]["phv"] if lab in feas else 0.0
            row = {"dcs": d, "hours": h, "label": lab, "ablation": ",".join(sub["ablate"].iloc[0]) or "full",
                   "seeds": len(sub), "feasible": lab in feas, "hv_feasible": f,
                   "hv_feasible_norm": _ratio(f, full_f, 1.0), "phv": hv[lab]["phv"], "phv_norm": ratio,
                   "phv_loss_pct": 100.0 * (1.0 - ratio) if not math.isnan(ratio) else math.nan}
            row.update({m: float(sub[m].mean()) for m in OBJECTIVE_KEYS})
            rows.append(row)
    cols = ["dcs", "hours", "label", "ablation", "seeds", "feasible", "hv_feasible", "hv_feasible_norm", "phv",
            "phv_norm", "phv_loss_pct", *OBJECTIVE_KEYS]
    return pd.DataFrame(rows, columns=cols)


# --- the paper's claims -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One claim: `subject` vs `versus` on `metric` differs by `claimed_pct` % (None: only its sign, `sign`)."""

    section: str
    text: str
    metric: str  # a summary key, or "phv" (Fig. 4) / "ablation-phv" (Fig. 6)
    subject: str  # a label (the MARLIN variant the paper names), or best-rl (a hypervolume claim's side)
    versus: str  # a label, or best-baseline / best-rl / best-heuristic / best-reference
    claimed_pct: float | None
    sign: int = -1  # -1: the subject is lower (better); +1: higher
    dcs: int | None = None  # None: the comparison's D (DEFAULT_DCS where the study has it, else its first D)
    scale: bool = False  # a Fig. 5 claim: at `dcs` if the scale sweep has it, else at its largest D
    bound: bool = False  # "at most / at least": the measured delta must stay on the good side of claimed_pct


_M = dict(zip(("ttft", "carbon", "water", "cost"), OBJECTIVE_KEYS))
VARIANT = {_M["ttft"]: "marlin-minlatency", _M["carbon"]: "marlin-mincarbon", _M["water"]: "marlin-minwater",
           _M["cost"]: "marlin-mincost"}  # the single-metric variant the paper names for each objective
CLAIMS = (
    # Section 6.1 (and the conclusion's rounded 18 / 33 / 43 / 11 %): each single-metric MARLIN variant vs the
    # best baseline on that metric (the paper: QLearning, QLearning, DDQN, ActorCritic).
    Claim("6.1", "MARLIN-MinLatency reduces TTFT by 18.67 % over the best baseline (QLearning)",
          _M["ttft"], VARIANT[_M["ttft"]], "best-baseline", -18.67),
    Claim("6.1", "MARLIN-MinCarbon reduces carbon 33.61 % more than the best baseline (QLearning)",
          _M["carbon"], VARIANT[_M["carbon"]], "best-baseline", -33.61),
    Claim("6.1", "MARLIN-MinWater reduces water 43.88 % more than the best baseline (DDQN)",
          _M["water"], VARIANT[_M["water"]], "best-baseline", -43.88),
    Claim("6.1", "MARLIN-MinCost reduces cost 11.72 % more than the best baseline (ActorCritic)",
          _M["cost"], VARIANT[_M["cost"]], "best-baseline", -11.72),
    # Our stricter bar (no claim in the paper): each single-metric variant vs the best reference scheduler.
    Claim("ours", "MARLIN-MinLatency beats the best reference scheduler on TTFT",
          _M["ttft"], VARIANT[_M["ttft"]], "best-reference", None),
    Claim("ours", "MARLIN-MinCarbon beats the best reference scheduler on carbon",
          _M["carbon"], VARIANT[_M["carbon"]], "best-reference", None),
    Claim("ours", "MARLIN-MinWater beats the best reference scheduler on water",
          _M["water"], VARIANT[_M["water"]], "best-reference", None),
    Claim("ours", "MARLIN-MinCost beats the best reference scheduler on cost",
          _M["cost"], VARIANT[_M["cost"]], "best-reference", None),
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
GROUP_NAMES = {"best-baseline": "baseline", "best-rl": "RL baseline", "best-heuristic": "heuristic",
               "best-reference": "reference scheduler"}
INFEASIBLE = "MARLIN infeasible"  # the verdict where the claim's MARLIN side does not serve its load
VERDICTS = ("holds", "does not hold", "inconclusive", "infeasible", "no data")  # the counts the report gives


def verdict_kind(v: str) -> str:
    """The count a verdict goes in: one of VERDICTS ('MARLIN infeasible', 'SLIT infeasible', 'no feasible RL
    baseline' are 'infeasible')."""
    return v if v in VERDICTS else "infeasible"


def _infeasible(label: str) -> str:
    from reports.experiments import family

    return INFEASIBLE if family(label) == "marlin" else f"{display(label)} infeasible"


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


def _metric_row(c: Claim, runs: pd.DataFrame, refs: tuple, gate: float) -> dict:
    """The claim with both sides held to the gate, and by the paper's rule (best of the group, SLA ignored)."""
    row = _compare(c, runs, refs, gate)
    paper = _compare(c, runs, refs, None)
    return {**row, "versus_paper_label": paper.get("versus_label"), "measured_paper_pct": paper.get("measured_pct"),
            "verdict_paper": paper["verdict"]}


def _compare(c: Claim, runs: pd.DataFrame, refs: tuple, gate: float | None) -> dict:
    sub, ver = _pick(runs, c.subject, c.metric, refs), _pick(runs, c.versus, c.metric, refs, gate)
    row = {"subject_label": sub, "versus_label": ver}
    if sub is None or _pick(runs, c.versus, c.metric, refs) is None:
        return {**row, "verdict": "no data"}
    if gate is not None:
        feasible = feasible_labels(runs, gate)
        if sub not in feasible:
            return {**row, "verdict": _infeasible(sub)}
        if ver is None:
            return {**row, "verdict": f"no feasible {GROUP_NAMES.get(c.versus, c.versus)}"}
        if ver not in feasible:
            return {**row, "verdict": _infeasible(ver)}
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


def _hv_claim(t: pd.DataFrame, c: Claim, key: str, names: str, value: str, feasible_only: bool) -> dict:
    """A hypervolume claim on table `t` (hypervolume or ablation rows of one D): the subject's `value` column
    (% of MARLIN's or share of full's) against the sign; MARLIN's side must be feasible with `feasible_only`."""
    base = t[t[names] == c.versus]
    if base.empty:
        return {"subject_label": None, "versus_label": c.versus, "verdict": "no data"}
    others = t[(t[names] != c.versus) & ((t["family"] == "rl") if c.subject == "best-rl" else True)] \
        if names == "framework" else t[t[names] != c.versus]
    if feasible_only:
        others = others[others["feasible"].astype(bool)]
    if c.subject in ("best-rl", "best-ablation"):
        name = others.loc[others[key].idxmax(), names] if len(others) else None
    else:
        name = c.subject if c.subject in set(t[names]) else None
    row = {"subject_label": name, "versus_label": c.versus}
    if feasible_only and not bool(base["feasible"].iloc[0]):
        return {**row, "verdict": INFEASIBLE}
    if name is None:
        present = c.subject == "best-rl" and (t["family"] == "rl").any() if names == "framework" else False
        return {**row, "verdict": "no feasible RL baseline" if present and feasible_only else "no data"}
    if feasible_only and not bool(t.loc[t[names] == name, "feasible"].iloc[0]):
        return {**row, "verdict": f"{display(name)} infeasible"}
    scale = 100.0 if value.endswith("pct_of_marlin") else 1.0
    pct = float(t.loc[t[names] == name, value].iloc[0]) * (100.0 / scale) - 100.0
    return {**row, "measured_pct": pct, "verdict": _sign_verdict(pct, c.sign)}


def reproduction_table(study: Study, hv: pd.DataFrame, abl: pd.DataFrame, refs: tuple,
                       gate: float = SLA_GATE) -> pd.DataFrame:
    """One row per claim of `CLAIMS` (module docstring: how a verdict is reached)."""
    runs = study.runs
    rows = []
    for c in CLAIMS:
        row = {"section": c.section, "claim": c.text, "metric": c.metric, "paper_pct": c.claimed_pct,
               "subject": MARLIN_FRAMEWORK if c.versus == MARLIN_FRAMEWORK else
               (c.versus if c.metric == "ablation-phv" else c.subject)}
        if c.metric in ("phv", "ablation-phv"):
            d = _claim_dcs(c, runs, ("compare", "pareto") if c.metric == "phv" else ("ablate",))
            t = hv[hv["dcs"] == d] if c.metric == "phv" else abl[abl["dcs"] == d].assign(family="marlin")
            names, (value, paper_value) = ("framework", ("hv_feasible_pct_of_marlin", "phv_pct_of_marlin")) \
                if c.metric == "phv" else ("label", ("hv_feasible_norm", "phv_norm"))
            main = _hv_claim(t, c, "hv_feasible", names, value, True)
            paper = _hv_claim(t, c, "phv", names, paper_value, False)
            row.update({"dcs": d, **main, "versus_paper_label": paper.get("subject_label"),
                        "measured_paper_pct": paper.get("measured_pct"), "verdict_paper": paper["verdict"]})
        else:
            kind = "scale" if c.scale else "compare"
            d = _claim_dcs(c, runs, (kind,))
            g = runs[(runs["kind"] == kind) & (runs["dcs"] == d)]
            if len(g):
                g = g[g["hours"] == g["hours"].max()]
            row.update({"dcs": d, **(_metric_row(c, g, refs, gate) if len(g) else
                                     {"verdict": "no data", "verdict_paper": "no data"})})
        rows.append(row)
    cols = ["section", "claim", "metric", "dcs", "subject", "subject_label", "versus_label", "subject_mean",
            "versus_mean", "paper_pct", "measured_pct", "ci_low_pct", "ci_high_pct", "claimed_in_ci", "verdict",
            "versus_paper_label", "measured_paper_pct", "verdict_paper"]
    return pd.DataFrame(rows).reindex(columns=cols)


TABLE_METRICS = (*OBJECTIVE_KEYS, "slo_attainment")  # the columns of the Fig. 3 / Fig. 5 tables
INFEASIBLE_MARK = "✗"  # after an infeasible scheduler's name in tables


def wide_intervals(stats: pd.DataFrame, metrics=TABLE_METRICS) -> pd.DataFrame:
    """One row per (label, dcs): n and 'mean [low, high]' text per metric (for the Markdown / HTML tables);
    per D and metric the winner (`rank`) is bold (`**...**`), schedulers tied for best are marked '(tied)', and
    an infeasible scheduler's name carries `INFEASIBLE_MARK`."""
    metrics = [m for m in metrics if m in set(stats["metric"])]
    marks = {}
    for (d, m), g in stats[stats["metric"].isin(metrics)].groupby(["dcs", "metric"]):
        winner, tied = rank(g, m)
        marks.update({(d, m, winner): "best"} if winner else {(d, m, lab): "tied" for lab in tied})
    out = []
    for (lab, d), g in stats.groupby(["label", "dcs"], sort=False):
        feasible = bool(g["feasible"].iloc[0]) if "feasible" in g else True
        row = {"scheduler": display(lab) + ("" if feasible else f" {INFEASIBLE_MARK}"), "D": int(d),
               "seeds": int(g["n"].max())}
        for m in metrics:
            r = g[g["metric"] == m].iloc[0]
            text = fmt_interval(r["mean"], r["ci_low"], r["ci_high"])
            mark = marks.get((d, m, lab))
            name, unit = METRICS[m]
            row[f"{name} ({unit})" if unit else name] = f"**{text}**" if mark == "best" else \
                (f"{text} (tied)" if mark == "tied" else text)
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
