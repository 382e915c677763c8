"""The file formats and every `--json` output, written down as typed, commented structures.

This module is the contract (as lm-evaluation-harness's `result_schema.py` is for its
results): what a key holds, in which unit, and when it is null. Result objects build
these shapes in their own `to_json`; nothing else builds JSON by hand. Conventions:

- Every JSON document `forecast` writes or prints carries `"format"`: the version of its
  shape. Files: `RUN_FORMAT` (run.json), `FITS_FORMAT` (fits files); printed output:
  `OUTPUT_FORMAT` with a `"kind"` naming the command (`envelope`).
- Numbers are plain JSON numbers in natural units: `params` parameters, `tokens` training
  tokens, `flops` training FLOPs, accuracies as fractions in [0, 1].
- What is unknown or unbounded is `null`, never NaN or Infinity (`finite`, `clean`): an
  interval end "beyond the horizon" is null, with the bound it is beyond given beside it.
- One name per quantity, the same in code and JSON (`flops`, `level`, `law`).

The printed documents, one per kind, and their registry `KINDS` are in
`forecast.schema.documents`; the shapes of one command family each in their own module
(`design`, `backtest`, `compare`, `pilot`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

RUN_FORMAT = 1
"""Version of run.json and trajectory.csv."""
FITS_FORMAT = 2
"""Version of the fits files (index.json and one file per skill). 2: warnings carry codes,
candidates carry their hold-out scores by name, grok points below the pilots are bounds."""
OUTPUT_FORMAT = 1
"""Version of every `--json` output (`envelope`)."""


# ============================================================================ numbers


def finite(value: float | None, digits: int | None = None) -> float | None:
    """A float for JSON: None for None, NaN and ±inf; rounded to `digits` significant
    digits when given (bootstrap draws do not need 17)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}") if digits else value


def number(value: float | None) -> int | float | None:
    """`finite`, with integral values as int (parameter and token counts read as such)."""
    out = finite(value)
    if out is None:
        return None
    return int(out) if out == int(out) and abs(out) < 1e16 else out


def clean(data: Any) -> Any:
    """`data` with every non-finite float replaced by None, recursively (a safety net: the
    printed JSON is checked with `allow_nan=False`, so a stray NaN must not crash it)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: clean(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [clean(v) for v in data]
    return data


def envelope(kind: str, **payload: Any) -> dict[str, Any]:
    """A printed `--json` document: `{"format": OUTPUT_FORMAT, "kind": kind, ...payload}`."""
    return clean({"format": OUTPUT_FORMAT, "kind": kind, **payload})


# ============================================================================ runs (files)


class RecipeJson(TypedDict):
    label: str  # what runs are grouped by
    format: str | None  # data format (e.g. "reverse"), if structured
    mix: dict[str, float] | None  # skill -> weight
    curriculum: list[dict[str, Any]] | None  # ordered phases, e.g. {"steps": 500, "mix": {...}}


class RunJson(TypedDict):
    """run.json."""

    format: int  # RUN_FORMAT
    name: str  # = the folder name
    params: int | float  # parameter count; params_kind says which
    params_kind: str  # "non-embedding" | "total" | "unknown"
    family: str  # ladder / model family
    recipe: RecipeJson
    seed: int | None
    source: str  # "forecast pilot" or "forecast import <kind>: <paths>"
    extra: dict[str, Any]  # free-form; pilots record "complete" and their config


TRAJECTORY_COLUMNS = ("step", "tokens", "flops", "skill", "accuracy", "loss", "prob", "stderr", "n", "chance",
                      "ceiling")
"""trajectory.csv, one row per checkpoint × skill:
step (optimizer step), tokens (training tokens seen; empty = unknown), flops (training FLOPs;
empty = 6·params·tokens), skill, accuracy (fraction; empty on a run-level metric's rows),
loss (task loss, lower is better: NLL of the answer in nats, or bits per byte), prob (mean
probability of the correct answer: a continuous accuracy that moves before greedy accuracy
does), stderr (of accuracy), n (evaluation items), chance (random-guess accuracy), ceiling
(best attainable accuracy, if below 1)."""
TRAJECTORY_REQUIRED = ("step", "tokens", "skill", "accuracy", "chance")


class RunSummaryJson(TypedDict):
    """One run in `forecast runs --json` and `forecast import --json`."""

    name: str
    family: str
    recipe: str  # label
    params: int | float
    params_kind: str
    seed: int | None
    complete: bool | None  # pilots: whether training finished; null for imported runs
    checkpoints: int  # distinct steps
    tokens_min: float | None  # training tokens at the first checkpoint (null: unknown)
    tokens_max: float | None  # at the last
    flops_max: float | None  # training FLOPs at the last
    skills: list[str]
    metrics: list[str]  # run-level loss-only metrics
    source: str
    path: str | None  # the run directory


# ============================================================================ fits (files)


class NoteJson(TypedDict):
    code: str  # stable identifier, e.g. "budget-ladder", "parameter-at-bound" (see results.NoteCode)
    message: str


class HoldoutJson(TypedDict):
    """How a candidate extrapolated when fitted on smaller sizes (rolling origin)."""

    mae: float | None  # mean absolute error of accuracy at the held-out final checkpoints
    shift: float | None  # e-folds of tokens the law misplaced held-out curves by, per e-fold out
    distance: float | None  # e-folds (params or FLOPs) the farthest hold-out extrapolated
    error: float | None  # accuracy error beyond noise per e-fold of extrapolation
    loglik: float | None  # mean log likelihood of the held-out finals under the law's predictive
    origins: int  # held-out sizes
    record: list[list[float]]  # the hold-outs binned by distance, one row each: origin, depth, borrowed
    # (0/1), count (runs), distance (e-folds), span, error, shift, noise, path, misfit (absent: none; older fits)


class CandidateJson(TypedDict):
    law: str
    floor_kind: str  # "chance" or "estimated"
    via: str | None  # two-step intermediate
    weight: float | None
    holdout: HoldoutJson
    floor: float
    top: float
    params: dict[str, float | None]  # point estimate, by parameter name
    stderr: dict[str, float | None]
    converged: bool
    at_bound: list[str]
    loss_ref: float
    loss_scale: float
    notes: list[str]
    offset: float  # accuracy added to every prediction: a variant of a task fitted on its average (absent: 0)
    draws: list[list[float | None]]  # bootstrap draws, rows in the order of `params`


class SkillFitJson(TypedDict):
    """fits/<family>--<recipe>/<skill>.json."""

    format: int  # FITS_FORMAT
    tool: str
    family: str
    recipe: str
    skill: str
    status: str  # "fitted" | "not-predictable"
    reason: str | None
    chance: float
    top: float
    noise: float | None
    n_eval: float | None
    law: str | None  # the chosen candidate's key
    why: str
    notes: list[NoteJson]
    scales: dict[str, float] | None
    candidates: list[CandidateJson]
    pilots: list[dict[str, Any]]  # name, hash, params, seed, tokens, flops, accuracy, smoothed
    options: dict[str, Any]
    borrowed_from: list[str]  # other families a pooled or latent candidate learnt from (absent: none)
    borrowed_skills: list[str]  # the family's other benchmarks a latent candidate read it from (absent: none)


# ============================================================================ printed output


class IntervalJson(TypedDict):
    median: float | None
    low: float | None
    high: float | None  # null: beyond the search horizon (see the enclosing object)


class GrokJson(TypedDict):
    """When a skill crosses its grok threshold."""

    tokens: float | None  # median training tokens; null when only a bound is known
    flops: float | None
    low: float | None  # interval in tokens
    high: float | None  # null: beyond `horizon_tokens`
    flops_low: float | None
    flops_high: float | None
    before_tokens: float | None  # set when the crossing is earlier than any pilot evaluation: "< before_tokens"
    horizon_tokens: float | None  # the search horizon a null `high` lies beyond
    note: str | None  # what cannot be told (e.g. the when of a transition that has not started)


class ForecastJson(TypedDict):
    """One skill in `forecast predict --json` (kind "predict") and `plan --budget`."""

    skill: str
    family: str
    recipe: str
    params: float
    tokens: float | None  # planned training tokens; null when the runs gave none (trained like them)
    flops: float | None
    tokens_source: str  # "given", "from-flops", "given-tokens-per-param", "group-tokens-per-param",
    # "default-tokens-per-param", or "unknown-like-pilots" (the runs gave no tokens)
    status: str  # see README "Statuses"
    accuracy: IntervalJson | None
    grok: GrokJson | None
    p_grok: float | None
    threshold: float | None
    confidence: str | None  # "high" | "medium" | "low"
    confidence_reason: str | None
    extrapolation: float | None  # target FLOPs / largest pilot FLOPs
    level: float
    law: str | None
    path: str | None  # how the number was reached: "direct" (N, D, C → accuracy) or "via task loss",
    # "via answer probability", "via <loss>" (the two-step chain); None without a number
    borrowed_from: list[str]  # other families that informed the forecast (pooled laws)
    borrowed: str | None  # how: "latent" (`--pool latent`: the family's offsets from its other benchmarks, the
    # benchmark's slope and crossing from the other families), "families" (`--pool families`: shared slopes), or null
    borrowed_skills: list[str]  # the family's other benchmarks the latent law read its offsets from
    reason: str | None
    notes: list[NoteJson]


class TargetPlanJson(TypedDict):
    """`forecast plan --skill S --target A --json` (kind "plan-target")."""

    skill: str
    family: str
    recipe: str
    target: float
    level: float
    tokens_per_param: float
    reachable: float  # share of forecast samples that reach the target below the search ceiling
    flops: IntervalJson | None
    params: float | None
    tokens: float | None
    status: str  # "reachable" | "not-reachable" | "already-reached" | "not-predictable"
    reason: str | None


class LossFitJson(TypedDict):
    """fits/<family>--<recipe>/losses/<metric>-<hash>.json: one fitted L(N, D) (listed in
    index.json under "losses")."""

    format: int  # FITS_FORMAT
    tool: str
    family: str
    recipe: str
    metric: str  # the loss series: a run-level metric, or the skill whose task loss it is
    kind: str  # "metric" (run-level loss, e.g. validation loss) | "task" (a skill's own task loss)
    status: str  # "fitted" | "not-predictable"
    reason: str | None
    law: dict[str, float | None] | None  # E, A, B, alpha, beta: L = E + A·N^−alpha + B·D^−beta (N params, D tokens)
    draws: list[list[float | None]]  # bootstrap over runs, rows [E, A, B, alpha, beta]
    drift: float | None  # extrapolation error: shift of scale (e-folds of N and D) per e-fold beyond the runs
    scatter: float | None  # run-to-run SD of log loss around the law
    holdout: dict[str, float] | None  # rms_shift, excess_shift, rms_distance (e-folds), points, origins
    flops_per_param_token: float | None  # κ in C = κ·N·D
    finals_only: bool  # fitted on final checkpoints only
    runs: list[dict[str, Any]]  # name, hash, params, tokens, flops, loss (the points fitted)
    notes: list[NoteJson]
    options: dict[str, Any]


class LossFitSummaryJson(TypedDict):
    """One loss law in `forecast fit --json` ("losses"): a `LossFitJson` without draws and points."""

    metric: str
    kind: str  # "metric" | "task"
    family: str
    recipe: str
    status: str  # "fitted" | "not-predictable"
    reason: str | None
    law: dict[str, float] | None  # E, A, B, alpha, beta
    drift: float | None
    scatter: float | None
    holdout: dict[str, float] | None
    runs: int  # runs fitted
    points: int  # checkpoints fitted
    finals_only: bool
    notes: list[NoteJson]


class LossForecastJson(TypedDict):
    """One loss series in `forecast predict --metric loss --json` (kind "predict-loss")."""

    metric: str
    kind: str  # "metric" | "task"
    family: str
    recipe: str
    params: float
    tokens: float
    flops: float
    tokens_source: str  # as in ForecastJson
    status: str  # "predicted" | "out-of-range" | "not-predictable"
    loss: float | None  # the fitted law's value at (params, tokens), in the series' units
    interval: IntervalJson | None  # what one run would measure: law draws, extrapolation error, run scatter
    level: float
    extrapolation: float | None  # target FLOPs / largest run's FLOPs
    law: dict[str, float] | None  # E, A, B, alpha, beta
    reason: str | None
    notes: list[NoteJson]


class LossPlanJson(TypedDict):
    """`forecast plan --loss L --json` (kind "plan-loss"), one per loss series."""

    metric: str
    family: str
    recipe: str
    target: float
    level: float
    status: str  # "reachable" | "already-reached" | "not-reachable" | "not-predictable"
    reachable: float  # share of samples reaching the target below max_flops
    flops: IntervalJson | None  # training FLOPs of the compute-optimal model (high null: beyond max_flops)
    params: float | None  # compute-optimal parameters at the median compute
    tokens: float | None  # and its training tokens
    tokens_per_param: float | None
    max_flops: float  # the search ceiling: 1e32, or 1e6× the largest run's FLOPs if less
    reason: str | None


class AggregateForecastJson(TypedDict):
    """An average of tasks (`predict --aggregate NAME=t1,t2,...`), under "aggregates"."""

    name: str
    members: list[str]
    family: str
    recipe: str
    params: float
    tokens: float
    flops: float
    status: str  # "predicted" | "not-predictable" (a member has no number)
    accuracy: IntervalJson | None  # mean accuracy over the members
    chance: float  # mean of the members' chance levels
    level: float
    method: str  # how member forecasts were combined
    member_status: dict[str, str]
    reason: str | None


def finite_list(values: Sequence[float], digits: int | None = None) -> list[float | None]:
    return [finite(v, digits) for v in values]
