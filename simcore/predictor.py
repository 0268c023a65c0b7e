"""Workload predictor (paper section 5.1): next epoch's request count per series (the engine: per (model, origin)).

This module owns the two one-step-ahead forecasters; both take one epoch's observed counts with `update(counts)`
(any array shape, the same every epoch; each element is its own series) and forecast the next epoch with
`predict()` (same shape, >= 0; None before any history).

- `EwmaRegression`, the paper's predictor and the one the engine uses: for each series, a straight line fitted to
  the last `tw` epochs by weighted least squares with exponentially decaying weights (newest weight alpha, then
  alpha(1-alpha), ...), extrapolated one epoch. With one epoch of history it repeats it; with alpha = 1 only the
  newest epoch has weight, the slope is undetermined and taken as 0 (it repeats the newest epoch). Before any
  history predict() returns None (a run starts cold; the engine then plans for zero requests).
- `MlpPredictor`, the "neural network baseline" the paper compares against: a small torch MLP fitted offline on
  other series (`fit`), then used exactly like EwmaRegression. Only `fit` needs torch; it is imported there, so
  importing this module (as the engine does) does not load torch.

`reports/predictor_report.py` measures both on the bundled trace.
"""
from __future__ import annotations

import numpy as np

from simcore.rng import stream


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
    if sxx <= 0.0:
        # alpha = 1: all weight on the newest epoch, so no slope can be fitted (0/0); repeat that epoch.
        return np.maximum(ym, 0.0)
    sxy = np.tensordot(w * (x - xm), y - ym, axes=1)
    slope = sxy / sxx
    return np.maximum(ym + slope * (1.0 - xm), 0.0)


class MlpPredictor:
    """The paper's "neural network baseline" predictor (section 5.1): a small MLP, for comparison with EwmaRegression.

    Input: a series' last `window` (tw) epoch counts divided by their mean; output: the next epoch's count divided
    by the same mean (so one network serves series of any volume). Hidden layers: `hidden` (default two of 32),
    ReLU. `fit` trains it with Adam on every full window of the training series (L1 loss on the normalized
    target, i.e. roughly the relative error that MAPE scores), on CPU, deterministically given `seed`: the
    weights' initialization and the minibatch order come from the seed's "predictor" stream, inside a forked
    torch RNG, so no global random state is touched. After fitting, the weights are copied to numpy and
    `predict()` runs the same forward pass in numpy (no torch call per prediction).

    Like EwmaRegression, `update(counts)` records an epoch (any shape, one series per element) and `predict()`
    forecasts every element (>= 0) from its own last `window` epochs. With fewer than `window` epochs of history
    the window is padded on the left with the oldest epoch held; before any history predict() returns None; a
    series whose window is all zeros is predicted 0.

    :param window: tw, the number of past epochs the network reads
    :param seed: the run's seed (the "predictor" stream is spawned from it)
    :param hidden: hidden layer widths
    :param steps: Adam steps of `fit`
    :param lr: Adam learning rate
    :param batch: windows per minibatch
    """

    def __init__(self, window: int, seed: int = 0, hidden: tuple[int, ...] = (32, 32), steps: int = 400,
                 lr: float = 3e-3, batch: int = 256) -> None:
        if window < 1 or steps < 1 or batch < 1 or not hidden or min(hidden) < 1 or not lr > 0:
            raise ValueError("MlpPredictor: window, steps, batch and hidden widths must be >= 1 and lr > 0")
        self.window, self.seed, self.hidden = window, seed, tuple(hidden)
        self.steps, self.lr, self.batch = steps, lr, batch
        self.history: list[np.ndarray] = []
        self.layers: list[tuple[np.ndarray, np.ndarray]] | None = None  # (W [out, in], b [out]) per layer
        self.train_windows = 0
        self.final_loss = float("nan")

    # --- training ------------------------------------------------------------------------------------
    def windows(self, series_list) -> tuple[np.ndarray, np.ndarray]:
        """(X [n, window], y [n]): every full window of every series, normalized by the window's mean.

        Each item of `series_list` is an array [epochs, ...]; every trailing element is a separate series.
        Windows whose mean is 0 are left out (nothing to normalize by; predict() answers 0 there).
        """
        xs, ys = [], []
        for s in series_list:
            s = np.asarray(s, dtype=float)
            s = s.reshape(len(s), -1)
            if len(s) <= self.window:
                continue
            # win[t, j, :] = s[t : t + window, j], target s[t + window, j]
            win = np.lib.stride_tricks.sliding_window_view(s[:-1], self.window, axis=0)
            x = win.reshape(-1, self.window)
            y = s[self.window:].reshape(-1)
            m = x.mean(axis=1)
            ok = m > 0
            xs.append(x[ok] / m[ok, None])
            ys.append(y[ok] / m[ok])
        if not xs or sum(len(y) for y in ys) == 0:
            raise ValueError(f"MlpPredictor.fit: no series longer than the window ({self.window}) with nonzero counts")
        return np.concatenate(xs), np.concatenate(ys)

    def fit(self, series_list) -> "MlpPredictor":
        """Train on every full window of `series_list` (arrays [epochs, ...]); deterministic given the seed."""
        import torch  # lazily: only training needs torch

        x_np, y_np = self.windows(series_list)
        torch_seed = int(stream(self.seed, "predictor").integers(2**31 - 1))
        threads = torch.get_num_threads()
        # One intra-op thread: the matrices are tiny, so more threads only spin (seconds -> a minute on a busy
        # machine), and a fixed thread count keeps the float reductions, hence the weights, reproducible.
        torch.set_num_threads(1)
        try:
            self._train(torch, x_np, y_np, torch_seed)
        finally:
            torch.set_num_threads(threads)
        return self

    def _train(self, torch, x_np: np.ndarray, y_np: np.ndarray, torch_seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            gen = torch.Generator().manual_seed(torch_seed)
            dims = (self.window, *self.hidden)
            mods: list = []
            for a, b in zip(dims[:-1], dims[1:]):
                mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
            net = torch.nn.Sequential(*mods, torch.nn.Linear(dims[-1], 1))
            x = torch.as_tensor(x_np, dtype=torch.float32)
            y = torch.as_tensor(y_np, dtype=torch.float32)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            n = len(y)
            for _ in range(self.steps):
                idx = torch.randint(n, (min(self.batch, n),), generator=gen)
                loss = torch.nn.functional.l1_loss(net(x[idx]).squeeze(1), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                self.final_loss = float(torch.nn.functional.l1_loss(net(x).squeeze(1), y))
            self.layers = [(m.weight.detach().numpy().astype(np.float64), m.bias.detach().numpy().astype(np.float64))
                           for m in net if isinstance(m, torch.nn.Linear)]
        self.train_windows = n

    # --- forecasting ---------------------------------------------------------------------------------
    def update(self, counts: np.ndarray) -> None:
        """Record one finished epoch's observed counts (any shape, same every epoch)."""
        self.history.append(np.asarray(counts, dtype=float))
        del self.history[: -self.window]

    def predict(self) -> np.ndarray | None:
        """Forecast of the next epoch (same shape as the counts), or None before any history."""
        if self.layers is None:
            raise RuntimeError("MlpPredictor.predict: call fit() first")
        if not self.history:
            return None
        h = np.stack(self.history)
        shape = h.shape[1:]
        h = h.reshape(len(h), -1)
        if len(h) < self.window:
            h = np.concatenate([np.repeat(h[:1], self.window - len(h), axis=0), h])
        return self.forward(h.T).reshape(shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Forecasts for raw count windows x [n, window] (oldest first): the network on x / mean, times the mean."""
        if self.layers is None:
            raise RuntimeError("MlpPredictor: call fit() first")
        m = x.mean(axis=1)
        z = x / np.where(m > 0, m, 1.0)[:, None]
        for i, (w, b) in enumerate(self.layers):
            z = z @ w.T + b
            if i < len(self.layers) - 1:
                z = np.maximum(z, 0.0)
        return np.maximum(z[:, 0] * m, 0.0)  # an all-zero window (m = 0) forecasts 0
