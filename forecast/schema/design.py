"""The `--json` shapes of `forecast design` (kinds "design" and "design-next"): part of the
output contract written down in `forecast.schema.outputs` (same conventions: natural units, null for
what is unknown), kept in their own module so that one stays readable."""

from __future__ import annotations

from typing import Any, TypedDict


class RungJson(TypedDict):
    """One rung of a pilot ladder: a model size trained to one token budget, `seeds` times."""

    params: float  # parameters
    tokens: float  # training tokens of each run
    tokens_per_param: float
    seeds: int  # runs of this rung (one per seed)
    flops: float  # training FLOPs of all its runs, 6·N·D·seeds


class LadderJson(TypedDict):
    """A pilot ladder: the knobs that made it and its rungs (smallest first)."""

    label: str  # e.g. "5 sizes ×2 to 7.9B, 1× tokens, 1 seed"
    sizes: int  # distinct model sizes
    spacing: float  # ratio between neighbouring sizes
    multipliers: list[float]  # token budgets per size, × the target's tokens per parameter
    seeds: int  # seeds per rung
    runs: int  # training runs in all
    flops: float  # training FLOPs of all runs
    rungs: list[RungJson]


class SkillOutcomeJson(TypedDict):
    """One planted skill's simulated forecast at the target, scored against its planted truth."""

    skill: str
    status: str  # the forecast's status ("not-predictable": no number; scored as [chance, 1])
    median: float
    low: float
    high: float
    low50: float  # the central 50% interval
    high50: float
    truth: float  # planted model accuracy at the target
    observed: float  # one simulated evaluation of the target (binomial)
    confidence: str | None
    width: float  # high − low
    error: float  # |median − truth|
    covered: bool  # low <= observed <= high
    interval_score: float  # of the 80% interval: width + (2/α)·miss, α = 1 − level
    score: float  # weighted interval score of the median, 50% and 80% intervals (forecast.design.search)


class LadderScoreJson(TypedDict):
    """A candidate ladder's simulated forecasts at the target, averaged over planted skills."""

    ladder: LadderJson
    score: float  # mean weighted interval score (what the design minimises; accuracy units)
    interval_score: float  # mean interval score of the 80% interval
    width: float  # mean 80% interval width
    error: float  # mean |median − truth|
    coverage: float  # share of planted outcomes inside their interval
    draws: int  # planted skills simulated
    seconds: float  # simulating and refitting it
    skills: list[dict[str, Any]]  # per skill: skill, width, error, coverage, score, confidence {grade: share}, grade, draws


class DesignJson(TypedDict):
    """`forecast design --json` (kind "design")."""

    target: dict[str, float]  # params, tokens, flops
    budget: float  # pilot FLOPs
    level: float
    prior: str  # "default" (documented prior, forecast.design.priors) or "fits"
    skills: list[str]
    chosen: LadderScoreJson
    geometric: LadderScoreJson  # the naive ladder of the same compute: 5 sizes ×2, 1× tokens, 1 seed
    alternatives: list[dict[str, Any]]  # LadderScoreJson plus "tried" (the knob it changed) and
    # "versus_chosen" {score, se}: its mean score minus the chosen one's over the same planted laws
    tied: list[str]  # labels of candidates within one standard error of the chosen ladder
    versus_geometric: dict[str, float | None]  # {score, se}: the geometric default's mean score minus the
    # chosen one's; se null when they are the same ladder (one draw of nothing)
    candidates: list[LadderScoreJson]  # every candidate, best first
    dropped: list[str]  # candidates left out, with why
    seconds: float
    notes: list[str]


class NextRunJson(TypedDict):
    """One candidate next run, with its expected effect on the target's forecast."""

    name: str
    params: float
    tokens: float  # its training budget (last checkpoint)
    flops: float  # its training FLOPs (the run's own, else 6·N·D)
    width: float  # expected mean 80% interval width at the target after adding it
    narrowing: float  # current width − expected width (accuracy units)
    narrowing_per_exaflop: float  # narrowing per 1e18 FLOPs: what the ranking is by
    widths: list[float]  # mean width per simulated outcome
    skills: dict[str, float]  # per skill: expected width


class NextRunsJson(TypedDict):
    """`forecast design --runs RUNS --candidates C --json` (kind "design-next")."""

    target: dict[str, float]  # params, tokens
    level: float
    skills: list[str]
    width: float  # current mean width at the target
    width_skills: dict[str, float]  # current width per skill
    simulations: int  # simulated outcomes per candidate
    seconds: float
    rank_by: str  # "per-flop" (narrowing per FLOP) or "narrowing"
    candidates: list[NextRunJson]  # best first
