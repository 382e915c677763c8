"""Fits at sweep scale: many seeds per size, many skills. Repeated points are summarised
without changing the answer, skills are fitted in bounded batches with progress, and the
planted transitions of a small sweep come back inside their intervals."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO

from forecast.fitting.batches import skill_batches
from forecast.fitting.estimate import bootstrap_weights
from forecast.fitting.fit import FitOptions
from forecast.fitting.observations import observations
from forecast.fits import fit

sys.path.insert(0, str(REPO / "benchmarks"))
from sweep import make_sweep, recovered  # noqa: E402  (the benchmark's generator, tested here)


def _dense_accelerates(obs, noise: float) -> bool | None:
    """The reference: the full design, an intercept and a slope column per run."""
    keep = obs.accuracy <= 0.5 * (obs.chance + obs.top)
    runs = [r for r in np.unique(obs.run[keep]) if np.sum(keep & (obs.run == r)) >= 3]
    rows, y = [], []
    for k, r in enumerate(runs):
        idx = np.flatnonzero(keep & (obs.run == r))
        x = np.log(obs.tokens[idx]) - np.log(obs.tokens[idx]).mean()
        for xi, yi in zip(x, obs.accuracy[idx]):
            row = np.zeros(2 * len(runs) + 1)
            row[2 * k], row[2 * k + 1], row[-1] = 1.0, xi, xi**2
            rows.append(row)
            y.append(yi)
    if len(y) < 4:
        return None
    design, y = np.array(rows), np.array(y)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    spread = max(float(np.sum((y - design @ coef) ** 2)) / max(len(y) - design.shape[1], 1), noise**2)
    return bool(coef[-1] > 2 * np.sqrt(np.linalg.pinv(design.T @ design)[-1, -1] * spread))


def test_curvature_within_runs_matches_the_full_design():
    runs, _ = make_sweep(sizes=5, seeds=3, skills=8, checkpoints=8, items=300, seed=1)
    answers = []
    for skill in runs[0].skills:
        obs = observations(runs, skill)
        for noise in (0.002, 0.02, 0.08):
            answers.append(obs.accelerates(noise))
            assert answers[-1] == _dense_accelerates(obs, noise), (skill, noise)
    assert True in answers and False in answers  # both outcomes exercised


def test_bootstrap_weights_resample_runs_within_size_and_points_within_runs():
    runs, _ = make_sweep(sizes=3, seeds=4, skills=1, checkpoints=5, seed=2)
    obs = observations(runs, "task00")
    run_w, point_w = bootstrap_weights(obs, 2000, np.random.default_rng(0))
    for size in obs.sizes:  # each size draws as many runs as it has
        at = obs.params == size
        per_run = run_w[:, at].reshape(2000, -1, 5)[:, :, 0]
        assert np.all(per_run.sum(1) == 4)
        assert np.all(run_w[:, at].reshape(2000, -1, 5).std(-1) == 0)  # a run's points share its count
    np.testing.assert_allclose(point_w.mean(0), run_w.mean(0), atol=0.1)  # Poisson(count) per point
    np.testing.assert_allclose(run_w.mean(0), 1.0, atol=0.06)


def test_skill_batches_are_bounded_and_keep_every_skill_in_order():
    runs, _ = make_sweep(sizes=3, seeds=2, skills=7, checkpoints=4)
    names = list(runs[0].skills)
    per_skill = 3 * 2 * 4
    batches = skill_batches(runs, names, points=2 * per_skill + 1)
    assert [s for b in batches for s in b] == names
    assert [len(b) for b in batches] == [2, 2, 2, 1]
    assert skill_batches(runs, names, points=1) == [[n] for n in names]  # too big: one by one


def test_batches_change_no_fit_and_progress_reaches_the_total(monkeypatch):
    runs, _ = make_sweep(sizes=4, seeds=3, skills=3, checkpoints=6, seed=3)
    options = FitOptions(draws=40, laws=("compute_sigmoid", "log_linear"))
    together = fit(runs, options=options)
    calls = []
    monkeypatch.setattr("forecast.fitting.fit.skill_batches", lambda rs, sk: skill_batches(rs, sk, points=1))
    apart = fit(runs, options=options, progress=lambda done, total, skill: calls.append((done, total, skill)))
    assert calls == [(0, 3, ""), (1, 3, "task00"), (2, 3, "task01"), (3, 3, "task02")]
    for a, b in zip(together.skills, apart.skills):
        assert a.law == b.law
        for ca, cb in zip(a.candidates, b.candidates):
            np.testing.assert_allclose(ca.fit.theta, cb.fit.theta, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(ca.fit.draws, cb.fit.draws, rtol=1e-6, atol=1e-9)  # draws: ftol 1e-5


@pytest.mark.slow
def test_a_small_sweep_recovers_its_planted_midpoints():
    """8 sizes × 10 seeds × 8 checkpoints × 6 skills: the forecast grok points at the
    size crossing mid-training hold the planted ones at about their 80% level (at least 4 of 6) and are close."""
    runs, planted = make_sweep(sizes=8, seeds=10, skills=6, checkpoints=8, smallest=1e6, largest=1e8, seed=4)
    fits = fit(runs, options=FitOptions(draws=200))
    rec = recovered(fits, planted, np.unique([r.params for r in runs]))
    assert rec.skills >= 5
    assert rec.covered >= 4
    assert rec.median_log_error < 0.3


def test_holdout_scores_of_many_runs_match_run_by_run_scoring():
    """`holdout_items` scores every held-out run at once; the reference scores them one by one."""
    import math

    from forecast.fitting.selection import MAX_SHIFT, holdout_items

    runs, _ = make_sweep(sizes=4, seeds=5, skills=1, checkpoints=6, seed=5)
    (sf,) = fit(runs, options=FitOptions(draws=0, laws=("compute_sigmoid",))).skills
    cf = sf.candidates[0].fit
    obs = observations(runs, "task00")
    held = obs.subset(obs.params == obs.params.max())
    items = holdout_items(cf, held, 0.01, 0, {int(r): 1.0 + r for r in np.unique(held.run)})
    shifts = np.linspace(-MAX_SHIFT, MAX_SHIFT, 161)
    assert len(items) == 5
    for item, r in zip(items, np.unique(held.run)):
        run = held.subset(held.run == r)
        pred = cf.accuracy(cf.theta, run.params, run.tokens)[0]
        shifted = cf.accuracy(cf.theta, run.params[None, :], run.tokens[None, :] * np.exp(shifts)[:, None])
        errors = np.mean(np.abs(shifted - run.accuracy[None, :]), axis=1)
        good = np.flatnonzero(errors <= errors.min() + max(0.5 * 0.01, 0.002))
        best = good[np.argmin(np.abs(shifts[good]))]
        last = int(np.argmax(run.tokens))
        assert item.distance == 1.0 + r and item.shift == shifts[best]
        assert math.isclose(item.error, run.accuracy[last] - pred[last], abs_tol=1e-12)
        assert math.isclose(item.path, float(np.sqrt(np.mean((run.accuracy - pred) ** 2))), abs_tol=1e-12)
        aligned = float(np.sqrt(np.mean((shifted[best] - run.accuracy) ** 2)))
        assert math.isclose(item.misfit, math.sqrt(max(0.0, aligned**2 - 0.01**2)), abs_tol=1e-12)


def test_the_fit_progress_bar_draws_on_a_terminal_and_stays_silent_elsewhere(monkeypatch):
    import io

    from rich.console import Console

    import forecast.cli.render as render

    screen = io.StringIO()
    monkeypatch.setattr(render, "log", Console(file=screen, force_terminal=True, width=120))
    with render.fit_progress("fitting 3 runs", enabled=True) as report:
        report(1, 2, "task00")
        report(2, 2, "task01")
    assert "2/2" in screen.getvalue() and "skills" in screen.getvalue()
    quiet = io.StringIO()
    monkeypatch.setattr(render, "log", Console(file=quiet, force_terminal=False, width=120))
    with render.fit_progress("fitting 3 runs", enabled=False) as report:
        assert report is None
    assert quiet.getvalue() == ""


def test_identical_jobs_are_fitted_once_and_share_the_result(monkeypatch):
    import forecast.fitting.estimate as estimate
    from forecast.fitting.candidates import Scales, Spec

    runs, _ = make_sweep(sizes=4, seeds=2, skills=1, checkpoints=6, seed=6)
    obs = observations(runs, "task00")
    small = obs.params < obs.sizes[-1]
    spec, scales = Spec("compute_sigmoid"), Scales.of(obs)
    job = lambda o: estimate.Job(spec, o, scales, 0.0, 0.02)  # noqa: E731
    # the same sizes cut twice (two hold-out origins) and a different data set
    jobs = [job(obs.subset(small)), job(obs), job(obs.subset(small.copy()))]
    fitted: list[int] = []
    real = estimate._fit_distinct
    monkeypatch.setattr(estimate, "_fit_distinct", lambda js, d, r: fitted.append(len(js)) or real(js, d, r))
    results = estimate.fit_jobs(jobs, report=False)
    assert fitted == [2]
    assert results[0] is results[2] and results[1] is not results[0]
    alone = real([jobs[2]], 0, False)[0]
    np.testing.assert_allclose(results[2].theta, alone.theta, rtol=1e-6)  # batched with others: same optimum
    assert not np.allclose(results[1].theta, results[0].theta)
    # with bootstrap draws, jobs seeded differently are different fits
    seeded = [jobs[0], estimate.Job(spec, jobs[2].obs, scales, 0.0, 0.02, seed=(1,))]
    assert estimate.job_key(seeded[0], 10) != estimate.job_key(seeded[1], 10)
    assert estimate.job_key(seeded[0], 0) == estimate.job_key(seeded[1], 0)
