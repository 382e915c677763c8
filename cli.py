"""The `forecast` command line: parses arguments, calls the `forecast` library, renders.

Results go to stdout (rich tables, or plain JSON with `--json`); progress and logs go to
stderr. Every `ForecastError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from forecast.errors import ForecastError

app = typer.Typer(
    help="Forecast when and whether a large model will grok each skill, from small pilot runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(help="Import evaluation results as runs (one directory per run).", no_args_is_help=True)
app.add_typer(import_app, name="import")

console = Console()  # results
log = Console(stderr=True)  # progress and logs


def command(target: typer.Typer = app, *args: Any, **kwargs: Any) -> Callable:
    """Register a command whose `ForecastError`s become one stderr line and exit code 2."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a: Any, **k: Any) -> Any:
            try:
                return fn(*a, **k)
            except ForecastError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise typer.Exit(2) from None

        return target.command(*args, **kwargs)(wrapper)

    return decorate


def print_json(data: Any) -> None:
    """Machine-readable output: plain `json.dumps`, nothing else on stdout."""
    print(json.dumps(data, indent=2, allow_nan=False))


# ============================================================================ runs & import
# (runs store: `forecast runs`, `forecast import lm-eval|csv|table|long`)


# ============================================================================ pilot
# (pilot trainer: `forecast pilot`)

import contextlib  # noqa: E402  (imports kept in this section: other sections are edited in parallel)
from pathlib import Path  # noqa: E402

from forecast.errors import UsageError  # noqa: E402
from forecast.runs import load_run  # noqa: E402

@command(app, "pilot")
def pilot(
    preset: str = typer.Option(None, "--preset", help="Built-in ladder: tiny, demo, formats, formats_cpu, curriculum, curriculum_cpu."),
    config: Path = typer.Option(None, "--config", help="Ladder config file (.toml or .json); see README 'Pilot runs'."),
    out: Path = typer.Option(Path("runs"), "--out", help="Runs go to OUT/<ladder name>/<run name>/."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    seeds: int = typer.Option(None, "--seeds", min=1, help="Train seeds 0..K-1 (default: the config's seeds)."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads for torch (default: one per core)."),
    show_config: bool = typer.Option(False, "--show-config", help="Print the ladder config as JSON (usable with --config) and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train a pilot ladder of small transformers on synthetic skills, writing runs as they train.

    Rerunning the same command resumes an interrupted ladder and skips finished runs."""
    from forecast.pilot import PRESETS, load_ladder, preset_ladder, resolve_device, train_run

    if (preset is None) == (config is None):
        raise UsageError(f"give exactly one of --preset ({', '.join(PRESETS)}) or --config FILE")
    ladder = preset_ladder(preset) if preset is not None else load_ladder(config)
    if show_config:
        print_json(ladder.to_json())
        return
    torch_device = resolve_device(device)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    specs = ladder.run_specs(seeds)
    family_dir = out / ladder.name
    log.print(f"pilot ladder [bold]{ladder.name}[/]: {len(specs)} runs on {torch_device.type} -> {family_dir}")
    paths = []
    with _pilot_progress() as (bars, report):
        overall = bars.add_task("ladder", total=len(specs), info="")
        for spec in specs:
            bars.update(overall, description=f"ladder ({spec.name})")
            paths.append(train_run(spec, family_dir, torch_device, report))
            bars.advance(overall)
    _print_pilot_summary([load_run(p) for p in paths], as_json)


@contextlib.contextmanager
def _pilot_progress() -> Any:
    """Rich progress bars on stderr: the ladder, and the current run's steps with tokens/s and
    per-skill accuracy at the latest evaluation."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=log, transient=False) as bars:
        tasks: dict[str, Any] = {}

        def report(p: Any) -> None:
            if p.run not in tasks:
                tasks[p.run] = bars.add_task(p.run, total=p.steps, info="")
            acc = " ".join(f"{k} {v:.2f}" for k, v in p.accuracy.items())
            info = "complete, skipped" if p.status == "skipped" else f"{p.tokens_per_second:,.0f} tok/s  {acc}"
            bars.update(tasks[p.run], completed=p.step, info=info)

        yield bars, report


def _print_pilot_summary(runs: list[Any], as_json: bool) -> None:
    """Final accuracy per run and skill (stdout)."""
    rows = [{"name": r.name, "path": str(r.path), "params": r.params, "tokens": r.final_tokens,
             "flops": r.final_flops, "accuracy": {s: float(r.series[s].accuracy[-1]) for s in r.skills}}
            for r in runs]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    from forecast.quantities import format_count, format_flops

    skills = list(rows[0]["accuracy"]) if rows else []
    table = Table(title="pilot runs (final accuracy)")
    for column in ("run", "params", "tokens", "FLOPs", *skills):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        table.add_row(row["name"], format_count(row["params"]), format_count(row["tokens"]), format_flops(row["flops"]),
                      *(f"{row['accuracy'][s]:.2f}" for s in skills))
    console.print(table)


# ============================================================================ fit
# (fitting engine: `forecast fit`)


# ============================================================================ forecasts
# (`forecast predict`, `forecast plan`, `forecast backtest`, `forecast demo`)


# ============================================================================ compare
# (`forecast compare`)


if __name__ == "__main__":
    app()
