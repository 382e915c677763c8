"""The `--json` shape of `forecast compare` (kind "compare"): part of the output contract of
`forecast.schema.outputs` (same conventions)."""

from __future__ import annotations

from typing import TypedDict

from forecast.schema.outputs import IntervalJson


class GrokSpeedJson(TypedDict):
    """Training to the grok threshold for one group at one size."""

    group: str  # the recipe (or family) label
    params: float  # parameters
    pilot: bool  # a pilot size (false: the extrapolated target)
    amount: IntervalJson | None  # in the comparison's `measure`; null: the median draw does not cross
    tokens: IntervalJson | None  # the same crossing in training tokens
    p_grok: float  # share of draws that cross at all


class AdvantageJson(TypedDict):
    """How much later `group` groks than the baseline at one size."""

    group: str
    params: float
    pilot: bool
    ratio: IntervalJson  # amount(group) / amount(baseline): > 1, the baseline is faster
    p_baseline_faster: float


class VerdictJson(TypedDict):
    """One group against the baseline, in numbers and in words."""

    group: str
    trend: str  # "shrinks" | "grows" | "no clear trend" | "never groks"
    p_shrinks: float | None  # share of draws in which the gap is smaller at the larger size
    distinguishable_at_target: bool | None  # the target's ratio interval excludes 1
    p_ranking_holds: float | None  # P(the group ahead at the largest pilot is still ahead at the target)
    leader: str | None  # the group ahead at the largest pilot size
    verdict: str


class SkillComparisonJson(TypedDict):
    skill: str
    by: str  # "recipe" | "family"
    fixed: str  # the label held fixed (the family when comparing recipes)
    measure: str  # "tokens" | "examples" | "flops"
    baseline: str
    target_params: float | None  # the extrapolated size; null: pilots only
    level: float
    speeds: list[GrokSpeedJson]
    advantages: list[AdvantageJson]
    verdicts: list[VerdictJson]
    not_predictable: dict[str, str]  # group -> reason


class CompareJson(TypedDict):
    """`forecast compare --json` (kind "compare")."""

    comparisons: list[SkillComparisonJson]
