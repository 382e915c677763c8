"""Data recipes judged by speed of grokking: which recipe makes a skill arrive sooner, and
does the advantage hold at the target scale?

Speed of grokking is the training tokens (and FLOPs) at which a skill crosses its grok
threshold (half way from floor to plateau, or an absolute accuracy), read from each
recipe's fitted surface at every pilot size and, through the fitted laws (a power law in
N for the grok point), at a target size. Recipes are fitted separately (fits never pool
recipes), so their bootstrap draws are independent: ratios pair draw i of one recipe with
draw i of the other, which samples the ratio of two independent estimates.

The verdict compares every recipe with the *baseline*, by default the fastest recipe at
the largest pilot size:
- the advantage ratio (tokens of the recipe ÷ tokens of the baseline; > 1: the baseline
  groks sooner) at each pilot size and at the target, with intervals;
- the trend of the gap with size: the lead of the recipe ahead at the largest pilot size
  (log ratio, signed, so a reversal counts as shrinking) at the target (else the largest
  pilot size) against the smallest pilot size, per draw; "shrinks" / "grows" when at least `TREND_CONFIDENCE`
  of the draws agree, else "no clear trend";
- the probability that the baseline is still faster at the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.errors import UsageError
from forecast.fits import Fits, SkillFit
from forecast.predict import HORIZON, TOKENS_PER_PARAM, Interval
from forecast.quantities import format_count
from forecast.samples import SurfaceSamples

TREND_CONFIDENCE = 0.8
"""Share of draws that must agree before a gap is said to shrink or grow with size."""
BY_KEYS = ("recipe", "family")


@dataclass(frozen=True)
class GrokSpeed:
    """Tokens (and FLOPs) to the grok threshold for one recipe at one size. `tokens` is None
    when the median draw does not cross within the horizon; `p_grok` is the share of draws
    that cross at all."""

    group: str  # the recipe (or family) label
    params: float  # parameters
    pilot: bool  # a pilot size (False: the extrapolated target)
    tokens: Interval | None
    flops: Interval | None
    p_grok: float

    def to_json(self) -> dict:
        return {"group": self.group, "params": self.params, "pilot": self.pilot,
                "tokens": None if self.tokens is None else self.tokens.to_json(),
                "compute": None if self.flops is None else self.flops.to_json(), "p_grok": self.p_grok}


@dataclass(frozen=True)
class Advantage:
    """How much later `group` groks than the baseline at one size: ratio of tokens (> 1:
    the baseline is faster) with interval, and P(baseline faster)."""

    group: str
    params: float
    pilot: bool
    ratio: Interval
    p_baseline_faster: float

    def to_json(self) -> dict:
        return {"group": self.group, "params": self.params, "pilot": self.pilot, "ratio": self.ratio.to_json(),
                "p_baseline_faster": self.p_baseline_faster}


@dataclass(frozen=True)
class Verdict:
    """One recipe against the baseline, in numbers and in words."""

    group: str
    trend: str  # "shrinks", "grows", "no clear trend", or "never groks"
    p_shrinks: float | None  # share of draws in which the gap is smaller at the larger size
    distinguishable_at_target: bool | None  # the target's ratio interval excludes 1
    p_ranking_holds: float | None  # P(baseline still faster at the target)
    text: str


@dataclass(frozen=True)
class SkillComparison:
    """Every recipe's speed of grokking for one skill, and the verdicts against the baseline."""

    skill: str
    by: str  # "recipe" or "family"
    fixed: str  # the label held fixed (the family when comparing recipes)
    baseline: str
    target_params: float | None
    level: float
    speeds: tuple[GrokSpeed, ...]
    advantages: tuple[Advantage, ...]
    verdicts: tuple[Verdict, ...]
    not_predictable: dict[str, str]  # group -> reason

    def to_json(self) -> dict:
        return {"skill": self.skill, "by": self.by, "fixed": self.fixed, "baseline": self.baseline,
                "target_params": self.target_params, "interval": self.level,
                "speeds": [s.to_json() for s in self.speeds],
                "advantages": [a.to_json() for a in self.advantages],
                "verdicts": [{"group": v.group, "trend": v.trend, "p_shrinks": v.p_shrinks,
                              "distinguishable_at_target": v.distinguishable_at_target,
                              "p_ranking_holds": v.p_ranking_holds, "verdict": v.text} for v in self.verdicts],
                "not_predictable": self.not_predictable}


def compare(
    fits: Fits,
    *,
    by: str = "recipe",
    skills: Sequence[str] | None = None,
    family: str | None = None,
    recipe: str | None = None,
    target_params: float | None = None,
    baseline: str | None = None,
    threshold: float | None = None,
    level: float = 0.8,
    seed: int = 0,
) -> list[SkillComparison]:
    """Compare the groups of `fits` that differ in `by` ("recipe": one family's recipes;
    "family": one recipe's families), skill by skill."""
    if by not in BY_KEYS:
        raise UsageError(f"--by {by}: unknown key; compare by {' or '.join(BY_KEYS)}")
    if not 0 < level < 1:
        raise UsageError(f"--interval must be in (0, 1), got {level}")
    groups = _groups(fits, by, family, recipe)
    labels = [g[1] if by == "recipe" else g[0] for g in groups]
    fixed = groups[0][0] if by == "recipe" else groups[0][1]
    if baseline is not None and baseline not in labels:
        raise UsageError(f"--baseline {baseline}: no such {by}; the fits hold {', '.join(labels)}")
    per_group = {label: {sf.skill: sf for sf in fits.select(*g)} for label, g in zip(labels, groups)}
    names = _skill_names(per_group, skills)
    return [_compare_skill(name, by, fixed, {lab: per_group[lab][name] for lab in labels if name in per_group[lab]},
                           target_params, baseline, threshold, level, seed) for name in names]


def _groups(fits: Fits, by: str, family: str | None, recipe: str | None) -> list[tuple[str, str]]:
    groups = [g for g in fits.groups() if (family is None or g[0] == family) and (recipe is None or g[1] == recipe)]
    fixed_values = sorted({g[0] if by == "recipe" else g[1] for g in groups})
    other = "family" if by == "recipe" else "recipe"
    if len(fixed_values) > 1:
        raise UsageError(f"the fits hold several {other} values ({', '.join(fixed_values)}); "
                         f"choose one with --{other}")
    if len(groups) < 2:
        held = ", ".join(f"{f}/{r}" for f, r in fits.groups()) or "none"
        raise UsageError(f"--by {by}: needs at least two {by}s to compare, the fits hold {held}")
    return groups


def _skill_names(per_group: dict[str, dict[str, SkillFit]], skills: Sequence[str] | None) -> list[str]:
    known = sorted({s for fits in per_group.values() for s in fits})
    if not skills or [s.lower() for s in skills] == ["all"]:
        return known
    lookup = {s.lower(): s for s in known}
    missing = [s for s in skills if s.lower() not in lookup]
    if missing:
        raise UsageError(f"--skill {missing[0]}: unknown skill; the fits hold {', '.join(known)}")
    return [lookup[s.lower()] for s in skills]


def _compare_skill(skill: str, by: str, fixed: str, fits: dict[str, SkillFit], target: float | None,
                   baseline: str | None, threshold: float | None, level: float, seed: int) -> SkillComparison:
    usable = {g: sf for g, sf in fits.items() if sf.predictable}
    not_predictable = {g: sf.reason or "not predictable" for g, sf in fits.items() if not sf.predictable}
    sizes = sorted({n for sf in usable.values() for n in sf.sizes})
    points = [(n, True) for n in sizes] + ([(target, False)] if target else [])
    longest = max((max(p.tokens) for sf in usable.values() for p in sf.pilots), default=1.0)
    high = HORIZON * max(longest, TOKENS_PER_PARAM * (target or 0))
    low = min((min(p.tokens) for sf in usable.values() for p in sf.pilots), default=1.0) / 100
    draws: dict[str, np.ndarray] = {}  # group -> (points, K) grok tokens, inf = never within the horizon
    speeds = []
    for i, (group, sf) in enumerate(sorted(usable.items())):
        samples = SurfaceSamples.of(sf, seed=seed + i)  # independent draws per recipe
        thresholds = samples.threshold(threshold)
        kappa = sf.scales.flops_per_param_token if sf.scales else 6.0
        rows = []
        for n, pilot in points:
            t = samples.grok_tokens(n, thresholds, low, high)
            rows.append(t)
            crossing = np.isfinite(t)
            tok = Interval.of(t, level)
            finite = math.isfinite(tok.median)
            speeds.append(GrokSpeed(group, n, pilot, tok if finite else None,
                                    Interval(kappa * n * tok.median, kappa * n * tok.low, kappa * n * tok.high)
                                    if finite else None, float(crossing.mean())))
        draws[group] = np.array(rows)
    if not draws:
        return SkillComparison(skill, by, fixed, baseline or "", target, level, tuple(speeds), (), (), not_predictable)
    largest = len(sizes) - 1
    if baseline is None or baseline not in draws:
        baseline = min(draws, key=lambda g: np.median(draws[g][largest]))
    advantages, verdicts = [], []
    for group in sorted(draws):
        if group == baseline:
            continue
        ratio = np.log(np.minimum(draws[group], high)) - np.log(np.minimum(draws[baseline], high))  # (points, K)
        for j, (n, pilot) in enumerate(points):
            advantages.append(Advantage(group, n, pilot, Interval.of(np.exp(ratio[j]), level),
                                        float(np.mean(ratio[j] > 0))))
        verdicts.append(_verdict(group, baseline, ratio, draws[group], sizes, target, level))
    return SkillComparison(skill, by, fixed, baseline, target, level, tuple(speeds), tuple(advantages),
                           tuple(verdicts), not_predictable)


def _verdict(group: str, baseline: str, log_ratio: np.ndarray, group_draws: np.ndarray, sizes: list[float],
             target: float | None, level: float) -> Verdict:
    """Words for one recipe against the baseline; `log_ratio` (points, K), rows = pilot sizes then target."""
    largest = len(sizes) - 1
    if not np.isfinite(group_draws[: largest + 1]).any():
        return Verdict(group, "never groks", None, None, None,
                       f"{group} never groks within {HORIZON:g}× the pilots' tokens at any pilot size")
    at_largest = Interval.of(np.exp(log_ratio[largest]), level)
    faster = f"{baseline} groks {at_largest.median:.3g}× sooner than {group} at {format_count(sizes[largest])} params " \
             f"[{at_largest.low:.3g}–{at_largest.high:.3g}]"
    if at_largest.median < 1:
        faster = f"{group} groks {1 / at_largest.median:.3g}× sooner than {baseline} at {format_count(sizes[largest])} params"
    # the lead of whichever recipe is ahead at the largest pilot size, signed (a reversal is a
    # lead below zero), at the far end (the target, else the largest pilot) against the smallest pilot
    ahead = 1.0 if np.median(log_ratio[largest]) >= 0 else -1.0
    far = len(sizes) if target else largest
    gap_near, gap_far = ahead * log_ratio[0], ahead * log_ratio[far]
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
    text = f"{faster}; the gap {'shows no clear trend' if trend == 'no clear trend' else trend} with size{pct}"
    distinguishable = p_holds = None
    if target:
        at_target = Interval.of(np.exp(log_ratio[-1]), level)
        distinguishable = not (at_target.low <= 1 <= at_target.high)
        p_holds = float(np.mean(log_ratio[-1] > 0))
        where = f"at {format_count(target)} params"
        if distinguishable:
            text += f"; {where} {at_target.median:.3g}× [{at_target.low:.3g}–{at_target.high:.3g}]"
        else:
            text += f" and is not distinguishable {where} ({at_target.median:.3g}× [{at_target.low:.3g}–" \
                    f"{at_target.high:.3g}])"
        text += f"; P({baseline} still faster) = {p_holds:.2f}"
    return Verdict(group, trend, p_shrinks, distinguishable, p_holds, text)
