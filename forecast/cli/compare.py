"""`forecast compare`: which recipe groks sooner, and whether that holds at scale (thin shell)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli.common import (
    DrawsOpt, FamilyOpt, ForceOpt, IntervalOpt, JsonOpt, PlotOpt, RecipeOpt, SkillOpt, ThresholdOpt, choice_check, console, log,
    positive_check,
    output_file, plural, print_json, print_notes, size_option,
)
from forecast.cli.forecasting import LawsOpt, fit_options, load_fittable
from forecast.options import BY_KEYS, DEFAULT_DRAWS, MEASURES
from forecast.cli.render import compare_table

JUDGES = ("auto", "speed", "target")
"""speed: speed of grokking along trajectories; target: the forecasts at the target
(final-checkpoint ladders); auto: target where every compared run holds one checkpoint."""


def compare_command(
    runs_dir: Annotated[Path, typer.Argument(help="Runs directory with several recipes (or families).")],
    by: Annotated[str, typer.Option("--by", callback=choice_check("--by", BY_KEYS, "key"),
                                    help="What differs between the compared groups: recipe or family.")] = "recipe",
    measure: Annotated[str, typer.Option("--measure", callback=choice_check("--measure", MEASURES, "measure"),
                                         help="Speed of grokking in training tokens, examples (sequences) or flops.")] = "tokens",
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    target_params: Annotated[float | None, size_option(
        "--target-params", "Extrapolate to this size in parameters: 70B, 1M.")] = None,
    target_tokens: Annotated[float | None, size_option(
        "--target-tokens", "Training tokens of the target, for ladder decisions (default 20 per parameter): 8B.")] = None,
    judge: Annotated[str, typer.Option("--judge", callback=choice_check("--judge", JUDGES, "judge"),
                                       help="speed (of grokking, along trajectories), target (the forecasts at the "
                                            "target, for final-checkpoint ladders) or auto.")] = "auto",
    slope_spread: Annotated[float | None, typer.Option(
        "--slope-spread", callback=positive_check("--slope-spread", "0.5"),
        help="Ladder decisions: let recipes with 3+ sizes deviate from the shared slope (prior width per e-fold "
             "of size, on the logit scale), so that trends may cross; default one shared shape.")] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="Recipe to compare against (default: the fastest at the largest pilot size).")] = None,
    threshold: ThresholdOpt = None,
    interval: IntervalOpt = 0.8,
    draws: DrawsOpt = DEFAULT_DRAWS,
    laws: LawsOpt = None,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Also use pilot runs whose training did not finish.")] = False,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Which recipe makes each skill grok sooner, by how much, and whether that holds at the target size."""
    import forecast

    target = target_params
    plot = output_file(plot, force=force)
    runs, notes = load_fittable(runs_dir, allow_incomplete)  # before the numerical stack is imported
    from forecast.forecasting.compare import check_compare_args, compared_groups

    check_compare_args(by, measure, interval, threshold)
    kept = runs if allow_incomplete else [r for r in runs if r.complete is not False]
    compared_groups([r.group for r in kept], by, family, recipe, baseline)  # before fitting anything
    if judge == "target" or (judge == "auto" and final_checkpoints_only(kept)):
        for flag, used in (("--baseline", baseline is not None), ("--measure", measure != "tokens")):
            if used:
                from forecast.errors import UsageError

                raise UsageError(f"{flag}: applies to speed of grokking along trajectories; a ladder of final "
                                 "checkpoints is decided by the forecasts at the target (every pair against every other)")
        ladder_compare(kept, by=by, skill=skill, family=family, recipe=recipe, target=target,
                       target_tokens=target_tokens, threshold=threshold, interval=interval, plot=plot, notes=notes,
                       json_out=json_out, slope_spread=slope_spread)
        return
    for flag, value in (("--target-tokens", target_tokens), ("--slope-spread", slope_spread)):
        if value is not None:
            from forecast.errors import UsageError

            raise UsageError(f"{flag}: applies to decisions at the target (final-checkpoint ladders); these runs hold "
                             "trajectories and are compared by speed of grokking; add --judge target to decide by the "
                             "forecasts at the target")
    if judge == "auto" and any(not r.source.startswith("forecast pilot") for r in kept):
        notes.append("compared by speed of grokking along the runs' trajectories; --judge target compares the "
                     "recipes' forecasts at --target-params from their final checkpoints instead")
    options = fit_options(draws, laws=laws, allow_incomplete=allow_incomplete)
    with log.status(f"fitting {plural(len(runs), 'run')}"):
        fits = forecast.fit(runs, family=family, recipe=recipe, options=options)
    results = fits.compare(by=by, skills=skill, family=family, recipe=recipe, target_params=target,
                           baseline=baseline, threshold=threshold, measure=measure, level=interval)
    if plot is not None:
        forecast.plots.save(forecast.plots.compare_figure(results, fits), plot)
        notes.append(f"wrote {plot}")
    print_notes(notes)
    if json_out:
        print_json("compare", comparisons=[c.to_json() for c in results])
        return
    for c in results:
        console.print(compare_table(c))


def final_checkpoints_only(runs) -> bool:
    """Every run holds one checkpoint per skill: a ladder as released (sizes × budgets)."""
    return all(len(s.step) <= 1 for r in runs for s in r.series.values() if s.is_skill)


def ladder_compare(runs, *, by, skill, family, recipe, target, target_tokens, threshold, interval, plot, notes,
                   json_out, slope_spread=None) -> None:
    """`forecast compare` on a final-checkpoint ladder: the recipes' forecasts at the target decide."""
    from forecast.errors import UsageError
    from forecast.forecasting.recipe_decision import compare_ladder

    if target is None:
        raise UsageError("--target-params: a ladder of final checkpoints is compared by its forecasts at the "
                         "target; give the target size, e.g. --target-params 1B")
    with log.status(f"fitting {plural(len(runs), 'run')} jointly per skill"):
        result = compare_ladder(runs, by=by, skills=skill, family=family, recipe=recipe, target_params=target,
                                target_tokens=target_tokens, threshold=threshold, level=interval,
                                slope_spread=slope_spread)
    if plot is not None:
        import forecast.plots
        from forecast.plots.recipes import ladder_figure

        forecast.plots.save(ladder_figure(result), plot)
        notes.append(f"wrote {plot}")
    print_notes(notes)
    if json_out:
        print_json("compare-ladder", **result.to_json())
        return
    for s in result.skills:
        console.print(ladder_table(s, result))
    for name, why in result.not_predictable.items():
        console.print(f"{name}: no decision: {why}", markup=False, highlight=False)
    console.print(result.recommendation, markup=False, highlight=False)


def ladder_table(s, c):
    """One skill's forecasts at the target, per recipe, with its pair decisions as caption lines."""
    from forecast.cli.render import caption, table
    from forecast.forecasting.recipe_decision import REACH_LIMIT
    from forecast.quantities import format_count

    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    t = table(f"{s.skill} at {format_count(c.target_params)} params, {format_count(c.target_tokens)} tokens",
              [c.by, f"accuracy % [{100 * c.level:.0f}%]", f"FLOPs to {100 * s.threshold:.0f}%", "offset"],
              right=["offset"])
    for f in s.forecasts:
        flops = (f"not within {REACH_LIMIT:g}× the size" if f.threshold_flops is None else
                 f"{f.threshold_flops.median:.3g} [{f.threshold_flops.low:.3g}–{f.threshold_flops.high:.3g}]")
        t.add_row(f.group, f"{pct(f.accuracy.median)} [{pct(f.accuracy.low)}–{pct(f.accuracy.high)}]", flops,
                  f"{s.offsets[f.group]:+.3f}")
    snr = ", ".join(f"{m} {v:.2g}" for m, v in s.snr.items())
    slopes = ", ".join(f"{k} {v:+.3g}/e-fold" for k, v in s.slopes.items() if "@" not in k)
    own = [f"{k.partition('@')[2]} {v:+.3g}" for k, v in s.slopes.items() if "@" in k]
    if own:
        slopes += f" (per-recipe deviations in params: {', '.join(own)})"
    lines = [f"decided by {s.metric} (signal-to-noise: {snr}); shared slopes: {slopes}; "
             f"{s.points} final checkpoints fitted jointly across {', '.join(c.groups)}"]
    return caption(t, lines + [p.text for p in s.pairs])


def backtest_by(runs_dir: Path, by: str, *, skill, family, recipe, allow_incomplete: bool, plot: Path | None,
                json_out: bool, holdout: str = "largest", pool: str | None = None) -> None:
    """`forecast backtest --by recipe|family`: hold out the largest size, decide from the rest,
    score the calls against ranking by the largest remaining pilot."""
    from forecast.backtesting.recipes import backtest_recipes
    from forecast.errors import UsageError

    for flag, used in (("--holdout", holdout != "largest"), ("--pool", pool is not None)):
        if used:
            raise UsageError(f"{flag}: not with --by {by}, which holds out the largest size the groups share and "
                             "pools the groups' shape itself")
    runs, notes = load_fittable(runs_dir, allow_incomplete)
    kept = runs if allow_incomplete else [r for r in runs if r.complete is not False]
    with log.status("backtesting the recipe decisions"):
        result = backtest_recipes(kept, by=by, skills=skill, family=family, recipe=recipe)
    if plot is not None:
        import forecast.plots
        from forecast.plots.recipes import recipe_backtest_figure

        forecast.plots.save(recipe_backtest_figure(result), plot)
        notes.append(f"wrote {plot}")
    print_notes(notes)
    if json_out:
        print_json("backtest-recipes", **result.to_json())
        return
    console.print(recipe_backtest_table(result))


def recipe_backtest_table(bt):
    """Scores of the held-out recipe decisions, and reliability by bin."""
    from forecast.cli.render import caption, table

    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    t = table(f"recipe decisions at the held-out size ({len(bt.decisions)} decisions)",
              ["", "decision accuracy", "Brier"], right=["decision accuracy", "Brier"])
    t.add_row("forecast", fmt(bt.decision_accuracy), fmt(bt.brier))
    t.add_row("largest pilot", fmt(bt.baseline_decision_accuracy), fmt(bt.baseline_brier))
    count, share = bt.confident()
    lines = [bt.summary_line(), f"P(win) ≥ 0.8: {count} decisions, {fmt(share)} right"]
    lines += [f"P {b['low']:.1f}–{b['high']:.1f}: {b['count']} decisions, mean P {fmt(b['mean_p'])}, "
              f"won {fmt(b['observed'])}" for b in bt.reliability()]
    lines += [f"{b['tokens_per_param']:g} tokens/param: {b['count']} decisions, forecast {fmt(b['decision_accuracy'])}, "
              f"largest pilot {fmt(b['baseline_decision_accuracy'])}" for b in bt.by_budget()]
    lines += [f"{s}: not predictable ({why})" for s, why in bt.not_predictable.items()]
    return caption(t, lines)
