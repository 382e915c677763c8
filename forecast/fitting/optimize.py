"""Batched, bounded minimisation: many independent small problems solved at once.

Multi-start grids, many skills and thousands of bootstrap draws are all "B independent
problems with P ≤ 8 parameters". Looping a scalar optimiser over them costs one Python
round trip per problem; here every problem is a row of one tensor and a single L-BFGS
(Nocedal & Wright 2006, alg. 7.4, with Armijo backtracking) advances all rows together,
each with its own history, step length and convergence flag. Gradients come from torch
autograd, never hand-written. Bounds are enforced by a smooth change of variables
(θ = lo + (hi − lo)·σ(u)), as in MINUIT and lmfit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from dataclasses import dataclass

import numpy as np
import torch

Tensor = torch.Tensor
DTYPE = torch.float64


@dataclass(frozen=True)
class BatchResult:
    """Solutions of B problems: parameters (B, P), objective (B,), convergence flags (B,)."""

    theta: np.ndarray
    objective: np.ndarray
    converged: np.ndarray
    iterations: int


def to_unconstrained(theta: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> Tensor:
    """Map bounded parameters to the real line (inverse of `from_unconstrained`)."""
    span = upper - lower
    frac = np.clip((np.asarray(theta, dtype=np.float64) - lower) / span, 1e-9, 1 - 1e-9)
    return torch.as_tensor(np.log(frac) - np.log1p(-frac), dtype=DTYPE)


def from_unconstrained(u: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    return lower + (upper - lower) * torch.sigmoid(u)


def huber(r: Tensor | np.ndarray, delta: float) -> Tensor | np.ndarray:
    """Huber's ρ: quadratic within ±delta, linear outside (Huber 1964); tensors or arrays."""
    where = torch.where if isinstance(r, Tensor) else np.where
    a = abs(r)
    return where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))




def minimize_batched(
    objective: Callable[[Tensor, Tensor], Tensor],
    theta0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    max_iter: int = 300,
    history: int = 10,
    ftol: float = 1e-12,
    gtol: float = 1e-9,
) -> BatchResult:
    """Minimise B independent objectives at once with bounded L-BFGS.

    `objective(theta, rows)` maps parameters (b, P) of the problems `rows` (b indices into
    0..B−1) to their values (b,); a row's value must depend only on its own parameters.
    Only unfinished rows are evaluated, so the cost falls as rows converge. `theta0` (B, P)
    are the starts; `lower`/`upper` (P,) the bounds. A row stops when its relative decrease
    falls below `ftol` or its largest gradient entry below `gtol`.
    """
    lo = torch.as_tensor(lower, dtype=DTYPE)
    hi = torch.as_tensor(upper, dtype=DTYPE)
    u = to_unconstrained(theta0, np.asarray(lower), np.asarray(upper))
    batch, dim = u.shape

    def value(u_: Tensor, rows_: Tensor) -> Tensor:
        with torch.no_grad():
            f_ = objective(from_unconstrained(u_, lo, hi), rows_)
        return torch.where(torch.isfinite(f_), f_, torch.full_like(f_, torch.inf))

    def value_and_grad(u_: Tensor, rows_: Tensor) -> tuple[Tensor, Tensor]:
        u_ = u_.detach().requires_grad_(True)
        f_ = objective(from_unconstrained(u_, lo, hi), rows_)
        (g_,) = torch.autograd.grad(f_.sum(), u_)
        f_ = f_.detach()
        bad = ~torch.isfinite(f_) | ~torch.isfinite(g_).all(-1)
        f_ = torch.where(bad, torch.full_like(f_, torch.inf), f_)
        g_ = torch.where(bad[:, None], torch.zeros_like(g_), g_)
        return f_, g_

    every = torch.arange(batch)
    f, g = value_and_grad(u, every)
    s_hist = torch.zeros(batch, history, dim, dtype=DTYPE)
    y_hist = torch.zeros(batch, history, dim, dtype=DTYPE)
    rho = torch.zeros(batch, history, dtype=DTYPE)
    stored = torch.zeros(batch, dtype=torch.long)  # updates stored so far, per row
    active = torch.isfinite(f)
    converged = torch.zeros(batch, dtype=torch.bool)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        rows = active.nonzero().squeeze(1)
        if len(rows) == 0:
            break
        ua, fa, ga = u[rows], f[rows], g[rows]
        direction = -_two_loop(ga, s_hist[rows], y_hist[rows], rho[rows], stored[rows])
        slope = (ga * direction).sum(-1)
        restart = ~(slope < 0) | ~torch.isfinite(slope)
        direction = torch.where(restart[:, None], -ga, direction)
        slope = torch.where(restart, -(ga * ga).sum(-1), slope)
        stored[rows] = torch.where(restart, torch.zeros_like(stored[rows]), stored[rows])
        # first step of a fresh history: scale so the step is at most ~1 in u
        step = torch.where(stored[rows] == 0, 1.0 / ga.abs().amax(-1).clamp(min=1.0),
                           torch.ones(len(rows), dtype=DTYPE))
        accepted = torch.zeros(len(rows), dtype=torch.bool)
        u_new = ua.clone()
        for _ in range(40):  # Armijo backtracking, evaluating only rows still searching
            todo = (~accepted).nonzero().squeeze(1)
            trial = ua[todo] + step[todo, None] * direction[todo]
            f_trial = value(trial, rows[todo])
            ok = f_trial <= fa[todo] + 1e-4 * step[todo] * slope[todo]
            u_new[todo[ok]] = trial[ok]
            accepted[todo[ok]] = True
            if bool(accepted.all()):
                break
            step = torch.where(accepted, step, step * 0.5)
        # no decrease along a descent direction: a minimum if the gradient is small
        stuck = ~accepted
        converged[rows[stuck]] = ga[stuck].abs().amax(-1) < 1e-5 * (1 + fa[stuck].abs())
        active[rows[stuck]] = False
        moving = rows[accepted]
        if len(moving) == 0:
            continue
        u_m = u_new[accepted]
        f_m, g_m = value_and_grad(u_m, moving)
        s, y = u_m - u[moving], g_m - g[moving]
        sy = (s * y).sum(-1)
        keep = sy > 1e-12 * (s * s).sum(-1).sqrt() * (y * y).sum(-1).sqrt()
        kept = moving[keep]
        slot = stored[kept] % history
        s_hist[kept, slot] = s[keep]
        y_hist[kept, slot] = y[keep]
        rho[kept, slot] = 1.0 / sy[keep]
        stored[kept] += 1
        done = ((f[moving] - f_m).abs() <= ftol * (1 + f_m.abs())) | (g_m.abs().amax(-1) <= gtol)
        u[moving], f[moving], g[moving] = u_m, f_m, g_m
        converged[moving[done]] = True
        active[moving[done]] = False
    theta = from_unconstrained(u, lo, hi).detach().numpy()
    return BatchResult(theta=theta, objective=f.numpy(), converged=converged.numpy(), iterations=iteration)


def _two_loop(g: Tensor, s_hist: Tensor, y_hist: Tensor, rho: Tensor, stored: Tensor) -> Tensor:
    """L-BFGS two-loop recursion, batched: returns H·g for every row's own history."""
    history = s_hist.shape[1]
    q = g.clone()
    alphas = []
    count = stored.clamp(max=history)
    for i in range(history):  # newest first
        slot = (stored - 1 - i) % history
        valid = (i < count).to(g.dtype)
        s = s_hist[torch.arange(len(g)), slot]
        y = y_hist[torch.arange(len(g)), slot]
        r = rho[torch.arange(len(g)), slot] * valid
        alpha = r * (s * q).sum(-1)
        q = q - alpha[:, None] * y
        alphas.append((alpha, s, y, r))
    newest = (stored - 1) % history
    s_new = s_hist[torch.arange(len(g)), newest]
    y_new = y_hist[torch.arange(len(g)), newest]
    yy = (y_new * y_new).sum(-1)
    gamma = torch.where((count > 0) & (yy > 0), (s_new * y_new).sum(-1) / yy.clamp(min=1e-300), torch.ones_like(yy))
    r_vec = gamma[:, None] * q
    for alpha, s, y, r in reversed(alphas):  # oldest first
        beta = r * (y * r_vec).sum(-1)
        r_vec = r_vec + s * (alpha - beta)[:, None]
    return r_vec


class RowProblem(Protocol):
    """B independent least-squares problems, restricted to a subset of rows on demand."""

    def at(self, rows: Tensor | None) -> tuple[Callable[[Tensor], Tensor], Tensor]:
        """For problems `rows` (None: all): a function from parameters (b, P) to residuals
        (b, M), and the per-point weights (b, M) or (1, M)."""


def least_squares_batched(
    problem: RowProblem,
    theta0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    huber_delta: float | None = None,
    max_iter: int = 100,
    ftol: float = 1e-10,
    box: bool = False,
    start: tuple[Tensor, Tensor] | None = None,
) -> BatchResult:
    """Minimise B independent robust least-squares problems at once (Levenberg–Marquardt).

    `problem.at(rows)` gives the residual function and weights of the problems still
    being solved; row i starts at `theta0[i]`. With `huber_delta` the objective is
    Σ w·ρ_δ(r) (Huber), solved by iteratively reweighted least squares inside each LM step
    (Holland & Welsch 1977); otherwise Σ w·r²/2. Jacobians come from forward differences,
    one cheap pass per parameter. Far fewer iterations than L-BFGS on these small,
    well-posed problems (measured ~20 vs ~300), which is what makes bootstrapping
    thousands of draws cheap.

    With `box`, steps are taken in the parameters themselves and projected onto the bounds,
    a parameter on a bound that the gradient pushes outwards held there (an active set, as
    in Kanzow et al. 2004); otherwise bounds are a change of variables (`from_unconstrained`).
    The optimum is the same; near a bound the change of variables flattens the objective,
    so rows whose solution sits on one (a plateau at the top) crawl towards it for dozens of
    iterations, where the projection reaches it in one: what bootstrap draws started at the
    point estimate need (measured: ~15 → ~4 iterations per draw).

    `start` (with `box`): the residuals (B, M) and their Jacobian (B, M, P) at `theta0`,
    when the caller has them cheaper than B evaluations (draws of one problem share their
    start and inputs: `forecast.fitting.problems.draw_start`).
    """
    with torch.no_grad():
        return _levenberg_marquardt(problem, theta0, lower, upper, huber_delta, max_iter, ftol, box, start)


def forward_jacobian(fn: Callable[[Tensor], Tensor], u: Tensor, base: Tensor, upper: Tensor | None = None) -> Tensor:
    """Forward differences of `fn` ((…, b, P) → (…, b, M)) at `u` (b, P), whose value
    `base` (b, M) is known: the Jacobian (b, M, P), from P shifted copies in one batched
    evaluation. With `upper`, a copy that would cross it is shifted inwards instead."""
    dim = u.shape[-1]
    h = 1e-7 * (1 + u.abs())
    if upper is not None:
        h = torch.where(u + h > upper, -h, h)
    probe = u.unsqueeze(0).repeat(dim, 1, 1)
    probe += torch.eye(dim, dtype=u.dtype)[:, None, :] * h.T[:, :, None]  # copy p moves parameter p by h
    return ((fn(probe) - base) / h.T[..., None]).permute(1, 2, 0)


def _levenberg_marquardt(problem: RowProblem, theta0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                         huber_delta: float | None, max_iter: int, ftol: float, box: bool = False,
                         start: tuple[Tensor, Tensor] | None = None) -> BatchResult:
    lo = torch.as_tensor(lower, dtype=DTYPE)
    hi = torch.as_tensor(upper, dtype=DTYPE)
    if box:
        u = torch.as_tensor(np.clip(theta0, lower, upper), dtype=DTYPE)
        from_unconstrained = lambda v, lo_, hi_: v  # noqa: E731  (the parameters themselves)
    else:
        from_unconstrained = globals()["from_unconstrained"]
        u = to_unconstrained(theta0, np.asarray(lower), np.asarray(upper))
    batch, dim = u.shape

    def cost(r: Tensor, w: Tensor) -> Tensor:
        rho = 0.5 * r * r if huber_delta is None else huber(r, huber_delta)
        c = (w * rho).sum(-1)
        return torch.where(torch.isfinite(c), c, torch.full_like(c, torch.inf))

    resid_all, w_all = problem.at(None)
    if start is not None and not box:
        raise ValueError("a start Jacobian is in the parameters themselves: it needs box=True")
    # residuals at each row's current point, kept
    r_at = start[0].clone() if start is not None else resid_all(from_unconstrained(u, lo, hi))
    f = cost(r_at, w_all)
    lam = torch.full((batch,), 1e-3, dtype=DTYPE)
    active = torch.isfinite(f)
    converged = torch.zeros(batch, dtype=torch.bool)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        rows = active.nonzero().squeeze(1)
        if len(rows) == 0:
            break
        everyone = len(rows) == batch
        resid_rows, w0 = (resid_all, w_all) if everyone else problem.at(rows)
        ua = u if everyone else u[rows]
        f_rows = f if everyone else f[rows]
        resid = lambda v: resid_rows(from_unconstrained(v, lo, hi))  # noqa: E731
        # the point's own residuals were kept from when it was reached
        r_rows = r_at if everyone else r_at[rows]
        r = r_rows
        if iteration == 1 and start is not None:
            jac = start[1] if everyone else start[1][rows]
        else:  # differences taken inwards at an upper bound (box)
            jac = forward_jacobian(resid, ua, r, hi if box else None)  # (b, M, P)
        w = w0.expand_as(r)
        if huber_delta is not None:  # IRLS: Huber's ρ as a reweighted square
            w = w * torch.clamp(huber_delta / r.abs().clamp(min=1e-300), max=1.0)
        ok_points = torch.isfinite(r + jac.sum(-1))  # NaN or inf anywhere in a point's row
        if not bool(ok_points.all()):
            w = torch.where(ok_points, w, torch.zeros_like(w))
            r = torch.where(ok_points, r, torch.zeros_like(r))
            jac = torch.where(ok_points[..., None], jac, torch.zeros_like(jac))
        jw = jac * w[..., None]
        jtj = jw.transpose(1, 2) @ jac  # (b, P, P)
        jtr = (jw * r[..., None]).sum(1)  # (b, P)
        lam_rows = lam if everyone else lam[rows]
        kept: list[Tensor] = []

        def trial_cost(trial: Tensor) -> Tensor:
            kept.append(resid(trial))
            return cost(kept[-1], w0.expand_as(r))

        box_of = (lambda: (lo, hi, _on_bound(ua, jtr, lo, hi))) if box else (lambda: None)
        trial, better, new_f, done = _lm_step(jtj, jtr, lam_rows, ua, f_rows, trial_cost, ftol, box_of())
        r_at[rows] = torch.where(better[:, None], kept[-1], r_rows)
        _lm_accept(rows, trial, ua, better, new_f, done, lam_rows, u, f, lam, converged, active)
    theta = from_unconstrained(u, lo, hi).numpy()
    return BatchResult(theta=theta, objective=f.numpy(), converged=converged.numpy(), iterations=iteration)


def _on_bound(u: Tensor, jtr: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Parameters (b, P) on a bound that a descent step would push outwards."""
    tol = 1e-12 * (hi - lo)
    return ((u <= lo + tol) & (jtr > 0)) | ((u >= hi - tol) & (jtr < 0))


def _lm_step(jtj: Tensor, jtr: Tensor, lam: Tensor, u: Tensor, f: Tensor, trial_cost: Callable[[Tensor], Tensor],
             ftol: float, box: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One Levenberg–Marquardt step for a batch of rows (Marquardt's scaling by diag(JᵀJ)):
    the trial point, whether it lowered the cost, the cost kept, and whether a row is done
    (a kept step that gained < `ftol`, a predicted reduction that small, a vanishing step,
    or a damping that has run away). With `box` (lower, upper, held (b, P)), held
    parameters stay put and the step is projected onto the bounds."""
    eye = torch.eye(jtj.shape[-1], dtype=jtj.dtype)
    if box is not None:
        free = (~box[2]).to(jtj.dtype)
        jtj = jtj * free[:, :, None] * free[:, None, :] + torch.diag_embed(1 - free)
        jtr = jtr * free
    diag = torch.diagonal(jtj, dim1=-2, dim2=-1)
    damped = jtj + (lam[:, None] * diag + 1e-12)[..., None] * eye
    step = -torch.linalg.solve(damped, jtr[..., None])[..., 0]
    step = torch.where(torch.isfinite(step), step, torch.zeros_like(step))
    if box is not None:
        step = torch.maximum(torch.minimum(u + step, box[1]), box[0]) - u
    trial = u + step
    f_trial = trial_cost(trial)
    better = f_trial < f
    gain = (f - f_trial) / (1 + f.abs())
    # the reduction the linear model promised: when even that is negligible, we are there
    promised = -(step * jtr).sum(-1) - 0.5 * (step[:, None, :] @ jtj @ step[..., None])[:, 0, 0]
    new_f = torch.where(better, f_trial, f)
    done = ((better & (gain < ftol)) | (promised.abs() <= ftol * (1 + new_f.abs()))
            | (step.abs().amax(-1) < 1e-12) | (lam > 1e12))
    return trial, better, new_f, done


def _lm_accept(rows: Tensor, trial: Tensor, u_rows: Tensor, better: Tensor, new_f: Tensor, done: Tensor,
               lam_rows: Tensor, u: Tensor, f: Tensor, lam: Tensor, converged: Tensor, active: Tensor) -> None:
    """Write one step's outcome for `rows` into the batch state (in place): kept points,
    costs, damping (÷3 on success, ×4 on failure), and rows that are done."""
    u[rows] = torch.where(better[:, None], trial, u_rows)
    f[rows] = new_f
    lam[rows] = torch.where(better, (lam_rows / 3).clamp(min=1e-12), lam_rows * 4)
    converged[rows[done]] = True
    active[rows[done]] = False
