"""The loss law L(N, D) = E + A·N^−α + B·D^−β, fitted as in Hoffmann et al. (2022), approach 3.

Done the way the Epoch replication (Besiroglu et al. 2024) showed it must be: the Huber
loss (δ = 1e-3) of log-loss residuals, *summed* over points (a mean shrinks the gradient
and stops L-BFGS early), minimised by L-BFGS from every point of a full grid of starts,
keeping the best. The grid is solved as one batch (`forecast.fitting.optimize`). Parameter
intervals come from a bootstrap over the points, refitted from the best solution.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from forecast.errors import FitError
from forecast.fitting.laws import LOSS_LAW, Law, Named, Param, log_loss_law
from forecast.fitting.optimize import DTYPE, huber, minimize_batched
from forecast.quantities import FLOPS_PER_PARAM_TOKEN

DRAW_COLUMNS = ("E", "A", "B", "alpha", "beta")
"""Order of the columns of `LossLawFit.draws`."""
HUBER_DELTA = 1e-3
"""Huber threshold on log-loss residuals (Hoffmann et al. 2022, appendix D.2)."""

# Hoffmann et al.'s grid (appendix D.2), in raw units (N in parameters, D in tokens):
# α, β ∈ {0, .5, 1, 1.5, 2}; e ∈ {−1, −.5, 0, .5, 1}; a, b ∈ {0, 5, 10, 15, 20, 25}.
_RAW_LAW: Law = dataclasses.replace(
    LOSS_LAW,
    params=(
        Param("e", -5.0, 5.0, (-1.0, -0.5, 0.0, 0.5, 1.0), "ln E, the irreducible loss"),
        Param("a", -10.0, 60.0, (0.0, 5.0, 10.0, 15.0, 20.0, 25.0), "ln A (N in parameters)"),
        Param("alpha", 0.0, 5.0, (0.0, 0.5, 1.0, 1.5, 2.0), "exponent in parameters"),
        Param("b", -10.0, 60.0, (0.0, 5.0, 10.0, 15.0, 20.0, 25.0), "ln B (D in tokens)"),
        Param("beta", 0.0, 5.0, (0.0, 0.5, 1.0, 1.5, 2.0), "exponent in tokens"),
    ),
)


@dataclass(frozen=True)
class LossLawFit:
    """A fitted L(N, D) = E + A·N^−α + B·D^−β (N parameters, D tokens, L in the data's units).

    `intervals` maps each of E, A, B, alpha, beta to a (low, high) bootstrap interval at
    `level`; `n_points` is how many points were fitted; `draws` holds the bootstrap draws
    (B, 5), columns in `DRAW_COLUMNS` order, natural units."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    intervals: dict[str, tuple[float, float]]
    level: float
    n_points: int
    draws: np.ndarray = dataclasses.field(default_factory=lambda: np.empty((0, 5)))

    def predict(self, params: np.ndarray | float, tokens: np.ndarray | float) -> np.ndarray:
        """Loss at N parameters trained on D tokens (the law's one formula, `laws.log_loss_law`)."""
        params, tokens = np.broadcast_arrays(np.asarray(params, dtype=float), np.asarray(tokens, dtype=float))
        theta = torch.tensor([[math.log(self.E), math.log(self.A), self.alpha, math.log(self.B), self.beta]],
                             dtype=DTYPE)
        x = {"x_params": torch.as_tensor(np.log(params), dtype=DTYPE).reshape(1, -1),
             "x_tokens": torch.as_tensor(np.log(tokens), dtype=DTYPE).reshape(1, -1)}
        with torch.no_grad():
            out = torch.exp(log_loss_law(Named(theta, _RAW_LAW.names), x)).numpy()[0]
        return out.reshape(params.shape) if params.ndim else float(out[0])

    def compute_optimal(self, flops: float,
                        flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
        """(N, D) minimising L at C = κ·N·D FLOPs (Hoffmann et al. eq. 4)."""
        a = self.beta / (self.alpha + self.beta)
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        params = g * (flops / flops_per_param_token) ** a
        return params, flops / (flops_per_param_token * params)


def _objective(x: dict[str, torch.Tensor], log_loss: torch.Tensor, weights: torch.Tensor):
    def objective(theta: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        w = weights if len(weights) == 1 else weights[rows]
        residual = log_loss_law(Named(theta, _RAW_LAW.names), x) - log_loss
        return (w * huber(residual, HUBER_DELTA)).sum(-1)

    return objective


def fit_loss_law(
    params: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    *,
    bootstrap: int = 200,
    level: float = 0.8,
    seed: int = 0,
    starts: int | None = None,
    groups: np.ndarray | None = None,
    max_iter: int = 1000,
) -> LossLawFit:
    """Fit L(N, D) = E + A·N^−α + B·D^−β to losses of N-parameter models trained on D tokens.

    Hoffmann et al. approach 3: Huber (δ = 1e-3) on log residuals, summed, L-BFGS from the
    full 4,500-point grid; then `bootstrap` resamples of the points for `level` intervals.
    `starts`: optimise only from the grid's `starts` best points (the objective evaluated
    once on the whole grid): on the Chinchilla points the 20 best already reach the full
    grid's optimum, about 30× faster. `groups`: one label per point (the run it came from):
    the bootstrap then resamples whole groups, each point weighted by its group's count.
    `max_iter`: L-BFGS iterations per start (and per bootstrap draw).
    Raises `FitError` when fewer than 5 points or non-positive values are given."""
    n_, d_, l_ = (np.asarray(v, dtype=np.float64).ravel() for v in (params, tokens, loss))
    if not (len(n_) == len(d_) == len(l_)):
        raise ValueError("params, tokens and loss must have the same length")
    ok = np.isfinite(n_) & np.isfinite(d_) & np.isfinite(l_)
    n_, d_, l_ = n_[ok], d_[ok], l_[ok]
    labels = np.arange(len(ok))[ok] if groups is None else np.asarray(groups).ravel()[ok]
    if len(l_) < 5:
        raise FitError(f"the loss law has 5 parameters and needs at least 5 points, got {len(l_)}")
    if np.any(n_ <= 0) or np.any(d_ <= 0) or np.any(l_ <= 0):
        raise FitError("the loss law needs positive parameters, tokens and losses")
    x = {
        "x_params": torch.as_tensor(np.log(n_), dtype=DTYPE)[None, :],
        "x_tokens": torch.as_tensor(np.log(d_), dtype=DTYPE)[None, :],
    }
    log_loss = torch.as_tensor(np.log(l_), dtype=DTYPE)[None, :]
    grid = _RAW_LAW.start_grid()
    objective = _objective(x, log_loss, torch.ones_like(log_loss))
    if starts is not None and starts < len(grid):
        with torch.no_grad():
            at_grid = objective(torch.as_tensor(grid, dtype=DTYPE), torch.arange(len(grid))).numpy()
        grid = grid[np.argsort(np.where(np.isfinite(at_grid), at_grid, np.inf), kind="stable")[:max(starts, 1)]]
    result = minimize_batched(objective, grid, _RAW_LAW.lower, _RAW_LAW.upper, max_iter=max_iter)
    finite = np.isfinite(result.objective)
    if not finite.any():
        raise FitError("the loss law objective is not finite at any start")
    best = result.theta[int(np.nanargmin(np.where(finite, result.objective, np.inf)))]

    point = {k: float(v[0]) for k, v in _natural(best[None, :]).items()}
    if not bootstrap:
        return LossLawFit(**point, objective=float(np.nanmin(result.objective)), intervals={}, level=level,
                          n_points=len(l_))
    rng = np.random.default_rng(seed)
    unique, member = np.unique(labels, return_inverse=True)
    per_group = rng.multinomial(len(unique), np.full(len(unique), 1 / len(unique)), size=bootstrap)
    counts = per_group[:, member].astype(np.float64)
    boot = minimize_batched(_objective(x, log_loss, torch.as_tensor(counts, dtype=DTYPE)),
                            np.repeat(best[None, :], bootstrap, axis=0), _RAW_LAW.lower, _RAW_LAW.upper,
                            max_iter=max_iter)
    natural = _natural(boot.theta)
    tail = (1 - level) / 2
    intervals = {k: (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))) for k, v in natural.items()}
    draws = np.column_stack([natural[k] for k in DRAW_COLUMNS])
    return LossLawFit(**point, objective=float(np.nanmin(result.objective)), intervals=intervals,
                      level=level, n_points=len(l_), draws=draws)


BOUND_TOLERANCE = 1e-3
"""A raw parameter (ln E, ln A, α, ln B, β) this close to a bound of its box sits at it."""


def at_bounds(law: dict[str, float]) -> list[str]:
    """The law's parameters (E, A, B, alpha, beta, natural units) that sit at a bound of the
    fit's box (`_RAW_LAW`), as `name=value (its lower/upper bound)` phrases: the optimiser
    stopped at the edge, so the value is a limit, not an estimate."""
    raw = {"e": math.log(law["E"]), "a": math.log(law["A"]), "alpha": law["alpha"], "b": math.log(law["B"]),
           "beta": law["beta"]}
    natural = {"e": "E", "a": "A", "alpha": "alpha", "b": "B", "beta": "beta"}
    out = []
    for p in _RAW_LAW.params:
        value = law[natural[p.name]]
        for side, edge in (("lower", p.lower), ("upper", p.upper)):
            if abs(raw[p.name] - edge) <= BOUND_TOLERANCE * max(1.0, abs(edge)):
                shown = "0" if abs(value) < 1e-6 else f"{value:.4g}"
                out.append(f"{natural[p.name]}={shown} (its {side} bound)")
    return out


def _natural(theta: np.ndarray) -> dict[str, np.ndarray]:
    """Parameters in natural units from the law's (ln E, ln A, α, ln B, β), by name."""
    col = lambda name: _RAW_LAW.column(theta, name)  # noqa: E731
    return {"E": np.exp(col("e")), "A": np.exp(col("a")), "B": np.exp(col("b")), "alpha": col("alpha"),
            "beta": col("beta")}
