"""Loss forecasts (`predict --metric loss`, `plan --loss`) and task averages (`--aggregate`):
planted parameters, Epoch's Chinchilla law reproduced through the command line, the fits
files they live in, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import assert_one_line_error, invoke, output, shared_data, snapshot
from overtrain import LAW, RATIOS, SIZES, model_name, true_loss, write_table

import forecast
from forecast.fitting.fit import FitOptions
from forecast.fitting.loss_fit import fit_loss_series
from forecast.forecasting.loss import plan_loss, predict_loss
from forecast.runs.model import Recipe, Run, make_series

EPOCH = {"E": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672}
"""Epoch AI's replication of Chinchilla approach 3 (Besiroglu et al. 2024), their best fit."""


def epoch_law(params: float, tokens: float) -> float:
    return EPOCH["E"] + EPOCH["A"] * params ** -EPOCH["alpha"] + EPOCH["B"] * tokens ** -EPOCH["beta"]


def loss_runs(sizes=(1e7, 3e7, 1e8, 3e8), ratios=(10, 40, 160), noise=0.0, seed=0, law=LAW) -> list[Run]:
    """Final-checkpoint runs carrying only a validation loss, from a planted law."""
    rng = np.random.default_rng(seed)
    runs = []
    for n in sizes:
        for m in ratios:
            d = m * n
            value = (law["E"] + law["A"] * n ** -law["alpha"] + law["B"] * d ** -law["beta"]) * math.exp(
                rng.normal(0, noise))
            series = make_series("val_loss", [0], [d], loss=[value], params=n)
            runs.append(Run(f"r{n:g}-{m}", n, "ladder", Recipe(), {"val_loss": series}))
    return runs


# ---------------------------------------------------------------------------- the Chinchilla reference


@pytest.mark.slow
def test_chinchilla_70b_at_1_4t_gives_epochs_law_value(tmp_path):
    """Acceptance: import the 240 points Epoch fitted, fit, and forecast 70B at 1.4T tokens."""
    table = shared_data("chinchilla", "chinchilla_approach3.csv")
    runs, fits = tmp_path / "runs", tmp_path / "fits"
    imported = output(invoke("import", "long", table, "--where", "excluded_in_epoch_fit=0", "--params-kind", "total",
                             "--out", runs, "--json"), "import")
    assert len(imported["runs"]) == 240 and all(r["metrics"] == ["massivetext"] for r in imported["runs"])
    fitted = output(invoke("fit", runs, "--out", fits, "--json"), "fit")
    (law,) = fitted["losses"]
    assert law["law"]["E"] == pytest.approx(EPOCH["E"], rel=0.01)
    (f,) = output(invoke("predict", "--metric", "loss", "--params", "70B", "--tokens", "1.4T", "--fits", fits,
                         "--json"), "predict-loss")["forecasts"]
    reference = epoch_law(70e9, 1.4e12)
    assert reference == pytest.approx(1.973, abs=5e-4)
    assert f["loss"] == pytest.approx(reference, rel=0.005)
    assert f["interval"]["low"] < reference < f["interval"]["high"]
    assert f["status"] == "predicted" and f["extrapolation"] > 40
    plan = output(invoke("plan", "--loss", "2.0", "--fits", fits, "--json"), "plan-loss")["plans"][0]
    assert plan["status"] == "reachable" and plan["flops"]["low"] < plan["flops"]["median"] < plan["flops"]["high"]


# ---------------------------------------------------------------------------- planted laws


def test_planted_law_is_recovered_and_forecast():
    runs = loss_runs(noise=0.002)
    fit = fit_loss_series(runs, "val_loss", "metric", draws=50)
    assert fit.predictable and fit.finals_only and fit.n_points == 12
    assert fit.law["E"] == pytest.approx(LAW["E"], rel=0.05)
    target = predict_loss(fit, 3e9, tokens=6e10)
    assert target.loss == pytest.approx(true_loss(3e9, 6e10), rel=0.01)
    assert target.interval.low < true_loss(3e9, 6e10) < target.interval.high
    near = predict_loss(fit, 1e8, tokens=4e9)
    assert (near.interval.high - near.interval.low) < (target.interval.high - target.interval.low)


def test_plan_loss_reads_the_same_samples_as_predict():
    fit = fit_loss_series(loss_runs(noise=0.002), "val_loss", "metric", draws=50)
    plan = plan_loss(fit, 2.1)
    assert plan.status == "reachable" and 0.5 < plan.reachable <= 1
    assert 6 * plan.params * plan.tokens == pytest.approx(plan.flops.median, rel=1e-6)
    again = predict_loss(fit, plan.params, tokens=plan.tokens)
    assert again.interval.median == pytest.approx(2.1, rel=0.01)
    assert plan_loss(fit, 1.0).status == "not-reachable"  # below the irreducible loss E = 1.7
    assert plan_loss(fit, 4.0).status == "already-reached"


def test_two_sizes_are_not_enough():
    fit = fit_loss_series(loss_runs(sizes=(1e7, 1e8)), "val_loss", "metric", draws=10)
    assert not fit.predictable and "need at least 3" in fit.reason
    assert predict_loss(fit, 1e9, tokens=2e10).status == "not-predictable"


def test_far_beyond_the_runs_is_out_of_range():
    fit = fit_loss_series(loss_runs(), "val_loss", "metric", draws=10)
    far = predict_loss(fit, 1e15, tokens=2e16)
    assert far.status == "out-of-range" and far.loss is None and "e-folds" in far.reason


@pytest.mark.slow
def test_overtrain_ladder_forecasts_the_largest_size(tmp_path):
    """Acceptance: fit the smaller models of an over-training ladder and forecast the largest:
    loss within 2%, and the 17-task average inside its interval, at each tokens ratio."""
    runs_dir = tmp_path / "runs"
    output(invoke("import", "long", write_table(tmp_path / "ot.csv"), "--out", runs_dir, "--json"), "import")
    runs = forecast.load_runs(runs_dir)
    small = [r for r in runs if r.params < SIZES[-1]]
    fits = forecast.fit(small, options=FitOptions(losses=True, draws=200))
    assert [f.metric for f in fits.losses] == ["c4_val"]
    for ratio in RATIOS:
        (held,) = [r for r in runs if r.name == model_name(SIZES[-1], ratio)]
        tokens = held.final_tokens
        (loss,) = fits.predict_loss(held.params, tokens=tokens)
        measured = float(held.series["c4_val"].loss[-1])
        assert loss.loss == pytest.approx(measured, rel=0.02)
        assert loss.loss == pytest.approx(true_loss(held.params, tokens), rel=0.02)
        average = fits.predict_aggregate("avg17", ["all"], held.params, tokens=tokens)
        assert len(average.members) == 17 and average.status == "predicted"
        actual = float(np.mean([s.accuracy[-1] for s in held.series.values() if s.is_skill]))
        assert average.accuracy.low <= actual <= average.accuracy.high, (ratio, average.accuracy, actual)


# ---------------------------------------------------------------------------- files and commands


def _write(runs, directory):
    forecast.write_runs(runs, directory)
    return directory


def test_fit_writes_loss_laws_beside_the_skills(tmp_path):
    runs = loss_runs(noise=0.002)
    fits = tmp_path / "fits"
    fitted = output(invoke("fit", _write(runs, tmp_path / "runs"), "--out", fits, "--draws", "20", "--json"), "fit")
    assert fitted["skills"] == [] and fitted["losses"][0]["metric"] == "val_loss"
    index = json.loads((fits / "index.json").read_text())
    (entry,) = index["losses"]
    assert entry["file"].startswith("ladder--default/losses/val_loss-")
    loaded = forecast.Fits.load(fits)
    assert [f.metric for f in loaded.losses] == ["val_loss"] and loaded.losses[0].law == fitted["losses"][0]["law"]
    (f,) = output(invoke("predict", "--metric", "loss", "--params", "1B", "--tokens", "20B", "--fits", fits, "--json"),
                  "predict-loss")["forecasts"]
    assert f["loss"] == pytest.approx(true_loss(1e9, 2e10), rel=0.01) and f["tokens_source"] == "given"
    table = invoke("predict", "--metric", "loss", "--params", "1B", "--fits", fits)
    assert table.exit_code == 0 and "val_loss" in table.stdout and "law value" in table.stdout


def test_refitting_keeps_the_loss_laws_of_other_groups(tmp_path):
    fits = tmp_path / "fits"
    first = loss_runs()
    other = [Run(r.name, r.params, "other", r.recipe, r.series) for r in loss_runs(seed=1)]
    assert invoke("fit", _write(first, tmp_path / "a"), "--out", fits, "--draws", "10").exit_code == 0
    assert invoke("fit", _write(other, tmp_path / "b"), "--out", fits, "--draws", "10").exit_code == 0
    assert sorted(f.family for f in forecast.Fits.load(fits).losses) == ["ladder", "other"]


def test_a_changed_loss_file_is_refused(tmp_path):
    fits = tmp_path / "fits"
    assert invoke("fit", _write(loss_runs(), tmp_path / "runs"), "--out", fits, "--draws", "10").exit_code == 0
    (file,) = (fits / "ladder--default" / "losses").glob("*.json")
    file.write_text(file.read_text().replace('"E": 1.', '"E": 2.', 1))
    assert_one_line_error(invoke("predict", "--metric", "loss", "--params", "1B", "--fits", fits),
                          "does not match the hash")


def test_loss_commands_refuse_bad_input(tmp_path):
    fits = tmp_path / "fits"
    assert invoke("fit", _write(loss_runs(), tmp_path / "runs"), "--out", fits, "--draws", "10").exit_code == 0
    before = snapshot(fits)
    assert_one_line_error(invoke("predict", "--metric", "loss", "--params", "1B", "--skill", "nope", "--fits", fits),
                          "no loss fit of that name", "val_loss")
    assert_one_line_error(invoke("predict", "--metric", "perplexity", "--params", "1B", "--fits", fits),
                          "--metric perplexity", "accuracy or loss")
    assert_one_line_error(invoke("plan", "--loss", "-1", "--fits", fits), "--loss must be a positive loss")
    assert_one_line_error(invoke("plan", "--loss", "2", "--budget", "1e20", "--fits", fits), "give one of")
    assert_one_line_error(invoke("predict", "--params", "1B", "--fits", fits), "no fits for family")
    assert snapshot(fits) == before


def test_fits_without_losses_say_how_to_get_them(tmp_path):
    tokens = np.array([10, 100, 1000, 10000])
    runs = [Run(f"r{n:g}", n, "f", Recipe(), {"piqa": make_series(
        "piqa", [0, 1, 2, 3], tokens * n / 1e6, accuracy=[0.5, 0.55, 0.6, 0.7], params=n, chance=0.5)})
        for n in (1e6, 3e6, 1e7)]
    fits = tmp_path / "fits"
    assert invoke("fit", _write(runs, tmp_path / "runs"), "--out", fits, "--draws", "10").exit_code == 0
    assert_one_line_error(invoke("predict", "--metric", "loss", "--params", "1B", "--fits", fits),
                          "hold no loss fit", "--loss-metrics")


def test_aggregate_flag_parsing():
    from forecast.forecasting.aggregate import parse_aggregates

    assert parse_aggregates(["avg=a, b", "all=all"]) == {"avg": ["a", "b"], "all": ["all"]}
    for bad in (["avg"], ["=a"], ["avg="], ["x=a", "x=b"]):
        with pytest.raises(forecast.UsageError):
            parse_aggregates(bad)


def test_predict_aggregate_through_the_command_line():
    """--aggregate on the shipped demo fits: the average of the members' forecasts, with its
    quantiles the mean of theirs (law uncertainty fully correlated across tasks)."""
    data = output(invoke("predict", "--params", "1M", "--fits", "fits", "--family", "demo", "--aggregate", "avg=all",
                         "--aggregate", "pair=add,sub", "--json"), "predict")
    members = {f["skill"]: f for f in data["forecasts"]}
    avg, pair = data["aggregates"]
    assert avg["name"] == "avg" and sorted(avg["members"]) == sorted(members) and avg["status"] == "predicted"
    assert pair["members"] == ["add", "sub"] and pair["method"].startswith("average of the members")
    mean_median = np.mean([members[m]["accuracy"]["median"] for m in pair["members"]])
    assert pair["accuracy"]["median"] == pytest.approx(mean_median, abs=0.03)
    assert pair["accuracy"]["low"] <= pair["accuracy"]["median"] <= pair["accuracy"]["high"]
    assert pair["chance"] == 0.0  # exact-match pilot skills
    assert_one_line_error(invoke("predict", "--params", "1M", "--fits", "fits", "--family", "demo", "--aggregate",
                                 "x=add,nope"),
                          "--skill nope", "unknown skill")


def test_a_law_with_its_floor_at_the_bound_is_weak_with_a_note():
    """Planted losses with no irreducible floor (E = 0): the fit's E stops at its lower bound
    (e^-5), so the law is `weak` with a `parameter-at-bound` note naming E, never `fitted`."""
    floorless = {"E": 0.0, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}
    runs = loss_runs(law=floorless, sizes=(1e7, 3e7, 1e8, 3e8, 1e9))
    fit = fit_loss_series(runs, "val_loss", "metric", draws=2)
    assert fit.status == "weak" and fit.predictable
    (note,) = [n for n in fit.notes if n.code == "parameter-at-bound"]
    assert note.message.startswith("E=0.006738 (its lower bound)")
    assert not note.message.startswith("val_loss:")
    plan = plan_loss(fit, 0.5 * min(min(r.loss) for r in fit.runs))
    assert plan.status == "reachable" and "a weak law (E=0.006738 (its lower bound))" in plan.reason
    # a well-posed law (Epoch's, floor 1.82) is fitted, with no such note
    good = fit_loss_series(loss_runs(law=EPOCH, sizes=(1e7, 3e7, 1e8, 3e8, 1e9)), "val_loss", "metric", draws=2)
    assert good.status == "fitted" and not [n for n in good.notes if n.code == "parameter-at-bound"]


def test_scatter_larger_than_the_trend_is_weak():
    """Noise (SD 30% of log loss) far larger than the law's change over the points: weak, noted."""
    runs = loss_runs(law=EPOCH, sizes=(1e8, 1.5e8, 2e8, 3e8), ratios=(20, 22, 24), noise=0.3, seed=3)
    fit = fit_loss_series(runs, "val_loss", "metric", draws=2)
    assert fit.status == "weak"
    assert any(n.code == "scatter-exceeds-signal" for n in fit.notes), fit.notes


def test_a_degenerate_compute_optimal_split_is_withheld_without_warnings():
    """A law whose size exponent sits at 0 puts the compute-optimal model at far below one
    parameter: the plan gives its compute but no N, D split, says why, and numpy stays quiet."""
    import dataclasses
    import warnings

    fit = fit_loss_series(loss_runs(law=EPOCH), "val_loss", "metric", draws=2)
    degenerate = dataclasses.replace(fit, law={**EPOCH, "A": 1e-3, "alpha": 1e-4}, draws=np.empty((0, 5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = plan_loss(degenerate, 2.3)
    assert plan.params is None and plan.tokens is None
    assert "no N, D split is given" in plan.reason and "below one" in plan.reason
    assert plan_loss(fit, 2.3).params is not None  # the well-posed law keeps its split


def test_already_reached_below_the_smallest_run_gives_no_compute():
    """A target loss above every run's: reached, and the compute below the smallest run is not a number."""
    fit = fit_loss_series(loss_runs(law=EPOCH), "val_loss", "metric", draws=2)
    plan = plan_loss(fit, 10.0)
    assert plan.status == "already-reached" and plan.flops is None and "below the smallest run" in plan.reason
