"""The measured grok crossing: where one run's accuracy first reaches a threshold.

One definition, read wherever a forecast grok point meets what a run did: the backtest
(forecast against observed tokens to the threshold), the demo's check of its verification
model, and the grok-vs-size figure. The measured curve is the run's accuracy made
non-decreasing in tokens (`monotone`: isotonic regression, weighted by 1/stderr²), so one
noisy checkpoint above the threshold is not a crossing; the crossing is interpolated
linearly in accuracy between the checkpoints either side, on a log-tokens axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CROSSED, BEFORE, NEVER = "crossed", "before", "never"


@dataclass(frozen=True)
class Crossing:
    """Where a trajectory first reaches the threshold: `tokens` (training tokens) and
    `kind`: `crossed` (interpolated in log tokens between the checkpoints either side),
    `before` (already above at the first checkpoint: `tokens` is an upper bound) or `never`
    (not by the last checkpoint: `tokens` is the last, a lower bound)."""

    tokens: float
    kind: str


def monotone(accuracy: Sequence[float], stderr: Sequence[float] | None = None) -> np.ndarray:
    """`accuracy` (in token order) made non-decreasing: isotonic regression weighted by
    1/stderr² (Barlow et al. 1972); a missing or non-positive stderr takes the median one."""
    from scipy.optimize import isotonic_regression

    accuracy = np.asarray(accuracy, dtype=float)
    se = np.full(accuracy.shape, np.nan) if stderr is None else np.asarray(stderr, dtype=float)
    good = np.isfinite(se) & (se > 0)
    fill = np.median(se[good]) if good.any() else 1.0
    weights = 1.0 / np.where(good, se, fill) ** 2
    return isotonic_regression(accuracy, weights=weights).x


def first_crossing(tokens: Sequence[float], accuracy: Sequence[float], threshold: float) -> Crossing:
    """First crossing of `threshold` by a curve given as accuracy at each checkpoint's tokens
    (taken as it is: `measured_crossing` smooths a raw trajectory first)."""
    tokens = np.asarray(tokens, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    order = np.argsort(tokens, kind="stable")
    tokens, accuracy = tokens[order], accuracy[order]
    above = np.flatnonzero(accuracy >= threshold)
    if len(above) == 0:
        return Crossing(float(tokens[-1]), NEVER)
    i = int(above[0])
    if i == 0:
        return Crossing(float(tokens[0]), BEFORE)
    if accuracy[i] <= accuracy[i - 1]:
        return Crossing(float(tokens[i]), CROSSED)
    t0, t1 = math.log(tokens[i - 1]), math.log(tokens[i])
    frac = (threshold - accuracy[i - 1]) / (accuracy[i] - accuracy[i - 1])
    return Crossing(math.exp(t0 + frac * (t1 - t0)), CROSSED)


def measured_crossing(tokens: Sequence[float], accuracy: Sequence[float], threshold: float,
                      stderr: Sequence[float] | None = None) -> Crossing:
    """The measured grok crossing of one run's raw trajectory: `first_crossing` of its
    `monotone` smoothing (`stderr`, per checkpoint, weights it)."""
    tokens = np.asarray(tokens, dtype=float)
    order = np.argsort(tokens, kind="stable")
    se = None if stderr is None else np.asarray(stderr, dtype=float)[order]
    return first_crossing(tokens[order], monotone(np.asarray(accuracy, dtype=float)[order], se), threshold)
