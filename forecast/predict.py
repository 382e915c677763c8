"""`predict`: when and whether a model of a given size groks each skill, and how well.

For a target of N parameters trained on D tokens (default: 20 tokens per parameter, the
compute-optimal rule of Hoffmann et al. 2022), per skill:
- accuracy at the end of training, median and interval (including benchmark noise);
- **when**: tokens and FLOPs at which accuracy crosses the grok threshold (half way from
  the floor to the plateau, or `threshold`), with interval; None if not within
  `HORIZON` × the planned tokens;
- **whether**: probability of crossing within the planned tokens, and a status:
  `grokked-in-pilots` (a pilot already crossed), `in-transition` (no pilot has, the target
  is forecast to within its budget), `emerges-later` (forecast to cross only beyond the
  budget, or not within the horizon), `not-predictable` (with the reason; no numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from forecast.errors import UsageError
from forecast.fits import NOT_PREDICTABLE, SkillFit
from forecast.quantities import format_count
from forecast.samples import SurfaceSamples

if TYPE_CHECKING:
    from forecast.fits import Fits

TOKENS_PER_PARAM = 20.0
"""Compute-optimal training tokens per parameter (Hoffmann et al. 2022, table 3)."""
HORIZON = 100.0
"""A grok point further than this many times the planned tokens is reported as never."""
FAR_EXTRAPOLATION = 100.0
"""Warn when the target's compute exceeds the largest pilot's by more than this factor."""
GROKKED_IN_PILOTS, IN_TRANSITION, EMERGES_LATER = "grokked-in-pilots", "in-transition", "emerges-later"
STATUSES = (GROKKED_IN_PILOTS, IN_TRANSITION, EMERGES_LATER, NOT_PREDICTABLE)


@dataclass(frozen=True)
class Interval:
    """A median and a central interval (`low`, `high`) at the forecast's level."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: np.ndarray, level: float) -> Interval:
        """Quantiles of samples, which may hold inf ("never"): taken as order statistics
        (no interpolation), so an interval end is inf rather than NaN."""
        tail = (1 - level) / 2
        low, median, high = np.quantile(samples, [tail, 0.5, 1 - tail], method="inverted_cdf")
        return cls(float(median), float(low), float(high))

    def to_json(self) -> dict[str, float]:
        return {"median": self.median, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class GrokPoint:
    """Tokens (and FLOPs) at which the skill crosses its grok threshold: median and
    interval; `high_tokens` None when the interval's upper end is beyond the horizon."""

    tokens: float
    flops: float
    low_tokens: float
    high_tokens: float | None
    low_flops: float
    high_flops: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"tokens": self.tokens, "compute": self.flops, "low": self.low_tokens, "high": self.high_tokens,
                "compute_low": self.low_flops, "compute_high": self.high_flops}


@dataclass(frozen=True)
class SkillForecast:
    """The forecast of one skill for one target model. `accuracy`, `grok` and `p_grok` are
    None when the skill is not predictable; `grok` is None when it does not cross within
    the horizon."""

    skill: str
    family: str
    recipe: str
    params: float  # target parameters
    tokens: float  # planned training tokens
    flops: float  # planned training FLOPs
    status: str
    accuracy: Interval | None
    grok: GrokPoint | None
    p_grok: float | None
    threshold: float | None  # accuracy counted as "grokked" (median over samples)
    extrapolation: float  # target FLOPs / largest pilot FLOPs
    level: float
    chosen: str | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The documented `--json` shape (README, "Forecasts")."""
        return {
            "skill": self.skill, "family": self.family, "recipe": self.recipe,
            "params": self.params, "tokens": self.tokens, "compute": self.flops,
            "accuracy": None if self.accuracy is None else self.accuracy.to_json(),
            "grok": None if self.grok is None else self.grok.to_json(),
            "p_grok": self.p_grok, "threshold": self.threshold, "status": self.status,
            "extrapolation": self.extrapolation, "interval": self.level, "law": self.chosen,
            "reason": self.reason, "warnings": list(self.warnings),
        }


def resolve_budget(params: float, tokens: float | None, flops: float | None, kappa: float,
                   tokens_per_param: float = TOKENS_PER_PARAM) -> tuple[float, float]:
    """(tokens, FLOPs) of the planned run: given tokens, or FLOPs / (κ·N), or the
    compute-optimal `tokens_per_param`·N."""
    if tokens is not None and flops is not None:
        raise UsageError("give --tokens or --compute, not both")
    if tokens is None:
        tokens = flops / (kappa * params) if flops is not None else tokens_per_param * params
    return float(tokens), float(kappa * params * tokens)


def predict(
    fits: Fits,
    params: float,
    *,
    tokens: float | None = None,
    flops: float | None = None,
    skills: Sequence[str] | None = None,
    family: str | None = None,
    recipe: str | None = None,
    level: float = 0.8,
    threshold: float | None = None,
    tokens_per_param: float = TOKENS_PER_PARAM,
    seed: int = 0,
) -> list[SkillForecast]:
    """Forecast every selected skill of one (family, recipe) group for a model of
    `params` parameters trained on `tokens` tokens (or `flops` FLOPs)."""
    if not 0 < level < 1:
        raise UsageError(f"--interval must be in (0, 1), got {level}")
    if threshold is not None and not 0 < threshold < 1:
        raise UsageError(f"--threshold must be an accuracy in (0, 1), got {threshold}")
    return [predict_skill(sf, params, tokens=tokens, flops=flops, level=level, threshold=threshold,
                          tokens_per_param=tokens_per_param, seed=seed)
            for sf in fits.select(family, recipe, skills)]


def predict_skill(sf: SkillFit, params: float, *, tokens: float | None = None, flops: float | None = None,
                  level: float = 0.8, threshold: float | None = None,
                  tokens_per_param: float = TOKENS_PER_PARAM, seed: int = 0,
                  samples: SurfaceSamples | None = None) -> SkillForecast:
    """Forecast one skill (see module docstring)."""
    kappa = sf.scales.flops_per_param_token if sf.scales else 6.0
    tokens, flops = resolve_budget(params, tokens, flops, kappa, tokens_per_param)
    extrapolation = flops / sf.max_flops if sf.pilots else float("nan")
    base = dict(skill=sf.skill, family=sf.family, recipe=sf.recipe, params=params, tokens=tokens, flops=flops,
                extrapolation=extrapolation, level=level)
    if not sf.predictable:
        return SkillForecast(status=NOT_PREDICTABLE, accuracy=None, grok=None, p_grok=None, threshold=None,
                             reason=sf.reason, **base)
    samples = samples or SurfaceSamples.of(sf, seed=seed)
    rng = np.random.default_rng(seed + 1)
    model_acc = samples.accuracy(params, tokens)[:, 0]
    accuracy = Interval.of(samples.observed(model_acc[:, None], rng, params, tokens)[:, 0], level)
    thresholds = samples.threshold(threshold)
    p_grok = float(np.mean(model_acc >= thresholds))
    grok_tokens = samples.grok_tokens(params, thresholds, low=tokens / 1e4, high=tokens * HORIZON)
    when = Interval.of(grok_tokens, level)
    low, median, high = when.low, when.median, when.high
    grok = None
    if math.isfinite(median):
        high_tokens = float(high) if math.isfinite(high) else None
        grok = GrokPoint(tokens=float(median), flops=kappa * params * float(median), low_tokens=float(low),
                         high_tokens=high_tokens, low_flops=kappa * params * float(low),
                         high_flops=None if high_tokens is None else kappa * params * high_tokens)
    threshold_median = float(np.median(thresholds))
    largest = max(sf.pilots, key=lambda p: (p.params, max(p.tokens)))
    pilot_end = float(np.median(samples.accuracy(largest.params, max(largest.tokens))))
    if pilot_end >= threshold_median:  # the fit says the largest pilot had crossed by its end
        status = GROKKED_IN_PILOTS
    elif grok is not None and grok.tokens <= tokens:
        status = IN_TRANSITION
    else:
        status = EMERGES_LATER
    warnings = list(sf.warnings)
    if extrapolation > FAR_EXTRAPOLATION:
        warnings.append(f"the target's compute is {extrapolation:.3g}× the largest pilot's: a long extrapolation, "
                        "read the interval, not the median")
    if params < min(sf.sizes):
        warnings.append("the target is smaller than every pilot")
    earliest = min(float(min(p.tokens)) for p in sf.pilots)
    if grok is not None and grok.tokens < earliest:
        warnings.append(f"the median grok point is below {format_count(earliest)} tokens, the earliest any pilot "
                        "was evaluated at: the pilots cannot resolve how early it comes")
    return SkillForecast(status=status, accuracy=accuracy, grok=grok, p_grok=p_grok, threshold=threshold_median,
                         chosen=sf.chosen, warnings=tuple(warnings), **base)


def pilot_grok_point(sf: SkillFit) -> GrokPoint | None:
    """Forecast grok point of the largest pilot size over its own token range (None if the
    skill is not predictable or does not cross there)."""
    if not sf.predictable:
        return None
    largest = max(sf.pilots, key=lambda p: (p.params, max(p.tokens)))
    return predict_skill(sf, largest.params, tokens=max(largest.tokens)).grok
