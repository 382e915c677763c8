"""The loss law fit against known answers: planted parameters and the Chinchilla points."""

import csv

import numpy as np
import pytest

from helpers import shared_data

from forecast import FitError
from forecast.fitting.loss_law import fit_loss_law


@pytest.mark.slow
def test_recovers_planted_parameters():
    rng = np.random.default_rng(0)
    params = np.repeat([1e7, 3e7, 1e8, 3e8, 1e9], 8)
    tokens = np.tile(np.geomspace(1e9, 1e11, 8), 5)
    truth = dict(E=1.7, A=400.0, B=1500.0, alpha=0.33, beta=0.30)
    loss = truth["E"] + truth["A"] * params ** -truth["alpha"] + truth["B"] * tokens ** -truth["beta"]
    fit = fit_loss_law(params, tokens, loss * np.exp(rng.normal(0, 0.003, loss.shape)), bootstrap=50)
    assert fit.E == pytest.approx(truth["E"], rel=0.05)
    assert fit.alpha == pytest.approx(truth["alpha"], rel=0.1)
    assert fit.beta == pytest.approx(truth["beta"], rel=0.1)
    assert fit.A == pytest.approx(truth["A"], rel=0.3)  # A and B trade off against α and β: looser
    assert fit.B == pytest.approx(truth["B"], rel=0.3)
    np.testing.assert_allclose(fit.predict(params, tokens), loss, rtol=0.01)
    low, high = fit.intervals["alpha"]
    assert low <= fit.alpha <= high


def test_needs_enough_points():
    with pytest.raises(FitError, match="at least 5"):
        fit_loss_law([1e8, 2e8], [1e9, 1e9], [3.0, 2.9])


@pytest.mark.slow
def test_reproduces_epoch_chinchilla_fit():
    """Besiroglu et al. 2024: E = 1.817, A = 477.8, B = 2143.9, α = 0.3473, β = 0.3672."""
    path = shared_data("chinchilla", "chinchilla_approach3.csv")
    rows = [r for r in csv.DictReader(path.open()) if r["excluded_in_epoch_fit"] == "0"]
    assert len(rows) == 240
    fit = fit_loss_law(*(np.array([float(r[c]) for r in rows]) for c in ("params", "tokens", "value")),
                       bootstrap=100)
    assert fit.E == pytest.approx(1.817, rel=0.02)
    assert fit.alpha == pytest.approx(0.3473, rel=0.02)
    assert fit.beta == pytest.approx(0.3672, rel=0.02)
    assert fit.A == pytest.approx(477.8, rel=0.15)
    assert fit.B == pytest.approx(2143.9, rel=0.15)


def test_compute_optimal_split_minimises_the_loss():
    from forecast.fitting.loss_law import LossLawFit

    law = LossLawFit(E=1.8, A=480.0, B=2140.0, alpha=0.35, beta=0.37, objective=0.0, intervals={}, level=0.8,
                     n_points=0)
    params, tokens = law.compute_optimal(1e23)
    assert 6 * params * tokens == pytest.approx(1e23)
    grid = np.geomspace(params / 3, params * 3, 201)
    losses = law.predict(grid, 1e23 / (6 * grid))
    assert grid[np.argmin(losses)] == pytest.approx(params, rel=0.02)
