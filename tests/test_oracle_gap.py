"""The report's gap to the LP oracle's hindsight bound (reports/oracle_gap.py), on a made-up table of runs."""
import pandas as pd
import pytest

from reports.oracle_gap import oracle_gap_table, add_section
from reports.report import Doc, to_markdown


def _runs():
    rows = []
    def run(label, family, seed, ttft, carbon, water, cost, sla):
        rows.append({"kind": "compare", "label": label, "scheduler": label, "family": family, "dcs": 8, "seed": seed,
                     "hours": 24.0, "ttft_mean_s": ttft, "carbon_kg": carbon, "water_l": water, "cost_usd": cost,
                     "sla_violation_rate": sla})
    run("oracle-hindsight", "other", 0, 0.04, 100.0, 1000.0, 10.0, 0.002)
    run("oracle-hindsight", "other", 1, 0.06, 120.0, 1000.0, 10.0, 0.004)  # bound means: 0.05, 110, 1000, 10
    run("uniform", "reference", 0, 0.10, 165.0, 1500.0, 12.0, 0.001)
    run("uniform", "reference", 1, 0.10, 165.0, 1500.0, 13.0, 0.001)
    run("marlin", "marlin", 0, 0.70, 99.0, 1100.0, 11.0, 0.04)
    rows.append({**rows[-1], "kind": "scale", "dcs": 4})  # a group without the bound: no rows
    return pd.DataFrame(rows)


def test_gap_is_the_percent_difference_of_seed_means_to_the_bound():
    t = oracle_gap_table(_runs()).set_index("label")
    assert set(t["kind"]) == {"compare"}  # the scale group holds no oracle-hindsight run
    assert t.loc["oracle-hindsight", ["ttft_gap_pct", "carbon_gap_pct", "water_gap_pct", "cost_gap_pct"]].abs().max() \
        == pytest.approx(0.0)
    u = t.loc["uniform"]
    assert (u["ttft_gap_pct"], u["carbon_gap_pct"], u["water_gap_pct"], u["cost_gap_pct"]) == pytest.approx(
        (100.0, 50.0, 50.0, 25.0))  # 0.10 vs 0.05, 165 vs 110, 1500 vs 1000, 12.5 vs 10
    m = t.loc["marlin"]
    assert m["carbon_gap_pct"] == pytest.approx(-10.0)  # below the bound on one metric: a negative gap
    assert m["ttft_gap_pct"] == pytest.approx(1300.0)
    assert not m["serves_load"] and u["serves_load"]
    assert t.loc["marlin", "seeds"] == 1 and t.loc["uniform", "seeds"] == 2


def test_section_and_csv_appear_only_with_the_bound(tmp_path):
    doc = Doc()
    tables = add_section(doc, _runs())
    text = to_markdown(doc, tmp_path)
    assert "Gap to the LP oracle" in text and "MARLIN-Balanced" in text
    assert len(tables["oracle_gap.csv"]) == 3
    empty = Doc()
    no_bound = _runs()
    assert len(add_section(empty, no_bound[no_bound["label"] != "oracle-hindsight"])["oracle_gap.csv"]) == 0
    assert empty.blocks == []


def test_serves_load_follows_the_reports_sla_gate():
    """MARLIN's 4 % of late requests serves its load under a 5 % gate, not under the default 1 %."""
    assert not oracle_gap_table(_runs()).set_index("label").loc["marlin", "serves_load"]
    assert oracle_gap_table(_runs(), gate=0.05).set_index("label").loc["marlin", "serves_load"]
