"""Fits and forecasts of the real ladders in ../shared/data (skipped when absent): every
skill ends fitted or not-predictable with a reason, parameters are sane, and a 70B forecast
gives every skill a status and no number for a not-predictable one."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO, shared_data

from forecast.fitting.fit import FitOptions
from forecast.fits import fit
from forecast.fitting.status import Status

sys.path.insert(0, str(REPO / "benchmarks"))
import real_data  # noqa: E402  (the README's import settings, shared with the benchmarks)

FAST = FitOptions(draws=60)


@pytest.fixture(scope="module")
def pythia_fits():
    shared_data("pythia", "pythia_evals.csv")
    return fit(real_data.pythia(), options=FAST)


@pytest.fixture(scope="module")
def olmo_fits():
    shared_data("olmo-ladder")
    return fit(real_data.olmo(), options=FAST)


def _check(fits, expected_skills):
    assert {s.skill for s in fits.skills} >= expected_skills
    for sf in fits.skills:
        if sf.predictable:
            assert sf.law and sf.why and sf.candidates
            for c in sf.candidates:
                assert np.all(np.isfinite(c.fit.theta)) and len(c.fit.draws)
                assert sf.chance - 0.15 <= c.fit.floor <= sf.chance + 1e-9
        else:
            assert sf.reason


def test_pythia_every_skill_fitted_or_explained(pythia_fits):
    assert pythia_fits.groups() == [("pythia", "default"), ("pythia-deduped", "default")]
    _check(pythia_fits, {"arc_easy", "arc_challenge", "piqa", "lambada_openai", "sciq", "winogrande", "mmlu"})
    mmlu = pythia_fits.select("pythia", skills=["mmlu"])[0]
    # MMLU sits near chance at every Pythia size: a forecast near chance, its transition still ahead
    f = pythia_fits.predict(2.8e9, tokens=3e11, family="pythia", skills=["mmlu"])[0]
    assert mmlu.predictable and f.status in ("flat", "smooth", "emerges-later")
    assert 0.2 < f.accuracy.low and f.accuracy.high < 0.35
    assert pythia_fits.select("pythia", skills=["arc_easy"])[0].predictable


def test_olmo_every_skill_fitted_or_explained(olmo_fits):
    _check(olmo_fits, {"mmlu", "hellaswag", "arc_easy", "arc_challenge", "boolq", "csqa", "openbookqa", "piqa",
                       "socialiqa", "winogrande"})
    assert sum(s.predictable for s in olmo_fits.skills) >= 8
    assert any(n.code == "budget-ladder" for s in olmo_fits.skills for n in s.notes)


@pytest.mark.parametrize("which", ["pythia", "olmo"])
def test_predict_70b_on_real_fits(which, pythia_fits, olmo_fits):
    fits = pythia_fits if which == "pythia" else olmo_fits
    family = "pythia" if which == "pythia" else None
    forecasts = fits.predict(70e9, skills=["all"], family=family)
    assert forecasts and all(f.status in set(Status) for f in forecasts)
    for f in forecasts:
        if f.status == "not-predictable":
            assert f.accuracy is None and f.grok is None and f.p_grok is None and f.reason
        else:
            assert f.accuracy.low <= f.accuracy.median <= f.accuracy.high
            assert f.tokens == pytest.approx(20 * 70e9) and f.extrapolation > 10
