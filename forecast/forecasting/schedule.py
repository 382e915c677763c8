"""The shape of a run's curve along its learning-rate schedule, read off the ladder's own runs.

A checkpoint taken at 25% of a run's planned tokens sits mid-schedule: its learning rate has
not decayed, so it reads lower than a finished model trained on those tokens would. The
ladder's intermediate checkpoints say by how much, at equal *fraction* of training: for each
pilot, the gap g(f) = ℓ(acc at fraction f) − ℓ(acc at its end), with ℓ the logit of accuracy
above the floor (`Logit`; `Linear` for skills at their floor). The gap for the target is the
pilots' gaps weighted by closeness in ln(parameters) and in ln(tokens per parameter), and their
scatter is the uncertainty of a run's shape; read along the fitted law instead, the law carries
the trend with size and the pilots only what it misses (`schedule_shape(..., law=)`); `blend`
averages the two readings. A ladder of final checkpoints only gives no shape
(`ScheduleShape.known` is False): callers assume no gap and widen the interval by
`FINAL_ONLY_SPREAD` logits per e-fold of training still to come.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from forecast.fitting.results import PilotRun

CLIP = 0.02
"""Normalised accuracy q = (acc − floor)/(top − floor) is clipped to [CLIP, 1 − CLIP] before
its logit: a checkpoint at chance carries no information about how far below chance."""
FINAL_ONLY_SPREAD = 1.0
"""Shape uncertainty (logits per e-fold of training still to come) assumed when the ladder
has no intermediate checkpoints: a mid-schedule checkpoint may sit well below its end."""
MIN_SPREAD = 0.05
"""Floor of the shape scatter (logits) from half way through training on: no two runs share a
curve exactly (it falls to 0 at the end, where a checkpoint is the run's end)."""
SIZE_SCALE = 1.0
"""E-folds of model size over which a pilot's schedule shape speaks for another size."""
END_STRETCH = 0.7
"""A pilot's end is read as its mean over checkpoints past this fraction, relative to the law."""
BUDGET_SCALE = 0.5
"""E-folds of tokens per parameter over which a pilot's schedule shape speaks for another run."""
MIN_CHECKPOINTS = 3
"""A pilot gives a shape when it has at least this many checkpoints."""


@dataclass(frozen=True)
class Logit:
    """ℓ(acc) = logit of accuracy normalised between `floor` and `top` (both fractions)."""

    floor: float
    top: float

    @property
    def unit(self) -> float:
        """What one logit is in this scale (the constants here are in logits)."""
        return 1.0

    def __call__(self, accuracy: np.ndarray | float) -> np.ndarray:
        q = (np.asarray(accuracy, float) - self.floor) / (self.top - self.floor)
        q = np.clip(q, CLIP, 1 - CLIP)
        return np.log(q / (1 - q))

    def inverse(self, logit: np.ndarray | float) -> np.ndarray:
        return self.floor + (self.top - self.floor) / (1 + np.exp(-np.asarray(logit, float)))

    def stderr(self, accuracy: np.ndarray, stderr: np.ndarray) -> np.ndarray:
        """An accuracy's standard error carried into logits (delta method, at the clipped q)."""
        q = np.clip((np.asarray(accuracy, float) - self.floor) / (self.top - self.floor), CLIP, 1 - CLIP)
        return np.asarray(stderr, float) / ((self.top - self.floor) * q * (1 - q))


@dataclass(frozen=True)
class Linear:
    """Accuracy itself (fractions), for skills with no transition to straighten: a level, or
    one sitting at or below its floor, where a logit would clip away every difference."""

    floor: float = 0.0
    top: float = 1.0

    @property
    def unit(self) -> float:
        """One logit at mid-transition, in accuracy: d acc / d logit = (top − floor)/4."""
        return (self.top - self.floor) / 4

    def __call__(self, accuracy: np.ndarray | float) -> np.ndarray:
        return np.asarray(accuracy, float)

    def inverse(self, value: np.ndarray | float) -> np.ndarray:
        return np.asarray(value, float)

    def stderr(self, accuracy: np.ndarray, stderr: np.ndarray) -> np.ndarray:
        return np.asarray(stderr, float) + 0 * np.asarray(accuracy, float)


@dataclass(frozen=True)
class ScheduleShape:
    """Gap to a run's end at fractions of its schedule, for a target of `params` parameters.

    `gap(f)` (logits, ≤ 0 for a rising skill) and `spread(f)` (its scatter across pilots,
    logits) at fraction f = tokens / planned tokens, in (0, 1]."""

    params: float
    fractions: np.ndarray  # grid of fractions, ascending, ending at 1
    gaps: np.ndarray  # logits, on the grid
    spreads: np.ndarray  # logits, on the grid
    known: bool  # False: final-only ladder, no shape (gap 0, spread FINAL_ONLY_SPREAD·ln(1/f))
    pilots: int  # pilots that gave a shape
    earliest: float  # smallest fraction the pilots cover
    unit: float = 1.0  # one logit in the scale of the gaps (`Logit.unit`, `Linear.unit`)

    def gap(self, fraction: np.ndarray | float) -> np.ndarray:
        f = np.clip(np.asarray(fraction, float), self.earliest, 1.0)
        return np.interp(np.log(f), np.log(self.fractions), self.gaps)

    def spread(self, fraction: np.ndarray | float) -> np.ndarray:
        f = np.asarray(fraction, float)
        if not self.known:
            return FINAL_ONLY_SPREAD * self.unit * np.log(1 / np.clip(f, 1e-6, 1.0))
        inside = np.interp(np.log(np.clip(f, self.earliest, 1.0)), np.log(self.fractions), self.spreads)
        # before the pilots' earliest checkpoint the shape is unmeasured: widen per e-fold
        below = FINAL_ONLY_SPREAD * self.unit * np.maximum(np.log(self.earliest / np.clip(f, 1e-9, None)), 0.0)
        return np.sqrt(inside ** 2 + below ** 2)


def schedule_shape(pilots: Sequence[PilotRun], params: float, planned: float, logit: Logit | Linear,
                   law: Callable[[float, np.ndarray], np.ndarray] | None = None, grid: int = 40) -> ScheduleShape:
    """The ladder's curve shape at equal fraction of training, carried to a run of `params`
    parameters planned for `planned` tokens: pilots nearest in size and in tokens per
    parameter speak for it (a 10×-Chinchilla run is nearly trained at a quarter of its
    schedule, a 0.5× one is not).

    With `law` (params, tokens -> the fitted law's median accuracy), the law carries the
    shape's trend with size (a larger model is further along at equal fraction) and the
    pilots give only what the law misses at equal fraction, the schedule's own effect:
    gap = [ℓ(law(N, f·D)) − ℓ(law(N, D))] + Σ w_p·c_p(f), with c_p a pilot's observed gap
    minus the law's gap for that pilot. On a ladder whose law was fitted on intermediate
    checkpoints c is small; on a budget ladder (laws on final checkpoints) it is the cost of
    being mid-schedule."""
    shaped = [p for p in pilots if len(p.tokens) >= MIN_CHECKPOINTS and math.isfinite(p.tokens[-1])
              and p.tokens[-1] > 0]
    if not shaped:
        f = np.array([1.0])
        return ScheduleShape(params, f, np.zeros(1), np.zeros(1), False, 0, 1.0, logit.unit)
    curves = []
    for p in shaped:
        tokens = np.asarray(p.tokens, float)
        frac = tokens / tokens[-1]
        level = logit(np.asarray(p.accuracy, float))
        if law is not None:  # what the law already says about this pilot's curve
            level = level - logit(law(p.params, tokens))
        # relative to its end (with a law: the mean residual over the last stretch, as an
        # isotonic or single end point would carry its noise into every gap); with a law the
        # curve is now c_p, what the law misses, and the target's own law gap is added below
        tail = frac >= END_STRETCH if law is not None else frac >= frac[-1]
        level = level - float(np.mean(level[tail]))
        distance = (abs(math.log(p.params / params)) / SIZE_SCALE
                    + abs(math.log(tokens[-1] / p.params) - math.log(planned / params)) / BUDGET_SCALE)
        curves.append((distance, np.log(frac), level))
    earliest = float(np.exp(np.median([c[1][0] for c in curves])))
    fractions = np.geomspace(earliest, 1.0, grid)
    gaps, spreads = np.zeros(grid), np.zeros(grid)
    for i, f in enumerate(np.log(fractions)):
        xs, ys = [], []
        for size, lf, gap in curves:
            if lf[0] <= f + 1e-9:
                xs.append(size)
                ys.append(float(np.interp(f, lf, gap)))
        if not xs:
            gaps[i], spreads[i] = (gaps[i - 1], spreads[i - 1]) if i else (0.0, FINAL_ONLY_SPREAD * logit.unit)
            continue
        gaps[i], spreads[i] = _carry(np.array(xs), np.array(ys))
    if law is not None:
        own = logit(law(params, fractions * planned))
        gaps = gaps + (own - own[-1])
    # the end is the end: no shape error at f = 1, the floor reached by half way from it
    floor = MIN_SPREAD * logit.unit * np.minimum(np.log(1 / fractions) / math.log(2), 1.0)
    gaps[-1] = 0.0
    spreads = np.maximum(spreads, floor)
    spreads[-1] = 0.0
    return ScheduleShape(params, fractions, gaps, spreads, True, len(shaped), earliest, logit.unit)


def _carry(distances: np.ndarray, gaps: np.ndarray) -> tuple[float, float]:
    """The gap at the target and its scatter: the pilots' gaps weighted by exp(−distance),
    so the pilots nearest the target speak for it (the smallest pilots' late schedule often
    differs: they saturate and even decline)."""
    weights = np.exp(-distances)
    weights = weights / weights.sum()
    mean = float(np.sum(weights * gaps))
    if len(gaps) < 2:
        return mean, abs(mean) * 0.5
    effective = 1 / float(np.sum(weights ** 2))  # Kish's effective number of pilots
    var = float(np.sum(weights * (gaps - mean) ** 2)) * effective / max(effective - 1, 1e-9)
    return mean, math.sqrt(var * (1 + 1 / effective))



def blend(a: ScheduleShape, b: ScheduleShape) -> ScheduleShape:
    """Two readings of one shape (on one grid) averaged, their disagreement added to the
    scatter: gap = (g_a + g_b)/2, spread² = (s_a² + s_b²)/2 + ((g_a − g_b)/2)²."""
    half = (a.gaps - b.gaps) / 2
    return ScheduleShape(a.params, a.fractions, (a.gaps + b.gaps) / 2,
                         np.sqrt((a.spreads ** 2 + b.spreads ** 2) / 2 + half ** 2), a.known, a.pilots, a.earliest,
                         a.unit)
