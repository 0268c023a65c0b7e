"""`timeline.png`: one run over its horizon, drawn from the run's own files (a results folder, or the folder a
run is writing: `simcore.run` calls `draw_timeline` before publishing it).

Panels, one line per datacenter in the same colour throughout (its site in the legend), epochs on the x axis:
1. requests routed to each datacenter (real requests per second, the epoch's mean);
2. utilization: the share of each datacenter's serving capacity used (1 = capacity), and dotted, where it
   exceeds 1, the requests routed over the capacity (the excess queues); epochs where some datacenter uses 99 %
   of its capacity or more are shaded in every panel, so one sees at a glance when capacity bound;
3. the grid's carbon intensity at each datacenter (g CO2e/kWh);
4. time to first token: the fleet's mean and the worst datacenter's p99, on a log scale, against the SLA
   (hatched: epochs whose arrivals got no first token before the run ended);
5. where the scheduler's own tables hold agents' capital and vetoes (MARLIN's `marlin_epochs.csv`): each agent's
   capital and the vetoes cast in each epoch.
Epochs are placed by their own lengths (`epoch_h`); where `epochs.csv` marks drain epochs after the horizon
(`drain` = 1), a dash-dotted line marks where the drain begins.

Reads `epochs.csv`, `config.json` (the SLA), `summary.json` (the title) and any other `*.csv` with `capital_*`
columns; never the engine.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FILE = "timeline.png"
DPI = 110
_CAPACITY_SHADE = "#f4c7c3"
BOUND_UTILIZATION = 0.99  # an epoch where a datacenter uses this share of its capacity is shaded: capacity bound


def draw_timeline(folder: str | Path) -> Path:
    """Draw `folder/timeline.png` from the run files in `folder`; return its path."""
    folder = Path(folder)
    ep = pd.read_csv(folder / "epochs.csv")
    cfg = json.loads((folder / "config.json").read_text())
    summ = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    agents = _agents_table(folder)

    # each epoch's own length (a drain's last epoch may be shorter): the x axis is cumulative hours
    per_epoch_h = ep.groupby("epoch")["epoch_h"].first()
    epoch_h = float(per_epoch_h.iloc[0]) if len(per_epoch_h) else 0.25
    edges = np.concatenate(([0.0], np.cumsum(per_epoch_h.to_numpy(float)))) if len(per_epoch_h) else \
        np.array([0.0, epoch_h])
    start_h = dict(zip(per_epoch_h.index, edges[:-1]))
    length_h = per_epoch_h.to_dict()
    dcs = sorted(ep["dc"].unique())
    sites = ep.drop_duplicates("dc").set_index("dc")["site"].to_dict()
    colours = plt.get_cmap("tab20" if len(dcs) > 10 else "tab10")
    by = {d: ep[ep["dc"] == d].sort_values("epoch") for d in dcs}

    rows = 5 if agents is not None else 4
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.3 * rows + 0.6), sharex=True)
    title = (f"{summ.get('scheduler', cfg.get('scheduler', '?'))}, {cfg.get('dcs', len(dcs))} datacenters, "
             f"seed {cfg.get('seed', '?')}, {summ.get('hours', cfg.get('hours', '?'))} h")
    if summ.get("sla_violation_rate") is not None:
        title += f": {summ['sla_violation_rate']:.2%} of requests over the SLA"
    fig.suptitle(title, fontsize=11)

    def steps(ax, d, values, **kw):
        v = np.asarray(values, dtype=float)
        ax.stairs(v, edges[:len(v) + 1], color=colours(dcs.index(d) % colours.N), lw=1.2, baseline=None, **kw)

    # 1. requests routed
    ax = axes[0]
    for d in dcs:
        steps(ax, d, by[d]["requests"] / (by[d]["epoch_h"] * 3600.0), label=f"{d}: {sites[d]}")
    ax.set_ylabel("requests/s\nrouted")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="datacenter",
              title_fontsize=8)

    # 2. utilization against capacity
    ax = axes[1]
    top = 1.0
    for d in dcs:
        steps(ax, d, by[d]["utilization"])
        offered = by[d]["requests"].to_numpy(float) / np.maximum(by[d]["capacity_requests"].to_numpy(float), 1e-300)
        if (offered > 1.0).any():  # more routed than the datacenter can serve in the epoch: the rest queues
            steps(ax, d, offered, ls=":")
            top = max(top, float(offered.max()))
    if top > 1.0:
        ax.plot([], [], color="0.3", ls=":", label="requests routed / capacity")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.axhline(1.0, color="black", lw=1, ls="--")
    ax.text(edges[0], 1.0, " capacity", va="bottom", fontsize=8)
    top = max(top, float(np.nanmax(ep["utilization"])) if len(ep) else 1.0)
    ax.set_ylim(0, max(1.15, min(top * 1.05, 5.0)))
    ax.set_ylabel("utilization\n(share of capacity)")

    # 3. grid carbon intensity
    ax = axes[2]
    for d in dcs:
        steps(ax, d, by[d]["ci_kg_per_kwh"] * 1000.0)
    ax.set_ylabel("grid carbon\ng CO2e/kWh")

    # 4. TTFT against the SLA
    ax = axes[3]
    g = ep.groupby("epoch")
    served = g["served"].sum()
    mean = (g["ttft_sum_s"].sum() / served.where(served > 0)).to_numpy()
    p99 = g["ttft_p99_s"].max().to_numpy()
    ax.stairs(mean, edges[:len(mean) + 1], color="black", lw=1.5, label="mean (fleet)", baseline=None)
    ax.stairs(p99, edges[:len(p99) + 1], color="tab:red", lw=1.2, ls="-", label="p99 (worst datacenter)",
              baseline=None)
    unserved = (g["requests"].sum() > 0).to_numpy() & (served.to_numpy() == 0)
    for k in np.flatnonzero(unserved):  # arrivals that got no first token before the run ended: no TTFT
        ax.axvspan(edges[k], edges[k + 1], facecolor="none", edgecolor="0.6", hatch="//", lw=0,
                   label="none served by the end" if k == np.flatnonzero(unserved)[0] else None)
    sla = cfg.get("sla_ttft_s")
    if sla:
        ax.axhline(sla, color="tab:red", lw=1, ls="--")
        ax.text(edges[0], sla, f" SLA {sla:g} s", va="bottom", fontsize=8, color="tab:red")
    finite = np.concatenate([mean[np.isfinite(mean) & (mean > 0)], p99[np.isfinite(p99) & (p99 > 0)]])
    if len(finite):
        ax.set_yscale("log")
        ax.set_ylim(min(finite.min(), sla or finite.min()) / 2, max(finite.max(), sla or 0) * 2)
    ax.set_ylabel("TTFT (s)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)

    # 5. agents' capital and vetoes
    if agents is not None:
        ax = axes[4]
        names = [c.removeprefix("capital_") for c in agents.columns if c.startswith("capital_")]
        ax2 = ax.twinx()
        x = agents["epoch"].map(start_h).to_numpy(float)
        vetoes = [agents[f"veto_{n}"].fillna(0).to_numpy() if f"veto_{n}" in agents else np.zeros(len(x))
                  for n in names]
        bottom = np.zeros(len(x))
        for k, n in enumerate(names):
            c = plt.get_cmap("Set2")(k)
            ax.stairs(agents[f"capital_{n}"].to_numpy(float), np.append(x, x[-1] + epoch_h) if len(x) else [0, 1],
                      color=c, lw=1.4, label=f"capital {n}", baseline=None)
            ax2.bar(x + epoch_h / 2, vetoes[k], width=epoch_h * 0.8, bottom=bottom, color=c, alpha=0.35)
            bottom = bottom + vetoes[k]
        ax.set_ylabel("agents'\ncapital (%)")
        ax2.set_ylabel("vetoes\n(bars)", fontsize=9)
        ax2.set_ylim(0, max(3.0, float(bottom.max()) * 1.2 if len(bottom) else 3.0))
        ax.legend(loc="upper left", bbox_to_anchor=(1.06, 1.0), fontsize=8, frameon=False)

    bound = ep[ep["utilization"] >= BOUND_UTILIZATION]["epoch"].unique()
    drain = ep[ep["drain"] == 1]["epoch"].unique() if "drain" in ep else []
    for ax in axes:
        for e in bound:
            ax.axvspan(start_h[e], start_h[e] + length_h[e], color=_CAPACITY_SHADE, alpha=0.5, lw=0, zorder=0)
        if len(drain):  # after the horizon: no arrivals, the backlog served
            ax.axvline(start_h[min(drain)], color="0.3", lw=1, ls="-.")
        ax.grid(axis="y", alpha=0.3)
    if len(drain):
        axes[0].text(start_h[min(drain)], axes[0].get_ylim()[1], " drain", va="top", fontsize=8, color="0.3")
    axes[-1].set_xlabel("hours since the start of the run" + (
        f" (shaded: a datacenter at {BOUND_UTILIZATION:.0%} of its capacity or more)" if len(bound) else ""))
    axes[-1].set_xlim(edges[0], edges[-1])
    fig.tight_layout()
    return _save(fig, folder / FILE)


def _agents_table(folder: Path) -> pd.DataFrame | None:
    """A scheduler table with per-epoch agents' capital (`capital_<agent>` columns), if the run wrote one."""
    for p in sorted(folder.glob("*.csv")):
        if p.name == "epochs.csv":
            continue
        head = pd.read_csv(p, nrows=0).columns
        if "epoch" in head and any(c.startswith("capital_") for c in head):
            return pd.read_csv(p)
    return None


def _save(fig, path: Path) -> Path:
    """Save atomically (a unique temporary name in the same folder, then a rename); no software tag, so the same
    run gives the same bytes."""
    from simcore.results import write_file_atomically

    try:
        write_file_atomically(path, lambda tmp: fig.savefig(tmp, dpi=DPI, metadata={"Software": None}),
                              suffix=".png")
    finally:
        plt.close(fig)
    return path
