"""The forecast distribution of one skill: Monte-Carlo samples of its accuracy surface.

Three sources of uncertainty, combined per sample:
1. **Parameters**: each sample is a bootstrap draw (runs and checkpoints resampled,
   accuracies perturbed by their evaluation noise) of one candidate law.
2. **Which law**: candidates contribute samples in proportion to their weight (their
   hold-out extrapolation score), so disagreement between laws widens the interval.
3. **Extrapolation**: each sample carries a standard-normal shift ε, applied in logit of
   the normalised accuracy and scaled by σ(C) = s·ln(C / C_max)/d, where s is the RMS
   logit error the law made when it extrapolated from the smaller pilots to the largest
   over a distance d = ln(FLOPs ratio) (the hold-out), and C_max the largest pilot compute.
   Errors grow with the log-distance extrapolated, at the rate the hold-out measured.
Measurement noise (checkpoint-to-checkpoint, which includes the benchmark's finite sample) is
added by `observed`.
Every function of the surface (accuracy, grok point, compute to a target) reads the same
samples, so `predict` and `plan` agree with each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecast.candidates import CandidateFit
from forecast.errors import UsageError
from forecast.fits import SkillFit
from forecast.laws import logit

SAMPLES = 4000
MIN_LOGIT_RMS = 0.15
"""Smallest extrapolation error rate assumed (logit units per hold-out distance): one lucky
hold-out must not make a forecast look exact."""
DEFAULT_LOGIT_RMS = 1.0
"""Extrapolation error rate assumed when no hold-out was possible (fewer than 3 sizes)."""


@dataclass(frozen=True, eq=False)
class _Part:
    """The samples one candidate law contributes."""

    fit: CandidateFit
    rows: np.ndarray  # parameter rows (k, P): bootstrap draws
    eps: np.ndarray  # standard-normal extrapolation shifts (k,)
    rate: float  # hold-out RMS error in logit units
    distance: float  # hold-out extrapolation distance, ln(FLOPs ratio)


@dataclass(frozen=True, eq=False)
class SurfaceSamples:
    """K samples of a skill's accuracy as a function of (parameters, tokens)."""

    fit: SkillFit
    parts: tuple[_Part, ...]

    @classmethod
    def of(cls, fit: SkillFit, samples: int = SAMPLES, seed: int = 0) -> SurfaceSamples:
        """Samples of a fitted skill: candidates in proportion to their weights."""
        if not fit.predictable:
            raise UsageError(f"{fit.skill}: not predictable ({fit.reason})")
        rng = np.random.default_rng(seed)
        weights = np.array([c.weight for c in fit.candidates])
        counts = np.floor(weights / weights.sum() * samples).astype(int)
        counts[np.argmax(weights)] += samples - counts.sum()
        parts = []
        for c, count in zip(fit.candidates, counts):
            if count == 0:
                continue
            pool = c.fit.draws if len(c.fit.draws) else c.fit.theta[None, :]
            rate = DEFAULT_LOGIT_RMS if c.holdout_logit_rms is None else max(c.holdout_logit_rms, MIN_LOGIT_RMS)
            distance = c.holdout_distance if c.holdout_distance and c.holdout_distance > 0 else math.log(2.0)
            parts.append(_Part(c.fit, pool[np.arange(count) % len(pool)], rng.standard_normal(count), rate, distance))
        return cls(fit=fit, parts=tuple(parts))

    @property
    def size(self) -> int:
        return sum(len(p.rows) for p in self.parts)

    def accuracy(self, params: float, tokens: float | np.ndarray) -> np.ndarray:
        """Model accuracy samples (K, M) at N = `params` parameters after D = `tokens` tokens:
        a scalar or an (M,) array shared by all samples, or a (K, M) array, one row each."""
        tokens = np.asarray(tokens, dtype=float)
        out, offset = [], 0
        for part in self.parts:
            k = len(part.rows)
            t = tokens[offset:offset + k] if tokens.ndim == 2 else np.atleast_1d(tokens)[None, :]
            acc = part.fit.accuracy(part.rows, params, t)
            flops = part.fit.scales.flops_per_param_token * params * t
            far = np.maximum(0.0, np.log(flops / self.fit.max_flops)) / part.distance
            shift = part.eps[:, None] * part.rate * far
            out.append(_shifted(acc, shift, part.fit.floor, part.fit.plateau(part.rows)[:, None]))
            offset += k
        return np.concatenate(out, axis=0)

    def threshold(self, absolute: float | None = None) -> np.ndarray:
        """Grok threshold per sample (K,): `absolute`, else half way from floor to plateau."""
        if absolute is not None:
            return np.full(self.size, float(absolute))
        return np.concatenate([p.fit.floor + 0.5 * (p.fit.plateau(p.rows) - p.fit.floor) for p in self.parts])

    def observed(self, accuracy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add measurement noise to model accuracy: what one evaluation of the target would
        read. Its size is the skill's checkpoint-to-checkpoint noise measured in the pilots
        (which includes the benchmark's finite-sample noise), else binomial over n items."""
        sigma = self.fit.noise
        if not (sigma is not None and math.isfinite(sigma)):
            if not self.fit.n_eval:
                return accuracy
            p = np.clip(accuracy, 0, 1)
            sigma = np.sqrt(p * (1 - p) / self.fit.n_eval)
        return np.clip(accuracy + rng.standard_normal(accuracy.shape) * sigma, 0, 1)

    def grok_tokens(self, params: float, threshold: np.ndarray, low: float, high: float) -> np.ndarray:
        """Per sample, the fewest tokens in [low, high] at which accuracy reaches `threshold`
        (K,): `low` if already there, inf if not reached by `high` (bisection in ln tokens)."""
        lo = np.full(self.size, math.log(low))
        hi = np.full(self.size, math.log(high))
        at = lambda x: self.accuracy(params, np.exp(x)[:, None])[:, 0] >= threshold  # noqa: E731
        reached, already = at(hi), at(lo)
        for _ in range(45):
            mid = 0.5 * (lo + hi)
            up = at(mid)
            hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
        out = np.exp(hi)
        out[already] = low
        out[~reached & ~already] = np.inf
        return out


def _shifted(acc: np.ndarray, shift: np.ndarray, floor: float, plateau: np.ndarray) -> np.ndarray:
    """Apply a logit shift to accuracy normalised between floor and plateau."""
    span = np.maximum(plateau - floor, 1e-9)
    q = np.clip((acc - floor) / span, 1e-9, 1 - 1e-9)
    return floor + span / (1 + np.exp(-(logit(q, eps=1e-9) + shift)))
