"""`forecast fit`, `predict`, `plan`, `backtest`: from runs to fits to forecasts (thin shells)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    DrawsOpt, FamilyOpt, FitsDir, IntervalOpt, JsonOpt, PlotOpt, RecipeOpt, SkillOpt, ThresholdOpt, TokensPerParamOpt,
    console, log, output_file, plural, print_json, quantity,
)
from cli.losses import aggregate_table, loss_fit_table, loss_forecast_table, loss_plan_table
from cli.render import backtest_table, fit_table, forecast_table, target_plan_text
from forecast.errors import UsageError
from forecast.quantities import TOKENS_PER_PARAM, format_count, format_flops

LawsOpt = Annotated[str | None, typer.Option(
    "--laws", help="Candidate laws, comma-separated (see README 'Fitting'; default: all).")]
DEFAULT_DRAWS = 400  # = FitOptions.draws (kept here so that --help does not import the fitting engine)


PoolOpt = Annotated[str | None, typer.Option(
    "--pool", help="families: one more candidate law borrows slopes from the other families in the runs "
    "(each family keeps its own offset; the forecast names them). Default: families are never pooled.")]


def fit_options(draws: int, seed: int = 0, laws: str | None = None, smooth: bool = False,
                skip_fraction: float | None = None, min_sizes: int | None = None, allow_incomplete: bool = False,
                losses: bool = False, pool: str | None = None):
    """`FitOptions` from the flags (validated by `FitOptions` itself)."""
    from forecast.fitting import FitOptions

    chosen = {} if not laws else {"laws": tuple(x.strip() for x in laws.split(",") if x.strip())}
    extra = {k: v for k, v in (("skip_fraction", skip_fraction), ("min_sizes", min_sizes)) if v is not None}
    return FitOptions(draws=draws, seed=seed, smooth=smooth, allow_incomplete=allow_incomplete, losses=losses,
                      pool=pool, **chosen, **extra)


def load_fittable(runs_dir: Path, allow_incomplete: bool):
    """The runs under `runs_dir`, telling on stderr what was left out and why."""
    from forecast.run_files import scan_runs

    scan = scan_runs(runs_dir)
    for path in scan.not_runs:
        log.print(f"note: {path}: holds a trajectory.csv but no run.json; left out", markup=False)
    for run in scan.incomplete:
        verb = "fitted anyway (--allow-incomplete)" if allow_incomplete else "left out (--allow-incomplete to fit it)"
        log.print(f"note: {run.name}: training did not finish; {verb}", markup=False)
    return list(scan.runs)


def fit_command(
    runs_dir: Annotated[Path, typer.Argument(help="Runs directory (from `forecast import` or `forecast pilot`).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the fits (skills already there are kept).")] = Path("fits"),
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    draws: DrawsOpt = DEFAULT_DRAWS,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap (fits are reproducible).")] = 0,
    laws: LawsOpt = None,
    smooth: Annotated[bool, typer.Option("--smooth", help="Make accuracy non-decreasing in tokens per run first.")] = False,
    skip_fraction: Annotated[float | None, typer.Option("--skip-fraction", help="Ignore checkpoints before this fraction of a run's tokens (warm-up; default 0.01).")] = None,
    min_sizes: Annotated[int | None, typer.Option("--min-sizes", help="Fewest model sizes to forecast from (default 3).")] = None,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Also fit pilot runs whose training did not finish.")] = False,
    pool: PoolOpt = None,
    losses: Annotated[bool, typer.Option("--losses/--no-losses", help="Also fit L(N, D) to every loss series (validation and task losses), for `predict --metric loss`.")] = True,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit every skill's transition, choose laws by how well they extrapolate, write fits/."""
    import forecast

    options = fit_options(draws, seed, laws, smooth, skip_fraction, min_sizes, allow_incomplete, losses, pool)
    plot = output_file(plot)
    runs = load_fittable(runs_dir, allow_incomplete)
    with log.status(f"fitting {plural(len(runs), 'run')}"):
        fits = forecast.fit(runs, skills=skill, family=family, recipe=recipe, options=options)
    if not fits.skills and not fits.losses:
        raise UsageError(f"nothing to fit in {runs_dir}: no skill with an accuracy"
                         + (" (and --no-losses leaves out the loss metrics)" if not losses else " and no loss metric"))
    fits.save(out)
    if plot is not None:
        for i, (fam, rec) in enumerate(fits.groups()):
            path = plot if i == 0 else plot.with_name(f"{plot.stem}-{fam}-{rec}{plot.suffix}")
            forecast.plots.save(forecast.plots.grok_scaling_figure(fits.select(fam, rec)), path)
            log.print(f"wrote {path}")
    rows = fits.summaries()
    if json_out:
        print_json("fit", out=str(out), skills=rows, losses=[f.summary() for f in fits.losses])
        return
    if rows or not fits.losses:
        console.print(fit_table(rows, [(sf.skill, sf.notes) for sf in fits.skills],
                                f"fits of {plural(len(runs), 'run')} written to {out}"))
    if fits.losses:
        console.print(loss_fit_table(fits.losses, f"loss laws of {plural(len(runs), 'run')} written to {out}"))


def predict_command(
    params: Annotated[str, typer.Option("--params", help="Target model size in parameters: 70B, 410M, 7e10.")],
    tokens: Annotated[str | None, typer.Option("--tokens", help="Planned training tokens: 2T, 300B.")] = None,
    compute: Annotated[str | None, typer.Option("--compute", help="Planned training FLOPs: 1e24.")] = None,
    skill: SkillOpt = None,
    fits_dir: FitsDir = Path("fits"),
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    threshold: ThresholdOpt = None,
    tokens_per_param: TokensPerParamOpt = None,
    metric: Annotated[str, typer.Option("--metric", help="What to forecast: accuracy (per skill) or loss (validation and task losses, from L(N, D)).")] = "accuracy",
    aggregate: Annotated[list[str] | None, typer.Option("--aggregate", help="Also forecast an average of tasks from its members' fits, NAME=task1,task2,... or NAME=all (repeatable).")] = None,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """When and whether a model of --params groks each skill, and its accuracy at the end of training."""
    import forecast

    target = quantity("--params")(params)
    planned_tokens, planned_flops = quantity("--tokens")(tokens), quantity("--compute")(compute)
    if metric not in ("accuracy", "loss"):
        raise UsageError(f"--metric {metric}: choose accuracy or loss")
    plot = output_file(plot)
    fits = forecast.Fits.load(fits_dir)
    if metric == "loss":
        if plot is not None or aggregate or threshold is not None:
            raise UsageError("--metric loss takes no --plot, --aggregate or --threshold")
        predict_loss_output(fits, target, planned_tokens, planned_flops, skill, family, recipe, interval,
                            tokens_per_param, json_out)
        return
    from forecast.aggregate import parse_aggregates

    wanted = parse_aggregates(aggregate or [])
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
    far = "" if f0.extrapolation is None else f" ({f0.extrapolation:.3g}× the largest pilot)"
    console.print(forecast_table(forecasts, f"{f0.family}/{f0.recipe} → {format_count(f0.params)} params, "
                                 f"{format_count(f0.tokens)} tokens ({how}), {format_flops(f0.flops)} FLOPs{far}"))
    if averages:
        console.print(aggregate_table(averages))


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
    target: Annotated[float | None, typer.Option("--target", help="Accuracy to reach (with --skill): smallest compute that gets there.")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Training FLOPs: what a compute-optimal model at this budget groks.")] = None,
    fits_dir: FitsDir = Path("fits"),
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    tokens_per_param: Annotated[float, typer.Option("--tokens-per-param", help="Compute-optimal tokens per parameter.")] = TOKENS_PER_PARAM,
    loss: Annotated[float | None, typer.Option("--loss", help="Loss to reach: smallest compute whose compute-optimal model gets there (per loss series, or --skill).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compute-budget planning: `--skill S --target 0.6`, `--budget 1e24`, or `--loss 2.1`."""
    import forecast

    if sum(v is not None for v in (target, budget, loss)) != 1:
        raise UsageError("give one of --skill S --target ACC, --budget FLOPS, or --loss L")
    flops = quantity("--budget")(budget)
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
        if not skill or len(skill) != 1 or skill[0].lower() == "all":
            raise UsageError("--target needs exactly one --skill")
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
    holdout: Annotated[str, typer.Option("--holdout", help="Held-out sizes: largest, largest:K, or params>=X.")] = "largest",
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    draws: DrawsOpt = DEFAULT_DRAWS,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Also use pilot runs whose training did not finish.")] = False,
    pool: PoolOpt = None,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Hold out the largest model(s), fit the rest, and score the forecasts against two baselines."""
    import forecast

    plot = output_file(plot)
    options = fit_options(draws, allow_incomplete=allow_incomplete, pool=pool)
    runs = load_fittable(runs_dir, allow_incomplete)
    with log.status("backtesting"):
        result = forecast.backtest(runs, holdout=holdout, family=family, recipe=recipe, skills=skill,
                                   options=options, level=interval)
    if plot is not None:
        forecast.plots.save(forecast.plots.backtest_figure(result), plot)
        log.print(f"wrote {plot}")
    if json_out:
        print_json("backtest", **result.to_json())
        return
    console.print(backtest_table(result))
