"""Nothing lost, nothing silent (issue 18): one test per numbered item of the issue, named
after the behaviour it proves, on small synthetic ladders through the CLI. Each failed on
the main of commit 31f709f. Item 3 (lm-eval --params for several models) is tested with
the importers. The malformed-input corpus is `test_bad_inputs.py`; kill -9 during a fit
is `test_kill_fit.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, assert_one_line_error, invoke, output, shared_data, snapshot

import forecast
from forecast import Recipe, Run, make_series, write_runs
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

TRUTH = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
SIZES = np.geomspace(1e5, 1e7, 4)
FAST = ("--draws", "20", "--laws", "grok_scaling")


def ladder(directory: Path, *, family: str = "synthetic", recipe: str = "default", truth: GrokTruth = TRUTH,
           skills: tuple[str, ...] = ("skill", "other"), seed: int = 0, seeds: int = 1,
           sizes=SIZES, tokens_range=(3e6, 3e9), checkpoints: int = 12, with_loss: bool = False) -> list[Run]:
    """A synthetic ladder with one grokking skill per name (the same truth), written to
    `directory`; returns the runs."""
    rng = np.random.default_rng(seed)
    runs = synthetic_ladder(truth, sizes, tokens_range=tokens_range, checkpoints=checkpoints, family=family,
                            recipe=recipe, seeds=seeds, rng=rng, with_loss=with_loss)
    runs = [dataclasses.replace(r, series={name: dataclasses.replace(r.series["skill"], skill=name) for name in skills})
            for r in runs]
    write_runs(runs, directory)
    return runs


def fit_json(runs_dir: Path, out: Path, *extra: object) -> list[dict]:
    return output(invoke("fit", runs_dir, "--out", out, *FAST, "--json", *extra), "fit")["skills"]


def predict_json(fits: Path, *extra: object) -> list[dict]:
    return output(invoke("predict", "--fits", fits, "--params", "3e7", "--json", *extra), "predict")["forecasts"]


def index_of(fits: Path) -> dict:
    return json.loads((fits / "index.json").read_text())


def listed_skills(fits: Path) -> dict[tuple[str, str], set[str]]:
    return {(g["family"], g["recipe"]): set(g["skills"]) for g in index_of(fits)["groups"]}


# ============================================================================ data lost or mis-assigned


def test_1_fitting_one_skill_keeps_the_other_skills(tmp_path):
    ladder(tmp_path / "runs")
    fits = tmp_path / "fits"
    fit_json(tmp_path / "runs", fits)
    other_before = {name: data for name, data in snapshot(fits).items() if "other" in name}
    rows = fit_json(tmp_path / "runs", fits, "--skill", "skill", "--seed", "1")
    assert [r["skill"] for r in rows] == ["skill"]
    assert listed_skills(fits) == {("synthetic", "default"): {"skill", "other"}}
    assert {name: data for name, data in snapshot(fits).items() if "other" in name} == other_before
    assert {f["skill"] for f in predict_json(fits)} == {"skill", "other"}


def test_2_families_differing_only_in_non_ascii_letters_get_their_own_fits(tmp_path):
    ladder(tmp_path / "runs" / "a", family="pythiä", truth=TRUTH)
    ladder(tmp_path / "runs" / "b", family="pythiö", truth=dataclasses.replace(TRUTH, d_half=4e8), seed=1)
    fits = tmp_path / "fits"
    fit_json(tmp_path / "runs", fits)
    assert set(listed_skills(fits)) == {("pythiä", "default"), ("pythiö", "default")}
    folders = {Path(e["file"] if isinstance(e, dict) else e).parent
               for g in index_of(fits)["groups"] for e in g["skills"].values()}
    assert len(folders) == 2
    a = predict_json(fits, "--family", "pythiä", "--skill", "skill")[0]
    b = predict_json(fits, "--family", "pythiö", "--skill", "skill")[0]
    assert a["family"] == "pythiä" and b["family"] == "pythiö"
    assert a["accuracy"] != b["accuracy"]  # two fits, not one overwritten by the other


def _forecasts(fits_dir: Path) -> str:
    return json.dumps([f.to_json() for f in forecast.Fits.load(fits_dir).predict(3e7, skills=["all"])])


class _Crash(BaseException):
    """Stands for the process dying at that moment (not an error any code would catch)."""


def test_4_a_fit_interrupted_between_any_two_files_leaves_the_old_fits_or_the_new(tmp_path, monkeypatch):
    """The write phase dies before each of its renames in turn: a reader then sees exactly
    the old forecasts or exactly the new ones (the kill -9 version is test_kill_fit.py)."""
    old_runs = ladder(tmp_path / "old", skills=("a", "b", "c"))
    new_runs = ladder(tmp_path / "new", skills=("a", "b", "c"), truth=dataclasses.replace(TRUTH, d_half=3e8), seed=5)
    options = forecast.FitOptions(draws=20, laws=("grok_scaling",))
    new_fits = forecast.fit(new_runs, options=options)
    pristine = tmp_path / "pristine"
    forecast.fit(old_runs, options=options).save(pristine)
    old = _forecasts(pristine)
    scratch = tmp_path / "scratch"
    new_fits.save(scratch)
    new = _forecasts(scratch)
    assert old != new
    real_replace, moment = os.replace, 0
    while True:
        moment += 1
        shutil.rmtree(scratch)
        shutil.copytree(pristine, scratch)
        calls = []

        def dying_replace(src, dst, *, _moment=moment, **kw):
            calls.append(dst)
            if len(calls) == _moment:
                raise _Crash
            return real_replace(src, dst, **kw)

        monkeypatch.setattr(os, "replace", dying_replace)
        try:
            new_fits.save(scratch)
            finished = True
        except _Crash:
            finished = False
        monkeypatch.setattr(os, "replace", real_replace)
        seen = _forecasts(scratch)
        assert seen in (old, new), f"a mix after dying at rename {moment} ({calls[-1]})"
        if finished:
            break
    assert moment >= 4  # three skill files and the index at least


# ============================================================================ silent or wrong results


def test_5_incomplete_runs_and_folders_without_run_json_are_reported_and_left_out(tmp_path):
    runs = ladder(tmp_path / "runs")
    largest = max(runs, key=lambda r: r.params)
    meta_path = tmp_path / "runs" / largest.name / "run.json"
    meta = json.loads(meta_path.read_text())
    meta["extra"] = {"complete": False}
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "runs" / "stray").mkdir()
    shutil.copy(tmp_path / "runs" / largest.name / "trajectory.csv", tmp_path / "runs" / "stray")

    listing = invoke("runs", tmp_path / "runs", "--json")
    data = output(listing, "runs")
    assert data["incomplete"] == [largest.name] and data["not_runs"] == [str(tmp_path / "runs" / "stray")]
    human = invoke("runs", tmp_path / "runs")
    assert "incomplete" in human.stdout and "stray" in human.stdout

    result = invoke("fit", tmp_path / "runs", "--out", tmp_path / "fits", *FAST, "--json")
    rows = output(result, "fit")["skills"]
    assert all(r["largest_pilot_params"] < largest.params for r in rows)
    assert f"{largest.name}: training did not finish" in result.stderr and "stray" in result.stderr
    allowed = output(invoke("fit", tmp_path / "runs", "--out", tmp_path / "fits2", *FAST, "--json",
                            "--allow-incomplete"), "fit")["skills"]
    assert all(r["largest_pilot_params"] == largest.params for r in allowed)


def test_6_seeds_ending_a_fraction_apart_are_not_a_ladder_of_token_budgets():
    """The demo's two seeds end at 1,682,319 and 1,680,022 tokens: one budget, so every
    checkpoint is fitted, not only the final ones."""
    from forecast.fitting.observations import observations

    runs = []
    for seed, end in ((0, 1_682_319), (1, 1_680_022)):
        for size in SIZES:
            (run,) = synthetic_ladder(TRUTH, [size], tokens_range=(1e4, end), checkpoints=12,
                                      rng=np.random.default_rng(seed))
            runs.append(dataclasses.replace(run, name=f"{run.name}-{seed}", seed=seed))
    assert not observations(runs, "skill").budget_ladder
    budgets = [dataclasses.replace(r, name=f"{r.name}-2x", series={"skill": dataclasses.replace(
        r.series["skill"], tokens=r.series["skill"].tokens * 2)}) for r in runs[:4]]
    assert observations(runs + budgets, "skill").budget_ladder  # 1x and 2x: a real budget ladder


def test_6_the_plots_read_the_fits_budget_ladder_decision():
    """Seeds ending at 1.00e9 and 1.02e9 tokens are one budget for the fit; the plots once
    rounded the finals and called them two. Now they read what the fit decided."""
    from forecast.plots.layout import budget_ladder

    runs = []
    for seed, end in ((0, 1.00e9), (1, 1.02e9)):
        for size in SIZES[:3]:
            (run,) = synthetic_ladder(TRUTH, [size], tokens_range=(3e6, end), checkpoints=8,
                                      rng=np.random.default_rng(seed))
            runs.append(dataclasses.replace(run, name=f"{run.name}-{seed}", seed=seed))
    quick = forecast.FitOptions(laws=("level",), draws=4)
    (one,) = forecast.fit(runs, options=quick).skills
    assert not budget_ladder(one)
    budgets = [dataclasses.replace(r, name=f"{r.name}-4x", series={"skill": dataclasses.replace(
        r.series["skill"], tokens=r.series["skill"].tokens * 4)}) for r in runs[:3]]
    (two,) = forecast.fit(runs + budgets, options=quick).skills
    assert budget_ladder(two) and any(n.code == "budget-ladder" for n in two.notes)


def test_6_the_shipped_demo_fits_use_every_checkpoint():
    files = [p for p in (REPO / "fits").glob("demo--*/*.json")]  # the demo group (the real slice has budget ladders)
    assert files
    for path in files:
        data = json.loads(path.read_text())
        notes = [n["message"] if isinstance(n, dict) else n for n in data.get("notes", []) + data.get("warnings", [])]
        assert not any("token budgets" in n for n in notes), (path, notes)


def test_7_a_target_beyond_any_documented_range_is_out_of_range_with_no_number():
    for params in ("1e40", "70B"):  # the shipped fits' pilots are ~100K parameters
        forecasts = output(invoke("predict", "--fits", REPO / "fits", "--family", "demo", "--params", params, "--json"),
                           "predict")["forecasts"]
        for f in forecasts:
            assert f["status"] == "out-of-range", f
            assert f["accuracy"] is None and f["grok"] is None and f["p_grok"] is None and f["reason"]
    human = invoke("predict", "--fits", REPO / "fits", "--family", "demo", "--params", "1e40")
    rows = [line for line in human.stdout.splitlines() if line.strip().startswith(("add ", "sub ", "word "))]
    assert len(rows) == 3 and all("out-of-range" in row and not re.search(r"\d \[", row) for row in rows), rows
    assert "1e+40 params" in human.stdout


def test_7_a_budget_below_anything_the_pilots_saw_is_out_of_range():
    (f, *_) = output(invoke("predict", "--fits", REPO / "fits", "--family", "demo", "--params", "50K", "--compute", "1",
                            "--json"),
                     "predict")["forecasts"]
    assert f["status"] == "out-of-range" and f["accuracy"] is None


def test_7_a_skill_forecast_to_cross_before_the_pilots_is_not_called_smooth(tmp_path):
    ladder(tmp_path / "runs", skills=("skill",))  # D½(10M params) = 20M tokens: before the first kept checkpoint
    fit_json(tmp_path / "runs", tmp_path / "fits")
    (f,) = output(invoke("predict", "--fits", tmp_path / "fits", "--params", "3e7", "--json"), "predict")["forecasts"]
    if any(n["code"] == "grok-before-pilots" for n in f["notes"]):
        assert f["status"] != "smooth" and f["grok"]["before_tokens"] is not None, f


def test_7_a_grok_point_earlier_than_any_evaluation_is_a_bound_not_a_number(tmp_path):
    """Every pilot has crossed by its first evaluation: the crossing is "< first tokens"
    (null with a bound in JSON), never the search's clamp value."""
    truth = dataclasses.replace(TRUTH, d_half=3e8)  # the pilots cross between 60M and 1.5B tokens
    runs = ladder(tmp_path / "runs", skills=("skill",), truth=truth)
    fit_json(tmp_path / "runs", tmp_path / "fits")
    first = min(float(t) for r in runs for t in r.series["skill"].tokens if t >= 0.01 * r.final_tokens)  # after warm-up
    target = 3e8  # D½ = 3e8 · 300^-0.7 ≈ 5.5M tokens, before any kept pilot checkpoint (~37M)
    assert truth.grok_tokens(target) < first
    (f,) = output(invoke("predict", "--fits", tmp_path / "fits", "--params", target, "--json"), "predict")["forecasts"]
    grok = f["grok"]
    assert grok["tokens"] is None and grok["flops"] is None and grok["low"] is None
    assert grok["before_tokens"] == pytest.approx(first, rel=1e-6)
    human = invoke("predict", "--fits", tmp_path / "fits", "--params", target)
    assert "< 37M" in human.stdout and "grok-before-pilots" not in human.stdout


def _rehash(fits: Path, skill: str, change) -> Path:
    """Change a skill's fit file as a buggy writer would, index hash included."""
    index = index_of(fits)
    group = next(g for g in index["groups"] if skill in g["skills"])
    entry = group["skills"][skill]
    path = fits / (entry["file"] if isinstance(entry, dict) else entry)
    text = change(path.read_text())
    path.write_text(text)
    if isinstance(entry, dict):
        entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (fits / "index.json").write_text(json.dumps(index))
    return path


@pytest.mark.parametrize("change, field", [
    (lambda t: t.replace('"draws": [\n    [\n     ', '"draws": [\n    [\n     NaN, ', 1), "draws"),
    (lambda t: re.sub(r'"top": [0-9.]+', '"top": NaN', t, count=1), "top"),
    (lambda t: re.sub(r'"chance": [0-9.]+', '"chance": NaN', t, count=1), "chance"),
    (lambda t: re.sub(r'"weight": [0-9.e-]+', '"weight": 0', t), "weight"),
])
def test_8_fits_with_non_finite_numbers_are_refused_on_load(tmp_path, change, field):
    fits = tmp_path / "fits"
    shutil.copytree(REPO / "fits", fits)
    path = _rehash(fits, "add", change)
    before = snapshot(fits)
    assert_one_line_error(invoke("predict", "--fits", fits, "--params", "1M"), str(path), field, "forecast fit")
    assert snapshot(fits) == before


# ---------------------------------------------------------------------------- 9: compare


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    """Three recipes: `fast` groks 1.06× sooner than `close` (a verdict that reads either way
    if its numbers disagree), `slow` 3× later, `never` never within the pilots."""
    root = tmp_path_factory.mktemp("recipes")
    for i, (label, d_half) in enumerate((("fast", 1e8), ("close", 1.06e8), ("slow", 3e8), ("never", 1e14))):
        ladder(root / label, recipe=label, truth=dataclasses.replace(TRUTH, d_half=d_half), seed=i, skills=("skill",))
    return root


def test_9_compare_refuses_an_absolute_threshold_outside_0_1(recipes):
    assert_one_line_error(invoke("compare", recipes, "--threshold", "2", *FAST), "--threshold")


def test_9_compare_refuses_a_baseline_with_no_speed_to_compare_with(recipes, tmp_path):
    """`never` never groks (or is not predictable at all): no ratio against it means anything."""
    args = ("compare", recipes, "--baseline", "never", *FAST)
    line = assert_one_line_error(invoke(*args), "--baseline never", "choose another baseline")
    assert "never groks" in line or "not predictable" in line


def _verdict_numbers(text: str):
    m = re.match(r"(\S+) groks ([0-9.e+]+)× sooner than (\S+) in \w+ at (\S+) params", text)
    assert m, text
    return m.group(1), float(m.group(2)), m.group(3)


def test_9_every_verdict_agrees_with_its_own_table(recipes):
    data = output(invoke("compare", recipes, "--target-params", "1e8", "--json", *FAST), "compare")
    (c,) = data["comparisons"]
    pilots = [s for s in c["speeds"] if s["pilot"]]
    largest = max(s["params"] for s in pilots)
    median = {s["group"]: (s["tokens"] or {}).get("median", math.inf) for s in pilots if s["params"] == largest}
    assert median["fast"] < median["close"] < median["slow"]
    for v in c["verdicts"]:
        if v["trend"] == "never groks":
            continue
        ahead, factor, behind = _verdict_numbers(v["verdict"])
        assert median[ahead] <= median[behind], v["verdict"]
        assert factor == pytest.approx(median[behind] / median[ahead], rel=5e-3), v["verdict"]
        assert v["leader"] == ahead
        if "still faster" in v["verdict"]:
            assert f"P({ahead} still faster)" in v["verdict"], v["verdict"]


# ---------------------------------------------------------------------------- 10: backtest


def test_10_backtest_coverage_is_over_final_checkpoints_and_rows_agree_with_it(tmp_path):
    ladder(tmp_path / "runs", seeds=2)
    data = output(invoke("backtest", tmp_path / "runs", "--draws", "20", "--json"), "backtest")
    finals = [p for s in data["skills"] if s["law"] for p in s["points"] if p["final"] and p["predicted"] is not None]
    every = [p for s in data["skills"] if s["law"] for p in s["points"] if p["predicted"] is not None]
    assert len(finals) < len(every)
    assert data["summary"]["coverage"] == pytest.approx(np.mean([p["covered"] for p in finals]))
    assert data["summary_trajectory"]["coverage"] == pytest.approx(np.mean([p["covered"] for p in every]))
    human = invoke("backtest", tmp_path / "runs", "--draws", "20").stdout
    for s in data["skills"]:
        covered = [p["covered"] for p in s["points"] if p["final"]]
        row = next(line for line in human.splitlines() if line.split()[:2] == ["synthetic", s["skill"]])
        assert f" {sum(covered)}/{len(covered)} " in row, row  # two held-out seeds: "k/2", never a lone yes
    assert f"coverage {100 * data['summary']['coverage']:.1f}% of the held-out final checkpoints" in human


# ---------------------------------------------------------------------------- 11


def test_11_plan_for_an_accuracy_already_reached_says_so_without_a_range(tmp_path):
    ladder(tmp_path / "runs", skills=("skill",))
    fit_json(tmp_path / "runs", tmp_path / "fits")
    data = output(invoke("plan", "--fits", tmp_path / "fits", "--skill", "skill", "--target", "0.05", "--json"),
                  "plan-target")
    assert data["status"] == "already-reached"
    human = invoke("plan", "--fits", tmp_path / "fits", "--skill", "skill", "--target", "0.05").stdout
    assert "already reached" in human and "–" not in human


def test_11_tokens_derived_from_compute_are_labelled_so(tmp_path):
    human = invoke("predict", "--fits", REPO / "fits", "--family", "demo", "--params", "50K", "--compute", "1e13").stdout
    assert "(from --compute)" in human and "(given)" not in human
    given = invoke("predict", "--fits", REPO / "fits", "--family", "demo", "--params", "50K", "--tokens", "1M").stdout
    assert "(given)" in given


def test_11_an_import_whose_metric_matches_nothing_is_not_silent(tmp_path):
    """`--metric f1` matches no task: with only LAMBADA's perplexity (a loss metric) left the
    run is imported for loss forecasts, with a note naming --metric; with nothing left,
    nothing is written and the import fails."""
    results = tmp_path / "lm" / "m_step1000.json"
    results.parent.mkdir()
    results.write_text(json.dumps({"results": {"lambada_openai": {"acc": 0.3, "ppl": 40.0}, "piqa": {"acc": 0.6}},
                                   "config": {"model_args": "pretrained=org/m"}}))
    flags = ("--params", "70M", "--tokens-per-step", "2M", "--metric", "f1")
    loss_only = invoke("import", "lm-eval", results, *flags, "--out", tmp_path / "a")
    assert loss_only.exit_code == 0, loss_only.stderr
    assert any("no skill with an accuracy" in n and "--metric" in n for n in loss_only.stderr.splitlines())
    results.write_text(json.dumps({"results": {"piqa": {"acc": 0.6}}, "config": {"model_args": "pretrained=org/m"}}))
    out = tmp_path / "b"
    assert_one_line_error(invoke("import", "lm-eval", results, *flags, "--out", out), str(results))
    assert not out.exists() or not any(out.iterdir())


def test_11_an_import_whose_metric_matches_nothing_names_the_flag(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": {"piqa": {"acc,none": 0.6}},
                                   "config": {"model_args": "pretrained=org/m,revision=step1000"}}))
    assert_one_line_error(invoke("import", "lm-eval", results, "--params", "70M", "--tokens-per-step", "2M",
                                 "--metric", "f1", "--out", tmp_path / "out"), "--metric")


def test_14_an_import_refuses_a_metric_that_is_not_a_number(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": {"piqa": {"acc,none": "high"}, "arc_easy": {"acc,none": 0.4}},
                                   "config": {"model_args": "pretrained=org/m,revision=step1000"}}))
    assert_one_line_error(invoke("import", "lm-eval", results, "--params", "70M", "--tokens-per-step", "2M",
                                 "--out", tmp_path / "out"), "piqa")


# ---------------------------------------------------------------------------- 12


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_12_written_files_get_the_mode_the_umask_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        ladder(tmp_path / "runs", skills=("skill",))
        csv = tmp_path / "wide.csv"
        csv.write_text("_step,tokens,eval/acc/piqa\n0,0,0.5\n100,1000,0.6\n")
        assert invoke("import", "csv", csv, "--params", "1M", "--tokens-column", "tokens", "--accuracy-columns",
                      r"eval/acc/(\w+)", "--out", tmp_path / "imported").exit_code == 0
        plot = ("--plot", tmp_path / "plots" / "predict.png") if umask == 0o022 else ()  # (plots are slow to draw)
        fit_json(tmp_path / "runs", tmp_path / "fits")
        assert invoke("predict", "--fits", tmp_path / "fits", "--params", "1e7", *plot).exit_code == 0
    finally:
        os.umask(previous)
    made = [p for p in tmp_path.rglob("*") if p != csv and p.name != "wide.csv"]
    assert any(p.name == "index.json" for p in made) and any(p.name == "run.json" for p in made)
    assert any(p.suffix == ".png" for p in made) or umask != 0o022
    for path in made:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert path.stat().st_mode & 0o777 == expected, (path, oct(path.stat().st_mode & 0o777))


# ---------------------------------------------------------------------------- 13


def test_13_implausible_inputs_are_flagged(tmp_path):
    table = tmp_path / "board.csv"
    table.write_text("model,params,tokens,mmlu\nsane-7b,7e9,2e12,0.45\nbtlm-3b,3e9,6.27e14,0.3\n"
                     "giant,3e14,1e15,0.5\n")
    result = invoke("import", "table", table, "--name-column", "model", "--params-column", "params",
                    "--tokens-column", "tokens", "--out", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "implausible" in line]
    assert any("btlm-3b" in n and "tokens per parameter" in n for n in notes), result.stderr
    assert any("giant" in n and "parameters" in n for n in notes), result.stderr
    assert not any("sane-7b" in n for n in notes)
    listing = output(invoke("runs", tmp_path / "runs", "--json"), "runs")
    assert {i["name"] for i in listing["implausible"]} == {"btlm-3b", "giant"}
    runs = ladder(tmp_path / "pilots", skills=("skill",))  # 0 training tokens at the last checkpoint
    s = runs[0].series["skill"]
    zero = dataclasses.replace(runs[0], series={"skill": dataclasses.replace(s, tokens=np.zeros_like(s.tokens),
                                                                             flops=np.zeros_like(s.flops))})
    write_runs([zero], tmp_path / "pilots", overwrite=True)
    fitted = invoke("fit", tmp_path / "pilots", "--out", tmp_path / "fits", *FAST)
    assert f"{zero.name}: implausible input: the last checkpoint saw 0 training tokens" in fitted.stderr


# ---------------------------------------------------------------------------- 14: no tracebacks


def test_14_compare_json_with_grok_points_beyond_the_horizon_is_strict_json(recipes):
    """A 10-parameter target groks beyond the search horizon: inf inside, null in JSON."""
    result = invoke("compare", recipes, "--json", *FAST, "--target-params", "10")
    data = output(result, "compare")  # output() refuses NaN and Infinity
    (c,) = data["comparisons"]
    at_target = [s["tokens"] for s in c["speeds"] if not s["pilot"]]
    assert at_target and all(t is None for t in at_target)


@pytest.mark.slow
def test_14_compare_real_families_by_family_is_strict_json(tmp_path):
    """The reported case: Pythia's two data recipes imported as families, compared."""
    evals = shared_data("pythia", "pythia_evals.csv")
    imported = invoke("import", "long", evals, "--params-column", "nonembedding_params", "--shots", "0",
                      "--out", tmp_path / "runs")
    assert imported.exit_code == 0, imported.stderr
    data = output(invoke("compare", tmp_path / "runs", "--by", "family", "--skill", "lambada_openai",
                         "--draws", "20", "--target-params", "70B", "--json"), "compare")
    assert [c["skill"] for c in data["comparisons"]] == ["lambada_openai"]


def test_14_backtest_of_single_checkpoint_runs_has_no_traceback(tmp_path):
    """A leaderboard: one final checkpoint per model."""
    runs = []
    for i, size in enumerate(np.geomspace(1e8, 7e10, 6)):
        tokens = 20 * size
        acc = float(TRUTH.accuracy(size / 1e3, tokens / 1e3))
        runs.append(Run(f"m{i}", float(size), "board", Recipe(), {"mmlu": make_series(
            "mmlu", [0], [tokens], accuracy=[0.25 + 0.75 * acc], params=size, chance=0.25)}))
    write_runs(runs, tmp_path / "board")
    result = invoke("backtest", tmp_path / "board", "--draws", "20", "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    data = output(result, "backtest")  # a backtest, not an error: five boards fit, the sixth is checked
    (skill,) = data["skills"]
    (point,) = skill["points"]
    assert skill["status"] == "fitted" and point["run"] == "m5" and point["final"]
    # the board is noise-free: the held-out 70B model's accuracy is forecast, and inside its interval
    assert point["predicted"] == pytest.approx(point["actual"], abs=0.05) and point["covered"]


def test_14_params_1e308_in_run_json_is_a_data_error(tmp_path):
    runs = ladder(tmp_path / "runs")
    meta = tmp_path / "runs" / runs[0].name / "run.json"
    meta.write_text(meta.read_text().replace(f'"params": {int(runs[0].params)}', '"params": 1e308'))
    for args in (("runs", tmp_path / "runs"), ("fit", tmp_path / "runs", "--out", tmp_path / "fits"),
                 ("backtest", tmp_path / "runs")):
        assert_one_line_error(invoke(*args), "run.json", "params")


@pytest.mark.parametrize("args", [
    ("plan", "--budget", "1e15", "--interval", "1.5"), ("backtest", "RUNS", "--interval", "1.5"),
    ("predict", "--params", "1M", "--tokens-per-param", "0"), ("predict", "--params", "1M", "--tokens-per-param", "-20"),
    ("plan", "--budget", "1e15", "--tokens-per-param", "0"), ("predict", "--params", "1M", "--plot", "DIR"),
    ("fit", "RUNS", "--out", "FILE"), ("pilot", "--preset", "tiny", "--out", "FILE"), ("demo", "--out", "FILE"),
])
def test_14_bad_flags_are_one_line_errors(tmp_path, args):
    ladder(tmp_path / "runs", skills=("skill",))
    (tmp_path / "file").write_text("mine\n")
    before = snapshot(tmp_path)
    swap = {"RUNS": tmp_path / "runs", "FILE": tmp_path / "file", "DIR": tmp_path / "runs"}
    args = [swap.get(a, a) for a in args]
    if args[0] in ("plan", "predict"):
        args += ["--fits", REPO / "fits"]
    assert_one_line_error(invoke(*args))
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------- 15


def test_15_ctrl_c_in_fit_is_one_line_and_exit_130(tmp_path, monkeypatch):
    ladder(tmp_path / "runs", skills=("skill",))
    fits = tmp_path / "fits"
    shutil.copytree(REPO / "fits", fits)
    before = snapshot(fits)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(forecast, "fit", interrupted)
    result = invoke("fit", tmp_path / "runs", "--out", fits)
    assert result.exit_code == 130
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), result.stderr
    assert snapshot(fits) == before


@pytest.mark.slow
def test_15_sigint_during_a_real_fit_leaves_the_fits_and_prints_one_line(tmp_path):
    ladder(tmp_path / "runs", skills=tuple(f"s{i}" for i in range(24)), seeds=3)  # ~25 s of fitting at 20,000 draws
    fits = tmp_path / "fits"
    shutil.copytree(REPO / "fits", fits)
    before = snapshot(fits)
    process = subprocess.Popen([sys.executable, "-c", "from forecast.cli import app; app(prog_name='forecast')", "fit",
                                str(tmp_path / "runs"), "--out", str(fits), "--draws", "20000"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # started and fitting (the full fit takes far longer)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, (process.returncode, stderr)
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted") and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert snapshot(fits) == before


def test_15_seeds_0_is_a_one_line_error(tmp_path):
    assert_one_line_error(invoke("pilot", "--preset", "tiny", "--seeds", "0", "--out", tmp_path), "--seeds")


# ============================================================================ start-up, version, JSON


def test_version():
    from forecast.version import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"forecast {__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


HEAVY = ("torch", "numpy", "scipy", "matplotlib", "lmfit")
STARTUP_SCRIPT = """
import sys, time
start = time.perf_counter()
from forecast.cli import app
try:
    app(args=sys.argv[1:], prog_name="forecast")
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})
print(code, time.perf_counter() - start, heavy, file=sys.__stderr__)
"""


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("predict", "--help"), ("predict", "--params", "70Q"),
                                  ("predict", "--params", "7B", "--interval", "1.5"), ("fit",), ("frobnicate",),
                                  ("plan", "--budget", "0"), ("compare", "x", "--threshold", "2")])
def test_help_and_usage_errors_load_no_numerical_module(args):
    """What makes start-up fast: `--help` and flag errors answer before numpy, torch,
    scipy, matplotlib or lmfit are imported (measured: under 0.3 s, against ~3 s with them)."""
    done = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT.format(heavy=HEAVY), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    code, seconds, heavy = done.stderr.strip().splitlines()[-1].split(" ", 2)
    assert heavy == "[]", (args, heavy)
    assert code in ("0", "2", "None"), done.stderr


def _strict(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))


@pytest.mark.slow
def test_every_command_json_is_strict_json(tmp_path, recipes):
    """Every `--json` output parses with NaN and Infinity refused (they print as null)."""
    ladder(tmp_path / "runs", skills=("skill", "flat"), with_loss=True)
    csv = tmp_path / "wide.csv"
    csv.write_text("_step,tokens,eval/acc/piqa\n0,0,0.5\n100,1000,0.6\n")
    fits = tmp_path / "fits"
    commands = [
        ("runs", tmp_path / "runs"),
        ("fit", tmp_path / "runs", "--out", fits, *FAST),
        ("predict", "--fits", fits, "--params", "3e7"),
        ("predict", "--fits", fits, "--params", "1e40"),
        ("predict", "--fits", REPO / "fits", "--params", "1M", "--compute", "1"),
        ("plan", "--fits", fits, "--skill", "skill", "--target", "0.99"),
        ("plan", "--fits", fits, "--budget", "1e16"),
        ("predict", "--fits", fits, "--params", "3e7", "--metric", "loss"),
        ("predict", "--fits", fits, "--params", "3e7", "--aggregate", "avg=all"),
        ("plan", "--fits", fits, "--loss", "0.3"),
        ("backtest", tmp_path / "runs", "--draws", "20"),
        ("compare", recipes, *FAST, "--target-params", "1e9"),
        ("import", "csv", csv, "--params", "1M", "--tokens-column", "tokens", "--accuracy-columns", r"eval/acc/(\w+)",
         "--out", tmp_path / "imported"),
        ("pilot", "--preset", "tiny", "--show-config"),
        ("pilot", "--status", tmp_path / "imported"),
    ]
    kinds = set()
    for args in commands:
        result = invoke(*args, "--json")
        assert result.exit_code == 0, (args, result.stderr)
        data = _strict(result.stdout)
        json.dumps(data, allow_nan=False)
        kinds.add(data["kind"])
    assert {"runs", "fit", "predict", "predict-loss", "plan-target", "plan-budget", "plan-loss", "backtest", "compare",
            "import"} <= kinds
