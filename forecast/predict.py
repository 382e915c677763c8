"""`predict`: when and whether a model of a given size groks each skill, and how well.

For a target of N parameters trained on D tokens (default: the group's own tokens per
parameter when its runs show one, else 20, the compute-optimal rule of Hoffmann et al.
2022), per skill:
- accuracy at the end of training, median and interval (including benchmark noise);
- **when**: tokens and FLOPs at which accuracy crosses the grok threshold (half way from
  the floor to the plateau, or `threshold`), with interval; a crossing earlier than any
  pilot evaluation is reported as a bound ("< X"), one beyond `HORIZON` × the planned
  tokens as never;
- **whether**: probability of crossing within the planned tokens, and a status
  (`forecast.status.Status`; README, "Statuses").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from forecast.errors import UsageError
from forecast.quantities import TOKENS_PER_PARAM, format_count
from forecast.results import SkillFit
from forecast.samples import MAX_EXTRAPOLATION, SurfaceSamples, extrapolation_distance
from forecast.schema import ForecastJson, GrokJson, IntervalJson, finite
from forecast.status import Note, NoteCode, Status

HORIZON = 100.0
"""A grok point further than this many times the planned tokens is reported as never."""
FAR_EXTRAPOLATION = 100.0
"""Note when the target's compute exceeds the largest pilot's by more than this factor."""
RATIO_SPREAD = math.log(2.0)
"""Largest spread (standard deviation of ln tokens/params over the runs) at which a group's
runs count as trained to one tokens-per-parameter ratio."""


@dataclass(frozen=True)
class Interval:
    """A median and a central interval (`low`, `high`) at the forecast's level; ends may be
    inf ("never within the horizon"), which JSON writes as null."""

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

    def scaled(self, factor: float) -> Interval:
        return Interval(self.median * factor, self.low * factor, self.high * factor)

    def to_json(self) -> IntervalJson:
        return {"median": finite(self.median), "low": finite(self.low), "high": finite(self.high)}


@dataclass(frozen=True)
class GrokPoint:
    """Tokens (and FLOPs, C = κ·N·D) at which the skill crosses its grok threshold.

    `tokens` is the median and (`low`, `high`) the interval, in training tokens. The pilots
    resolve nothing earlier than their first evaluation (`resolution`): a value below it
    is None, read "< resolution". `high` is inf when the interval runs past the search
    horizon (`horizon_tokens`)."""

    tokens: float | None
    low: float | None
    high: float
    flops_per_token: float  # κ·N: FLOPs per training token of the target
    resolution: float
    horizon_tokens: float

    @property
    def flops(self) -> float | None:
        return None if self.tokens is None else self.tokens * self.flops_per_token

    @property
    def before(self) -> float | None:
        """The bound when the median crossing is earlier than the pilots resolve."""
        return self.resolution if self.tokens is None else None

    def to_json(self) -> GrokJson:
        k = self.flops_per_token
        scaled = lambda v: None if v is None else finite(v * k)  # noqa: E731
        return {"tokens": finite(self.tokens), "flops": finite(self.flops), "low": finite(self.low),
                "high": finite(self.high), "flops_low": scaled(self.low), "flops_high": scaled(self.high),
                "before_tokens": finite(self.before), "horizon_tokens": finite(self.horizon_tokens), "note": None}


@dataclass(frozen=True)
class SkillForecast:
    """The forecast of one skill for one target model. `accuracy` is None only when no
    number can be given (`not-predictable`, `out-of-range`); `grok` is None when the skill
    has no grok moment to report (smooth, flat) or does not cross within the horizon."""

    skill: str
    family: str
    recipe: str
    params: float  # target parameters
    tokens: float  # planned training tokens
    flops: float  # planned training FLOPs
    tokens_source: str  # how `tokens` was chosen (schema.ForecastJson)
    status: Status
    accuracy: Interval | None
    grok: GrokPoint | None
    p_grok: float | None
    threshold: float | None  # accuracy counted as "grokked" (median over samples)
    extrapolation: float | None  # target FLOPs / largest pilot FLOPs (None when unknown)
    level: float
    law: str | None = None
    confidence: str | None = None  # "high" | "medium" | "low"
    confidence_reason: str | None = None
    borrowed_from: tuple[str, ...] = ()
    reason: str | None = None
    notes: tuple[Note, ...] = field(default_factory=tuple)

    def to_json(self) -> ForecastJson:
        """The documented `--json` shape (`schema.ForecastJson`)."""
        return {
            "skill": self.skill, "family": self.family, "recipe": self.recipe,
            "params": self.params, "tokens": self.tokens, "flops": self.flops, "tokens_source": self.tokens_source,
            "status": str(self.status),
            "accuracy": None if self.accuracy is None else self.accuracy.to_json(),
            "grok": None if self.grok is None else self.grok.to_json(),
            "p_grok": finite(self.p_grok), "threshold": finite(self.threshold),
            "confidence": self.confidence, "confidence_reason": self.confidence_reason,
            "extrapolation": finite(self.extrapolation), "level": self.level, "law": self.law,
            "borrowed_from": list(self.borrowed_from), "reason": self.reason,
            "notes": [n.to_json() for n in self.notes],
        }


def check_level(level: float, flag: str = "--interval") -> float:
    """An interval's central probability must lie in (0, 1)."""
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise UsageError(f"{flag} must be a probability in (0, 1), e.g. 0.8; got {level}")
    return float(level)


def check_threshold(threshold: float | None, flag: str = "--threshold") -> float | None:
    if threshold is not None and not 0 < threshold < 1:
        raise UsageError(f"{flag} must be an accuracy in (0, 1), e.g. 0.5; got {threshold}")
    return threshold


def check_tokens_per_param(ratio: float | None, flag: str = "--tokens-per-param") -> float | None:
    if ratio is not None and not (math.isfinite(ratio) and ratio > 0):
        raise UsageError(f"{flag} must be a positive number of tokens per parameter, e.g. 20; got {ratio}")
    return ratio


def group_tokens_per_param(sf: SkillFit) -> float | None:
    """The tokens-per-parameter ratio the group's runs were trained at, when they agree on
    one (published families train 100–300+ tokens per parameter; pilots often train every
    size for the same tokens): the geometric mean of final tokens / params, if their spread
    is within `RATIO_SPREAD`; else None."""
    ratios = [max(p.tokens) / p.params for p in sf.pilots if p.tokens and math.isfinite(max(p.tokens))]
    if len(ratios) < 2:
        return None
    logs = np.log(ratios)
    return float(np.exp(logs.mean())) if float(np.std(logs)) <= RATIO_SPREAD else None


def resolve_budget(sf: SkillFit, params: float, tokens: float | None, flops: float | None,
                   tokens_per_param: float | None) -> tuple[float, float, str]:
    """(tokens, FLOPs, how the tokens were chosen) of the planned run: the given tokens, or
    FLOPs / (κ·N), or `tokens_per_param`·N, or the group's own ratio, else 20·N."""
    if tokens is not None and flops is not None:
        raise UsageError("give --tokens or --compute, not both")
    kappa = sf.flops_per_param_token
    if tokens is not None:
        source = "given"
    elif flops is not None:
        tokens, source = flops / (kappa * params), "from-flops"
    elif tokens_per_param is not None:
        tokens, source = tokens_per_param * params, "given-tokens-per-param"
    else:
        ratio = group_tokens_per_param(sf)
        source = "group-tokens-per-param" if ratio is not None else "default-tokens-per-param"
        tokens = (ratio or TOKENS_PER_PARAM) * params
    return float(tokens), float(kappa * params * tokens), source


def predict(
    skill_fits: Sequence[SkillFit],
    params: float,
    *,
    tokens: float | None = None,
    flops: float | None = None,
    level: float = 0.8,
    threshold: float | None = None,
    tokens_per_param: float | None = None,
    seed: int = 0,
) -> list[SkillForecast]:
    """Forecast each skill fit for a model of `params` parameters trained on `tokens` tokens
    (or `flops` FLOPs, or `tokens_per_param`·params)."""
    check_level(level)
    check_threshold(threshold)
    check_tokens_per_param(tokens_per_param)
    return [predict_skill(sf, params, tokens=tokens, flops=flops, level=level, threshold=threshold,
                          tokens_per_param=tokens_per_param, seed=seed) for sf in skill_fits]


def predict_skill(sf: SkillFit, params: float, *, tokens: float | None = None, flops: float | None = None,
                  level: float = 0.8, threshold: float | None = None, tokens_per_param: float | None = None,
                  seed: int = 0, samples: SurfaceSamples | None = None) -> SkillForecast:
    """Forecast one skill (see module docstring)."""
    tokens, flops, source = resolve_budget(sf, params, tokens, flops, tokens_per_param)
    extrapolation = flops / sf.max_flops if math.isfinite(sf.max_flops) else None
    base = dict(skill=sf.skill, family=sf.family, recipe=sf.recipe, params=params, tokens=tokens, flops=flops,
                tokens_source=source, extrapolation=extrapolation, level=level)
    if not sf.predictable:
        return SkillForecast(status=Status.NOT_PREDICTABLE, accuracy=None, grok=None, p_grok=None, threshold=None,
                             reason=sf.reason, **base)
    distance = float(extrapolation_distance(params, flops, max(sf.sizes), sf.max_flops))
    if distance > MAX_EXTRAPOLATION:
        return SkillForecast(status=Status.OUT_OF_RANGE, accuracy=None, grok=None, p_grok=None, threshold=None,
                             law=sf.law, reason=f"the target lies {distance:.1f} e-folds beyond the largest pilot "
                             f"(×{math.exp(distance):.3g} in parameters or compute); beyond {MAX_EXTRAPOLATION:g} "
                             "e-folds no law fitted to these pilots says anything", **base)
    samples = samples or SurfaceSamples.of(sf, seed=seed)
    rng = np.random.default_rng(seed + 1)
    model_acc = samples.accuracy(params, tokens)[:, 0]
    accuracy = Interval.of(samples.observed(model_acc[:, None], rng, params, tokens)[:, 0], level)
    thresholds = samples.threshold(threshold)
    p_grok = float(np.mean(model_acc >= thresholds))
    earliest = min(float(min(p.tokens)) for p in sf.pilots)
    low_search = min(earliest, tokens) / 1e4
    grok_tokens = samples.grok_tokens(params, thresholds, low=low_search, high=tokens * HORIZON)
    when = Interval.of(grok_tokens, level)
    grok = None
    notes = list(sf.notes)
    if math.isfinite(when.median):
        resolved = lambda v: v if v >= earliest else None  # noqa: E731
        grok = GrokPoint(tokens=resolved(when.median), low=resolved(when.low), high=when.high,
                         flops_per_token=sf.flops_per_param_token * params, resolution=earliest,
                         horizon_tokens=tokens * HORIZON)
        if grok.tokens is None:
            notes.append(Note(NoteCode.EARLY_GROK, f"{sf.skill}: forecast to cross before {format_count(earliest)} "
                              "tokens, the earliest any pilot was evaluated at; the pilots cannot tell how early"))
    threshold_median = float(np.median(thresholds))
    largest = max(sf.pilots, key=lambda p: (p.params, max(p.tokens)))
    pilot_end = float(np.median(samples.accuracy(largest.params, max(largest.tokens))))
    if pilot_end >= threshold_median:  # the fit says the largest pilot had crossed by its end
        status = Status.GROKKED_IN_PILOTS
    elif grok is not None and (grok.tokens is None or grok.tokens <= tokens):
        status = Status.IN_TRANSITION
    else:
        status = Status.EMERGES_LATER
    if extrapolation is not None and extrapolation > FAR_EXTRAPOLATION:
        notes.append(Note(NoteCode.FAR, f"the target's compute is {extrapolation:.3g}× the largest pilot's: a long "
                          "extrapolation, read the interval, not the median"))
    if params < min(sf.sizes):
        notes.append(Note(NoteCode.SMALLER, "the target is smaller than every pilot"))
    return SkillForecast(status=status, accuracy=accuracy, grok=grok, p_grok=p_grok, threshold=threshold_median,
                         law=sf.law, notes=tuple(notes), **base)


def pilot_grok_point(sf: SkillFit) -> GrokPoint | None:
    """Forecast grok point of the largest pilot size over its own token range (None if the
    skill is not predictable or does not cross there)."""
    if not sf.predictable:
        return None
    largest = max(sf.pilots, key=lambda p: (p.params, max(p.tokens)))
    return predict_skill(sf, largest.params, tokens=max(largest.tokens)).grok
