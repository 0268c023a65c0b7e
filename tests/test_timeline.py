"""reports.timeline: every run writes timeline.png, drawn from its own files; MARLIN's adds its agents' panel."""
import json

import matplotlib.image as mpimg
import pandas as pd

import run as cli
from reports.timeline import _agents_table, draw_timeline

TINY = ["--dcs", "4", "--hours", "1", "--set", "nodes_per_dc=12", "--load-scale", "0.001", "--no-progress"]


def test_a_run_writes_its_timeline_and_lists_it(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["--scheduler", "nearest", *TINY, "--out", str(out)]) == 0
    assert "timeline.png" in capsys.readouterr().out
    img = mpimg.imread(out / "timeline.png")
    assert img.shape[0] > 800 and img.shape[1] > 1000 and img[..., :3].std() > 0.05  # drawn, not blank
    assert "timeline.png" in json.loads((out / ".marlin-results.json").read_text())["files"]
    assert _agents_table(out) is None  # no agents: four panels


def test_agents_capital_and_vetoes_make_a_fifth_panel(tmp_path):
    out = tmp_path / "out"
    assert cli.main(["--scheduler", "nearest", *TINY, "--out", str(out)]) == 0
    plain = mpimg.imread(out / "timeline.png").shape[0]
    pd.DataFrame({"epoch": [0, 1, 2, 3], "capital_ttft": [100, 120, 150, 160], "veto_ttft": [0, 0, 1, 1],
                  "capital_carbon": [100, 90, 80, 70]}).to_csv(out / "agents.csv", index=False)
    table = _agents_table(out)
    assert list(table["capital_ttft"]) == [100, 120, 150, 160]
    draw_timeline(out)
    assert mpimg.imread(out / "timeline.png").shape[0] > plain  # one panel more


def test_the_timeline_is_the_same_for_the_same_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for o in (a, b):
        assert cli.main(["--scheduler", "uniform", *TINY, "--out", str(o)]) == 0
    assert (a / "timeline.png").read_bytes() == (b / "timeline.png").read_bytes()  # byte for byte
