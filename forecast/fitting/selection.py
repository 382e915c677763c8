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

The fit keeps each candidate's hold-outs as its record (`compact`: binned by distance, in
`HoldoutScore.record`), and a forecast weighs them again for its own target (`at_reach`):
each hold-out counts by the closeness of its reach to the target's (`importance`), so the
law with the best record at that reach wins and the rates, hence the interval, are the ones
measured there; a law whose hold-out error flips sign between depths is penalised (`_flips`).
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
from forecast.fitting.results import Calibration, Candidate, HoldoutItem, HoldoutScore

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
MIN_SPAN = math.log(2.0)
"""The smallest span of fitted sizes a law's extrapolation is measured against (e-folds)."""
MIN_IMPORTANCE = 0.5
"""A hold-out counts in a law's record at least as one half an e-fold out (`importance`)."""
REACH_BANDWIDTH = 1.0
"""At a target d e-folds beyond the pilots, a hold-out d_i < d e-folds out counts in
proportion to exp(−(d − d_i) / this) (`importance`): one e-fold nearer, e times more."""
FLIP_NOISE = 2.0
"""A law's hold-out error flips between depths when both errors exceed this many noise
levels and their signs differ (`_flips`)."""
RECORD_BIN = 0.25
"""A candidate's stored record sums up its runs of one hold-out per this many e-folds (`compact`)."""
REFERENCE_DISTANCES = (0.5, 1.5, 3.0, 4.5)
"""Target distances (e-folds) at which a candidate weighing `MIN_WEIGHT` is kept for forecasts (`keep_at_reach`)."""
MAX_SHIFT = 4.0
"""The alignment searches shifts within ±this many e-folds of tokens."""
SHIFTS = np.linspace(-MAX_SHIFT, MAX_SHIFT, 161)
"""The shifts (e-folds of tokens) `holdout_items` tries; the middle one is exactly 0."""
ZERO_SHIFT = int(np.flatnonzero(SHIFTS == 0.0)[0])


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
    shifts = SHIFTS
    # every held-out run's points predicted at once, then reduced run by run
    order = np.argsort(held.run, kind="stable")
    run_of, tokens, accuracy = held.run[order], held.tokens[order], held.accuracy[order]
    shifted = cf.accuracy(cf.theta, held.params[order][None, :], tokens[None, :] * np.exp(shifts)[:, None])
    pred = shifted[ZERO_SHIFT]  # the unshifted prediction (exp(0) = 1: the same tokens)
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


def _loglik(items: Sequence[HoldoutItem], tau: float, target: float | None = None) -> float:
    """Gaussian log likelihood of the items' errors; for a held-out trajectory the error is
    the larger of the final one and the RMS over its checkpoints, so a law that gets a
    saturated final right but the transition wrong is not rewarded. Each item counts by its
    `importance` (at `target`), less the penalty of a law that flips between depths (`_flips`)."""
    e = np.array([i.worst for i in items])
    var = np.array([i.noise**2 + (tau * i.reach) ** 2 for i in items])
    loglik = float(np.sum(importance(items, target) * (-0.5 * e**2 / var - 0.5 * np.log(2 * math.pi * var))))
    return loglik - _flips(items, tau, target)


def importance(items: Sequence[HoldoutItem], target: float | None = None) -> np.ndarray:
    """How much each hold-out counts in a law's record (mean 1 per held-out run, `count`).

    With no `target`: in proportion to its distance (e-folds, at least `MIN_IMPORTANCE`), so
    a law is judged by how it did at the longest reach the ladder allowed, not by the many
    short hold-outs a law can pass by fitting the local slope (the fit's stored weights).
    At a target `target` e-folds out: a hold-out d ≥ target e-folds out counts as in the
    fit's record (a law that extrapolated that far and held tells of the target's reach too);
    one short of it is discounted by exp(−(target − d) / `REACH_BANDWIDTH`) (relative to the
    nearest hold-out's), so the law with the best record at the target's reach wins, and a
    target beyond every hold-out leans on the farthest ones. (Counting the hold-outs beyond
    the target less, as a symmetric kernel would, made short-reach forecasts worse:
    Pythia ≤1.4B → 2.8B MAE 1.06 → 1.36, docs/reach.md.)"""
    d = np.array([i.distance for i in items])
    count = np.array([i.count for i in items])
    if target is None:
        k = np.maximum(d, MIN_IMPORTANCE)
    else:
        short = np.maximum(target - d, 0.0)
        k = np.maximum(d, MIN_IMPORTANCE) * np.exp(-(short - short.min()) / REACH_BANDWIDTH)
    w = count * k
    return w * count.sum() / w.sum()


def _flips(items: Sequence[HoldoutItem], tau: float, target: float | None = None) -> float:
    """Log-likelihood penalty of a law whose hold-out errors flip sign between consecutive
    depths of one held-out size (beyond `FLIP_NOISE` noise levels each): its extrapolation
    is unstable, right on average by luck. Each flip costs what the deeper hold-out's runs
    would, had they missed by the swing between the two errors."""
    w = importance(items, target)
    groups: dict[tuple, list[tuple[HoldoutItem, float]]] = {}
    for i, wi in zip(items, w):
        groups.setdefault((i.borrowed, i.origin, i.depth), []).append((i, wi))

    def summary(group):
        n = np.array([i.count for i, _ in group])
        error = float(np.sum(n * [i.error for i, _ in group]) / n.sum())
        noise = math.sqrt(float(np.sum(n * [i.noise**2 for i, _ in group]) / n.sum()))
        return error, noise, max(i.reach for i, _ in group), sum(wi for _, wi in group)

    penalty = 0.0
    for (borrowed, origin, depth), group in groups.items():
        deeper = groups.get((borrowed, origin, depth + 1))
        if deeper is None:
            continue
        (e0, n0, _, _), (e1, n1, reach, weight) = summary(group), summary(deeper)
        if e0 * e1 < 0 and abs(e0) > FLIP_NOISE * n0 and abs(e1) > FLIP_NOISE * n1:
            penalty += weight * 0.5 * (e1 - e0) ** 2 / (n1**2 + (tau * reach) ** 2)
    return penalty


def _within(items: Sequence[HoldoutItem], target: float | None) -> np.ndarray:
    """Weights of a law's items in its rates: one per held-out run, or their importance at `target`."""
    return np.array([i.count for i in items]) if target is None else importance(items, target)


def _pooled(scored: dict[Spec, list[HoldoutItem]], weights: dict[Spec, float], origins: int, attr: str,
            prior: float, target: float | None = None) -> float:
    """Rate per e-fold of `attr` ("excess" or "shift") over the weighted candidates' items."""
    values = np.array([getattr(i, attr) / i.reach for s in weights for i in scored[s]])
    w = np.concatenate([weights[s] * _within(scored[s], target) / _within(scored[s], target).sum() for s in weights])
    return _rate(values, w, origins, prior)


def weigh(scored: dict[Spec, list[HoldoutItem]], target: float | None = None
          ) -> tuple[dict[Spec, float], dict[Spec, HoldoutScore], Calibration]:
    """Weights of the candidates, their hold-out summaries, and the skill's calibration,
    from each candidate's hold-outs (`scored`: its items, or its stored `record`), weighed
    for a target `target` e-folds out (`importance`; None: the fit's own weights, by distance,
    and each summary keeps its `record`).

    Two passes: the error rate τ from the better half of the candidates (by mean absolute
    error), weights by likelihood under it; then τ again under those weights, and the
    weights once more."""
    origins = len({(i.borrowed, i.origin) for items in scored.values() for i in items})
    mae = {s: float(np.average([abs(i.error) for i in items], weights=_within(items, target)))
           for s, items in scored.items()}
    cut = float(np.median(list(mae.values())))
    weights = {s: 1.0 for s in scored if mae[s] <= cut}
    loglik: dict[Spec, float] = {}
    for _ in range(2):
        tau = _pooled(scored, weights, origins, "excess", PRIOR_ERROR, target)
        loglik = {s: _loglik(items, tau, target) for s, items in scored.items()}
        top = max(loglik.values())
        raw = {s: math.exp(v - top) for s, v in loglik.items()}
        total = sum(raw.values())
        weights = {s: w / total for s, w in raw.items() if w / total >= MIN_WEIGHT}
        total = sum(weights.values())
        weights = {s: w / total for s, w in sorted(weights.items(), key=lambda kv: -kv[1])}
    summaries = {}
    for s, items in scored.items():
        n = len({(i.borrowed, i.origin) for i in items})
        within = _within(items, target)
        summaries[s] = HoldoutScore(
            mae=mae[s], shift=_rate(np.array([i.shift / i.reach for i in items]), within, n, PRIOR_SHIFT),
            error=_rate(np.array([i.misfit / i.reach for i in items]), within, n, PRIOR_MISFIT),
            distance=float(max(i.distance for i in items)), loglik=loglik[s] / sum(i.count for i in items), origins=n,
            record=compact(items) if target is None else ())
    calibration = Calibration(
        shift_rate=_pooled(scored, weights, origins, "shift", PRIOR_SHIFT, target),
        error_rate=_pooled(scored, weights, origins, "excess", PRIOR_ERROR, target), holdouts=origins,
        dof=origins + PRIOR_COUNT, max_distance=float(max(i.distance for s in weights for i in scored[s])))
    return weights, summaries, calibration


def keep_at_reach(scored: dict[Spec, list[HoldoutItem]], weights: dict[Spec, float]) -> dict[Spec, float]:
    """The fit's `weights`, with weight 0 for every other candidate that weighs at least
    `MIN_WEIGHT` at one of the `REFERENCE_DISTANCES`: the candidates a forecast may weigh
    at its own target's distance (`at_reach`), all refitted on every size."""
    out = dict(weights)
    for target in REFERENCE_DISTANCES:
        out.update({s: 0.0 for s in weigh(scored, target)[0] if s not in out})
    return out


def at_reach(candidates: Sequence[Candidate], distance: float
             ) -> tuple[list[float], list[HoldoutScore], Calibration] | None:
    """The candidates' weights, hold-out summaries and the skill's calibration at a target
    `distance` e-folds beyond the pilots, from their stored records (`weigh` at `target`);
    None when a candidate has no record (prior weights, or a fit written before records)."""
    if not candidates or any(c.holdout is None or not c.holdout.record for c in candidates):
        return None
    scored = {c.fit.spec: list(c.holdout.record) for c in candidates}
    if len(scored) < len(candidates):
        return None
    weights, summaries, calibration = weigh(scored, max(float(distance), 0.0))
    return ([weights.get(c.fit.spec, 0.0) for c in candidates], [summaries[c.fit.spec] for c in candidates],
            calibration)


def compact(items: Sequence[HoldoutItem]) -> tuple[HoldoutItem, ...]:
    """A candidate's hold-outs as its stored record: the runs of one hold-out (origin,
    depth) whose distances fall in one `RECORD_BIN`, summed up in one item of `count` runs
    (mean distance and error, RMS of the rest; what `weigh` reads back unchanged where the
    runs lie at one distance)."""
    groups: dict[tuple, list[HoldoutItem]] = {}
    for i in items:
        groups.setdefault((i.borrowed, i.origin, i.depth, i.span, round(i.distance / RECORD_BIN)), []).append(i)
    out = []
    for (borrowed, origin, depth, span, _), group in sorted(groups.items(), key=lambda kv: kv[0][:3] + kv[0][4:]):
        n = np.array([i.count for i in group])
        mean = lambda values: float(np.sum(n * np.asarray(values, dtype=float)) / n.sum())  # noqa: E731
        rms = lambda values: math.sqrt(mean(np.square(values)))  # noqa: E731
        shifts = [i.shift for i in group]
        out.append(HoldoutItem(origin=origin, distance=mean([i.distance for i in group]), span=span,
                               error=mean([i.error for i in group]), shift=math.copysign(rms(shifts), mean(shifts)),
                               noise=rms([i.noise for i in group]), path=rms([i.worst for i in group]),
                               misfit=rms([i.misfit for i in group]), borrowed=borrowed, depth=depth,
                               count=float(n.sum())))
    return tuple(out)


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
