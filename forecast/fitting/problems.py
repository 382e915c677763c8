"""Batched regression problems of one law, and their summaries where inputs repeat.

A `Problem` is R weighted robust regressions of one law, one per row. A sweep repeats its
inputs: the seeds of one size evaluated at one budget share (N, D, C), so a law takes the
same value at all of them. Such a problem is *grouped*: the law is evaluated once per
distinct input (U columns) and gathered to the M points (`group`, (R, M) indices), which is
exact for any objective. Two summaries then make the work independent of the seeds:
- `summarised` (multi-start): one point per distinct input, its precision-weighted mean
  target with the mean's noise (exact for least squares, an approximation for Huber's ρ,
  used only to choose and polish starts);
- `summarised_draws` (bootstrap): weighted least squares, as every Fast-and-Robust
  bootstrap draw is (`forecast.fitting.estimate.bootstrap`), is exactly a fit to the
  weighted means with the summed weights, so a draw costs U points, not M.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from forecast.fitting.laws import Law
from forecast.fitting.optimize import DTYPE, forward_jacobian, least_squares_batched
from forecast.fitting.optimize_grouped import least_squares_grouped

CONSTANT_INPUTS = ("floor", "top", "least")
"""Inputs that are one number per problem (shape (1, 1)), never per point."""


@dataclass(frozen=True, eq=False)
class Problem:
    """Weighted robust regressions of one law, one per row: inputs x (R|1, U), targets,
    per-point noise scale and weights (R|1, M); `group` (R|1, M) maps each point to its
    input column (None: U = M, point i is column i)."""

    law: Law
    x: dict[str, torch.Tensor]
    y: torch.Tensor
    scale: torch.Tensor
    weights: torch.Tensor
    delta: float | None  # Huber threshold; None for plain least squares
    log_residual: bool = False
    group: torch.Tensor | None = None

    def _model(self, x: dict[str, torch.Tensor]):
        law = self.law
        return (lambda theta: torch.log(law(theta, x))) if self.log_residual else (lambda theta: law(theta, x))

    def _target(self, y: torch.Tensor) -> torch.Tensor:
        return torch.log(y) if self.log_residual else y

    def at(self, rows: torch.Tensor | None):
        """The residual function and weights of problems `rows` (None: all), its data
        gathered once (see `forecast.fitting.optimize.RowProblem`)."""
        pick = (lambda t: t) if rows is None else (lambda t: t if t.shape[0] == 1 else t[rows])  # noqa: E731
        model = self._model({k: pick(v) for k, v in self.x.items()})
        target = self._target(pick(self.y))
        scale = torch.ones_like(target) if self.log_residual else pick(self.scale)
        if self.group is None:
            return (lambda theta: (model(theta) - target) / scale), pick(self.weights)
        index = pick(self.group)

        def resid(theta: torch.Tensor) -> torch.Tensor:
            f = model(theta)
            f = f.expand(*f.shape[:-2], max(f.shape[-2], index.shape[0]), f.shape[-1])
            return (torch.gather(f, -1, index.expand(*f.shape[:-1], index.shape[-1])) - target) / scale
        return resid, pick(self.weights)

    def grouped_at(self, rows: torch.Tensor | None):
        """For grouped problems `rows`: the law at the distinct inputs (θ → (…, b, U)),
        and per point its target, scale, weight and column (b|1, M) (see
        `forecast.fitting.optimize_grouped.least_squares_grouped`)."""
        pick = (lambda t: t) if rows is None else (lambda t: t if t.shape[0] == 1 else t[rows])  # noqa: E731
        target = self._target(pick(self.y))
        scale = torch.ones_like(target) if self.log_residual else pick(self.scale)
        return self._model({k: pick(v) for k, v in self.x.items()}), target, scale, pick(self.weights), \
            pick(self.group)

    def solve(self, starts: np.ndarray, max_iter: int = 100, ftol: float = 1e-10, box: bool = False,
              start: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solve row i from `starts[i]`: (theta (R, P), objective (R,), converged (R,));
        `box`, `start`: bounds by projection, residuals and Jacobian at the starts known
        (`least_squares_batched`; ungrouped problems)."""
        solver = least_squares_batched if self.group is None else least_squares_grouped
        extra = {"box": True, "start": start} if box else {}
        result = solver(self, starts, self.law.lower, self.law.upper, huber_delta=self.delta,
                        max_iter=max_iter, ftol=ftol, **extra)
        return result.theta, result.objective, result.converged

    def residuals_numpy(self, values: np.ndarray) -> np.ndarray:
        """Residuals of row 0 at parameters `values`, scaled and √weighted (for lmfit)."""
        return self.numpy_residuals()(values)

    def numpy_residuals(self):
        """`residuals_numpy` as a function, row 0's data gathered once (lmfit calls it a
        few dozen times per fit)."""
        resid, weights = self.at(torch.zeros(1, dtype=torch.long))
        root = weights.sqrt()

        def residuals(values: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                r = resid(torch.as_tensor(np.asarray(values, dtype=np.float64)[None, :]))
                return (r * root.expand_as(r)).numpy().ravel()
        return residuals

    def robust_weights(self, values: np.ndarray) -> np.ndarray:
        """Huber's IRLS weights min(1, δ/|r|) at `values` (all 1 for least squares)."""
        if self.delta is None:
            return np.ones(self.y.shape[1])
        return np.minimum(1.0, self.delta / np.maximum(np.abs(self.residuals_numpy(values)), 1e-300))

    @property
    def points(self) -> int:
        """Points M per row."""
        return self.y.shape[1]

    @property
    def columns(self) -> int:
        """Distinct inputs U per row (what a law evaluation costs)."""
        return next(v.shape[1] for k, v in self.x.items() if k not in CONSTANT_INPUTS)


def row(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.array(np.atleast_2d(a)), dtype=DTYPE)


def grouped(problem: Problem, min_repeat: float = 1.5) -> Problem:
    """The problem grouped by distinct inputs when they repeat on average at least
    `min_repeat` times (else unchanged: nothing to save). One-row problems only."""
    per_point = [k for k in problem.x if k not in CONSTANT_INPUTS]
    if problem.group is not None or problem.y.shape[0] != 1 or not per_point:
        return problem
    code = np.zeros(problem.points, dtype=np.int64)  # one integer per distinct input tuple
    for k in per_point:
        values, inverse = np.unique(problem.x[k].numpy()[0], return_inverse=True)
        code = np.unique(code * len(values) + inverse.ravel(), return_inverse=True)[1].ravel()  # kept dense
    codes, first, index = np.unique(code, return_index=True, return_inverse=True)
    if len(codes) * min_repeat > problem.points:
        return problem
    x = dict(problem.x)
    for k in per_point:
        x[k] = problem.x[k][:, first]
    return replace(problem, x=x, group=torch.as_tensor(np.ravel(index)[None, :], dtype=torch.long))


def _sums(values: np.ndarray, index: np.ndarray, columns: int) -> np.ndarray:
    """Row-wise sums of `values` (R, M) over points of each column: (R, U)."""
    out = np.zeros((values.shape[0], columns))
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    out[:, sorted_index[starts]] = np.add.reduceat(values[:, order], starts, axis=1)
    return out


def _summary(problem: Problem, weights: np.ndarray, targets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Summed precision A (R, U) and precision-weighted mean target (R, U), in target space
    (log y for log residuals), from per-point `weights` (R, M) and targets (R, M) (None:
    the problem's own)."""
    index = problem.group.numpy()[0]
    t = problem.y.numpy() if targets is None else targets
    t = np.log(t) if problem.log_residual else t
    precision = weights / (1.0 if problem.log_residual else problem.scale.numpy() ** 2)
    total = _sums(precision, index, problem.columns)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _sums(precision * np.broadcast_to(t, precision.shape), index, problem.columns) / total
    return total, np.where(total > 0, mean, 0.0)


def summarised(problem: Problem) -> Problem:
    """A grouped one-row problem as one point per distinct input: the precision-weighted
    mean target, with the mean's noise as its scale (log residuals: the summed weight)."""
    if problem.group is None:
        return problem
    total, mean = _summary(problem, problem.weights.numpy(), None)
    y = np.exp(mean) if problem.log_residual else mean
    if problem.log_residual:
        scale, weights = np.ones_like(total), total
    else:
        scale, weights = 1 / np.sqrt(np.where(total > 0, total, 1.0)), (total > 0).astype(float)
    return replace(problem, y=row(y), scale=row(scale), weights=row(weights), group=None)


def summarised_draws(problem: Problem, weights: np.ndarray, targets: np.ndarray | None
                     ) -> tuple[Problem, np.ndarray, np.ndarray | None]:
    """Bootstrap draws of weighted least squares (`weights`, `targets` (draws, M)) as draws
    of a problem on the distinct inputs: (problem, weights (draws, U), targets (draws, U)).
    Exact: Σᵢ vᵢ(f − tᵢ)²/sᵢ² = A·(f − t̄)² + const within each column."""
    if problem.group is None:
        return problem, weights, targets
    total, mean = _summary(problem, weights, targets)
    y = np.exp(mean) if problem.log_residual else mean
    base = replace(problem, y=row(y[0]), scale=row(np.ones(problem.columns)), weights=row(np.ones(problem.columns)),
                   group=None)
    return base, total, y


def stack(problems: Sequence[Problem], repeats: Sequence[int], weights: Sequence[np.ndarray] | None = None,
          ys: Sequence[np.ndarray] | None = None, delta: float | None = ...) -> Problem:
    """One problem whose rows are problem j's data repeated `repeats[j]` times, padded to
    the longest problem with weight 0; `weights[j]` / `ys[j]` (repeats[j], M_j) replace a
    problem's weights / targets row by row (bootstrap draws). Grouped problems stack with
    grouped ones (ungrouped members are given the identity grouping)."""
    width = max(p.points for p in problems)
    columns = max(p.columns for p in problems)
    any_grouped = any(p.group is not None for p in problems)

    def stacked(get, fill: float, per_row=None, constant: bool = False, wide: int = width, dtype=DTYPE):
        blocks = []
        for j, (p, r) in enumerate(zip(problems, repeats)):
            t = get(p) if per_row is None or per_row[j] is None else torch.as_tensor(per_row[j], dtype=dtype)
            t = t.expand(r, t.shape[1]) if t.shape[0] == 1 else t
            short = not constant and t.shape[1] < wide  # (padding nothing still costs a copy)
            blocks.append(torch.nn.functional.pad(t, (0, wide - t.shape[1]), value=fill) if short else t)
        return torch.cat(blocks, dim=0)

    first = problems[0]
    x = {k: stacked(lambda p, k=k: p.x[k], 0.0, constant=k in CONSTANT_INPUTS, wide=columns) for k in first.x}
    group = None
    if any_grouped:
        identity = lambda p: p.group if p.group is not None else torch.arange(p.points)[None, :]  # noqa: E731
        group = stacked(identity, 0, dtype=torch.long).to(torch.long)
    return Problem(
        law=first.law, x=x, y=stacked(lambda p: p.y, 1.0, ys), scale=stacked(lambda p: p.scale, 1.0),
        weights=stacked(lambda p: p.weights, 0.0, weights), delta=first.delta if delta is ... else delta,
        log_residual=first.log_residual, group=group)


def without_unweighted(problem: Problem, keep_below: float = 0.9) -> Problem:
    """The same problems with each row's zero-weight points dropped (rows padded with
    zero weight to the row with most points left), when that leaves under `keep_below` of
    the columns: a bootstrap draw leaves out about e⁻¹ of the points (Poisson weights), and
    a point of weight 0 adds nothing to any row's objective. Ungrouped problems only."""
    return gather_points(problem, weighted_order(problem, keep_below))


def weighted_order(problem: Problem, keep_below: float = 0.9) -> torch.Tensor | None:
    """Per row, the columns of its weighted points, in order, padded with unweighted ones
    to the row with most (R, M'): what `without_unweighted` keeps (None: everything)."""
    if problem.group is not None or problem.weights.shape[0] == 1:
        return None
    weighted = problem.weights > 0
    left = int(weighted.sum(-1).max())
    if left >= keep_below * problem.points:
        return None
    # a stable partition (weighted columns first, each part in order), as a stable argsort of
    # ~weighted would give, by each column's place: O(M) per row instead of a sort
    ranks = torch.cumsum(weighted, -1) - 1
    place = torch.where(weighted, ranks, weighted.sum(-1, keepdim=True) + torch.arange(weighted.shape[1]) - ranks - 1)
    order = torch.empty_like(place).scatter_(-1, place, torch.arange(weighted.shape[1]).expand_as(place))
    return order[:, :max(left, 1)]


def gather_points(problem: Problem, order: torch.Tensor | None) -> Problem:
    """The problems with row i's points `order[i]` (None: unchanged). Ungrouped only."""
    if order is None:
        return problem
    rows, width = problem.weights.shape[0], problem.points
    pick = lambda t: torch.gather(t.expand(rows, width), -1, order)  # noqa: E731
    x = {k: v if k in CONSTANT_INPUTS else pick(v) for k, v in problem.x.items()}
    return replace(problem, x=x, y=pick(problem.y), scale=pick(problem.scale), weights=pick(problem.weights))


def width_bands(problem: Problem, bands: int) -> list[tuple[np.ndarray, int]]:
    """The rows of a problem whose weighted points come first in every row (`gather_points`
    by `weighted_order`), in `bands` bands by how many they hold, each with its widest
    row's count: (rows, width). Solving band by band on `rows_of` drops the padding a
    batch otherwise carries up to its widest draw (a Poisson draw keeps 1 − e⁻¹ of the
    points, ± a few)."""
    counts = (problem.weights > 0).sum(-1)
    order = torch.argsort(counts, stable=True)
    out = []
    for rows in torch.tensor_split(order, min(bands, len(order))):
        if len(rows):
            out.append((rows.numpy(), max(int(counts[rows].max()), 1)))
    return out


def rows_of(problem: Problem, rows: np.ndarray, width: int) -> Problem:
    """Problems `rows` on their first `width` points (ungrouped)."""
    rows = torch.as_tensor(rows)
    pick = lambda t: (t if t.shape[0] == 1 else t[rows])[:, :width]  # noqa: E731
    x = {k: (v if v.shape[0] == 1 else v[rows]) if k in CONSTANT_INPUTS else pick(v) for k, v in problem.x.items()}
    return replace(problem, x=x, y=pick(problem.y), scale=pick(problem.scale), weights=pick(problem.weights))


def draw_start(members: Sequence[Problem], thetas: Sequence[np.ndarray], repeats: Sequence[int], stacked: Problem,
               order: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals (R, M) and their Jacobian (R, M, P) at the start of every row of `stacked`
    (`stack(members, repeats, …)`, then `gather_points(…, order)`), whose rows of member j
    all start at `thetas[j]`, as bootstrap draws do: the law and its differences are
    evaluated once per member (draws change targets and weights, not inputs or scales),
    then gathered to the rows. For `least_squares_batched(…, box=True, start=…)`."""
    width = max(p.points for p in members)
    values, slopes = [], []
    for p, theta in zip(members, thetas):
        if p.group is not None:
            raise ValueError("draw_start takes ungrouped problems (summarised draws are)")
        model = p._model(p.x)
        t = torch.as_tensor(np.clip(theta, p.law.lower, p.law.upper)[None, :], dtype=DTYPE)
        f = model(t)
        jac = forward_jacobian(model, t, f, torch.as_tensor(p.law.upper, dtype=DTYPE))
        short = width - f.shape[1]
        values.append(torch.nn.functional.pad(f, (0, short)) if short else f)
        slopes.append(torch.nn.functional.pad(jac, (0, 0, 0, short)) if short else jac)
    member = torch.arange(len(members)).repeat_interleave(torch.as_tensor(list(repeats)))  # each row's member
    values, slopes = torch.cat(values), torch.cat(slopes)
    if order is None:
        f0, j0 = values[member], slopes[member]
    else:  # picked straight from the members' values: no (R, M, P) copy before the gather
        f0, j0 = values[member[:, None], order], slopes[member[:, None], order]
    target = stacked._target(stacked.y)
    scale = torch.ones_like(target) if stacked.log_residual else stacked.scale
    return (f0 - target) / scale, j0 / scale[..., None]
