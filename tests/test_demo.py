"""The main job (`forecast demo`) and the demo runs and fits shipped in the repository."""

from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, output

from forecast import Fits, Status, load_runs
from forecast.demo import run_demo

REPO = Path(__file__).resolve().parents[1]
SHIPPED_RUNS, SHIPPED_FITS = REPO / "runs" / "demo", REPO / "fits"


def test_demo_flow_on_the_tiny_ladder(tmp_path):
    """pilot -> fit -> predict -> verify wiring, on the seconds-long ladder (two sizes: too
    few to check any law by a hold-out, so every forecast must say low confidence, and why;
    the verification run is trained and scored all the same)."""
    result = run_demo(tmp_path, "cpu", preset="tiny", threads=1, jobs=1)
    assert result.runs_dir == tmp_path / "runs" / "tiny" and len(result.runs) == 2
    assert Fits.load(result.fits_dir).skills and {f.skill for f in result.forecasts} == {"add", "sort"}
    for f in result.forecasts:
        assert f.confidence == "low" and "too few sizes" in f.confidence_reason, f
    assert result.verification is not None and result.verification.path.parent == tmp_path / "runs" / "tiny-verify"
    assert result.verification.params > max(r.params for r in result.runs) and result.verification.complete
    assert [c.skill for c in result.checks] == ["add", "sort"]
    for c in result.checks:
        assert c.accuracy == result.verification.series[c.skill].accuracy[-1]
        assert c.covered is None or c.covered == (c.forecast.accuracy.low <= c.accuracy <= c.forecast.accuracy.high)
    assert 3 <= len(result.story) <= 5 and result.story[-1].startswith("Total time")
    again = run_demo(tmp_path, "cpu", preset="tiny", threads=1, jobs=1, verify=False)  # finished runs are skipped
    assert again.verification is None and not again.checks and again.seconds["pilots"] < result.seconds["pilots"]


def _grok_step(series, level=0.5):
    """First evaluated step at which accuracy reaches `level` (None if never)."""
    hits = np.flatnonzero(series.accuracy >= level)
    return None if not hits.size else float(series.tokens[hits[0]])


@pytest.mark.skipif(not SHIPPED_RUNS.exists(), reason="runs/demo is not in this checkout")
def test_shipped_demo_runs_show_transitions_that_come_sooner_for_larger_models():
    runs = load_runs(SHIPPED_RUNS)
    by_size: dict[float, list] = {}
    for run in runs:
        by_size.setdefault(run.params, []).append(run)
    sizes = sorted(by_size)
    assert len(sizes) >= 4
    grokking = []
    for skill in ("add", "sub"):
        largest = by_size[sizes[-1]]
        assert all(r.series[skill].accuracy[0] < 0.05 for r in runs)  # near chance at the start
        assert max(r.series[skill].accuracy.max() for r in largest) >= 0.8  # grokked at the larger sizes
        # mean grok point (tokens to 50%) over seeds, for sizes where every seed got there
        points = {}
        for size in sizes:
            steps = [_grok_step(r.series[skill]) for r in by_size[size]]
            if all(s is not None for s in steps):
                points[size] = np.mean(steps)
        assert len(points) >= 3, points
        ordered = [points[s] for s in sorted(points)]
        assert ordered[-1] < ordered[0], points  # larger models grok sooner
        grokking.append(skill)
    assert max(r.series["word"].accuracy.max() for r in runs) < 0.5  # the harder skill has not


@pytest.mark.skipif(not SHIPPED_FITS.exists(), reason="fits/ is not in this checkout")
def test_predict_70b_on_the_shipped_fits(monkeypatch):
    monkeypatch.chdir(REPO)  # `--fits` defaults to ./fits
    rows = output(invoke("predict", "--params", "70B", "--skill", "all", "--json"), "predict")["forecasts"]
    assert {r["skill"] for r in rows} == {"add", "sub", "word"}
    for r in rows:
        assert r["status"] in set(Status)
        if r["status"] in ("not-predictable", "out-of-range"):
            assert r["accuracy"] is None and r["grok"] is None and r["p_grok"] is None


@pytest.mark.skipif(not SHIPPED_FITS.exists(), reason="fits/ is not in this checkout")
def test_shipped_fits_forecast_grok_points_for_a_larger_size():
    fits = Fits.load(SHIPPED_FITS)
    forecasts = {f.skill: f for f in fits.predict(1e6, skills=["all"])}
    for skill in ("add", "sub"):
        f = forecasts[skill]
        assert f.status != "not-predictable", f.reason
        assert f.grok is not None and (f.grok.tokens is None or f.grok.low is None or f.grok.low <= f.grok.tokens)


@pytest.mark.skipif(not SHIPPED_FITS.exists(), reason="fits/ is not in this checkout")
@pytest.mark.parametrize("skill,target", [("add", 0.6), ("add", 0.8), ("sub", 0.7)])
def test_plan_round_trips_through_predict_on_the_shipped_fits(skill, target):
    """The compute `plan` names for a target accuracy, fed back to `predict`, forecasts that
    accuracy within its interval."""
    fits = Fits.load(SHIPPED_FITS)
    plan = fits.plan(skill=skill, target=target)
    assert plan.flops is not None, plan.reason
    (f,) = fits.predict(plan.params, flops=plan.flops.median, skills=[skill])
    assert f.accuracy.low <= target <= f.accuracy.high
