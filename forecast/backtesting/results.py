"""What a backtest found: each held-out checkpoint forecast beside what was measured, and
the summaries a user reads to decide whether to trust a forecast.

Summaries are over the final checkpoints of the held-out runs ("items"); an item the fit
gave no number for counts with the carried-over baseline's error in the `*_all` figures,
so that withholding a number is not rewarded. Interval coverage is reported overall, per
confidence grade, and by extrapolation distance (e-folds beyond the fitted sizes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forecast.schema.backtest import (BacktestJson, BacktestPointJson, BacktestSummaryJson, CoverageJson,
                                      SkillBacktestJson)
from forecast.schema.outputs import finite

DISTANCE_BINS = (0.0, 0.5, 1.0, 2.0, float("inf"))
"""Edges (e-folds of extrapolation) of the coverage-by-distance summary."""


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
    confidence: str | None = None  # the forecast's grade (final checkpoints)
    status: str | None = None  # the forecast's status (final checkpoints)
    distance: float | None = None  # e-folds beyond the fitted sizes

    @property
    def covered(self) -> bool | None:
        return None if self.low is None else bool(self.low <= self.actual <= self.high)

    def error(self, which: str = "predicted", fill: bool = False) -> float | None:
        """|`which` − actual|; with `fill`, the carried-over value stands in for a missing forecast."""
        value = getattr(self, which)
        if value is None and fill:
            value = self.carry
        return None if value is None else abs(value - self.actual)

    def to_json(self) -> BacktestPointJson:
        return {"skill": self.skill, "run": self.run, "params": self.params, "tokens": self.tokens,
                "flops": self.flops, "final": self.final, "actual": self.actual, "predicted": finite(self.predicted),
                "low": finite(self.low), "high": finite(self.high), "covered": self.covered,
                "carry": finite(self.carry), "loglinear": finite(self.loglinear), "confidence": self.confidence,
                "status": self.status, "distance": finite(self.distance)}


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

    def to_json(self) -> SkillBacktestJson:
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

    def to_json(self) -> BacktestJson:
        """`forecast backtest --json` (kind "backtest"): summaries over final checkpoints and over
        every held-out checkpoint, then each skill with its points."""
        return {"holdout": self.holdout, "level": self.level, "summary": self.summary(),
                "summary_trajectory": self.summary(final=False),
                "held_out": [{"family": f, "recipe": r, "runs": list(names)} for (f, r), names in self.held_out.items()],
                "skills": [s.to_json() for s in self.skills]}

    def summary(self, final: bool = True) -> BacktestSummaryJson:
        """Errors, baselines and coverage over the held-out final (or all) checkpoints.

        `items`: points of every skill; `numbered`: those with a forecast. `mae`,
        `relative_error`: over the numbered points, beside `carry_*` and `loglinear_*` on the
        same points; `mae_all` and `relative_error_all` (and the baselines') over all items,
        a missing forecast counting with the carried-over error. `coverage`: share of the
        numbered points inside their interval; `coverage_by_confidence` and
        `coverage_by_distance`: the same per grade and per distance bin, with counts."""
        items = [p for s in self.skills for p in s.points if p.final or not final]
        numbered = [p for p in items if p.predicted is not None]

        def mean(values: list[float | None]) -> float | None:
            values = [v for v in values if v is not None]
            return float(np.mean(values)) if values else None

        def err(points, which: str, relative: bool = False, fill: bool = False) -> float | None:
            return mean([None if p.error(which, fill) is None or (relative and p.actual <= 0) else
                         p.error(which, fill) / (p.actual if relative else 1) for p in points])

        def coverage(points) -> CoverageJson:
            covered = [p.covered for p in points if p.covered is not None]
            return {"coverage": float(np.mean(covered)) if covered else None, "count": len(covered)}

        grades = {g: coverage([p for p in numbered if p.confidence == g]) for g in ("high", "medium", "low")}
        bins = {}
        for lo, hi in zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:]):
            label = f"{lo:g}-{hi:g}" if hi != float("inf") else f">{lo:g}"
            bins[label] = coverage([p for p in numbered if p.distance is not None and lo <= p.distance < hi])
        grok = [e for s in self.skills for e in s.grok_errors]
        return {
            "skills": len(self.skills),
            "predicted": sum(1 for s in self.skills if s.law),
            "not_predictable": [s.skill for s in self.skills if not s.law],
            "items": len(items), "numbered": len(numbered), "points": len(numbered),
            "mae": err(numbered, "predicted"), "relative_error": err(numbered, "predicted", True),
            "mae_all": err(items, "predicted", fill=True), "relative_error_all": err(items, "predicted", True, True),
            "coverage": coverage(numbered)["coverage"],
            "coverage_all_checkpoints": coverage([p for s in self.skills for p in s.points])["coverage"],
            "coverage_by_confidence": grades, "coverage_by_distance": bins,
            "carry_mae": err(numbered, "carry"), "carry_relative_error": err(numbered, "carry", True),
            "carry_mae_all": err(items, "carry"), "carry_relative_error_all": err(items, "carry", True),
            "loglinear_mae": err(numbered, "loglinear"), "loglinear_relative_error": err(numbered, "loglinear", True),
            "loglinear_mae_all": err(items, "loglinear"), "loglinear_relative_error_all": err(items, "loglinear", True),
            "grok_log10_error": float(np.mean(np.abs(grok))) if grok else None,
        }
