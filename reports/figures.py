"""PNG figures in the style of the paper's Figs. 3-6 (matplotlib, Agg backend), drawn from report tables only.

- `fig3_compare`: one panel per objective (TTFT, carbon, water, cost), a bar per scheduler with its 95 % interval
  as error bar, coloured by family (MARLIN, heuristic, RL, reference);
- `fig4_hypervolume`: each framework's PHV as a share of MARLIN's;
- `fig5_scale`: one panel per objective, a line per scheduler over D with the 95 % interval shaded;
- `fig6_ablation`: MARLIN's PHV with each switch removed, normalized to the full framework's.
An axis turns logarithmic when its values span more than `LOG_RATIO` (e.g. TTFT of one-hot vs spread plans).
"""
from __future__ import annotations

import math
import os
import tempfile
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


def _save(fig, path: Path) -> Path:
    """Save atomically under a unique temporary name; a file of that name no report wrote is never replaced."""
    from simcore.results import check_replaceable, record_written

    path.parent.mkdir(parents=True, exist_ok=True)
    check_replaceable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp made it private; give it a new file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    record_written(path)
    return path


def _family_handles(families) -> list:
    from matplotlib.patches import Patch

    return [Patch(color=FAMILY_COLORS[f], label=FAMILY_NAMES[f]) for f in FAMILY_COLORS if f in families]


def _legend_families(ax, families) -> None:
    ax.legend(handles=_family_handles(families), loc="lower right", fontsize=7, framealpha=0.85)


def fig3_compare(stats: pd.DataFrame, path: Path, title: str) -> Path:
    """stats: interval_table rows of one D (label, family, metric, mean, ci_low, ci_high)."""
    labels = list(dict.fromkeys(stats["label"]))
    n = len(labels)
    fig, axes = plt.subplots(2, 2, figsize=(11, 1.2 + 0.28 * n * 2), squeeze=False)
    for ax, metric in zip(axes.flat, OBJECTIVE_KEYS):
        t = stats[stats["metric"] == metric].set_index("label").reindex(labels)
        y = np.arange(n)[::-1]
        mean = t["mean"].to_numpy(float)
        lo = np.nan_to_num(mean - t["ci_low"].to_numpy(float), nan=0.0).clip(min=0)
        hi = np.nan_to_num(t["ci_high"].to_numpy(float) - mean, nan=0.0).clip(min=0)
        colors = [FAMILY_COLORS.get(f, FAMILY_COLORS["other"]) for f in t["family"]]
        ax.barh(y, mean, xerr=[lo, hi], color=colors, edgecolor="black", linewidth=0.4,
                error_kw={"elinewidth": 0.9, "capsize": 2.5})
        ax.set_yticks(y, [display(lab) for lab in labels], fontsize=8)
        ax.set_title(_title(metric), fontsize=10)
        if _wants_log(mean):
            ax.set_xscale("log")
            ax.set_xlabel("log scale", fontsize=7)
        else:  # the quantities are positive: a whisker below zero (few seeds, wide t-interval) is cut at 0
            ax.set_xlim(left=0)
            _thousands(ax.xaxis)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        best = np.nanargmin(mean) if np.isfinite(mean).any() else None
        if best is not None:
            ax.get_yticklabels()[best].set_fontweight("bold")
    fig.suptitle(f"{title}; bold: lowest mean", fontsize=11)
    fig.legend(handles=_family_handles(set(stats["family"])), loc="upper center", ncol=5, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.965))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, path)


def fig4_hypervolume(hv: pd.DataFrame, path: Path, title: str) -> Path:
    """hv: hypervolume_table rows of one D."""
    t = hv.dropna(subset=["phv_pct_of_marlin"]).sort_values("phv_pct_of_marlin", ascending=True)
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.32 * max(len(t), 1)))
    y = np.arange(len(t))
    colors = [FAMILY_COLORS.get(f, FAMILY_COLORS["other"]) for f in t["family"]]
    ax.barh(y, t["phv_pct_of_marlin"], color=colors, edgecolor="black", linewidth=0.4)
    for yi, v, pts in zip(y, t["phv_pct_of_marlin"], t["points"]):
        ax.text(v, yi, f" {v:.1f} %  ({pts} pt)" if v >= 0.1 else f" < 0.1 %  ({pts} pt)", va="center", fontsize=7)
    ax.set_yticks(y, [display(f) for f in t["framework"]], fontsize=8)
    ax.set_xlabel("PHV, % of MARLIN's")
    ax.set_xlim(0, max(110.0, float(t["phv_pct_of_marlin"].max()) * 1.25) if len(t) else 110.0)
    ax.axvline(100.0, color="black", linewidth=0.8, linestyle="--")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    _legend_families(ax, set(t["family"]))
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
    fig.legend(handles, names, loc="lower center", ncol=min(6, max(len(names), 1)), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    rows = math.ceil(len(names) / 6)
    fig.tight_layout(rect=(0, 0.03 + 0.03 * rows, 1, 1))
    return _save(fig, path)


def fig6_ablation(abl: pd.DataFrame, path: Path, title: str) -> Path:
    """abl: ablation_table rows of one D (label, ablation, phv_norm)."""
    t = abl.dropna(subset=["phv_norm"])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(t))
    colors = [FAMILY_COLORS["marlin"] if a == "full" else "#e59866" for a in t["ablation"]]
    ax.bar(x, t["phv_norm"], color=colors, edgecolor="black", linewidth=0.4)
    for xi, v in zip(x, t["phv_norm"]):
        ax.text(xi, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, ["full_baseline" if a == "full" else a for a in t["ablation"]], rotation=30, ha="right",
                  fontsize=8)
    ax.set_ylabel("PHV / full framework's")
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, max(1.15, float(t["phv_norm"].max()) * 1.12) if len(t) else 1.15)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
