"""A recipe ladder as released: final checkpoints only, one per size and budget, per recipe.

Each run contributes, per skill, its final checkpoint: accuracy (with its evaluation noise),
and where logged the skill's own task loss and the probability of the correct answer. A
comparison of recipes on such a ladder cannot read a speed of grokking from a trajectory;
it reads the recipes' forecasts at the target instead, from one `SharedShape` fit per
metric in which the recipes share the scaling shape and differ by an offset
(forecast/fitting/pooling.py). Runs with trajectories contribute their final checkpoints
only: an intermediate checkpoint is not a model trained to that budget (its learning rate
has not decayed).

The deciding metric (`METRICS`) is the one that separates the recipes best relative to its
noise: per metric, the signal-to-noise is the root mean square over recipe pairs of the
offset difference in standard errors (`SharedShape.offset_z`). The noise is the fit's
residual scatter, which holds evaluation noise, seed-to-seed and model-to-model scatter;
for accuracy it is never less than the binomial noise of the benchmark's items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.errors import FitError
from forecast.fitting.observations import MODEL_SCATTER, UNKNOWN_TOKENS
from forecast.fitting.pooling import EDGE, SharedShape, fit_shared_shape
from forecast.runs.benchmarks import chance_for
from forecast.runs.model import Run

METRICS = ("accuracy", "loss", "prob")
"""Candidate deciding metrics: accuracy (logit above the floor), the skill's own task loss
(−ln loss) and the mean probability of the correct answer (ln prob). Higher y is better."""


@dataclass(frozen=True, eq=False)
class LadderPoints:
    """One skill's final checkpoints across the compared groups (arrays aligned by run).
    Units: `params` parameters, `tokens` training tokens; `stderr` of accuracy (NaN where
    unknown); `loss`, `prob` NaN where not logged."""

    skill: str
    groups: tuple[str, ...]
    group: np.ndarray  # index into `groups`
    run: tuple[str, ...]
    params: np.ndarray
    tokens: np.ndarray
    accuracy: np.ndarray
    stderr: np.ndarray
    loss: np.ndarray
    prob: np.ndarray
    floor: float
    top: float

    def subset(self, mask: np.ndarray) -> LadderPoints:
        return LadderPoints(self.skill, self.groups, self.group[mask], tuple(np.array(self.run)[mask]),
                            self.params[mask], self.tokens[mask], self.accuracy[mask], self.stderr[mask],
                            self.loss[mask], self.prob[mask], self.floor, self.top)

    def sizes(self, group: int) -> np.ndarray:
        return np.unique(self.params[self.group == group])

    @property
    def eval_stderr(self) -> float:
        """Typical evaluation noise of one accuracy (median of the pilots'; 0 when unknown)."""
        ok = np.isfinite(self.stderr)
        return float(np.median(self.stderr[ok])) if ok.any() else 0.0


def ladder_points(runs_by_group: dict[str, Sequence[Run]], skill: str) -> LadderPoints:
    """The final checkpoint of `skill` in every run, grouped by label (sorted; a group with
    no run of the skill is left out of it; fewer than two groups is a `FitError`)."""
    groups = tuple(g for g in sorted(runs_by_group) if any(
        s in r.series and r.series[s].accuracy is not None for r in runs_by_group[g] for s in (skill,)))
    if len(groups) < 2:
        raise FitError(f"{skill} was evaluated for {len(groups)} of the compared groups: nothing to compare")
    rows = []
    chance, ceiling = None, None
    for g, label in enumerate(groups):
        for run in runs_by_group[label]:
            s = run.series.get(skill)
            if s is None or s.accuracy is None:
                continue
            ok = np.flatnonzero(np.isfinite(s.accuracy))
            if not len(ok):
                continue
            i = ok[-1]
            tokens = float(s.tokens[i]) if math.isfinite(s.tokens[i]) and s.tokens[i] > 0 else UNKNOWN_TOKENS
            pick = lambda a: float(a[i]) if a is not None else math.nan  # noqa: E731
            rows.append((g, run.name, run.params, tokens, float(s.accuracy[i]), float(s.accuracy_stderr()[i]),
                         pick(s.loss), pick(s.prob)))
            chance = s.chance if chance is None else chance
            ceiling = s.ceiling if ceiling is None else ceiling
    if not rows:
        raise FitError(f"no final checkpoint of {skill}")
    g, names, n, d, acc, se, loss, prob = zip(*rows)
    floor = chance if chance is not None else (chance_for(skill) or 0.0)
    return LadderPoints(skill, groups, np.array(g), tuple(names), np.array(n, float), np.array(d, float),
                        np.array(acc), np.array(se), np.array(loss), np.array(prob), float(floor),
                        float(ceiling) if ceiling else 1.0)


@dataclass(frozen=True, eq=False)
class MetricFit:
    """One metric's joint fit, and how well it separates the groups (`snr`: root mean
    square over pairs of the offset difference in standard errors)."""

    metric: str
    shape: SharedShape
    snr: float


def metric_values(points: LadderPoints, metric: str, floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(y, weight) of `metric` at each point: y higher is better and linear in the logs.
    Accuracy is taken above `floor` (default the chance level), weighted by its evaluation
    noise (`MODEL_SCATTER` where the runs give none); the fit's residual scale adds the
    scatter beyond it."""
    if metric == "accuracy":
        floor = points.floor if floor is None else floor
        span = points.top - floor
        p = np.clip((points.accuracy - floor) / span, EDGE, 1 - EDGE)
        sd = np.where(np.isfinite(points.stderr) & (points.stderr > 0), points.stderr, MODEL_SCATTER) / span
        return np.log(p) - np.log1p(-p), (p * (1 - p) / sd) ** 2  # 1/var(logit) by the delta method
    values = points.loss if metric == "loss" else points.prob
    with np.errstate(divide="ignore", invalid="ignore"):
        y = -np.log(values) if metric == "loss" else np.log(values)
    return y, np.where(np.isfinite(y), 1.0, 0.0)


def floors(points: LadderPoints) -> list[float]:
    """Floors to try for accuracy: the chance level and, where the smallest models sit
    measurably below it (common on real multiple-choice tasks), a few just below the
    lowest score (by 0.5–4 of its standard errors)."""
    low = float(points.accuracy.min())
    se = points.eval_stderr or MODEL_SCATTER
    out = [points.floor]
    if low < points.floor - se:
        out += [low - m * se for m in (0.5, 1.0, 2.0, 4.0) if low - m * se > 0 or m == 0.5]
    return [f for f in out if f >= 0] or [points.floor]


def fit_metric(points: LadderPoints, metric: str, slope_spread: float | None = None) -> MetricFit:
    """The `SharedShape` of one metric (`FitError` where it cannot be fitted); for accuracy
    at the floor (of `floors`) whose fit leaves the least residual in accuracy units, each
    point in units of its evaluation noise (the same yardstick for every floor).
    `slope_spread`: per-recipe slope deviations (`fit_shared_shape`); None, one shared slope."""
    if metric == "accuracy":
        best, best_score = None, math.inf
        sd = np.where(np.isfinite(points.stderr) & (points.stderr > 0), points.stderr, MODEL_SCATTER)
        for floor in floors(points):
            y, w = metric_values(points, metric, floor)
            shape = fit_shared_shape(points.groups, points.group, np.log(points.params), np.log(points.tokens), y, w,
                                     known_noise=True, floor=floor, slope_spread=slope_spread)
            z = shape.predict(points.group, np.log(points.params), np.log(points.tokens))
            fitted = floor + (points.top - floor) / (1 + np.exp(-z))
            score = float(np.sum(((fitted - points.accuracy) / sd) ** 2))
            if score < best_score:
                best, best_score = shape, score
        shape = best
    else:
        y, w = metric_values(points, metric)
        if int(np.isfinite(y).sum()) < len(y):
            raise FitError(f"{metric} is not logged at every final checkpoint")
        shape = fit_shared_shape(points.groups, points.group, np.log(points.params), np.log(points.tokens), y, w,
                                 known_noise=False, slope_spread=slope_spread)
    k = len(points.groups)
    z = [shape.offset_z(points.groups[i], points.groups[j]) for i in range(k) for j in range(i + 1, k)]
    return MetricFit(metric, shape, float(np.sqrt(np.mean(np.square(z)))) if z else 0.0)


def fit_metrics(points: LadderPoints, metrics: Sequence[str] = METRICS,
                slope_spread: float | None = None) -> tuple[dict[str, MetricFit], dict[str, str]]:
    """Every candidate metric's fit (accuracy first) and, per metric left out, why."""
    fits, skipped = {}, {}
    for metric in metrics:
        try:
            fits[metric] = fit_metric(points, metric, slope_spread)
        except FitError as exc:
            skipped[metric] = str(exc)
    return fits, skipped


def deciding(fits: dict[str, MetricFit]) -> MetricFit:
    """The metric with the highest signal-to-noise (accuracy on a tie: it is what is judged)."""
    return max(fits.values(), key=lambda f: (round(f.snr, 9), f.metric == "accuracy"))
