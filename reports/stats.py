"""Confidence intervals over seeds: Student's t-interval of a mean (scipy) and of a difference of two means.

`mean_ci(values)` gives (n, mean, low, high) of the 95 % t-interval (SPEC 11: mean and 95 % confidence interval
over seeds). With one value the interval is undefined and reported as NaN; with zero spread it collapses onto
the mean. A quantity that cannot be negative gets its t-interval on the log scale (`scale="log"`), a rate in
[0, 1] on the logit scale (`scale="logit"`): the interval of the transformed mean, by the delta method
(standard error of log m = s / (m sqrt n); of logit m = s / (m (1 - m) sqrt n)), mapped back, so it contains
the mean and stays within the quantity's range (a plain t-interval over two seeds ran below zero for water). `diff_ci(a, b)` is Welch's interval of mean(a) - mean(b) (unequal variances), used for the measured
deltas of the reproduction table.
"""
from __future__ import annotations

import math
from typing import Iterable, NamedTuple

import numpy as np
from scipy import special, stats

CONFIDENCE = 0.95  # two-sided confidence level of every interval in the reports


class Interval(NamedTuple):
    n: int
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def _clean(values: Iterable[float]) -> np.ndarray:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    return a[np.isfinite(a)]


SCALES = ("linear", "log", "logit")  # the scales an interval may be computed on (module docstring)


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE, scale: str = "linear") -> Interval:
    """Mean and the t-interval `mean +- t_{(1+c)/2, n-1} * s / sqrt(n)` of the finite values, on `scale`
    ('linear'; 'log' for a non-negative quantity; 'logit' for a rate in [0, 1]: module docstring)."""
    a = _clean(values)
    n = len(a)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan)
    m = float(a.mean())
    if n == 1:
        return Interval(1, m, math.nan, math.nan)
    sem = float(a.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return Interval(n, m, m, m)
    if scale == "linear":
        low, high = stats.t.interval(confidence, n - 1, loc=m, scale=sem)
        return Interval(n, m, float(low), float(high))
    t = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1))
    if scale == "log":
        if m <= 0:
            return Interval(n, m, 0.0, 0.0) if m == 0 else Interval(n, m, math.nan, math.nan)
        h = t * sem / m
        return Interval(n, m, m * float(np.exp(-h)), m * float(np.exp(min(h, 700.0))))
    if scale == "logit":
        if not 0.0 < m < 1.0:
            return Interval(n, m, math.nan, math.nan)
        z, h = math.log(m / (1.0 - m)), t * sem / (m * (1.0 - m))
        return Interval(n, m, float(special.expit(z - h)), float(special.expit(z + h)))
    raise ValueError(f"scale {scale!r}: one of {', '.join(SCALES)}")


def diff_ci(a: Iterable[float], b: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """Welch's t-interval of mean(a) - mean(b); NaN bounds where either side has fewer than two values."""
    x, y = _clean(a), _clean(b)
    if len(x) == 0 or len(y) == 0:
        return Interval(0, math.nan, math.nan, math.nan)
    d = float(x.mean() - y.mean())
    n = min(len(x), len(y))
    if len(x) < 2 or len(y) < 2:
        return Interval(n, d, math.nan, math.nan)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0.0:
        return Interval(n, d, d, d)
    dof = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))  # Welch-Satterthwaite
    low, high = stats.t.interval(confidence, dof, loc=d, scale=se)
    return Interval(n, d, float(low), float(high))


def overlap(a: Interval, b: Interval) -> bool:
    """Whether two intervals overlap; an undefined interval (NaN bounds) counts as overlapping (unknown)."""
    if any(math.isnan(v) for v in (a.low, a.high, b.low, b.high)):
        return True
    return a.low <= b.high and b.low <= a.high
