"""Choosing among candidate laws by how they extrapolate, and calibrating the intervals.

A rolling hold-out (`forecast.fitting.holdout.rolling_holdout`) fits each candidate on the sizes
below each held-out size and predicts that size: an extrapolation like the real one, at a
measured distance d (e-folds of parameters or compute beyond the largest fitted size), read
relative to the span of sizes the law was fitted on (its reach, `extrapolation_span`).
What it finds is summed up per hold-out *item* (one held-out run's final checkpoint):

- `error`: measured − predicted accuracy at the final checkpoint (what candidates are
  weighted by, and, beyond measurement noise, what accuracy intervals widen by);
- `shift`: how far, in e-folds of tokens, the law misplaced the held-out run's curve (the
  shift that best aligns it: the drift that widens the *when*, and the accuracy where the
  curve is steep);
- `misfit`: the accuracy error left once aligned, beyond noise (the error of shape, which
  widens the accuracy where the drift does not reach, e.g. on a plateau or a level).

Weights are pseudo-Bayesian model averaging (Yao et al. 2018): w ∝ exp(Σ log N(error; 0,
σ²)), with σ² = noise²/n + (τ·d)² the measurement noise plus an extrapolation error that
grows with distance at the rate τ the hold-outs themselves show. A law that misses by much
more than the others gets little weight; laws that miss alike share it, so their
disagreement at the target widens the interval.

Each candidate's rates (`HoldoutScore`: drift along the token axis, accuracy error, per
e-fold) and the skill's `Calibration` carry this to the forecast, each the hold-outs' RMS
shrunk towards a documented prior by `PRIOR_COUNT`
pseudo-hold-outs, with a Student-t of `dof` degrees of freedom for how few hold-outs there
were. So intervals widen with the target's distance as the back-tests measured, and with
little evidence they lean on the prior and on heavier tails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.fitting.candidates import CandidateFit, Spec
from forecast.fitting.laws import POOLED_LAWS
from forecast.fitting.observations import Observations
from forecast.quantities import format_count
from forecast.fitting.results import Calibration, Candidate, HoldoutScore

MIN_WEIGHT = 0.05
"""Candidates whose weight falls below this are dropped from the mixture."""
PRIOR_SHIFT = 0.3
"""Prior drift of a law's transition along the token axis: e-folds of tokens per unit of
reach (a law extrapolated one span of its sizes beyond them misplaces the grok point by ~0.3
e-folds, ×1.35). Weak: it counts as `PRIOR_COUNT` hold-outs."""
PRIOR_ERROR = 0.03
"""Prior extrapolation error: accuracy per unit of reach (3 points one span out); in the
weights' likelihood."""
PRIOR_MISFIT = 0.01
"""Prior error of shape (what is left once a law's curve is aligned): accuracy per unit of
reach (1 point one span out)."""
PRIOR_COUNT = 1.0
"""How many hold-outs the priors count as."""
MIN_REACH = 0.25
"""Any extrapolation counts as reaching at least a quarter of the law's span: a hold-out
just beyond the fitted sizes still misses by what refitting on noisy points costs, which
does not shrink to zero with the distance (dividing it by a tiny reach would inflate the
rates; `reach`)."""
MIN_SPAN = math.log(2.0)
"""The smallest span of fitted sizes a law's extrapolation is measured against (e-folds)."""
MIN_IMPORTANCE = 0.5
"""A hold-out counts in a law's record at least as one half an e-fold out (`importance`)."""
MAX_SHIFT = 4.0
"""The alignment searches shifts within ±this many e-folds of tokens."""


@dataclass(frozen=True)
class HoldoutItem:
    """One held-out run of one origin, as one candidate predicted it."""

    origin: int  # index of the held-out size (0 = the largest)
    distance: float  # e-folds beyond the fitted sizes (parameters or compute)
    span: float  # the divisor of `distance` for this law (`extrapolation_span`)
    error: float  # measured − predicted accuracy at the run's final checkpoint
    shift: float  # e-folds of tokens aligning the law with the run's curve
    noise: float  # measurement noise of `error`
    path: float = 0.0  # RMS error over the run's checkpoints (its trajectory), when it has several
    misfit: float = 0.0  # accuracy error left once aligned by `shift`, beyond noise (error of shape)
    borrowed: bool = False  # a hold-out from another family (pooling), its origins apart from this family's
    depth: int = 0  # sizes left out between the fitted ones and the held-out one (`holdout.holdout_origins`)

    @property
    def reach(self) -> float:
        """How far the hold-out extrapolated, in units of the law's span (at least `MIN_REACH`)."""
        return effective_reach(self.distance, self.span)

    @property
    def worst(self) -> float:
        """The larger of the final error and the trajectory's RMS error (absolute)."""
        return max(abs(self.error), self.path)

    @property
    def excess(self) -> float:
        """`worst` beyond measurement noise (root of the excess variance, ≥ 0)."""
        return math.sqrt(max(0.0, self.worst**2 - self.noise**2))


def effective_reach(distance, span: float):
    """Distance (e-folds; scalar or array) over span, at least `MIN_REACH` for any distance
    beyond the pilots (0 inside them)."""
    reach = np.asarray(distance, dtype=float) / span
    return np.where(reach > 0, np.maximum(reach, MIN_REACH), 0.0) if reach.ndim else \
        (max(float(reach), MIN_REACH) if reach > 0 else 0.0)


def extrapolation_span(spec: Spec, fitted_sizes: Sequence[float]) -> float:
    """What a law's extrapolation distance is measured against. A law fitted to the family's
    own sizes extrapolates as well as its lever arm allows: error grows with the distance
    relative to the span of sizes it was fitted on, ln(N_max/N_min), as a regression's does
    beyond its data (at least `MIN_SPAN`). The level and the pooled law do not lean on the
    family's span (the level has no slope; the pooled law takes its slope from the other
    families): their distance counts in plain e-folds."""
    if spec.law == "level" or spec.law in POOLED_LAWS:
        return 1.0
    return max(math.log(max(fitted_sizes) / min(fitted_sizes)), MIN_SPAN)


def holdout_items(cf: CandidateFit, held: Observations, noise: float, origin: int,
                  distances: dict[int, float], span: float = 1.0) -> list[HoldoutItem]:
    """Score a candidate on every held-out run (`held`: the held-out size's checkpoints;
    `distances`: run index → distance; `span`: `extrapolation_span` of the fit)."""
    shifts = np.linspace(-MAX_SHIFT, MAX_SHIFT, 161)
    # every held-out run's points predicted at once, then reduced run by run
    order = np.argsort(held.run, kind="stable")
    run_of, tokens, accuracy = held.run[order], held.tokens[order], held.accuracy[order]
    pred = cf.accuracy(cf.theta, held.params[order], tokens)[0]
    shifted = cf.accuracy(cf.theta, held.params[order][None, :], tokens[None, :] * np.exp(shifts)[:, None])
    runs, starts, counts = np.unique(run_of, return_index=True, return_counts=True)
    per_run_mean = lambda v: np.add.reduceat(v, starts, axis=-1) / counts  # noqa: E731
    errors = per_run_mean(np.abs(shifted - accuracy[None, :]))  # (shifts, runs)
    # the smallest shift that aligns within half a noise level of the best: where the
    # law is flat a shift changes nothing, and the error stays an error of shape
    good_enough = errors <= errors.min(axis=0) + max(0.5 * noise, 0.002)
    best = np.argmin(np.where(good_enough, np.abs(shifts)[:, None], np.inf), axis=0)  # first of equals, as before
    path = np.where(counts >= 3, np.sqrt(per_run_mean((accuracy - pred) ** 2)), 0.0)
    aligned = np.sqrt(per_run_mean((shifted[np.repeat(best, counts), np.arange(len(accuracy))] - accuracy) ** 2))
    items = []
    for j, r in enumerate(runs):
        span_j = slice(starts[j], starts[j] + counts[j])
        last = starts[j] + int(np.argmax(tokens[span_j]))
        items.append(HoldoutItem(origin=origin, distance=distances[int(r)], span=span,
                                 error=float(accuracy[last] - pred[last]), shift=float(shifts[best[j]]), noise=noise,
                                 path=float(path[j]), misfit=math.sqrt(max(0.0, float(aligned[j]) ** 2 - noise**2))))
    return items


def _rate(values: np.ndarray, weights: np.ndarray, origins: int, prior: float) -> float:
    """RMS of per-distance values (weighted), shrunk towards `prior` by `PRIOR_COUNT`
    pseudo-hold-outs against `origins` real ones."""
    mean_square = float(np.sum(weights * values**2) / np.sum(weights)) if np.sum(weights) > 0 else prior**2
    return math.sqrt((origins * mean_square + PRIOR_COUNT * prior**2) / (origins + PRIOR_COUNT))


def _loglik(items: Sequence[HoldoutItem], tau: float) -> float:
    """Gaussian log likelihood of the items' errors; for a held-out trajectory the error is
    the larger of the final one and the RMS over its checkpoints, so a law that gets a
    saturated final right but the transition wrong is not rewarded."""
    e = np.array([i.worst for i in items])
    var = np.array([i.noise**2 + (tau * i.reach) ** 2 for i in items])
    return float(np.sum(importance(items) * (-0.5 * e**2 / var - 0.5 * np.log(2 * math.pi * var))))


def importance(items: Sequence[HoldoutItem]) -> np.ndarray:
    """How much each hold-out counts in a law's record (mean 1): in proportion to its
    distance (e-folds, at least `MIN_IMPORTANCE`). Users ask about targets several e-folds
    beyond their pilots, so a law is judged by how it did at the longest reach the ladder
    allowed, not by the many short hold-outs a law can pass by fitting the local slope."""
    d = np.array([max(i.distance, MIN_IMPORTANCE) for i in items])
    return d / d.mean()


def _pooled(scored: dict[Spec, list[HoldoutItem]], weights: dict[Spec, float], origins: int, attr: str,
            prior: float) -> float:
    """Rate per e-fold of `attr` ("excess" or "shift") over the weighted candidates' items."""
    values = np.array([getattr(i, attr) / i.reach for s in weights for i in scored[s]])
    w = np.array([weights[s] / len(scored[s]) for s in weights for _ in scored[s]])
    return _rate(values, w, origins, prior)


def weigh(scored: dict[Spec, list[HoldoutItem]]) -> tuple[dict[Spec, float], dict[Spec, HoldoutScore], Calibration]:
    """Weights of the candidates, their hold-out summaries, and the skill's calibration.

    Two passes: the error rate τ from the better half of the candidates (by mean absolute
    error), weights by likelihood under it; then τ again under those weights, and the
    weights once more."""
    origins = len({(i.borrowed, i.origin) for items in scored.values() for i in items})
    mae = {s: float(np.mean([abs(i.error) for i in items])) for s, items in scored.items()}
    cut = float(np.median(list(mae.values())))
    weights = {s: 1.0 for s in scored if mae[s] <= cut}
    loglik: dict[Spec, float] = {}
    for _ in range(2):
        tau = _pooled(scored, weights, origins, "excess", PRIOR_ERROR)
        loglik = {s: _loglik(items, tau) for s, items in scored.items()}
        top = max(loglik.values())
        raw = {s: math.exp(v - top) for s, v in loglik.items()}
        total = sum(raw.values())
        weights = {s: w / total for s, w in raw.items() if w / total >= MIN_WEIGHT}
        total = sum(weights.values())
        weights = {s: w / total for s, w in sorted(weights.items(), key=lambda kv: -kv[1])}
    summaries = {}
    for s, items in scored.items():
        n = len({(i.borrowed, i.origin) for i in items})
        ones = np.ones(len(items))
        summaries[s] = HoldoutScore(
            mae=mae[s], shift=_rate(np.array([i.shift / i.reach for i in items]), ones, n, PRIOR_SHIFT),
            error=_rate(np.array([i.misfit / i.reach for i in items]), ones, n, PRIOR_MISFIT),
            distance=float(max(i.distance for i in items)), loglik=loglik[s] / len(items), origins=n)
    calibration = Calibration(
        shift_rate=_pooled(scored, weights, origins, "shift", PRIOR_SHIFT),
        error_rate=_pooled(scored, weights, origins, "excess", PRIOR_ERROR), holdouts=origins,
        dof=origins + PRIOR_COUNT, max_distance=float(max(i.distance for s in weights for i in scored[s])))
    return weights, summaries, calibration


def prior_calibration() -> Calibration:
    """The calibration when no hold-out was possible (fewer than 3 sizes): the priors alone,
    with the heavy tails of one degree of freedom."""
    return Calibration(shift_rate=PRIOR_SHIFT, error_rate=PRIOR_ERROR, holdouts=0, dof=PRIOR_COUNT, max_distance=0.0)


def explain_choice(candidates: list[Candidate], scores: dict[Spec, HoldoutScore], sizes: np.ndarray,
                   failures: dict[Spec, str]) -> str:
    """One sentence on why the chosen law won."""
    best = candidates[0]
    if best.holdout is None:
        return f"{best.key} (weights from priors: too few sizes to score extrapolation)"
    text = (f"{best.key}: fitted on the smaller sizes it predicted {best.holdout.origins} held-out size(s) up to "
            f"{format_count(sizes[-1])} params within {100 * best.holdout.mae:.1f} points (mean abs.)")
    ranked = sorted(scores.items(), key=lambda kv: kv[1].mae)
    others = [f"{s.key} {100 * v.mae:.1f}" for s, v in ranked if s != best.fit.spec][:3]
    if others:
        text += "; others: " + ", ".join(others)
    text += f"; weight {best.weight:.2f}"
    if failures:
        text += f"; {len(failures)} candidate(s) failed to fit"
    return text
