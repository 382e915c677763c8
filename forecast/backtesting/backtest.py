"""`backtest`: hold out the largest pilot(s), fit the rest, and score the forecasts.

This is how a user decides whether to trust a forecast. For each held-out run and skill it
predicts every post-warm-up checkpoint (the final one and the trajectory) and reports the
error, whether the interval covered the measured value, and the error of the grok point;
next to two baselines on the same points. In a budget ladder (sizes trained to several token
budgets) every run is one forecast target and only its final checkpoint is scored: its
intermediate checkpoints sit mid learning-rate schedule, which no law in (N, D) describes.
Baselines:
- `carry`: the largest fitted size's accuracy at the same tokens, carried over unchanged;
- `loglinear`: a straight line in log compute through the fitted points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
import numpy as np

from forecast.backtesting.results import Backtest, BacktestPoint, SkillBacktest
from forecast.errors import UsageError
from forecast.fitting.fit import FitOptions, group_runs
from forecast.fitting.latent import fit_latent, model_flops
from forecast.fits import fit
from forecast.fitting.observations import Observations, observations
from forecast.forecasting.predict import check_level, predict_skill
from forecast.options import parse_holdout
from forecast.fitting.results import SkillFit, match_skills, wants_all
from forecast.runs.crossing import CROSSED, first_crossing
from forecast.runs.model import Run
from forecast.forecasting.samples import SurfaceSamples
from forecast.fitting.reach import extrapolation_distance


def holdout_sizes(sizes: Sequence[float], rule: str) -> list[float]:
    """Which sizes (parameters) to hold out: `largest`, `largest:K` or `params>=X`
    (`forecast.options.parse_holdout`)."""
    sizes = sorted(set(sizes))
    parsed = parse_holdout(rule)
    if parsed.largest is not None:
        return sizes[-parsed.largest:]
    return [s for s in sizes if s >= parsed.min_params]


def backtest(
    runs: Sequence[Run],
    *,
    holdout: str = "largest",
    family: str | None = None,
    recipe: str | None = None,
    skills: Sequence[str] | None = None,
    options: FitOptions | None = None,
    level: float = 0.8,
    seed: int = 0,
) -> Backtest:
    """Per (family, recipe) group: hold out sizes by `holdout`, fit the rest, score."""
    options = options or FitOptions()
    check_level(level)
    groups = group_runs(runs, family, recipe)
    groups_all = group_runs(runs) if options.pool else groups
    results: list[SkillBacktest] = []
    held_out: dict[tuple[str, str], tuple[str, ...]] = {}
    for key in sorted(groups):
        members = groups[key]
        held_sizes = set(holdout_sizes([r.params for r in members], holdout))
        train = [r for r in members if r.params not in held_sizes]
        held = [r for r in members if r.params in held_sizes]
        if not train or not held:
            continue  # nothing to learn from, or nothing to check
        held_out[key] = tuple(r.name for r in held)
        names = sorted({s for r in held for s in r.skills} & {s for r in train for s in r.skills})
        if not wants_all(skills):
            names = match_skills(names, skills) if len(groups) == 1 else \
                [n for n in names if n.lower() in {s.lower() for s in skills}]
        if options.pool and names:  # the other families are data the user would have: fit beside them
            others = [r for k, members_k in groups_all.items() if k != key for r in members_k]
            fits = fit(train + others, skills=names, family=key[0], recipe=key[1], options=options)
        else:
            fits = fit(train, skills=names, options=options) if names else None
        for sf in fits.skills if fits else ():
            results.append(_score_skill(sf, train, held, options, level, seed))
    if not results:
        raise UsageError(f"`holdout={holdout!r}`: no group has runs left to fit and a held-out run to check",
                         parameter="holdout")
    return Backtest(holdout=holdout, level=level, skills=tuple(results), held_out=held_out)


def _score_skill(sf: SkillFit, train: Sequence[Run], held: Sequence[Run], options: FitOptions,
                 level: float, seed: int) -> SkillBacktest:
    kwargs = dict(skip_fraction=options.skip_fraction, min_tokens=options.min_tokens, max_per_run=options.max_per_run)
    fitted = observations(train, sf.skill, **kwargs)
    target = observations([r for r in held if sf.skill in r.skills], sf.skill, **kwargs)
    if fitted.budget_ladder:  # each run is one (params, tokens) target; mid-schedule checkpoints are not
        target = target.subset(target.final)
    carry, loglinear = _baselines(fitted, target)
    rng = np.random.default_rng(seed + 2)
    tail = (1 - level) / 2
    points: list[BacktestPoint] = []
    grok_errors: list[float] = []
    for r in np.unique(target.run):
        idx = np.flatnonzero(target.run == r)
        params = float(target.params[idx[0]])
        last = idx[np.argmax(target.tokens[idx])]
        distance = float(extrapolation_distance(params, target.flops[last], max(sf.sizes), sf.max_flops)) \
            if sf.pilots and math.isfinite(sf.max_flops) else None
        # the candidates weighed at this run's reach, as `predict` weighs them for it
        samples = SurfaceSamples.of(sf, seed=seed, distance=distance) if sf.predictable else None
        final = predict_skill(sf, params, tokens=float(target.tokens[last]) if sf.tokens_known else None,
                              level=level, seed=seed, samples=samples)
        pred = low = high = None
        if samples is not None and final.accuracy is not None:
            model = samples.model_accuracy(params, target.tokens[idx])
            observed = samples.observed(model, rng, params, target.tokens[idx])
            low, pred, high = np.quantile(observed, [tail, 0.5, 1 - tail], axis=0)
            grok_errors += _grok_error(samples, params, target.subset(target.run == r))
        for j, i in enumerate(idx):
            is_final = i == last
            p, lo, hi = (None, None, None) if pred is None else (float(pred[j]), float(low[j]), float(high[j]))
            if is_final and final.accuracy is not None:  # the final point is the forecast `predict` prints
                p, lo, hi = final.accuracy.median, final.accuracy.low, final.accuracy.high
            points.append(BacktestPoint(
                skill=sf.skill, run=target.run_names[r], params=params, tokens=float(target.tokens[i]),
                flops=float(target.flops[i]), final=bool(target.final[i]), actual=float(target.accuracy[i]),
                predicted=p, low=lo, high=hi, carry=_value(carry, i), loglinear=_value(loglinear, i),
                confidence=final.confidence if is_final else None, status=str(final.status) if is_final else None,
                distance=distance))
    return SkillBacktest(skill=sf.skill, family=sf.family, recipe=sf.recipe, status=str(sf.status), reason=sf.reason,
                         law=sf.law if sf.predictable else None, points=tuple(points),
                         grok_errors=tuple(grok_errors))


def _value(values: np.ndarray | None, i: int) -> float | None:
    return None if values is None or not math.isfinite(values[i]) else float(values[i])


def _baselines(fitted: Observations, target: Observations) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The two baselines at every target point (see module docstring); None when the fitted
    runs hold no point to carry over."""
    if len(fitted) == 0:
        return None, None
    pool = fitted.subset(fitted.final) if fitted.budget_ladder else fitted
    largest = pool.subset(pool.params == pool.params.max())
    order = np.argsort(largest.tokens, kind="stable")
    carry = np.interp(np.log(target.tokens), np.log(largest.tokens[order]), largest.accuracy[order])
    if len(np.unique(pool.flops)) < 2:  # one point: a line through it is the carried-over value
        return carry, carry
    slope, intercept = np.polyfit(np.log(pool.flops), pool.accuracy, 1)
    loglinear = np.clip(intercept + slope * np.log(target.flops), 0, 1)
    return carry, loglinear


def _grok_error(samples: SurfaceSamples, params: float, run: Observations) -> list[float]:
    """log10(predicted / observed) tokens to the grok threshold, if the run crossed it
    after its first checkpoint."""
    threshold = float(np.median(samples.threshold()))
    measured = first_crossing(run.tokens, run.smoothed(), threshold)  # run.smoothed(): `monotone`, per run
    if measured.kind != CROSSED:
        return []
    observed = measured.tokens
    predicted = samples.grok_tokens(params, np.full(samples.size, threshold), low=run.tokens[0] / 100,
                                    high=run.tokens[-1] * 100)
    median = float(np.median(predicted))
    return [math.log10(median / observed)] if math.isfinite(median) else []


def backtest_latent(runs: Sequence[Run], *, level: float = 0.8, draws: int = 0, seed: int = 0) -> Backtest:
    """The latent-capability law (`forecast.fitting.latent`) on a table of final checkpoints:
    per family with ≥ 2 sizes, fit the whole table but that family's largest size, and
    forecast that size's benchmarks. `carry` is the family's next smaller member. `draws`: bootstrap
    refits per fit (0: intervals from the residual scatter alone, as the dev benchmark runs it)."""
    results: list[SkillBacktest] = []
    held_out: dict[tuple[str, str], tuple[str, ...]] = {}
    for family in sorted({r.family for r in runs}):
        members = [r for r in runs if r.family == family]
        top = max(r.params for r in members)
        held = [r for r in members if r.params == top]
        rest = [r for r in runs if not (r.family == family and r.params == top)]
        prev = [r for r in rest if r.family == family]
        if not prev:
            continue
        lf = fit_latent(rest, draws=draws, seed=seed)
        held_out[(family, held[0].recipe.label)] = tuple(r.name for r in held)
        fitted_flops = max(model_flops(r, lf.tokens_per_param) for r in prev)
        for h in held:
            for skill in sorted(set(h.skills) & set(lf.skills)):
                below = [r for r in prev if skill in r.skills]
                if not below:
                    continue
                carry = float(max(below, key=lambda r: r.params).series[skill].accuracy[-1])
                tokens = h.final_tokens if math.isfinite(h.final_tokens) else None
                (f,) = lf.predict(family, h.params, tokens, [skill], level=level, seed=seed)
                flops = model_flops(h, lf.tokens_per_param)
                point = BacktestPoint(
                    skill=skill, run=h.name, params=h.params, tokens=h.final_tokens, flops=flops, final=True,
                    actual=float(h.series[skill].accuracy[-1]), predicted=f.median, low=f.low, high=f.high,
                    carry=carry, loglinear=None, confidence=None, status=None,
                    distance=float(extrapolation_distance(h.params, flops, max(r.params for r in below), fitted_flops)))
                results.append(SkillBacktest(skill=skill, family=family, recipe=h.recipe.label, status="fitted",
                                             reason=None, law="latent", points=(point,)))
    if not results:
        raise UsageError("no family has two sizes to hold its largest out")
    return Backtest(holdout="largest", level=level, skills=tuple(results), held_out=held_out)
