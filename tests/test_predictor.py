"""Workload predictor (simcore/predictor.py) and its report (reports/predictor_report.py)."""
import json
import subprocess
import sys

import numpy as np
import pytest

import reports.predictor_report as pr
from simcore.config import Config
from simcore.predictor import EwmaRegression, MlpPredictor, ewma_regression_forecast

EXACT = dict(rel=1e-12, abs=1e-12)


# --- EWMA regression: hand-computed cases -------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9, 0.999])
def test_linear_series_is_extrapolated_exactly(alpha):
    p = EwmaRegression(8, alpha)
    for k in range(12):  # y = 2k + 1; only the last 8 are kept
        p.update(np.array([2.0 * k + 1.0]))
    assert p.predict()[0] == pytest.approx(2.0 * 12 + 1.0, **EXACT)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0])
def test_constant_series_predicts_the_constant(alpha):
    y = np.full((5, 3), 42.0)
    assert ewma_regression_forecast(y, alpha) == pytest.approx(np.full(3, 42.0), **EXACT)


def test_no_history_is_none_and_one_epoch_repeats():
    p = EwmaRegression(8, 0.5)
    assert p.predict() is None
    p.update(np.array([[3.0, 0.0], [7.5, 1.0]]))
    np.testing.assert_array_equal(p.predict(), [[3.0, 0.0], [7.5, 1.0]])


def test_two_points_give_their_line_for_any_alpha_below_one():
    for alpha in (0.3, 0.5, 0.8):
        assert ewma_regression_forecast(np.array([3.0, 7.0]), alpha) == pytest.approx(11.0, **EXACT)


def test_alpha_one_repeats_the_last_value():
    # All weight on the newest epoch: the slope is 0/0; the forecast is the newest value (no NaN, no warning).
    with np.errstate(all="raise"):
        assert ewma_regression_forecast(np.array([3.0, 7.0]), 1.0) == 7.0
        np.testing.assert_array_equal(ewma_regression_forecast(np.array([[1.0, 9.0], [5.0, 2.0], [4.0, 6.0]]), 1.0),
                                      [4.0, 6.0])


def test_weighted_regression_hand_computed():
    # y = 1, 2, 4 at x = -2, -1, 0; alpha = 1/2: w = 1/8, 1/4, 1/2 -> 1/7, 2/7, 4/7.
    # xm = -4/7, ym = 3, Sxx = 26/49, Sxy = 42/49, slope = 21/13, forecast = 3 + 21/13 * (1 + 4/7) = 72/13.
    assert ewma_regression_forecast(np.array([1.0, 2.0, 4.0]), 0.5) == pytest.approx(72.0 / 13.0, **EXACT)
    # A larger alpha leans on the newest (steeper) step: alpha = 0.9 gives w ~ 0.009, 0.09, 0.9 (normalized).
    assert ewma_regression_forecast(np.array([1.0, 2.0, 4.0]), 0.9) > 72.0 / 13.0


def test_negative_extrapolation_clamps_to_zero():
    assert ewma_regression_forecast(np.array([10.0, 5.0, 0.0]), 0.5) == 0.0
    p = EwmaRegression(3, 0.5)
    for v in ([10.0, 1.0], [5.0, 2.0], [0.0, 3.0]):
        p.update(np.array(v))
    np.testing.assert_allclose(p.predict(), [0.0, 4.0], rtol=1e-12)


def test_window_keeps_the_last_tw_epochs_per_element():
    p = EwmaRegression(3, 0.5)
    for k in range(6):
        p.update(np.array([100.0 if k < 3 else 1.0, float(k)]))
    assert len(p.history) == 3
    np.testing.assert_allclose(p.predict(), [1.0, 6.0], rtol=1e-12)


def test_invalid_parameters():
    with pytest.raises(ValueError):
        EwmaRegression(0, 0.5)
    with pytest.raises(ValueError):
        EwmaRegression(8, 0.0)
    with pytest.raises(ValueError):
        EwmaRegression(8, 1.5)


# --- MLP baseline ---------------------------------------------------------------------------------------
def _train_series(n=6, epochs=96, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(epochs)
    return [rng.poisson(500 + 300 * np.sin(2 * np.pi * (t + 7 * i) / 96))[:, None] * np.ones(3) for i in range(n)]


def _feed(p, rows):
    for r in rows:
        p.update(r)
    return p.predict()


def test_importing_the_predictor_does_not_import_torch():
    code = "import sys, simcore.predictor; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_mlp_is_deterministic_given_the_seed_and_seeds_differ():
    series = _train_series()
    rows = np.array([[500.0, 80.0], [520.0, 60.0], [560.0, 70.0], [600.0, 90.0],
                     [610.0, 50.0], [650.0, 75.0], [700.0, 66.0], [690.0, 71.0]])
    a = _feed(MlpPredictor(8, seed=1, steps=100).fit(series), rows)
    b = _feed(MlpPredictor(8, seed=1, steps=100).fit(series), rows)
    c = _feed(MlpPredictor(8, seed=2, steps=100).fit(series), rows)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (2,) and np.all(a >= 0)


def test_mlp_interface_matches_ewma():
    p = MlpPredictor(4, seed=0, steps=20)
    with pytest.raises(RuntimeError):
        p.predict()
    p.fit(_train_series(n=2))
    assert p.predict() is None
    p.update(np.array([[10.0, 0.0], [20.0, 5.0]]))  # short history: padded with the oldest epoch
    out = p.predict()
    assert out.shape == (2, 2) and out[0, 1] == 0.0  # an all-zero window forecasts 0
    for _ in range(6):
        p.update(np.ones((2, 2)))
    assert len(p.history) == 4


def test_mlp_learns_a_periodic_series_better_than_the_window_mean():
    t = np.arange(400)
    s = 100.0 + 50.0 * np.sin(2 * np.pi * t / 12)
    p = MlpPredictor(8, seed=0, steps=600).fit([s[:300]])
    f = pr.one_step_forecasts(p, s[300:, None])[8:, 0]
    win_mean = np.array([s[300 + e - 8:300 + e].mean() for e in range(8, 100)])
    truth = s[308:400]
    mape_mlp = np.mean(np.abs(f - truth) / truth)
    mape_mean = np.mean(np.abs(win_mean - truth) / truth)
    assert mape_mlp < 0.5 * mape_mean
    assert mape_mlp < 0.05


# --- report ---------------------------------------------------------------------------------------------
def test_predictor_report_smoke(tmp_path, monkeypatch, capsys):
    cfg = Config(dcs=4, hours=4.0, seed=1)
    r = pr.predictor_report(cfg)
    assert r["test_day"] == "2024-05-13" and "2024-05-13" not in r["train_days"] and len(r["train_days"]) == 6
    assert r["scored_epochs"] == [8, 15]
    for part in ("per_origin", "aggregate"):
        for k in ("ewma", "mlp", "last_value"):
            s = r[part][k]
            assert 0.0 < s["accuracy"] <= 1.0
            assert s["points"] == (8 * 4 if part == "per_origin" else 8)
    for k in ("ewma", "mlp"):
        assert r["speed"][k]["us_per_call"] > 0
        assert r["speed"][k]["us_per_element"] == pytest.approx(r["speed"][k]["us_per_call"] / 4)
    assert list(tmp_path.iterdir()) == []

    # the CLI: a table on stdout, JSON only with --out (same short horizon)
    monkeypatch.setattr(pr, "predictor_report", lambda c: r)
    out = tmp_path / "pred.json"
    assert pr.main(["--dcs", "4", "--out", str(out)]) == 0
    assert "EWMA regression" in capsys.readouterr().out
    assert json.loads(out.read_text())["per_origin"]["ewma"]["accuracy"] == r["per_origin"]["ewma"]["accuracy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.json"]


def test_predictor_report_bad_input_exits_2(capsys):
    assert pr.main(["--dcs", "3"]) == 2
    assert "--dcs 3" in capsys.readouterr().err
