"""`python run.py report [DIR] [--hv-offset 0.01] [--sla-gate 0.01]`: a study folder -> report.md, report.html, figures/, tables.

Reads only the sweep manifests and the runs' `summary.json` (`reports.study`); writes into DIR (atomically,
temp name + rename), replacing only files of these names:
- `report.md` (figures linked from `figures/`) and `report.html` (self-contained: the same figures embedded);
- `figures/fig3_compare_d<D>.png`, `figures/fig4_hypervolume_d<D>.png`, `figures/fig5_scale.png`,
  `figures/fig6_ablation_d<D>.png` (each only where the study has the runs for it);
- `stats.csv` (kind, label, family, dcs, hours, metric, n, mean, ci_low, ci_high, feasible: mean and 95 %
  interval over seeds of every summary metric, log / logit scale, and whether the scheduler serves its load at
  that D), `hypervolume.csv` (dcs, hours, framework, family, feasible, points, feasible_points, front,
  hv_feasible, hv_feasible_pct_of_marlin, phv, phv_pct_of_marlin: the feasible hypervolume and the paper's
  rule), `ablation.csv` (dcs, hours, label, ablation, seeds, feasible, hv_feasible, hv_feasible_norm, phv,
  phv_norm, phv_loss_pct and the four objectives' means), `reproduction.csv` (section, claim, metric, dcs,
  subject (the MARLIN variant the claim is judged on), subject_label, versus_label, subject_mean, versus_mean,
  paper_pct, measured_pct, ci_low_pct, ci_high_pct, claimed_in_ci, verdict, versus_paper_label,
  measured_paper_pct, verdict_paper: the same claim by the paper's rule, SLA ignored).
`--sla-gate` (default 0.01) is the share of late or unserved requests above which a scheduler is infeasible.
How the numbers are computed: `reports.analysis` (claims, verdicts, hypervolume rule) and
`reports.hypervolume` (normalization, reference point).
"""
from __future__ import annotations

import base64
import html
import math
import sys
from pathlib import Path

import pandas as pd

from reports import analysis as an
from reports import figures, oracle_gap
from reports.experiments import DEFAULT_OUT, TRAINED, _Parser
from reports.hypervolume import REF_OFFSET
from reports.study import METRICS, OBJECTIVE_KEYS, Study, display, load
from simcore.errors import ConfigError, SimError
from simcore.results import check_replaceable, record_written, write_file_atomically

REPORT_TABLES = ("stats.csv", "hypervolume.csv", "ablation.csv", "reproduction.csv")
# the Fig. 3 / Fig. 5 tables' columns: the four objectives, with the embodied carbon (the fleet's total and the
# part attributable to serving, docs/model.md 'Embodied carbon') beside the operational carbon, and SLO attainment
TABLE_METRICS = ("ttft_mean_s", "carbon_kg", "embodied_carbon_kg", "embodied_attributable_kg", "water_l", "cost_usd",
                 "slo_attainment")


# --- a document as blocks, rendered twice -----------------------------------------------------------------------
class Doc:
    def __init__(self) -> None:
        self.blocks: list = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, df: pd.DataFrame) -> None:
        self.blocks.append(("table", df))

    def img(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", path, alt))

    def items(self, lines: list) -> None:
        self.blocks.append(("ul", lines))


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return an.fmt_num(v)
    return str(v)


def to_markdown(doc: Doc, root: Path) -> str:
    out = []
    for b in doc.blocks:
        if b[0] == "h":
            out.append("#" * b[1] + " " + b[2])
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "ul":
            out.append("\n".join(f"- {x}" for x in b[1]))
        elif b[0] == "img":
            out.append(f"![{b[2]}]({b[1].relative_to(root).as_posix()})")
        else:
            df = b[1]
            esc = lambda s: _cell(s).replace("|", "\\|")  # noqa: E731
            lines = ["| " + " | ".join(esc(c) for c in df.columns) + " |",
                     "|" + "---|" * len(df.columns)]
            lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
tr:nth-child(even) td{background:#fafafa}img{max-width:100%;border:1px solid #eee}
td.holds{background:#d5f5e3!important}td.does-not-hold{background:#fadbd8!important}
td.inconclusive{background:#fcf3cf!important}td.infeasible{background:#e5e7e9!important}code{background:#f4f4f4;padding:0 3px}"""


def to_html(doc: Doc, title: str) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]
    for b in doc.blocks:
        if b[0] == "h":
            out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            out.append(f"<p>{html.escape(b[1])}</p>")
        elif b[0] == "ul":
            out.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in b[1]) + "</ul>")
        elif b[0] == "img":
            data = base64.b64encode(b[1].read_bytes()).decode("ascii")
            out.append(f"<p><img alt='{html.escape(b[2])}' src='data:image/png;base64,{data}'></p>")
        else:
            df = b[1]
            rows = ["<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns) + "</tr>"]
            for row in df.itertuples(index=False):
                cells = []
                for c, v in zip(df.columns, row):
                    text = _cell(v)
                    cls = f" class='{an.verdict_kind(text).replace(' ', '-')}'" if c == "verdict" else ""
                    bold = text.startswith("**") and text.endswith("**") and len(text) > 4
                    shown = f"<b>{html.escape(text[2:-2])}</b>" if bold else html.escape(text)
                    cells.append(f"<td{cls}>{shown}</td>")
                rows.append("<tr>" + "".join(cells) + "</tr>")
            out.append("<table>" + "".join(rows) + "</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- writing ----------------------------------------------------------------------------------------------------
def write_text(path: Path, text: str) -> None:
    """Write a report file atomically; a file of that name that no report wrote is never replaced."""
    check_replaceable(path)
    write_file_atomically(path, lambda tmp: Path(tmp).write_text(text))
    record_written(path)


def write_csv(path: Path, df: pd.DataFrame) -> None:
    write_text(path, df.to_csv(index=False, float_format="%.10g"))


# --- the report -------------------------------------------------------------------------------------------------
def _seeds(runs: pd.DataFrame) -> str:
    s = sorted(runs["seed"].unique())
    return f"{len(s)} ({s[0]}-{s[-1]})" if s else "0"


def _repro_rows(rep: pd.DataFrame) -> pd.DataFrame:
    def pct(v):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.2f} %"

    def name(x):
        return display(x) if isinstance(x, str) else "(none)"

    rows = []
    for r in rep.itertuples(index=False):
        what = "PHV" if r.metric in ("phv", "ablation-phv") else METRICS[r.metric][0]
        judged = not (r.verdict.endswith("infeasible") or r.verdict.startswith("no "))
        ci = "" if pd.isna(r.ci_low_pct) or not judged else f"[{r.ci_low_pct:+.2f}, {r.ci_high_pct:+.2f}]"
        paper = pct(r.paper_pct) if r.paper_pct is not None and not pd.isna(r.paper_pct) else "better (sign only)"
        inside = "" if r.claimed_in_ci is None or pd.isna(r.claimed_in_ci) or not judged else \
            ("yes" if r.claimed_in_ci else "no")
        rows.append({"section": r.section, "claim (paper)": r.claim,
                     "D": "" if pd.isna(r.dcs) else int(r.dcs), "metric": what, "subject": name(r.subject),
                     "ours: subject vs versus": f"{name(r.subject_label)} vs {name(r.versus_label)}",
                     "paper": paper, "ours": pct(r.measured_pct) if judged else r.verdict,
                     "ours, 95 % CI": ci, "paper's value in our CI": inside, "verdict": r.verdict,
                     "paper's rule (SLA ignored)": "" if pd.isna(r.verdict_paper) else
                     f"{name(r.versus_paper_label)} {pct(r.measured_paper_pct)}: {r.verdict_paper}".strip()})
    return pd.DataFrame(rows)


def _notes(runs: pd.DataFrame, gate: float) -> list:
    """What every table and figure of the report assumes (the feasibility gate, the intervals)."""
    seeds = runs.groupby(["kind", "label", "dcs"])["seed"].nunique()
    lines = [f"Feasible first: a scheduler serves its load at a D when its mean SLA violation share (requests late "
             f"or never served, over arrivals) is at most {gate * 100:g} % (--sla-gate). Only feasible schedulers "
             f"are ranked or named best; infeasible ones stay in every table ({an.INFEASIBLE_MARK} after the name) "
             "and figure (hatched), never crowned.",
             "Bold: the best feasible mean, only where its 95 % interval and the runner-up's do not overlap; "
             "'(tied)': the feasible schedulers whose intervals overlap the best's.",
             "Intervals: mean over seeds and a 95 % Student-t interval, computed on the log scale for quantities "
             "(carbon, water, cost, TTFT, ...) and the logit scale for rates (SLA violations, SLO attainment), by "
             "the delta method, so they stay non-negative and rates within [0, 1]."]
    if len(seeds) and seeds.min() < 3:
        lines.append(f"Indicative only: some schedulers have {int(seeds.min())} seed(s); with fewer than 3 seeds the "
                     "intervals are very wide (t = 12.7 at 2 seeds) or undefined, and ties are the rule.")
    return lines


def _undecided_at_gate(stats: pd.DataFrame, gate: float) -> list:
    """One warning line per (sweep, D) naming the schedulers whose SLA violation share's 95 % interval contains the
    gate: the gate calls them feasible or not on their mean, which the seeds do not establish, so every ranking,
    'best', hypervolume and reproduction verdict that turns on them is not established either."""
    if not len(stats):
        return []
    sla = stats[(stats["metric"] == "sla_violation_rate") & (stats["ci_low"] <= gate) & (stats["ci_high"] >= gate)]
    lines = []
    for (kind, d), t in sla.groupby(["kind", "dcs"], sort=False):
        names = ", ".join(f"{r.label} {r.mean * 100:.2f} % [{r.ci_low * 100:.2f}, {r.ci_high * 100:.2f}]"
                          for r in t.sort_values("mean").itertuples())
        lines.append(f"**Undecided at the gate** ({kind}, D = {d}): the 95 % interval of the SLA violation share "
                     f"contains the {gate * 100:g} % gate for {names}. Their feasible / infeasible mark rests on the "
                     "mean alone; rankings, 'best', hypervolumes and reproduction verdicts that turn on them are not "
                     "established (more seeds, or a world off the gate).")
    return lines


def _protocol(man: dict) -> str:
    """Which protocol produced a sweep: learners online in the scored day (the paper's), or pre-trained first."""
    protocol = man.get("protocol", "online")
    if protocol in TRAINED:
        n = man.get("train_days", "?")
        test = "frozen (no update)" if protocol == "trained-frozen" else "online"
        return (f"{protocol} protocol (each learner first played {n} other day{'' if n == 1 else 's'} of the "
                f"bundled week, then the scored day {test})")
    return "online protocol (learners learn only inside the scored day, as the paper)"


def build(study: Study, ref_offset: float = REF_OFFSET, gate: float = an.SLA_GATE) -> tuple:
    """(Doc, {csv name: DataFrame}) of a study; figures are written into study.root / figures."""
    from reports.experiments import references

    root, runs = study.root, study.runs
    fig_dir = root / "figures"
    stats = pd.concat([an.interval_table(runs[runs["kind"] == k], gate=gate).assign(kind=k)
                       for k in dict.fromkeys(runs["kind"])] or [pd.DataFrame()], ignore_index=True)
    hv = an.hypervolume_table(study, ref_offset, gate)
    abl = an.ablation_table(study, ref_offset, gate)
    known_refs = tuple(dict.fromkeys((*references(), *runs.loc[runs["family"] == "reference", "label"])))
    rep = an.reproduction_table(study, hv, abl, known_refs, gate)

    doc = Doc()
    doc.h(1, "MARLIN simulator: comparative study")
    lines = []
    for folder, man in study.sweeps:
        k = man.get("kind", folder.name)
        sub = study.kind(k)
        lines.append(f"{k} ({folder.name}/): {len(sub)} of {len(man.get('runs', []))} runs finished; D = "
                     f"{', '.join(map(str, man.get('dcs', [])))}; {man.get('hours', '?'):g} h; seeds {_seeds(sub)}; "
                     f"{_protocol(man)}; "
                     f"run flags: {' '.join(man.get('run_args', [])) or '(defaults)'}")
    doc.p(f"Study folder {root}. Objectives (all lower is better): mean TTFT of the served requests, carbon, water, "
          "energy cost, from each run's summary.json (the drain's included: after the horizon the fleet serves its "
          "backlog, docs/model.md 'Drain'); SLO attainment = share of arrived requests with their first token "
          "within the SLA (higher is better). Beside the operational carbon: the fleet's embodied carbon (every "
          "node, parked or not: the same for every scheduler) and the part of it attributable to serving (the "
          "nodes kept warm or busy; the fifth objective with objective_embodied=true; docs/model.md 'Embodied "
          "carbon').")
    doc.items(lines)
    doc.items(_notes(runs, gate) + _undecided_at_gate(stats, gate))

    comp = stats[stats["kind"] == "compare"] if len(stats) else stats
    for d in sorted(comp["dcs"].unique()) if len(comp) else []:
        t = comp[comp["dcs"] == d]
        doc.h(2, f"State-of-the-art comparison (Fig. 3), D = {d}")
        path = figures.fig3_compare(t, fig_dir / f"fig3_compare_d{d}.png",
                                    f"Fig. 3: {d} datacenters, {t['hours'].iloc[0]:g} h, mean and 95 % CI over seeds",
                                    gate)
        doc.img(path, f"Fig. 3, D={d}")
        doc.table(an.wide_intervals(t, TABLE_METRICS))

    if len(hv):
        for d in sorted(hv["dcs"].unique()):
            t = hv[hv["dcs"] == d]
            has_marlin = bool((t["framework"] == an.MARLIN_FRAMEWORK).any() and
                              t.loc[t["framework"] == an.MARLIN_FRAMEWORK, "feasible"].iloc[0])
            doc.h(2, f"Pareto hypervolume (Fig. 4), D = {d}")
            doc.p(f"Hypervolume of the feasible runs only (an infeasible scheduler contributes nothing: 0, listed): "
                  f"mean TTFT on the log10 scale, every objective min-max normalized over the feasible points of "
                  f"this D (0 = best, 1 = worst feasible), reference point = 1 + {ref_offset:g} in each. The "
                  "paper's literal rule (every point, TTFT linear, min-max over all points, reference = the worst "
                  "observed) is the last two columns, to compare with the paper. MARLIN: every MARLIN run (five "
                  "variants and any --weights sweep, every seed); RL baselines: one point per seed; heuristics and "
                  "references: one point, their mean over seeds (the paper's single-point rule: the box's volume).")
            path = figures.fig4_hypervolume(t, fig_dir / f"fig4_hypervolume_d{d}.png",
                                            f"Fig. 4: hypervolume of the feasible runs, {d} datacenters"
                                            + (", % of MARLIN's" if has_marlin else " (normalized units)"))
            doc.img(path, f"Fig. 4, D={d}")
            doc.table(pd.DataFrame({
                "framework": [display(f) + ("" if ok else f" {an.INFEASIBLE_MARK}")
                              for f, ok in zip(t["framework"], t["feasible"])],
                "family": t["family"], "points": t["points"], "feasible points": t["feasible_points"],
                "HV (feasible)": t["hv_feasible"], "HV, % of MARLIN": t["hv_feasible_pct_of_marlin"],
                "paper rule: PHV": t["phv"], "paper rule: % of MARLIN": t["phv_pct_of_marlin"]}))

    sc = stats[stats["kind"] == "scale"] if len(stats) else stats
    if len(sc):
        doc.h(2, "Scalability (Fig. 5)")
        path = figures.fig5_scale(sc, fig_dir / "fig5_scale.png",
                                  "Fig. 5: mean over seeds vs datacenters, 95 % CI shaded")
        doc.img(path, "Fig. 5")
        doc.table(an.wide_intervals(sc, TABLE_METRICS))

    if len(abl):
        for d in sorted(abl["dcs"].unique()):
            t = abl[abl["dcs"] == d]
            doc.h(2, f"Ablation (Fig. 6), D = {d}")
            doc.p("MARLIN-Balanced with one switch removed at a time; each configuration's seeds are its points; "
                  "hypervolume of the feasible configurations (as Fig. 4) divided by the full framework's; the "
                  "paper's rule beside it.")
            path = figures.fig6_ablation(t, fig_dir / f"fig6_ablation_d{d}.png",
                                         f"Fig. 6: hypervolume of MARLIN vs ablations / full's, {d} datacenters")
            doc.img(path, f"Fig. 6, D={d}")
            show = pd.DataFrame({"configuration": [a + ("" if ok else f" {an.INFEASIBLE_MARK}")
                                                   for a, ok in zip(t["ablation"], t["feasible"])],
                                 "seeds": t["seeds"], "HV (feasible) / full": t["hv_feasible_norm"],
                                 "paper rule: PHV / full": t["phv_norm"]})
            for m in OBJECTIVE_KEYS:
                show[f"{METRICS[m][0]} ({METRICS[m][1]})"] = t[m].to_numpy()
            doc.table(show)

    doc.h(2, "Reproduction of the paper's claims")
    doc.p("Each headline claim of the paper's section 6 beside our value, judged on the MARLIN variant the paper "
          "names (the 'subject' column: MinLatency for TTFT, MinCarbon for carbon, MinWater for water, MinCost "
          "for cost, Balanced against the RL baselines, the heuristics and SLIT). Both sides must serve their "
          f"load (SLA gate {gate * 100:g} %): an infeasible MARLIN side reads 'MARLIN infeasible', and 'best-X' is "
          "the feasible scheduler of group X with the lowest mean on the row's metric. Metric rows: delta of the "
          "subject's mean vs the other's, with Welch's 95 % interval of the difference; verdict 'holds' when the "
          "two 95 % intervals do not overlap and the sign is the claimed one, 'does not hold' when they do not "
          "overlap and the sign is the other, 'inconclusive' when they overlap; 'at most / at least' rows hold "
          "when the whole interval of the delta is at or below the paper's value. Hypervolume rows are single "
          "values on the feasible hypervolume, judged on the sign alone. The 'ours' rows are our stricter bar "
          "(reference schedulers), which the paper did not run. The last column is the paper's rule (best of "
          "the group, SLA ignored), kept for comparison.")
    judged = rep[rep["verdict"] != "no data"] if len(rep) else rep
    if len(rep):
        counts = rep["verdict"].map(an.verdict_kind).value_counts()
        doc.p("Verdicts: " + ", ".join(f"{v} {int(counts.get(v, 0))}" for v in an.VERDICTS) + ".")
    if len(judged):
        doc.table(_repro_rows(judged))
    skipped = rep[rep["verdict"] == "no data"] if len(rep) else rep
    if len(skipped):
        doc.p(f"Not judged ({len(skipped)} claims, sections {', '.join(dict.fromkeys(skipped['section']))}): "
              "their schedulers or sweeps are not in this study.")

    doc.h(2, "Runs")
    doc.p(f"{len(runs)} finished runs read; {len(study.missing)} listed in a manifest without results.")
    if study.missing:
        doc.items([f"{m['kind']}/{m['run']}: {m['error']}" for m in study.missing])
    tables = dict(zip(REPORT_TABLES, (stats, hv, abl, rep)))
    tables.update(oracle_gap.add_section(doc, runs, gate))  # every scheduler's gap to the LP oracle's bound
    return doc, tables


def write_report(root: str | Path, ref_offset: float = REF_OFFSET, gate: float = an.SLA_GATE) -> dict:
    """Write the report files of study folder `root`; returns name -> path."""
    study = load(root)
    root = study.root
    if study.runs.empty:
        raise ConfigError(f"report {root}: no finished run yet (no summary.json in the sweep folders)")
    for name in (*REPORT_TABLES, oracle_gap.TABLE, "report.md", "report.html"):  # refuse before any figure is drawn
        check_replaceable(root / name)
    doc, tables = build(study, ref_offset, gate)
    out = {}
    for name, df in tables.items():
        write_csv(root / name, df)
        out[name] = root / name
    write_text(root / "report.md", to_markdown(doc, root))
    write_text(root / "report.html", to_html(doc, "MARLIN simulator: comparative study"))
    out["report.md"], out["report.html"] = root / "report.md", root / "report.html"
    return out


def main(argv: list) -> int:
    p = _Parser(prog="run.py report", description="a study folder -> report.md and report.html")
    p.add_argument("dir", nargs="?", default=DEFAULT_OUT, help=f"study or sweep folder (default {DEFAULT_OUT})")
    p.add_argument("--hv-offset", type=float, default=REF_OFFSET,
                   help=f"added to the worst observed value of each normalized objective to make the hypervolume's "
                        f"reference point (default {REF_OFFSET}; 0 = the paper's literal rule)")
    p.add_argument("--sla-gate", type=float, default=an.SLA_GATE,
                   help=f"a scheduler is SLA-feasible (ranked, named best) when at most this share of its arrived "
                        f"requests is late or never served, mean over seeds (default {an.SLA_GATE:g} = "
                        f"{an.SLA_GATE * 100:g} %)")
    try:
        a = p.parse_args(argv)
        if not a.hv_offset >= 0:
            raise ConfigError(f"--hv-offset {a.hv_offset}: must be >= 0")
        if not 0 <= a.sla_gate <= 1:
            raise ConfigError(f"--sla-gate {a.sla_gate}: must be a share in [0, 1] (0.01 = 1 %)")
        files = write_report(a.dir, a.hv_offset, a.sla_gate)
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(str(v) for v in files.values()))
    return 0
