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
  (`forecast.fitting.status.Status`; README, "Statuses").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from forecast.forecasting.budget import training_budget
from forecast.errors import UsageError
from forecast.fitting.observations import UNKNOWN_TOKENS
from forecast.quantities import format_count
from forecast.fitting.results import SkillFit
from forecast.forecasting.samples import SurfaceSamples
from forecast.fitting.reach import MAX_EXTRAPOLATION, extrapolation_distance
from forecast.schema.outputs import ForecastJson, GrokJson, IntervalJson, finite
from forecast.fitting.status import Note, NoteCode, Status

HORIZON = 100.0
"""A grok point further than this many times the planned tokens is reported as never."""
MAX_BELOW = 100.0
"""A target trained on more than this many times fewer tokens than the earliest pilot
evaluation is `out-of-range`: early training is not what the pilots measured."""
UNKNOWN_WHEN = ("the runs give no training tokens: the accuracy of a model trained like them is forecast, "
                "but when in training it crosses cannot be told")
"""The grok note of a family whose runs give no tokens (`GrokPoint.note`)."""
FAR_EXTRAPOLATION = 100.0
"""Note when the target's compute exceeds the largest pilot's by more than this factor."""


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
    note: str | None = None  # what cannot be told (no transition in sight, or not started)

    @property
    def flops(self) -> float | None:
        return None if self.tokens is None else self.tokens * self.flops_per_token

    @property
    def before(self) -> float | None:
        """The bound when the median crossing is earlier than the pilots resolve."""
        return self.resolution if self.tokens is None and self.note is None else None

    def to_json(self) -> GrokJson:
        k = self.flops_per_token
        scaled = lambda v: None if v is None else finite(v * k)  # noqa: E731
        return {"tokens": finite(self.tokens), "flops": finite(self.flops), "low": finite(self.low),
                "high": finite(self.high), "flops_low": scaled(self.low), "flops_high": scaled(self.high),
                "before_tokens": finite(self.before), "horizon_tokens": finite(self.horizon_tokens), "note": self.note}


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
    path: str | None = None  # how the number was reached: "direct" or "via task loss" (`Spec.path`)
    confidence: str | None = None  # "high" | "medium" | "low"
    confidence_reason: str | None = None
    borrowed_from: tuple[str, ...] = ()
    borrowed_skills: tuple[str, ...] = ()  # the family's other benchmarks a latent law read it from
    borrowed: str | None = None  # "latent" | "families" (how other families were borrowed from) | None
    reason: str | None = None
    notes: tuple[Note, ...] = field(default_factory=tuple)

    @property
    def tokens_unknown(self) -> bool:
        """The pilots gave no training tokens: `tokens` and `flops` are placeholders."""
        return self.tokens_source == "unknown-like-pilots"

    def to_json(self) -> ForecastJson:
        """The documented `--json` shape (`schema.ForecastJson`)."""
        return {
            "skill": self.skill, "family": self.family, "recipe": self.recipe,
            "params": self.params, "tokens": None if self.tokens_unknown else self.tokens,
            "flops": None if self.tokens_unknown else self.flops, "tokens_source": self.tokens_source,
            "status": str(self.status),
            "accuracy": None if self.accuracy is None else self.accuracy.to_json(),
            "grok": None if self.grok is None else self.grok.to_json(),
            "p_grok": finite(self.p_grok), "threshold": finite(self.threshold),
            "confidence": self.confidence, "confidence_reason": self.confidence_reason,
            "extrapolation": finite(self.extrapolation), "level": self.level, "law": self.law, "path": self.path,
            "borrowed_from": list(self.borrowed_from), "borrowed": self.borrowed,
            "borrowed_skills": list(self.borrowed_skills), "reason": self.reason,
            "notes": [n.to_json() for n in self.notes],
        }


def check_level(level: float, flag: str = "`level`") -> float:
    """An interval's central probability must lie in (0, 1)."""
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise UsageError(f"{flag} must be a probability in (0, 1), e.g. 0.8; got {level}")
    return float(level)


def check_threshold(threshold: float | None, flag: str = "`threshold`") -> float | None:
    if threshold is not None and not 0 < threshold < 1:
        raise UsageError(f"{flag} must be an accuracy in (0, 1), e.g. 0.5; got {threshold}")
    return threshold


def check_tokens_per_param(ratio: float | None, flag: str = "`tokens_per_param`") -> float | None:
    if ratio is not None and not (math.isfinite(ratio) and ratio > 0):
        raise UsageError(f"{flag} must be a positive number of tokens per parameter, e.g. 20; got {ratio}")
    return ratio


def check_target(params: float, tokens: float | None = None) -> None:
    """A target below one parameter or one token is misuse, not a forecast. (One far above
    the pilots, even past any physical size, is `out-of-range` with its reason.)"""
    for value, name in ((params, "params"), (tokens, "tokens")):
        if value is not None and not value >= 1:
            raise UsageError(f"`{name}`: {format_count(value)} {'parameters' if name == 'params' else name} is below "
                             "one; a target must be a physical model", parameter=name)


def resolve_budget(sf: SkillFit, params: float, tokens: float | None, flops: float | None,
                   tokens_per_param: float | None) -> tuple[float, float, str]:
    """(tokens, FLOPs, how the tokens were chosen) of the planned run (`forecast.forecasting.budget`);
    for runs that gave no tokens, a target trained like them."""
    kappa = sf.flops_per_param_token
    if not sf.tokens_known:
        if tokens is not None or flops is not None:
            raise UsageError(f"{sf.family}: its runs give no training tokens, so a forecast is for a model trained "
                             "like them; drop `tokens`/`flops`", parameter="tokens")
        return UNKNOWN_TOKENS, kappa * params * UNKNOWN_TOKENS, "unknown-like-pilots"
    return training_budget(params, kappa, tokens, flops, tokens_per_param,
                           [max(p.tokens) / p.params for p in sf.pilots if p.tokens])


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
    check_target(params, tokens)
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
    earliest = min(float(min(p.tokens)) for p in sf.pilots)
    if sf.tokens_known and tokens < earliest / MAX_BELOW:
        return SkillForecast(status=Status.OUT_OF_RANGE, accuracy=None, grok=None, p_grok=None, threshold=None,
                             law=sf.law, reason=f"the target trains on {format_count(tokens)} tokens, more than "
                             f"{MAX_BELOW:g}× fewer than the earliest pilot evaluation ({format_count(earliest)}): "
                             "the pilots say nothing about so early in training", **base)
    if distance > MAX_EXTRAPOLATION:
        return SkillForecast(status=Status.OUT_OF_RANGE, accuracy=None, grok=None, p_grok=None, threshold=None,
                             law=sf.law, reason=f"the target lies {distance:.1f} e-folds beyond the largest pilot "
                             f"(×{math.exp(distance):.3g} in parameters or compute); beyond {MAX_EXTRAPOLATION:.1f} "
                             f"e-folds (×{math.exp(MAX_EXTRAPOLATION):.0e}) no law fitted to these pilots says anything", **base)
    samples = samples or SurfaceSamples.of(sf, seed=seed, distance=distance)  # weighed at the target's reach
    rng = np.random.default_rng(seed + 1)
    model_acc = samples.accuracy(params, tokens)[:, 0]
    still = samples.model_accuracy(params, tokens)
    accuracy = Interval.of(samples.observed(still, rng, params, tokens)[:, 0], level)
    thresholds = samples.threshold(threshold)
    p_grok = float(np.mean(model_acc >= thresholds))
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
            notes.append(Note(NoteCode.EARLY_GROK, f"forecast to cross before {format_count(earliest)} "
                              "tokens, the earliest any pilot was evaluated at; the pilots cannot tell how early"))
    crossing = thresholds[np.isfinite(thresholds)]  # the level's samples have no threshold to cross
    threshold_median = float(np.median(crossing)) if crossing.size else None
    largest = max(sf.pilots, key=lambda p: (p.params, max(p.tokens)))
    pilot_end = float(np.median(samples.accuracy(largest.params, max(largest.tokens))))
    crossed = threshold_median is not None and pilot_end >= threshold_median
    status = _status(sf, threshold, crossed, grok, tokens)
    if status in (Status.FLAT, Status.SMOOTH):
        grok = GrokPoint(tokens=None, low=None, high=math.inf, flops_per_token=sf.flops_per_param_token * params,
                         resolution=earliest, horizon_tokens=tokens * HORIZON, note=_no_grok_note(sf, status))
        p_grok = None if threshold is None else p_grok
    elif not sf.tokens_known:  # tokens are a placeholder: a crossing "in tokens" would be a number of nothing
        grok = GrokPoint(tokens=None, low=None, high=math.inf, flops_per_token=sf.flops_per_param_token * params,
                         resolution=earliest, horizon_tokens=math.nan, note=UNKNOWN_WHEN)
        notes = [n for n in notes if n.code != NoteCode.EARLY_GROK]
    if extrapolation is not None and extrapolation > FAR_EXTRAPOLATION:
        notes.append(Note(NoteCode.FAR, f"the target's compute is {extrapolation:.3g}× the largest pilot's: a long "
                          "extrapolation, read the interval, not the median"))
    if params < min(sf.sizes):
        notes.append(Note(NoteCode.SMALLER, "the target is smaller than every pilot"))
    grade, why = confidence(sf, distance, accuracy, status)
    edges = degenerate_bounds(sf)
    if grade == "high" and grok is not None and grok.note is None and not math.isfinite(grok.high):
        grade, why = "medium", f"the grok interval runs past the search horizon ({HORIZON:g}× the budget); " + why
    if grade == "high" and edges:
        grade, why = "medium", f"{sf.law}'s {', '.join(edges)} sit(s) at a bound of the fit's range; " + why
    if grade == "high" and sf.borrowed_from and not sf.tokens_known:
        grade, why = "medium", ("the family's runs give no training tokens and its law borrows other families' "
                                "slopes (its own offset absorbs the missing tokens); " + why)
    return SkillForecast(status=status, accuracy=accuracy, grok=grok, p_grok=p_grok, threshold=threshold_median,
                         law=samples.law, path=samples.chosen.path, confidence=grade, confidence_reason=why,
                         borrowed_from=sf.borrowed_from, borrowed_skills=sf.borrowed_skills, borrowed=borrowed_via(sf),
                         notes=tuple(notes), **base)


def borrowed_via(sf: SkillFit) -> str | None:
    """How a forecast borrowed from other families: "latent", "families" or None."""
    vias = {c.fit.spec.via for c in sf.candidates if c.fit.spec.via in ("latent", "families")}
    return None if not sf.borrowed_from or not vias else ("latent" if "latent" in vias else "families")


def _status(sf: SkillFit, threshold: float | None, crossed_in_pilots: bool, grok: GrokPoint | None,
            tokens: float) -> Status:
    """The forecast's status (see `Status`): flat when the pilots show no trend with size
    (or the no-trend level carries most of the weight); smooth when their rise never
    accelerates in log compute (no transition, so no grok moment, unless the user asked
    about a `threshold`); grokked when the largest pilot had crossed; else where the grok
    point falls."""
    if sf.flat or sf.weight_of(("level",)) >= 0.5:
        return Status.FLAT
    if threshold is None and sf.accelerating is False:
        return Status.SMOOTH
    if crossed_in_pilots:  # the fit says the largest pilot had crossed by its end
        return Status.GROKKED_IN_PILOTS
    if grok is not None and (grok.tokens is None or grok.tokens <= tokens):
        return Status.IN_TRANSITION
    return Status.EMERGES_LATER


def at_chance(sf: SkillFit) -> bool:
    """Whether the largest pilots end at chance: their final (smoothed) accuracy within the
    evaluation noise (3σ, at least 2 points) of chance, or below it."""
    level = float(np.median([p.smoothed[-1] for p in sf.pilots if p.params == max(sf.sizes)]))
    return abs(level - sf.chance) <= max(3 * sf.noise, 0.02) or level < sf.chance


def _no_grok_note(sf: SkillFit, status: Status) -> str:
    if status == Status.SMOOTH:
        return "rises smoothly with scale, with no plateau in sight: there is no grok moment to report"
    if at_chance(sf):
        return ("flat at chance in the pilots: the transition has not started, and when it will cannot be told "
                "from these runs")
    return "no trend with scale in the pilots: when (or whether) it rises further cannot be told from these runs"


HIGH_WIDTH, MEDIUM_WIDTH = 0.04, 0.10
"""Half-width of the 80% accuracy interval (the calibrated error the back-tests expect at the
target) up to which a forecast is high, or medium, confidence."""
HIGH_REACH, MEDIUM_REACH = 2.0, 4.0
"""How far beyond the farthest hold-out (as a multiple of its distance) a forecast may reach
and stay high, or medium, confidence."""


NATURAL_BOUNDS = frozenset({"amp", "level"})
"""Parameters whose bounds are physical (a plateau at the top, an accuracy of 0 or 1): a fit
that stops there has found the edge, not run into the box."""


def degenerate_bounds(sf: SkillFit) -> tuple[str, ...]:
    """The chosen law's parameters that sit at a bound of their box (other than the natural
    ones): its extrapolation then rests on a limit, not an estimate."""
    if not sf.candidates:
        return ()
    return tuple(n for n in sf.candidates[0].fit.at_bound if n.rsplit(".", 1)[-1] not in NATURAL_BOUNDS)


def confidence(sf: SkillFit, distance: float, accuracy: Interval, status: Status) -> tuple[str, str]:
    """A grade (high / medium / low) and its reason, from how well the laws back-tested at a
    similar extrapolation distance: the hold-outs behind the calibration, how far the target
    lies beyond the farthest of them, and the error the calibrated interval allows there."""
    cal = sf.calibration
    if cal is None or cal.holdouts == 0:
        return "low", "no law could be checked on a held-out size (too few sizes); the interval rests on priors"
    half = (accuracy.high - accuracy.low) / 2
    reach = distance / cal.max_distance if cal.max_distance > 0 else math.inf
    facts = (f"{cal.holdouts} hold-out(s) up to {cal.max_distance:.2f} e-folds out; the target is {distance:.2f} "
             f"e-folds out, where the back-tests allow ±{100 * half:.1f} points")
    if status == Status.FLAT and at_chance(sf):
        return "low", "flat at chance in the pilots: an emergence beyond them cannot be ruled out; " + facts
    if cal.holdouts >= 2 and reach <= HIGH_REACH and half <= HIGH_WIDTH:
        return "high", facts
    if reach <= MEDIUM_REACH and half <= MEDIUM_WIDTH:
        return "medium", facts
    return "low", facts


def pilot_grok_point(sf: SkillFit) -> GrokPoint | None:
    """Forecast grok point of the largest pilot size over its own token range (None if the
    skill is not predictable or does not cross there)."""
    if not sf.predictable:
        return None
    largest = max(sf.pilots, key=lambda p: (p.params, max(p.tokens)))
    return predict_skill(sf, largest.params, tokens=max(largest.tokens) if sf.tokens_known else None).grok
