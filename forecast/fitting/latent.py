"""Skills that move together: a latent-capability law for tables of final checkpoints
across families (leaderboards), after Observational Scaling Laws (Ruan et al. 2024: a few
capability components shared by all benchmarks) and Sloth (Polo et al. 2025: latent skills
linear in log size, with a per-family efficiency).

Each model m of family f(m) trained with C FLOPs has K latent capabilities, each linear in
log compute with the family's own offset (its efficiency):

    S_k(m) = α_{f,k} + ln(C / C_ref)

(C from the table, else 6·N·D, else 6·N² times the family's median tokens per parameter,
else the table's: `model_flops`).

and every benchmark b is a sigmoid of them between its chance floor and its top:

    acc_b(m) = floor_b + (top_b − floor_b)·σ(c_b + Σ_k w_{b,k}·S_k(m)).

So a benchmark's slope in log compute (Σ_k w_{b,k}) is shared by all families, and a family's
offset on it (Σ_k w_{b,k}·α_{f,k}) is tied to its offsets on every other benchmark: a family
that is ahead on MMLU and ARC is ahead on GSM8K by as much as GSM8K's loadings say, and a
benchmark that other families crossed at some size is crossed by this family where its
offset puts it. The forecast for a model names the families it borrowed from.

Fitted by least squares (scipy) with a weak ridge on the family offsets (`RIDGE`), which a
family of one or two members leans on; intervals from a bootstrap over models plus each
benchmark's residual scatter (`LatentFit.predict`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from forecast.errors import DataError, UsageError
from forecast.runs.model import Run

RIDGE = 0.05
"""Ridge on the family offsets α (per unit of accuracy residual): a family with few members
is pulled towards the average family rather than fitted to its noise."""
SHRINK = 0.3
"""A family's own residual on a benchmark is carried to its next model shrunk by n/(n + SHRINK)
(n its models on the benchmark): persistence of what the shared law misses about it."""
RECENCY = 2.0
"""How much more a family's larger members count in its residual, per e-fold of compute:
what the shared law misses about a family persists from its latest model more than from its
older ones (leaderboard, each family's largest member from the rest: MAE / carried-over 0.80
with all alike, 0.68 at 1, 0.65 at 3)."""
EXTRAPOLATION_ERROR = 0.02
"""Accuracy error per e-fold of compute beyond the family's largest model (a prior, as
`forecast.fitting.selection.PRIOR_ERROR` is for one family's laws), Student-t with
`EXTRAPOLATION_DOF` degrees of freedom, added to the residual scatter."""
EXTRAPOLATION_DOF = 3.0
LATENTS = 1
"""Latent capabilities by default; Ruan et al. find 1–3 explain most of a leaderboard."""
DRAWS = 40
"""Bootstrap refits (models resampled with replacement) for the intervals."""


@dataclass(frozen=True)
class LatentForecast:
    """One benchmark's forecast for one model: median and interval (accuracy), and the
    families whose models the law learnt from besides the model's own."""

    skill: str
    family: str
    params: float
    median: float
    low: float
    high: float
    borrowed_from: tuple[str, ...]


@dataclass(frozen=True)
class LatentFit:
    """A fitted latent-capability law over a table: families, benchmarks, parameters
    (`alpha` (F, K), `loadings` (B, K), `bias` (B,)), floors and tops per benchmark, the
    residual scatter per benchmark, and bootstrap draws of the parameter vector."""

    families: tuple[str, ...]
    skills: tuple[str, ...]
    latents: int
    flops_ref: float  # C_ref, FLOPs (geometric mean over the table)
    tokens_per_param: dict[str, float]  # median per family (and "" for the table), for models without FLOPs
    alpha: np.ndarray
    loadings: np.ndarray
    bias: np.ndarray
    floor: np.ndarray
    top: np.ndarray
    residual: np.ndarray  # RMS residual per benchmark (accuracy)
    family_residual: np.ndarray  # (F, B) the family's mean residual on each benchmark, shrunk (`SHRINK`)
    family_flops: np.ndarray  # (F,) the largest training compute of each family's models (FLOPs)
    draws: np.ndarray  # (D, P) bootstrap parameter vectors
    models: int  # table rows fitted

    def predict(self, family: str, params: float, tokens: float | None = None, skills: Sequence[str] | None = None,
                level: float = 0.8, seed: int = 0) -> list[LatentForecast]:
        """Forecasts for a model of `family` with `params` parameters trained on `tokens`
        (None: the family's usual tokens per parameter). The family must be in the table:
        its offset is what places it."""
        if family not in self.families:
            raise UsageError(f"family {family!r} is not in the table the law was fitted on", parameter="family")
        names = list(self.skills) if skills is None else list(skills)
        unknown = [s for s in names if s not in self.skills]
        if unknown:
            raise UsageError(f"skill {unknown[0]!r} is not in the table", parameter="skills")
        f = self.families.index(family)
        ratio = self.tokens_per_param.get(family, self.tokens_per_param[""])
        x = math.log(6 * params * (tokens if tokens is not None else ratio * params) / self.flops_ref)
        rng = np.random.default_rng(seed)
        tail = (1 - level) / 2
        out = []
        for name in names:
            b = self.skills.index(name)
            shift = self.family_residual[f, b]  # what this family does on b beyond the latent law
            point = float(np.clip(_accuracy(self._unpack(self._pack()), f, b, x, self.floor, self.top) + shift, 0, 1))
            samples = np.array([_accuracy(self._unpack(d), f, b, x, self.floor, self.top) + shift
                                for d in self.draws]) if len(self.draws) else np.full(1, point)
            reps = max(1, 2000 // len(samples))
            reach = max(0.0, x - math.log(self.family_flops[f] / self.flops_ref))  # e-folds beyond the family
            noisy = np.repeat(samples, reps) + rng.standard_normal(len(samples) * reps) * self.residual[b] \
                + rng.standard_t(EXTRAPOLATION_DOF, len(samples) * reps) * EXTRAPOLATION_ERROR * reach
            noisy = np.clip(noisy, 0.0, 1.0)
            low, high = np.quantile(noisy, [tail, 1 - tail])
            out.append(LatentForecast(skill=name, family=family, params=float(params), median=float(point),
                                      low=float(min(low, point)), high=float(max(high, point)),
                                      borrowed_from=tuple(fam for fam in self.families if fam != family)))
        return out

    def log_flops(self, run: Run) -> float:
        """ln(C / C_ref) of a table row (`model_flops`, with this fit's tokens per parameter)."""
        return math.log(model_flops(run, self.tokens_per_param) / self.flops_ref)

    def point(self, family: str, skill: str, log_flops: float) -> float:
        """The law's accuracy for `family` on `skill` at ln(C / C_ref) = `log_flops`, with the
        family's own residual on it (`family_residual`), clipped to [0, 1]."""
        f, b = self.families.index(family), self.skills.index(skill)
        return float(np.clip(_accuracy(self._unpack(self._pack()), f, b, log_flops, self.floor, self.top)
                             + self.family_residual[f, b], 0.0, 1.0))

    def logit_line(self, family: str, skill: str, theta: np.ndarray | None = None) -> tuple[float, float]:
        """(intercept, slope) of the logit of `skill` for `family` in ln(C / C_ref): what the
        law reduces to for one family and benchmark, under parameter vector `theta` (a
        bootstrap draw; None: the point estimate)."""
        alpha, loadings, bias = self._unpack(self._pack() if theta is None else theta)
        f, b = self.families.index(family), self.skills.index(skill)
        return float(bias[b] + loadings[b] @ alpha[f]), float(loadings[b].sum())

    def _pack(self) -> np.ndarray:
        return np.concatenate([self.alpha.ravel(), self.loadings.ravel(), self.bias])

    def _unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _unpack(theta, len(self.families), len(self.skills), self.latents)


def _unpack(theta: np.ndarray, families: int, skills: int, latents: int):
    a = families * latents
    w = skills * latents
    return theta[:a].reshape(families, latents), theta[a:a + w].reshape(skills, latents), theta[a + w:a + w + skills]


def _accuracy(parts, f, b, x, floor, top):
    alpha, loadings, bias = parts
    logit = bias[b] + loadings[b] @ (alpha[f] + x)
    return float(floor[b] + (top[b] - floor[b]) / (1 + math.exp(-np.clip(logit, -50, 50))))


def table(runs: Sequence[Run], skills: Sequence[str] | None = None):
    """The table a latent law is fitted on: one row per run (its final checkpoint), the
    accuracy of each skill (NaN where missing), family indices, floors, tops."""
    names = sorted({s for r in runs for s in r.skills}) if skills is None else list(skills)
    families = tuple(sorted({r.family for r in runs}))
    acc = np.full((len(runs), len(names)), np.nan)
    floor = np.zeros(len(names))
    top = np.ones(len(names))
    for i, r in enumerate(runs):
        for j, s in enumerate(names):
            series = r.series.get(s)
            if series is not None and series.accuracy is not None and len(series.accuracy):
                acc[i, j] = float(series.accuracy[np.argmax(series.tokens) if np.isfinite(series.tokens).any() else -1])
                floor[j] = series.chance or 0.0
                top[j] = series.ceiling or 1.0
    fam = np.array([families.index(r.family) for r in runs])
    return names, families, fam, acc, floor, top


def tokens_per_param(runs: Sequence[Run]) -> dict[str, float]:
    """Median training tokens per parameter per family where known, and the table's ("")."""
    known: dict[str, list[float]] = {}
    for r in runs:
        if math.isfinite(r.final_tokens) and r.final_tokens > 0:
            known.setdefault(r.family, []).append(r.final_tokens / r.params)
            known.setdefault("", []).append(r.final_tokens / r.params)
    out = {k: float(np.median(v)) for k, v in known.items()}
    out.setdefault("", 20.0)  # no tokens anywhere: the compute-optimal ratio (Hoffmann et al. 2022)
    return out


def model_flops(run: Run, ratios: dict[str, float]) -> float:
    """Training FLOPs of a table row: given, else 6·N·D, else from tokens per parameter."""
    if math.isfinite(run.final_flops) and run.final_flops > 0:
        return float(run.final_flops)
    tokens = run.final_tokens if math.isfinite(run.final_tokens) and run.final_tokens > 0 else \
        ratios.get(run.family, ratios[""]) * run.params
    return 6.0 * run.params * tokens


def fit_latent(runs: Sequence[Run], skills: Sequence[str] | None = None, latents: int = LATENTS,
               draws: int = DRAWS, seed: int = 0, start: LatentFit | None = None) -> LatentFit:
    """Fit the latent-capability law to final checkpoints of `runs` (one model each; see
    module docstring). `DataError` when the table has too few models for its parameters.
    `start`: a fit of the same families, benchmarks and latents to start from (a refit of
    the table less a few models: one warm start instead of several cold ones)."""
    if latents < 1:
        raise UsageError("`latents` must be >= 1 (the number of latent capabilities)")
    names, families, fam, acc, floor, top = table(runs, skills)
    ratios = tokens_per_param(runs)
    flops = np.array([model_flops(r, ratios) for r in runs])
    observed = np.isfinite(acc)
    n_params = len(families) * latents + len(names) * (latents + 1)
    if observed.sum() <= n_params or len(names) < 2:
        raise DataError(None, "runs", f"{int(observed.sum())} scores for {n_params} parameters of the latent law",
                        "give a table of several families and benchmarks")
    ref = float(np.exp(np.mean(np.log(flops))))
    x = np.log(flops / ref)
    warm = start._pack() if start is not None and start.families == families and start.skills == tuple(names) \
        and start.latents == latents else None
    theta = _solve(fam, x, acc, observed, floor, top, len(families), len(names), latents, warm, seed)
    parts = _unpack(theta, len(families), len(names), latents)
    pred = _predict_all(parts, fam, x, floor, top)
    residual = np.array([math.sqrt(np.nanmean((acc[:, b] - pred[:, b]) ** 2)) if observed[:, b].any() else 0.05
                         for b in range(len(names))])
    family_residual = np.zeros((len(families), len(names)))
    for f in range(len(families)):
        for b in range(len(names)):
            rows = (fam == f) & observed[:, b]
            r = (acc[:, b] - pred[:, b])[rows]
            if len(r):  # recent members count more: RECENCY per e-fold of compute
                w = np.exp(RECENCY * (x[rows] - x[rows].max()))
                family_residual[f, b] = float((w * r).sum() / w.sum() * len(r) / (len(r) + SHRINK))
    rng = np.random.default_rng(seed)
    boot = []
    for d in range(draws):
        rows = rng.integers(0, len(fam), len(fam))
        mask = np.zeros_like(observed)
        np.add.at(mask, rows, observed[rows])
        weights = mask.astype(float)  # each row counted as often as it was drawn
        boot.append(_solve(fam, x, acc, weights > 0, floor, top, len(families), len(names), latents, theta, seed + d,
                           weights=weights))
    return LatentFit(families=families, skills=tuple(names), latents=latents, flops_ref=ref, tokens_per_param=ratios,
                     alpha=parts[0],
                     loadings=parts[1], bias=parts[2], floor=floor, top=top, residual=residual,
                     family_residual=family_residual,
                     family_flops=np.array([flops[fam == f].max() for f in range(len(families))]),
                     draws=np.array(boot) if boot else np.zeros((0, len(theta))), models=len(fam))


def _predict_all(parts, fam, x, floor, top):
    alpha, loadings, bias = parts
    logit = bias[None, :] + (alpha[fam] + x[:, None]) @ loadings.T
    return floor + (top - floor) / (1 + np.exp(-np.clip(logit, -50, 50)))


def _solve(fam, x, acc, observed, floor, top, n_fam, n_skill, latents, start, seed, weights=None):
    """Least squares over the observed cells, ridge on α; several starts unless warm."""
    rows, cols = np.nonzero(observed)
    target = acc[rows, cols]
    w = np.sqrt(weights[rows, cols]) if weights is not None else np.ones(len(rows))

    def residuals(theta):
        alpha, loadings, bias = _unpack(theta, n_fam, n_skill, latents)
        s = alpha[fam[rows]] + x[rows, None]
        logit = bias[cols] + np.sum(loadings[cols] * s, axis=1)
        pred = floor[cols] + (top[cols] - floor[cols]) / (1 + np.exp(-np.clip(logit, -50, 50)))
        return np.concatenate([w * (pred - target), RIDGE * alpha.ravel()])

    rng = np.random.default_rng(seed)
    starts = [start] if start is not None else [
        np.concatenate([np.zeros(n_fam * latents), rng.normal(0.5, 0.2, n_skill * latents), np.zeros(n_skill)])
        for _ in range(3)]
    best = None
    for s0 in starts:
        result = least_squares(residuals, s0, method="trf", max_nfev=400 if start is None else 150)
        if best is None or result.cost < best.cost:
            best = result
    return best.x
