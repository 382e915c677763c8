"""Forecasts borrowed across families (`--pool families`): planted shared slopes and family
offsets, recovered for a family too small to fit a law of its own, and said so."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import invoke, output

from forecast import FitOptions, Recipe, Run, fit, make_series, write_runs

SLOPE = 1.1  # logit per e-fold of parameters, shared by every family
OFFSETS = {"alpha": -1.0, "beta": 0.0, "gamma": 0.8, "delta": -0.4, "small": 0.5}


def truth(family: str, params: float) -> float:
    return 0.25 + 0.75 / (1 + np.exp(-(OFFSETS[family] + SLOPE * np.log(params / 1e9))))


def _board(rng: np.random.Generator, skip: tuple[str, float] | None = None) -> list[Run]:
    """One single-checkpoint run per model, like a leaderboard; `skip` leaves one model out."""
    sizes = {f: np.geomspace(1e8, 3e10, 5) for f in OFFSETS if f != "small"} | {"small": np.array([2e9, 2e10])}
    runs = []
    for family, members in sizes.items():
        for n in members:
            if skip == (family, n):
                continue
            acc = float(np.clip(truth(family, n) + rng.normal(0, 0.01), 0, 1))
            series = make_series("mc", [1], [20 * n], accuracy=[acc], n=[2000], params=n, chance=0.25)
            runs.append(Run(f"{family}-{n:.0e}", float(n), family, Recipe(), {"mc": series}, source="test"))
    return runs


@pytest.fixture(scope="module")
def pooled():
    runs = _board(np.random.default_rng(0), skip=("small", 2e10))
    return fit(runs, options=FitOptions(draws=100, pool="families"))


def test_a_one_member_family_is_forecast_from_the_others_slope(pooled):
    (f,) = pooled.predict(2e10, tokens=4e11, family="small", skills=["mc"])
    expected = truth("small", 2e10)
    assert f.accuracy.low <= expected <= f.accuracy.high, (f.accuracy, expected)
    assert abs(f.accuracy.median - expected) < 0.05
    assert set(f.borrowed_from) == {"alpha", "beta", "gamma", "delta"}
    assert any(n.code == "pooled-families" and "alpha" in n.message for n in f.notes)
    (sf,) = pooled.select("small")
    assert sf.candidates[0].fit.spec.law == "sigmoid_nd"
    # tokens grow with size in every family here (20 per parameter): the law's N and D slopes
    # share the one slope along that path
    fitted = sf.candidates[0].fit
    assert fitted.param("b")[0] + fitted.param("c")[0] == pytest.approx(SLOPE, rel=0.15)


def test_without_pooling_a_one_member_family_supports_no_number():
    runs = _board(np.random.default_rng(0), skip=("small", 2e10))
    (sf,) = fit(runs, family="small", options=FitOptions(draws=50)).skills
    assert not sf.predictable and "single checkpoint" in sf.reason


def test_cli_pool_flag_names_the_families_in_json(tmp_path):
    write_runs(_board(np.random.default_rng(1), skip=("small", 2e10)), tmp_path / "runs")
    assert invoke("fit", tmp_path / "runs", "--out", tmp_path / "fits", "--pool", "families", "--draws", "60",
                  "--no-losses").exit_code == 0
    doc = output(invoke("predict", "--params", "20B", "--tokens", "400B", "--family", "small", "--fits",
                        tmp_path / "fits", "--json"), "predict")
    (f,) = doc["forecasts"]
    assert sorted(f["borrowed_from"]) == ["alpha", "beta", "delta", "gamma"] and f["accuracy"]["median"] > 0.25


def test_unknown_tokens_forecast_in_parameters_alone_with_strict_json(tmp_path):
    """Leaderboard rows that publish no training tokens: a law in parameters alone, and the
    JSON says tokens are unknown (null), never NaN."""
    rng = np.random.default_rng(2)
    runs = []
    for n in np.geomspace(1e8, 1e10, 5):
        acc = float(truth("beta", n) + rng.normal(0, 0.005))
        series = make_series("mc", [1], [float("nan")], flops=[float("nan")], accuracy=[acc], n=[2000], chance=0.25)
        runs.append(Run(f"u-{n:.0e}", float(n), "unknown", Recipe(), {"mc": series}, source="test"))
    write_runs(runs, tmp_path / "runs")
    assert invoke("fit", tmp_path / "runs", "--out", tmp_path / "fits", "--draws", "60", "--no-losses").exit_code == 0
    (f,) = output(invoke("predict", "--params", "3e10", "--fits", tmp_path / "fits", "--json"), "predict")["forecasts"]
    assert f["tokens"] is None and f["flops"] is None and f["tokens_source"] == "unknown-like-pilots"
    assert f["accuracy"]["low"] <= truth("beta", 3e10) <= f["accuracy"]["high"]
    assert any(n["code"] == "unknown-tokens" for n in f["notes"])


def test_a_pooled_family_without_tokens_gets_no_grok_point_in_tokens(tmp_path):
    """One model of a family that publishes no tokens (DeciLM on the leaderboard), pooled with
    families that do: its accuracy is forecast, but no crossing "in tokens" of a placeholder
    token count is shown, the title says tokens are unknown, and the grade is not high."""
    runs = _board(np.random.default_rng(3), skip=("small", 2e10))
    for i, r in enumerate(runs):
        if r.family == "small":
            s = r.series["mc"]
            series = make_series("mc", [1], [float("nan")], flops=[float("nan")], accuracy=list(s.accuracy), n=[2000],
                                 chance=0.25)
            runs[i] = Run(r.name, r.params, "small", Recipe(), {"mc": series}, source="test")
    write_runs(runs, tmp_path / "runs")
    assert invoke("fit", tmp_path / "runs", "--out", tmp_path / "fits", "--pool", "families", "--draws", "60",
                  "--no-losses").exit_code == 0
    (f,) = output(invoke("predict", "--params", "2e9", "--family", "small", "--fits", tmp_path / "fits", "--json"),
                  "predict")["forecasts"]
    assert f["tokens"] is None and f["grok"]["tokens"] is None and f["grok"]["before_tokens"] is None
    assert "no training tokens" in f["grok"]["note"] and f["confidence"] != "high"
    text = invoke("predict", "--params", "2e9", "--family", "small", "--fits", tmp_path / "fits").stdout
    assert "tokens unknown" in text and " 1 tokens" not in text and "before 1 " not in text


def test_borrowed_hold_outs_split_a_planted_scatter_from_their_drift():
    """Other families' hold-outs missing by N(0, c² + (τ·d)²), c = 4 points, τ = 1 point per
    e-fold, at 1–6 e-folds: `beyond_scatter` raises the noise to c and keeps as drift only
    each hold-out's miss beyond c (a miss within c drifts not at all; one far beyond keeps
    nearly all its shift); a scatter below the noise changes nothing."""
    from forecast.fitting.pooling import POOLED_SPEC, beyond_scatter
    from forecast.fitting.selection import HoldoutItem

    rng = np.random.default_rng(3)
    d = rng.uniform(1.0, 6.0, 2000)
    errors = rng.normal(0, np.sqrt(0.04**2 + (0.01 * d) ** 2))
    items = [HoldoutItem(origin=i, distance=float(x), span=1.0, error=float(e), shift=1.0, noise=0.01)
             for i, (x, e) in enumerate(zip(d, errors))]
    split, noise = beyond_scatter({POOLED_SPEC: items}, 0.01)
    assert noise == pytest.approx(0.04, rel=0.15)
    kept = np.array([i.shift for i in split[POOLED_SPEC]])
    small, large = np.abs(errors) <= noise, np.abs(errors) > 4 * noise
    assert np.all(kept[small] == 0.0) and np.all(kept[large] > 0.95)
    assert all(i.noise == noise for i in split[POOLED_SPEC])
    same, unchanged = beyond_scatter({POOLED_SPEC: items}, 0.5)
    assert unchanged == 0.5 and same[POOLED_SPEC] == items
