"""The main job (`forecast demo`) and the demo runs and fits shipped in the repository."""

from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, output, snapshot

from forecast import Fits, Status, load_runs
from forecast.demo import crossing, run_demo

REPO = Path(__file__).resolve().parents[1]
SHIPPED_RUNS, SHIPPED_FITS = REPO / "runs" / "demo", REPO / "fits"


@pytest.mark.slow
def test_demo_flow_on_the_tiny_ladder(tmp_path, monkeypatch):
    """pilot -> fit -> predict -> verify wiring, on the seconds-long ladder (two sizes: too
    few to check any law by a hold-out, so every forecast must say low confidence, and why;
    the verification run is trained and scored all the same). No tiny pilots are shipped, so
    they are trained; the fits are byte for byte the ones `forecast fit` writes of them."""
    result = run_demo(tmp_path, "cpu", preset="tiny", jobs=1)
    assert result.trained_pilots and result.runs_dir == tmp_path / "runs" / "tiny" and len(result.runs) == 2
    assert Fits.load(result.fits_dir).skills and {f.skill for f in result.forecasts} == {"add", "sort"}
    for f in result.forecasts:
        assert f.confidence == "low" and "too few sizes" in f.confidence_reason, f
    (verification,) = result.verification  # one per ladder seed: tiny has one
    assert verification.path.parent == tmp_path / "runs" / "tiny-verify" and verification.complete
    assert verification.params > max(r.params for r in result.runs)
    assert [(c.skill, c.seed) for c in result.checks] == [("add", 0), ("sort", 0)]
    for c in result.checks:
        assert c.accuracy == verification.series[c.skill].accuracy[-1]
        assert c.covered is None or c.covered == (c.forecast.accuracy.low <= c.accuracy <= c.forecast.accuracy.high)
        assert (c.cause is None) == (not c.missed)
    assert 3 <= len(result.story) <= 6 and result.story[-1].startswith("Total time")
    # the demo fits exactly as `forecast fit` does (loss laws included)
    monkeypatch.chdir(tmp_path)
    assert invoke("fit", result.runs_dir, "--out", tmp_path / "cli-fits").exit_code == 0
    assert snapshot(tmp_path / "cli-fits") == snapshot(result.fits_dir)
    assert Fits.load(result.fits_dir).losses  # loss laws: today's `forecast fit` default
    # the shipped-pilot path: the pilots in a given folder are fitted, not trained
    again = run_demo(tmp_path / "again", "cpu", preset="tiny", verify=False, pilots=result.runs_dir)
    assert not again.trained_pilots and again.verification == [] and not again.checks
    assert snapshot(again.fits_dir) == snapshot(result.fits_dir)


def _by_size(runs):
    by_size: dict[float, list] = {}
    for run in runs:
        by_size.setdefault(run.params, []).append(run)
    return [by_size[size] for size in sorted(by_size)]


def _shape(run):
    model = run.extra["config"]["model"]
    return model["n_layer"], model["n_embd"]


def _grok(run, skill, threshold=0.5):
    return crossing(run.series[skill].tokens, run.series[skill].accuracy, threshold)


@pytest.mark.skipif(not SHIPPED_RUNS.exists(), reason="runs/demo is not in this checkout")
def test_shipped_demo_ladder_spans_sizes_shapes_and_seeds():
    """>= 5 sizes over >= 16x in parameters, depth and width both growing, >= 2 seeds a size,
    every pilot complete and trained as the preset says; the verification model >= 4x the
    largest pilot."""
    from forecast.pilot import preset_ladder

    sizes = _by_size(load_runs(SHIPPED_RUNS))
    assert len(sizes) >= 5 and all(len(runs) >= 2 for runs in sizes)
    assert sizes[-1][0].params >= 16 * sizes[0][0].params
    shapes = [_shape(runs[0]) for runs in sizes]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(shapes, shapes[1:])), shapes
    assert shapes[-1][0] > shapes[0][0] and shapes[-1][1] > shapes[0][1], shapes
    assert all(r.complete for runs in sizes for r in runs)
    ladder = preset_ladder("demo")
    assert {s.name for s in ladder.run_specs()} == {r.name for runs in sizes for r in runs}
    assert ladder.verify.params_non_embedding >= 4 * sizes[-1][0].params


def test_demo_preset_states_one_rule_for_every_size():
    """One rule for learning rate, warm-up and batch in terms of size, the verification model
    included: peak lr = 0.05 / sqrt(width) (2 significant digits), the same warm-up steps,
    batch size and steps for every size."""
    from forecast.pilot import preset_ladder

    ladder = preset_ladder("demo")
    trains = {size: ladder.train_for(size) for size in ladder.sizes} | {"verify": ladder.verify_train}
    widths = {size: m.n_embd for size, m in ladder.sizes.items()} | {"verify": ladder.verify.n_embd}
    for size, train in trains.items():
        assert train.lr == float(f"{0.05 / widths[size] ** 0.5:.2g}"), (size, train.lr)
        assert (train.warmup_steps, train.batch_size, train.steps) == \
            (ladder.train.warmup_steps, ladder.train.batch_size, ladder.train.steps), size


def _shipped_sizes():
    if not SHIPPED_RUNS.exists():
        pytest.skip("runs/demo is not in this checkout")
    sizes = _by_size(load_runs(SHIPPED_RUNS))
    for skill in ("add", "sub", "word"):
        assert all(r.series[skill].accuracy[0] < 0.05 for size in sizes for r in size)  # near chance at the start
    return sizes


@pytest.mark.xfail(strict=True, reason="issue 26, not met: 9 of 10 pilots grok add, larger sooner (3.1K: 2.4-2.6M "
                   "tokens; 58K: 0.46-0.51M), but the 7K pilot's seed 0 never does within 2.8M tokens (0.01)")
def test_shipped_demo_add_is_grokked_by_every_pilot_the_largest_sooner():
    """Grain 1: `add` grokked by every pilot, the largest size sooner (in tokens) than the smallest."""
    sizes = _shipped_sizes()
    grok = [[_grok(r, "add") for r in size] for size in sizes]
    assert np.mean(np.log([t for t in grok[-1] if t])) < np.mean(np.log([t for t in grok[0] if t])), grok
    assert all(t is not None for size in grok for t in size), grok


@pytest.mark.xfail(strict=True, reason="issue 26, not met: sub's grok at this scale is decided by the seed, not the "
                   "size: one seed of the 3.1K pilot groks it (1.96M tokens), one of the 25K never does; a fixed "
                   "fact table (skill `fact`) probed instead is seed-decided with 2-digit values (25K: 0.53 vs 0.22) "
                   "and holds it with 250 6-digit ones (probe K), whose 249K verification then misses it for both "
                   "seeds (docs/demo-ladder.md); the shipped ladder is still this one")
def test_shipped_demo_sub_is_grokked_by_the_larger_half_only():
    """Grain 2: `sub` not grokked within the budget by any pilot of the smaller half of the
    sizes, grokked by every pilot of the larger half."""
    sizes = _shipped_sizes()
    half = len(sizes) // 2
    assert all(r.series["sub"].accuracy.max() < 0.5 for size in sizes[:half] for r in size)
    assert all(_grok(r, "sub") is not None for size in sizes[-half:] for r in size)


@pytest.mark.xfail(strict=True, reason="issue 26, not met: word's answer probability does not rise with size on "
                   "this ladder (per size, mean of seeds, 3.1K to 58K: 0.016, 0.023, 0.015, 0.020, 0.014); the "
                   "composite `factadd` probed instead stays at chance, 0.009-0.010, at every size "
                   "(docs/demo-ladder.md)")
def test_shipped_demo_word_is_never_right_while_its_probability_rises_with_size():
    """Grain 3: `word` near zero in accuracy at every size while its answer probability
    (last 3 evaluations, mean over seeds) rises with size."""
    sizes = _shipped_sizes()
    assert max(r.series["word"].accuracy.max() for size in sizes for r in size) < 0.15
    prob = [np.mean([r.series["word"].prob[-3:].mean() for r in size]) for size in sizes]
    rank = np.argsort(np.argsort(prob))
    assert np.corrcoef(rank, np.arange(len(prob)))[0, 1] >= 0.8 and prob[-1] > 1.2 * prob[0], prob


def test_shipped_demo_word_is_never_right():
    """What grain 3 keeps on this ladder: no pilot gets the composite word problem right."""
    sizes = _shipped_sizes()
    assert max(r.series["word"].accuracy.max() for size in sizes for r in size) < 0.15


@pytest.mark.skipif(not SHIPPED_FITS.exists(), reason="fits/ is not in this checkout")
def test_predict_70b_on_the_shipped_fits(monkeypatch):
    monkeypatch.chdir(REPO)  # `--fits` defaults to ./fits
    rows = output(invoke("predict", "--params", "70B", "--skill", "all", "--family", "demo", "--json"),
                  "predict")["forecasts"]
    assert {r["skill"] for r in rows} == {"add", "sub", "word"}
    for r in rows:
        assert r["status"] in set(Status)
        if r["status"] in ("not-predictable", "out-of-range"):
            assert r["accuracy"] is None and r["grok"] is None and r["p_grok"] is None


@pytest.mark.skipif(not SHIPPED_FITS.exists(), reason="fits/ is not in this checkout")
def test_shipped_fits_forecast_grok_points_for_a_larger_size():
    fits = Fits.load(SHIPPED_FITS)
    forecasts = {f.skill: f for f in fits.predict(1e6, skills=["all"], family="demo")}
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
    plan = fits.plan(skill=skill, target=target, family="demo")
    assert plan.flops is not None, plan.reason
    (f,) = fits.predict(plan.params, flops=plan.flops.median, skills=[skill], family="demo")
    assert f.accuracy.low <= target <= f.accuracy.high


# ---------------------------------------------------------------------------- the real slice

REAL = REPO / "runs" / "real"


def _import_real(out: Path) -> None:
    """The README's commands (runs/real/README.md, "Remaking it") that made runs/real."""
    src = REAL / "sources"
    assert invoke("import", "table", src / "leaderboard.csv", "--name-column", "Model", "--family-column",
                  "Model Family", "--params-column", "Model Size (B)", "--params-unit", "1e9", "--params-kind",
                  "total", "--tokens-column", "Pretraining Data Size (T)", "--tokens-unit", "1e12",
                  "--flops-column", "FLOPs (1E21)", "--flops-unit", "1e21", "--out",
                  out / "leaderboard").exit_code == 0
    assert invoke("import", "long", src / "pythia.csv", "--metric", "acc", "--shots", "0", "--params-column",
                  "nonembedding_params", "--params-kind", "non-embedding", "--out", out / "pythia").exit_code == 0


@pytest.mark.skipif(not REAL.exists(), reason="runs/real is not in this checkout")
def test_shipped_real_runs_are_what_their_readme_commands_make(tmp_path):
    """runs/real holds exactly the runs its README's import commands make of its sources, and
    the shipped fits/ were fitted from those very runs (the content hashes they record)."""
    _import_real(tmp_path)
    for part in ("leaderboard", "pythia"):
        made = {r.name: r.content_hash for r in load_runs(tmp_path / part)}
        shipped = {r.name: r.content_hash for r in load_runs(REAL / part)}
        assert made == shipped, part
    hashes = {r.content_hash for part in ("leaderboard", "pythia") for r in load_runs(REAL / part)}
    fits = Fits.load(SHIPPED_FITS)
    real = [sf for sf in fits.skills if sf.family != "demo"]
    assert {(sf.family, sf.skill) for sf in real} >= {("Llama", "GSM8K"), ("pythia", "arc_easy")}
    assert {p.hash for sf in real for p in sf.pilots} <= hashes


@pytest.mark.skipif(not SHIPPED_FITS.exists(), reason="fits/ is not in this checkout")
def test_shipped_fits_answer_gsm8k_at_70b_for_every_family_that_holds_it():
    """The mission's question on real data: every leaderboard family with GSM8K gets a number
    and an 80% interval at 70B (the Llama family: 7B-33B models; the target ~2 e-folds out)."""
    fits = Fits.load(SHIPPED_FITS)
    families = sorted({sf.family for sf in fits.skills if sf.skill == "GSM8K"})
    assert len(families) >= 15, families
    for family in families:
        (f,) = fits.predict(70e9, skills=["gsm8k"], family=family)  # skill names match case-insensitively
        assert f.skill == "GSM8K" and f.family == family
        assert f.accuracy is not None, (family, f.status, f.reason)
        assert 0 <= f.accuracy.low <= f.accuracy.median <= f.accuracy.high <= 1, family
        assert f.confidence in ("high", "medium", "low") and f.confidence_reason, family
    # the data decide the answer: families that already solve GSM8K at 7-34B forecast well above those that do not
    median = {fam: fits.predict(70e9, skills=["gsm8k"], family=fam)[0].accuracy.median for fam in ("Qwen1.5", "OPT")}
    assert median["Qwen1.5"] > 0.5 > 0.1 > median["OPT"], median


@pytest.mark.skipif(not SHIPPED_FITS.exists(), reason="fits/ is not in this checkout")
def test_predict_70b_gsm8k_for_one_family_through_the_cli(monkeypatch):
    """`forecast predict --params 70B --skill gsm8k --family Llama --json` from the repository
    root (fits/ by default): numbers from real data, in the shape `schema.ForecastJson` writes down."""
    from forecast.schema.outputs import ForecastJson, GrokJson, IntervalJson

    monkeypatch.chdir(REPO)
    data = output(invoke("predict", "--params", "70B", "--skill", "gsm8k", "--family", "Llama", "--json"), "predict")
    (row,) = data["forecasts"]
    assert set(row) == set(ForecastJson.__annotations__), set(row) ^ set(ForecastJson.__annotations__)
    assert set(row["accuracy"]) == set(IntervalJson.__annotations__)
    assert row["grok"] is None or set(row["grok"]) == set(GrokJson.__annotations__)
    assert row["family"] == "Llama" and row["skill"] == "GSM8K" and row["params"] == 70e9
    assert 0 <= row["accuracy"]["low"] <= row["accuracy"]["median"] <= row["accuracy"]["high"] <= 1


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED_RUNS.exists(), reason="runs/demo is not in this checkout")
@pytest.mark.xfail(strict=True, reason="issue 26, not met: seed 1 of the 249K model groks sub at 1.65M tokens "
                   "(forecast 2.18M, 1.32x), seed 0 never does (0.085 after 2.8M; forecast 0.75 [0.33-0.96])")
def test_demo_verification_confirms_the_emergence_for_both_seeds(tmp_path):
    """The main job as the README's first command runs it: the shipped pilots fitted, the
    verification model (>= 4x the largest pilot) trained once per seed; for the harder skill,
    which the smaller pilots never grok, the grok point within 2x of the forecast and the final
    accuracy inside the 80% interval, for both seeds."""
    result = run_demo(tmp_path, "cpu")
    assert not result.trained_pilots and len(result.verification) == 2
    subs = [c for c in result.checks if c.skill == "sub"]
    assert len(subs) == 2
    for c in subs:
        assert c.covered and c.grok_within_2x, (c.seed, c.accuracy, c.forecast.accuracy, c.grok_ratio, c.cause)


@pytest.mark.skipif(not SHIPPED_FITS.exists() or not SHIPPED_RUNS.exists(), reason="fits/ or runs/demo is missing")
def test_a_miss_is_a_miss_with_its_likely_cause():
    """`check` on real runs: the 25K pilots' two seeds ended sub at 0.88 and 0.12; against the
    forecast for a 25K model (whose interval, 0.70-0.77, does not hold that seed spread), the
    seed that stayed low is a miss whose cause is the seed spread, and the one that grokked is
    scored against the forecast grok point (within 2x)."""
    from forecast.demo import check

    fits = Fits.load(SHIPPED_FITS)
    runs = {r.name: r for r in load_runs(SHIPPED_RUNS)}
    low, high = runs["demo-reverse-l-s1"], runs["demo-reverse-l-s0"]
    (f,) = fits.predict(low.params, tokens=low.final_tokens, skills=["sub"], family="demo")
    missed = check(f, low, [high])
    assert missed.accuracy == low.series["sub"].accuracy[-1] < 0.2 and missed.grok_tokens is None
    assert missed.missed and missed.covered is False and missed.cause.startswith("seed spread")  # 0.12 vs 0.88
    held = check(f, high, [low])
    assert held.grok_tokens == _grok(high, "sub", f.threshold) and held.grok_ratio == f.grok.tokens / held.grok_tokens
    assert held.grok_within_2x and (held.cause is None) == (not held.missed)


@pytest.mark.skipif(not SHIPPED_RUNS.exists(), reason="runs/demo is not in this checkout")
def test_pilots_trained_with_another_config_are_refused_before_fitting(tmp_path):
    """The forecast must be about the preset's pilots: a pilot whose recorded configuration
    differs (here its learning rate) is a one-line UsageError naming `train_pilots`, and
    nothing is written."""
    import json
    import shutil

    from forecast.errors import UsageError

    pilots = tmp_path / "pilots"
    shutil.copytree(SHIPPED_RUNS, pilots)
    meta = pilots / "demo-reverse-m-s1" / "run.json"
    data = json.loads(meta.read_text())
    data["extra"]["config"]["train"]["lr"] = 0.02
    meta.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="demo-reverse-m-s1") as error:
        run_demo(tmp_path / "out", "cpu", pilots=pilots, verify=False)
    assert error.value.parameter == "train_pilots" and not (tmp_path / "out").exists()
