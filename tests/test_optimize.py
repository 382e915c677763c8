"""The batched optimisers (`forecast.fitting.optimize`) against scipy.optimize on problems
with known answers: every row of a batch is solved as scipy solves it alone."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from forecast.fitting.optimize import huber, least_squares_batched, minimize_batched

T = np.linspace(0.0, 4.0, 25)


def _decay(theta, t):
    """y = A·exp(−k·t) + c: the classic nonlinear least-squares test (NIST-style)."""
    return theta[..., 0:1] * np.exp(-theta[..., 1:2] * t) + theta[..., 2:3] if isinstance(theta, np.ndarray) else \
        theta[..., 0:1] * torch.exp(-theta[..., 1:2] * torch.as_tensor(t)) + theta[..., 2:3]


PLANTED = np.array([[2.0, 1.3, 0.5], [5.0, 0.4, -1.0], [0.7, 3.0, 0.1], [1.0, 0.6, 2.0]])
RNG = np.random.default_rng(0)
Y = _decay(PLANTED, T) + RNG.normal(0, 0.02, (len(PLANTED), T.size))
Y[1, 3] += 1.5  # an outlier, for the robust fit
LOWER, UPPER = np.array([0.0, 0.0, -5.0]), np.array([10.0, 10.0, 5.0])
START = np.array([1.0, 1.0, 0.0])


class _Decay:
    """Row i: fit `_decay` to Y[i]."""

    def at(self, rows):
        y = torch.as_tensor(Y if rows is None else Y[rows.numpy()])
        return (lambda theta: _decay(theta, T) - y), torch.ones_like(y)


@pytest.mark.parametrize("delta", [None, 0.1])
def test_least_squares_matches_scipy_row_by_row(delta):
    result = least_squares_batched(_Decay(), np.tile(START, (len(Y), 1)), LOWER, UPPER, huber_delta=delta,
                                   max_iter=200, ftol=1e-15)
    assert result.converged.all()
    for i, y in enumerate(Y):
        ref = scipy.optimize.least_squares(lambda th: _decay(th, T) - y, START, bounds=(LOWER, UPPER),
                                           loss="linear" if delta is None else "huber", f_scale=delta or 1.0,
                                           xtol=1e-15, ftol=1e-15, gtol=1e-15)
        assert result.theta[i] == pytest.approx(ref.x, rel=1e-5, abs=1e-7), (i, result.theta[i], ref.x)
        assert result.objective[i] == pytest.approx(ref.cost, rel=1e-8)  # both Σρ(r) with ρ = r²/2 or Huber's
    # and the planted answers, within the noise
    assert result.theta[[0, 2, 3]] == pytest.approx(PLANTED[[0, 2, 3]], rel=0.1, abs=0.05)
    # row 1 holds an outlier: the robust fit lands where a fit without that point does
    # (measured: A 4.94 against 4.92; plain least squares is pulled to 5.19)
    keep = np.arange(T.size) != 3
    clean = scipy.optimize.least_squares(lambda th: (_decay(th, T) - Y[1])[keep], START, bounds=(LOWER, UPPER)).x
    if delta is not None:
        assert result.theta[1] == pytest.approx(clean, rel=0.01)
    else:
        assert abs(result.theta[1, 0] - clean[0]) > 0.2


def test_huber_is_scipys_huber():
    r = np.linspace(-3, 3, 61)
    delta = 0.7
    # scipy: ρ(z) = z (z ≤ 1) else 2√z − 1, on z = (r/δ)², scaled by δ²/2
    z = (r / delta) ** 2
    scipy_rho = 0.5 * delta ** 2 * np.where(z <= 1, z, 2 * np.sqrt(z) - 1)
    assert huber(r, delta) == pytest.approx(scipy_rho, rel=1e-12)
    assert huber(torch.as_tensor(r), delta).numpy() == pytest.approx(scipy_rho, rel=1e-12)


def _rosenbrock(theta, a, b):
    return (a - theta[..., 0]) ** 2 + b * (theta[..., 1] - theta[..., 0] ** 2) ** 2


def test_lbfgs_matches_scipy_on_rosenbrock_batches():
    """Rows with different (a, b): minimum at (a, a²); bounded L-BFGS as scipy's L-BFGS-B."""
    a = np.array([1.0, -0.5, 2.0, 0.3])
    b = np.array([100.0, 10.0, 5.0, 50.0])
    lower, upper = np.array([-3.0, -3.0]), np.array([3.0, 5.0])
    starts = np.array([[-1.2, 1.0], [1.5, 1.5], [0.0, 0.0], [2.0, -2.0]])
    at, bt = torch.as_tensor(a), torch.as_tensor(b)
    result = minimize_batched(lambda theta, rows: _rosenbrock(theta, at[rows], bt[rows]), starts, lower, upper,
                              max_iter=2000, ftol=1e-16, gtol=1e-12)
    for i in range(len(a)):
        ref = scipy.optimize.minimize(lambda th: _rosenbrock(th, a[i], b[i]), starts[i], method="L-BFGS-B",
                                      bounds=list(zip(lower, upper)), options={"ftol": 1e-16, "gtol": 1e-12,
                                                                                "maxiter": 5000})
        assert ref.x == pytest.approx([a[i], a[i] ** 2], abs=1e-4)  # scipy finds the known answer
        assert result.theta[i] == pytest.approx([a[i], a[i] ** 2], abs=1e-4), (i, result.theta[i])
        assert result.objective[i] <= ref.fun + 1e-9


def test_lbfgs_rows_are_independent():
    """A row's answer does not depend on the rows solved beside it."""
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([100.0, 5.0])
    lower, upper = np.array([-3.0, -3.0]), np.array([3.0, 5.0])
    starts = np.array([[-1.2, 1.0], [0.0, 0.0]])
    both = minimize_batched(lambda th, rows: _rosenbrock(th, a[rows], b[rows]), starts, lower, upper, max_iter=2000)
    alone = minimize_batched(lambda th, rows: _rosenbrock(th, a[1:][rows], b[1:][rows]), starts[1:], lower, upper,
                             max_iter=2000)
    assert both.theta[1] == pytest.approx(alone.theta[0], abs=1e-12)


def test_box_least_squares_reaches_scipys_optimum_on_a_bound_in_fewer_iterations():
    """Solutions on a bound: the offset c of rows 0 and 3 capped below its fitted value. The
    projected steps (`box`) land on scipy's bounded optimum; the change of variables only
    crawls towards the bound."""
    upper = np.array([10.0, 10.0, 0.3])
    starts = np.tile(np.array([1.0, 1.0, 0.0]), (len(Y), 1))
    box = least_squares_batched(_Decay(), starts, LOWER, upper, max_iter=100, ftol=1e-12, box=True)
    smooth = least_squares_batched(_Decay(), starts, LOWER, upper, max_iter=100, ftol=1e-12)
    assert box.converged.all()
    for i, y in enumerate(Y):
        ref = scipy.optimize.least_squares(lambda th: _decay(th, T) - y, starts[i], bounds=(LOWER, upper),
                                           xtol=1e-15, ftol=1e-15, gtol=1e-15)
        assert box.objective[i] == pytest.approx(ref.cost, rel=1e-8), i
        assert box.theta[i] == pytest.approx(ref.x, rel=1e-4, abs=1e-6), (i, box.theta[i], ref.x)
        assert smooth.objective[i] >= box.objective[i] * (1 - 1e-10)
    assert box.theta[[0, 3], 2] == pytest.approx(0.3, abs=1e-12)  # exactly on the bound
    assert box.iterations < smooth.iterations


def test_box_rows_leave_a_bound_the_gradient_points_away_from():
    """A start on a bound whose optimum is inside: the parameter is not held there."""
    starts = np.tile(np.array([1.0, 1.0, 5.0]), (len(Y), 1))  # c at its upper bound
    box = least_squares_batched(_Decay(), starts, LOWER, UPPER, max_iter=200, ftol=1e-14, box=True)
    ref = least_squares_batched(_Decay(), np.tile(START, (len(Y), 1)), LOWER, UPPER, max_iter=200, ftol=1e-15)
    np.testing.assert_allclose(box.objective, ref.objective, rtol=1e-8)
    assert (box.theta[:, 2] < 4.0).all()
