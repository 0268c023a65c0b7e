"""Workload predictor (paper section 5.1): next epoch's request count per (model, origin).

`EwmaRegression` fits, for each series, a straight line to the last `tw` epochs by weighted least squares with
exponentially decaying weights (newest weight alpha, then alpha(1-alpha), ...), and extrapolates one epoch.
With one epoch of history it repeats it; with none it predicts zero (a run starts cold: documented).
"""
from __future__ import annotations

import numpy as np


class EwmaRegression:
    """Exponentially weighted moving-average regression over the last `window` epochs.

    :param window: tw, the number of past epochs used
    :param alpha: weight of the newest epoch; older epochs decay by (1 - alpha) each
    """

    def __init__(self, window: int, alpha: float) -> None:
        if window < 1 or not (0 < alpha <= 1):
            raise ValueError("predictor window must be >= 1 and alpha in (0, 1]")
        self.window, self.alpha = window, alpha
        self.history: list[np.ndarray] = []

    def update(self, counts: np.ndarray) -> None:
        """Record one finished epoch's observed counts (any shape, same every epoch)."""
        self.history.append(np.asarray(counts, dtype=float))
        del self.history[: -self.window]

    def predict(self) -> np.ndarray | None:
        """Forecast of the next epoch (same shape as the counts), or None before any history."""
        if not self.history:
            return None
        return ewma_regression_forecast(np.stack(self.history), self.alpha)


def ewma_regression_forecast(y: np.ndarray, alpha: float) -> np.ndarray:
    """One-step forecast from y [k, ...] (oldest first) by exponentially weighted linear regression, >= 0."""
    k = y.shape[0]
    if k == 1:
        return y[0].copy()
    x = np.arange(k, dtype=float) - (k - 1)  # newest at x = 0, forecast at x = 1
    w = alpha * (1.0 - alpha) ** (-x)
    w = w / w.sum()
    xm = (w * x).sum()
    ym = np.tensordot(w, y, axes=1)
    sxx = (w * (x - xm) ** 2).sum()
    sxy = np.tensordot(w * (x - xm), y - ym, axes=1)
    slope = sxy / sxx
    return np.maximum(ym + slope * (1.0 - xm), 0.0)
