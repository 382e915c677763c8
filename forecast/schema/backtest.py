"""The `--json` shape of `forecast backtest` (kind "backtest"): part of the output contract of
`forecast.schema.outputs` (same conventions). Accuracies are fractions; errors are absolute
accuracy errors unless named `relative_*`."""

from __future__ import annotations

from typing import TypedDict


class BacktestPointJson(TypedDict):
    """One held-out checkpoint of one skill: measured, forecast and the two baselines."""

    skill: str
    run: str
    params: float  # parameters of the held-out run
    tokens: float  # training tokens at the checkpoint
    flops: float  # training FLOPs at the checkpoint
    final: bool  # the run's last checkpoint
    actual: float  # measured accuracy
    predicted: float | None  # median forecast; null when not predictable
    low: float | None  # forecast interval (at `level`)
    high: float | None
    covered: bool | None  # low <= actual <= high; null without an interval
    carry: float | None  # baseline: the largest fitted size at the same tokens
    loglinear: float | None  # baseline: a straight line in log compute
    confidence: str | None  # the forecast's grade (final checkpoints)
    status: str | None  # the forecast's status (final checkpoints)
    distance: float | None  # e-folds beyond the fitted sizes


class SkillBacktestJson(TypedDict):
    """One skill of one group: its status when fitted on the smaller runs, and its points."""

    skill: str
    family: str
    recipe: str
    status: str
    law: str | None
    reason: str | None
    mae: float | None  # over the final checkpoints
    carry_mae: float | None
    loglinear_mae: float | None
    grok_log10_errors: list[float]  # log10(predicted / observed grok tokens), per held-out run that grokked
    points: list[BacktestPointJson]


class CoverageJson(TypedDict):
    coverage: float | None  # share of the points inside their interval; null: none
    count: int  # points with an interval


class BacktestSummaryJson(TypedDict):
    """Errors and coverage over the held-out final (or all) checkpoints."""

    skills: int
    predicted: int  # skills with a number
    not_predictable: list[str]
    items: int  # points of every skill
    numbered: int  # points with a forecast
    points: int
    mae: float | None  # over the numbered points
    relative_error: float | None  # mean |error| / actual
    mae_all: float | None  # over every item, a missing forecast counting with the carried-over error
    relative_error_all: float | None
    coverage: float | None
    coverage_all_checkpoints: float | None
    coverage_by_confidence: dict[str, CoverageJson]  # grade -> coverage
    coverage_by_distance: dict[str, CoverageJson]  # e-folds beyond the fitted sizes ("0-0.5", ..., ">2")
    carry_mae: float | None  # the baselines on the same points
    carry_relative_error: float | None
    carry_mae_all: float | None
    carry_relative_error_all: float | None
    loglinear_mae: float | None
    loglinear_relative_error: float | None
    loglinear_mae_all: float | None
    loglinear_relative_error_all: float | None
    grok_log10_error: float | None  # mean |log10(predicted / observed grok tokens)|


class HeldOutJson(TypedDict):
    family: str
    recipe: str
    runs: list[str]  # the held-out run names


class BacktestJson(TypedDict):
    """`forecast backtest --json` (kind "backtest")."""

    holdout: str  # the rule: "largest", "largest:K" or "params>=X"
    level: float
    summary: BacktestSummaryJson  # over final checkpoints
    summary_trajectory: BacktestSummaryJson  # over every held-out checkpoint
    held_out: list[HeldOutJson]
    skills: list[SkillBacktestJson]
