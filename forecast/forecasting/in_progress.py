"""Forecast a run while it trains: the ladder's forecast is the prior, the run's checkpoints
the evidence.

Per skill, in logits ℓ of accuracy above the floor (`forecast.forecasting.schedule.Logit`):
- **Prior**: the ladder-only forecast for the run's size and planned tokens
  (`forecast.forecasting.predict.predict_skill`), read as ℓ_end ~ N(μ₀, τ²) from its samples;
  τ is the ladder's own scatter at that reach (bootstrap, law choice, extrapolation drift).
- **Evidence**: each checkpoint j at fraction f_j of the planned tokens estimates the run's end
  as y_j = ℓ(acc_j) − g(f_j), g the schedule gap the ladder's own runs show at equal fraction
  (`forecast.forecasting.schedule`: the pilots' gaps, and the fitted law's gap corrected by
  what it misses in the pilots, averaged, their disagreement counted as scatter). Its error is the checkpoint's evaluation noise (binomial
  from its item count, or its stderr, independent between checkpoints) plus the shape error of
  g (correlated between nearby fractions, ρ = exp(−|Δ ln f| / `SHAPE_CORRELATION`)).
- **Update**: the Gaussian posterior of ℓ_end given the prior and the y_j (generalised least
  squares). Two noisy checkpoints move it a little, fifty a lot; shape error that all
  checkpoints share is never averaged away. `run_weight` is the share of the posterior's
  precision that came from the run (0: the ladder alone; 1: the run alone).
The updated final accuracy adds the final evaluation's own noise; the grok point is where the
updated trajectory ℓ_end + g(f) crosses the ladder's threshold, per sample.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from forecast.errors import UsageError
from forecast.fitting.results import SkillFit
from forecast.forecasting.off_path import Z, OffPath, find_off_path
from forecast.forecasting.predict import Interval, SkillForecast, check_level, predict_skill
from forecast.forecasting.samples import SurfaceSamples
from forecast.forecasting.schedule import CLIP, Linear, Logit, ScheduleShape, blend, schedule_shape
from forecast.runs.benchmarks import items_for
from forecast.runs.model import Run, binomial_stderr, is_number
from forecast.schema.in_progress import CheckpointJson, RunForecastJson
from forecast.schema.outputs import finite

SHAPE_CORRELATION = 0.5
"""E-folds of training fraction over which two checkpoints' shape errors stay correlated."""
MIN_PRIOR_SD = 0.05
"""Smallest prior scatter of the ladder's forecast (logits)."""
SKIP_FRACTION = 0.01
"""Checkpoints before this fraction of the planned tokens are warm-up: not evidence."""
SAMPLES = 4000


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of the run beside the ladder's 99% band at the same fraction."""

    step: int
    tokens: float  # training tokens seen
    fraction: float  # of the planned tokens
    accuracy: float
    ladder: Interval  # the ladder's band (median, 99% interval) for this size at this fraction
    z: float  # deviation from the ladder, in band standard deviations
    innovation: float = 0.0  # surprise given the ladder and the checkpoints before (standard deviations)

    def to_json(self) -> CheckpointJson:
        return {"step": self.step, "tokens": finite(self.tokens), "fraction": finite(self.fraction),
                "accuracy": finite(self.accuracy), "ladder": self.ladder.to_json(), "z": finite(self.z),
                "innovation": finite(self.innovation)}


@dataclass(frozen=True, eq=False)
class Curves:
    """Bands along the planned run for plots (`level` intervals, accuracy as fractions):
    the ladder's prior and the run-updated forecast at `tokens` (training tokens)."""

    tokens: np.ndarray
    ladder: np.ndarray  # (3, M): low, median, high
    updated: np.ndarray  # (3, M)


@dataclass(frozen=True)
class RunForecast:
    """One skill of a run in progress: the ladder-only forecast and the run-updated one."""

    skill: str
    run: str
    params: float  # the run's parameters
    planned_tokens: float
    tokens_seen: float | None  # tokens at the latest checkpoint used as evidence
    checkpoints: tuple[Checkpoint, ...]
    ladder: SkillForecast  # the ladder-only forecast for this size and planned tokens
    accuracy: Interval | None  # final accuracy, updated by the run
    grok: Interval | None  # tokens to the threshold along the run (inf: not within the plan)
    grok_observed: float | None  # the run has crossed already, at these tokens
    p_grok: float | None
    threshold: float | None
    offset: float | None  # the run's end minus the ladder's, posterior mean (logits)
    offset_sd: float | None
    run_weight: float  # share of the posterior precision from the run's checkpoints
    run_alone: float | None  # final accuracy from the run's checkpoints alone (read through the schedule shape)
    schedule: str  # "ladder-checkpoints" | "final-only"
    off_path: OffPath | None
    level: float
    curves: Curves | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fraction_seen(self) -> float | None:
        return None if self.tokens_seen is None else self.tokens_seen / self.planned_tokens

    @property
    def shift(self) -> float | None:
        """Updated minus ladder-only median final accuracy (fraction)."""
        if self.accuracy is None or self.ladder.accuracy is None:
            return None
        return self.accuracy.median - self.ladder.accuracy.median

    def to_json(self) -> RunForecastJson:
        return {
            "skill": self.skill, "run": self.run, "params": self.params, "planned_tokens": self.planned_tokens,
            "tokens_seen": finite(self.tokens_seen), "fraction_seen": finite(self.fraction_seen),
            "checkpoints": len(self.checkpoints),
            "accuracy": None if self.accuracy is None else self.accuracy.to_json(),
            "grok": None if self.grok is None else self.grok.to_json(), "grok_observed": finite(self.grok_observed),
            "p_grok": finite(self.p_grok), "threshold": finite(self.threshold), "shift": finite(self.shift),
            "run_weight": float(self.run_weight), "run_alone": finite(self.run_alone),
            "offset": finite(self.offset), "offset_sd": finite(self.offset_sd),
            "schedule": self.schedule, "off_path": None if self.off_path is None else self.off_path.to_json(),
            "ladder": self.ladder.to_json(), "checkpoints_detail": [c.to_json() for c in self.checkpoints],
            "level": self.level, "notes": list(self.notes),
        }


def planned_tokens_of(run: Run, planned_tokens: float | None) -> float:
    """The run's planned training tokens: given, else its `extra.planned_tokens`, else (for a
    run that does not say it is unfinished) its last checkpoint's tokens."""
    if planned_tokens is not None:
        if not (math.isfinite(planned_tokens) and planned_tokens > 0):
            raise UsageError(f"planned tokens must be a positive number of tokens; got {planned_tokens}",
                             parameter="planned_tokens")
        return float(planned_tokens)
    recorded = run.extra.get("planned_tokens")
    if is_number(recorded) and recorded > 0:
        return float(recorded)
    if run.complete is False:
        raise UsageError(f"{run.name}: training is in progress and its run.json records no extra.planned_tokens; "
                         "give the planned training tokens", parameter="planned_tokens")
    final = run.final_tokens
    if not (math.isfinite(final) and final > 0):
        raise UsageError(f"{run.name}: its checkpoints give no training tokens", parameter="run")
    return float(final)


def update_with_run(fits, run: Run, planned_tokens: float | None = None, *, skills: Sequence[str] | None = None,
                    family: str | None = None, recipe: str | None = None, level: float = 0.8,
                    threshold: float | None = None, seed: int = 0) -> list[RunForecast]:
    """Per skill, the ladder's forecast for `run` (its size, `planned_tokens` tokens) updated by
    the run's checkpoints so far. `fits` is a `forecast.Fits` (the ladder's group is the run's
    own family/recipe when fitted, else `family`/`recipe`) or a sequence of `SkillFit`."""
    check_level(level)
    planned = planned_tokens_of(run, planned_tokens)
    if hasattr(fits, "select"):
        group = (run.family, run.recipe.label)
        chosen = group if group in fits.groups() and family is None and recipe is None else (family, recipe)
        skill_fits = fits.select(*chosen, skills or None)
    else:
        skill_fits = [sf for sf in fits if not skills or sf.skill.lower() in {s.lower() for s in skills}]
    if not skill_fits:
        raise UsageError("no fitted skill to forecast the run with", parameter="skills")
    out = [update_skill(sf, run, planned, level=level, threshold=threshold, seed=seed) for sf in skill_fits]
    other = {(sf.family, sf.recipe) for sf in skill_fits} - {(run.family, run.recipe.label)}
    if other:  # never pooled silently: say which ladder the run is read against
        said = ", ".join(f"{fam}/{rec}" for fam, rec in sorted(other))
        note = f"the run ({run.family}/{run.recipe.label}) is read against the ladder {said}"
        out = [dataclasses.replace(f, notes=(*f.notes, note)) for f in out]
    return out


def update_skill(sf: SkillFit, run: Run, planned: float, *, level: float = 0.8, threshold: float | None = None,
                 seed: int = 0) -> RunForecast:
    """One skill of `update_with_run` (see the module docstring)."""
    params = run.params
    samples = SurfaceSamples.of(sf, seed=seed) if sf.predictable else None
    ladder = predict_skill(sf, params, tokens=planned, level=level, threshold=threshold, seed=seed, samples=samples)
    base = dict(skill=sf.skill, run=run.name, params=params, planned_tokens=planned, ladder=ladder, level=level)
    if ladder.accuracy is None or samples is None:
        return RunForecast(tokens_seen=None, checkpoints=(), accuracy=None, grok=None, grok_observed=None,
                           p_grok=None, threshold=None, offset=None, offset_sd=None, run_weight=0.0, run_alone=None,
                           schedule="final-only", off_path=None,
                           notes=(f"the ladder gives no forecast for this size ({ladder.reason}); nothing to update",),
                           **base)
    rng = np.random.default_rng(seed + 7)
    prior_acc = samples.observed(samples.model_accuracy(params, planned), rng, params, planned)[:, 0]
    series = run.series.get(sf.skill)
    logit = _transform(sf, prior_acc, series)
    prior = logit(prior_acc)
    mu0 = float(np.median(prior))
    # the prior is on the model's end: the ladder's interval holds one evaluation's noise, added back once below
    spread = float(np.quantile(prior, 0.9) - np.quantile(prior, 0.1)) / (2 * 1.2816)
    noise = float(logit.stderr(np.median(prior_acc), _ladder_noise(sf, float(np.median(prior_acc)))))
    tau = math.sqrt(max(spread ** 2 - noise ** 2, (MIN_PRIOR_SD * logit.unit) ** 2))
    shape = schedule_shape(sf.pilots, params, planned, logit)
    if shape.known and sf.candidates:  # and read along the fitted law; the two readings' spread is kept
        shape = blend(shape, schedule_shape(sf.pilots, params, planned, logit, _law_curve(sf)))
    notes = [] if shape.known else [
        "the ladder holds final checkpoints only: it gives no shape of a run's curve under its schedule, so each "
        f"checkpoint is read as its run's end with ±{shape.spread(0.25).item() / logit.unit:.2f} logits at 25% of "
        "training "
        "(the interval is widened accordingly)"]
    evidence = _evidence(series, planned, sf, scatter=_scatter(sf) if shape.known else None)
    thr = ladder.threshold if threshold is None else threshold
    if evidence is None:
        notes.append(f"{run.name} has no checkpoint of {sf.skill} past warm-up within the planned tokens: "
                     "the ladder's forecast stands")
        steps = tokens = fractions = acc = se = np.array([])
    else:
        steps, tokens, fractions, acc, se = evidence
    y = logit(acc) - shape.gap(fractions)
    meas = logit.stderr(acc, se)
    s = shape.spread(fractions)
    lf = np.log(fractions)
    cov = np.diag(meas ** 2) + np.outer(s, s) * np.exp(-np.abs(lf[:, None] - lf[None, :]) / SHAPE_CORRELATION)
    data_precision, data_sum = 0.0, 0.0
    if len(y):
        solved = np.linalg.solve(cov, np.column_stack([np.ones(len(y)), y]))
        data_precision, data_sum = float(solved[:, 0].sum()), float(solved[:, 1].sum())
    # the run against the ladder's band at each checkpoint's fraction
    band_sd = np.sqrt(tau ** 2 + s ** 2 + meas ** 2)
    expected = mu0 + shape.gap(fractions)
    z = (logit(acc) - expected) / band_sd if len(y) else np.array([])
    innovations = _innovations(y, mu0, tau, cov)
    checkpoints = tuple(Checkpoint(int(st), float(t), float(f), float(a), Interval(
        float(logit.inverse(e)), float(logit.inverse(e - Z * b)), float(logit.inverse(e + Z * b))), float(zz),
        float(ee)) for st, t, f, a, e, b, zz, ee in zip(steps, tokens, fractions, acc, expected, band_sd, z,
                                                        innovations))
    alarm = find_off_path(z, tokens, steps, fractions, acc, logit.inverse(expected), innovations) if len(y) else None
    prior_sd = tau
    if alarm is not None and data_precision > 0:  # the ladder's band did not hold: widen the prior to the run's distance
        prior_sd = max(tau, abs(data_sum / data_precision - mu0))
        notes.append(f"off the ladder's path: the ladder's prior is widened {prior_sd / tau:.1f}-fold (to the run's "
                     "distance from it), so the run's checkpoints decide")
    precision = 1 / prior_sd ** 2 + data_precision
    mu1 = (mu0 / prior_sd ** 2 + data_sum) / precision
    sd1 = 1 / math.sqrt(precision)
    draws = rng.normal(mu1, sd1, SAMPLES)
    final_noise = _final_noise(sf, se)
    observed_final = np.clip(logit.inverse(draws) + rng.normal(0, 1, SAMPLES) * final_noise, 0, 1)
    accuracy = Interval.of(observed_final, level)
    grok, observed_at, p_grok = _grok(draws, shape, logit, thr, planned, tokens, acc, level)
    if thr is not None and not shape.known and observed_at is None:
        grok = None
        notes.append("when it crosses cannot be told without the ladder's intermediate checkpoints")
    curves = _curves(shape, mu0, tau, mu1, sd1, planned, tokens, level, logit)
    return RunForecast(tokens_seen=float(tokens[-1]) if len(tokens) else None, checkpoints=checkpoints,
                       accuracy=accuracy, grok=grok, grok_observed=observed_at, p_grok=p_grok, threshold=thr,
                       offset=mu1 - mu0, offset_sd=sd1, run_weight=data_precision / precision,
                       run_alone=float(logit.inverse(data_sum / data_precision)) if data_precision > 0 else None,
                       schedule="ladder-checkpoints" if shape.known else "final-only", off_path=alarm,
                       curves=curves, notes=tuple(notes), **base)


def _innovations(y: np.ndarray, mu0: float, tau: float, cov: np.ndarray) -> np.ndarray:
    """Each checkpoint's surprise given the ladder's prior and the checkpoints before it, in
    standard deviations: the residuals y − μ₀ whitened by the Cholesky factor of their joint
    covariance τ²·11ᵀ + cov (independent standard normals while the run follows the model)."""
    if not len(y):
        return np.array([])
    chol = np.linalg.cholesky(tau ** 2 + cov)
    return np.linalg.solve(chol, y - mu0)


def _transform(sf: SkillFit, prior_acc: np.ndarray, series) -> Logit | Linear:
    """Where the update is made: logits of accuracy above the floor for a skill in or before a
    transition; accuracy itself for a level (no transition to straighten) or a skill that sits
    at or below its floor in the ladder's forecast or the run (where the logit clips)."""
    if sf.flat or sf.weight_of(("level",)) >= 0.5:
        return Linear(sf.floor, sf.top)
    low = float(np.quantile(prior_acc, 0.1))
    if series is not None and series.accuracy is not None and np.isfinite(series.accuracy).any():
        low = min(low, float(np.nanmedian(series.accuracy[-3:])))
    room = sf.top - sf.floor
    if low < sf.floor + CLIP * room * 2:
        return Linear(sf.floor, sf.top)
    return Logit(sf.floor, sf.top)


def _law_curve(sf: SkillFit):
    """The chosen law's point estimate as a function (params, tokens array) -> accuracy: the
    curve the schedule shape is read against (no extrapolation drift, which would bend it)."""
    best = max(sf.candidates, key=lambda c: c.weight).fit
    return lambda n, t: best.accuracy(best.theta[None, :], np.full((1, len(t)), float(n)),
                                      np.asarray(t, float)[None, :])[0]


def _scatter(sf: SkillFit) -> float | None:
    """The ladder's own checkpoint-to-checkpoint scatter of this skill (fraction; from second
    differences within its runs, `Observations.checkpoint_noise`), or None."""
    return float(sf.noise) if sf.noise is not None and math.isfinite(sf.noise) and sf.noise > 0 else None


def _evidence(series, planned: float, sf: SkillFit, scatter: float | None = None):
    """(steps, tokens, fractions, accuracy, stderr) of the run's checkpoints past warm-up and
    within the plan, ascending; None when there are none. With `scatter` (the ladder's
    measured checkpoint-to-checkpoint noise, when its runs have intermediate checkpoints) a
    checkpoint's error is at least that: a benchmark whose scores swing between checkpoints
    by more than its item count implies (OLMo's BoolQ: 3.4 points against a binomial 0.9) is
    read as the noisy evidence it is."""
    if series is None or series.accuracy is None:
        return None
    keep = (np.isfinite(series.tokens) & (series.tokens >= SKIP_FRACTION * planned) & (series.tokens <= planned)
            & np.isfinite(series.accuracy))
    if not keep.any():
        return None
    se = series.accuracy_stderr()
    items = items_for(sf.skill)
    if items is not None:  # neither stderr nor n logged: the benchmark's own size
        se = np.where(np.isfinite(se), se, binomial_stderr(series.accuracy, items))
    fallback = sf.noise if sf.noise is not None and math.isfinite(sf.noise) else 0.02
    se = np.where(np.isfinite(se), np.maximum(se, 0.0), fallback)
    if scatter is not None:
        se = np.maximum(se, scatter)
    order = np.argsort(series.tokens[keep], kind="stable")
    pick = lambda a: np.asarray(a, float)[keep][order]  # noqa: E731
    return (series.step[keep][order], pick(series.tokens), pick(series.tokens) / planned, pick(series.accuracy),
            pick(se))


def _ladder_noise(sf: SkillFit, accuracy: float) -> float:
    """The measurement noise `SurfaceSamples.observed` puts in the ladder's interval (fraction)."""
    if sf.noise is not None and math.isfinite(sf.noise):
        return float(sf.noise)
    return math.sqrt(accuracy * (1 - accuracy) / sf.n_eval) if sf.n_eval else 0.0


def _final_noise(sf: SkillFit, se: np.ndarray) -> float:
    """Evaluation noise of the run's final checkpoint (fraction): its latest stderr or the
    ladder's checkpoint noise, whichever is larger (the same for a final-only ladder, whose
    checkpoints are not read with that floor)."""
    scatter = _scatter(sf) or 0.0
    if len(se) and math.isfinite(se[-1]):
        return max(float(se[-1]), scatter)
    return scatter


def _grok(draws: np.ndarray, shape: ScheduleShape, logit: Logit | Linear, threshold: float | None, planned: float,
          tokens: np.ndarray, acc: np.ndarray, level: float) -> tuple[Interval | None, float | None, float | None]:
    """(tokens to the threshold along the updated trajectory, the checkpoint's tokens where the
    run has already crossed, probability of crossing by the planned end)."""
    if threshold is None or not math.isfinite(threshold):
        return None, None, None
    crossed = np.flatnonzero(acc >= threshold)
    if len(crossed) and acc[-1] >= threshold:
        return None, float(tokens[crossed[0]]), 1.0
    p_grok = float(np.mean(logit.inverse(draws) >= threshold))
    fractions = np.geomspace(min(shape.earliest, 0.01), 1.0, 120)
    start = tokens[-1] / planned if len(tokens) else fractions[0]
    fractions = fractions[fractions >= start]
    if not len(fractions):
        return None, None, p_grok
    curves = logit.inverse(draws[:, None] + shape.gap(fractions)[None, :]) >= threshold
    first = np.where(curves.any(axis=1), fractions[np.argmax(curves, axis=1)] * planned, np.inf)
    return Interval.of(first, level), None, p_grok


def _curves(shape: ScheduleShape, mu0: float, tau: float, mu1: float, sd1: float, planned: float,
            tokens: np.ndarray, level: float, logit: Logit | Linear) -> Curves:
    start = min(shape.earliest, tokens[0] / planned if len(tokens) else 1.0, 0.05)
    fractions = np.geomspace(max(start, SKIP_FRACTION), 1.0, 80)
    gap, spread = shape.gap(fractions), shape.spread(fractions)
    zq = float(np.sqrt(2) * _erfinv(level))
    band = lambda mu, sd: np.vstack([logit.inverse(mu + gap + k * zq * np.sqrt(sd ** 2 + spread ** 2))  # noqa: E731
                                     for k in (-1, 0, 1)])
    return Curves(tokens=fractions * planned, ladder=band(mu0, tau), updated=band(mu1, sd1))


def _erfinv(level: float) -> float:
    """erf⁻¹(level) by bisection (the normal quantile of a central interval, without scipy here)."""
    lo, hi = 0.0, 6.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erf(mid) < level else (lo, mid)
    return (lo + hi) / 2
