"""The batched solvers against known answers: grouped problems (repeated inputs, as the
seeds of a sweep) solve the same objective as the ungrouped ones, summarised bootstrap
draws are the same weighted least squares, and planted parameters come back."""

from __future__ import annotations

import numpy as np
import torch

from forecast.fitting.laws import COMPUTE_SIGMOID, LOSS_LAW
from forecast.fitting.optimize import DTYPE
from forecast.fitting.problems import Problem, grouped, row, stack, summarised, summarised_draws

PLANTED = np.array([0.3, 1.7, 0.8])  # m (ln C/C_ref), k, amp of the compute sigmoid


def _sigmoid_problem(seeds: int, rng: np.random.Generator, outliers: bool = True) -> Problem:
    """Compute-sigmoid data at 12 compute levels, `seeds` noisy repeats of each."""
    levels = np.linspace(-3, 3, 12)
    x = np.repeat(levels, seeds)
    inputs = {"x_params": row(np.zeros_like(x)), "x_tokens": row(x), "x_flops": row(x),
              "floor": torch.zeros((1, 1), dtype=DTYPE), "top": torch.ones((1, 1), dtype=DTYPE),
              "least": torch.zeros((1, 1), dtype=DTYPE)}
    law = COMPUTE_SIGMOID
    names = law.names
    theta = np.zeros(len(names))
    for name, value in zip(("m", "k", "amp"), PLANTED):
        theta[names.index(name)] = value
    truth = law(torch.as_tensor(theta[None, :]), inputs).numpy()[0]
    y = truth + 0.02 * rng.standard_normal(len(x))
    if outliers:
        y[::17] += 0.3  # a few bad checkpoints, which Huber's ρ discounts
    scale = np.full(len(x), 0.02) * rng.uniform(0.8, 1.25, len(x))
    return Problem(law=law, x=inputs, y=row(y), scale=row(scale), weights=row(np.ones(len(x))), delta=2.0)


def _start(law) -> np.ndarray:
    return np.array([np.mean([p.lower, p.upper]) if p.name != "k" else 1.0 for p in law.params])


def test_grouping_finds_the_distinct_inputs_and_keeps_the_objective():
    plain = _sigmoid_problem(seeds=20, rng=np.random.default_rng(0))
    g = grouped(plain)
    assert g.group is not None and g.columns == 12 and g.points == 240
    theta = np.tile(_start(plain.law), (3, 1)) * np.array([[1.0], [0.9], [1.1]])
    r_plain = plain.at(None)[0](torch.as_tensor(theta))
    r_group = g.at(None)[0](torch.as_tensor(theta))
    assert torch.allclose(r_plain, r_group, rtol=0, atol=1e-14)
    assert grouped(_sigmoid_problem(seeds=1, rng=np.random.default_rng(0))).group is None  # nothing repeats


def test_grouped_solver_reaches_the_ungrouped_huber_optimum_and_the_planted_law():
    plain = _sigmoid_problem(seeds=20, rng=np.random.default_rng(1))
    g = grouped(plain)
    starts = np.stack([_start(plain.law), _start(plain.law) * 0.7])
    theta_plain, obj_plain, _ = plain.solve(starts)
    theta_group, obj_group, ok = g.solve(starts)
    assert ok.all()
    np.testing.assert_allclose(obj_group, obj_plain, rtol=1e-8)
    np.testing.assert_allclose(theta_group, theta_plain, atol=1e-5)
    names = plain.law.names
    got = [theta_group[0, names.index(n)] for n in ("m", "k", "amp")]
    np.testing.assert_allclose(got, PLANTED, atol=0.05)  # 240 points at 2% noise


def test_summary_is_exact_for_least_squares():
    """Plain least squares on the summaries (means, the mean's noise) has the same optimum
    as on every point; Huber's ρ differs, which is why summaries only choose starts."""
    g = grouped(_sigmoid_problem(seeds=15, rng=np.random.default_rng(2), outliers=False))
    plain_ls = Problem(**{**g.__dict__, "delta": None})
    summary = summarised(plain_ls)
    assert summary.group is None and summary.points == 12
    start = np.stack([_start(g.law)])
    np.testing.assert_allclose(summary.solve(start, ftol=1e-14)[0], plain_ls.solve(start, ftol=1e-14)[0], atol=1e-6)


def test_summarised_bootstrap_draws_solve_the_same_weighted_least_squares():
    """Resampling weights and perturbed targets (draws, M) give, draw by draw, the same
    solution on the U distinct inputs as on all M points."""
    rng = np.random.default_rng(3)
    g = grouped(_sigmoid_problem(seeds=10, rng=rng, outliers=False))
    draws = 6
    weights = rng.poisson(1.0, (draws, g.points)).astype(float)
    ys = g.y.numpy() + 0.02 * rng.standard_normal((draws, g.points))
    theta0 = g.solve(_start(g.law)[None, :])[0][0]
    full = stack([g], [draws], weights=[weights], ys=[ys], delta=None)
    small, w_u, y_u = summarised_draws(g, weights, ys)
    assert w_u.shape == (draws, 12)
    reduced = stack([small], [draws], weights=[w_u], ys=[y_u], delta=None)
    starts = np.repeat(theta0[None, :], draws, 0)
    np.testing.assert_allclose(reduced.solve(starts, ftol=1e-14)[0], full.solve(starts, ftol=1e-14)[0], atol=1e-6)


def test_log_residual_summary_uses_the_geometric_mean():
    """For the loss law (residuals in log loss), the summary of a column is the weighted
    mean of ln L: the plain and grouped least-squares optima agree."""
    rng = np.random.default_rng(4)
    params = np.repeat(np.linspace(-2, 2, 5), 4 * 8)
    tokens = np.tile(np.repeat(np.linspace(-2, 2, 4), 8), 5)
    x = {"x_params": row(params), "x_tokens": row(tokens), "x_flops": row(params + tokens)}
    theta = np.array([np.clip(np.mean([p.lower, p.upper]), p.lower + 0.1, p.upper - 0.1) for p in LOSS_LAW.params])
    loss = LOSS_LAW(torch.as_tensor(theta[None, :]), x).numpy()[0] * np.exp(0.01 * rng.standard_normal(len(params)))
    plain = Problem(law=LOSS_LAW, x=x, y=row(loss), scale=row(np.ones_like(loss)), weights=row(np.ones_like(loss)),
                    delta=None, log_residual=True)
    g = grouped(plain)
    assert g.columns == 20
    start = theta[None, :] * 0.9
    np.testing.assert_allclose(summarised(g).solve(start, ftol=1e-14)[0], plain.solve(start, ftol=1e-14)[0], atol=1e-5)
    np.testing.assert_allclose(g.solve(start, ftol=1e-14)[0], plain.solve(start, ftol=1e-14)[0], atol=1e-6)


def test_dropping_zero_weight_points_keeps_every_draws_solution():
    from forecast.fitting.problems import without_unweighted

    rng = np.random.default_rng(5)
    p = _sigmoid_problem(seeds=5, rng=rng, outliers=False)  # 60 points (not grouped here)
    draws = 8
    weights = rng.poisson(1.0, (draws, p.points)).astype(float)
    weights[:, ::3] = 0.0  # more than e⁻¹ of the points left out
    full = stack([p], [draws], weights=[weights], delta=None)
    small = without_unweighted(full)
    assert small.points < full.points and torch.equal((small.weights > 0).sum(-1), (full.weights > 0).sum(-1))
    starts = np.repeat(_start(p.law)[None, :], draws, 0)
    (theta_s, obj_s, _), (theta_f, obj_f, _) = small.solve(starts, ftol=1e-14), full.solve(starts, ftol=1e-14)
    np.testing.assert_allclose(obj_s, obj_f, rtol=1e-9)
    np.testing.assert_allclose(theta_s, theta_f, atol=1e-6)


def test_weighted_order_is_the_stable_partition_weighted_first():
    """Each row's weighted columns in order, then its unweighted ones in order (what a stable
    argsort of "unweighted" gives), cut to the row with most weighted points."""
    from forecast.fitting.problems import Problem, weighted_order

    p = _sigmoid_problem(seeds=5, rng=np.random.default_rng(7), outliers=False)
    weights = torch.tensor([[0, 2, 0, 1, 1, 0], [3, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1]], dtype=torch.float64)
    problem = Problem(law=p.law, x={}, y=weights, scale=weights, weights=weights, delta=None)
    expected = torch.tensor([[1, 3, 4], [0, 4, 5], [5, 0, 1]])
    assert torch.equal(weighted_order(problem, keep_below=1.0), expected)
    rng = np.random.default_rng(3)
    w = torch.as_tensor(rng.poisson(0.7, (200, 37)).astype(float))
    wide = Problem(law=p.law, x={}, y=w, scale=w, weights=w, delta=None)
    reference = torch.argsort((w == 0).to(torch.int8), dim=-1, stable=True)[:, :int((w > 0).sum(-1).max())]
    assert torch.equal(weighted_order(wide, keep_below=1.0), reference)


def test_draws_started_from_one_jacobian_per_problem_solve_the_same_draws():
    """`draw_start` (the law and its differences once per problem, gathered to the draws)
    gives the residuals and Jacobian the solver would compute row by row, and the same
    draws; the projected solve reaches the tightly converged optimum of every draw."""
    from forecast.fitting.optimize import forward_jacobian
    from forecast.fitting.problems import draw_start, gather_points, weighted_order

    rng = np.random.default_rng(7)
    problems = [_sigmoid_problem(seeds=s, rng=rng, outliers=False) for s in (3, 5)]  # 36 and 60 points
    thetas = [p.solve(_start(p.law)[None, :])[0][0] for p in problems]
    counts = [40, 25]
    weights = [rng.poisson(1.0, (n, p.points)).astype(float) for p, n in zip(problems, counts)]
    ys = [p.y.numpy() + 0.02 * rng.standard_normal((n, p.points)) for p, n in zip(problems, counts)]
    stacked = stack(problems, counts, weights=weights, ys=ys, delta=None)
    order = weighted_order(stacked)
    assert order is not None
    stacked = gather_points(stacked, order)
    starts = np.concatenate([np.repeat(t[None, :], n, 0) for t, n in zip(thetas, counts)])
    r0, j0 = draw_start(problems, thetas, counts, stacked, order)
    resid = stacked.at(None)[0]
    u = torch.as_tensor(starts)
    weighted = stacked.weights > 0
    torch.testing.assert_close(r0[weighted], resid(u)[weighted], rtol=0, atol=1e-12)
    upper = torch.as_tensor(problems[0].law.upper)
    j_rows = forward_jacobian(resid, u, resid(u), upper)
    torch.testing.assert_close(j0[weighted], j_rows[weighted], rtol=1e-6, atol=1e-6)
    shared, plain, tight = (stacked.solve(starts, ftol=1e-5, box=True, start=(r0, j0)),
                            stacked.solve(starts, ftol=1e-5, box=True), stacked.solve(starts, 300, 1e-13, box=True))
    np.testing.assert_allclose(shared[0], plain[0], atol=1e-6)
    assert np.all(shared[1] - tight[1] <= 1e-4 * (1 + tight[1]))


def test_draws_solved_in_bands_of_width_match_the_padded_batch():
    from forecast.fitting.problems import gather_points, rows_of, weighted_order, width_bands

    rng = np.random.default_rng(8)
    p = _sigmoid_problem(seeds=5, rng=rng, outliers=False)
    draws = 30
    weights = rng.poisson(1.0, (draws, p.points)).astype(float)
    weights[:10, 10:] = 0.0  # a third of the draws keep far fewer points
    full = stack([p], [draws], weights=[weights], delta=None)
    stacked = gather_points(full, weighted_order(full))
    bands = width_bands(stacked, 3)
    assert sorted(np.concatenate([r for r, _ in bands]).tolist()) == list(range(draws))
    assert bands[0][1] <= 10 < stacked.points and bands[-1][1] == stacked.points
    starts = np.repeat(_start(p.law)[None, :], draws, 0)
    whole = stacked.solve(starts, ftol=1e-13, box=True)[0]
    parts = np.empty_like(whole)
    for rows, width in bands:
        narrow = rows_of(stacked, rows, width)
        assert narrow.points == width and torch.all(narrow.weights.sum(-1) == stacked.weights[rows].sum(-1))
        parts[rows] = narrow.solve(starts[rows], ftol=1e-13, box=True)[0]
    np.testing.assert_allclose(parts, whole, rtol=1e-4, atol=1e-5)  # rows are independent: the same optimum
