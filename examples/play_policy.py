"""Play a policy trained by `examples/sb3_sac.py` back through the CLI, in a `compare` study next to built-in
schedulers, and write the study's report. Needs the `[rl]` extra.

    python examples/play_policy.py [--policy results/sb3-sac] [--schedulers uniform,nearest,greenest]
                                   [--seeds 2] [--out results/policy-study]

Each run is `run.py --scheduler rlenv.policy_scheduler:PolicyScheduler` (or a built-in) in the world the policy
was trained on (`world.json`), so the trained scheduler's results folder holds what every scheduler's holds
and the study's `report.md` ranks it with the others. The same, by hand:

    python run.py compare --schedulers uniform,nearest,rlenv.policy_scheduler:PolicyScheduler \
        --config results/sb3-sac/world.json --set policy_path=results/sb3-sac/policy.zip \
        --dcs 4 --hours 4 --seeds 2 --workers 1 --out results/policy-study
    python run.py report results/policy-study/compare
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

POLICY = "rlenv.policy_scheduler:PolicyScheduler"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", default="results/sb3-sac", help="folder written by examples/sb3_sac.py")
    p.add_argument("--schedulers", default="uniform,nearest,greenest", help="built-ins to compare with")
    p.add_argument("--seeds", default="2")
    p.add_argument("--out", default="results/policy-study")
    a = p.parse_args()
    import run

    world = Path(a.policy) / "world.json"
    policy = Path(a.policy) / "policy.zip"
    if not (world.is_file() and policy.is_file()):
        print(f"--policy {a.policy}: needs world.json and policy.zip (run examples/sb3_sac.py first)",
              file=sys.stderr)
        return 2
    w = json.loads(world.read_text())
    rc = run.main(["compare", "--schedulers", f"{a.schedulers},{POLICY}", "--config", str(world),
                   "--set", f"policy_path={policy}", "--dcs", str(w["dcs"]), "--hours", str(w["hours"]),
                   "--seeds", a.seeds, "--workers", "1", "--out", a.out, "--no-progress"])
    if rc:
        return rc
    return run.main(["report", str(Path(a.out) / "compare")])


if __name__ == "__main__":
    sys.exit(main())
