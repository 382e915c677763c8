"""Recipe decisions on final-checkpoint ladders: the shared-shape joint fit recovers planted
slopes and offsets, decides the planted ranking where each recipe alone holds two sizes, and
the backtest by recipe scores its calls against ranking by the largest remaining pilot."""

import math

import numpy as np
import pytest

from forecast.backtesting.recipes import backtest_recipes
from forecast.errors import UsageError
from forecast.fitting.pooling import fit_shared_shape
from forecast.forecasting.recipe_decision import compare_ladder
from forecast.forecasting.recipe_ladder import ladder_points
from forecast.runs.model import Recipe, Run, make_series

CHANCE, SLOPE, REF = 0.25, 0.8, 1e8
"""Planted: accuracy = chance + (1 − chance)·σ(a_r + SLOPE·ln(N/REF)) at 20 tokens per parameter."""


def planted_acc(offset: float, params: float, slope: float = SLOPE) -> float:
    return CHANCE + (1 - CHANCE) / (1 + math.exp(-(offset + slope * math.log(params / REF))))


def final_run(label: str, params: float, accuracy: float, items: float, tokens_per_param: float = 20.0,
              skill: str = "task", by: str = "recipe") -> Run:
    tokens = tokens_per_param * params
    s = make_series(skill, [1000], [tokens], accuracy=[accuracy], n=[items], params=params, chance=CHANCE)
    family, recipe = ("ladder", label) if by == "recipe" else (label, "default")
    return Run(name=f"{label}-{params:.3g}-{tokens_per_param:g}", params=params, family=family,
               recipe=Recipe(label=recipe), series={skill: s})


# recipe -> (offset, its two sizes): the best offset trained only the smallest sizes, so at
# its own largest pilot it measures lower than the others do at theirs
PLANTED = {"best": (0.4, (1e7, 2e7)), "middle": (0.0, (2e7, 5e7)), "worst": (-0.5, (5e7, 1e8))}


def planted_runs(noise_rng: np.random.Generator | None = None, items: float = 1e7) -> list[Run]:
    runs = []
    for label, (offset, sizes) in PLANTED.items():
        for n in sizes:
            acc = planted_acc(offset, n)
            if noise_rng is not None:
                acc = float(np.clip(acc + noise_rng.normal(0, math.sqrt(acc * (1 - acc) / items)), 0, 1))
            runs.append(final_run(label, n, acc, items))
    return runs


def test_shared_shape_recovers_planted_slope_and_offsets_noise_free():
    runs = planted_runs()
    points = ladder_points({lab: [r for r in runs if r.recipe.label == lab] for lab in PLANTED}, "task")
    p = (points.accuracy - CHANCE) / (1 - CHANCE)
    y = np.log(p / (1 - p))
    shape = fit_shared_shape(points.groups, points.group, np.log(points.params), np.log(points.tokens), y,
                             np.ones(len(y)), known_noise=False)
    assert shape.slopes == ("params",)  # 20 tokens per parameter everywhere: tokens are not separable
    assert shape.slope("params") == pytest.approx(SLOPE, abs=1e-9)
    for label, (offset, _) in PLANTED.items():
        at_ref = shape.predict(np.array([points.groups.index(label)]), np.array([math.log(REF)]),
                               np.array([math.log(20 * REF)]))[0]
        assert at_ref == pytest.approx(offset, abs=1e-9)


def test_two_size_recipes_get_the_shared_trend_and_their_offsets_decide():
    runs = planted_runs(np.random.default_rng(0))
    c = compare_ladder(runs, target_params=1e9)
    (s,) = c.skills
    assert s.metric == "accuracy" and s.slopes["params"] == pytest.approx(SLOPE, rel=0.05)
    ranking = sorted(c.groups, key=lambda g: -next(f.accuracy.median for f in s.forecasts if f.group == g))
    assert ranking == ["best", "middle", "worst"]
    for f in s.forecasts:  # the planted accuracy at the target inside the interval
        truth = planted_acc(PLANTED[f.group][0], 1e9)
        assert f.accuracy.low <= truth <= f.accuracy.high and abs(f.accuracy.median - truth) < 0.01
    for pair in s.pairs:
        assert pair.decided and pair.p_win > 0.95
        assert PLANTED[pair.winner][0] > PLANTED[pair.loser][0]
    # at 5e7, the largest size "middle" and "worst" share, "middle" measures higher: the order holds
    mw = next(p for p in s.pairs if {p.winner, p.loser} == {"middle", "worst"})
    assert mw.pilot_params == 5e7 and mw.pilot_leader == "middle" and mw.flip_expected is False
    assert c.recommendation.startswith("train best") and c.p_best["best"] > 0.95


def test_compute_to_threshold_matches_the_planted_law():
    runs = planted_runs(np.random.default_rng(1))
    c = compare_ladder(runs, target_params=1e9, threshold=0.7)
    (s,) = c.skills
    for f in s.forecasts:
        offset = PLANTED[f.group][0]
        q = (0.7 - CHANCE) / (1 - CHANCE)
        n = REF * math.exp((math.log(q / (1 - q)) - offset) / SLOPE)
        assert f.threshold_params.low <= n <= f.threshold_params.high
        assert f.threshold_flops.median == pytest.approx(6 * 20 * f.threshold_params.median**2)


def test_overlapping_recipes_get_no_decision_with_the_reason():
    runs = []
    for label in ("a", "b"):
        runs += [final_run(label, n, planted_acc(0.0, n), 300) for n in (1e7, 3e7, 1e8)]
    c = compare_ladder(runs, target_params=1e9)
    (pair,) = c.skills[0].pairs
    assert not pair.decided and pair.p_win < 0.8 and "no decision" in pair.text and "overlap" in pair.text


def test_ladder_without_two_sizes_is_not_predictable_and_says_why():
    runs = [final_run(lab, 1e8, 0.4, 1000) for lab in ("a", "b")]
    c = compare_ladder(runs, target_params=1e9)
    assert not c.skills and "two sizes" in c.not_predictable["task"]


def test_missing_target_is_a_usage_error_naming_the_parameter():
    with pytest.raises(UsageError) as err:
        compare_ladder(planted_runs(), target_params=None)
    assert err.value.parameter == "target_params"


def budget_ladder(seed: int, offsets: dict[str, float], slopes: dict[str, float] | None = None,
                  items: float = 2000) -> list[Run]:
    """Three sizes × three budgets per recipe, planted offsets (and slopes), binomial noise."""
    rng = np.random.default_rng(seed)
    runs = []
    for label, offset in offsets.items():
        slope = (slopes or {}).get(label, SLOPE)
        for n in (1e7, 3e7, 1e8, 3e8):
            for r in (10.0, 20.0, 80.0):
                truth = planted_acc(offset + 0.2 * math.log(r / 20), n, slope)
                acc = float(np.clip(truth + rng.normal(0, math.sqrt(truth * (1 - truth) / items)), 0, 1))
                runs.append(final_run(label, n, acc, items, tokens_per_param=r))
    return runs


def test_backtest_by_recipe_scores_calls_against_the_largest_pilot():
    runs = budget_ladder(3, {"x": 0.05, "y": 0.0, "z": -0.3})
    bt = backtest_recipes(runs)
    assert bt.held_params == 3e8 and bt.pilot_params == 1e8
    assert len(bt.decisions) == 3 * 3  # 3 pairs × 3 budgets, one skill
    for d in bt.decisions:
        assert d.actual_a == (d.actual_gap > 0)
        if "z" in (d.a, d.b):  # 0.3 logit behind: every call against it right, and confident
            assert d.correct and max(d.p_a, 1 - d.p_a) > 0.9, d
    assert bt.decision_accuracy >= bt.baseline_decision_accuracy
    assert bt.brier < bt.baseline_brier
    j = bt.to_json()
    assert 0 <= j["decision_accuracy"] <= 1 and 0 <= j["baseline_decision_accuracy"] <= 1
    assert sum(b["count"] for b in j["reliability"]) == len(bt.decisions)
    f = j["flips"]
    assert f["called_right"] <= f["called"] and f["foreseen"] <= f["actual"]


def test_backtest_needs_a_size_to_hold_out():
    runs = [final_run(lab, n, 0.4, 1000) for lab, n in (("a", 1e7), ("b", 2e7))]
    with pytest.raises(UsageError):
        backtest_recipes(runs)


# ------------------------------------------------------------------ JSON shapes and the CLI

import typing  # noqa: E402

from helpers import assert_one_line_error, invoke, output, shared_data  # noqa: E402

from forecast import write_runs  # noqa: E402
from forecast.schema.recipes import LadderComparisonJson, RecipeBacktestJson  # noqa: E402


def assert_shape(value, shape, where="$"):
    """`value` has exactly the keys of the TypedDict `shape`, recursively into nested
    TypedDicts (also inside lists and optionals)."""
    if typing.is_typeddict(shape):
        assert isinstance(value, dict), where
        hints = typing.get_type_hints(shape)
        assert set(value) == set(hints), (where, set(value) ^ set(hints))
        for key, hint in hints.items():
            assert_shape(value[key], hint, f"{where}.{key}")
        return
    args = [a for a in typing.get_args(shape) if a is not type(None)]
    if value is None or not args:
        return
    if typing.get_origin(shape) is list:
        for k, item in enumerate(value):
            assert_shape(item, args[0], f"{where}[{k}]")
    elif len(args) == 1 and typing.get_origin(shape) is not dict:  # X | None
        assert_shape(value, args[0], where)


def test_compare_json_on_a_ladder_matches_its_shape(tmp_path):
    write_runs(planted_runs(np.random.default_rng(2)), tmp_path / "runs")
    data = output(invoke("compare", tmp_path / "runs", "--by", "recipe", "--target-params", "1B", "--json"),
                  "compare-ladder")
    body = {k: v for k, v in data.items() if k not in ("format", "kind")}
    assert_shape(body, LadderComparisonJson)
    assert data["recommendation"].startswith("train best")
    assert all(p["decided"] for p in data["skills"][0]["pairs"])


def test_compare_ladder_table_names_the_metric_and_the_decisions(tmp_path):
    write_runs(planted_runs(np.random.default_rng(2)), tmp_path / "runs")
    result = invoke("compare", tmp_path / "runs", "--target-params", "1B")
    assert result.exit_code == 0, result.stderr
    assert "decided by accuracy" in result.stdout and "best ahead of middle" in result.stdout
    assert "train best" in result.stdout


def test_compare_ladder_without_target_is_one_line_error(tmp_path):
    write_runs(planted_runs(), tmp_path / "runs")
    assert_one_line_error(invoke("compare", tmp_path / "runs", "--judge", "target"), "--target-params")


def test_backtest_by_recipe_json_and_plot(tmp_path):
    write_runs(budget_ladder(4, {"x": 0.1, "y": 0.0}), tmp_path / "runs")
    data = output(invoke("backtest", tmp_path / "runs", "--by", "recipe", "--plot", tmp_path / "bt.png", "--json"),
                  "backtest-recipes")
    assert_shape({k: v for k, v in data.items() if k not in ("format", "kind")}, RecipeBacktestJson)
    assert data["decisions_count"] == 3 and (tmp_path / "bt.png").stat().st_size > 10_000


def test_backtest_by_unknown_key_is_one_line_error(tmp_path):
    write_runs(planted_runs(), tmp_path / "runs")
    assert_one_line_error(invoke("backtest", tmp_path / "runs", "--by", "colour"), "--by")


def test_backtest_averages_the_seeds_of_one_budget():
    rng = np.random.default_rng(5)
    runs = []
    for label, offset in (("x", 0.1), ("y", 0.0)):
        for n in (1e7, 3e7, 1e8):
            for seed in (0, 1):
                acc = planted_acc(offset, n) + rng.normal(0, 0.01)
                run = final_run(label, n, acc, 2000)
                runs.append(Run(name=f"{run.name}-s{seed}", params=n, family=run.family, recipe=run.recipe,
                                series=run.series, seed=seed))
    bt = backtest_recipes(runs)
    (d,) = bt.decisions  # one pair, one budget: the two seeds are one decision
    held = {lab: np.mean([r.series["task"].accuracy[-1] for r in runs if r.recipe.label == lab and r.params == 1e8])
            for lab in ("x", "y")}
    assert d.actual_gap == pytest.approx(held["x"] - held["y"])


def test_crossing_trends_are_foreseen_with_per_recipe_slopes():
    """`early` leads at the pilots but grows more slowly (slope 0.5 against 1.0): the planted
    trends cross at 1e8 params; at 1e9 `late` is ahead by 1.15 logits. One shared slope
    cannot see it; per-recipe slopes (a loose prior) do, and call the flip."""
    rng = np.random.default_rng(7)
    runs = []
    for label, offset, slope in (("early", 0.0, 0.5), ("late", 0.0, 1.0)):
        for n in (3e6, 1e7, 3e7, 1e8):
            truth = planted_acc(offset, n, slope)
            runs.append(final_run(label, n, truth + rng.normal(0, math.sqrt(truth * (1 - truth) / 1e5)), 1e5))
    runs = [r for r in runs if r.params < 1e8]  # pilots: early ahead at every size
    shared = compare_ladder(runs, target_params=1e9)
    assert shared.skills[0].pairs[0].flip_expected is False
    crossing = compare_ladder(runs, target_params=1e9, slope_spread=1.0)
    (s,) = crossing.skills
    (pair,) = s.pairs
    assert pair.winner == "late" and pair.decided and pair.pilot_leader == "early" and pair.flip_expected
    assert s.slopes["params"] + s.slopes["params@late"] == pytest.approx(1.0, abs=0.1)
    assert s.slopes["params"] + s.slopes["params@early"] == pytest.approx(0.5, abs=0.1)


# ------------------------------------------------------------------ real ladders (the acceptance)


def _import(path, **kwargs):
    import warnings

    from forecast.importers import import_long
    from forecast.importers.long_rows import LongColumns

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_long(path, **kwargs) if "columns" in kwargs else import_long(
            path, columns=LongColumns(n="n_examples"), params_kind="total", **kwargs)


@pytest.mark.slow  # ~4 s unloaded (import of 5,000 rows and 46 joint fits), 10 s on a busy machine
def test_open_lm_411m_from_154m_beats_ranking_by_the_154m_pilots():
    """open_lm (C4, RedPajama, RefinedWeb × 4 sizes × budgets): hold out 411.6M, decide from
    ≤ 153.7M. Measured (docs/compare.md): 942 decisions, 60.6% right against 56.2%, Brier
    0.226 against 0.397."""
    runs = _import(shared_data("open-lm", "openlm_small.csv"))
    bt = backtest_recipes(runs, by="family")
    assert bt.held_params == 411616256 and bt.pilot_params == 153677376
    assert len(bt.decisions) > 900
    assert bt.decision_accuracy > bt.baseline_decision_accuracy + 0.02
    assert bt.brier < bt.baseline_brier - 0.1
    count, share = bt.confident()
    assert count > 50 and share > 0.8  # the confident calls are mostly right


def test_pythia_vs_deduped_at_2_8b_is_reported_and_undecided():
    """Pythia vs Pythia-deduped, 2.8B held out: the 10 tasks' gaps are within a point, and no
    call is confident; the Brier score still beats the baseline's 0/1 calls."""
    from forecast.importers.long_rows import LongColumns

    runs = _import(shared_data("pythia", "pythia_evals.csv"), columns=LongColumns(params="nonembedding_params"),
                   shots=0, params_kind="non-embedding")
    bt = backtest_recipes(runs, by="family")
    assert bt.held_params == 2517652480 and bt.pilot_params == 1208602624
    assert len(bt.decisions) == 8 and bt.ties == 2
    assert bt.brier < bt.baseline_brier
    assert bt.confident()[0] == 0


def test_ladder_only_flags_on_trajectories_are_one_line_errors(tmp_path):
    from forecast.runs.synthetic import GrokTruth, synthetic_ladder

    rng = np.random.default_rng(0)
    runs = []
    for label in ("a", "b"):
        runs += synthetic_ladder(GrokTruth(d_half=3e7, gamma=0.7), [1e6, 4e6], tokens_range=(1e6, 1e9),
                                 checkpoints=8, recipe=label, rng=rng)
    write_runs(runs, tmp_path / "runs")
    assert_one_line_error(invoke("compare", tmp_path / "runs", "--target-params", "1B", "--target-tokens", "20B"),
                          "--target-tokens", "--judge target")


def test_a_skill_one_recipe_lacks_is_decided_among_the_others():
    runs = planted_runs(np.random.default_rng(3))
    extra = [final_run(lab, n, planted_acc(off, n), 1e7, skill="other")
             for lab, (off, sizes) in PLANTED.items() if lab != "worst" for n in sizes]
    merged = []
    for r in runs:
        twin = next((e for e in extra if e.name == r.name), None)
        merged.append(r if twin is None else Run(name=r.name, params=r.params, family=r.family, recipe=r.recipe,
                                                 series={**r.series, **twin.series}))
    c = compare_ladder(merged, target_params=1e9)
    other = next(s for s in c.skills if s.skill == "other")
    assert [f.group for f in other.forecasts] == ["best", "middle"] and other.pairs[0].winner == "best"
    assert "left out of the mean: other" in c.recommendation and c.recommendation.startswith("train best")


def test_speed_only_flags_on_a_ladder_are_one_line_errors(tmp_path):
    write_runs(planted_runs(), tmp_path / "runs")
    assert_one_line_error(invoke("compare", tmp_path / "runs", "--target-params", "1B", "--baseline", "best"),
                          "--baseline")


def test_backtest_by_recipe_refuses_other_holdouts(tmp_path):
    write_runs(budget_ladder(4, {"x": 0.1, "y": 0.0}), tmp_path / "runs")
    assert_one_line_error(invoke("backtest", tmp_path / "runs", "--by", "recipe", "--holdout", "largest:2"),
                          "--holdout")


def test_backtest_pairs_recipes_of_equal_steps_when_their_tokens_differ():
    """A scratchpad-like recipe writes 4× the tokens per example: trained for the same steps
    and batch, it is compared with the other at equal examples (each at its own tokens); a
    recipe trained for other steps is not."""
    rng = np.random.default_rng(7)

    def run(label, n, offset, tokens_per_param, step, per_step=64):
        acc = float(np.clip(planted_acc(offset, n) + rng.normal(0, 0.005), 0, 1))
        s = make_series("task", [step], [tokens_per_param * n], accuracy=[acc], n=[2000], params=n, chance=CHANCE)
        return Run(name=f"{label}-{n:.3g}", params=n, family="ladder", recipe=Recipe(label=label),
                   series={"task": s}, extra={"examples_per_step": per_step})

    sizes = (1e7, 3e7, 1e8)
    runs = [run("short", n, 0.0, 20.0, 1000) for n in sizes] + [run("long", n, 0.4, 80.0, 1000) for n in sizes]
    (d,) = backtest_recipes(runs).decisions
    assert {d.a, d.b} == {"short", "long"} and d.correct
    other = [run("short", n, 0.0, 20.0, 1000) for n in sizes] + [run("long", n, 0.4, 80.0, 4000) for n in sizes]
    assert backtest_recipes(other).decisions == ()
