"""Which recipe to train, decided by the recipes' forecasts at the target (final-checkpoint ladders).

Per skill the recipes of one ladder are fitted jointly (`recipe_ladder`: one scaling shape,
one offset per recipe, the deciding metric chosen by signal-to-noise). At the target
(`target_params` parameters trained on `target_tokens` tokens) every recipe gets an accuracy
forecast with its interval, and the compute at which it reaches `threshold` (default: half
way from floor to top) along the sizes trained at the target's tokens per parameter.

Every pair of recipes gets a predicted winner with P(win): the share of draws (coefficients
from the fit, plus one evaluation's noise and the fitted model-to-model scatter at the
target) in which the winner's *measured* score at the target beats the other's, in the
deciding metric. The pair is decided when P(win) ≥ `confidence`; else "no decision", with
the probability that was not enough. The *small-scale order* is the order of the two
recipes' measured accuracies at the largest size both were trained at (at the budget
nearest the target's tokens per parameter): what ranking by the largest pilot would say.
Where the forecast's winner differs, the order is expected to flip. With a shared shape,
recipes keep their order on the metric's linear scale at every size: a flip foreseen says
that the pilots' order is noise the pooled trend sees through, not a crossing of trends.

Over all skills one line says which recipe to train: the one with the highest mean forecast
accuracy over the skills at the target, with P(best) over the draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecast.errors import FitError, UsageError
from forecast.fitting.observations import BUDGET_RATIO, MODEL_SCATTER
from forecast.fitting.results import match_skills
from forecast.forecasting.compare import compared_groups
from forecast.forecasting.predict import Interval, check_level, check_threshold
from forecast.forecasting.recipe_ladder import LadderPoints, MetricFit, deciding, fit_metrics, ladder_points
from forecast.quantities import FLOPS_PER_PARAM_TOKEN, TOKENS_PER_PARAM, format_count
from forecast.runs.model import Run

CONFIDENCE = 0.8
"""P(win) at which a pair counts as decided."""
REACH_LIMIT = 100.0
"""The threshold's size is sought up to this multiple of the target's parameters (beyond, a
trend read from pilots says nothing: reported as not reached) and down to the smallest
pilot's size divided by it (an interval end there reads "at most")."""
DRAWS = 2000


@dataclass(frozen=True)
class RecipeForecast:
    """One recipe's forecast at the target: accuracy (fraction) with interval; the compute
    (FLOPs) and size (parameters) at which it reaches the threshold, at the target's tokens per
    parameter (None where under half the draws reach it: the trend does not rise enough)."""

    group: str
    accuracy: Interval
    threshold_flops: Interval | None
    threshold_params: Interval | None
    p_reach: float  # share of draws in which the threshold is reached up to REACH_LIMIT × the target's size

    def to_json(self) -> dict[str, Any]:
        opt = lambda i: None if i is None else i.to_json()  # noqa: E731
        return {"group": self.group, "accuracy": self.accuracy.to_json(), "threshold_flops": opt(self.threshold_flops),
                "threshold_params": opt(self.threshold_params), "p_reach": self.p_reach}


@dataclass(frozen=True)
class PairDecision:
    """Two recipes at the target: the predicted winner with P(win), whether that is a
    decision, and against the small-scale order (the largest common pilot size)."""

    winner: str
    loser: str
    p_win: float
    decided: bool
    gap: Interval  # winner's accuracy − loser's at the target (fraction)
    pilot_params: float | None  # the largest size both were trained at (parameters)
    pilot_leader: str | None  # who is ahead there (None: a tie, or no common size)
    flip_expected: bool | None
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"winner": self.winner, "loser": self.loser, "p_win": self.p_win, "decided": self.decided,
                "gap": self.gap.to_json(), "pilot_params": self.pilot_params, "pilot_leader": self.pilot_leader,
                "flip_expected": self.flip_expected, "text": self.text}


@dataclass(frozen=True)
class SkillDecision:
    """One skill's recipes at the target, decided by `metric` (its signal-to-noise beside
    every candidate's in `snr`); `slopes` the shared shape (per e-fold of params/tokens, on
    the metric's linear scale), `offsets` each recipe's."""

    skill: str
    metric: str
    snr: dict[str, float]
    skipped_metrics: dict[str, str]
    slopes: dict[str, float]
    offsets: dict[str, float]
    scale: float
    points: int
    threshold: float
    forecasts: tuple[RecipeForecast, ...]
    pairs: tuple[PairDecision, ...]
    draws: np.ndarray = field(repr=False)  # (groups, K) accuracy draws at the target (no evaluation noise)

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "metric": self.metric, "snr": self.snr, "skipped_metrics": self.skipped_metrics,
                "shared_slopes": self.slopes, "offsets": self.offsets, "residual_scale": self.scale,
                "points": self.points, "threshold": self.threshold,
                "forecasts": [f.to_json() for f in self.forecasts], "pairs": [p.to_json() for p in self.pairs]}


@dataclass(frozen=True)
class LadderComparison:
    """Every skill's decision, the skills that got none (and why), and which recipe to train."""

    by: str
    fixed: str
    groups: tuple[str, ...]
    target_params: float
    target_tokens: float
    level: float
    skills: tuple[SkillDecision, ...]
    not_predictable: dict[str, str]
    p_best: dict[str, float]  # P(highest mean accuracy over `skills` at the target)
    mean_accuracy: dict[str, Interval]
    recommendation: str

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "fixed": self.fixed, "groups": list(self.groups), "target_params": self.target_params,
                "target_tokens": self.target_tokens, "level": self.level,
                "skills": [s.to_json() for s in self.skills], "not_predictable": self.not_predictable,
                "p_best": self.p_best, "mean_accuracy": {g: i.to_json() for g, i in self.mean_accuracy.items()},
                "recommendation": self.recommendation}


def group_runs(runs: Sequence[Run], by: str, family: str | None = None, recipe: str | None = None) -> tuple[str, dict[str, list[Run]]]:
    """The runs of the compared groups by label, and the label held fixed (`UsageError` as
    `compare.compared_groups`)."""
    chosen = compared_groups([r.group for r in runs], by, family, recipe)
    out: dict[str, list[Run]] = {}
    for fam, rec in chosen:
        out[rec if by == "recipe" else fam] = [r for r in runs if r.group == (fam, rec)]
    return (chosen[0][0] if by == "recipe" else chosen[0][1]), out


def compare_ladder(runs: Sequence[Run], *, by: str = "recipe", target_params: float | None = None,
                   target_tokens: float | None = None, skills: Sequence[str] | None = None,
                   family: str | None = None, recipe: str | None = None, threshold: float | None = None,
                   level: float = 0.8, confidence: float = CONFIDENCE, draws: int = DRAWS,
                   slope_spread: float | None = None, seed: int = 0) -> LadderComparison:
    """Decide between the recipes (or families, `by`) of a final-checkpoint ladder at the
    target (`target_params` parameters, `target_tokens` training tokens; default 20 per
    parameter), skill by skill, and over all skills. `slope_spread` (per e-fold of N, on
    the metric's linear scale): let recipes with ≥ 3 sizes deviate from the shared slope,
    shrunk by a normal prior of that width, so that trends may cross (default: one shape)."""
    check_level(level)
    check_level(confidence, "confidence")
    check_threshold(threshold)
    if target_params is None or not target_params > 0:
        raise UsageError("a ladder comparison needs the target size", parameter="target_params")
    if target_tokens is not None and not target_tokens > 0:
        raise UsageError(f"must be positive; got {target_tokens}", parameter="target_tokens")
    tokens = target_tokens if target_tokens is not None else TOKENS_PER_PARAM * target_params
    fixed, by_group = group_runs(runs, by, family, recipe)
    known = sorted({s for rs in by_group.values() for r in rs for s in r.skills})
    names = match_skills(known, skills)
    out, not_predictable = [], {}
    for k, name in enumerate(names):
        try:
            points = ladder_points(by_group, name)
            out.append(decide_skill(points, target_params, tokens, threshold, level, confidence, draws, seed + k,
                                    slope_spread))
        except FitError as exc:
            not_predictable[name] = str(exc)
    groups = tuple(sorted(by_group))
    p_best, mean_acc, line = recommend(out, groups, level, target_params)
    return LadderComparison(by, fixed, groups, float(target_params), float(tokens), level, tuple(out),
                            not_predictable, p_best, mean_acc, line)


def decide_skill(points: LadderPoints, params: float, tokens: float, threshold: float | None, level: float,
                 confidence: float, draws: int, seed: int, slope_spread: float | None = None) -> SkillDecision:
    """One skill at the target (`params` parameters, `tokens` tokens): see the module."""
    fits, skipped = fit_metrics(points, slope_spread=slope_spread)
    if "accuracy" not in fits:
        raise FitError(f"accuracy: {skipped.get('accuracy', 'not fitted')}")
    rng = np.random.default_rng(seed)
    acc_fit, chosen = fits["accuracy"], deciding(fits)
    acc = accuracy_draws(points, acc_fit, params, tokens, draws, rng)
    measured = measured_draws(points, chosen, params, tokens, draws, rng, acc)
    thr = threshold if threshold is not None else points.floor + (points.top - points.floor) / 2
    forecasts = tuple(recipe_forecast(points, acc_fit, g, acc[i], thr, params, tokens / params, draws, rng, level)
                      for i, g in enumerate(points.groups))
    pairs = []
    k = len(points.groups)
    for i in range(k):
        for j in range(i + 1, k):
            pairs.append(pair_decision(points, i, j, measured, acc, params, tokens, level, confidence, chosen.metric))
    shape = chosen.shape
    return SkillDecision(points.skill, chosen.metric, {m: f.snr for m, f in fits.items()}, skipped,
                         {s: shape.slope(s) for s in shape.slopes},
                         {g: float(shape.coef[i]) for i, g in enumerate(points.groups)}, shape.scale, shape.points,
                         thr, forecasts, tuple(pairs), acc)


def accuracy_draws(points: LadderPoints, fit: MetricFit, params: float, tokens: float, draws: int,
                   rng: np.random.Generator) -> np.ndarray:
    """(groups, draws) accuracies at the target from the accuracy fit's coefficients."""
    coef = fit.shape.sample(draws, rng)
    rows = np.array([fit.shape.row(g, params, tokens) for g in points.groups])
    z = rows @ coef.T
    floor = fit.shape.floor
    return floor + (points.top - floor) / (1 + np.exp(-z))


def measured_draws(points: LadderPoints, fit: MetricFit, params: float, tokens: float, draws: int,
                   rng: np.random.Generator, acc: np.ndarray, runs: int = 1) -> np.ndarray:
    """(groups, draws) of what a measurement at the target would read in the deciding metric
    (higher is better): the forecast plus the evaluation noise and fitted scatter of the mean
    of `runs` runs (seeds)."""
    k = len(points.groups)
    if fit.metric == "accuracy":
        sd = math.sqrt(fit.shape.scale / runs) * (points.eval_stderr or MODEL_SCATTER)
        return acc + rng.normal(0.0, sd, size=(k, draws))
    coef = fit.shape.sample(draws, rng)
    rows = np.array([fit.shape.row(g, params, tokens) for g in points.groups])
    return rows @ coef.T + rng.normal(0.0, math.sqrt(fit.shape.scale / runs), size=(k, draws))


def recipe_forecast(points: LadderPoints, fit: MetricFit, group: str, acc: np.ndarray, threshold: float,
                    params: float, tokens_per_param: float, draws: int, rng: np.random.Generator,
                    level: float) -> RecipeForecast:
    """Accuracy at the target and the size/compute at which `threshold` is reached:
    solving a + b·(ln N − ref_N) + c·(ln(rN) − ref_D) = logit(threshold) for ln N."""
    shape = fit.shape
    coef = shape.sample(draws, rng)
    q = (threshold - shape.floor) / (points.top - shape.floor)
    z = math.log(q) - math.log1p(-q) if 0 < q < 1 else math.nan
    i = shape.groups.index(group)
    b = coef[:, len(shape.groups) + shape.slopes.index("params")]
    if f"params@{group}" in shape.slopes:  # the group's own deviation from the shared slope
        b = b + coef[:, len(shape.groups) + shape.slopes.index(f"params@{group}")]
    c = coef[:, len(shape.groups) + shape.slopes.index("tokens")] if "tokens" in shape.slopes else np.zeros(draws)
    rising = (b + c) > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_n = (z - coef[:, i] + b * shape.log_params_ref - c * (math.log(tokens_per_param) - shape.log_tokens_ref)) / (b + c)
        n = np.where(rising & np.isfinite(log_n), np.exp(np.clip(log_n, -700, 700)), np.inf)
    n = np.where(n <= REACH_LIMIT * params, n, np.inf)
    n = np.maximum(n, points.params.min() / REACH_LIMIT)  # below that, "already at the smallest sizes"
    p_reach = float(np.isfinite(n).mean()) if math.isfinite(z) else 0.0
    n_int = Interval.of(n, level) if p_reach >= 0.5 else None
    flops = None if n_int is None else Interval(*(FLOPS_PER_PARAM_TOKEN * tokens_per_param * v * v
                                                  for v in (n_int.median, n_int.low, n_int.high)))
    return RecipeForecast(group, Interval.of(acc, level), flops, n_int, p_reach)


def pilot_order(points: LadderPoints, i: int, j: int, tokens_per_param: float) -> tuple[float | None, int | None]:
    """The largest size both groups were trained at, and which of the two (index) measured
    higher there at the budget nearest `tokens_per_param` (seeds of that budget, within
    `BUDGET_RATIO`, averaged; None on a tie)."""
    common = np.intersect1d(points.sizes(i), points.sizes(j))
    if not len(common):
        return None, None
    n = float(common.max())
    score = []
    for g in (i, j):
        m = np.flatnonzero((points.group == g) & (points.params == n))
        ratio = np.abs(np.log(points.tokens[m] / n) - math.log(tokens_per_param))
        nearest = np.log(points.tokens[m] / points.tokens[m[np.argmin(ratio)]])
        score.append(float(np.mean(points.accuracy[m[np.abs(nearest) <= math.log(BUDGET_RATIO)]])))
    if score[0] == score[1]:
        return n, None
    return n, (i if score[0] > score[1] else j)


def pair_decision(points: LadderPoints, i: int, j: int, measured: np.ndarray, acc: np.ndarray, params: float,
                  tokens: float, level: float, confidence: float, metric: str) -> PairDecision:
    p_i = float(np.mean(measured[i] > measured[j]))
    w, l = (i, j) if p_i >= 0.5 else (j, i)
    p_win = max(p_i, 1 - p_i)
    gap = Interval.of(acc[w] - acc[l], level)
    pilot_n, leader = pilot_order(points, i, j, tokens / params)
    flip = None if leader is None else leader != w
    names = points.groups
    where = f"at {format_count(params)} params"
    decided = p_win >= confidence
    if decided:
        text = (f"{names[w]} ahead of {names[l]} {where}: +{100 * gap.median:.1f} points "
                f"[{100 * gap.low:.1f} to {100 * gap.high:.1f}], P(win) = {p_win:.2f} by {metric}")
    else:  # shown rounded down, so that it never reads as the confidence it fell short of
        text = (f"no decision {where}: P({names[w]} ahead of {names[l]}) = {math.floor(100 * p_win) / 100:.2f} "
                f"< {confidence:g} by {metric}; the forecasts overlap")
    if flip is not None:
        text += f"; the {format_count(pilot_n)} pilots have {names[leader]} ahead: " + (
            "the order holds" if not flip else "the order is expected to flip" if decided else "the order may flip")
    return PairDecision(names[w], names[l], p_win, decided, gap, pilot_n,
                        None if leader is None else names[leader], flip, text)


def recommend(skills: Sequence[SkillDecision], groups: tuple[str, ...], level: float,
              params: float) -> tuple[dict[str, float], dict[str, Interval], str]:
    """P(best) and mean accuracy over the skills per group, and the line that says which to train."""
    partial = [s.skill for s in skills if len(s.forecasts) != len(groups)]
    skills = [s for s in skills if len(s.forecasts) == len(groups)]  # the aggregate needs every group
    if not skills:
        return {}, {}, "no skill was forecast for every recipe: no recipe to recommend"
    mean = np.mean([s.draws for s in skills], axis=0)  # (groups, K), skills' draws independent
    best = np.argmax(mean, axis=0)
    p_best = {g: float(np.mean(best == i)) for i, g in enumerate(groups)}
    mean_acc = {g: Interval.of(mean[i], level) for i, g in enumerate(groups)}
    top = max(p_best, key=p_best.get)
    wins = sum(1 for s in skills for p in s.pairs if p.winner == top and p.decided)
    decided = sum(1 for s in skills for p in s.pairs if p.decided and top in (p.winner, p.loser))
    head = (f"train {top}" if p_best[top] >= CONFIDENCE else f"no clear winner; {top} leads")
    record = (f"it wins {wins} of its {decided} decided skill pairs" if decided else
              "none of its skill pairs is decided")
    line = (f"{head}: highest mean accuracy over {len(skills)} skills at {format_count(params)} params "
            f"({100 * mean_acc[top].median:.1f}%, P(best) = {p_best[top]:.2f}); {record}")
    if partial:
        line += f" ({len(partial)} skills not evaluated for every recipe left out of the mean: {', '.join(partial)})"
    return p_best, mean_acc, line
