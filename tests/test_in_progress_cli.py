"""`forecast predict --run DIR [--check] [--plot]` and `forecast backtest --partial` through the
CLI, on a synthetic ladder: the JSON against its written shape, the exit code of the alarm,
the figure, and the bad-input contract."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import assert_one_line_error, invoke, output, snapshot
from test_in_progress import SIZES, TOKENS, TRUTH, N_EVAL, _conforms, target_run

from forecast import write_runs
from forecast.cli.in_progress import OFF_PATH_EXIT
from forecast.runs.synthetic import synthetic_ladder
from forecast.schema.in_progress import PartialBacktestJson, RunForecastJson


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """The ladder's runs and fits; an on-path run at 40% of training (in progress, planned
    tokens recorded), an off-path one (down 0.2 after 30%), and one that records no plan."""
    root = tmp_path_factory.mktemp("in-progress")
    runs = synthetic_ladder(TRUTH, SIZES, tokens_range=TOKENS, checkpoints=24, n_eval=N_EVAL,
                            rng=np.random.default_rng(1))
    write_runs(runs, root / "runs")
    output(invoke("fit", root / "runs", "--out", root / "fits", "--draws", "60", "--laws", "grok_scaling",
                  "--no-losses", "--json"), "fit")
    plan = {"complete": False, "planned_tokens": TOKENS[1]}
    on = dataclasses.replace(target_run(np.random.default_rng(7), share=0.4), name="on", extra=plan)
    off = dataclasses.replace(target_run(np.random.default_rng(8), share=0.6, shift_after=0.3, shift=-0.2), name="off",
                              extra=plan)
    bare = dataclasses.replace(on, name="bare", extra={"complete": False})
    write_runs([on, off, bare], root / "live")
    return root


def test_predict_run_json_and_table(ladder):
    result = invoke("predict", "--run", ladder / "live" / "on", "--fits", ladder / "fits", "--json")
    out = output(result, "predict-run")
    assert out["run"] == "on" and out["off_path"] == []
    (f,) = out["forecasts"]
    _conforms(f, RunForecastJson)
    assert f["planned_tokens"] == TOKENS[1] and abs(f["fraction_seen"] - 0.4) < 0.03
    assert 0 < f["run_weight"] < 1 and f["accuracy"]["low"] <= f["accuracy"]["median"] <= f["accuracy"]["high"]
    table = invoke("predict", "--run", ladder / "live" / "on", "--fits", ladder / "fits")
    assert table.exit_code == 0 and "on path" in table.stdout and "run weight" in table.stdout


def test_check_exits_3_off_path_and_0_on_it(ladder, tmp_path):
    on = invoke("predict", "--run", ladder / "live" / "on", "--fits", ladder / "fits", "--check")
    assert on.exit_code == 0, on.stderr
    off = invoke("predict", "--run", ladder / "live" / "off", "--fits", ladder / "fits", "--check", "--json",
                 "--plot", tmp_path / "progress.png")
    assert off.exit_code == OFF_PATH_EXIT == 3, (off.exit_code, off.stderr)
    import json

    out = json.loads(off.stdout)
    assert out["off_path"] == ["skill"]
    alarm = out["forecasts"][0]["off_path"]
    assert alarm["direction"] == "below" and 0.27 <= alarm["fraction"] <= 0.36 and abs(alarm["by"] + 0.2) < 0.05
    assert (tmp_path / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tokens_flag_overrides_and_missing_plan_is_one_line(ladder):
    bare = ladder / "live" / "bare"
    before = snapshot(ladder)
    assert_one_line_error(invoke("predict", "--run", bare, "--fits", ladder / "fits"), "--tokens")
    assert_one_line_error(invoke("predict", "--run", bare, "--params", "1B", "--fits", ladder / "fits"), "--run")
    assert_one_line_error(invoke("predict", "--fits", ladder / "fits"), "--params", "--run")
    assert snapshot(ladder) == before
    out = output(invoke("predict", "--run", bare, "--tokens", "3B", "--fits", ladder / "fits", "--json"), "predict-run")
    assert out["forecasts"][0]["planned_tokens"] == 3e9


def test_backtest_partial(ladder, tmp_path):
    """The largest pilot's end hidden: the score per visible share, in its written shape."""
    runs = synthetic_ladder(TRUTH, SIZES + [16e6], tokens_range=TOKENS, checkpoints=24, n_eval=N_EVAL,
                            rng=np.random.default_rng(2), skill="arithmetic_2da")  # a 2,000-item benchmark
    write_runs(runs, tmp_path / "runs")
    out = output(invoke("backtest", tmp_path / "runs", "--partial", "0.25,0.5", "--draws", "60", "--json"),
                 "backtest-partial")
    _conforms({k: v for k, v in out.items() if k not in ("format", "kind")}, PartialBacktestJson)
    assert [s["share"] for s in out["scores"]] == [0.25, 0.5] and all(s["items"] == 1 for s in out["scores"])
    assert all(s["mae"] is not None and s["mae"] < 0.05 for s in out["scores"])
    assert_one_line_error(invoke("backtest", tmp_path / "runs", "--partial", "0.25,2"), "--partial")
