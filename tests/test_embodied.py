"""Embodied carbon: the physics function, the engine's epochs.csv column and summary key, and the evaluator's
life-cycle carbon objective, each against a hand computation."""
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
    # 60 nodes x 280 GPUs per datacenter x 318 kg = 89,040 kg; an epoch is 0.25 h of 4 x 8,760 h
    per_epoch = 89040.0 * 0.25 / 35040.0
    assert (epochs["parked_nodes"] > 0).any()  # parked nodes exist and still count
    assert np.allclose(epochs["embodied_carbon_kg"], per_epoch)
    assert summary["embodied_carbon_kg"] == pytest.approx(per_epoch * cfg.dcs * cfg.epochs)
    saved = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert saved["embodied_carbon_kg"] == pytest.approx(20.328767, rel=1e-6)  # 4 DCs x 8 epochs x 0.63527
    assert saved["carbon_kg"] == pytest.approx(epochs["carbon_kg"].sum())  # operational, beside it


def test_objective_embodied_adds_the_fleets_share_to_every_plans_carbon():
    cfg = small_config()
    eng = Engine(cfg, create("uniform"))
    on = Engine(cfg.replace(objective_embodied=True), create("uniform"))
    D, M = cfg.dcs, 2
    pred = np.full((M, D), 50.0)
    state = EpochState(pred, pred, np.full(D, 0.3), np.full(D, 2.0), np.full(D, 0.1), np.full(D, 4.0),
                       np.zeros((D, M)))
    plans = np.stack([np.full((M, D, D), 1.0 / D), np.eye(D)[None].repeat(M, axis=0)])
    off_c = eng.info.evaluator.evaluate(state, plans).carbon_kg
    on_c = on.info.evaluator.evaluate(state, plans).carbon_kg
    assert on_c - off_c == pytest.approx(np.full(2, D * 89040.0 * 0.25 / 35040.0))
