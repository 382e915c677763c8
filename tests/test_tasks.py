"""One forecast per task: variants of one benchmark (splits, shots, formats, normalisations)
are fitted once on their average and shifted by their offsets (`forecast.fitting.tasks`)."""

from __future__ import annotations

import numpy as np
import pytest

from forecast import Recipe, Run, make_series
from forecast.fits import Fits, fit
from forecast.fitting.fit import FitOptions
from forecast.fitting.status import NoteCode
from forecast.fitting.tasks import task_groups, task_of
from forecast.runs.synthetic import GrokTruth

FAST = FitOptions(draws=60)
TRUTH = GrokTruth(d_half=3e8, n_ref=1e6, gamma=0.7, k=1.5, chance=0.25, plateau=0.85)
OFFSETS = {"quiz_val": 0.04, "quiz_test": -0.04}


@pytest.mark.parametrize("name, task", [
    ("arc_challenge_val_rc_5shot", "arc_challenge"), ("arc_challenge_test_rc_5shot", "arc_challenge"),
    ("mmlu_stem_test_rc_5shot_len_norm", "mmlu_stem"), ("boolq_val_rc_5shot_acc", "boolq"),
    ("hellaswag", "hellaswag"), ("gsm8k_5shot", "gsm8k"), ("mmlu_macro", "mmlu"), ("test", "test"),
    ("arithmetic_2da_2_acc", "arithmetic_2da_2"),
])
def test_task_of_strips_splits_shots_formats_and_normalisations(name, task):
    assert task_of(name) == task


def test_task_groups_need_two_variants_and_take_user_patterns():
    skills = ["arc_easy_val", "arc_easy_test", "piqa_val", "mmlu_stem", "mmlu_other"]
    assert task_groups(skills) == {"arc_easy": ["arc_easy_val", "arc_easy_test"]}
    assert task_groups(skills, extra=(r"_(stem|other)$",))["mmlu"] == ["mmlu_stem", "mmlu_other"]


def _ladder(sizes, rng) -> list[Run]:
    """Each size one run; two splits of one quiz, the planted law ± a constant offset."""
    tokens = np.geomspace(3e6, 3e9, 16)
    runs = []
    for size in sizes:
        series = {}
        for skill, offset in OFFSETS.items():
            p = np.clip(TRUTH.accuracy(size, tokens) + offset, 0, 1)
            acc = rng.binomial(2000, p) / 2000
            series[skill] = make_series(skill, range(1, 17), tokens, accuracy=acc, n=np.full(16, 2000), params=size,
                                        chance=0.25)
        runs.append(Run(name=f"m-{size:.3g}", params=float(size), family="f", recipe=Recipe("default"),
                        series=series, params_kind="non-embedding", seed=0, source="test"))
    return runs


def test_variants_share_one_law_and_differ_by_their_planted_offset(tmp_path):
    sizes = np.geomspace(1e5, 1e7, 5)
    fits = fit(_ladder(sizes, np.random.default_rng(3)), options=FAST)
    val, test = (next(s for s in fits.skills if s.skill == k) for k in ("quiz_val", "quiz_test"))
    assert val.predictable and test.predictable
    assert val.law == test.law
    assert [c.weight for c in val.candidates] == [c.weight for c in test.candidates]
    assert any(n.code == NoteCode.ONE_TASK and "quiz_test" in n.message for n in val.notes)
    target, tokens = 3 * sizes[-1], 1e9
    (fv,) = fits.predict(params=target, tokens=tokens, skills=["quiz_val"])
    (ft,) = fits.predict(params=target, tokens=tokens, skills=["quiz_test"])
    assert fv.accuracy.median - ft.accuracy.median == pytest.approx(0.08, abs=0.02)
    assert str(fv.status) == str(ft.status)
    for f, skill in ((fv, "quiz_val"), (ft, "quiz_test")):
        truth = TRUTH.accuracy(target, tokens) + OFFSETS[skill]
        assert f.accuracy.low <= truth <= f.accuracy.high
    fits.save(tmp_path)  # the offset is stored: a reloaded fit forecasts the same
    again = Fits.load(tmp_path)
    (fv2,) = again.predict(params=target, tokens=tokens, skills=["quiz_val"])
    assert fv2.accuracy.median == pytest.approx(fv.accuracy.median, abs=1e-9)


def test_offset_is_measured_not_assumed():
    """With no offset planted, the variants' forecasts agree to within their noise."""
    global OFFSETS
    saved, OFFSETS = OFFSETS, {"quiz_val": 0.0, "quiz_test": 0.0}
    try:
        fits = fit(_ladder(np.geomspace(1e5, 1e7, 4), np.random.default_rng(5)), options=FAST)
    finally:
        OFFSETS = saved
    offsets = [c.fit.offset for s in fits.skills for c in s.candidates[:1]]
    assert all(abs(o) < 0.01 for o in offsets)


def test_a_variant_without_data_of_its_own_is_not_given_the_task_s_number():
    """`quiz_test` logged once, at the smallest size: it is not predictable (as alone), and
    `quiz_val` still gets its forecast."""
    runs = _ladder(np.geomspace(1e5, 1e7, 4), np.random.default_rng(7))
    first = runs[0]
    test = first.series["quiz_test"]
    one = make_series("quiz_test", [1], test.tokens[-1:], accuracy=test.accuracy[-1:], n=[2000], params=first.params,
                      chance=0.25)
    runs = [Run(name=r.name, params=r.params, family=r.family, recipe=r.recipe, params_kind=r.params_kind, seed=0,
                source="test", series={"quiz_val": r.series["quiz_val"], **({"quiz_test": one} if i == 0 else {})})
            for i, r in enumerate(runs)]
    by_skill = {s.skill: s for s in fit(runs, options=FAST).skills}
    assert not by_skill["quiz_test"].predictable
    assert by_skill["quiz_val"].predictable
