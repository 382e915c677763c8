"""The task-loss chain (N, D → task loss → accuracy) against a planted chain on a budget
ladder: sizes trained to several token budgets, whose intermediate checkpoints sit mid
learning-rate schedule (their accuracy below an annealed model's at the same task loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecast import Recipe, Run, make_series
from forecast.fitting.candidates import chain_parts
from forecast.fitting.fit import FitOptions
from forecast.fitting.laws import TASK_LOSS_LAW
from forecast.fits import fit
from forecast.forecasting.predict import predict_skill

TRUTH = dict(E=0.6, A=60.0, alpha=0.3, B=150.0, beta=0.3, L0=1.05, k=9.0)
"""Planted task loss L = E + A·N^−α + B·D^−β (nats; α = β, the chain's task-loss law) and link
acc = 0.25 + 0.75·σ(−k·(L − L0))."""
SIZES = (1e7, 2e7, 4e7, 8e7, 1.6e8)
TARGET = 6.4e8  # 4× beyond the largest pilot
BUDGETS = (10.0, 20.0, 40.0, 100.0)  # tokens per parameter
LOSS_NOISE = 0.001
"""Relative noise of each logged task loss (an eval set of a few thousand items)."""
SCHEDULE_GAP = 0.03
"""Accuracy a checkpoint mid learning-rate schedule lacks against the link (the final one, annealed, none)."""


def planted_loss(params: float, tokens: np.ndarray) -> np.ndarray:
    return TRUTH["E"] + TRUTH["A"] * params ** -TRUTH["alpha"] + TRUTH["B"] * np.asarray(tokens) ** -TRUTH["beta"]


def planted_accuracy(loss: np.ndarray) -> np.ndarray:
    return 0.25 + 0.75 / (1 + np.exp(TRUTH["k"] * (np.asarray(loss) - TRUTH["L0"])))


def _ladder(sizes, rng: np.random.Generator) -> list[Run]:
    runs = []
    for size in sizes:
        for per_param in BUDGETS:
            tokens = np.geomspace(per_param * size / 20, per_param * size, 8)
            loss = planted_loss(size, tokens) * np.exp(rng.normal(0, LOSS_NOISE, 8))
            acc = planted_accuracy(loss) - SCHEDULE_GAP * (tokens < tokens[-1])  # annealed at the end only
            series = make_series("quiz", range(1, 9), tokens, accuracy=rng.binomial(4000, acc) / 4000,
                                 loss=loss, n=np.full(8, 4000), params=size, chance=0.25)
            runs.append(Run(name=f"{size:.3g}-{per_param:g}x", params=float(size), family="f",
                            recipe=Recipe("default"), series={"quiz": series}, params_kind="non-embedding", seed=0,
                            source="test"))
    return runs


@pytest.fixture(scope="module")
def chain_fit():
    (sf,) = fit(_ladder(SIZES, np.random.default_rng(3)),
                options=FitOptions(laws=("two_step",), draws=60)).skills
    return sf


def test_a_planted_chain_is_recovered_from_the_final_checkpoints(chain_fit):
    """Step 1 (the loss law, final checkpoints) and step 2 (the link, final checkpoints of
    a budget ladder) recover the planted parameters in natural units."""
    c = next(c for c in chain_fit.candidates if c.fit.spec.law == "two_step")  # the heaviest floor
    f, names = c.fit, c.fit.spec.param_names
    p = {n: float(f.theta[names.index(n)]) for n in names}
    assert np.exp(p["loss.e"]) == pytest.approx(TRUTH["E"], rel=0.15)
    assert p["loss.alpha"] == pytest.approx(TRUTH["alpha"], abs=0.05)  # one exponent for N and D
    # the link in natural units: midpoint L0 = L_ref + l0·L_scale, steepness k / L_scale per nat
    assert f.loss_ref + p["link.l0"] * f.loss_scale == pytest.approx(TRUTH["L0"], abs=0.03)
    assert p["link.k"] / f.loss_scale == pytest.approx(TRUTH["k"], rel=0.25)
    # and the loss law where it matters: at the next size, compute-optimal
    tokens = 20 * TARGET
    loss = TASK_LOSS_LAW(torch.as_tensor(chain_parts(f.theta)[0][None]), f.scales.inputs(TARGET, tokens)).item()
    assert loss == pytest.approx(float(planted_loss(TARGET, tokens)), rel=0.01)


def test_the_chain_forecasts_the_next_size(chain_fit):
    """Fitted on four sizes, the chain forecasts one 4× beyond (every budget)
    within 1.5 points of the planted accuracy, inside its 80% interval; a link read off
    every checkpoint would sit up to the schedule gap (3 points) low."""
    for per_param in BUDGETS:
        tokens = per_param * TARGET
        truth = float(planted_accuracy(planted_loss(TARGET, tokens)))
        forecast = predict_skill(chain_fit, TARGET, tokens=tokens, level=0.8)
        assert abs(forecast.accuracy.median - truth) < 0.015, (per_param, forecast.accuracy.median, truth)
        assert forecast.accuracy.low <= truth <= forecast.accuracy.high


def test_the_forecast_says_which_path_produced_the_number(chain_fit):
    """A forecast through the chain says so: `path` on the forecast and in its JSON, and
    the word in the predict table's law column; a law straight in (N, D, C) is "direct"."""
    from rich.console import Console

    from forecast.cli.render import forecast_table

    forecast = predict_skill(chain_fit, TARGET, tokens=20 * TARGET)
    assert forecast.law.startswith("two_step") and forecast.path == "via task loss"
    assert forecast.to_json()["path"] == "via task loss"
    console = Console(width=200, record=True)
    console.print(forecast_table([forecast], "forecast"))
    assert "two_step via task loss" in console.export_text()
    (direct,) = fit(_ladder(SIZES[:3], np.random.default_rng(4)),
                    options=FitOptions(laws=("power_law",), draws=20)).skills
    assert predict_skill(direct, TARGET, tokens=20 * TARGET).path == "direct"
