"""examples/: smoke runs with tiny budgets (subprocesses, as a user runs them)."""
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("pettingzoo")

ROOT = Path(__file__).resolve().parents[1]


def test_sac_example_trains_writes_its_curve_and_the_policy_plays_in_a_compare_study(tmp_path):
    out = tmp_path / "sac"
    done = subprocess.run([sys.executable, "examples/sb3_sac.py", "--steps", "240", "--hours", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "mean reward, first 10 % of steps:" in done.stdout
    assert {p.name for p in out.iterdir()} == {"policy.zip", "world.json", "learning_curve.csv", "learning_curve.png"}
    assert len((out / "learning_curve.csv").read_text().splitlines()) == 241  # header + one row per step
    study = tmp_path / "study"
    done = subprocess.run([sys.executable, "examples/play_policy.py", "--policy", str(out), "--schedulers", "nearest",
                           "--seeds", "1", "--out", str(study)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = (study / "compare" / "report.md").read_text()
    assert "rlenv.policy_scheduler:PolicyScheduler" in report and "| nearest |" in report


def test_sac_example_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    done = subprocess.run([sys.executable, "examples/sb3_sac.py", "--steps", "10", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "did not write" in done.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep"
