"""`import lm-eval --samples`: lm-evaluation-harness per-item samples (`--log_samples`) as a
skill's continuous metrics, checked against a hand computation; the two-step chain through
them on a planted ladder; and one `--params` per model (issue 18 item 3)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from helpers import assert_one_line_error, invoke, output, shared_data, snapshot

import forecast
from forecast.importers import SkippedWarning, import_lm_eval

FIXTURES = Path(__file__).parent / "fixtures" / "lm-eval-samples"
HAND = FIXTURES / "hand"
LADDER = FIXTURES / "ladder"
LADDER_PARAMS = ("--params", "pilot-1M=1M", "--params", "pilot-3M=3M", "--params", "pilot-10M=10M",
                 "--params", "pilot-30M=30M")


def test_samples_match_a_hand_computation():
    """hand/samples_toy_add_mc_*.jsonl holds three 4-way items (log-likelihoods of the choices):
    item 0: [-2, -0.5, -1.5, -3], correct 1: p = e^-0.5 / (e^-2 + e^-0.5 + e^-1.5 + e^-3) = 0.597695, NLL 0.5;
    item 1: ln [0.1, 0.5, 0.3, 0.1], correct 0: p = 0.1, NLL = ln 10 = 2.302585;
    item 2 (target "7" is the text of choice 2; older numeric layout): [-1.2, -1.6, -0.9, -2.5]:
    p = e^-0.9 / (e^-1.2 + e^-1.6 + e^-0.9 + e^-2.5) = 0.409954, NLL 0.9."""
    with pytest.warns(SkippedWarning, match="no log-likelihood samples for toy_add_gen"):
        (run,) = import_lm_eval([HAND], params=1e6, tokens_per_step=100, samples=True, chance={"toy_add_mc": 0.25})
    s = run.series["toy_add_mc"]
    p = [math.exp(-0.5) / sum(math.exp(v) for v in (-2, -0.5, -1.5, -3)), 0.1,
         math.exp(-0.9) / sum(math.exp(v) for v in (-1.2, -1.6, -0.9, -2.5))]
    assert p == pytest.approx([0.597695, 0.1, 0.409954], abs=1e-6)
    assert float(s.prob[0]) == pytest.approx(sum(p) / 3, abs=1e-9)
    assert float(s.loss[0]) == pytest.approx((0.5 + math.log(10) + 0.9) / 3, abs=1e-9)
    assert float(s.accuracy[0]) == pytest.approx(2 / 3) and int(s.step[0]) == 500 and float(s.tokens[0]) == 50000
    assert "toy_add_mc" in run.extra["samples"]
    gen = run.series["toy_add_gen"]
    assert gen.prob is None and gen.loss is None  # a generation task: no log-likelihoods


def test_samples_through_the_command_line(tmp_path):
    out = tmp_path / "runs"
    result = invoke("import", "lm-eval", HAND, "--params", "1M", "--tokens-per-step", "100", "--samples",
                    "--chance", "toy_add_mc=0.25", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "no log-likelihood samples for toy_add_gen" in result.stderr
    rows = (out / "pilot-hand" / "trajectory.csv").read_text().splitlines()
    header, mc = rows[0].split(","), next(r for r in rows if ",toy_add_mc," in r).split(",")
    row = dict(zip(header, mc))
    assert float(row["prob"]) == pytest.approx(0.369216, abs=1e-6)
    assert float(row["loss"]) == pytest.approx(1.234195, abs=1e-6)


def test_without_samples_flag_nothing_changes():
    (run,) = import_lm_eval([HAND], params=1e6, tokens_per_step=100, chance={"toy_add_mc": 0.25})
    assert run.series["toy_add_mc"].prob is None and "samples" not in run.extra


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "hand"
    shutil.copytree(HAND, folder)
    return folder


def _samples(folder: Path) -> Path:
    return next(folder.glob("samples_toy_add_mc_*.jsonl"))


def _edit(folder: Path, line: int, **changes) -> None:
    path = _samples(folder)
    lines = path.read_text().splitlines()
    item = json.loads(lines[line - 1])
    item.update(changes)
    lines[line - 1] = json.dumps(item)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("change, fragments", [
    ({"target": "9"}, (":1", "field 'target'", "neither a choice index nor a choice's text")),
    ({"target": "0"}, (":1", "field 'target'", "acc is 1")),
    ({"filtered_resps": [["0.5", "False"], ["-1", "False"], ["-1", "False"], ["-1", "False"]]},
     (":1", "field 'filtered_resps'", "not a finite number <= 0")),
    ({"doc_id": 1}, (":2", "field 'doc_id'", "doc_id 1 twice")),
])
def test_malformed_samples_are_one_line_errors(tmp_path, change, fragments):
    folder = _copy(tmp_path)
    _edit(folder, 1, **change)
    out = tmp_path / "runs"
    result = invoke("import", "lm-eval", folder, "--params", "1M", "--tokens-per-step", "100", "--samples",
                    "--chance", "toy_add_mc=0.25", "--out", out)
    assert_one_line_error(result, str(_samples(folder)), *fragments)
    assert not out.exists()


def test_a_broken_json_line_names_its_line(tmp_path):
    folder = _copy(tmp_path)
    path = _samples(folder)
    path.write_text(path.read_text() + "{not json\n")
    assert_one_line_error(invoke("import", "lm-eval", folder, "--params", "1M", "--tokens-per-step", "100",
                                 "--samples", "--chance", "toy_add_mc=0.25", "--out", tmp_path / "runs"),
                          f"{path}:4", "not a JSON line")


def test_samples_flag_without_samples_files(tmp_path):
    folder = _copy(tmp_path)
    for path in folder.glob("samples_*"):
        path.unlink()
    assert_one_line_error(invoke("import", "lm-eval", folder, "--params", "1M", "--tokens-per-step", "100",
                                 "--samples", "--chance", "toy_add_mc=0.25", "--out", tmp_path / "runs"),
                          "no samples_<task>_<date>.jsonl", "--log_samples")


# ---------------------------------------------------------------------------- the ladder


def test_ladder_fixture_gives_the_planted_task_loss(tmp_path):
    """make_fixture.py plants L = 0.4 + 60·N^-0.3 + 40·D^-0.3 as the mean NLL of the correct answer."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixture", FIXTURES / "make_fixture.py")
    planted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(planted)
    runs = import_lm_eval([LADDER], params={f"pilot-{k}": v for k, v in planted.SIZES.items()},
                          tokens_per_step=planted.TOKENS_PER_STEP, samples=True, chance={"toy_add_mc": 0.25})
    assert len(runs) == 4
    for run in runs:
        s = run.series["toy_add_mc"]
        expected = [planted.task_loss(run.params, t) for t in s.tokens]
        assert list(s.loss) == pytest.approx(expected, abs=1e-5)  # log-likelihoods are written to 6 decimals
        assert all(0.25 < p < 1 for p in s.prob) and list(s.prob) == sorted(s.prob)


@pytest.mark.slow
def test_two_step_forecast_through_the_samples_metric(tmp_path):
    """Acceptance: the two-step chain (task loss L(N, D), then accuracy from it) through the
    samples-derived NLL, on the fixture, with the loss law recovering the planted one."""
    runs, fits = tmp_path / "runs", tmp_path / "fits"
    output(invoke("import", "lm-eval", LADDER, *LADDER_PARAMS, "--tokens-per-step", "16384", "--samples",
                  "--chance", "toy_add_mc=0.25", "--out", runs, "--json"), "import")
    fitted = output(invoke("fit", runs, "--out", fits, "--laws", "two_step", "--draws", "100", "--json"), "fit")
    (skill,) = fitted["skills"]
    # the chain runs through a samples-derived series: the answer's NLL (`own`) or its
    # probability (`own_prob`); which one the hold-outs prefer is theirs to choose
    assert skill["status"] == "fitted" and skill["law"] in ("two_step[floor=chance,via=own]",
                                                           "two_step[floor=chance,via=own_prob]")
    (law,) = fitted["losses"]
    assert law["kind"] == "task" and law["law"]["E"] == pytest.approx(0.4, rel=0.01)
    (f,) = output(invoke("predict", "--params", "100M", "--tokens", "131072000", "--fits", fits, "--json"),
                  "predict")["forecasts"]
    assert f["law"].startswith("two_step") and f["accuracy"]["low"] < f["accuracy"]["median"] <= f["accuracy"]["high"]
    assert f["accuracy"]["median"] > 0.9  # the planted task loss at 100M is below every pilot's
    (loss,) = output(invoke("predict", "--metric", "loss", "--params", "100M", "--tokens", "131072000",
                            "--fits", fits, "--json"), "predict-loss")["forecasts"]
    assert loss["loss"] == pytest.approx(0.4 + 60 * 1e8 ** -0.3 + 40 * 131072000 ** -0.3, rel=0.005)


# ---------------------------------------------------------------------------- --params per model


def test_one_params_for_several_models_is_refused(tmp_path):
    """Issue 18 item 3: folders of different models with one --params got the same size, silently."""
    out = tmp_path / "runs"
    before = snapshot(out)
    assert_one_line_error(invoke("import", "lm-eval", LADDER, "--params", "1M", "--tokens-per-step", "16384",
                                 "--chance", "toy_add_mc=0.25", "--out", out),
                          "4 models", "pilot-10M, pilot-1M, pilot-30M, pilot-3M", "--params pilot-10M=N")
    assert_one_line_error(invoke("import", "lm-eval", LADDER, "--params", "pilot-1M=1M", "--tokens-per-step", "16384",
                                 "--chance", "toy_add_mc=0.25", "--out", out), "no count for model", "pilot-")
    assert_one_line_error(invoke("import", "lm-eval", LADDER, *LADDER_PARAMS, "--params", "pilot-99M=9M",
                                 "--tokens-per-step", "16384", "--chance", "toy_add_mc=0.25", "--out", out),
                          "--params pilot-99M=...", "no model of that name")
    assert_one_line_error(invoke("import", "lm-eval", LADDER, "--params", "1M", "--params", "pilot-1M=1M",
                                 "--tokens-per-step", "16384", "--out", out), "not both")
    assert snapshot(out) == before


def test_params_per_model_on_pythia_folders(tmp_path):
    a, b = shared_data("pythia", "pythia-70m"), shared_data("pythia", "pythia-160m")
    out = tmp_path / "runs"
    assert_one_line_error(invoke("import", "lm-eval", a, b, "--params", "302311424", "--tokens-per-step", "2097152",
                                 "--out", out), "2 models", "--params")
    data = output(invoke("import", "lm-eval", a, b, "--params", "pythia-70m=18915328", "--params",
                         "pythia-160m=85056000", "--tokens-per-step", "2097152", "--average", "hendrycksTest-=mmlu",
                         "--out", out, "--json"), "import")
    # keyed by folder; the runs are named by the models' `pretrained` (EleutherAI/pythia-v1.1-70m)
    expected = {"pythia-v1.1-70m": 18915328, "pythia-v1.1-160m": 85056000}
    assert {r["name"]: r["params"] for r in data["runs"]} == expected
    assert {r.name: r.params for r in forecast.load_runs(out)} == expected
