"""JSON shapes of recipe decisions on final-checkpoint ladders: `forecast compare` on a ladder
(kind `compare-ladder`) and `forecast backtest --by recipe` (kind `backtest-recipes`).
Conventions as forecast/schema/outputs.py: accuracies are fractions, `params` parameters,
`tokens` training tokens, `flops` training FLOPs; unknown is null."""

from __future__ import annotations

from typing import TypedDict

from forecast.schema.outputs import IntervalJson


class RecipeForecastJson(TypedDict):
    group: str  # the recipe (or family) label
    accuracy: IntervalJson  # at the target, no evaluation noise
    threshold_flops: IntervalJson | None  # compute to reach `threshold` at the target's tokens per parameter
    threshold_params: IntervalJson | None  # the size that compute trains
    p_reach: float  # share of draws that reach the threshold at any size


class PairDecisionJson(TypedDict):
    winner: str
    loser: str
    p_win: float  # P(the winner's measured score at the target beats the loser's), deciding metric
    decided: bool  # p_win ≥ the decision confidence (0.8)
    gap: IntervalJson  # winner's accuracy − loser's at the target
    pilot_params: float | None  # largest size both were trained at
    pilot_leader: str | None  # ahead there (null: tie or no common size)
    flip_expected: bool | None  # the forecast's winner is not the pilots' leader
    text: str


class SkillDecisionJson(TypedDict):
    skill: str
    metric: str  # the deciding metric: accuracy, loss or prob
    snr: dict[str, float]  # every fitted metric's signal-to-noise (RMS over pairs of offset z)
    skipped_metrics: dict[str, str]  # metric -> why it was not fitted
    shared_slopes: dict[str, float]  # per e-fold of params / tokens, on the metric's linear scale
    offsets: dict[str, float]  # group -> offset on that scale
    residual_scale: float  # residual variance per unit weight (≥ 1 for accuracy)
    points: int  # final checkpoints fitted
    threshold: float  # accuracy of `threshold_flops`
    forecasts: list[RecipeForecastJson]
    pairs: list[PairDecisionJson]


class LadderComparisonJson(TypedDict):
    by: str  # "recipe" or "family"
    fixed: str  # the other key's value, held fixed
    groups: list[str]
    target_params: float
    target_tokens: float
    level: float  # interval level
    skills: list[SkillDecisionJson]
    not_predictable: dict[str, str]  # skill -> why no decision
    p_best: dict[str, float]  # P(highest mean accuracy over the skills at the target)
    mean_accuracy: dict[str, IntervalJson]
    recommendation: str  # the one line: which to train


class RecipeDecisionJson(TypedDict):
    skill: str
    a: str
    b: str
    params: float  # held-out size
    tokens: float  # a's held-out run's training tokens
    metric: str
    p_a: float  # P(a measures higher), forecast
    baseline_p_a: float  # 1, 0 or 0.5: ranking by the largest remaining pilot
    actual_a: bool  # a measured higher at the held-out size
    actual_gap: float  # a − b, accuracy
    correct: bool
    baseline_correct: bool


class ReliabilityBinJson(TypedDict):
    low: float  # bin of P(predicted winner)
    high: float
    count: int
    mean_p: float | None
    observed: float | None  # share the predicted winner won


class BudgetScoreJson(TypedDict):
    tokens_per_param: float  # the held-out budget, rounded to 0.1
    count: int
    decision_accuracy: float | None
    baseline_decision_accuracy: float | None


class FlipsJson(TypedDict):
    called: int  # decisions where the forecast disagrees with the baseline
    called_right: int
    actual: int  # decisions where the held-out order differs from the baseline's
    foreseen: int  # of those, the forecast had right


class RecipeBacktestJson(TypedDict):
    by: str
    fixed: str
    groups: list[str]
    held_params: float  # the held-out size
    pilot_params: float  # the largest size fitted (the baseline's pilot)
    decisions_count: int
    ties: int  # held-out pairs that measured exactly equal (left out)
    decision_accuracy: float | None  # fraction over all decisions
    baseline_decision_accuracy: float | None
    brier: float | None  # of P(win) against the outcome
    baseline_brier: float | None  # of the baseline's 0/1 calls (½ on a tie)
    confidence: float
    confident_count: int  # decisions with P(win) ≥ confidence
    confident_accuracy: float | None
    reliability: list[ReliabilityBinJson]
    by_budget: list[BudgetScoreJson]  # the scores per held-out budget
    flips: FlipsJson
    not_predictable: dict[str, str]
    decisions: list[RecipeDecisionJson]
