"""One parser and formatter for model sizes (parameters), token counts and FLOPs.

The grammar (every flag and table cell that takes a size, a token count or FLOPs):

    quantity := number [suffix]        no space between them; spaces around the whole are ignored
    number   := digits [. digits] [e [+|-] digits]   or   . digits [e ...]
    suffix   := K (1e3) | M (1e6) | B (1e9) | T (1e12)   upper or lower case

So `70B` is 7e10, `410m` 4.1e8, `1.4T` 1.4e12, `7e10` and `70000000000` themselves.
Refused, with the accepted forms in the message: a space inside (`70 B`), other suffixes
(`70G`: G is giga in FLOPs but billion is B here, so it is ambiguous; `P`, `billion`), digit
separators (`1_000`, `70,000,000,000`: commas are also decimal marks), signs, NaN and
infinity, and values below 1 (a model has at least one parameter; a run sees at least one
token).
"""

from __future__ import annotations

import math
import re

from forecast.errors import UsageError

FLOPS_PER_PARAM_TOKEN = 6.0
"""Training FLOPs per parameter per token when a run does not give its FLOPs: the 6ND rule
(2 forward + 4 backward multiply-adds per parameter per token; Kaplan et al. 2020, sec. 2.1)."""
TOKENS_PER_PARAM = 20.0
"""Compute-optimal training tokens per parameter (Hoffmann et al. 2022, table 3), the default
training length when neither the runs nor the user say otherwise."""

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_PATTERN = re.compile(r"\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)([kmbt]?)\s*", re.I)
ACCEPTED_FORMS = "a plain number like 7e10 or 410000000, or a number with K, M, B or T right after it: 70B, 410M, 1.4T"


def _why_not(text: str) -> str:
    """What is wrong with a size that the grammar refuses, in a few words."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    if re.search(r"[0-9][_,][0-9]", stripped):
        return "digit separators (_ or ,) are not read"
    if re.fullmatch(r"[0-9.e+-]+\s+[a-z]+", stripped, re.I):
        return "no space between the number and its suffix"
    if re.fullmatch(r"[0-9.e+-]+[a-z]+", stripped, re.I):
        return "unknown suffix (G and P are not used: write B for billions)"
    if stripped.startswith("-"):
        return "negative"
    return "not a number"


def parse_quantity(text: str | float | int, *, what: str = "quantity", minimum: float = 1.0) -> float:
    """Parse `70B`, `410M`, `1.4T`, `6e23` or a number into a float >= `minimum` (1 by
    default: one parameter, one token, one FLOP), by the grammar in the module docstring.

    `what` names the quantity in the error message (e.g. "`params`", which the CLI shows as
    its flag). Raises `UsageError` for anything else, naming the accepted forms.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _PATTERN.fullmatch(str(text))
        if not match:
            raise UsageError(f"{what}: cannot read {str(text)!r} ({_why_not(str(text))}); use {ACCEPTED_FORMS}")
        number, suffix = match.groups()
        value = float(number) * _SUFFIX[suffix.lower()]
    if not math.isfinite(value) or value < minimum:
        floor = "positive" if minimum <= 0 else f"at least {minimum:g}"
        raise UsageError(f"{what}: must be a finite number {floor}, got {text!r}; use {ACCEPTED_FORMS}")
    return value


def format_count(value: float | None, digits: int = 3) -> str:
    """Format a parameter or token count with a suffix: 7e10 -> '70B', 2.1e12 -> '2.1T'."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 1e15:  # past T, a suffix would read "1e+28T": plain scientific notation
        return f"{value:.{digits}g}"
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def format_flops(value: float | None, digits: int = 2) -> str:
    """Format FLOPs in scientific notation: 1.234e24 -> '1.2e+24'."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits - 1}e}"
