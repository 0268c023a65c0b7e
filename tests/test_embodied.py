"""Embodied carbon: the physics function, the engine's epochs.csv columns and summary keys (the fleet's total and
the part attributable to serving), the evaluator's fifth objective and its weights, each against a hand
computation."""
import json

import numpy as np
import pytest

from schedulers.registry import create
from simcore import physics
from simcore.capacity import build_fleet
from simcore.engine import Engine
from simcore.evaluator import EpochState
from simcore.results import write_results
from tests.conftest import small_config


def test_embodied_carbon_amortises_linearly_over_the_service_life():
    # an 8-GPU node at 318 kg per GPU: 2,544 kg over 4 years = 35,040 h; one 15-min epoch carries 1/140,160
    assert physics.embodied_carbon_kg(8 * 318.0, 0.25, 4.0) == pytest.approx(2544.0 / 140160.0)
    assert physics.embodied_carbon_kg(2544.0, 35040.0, 4.0) == pytest.approx(2544.0)  # the whole life: all of it


def test_fleet_embodied_carbon_is_gpus_times_the_per_gpu_figure():
    fl = build_fleet(small_config(gpu_embodied_kg=(100.0, 300.0)))
    # 60 nodes per datacenter, six types of 10: A100 x (2, 4, 8), H100 x (2, 4, 8)
    assert fl.embodied_kg[:60].sum() == pytest.approx(10 * 14 * 100.0 + 10 * 14 * 300.0)


def test_epochs_csv_and_summary_carry_each_datacenters_share_parked_nodes_included(tmp_path):
    cfg = small_config()
    rec = Engine(cfg, create("uniform")).run()
    summary = write_results(rec, tmp_path / "r")
    import pandas as pd
    epochs = pd.read_csv(tmp_path / "r" / "epochs.csv")
    # 60 nodes per datacenter: 140 A100 x 518 kg + 140 H100 x 1,023 kg = 72,520 + 143,220 = 215,740 kg; an epoch
    # is 0.25 h of 4 x 8,760 h
    per_epoch = 215740.0 * 0.25 / 35040.0
    assert (epochs["parked_nodes"] > 0).any()  # parked nodes exist and still count
    assert np.allclose(epochs["embodied_carbon_kg"], per_epoch)
    assert summary["embodied_carbon_kg"] == pytest.approx(per_epoch * cfg.dcs * cfg.epochs)
    saved = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert saved["embodied_carbon_kg"] == pytest.approx(49.255708, rel=1e-6)  # 4 DCs x 8 epochs x 1.539241
    assert saved["carbon_kg"] == pytest.approx(epochs["carbon_kg"].sum())  # operational, beside it


EPOCH_SHARE = 0.25 / 35040.0  # one 15-min epoch of a 4-year (35,040 h) service life


def _state(pred: np.ndarray) -> EpochState:
    D, M = pred.shape[1], pred.shape[0]
    return EpochState(pred, pred, np.full(D, 0.3), np.full(D, 2.0), np.full(D, 0.1), np.full(D, 4.0),
                      np.zeros((D, M)))


def test_attributable_embodied_is_the_embodied_carbon_of_the_nodes_a_plan_keeps_serving():
    # 8-GPU nodes only: the node order alternates A100 x 8 (8 x 100 = 800 kg) and H100 x 8 (8 x 300 = 2,400 kg)
    cfg = small_config(gpu_counts=(8,), gpu_embodied_kg=(100.0, 300.0), objective_embodied=True)
    eng = Engine(cfg, create("uniform"))
    assert list(eng.fleet.embodied_kg[:4]) == [800.0, 2400.0, 800.0, 2400.0]
    ev = eng.info.evaluator
    D, M = cfg.dcs, 2
    uniform, two = np.full((M, D, D), 1.0 / D), np.zeros((M, D, D))
    two[:, :, :2] = 0.5  # half the load to each of datacenters 0 and 1
    # no forecast: each datacenter keeps min_warm_nodes = 1 per model warm, nodes 0 and 1 (800 + 2,400 kg)
    idle = ev.evaluate(_state(np.zeros((M, D))), np.stack([uniform, two]))
    assert idle.embodied_attributable_kg == pytest.approx(np.full(2, 4 * 3200.0 * EPOCH_SHARE))  # 0.0913242 kg
    # a forecast at 30 % of the fleet's capacity: uniform warms 21 nodes in every datacenter (84 of 240 serve);
    # two datacenters warm 42 each and the other two their 2 minimum nodes (88 serve)
    share = np.array([0.85, 0.15])
    per_row = 0.3 * eng.capacity.mix_requests_per_epoch(share).sum() * share / 4
    busy = ev.evaluate(_state(np.repeat(per_row[:, None], D, axis=1)), np.stack([uniform, two]))
    assert 240 * (1 - busy.parked_share) == pytest.approx([84, 88])
    by_hand = [4 * (11 * 800 + 10 * 2400), 2 * (21 * 800 + 21 * 2400) + 2 * (800 + 2400)]  # 131,200 / 140,800 kg
    assert busy.embodied_attributable_kg == pytest.approx(np.array(by_hand) * EPOCH_SHARE)  # 0.93607 / 1.00457 kg
    # it is the fifth objective, and the operational carbon no longer carries any embodied share
    assert busy.objective_metrics(5)[:, 4] == pytest.approx(busy.embodied_attributable_kg)
    assert np.array_equal(busy.objective_metrics(5)[:, :4], busy.metrics)
    off = Engine(small_config(gpu_counts=(8,), gpu_embodied_kg=(100.0, 300.0)), create("uniform"))
    assert off.info.evaluator.evaluate(_state(np.repeat(per_row[:, None], D, axis=1)),
                                       np.stack([uniform, two])).carbon_kg == pytest.approx(busy.carbon_kg)


def test_epochs_csv_attributes_the_active_nodes_embodied_carbon(tmp_path):
    # every node 8 GPUs of 300 kg: 2,400 kg a node; a datacenter's attributable share is its active nodes' only
    cfg = small_config(gpu_counts=(8,), gpu_embodied_kg=(300.0, 300.0))
    summary = write_results(Engine(cfg, create("uniform")).run(), tmp_path / "r")
    import pandas as pd
    epochs = pd.read_csv(tmp_path / "r" / "epochs.csv")
    per_node = 2400.0 * epochs["epoch_h"] / 35040.0
    assert np.allclose(epochs["embodied_attributable_kg"], epochs["active_nodes"] * per_node)
    assert np.allclose(epochs["embodied_carbon_kg"], 60 * per_node)  # the whole fleet, parked nodes included
    assert (epochs["active_nodes"] < 60).any()  # so the attributable part is smaller somewhere
    assert summary["embodied_attributable_kg"] == pytest.approx(epochs["embodied_attributable_kg"].sum())


def test_objective_weights_add_the_embodied_weight_and_still_sum_to_one():
    cfg = small_config()
    assert cfg.objectives == ("ttft", "carbon", "water", "cost") and cfg.objective_weights == cfg.weights
    on = small_config(objective_embodied=True)
    assert on.objectives[-1] == "embodied" and on.objective_weights == pytest.approx((0.2,) * 5)
    w = small_config(objective_embodied=True, weights=(0.1, 0.2, 0.3, 0.4)).objective_weights
    assert w == pytest.approx((0.08, 0.16, 0.24, 0.32, 0.2)) and sum(w) == pytest.approx(1.0)


def test_report_tables_show_embodied_total_and_serving_part_beside_carbon(tmp_path):
    from reports import experiments
    from reports.experiments import RunSpec, Sweep
    from reports.report import write_report

    runs = []
    for label, att in (("uniform", 500.0), ("nearest", 520.0)):
        for seed in (0, 1, 2):
            name = f"{label}-d8-s{seed}"
            runs.append(RunSpec(name, label, 8, seed, 24.0, label))
            (tmp_path / "compare" / name).mkdir(parents=True)
            (tmp_path / "compare" / name / "summary.json").write_text(json.dumps(
                {"ttft_mean_s": 0.2, "carbon_kg": 1000.0 + seed, "water_l": 10.0, "cost_usd": 5.0, "wall_s": 1.0,
                 "sla_violation_rate": 0.0, "embodied_carbon_kg": 17124.11,
                 "embodied_attributable_kg": att + seed}))
    experiments.write_json(tmp_path / "compare" / "sweep.json",
                           Sweep("compare", tmp_path / "compare", runs, 24.0, [], {"dcs": [8]}).manifest())
    write_report(tmp_path)
    lines = (tmp_path / "report.md").read_text().splitlines()
    header = next(x for x in lines if x.startswith("| scheduler | D | seeds |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    at = cols.index("carbon (kg CO2e)")
    assert cols[at + 1:at + 3] == ["embodied carbon (kg CO2e)", "embodied, serving (kg CO2e)"]
    row = next(x for x in lines if x.startswith("| uniform |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[at + 1].startswith("17,124 [17,124, 17,124]")  # the same for every plan: a tie
    assert cells[at + 2].startswith("**501.0 [")  # mean over seeds 0-2 (500, 501, 502), the lowest: bold
