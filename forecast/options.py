"""Option values the CLI and the library share, read without the numerical stack.

Defaults and the grammars of option values live here once, so that the CLI checks a value
as it parses it (a typo fails before torch loads) with the same rule, and the same words,
as the library that uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import UsageError
from forecast.quantities import parse_quantity

DEFAULT_DRAWS = 400
"""Bootstrap draws per candidate law (`FitOptions.draws`, the CLI's `--draws`)."""

BY_KEYS = ("recipe", "family")
"""What `compare` compares groups by."""
MEASURES = ("tokens", "examples", "flops")
"""Units of speed of grokking: training tokens, training examples (sequences), or FLOPs."""

HOLDOUT_RULES = "largest, largest:K (K >= 1) or params>=X (e.g. params>=1B)"


@dataclass(frozen=True)
class HoldoutRule:
    """Which sizes a backtest holds out: the `largest` K sizes, or every size of at least
    `min_params` parameters (exactly one of the two is set)."""

    largest: int | None = None
    min_params: float | None = None


def parse_holdout(rule: str) -> HoldoutRule:
    """Read a hold-out rule: `largest`, `largest:K` or `params>=X` (X as `parse_quantity`)."""
    if match := re.fullmatch(r"largest(?::(\d+))?", rule):
        k = 1 if match.group(1) is None else int(match.group(1))
        if k < 1:
            raise UsageError(f"`holdout`: cannot read {rule!r}; use {HOLDOUT_RULES}", parameter="holdout")
        return HoldoutRule(largest=k)
    if match := re.fullmatch(r"params>=(.+)", rule):
        return HoldoutRule(min_params=parse_quantity(match.group(1), what="`holdout='params>=X'`"))
    raise UsageError(f"`holdout`: cannot read {rule!r}; use {HOLDOUT_RULES}", parameter="holdout")


DESIGN_SUFFIXES = (".csv", ".toml", ".json")
"""What a designed ladder is written as: a table of (N, D) runs, or a pilot config."""


def design_output_suffix(path: str | Path, parameter: str = "path") -> str:
    """The suffix of a file to write a design to, lower-cased; a `UsageError` for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in DESIGN_SUFFIXES:
        raise UsageError(f"`{parameter}={str(path)!r}`: write a .csv table of (N, D) runs, or a .toml/.json "
                         "pilot config", parameter=parameter)
    return suffix
