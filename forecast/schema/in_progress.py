"""`--json` shapes of the run-in-progress outputs: `forecast predict --run DIR` (kind
"predict-run") and `forecast backtest --partial` (kind "backtest-partial").

Conventions as in `forecast.schema.outputs`: natural units (tokens, parameters, accuracies as
fractions), null for what is unknown or unbounded.
"""

from __future__ import annotations

from typing import TypedDict

from forecast.schema.outputs import ForecastJson, IntervalJson


class OffPathJson(TypedDict):
    """Where a skill left the ladder's band (`forecast.forecasting.off_path.OffPath`)."""

    tokens: float | None  # training tokens at the first checkpoint beyond the band
    step: int
    fraction: float | None  # of the planned tokens
    by: float | None  # latest accuracy minus the ladder's median there (fraction; < 0: below)
    z: float | None  # the same in band standard deviations
    checkpoints: int  # checkpoints beyond the band since it left
    direction: str  # "above" | "below"
    rule: str  # "band" (two checkpoints beyond the 99% band) | "cusum" (the sequential test on innovations)


class CheckpointJson(TypedDict):
    """One checkpoint of the run beside the ladder's band at the same fraction of training."""

    step: int
    tokens: float | None
    fraction: float | None  # tokens / planned tokens
    accuracy: float | None
    ladder: IntervalJson  # the ladder's band for a run of this size at this fraction (99%)
    z: float | None  # deviation from the ladder, in band standard deviations
    innovation: float | None  # surprise given the ladder and the checkpoints before it (standard deviations)


class RunForecastJson(TypedDict):
    """One skill in `forecast predict --run DIR --json` (kind "predict-run")."""

    skill: str
    run: str
    params: float
    planned_tokens: float
    tokens_seen: float | None  # tokens at the run's latest checkpoint used (null: none)
    fraction_seen: float | None  # tokens_seen / planned_tokens
    checkpoints: int  # the run's checkpoints used as evidence
    accuracy: IntervalJson | None  # final accuracy, updated by the run (null: no number)
    grok: IntervalJson | None  # tokens to the grok threshold along the run (high null: beyond the plan)
    grok_observed: float | None  # tokens of the checkpoint where the run has already crossed
    p_grok: float | None  # probability of crossing within the planned tokens, updated
    threshold: float | None
    shift: float | None  # updated minus ladder-only median final accuracy (fraction)
    run_weight: float  # share of the updated forecast's precision that came from the run, in [0, 1]
    run_alone: float | None  # final accuracy from the run's checkpoints alone, no ladder prior (model's end)
    offset: float | None  # the run's offset from the ladder at its end (logits of accuracy above the floor)
    offset_sd: float | None
    schedule: str  # "ladder-checkpoints" (shape from the ladder's intermediate checkpoints) | "final-only"
    off_path: OffPathJson | None  # null: on the ladder's path
    ladder: ForecastJson  # the ladder-only forecast for this size and planned tokens
    checkpoints_detail: list[CheckpointJson]
    level: float
    notes: list[str]


class PartialScoreJson(TypedDict):
    """One visible share in `forecast backtest --partial` (kind "backtest-partial")."""

    share: float  # fraction of the held-out runs' steps visible
    items: int  # (run, skill) pairs scored
    mae: float | None  # updated forecast's mean absolute error of final accuracy (fraction)
    ladder_mae: float | None  # the ladder-only forecast's
    own_mae: float | None  # extrapolating the run's own visible curve alone
    run_alone_mae: float | None  # the run's checkpoints read through the ladder's schedule shape, no prior
    coverage: float | None  # share of items whose final accuracy fell in the updated interval
    ladder_coverage: float | None  # the same for the ladder-only interval


class PartialItemJson(TypedDict):
    """One (held-out run, skill, visible share): the final accuracy measured and forecast."""

    run: str
    skill: str
    share: float
    actual: float
    updated: float | None
    low: float | None
    high: float | None
    ladder: float | None  # the ladder-only median
    ladder_low: float | None
    ladder_high: float | None
    own: float | None  # the run's own visible curve, extrapolated
    run_alone: float | None  # the run's checkpoints through the ladder's schedule shape, without its prior
    off_path: bool  # the alarm stood at that share


class PartialBacktestJson(TypedDict):
    """`forecast backtest --partial ... --json` (kind "backtest-partial")."""

    held_out: list[str]  # run names whose ends were hidden
    min_items: int  # benchmarks with fewer items were left out of the scores
    level: float
    scores: list[PartialScoreJson]
    items: list[PartialItemJson]


class PredictRunJson(TypedDict):
    """`forecast predict --run DIR --json` (kind "predict-run")."""

    run: str  # the run's name
    off_path: list[str]  # skills that left the ladder's band (`--check` exits 3 when not empty)
    forecasts: list[RunForecastJson]
