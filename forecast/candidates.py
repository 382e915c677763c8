"""Candidate models of one skill: a law, its accuracy floor and (for the two-step chain) the
intermediate it goes through; fitted by multi-start, polished and reported by lmfit,
bootstrapped in one batch.

A candidate predicts accuracy at any (N parameters, D tokens); FLOPs are C = κ·N·D with κ
the group's measured FLOPs per parameter-token (6 when runs give no FLOPs).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import lmfit
import numpy as np
import torch

from forecast.errors import FitError
from forecast.laws import ACCURACY_LAWS, LOSS_LAW, LOSS_LINK, Law
from forecast.observations import Observations
from forecast.optimize import DTYPE, least_squares_batched

ACCURACY_HUBER = 2.0
"""Huber threshold for accuracy residuals, in units of each point's noise: points more than
two standard deviations off a law count linearly, so a bad checkpoint cannot drag it."""
LOSS_HUBER = 1e-3
"""Huber threshold on log task-loss residuals (Hoffmann et al. 2022)."""
TWO_STEP = "two_step"


@dataclass(frozen=True)
class Scales:
    """Reference scales that make every law's parameters O(1); stored with the fit."""

    params: float  # N_ref, parameters (geometric mean of the pilot sizes)
    tokens: float  # D_ref, training tokens (geometric mean over fitted checkpoints)
    flops: float  # C_ref, training FLOPs (geometric mean over fitted checkpoints)
    flops_per_param_token: float  # κ in C = κ·N·D (6 for the 6ND rule)

    @classmethod
    def of(cls, obs: Observations) -> Scales:
        kappa = float(np.median(obs.flops / (obs.params * obs.tokens)))
        return cls(
            params=float(np.exp(np.mean(np.log(np.unique(obs.params))))),
            tokens=float(np.exp(np.mean(np.log(obs.tokens)))),
            flops=float(np.exp(np.mean(np.log(obs.flops)))),
            flops_per_param_token=kappa if math.isfinite(kappa) and kappa > 0 else 6.0,
        )

    def inputs(self, params: np.ndarray, tokens: np.ndarray, flops: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """Normalised law inputs for N parameters, D tokens (and C FLOPs, default κ·N·D)."""
        params, tokens = np.broadcast_arrays(np.asarray(params, float), np.asarray(tokens, float))
        flops = self.flops_per_param_token * params * tokens if flops is None else np.asarray(flops, float)
        as_row = lambda a: torch.as_tensor(np.atleast_2d(a), dtype=DTYPE)  # noqa: E731
        return {
            "x_params": as_row(np.log(params / self.params)),
            "x_tokens": as_row(np.log(tokens / self.tokens)),
            "x_flops": as_row(np.log(flops / self.flops)),
        }


@dataclass(frozen=True)
class Spec:
    """Which candidate: `law` (an accuracy law or "two_step"), `floor` ("chance" or
    "estimated"), `via` (the two-step intermediate: "own" task loss or a metric name)."""

    law: str
    floor: str = "chance"
    via: str | None = None

    @property
    def key(self) -> str:
        via = f",via={self.via}" if self.via else ""
        return f"{self.law}[floor={self.floor}{via}]"

    @property
    def param_names(self) -> tuple[str, ...]:
        if self.law == TWO_STEP:
            return tuple(f"loss.{n}" for n in LOSS_LAW.names) + tuple(f"link.{n}" for n in LOSS_LINK.names)
        return ACCURACY_LAWS[self.law].names


@dataclass(frozen=True, eq=False)
class CandidateFit:
    """A fitted candidate: point estimate `theta` (P,), lmfit standard errors, bootstrap
    `draws` (B, P), the floor used and, for two-step, the loss standardisation."""

    spec: Spec
    floor: float
    top: float
    scales: Scales
    theta: np.ndarray
    stderr: np.ndarray
    draws: np.ndarray
    converged: bool
    at_bound: tuple[str, ...]
    loss_ref: float = 0.0  # two-step: L_ref and L_scale standardise the intermediate loss
    loss_scale: float = 1.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def accuracy(self, theta: np.ndarray, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Accuracy (B, M) for parameter rows `theta` (B, P) at N = `params`, D = `tokens`."""
        return predict_accuracy(self.spec, np.atleast_2d(theta), self.floor, self.top, self.scales,
                                params, tokens, self.loss_ref, self.loss_scale)

    def plateau(self, theta: np.ndarray) -> np.ndarray:
        """Accuracy the law rises to, per parameter row (B,): floor + amp·(top − floor)."""
        theta = np.atleast_2d(theta)
        if self.spec.law in ("power_law", "log_linear"):
            amp = np.ones(len(theta))
        else:
            amp = theta[:, -1]
        return self.floor + amp * (self.top - self.floor)


def predict_accuracy(spec: Spec, theta: np.ndarray, floor: float, top: float, scales: Scales,
                     params: np.ndarray, tokens: np.ndarray, loss_ref: float = 0.0,
                     loss_scale: float = 1.0) -> np.ndarray:
    """Evaluate a candidate: accuracy of shape (B, M) at N parameters and D tokens."""
    x = scales.inputs(params, tokens)
    x["floor"] = torch.tensor(floor, dtype=DTYPE)
    x["top"] = torch.tensor(top, dtype=DTYPE)
    t = torch.as_tensor(theta, dtype=DTYPE)
    with torch.no_grad():
        if spec.law == TWO_STEP:
            loss = LOSS_LAW(t[:, :5], x)
            x["loss"] = (loss - loss_ref) / loss_scale
            return LOSS_LINK(t[:, 5:], x).numpy()
        return ACCURACY_LAWS[spec.law](t, x).numpy()


# ----------------------------------------------------------------------------- fitting


@dataclass(frozen=True, eq=False)
class _Problem:
    """One weighted robust regression: law inputs, targets, per-point noise scale, weights."""

    law: Law
    x: dict[str, torch.Tensor]  # tensors of shape (1, M) or (B, M)
    y: torch.Tensor
    scale: torch.Tensor
    weights: torch.Tensor  # (1, M) or (B, M)
    delta: float
    log_residual: bool = False

    def residuals(self, theta: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Scaled residuals (b, M) of problems `rows` at parameters `theta` (b, P)."""
        pick = lambda t: t if t.shape[0] == 1 else t[rows]  # noqa: E731
        x = {k: pick(v) if v.dim() == 2 else v for k, v in self.x.items()}
        pred = self.law(theta, x)
        y = pick(self.y)
        return (torch.log(pred) - torch.log(y)) if self.log_residual else (pred - y) / pick(self.scale)

    def point_weights(self, rows: torch.Tensor) -> torch.Tensor:
        return self.weights if self.weights.shape[0] == 1 else self.weights[rows]

    def solve(self, starts: np.ndarray, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solve from each start row (B, P) (each row is one problem): (theta, objective, converged)."""
        result = least_squares_batched(self.residuals, starts, self.law.lower, self.law.upper,
                                       weights=self.point_weights, huber_delta=self.delta, max_iter=max_iter)
        return result.theta, result.objective, result.converged

    def residuals_numpy(self, values: np.ndarray) -> np.ndarray:
        """Residuals for lmfit (row 0 of the data), already scaled and √weighted."""
        with torch.no_grad():
            theta = torch.as_tensor(values[None, :], dtype=DTYPE)
            x = {k: v[:1] if v.dim() == 2 else v for k, v in self.x.items()}
            pred = self.law(theta, x)
            if self.log_residual:
                r = torch.log(pred) - torch.log(self.y[:1])
            else:
                r = (pred - self.y[:1]) / self.scale[:1]
            return (r * self.weights[:1].sqrt()).numpy().ravel()


MAX_STARTS = 64
"""Start points solved per candidate: the grid's best by initial objective (the loss law's
grid has 1,024 points; solving all of them buys nothing measurable over its best 64)."""


def _best_start(problem: _Problem, law: Law) -> tuple[np.ndarray, bool]:
    grid = law.start_grid()
    if len(grid) > MAX_STARTS:
        initial = problem.solve(grid, max_iter=0)[1]
        grid = grid[np.argsort(np.where(np.isfinite(initial), initial, np.inf), kind="stable")[:MAX_STARTS]]
    theta, objective, converged = problem.solve(grid)
    finite = np.isfinite(objective)
    if not finite.any():
        raise FitError(f"{law.name}: the objective is not finite at any start")
    best = int(np.argmin(np.where(finite, objective, np.inf)))
    return theta[best], bool(converged[best])


def _polish(problem: _Problem, law: Law, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], bool]:
    """lmfit from the best batched start: the single-fit report (stderr, bounds hit)."""
    params = law.lmfit_parameters(start)
    with warnings.catch_warnings():  # a singular covariance only means "no stderr": reported as NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        result = lmfit.minimize(lambda p: problem.residuals_numpy(np.array([p[n].value for n in law.names])),
                                params, method="least_squares", loss="huber", f_scale=problem.delta)
    values = np.array([result.params[n].value for n in law.names])
    stderr = np.array([np.nan if result.params[n].stderr is None else result.params[n].stderr for n in law.names])
    at_bound = tuple(
        p.name for p, v in zip(law.params, values)
        if (math.isclose(v, p.lower, rel_tol=1e-6, abs_tol=1e-6) or math.isclose(v, p.upper, rel_tol=1e-6, abs_tol=1e-6))
        and not (p.name == "amp" and math.isclose(v, p.upper))  # a plateau at the top is no warning
    )
    # keep the better of the two optima (the batched one is sometimes closer to a bound)
    before, after = (float(np.sum(_rho(problem.residuals_numpy(v), problem.delta))) for v in (start, values))
    if not (after <= before * (1 + 1e-9)):
        values = start
    return values, stderr, at_bound, bool(result.success)


def _rho(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _accuracy_problem(law: Law, obs: Observations, scales: Scales, floor: float, noise: float,
                      weights: np.ndarray, y: np.ndarray, loss: np.ndarray | None = None) -> _Problem:
    x = scales.inputs(obs.params, obs.tokens, obs.flops)
    x["floor"] = torch.tensor(floor, dtype=DTYPE)
    x["top"] = torch.tensor(obs.top, dtype=DTYPE)
    if loss is not None:
        x["loss"] = torch.as_tensor(np.atleast_2d(loss), dtype=DTYPE)
    se = np.where(np.isfinite(obs.stderr), obs.stderr, 0.0)
    scale = np.sqrt(se**2 + noise**2).clip(min=1e-3)
    return _Problem(law=law, x=x, y=torch.as_tensor(np.atleast_2d(y), dtype=DTYPE),
                    scale=torch.as_tensor(scale[None, :], dtype=DTYPE),
                    weights=torch.as_tensor(np.atleast_2d(weights), dtype=DTYPE), delta=ACCURACY_HUBER)


def _loss_problem(obs: Observations, scales: Scales, loss: np.ndarray, weights: np.ndarray) -> _Problem:
    x = scales.inputs(obs.params, obs.tokens, obs.flops)
    return _Problem(law=LOSS_LAW, x=x, y=torch.as_tensor(np.array(np.atleast_2d(loss)), dtype=DTYPE),
                    scale=torch.ones(1, 1, dtype=DTYPE), weights=torch.as_tensor(np.atleast_2d(weights), dtype=DTYPE),
                    delta=LOSS_HUBER, log_residual=True)


def bootstrap_weights(obs: Observations, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Resampling weights, each (draws, M): `runs` counts how often each point's run was
    drawn when runs are resampled within each model size (seeds, reruns, budgets);
    `points` multiplies that by a multinomial resample of the checkpoints within each run."""
    runs = np.zeros((draws, len(obs)))
    points = np.zeros((draws, len(obs)))
    for size in obs.sizes:
        members = np.unique(obs.run[obs.params == size])
        picked = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=draws)
        for j, r in enumerate(members):
            idx = np.flatnonzero(obs.run == r)
            counts = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=draws)
            runs[:, idx] = picked[:, j : j + 1]
            points[:, idx] = picked[:, j : j + 1] * counts
    return runs, points


def fit_candidate(spec: Spec, obs: Observations, scales: Scales, *, floor: float, noise: float,
                  draws: int, rng: np.random.Generator, finals_only: bool = False) -> CandidateFit:
    """Fit one candidate to `obs` and bootstrap it `draws` times (0: no draws).

    With `finals_only`, laws in (N, D) see only each run's final checkpoint (and the
    bootstrap resamples runs), while the two-step chain's loss→accuracy link still uses
    every checkpoint: that relation does not depend on the learning-rate schedule.
    Evaluation noise enters the bootstrap by perturbing each accuracy by its stderr.
    Raises `FitError` when the candidate cannot be fitted to these observations."""
    law_points = obs.final if finals_only else np.ones(len(obs), dtype=bool)
    if draws:
        run_w, point_w = bootstrap_weights(obs, draws, rng)
        boot_w = run_w if finals_only else point_w
        se = np.where(np.isfinite(obs.stderr), obs.stderr, 0.0)
        boot_y = np.clip(obs.accuracy + rng.standard_normal((draws, len(obs))) * se, 0, 1)
    if spec.law == TWO_STEP:
        loss = obs.losses.get(spec.via) if spec.via else None
        if loss is None:
            raise FitError(f"no intermediate loss {spec.via!r}")
        ok = np.isfinite(loss)
        first = ok & law_points
        if first.sum() < 6 or np.any(loss[ok] <= 0) or len(np.unique(obs.params[first])) < 2:
            raise FitError(f"intermediate {spec.via!r} needs positive values at ≥ 6 checkpoints of ≥ 2 sizes")
        sub1, sub2 = obs.subset(first), obs.subset(ok)
        l1, l2 = loss[first], loss[ok]
        stage1 = _loss_problem(sub1, scales, l1, np.ones(len(sub1)))
        t1, _ = _best_start(stage1, LOSS_LAW)
        t1, se1, bound1, conv1 = _polish(stage1, LOSS_LAW, t1)
        loss_ref = float(np.median(l2))
        loss_scale = float(np.std(l2)) or 1.0
        z = (l2 - loss_ref) / loss_scale
        stage2 = _accuracy_problem(LOSS_LINK, sub2, scales, floor, noise, np.ones(len(sub2)), sub2.accuracy, z)
        t2, _ = _best_start(stage2, LOSS_LINK)
        t2, se2, bound2, conv2 = _polish(stage2, LOSS_LINK, t2)
        theta = np.concatenate([t1, t2])
        draws_out = np.empty((0, len(theta)))
        if draws:
            w1 = boot_w[:, first]
            d1, _, _ = _loss_problem(sub1, scales, np.broadcast_to(l1, w1.shape), w1).solve(np.repeat(t1[None], draws, 0))
            b2 = _accuracy_problem(LOSS_LINK, sub2, scales, floor, noise, point_w[:, ok], boot_y[:, ok], z)
            d2, _, _ = b2.solve(np.repeat(t2[None], draws, 0))
            draws_out = np.concatenate([d1, d2], axis=1)
        return CandidateFit(spec, floor, obs.top, scales, theta, np.concatenate([se1, se2]), draws_out,
                            conv1 and conv2, tuple(f"loss.{n}" for n in bound1) + tuple(f"link.{n}" for n in bound2),
                            loss_ref, loss_scale)
    law = ACCURACY_LAWS[spec.law]
    sub = obs.subset(law_points)
    if len(sub) < len(law.params):
        raise FitError(f"{law.name} has {len(law.params)} parameters and needs at least as many points, got {len(sub)}")
    problem = _accuracy_problem(law, sub, scales, floor, noise, np.ones(len(sub)), sub.accuracy)
    start, _ = _best_start(problem, law)
    theta, stderr, at_bound, converged = _polish(problem, law, start)
    draws_out = np.empty((0, len(theta)))
    if draws:
        boot = _accuracy_problem(law, sub, scales, floor, noise, boot_w[:, law_points], boot_y[:, law_points])
        draws_out, _, _ = boot.solve(np.repeat(theta[None], draws, 0))
    return CandidateFit(spec, floor, obs.top, scales, theta, stderr, draws_out, converged, at_bound)
