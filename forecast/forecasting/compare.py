"""Data recipes judged by speed of grokking: which recipe makes a skill arrive sooner, and
does the advantage hold at the target scale?

Speed of grokking is the amount of training at which a skill crosses its grok threshold
(half way from floor to plateau, or an absolute accuracy), measured in training tokens,
training examples (sequences; what Lee et al. 2023 count) or FLOPs (`MEASURES`). It is read
from each recipe's fitted surface at every pilot size and, through the fitted laws (a power
law in N for the grok point), at a target size. Recipes are fitted separately (fits never
pool recipes), so their bootstrap draws are independent: ratios pair draw i of one recipe
with draw i of the other, which samples the ratio of two independent estimates.

The verdict compares every recipe with the *baseline*, by default the fastest recipe at
the largest pilot size (by median, as the table shows it):
- the advantage ratio (amount of the recipe ÷ amount of the baseline; > 1: the baseline
  groks sooner) at each pilot size and at the target: ratio of the medians, with the
  interval of the paired draws;
- the trend of the gap with size: the lead of whichever is ahead at the largest pilot size
  (log ratio, signed, so a reversal counts as shrinking) at the target (else the largest
  pilot size) against the smallest pilot size, per draw; "shrinks" / "grows" when at
  least `TREND_CONFIDENCE` of the draws agree, else "no clear trend";
- the probability that the recipe ahead at the largest pilot is still ahead at the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.errors import UsageError
from forecast.options import BY_KEYS, MEASURES
from forecast.forecasting.predict import HORIZON, Interval, check_level, check_threshold
from forecast.quantities import TOKENS_PER_PARAM, format_count
from forecast.fitting.results import SkillFit, groups as fit_groups, match_skills, select
from forecast.forecasting.samples import SurfaceSamples

TREND_CONFIDENCE = 0.8
"""Share of draws that must agree before a gap is said to shrink or grow with size."""


@dataclass(frozen=True)
class GrokSpeed:
    """Amount of training (in the comparison's measure) to the grok threshold for one recipe
    at one size. `amount` is None when the median draw does not cross within the horizon;
    `p_grok` is the share of draws that cross at all."""

    group: str  # the recipe (or family) label
    params: float  # parameters
    pilot: bool  # a pilot size (False: the extrapolated target)
    amount: Interval | None  # in `SkillComparison.measure` units
    tokens: Interval | None  # the same crossing in training tokens
    p_grok: float

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "params": self.params, "pilot": self.pilot,
                "amount": None if self.amount is None else self.amount.to_json(),
                "tokens": None if self.tokens is None else self.tokens.to_json(), "p_grok": self.p_grok}


@dataclass(frozen=True)
class Advantage:
    """How much later `group` groks than the baseline at one size: ratio of amounts (> 1:
    the baseline is faster) with interval, and P(baseline faster)."""

    group: str
    params: float
    pilot: bool
    ratio: Interval
    p_baseline_faster: float

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "params": self.params, "pilot": self.pilot, "ratio": self.ratio.to_json(),
                "p_baseline_faster": self.p_baseline_faster}


@dataclass(frozen=True)
class Verdict:
    """One recipe against the baseline, in numbers and in words."""

    group: str
    trend: str  # "shrinks", "grows", "no clear trend", or "never groks"
    p_shrinks: float | None  # share of draws in which the gap is smaller at the larger size
    distinguishable_at_target: bool | None  # the target's ratio interval excludes 1
    p_ranking_holds: float | None  # P(the recipe ahead at the largest pilot is still ahead at the target)
    leader: str | None  # the recipe ahead at the largest pilot size
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "trend": self.trend, "p_shrinks": self.p_shrinks,
                "distinguishable_at_target": self.distinguishable_at_target,
                "p_ranking_holds": self.p_ranking_holds, "leader": self.leader, "verdict": self.text}


@dataclass(frozen=True)
class SkillComparison:
    """Every recipe's speed of grokking for one skill, and the verdicts against the baseline."""

    skill: str
    by: str  # "recipe" or "family"
    fixed: str  # the label held fixed (the family when comparing recipes)
    measure: str  # "tokens", "examples" or "flops"
    baseline: str
    target_params: float | None
    level: float
    speeds: tuple[GrokSpeed, ...]
    advantages: tuple[Advantage, ...]
    verdicts: tuple[Verdict, ...]
    not_predictable: dict[str, str]  # group -> reason

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "by": self.by, "fixed": self.fixed, "measure": self.measure,
                "baseline": self.baseline, "target_params": self.target_params, "level": self.level,
                "speeds": [s.to_json() for s in self.speeds],
                "advantages": [a.to_json() for a in self.advantages],
                "verdicts": [v.to_json() for v in self.verdicts], "not_predictable": self.not_predictable}


def compare(fits: Any, **kwargs: Any) -> list[SkillComparison]:
    """Compare the groups of `fits` (a `Fits`, or a sequence of `SkillFit`) that differ in
    `by`, skill by skill; keyword arguments as `compare_skill_fits`."""
    return compare_skill_fits(getattr(fits, "skills", fits), **kwargs)


def compare_skill_fits(
    skill_fits: Sequence[SkillFit],
    *,
    by: str = "recipe",
    skills: Sequence[str] | None = None,
    family: str | None = None,
    recipe: str | None = None,
    target_params: float | None = None,
    baseline: str | None = None,
    threshold: float | None = None,
    measure: str = "tokens",
    level: float = 0.8,
    seed: int = 0,
) -> list[SkillComparison]:
    """Compare the groups that differ in `by` ("recipe": one family's recipes; "family":
    one recipe's families), skill by skill, by speed of grokking in `measure` units."""
    check_compare_args(by, measure, level, threshold)
    chosen = compared_groups(fit_groups(skill_fits), by, family, recipe, baseline)
    labels = [g[1] if by == "recipe" else g[0] for g in chosen]
    fixed = chosen[0][0] if by == "recipe" else chosen[0][1]
    per_group = {label: {sf.skill: sf for sf in select(skill_fits, *g)} for label, g in zip(labels, chosen)}
    known = sorted({s for fits in per_group.values() for s in fits})
    names = match_skills(known, skills)
    out = []
    for name in names:
        members = {lab: per_group[lab][name] for lab in labels if name in per_group[lab]}
        if baseline is not None and name in per_group[baseline] and not per_group[baseline][name].predictable:
            raise UsageError(f"`baseline={baseline!r}`: {name} is not predictable for it "
                             f"({per_group[baseline][name].reason}); choose another baseline", parameter="baseline")
        out.append(_compare_skill(name, by, fixed, members, target_params, baseline, threshold, measure, level,
                                  seed))
    return out


def check_compare_args(by: str, measure: str = "tokens", level: float = 0.8, threshold: float | None = None) -> None:
    """The flags of a comparison, checked before any fitting (`UsageError`)."""
    if by not in BY_KEYS:
        raise UsageError(f"`by={by!r}`: unknown key; compare by {' or '.join(BY_KEYS)}", parameter="by")
    if measure not in MEASURES:
        raise UsageError(f"`measure={measure!r}`: unknown measure; use {', '.join(MEASURES)}", parameter="measure")
    check_level(level)
    check_threshold(threshold)


def compared_groups(present: Sequence[tuple[str, str]], by: str, family: str | None = None,
                    recipe: str | None = None, baseline: str | None = None) -> list[tuple[str, str]]:
    """The (family, recipe) groups to compare out of `present` (of runs before a fit, or of
    fits): at least two that differ in `by` and agree on the other key; `baseline`, when
    given, must be one of them. `UsageError` otherwise, so a bad comparison fails before
    anything is fitted."""
    present = sorted(set(present))
    chosen = [g for g in present if (family is None or g[0] == family) and (recipe is None or g[1] == recipe)]
    fixed_values = sorted({g[0] if by == "recipe" else g[1] for g in chosen})
    other = "family" if by == "recipe" else "recipe"
    if len(fixed_values) > 1:
        raise UsageError(f"there are several {other} values ({', '.join(fixed_values)}); "
                         f"choose one with `{other}`", parameter=other)
    if len(chosen) < 2:
        held = ", ".join(f"{f}/{r}" for f, r in present) or "none"
        raise UsageError(f"`by={by!r}`: needs at least two {'families' if by == 'family' else 'recipes'} to compare; "
                         f"found {held}", parameter="by")
    labels = [g[1] if by == "recipe" else g[0] for g in chosen]
    if baseline is not None and baseline not in labels:
        raise UsageError(f"`baseline={baseline!r}`: no such {by}; there are {', '.join(labels)}", parameter="baseline")
    return chosen


def to_measure(sf: SkillFit, measure: str, params: float, tokens: np.ndarray) -> np.ndarray:
    """Training `tokens` of a model of `params` parameters in `measure` units: tokens;
    FLOPs (κ·N·D); or examples, through the recipe's own tokens per example as its pilots
    logged it (interpolated in log tokens, held constant beyond the pilots: the data stream
    of a recipe does not depend on model size)."""
    if measure == "tokens":
        return tokens
    if measure == "flops":
        return tokens * sf.flops_per_param_token * params
    pairs = [(t, e) for p in sf.pilots if p.examples for t, e in zip(p.tokens, p.examples)
             if math.isfinite(e) and e > 0 and t > 0]
    if not pairs:
        raise UsageError(f"`measure='examples'`: the {sf.family}/{sf.recipe} runs do not record training examples "
                         "(pilot runs do; imported ones usually not); use `measure='tokens'` or `measure='flops'`",
                         parameter="measure")
    t, e = np.array(sorted(pairs)).T
    log_ratio = np.interp(np.log(np.where(np.isfinite(tokens), tokens, 1.0)), np.log(t), np.log(t / e))
    return np.where(np.isfinite(tokens), tokens / np.exp(log_ratio), np.inf)


def _compare_skill(skill: str, by: str, fixed: str, fits: dict[str, SkillFit], target: float | None,
                   baseline: str | None, threshold: float | None, measure: str, level: float,
                   seed: int) -> SkillComparison:
    usable = {g: sf for g, sf in fits.items() if sf.predictable}
    not_predictable = {g: sf.reason or "not predictable" for g, sf in fits.items() if not sf.predictable}
    sizes = sorted({n for sf in usable.values() for n in sf.sizes})
    points = [(n, True) for n in sizes] + ([(target, False)] if target else [])
    longest = max((max(p.tokens) for sf in usable.values() for p in sf.pilots), default=1.0)
    high = HORIZON * max(longest, TOKENS_PER_PARAM * (target or 0))
    low = min((min(p.tokens) for sf in usable.values() for p in sf.pilots), default=1.0) / 100
    draws: dict[str, np.ndarray] = {}  # group -> (points, K) amounts, inf = never within the horizon
    speeds = []
    for i, (group, sf) in enumerate(sorted(usable.items())):
        samples = SurfaceSamples.of(sf, seed=seed + i)  # independent draws per recipe
        thresholds = samples.threshold(threshold)
        rows = []
        for n, pilot in points:
            tokens = samples.grok_tokens(n, thresholds, low, high)
            amount = to_measure(sf, measure, n, tokens)
            rows.append(amount)
            tok, amt = Interval.of(tokens, level), Interval.of(amount, level)
            finite = math.isfinite(tok.median)
            speeds.append(GrokSpeed(group=group, params=n, pilot=pilot, amount=amt if finite else None,
                                    tokens=tok if finite else None, p_grok=float(np.isfinite(tokens).mean())))
        draws[group] = np.array(rows)
    base = dict(skill=skill, by=by, fixed=fixed, measure=measure, target_params=target, level=level,
                not_predictable=not_predictable)
    if not draws:
        return SkillComparison(**base, baseline=baseline or "", speeds=tuple(speeds), advantages=(), verdicts=())
    largest = len(sizes) - 1
    median_at = lambda g, j: _median(draws[g][j])  # noqa: E731
    if baseline in draws and not math.isfinite(median_at(baseline, largest)):  # no speed to compare with
        raise UsageError(f"`baseline={baseline!r}`: {skill} never groks for it within {HORIZON:g}× the pilots' "
                         f"training at {format_count(sizes[largest])} params; choose another baseline", parameter="baseline")
    if baseline is None or baseline not in draws:
        baseline = min(draws, key=lambda g: median_at(g, largest))
    ceiling = to_measure_ceiling(draws)
    advantages, verdicts = [], []
    for group in sorted(draws):
        if group == baseline:
            continue
        log_ratio = np.log(np.minimum(draws[group], ceiling)) - np.log(np.minimum(draws[baseline], ceiling))
        for j, (n, pilot) in enumerate(points):
            advantages.append(Advantage(group=group, params=n, pilot=pilot,
                                        ratio=_ratio(draws[group][j], draws[baseline][j], log_ratio[j], level),
                                        p_baseline_faster=float(np.mean(log_ratio[j] > 0))))
        verdicts.append(_verdict(group, baseline, log_ratio, draws, sizes, target, level, measure))
    return SkillComparison(**base, baseline=baseline, speeds=tuple(speeds), advantages=tuple(advantages),
                           verdicts=tuple(verdicts))


def to_measure_ceiling(draws: dict[str, np.ndarray]) -> float:
    """A finite stand-in for "never" when taking ratios: the largest finite amount × 10."""
    finite = [d[np.isfinite(d)].max() for d in draws.values() if np.isfinite(d).any()]
    return 10 * max(finite) if finite else 1.0


def _median(draws: np.ndarray) -> float:
    """The median exactly as the speeds table shows it (`Interval.of`: an order statistic,
    inf when most draws never cross), so that verdicts and the table agree to the digit."""
    return Interval.of(draws, 0.5).median


def _ratio(group: np.ndarray, baseline: np.ndarray, log_ratio: np.ndarray, level: float) -> Interval:
    """Ratio of the two medians (what the table shows), with the paired draws' interval."""
    spread = Interval.of(np.exp(log_ratio), level)
    median = _median(group) / _median(baseline)
    if not math.isfinite(median):
        median = spread.median
    return Interval(median, min(spread.low, median), max(spread.high, median))


SANE_RATIO = 100.0
"""A ratio interval reaching beyond 100× either way says the draws cannot tell the speeds
apart at that size: it is printed as undetermined, not as numbers that look exact."""


def _bounds(low: float, high: float) -> str:
    """A ratio interval for the words: `[0.8–2.4]`, or `[undetermined]` past `SANE_RATIO`."""
    if not (low >= 1 / SANE_RATIO and high <= SANE_RATIO):
        return f"[interval undetermined: beyond {1 / SANE_RATIO:g}–{SANE_RATIO:g}×]"
    return f"[{low:.3g}–{high:.3g}]"


def _verdict(group: str, baseline: str, log_ratio: np.ndarray, draws: dict[str, np.ndarray], sizes: list[float],
             target: float | None, level: float, measure: str) -> Verdict:
    """Words for one recipe against the baseline; `log_ratio` (points, K), rows = pilot sizes then target."""
    largest = len(sizes) - 1
    if not np.isfinite(draws[group][: largest + 1]).any():
        if not np.isfinite(draws[baseline][: largest + 1]).any():
            return Verdict(group, "never groks", None, None, None, baseline,
                           f"neither {group} nor {baseline} groks within {HORIZON:g}× the pilots' training at any "
                           "pilot size: no speed to compare")
        return Verdict(group, "never groks", None, None, None, baseline,
                       f"{group} never groks within {HORIZON:g}× the pilots' training at any pilot size")
    if not (math.isfinite(_median(draws[group][largest])) or math.isfinite(_median(draws[baseline][largest]))):
        return Verdict(group, "no clear trend", None, None, None, baseline,
                       f"neither {group} nor {baseline} groks within {HORIZON:g}× the pilots' training at "
                       f"{format_count(sizes[largest])} params in most draws: no speed to compare there")
    at_largest = _ratio(draws[group][largest], draws[baseline][largest], log_ratio[largest], level)
    ahead, behind = (baseline, group) if at_largest.median >= 1 else (group, baseline)
    sign = 1.0 if at_largest.median >= 1 else -1.0  # the lead of `ahead`, in log units
    factor = at_largest.median if sign > 0 else 1 / at_largest.median
    low, high = sorted((at_largest.low ** sign, at_largest.high ** sign))
    text = (f"{ahead} groks {factor:.3g}× sooner than {behind} in {measure} at {format_count(sizes[largest])} params "
            f"{_bounds(low, high)}")
    far = len(sizes) if target else largest
    gap_near, gap_far = sign * log_ratio[0], sign * log_ratio[far]
    p_shrinks = float(np.mean(gap_far < gap_near)) if len(sizes) > 1 else None
    if p_shrinks is None:
        trend = "no clear trend"
    elif p_shrinks >= TREND_CONFIDENCE:
        trend = "shrinks"
    elif p_shrinks <= 1 - TREND_CONFIDENCE:
        trend = "grows"
    else:
        trend = "no clear trend"
    pct = "" if p_shrinks is None else f" ({100 * p_shrinks:.0f}% of draws shrink)"
    text += f"; the gap {'shows no clear trend' if trend == 'no clear trend' else trend} with size{pct}"
    distinguishable = p_holds = None
    if target:
        at_target = _ratio(draws[group][-1], draws[baseline][-1], log_ratio[-1], level)
        distinguishable = not (at_target.low <= 1 <= at_target.high)
        p_holds = float(np.mean(sign * log_ratio[-1] > 0))
        where = f"at {format_count(target)} params"
        ratio_text = f"{group}/{baseline} {at_target.median:.3g}× {_bounds(at_target.low, at_target.high)}"
        text += f"; {where} {ratio_text}" if distinguishable else f" and is not distinguishable {where} ({ratio_text})"
        text += f"; P({ahead} still faster) = {p_holds:.2f}"
    return Verdict(group, trend, p_shrinks, distinguishable, p_holds, ahead, text)
