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
