"""PNG figures in the style of the paper's Figs. 3-6 (matplotlib, Agg backend), drawn from report tables only.

- `fig3_compare`: one panel per objective (TTFT, carbon, water, cost) and one of SLO attainment, a bar per
  scheduler with its 95 % interval as error bar, coloured by family (MARLIN, heuristic, RL, reference); an
  infeasible scheduler's bars are hatched, the best feasible one bold only when it separates from the runner-up;
- `fig4_hypervolume`: each framework's hypervolume of the feasible runs as a share of MARLIN's (in normalized
  units where the study has no feasible MARLIN), infeasible ones hatched at 0, the paper-rule value beside;
- `fig5_scale`: one panel per objective, a line per scheduler over D with the 95 % interval shaded, an
  infeasible (scheduler, D) crossed out;
- `fig6_ablation`: MARLIN's feasible hypervolume with each switch removed, normalized to the full framework's.
An axis turns logarithmic when its values span more than `LOG_RATIO` (e.g. TTFT of one-hot vs spread plans).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.study import METRICS, OBJECTIVE_KEYS, display  # noqa: E402

DPI = 130  # resolution of every PNG, dots per inch
LOG_RATIO = 30.0  # an axis is logarithmic when max / min of its positive values exceeds this
FAMILY_COLORS = {"marlin": "#c0392b", "heuristic": "#2e86c1", "rl": "#27ae60", "reference": "#7f8c8d",
                 "other": "#8e44ad"}
FAMILY_CMAPS = {"marlin": "Reds", "heuristic": "Blues", "rl": "Greens", "reference": "Greys", "other": "Purples"}
FAMILY_NAMES = {"marlin": "MARLIN", "heuristic": "heuristic", "rl": "RL", "reference": "reference",
                "other": "other"}


def _title(metric: str) -> str:
    name, unit = METRICS[metric]
    return f"{name} ({unit})" if unit else name


def _wants_log(values) -> bool:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], dtype=float)
    return len(v) > 1 and v.max() / v.min() > LOG_RATIO


MAX_TICKS = 5  # major ticks on a value axis


def _thousands(axis) -> None:
    """Short tick labels on axes that reach 10,000 (20k, 1.5M rather than 20000), at most MAX_TICKS of them, so
    they never run into each other in a narrow panel."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if max(abs(v) for v in axis.get_view_interval()) >= 1e4:
        axis.set_major_locator(MaxNLocator(MAX_TICKS))
        axis.set_major_formatter(FuncFormatter(_short))


def _short(v: float, _pos=None) -> str:
    """20000 -> '20k', 1500000 -> '1.5M'."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{unit}"
    return f"{v:g}"


def _save(fig, path: Path, **savefig) -> Path:
    """Save atomically under a unique temporary name; a file of that name no report wrote is never replaced."""
    from simcore.results import check_replaceable, record_written, write_file_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    check_replaceable(path)
    try:
        write_file_atomically(path, lambda tmp: fig.savefig(tmp, dpi=DPI, **(savefig or {"bbox_inches": "tight"})),
                              suffix=".png")
    finally:
        plt.close(fig)
    record_written(path)
    return path


def _family_handles(families) -> list:
    from matplotlib.patches import Patch

    return [Patch(color=FAMILY_COLORS[f], label=FAMILY_NAMES[f]) for f in FAMILY_COLORS if f in families]


def _legend_families(ax, families) -> None:
    ax.legend(handles=_family_handles(families), loc="lower right", fontsize=7, framealpha=0.85)


WHISKER_ROOM = 1.6  # Fig. 3's value axes end this far past the largest mean (squared on log axes): a wider
# interval (two seeds: t = 12.7) is cut at the edge rather than squeezing every bar
HATCH = "////"  # an infeasible scheduler's bars (its SLA violations exceed the gate: shown, never ranked)
PANEL_METRICS = (*OBJECTIVE_KEYS, "slo_attainment")  # Fig. 3's panels


def _infeasible_handle():
    from matplotlib.patches import Patch

    return Patch(facecolor="white", edgecolor="black", hatch=HATCH, label="infeasible (never ranked)")


def fig3_compare(stats: pd.DataFrame, path: Path, title: str, gate: float = 0.01) -> Path:
    """stats: interval_table rows of one D (label, family, metric, mean, ci_low, ci_high, feasible). One panel
    per objective and one of SLO attainment; infeasible schedulers hatched; the panel's winner bold
    (`reports.analysis.rank`), or 'tied' in its title."""
    from reports.analysis import rank

    labels = list(dict.fromkeys(stats["label"]))
    n = len(labels)
    metrics = [m for m in PANEL_METRICS if m in set(stats["metric"])]
    fig, axes = plt.subplots(2, 3, figsize=(15, 1.6 + 0.28 * n * 2), squeeze=False)
    feasible = stats.drop_duplicates("label").set_index("label")["feasible"].reindex(labels).fillna(False)
    for ax, metric in zip(axes.flat, metrics):
        t = stats[stats["metric"] == metric].set_index("label").reindex(labels)
        y = np.arange(n)[::-1]
        mean = t["mean"].to_numpy(float)
        lo = np.nan_to_num(mean - t["ci_low"].to_numpy(float), nan=0.0).clip(min=0)
        hi = np.nan_to_num(t["ci_high"].to_numpy(float) - mean, nan=0.0).clip(min=0)
        colors = [FAMILY_COLORS.get(f, FAMILY_COLORS["other"]) for f in t["family"]]
        bars = ax.barh(y, mean, xerr=[lo, hi], color=colors, edgecolor="black", linewidth=0.4,
                       error_kw={"elinewidth": 0.9, "capsize": 2.5})
        for bar, ok in zip(bars, feasible):
            if not ok:
                bar.set_hatch(HATCH)
                bar.set_alpha(0.45)
        ax.set_yticks(y, [display(lab) + ("" if ok else " (infeasible)") for lab, ok in zip(labels, feasible)],
                      fontsize=8)
        if metric == "slo_attainment":
            ax.set_xlim(0, 1.0)
            ax.axvline(1.0 - gate, color="black", linewidth=0.8, linestyle="--")
        elif _wants_log(mean):
            ax.set_xscale("log")
            ax.set_xlabel("log scale", fontsize=7)
            pos = mean[np.isfinite(mean) & (mean > 0)]
            ax.set_xlim(pos.min() / WHISKER_ROOM ** 2, pos.max() * WHISKER_ROOM ** 2)
        else:
            top = np.nanmax(mean) if np.isfinite(mean).any() else 0.0
            ax.set_xlim(0, top * WHISKER_ROOM if top > 0 else None)
            _thousands(ax.xaxis)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        winner, tied = rank(stats[stats["metric"] == metric].reset_index(drop=True), metric)
        head = _title(metric) + (" (higher is better)" if metric == "slo_attainment" else "")
        if winner is not None:
            ax.get_yticklabels()[labels.index(winner)].set_fontweight("bold")
        elif tied:
            head += "\ntied: " + ", ".join(display(lab) for lab in tied[:4]) + (" ..." if len(tied) > 4 else "")
        else:
            head += "\nno feasible scheduler"
        ax.set_title(head, fontsize=9)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    last = list(axes.flat)[-1]
    last.legend(handles=_family_handles(set(stats["family"])) + [_infeasible_handle()], loc="center",
                fontsize=9, frameon=False,
                title=f"infeasible: > {gate * 100:g} % of arrived requests late\nor never served; dashed line: the "
                      f"gate\nbold: best feasible, its 95 % interval\nseparate from the runner-up's\nwhiskers "
                      f"past the axis are cut",
                title_fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return _save(fig, path)


def fig4_hypervolume(hv: pd.DataFrame, path: Path, title: str) -> Path:
    """hv: hypervolume_table rows of one D. Bars: hv_feasible as % of MARLIN's (or, without a feasible MARLIN,
    in normalized units); infeasible frameworks hatched at 0; the paper-rule value in the bar's label."""
    pct = bool(hv["hv_feasible_pct_of_marlin"].notna().any())
    key = "hv_feasible_pct_of_marlin" if pct else "hv_feasible"
    t = hv.assign(shown=hv[key].fillna(0.0)).sort_values(["feasible", "shown"], ascending=True, kind="stable")
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.34 * max(len(t), 1)))
    y = np.arange(len(t))
    colors = [FAMILY_COLORS.get(f, FAMILY_COLORS["other"]) for f in t["family"]]
    top = float(t["shown"].max()) if len(t) else 0.0
    bars = ax.barh(y, t["shown"], color=colors, edgecolor="black", linewidth=0.4)
    for bar, yi, r in zip(bars, y, t.itertuples(index=False)):
        paper = f"paper rule {r.phv_pct_of_marlin:.1f} %" if not pd.isna(r.phv_pct_of_marlin) else \
            f"paper rule {r.phv:.3g}"
        at = r.shown
        if not r.feasible:
            at = top * 0.02 if top > 0 else 1.0
            ax.barh(yi, at, color="white", edgecolor="black", hatch=HATCH, linewidth=0.4)
            text = f" infeasible: 0  ({paper})"
        else:
            text = (f" {r.shown:.1f} %" if pct else f" {r.shown:.3g}") + f"  ({r.feasible_points} pt; {paper})"
        ax.text(at, yi, text, va="center", fontsize=7)
    ax.set_yticks(y, [display(f) for f in t["framework"]], fontsize=8)
    ax.set_xlabel("hypervolume of the feasible runs, % of MARLIN's" if pct else
                  "hypervolume of the feasible runs (normalized units; no feasible MARLIN in this study)")
    ax.set_xlim(0, max(110.0 if pct else 0.0, top * 1.6) or 1.0)
    if pct:
        ax.axvline(100.0, color="black", linewidth=0.8, linestyle="--")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(handles=_family_handles(set(t["family"])) + [_infeasible_handle()], loc="lower right", fontsize=7,
              framealpha=0.85)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def fig5_scale(stats: pd.DataFrame, path: Path, title: str) -> Path:
    """stats: interval_table rows over several D."""
    labels = list(dict.fromkeys(stats["label"]))
    fams = stats.drop_duplicates("label").set_index("label")["family"]
    colors, markers = {}, "osD^v<>ph*"
    for fam in FAMILY_COLORS:  # one colour map per family, its members spread over the map's darker half
        members = [lab for lab in labels if fams[lab] == fam]
        cmap = plt.get_cmap(FAMILY_CMAPS[fam])
        for i, lab in enumerate(members):
            colors[lab] = (cmap(0.9 - 0.5 * i / max(len(members) - 1, 1)), markers[i % len(markers)])
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), squeeze=False)
    for ax, metric in zip(axes.flat, OBJECTIVE_KEYS):
        t = stats[stats["metric"] == metric]
        for i, lab in enumerate(labels):
            g = t[t["label"] == lab].sort_values("dcs")
            fam = g["family"].iloc[0]
            style = "-" if fam == "marlin" else ("--" if fam == "rl" else ":" if fam == "reference" else "-.")
            color, marker = colors[lab]
            ax.plot(g["dcs"], g["mean"], style, marker=marker, markersize=3.5, color=color, label=display(lab),
                    linewidth=1.6 if fam == "marlin" else 1.0)
            if "feasible" in g:  # an infeasible (scheduler, D) is crossed out, never ranked
                bad = ~g["feasible"].astype(bool).to_numpy()
                if bad.any():
                    ax.plot(g["dcs"].to_numpy()[bad], g["mean"].to_numpy(float)[bad], "x", color="black",
                            markersize=7, label="infeasible at that D" if i == 0 else None)
            lo, hi = g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.fill_between(g["dcs"].to_numpy()[ok], lo[ok], hi[ok], color=color, alpha=0.15, linewidth=0)
        ax.set_title(_title(metric), fontsize=10)
        ax.set_xlabel("datacenters D")
        ax.set_xticks(sorted(t["dcs"].unique()))
        if _wants_log(t["mean"]):
            ax.set_yscale("log")
        else:
            if ax.get_ylim()[0] < 0:  # positive quantities: a shaded interval below zero (few seeds) is cut at 0
                ax.set_ylim(bottom=0)
            _thousands(ax.yaxis)
        ax.grid(alpha=0.3)
    handles, names = axes.flat[0].get_legend_handles_labels()
    if "infeasible at that D" not in names and "feasible" in stats and not stats["feasible"].astype(bool).all():
        from matplotlib.lines import Line2D
        handles.append(Line2D([], [], marker="x", color="black", linestyle="", label="infeasible at that D"))
        names.append("infeasible at that D")
    fig.legend(handles, names, loc="lower center", ncol=min(6, max(len(names), 1)), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    rows = math.ceil(len(names) / 6)
    fig.tight_layout(rect=(0, 0.03 + 0.03 * rows, 1, 1))
    return _save(fig, path)


def fig6_ablation(abl: pd.DataFrame, path: Path, title: str) -> Path:
    """abl: ablation_table rows of one D (ablation, feasible, hv_feasible_norm, phv_norm): the feasible
    hypervolume / full's, infeasible configurations hatched at 0, the paper-rule ratio in the label."""
    t = abl.assign(shown=abl["hv_feasible_norm"].fillna(0.0))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(t))
    colors = [FAMILY_COLORS["marlin"] if a == "full" else "#e59866" for a in t["ablation"]]
    bars = ax.bar(x, t["shown"], color=colors, edgecolor="black", linewidth=0.4)
    for bar, xi, r in zip(bars, x, t.itertuples(index=False)):
        if not r.feasible:
            ax.bar(xi, 0.03, color="white", edgecolor="black", hatch=HATCH, linewidth=0.4)
        paper = "" if pd.isna(r.phv_norm) else f"\n(paper {r.phv_norm:.2f})"
        ax.text(xi, r.shown if r.feasible else 0.03, ("infeasible" if not r.feasible else f"{r.shown:.2f}") + paper, ha="center", va="bottom",
                fontsize=7)
    ax.set_xticks(x, ["full_baseline" if a == "full" else a for a in t["ablation"]], rotation=30, ha="right",
                  fontsize=8)
    ax.set_ylabel("hypervolume (feasible) / full's")
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, max(1.25, float(t["shown"].max()) * 1.2) if len(t) else 1.25)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if not t["feasible"].astype(bool).all():
        ax.legend(handles=[_infeasible_handle()], loc="upper right", fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
