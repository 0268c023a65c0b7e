"""Pareto hypervolume (PHV, paper section 6.1 and Fig. 4) of sets of 4-objective points, all minimized.

Protocol (the paper's rule, made exact):
- every objective is normalized over all points of one study: `(x - min) / (max - min)`, so 0 is the best and 1
  the worst value observed in the study (an objective with no spread maps to 0);
- the reference point is the worst observed value of each objective, i.e. 1 in every normalized coordinate,
  plus `ref_offset` (default `REF_OFFSET`). With no offset a point that is the worst of the study in any one
  objective lies on the reference box's face and contributes exactly zero volume; the small offset keeps such
  points visible (their volume is then at most `REF_OFFSET` times the rest) without changing the ranking of
  points that are never worst. Pass `ref_offset=0` for the paper's literal rule.
- `log_columns` (the report's feasible hypervolume: TTFT) are taken on the log10 scale before normalizing, so an
  objective spanning orders of magnitude (TTFT 0.02 s .. hours) does not squeeze every other point onto 0;
- a framework's PHV is the hypervolume dominated by its non-dominated points (pymoo's `HV` indicator). For a
  framework with a single point it is the volume of the box between that point and the reference point (the
  paper's single-point rule), which is what `box_volume` computes and what HV gives for one point.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

REF_OFFSET = 0.01  # normalized units added to the worst observed value of each objective (see module docstring)


def normalize(points: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """Min-max normalize the rows of `points` [n, m] per column, with bounds lo / hi (default: the points')."""
    p = np.asarray(points, dtype=float)
    lo = p.min(axis=0) if lo is None else np.asarray(lo, dtype=float)
    hi = p.max(axis=0) if hi is None else np.asarray(hi, dtype=float)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (p - lo) / span


def non_dominated(points: np.ndarray) -> np.ndarray:
    """The rows of `points` not dominated by another row (minimization); duplicates are kept once."""
    p = np.unique(np.asarray(points, dtype=float), axis=0)
    keep = [i for i in range(len(p))
            if not np.any(np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1))]
    return p[keep]


def box_volume(point: np.ndarray, ref: np.ndarray) -> float:
    """The paper's single-point PHV: volume of the box between `point` and `ref` (0 if not strictly inside)."""
    d = np.asarray(ref, dtype=float) - np.asarray(point, dtype=float)
    return float(np.prod(d)) if np.all(d > 0) else 0.0


def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by `points` [n, m] up to `ref` (minimization), with pymoo's HV indicator."""
    from pymoo.indicators.hv import HV

    p = np.atleast_2d(np.asarray(points, dtype=float))
    ref = np.asarray(ref, dtype=float)
    if len(p) == 0:
        return 0.0
    p = p[np.all(p < ref, axis=1)]  # points on or beyond the reference contribute nothing
    if len(p) == 0:
        return 0.0
    if len(p) == 1:
        return box_volume(p[0], ref)
    return float(HV(ref_point=ref)(p))


LOG_FLOOR = 1e-12  # a value taken on the log scale is at least this (a zero would have no logarithm)


def study_hypervolumes(groups: Mapping[str, np.ndarray], ref_offset: float = REF_OFFSET,
                       log_columns: Sequence[int] = ()) -> dict:
    """PHV of each group's points, normalized over all groups together (one study), the `log_columns` on the
    log10 scale.

    Returns name -> {"points": n, "front": non-dominated count, "phv": hypervolume}; `groups` maps a framework
    to its raw (unnormalized) points [n, m]. Groups with no points get phv NaN.
    """
    names = [k for k in groups if len(groups[k])]
    result = {k: {"points": 0, "front": 0, "phv": float("nan")} for k in groups}
    if not names:
        return result
    def scaled(p) -> np.ndarray:
        p = np.atleast_2d(np.asarray(p, dtype=float)).copy()
        for c in log_columns:
            p[:, c] = np.log10(np.maximum(p[:, c], LOG_FLOOR))
        return p

    allp = np.vstack([scaled(groups[k]) for k in names])
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    ref = np.ones(allp.shape[1]) + ref_offset
    for k in names:
        z = normalize(scaled(groups[k]), lo, hi)
        front = non_dominated(z)
        result[k] = {"points": len(z), "front": len(front), "phv": hypervolume(front, ref)}
    return result
