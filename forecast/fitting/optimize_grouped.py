"""Batched Levenberg–Marquardt for grouped problems: least squares whose points repeat their
inputs (the seeds of a sweep at one size and budget), the law evaluated once per distinct
input. The steps are `forecast.fitting.optimize`'s, so both solvers stop alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from forecast.fitting.optimize import (
    DTYPE, BatchResult, Tensor, _lm_accept, _lm_step, from_unconstrained, huber, to_unconstrained,
)


class GroupedProblem(Protocol):
    """Least-squares problems whose M points share U ≤ M distinct inputs (seeds of one size
    and budget): the model is evaluated per input, the residuals per point."""

    def grouped_at(self, rows: Tensor | None) -> tuple[Callable[[Tensor], Tensor], Tensor, Tensor, Tensor, Tensor]:
        """For problems `rows` (None: all): model (…, b, P) → (…, b, U), and per point the
        target, scale, weight and input column, each (b, M) or (1, M)."""


def least_squares_grouped(
    problem: GroupedProblem,
    theta0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    huber_delta: float | None = None,
    max_iter: int = 100,
    ftol: float = 1e-10,
) -> BatchResult:
    """`least_squares_batched` for grouped problems, the same objective Σ w·ρ((f − t)/s) over
    every point: the model and its Jacobian are evaluated once per distinct input, and the
    points' (IRLS-weighted) contributions to JᵀWJ and JᵀWr are summed per input first, so
    a step costs U law evaluations and a few passes over the M points."""
    with torch.no_grad():
        lo = torch.as_tensor(lower, dtype=DTYPE)
        hi = torch.as_tensor(upper, dtype=DTYPE)
        u = to_unconstrained(theta0, np.asarray(lower), np.asarray(upper))
        batch, dim = u.shape
        eye = torch.eye(dim, dtype=DTYPE)

        def per_point(f: Tensor, index: Tensor) -> Tensor:
            return torch.gather(f, -1, index.expand(f.shape[0], index.shape[-1]))

        def cost(f: Tensor, target: Tensor, scale: Tensor, w: Tensor, index: Tensor) -> Tensor:
            r = (per_point(f, index) - target) / scale
            rho = 0.5 * r * r if huber_delta is None else huber(r, huber_delta)
            c = (w * rho).sum(-1)
            return torch.where(torch.isfinite(c), c, torch.full_like(c, torch.inf))

        model, *data = problem.grouped_at(None)
        f = cost(model(from_unconstrained(u, lo, hi)), *data)
        lam = torch.full((batch,), 1e-3, dtype=DTYPE)
        active = torch.isfinite(f)
        converged = torch.zeros(batch, dtype=torch.bool)
        iteration = 0
        for iteration in range(1, max_iter + 1):
            rows = active.nonzero().squeeze(1)
            if len(rows) == 0:
                break
            model, target, scale, w0, index = problem.grouped_at(rows)
            ua, f_rows, lam_rows = u[rows], f[rows], lam[rows]
            h = 1e-7 * (1 + ua.abs())
            probe = ua.unsqueeze(0).repeat(dim + 1, 1, 1)
            probe[1:] += eye[:, None, :] * h.T[:, :, None]
            values = model(from_unconstrained(probe, lo, hi))  # (P + 1, b, U)
            g = values[0]
            jac = ((values[1:] - g) / h.T[..., None]).permute(1, 2, 0)  # (b, U, P)
            ok = torch.isfinite(g + jac.sum(-1))  # an input where the law or its slope is not finite
            g = torch.where(ok, g, torch.zeros_like(g))
            jac = torch.where(ok[..., None], jac, torch.zeros_like(jac))
            r = (per_point(g, index) - target) / scale  # (b, M)
            w = w0.expand_as(r)
            if huber_delta is not None:
                w = w * torch.clamp(huber_delta / r.abs().clamp(min=1e-300), max=1.0)
            w = torch.where(torch.isfinite(r) & per_point(ok.to(DTYPE), index).bool(), w, torch.zeros_like(w))
            r = torch.where(w > 0, r, torch.zeros_like(r))
            a = torch.zeros_like(g).scatter_add_(-1, index.expand_as(r), w / scale**2)  # Σ w/s² per input
            c = torch.zeros_like(g).scatter_add_(-1, index.expand_as(r), w * r / scale)  # Σ w·r/s per input
            jtj = (jac * a[..., None]).transpose(1, 2) @ jac
            jtr = (jac * c[..., None]).sum(1)
            trial, better, new_f, done = _lm_step(
                jtj, jtr, lam_rows, ua, f_rows,
                lambda v: cost(model(from_unconstrained(v, lo, hi)), target, scale, w0, index), ftol)
            _lm_accept(rows, trial, ua, better, new_f, done, lam_rows, u, f, lam, converged, active)
        theta = from_unconstrained(u, lo, hi).numpy()
        return BatchResult(theta=theta, objective=f.numpy(), converged=converged.numpy(), iterations=iteration)
