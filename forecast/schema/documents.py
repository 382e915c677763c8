"""Every printed `--json` document, by kind: the registry `KINDS` (kind -> payload shape).

A document is the envelope `{"format": OUTPUT_FORMAT, "kind": kind}` plus the payload
whose shape `KINDS[kind]` gives (`forecast.schema.outputs.envelope`). A new kind is one
entry here, with its TypedDict; `forecast.schema.check.check_document` then checks any
document of it (the suite runs every command's `--json` through it).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from forecast.schema.backtest import BacktestJson
from forecast.schema.compare import CompareJson
from forecast.schema.design import DesignJson, NextRunsJson
from forecast.schema.outputs import (AggregateForecastJson, ForecastJson, LossFitSummaryJson, LossForecastJson,
                                     LossPlanJson, NoteJson, RunSummaryJson, TargetPlanJson)
from forecast.schema.in_progress import PartialBacktestJson, PredictRunJson
from forecast.schema.pilot import LadderConfigJson, PilotJson, PilotStatusJson, PilotSubmittedJson
from forecast.schema.recipes import LadderComparisonJson, RecipeBacktestJson

# ============================================================================ runs


class ImplausibleJson(TypedDict):
    name: str  # the run
    reason: str  # what looks wrong (e.g. accuracy above its ceiling)


class RunsJson(TypedDict):
    """`forecast runs DIR --json` (kind "runs")."""

    runs: list[RunSummaryJson]
    not_runs: list[str]  # folders holding a trajectory.csv but no run.json (left out)
    incomplete: list[str]  # runs whose training did not finish (`fit` leaves them out)
    implausible: list[ImplausibleJson]


class ImportJson(TypedDict):
    """`forecast import KIND ... --json` (kind "import"): the runs written."""

    runs: list[RunSummaryJson]


# ============================================================================ fit


class FitSummaryJson(TypedDict):
    """One skill fit as `forecast fit` prints it (`Fits.summaries`)."""

    skill: str
    family: str
    recipe: str
    status: str  # "fitted" | "not-predictable"
    law: str | None  # the chosen candidate's key
    holdout_mae: float | None  # its hold-out error (accuracy), null without hold-out
    grok_tokens_at_largest_pilot: float | None  # training tokens of the grok point at the largest pilot size
    largest_pilot_params: float | None  # parameters
    why: str | None  # why this law was chosen
    reason: str | None  # why the skill is not predictable
    notes: list[NoteJson]
    at_bound: list[str]  # the chosen law's parameters that sit at a bound that is not a natural edge


class FitJson(TypedDict):
    """`forecast fit RUNS --json` (kind "fit")."""

    out: str  # the fits directory written
    skills: list[FitSummaryJson]
    losses: list[LossFitSummaryJson]


# ============================================================================ predict and plan


class PredictJson(TypedDict):
    """`forecast predict --json` (kind "predict")."""

    forecasts: list[ForecastJson]
    aggregates: NotRequired[list[AggregateForecastJson]]  # only with --aggregate


class PredictLossJson(TypedDict):
    """`forecast predict --metric loss --json` (kind "predict-loss")."""

    forecasts: list[LossForecastJson]


class BudgetPlanJson(TypedDict):
    """`forecast plan --budget C --json` (kind "plan-budget"): the compute-optimal model for
    the budget, then each skill's forecast for it."""

    flops: float  # the budget, training FLOPs
    params: float  # compute-optimal parameters
    tokens: float  # and training tokens
    tokens_per_param: float
    skills: list[ForecastJson]


class PlanLossJson(TypedDict):
    """`forecast plan --loss L --json` (kind "plan-loss")."""

    plans: list[LossPlanJson]


# ============================================================================ demo


class DemoCheckJson(TypedDict):
    """One skill of one verification run (one seed): its forecast beside what it did."""

    skill: str
    run: str  # the verification run's name
    seed: int
    forecast: ForecastJson  # made before the model was trained
    accuracy: float  # the verification model's final accuracy
    covered: bool | None  # accuracy inside the forecast's interval; null when no interval was given
    grok_tokens: float | None  # tokens at which it crossed the forecast's grok threshold; null: it did not
    grok_ratio: float | None  # forecast grok tokens / actual; null when either is missing
    grok_within_2x: bool | None
    missed: bool  # outside the interval, grok point off by more than 2x, or a forecast crossing not seen
    cause: str | None  # for a miss, its likely cause (seed spread, the trend not carrying, ...)


class DemoJson(TypedDict):
    """`forecast demo --json` (kind "demo")."""

    runs: str  # the pilot runs directory (the shipped runs/demo, or OUT/runs/demo with --train-pilots)
    trained_pilots: bool  # the pilots were trained by this command (--train-pilots)
    fits: str  # the fits directory
    fit: list[FitSummaryJson]  # as `forecast fit --json` "skills"
    forecasts: list[ForecastJson]  # for the verification model's size and training tokens
    verification: list[str]  # its run directories, one per seed; empty with --no-verify
    checks: list[DemoCheckJson]  # per seed, per skill
    seconds: dict[str, float]  # wall time: pilots, fit, verify, total
    story: list[str]  # the closing lines


# ============================================================================ design


class DesignDocumentJson(DesignJson):
    """`forecast design --json` (kind "design"): the design, and where it was written."""

    written: str | None  # the --out file (a table or a pilot config); null without --out


# ============================================================================ the registry


KINDS: dict[str, type] = {
    "runs": RunsJson,
    "import": ImportJson,
    "pilot": PilotJson,
    "pilot-status": PilotStatusJson,
    "pilot-submitted": PilotSubmittedJson,
    "ladder-config": LadderConfigJson,
    "demo": DemoJson,
    "fit": FitJson,
    "predict": PredictJson,
    "predict-loss": PredictLossJson,
    "predict-run": PredictRunJson,
    "plan-target": TargetPlanJson,
    "plan-budget": BudgetPlanJson,
    "plan-loss": PlanLossJson,
    "backtest": BacktestJson,
    "backtest-partial": PartialBacktestJson,
    "backtest-recipes": RecipeBacktestJson,
    "compare": CompareJson,
    "compare-ladder": LadderComparisonJson,
    "design": DesignDocumentJson,
    "design-next": NextRunsJson,
}
"""Every kind the CLI prints -> the shape of its payload (the document less format and kind)."""
