"""Check a JSON value against a written shape (a TypedDict of the contract), recursively.

`check(value, shape)` lists every way `value` departs from `shape`: a missing or unknown
key, a wrong type, a non-finite number. Shapes are read from their annotations, so a new
TypedDict needs no code here. What it reads: TypedDict (every key present unless
`NotRequired`, no other key), `X | None`, `list[X]`, `dict[str, X]`, `str`, `bool`,
`int` (not bool), `float` (int or float, finite), `Any` (anything; numbers still finite).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, NotRequired, Union, get_args, get_origin, get_type_hints

from forecast.schema.documents import KINDS
from forecast.schema.outputs import OUTPUT_FORMAT


def _fields(shape: type) -> tuple[dict[str, Any], set[str]]:
    """(key -> type, optional keys) of a TypedDict, its bases included."""
    hints = get_type_hints(shape, include_extras=True)
    optional = {k for k, t in hints.items() if get_origin(t) is NotRequired}
    optional |= set(getattr(shape, "__optional_keys__", ()))
    return {k: (get_args(t)[0] if get_origin(t) is NotRequired else t) for k, t in hints.items()}, optional


def _is_typeddict(shape: Any) -> bool:
    return isinstance(shape, type) and typing.is_typeddict(shape)


def check(value: Any, shape: Any, where: str = "$") -> list[str]:
    """Every departure of `value` from `shape`, as "path: problem" lines (empty: it conforms)."""
    if shape is Any:
        return _finite_everywhere(value, where)
    origin = get_origin(shape)
    if origin in (Union, types.UnionType):
        options = get_args(shape)
        if value is None and type(None) in options:
            return []
        tried = [check(value, option, where) for option in options if option is not type(None)]
        return [] if any(not t for t in tried) else min(tried, key=len)
    if shape is type(None):
        return [] if value is None else [f"{where}: expected null, got {type(value).__name__}"]
    if _is_typeddict(shape):
        if not isinstance(value, dict):
            return [f"{where}: expected an object ({shape.__name__}), got {type(value).__name__}"]
        fields, optional = _fields(shape)
        problems = [f"{where}: missing key {k!r} ({shape.__name__})" for k in fields if k not in value
                    and k not in optional]
        problems += [f"{where}: unknown key {k!r} (not in {shape.__name__})" for k in value if k not in fields]
        for key, field in fields.items():
            if key in value:
                problems += check(value[key], field, f"{where}.{key}")
        return problems
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        (item,) = get_args(shape) or (Any,)
        return [p for i, v in enumerate(value) for p in check(v, item, f"{where}[{i}]")]
    if origin is dict or shape is dict:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        key_type, item = get_args(shape) or (str, Any)
        problems = [f"{where}: key {k!r} is not a string" for k in value if not isinstance(k, str)]
        return problems + [p for k, v in value.items() for p in check(v, item, f"{where}.{k}")]
    if shape is bool:
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean, got {value!r}"]
    if shape is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else \
            [f"{where}: expected an integer, got {value!r}"]
    if shape is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{where}: expected a number, got {value!r}"]
        return [] if math.isfinite(value) else [f"{where}: {value} is not a finite number"]
    if shape is str:
        return [] if isinstance(value, str) else [f"{where}: expected a string, got {value!r}"]
    return [f"{where}: the shape {shape!r} is not one this checker reads"]


def _finite_everywhere(value: Any, where: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value} is not a finite number"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _finite_everywhere(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _finite_everywhere(v, f"{where}[{i}]")]
    return []


def check_document(document: Any) -> list[str]:
    """Every departure of a printed `--json` document from its envelope and its kind's shape."""
    if not isinstance(document, dict):
        return [f"$: expected an object, got {type(document).__name__}"]
    problems = [] if document.get("format") == OUTPUT_FORMAT else [f"$.format: expected {OUTPUT_FORMAT}"]
    kind = document.get("kind")
    if kind not in KINDS:
        return problems + [f"$.kind: {kind!r} is not a kind of forecast.schema.documents.KINDS"]
    payload = {k: v for k, v in document.items() if k not in ("format", "kind")}
    return problems + check(payload, KINDS[kind])
