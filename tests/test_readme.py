"""The README's plug-in section, word for word, in a folder outside the repository: its code saved where it says,
its two commands run from that folder. The installed `marlin-sim` is `run:main` (setup.cfg); here the package is
on PYTHONPATH, as `pip install -e .` puts it, and `marlin-sim` runs `run.main` under that name."""
import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--dcs", "4", "--hours", "0.25", "--set", "nodes_per_dc=12", "--load-scale", "0.001", "--no-progress"]


def plugin_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("Plug in your own"):text.index("## Comparative studies")]


def test_the_console_script_is_run_main():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = [line.strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines() if line.strip()]
    assert scripts == ["marlin-sim = run:main"]


def test_the_plugin_section_works_word_for_word_outside_the_repository(tmp_path):
    section = plugin_section()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    where = re.search(r"Save it as `(\w+)/(\w+)\.py`", section)
    pkg = tmp_path / where.group(1)
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")  # "beside an empty mypkg/__init__.py"
    (pkg / f"{where.group(2)}.py").write_text(code)
    commands = [line.strip() for line in section.splitlines() if line.startswith("    ") and
                line.strip().startswith(("python -m schedulers.checker", "marlin-sim"))]
    assert [c.split()[0] for c in commands] == ["python", "marlin-sim"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    marlin_sim = [sys.executable, "-c", "import sys, run; sys.argv[0] = 'marlin-sim'; sys.exit(run.main())"]
    check = subprocess.run([sys.executable, *commands[0].split()[1:]], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stderr
    run = subprocess.run([*marlin_sim, *commands[1].split()[1:], *FAST], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "results" / "mypkg.mod_NearFirst-d4-s0" / "summary.json").is_file()
    assert "mypkg.mod:NearFirst" in run.stdout


def test_help_lists_every_subcommand_and_the_checker_has_help():
    out = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for sub in ("compare", "scale", "ablate", "pareto", "paper", "report", "predictor-report", "--list-params"):
        assert sub in out.stdout, sub
    chk = subprocess.run([sys.executable, "-m", "schedulers.checker", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert chk.returncode == 0 and "usage: python -m schedulers.checker" in chk.stdout
