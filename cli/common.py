"""What every command shares: the consoles, the one error path, JSON output, option types.

Errors: every `ForecastError` (and a file system error, and a mistyped flag) becomes one
line on stderr, `error: ...`, and exit code 2; Ctrl-C is one line and exit code 130. This
happens once, in `OneLineErrors.main`, so no command handles errors itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.2x ships its own copy of click; earlier versions use click itself
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click
from rich.console import Console
from typer.core import TyperGroup

from forecast.errors import ForecastError, UsageError
from forecast.quantities import parse_quantity

# results; when piped (not a terminal) rich would assume 80 columns and fold the tables
console = Console(width=None if sys.stdout.isatty() else 140)
log = Console(stderr=True)  # progress and logs


def error_line(exc: BaseException) -> str:
    """The one line a failure prints (without the `error: ` prefix)."""
    if isinstance(exc, ForecastError):
        return str(exc)
    if isinstance(exc, click.exceptions.UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "forecast"
        return f"{exc.format_message()} (see `{command} --help`)"
    if isinstance(exc, OSError):
        where = exc.filename or "a file"
        return f"{where}: {exc.strerror or exc}; check the path and its permissions"
    return str(exc)


class OneLineErrors(TyperGroup):
    """The app's command group: runs a command and turns what the user got wrong into one
    line on stderr (see the module docstring), with click's and typer's boxes suppressed."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                                **extra)
            code = 0 if code is None or not isinstance(code, int) else code
        except click.exceptions.NoArgsIsHelpError as exc:  # `forecast` or `forecast import` alone: help
            print(exc.ctx.get_help() if exc.ctx else exc.format_message())
            code = 0
        except (ForecastError, click.exceptions.UsageError, OSError) as exc:
            print(f"error: {error_line(exc)}", file=sys.stderr)
            code = 2
        except (KeyboardInterrupt, typer.Abort):
            print("error: interrupted; files are written atomically, so what was there is unchanged",
                  file=sys.stderr)
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


def print_json(kind: str, **payload: Any) -> None:
    """Machine-readable output (`forecast.schema.envelope`): nothing else goes to stdout,
    and no NaN or Infinity ever does (`allow_nan=False`)."""
    from forecast.schema import envelope

    print(json.dumps(envelope(kind, **payload), indent=2, allow_nan=False))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------- option values


def quantity(flag: str) -> Callable[[str | None], float | None]:
    """A typer parser for sizes, tokens and FLOPs (`70B`, `1.4T`, `6e23`) naming `flag`."""
    def parse(text: str | None) -> float | None:
        return None if text is None else parse_quantity(text, what=flag)
    return parse


def required(value: Any, flag: str, hint: str) -> Any:
    if value is None:
        raise UsageError(f"{flag} is required: {hint}")
    return value


def positive_int(value: int | None, flag: str, example: str) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"{flag} {value}: give a positive whole number, e.g. {flag} {example}")
    return value


def output_file(path: Path | None, flag: str = "--plot") -> Path | None:
    """A file path we may write: not a directory, in a directory that exists or can be made."""
    if path is None:
        return None
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name such as {path / 'forecast.png'}")
    return path


# ---------------------------------------------------------------------------- shared options

FitsDir = Annotated[Path, typer.Option("--fits", help="Directory of fits written by `forecast fit`.")]
FamilyOpt = Annotated[str | None, typer.Option("--family", help="Which family, when the fits or runs hold several.")]
RecipeOpt = Annotated[str | None, typer.Option("--recipe", help="Which data recipe, when there are several.")]
SkillOpt = Annotated[list[str] | None, typer.Option("--skill", help="Skill (repeatable, case-insensitive) or `all`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (README, 'JSON output').")]
IntervalOpt = Annotated[float, typer.Option("--interval", help="Central probability of the intervals, in (0, 1).")]
ThresholdOpt = Annotated[float | None, typer.Option(
    "--threshold", help="Accuracy that counts as grokked, in (0, 1) (default: half way from floor to plateau).")]
DrawsOpt = Annotated[int, typer.Option("--draws", help="Bootstrap draws per candidate law.")]
TokensPerParamOpt = Annotated[float | None, typer.Option(
    "--tokens-per-param", help="Training tokens per parameter when neither --tokens nor --compute is given "
    "(default: the runs' own ratio when they share one, else 20).")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Also write a PNG figure to this file.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="CPU threads for torch (default: one per core; fits use 1).")]
