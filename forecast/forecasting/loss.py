"""Loss forecasts from a `LossFit`: the loss itself at a target (N, D), and the compute
that reaches a target loss.

Each forecast reads K samples of the loss surface; sample i is
    L_i(N, D) = law_i(N·e^−u, D·e^−u) · exp(z_i · scatter),  u = min(ε_i · drift, MAX_SHIFT) · far(N, D)
with law_i a bootstrap draw (runs resampled), ε_i, z_i standard normals, `drift` the
hold-out's extrapolation error (a shift of scale per e-fold, `forecast.fitting.loss_fit`), far(N, D)
how many e-folds the target lies beyond the runs (in parameters or compute, whichever is
further; 0 inside them) and `scatter` the run-to-run spread around the law. The error
moves each sample along its own curve, so every sample still falls with scale towards its
irreducible loss, and `plan` can search it. So the interval is what one training run
of that size would measure: the law's uncertainty, growing with the distance extrapolated,
plus run-to-run noise. `loss` is the fitted law's own value (Hoffmann et al. 2022,
approach 3), the number a published fit would quote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from forecast.forecasting.budget import training_budget, unphysical
from forecast.errors import UsageError
from forecast.fitting.loss_fit import LossFit
from forecast.forecasting.predict import Interval, check_level, check_tokens_per_param
from forecast.quantities import format_count, format_flops
from forecast.forecasting.samples import first_reaching
from forecast.fitting.reach import MAX_EXTRAPOLATION, extrapolation_distance
from forecast.schema.outputs import LossForecastJson, LossPlanJson, finite
from forecast.fitting.status import Note, NoteCode

SAMPLES = 4000
MAX_SHIFT = 0.45
"""A sample's shift of scale grows by at most this many e-folds per e-fold extrapolated, so
that its loss still falls with scale (a compute-optimal model's N and D each grow by about
half an e-fold per e-fold of compute)."""
MAX_FLOPS = 1e32
"""`plan --loss` searches compute up to this many FLOPs, and no further than
`reach.MAX_EXTRAPOLATION` beyond the largest run."""
FORECAST = "predicted"
OUT_OF_RANGE = "out-of-range"
NOT_PREDICTABLE = "not-predictable"


@dataclass(frozen=True)
class LossForecast:
    """One loss series forecast for one target. `loss` and `interval` are None when no
    number can be given (`status` not `predicted`, with the reason)."""

    metric: str
    kind: str  # "metric" (run-level) or "task" (a skill's task loss)
    family: str
    recipe: str
    params: float
    tokens: float
    flops: float
    tokens_source: str
    status: str  # "predicted" | "out-of-range" | "not-predictable"
    loss: float | None  # the fitted law's value at the target
    interval: Interval | None  # median and central interval of what a run would measure
    level: float
    extrapolation: float | None  # target FLOPs / largest run's FLOPs
    law: dict[str, float] | None
    reason: str | None = None
    notes: tuple[Note, ...] = field(default_factory=tuple)

    def to_json(self) -> LossForecastJson:
        return {
            "metric": self.metric, "kind": self.kind, "family": self.family, "recipe": self.recipe,
            "params": self.params, "tokens": self.tokens, "flops": self.flops, "tokens_source": self.tokens_source,
            "status": self.status, "loss": finite(self.loss),
            "interval": None if self.interval is None else self.interval.to_json(), "level": self.level,
            "extrapolation": finite(self.extrapolation), "law": self.law, "reason": self.reason,
            "notes": [n.to_json() for n in self.notes],
        }


@dataclass(frozen=True)
class LossPlan:
    """The smallest training compute whose compute-optimal model reaches `target` loss."""

    metric: str
    family: str
    recipe: str
    target: float
    level: float
    status: str  # "reachable" | "already-reached" | "not-reachable" | "not-predictable"
    reachable: float  # share of samples that reach the target below `horizon`
    flops: Interval | None
    params: float | None  # compute-optimal split at the median compute (the fitted law's)
    tokens: float | None
    reason: str | None = None
    horizon: float = MAX_FLOPS  # the compute searched up to (FLOPs)

    def to_json(self) -> LossPlanJson:
        return {
            "metric": self.metric, "family": self.family, "recipe": self.recipe, "target": self.target,
            "level": self.level, "status": self.status, "reachable": self.reachable,
            "flops": None if self.flops is None else self.flops.to_json(), "params": finite(self.params),
            "tokens": finite(self.tokens), "tokens_per_param": finite(None if self.params is None or self.tokens is None
                                                                      else self.tokens / self.params),
            "max_flops": self.horizon, "reason": self.reason,
        }


# ---------------------------------------------------------------------------- selection


def select_losses(fits: Sequence[LossFit], family: str | None = None, recipe: str | None = None,
                  metrics: Sequence[str] | None = None) -> list[LossFit]:
    """The loss fits of one (family, recipe) group, by metric name (case-insensitive; None
    or `all`: every one); `UsageError` naming what the fits hold otherwise."""
    if not fits:
        raise UsageError("these fits hold no loss fit: the runs logged no loss (import a loss metric, e.g. "
                         "`forecast import long --loss-metrics loss`, and re-run `forecast fit`)")
    present = sorted({(f.family, f.recipe) for f in fits})
    chosen = [g for g in present if (family is None or g[0] == family) and (recipe is None or g[1] == recipe)]
    listing = ", ".join(f"`family={f!r}` `recipe={r!r}`" for f, r in present)
    if len(chosen) != 1:
        raise UsageError(f"no loss fits for family={family!r} recipe={recipe!r}; the fits hold: {listing}" if not chosen
                         else f"the loss fits hold several groups; choose one with {listing}")
    members = {f.metric.lower(): f for f in fits if (f.family, f.recipe) == chosen[0]}
    if not metrics or any(m.lower() == "all" for m in metrics):
        return list(members.values())
    unknown = [m for m in metrics if m.lower() not in members]
    if unknown:
        raise UsageError(f"`metrics={unknown[0]!r}`: no loss fit of that name; the loss fits are: "
                         f"{', '.join(sorted(f.metric for f in members.values()))}", parameter="metrics")
    return [members[m.lower()] for m in dict.fromkeys(metrics)]


# ---------------------------------------------------------------------------- samples


def loss_samples(fit: LossFit, params: np.ndarray | float, tokens: np.ndarray | float, *, samples: int = SAMPLES,
                 seed: int = 0) -> np.ndarray:
    """Samples (K, M) of what a run of N = `params` parameters after D = `tokens` tokens
    would measure (module docstring). `params`, `tokens`: scalars, (M,) or (K, M)."""
    rng = np.random.default_rng(seed)
    draws = fit.draws if len(fit.draws) else np.array([[fit.law[k] for k in ("E", "A", "B", "alpha", "beta")]])
    rows = draws[np.arange(samples) % len(draws)]
    eps, noise = rng.standard_normal(samples), rng.standard_normal(samples)
    return _surface(fit, rows, eps, noise, params, tokens)


def _surface(fit: LossFit, rows: np.ndarray, eps: np.ndarray, noise: np.ndarray, params, tokens) -> np.ndarray:
    """Samples (K, M) for sample rows (K, 5), normals ε and z (K,), at N = `params`, D =
    `tokens`: scalars, (M,) shared by every sample, or (K, M)."""
    n, d = (np.asarray(v, float) for v in (params, tokens))
    n, d = (a if a.ndim == 2 else np.atleast_1d(a)[None, :] for a in (n, d))
    col = lambda j: rows[:, j:j + 1]  # noqa: E731
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        far = extrapolation_distance(n, fit.flops_per_param_token * n * d, max(fit.sizes), fit.max_flops)
        scale = np.exp(-np.minimum(eps[:, None] * fit.drift, MAX_SHIFT) * far)
        law = col(0) + col(1) * (n * scale) ** -col(3) + col(2) * (d * scale) ** -col(4)
    return law * np.exp(noise[:, None] * fit.scatter)


# ---------------------------------------------------------------------------- forecasts


def resolve_loss_budget(fit: LossFit, params: float, tokens: float | None, flops: float | None,
                        tokens_per_param: float | None) -> tuple[float, float, str]:
    """(tokens, FLOPs, how the tokens were chosen), by the rule skills use (`forecast.forecasting.budget`)."""
    return training_budget(params, fit.flops_per_param_token, tokens, flops, tokens_per_param,
                           [max(r.tokens) / r.params for r in fit.runs])


def predict_loss(fit: LossFit, params: float, *, tokens: float | None = None, flops: float | None = None,
                 level: float = 0.8, tokens_per_param: float | None = None, seed: int = 0) -> LossForecast:
    """Forecast one loss series at N = `params` trained on `tokens` (or `flops`, or
    `tokens_per_param`·N)."""
    check_level(level)
    check_tokens_per_param(tokens_per_param)
    if not (math.isfinite(params) and params > 0):
        raise UsageError(f"`params` must be a positive number of parameters; got {params}", parameter="params")
    tokens, flops, source = resolve_loss_budget(fit, params, tokens, flops, tokens_per_param)
    extrapolation = flops / fit.max_flops if math.isfinite(fit.max_flops) and fit.max_flops > 0 else None
    base = dict(metric=fit.metric, kind=fit.kind, family=fit.family, recipe=fit.recipe, params=params, tokens=tokens,
                flops=flops, tokens_source=source, level=level, extrapolation=extrapolation, law=fit.law)
    if not fit.predictable:
        return LossForecast(status=NOT_PREDICTABLE, loss=None, interval=None, reason=fit.reason, **base)
    distance = float(extrapolation_distance(params, flops, max(fit.sizes), fit.max_flops))
    if distance > MAX_EXTRAPOLATION:
        return LossForecast(status=OUT_OF_RANGE, loss=None, interval=None, reason=(
            f"the target lies {distance:.1f} e-folds beyond the largest run (×{math.exp(distance):.3g} in parameters "
            f"or compute); beyond {MAX_EXTRAPOLATION:.1f} e-folds (×{math.exp(MAX_EXTRAPOLATION):.0e}) the fitted law "
            "says nothing"), **base)
    value = float(fit.law_fit().predict(params, tokens))
    interval = Interval.of(loss_samples(fit, params, tokens, seed=seed)[:, 0], level)
    notes = list(fit.notes)
    if extrapolation is not None and extrapolation > 100:
        notes.append(Note(NoteCode.FAR, f"the target's compute is {extrapolation:.3g}× the largest run's: a long "
                          "extrapolation, read the interval, not the median"))
    if params < min(fit.sizes):
        notes.append(Note(NoteCode.SMALLER, "the target is smaller than every run fitted"))
    return LossForecast(status=FORECAST, loss=value, interval=interval, notes=tuple(notes), **base)


def plan_loss(fit: LossFit, target: float, *, level: float = 0.8, seed: int = 0) -> LossPlan:
    """The smallest compute whose compute-optimal model reaches `target` loss, with an
    interval over the same samples `predict_loss` reads, and the N/D split there."""
    check_level(level)
    if not (math.isfinite(target) and target > 0):
        raise UsageError(f"`target` must be a positive loss; got {target}", parameter="target")
    base = dict(metric=fit.metric, family=fit.family, recipe=fit.recipe, target=target, level=level)
    if not fit.predictable:
        return LossPlan(status="not-predictable", reachable=0.0, flops=None, params=None, tokens=None,
                        reason=fit.reason, **base)
    law = fit.law_fit()
    low = min(min(r.flops) for r in fit.runs) / 1e3
    rng = np.random.default_rng(seed)
    draws = fit.draws if len(fit.draws) else np.array([[fit.law[k] for k in ("E", "A", "B", "alpha", "beta")]])
    rows = draws[np.arange(SAMPLES) % len(draws)]
    eps, noise = rng.standard_normal(SAMPLES), rng.standard_normal(SAMPLES)
    high = min(MAX_FLOPS, fit.max_flops * math.exp(MAX_EXTRAPOLATION))  # no law says anything further out
    needed = first_reaching(lambda c: _optimal_at(fit, rows, eps, noise, c) <= target, SAMPLES, low, high)
    reachable = float(np.mean(np.isfinite(needed)))
    flops = Interval.of(needed, level)
    if not math.isfinite(flops.median):
        return LossPlan(status="not-reachable", reachable=reachable, flops=None, params=None, tokens=None, reason=(
            f"fewer than half the samples reach {target:g} within {format_flops(high)} FLOPs, "
            f"{math.exp(MAX_EXTRAPOLATION):.0e}× the largest run (the fitted irreducible loss E is {fit.law['E']:.4g})"),
            horizon=high, **base)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        n, d = law.compute_optimal(flops.median, fit.flops_per_param_token)
    why_not = unphysical(n, d)
    split = "" if why_not is None else (
        f"; no N, D split is given: the law's compute-optimal model there has {why_not} "
        f"(α = {fit.law['alpha']:.3g}, β = {fit.law['beta']:.3g})")
    n, d = (None, None) if why_not else (n, d)
    weak = "; ".join(n.message.split(": ")[0] for n in fit.notes if n.code in (NoteCode.AT_BOUND, NoteCode.NOISY))
    weak = f"; a weak law ({weak}): read the interval" if weak else ""
    best = min(fit.runs, key=lambda r: min(r.loss))
    if min(best.loss) <= target:
        smallest = min(min(r.flops) for r in fit.runs)
        below = flops.median < smallest  # the law read below every run: a bound, not a number
        reached = (f"run {best.name} already reached {min(best.loss):.4g} ({format_count(best.params)} params, "
                   f"{format_flops(max(best.flops))} FLOPs)")
        if below:
            return LossPlan(status="already-reached", reachable=reachable, flops=None, params=None, tokens=None,
                            reason=f"{reached}; the law puts {target:g} below the smallest run's "
                            f"{format_flops(smallest)} FLOPs, where it was not measured", horizon=high, **base)
        return LossPlan(status="already-reached", reachable=reachable, flops=flops, params=n, tokens=d,
                        reason=reached + split + weak, horizon=high, **base)
    return LossPlan(status="reachable", reachable=reachable, flops=flops, params=n, tokens=d,
                    reason=(split + weak).removeprefix("; ") or None, horizon=high, **base)


def _optimal_at(fit: LossFit, rows: np.ndarray, eps: np.ndarray, noise: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """Per sample (K,), the loss of its compute-optimal model at `flops` (K,) FLOPs under
    that sample's law (Hoffmann et al. 2022 eq. 4: N* = G·(C/κ)^(β/(α+β)))."""
    _, a, b, alpha, beta = rows.T
    kappa = fit.flops_per_param_token
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
        n = g * (flops / kappa) ** (beta / (alpha + beta))
        return _surface(fit, rows, eps, noise, n[:, None], (flops / (kappa * n))[:, None])[:, 0]
