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


# ============================================================================ fit
# (fitting engine: `forecast fit`)


# ============================================================================ forecasts
# (`forecast predict`, `forecast plan`, `forecast backtest`, `forecast demo`)


# ============================================================================ compare
# (`forecast compare`)


if __name__ == "__main__":
    app()
