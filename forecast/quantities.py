"""One parser and formatter for model sizes (parameters), token counts and FLOPs.

Accepted: plain numbers (`7e10`, `2.5e9`, `410000000`), and a number with a case-insensitive
suffix K (1e3), M (1e6), B or G (1e9), T (1e12), P (1e15): `70B`, `410m`, `1.4T`.
Underscores and commas as digit separators are allowed (`2_000_000`, `2,097,152`).
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

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}
_PATTERN = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?|\.[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgtp]?)\s*$", re.I)


def parse_quantity(text: str | float | int, *, what: str = "quantity") -> float:
    """Parse `70B`, `410M`, `1.4T`, `6e23` or a number into a positive float.

    `what` names the quantity in the error message (e.g. "`params`", which the CLI shows as its flag).
    Raises `UsageError` for anything else, naming the accepted forms.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _PATTERN.match(str(text))
        if not match:
            raise UsageError(
                f"{what}: cannot read {str(text)!r} as a number; "
                "use a number like 7e10 or a suffix K/M/B/T like 70B, 410M, 1.4T"
            )
        number, suffix = match.groups()
        value = float(number.replace("_", "").replace(",", "")) * _SUFFIX[suffix.lower()]
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what}: must be a positive finite number, got {text!r}")
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
