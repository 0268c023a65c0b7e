"""`python run.py report [DIR] [--hv-offset 0.01]`: a study folder -> report.md, report.html, figures/, tables.

Reads only the sweep manifests and the runs' `summary.json` (`reports.study`); writes into DIR (atomically,
temp name + rename), replacing only files of these names:
- `report.md` (figures linked from `figures/`) and `report.html` (self-contained: the same figures embedded);
- `figures/fig3_compare_d<D>.png`, `figures/fig4_hypervolume_d<D>.png`, `figures/fig5_scale.png`,
  `figures/fig6_ablation_d<D>.png` (each only where the study has the runs for it);
- `stats.csv` (kind, label, family, dcs, hours, metric, n, mean, ci_low, ci_high: mean and 95 % t-interval
  over seeds of every summary metric), `hypervolume.csv` (dcs, hours, framework, family, points, front, phv,
  phv_pct_of_marlin), `ablation.csv` (dcs, hours, label, ablation, seeds, phv, phv_norm, phv_loss_pct and the
  four objectives' means), `reproduction.csv` (section, claim, metric, dcs, subject_label, versus_label,
  subject_mean, versus_mean, paper_pct, measured_pct, ci_low_pct, ci_high_pct, claimed_in_ci, verdict,
  versus_sla_label, measured_sla_pct, verdict_sla: the same claim against the best serving its load).
How the numbers are computed: `reports.analysis` (claims, verdicts, hypervolume rule) and
`reports.hypervolume` (normalization, reference point).
"""
from __future__ import annotations

import base64
import html
import math
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

from reports import analysis as an
from reports import figures, oracle_gap
from reports.experiments import DEFAULT_OUT, _Parser
from reports.hypervolume import REF_OFFSET
from reports.study import METRICS, OBJECTIVE_KEYS, Study, display, load
from simcore.errors import ConfigError, SimError


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
td.inconclusive{background:#fcf3cf!important}code{background:#f4f4f4;padding:0 3px}"""


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
                    cls = f" class='{text.replace(' ', '-')}'" if c == "verdict" else ""
                    cells.append(f"<td{cls}>{html.escape(text)}</td>")
                rows.append("<tr>" + "".join(cells) + "</tr>")
            out.append("<table>" + "".join(rows) + "</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- writing ----------------------------------------------------------------------------------------------------
def write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path: Path, df: pd.DataFrame) -> None:
    write_text(path, df.to_csv(index=False, float_format="%.10g"))


# --- the report -------------------------------------------------------------------------------------------------
def _seeds(runs: pd.DataFrame) -> str:
    s = sorted(runs["seed"].unique())
    return f"{len(s)} ({s[0]}-{s[-1]})" if s else "0"


def _repro_rows(rep: pd.DataFrame) -> pd.DataFrame:
    def pct(v):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.2f} %"

    rows = []
    for r in rep.itertuples(index=False):
        if r.metric in ("phv", "ablation-phv"):
            what = "PHV"
        else:
            what = METRICS[r.metric][0]
        def name(x):
            return display(x) if isinstance(x, str) else "(none)"

        versus = f"{name(r.subject_label)} vs {name(r.versus_label)}"
        ci = "" if pd.isna(r.ci_low_pct) else f"[{r.ci_low_pct:+.2f}, {r.ci_high_pct:+.2f}]"
        paper = pct(r.paper_pct) if r.paper_pct is not None and not pd.isna(r.paper_pct) else "better (sign only)"
        inside = "" if r.claimed_in_ci is None or pd.isna(r.claimed_in_ci) else ("yes" if r.claimed_in_ci else "no")
        rows.append({"section": r.section, "claim (paper)": r.claim,
                     "D": "" if pd.isna(r.dcs) else int(r.dcs), "metric": what,
                     "ours: subject vs versus": versus, "paper": paper, "ours": pct(r.measured_pct),
                     "ours, 95 % CI": ci, "paper's value in our CI": inside, "verdict": r.verdict,
                     "vs the best serving its load": "" if pd.isna(r.verdict_sla) else
                     f"{name(r.versus_sla_label)} {pct(r.measured_sla_pct)}".strip(),
                     "verdict then": "" if pd.isna(r.verdict_sla) else r.verdict_sla})
    return pd.DataFrame(rows)


def build(study: Study, ref_offset: float = REF_OFFSET) -> tuple:
    """(Doc, {csv name: DataFrame}) of a study; figures are written into study.root / figures."""
    from reports.experiments import references

    root, runs = study.root, study.runs
    fig_dir = root / "figures"
    stats = pd.concat([an.interval_table(runs[runs["kind"] == k]).assign(kind=k)
                       for k in dict.fromkeys(runs["kind"])] or [pd.DataFrame()], ignore_index=True)
    hv = an.hypervolume_table(study, ref_offset)
    abl = an.ablation_table(study, ref_offset)
    known_refs = tuple(dict.fromkeys((*references(), *runs.loc[runs["family"] == "reference", "label"])))
    rep = an.reproduction_table(study, hv, abl, known_refs)

    doc = Doc()
    doc.h(1, "MARLIN simulator: comparative study")
    lines = []
    for folder, man in study.sweeps:
        k = man.get("kind", folder.name)
        sub = study.kind(k)
        lines.append(f"{k} ({folder.name}/): {len(sub)} of {len(man.get('runs', []))} runs finished; D = "
                     f"{', '.join(map(str, man.get('dcs', [])))}; {man.get('hours', '?'):g} h; seeds {_seeds(sub)}; "
                     f"run flags: {' '.join(man.get('run_args', [])) or '(defaults)'}")
    doc.p(f"Study folder {root}. Objectives (all lower is better): mean TTFT, carbon, water, energy cost, from each "
          "run's summary.json. Intervals: mean and 95 % Student-t interval over seeds.")
    doc.items(lines)

    doc.h(2, "Reproduction of the paper's claims")
    doc.p("Each headline claim of the paper's section 6 beside our value. Metric rows: delta of the subject's mean "
          "vs the other's, with Welch's 95 % interval of the difference; verdict 'holds' when the two 95 % "
          "intervals do not overlap and the sign is the claimed one, 'does not hold' when they do not overlap "
          "and the sign is the other, 'inconclusive' when they overlap; 'at most / at least' rows hold when the "
          "whole interval of the delta is at or below the paper's value. 'best-X' is the lowest mean on the row's "
          "metric within group X (the paper compared with its best baseline per metric). PHV rows are single "
          "values (one front per framework), judged on the sign alone. The 'ours' rows are our stricter bar "
          "(reference schedulers), which the paper did not run. The last two columns judge each metric claim "
          f"again against the best of the group among the schedulers that serve their load (mean SLA violation "
          f"share <= {an.SLA_GATE * 100:g} %): the paper's four objectives do not count requests left unserved, so "
          "in a capacity-true world an overloading scheduler can be the 'best' on carbon, water or cost.")
    if len(rep):
        for col, what in (("verdict", "Verdicts"), ("verdict_sla", "Against the best serving its load")):
            counts = rep[col].value_counts()
            doc.p(f"{what}: " + ", ".join(f"{v} {int(counts.get(v, 0))}"
                                         for v in ("holds", "does not hold", "inconclusive", "no data")) + ".")
        doc.table(_repro_rows(rep))

    comp = stats[stats["kind"] == "compare"] if len(stats) else stats
    for d in sorted(comp["dcs"].unique()) if len(comp) else []:
        t = comp[comp["dcs"] == d]
        doc.h(2, f"State-of-the-art comparison (Fig. 3), D = {d}")
        path = figures.fig3_compare(t, fig_dir / f"fig3_compare_d{d}.png",
                                    f"Fig. 3: {d} datacenters, {t['hours'].iloc[0]:g} h, mean and 95 % CI over seeds")
        doc.img(path, f"Fig. 3, D={d}")
        doc.table(an.wide_intervals(t))

    if len(hv):
        for d in sorted(hv["dcs"].unique()):
            t = hv[hv["dcs"] == d]
            doc.h(2, f"Pareto hypervolume (Fig. 4), D = {d}")
            doc.p(f"Objectives normalized over all points of this study (0 = best, 1 = worst observed); reference "
                  f"point = the worst observed value of each + {ref_offset:g}. MARLIN: every MARLIN run (five "
                  "variants and any --weights sweep, every seed); RL baselines: one point per seed; heuristics and "
                  "references: one point, their mean over seeds (the paper's single-point rule: the box's volume).")
            path = figures.fig4_hypervolume(t, fig_dir / f"fig4_hypervolume_d{d}.png",
                                            f"Fig. 4: PHV as % of MARLIN's, {d} datacenters")
            doc.img(path, f"Fig. 4, D={d}")
            doc.table(pd.DataFrame({"framework": t["framework"].map(display), "family": t["family"],
                                    "points": t["points"], "non-dominated": t["front"], "PHV": t["phv"],
                                    "% of MARLIN": t["phv_pct_of_marlin"]}))

    sc = stats[stats["kind"] == "scale"] if len(stats) else stats
    if len(sc):
        doc.h(2, "Scalability (Fig. 5)")
        path = figures.fig5_scale(sc, fig_dir / "fig5_scale.png",
                                  "Fig. 5: mean over seeds vs datacenters, 95 % CI shaded")
        doc.img(path, "Fig. 5")
        doc.table(an.wide_intervals(sc))

    if len(abl):
        for d in sorted(abl["dcs"].unique()):
            t = abl[abl["dcs"] == d]
            doc.h(2, f"Ablation (Fig. 6), D = {d}")
            doc.p("MARLIN-Balanced with one switch removed at a time; each configuration's seeds are its points; "
                  "PHV normalized over this study and divided by the full framework's.")
            path = figures.fig6_ablation(t, fig_dir / f"fig6_ablation_d{d}.png",
                                         f"Fig. 6: normalized PHV of MARLIN vs ablations, {d} datacenters")
            doc.img(path, f"Fig. 6, D={d}")
            show = pd.DataFrame({"configuration": t["ablation"], "seeds": t["seeds"], "PHV": t["phv"],
                                 "PHV / full": t["phv_norm"], "PHV loss (%)": t["phv_loss_pct"]})
            for m in OBJECTIVE_KEYS:
                show[f"{METRICS[m][0]} ({METRICS[m][1]})"] = t[m].to_numpy()
            doc.table(show)

    doc.h(2, "Runs")
    doc.p(f"{len(runs)} finished runs read; {len(study.missing)} listed in a manifest without results.")
    if study.missing:
        doc.items([f"{m['kind']}/{m['run']}: {m['error']}" for m in study.missing])
    tables = {"stats.csv": stats, "hypervolume.csv": hv, "ablation.csv": abl, "reproduction.csv": rep}
    tables.update(oracle_gap.add_section(doc, runs))  # every scheduler's gap to the LP oracle's bound (issue 18)
    return doc, tables


def write_report(root: str | Path, ref_offset: float = REF_OFFSET) -> dict:
    """Write the report files of study folder `root`; returns name -> path."""
    study = load(root)
    root = study.root
    if study.runs.empty:
        raise ConfigError(f"report {root}: no finished run yet (no summary.json in the sweep folders)")
    doc, tables = build(study, ref_offset)
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
    try:
        a = p.parse_args(argv)
        if not a.hv_offset >= 0:
            raise ConfigError(f"--hv-offset {a.hv_offset}: must be >= 0")
        files = write_report(a.dir, a.hv_offset)
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(str(v) for v in files.values()))
    return 0
