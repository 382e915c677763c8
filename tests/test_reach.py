"""Selection at the target's distance: hold-outs as deep as the ladder allows, a record that
weighs each hold-out by its reach, and a two-size budget ladder checked by a hold-out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecast import Recipe, Run, make_series
from forecast.fits import fit
from forecast.fitting.fit import FitOptions
from forecast.fitting.holdout import MAX_DEPTH, holdout_origins
from forecast.forecasting.predict import predict_skill
from forecast.fitting.selection import HoldoutItem, importance
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

FAST = FitOptions(draws=40)


def test_origins_reach_as_deep_as_the_ladder_allows():
    assert holdout_origins(3, 2) == [(0, 0)]
    assert holdout_origins(5, 2) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]
    deepest = max(d for _, d in holdout_origins(12, 2))
    assert deepest == MAX_DEPTH
    for origin, depth in holdout_origins(7, 2):  # always at least two sizes to fit on
        assert 7 - 1 - origin - depth >= 2


def test_importance_is_proportional_to_distance_with_a_floor():
    items = [HoldoutItem(origin=0, distance=d, span=1.0, error=0.0, shift=0.0, noise=0.01) for d in (0.1, 1.0, 3.0)]
    w = importance(items)
    assert w.mean() == pytest.approx(1.0)
    assert w[2] / w[1] == pytest.approx(3.0)
    assert w[0] / w[1] == pytest.approx(0.5)  # the floor: half an e-fold


def test_the_deepest_hold_out_is_in_the_record():
    """Six sizes a decade apart in total: the record holds a hold-out fitted on the two
    smallest sizes and scored on the largest."""
    truth = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
    sizes = np.geomspace(1e5, 1e7, 6)
    runs = synthetic_ladder(truth, sizes, tokens_range=(3e6, 3e9), n_eval=1000, rng=np.random.default_rng(1))
    (sf,) = fit(runs, options=FAST).skills
    assert sf.calibration.max_distance >= math.log(sizes[-1] / sizes[-1 - 1 - MAX_DEPTH]) - 1e-9


def _budget_ladder(sizes, budgets, rng) -> list[Run]:
    """Sizes × token budgets (final checkpoints matter), accuracy from a planted compute
    power law: acc = 0.25 + 0.75·exp(−(C/1e15)^−0.3)."""
    runs = []
    for size in sizes:
        for budget in budgets:
            tokens = np.geomspace(budget / 30, budget, 8)
            flops = 6 * size * tokens
            p = 0.25 + 0.75 * np.exp(-((flops / 1e15) ** -0.3))
            acc = rng.binomial(3000, p) / 3000
            series = make_series("quiz", range(1, 9), tokens, accuracy=acc, n=np.full(8, 3000), params=size,
                                 chance=0.25)
            runs.append(Run(name=f"{size:.3g}-{budget:.3g}", params=float(size), family="f", recipe=Recipe("default"),
                            series={"quiz": series}, params_kind="non-embedding", seed=0, source="test"))
    return runs


def test_a_two_size_budget_ladder_is_checked_and_finds_the_trend():
    """Two sizes, four budgets each: the candidates are scored by a hold-out (the smaller
    size's budgets trace the trend that the larger size's runs test), the no-trend level
    loses, and the forecast of a 10× larger model brackets the planted law."""
    sizes, budgets = (2e7, 4e7), (4e8, 1e9, 2e9, 4e9)
    (sf,) = fit(_budget_ladder(sizes, budgets, np.random.default_rng(2)), options=FAST).skills
    assert sf.predictable
    assert sf.candidates[0].holdout is not None, "no hold-out scored the candidates"
    assert sf.law.split("[")[0] != "level"
    target, tokens = 4e8, 8e9
    forecast = predict_skill(sf, target, tokens=tokens, level=0.8)
    truth = 0.25 + 0.75 * math.exp(-((6 * target * tokens / 1e15) ** -0.3))
    assert forecast.accuracy.low <= truth <= forecast.accuracy.high
    assert abs(forecast.accuracy.median - truth) < 0.05
