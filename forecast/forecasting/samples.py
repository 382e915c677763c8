"""The forecast distribution of one skill: Monte-Carlo samples of its accuracy surface.

Four sources of uncertainty, combined per sample:
1. **Parameters**: each sample is a bootstrap draw (runs and checkpoints resampled,
   accuracies perturbed by their evaluation noise) of one candidate law.
2. **Which law**: candidates contribute samples in proportion to their weight (how likely
   their hold-out predictions were), so disagreement between laws widens the interval.
3. **Extrapolation drift**: each sample carries a Student-t ε that moves the forecast
   along the token axis beyond the pilots: tokens are read as tokens·e^{ε·s·far}, where s
   is the skill's calibrated drift rate (e-folds of tokens per e-fold of extrapolation, as
   its rolling hold-outs measured; `forecast.fitting.selection.Calibration`) and far the target's
   `extrapolation_distance`: how many e-folds it lies beyond the pilots in parameters or in
   compute, whichever is further. The drift moves along the curve, so every sample stays a
   monotone transition and still says *when* it groks.
4. **Error of shape and measurement** (`observed`, for accuracy intervals, which start from
   each candidate's point estimate with the drift, `model_accuracy`): a Student-t error of
   shape, the candidate's calibrated rate times its reach, and the skill's measured noise
   (checkpoint-to-checkpoint, else binomial over its items).
The Student-t's degrees of freedom are the hold-outs behind the calibration (plus the
prior's), so a forecast resting on one or two hold-outs has heavier tails. Every function
of the surface (accuracy, grok point, compute to a target) reads the same samples, so
`predict` and `plan` agree with each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecast.fitting.candidates import CandidateFit
from forecast.errors import UsageError
from forecast.fitting.results import Calibration, SkillFit
from forecast.fitting.reach import effective_reach, extrapolation_distance
from forecast.fitting.selection import at_reach, extrapolation_span, prior_calibration

SAMPLES = 4000
"""Monte-Carlo samples per forecast."""
MIN_PLATEAU = 0.1
"""A law whose plateau rises less than this fraction of the way from floor to top shows no
transition: it has no grok threshold (half way to such a plateau would be noise)."""
MAX_SLOWDOWN = 0.8
"""A sample's drift may slow the effect of extra compute by at most this fraction, so that
accuracy still rises with compute in every sample."""


@dataclass(frozen=True, eq=False)
class _Part:
    """The samples one candidate law contributes."""

    fit: CandidateFit
    rows: np.ndarray  # parameter rows (k, P): bootstrap draws
    eps: np.ndarray  # Student-t extrapolation drifts (k,), in units of `rate`
    shape: np.ndarray  # Student-t accuracy errors (k,), in units of `error`
    rate: float  # drift, e-folds of tokens per unit of reach (distance / span)
    error: float  # accuracy error per unit of reach
    span: float  # what this law's distance is measured against (`selection.extrapolation_span`)


@dataclass(frozen=True, eq=False)
class SurfaceSamples:
    """K samples of a skill's accuracy as a function of (parameters, tokens)."""

    fit: SkillFit
    parts: tuple[_Part, ...]
    calibration: Calibration

    @classmethod
    def of(cls, fit: SkillFit, samples: int = SAMPLES, seed: int = 0, distance: float | None = None) -> SurfaceSamples:
        """Samples of a fitted skill: candidates in proportion to their weights. At a target
        `distance` e-folds beyond the pilots, the weights and each candidate's rates are those
        of its hold-out record at that reach (`forecast.fitting.selection.at_reach`); else, or
        for a fit without records or a flat skill (the level alone), the fit's own."""
        if not fit.predictable:
            raise UsageError(f"{fit.skill}: not predictable ({fit.reason})")
        rng = np.random.default_rng(seed)
        calibration = fit.calibration or prior_calibration()
        weights = np.array([c.weight for c in fit.candidates])
        scores = [c.holdout for c in fit.candidates]
        reweighed = None if distance is None or fit.flat else at_reach(fit.candidates, distance)
        if reweighed is not None:
            weights, scores, calibration = np.array(reweighed[0]), reweighed[1], reweighed[2]
        counts = np.floor(weights / weights.sum() * samples).astype(int)
        counts[np.argmax(weights)] += samples - counts.sum()
        parts = []
        for c, score, count in zip(fit.candidates, scores, counts):
            if count == 0:
                continue
            pool = c.fit.draws if len(c.fit.draws) else c.fit.theta[None, :]
            rate = calibration.shift_rate if score is None else score.shift
            error = calibration.error_rate if score is None else score.error
            span = extrapolation_span(c.fit.spec, [math.exp(fit.span), 1.0])
            parts.append(_Part(c.fit, pool[np.arange(count) % len(pool)], rng.standard_t(calibration.dof, count),
                               rng.standard_t(calibration.dof, count), rate, error, span))
        return cls(fit=fit, parts=tuple(parts), calibration=calibration)

    @property
    def chosen(self):
        """Spec of the law with the most samples (the fit's chosen law, or the one chosen at the target's reach)."""
        return max(self.parts, key=lambda p: len(p.rows)).fit.spec

    @property
    def law(self) -> str:
        """Key of the `chosen` law."""
        return self.chosen.key

    @property
    def size(self) -> int:
        return sum(len(p.rows) for p in self.parts)

    def _per_part(self, params: float | np.ndarray, tokens: float | np.ndarray):
        """Yield (part, its params, its tokens): each a (k, M) slice of a per-sample array
        or a (1, M) row shared by every sample."""
        params, tokens = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
        offset = 0
        for part in self.parts:
            k = len(part.rows)
            n = params[offset:offset + k] if params.ndim == 2 else np.atleast_1d(params)[None, :]
            t = tokens[offset:offset + k] if tokens.ndim == 2 else np.atleast_1d(tokens)[None, :]
            yield part, n, t
            offset += k

    def accuracy(self, params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
        """Model accuracy samples (K, M) for N = `params` parameters after D = `tokens` tokens.

        Each of `params` and `tokens` is a scalar, an (M,) array shared by all samples, or a
        (K, M) array with one row per sample (e.g. a per-sample point on a compute path)."""
        out = []
        with np.errstate(over="ignore", invalid="ignore"):  # bisections probe far beyond the pilots: overflow reads as inf tokens
            for part, n, t in self._per_part(params, tokens):
                drift = np.maximum(part.eps[:, None] * part.rate, -MAX_SLOWDOWN)
                out.append(part.fit.accuracy(part.rows, n, t * np.exp(drift * effective_reach(self._far(n, t), part.span))))
        return np.concatenate(out, axis=0)

    def model_accuracy(self, params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
        """Each candidate's point estimate at N, D, with each sample's drift (K, M): what
        accuracy intervals start from. The rolling hold-outs measured drift and error of
        shape on point estimates, so their calibration already holds the parameter error
        (adding the bootstrap spread again would count it twice)."""
        out = []
        with np.errstate(over="ignore", invalid="ignore"):
            for part, n, t in self._per_part(params, tokens):
                drift = np.maximum(part.eps[:, None] * part.rate, -MAX_SLOWDOWN)
                rows = np.repeat(part.fit.theta[None, :], len(part.rows), axis=0)
                out.append(part.fit.accuracy(rows, n, t * np.exp(drift * effective_reach(self._far(n, t), part.span))))
        return np.concatenate(out, axis=0)

    def _far(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return extrapolation_distance(params, self.fit.flops_per_param_token * params * tokens,
                                      max(self.fit.sizes), self.fit.max_flops)

    def threshold(self, absolute: float | None = None) -> np.ndarray:
        """Grok threshold per sample (K,): `absolute`, else half way from floor to plateau
        (for the level's samples the other laws' median threshold; infinite for a skill whose
        pilots show no trend: a skill that stays level has no transition to cross)."""
        if absolute is not None:
            return np.full(self.size, float(absolute))
        if self.fit.flat:  # no trend in the pilots: half way to a plateau nobody saw means nothing
            return np.full(self.size, np.inf)
        own = [None if p.fit.spec.law == "level" else self._halfway(p) for p in self.parts]
        laws = [t for t in own if t is not None]
        # the level has no transition of its own: it is judged against the laws' threshold
        # (a level above it has grokked, one below never will), or never crosses when alone
        shared = float(np.median(np.concatenate(laws))) if laws else np.inf
        return np.concatenate([np.full(len(p.rows), shared) if t is None else t for p, t in zip(self.parts, own)])

    @staticmethod
    def _halfway(part: _Part) -> np.ndarray:
        """Half way from the floor to each draw's plateau; infinite where the plateau rises
        less than `MIN_PLATEAU` of the room above the floor (no transition worth the name:
        its half-way mark would be noise)."""
        rise = part.fit.plateau(part.rows) - part.fit.floor
        room = part.fit.top - part.fit.floor
        return np.where(rise >= MIN_PLATEAU * room, part.fit.floor + 0.5 * rise, np.inf)

    def observed(self, accuracy: np.ndarray, rng: np.random.Generator, params: float | np.ndarray,
                 tokens: float | np.ndarray) -> np.ndarray:
        """What one evaluation of the target would read: model accuracy (K, M) at N =
        `params`, D = `tokens` (`model_accuracy`) plus two errors the law itself does not
        carry. Measurement noise: the skill's checkpoint-to-checkpoint noise in the pilots
        (which includes the benchmark's finite sample), else binomial over its n items.
        Extrapolation error: each candidate's calibrated error rate times the distance beyond
        the pilots, Student-t."""
        sigma = self.fit.noise
        if not (sigma is not None and math.isfinite(sigma)):
            p = np.clip(accuracy, 0, 1)
            sigma = np.sqrt(p * (1 - p) / self.fit.n_eval) if self.fit.n_eval else 0.0
        shape = np.concatenate([part.shape[:, None] * part.error * effective_reach(self._far(n, t), part.span)
                                * np.ones((1, accuracy.shape[1]))
                                for part, n, t in self._per_part(params, tokens)], axis=0)
        noise = rng.standard_normal(accuracy.shape) * sigma
        return np.clip(accuracy + shape + noise, 0, 1)

    def grok_tokens(self, params: float, threshold: np.ndarray, low: float, high: float) -> np.ndarray:
        """Per sample, the fewest tokens in [low, high] at which accuracy reaches `threshold`
        (K,): `low` if already there, inf if not reached by `high`."""
        return first_reaching(lambda tokens: self.accuracy(params, tokens[:, None])[:, 0] >= threshold,
                              self.size, low, high)


def first_reaching(reached, size: int, low: float, high: float, iterations: int = 45) -> np.ndarray:
    """Per sample, the smallest x in [low, high] (x > 0) where the monotone test `reached(x)`
    (x: (size,) → bool (size,)) turns true, by bisection in ln x: `low` if already true
    there, inf if still false at `high`."""
    lo = np.full(size, math.log(low))
    hi = np.full(size, math.log(high))
    ever, already = reached(np.exp(hi)), reached(np.exp(lo))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        up = reached(np.exp(mid))
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    out = np.exp(hi)
    out[already] = low
    out[~ever & ~already] = np.inf
    return out

