"""`forecast fit`, `predict`, `plan`, `backtest`: from runs to fits to forecasts (thin shells)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli.common import (
    DrawsOpt, FamilyOpt, FitsDir, ForceOpt, SeedOpt, IntervalOpt, JsonOpt, PlanTokensPerParamOpt, PlotOpt, RecipeOpt, SkillOpt, TargetOpt,
    ThresholdOpt, TokensPerParamOpt, at_least, choice_check, console, fraction_check, log, output_dir, output_file,
    list_check, plural, print_json, print_notes, size_option,
)
from forecast.cli.losses import aggregate_table, loss_fit_table, loss_forecast_table, loss_plan_table
from forecast.cli.render import backtest_table, fit_progress, fit_table, forecast_table, target_plan_text
from forecast.errors import UsageError
from forecast.options import DEFAULT_DRAWS, parse_holdout
from forecast.quantities import TOKENS_PER_PARAM, format_count, format_flops

LawsOpt = Annotated[str | None, typer.Option(
    "--laws", callback=list_check("--laws", "grok_scaling,power_law"), help="Candidate laws, comma-separated (see README 'Fitting'; default: all).")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", help="Every row and every note in full (large tables default to one row per family).")]
SkipFractionOpt = Annotated[float | None, typer.Option(
    "--skip-fraction", callback=fraction_check("--skip-fraction", "0.01"),
    help="Ignore checkpoints before this fraction of a run's tokens (warm-up; default 0.01).")]
MinSizesOpt = Annotated[int | None, typer.Option(
    "--min-sizes", callback=at_least("--min-sizes", 2, "3"),
    help="Fewest model sizes to forecast from (default 3; a trend needs at least 2).")]


def holdout_check(rule: str) -> str:
    """`--holdout` read as it is parsed (`forecast.options.parse_holdout`, the grammar the
    backtest reads), so that a typo fails before the fitting engine loads."""
    parse_holdout(rule)
    return rule


PoolOpt = Annotated[str | None, typer.Option(
    "--pool", help="families: one more candidate law borrows slopes from the other families in the runs "
    "(each family keeps its own offset; the forecast names them). latent: tables of final checkpoints (one per "
    "model) of >= 3 families are fitted by the latent-capability law (each benchmark a sigmoid of a capability "
    "linear in log compute, each family its own offset; the forecast names the families and benchmarks "
    "borrowed). Default: families are never pooled.")]


def fit_options(draws: int, seed: int = 0, laws: str | None = None, smooth: bool = False,
                skip_fraction: float | None = None, min_sizes: int | None = None, allow_incomplete: bool = False,
                losses: bool = False, pool: str | None = None):
    """`FitOptions` from the flags (validated by `FitOptions` itself)."""
    from forecast.fitting.fit import FitOptions

    chosen = {} if not laws else {"laws": tuple(x.strip() for x in laws.split(",") if x.strip())}
    extra = {k: v for k, v in (("skip_fraction", skip_fraction), ("min_sizes", min_sizes)) if v is not None}
    return FitOptions(draws=draws, seed=seed, smooth=smooth, allow_incomplete=allow_incomplete, losses=losses,
                      pool=pool, **chosen, **extra)


def load_fittable(runs_dir: Path, allow_incomplete: bool):
    """The runs under `runs_dir`, and the notes to print once the command succeeds (a
    failure prints only its one error line): what was left out and why, and which runs
    look implausible (`run_checks.implausible`)."""
    from forecast.runs.checks import implausible
    from forecast.runs.files import scan_runs

    scan = scan_runs(runs_dir)
    notes = scan.notes()  # folders left out, with why
    for run in scan.incomplete:
        verb = "fitted anyway (--allow-incomplete)" if allow_incomplete else "left out (--allow-incomplete to fit it)"
        notes.append(f"{run.name}: training did not finish; {verb}")
    notes += [f"{run.name}: implausible input: {why}" for run in scan.runs if (why := implausible(run)) is not None]
    return list(scan.runs), notes


def fit_command(
    runs_dir: Annotated[Path, typer.Argument(help="Runs directory (from `forecast import` or `forecast pilot`).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the fits (skills already there are kept).")] = Path("fits"),
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    draws: DrawsOpt = DEFAULT_DRAWS,
    seed: SeedOpt = 0,
    laws: LawsOpt = None,
    smooth: Annotated[bool, typer.Option("--smooth", help="Make accuracy non-decreasing in tokens per run first.")] = False,
    skip_fraction: SkipFractionOpt = None,
    min_sizes: MinSizesOpt = None,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Also fit pilot runs whose training did not finish.")] = False,
    pool: PoolOpt = None,
    losses: Annotated[bool, typer.Option("--losses/--no-losses", help="Also fit L(N, D) to every loss series (validation and task losses), for `predict --metric loss`.")] = True,
    plot: PlotOpt = None,
    verbose: VerboseOpt = False,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Fit every skill's transition, choose laws by how well they extrapolate, write fits/."""
    import forecast

    plot = output_file(plot, force=force)
    output_dir(out, marker="index.json", force=force)
    runs, notes = load_fittable(runs_dir, allow_incomplete)  # before the fitting engine (torch) is imported
    options = fit_options(draws, seed, laws, smooth, skip_fraction, min_sizes, allow_incomplete, losses, pool)
    with fit_progress(f"fitting {plural(len(runs), 'run')}", log.is_terminal and not json_out) as report:
        fits = forecast.fit(runs, skills=skill, family=family, recipe=recipe, options=options, progress=report)
    if not fits.skills and not fits.losses:
        raise UsageError(f"nothing to fit in {runs_dir}: no skill with an accuracy"
                         + (" (and --no-losses leaves out the loss metrics)" if not losses else " and no loss metric"))
    # figures are drawn before the fits are written, so a failure leaves the fits as they were
    # one figure a group: the first at --plot, the others beside it named after their group
    # (family and recipe labels are free text: anything but letters, digits, '.', '_' and '-' becomes '_')
    figures = [] if plot is None else [
        (plot if i == 0 else output_file(plot.with_name(re.sub(r"[^\w.-]", "_", f"{plot.stem}-{fam}-{rec}") + plot.suffix),
                                         force=force),
         forecast.plots.grok_scaling_figure(fits.select(fam, rec))) for i, (fam, rec) in enumerate(fits.groups())]
    fits.save(out)
    for path, figure in figures:
        forecast.plots.save(figure, path)
        notes.append(f"wrote {path}")
    print_notes(notes)
    rows = fits.summaries()
    if json_out:
        print_json("fit", out=str(out), skills=rows, losses=[f.summary() for f in fits.losses])
        return
    if rows or not fits.losses:
        console.print(fit_table(rows, [(sf.family, sf.skill, sf.notes) for sf in fits.skills],
                                f"fits of {plural(len(runs), 'run')} written to {out}", verbose))
    if fits.losses:
        console.print(loss_fit_table(fits.losses, f"loss laws of {plural(len(runs), 'run')} written to {out}", verbose))


def predict_command(
    params: Annotated[float | None, size_option("--params", "Target model size in parameters: 70B, 410M, 7e10.")] = None,
    tokens: Annotated[float | None, size_option("--tokens", "Planned training tokens: 2T, 300B.")] = None,
    compute: Annotated[float | None, size_option("--compute", "Planned training FLOPs: 1e24.")] = None,
    skill: SkillOpt = None,
    fits_dir: FitsDir = Path("fits"),
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    threshold: ThresholdOpt = None,
    tokens_per_param: TokensPerParamOpt = None,
    metric: Annotated[str, typer.Option("--metric", callback=choice_check("--metric", ("accuracy", "loss")), help="What to forecast: accuracy (per skill) or loss (validation and task losses, from L(N, D)).")] = "accuracy",
    aggregate: Annotated[list[str] | None, typer.Option("--aggregate", help="Also forecast an average of tasks from its members' fits, NAME=task1,task2,... or NAME=all (repeatable).")] = None,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    run: Annotated[Path | None, typer.Option("--run", help="A run in progress (its directory): the ladder's forecast for its size and --tokens (or run.json extra.planned_tokens), updated by its checkpoints so far.")] = None,
    check: Annotated[bool, typer.Option("--check", help="With --run: exit 3 when a skill has left the ladder's band.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """When and whether a model of --params (or the run in progress, --run DIR) groks each skill, and its accuracy at the end of training."""
    import forecast

    from forecast.store.index import check_fits_dir

    if run is not None or check:
        if run is None or params is not None or compute is not None or metric != "accuracy" or aggregate:
            raise UsageError("--run DIR takes the run's own size: give --run (with --check, --tokens) and no "
                             "--params, --compute, --metric loss or --aggregate")
        from forecast.cli.in_progress import predict_run

        plot = output_file(plot, force=force)
        check_fits_dir(fits_dir)
        predict_run(forecast.Fits.load(fits_dir), run, tokens, skill, family, recipe, interval, threshold, check, plot,
                    json_out)
        return
    if params is None:
        raise UsageError("give --params (the target size, e.g. 70B) or --run DIR (a run in progress)")

    target, planned_tokens, planned_flops = params, tokens, compute  # parsed and checked by their option type
    if planned_tokens is not None and planned_flops is not None:
        raise UsageError("give --tokens or --compute, not both")
    if metric == "loss" and (plot is not None or aggregate or threshold is not None):
        raise UsageError("--metric loss takes no --plot, --aggregate or --threshold")
    plot = output_file(plot, force=force)
    check_fits_dir(fits_dir)  # a wrong --fits fails before the numerical stack loads
    fits = forecast.Fits.load(fits_dir)
    if metric == "loss":
        predict_loss_output(fits, target, planned_tokens, planned_flops, skill, family, recipe, interval,
                            tokens_per_param, json_out)
        return
    from forecast.forecasting.aggregate import parse_aggregates

    wanted = parse_aggregates(aggregate or [])
    if family is None and len([g for g in fits.groups() if recipe is None or g[1] == recipe]) > 1:
        if plot is not None or wanted:
            raise UsageError("the fits hold several families: --plot and --aggregate need one (add --family)")
        forecasts = fits.predict_families(target, tokens=planned_tokens, flops=planned_flops, skills=skill or ["all"],
                                          recipe=recipe, level=interval, threshold=threshold,
                                          tokens_per_param=tokens_per_param)
        if json_out:
            print_json("predict", forecasts=[f.to_json() for f in forecasts])
        else:
            groups = len({(f.family, f.recipe) for f in forecasts})
            console.print(forecast_table(forecasts, f"{groups} famil{'y' if groups == 1 else 'ies'} → "
                                         f"{format_count(target)} params (tokens per family: the tokens column)"))
        return
    forecasts = fits.predict(target, tokens=planned_tokens, flops=planned_flops, skills=skill or ["all"],
                             family=family, recipe=recipe, level=interval, threshold=threshold,
                             tokens_per_param=tokens_per_param)
    if plot is not None:
        members = fits.select(forecasts[0].family, forecasts[0].recipe, [f.skill for f in forecasts])
        figure = forecast.plots.forecast_figure(members, target, forecasts[0].tokens, forecasts=forecasts, level=interval)
        forecast.plots.save(figure, plot)
        log.print(f"wrote {plot}")
    averages = [fits.predict_aggregate(name, members, target, tokens=forecasts[0].tokens, family=forecasts[0].family,
                                       recipe=forecasts[0].recipe, level=interval)
                for name, members in wanted.items()]
    if json_out:
        print_json("predict", forecasts=[f.to_json() for f in forecasts],
                   **({"aggregates": [a.to_json() for a in averages]} if wanted else {}))
        return
    f0 = forecasts[0]
    how = {"given": "given", "from-flops": "from --compute",
           "given-tokens-per-param": f"{f0.tokens / f0.params:.3g} tokens/param",
           "group-tokens-per-param": f"{f0.tokens / f0.params:.3g} tokens/param, as the runs were trained",
           "default-tokens-per-param": f"compute-optimal, {TOKENS_PER_PARAM:g} tokens/param",
           "unknown-like-pilots": "unknown: trained like the runs"}[f0.tokens_source]
    console.print(forecast_table(forecasts, forecast_title(f0, how)))
    if averages:
        console.print(aggregate_table(averages))


def forecast_title(f0, how: str) -> str:
    """The target of a forecast table; for runs without tokens, no placeholder numbers."""
    if f0.tokens_unknown:
        far = "" if f0.extrapolation is None else f" ({f0.extrapolation:.3g}× the largest pilot's size)"
        return f"{f0.family}/{f0.recipe} → {format_count(f0.params)} params, tokens unknown (trained like the runs){far}"
    far = "" if f0.extrapolation is None else f" ({f0.extrapolation:.3g}× the largest pilot's compute)"
    return (f"{f0.family}/{f0.recipe} → {format_count(f0.params)} params, {format_count(f0.tokens)} tokens ({how}), "
            f"{format_flops(f0.flops)} FLOPs{far}")


def predict_loss_output(fits, target: float, tokens: float | None, flops: float | None, skill: list[str] | None,
                        family: str | None, recipe: str | None, interval: float, tokens_per_param: float | None,
                        json_out: bool) -> None:
    """`predict --metric loss`: each loss series at the target (table or JSON kind "predict-loss")."""
    forecasts = fits.predict_loss(target, tokens=tokens, flops=flops, metrics=skill, family=family, recipe=recipe,
                                  level=interval, tokens_per_param=tokens_per_param)
    if json_out:
        print_json("predict-loss", forecasts=[f.to_json() for f in forecasts])
        return
    f0 = forecasts[0]
    far = "" if f0.extrapolation is None else f" ({f0.extrapolation:.3g}× the largest run)"
    console.print(loss_forecast_table(forecasts, f"{f0.family}/{f0.recipe} → {format_count(f0.params)} params, "
                                      f"{format_count(f0.tokens)} tokens ({f0.tokens_source}), "
                                      f"{format_flops(f0.flops)} FLOPs{far}"))


def plan_command(
    skill: SkillOpt = None,
    target: TargetOpt = None,
    budget: Annotated[float | None, size_option(
        "--budget", "Training FLOPs: what a compute-optimal model at this budget groks.")] = None,
    fits_dir: FitsDir = Path("fits"),
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    tokens_per_param: PlanTokensPerParamOpt = TOKENS_PER_PARAM,
    loss: Annotated[float | None, typer.Option("--loss", help="Loss to reach: smallest compute whose compute-optimal model gets there (per loss series, or --skill).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compute-budget planning: `--skill S --target 0.6`, `--budget 1e24`, or `--loss 2.1`."""
    import forecast

    if sum(v is not None for v in (target, budget, loss)) != 1:
        raise UsageError("give one of --skill S --target ACC, --budget FLOPS, or --loss L")
    if target is not None and (not skill or len(skill) != 1 or skill[0].lower() == "all"):
        raise UsageError("--target needs exactly one --skill")
    from forecast.store.index import check_fits_dir

    flops = budget
    check_fits_dir(fits_dir)  # a wrong --fits fails before the numerical stack loads
    fits = forecast.Fits.load(fits_dir)
    if loss is not None:
        plans = fits.plan_loss(loss, metrics=skill, family=family, recipe=recipe, level=interval)
        if json_out:
            print_json("plan-loss", plans=[p.to_json() for p in plans])
        else:
            console.print(loss_plan_table(plans, f"{plans[0].family}/{plans[0].recipe}: smallest compute reaching loss "
                                          f"{loss:g} (compute-optimal N and D)"))
        return
    if target is not None:
        result = fits.plan_target(skill[0], target, family=family, recipe=recipe, level=interval,
                                  tokens_per_param=tokens_per_param)
        if json_out:
            print_json("plan-target", **result.to_json())
        else:
            console.print(target_plan_text(result))
        return
    result = fits.plan_budget(flops, skills=skill, family=family, recipe=recipe, level=interval,
                              tokens_per_param=tokens_per_param)
    if json_out:
        print_json("plan-budget", **result.to_json())
        return
    console.print(forecast_table(list(result.forecasts), f"budget {format_flops(flops)} FLOPs → compute-optimal "
                                 f"{format_count(result.params)} params × {format_count(result.tokens)} tokens"))


def backtest_command(
    runs_dir: Annotated[Path, typer.Argument(help="Runs directory.")],
    holdout: Annotated[str, typer.Option("--holdout", callback=holdout_check,
                                         help="Held-out sizes: largest, largest:K, or params>=X.")] = "largest",
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    draws: DrawsOpt = DEFAULT_DRAWS,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Also use pilot runs whose training did not finish.")] = False,
    pool: PoolOpt = None,
    by: Annotated[str | None, typer.Option("--by", callback=choice_check("--by", ("recipe", "family"), "key"), help="recipe or family: backtest the decisions between the "
                                           "recipes (families) of a ladder instead (README, 'Comparing data recipes').")] = None,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    partial: Annotated[str | None, typer.Option("--partial", help="Visible shares, e.g. 0.1,0.25,0.5: hide the end of the held-out run(s) and score the in-progress forecast from each share against the ladder alone and the run's own curve.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Hold out the largest model(s), fit the rest, and score the forecasts against two baselines."""
    import forecast

    if by is not None and partial is not None:
        raise UsageError("give --by (recipe decisions) or --partial (runs in progress), not both")
    if by is not None:  # recipe decisions: forecast/cli/compare.py
        from forecast.cli.compare import backtest_by

        return backtest_by(runs_dir, by, skill=skill, family=family, recipe=recipe, holdout=holdout, pool=pool,
                           allow_incomplete=allow_incomplete, plot=output_file(plot, force=force), json_out=json_out)
    plot = output_file(plot, force=force)
    if partial is not None:
        from forecast.cli.in_progress import parse_shares

        parse_shares(partial)  # a typo fails before the runs load
        if plot is not None or pool is not None:
            raise UsageError("--partial takes no --plot or --pool")
    runs, notes = load_fittable(runs_dir, allow_incomplete)  # before the fitting engine (torch) is imported
    options = fit_options(draws, allow_incomplete=allow_incomplete, pool=pool)
    if partial is not None:
        from forecast.cli.in_progress import backtest_partial

        backtest_partial(runs, partial, holdout, skill, family, recipe, interval, options, json_out, notes)
        return
    with log.status("backtesting"):
        result = forecast.backtest(runs, holdout=holdout, family=family, recipe=recipe, skills=skill,
                                   options=options, level=interval)
    if plot is not None:
        forecast.plots.save(forecast.plots.backtest_figure(result), plot)
        notes.append(f"wrote {plot}")
    print_notes(notes)
    if json_out:
        print_json("backtest", **result.to_json())
        return
    console.print(backtest_table(result))
