"""Fits and forecasts of the real ladders in ../shared/data (skipped when absent): every
skill ends fitted or not-predictable with a reason, parameters are sane, and a 70B forecast
gives every skill a status and no number for a not-predictable one. In the slow set (`-m slow`)."""

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

pytestmark = pytest.mark.slow  # fitting the real ladders costs ~20 s of CPU: the slow set runs them


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
    assert {f.skill for f in forecasts} == {s.skill for s in fits.select(family)}
    rising = {Status.SMOOTH, Status.IN_TRANSITION, Status.GROKKED_IN_PILOTS, Status.EMERGES_LATER}
    for f in forecasts:
        if f.status == "not-predictable":
            assert f.accuracy is None and f.grok is None and f.p_grok is None and f.reason
            continue
        assert f.tokens == pytest.approx(20 * 70e9) and f.extrapolation > 10
        sf = fits.select(f.family, f.recipe, [f.skill])[0]
        largest = max(sf.pilots, key=lambda p: (p.params, max(p.tokens)))
        last = float(largest.accuracy[-1])  # the largest pilot's final accuracy
        if f.status in rising:  # a model 25x larger on 5x the tokens does not forecast worse than the pilot
            assert f.accuracy.median >= last - 0.02, (f.skill, f.status, f.accuracy, last)
            assert f.accuracy.high - f.accuracy.low < 0.4, (f.skill, f.accuracy)  # a number, not [chance, 1]
        elif f.status == Status.FLAT:  # flat: stays where the pilots are
            assert abs(f.accuracy.median - last) < 0.05, (f.skill, f.accuracy, last)
    by_skill = {f.skill: f for f in forecasts}
    # skills the pilots show rising steadily are forecast above the largest pilot, outside the noise
    # (measured: pythia arc_easy 0.77-0.93 against 0.64 at 2.8B; olmo hellaswag 0.84-0.91 against 0.73 at 3B)
    rise = ("arc_easy", 0.644) if which == "pythia" else ("hellaswag", 0.731)
    assert by_skill[rise[0]].accuracy.low > rise[1] + 0.05
