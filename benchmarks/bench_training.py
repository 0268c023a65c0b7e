"""Trained vs online, per learner (issue 22): each learner plays the same test day twice, untrained (the paper's
online protocol) and after `--train-days` other days of the bundled week (`simcore.training`), and this prints
both on its own objective.

A learner's objective is the Eq. 11 weighted sum of its four metrics under its own weights (the run's, equal by
default, for MARLIN-Balanced and the baselines; a MARLIN-Min* variant's, its objective dominant; SLIT's
`slit_weights`, carbon and water first), each over the same run of the uniform plan on the same day (1.0 = as
uniform, lower is better): mean TTFT, carbon, water and cost; the SLA-violation rate (late or unserved over
arrived) is printed beside it, since a lower objective bought with violations is not a better scheduler.

    python benchmarks/bench_training.py [--dcs 4] [--hours 8] [--train-days 3] [--seeds 0] [--learners a,b]
                                        [--set NAME=VALUE ...]

At 24 h give D = 4 its own fleet's load (`--set reference_dcs=4`, as `scale --load paper` does): at the default
reference fleet of 8 DCs the daytime peak is about twice what 4 DCs serve (uniform and Q-learning: 77 % of
requests late or unserved).

Each learner is trained once (a checkpoint folder of this script's own) and then plays the test day twice from the
trained state: learning online (`--test-learning online`) and frozen (`--test-learning frozen`).

`--jsonl FILE` appends one JSON line per learner and seed (the three runs' metrics, the uniform run's, the
weights and the objectives) for tables made later; `--table FILE` prints them: one row per learner with its
seeds side by side, then one row per learner over its seeds (`seeds_table`: the mean change, trained and frozen
against online, with its 95 % t-interval, paired by seed; "better" only when the whole interval is below 0).

Figures, not a test: the machine's load changes the walls, never the metrics (same seed, same output).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LEARNERS = ("qlearning", "ddqn", "actorcritic", "slit", "perllm", "marlin")
METRICS = ("ttft_mean_s", "carbon_kg", "water_l", "cost_usd")


def _run(argv: list, out: Path) -> dict:
    import run as cli
    with contextlib.redirect_stdout(io.StringIO()):  # the run's own table: this script prints its own
        rc = cli.main([*argv, "--out", str(out), "--no-progress"])
    if rc != 0:
        raise SystemExit(f"run failed ({rc}): {' '.join(argv)}")
    summ = json.loads((out / "summary.json").read_text())
    summ["training"] = json.loads((out / "config.json").read_text()).get("training", {})
    return summ


def objective(summ: dict, ref: dict, weights: tuple) -> float:
    """Eq. 11's weighted sum of the run's metrics over the reference run's (1.0 = as the reference)."""
    return float(sum(w * summ[m] / ref[m] for w, m in zip(weights, METRICS)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dcs", type=int, default=4)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--train-days", type=int, default=3)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--learners", default=",".join(LEARNERS))
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a parameter for every learner's runs that has it (e.g. a candidate default)")
    ap.add_argument("--jsonl", default=None, help="append one JSON line per learner and seed to this file")
    ap.add_argument("--table", default=None, metavar="FILE.jsonl",
                    help="run nothing: print the Markdown table (one row per learner) of the lines in this file")
    a = ap.parse_args()
    if a.table:
        rows = [json.loads(x) for x in Path(a.table).read_text().splitlines() if x.strip()]
        print(markdown_table(rows) + "\n\n" + seeds_table(rows))
        return
    world = ["--dcs", str(a.dcs), "--hours", f"{a.hours:g}"]
    weights = (0.25, 0.25, 0.25, 0.25)
    print(f"D={a.dcs}, {a.hours:g} h, train days {a.train_days}{', ' + ' '.join(a.set) if a.set else ''}; objective "
          "= Eq. 11 with the learner's own weights over uniform's metrics (lower is better); trained = the test day learning online, frozen = "
          "the same trained state played frozen (--test-learning frozen)")
    print(f"{'learner':<12} {'seed':>4} {'online obj':>10} {'trained obj':>11} {'change':>8} {'frozen obj':>10} "
          f"{'change':>8} {'viol online':>11} {'viol trained':>12} {'viol frozen':>11} {'train s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in a.seeds.split(","):
            w = [*world, "--seed", seed]
            ref = _run(["--scheduler", "uniform", *w, *_sets_for("uniform", a.set)], tmp / f"uniform-{seed}")
            for name in a.learners.split(","):
                sets = _sets_for(name, a.set)
                online = _run(["--scheduler", name, *w, *sets], tmp / f"{name}-{seed}-online")
                train = [*w, *sets, "--train-days", str(a.train_days), "--checkpoint-dir", str(tmp / "ck")]
                trained = _run(["--scheduler", name, *train], tmp / f"{name}-{seed}-trained")
                frozen = _run(["--scheduler", name, *train, "--test-learning", "frozen"],
                              tmp / f"{name}-{seed}-frozen")  # the same checkpoint: no second training
                own = own_weights(name, weights, a.set)
                o, t, f = (objective(x, ref, own) for x in (online, trained, frozen))
                train_s = trained["training"].get("train_wall_s", 0.0)
                print(f"{name:<12} {seed:>4} {o:>10.4f} {t:>11.4f} {100 * (t / o - 1):>+7.2f}% {f:>10.4f} "
                      f"{100 * (f / o - 1):>+7.2f}% {online['sla_violation_rate']:>11.4%} "
                      f"{trained['sla_violation_rate']:>12.4%} {frozen['sla_violation_rate']:>11.4%} "
                      f"{train_s:>8.1f}", flush=True)
                print(f"{'':<12} trained / online: " + ", ".join(
                    f"{m} {trained[m] / online[m]:.3f}" for m in METRICS) + "; frozen / online: " + ", ".join(
                    f"{m} {frozen[m] / online[m]:.3f}" for m in METRICS), flush=True)
                if a.jsonl:
                    keep = (*METRICS, "sla_violation_rate")
                    row = {"learner": name, "seed": int(seed), "dcs": a.dcs, "hours": a.hours,
                           "train_days": a.train_days, "sets": a.set, "weights": [float(w) for w in own],
                           "objective": {"online": o, "trained": t, "frozen": f}, "train_wall_s": train_s,
                           **{k: {m: x[m] for m in keep} for k, x in
                              (("uniform", ref), ("online", online), ("trained", trained), ("frozen", frozen))}}
                    with open(a.jsonl, "a") as fh:
                        fh.write(json.dumps(row) + "\n")


def markdown_table(rows: list) -> str:
    """One row per learner (the last line of each learner and seed counts), its seeds side by side: its objective's
    weights, online / trained / frozen objective, the changes against online and the SLA-violation shares."""
    per_learner = by_learner(rows)
    out = ["| learner | objective (weights on TTFT, carbon, water, cost) | seeds | online | trained | trained: change "
           "| frozen | frozen: change | SLA violations online / trained / frozen |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, rs in per_learner.items():
        w = "Eq. 11, " + "/".join(f"{x:g}" for x in (round(v, 3) for v in rs[0]["weights"]))

        def cell(f, rs=rs):
            return " / ".join(f(r) for r in rs)

        def ob(k):
            return cell(lambda r: f"{r['objective'][k]:.4f}")

        def ch(k):
            return cell(lambda r: f"{100 * (r['objective'][k] / r['objective']['online'] - 1):+.2f} %")
        viol = "; ".join("seed {}: {:.2f} / {:.2f} / {:.2f} %".format(
            r["seed"], *(100 * r[k]["sla_violation_rate"] for k in ("online", "trained", "frozen"))) for r in rs)
        out.append(f"| {name} | {w} | {cell(lambda r: str(r['seed']))} | {ob('online')} | {ob('trained')} | "
                   f"{ch('trained')} | {ob('frozen')} | {ch('frozen')} | {viol} |")
    return "\n".join(out)


def by_learner(rows: list) -> dict:
    """{learner: its rows in seed order}, learners in order of first appearance; the last line of each learner and
    seed counts (a re-measured seed replaces the earlier line)."""
    last = {(r["learner"], r["seed"]): r for r in rows}
    return {name: [last[k] for k in sorted(k for k in last if k[0] == name)]
            for name in dict.fromkeys(k[0] for k in last)}


def seed_changes(rows: list, protocol: str) -> dict:
    """{learner: [per-seed change of the objective, protocol over online, in %]} (`by_learner`: seeds in order)."""
    return {name: [100.0 * (r["objective"][protocol] / r["objective"]["online"] - 1.0) for r in rs]
            for name, rs in by_learner(rows).items()}


def verdict(ci) -> str:
    """'better' / 'worse' when the 95 % interval of the mean change lies below / above 0, else 'not shown'."""
    if ci.n < 2 or math.isnan(ci.low):
        return "one seed"
    return "better" if ci.high < 0 else "worse" if ci.low > 0 else "not shown"


def seeds_table(rows: list) -> str:
    """One row per learner: over its seeds, the mean change of its objective (trained, frozen, each against the
    same seed's online run; paired by seed) with its 95 % t-interval (`reports.stats.mean_ci`), how many seeds
    improved, and whether the interval shows trained better or worse (`verdict`)."""
    from reports.stats import mean_ci

    out = ["| learner | seeds | trained: mean change [95 % interval] | seeds better | verdict "
           "| frozen: mean change [95 % interval] | seeds better | verdict |", "|---|---|---|---|---|---|---|---|"]
    trained, frozen = seed_changes(rows, "trained"), seed_changes(rows, "frozen")
    for name, ch in trained.items():
        cells = []
        for xs in (ch, frozen[name]):
            ci = mean_ci(xs)
            cells.append(f"{ci.mean:+.2f} % [{ci.low:+.2f}, {ci.high:+.2f}] | {sum(x < 0 for x in xs)} of {len(xs)} | "
                         f"{verdict(ci)}")
        out.append(f"| {name} | {len(ch)} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


def own_weights(name: str, weights: tuple, sets: list = ()) -> tuple:
    """A learner's own objective weights (with the `--set` values of its parameters): a MARLIN Min* variant's (its
    objective dominant), SLIT's `slit_weights`, else the run's."""
    from schedulers.marlin.scheduler import Marlin, variant_weights
    from schedulers.registry import resolve

    cls = resolve(name)
    mine = dict(item.split("=", 1) for item in sets if item.partition("=")[0].strip() in cls.Params.names())
    params = cls.Params.from_dict({k.strip(): v for k, v in mine.items()}, "--set")
    if isinstance(cls, type) and issubclass(cls, Marlin) and cls.variant is not None:
        return tuple(variant_weights(cls.variant, params.marlin_variant_dominant))
    if hasattr(params, "slit_weights"):
        return tuple(params.slit_weights)
    return weights


def _sets_for(name: str, sets: list) -> list:
    """The `--set` flags of the parameters that scheduler `name` (or the world) has."""
    from schedulers.registry import resolve
    from simcore.config import Config

    known = set(Config.names()) | set(resolve(name).Params.names())
    return [x for item in sets if item.partition("=")[0].strip() in known for x in ("--set", item)]


if __name__ == "__main__":
    main()
