"""What every command shares: the consoles, the one error path, JSON output, option types.

Errors: every `ForecastError` (and a file system error, and a mistyped flag) becomes one
line on stderr, `error: ...`, and exit code 2; Ctrl-C is one line and exit code 130. This
happens once, in `OneLineErrors.main`, so no command handles errors itself.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.2x ships its own copy of click; earlier versions use click itself
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click
from typer.core import TyperGroup

from forecast.cli.terminal import (
    INTERRUPT, StdoutFailed, Stdout, catch_second_interrupt, console, error_out, flush_stdout, log,  # console, log: re-exported
    restore_interrupt, silence_stdout,
)
from forecast.errors import DataError, ForecastError, UsageError
from forecast.quantities import parse_quantity

def error_line(exc: BaseException) -> str:
    """The one line a failure prints (without the `error: ` prefix). A library error names
    Python parameters (`` `holdout` ``); here each becomes the flag that sets it (`--holdout`),
    read with the functions the error passed through (`forecast.cli.flags`)."""
    if isinstance(exc, ForecastError):
        from forecast.cli.flags import to_cli

        frames, tb = [], exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        return to_cli(str(exc), reversed(frames))
    if isinstance(exc, click.exceptions.UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "forecast"
        return f"{exc.format_message()} (see `{command} --help`)"
    if isinstance(exc, OSError):
        where = exc.filename or "a file"
        return f"{where}: {exc.strerror or exc}; check the path and its permissions"
    return str(exc)


class Interrupted(Exception):
    """Ctrl-C during a command (typer would turn the KeyboardInterrupt into a silent exit 130)."""


INTERRUPTED = ("interrupted; files are written atomically, so nothing is half-written and what was there is "
               "unchanged (rerun the command to redo it; `forecast pilot` resumes)")


class OneLineErrors(TyperGroup):
    """The app's command group: runs a command and turns what the user got wrong into one
    line on stderr (see the module docstring), with click's and typer's boxes suppressed."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        prog_name = prog_name or "forecast"  # not the script's path (or a test runner's name) in messages
        previous = catch_second_interrupt(INTERRUPTED)
        code = 130
        try:
            code = self._run(args, prog_name, complete_var, **extra)
        finally:
            if code == 130 and standalone_mode:  # exiting on Ctrl-C: a further one changes nothing
                restore_interrupt(signal.SIG_IGN)
            else:
                restore_interrupt(previous)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args: Any, prog_name: str, complete_var: str | None, **extra: Any) -> int:
        if sys.stdout is None:  # started with stdout closed (1>&-): say so before doing any work
            error_out("stdout is closed, so no result could be shown; run it with stdout open "
                       "(or redirect it: > result.txt)")
            return 2
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                                **extra)
            code = 0 if code is None or not isinstance(code, int) else code
            flush_stdout()
        except click.exceptions.NoArgsIsHelpError as exc:  # `forecast` or `forecast import` alone: help
            print(exc.ctx.get_help() if exc.ctx else exc.format_message())
            code = 0
        except BrokenPipeError:  # `forecast ... | head`: the reader has what it wanted
            silence_stdout()
            code = 0
        except StdoutFailed as exc:
            error_out(f"stdout: cannot write the result ({exc.args[0]}); redirect it to a file on a disk with room")
            code = 2
        except (ForecastError, click.exceptions.UsageError, OSError) as exc:
            error_out(error_line(exc))
            code = 2
        except (Interrupted, KeyboardInterrupt, typer.Abort):
            INTERRUPT["printed"] = True
            error_out(INTERRUPTED)
            code = 130
        return code


def print_json(kind: str, **payload: Any) -> None:
    """Machine-readable output (`forecast.schema.outputs.envelope`): nothing else goes to stdout,
    and no NaN or Infinity ever does (`allow_nan=False`)."""
    from forecast.schema.outputs import envelope

    Stdout("stdout").write(json.dumps(envelope(kind, **payload), indent=2, allow_nan=False) + "\n")


def print_notes(notes: list[str]) -> None:
    """Notes on stderr (`note: ...`, or `wrote FILE`), printed once a command has succeeded."""
    for note in notes:
        text = note if note.startswith("wrote ") else f"note: {note}"
        log.print(text, markup=False, highlight=False, soft_wrap=True)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------- option values
#
# Every flag with a range is checked as it is parsed, by one shared option type, so that each
# command refuses a bad value the same way (one line, exit 2) before it reads a file or fits.

MIN_DRAWS = 10
"""Fewest bootstrap draws `--draws` accepts: fewer leave no draw in the 10% tails of an 80%
interval, which would print a confident interval that the data does not support."""
MAX_DRAWS = 100_000
"""Most bootstrap draws `--draws` accepts: 100,000 already pins a 99% interval's ends to a
fraction of a percent; more only costs hours and memory (each draw is a refit)."""
MAX_SEED = 2**32 - 1
"""Seeds are numpy seeds: whole numbers in [0, 2**32)."""


def _bad(flag: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=f"'{flag}'")


def quantity(flag: str) -> Callable[[str | float | None], float | None]:
    """A parser for sizes, tokens and FLOPs (`70B`, `1.4T`, `6e23`) naming `flag`: a positive
    finite number, else a usage error naming the accepted forms."""
    def parse(text: str | float | None) -> float | None:
        if text is None or isinstance(text, float):
            return text
        try:
            return parse_quantity(text, what=flag)
        except UsageError as exc:
            raise _bad(flag, str(exc).removeprefix(f"{flag}: ")) from None
    return parse


def _number_check(flag: str, ok: Callable[[float], bool], expected: str, example: str) -> Callable[[Any], Any]:
    """A typer callback that lets None and values passing `ok` through (NaN never passes)."""
    def check(value: Any) -> Any:
        if value is None:
            return None
        if not (math.isfinite(value) and ok(value)):
            raise _bad(flag, f"{value} is not {expected}; give e.g. {flag} {example}")
        return value
    return check


def probability_check(flag: str, example: str = "0.8") -> Callable[[Any], Any]:
    """For interval levels, thresholds and target accuracies: a number strictly in (0, 1)."""
    return _number_check(flag, lambda v: 0 < v < 1, "a probability in (0, 1)", example)


def fraction_check(flag: str, example: str) -> Callable[[Any], Any]:
    """For shares that may be 0: a number in [0, 1)."""
    return _number_check(flag, lambda v: 0 <= v < 1, "a fraction in [0, 1)", example)


def positive_check(flag: str, example: str) -> Callable[[Any], Any]:
    return _number_check(flag, lambda v: v > 0, "a positive number", example)


def at_least(flag: str, lowest: int, example: str, highest: int | None = None) -> Callable[[Any], Any]:
    """For counts: a whole number >= `lowest` (and <= `highest` when given)."""
    if highest is None:
        return _number_check(flag, lambda v: v >= lowest, f"a whole number >= {lowest}", example)
    return _number_check(flag, lambda v: lowest <= v <= highest, f"a whole number in [{lowest}, {highest:,}]", example)


def seed_check(flag: str = "--seed") -> Callable[[Any], Any]:
    """For seeds: a whole number in [0, 2**32) (numpy's range)."""
    return at_least(flag, 0, "0", MAX_SEED)


def list_check(flag: str, example: str) -> Callable[[Any], Any]:
    """For comma-separated lists (`--laws a,b`): refused when given but naming nothing."""
    def check(value: Any) -> Any:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        if not any(x.strip() for item in items for x in str(item).split(",")):
            raise _bad(flag, f"{value!r} names nothing; give e.g. {flag} {example}, or leave the flag out")
        return value
    return check


EXCLUSIVE = {"--tokens-per-param": ("--tokens", "--compute")}
"""Flags that say the same thing another way: given together, one would be ignored silently."""


def _exclusive(flag: str, check: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """A typer callback that applies `check`, then refuses `flag` beside a flag that
    `EXCLUSIVE` pairs it with, whichever click parses first (each records itself in ctx.meta)."""
    def callback(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        value = value if check is None else check(value)
        given = ctx.meta.setdefault("forecast.given", set())
        source = ctx.get_parameter_source(param.name) if param.name else None
        if value is not None and source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.add(flag)
        pairs = set(EXCLUSIVE.get(flag, ())) | {k for k, v in EXCLUSIVE.items() if flag in v}
        clash = sorted(pairs & given)
        if flag in given and clash:
            raise UsageError(f"give {flag} or {clash[0]}, not both: the one would be ignored")
        return value
    return callback


def choice_check(flag: str, choices: tuple[str, ...], noun: str = "value") -> Callable[[Any], Any]:
    """For words from a fixed list: `--by seed: unknown key; use recipe or family`."""
    def check(value: Any) -> Any:
        if value is not None and value not in choices:
            raise UsageError(f"{flag} {value}: unknown {noun}; use {' or '.join(choices)}")
        return value
    return check


def required(value: Any, flag: str, hint: str) -> Any:
    if value is None:
        raise UsageError(f"{flag} is required: {hint}")
    return value


def positive_int(value: int | None, flag: str, example: str) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"{flag} {value}: give a positive whole number, e.g. {flag} {example}")
    return value


def output_file(path: Path | None, flag: str = "--plot", force: bool = False) -> Path | None:
    """A file we may write (checked before any work, nothing created; the rule of
    `forecast.io.check_output_file`): a new file, or one forecast wrote, or any regular file
    with `--force`; never a directory or a device."""
    if path is None:
        return None
    from forecast.io import check_output_file

    if str(path) in ("", "."):
        raise UsageError(f"{flag}: empty file name; give a file such as forecast.png")
    try:
        check_output_file(path, flag, force=force)
    except DataError as exc:
        raise UsageError(f"{flag} {path}: {exc.problem}; fix: {exc.fix}") from None
    return path


def output_dir(path: Path, flag: str = "--out", marker: str | None = None, force: bool = False) -> Path:
    """A directory we may write into (checked before any work; nothing is created); with
    `marker`, an existing folder must hold it (be forecast's own) unless `force`."""
    from forecast.io import check_output_dir

    return check_output_dir(path, flag, marker=marker, force=force)


# ---------------------------------------------------------------------------- shared options

FitsDir = Annotated[Path, typer.Option("--fits", help="Directory of fits written by `forecast fit`.")]
FamilyOpt = Annotated[str | None, typer.Option("--family", help="Which family, when the fits or runs hold several.")]
RecipeOpt = Annotated[str | None, typer.Option("--recipe", help="Which data recipe, when there are several.")]
SkillOpt = Annotated[list[str] | None, typer.Option("--skill", help="Skill (repeatable, case-insensitive) or `all`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (README, 'JSON output').")]
IntervalOpt = Annotated[float, typer.Option(
    "--interval", callback=probability_check("--interval"), help="Central probability of the intervals, in (0, 1).")]
ThresholdOpt = Annotated[float | None, typer.Option(
    "--threshold", callback=probability_check("--threshold", "0.5"),
    help="Accuracy that counts as grokked, in (0, 1) (default: half way from floor to plateau).")]
TargetOpt = Annotated[float | None, typer.Option(
    "--target", callback=probability_check("--target", "0.6"),
    help="Accuracy to reach (with --skill), in (0, 1): smallest compute that gets there.")]
DrawsOpt = Annotated[int, typer.Option(
    "--draws", callback=at_least("--draws", MIN_DRAWS, "400", MAX_DRAWS),
    help=f"Bootstrap draws per candidate law ({MIN_DRAWS} to {MAX_DRAWS:,}).")]
SeedOpt = Annotated[int, typer.Option("--seed", callback=seed_check(), help="Seed of the bootstrap (fits are reproducible).")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Replace an existing --plot/--out file that forecast did not write (README 'Errors and notes').")]
TokensPerParamOpt = Annotated[float | None, typer.Option(
    "--tokens-per-param", callback=_exclusive("--tokens-per-param", positive_check("--tokens-per-param", "20")),
    help="Training tokens per parameter when neither --tokens nor --compute is given "
    "(default: the runs' own ratio when they share one, else 20).")]
PlanTokensPerParamOpt = Annotated[float, typer.Option(
    "--tokens-per-param", callback=positive_check("--tokens-per-param", "20"),
    help="Compute-optimal tokens per parameter.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Also write a PNG figure to this file.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", callback=at_least("--threads", 1, "1"), help="CPU threads for torch (default: one per core; fits use 1).")]


def size_option(flag: str, help: str, **extra: Any) -> Any:
    """A size, tokens or FLOPs option (`70B`, `2T`, `1e24`), parsed and checked as it is read."""
    return typer.Option(flag, parser=quantity(flag), metavar="NUMBER", help=help, callback=_exclusive(flag), **extra)
