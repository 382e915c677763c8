"""`forecast fit / predict / plan / backtest` through the CLI, on a synthetic ladder with a
known answer, plus their bad-input contract (exit 2, one line, nothing overwritten)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from helpers import assert_one_line_error, invoke, output, snapshot

from forecast import Fits, Run, Status, write_runs
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

TRUTH = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
PREDICT_KEYS = {"skill", "params", "tokens", "flops", "accuracy", "grok", "p_grok", "status", "extrapolation",
                "confidence", "notes", "level", "law"}


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """Runs of a grokking skill (with task loss) and a flat-at-chance skill; and their fits."""
    root = tmp_path_factory.mktemp("ladder")
    rng = np.random.default_rng(0)
    runs = synthetic_ladder(TRUTH, np.geomspace(1e5, 1e7, 5), tokens_range=(3e6, 3e9), with_loss=True, rng=rng)
    with_flat: list[Run] = []
    for run in runs:  # add a skill that never leaves chance
        acc = np.clip(0.25 + rng.normal(0, 0.005, 20), 0, 1)
        flat = dataclasses.replace(run.series["skill"], skill="Flat", accuracy=acc, loss=None, chance=0.25)
        with_flat.append(dataclasses.replace(run, series={**run.series, "Flat": flat}))
    write_runs(with_flat, root / "runs")
    result = invoke("fit", root / "runs", "--out", root / "fits", "--draws", "60", "--json")
    return root, output(result, "fit")["skills"]


def test_fit_reports_every_skill(ladder):
    root, rows = ladder
    by_skill = {r["skill"]: r for r in rows}
    assert by_skill["skill"]["status"] == "fitted" and by_skill["skill"]["law"]
    assert by_skill["Flat"]["status"] == "fitted" and by_skill["Flat"]["law"]  # a level forecast, not withheld
    assert (root / "fits" / "index.json").exists()


def test_predict_json_contract(ladder):
    root, _ = ladder
    result = invoke("predict", "--params", "30M", "--tokens", "300M", "--skill", "all", "--fits", root / "fits", "--json")
    out = {f["skill"]: f for f in output(result, "predict")["forecasts"]}
    assert set(out) == {"skill", "Flat"}
    for f in out.values():
        assert PREDICT_KEYS <= set(f) and f["status"] in set(Status)
    grok = out["skill"]
    assert grok["params"] == 3e7 and grok["tokens"] == 3e8
    assert grok["accuracy"]["low"] <= grok["accuracy"]["median"] <= grok["accuracy"]["high"]
    assert (grok["grok"]["low"] or 0) <= TRUTH.grok_tokens(3e7) <= grok["grok"]["high"]
    assert grok["status"] == "grokked-in-pilots" and grok["p_grok"] > 0.95
    flat = out["Flat"]  # flat at chance: it stays there, and when it would rise cannot be told
    assert flat["status"] == "flat" and abs(flat["accuracy"]["median"] - 0.25) < 0.01
    assert flat["accuracy"]["low"] <= 0.25 <= flat["accuracy"]["high"]
    assert flat["grok"]["tokens"] is None and "has not started" in flat["grok"]["note"]
    assert flat["confidence"] == "low" and flat["confidence_reason"]


def test_predict_defaults_to_compute_optimal_and_matches_case_insensitively(ladder):
    root, _ = ladder
    result = invoke("predict", "--params", "1e8", "--skill", "SKILL", "--fits", root / "fits", "--json")
    (f,) = output(result, "predict")["forecasts"]
    assert f["skill"] == "skill" and f["tokens"] == pytest.approx(20 * 1e8)
    human = invoke("predict", "--params", "1e8", "--fits", root / "fits")
    assert human.exit_code == 0 and "compute-optimal" in human.stdout and "flat" in human.stdout


def test_plan_round_trip_through_predict(ladder):
    root, _ = ladder
    fits = Fits.load(root / "fits")
    plan = fits.plan(skill="skill", target=0.8)
    assert plan.status in ("reachable", "already-reached")
    (f,) = fits.predict(plan.params, tokens=plan.tokens, skills=["skill"])
    assert f.accuracy.low <= 0.8 <= f.accuracy.high
    assert f.accuracy.median == pytest.approx(0.8, abs=0.02)
    result = invoke("plan", "--skill", "skill", "--target", "0.8", "--fits", root / "fits", "--json")
    assert output(result, "plan-target")["flops"]["median"] == pytest.approx(plan.flops.median, rel=1e-9)
    unreachable = invoke("plan", "--skill", "Flat", "--target", "0.9", "--fits", root / "fits", "--json")
    assert output(unreachable, "plan-target")["status"] == "not-reachable"


def test_plan_budget(ladder):
    root, _ = ladder
    out = output(invoke("plan", "--budget", "1e18", "--fits", root / "fits", "--json"), "plan-budget")
    assert out["params"] * out["tokens"] * 6 == pytest.approx(1e18, rel=0.01)
    assert {s["skill"] for s in out["skills"]} == {"skill", "Flat"}


def test_backtest_scores_against_baselines(ladder):
    root, _ = ladder
    out = output(invoke("backtest", root / "runs", "--draws", "40", "--json"), "backtest")
    summary = out["summary"]
    assert summary["predicted"] == 2 and summary["not_predictable"] == []
    assert summary["numbered"] == summary["items"] == 2
    trajectory = out["summary_trajectory"]  # a grokking skill: the smaller model's curve carried over is late
    assert trajectory["mae"] < trajectory["carry_mae"] and trajectory["mae"] < trajectory["loglinear_mae"]
    assert 0 <= summary["coverage"] <= 1
    human = invoke("backtest", root / "runs", "--draws", "40")
    assert human.exit_code == 0 and "carry" in human.stdout


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("args, fragments", [
    (("predict", "--params", "70Q"), ("--params", "70Q")),
    (("predict", "--params", "7B", "--tokens", "1T", "--compute", "1e24"), ("--tokens or --compute",)),
    (("predict", "--params", "7B", "--skill", "gsm9k"), ("unknown skill", "gsm9k", "Flat, skill")),
    (("predict", "--params", "7B", "--interval", "1.5"), ("--interval",)),
    (("plan",), ("--target", "--budget")),
    (("plan", "--target", "0.5"), ("--skill",)),
    (("plan", "--budget", "lots"), ("--budget",)),
    (("plan", "--skill", "skill", "--target", "1.2"), ("--target",)),
])
def test_bad_forecast_arguments(ladder, args, fragments):
    root, _ = ladder
    assert_one_line_error(invoke(*args, "--fits", root / "fits"), *fragments)


def test_missing_fits_directory(tmp_path):
    assert_one_line_error(invoke("predict", "--params", "7B", "--fits", tmp_path / "nope"), "index.json", "forecast fit")


def test_corrupt_fit_file(ladder, tmp_path):
    root, _ = ladder
    bad = tmp_path / "fits"
    bad.mkdir()
    (bad / "index.json").write_text("{not json")
    assert_one_line_error(invoke("predict", "--params", "7B", "--fits", bad), "index.json", "JSON")


def test_fit_of_empty_directory_leaves_out_untouched(ladder, tmp_path):
    root, _ = ladder
    before = snapshot(root / "fits")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("fit", tmp_path / "empty", "--out", root / "fits"), "no runs found")
    assert snapshot(root / "fits") == before


def test_backtest_bad_holdout(ladder):
    root, _ = ladder
    assert_one_line_error(invoke("backtest", root / "runs", "--holdout", "biggest"), "--holdout", "largest:K")


def test_a_large_fit_table_prints_one_row_per_family_and_every_row_under_verbose():
    """45 families × 8 skills, most sharing one reason (as the leaderboard): one row per family
    and each reason once with its count by default (≤ 100 lines); every row under verbose."""
    from rich.console import Console

    from forecast.cli.render import fit_table
    from forecast.fitting.status import Note

    rows, notes = [], []
    for i in range(45):
        for skill in ("ARC-C", "GSM8K", "HellaSwag", "HumanEval", "MMLU", "TruthfulQA", "Winograd", "XWinograd"):
            single = i % 3 == 0
            rows.append({"family": f"fam{i:02d}", "skill": skill, "status": "not-predictable" if single else "fitted",
                         "law": None if single else "level", "holdout_mae": None, "grok_tokens_at_largest_pilot": None,
                         "reason": f"a single checkpoint of a single model size ({i + 1}B params): nothing carries "
                                   "the skill to another size" if single else None})
            notes.append((f"fam{i:02d}", skill, () if single else (Note("few-sizes", "only 2 model sizes"),)))

    def lines(verbose: bool) -> list[str]:
        console = Console(width=100, record=True)
        console.print(fit_table(rows, notes, "fits", verbose))
        return console.export_text().splitlines()

    short, full = lines(False), lines(True)
    assert len(short) <= 100, len(short)
    assert sum("a single checkpoint of a single model size" in x for x in short) == 1
    text = " ".join(x.strip() for x in short)
    assert "(120 skills in 15 families)" in text and "few-sizes: 240 skills in 30 families" in text
    assert sum(re.match(r" fam\d\d +\S+ +(fitted|not-predictable)", x) is not None for x in full) == 360  # every (family, skill) row
    assert "fam44/XWinograd" in "".join(full)  # notes name the family under verbose


def test_predict_without_family_on_several_families_prints_one_table(ladder, tmp_path):
    """Fits of two families: `predict` without --family forecasts the skill for each, in one
    table with a family column (and JSON), instead of stopping to ask for --family."""
    import shutil

    from forecast import FitOptions, fit, load_runs

    root, _ = ladder
    other = [dataclasses.replace(r, family="other") for r in load_runs(root / "runs")]
    both = tmp_path / "fits"
    shutil.copytree(root / "fits", both)
    fit(other, skills=["skill"], options=FitOptions(draws=20, losses=False)).save(both)
    doc = output(invoke("predict", "--params", "3e7", "--skill", "skill", "--fits", both, "--json"), "predict")
    families = [f["family"] for f in doc["forecasts"]]
    assert len(families) == 2 and "other" in families
    text = invoke("predict", "--params", "3e7", "--skill", "skill", "--fits", both)
    assert text.exit_code == 0 and "2 families" in text.stdout and "other" in text.stdout
    assert invoke("predict", "--params", "3e7", "--fits", both, "--plot", tmp_path / "p.png").exit_code == 2


def test_a_law_with_a_parameter_at_its_bound_is_not_shown_as_plainly_fitted():
    """The shipped demo fits: sub's chosen power_law_nd has a parameter at its bound (a limit, not an
    estimate): the fit table says so beside "fitted", and its forecasts are never "high".
    A plateau at the top (amp = 1, add) is a natural edge and is not flagged."""
    from rich.console import Console

    from forecast.cli.render import fit_table
    from helpers import REPO

    fits = Fits.load(REPO / "fits")
    rows = {r["skill"]: r for r in fits.summaries() if r["family"] == "demo"}
    assert rows["sub"]["at_bound"] and rows["add"]["at_bound"] == []
    (param,) = rows["sub"]["at_bound"]
    console = Console(width=140, record=True)
    console.print(fit_table(list(rows.values()), [(sf.family, sf.skill, sf.notes) for sf in fits.skills
                                                  if sf.family == "demo"], "fits"))
    text = console.export_text()
    assert "fitted, at bound" in text and f"{param} at a bound" in text
    (sub,) = fits.predict(2e5, skills=["sub"], family="demo")
    assert sub.confidence != "high"


def test_a_target_outside_any_physical_range_is_refused():
    """Below one parameter or one token: misuse, one line, exit 2 (never a forecast)."""
    from helpers import REPO

    assert_one_line_error(invoke("predict", "--params", "0.5", "--fits", REPO / "fits"), "params", "at least 1")
    assert_one_line_error(invoke("predict", "--params", "1M", "--tokens", "0.5", "--fits", REPO / "fits"),
                          "tokens", "at least 1")
