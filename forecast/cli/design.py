"""`forecast design`: which pilot ladder to train, or which run to train next (thin shell).

Two modes: with `--budget`, propose a ladder within the pilot budget (`forecast.design.search`);
with `--runs` and `--candidates`, rank candidate next runs (`forecast.design.next_run`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli.common import (
    FamilyOpt, ForceOpt, IntervalOpt, JsonOpt, RecipeOpt, at_least, console, list_check, log, output_file, print_json,
    print_notes, quantity, seed_check,
)
from forecast.cli.render import caption, table
from forecast.errors import UsageError
from forecast.options import design_output_suffix
from forecast.quantities import format_count, format_flops


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give comma-separated numbers, e.g. {flag} 2,4") from None
    if not values or min(values) <= 0 or not all(math.isfinite(v) for v in values):
        raise UsageError(f"{flag} {text!r}: give positive numbers, e.g. {flag} 2,4")
    return values


def _sizes(text: str | None) -> tuple[int, ...] | None:
    """`--sizes 3,4,5`: numbers of model sizes, whole and >= 2 (a trend across sizes needs two)."""
    values = _floats(text, "--sizes")
    if values is not None and any(v != int(v) or v < 2 or v > 64 for v in values):
        raise UsageError(f"--sizes {text!r}: give whole numbers of model sizes from 2 to 64, e.g. --sizes 3,4,5")
    return None if values is None else tuple(int(v) for v in values)


def _spacings(text: str | None) -> tuple[float, ...] | None:
    """`--spacing 2,4`: ratios between neighbouring sizes, each > 1 (else the sizes do not grow)."""
    values = _floats(text, "--spacing")
    if values is not None and min(values) <= 1:
        raise UsageError(f"--spacing {text!r}: give ratios above 1 between neighbouring sizes, e.g. --spacing 2,4")
    return values


def design_command(
    target_params: Annotated[str | None, typer.Option("--target-params", help="Size of the model to forecast: 70B.")] = None,
    target_tokens: Annotated[str | None, typer.Option("--target-tokens", help="Its training tokens (default 20 per parameter): 1.4T.")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Pilot compute budget in FLOPs: 1e22.")] = None,
    skills: Annotated[list[str] | None, typer.Option("--skills", "--skill", callback=list_check("--skills", "add,piqa"), help="Skills to plan for (repeatable or comma-separated; chance from known benchmark names).")] = None,
    fits_dir: Annotated[Path | None, typer.Option("--fits", help="Plant laws from these fits (samples of their forecasts) instead of the default prior.")] = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    seeds: Annotated[int | None, typer.Option("--seeds", callback=at_least("--seeds", 1, "2", 16), help="Seeds per rung (default: the search tries 1 and 2).")] = None,
    sizes: Annotated[str | None, typer.Option("--sizes", help="Numbers of model sizes to try, comma-separated (default 3,4,5,6).")] = None,
    spacing: Annotated[str | None, typer.Option("--spacing", help="Ratios between neighbouring sizes to try (default 2,4).")] = None,
    multipliers: Annotated[list[str] | None, typer.Option("--multipliers", help="Token budgets per size as × the target's tokens per parameter, comma-separated; repeat for alternatives (default: 1, 0.5,1,2 and 4).")] = None,
    per_skill: Annotated[int, typer.Option("--draws-per-skill", callback=at_least("--draws-per-skill", 1, "8", 10_000), help="Planted laws per skill for every candidate.")] = 8,
    refine: Annotated[int, typer.Option("--refine", callback=at_least("--refine", 0, "8", 10_000), help="How many of the best candidates get more planted laws.")] = 8,
    refine_draws: Annotated[int, typer.Option("--refine-draws", callback=at_least("--refine-draws", 0, "16", 10_000), help="Planted laws per skill added for them.")] = 16,
    n_eval: Annotated[int, typer.Option("--n-eval", callback=at_least("--n-eval", 1, "1000", 10**9), help="Items per benchmark evaluation of a pilot (binomial noise).")] = 1000,
    task_loss: Annotated[bool, typer.Option("--task-loss/--no-task-loss", help="Whether the pilots will log each skill's task loss.")] = True,
    runs_dir: Annotated[Path | None, typer.Option("--runs", help="Runs already trained: rank --candidates as the next run.")] = None,
    candidates: Annotated[Path | None, typer.Option("--candidates", help="Candidate next runs: a runs directory or a CSV of name,params,tokens[,flops].")] = None,
    simulations: Annotated[int, typer.Option("--simulations", callback=at_least("--simulations", 1, "4", 10_000), help="Simulated outcomes per candidate next run.")] = 4,
    rank_by: Annotated[str, typer.Option("--rank-by", help="Rank next runs by expected narrowing per FLOP (per-flop) or by narrowing alone.")] = "per-flop",
    out: Annotated[Path | None, typer.Option("--out", help="Write the ladder: .toml/.json pilot config, or .csv table of (N, D).")] = None,
    base_config: Annotated[Path | None, typer.Option("--base-config", help="Pilot config whose skills, recipes and settings the written config keeps (default: the demo preset).")] = None,
    interval: IntervalOpt = 0.8,
    force: ForceOpt = False,
    jobs: Annotated[int, typer.Option("--jobs", callback=at_least("--jobs", 1, "2", 1024), help="Processes simulating candidates in parallel.")] = 1,
    seed: Annotated[int, typer.Option("--seed", callback=seed_check(), help="Seed of the planted laws and simulated noise.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Propose the pilot ladder (sizes × token budgets × seeds) that makes the target's forecast narrowest for the budget, or rank candidate next runs."""
    target = quantity("--target-params")(target_params)
    if target is None:
        raise UsageError("--target-params is required: the size of the model to forecast, e.g. --target-params 70B")
    tokens = quantity("--target-tokens")(target_tokens)
    names = [s.strip() for item in (skills or []) for s in item.split(",") if s.strip()] or None
    if runs_dir is not None or candidates is not None:
        if runs_dir is None or candidates is None:
            raise UsageError("ranking next runs needs both --runs RUNS and --candidates CANDIDATES")
        if budget is not None:
            raise UsageError("give --budget (design a ladder) or --runs/--candidates (rank next runs), not both")
        return _next(runs_dir, candidates, target, tokens, names, family, recipe, simulations, rank_by, interval, seed,
                     json_out)
    flops = quantity("--budget")(budget)
    if flops is None:
        raise UsageError("--budget is required: the pilot compute in FLOPs, e.g. --budget 1e22 "
                         "(or rank next runs with --runs and --candidates)")
    out = output_file(out, "--out", force=force)
    if out is not None:
        design_output_suffix(out, "out")
    from forecast.design.search import design
    from forecast.design.space import Space

    space = Space()
    chosen_multipliers = None if not multipliers else tuple(tuple(sorted(_floats(m, "--multipliers"))) for m in multipliers)
    space = Space(sizes=_sizes(sizes) or space.sizes,
                  spacings=_spacings(spacing) or space.spacings,
                  multipliers=chosen_multipliers or space.multipliers,
                  seeds=(seeds,) if seeds else space.seeds)
    base = None
    if base_config is not None:  # read before simulating: a bad file fails at once
        from forecast.pilot import load_ladder
        base = load_ladder(base_config)
    skill_fits = None
    if fits_dir is not None:
        import forecast
        skill_fits = forecast.Fits.load(fits_dir).select(family, recipe, names)
    with log.status("simulating candidate ladders") as status:
        result = design(target, flops, target_tokens=tokens, skills=names, skill_fits=skill_fits, space=space,
                        per_skill=per_skill, refine=refine, refine_draws=refine_draws, level=interval,
                        n_eval=n_eval, task_loss=task_loss, seed=seed, jobs=jobs,
                        progress=lambda stage, i, n: status.update(f"{stage}: {i}/{n} ladders simulated"))
    written = None
    if out is not None:
        from forecast.design.output import write_ladder
        written = write_ladder(result.chosen.ladder, out, base=base)
        log.print(f"wrote {out}: {written}", markup=False)
    if json_out:
        print_json("design", **result.to_json(), written=None if out is None else str(out))
        return
    _print_design(result)


def _print_design(result) -> None:
    best = result.chosen
    share = best.ladder.flops / (6.0 * result.target_params * result.target_tokens)
    console.print(f"Proposed ladder: {best.ladder.label} — {format_flops(best.ladder.flops)} FLOPs in "
                  f"{best.ladder.runs} runs, {100 * share:.2g}% of the target's {format_count(result.target_params)} "
                  f"params × {format_count(result.target_tokens)} tokens", markup=False, highlight=False)
    rungs = table("", ("params", "tokens", "tokens/param", "seeds", "FLOPs"), right=("params", "tokens", "FLOPs"))
    for r in best.ladder.rungs:
        rungs.add_row(format_count(r.params), format_count(r.tokens), f"{r.tokens / r.params:.3g}", str(r.seeds),
                      format_flops(r.flops))
    console.print(rungs)
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    console.print(f"Expected forecast at the target: {100 * result.level:.0f}% intervals over planted laws "
                  f"({result.prior} prior), simulated and refitted, accuracy points", markup=False, highlight=False)
    per_skill = table("", ("skill", "width", "abs. error", "coverage", "confidence", "draws"))
    for s in best.skills():
        grades = ", ".join(f"{g} {100 * v:.0f}%" for g, v in s.confidence.items())
        per_skill.add_row(s.skill, pct(s.width), pct(s.error), f"{100 * s.coverage:.0f}%", grades, str(s.draws))
    console.print(per_skill)
    console.print("Alternatives of the same compute (score: weighted interval score of the median and the 50% and "
                  "80% intervals, accuracy points; lower is better)", markup=False, highlight=False)
    others = table("", ("tried", "ladder", "score", "vs chosen", "width", "abs. error", "coverage", "draws"))
    rows = [("chosen", best), *result.alternatives(), ("geometric default", result.geometric)]
    for what, s in rows:
        diff, se = result.versus(s)
        versus = "" if s is best else f"{100 * diff:+.1f} ± {100 * se:.1f}"
        others.add_row(what, s.ladder.label, pct(s.score), versus, pct(s.width), pct(s.error),
                       f"{100 * s.coverage:.0f}%", str(len(s.outcomes)))
    diff, se = result.versus(result.geometric)
    lines = [f"{len(result.ranked)} candidates simulated in {result.seconds:.0f} s; on the same planted laws the "
             f"geometric default scores {100 * diff:+.1f} ± {100 * se:.1f} points against the chosen ladder",
             *result.notes]
    console.print(caption(others, lines))


def _next(runs_dir, candidates, target, tokens, names, family, recipe, simulations, rank_by, interval, seed,
          json_out) -> None:
    from forecast.cli.forecasting import load_fittable
    from forecast.design.next_run import rank_next_runs, read_candidates

    runs, notes = load_fittable(runs_dir, False)  # what was left out, printed once it succeeds
    cands = read_candidates(candidates)
    with log.status("simulating candidate runs") as status:
        result = rank_next_runs(runs, cands, target, target_tokens=tokens, skills=names, family=family,
                                recipe=recipe, simulations=simulations, level=interval, seed=seed, rank_by=rank_by,
                                progress=lambda i, n: status.update(f"{i}/{n} candidates simulated"))
    if json_out:
        print_json("design-next", **result.to_json())
        print_notes(notes)
        return
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    console.print(f"Next runs for the {format_count(result.target_params)} forecast: mean {100 * result.level:.0f}% "
                  f"interval width now {pct(result.base)} points over {len(result.skills)} skills", markup=False,
                  highlight=False)
    t = table("", ("rank", "run", "params", "tokens", "FLOPs", "expected width", "narrowing", "per 1e18 FLOPs"),
              right=("params", "tokens", "FLOPs"))
    for i, r in enumerate(result.ranked, start=1):
        c = r.candidate
        t.add_row(str(i), c.name, format_count(c.params), format_count(c.tokens[-1]), format_flops(c.flops),
                  pct(r.width), pct(r.narrowing), f"{100 * r.per_flop:.3g}")
    console.print(caption(t, [f"ranked by {'narrowing per FLOP' if result.rank_by == 'per-flop' else 'narrowing'}; "
                              f"{result.simulations} simulated outcomes per candidate, from the current fit's "
                              f"forecasts; {result.seconds:.0f} s"]))
    print_notes(notes)
