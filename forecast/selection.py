"""Choosing among candidate laws by how they extrapolate: hold-out errors, weights, and the
sentence that says why the chosen law won."""

from __future__ import annotations

import math

import numpy as np

from forecast.candidates import CandidateFit, Spec
from forecast.observations import Observations
from forecast.quantities import format_count
from forecast.results import Candidate, HoldoutScore

MIN_WEIGHT = 0.05
"""Candidates whose weight falls below this are dropped from the mixture."""


def holdout_errors(cf: CandidateFit, held: Observations, noise: float) -> tuple[float, float, float]:
    """(mean absolute error, best alignment shift, misfit) of a law on held-out points.

    The shift is the single offset δ, in e-folds of tokens, for which the law evaluated at
    tokens·e^δ best matches the held-out points (least absolute error over δ ∈ [−4, 4]):
    how far the law misplaced the held-out size's transition along the token axis. The
    misfit is what remains once shifted: the RMS residual (accuracy) beyond the
    measurement `noise`, i.e. error in the shape of the curve rather than its position."""
    pred = cf.accuracy(cf.theta, held.params, held.tokens)[0]
    mae = float(np.mean(np.abs(pred - held.accuracy)))
    shifts = np.linspace(-4.0, 4.0, 161)
    shifted = cf.accuracy(cf.theta, held.params[None, :], held.tokens[None, :] * np.exp(shifts)[:, None])
    errors = np.mean(np.abs(shifted - held.accuracy[None, :]), axis=1)
    candidates = np.flatnonzero(errors <= errors.min() + 1e-12)
    best = candidates[np.argmin(np.abs(shifts[candidates]))]  # the smallest shift among equally good ones
    rms = float(np.sqrt(np.mean((shifted[best] - held.accuracy) ** 2)))
    return mae, float(shifts[best]), math.sqrt(max(0.0, rms**2 - noise**2))


def selection_weights(maes: dict[Spec, float]) -> dict[Spec, float]:
    """Weights ∝ (best MAE / MAE)^4, dropping those below `MIN_WEIGHT`: a law that missed the
    held-out size by twice the best gets 1/16 of its weight."""
    best = max(min(maes.values()), 1e-4)
    raw = {s: (best / max(m, 1e-4)) ** 4 for s, m in maes.items()}
    total = sum(raw.values())
    kept = {s: w / total for s, w in raw.items() if w / total >= MIN_WEIGHT}
    total = sum(kept.values())
    return {s: w / total for s, w in sorted(kept.items(), key=lambda kv: -kv[1])}


def explain_choice(candidates: list[Candidate], scores: dict[Spec, HoldoutScore], sizes: np.ndarray,
                   failures: dict[Spec, str]) -> str:
    """One sentence on why the chosen law won."""
    best = candidates[0]
    if best.holdout is None:
        return f"{best.key} (equal weights: too few sizes to score extrapolation)"
    fitted = f"{format_count(sizes[0])}–{format_count(sizes[-2])}"
    text = (f"{best.key}: fitted on {fitted} params it predicted the {format_count(sizes[-1])} run(s) within "
            f"{100 * best.holdout.mae:.1f} points (mean abs.)")
    ranked = sorted(scores.items(), key=lambda kv: kv[1].mae)
    others = [f"{s.key} {100 * v.mae:.1f}" for s, v in ranked if s != best.fit.spec][:3]
    if others:
        text += "; others: " + ", ".join(others)
    text += f"; weight {best.weight:.2f}"
    if failures:
        text += f"; {len(failures)} candidate(s) failed to fit"
    return text
