"""The latent-capability law as a fit path (`pool="latent"`, `forecast.fitting.latent_fit`):
a planted table of families on one capability, fitted, stored, forecast by `predict`, and
the forecast naming what it borrowed."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from helpers import invoke, output
from test_latent import BENCH, FAMILIES, _table, _truth

from forecast import FitOptions, Fits, Recipe, Run, fit, make_series, write_runs
from forecast.fitting.candidates import Scales
from forecast.fitting.latent import fit_latent
from forecast.fitting.latent_fit import LATENT_SPEC, LatentContext, _as_sigmoid_nd
from forecast.store.files import skill_fit_from_json

SIZES = {f: list(np.geomspace(1e9, 3e10, 5)) for f in FAMILIES} | {"a": [1e9, 2e9, 4e9]}
TARGET = 1.6e10


@pytest.fixture(scope="module")
def latent_fits() -> Fits:
    return fit(_table(SIZES, np.random.default_rng(0)), options=FitOptions(draws=20, pool="latent"))


def test_predict_places_a_family_by_its_offset_and_carries_the_others_crossing(latent_fits):
    """Family `a` has only small members, where `hard` still sits at 0; `predict` forecasts
    its 4× larger model on the sigmoid the other families crossed: the jump, with P(grok)."""
    forecasts = {f.skill: f for f in latent_fits.predict(TARGET, tokens=20 * TARGET, family="a")}
    assert set(forecasts) == set(BENCH)
    for skill, f in forecasts.items():
        truth = _truth("a", TARGET, 20 * TARGET, skill)
        assert f.accuracy.median == pytest.approx(truth, abs=0.03), skill
        assert f.accuracy.low <= truth <= f.accuracy.high, skill
        assert f.borrowed == "latent" and set(f.borrowed_from) == {"b", "c", "d"}
        assert set(f.borrowed_skills) == set(BENCH) - {skill}
        assert f.law.startswith("sigmoid_nd") and "via=latent" in f.law
    hard = forecasts["hard"]
    small = _truth("a", 4e9, 80e9, "hard")
    assert hard.accuracy.median - small > 0.1  # not the flat level of the family's largest member
    assert hard.p_grok is not None and 0 <= hard.p_grok <= 1
    assert str(hard.status) not in ("flat", "not-predictable")
    doc = hard.to_json()
    assert doc["borrowed"] == "latent" and sorted(doc["borrowed_skills"]) == ["easy", "mid"]


def test_the_candidate_is_the_latent_law_for_that_family():
    """The stored `sigmoid_nd` candidate predicts exactly what the latent law does, for runs
    with tokens (b = c = slope) and without (D ∝ N: b = 2·slope, c = 0)."""
    lf = fit_latent(_table(SIZES, np.random.default_rng(3)), draws=0)
    scales = Scales(params=3e9, tokens=6e10, flops=1e21, flops_per_param_token=6.0)
    for family in ("a", "c"):
        for skill in BENCH:
            theta = _as_sigmoid_nd(lf, family, skill, scales, True, None)
            for n in (2e9, 5e10):
                tokens = 20 * n
                x = {"x_params": math.log(n / scales.params), "x_tokens": math.log(tokens / scales.tokens)}
                b = lf.skills.index(skill)
                ours = lf.floor[b] + (lf.top[b] - lf.floor[b]) / (1 + math.exp(-(theta[0] + theta[1] * x["x_params"]
                                                                               + theta[2] * x["x_tokens"])))
                f = lf.families.index(family)
                raw = lf.point(family, skill, math.log(6 * n * tokens / lf.flops_ref)) - lf.family_residual[f, b]
                if 0.01 < raw < 0.99:  # `point` clips to [0, 1] after adding the family's residual
                    assert ours == pytest.approx(raw, abs=1e-9)
                intercept, slope = lf.logit_line(family, skill)
                logit = intercept + slope * math.log(6 * n * tokens / lf.flops_ref)
                assert ours == pytest.approx(lf.floor[b] + (lf.top[b] - lf.floor[b]) / (1 + math.exp(-logit)), abs=1e-9)
            unknown = _as_sigmoid_nd(lf, family, skill, scales, False, None)
            assert unknown[2] == 0.0 and unknown[1] == pytest.approx(2 * theta[1])


def test_calibration_comes_from_each_family_s_largest_member_held_out(latent_fits):
    (sf,) = latent_fits.select("c", skills=["mid"])
    assert sf.calibration.holdouts == len(FAMILIES)  # every family has ≥ 2 sizes here
    assert any(c.fit.spec == LATENT_SPEC for c in sf.candidates)
    assert sf.calibration.max_distance > 0


def test_the_width_beyond_the_scatter_is_each_hold_out_s_own_miss():
    """One family's largest member planted 15 points below its law on `mid`: beyond the
    scatter c (the noise), each hold-out keeps its own miss, for a forecast to weigh at its
    target's reach, not one rate per e-fold fitted to every hold-out at once."""
    runs = _table(SIZES, np.random.default_rng(0))
    top = max((r for r in runs if r.family == "d"), key=lambda r: r.params)
    s = top.series["mid"]
    top.series["mid"] = dataclasses.replace(s, accuracy=s.accuracy - 0.15)
    (sf,) = fit(runs, options=FitOptions(draws=0, pool="latent")).select("c", skills=["mid"])
    (latent,) = [c for c in sf.candidates if c.fit.spec == LATENT_SPEC]
    record = latent.holdout.record
    assert record and all(i.noise == pytest.approx(sf.noise) for i in record)
    assert max(i.misfit for i in record) > 0.1
    assert [i.misfit for i in record] == pytest.approx([math.sqrt(max(0.0, i.error**2 - sf.noise**2)) for i in record])


def test_stored_and_loaded_with_what_was_borrowed(latent_fits, tmp_path):
    latent_fits.save(tmp_path / "fits")
    loaded = Fits.load(tmp_path / "fits")
    (f,) = loaded.predict(TARGET, tokens=20 * TARGET, family="a", skills=["hard"])
    (g,) = latent_fits.predict(TARGET, tokens=20 * TARGET, family="a", skills=["hard"])
    assert f.accuracy.median == pytest.approx(g.accuracy.median, abs=1e-4)
    assert f.borrowed == "latent" and f.borrowed_skills == g.borrowed_skills
    # an older fit file, written before `borrowed_skills` existed, still loads
    path = next((tmp_path / "fits").rglob("hard-*.json"))
    data = json.loads(path.read_text())
    data.pop("borrowed_skills")
    old = skill_fit_from_json(data, path)
    assert old.borrowed_skills == () and old.borrowed_from == f.borrowed_from


def test_trajectories_and_small_tables_keep_their_own_laws():
    """Runs with several checkpoints (a pilot ladder) are not a leaderboard: no latent law."""
    runs = []
    for family in ("x", "y", "z"):
        for n in (1e8, 3e8, 1e9):
            tokens = [2e9, 1e10, 2e10]
            acc = [0.3 + 0.1 * math.log10(n / 1e8) + 0.02 * k for k in range(3)]
            runs.append(Run(f"{family}-{n:.0e}", n, family, Recipe(),
                            {"mc": make_series("mc", [1, 2, 3], tokens, accuracy=acc, params=n, chance=0.25)},
                            source="test"))
    context = LatentContext({r.group: [r] for r in runs}, draws=0, seed=0)
    assert not context.covers("x", "default", "mc")
    board = _table(SIZES, np.random.default_rng(4))
    (sf,) = fit(runs + board, family="x", options=FitOptions(draws=10, pool="latent", laws=("level", "log_linear"))).skills
    assert sf.predictable and not sf.borrowed_from and "latent" not in sf.law


def test_cli_pool_latent_names_what_was_borrowed(tmp_path):
    write_runs(_table(SIZES, np.random.default_rng(1)), tmp_path / "runs")
    assert invoke("fit", tmp_path / "runs", "--out", tmp_path / "fits", "--pool", "latent", "--draws", "10",
                  "--no-losses").exit_code == 0
    doc = output(invoke("predict", "--params", "16B", "--tokens", "320B", "--family", "a", "--skill", "hard",
                        "--fits", tmp_path / "fits", "--json"), "predict")
    (f,) = doc["forecasts"]
    assert f["borrowed"] == "latent" and sorted(f["borrowed_from"]) == ["b", "c", "d"]
    table = invoke("predict", "--params", "16B", "--tokens", "320B", "--family", "a", "--skill", "hard",
                   "--fits", tmp_path / "fits")
    assert table.exit_code == 0 and "latent" in table.output


def test_cli_unknown_pool_is_a_usage_error(tmp_path):
    write_runs(_table({f: [1e9, 4e9] for f in FAMILIES}, np.random.default_rng(1)), tmp_path / "runs")
    bad = invoke("fit", tmp_path / "runs", "--out", tmp_path / "fits", "--pool", "sloth")
    assert bad.exit_code == 2 and "--pool" in bad.output and not (tmp_path / "fits").exists()


def test_error_model_recovers_a_planted_scatter_and_rate():
    """Hold-out errors drawn as N(0, c² + (τ·d)²) at distances 0.5–5 e-folds: `error_model`
    gives back c and τ."""
    from forecast.fitting.latent_fit import error_model
    from forecast.fitting.selection import HoldoutItem

    rng = np.random.default_rng(5)
    d = rng.uniform(0.5, 5.0, 3000)
    errors = rng.normal(0, np.sqrt(0.03**2 + (0.02 * d) ** 2))
    items = [HoldoutItem(origin=i, distance=float(x), span=1.0, error=float(e), shift=0.0, noise=0.01)
             for i, (x, e) in enumerate(zip(d, errors))]
    c, tau = error_model(items)
    assert c == pytest.approx(0.03, rel=0.2) and tau == pytest.approx(0.02, rel=0.2)
    assert error_model(items, 0.03)[1] == pytest.approx(0.02, rel=0.15)
