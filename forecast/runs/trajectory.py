"""Reading `trajectory.csv`: a row parser (each cell checked on its own), then grouping
rows into one `Series` per skill. The file's rules are `forecast.io.read_csv`'s (trimmed
cells, no NUL, bounded fields) and the format's columns (`forecast.schema.outputs`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import DataError
from forecast.io import MAX_INTEGER, read_csv
from forecast.quantities import FLOPS_PER_PARAM_TOKEN
from forecast.runs.model import Series, make_series
from forecast.schema.outputs import TRAJECTORY_COLUMNS, TRAJECTORY_REQUIRED

_OPTIONAL = ", ".join(c for c in TRAJECTORY_COLUMNS if c not in TRAJECTORY_REQUIRED)


@dataclass(frozen=True)
class _Row:
    """One parsed data row of trajectory.csv."""

    line: int
    skill: str
    step: int
    tokens: float | None
    flops: float | None
    accuracy: float | None
    loss: float | None
    prob: float | None
    stderr: float | None
    n: float | None
    chance: float | None
    ceiling: float | None


def read_trajectory(path: Path, params: float) -> dict[str, Series]:
    """Parse trajectory.csv into one `Series` per skill: a row parser, then grouping."""
    header, data = read_csv(path, what="trajectory.csv", fix="a run directory holds run.json and trajectory.csv")
    if not header:
        raise DataError(path, None, "empty file", f"the first line must be the header: {','.join(TRAJECTORY_COLUMNS)}")
    missing = [c for c in TRAJECTORY_REQUIRED if c not in header]
    if missing:
        raise DataError(path, missing[0], "required column missing from the header",
                        f"the header needs {', '.join(TRAJECTORY_REQUIRED)} (optional: {_OPTIONAL})", line=1)
    unknown = [c for c in header if c not in TRAJECTORY_COLUMNS]
    if unknown:
        raise DataError(path, unknown[0], "unknown column", f"known columns are {', '.join(TRAJECTORY_COLUMNS)}", line=1)
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise DataError(path, twice[0], "column given twice in the header", "keep one of them", line=1)
    index = {c: header.index(c) for c in TRAJECTORY_COLUMNS if c in header}
    rows = []
    for line, cells in data:
        if len(cells) != len(header):
            raise DataError(path, None, f"expected {len(header)} cells, found {len(cells)}",
                            "every row needs one cell per header column", line=line)
        rows.append(_parse_row(path, line, cells, index))
    if not rows:
        raise DataError(path, None, "no data rows", "add one row per checkpoint and skill")
    return _group_rows(path, rows, params)


def _parse_row(path: Path, line: int, cells: list[str], index: dict[str, int]) -> _Row:
    """One row's cells as numbers, each checked on its own (range, NaN, integer step)."""

    def cell(col: str, *, required: bool = False, integer: bool = False) -> float | None:
        if col not in index:
            return None
        raw = cells[index[col]].strip()
        if raw == "":
            if required:
                raise DataError(path, col, "empty cell", f"give a value for {col}", line=line)
            return None
        try:
            value = float(raw)
        except ValueError:
            raise DataError(path, col, f"cannot read {raw!r} as a number", f"{col} must be numeric", line=line) from None
        if math.isnan(value):
            raise DataError(path, col, "NaN value", "leave the cell empty or give a number", line=line)
        if integer and math.isfinite(value) and value != int(value):
            raise DataError(path, col, f"expected an integer, got {raw!r}", f"{col} must be a whole number", line=line)
        if integer and not (math.isfinite(value) and abs(value) <= MAX_INTEGER):
            raise DataError(path, col, f"{raw} is larger than a whole number can be here (2**63 - 1)",
                            f"check the {col} column", line=line)
        return value

    skill = cells[index["skill"]].strip()
    if not skill:
        raise DataError(path, "skill", "empty skill name", "name the skill on every row", line=line)
    row = _Row(line=line, skill=skill, step=int(cell("step", required=True, integer=True)), tokens=cell("tokens"),
               flops=cell("flops"), accuracy=cell("accuracy"), loss=cell("loss"), prob=cell("prob"),
               stderr=cell("stderr"), n=cell("n"), chance=cell("chance"), ceiling=cell("ceiling"))
    for col in ("tokens", "flops", "step"):
        value = getattr(row, col)
        if value is not None and (value < 0 or math.isinf(value)):
            raise DataError(path, col, f"{col} must be finite and >= 0, got {value}", f"fix the {col} value", line=line)
    if row.accuracy is not None and not 0 <= row.accuracy <= 1:
        raise DataError(path, "accuracy", f"accuracy {row.accuracy} outside [0, 1]",
                        "give accuracy as a fraction (0.42, not 42)", line=line)
    if row.prob is not None and not 0 <= row.prob <= 1:
        raise DataError(path, "prob", f"answer probability {row.prob} outside [0, 1]",
                        "give the mean probability of the correct answer as a fraction", line=line)
    if row.accuracy is None and row.loss is None:
        raise DataError(path, "accuracy", "neither accuracy nor loss given",
                        "a row needs an accuracy (a skill) or a loss (a metric)", line=line)
    if row.accuracy is not None and row.chance is None:
        raise DataError(path, "chance", "empty chance level on a row with accuracy",
                        "0 for exact-match generation, 1/k for k-way multiple choice", line=line)
    return row


def _group_rows(path: Path, rows: Sequence[_Row], params: float) -> dict[str, Series]:
    """Rows grouped into one `Series` per skill; a skill keeps one chance and ceiling, and
    gives accuracy on all of its rows or on none."""
    by_skill: dict[str, list[_Row]] = {}
    for row in rows:
        first = by_skill.setdefault(row.skill, [row])[0]
        if row is not first:
            if (first.chance, first.ceiling) != (row.chance, row.ceiling):
                raise DataError(path, "chance", f"skill '{row.skill}' changes its chance or ceiling between rows",
                                "give one chance (and ceiling) per skill", line=row.line)
            by_skill[row.skill].append(row)
    series = {}
    for skill, items in by_skill.items():
        has_acc = [r.accuracy is not None for r in items]
        if any(has_acc) and not all(has_acc):
            raise DataError(path, "accuracy", f"skill '{skill}' has accuracy on some rows but not others",
                            "give accuracy on every row of a skill (or on none, for a loss-only metric)",
                            line=items[has_acc.index(False)].line)

        def column(name: str) -> list[float] | None:
            values = [getattr(r, name) for r in items]
            if all(v is None for v in values):
                return None
            return [math.nan if v is None else v for v in values]

        tokens = [math.nan if r.tokens is None else r.tokens for r in items]
        flops = column("flops")
        if flops is not None:  # fill a missing cell from 6ND
            flops = [FLOPS_PER_PARAM_TOKEN * params * t if math.isnan(f) else f for f, t in zip(flops, tokens)]
        series[skill] = make_series(
            skill, [r.step for r in items], tokens, flops=flops, params=params,
            accuracy=column("accuracy"), loss=column("loss"), prob=column("prob"), stderr=column("stderr"),
            n=column("n"), chance=items[0].chance, ceiling=items[0].ceiling,
        )
    return series
