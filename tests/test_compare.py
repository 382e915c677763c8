"""`forecast compare`: speed of grokking per recipe, advantage ratios, and their trend with size,
on synthetic ladders whose recipes' grok laws are known."""

import numpy as np
import pytest
from helpers import invoke, output

from forecast import FitOptions, compare, fit, write_runs
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

SIZES = [1e6, 2e6, 4e6, 8e6, 16e6]
OPTIONS = FitOptions(draws=60, laws=("grok_scaling",), skip_fraction=0.0)  # synthetic runs have no warm-up
SHRINKING = {"scratch": GrokTruth(d_half=2.5e7, gamma=0.55), "plain": GrokTruth(d_half=1e8, gamma=0.9)}


def _ladder(truths: dict[str, GrokTruth], seed: int = 0):
    rng = np.random.default_rng(seed)
    runs = []
    for label, truth in truths.items():
        runs += synthetic_ladder(truth, SIZES, tokens_range=(1e6, 3e9), checkpoints=24, recipe=label, rng=rng)
    return runs


@pytest.fixture(scope="module")
def shrinking():
    """`scratch` groks 4x sooner at 1M params, but its grok point falls more slowly with N
    (gamma 0.55 vs 0.9), so the advantage shrinks: 4 × (N/1M)^-0.35, 1.5x at 16M, 0.36x at 1B."""
    runs = _ladder(SHRINKING)
    return fit(runs, options=OPTIONS)


@pytest.fixture(scope="module")
def constant():
    """The same 3x advantage at every size (equal exponents)."""
    runs = _ladder({"fast": GrokTruth(d_half=3e7, gamma=0.7), "slow": GrokTruth(d_half=9e7, gamma=0.7)}, seed=1)
    return fit(runs, options=OPTIONS)


def test_known_shrinking_advantage_is_detected(shrinking):
    (c,) = compare(shrinking, target_params=1e9)
    assert c.baseline == "scratch"
    (v,) = c.verdicts
    assert v.trend == "shrinks" and v.p_shrinks >= 0.8, v.text
    for n, truth in ((SIZES[0], 4.0), (SIZES[-1], 4.0 * 16**-0.35)):  # plain tokens / scratch tokens
        a = next(a for a in c.advantages if a.params == n)
        assert a.ratio.low / 1.2 <= truth <= a.ratio.high * 1.2, a
    assert "shrinks" in v.text and "P(" in v.text


def test_constant_advantage_is_not_called_shrinking(constant):
    (c,) = compare(constant, target_params=1e8)
    assert c.baseline == "fast"
    (v,) = c.verdicts
    assert v.trend != "shrinks" and v.trend != "grows", v.text
    for a in c.advantages:  # 3x at every size, inside the interval
        assert a.ratio.low <= 3.0 <= a.ratio.high, a
    assert v.distinguishable_at_target and v.p_ranking_holds > 0.9


def test_speeds_track_the_true_grok_points(constant):
    (c,) = compare(constant)
    truth = {"fast": GrokTruth(d_half=3e7, gamma=0.7), "slow": GrokTruth(d_half=9e7, gamma=0.7)}
    for s in c.speeds:
        expected = float(truth[s.group].grok_tokens(s.params))
        assert s.tokens.low * 0.8 <= expected <= s.tokens.high * 1.25, s
        assert s.amount.median == pytest.approx(s.tokens.median)  # measured in tokens by default
    (flops,) = compare(constant, measure="flops")
    for s in flops.speeds:
        assert s.amount.median == pytest.approx(6 * s.params * s.tokens.median)


def test_a_recipe_that_never_groks_is_reported():
    runs = _ladder({"good": GrokTruth(d_half=3e7, gamma=0.7), "never": GrokTruth(d_half=1e15, gamma=0.7)}, seed=2)
    (c,) = compare(fit(runs, options=OPTIONS))
    reported = {v.group: v for v in c.verdicts}
    if "never" in c.not_predictable:  # flat at chance: the fitter says so itself
        assert "flat at chance" in c.not_predictable["never"], c.not_predictable["never"]
    else:
        assert reported["never"].trend == "never groks" and "never groks" in reported["never"].text


def test_two_recipes_that_never_grok_read_neither_groks():
    """Neither recipe crosses: no "1× sooner", no trend, no P; the words say neither groks."""
    runs = _ladder({"a": GrokTruth(d_half=1e15, gamma=0.7), "b": GrokTruth(d_half=3e15, gamma=0.7)}, seed=3)
    (c,) = compare(fit(runs, options=OPTIONS))
    for v in c.verdicts:
        assert "sooner" not in v.text and "P(" not in v.text, v.text
        assert "neither" in v.text or "never groks" in v.text, v.text
    assert set(c.not_predictable) | {v.group for v in c.verdicts} | {c.baseline} >= {"a", "b"}


def test_ratio_bounds_beyond_a_sane_range_are_undetermined():
    from forecast.forecasting.compare import _bounds

    assert _bounds(0.8, 2.4) == "[0.8–2.4]"
    assert "undetermined" in _bounds(0.00185, 1.89e3) and "undetermined" in _bounds(0.5, float("inf"))


def test_cli_compare_json_and_plot(shrinking, tmp_path):
    runs = _ladder(SHRINKING)
    write_runs(runs, tmp_path / "runs")
    png = tmp_path / "compare.png"
    result = invoke("compare", tmp_path / "runs", "--by", "recipe", "--target-params", "1B",
                    "--draws", "40", "--laws", "grok_scaling", "--json", "--plot", png)
    (row,) = output(result, "compare")["comparisons"]
    assert set(row) >= {"skill", "baseline", "speeds", "advantages", "verdicts", "not_predictable"}
    assert row["verdicts"][0]["trend"] == "shrinks"
    assert png.exists() and png.stat().st_size > 10_000
    table = invoke("compare", tmp_path / "runs", "--target-params", "1B", "--draws", "40", "--laws", "grok_scaling")
    assert table.exit_code == 0 and "shrinks" in table.stdout


@pytest.mark.parametrize("args,needle", [
    (["--by", "seed"], "--by seed: unknown key"),
    (["--skill", "gsm8k"], "--skill gsm8k: unknown skill"),
    (["--baseline", "nope"], "--baseline nope: no such recipe"),
])
def test_cli_bad_input(tmp_path, args, needle):
    runs = _ladder({"a": GrokTruth(d_half=3e7), "b": GrokTruth(d_half=9e7)}, seed=3)
    write_runs(runs, tmp_path / "runs")
    result = invoke("compare", tmp_path / "runs", "--draws", "20", "--laws", "grok_scaling", *args)
    assert result.exit_code == 2 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.output


def test_one_recipe_only_is_an_error(tmp_path):
    write_runs(_ladder({"only": GrokTruth()}), tmp_path / "runs")
    result = invoke("compare", tmp_path / "runs", "--draws", "20", "--laws", "grok_scaling")
    assert result.exit_code == 2 and "at least two recipes" in result.stderr


@pytest.mark.slow
def test_trained_pilots_show_the_mix_studys_shrinking_lead():
    """The scale caveat on trained runs (tests/fixtures/pilot-mix-sub, from the mix_cpu
    preset): three quarters subtraction (`add25`) groks `sub` sooner than a quarter
    (`add75`) at every pilot size, by 13× at 6.22K and 1.7× at 55.5K, and `compare` calls
    that lead shrinking with size."""
    from pathlib import Path

    from forecast import load_runs

    runs = load_runs(Path(__file__).parent / "fixtures" / "pilot-mix-sub")
    assert len(runs) == 16 and {r.recipe.label for r in runs} == {"add25", "add75"}
    (c,) = compare(fit(runs, skills=["sub"]), target_params=555e3)
    assert c.baseline == "add25"
    (v,) = c.verdicts
    assert v.trend == "shrinks" and v.p_shrinks >= 0.9, v.text
    ratios = sorted((a.params, a.ratio.median) for a in c.advantages if a.params <= 55.6e3)
    assert len(ratios) == 4 and ratios[0][1] > 5 and 1.1 < ratios[-1][1] < 3, ratios  # 13x → 1.7x
    assert all(r1 > r2 for (_, r1), (_, r2) in zip(ratios, ratios[1:])), ratios
