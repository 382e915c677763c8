"""The shape of a run's curve along its learning-rate schedule, read off the ladder's own runs.

A checkpoint taken at 25% of a run's planned tokens sits mid-schedule: its learning rate has
not decayed, so it reads lower than a finished model trained on those tokens would. The
ladder's intermediate checkpoints say by how much, at equal *fraction* of training: for each
pilot, the gap g(f) = ℓ(acc at fraction f) − ℓ(acc at its end), with ℓ the logit of accuracy
above the floor (`Logit`). The gap at the target's size is the pilots' gaps weighted by closeness
in ln(parameters), and their scatter is the uncertainty of a run's shape. A ladder of final checkpoints only
gives no shape (`ScheduleShape.known` is False): callers assume no gap and widen the interval
by `FINAL_ONLY_SPREAD` logits per e-fold of training still to come.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
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
"""Floor of the shape scatter (logits): no two runs share a curve exactly."""
SIZE_SCALE = 1.0
"""E-folds of model size over which a pilot's schedule shape speaks for another size."""
MIN_CHECKPOINTS = 3
"""A pilot gives a shape when it has at least this many checkpoints."""


@dataclass(frozen=True)
class Logit:
    """ℓ(acc) = logit of accuracy normalised between `floor` and `top` (both fractions)."""

    floor: float
    top: float

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

    def gap(self, fraction: np.ndarray | float) -> np.ndarray:
        f = np.clip(np.asarray(fraction, float), self.earliest, 1.0)
        return np.interp(np.log(f), np.log(self.fractions), self.gaps)

    def spread(self, fraction: np.ndarray | float) -> np.ndarray:
        f = np.asarray(fraction, float)
        if not self.known:
            return np.maximum(FINAL_ONLY_SPREAD * np.log(1 / np.clip(f, 1e-6, 1.0)), MIN_SPREAD)
        inside = np.interp(np.log(np.clip(f, self.earliest, 1.0)), np.log(self.fractions), self.spreads)
        # before the pilots' earliest checkpoint the shape is unmeasured: widen per e-fold
        below = FINAL_ONLY_SPREAD * np.maximum(np.log(self.earliest / np.clip(f, 1e-9, None)), 0.0)
        return np.sqrt(inside ** 2 + below ** 2)


def schedule_shape(pilots: Sequence[PilotRun], params: float, logit: Logit, grid: int = 40) -> ScheduleShape:
    """The ladder's curve shape at equal fraction of training, carried to `params` parameters."""
    shaped = [p for p in pilots if len(p.tokens) >= MIN_CHECKPOINTS and math.isfinite(p.tokens[-1])
              and p.tokens[-1] > 0]
    if not shaped:
        f = np.array([1.0])
        return ScheduleShape(params, f, np.zeros(1), np.full(1, MIN_SPREAD), False, 0, 1.0)
    curves = []
    for p in shaped:
        tokens = np.asarray(p.tokens, float)
        frac = tokens / tokens[-1]
        level = logit(np.asarray(p.smoothed, float))
        curves.append((math.log(p.params), np.log(frac), level - level[-1]))
    earliest = float(np.exp(np.median([c[1][0] for c in curves])))
    fractions = np.geomspace(earliest, 1.0, grid)
    gaps, spreads = np.zeros(grid), np.full(grid, MIN_SPREAD)
    target = math.log(params)
    for i, f in enumerate(np.log(fractions)):
        xs, ys = [], []
        for size, lf, gap in curves:
            if lf[0] <= f + 1e-9:
                xs.append(size)
                ys.append(float(np.interp(f, lf, gap)))
        if not xs:
            gaps[i], spreads[i] = (gaps[i - 1], spreads[i - 1]) if i else (0.0, FINAL_ONLY_SPREAD)
            continue
        gaps[i], spreads[i] = _carry(np.array(xs), np.array(ys), target)
    gaps[-1], spreads[-1] = 0.0, MIN_SPREAD
    return ScheduleShape(params, fractions, gaps, np.maximum(spreads, MIN_SPREAD), True, len(shaped), earliest)


def _carry(sizes: np.ndarray, gaps: np.ndarray, target: float) -> tuple[float, float]:
    """The gap at ln(params) = `target` and its scatter: the pilots' gaps weighted by
    exp(−|ln N − ln N_target| / `SIZE_SCALE`), so the sizes nearest the target speak for it
    (the smallest pilots' late schedule often differs: they saturate and even decline)."""
    weights = np.exp(-np.abs(sizes - target) / SIZE_SCALE)
    weights = weights / weights.sum()
    mean = float(np.sum(weights * gaps))
    if len(gaps) < 2:
        return mean, abs(mean) * 0.5
    effective = 1 / float(np.sum(weights ** 2))  # Kish's effective number of pilots
    var = float(np.sum(weights * (gaps - mean) ** 2)) * effective / max(effective - 1, 1e-9)
    return mean, math.sqrt(var * (1 + 1 / effective))


def law_shape(shape: ScheduleShape, curve, planned: float, logit: Logit) -> ScheduleShape:
    """The same shape with its gaps read off the ladder's fitted law along the run instead:
    g(f) = ℓ(law(N, f·D)) − ℓ(law(N, D)), `curve(tokens) -> accuracy` the law's median at the
    target's size. Right when the law was fitted on intermediate checkpoints of runs with the
    target's schedule length (a single-budget ladder like Pythia's): the law then carries the
    shape's trend with size, which a mean over pilots cannot. The scatter stays the pilots'."""
    levels = logit(curve(shape.fractions * planned))
    return dataclasses.replace(shape, gaps=levels - levels[-1])
