"""`forecast compare`: which recipe groks sooner, and whether that holds at scale (thin shell)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli.common import (
    DrawsOpt, FamilyOpt, ForceOpt, IntervalOpt, JsonOpt, PlotOpt, RecipeOpt, SkillOpt, ThresholdOpt, choice_check, console, log,
    output_file, plural, print_json, print_notes, size_option,
)
from forecast.cli.forecasting import LawsOpt, fit_options, load_fittable
from forecast.options import BY_KEYS, DEFAULT_DRAWS, MEASURES
from forecast.cli.render import compare_table



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
