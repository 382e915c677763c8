"""`forecast design`: ladders within a budget, planted laws, simulated refits scored against the
truth, next-run ranking, and what a design writes (an (N, D) table, a pilot config that loads)."""

import csv
import math
import sys

import numpy as np
import pytest
from helpers import REPO, assert_one_line_error, invoke, output, shared_data

from forecast import FitOptions, fit, write_runs
from forecast.design.search import SkillOutcome, Simulation, design, evaluate
from forecast.design.next_run import CandidateRun, rank_next_runs, read_candidates
from forecast.design.output import pilot_shape, table_text, toml_text, write_ladder
from forecast.design.priors import default_prior, fitted_prior, simulate_runs
from forecast.design.space import Space, budget_ladder, candidate_ladders, geometric_ladder
from forecast.errors import UsageError
from forecast.pilot import load_ladder
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

sys.path.insert(0, str(REPO / "benchmarks"))
import real_data  # noqa: E402  (the README's import settings, shared with the benchmarks)

TARGET, TOKENS, BUDGET = 70e9, 1.4e12, 1e22
ONE = Space(sizes=(3,), spacings=(2.0,), multipliers=((1.0,),), seeds=(1,))


# ---------------------------------------------------------------------------- ladders


@pytest.mark.parametrize("knobs", [dict(sizes=5, spacing=2, multipliers=(1,), seeds=1),
                                   dict(sizes=3, spacing=4, multipliers=(0.5, 1, 2), seeds=2)])
def test_a_budget_ladder_spends_exactly_its_budget(knobs):
    ladder = budget_ladder(BUDGET, TARGET, TOKENS, **knobs)
    assert ladder.flops == pytest.approx(BUDGET, rel=1e-9)
    sizes = sorted({r.params for r in ladder.rungs})
    assert len(sizes) == knobs["sizes"]
    assert np.allclose(np.diff(np.log(sizes)), math.log(knobs["spacing"]))
    assert ladder.runs == knobs["sizes"] * len(knobs["multipliers"]) * knobs["seeds"]
    ratios = sorted({round(r.tokens / r.params, 6) for r in ladder.rungs})
    assert ratios == sorted(round(20 * m, 6) for m in knobs["multipliers"])  # the target's 20 tokens/param


def test_the_geometric_default_is_five_sizes_doubling_at_the_targets_ratio():
    g = geometric_ladder(BUDGET, TARGET, TOKENS)
    assert (g.sizes, g.spacing, g.multipliers, g.seeds) == (5, 2.0, (1.0,), 1)
    # 6·20·N²·(1 + 1/4 + ... + 1/256) = 1e22 → N_max ≈ 7.9B
    assert g.largest == pytest.approx(math.sqrt(1e22 / (120 * sum(4.0 ** -i for i in range(5)))))


def test_candidates_cross_the_knobs_and_say_why_some_are_left_out():
    kept, dropped = candidate_ladders(BUDGET, TARGET, TOKENS)
    assert len(kept) == 48 and not dropped
    assert all(c.flops == pytest.approx(BUDGET) for c in kept)
    kept, dropped = candidate_ladders(1e13, 1e6, 2e7, Space(sizes=(3, 6), spacings=(4.0,), multipliers=((1.0,),),
                                                            seeds=(1,)))
    assert [k.sizes for k in kept] == [3] and "bottom rung is under 10K params" in dropped[0]
    with pytest.raises(UsageError, match="no candidate ladder fits"):
        candidate_ladders(1e10, 1e5, 2e6, Space(sizes=(6,), spacings=(4.0,), multipliers=((1.0,),), seeds=(1,)))


def test_a_budget_as_large_as_the_target_is_refused():
    with pytest.raises(UsageError, match="as much as training the target"):
        candidate_ladders(6 * TARGET * TOKENS, TARGET, TOKENS)


# ---------------------------------------------------------------------------- planted laws and runs


def test_the_default_prior_plants_grok_laws_around_the_target():
    planted = default_prior(["gsm8k", "mmlu"], 50, TARGET, TOKENS, np.random.default_rng(0))
    assert len(planted) == 100 and set(planted.chance) == {0.0, 0.25}
    grok = planted.grok["d_half"] / TOKENS  # grok point of the target, in units of its tokens
    assert grok.min() >= 1 / 300 and grok.max() <= 30
    at_target = planted.accuracy([TARGET], [TOKENS])[:, 0]
    assert np.all(at_target >= planted.chance - 1e-12) and np.all(at_target <= 1)
    tokens = np.geomspace(1e9, 1e13, 5)
    loss = planted.loss(np.full(5, 1e9), tokens)
    assert np.all(np.diff(loss, axis=1) < 0)  # the task loss falls with training
    again = default_prior(["gsm8k", "mmlu"], 50, TARGET, TOKENS, np.random.default_rng(0))
    assert np.array_equal(again.accuracy([TARGET], [TOKENS]), planted.accuracy([TARGET], [TOKENS]))


def test_simulated_runs_follow_the_planted_law():
    ladder = budget_ladder(1e14, 1e6, 2e7, sizes=3, spacing=2, multipliers=(1.0,), seeds=2)
    planted = default_prior(["add"], 2, 1e6, 2e7, np.random.default_rng(1))
    runs = simulate_runs(ladder, planted, np.random.default_rng(2), n_eval=100_000, scatter=0.0)
    assert len(runs) == 6 and all(set(r.skills) == set(planted.names) for r in runs)
    run = runs[-1]
    s = run.series[planted.names[0]]
    truth = planted.accuracy(np.full(len(s.tokens), run.params), s.tokens)[0]
    assert np.max(np.abs(s.accuracy - truth)) < 0.01  # binomial over 1e5 items
    assert s.tokens[-1] == pytest.approx(20 * run.params) and np.all(np.isfinite(s.loss))


def test_fitted_prior_samples_the_fits_forecast_surface():
    runs = synthetic_ladder(GrokTruth(d_half=3e7, gamma=0.7), [1e6, 2e6, 4e6, 8e6], tokens_range=(1e6, 1e9),
                            checkpoints=12, rng=np.random.default_rng(0))
    fits = fit(runs, options=FitOptions(draws=20))
    planted = fitted_prior(fits.skills, 40, seed=0)
    acc = planted.accuracy([8e6], [1e9])[:, 0]
    # the largest pilot's end, which the fit saw: samples agree with what was measured there
    assert abs(np.median(acc) - runs[-1].series["skill"].accuracy[-1]) < 0.05


# ---------------------------------------------------------------------------- scoring


def test_interval_score_is_width_plus_ten_times_the_miss():
    inside = SkillOutcome("s", "in-transition", 0.5, 0.4, 0.6, truth=0.5, observed=0.55, confidence="low", level=0.8,
                     low50=0.45, high50=0.55)
    assert inside.interval_score == pytest.approx(0.2) and inside.covered and inside.error == 0
    above = SkillOutcome("s", "flat", 0.25, 0.2, 0.3, truth=0.5, observed=0.45, confidence="low", level=0.8,
                    low50=0.23, high50=0.27)
    assert above.interval_score == pytest.approx(0.1 + 10 * 0.15) and not above.covered
    # weighted interval score (Bracher et al. 2021): (|y − m|/2 + 0.1·IS_80 + 0.25·IS_50) / 2.5
    is50 = 0.04 + 4 * 0.18
    assert above.score == pytest.approx((0.5 * 0.2 + 0.1 * 1.6 + 0.25 * is50) / 2.5)
    assert inside.score == pytest.approx((0.5 * 0.05 + 0.1 * 0.2 + 0.25 * 0.1) / 2.5)
    assert above.to_json()["score"] == pytest.approx(above.score)


def test_evaluate_refits_a_simulated_ladder_and_scores_every_planted_skill():
    sim = Simulation(1e6, 2e7, seed=0)
    planted = default_prior(["add", "mmlu"], 2, 1e6, 2e7, np.random.default_rng(0))
    ladder = budget_ladder(1e13, 1e6, 2e7, sizes=4, spacing=2, multipliers=(1.0,), seeds=1)
    result = evaluate(ladder, planted, sim)
    assert len(result.outcomes) == 4
    assert all(0 <= o.low <= o.high <= 1 and o.width >= 0 for o in result.outcomes)
    assert [s.skill for s in result.skills()] == ["add", "mmlu"]
    assert evaluate(ladder, planted, sim).score == result.score  # deterministic


@pytest.mark.slow
def test_design_chooses_the_lowest_score_and_reports_the_geometric_default():
    space = Space(sizes=(3, 5), spacings=(2.0,), multipliers=((1.0,),), seeds=(1,))
    d = design(1e6, 1e13, skills=["add"], space=space, per_skill=2, refine=2, refine_draws=1)
    assert len(d.ranked) == 2 and d.chosen.score <= d.ranked[1].score
    assert len(d.chosen.outcomes) == len(d.ranked[1].outcomes) == 3  # both refined: one more planted law each
    assert d.geometric.ladder == geometric_ladder(1e13, 1e6, 2e7)
    data = d.to_json()
    assert data["chosen"]["ladder"]["flops"] == pytest.approx(1e13) and data["prior"] == "default"
    assert [a["tried"] for a in data["alternatives"]] == (["more, smaller sizes"] if d.chosen.ladder.sizes == 3
                                                          else ["fewer, larger sizes"])


# ---------------------------------------------------------------------------- output


def test_the_table_lists_one_row_per_run():
    ladder = budget_ladder(1e20, 1e9, 2e10, sizes=3, spacing=2, multipliers=(1.0, 4.0), seeds=2)
    rows = list(csv.DictReader(table_text(ladder).splitlines()))
    assert len(rows) == 12 and rows[0].keys() == {"run", "params", "tokens", "tokens_per_param", "seed", "flops"}
    assert sum(float(r["flops"]) for r in rows) == pytest.approx(1e20, rel=1e-4)


@pytest.mark.parametrize("params", [2e4, 1.5e5, 1e6, 3e6])
def test_pilot_shapes_come_close_to_the_asked_size(params):
    shape = pilot_shape(params)
    assert abs(math.log(shape.params / params)) < 0.15 and shape.width % shape.heads == 0


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_the_pilot_config_loads_and_trains_each_rung_for_its_tokens(tmp_path, suffix):
    ladder = budget_ladder(1e13, 1e6, 2e7, sizes=3, spacing=2, multipliers=(1.0, 2.0), seeds=2)
    path = tmp_path / f"ladder{suffix}"
    assert "pilot config" in write_ladder(ladder, path)
    pilot = load_ladder(path)
    specs = pilot.run_specs()
    assert len(specs) == 12 and pilot.seeds == (0, 1)
    assert len(pilot.sizes) == 6  # every rung its own size entry, trained to its own budget (per-size steps)
    steps = sorted({s.train.steps for s in specs})
    assert steps[-1] / steps[0] == pytest.approx(8, rel=0.05)  # 4× the params at 2× the tokens per param


def test_toml_text_reads_back_as_the_same_config():
    import tomllib
    config = {"name": "x", "seeds": [0], "skills": {"add": {"kind": "add", "digits": 2, "pad": True}},
              "recipes": [{"label": "r", "formats": {"add": "reverse"}, "mix": {"add": 1.0},
                           "curriculum": [{"steps": 5, "mix": {"add": 1.0}}]}]}
    assert tomllib.loads(toml_text(config)) == config


def test_a_size_may_set_its_own_steps(tmp_path):
    path = tmp_path / "l.toml"
    path.write_text('name = "x"\n[skills]\nadd = { digits = 2 }\n[sizes]\ns = { layers = 1, width = 16, heads = 2 }\n'
                    'm = { layers = 1, width = 32, heads = 2, steps = 70 }\n[train]\nsteps = 30\n'
                    '[[recipes]]\nlabel = "r"\nmix = { add = 1 }\n')
    assert [s.train.steps for s in load_ladder(path).run_specs()] == [30, 70]
    path.write_text(path.read_text().replace("steps = 70", "steps = 0"))
    result = invoke("pilot", "--config", path, "--show-config")
    assert_one_line_error(result, "sizes.m.steps", "positive whole number")


# ---------------------------------------------------------------------------- the command


GEOMETRIC_ONLY = ("--sizes", "5", "--spacing", "2", "--multipliers", "1", "--seeds", "1", "--refine", "0")
"""A search of one candidate, the geometric default itself: one simulated refit."""


def test_design_command_prints_json_and_writes_the_table(tmp_path):
    out = tmp_path / "ladder.csv"
    data = output(invoke("design", "--target-params", "1M", "--budget", "1e13", *GEOMETRIC_ONLY,
                         "--draws-per-skill", "1", "--skills", "add", "--out", out, "--json"), "design")
    assert data["chosen"]["ladder"]["sizes"] == 5 and data["written"] == str(out)
    assert data["chosen"]["skills"][0]["skill"] == "add" and data["geometric"]["ladder"] == data["chosen"]["ladder"]
    assert len(list(csv.DictReader(out.open()))) == 5


def test_design_plants_laws_from_fits(tmp_path):
    runs = synthetic_ladder(GrokTruth(d_half=3e7, gamma=0.7), [1e5, 2e5, 4e5, 8e5], tokens_range=(1e5, 3e7),
                            checkpoints=10, rng=np.random.default_rng(0), skill="add")
    fit(runs, options=FitOptions(draws=20)).save(tmp_path / "fits")
    result = invoke("design", "--fits", tmp_path / "fits", "--target-params", "3M", "--budget", "1e13",
                    *GEOMETRIC_ONLY, "--draws-per-skill", "2", "--no-task-loss")
    assert result.exit_code == 0, result.stderr
    assert "fits prior" in result.stdout and "add" in result.stdout
    assert_one_line_error(invoke("design", "--fits", tmp_path / "fits", "--skills", "gsm8k", "--target-params", "3M",
                                 "--budget", "1e13"), "gsm8k")


@pytest.mark.parametrize("args, fragments", [
    (["--budget", "1e22"], ["--target-params is required"]),
    (["--target-params", "70B"], ["--budget is required"]),
    (["--target-params", "70B", "--budget", "1e26"], ["as much as training the target"]),
    (["--target-params", "70B", "--budget", "1e22", "--out", "x.txt"], ["--out", ".csv"]),
    (["--target-params", "70B", "--runs", "."], ["both --runs RUNS and --candidates"]),
    (["--target-params", "70B", "--budget", "1e22", "--spacing", "a"], ["--spacing", "comma-separated"]),
])
def test_design_command_errors_are_one_line(args, fragments):
    assert_one_line_error(invoke("design", *args), *fragments)


# ---------------------------------------------------------------------------- next runs


def test_candidates_read_from_a_table_and_from_runs(tmp_path):
    table = tmp_path / "c.csv"
    table.write_text("name,params,tokens\nbig,16M,1e9\nlong,8M,4e9\n")
    cands = read_candidates(table)
    assert [c.name for c in cands] == ["big", "long"] and cands[0].flops == pytest.approx(6 * 16e6 * 1e9)
    runs = synthetic_ladder(GrokTruth(), [1e6, 2e6], tokens_range=(1e6, 1e8), checkpoints=5)
    write_runs(runs, tmp_path / "runs")
    from_runs = read_candidates(tmp_path / "runs")
    assert sorted(c.params for c in from_runs) == [1e6, 2e6] and len(from_runs[0].tokens) == 5
    table.write_text("name,params,tokens\nbig,lots,1e9\n")
    with pytest.raises(Exception, match="c.csv:2"):
        read_candidates(table)


@pytest.mark.slow
def test_a_larger_next_run_is_expected_to_narrow_the_forecast_more():
    runs = synthetic_ladder(GrokTruth(d_half=3e8, gamma=0.7), [1e6, 2e6, 4e6, 8e6], tokens_range=(1e6, 1e9),
                            checkpoints=12, rng=np.random.default_rng(0), with_loss=True)
    cands = [CandidateRun.of("bigger", 32e6, 1e9), CandidateRun.of("same", 8e6, 1e9)]
    result = rank_next_runs(runs, cands, 1e9, target_tokens=1e10, simulations=6)
    by = {r.candidate.name: r for r in result.ranked}
    assert by["bigger"].width < by["same"].width <= result.base + 0.02
    assert result.to_json()["candidates"][0]["name"] == result.ranked[0].candidate.name


@pytest.mark.slow
def test_olmo_next_run_ranking_through_the_command(tmp_path):
    """Fit OLMo ≤ 760M, rank two of the shared 1B/3B runs as the next run (one skill, one
    simulation each: the command's plumbing on real files; the study is benchmarks/design_study.py)."""
    shared_data("olmo-ladder")
    runs = real_data.olmo()
    write_runs([r for r in runs if r.params < 1e9], tmp_path / "runs")
    write_runs([r for r in runs if r.name in ("1B-1xC", "3B-1xC")], tmp_path / "candidates")
    data = output(invoke("design", "--runs", tmp_path / "runs", "--candidates", tmp_path / "candidates",
                         "--target-params", "7B", "--skill", "hellaswag", "--simulations", "1", "--json"),
                  "design-next")
    assert {c["name"] for c in data["candidates"]} == {"1B-1xC", "3B-1xC"} and data["width"] > 0
    assert data["candidates"][0]["narrowing_per_exaflop"] >= data["candidates"][1]["narrowing_per_exaflop"]
