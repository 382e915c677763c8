"""Selection at the target's distance: hold-outs as deep as the ladder allows, a record that
weighs each hold-out by its reach, and a two-size budget ladder checked by a hold-out."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from forecast import Recipe, Run, make_series
from forecast.fits import Fits, fit
from forecast.fitting.candidates import Spec
from forecast.fitting.fit import FitOptions
from forecast.fitting.holdout import MAX_DEPTH, holdout_origins
from forecast.forecasting.predict import predict_skill
from forecast.fitting.selection import REACH_BANDWIDTH, HoldoutItem, at_reach, importance, keep_at_reach, weigh
from forecast.forecasting.samples import SurfaceSamples
from forecast.store.files import skill_fit_from_json, skill_fit_to_json
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


# ---------------------------------------------------------------- round 2: at the target's reach

def _item(distance, error, depth=0, origin=0, noise=0.01, count=1.0):
    return HoldoutItem(origin=origin, distance=distance, span=1.0, error=error, shift=0.0, noise=noise,
                       path=abs(error), depth=depth, count=count)


def test_the_record_weighs_as_its_items_where_runs_share_a_distance():
    """Runs of one hold-out at one distance, summed up in the stored record, give the
    candidates (nearly) the weights and rates their items give."""
    rng = np.random.default_rng(3)
    scored = {Spec(law): [_item(d, float(e)) for d, e in zip(np.repeat([0.7, 1.6, 2.4], 4), rng.normal(0, s, 12))]
              for law, s in (("power_law", 0.01), ("log_linear", 0.02), ("level", 0.05))}
    scored = {s: [dataclasses.replace(i, depth=k // 4) for k, i in enumerate(items)] for s, items in scored.items()}
    weights, scores, calibration = weigh(scored)
    assert all(len(scores[s].record) == 3 for s in scored)
    again, _, cal_again = weigh({s: list(scores[s].record) for s in scored})
    assert again.keys() == weights.keys()
    for s in weights:
        assert again[s] == pytest.approx(weights[s], rel=0.02)  # the mean |error| before the cut is |mean error|
    assert cal_again.error_rate == pytest.approx(calibration.error_rate, rel=0.05)


def test_importance_at_a_target_discounts_the_hold_outs_short_of_it():
    items = [_item(d, 0.0) for d in (0.5, 1.5, 3.0, 4.0)]
    w = importance(items, target=3.0)
    assert w.sum() == pytest.approx(len(items))
    assert w[3] / w[2] == pytest.approx(4.0 / 3.0)  # beyond the target: by distance, as the fit's record
    assert w[1] / w[2] == pytest.approx(1.5 / 3.0 * math.exp(-1.5 / REACH_BANDWIDTH))
    assert w[0] < w[1] < w[2]


def test_the_law_with_the_best_record_at_the_target_reach_wins():
    """Law A extrapolates well over one e-fold and badly over three, law B the other way
    round: a target three e-folds out leans on B, more than the fit's own weights do."""
    a = [_item(0.5, 0.002), _item(0.6, -0.003), _item(3.0, 0.06, depth=1)]
    b = [_item(0.5, 0.012), _item(0.6, -0.015), _item(3.0, 0.004, depth=1)]
    scored = {Spec("power_law"): a, Spec("log_linear"): b}
    far, _, _ = weigh(scored, target=3.0)
    own, _, _ = weigh(scored)
    near, _, _ = weigh(scored, target=0.0)
    assert far[Spec("log_linear")] > 0.7
    assert far[Spec("log_linear")] > own[Spec("log_linear")] + 0.1
    assert near[Spec("power_law")] > far[Spec("power_law")] + 0.1


def test_a_law_that_flips_between_depths_is_penalised():
    """Two laws miss by the same amounts at each depth of one held-out size; one misses on
    one side at every depth, the other flips sign: the flipping one weighs less."""
    steady = [_item(1.0, 0.03, depth=0), _item(2.0, 0.05, depth=1), _item(3.0, 0.07, depth=2)]
    flips = [_item(1.0, 0.03, depth=0), _item(2.0, -0.05, depth=1), _item(3.0, 0.07, depth=2)]
    weights, _, _ = weigh({Spec("power_law"): steady, Spec("log_linear"): flips})
    assert weights[Spec("power_law")] > 0.8
    assert weights.get(Spec("log_linear"), 0.0) < 0.2


def test_records_survive_the_fit_file_and_old_files_load(tmp_path):
    """A fit keeps each candidate's record through save and load; a fit file written before
    records were kept loads with empty records, and forecasts from its stored weights."""
    truth = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
    sizes = np.geomspace(1e5, 1e7, 5)
    runs = synthetic_ladder(truth, sizes, tokens_range=(3e6, 3e9), n_eval=1000, rng=np.random.default_rng(4))
    fits = fit(runs, options=FAST)
    (sf,) = fits.skills
    assert all(c.holdout.record for c in sf.candidates)
    fits.save(tmp_path / "fits")
    (loaded,) = Fits.load(tmp_path / "fits").skills
    for c, d in zip(sf.candidates, loaded.candidates):
        rows = lambda record: np.array([dataclasses.astuple(i) for i in record], dtype=float)  # noqa: E731
        np.testing.assert_allclose(rows(d.holdout.record), rows(c.holdout.record), atol=1e-5)
    far = predict_skill(loaded, 1e8, tokens=3e9)
    samples = SurfaceSamples.of(loaded, distance=math.log(1e8 / 1e7))
    assert far.law == samples.law
    data = json.loads(json.dumps(skill_fit_to_json(sf, "test")))
    for c in data["candidates"]:
        del c["holdout"]["record"]
    old = skill_fit_from_json(data, tmp_path / "old.json")
    assert all(c.holdout.record == () for c in old.candidates)
    assert at_reach(old.candidates, 2.0) is None
    assert predict_skill(old, 1e8, tokens=3e9).law == old.law


def test_the_fit_keeps_every_law_a_target_reach_would_weigh():
    """A law that the fit's own weights drop (many short hold-outs missed) but that has the
    best record 4.5 e-folds out is kept, with weight 0, so a forecast that far can use it;
    a law bad at every reach is not kept."""
    def record(short_error, far_error):
        return [_item(0.5, (-1) ** k * short_error) for k in range(8)] + [_item(4.5, far_error, depth=1)]
    scored = {Spec("power_law"): record(0.001, 0.06), Spec("log_linear"): record(0.05, 0.002),
              Spec("level"): record(0.2, 0.3)}
    own, _, _ = weigh(scored)
    assert set(own) == {Spec("power_law")}
    kept = keep_at_reach(scored, own)
    assert kept == {Spec("power_law"): 1.0, Spec("log_linear"): 0.0}
    far, _, _ = weigh(scored, target=4.5)
    assert max(far, key=far.get) == Spec("log_linear")
