"""`forecast predict --run DIR` and `forecast backtest --partial`: a run in progress (thin shells).

`predict --run` forecasts each skill of a run while it trains, from the ladder's fits and the
run's checkpoints so far (`forecast.forecasting.in_progress`); with `--check` it exits with
`OFF_PATH_EXIT` (3) when a skill has left the ladder's band, so a training loop can call it
after each evaluation. `backtest --partial` hides the end of the largest run(s) and scores the
final forecast from each visible share (`forecast.backtesting.partial`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from forecast.cli.common import console, log, plural, print_json, print_notes
from forecast.cli.render import caption, interval_text, table
from forecast.errors import UsageError
from forecast.quantities import format_count

OFF_PATH_EXIT = 3
"""Exit code of `predict --run DIR --check` when a skill has left the ladder's band."""


def parse_shares(text: str) -> tuple[float, ...]:
    """`--partial 0.1,0.25,0.5` read as fractions in (0, 1)."""
    try:
        shares = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--partial {text!r}: give fractions of the run's steps, e.g. 0.1,0.25,0.5") from None
    if not shares or not all(0 < s < 1 for s in shares):
        raise UsageError(f"--partial {text!r}: each share must lie in (0, 1), e.g. 0.1,0.25,0.5")
    return shares


def predict_run(fits, run_dir: Path, tokens: float | None, skills: list[str] | None, family: str | None,
                recipe: str | None, interval: float, threshold: float | None, check: bool, plot: Path | None,
                json_out: bool) -> None:
    """`forecast predict --run DIR [--tokens PLANNED] [--check] [--plot FILE] [--json]`."""
    from forecast.forecasting.in_progress import update_with_run
    from forecast.runs.files import load_run

    run = load_run(run_dir)
    if tokens is None and run.complete is False and "planned_tokens" not in run.extra:
        raise UsageError(f"--run {run_dir}: training is in progress and run.json records no extra.planned_tokens; "
                         "give --tokens PLANNED (e.g. --tokens 300B)")
    wanted = None if not skills or [s.lower() for s in skills] == ["all"] else skills
    forecasts = update_with_run(fits, run, tokens, skills=wanted, family=family, recipe=recipe, level=interval,
                                threshold=threshold)
    fitted = {f.skill.lower() for f in forecasts}
    notes = [f"{run.name}: {name} has no fit in the ladder; not forecast" for name in run.skills
             if name.lower() not in fitted and wanted is None]
    if plot is not None:
        import forecast.plots
        from forecast.plots.progress import progress_figure

        forecast.plots.save(progress_figure(forecasts), plot)
        notes.append(f"wrote {plot}")
    print_notes(notes)
    off = [f for f in forecasts if f.off_path is not None]
    if json_out:
        print_json("predict-run", run=run.name, off_path=[f.skill for f in off],
                   forecasts=[f.to_json() for f in forecasts])
    else:
        console.print(run_table(forecasts, run.name))
    if check and off:
        log.print(f"off path: {', '.join(f.skill for f in off)} (exit {OFF_PATH_EXIT})")
        raise typer.Exit(OFF_PATH_EXIT)


def run_table(forecasts, name: str):
    f0 = forecasts[0]
    seen = "no checkpoint yet" if f0.tokens_seen is None else \
        f"seen to {format_count(f0.tokens_seen)} tokens ({100 * f0.fraction_seen:.0f}%)"
    pct = f"{100 * f0.level:.0f}%"
    t = table(f"{name}: {format_count(f0.params)} params, planned {format_count(f0.planned_tokens)} tokens, {seen}",
              ("skill", f"final ({pct})", "ladder only", "shift", "run weight", "grok (tokens)", "p(grok)",
               "ckpts", "path"), right=("shift", "run weight", "p(grok)", "ckpts"))
    lines = []
    for f in forecasts:
        if f.grok_observed is not None:
            grok = f"crossed at {format_count(f.grok_observed)}"
        elif f.grok is not None and f.grok.median == float("inf"):
            grok = "not by the planned end"
        elif f.grok is not None:
            grok = interval_text(f.grok, count=True)
        else:
            grok = "-"
        path = "on path" if f.off_path is None else (
            f"OFF: {f.off_path.direction} since {format_count(f.off_path.tokens)} tokens "
            f"({100 * f.off_path.fraction:.0f}%), {100 * f.off_path.by:+.1f} pts"
            + (" (sequential test)" if f.off_path.rule == "cusum" else ""))
        shift = "-" if f.shift is None else f"{100 * f.shift:+.1f}"
        t.add_row(f.skill, interval_text(f.accuracy), interval_text(f.ladder.accuracy), shift, f"{f.run_weight:.2f}",
                  grok, "-" if f.p_grok is None else f"{f.p_grok:.2f}", str(len(f.checkpoints)), path)
        lines += [f"{f.skill}: {n}" for n in f.notes]
    lines.append("shift: updated minus ladder-only median (points); run weight: share of the updated forecast's "
                 "precision that came from the run's checkpoints")
    return caption(t, list(dict.fromkeys(lines)))


def backtest_partial(runs, shares_text: str, holdout: str, skills, family, recipe, interval: float, options,
                     json_out: bool, notes: list[str]) -> None:
    """`forecast backtest RUNS --partial 0.1,0.25,0.5`."""
    from forecast.backtesting.partial import partial_backtest

    shares = parse_shares(shares_text)
    with log.status("backtesting runs in progress"):
        result = partial_backtest(runs, shares, holdout=holdout, family=family, recipe=recipe, skills=skills,
                                  options=options, level=interval)
    print_notes(notes)
    if json_out:
        print_json("backtest-partial", **result.to_json())
        return
    pct = f"{100 * interval:.0f}%"
    t = table(f"final accuracy of {', '.join(result.held_out)} forecast from part of the run "
              f"(benchmarks with >= {result.min_items:,} items)",
              ("visible", "items", "MAE updated", "MAE ladder only", "MAE run alone", "MAE own curve",
               f"{pct} coverage"),
              right=("visible", "items", "MAE updated", "MAE ladder only", "MAE run alone", "MAE own curve",
                     f"{pct} coverage"))
    pts = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    for s in result.scores:
        t.add_row(f"{100 * s.share:.0f}%", str(s.items), pts(s.mae), pts(s.ladder_mae), pts(s.run_alone_mae),
                  pts(s.own_mae), "-" if s.coverage is None else f"{100 * s.coverage:.0f}%")
    cover = result.coverage
    console.print(caption(t, ["MAE in accuracy points; run alone: the visible checkpoints read through the "
                              "ladder's schedule shape, without the ladder's prior; own curve: a line in logit "
                              "accuracy vs log tokens through the visible checkpoints, extrapolated to the end",
                              f"coverage over {plural(len(result.items), 'item')} and shares: "
                              + ("-" if cover is None else f"{100 * cover:.0f}%")]))
