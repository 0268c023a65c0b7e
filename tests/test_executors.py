"""reports.executors: each sweep run in its own process; Ctrl-C, SIGTERM and SIGHUP stop a sweep cleanly (one
line, no process left, no half-written folder); a run that ends its own process fails alone; one sweep per folder."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run as cli

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dcs", "4", "--seeds", "1", "--set", "nodes_per_dc=12", "--load-scale", "0.001", "--no-progress"]


def descendants(pid: int) -> set:
    """Every process below `pid` now (from /proc)."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _ctrl_c_default() -> None:
    """In the child before exec: Ctrl-C's default disposition. A shell without job control starts a background
    job with SIGINT ignored, and an ignored SIGINT stays ignored across exec (Python then installs no handler), so
    a test suite started in the background would otherwise send Ctrl-C to a sweep that cannot receive it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_slow_sweep(out: Path) -> subprocess.Popen:
    """A compare of two runs of a scheduler that takes a second per epoch (8 epochs), two at a time."""
    return subprocess.Popen([sys.executable, "run.py", "compare", "--schedulers", "tests.plugins:Slow,uniform",
                             "--hours", "2", *SMALL, "--workers", "2", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_default)


def wait_for(condition, timeout_s: float = 90.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "interrupted (SIGTERM)"),
                                             (signal.SIGHUP, 129, "interrupted (SIGHUP)"),
                                             (signal.SIGINT, 130, "interrupted:")])
def test_a_signal_stops_a_sweep_with_one_line_no_process_and_no_half_written_folder(tmp_path, sig, code, word):
    folder = tmp_path / "compare"
    p = start_slow_sweep(tmp_path)
    wait_for(lambda: folder.is_dir() and any(".tmp-" in e for e in os.listdir(folder)))  # a run is writing
    workers = descendants(p.pid)
    assert workers, "the runs have their own processes"
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(word) and "resumes the sweep" in lines[0], err
    wait_for(lambda: not any(alive(w) for w in workers), 10)
    left = sorted(os.listdir(folder))
    assert not [e for e in left if ".tmp-" in e], left  # no half-written run folder
    assert not (folder / "tests.plugins_Slow-d4-s0").exists()


def test_a_run_that_ends_its_process_fails_alone(tmp_path, capsys):
    rc = cli.main(["compare", "--schedulers", "tests.plugins:HardExit,tests.plugins:ExitsInPlan,nearest",
                   "--hours", "0.25", *SMALL, "--workers", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1 and "compare: 1 run, 0 already done, 2 failed" in out, out
    import json

    failed = {f["run"]: f["error"] for f in json.loads((tmp_path / "compare" / "failures.json").read_text())}
    assert "exit code 7" in failed["tests.plugins_HardExit-d4-s0"]
    assert "plan() called sys.exit(3)" in failed["tests.plugins_ExitsInPlan-d4-s0"]
    assert (tmp_path / "compare" / "nearest-d4-s0" / "summary.json").is_file()
    assert not [e for e in os.listdir(tmp_path / "compare") if ".tmp-" in e]


def test_a_second_sweep_on_the_same_folder_is_refused_while_the_first_runs(tmp_path, capsys):
    p = start_slow_sweep(tmp_path)
    try:
        lock = tmp_path / "compare" / ".sweep.lock"
        wait_for(lambda: lock.is_file() and lock.read_text().strip() == str(p.pid))
        rc = cli.main(["compare", "--schedulers", "tests.plugins:Slow,uniform", "--hours", "2", *SMALL,
                       "--workers", "2", "--out", str(tmp_path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and f"another sweep is running in this folder (pid {p.pid})" in err[0], err
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=120)
    failures = tmp_path / "compare" / "failures.json"
    assert failures.read_text().strip() in ("[]", "")  # the first sweep saw no false failures


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_ends_a_single_run_like_ctrl_c(tmp_path, sig, code):
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "run.py", "--scheduler", "tests.plugins:Slow", "--hours", "2", "--dcs", "4",
                          "--set", "nodes_per_dc=12", "--load-scale", "0.001", "--no-progress", "--out", str(out)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(".tmp-" in e for e in os.listdir(tmp_path)))
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code and err.strip() == f"interrupted ({signal.Signals(sig).name}): no results written"
    assert os.listdir(tmp_path) == []


def test_a_sweep_killed_outright_leaves_no_run_behind(tmp_path):
    folder = tmp_path / "compare"
    p = start_slow_sweep(tmp_path)
    wait_for(lambda: folder.is_dir() and any(".tmp-" in e for e in os.listdir(folder)))
    workers = descendants(p.pid)
    p.kill()  # SIGKILL: no handler runs in the sweep itself
    p.communicate(timeout=60)
    wait_for(lambda: not any(alive(w) for w in workers), 60)
    wait_for(lambda: not [e for e in os.listdir(folder) if ".tmp-" in e], 30)  # each run removed its own
