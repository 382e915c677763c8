"""`backtest`: hold out the largest pilot(s), fit the rest, and score the forecasts.

This is how a user decides whether to trust a forecast. For each held-out run and skill it
predicts every post-warm-up checkpoint (the final one and the trajectory) and reports the
error, whether the interval covered the measured value, and the error of the grok point;
next to two baselines on the same points. In a budget ladder (sizes trained to several token
budgets) every run is one forecast target and only its final checkpoint is scored: its
intermediate checkpoints sit mid learning-rate schedule, which no law in (N, D) describes.
Baselines:
- `carry`: the largest fitted size's accuracy at the same tokens, carried over unchanged;
- `loglinear`: a straight line in log compute through the fitted points.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecast.errors import UsageError
from forecast.fitting import FitOptions, fit, group_runs
from forecast.observations import Observations, observations
from forecast.predict import check_level
from forecast.quantities import parse_quantity
from forecast.results import SkillFit, match_skills, wants_all
from forecast.runs import Run
from forecast.samples import SurfaceSamples
from forecast.schema import finite


@dataclass(frozen=True)
class BacktestPoint:
    """One held-out checkpoint of one skill: measured, forecast and baselines (accuracy)."""

    skill: str
    run: str
    params: float  # parameters of the held-out run
    tokens: float  # training tokens at the checkpoint
    flops: float
    final: bool  # the run's last checkpoint
    actual: float
    predicted: float | None  # median forecast; None when not predictable
    low: float | None
    high: float | None
    carry: float | None  # baseline: largest fitted size at the same tokens
    loglinear: float | None  # baseline: straight line in log compute

    @property
    def covered(self) -> bool | None:
        return None if self.low is None else bool(self.low <= self.actual <= self.high)

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "run": self.run, "params": self.params, "tokens": self.tokens,
                "flops": self.flops, "final": self.final, "actual": self.actual, "predicted": finite(self.predicted),
                "low": finite(self.low), "high": finite(self.high), "covered": self.covered,
                "carry": finite(self.carry), "loglinear": finite(self.loglinear)}


@dataclass(frozen=True)
class SkillBacktest:
    """Backtest of one skill: its status in the fit on the smaller runs, and its points."""

    skill: str
    family: str
    recipe: str
    status: str
    reason: str | None
    law: str | None
    points: tuple[BacktestPoint, ...]
    grok_errors: tuple[float, ...] = ()  # log10(predicted / observed grok tokens), per held-out run

    def mae(self, which: str = "predicted", final: bool = True) -> float | None:
        """Mean absolute error of `which` ("predicted", "carry", "loglinear") over the final
        (or all) points; None if there are none."""
        errors = [abs(getattr(p, which) - p.actual) for p in self.points
                  if (p.final or not final) and getattr(p, which) is not None]
        return float(np.mean(errors)) if errors else None

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "family": self.family, "recipe": self.recipe, "status": self.status,
                "law": self.law, "reason": self.reason, "mae": self.mae(), "carry_mae": self.mae("carry"),
                "loglinear_mae": self.mae("loglinear"), "grok_log10_errors": list(self.grok_errors),
                "points": [p.to_json() for p in self.points]}


@dataclass(frozen=True)
class Backtest:
    """All skills of all groups backtested with one hold-out rule."""

    holdout: str
    level: float
    skills: tuple[SkillBacktest, ...]
    held_out: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # group -> run names

    def to_json(self) -> dict[str, Any]:
        """`forecast backtest --json` (kind "backtest"): summaries over final checkpoints and over
        every held-out checkpoint, then each skill with its points."""
        return {"holdout": self.holdout, "level": self.level, "summary": self.summary(),
                "summary_trajectory": self.summary(final=False),
                "held_out": [{"family": f, "recipe": r, "runs": list(names)} for (f, r), names in self.held_out.items()],
                "skills": [s.to_json() for s in self.skills]}

    def summary(self, final: bool = True) -> dict[str, Any]:
        """Errors over the predictable skills' final (or all) points, with the baselines on
        the same points: MAE and mean relative error (fractions); `coverage`, the share of
        those points inside their interval; `coverage_all_checkpoints` over every held-out
        checkpoint."""
        pts = [p for s in self.skills if s.law for p in s.points if p.predicted is not None and (p.final or not final)]
        every = [p for s in self.skills if s.law for p in s.points if p.predicted is not None]

        def err(which: str, relative: bool = False) -> float | None:
            vals = [abs(getattr(p, which) - p.actual) / (p.actual if relative else 1) for p in pts
                    if getattr(p, which) is not None and (p.actual > 0 or not relative)]
            return float(np.mean(vals)) if vals else None

        grok = [e for s in self.skills for e in s.grok_errors]
        return {
            "skills": len(self.skills),
            "predicted": sum(1 for s in self.skills if s.law),
            "not_predictable": [s.skill for s in self.skills if not s.law],
            "points": len(pts),
            "mae": err("predicted"), "relative_error": err("predicted", True),
            "coverage": float(np.mean([p.covered for p in pts])) if pts else None,
            "coverage_all_checkpoints": float(np.mean([p.covered for p in every])) if every else None,
            "carry_mae": err("carry"), "carry_relative_error": err("carry", True),
            "loglinear_mae": err("loglinear"), "loglinear_relative_error": err("loglinear", True),
            "grok_log10_error": float(np.mean(np.abs(grok))) if grok else None,
        }


def holdout_sizes(sizes: Sequence[float], rule: str) -> list[float]:
    """Which sizes (parameters) to hold out: `largest`, `largest:K` or `params>=X`."""
    sizes = sorted(set(sizes))
    if rule == "largest":
        return sizes[-1:]
    if match := re.fullmatch(r"largest:(\d+)", rule):
        k = int(match.group(1))
        if k < 1:
            raise UsageError("--holdout largest:K needs K >= 1")
        return sizes[-k:]
    if match := re.fullmatch(r"params>=(.+)", rule):
        bound = parse_quantity(match.group(1), what="--holdout params>=X")
        return [s for s in sizes if s >= bound]
    raise UsageError(f"--holdout: cannot read {rule!r}; use largest, largest:K or params>=X (e.g. params>=1B)")


def backtest(
    runs: Sequence[Run],
    *,
    holdout: str = "largest",
    family: str | None = None,
    recipe: str | None = None,
    skills: Sequence[str] | None = None,
    options: FitOptions | None = None,
    level: float = 0.8,
    seed: int = 0,
) -> Backtest:
    """Per (family, recipe) group: hold out sizes by `holdout`, fit the rest, score."""
    options = options or FitOptions()
    check_level(level)
    groups = group_runs(runs, family, recipe)
    results: list[SkillBacktest] = []
    held_out: dict[tuple[str, str], tuple[str, ...]] = {}
    for key in sorted(groups):
        members = groups[key]
        held_sizes = set(holdout_sizes([r.params for r in members], holdout))
        train = [r for r in members if r.params not in held_sizes]
        held = [r for r in members if r.params in held_sizes]
        if len({r.params for r in train}) < 2 or not held:
            continue  # nothing to learn from, or nothing to check
        held_out[key] = tuple(r.name for r in held)
        names = sorted({s for r in held for s in r.skills} & {s for r in train for s in r.skills})
        if not wants_all(skills):
            names = match_skills(names, skills) if len(groups) == 1 else \
                [n for n in names if n.lower() in {s.lower() for s in skills}]
        fits = fit(train, skills=names, options=options) if names else None
        for sf in fits.skills if fits else ():
            results.append(_score_skill(sf, train, held, options, level, seed))
    if not results:
        raise UsageError(f"--holdout {holdout}: no group has ≥ 2 other sizes to fit and a held-out run to check")
    return Backtest(holdout=holdout, level=level, skills=tuple(results), held_out=held_out)


def _score_skill(sf: SkillFit, train: Sequence[Run], held: Sequence[Run], options: FitOptions,
                 level: float, seed: int) -> SkillBacktest:
    kwargs = dict(skip_fraction=options.skip_fraction, min_tokens=options.min_tokens, max_per_run=options.max_per_run)
    fitted = observations(train, sf.skill, **kwargs)
    target = observations([r for r in held if sf.skill in r.skills], sf.skill, **kwargs)
    if fitted.budget_ladder:  # each run is one (params, tokens) target; mid-schedule checkpoints are not
        target = target.subset(target.final)
    carry, loglinear = _baselines(fitted, target)
    samples = SurfaceSamples.of(sf, seed=seed) if sf.predictable else None
    rng = np.random.default_rng(seed + 2)
    tail = (1 - level) / 2
    points: list[BacktestPoint] = []
    grok_errors: list[float] = []
    for r in np.unique(target.run):
        idx = np.flatnonzero(target.run == r)
        params = float(target.params[idx[0]])
        pred = low = high = None
        if samples is not None:
            model = samples.accuracy(params, target.tokens[idx])
            observed = samples.observed(model, rng, params, target.tokens[idx])
            low, pred, high = np.quantile(observed, [tail, 0.5, 1 - tail], axis=0)
            grok_errors += _grok_error(samples, params, target.subset(target.run == r))
        for j, i in enumerate(idx):
            points.append(BacktestPoint(
                skill=sf.skill, run=target.run_names[r], params=params, tokens=float(target.tokens[i]),
                flops=float(target.flops[i]), final=bool(target.final[i]), actual=float(target.accuracy[i]),
                predicted=None if pred is None else float(pred[j]), low=None if low is None else float(low[j]),
                high=None if high is None else float(high[j]), carry=float(carry[i]), loglinear=float(loglinear[i]),
            ))
    return SkillBacktest(skill=sf.skill, family=sf.family, recipe=sf.recipe, status=str(sf.status), reason=sf.reason,
                         law=sf.law if sf.predictable else None, points=tuple(points),
                         grok_errors=tuple(grok_errors))


def _baselines(fitted: Observations, target: Observations) -> tuple[np.ndarray, np.ndarray]:
    """The two baselines at every target point (see module docstring)."""
    pool = fitted.subset(fitted.final) if fitted.budget_ladder else fitted
    largest = pool.subset(pool.params == pool.params.max())
    order = np.argsort(largest.tokens, kind="stable")
    carry = np.interp(np.log(target.tokens), np.log(largest.tokens[order]), largest.accuracy[order])
    slope, intercept = np.polyfit(np.log(pool.flops), pool.accuracy, 1)
    loglinear = np.clip(intercept + slope * np.log(target.flops), 0, 1)
    return carry, loglinear


def _grok_error(samples: SurfaceSamples, params: float, run: Observations) -> list[float]:
    """log10(predicted / observed) tokens to the grok threshold, if the run crossed it
    after its first checkpoint."""
    threshold = float(np.median(samples.threshold()))
    smooth = run.smoothed()
    above = np.flatnonzero(smooth >= threshold)
    if len(above) == 0 or above[0] == 0:
        return []
    i = above[0]
    t0, t1 = math.log(run.tokens[i - 1]), math.log(run.tokens[i])
    y0, y1 = smooth[i - 1], smooth[i]
    observed = math.exp(t0 + (threshold - y0) / (y1 - y0) * (t1 - t0)) if y1 > y0 else run.tokens[i]
    predicted = samples.grok_tokens(params, np.full(samples.size, threshold), low=run.tokens[0] / 100,
                                    high=run.tokens[-1] * 100)
    median = float(np.median(predicted))
    return [math.log10(median / observed)] if math.isfinite(median) else []
