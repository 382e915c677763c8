"""Every law recovers its planted parameters from noise-free data, to tight tolerance.

For each law of `forecast.fitting.laws.LAWS`: a grid of inputs (log parameters × log
tokens, their log FLOPs, a standardised loss), the law's values at planted parameters
inside its bounds, then the production solver (`least_squares_batched`, Levenberg–Marquardt
from the law's own start grid, every start one batched row). The best start must reproduce
the data exactly and land on the planted parameters: a law whose formula, bounds, starts
or parameter order were wrong would not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecast.fitting.laws import LAWS
from forecast.fitting.optimize import least_squares_batched

PLANTED = {
    "compute_sigmoid": {"m": 0.7, "k": 1.8, "amp": 0.85},
    "grok_scaling": {"mu": 0.6, "gamma": 0.8, "k": 2.2, "delta": 0.15, "amp": 0.9},
    "power_law": {"a": 0.8, "alpha": 0.6},
    "power_law_cap": {"a": 0.8, "alpha": 0.6, "amp": 0.8},
    "power_law_nd": {"a": 0.3, "alpha": 0.7, "b": 0.6, "beta": 0.4},
    "log_linear": {"level": 0.55, "slope": 0.04},  # 0.35..0.75 over the grid: never clamped
    "level": {"level": 0.42},
    "sigmoid_nd": {"a": -0.5, "b": 1.2, "c": 0.6},
    "loss_link": {"l0": 0.3, "k": 3.0, "amp": 0.9},
    "loss_law": {"e": 0.2, "a": 0.5, "alpha": 0.35, "b": 1.2, "beta": 0.4},
    "task_loss_law": {"e": 0.2, "a": 0.5, "alpha": 0.35, "b": 1.2},
}
"""Planted parameters per law (natural units of `forecast.fitting.laws`), none on a start."""


def _inputs() -> dict[str, torch.Tensor]:
    """5 sizes (±2 e-folds of N_ref) × 12 token counts (±3 e-folds of D_ref), shaped (1, 60)."""
    xn, xd = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-3, 3, 12), indexing="ij")
    xn, xd = xn.ravel(), xd.ravel()
    row = lambda v: torch.as_tensor(np.asarray(v, dtype=np.float64))[None]  # noqa: E731
    return {"x_params": row(xn), "x_tokens": row(xd), "x_flops": row(xn + xd),
            "loss": row(np.linspace(2, -2, xn.size)), "floor": torch.tensor(0.25, dtype=torch.float64),
            "top": torch.tensor(1.0, dtype=torch.float64)}


class _Problem:
    """Every row the same data: residuals law(θ) − y."""

    def __init__(self, law, x, y):
        self.law, self.x, self.y = law, x, y

    def at(self, rows):
        return (lambda theta: self.law(theta, self.x) - self.y), torch.ones_like(self.y)


def test_every_law_has_a_planted_case():
    assert set(PLANTED) == set(LAWS)
    for name, values in PLANTED.items():
        law = LAWS[name]
        assert list(values) == list(law.names)
        for p in law.params:
            assert p.lower < values[p.name] < p.upper and values[p.name] not in p.starts


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_law_recovers_planted_parameters(name):
    law = LAWS[name]
    truth = np.array([PLANTED[name][p] for p in law.names])
    x = _inputs()
    y = law(torch.as_tensor(truth)[None], x)  # (1, 60)
    starts = law.start_grid()
    result = least_squares_batched(_Problem(law, x, y), starts, law.lower, law.upper, max_iter=200, ftol=1e-15)
    best = int(np.nanargmin(result.objective))
    assert result.objective[best] < 1e-16, (name, result.objective[best])
    assert result.theta[best] == pytest.approx(truth, rel=1e-4, abs=1e-5), (name, result.theta[best], truth)
    fitted = law(torch.as_tensor(result.theta[best])[None], x)
    assert torch.allclose(fitted, y, atol=1e-7)
