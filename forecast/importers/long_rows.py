"""The rows of a long table (`forecast.importers.long`): columns, row filters, and each
chosen row parsed and checked, with errors naming file, line and column."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import DataError, UsageError
from forecast.importers.table_io import Table, number, read_table

DEFAULT_LOSS_METRICS = ("loss", "nll", "bpb", "ppl", "perplexity")
"""Metric names read as a task loss (lower is better), in order of preference."""
DEFAULT_ERROR_METRICS = ("error", "error_rate", "err", "1-acc")
"""Metric names read as an error rate (accuracy = 1 − value)."""
PERPLEXITY_METRICS = ("ppl", "perplexity")
"""Loss metrics given as perplexity: the loss is ln(ppl), nats per token."""


@dataclass(frozen=True)
class LongColumns:
    """Column names. None for an optional column means: use its usual name when present.

    A name given explicitly must exist in the header."""

    model: str = "model"
    step: str | None = None  # usual name "step"; absent or empty: the model's final checkpoint
    task: str = "task"
    metric: str = "metric"
    value: str = "value"
    params: str = "params"
    family: str | None = None  # usual name "family"
    tokens: str | None = None  # usual name "tokens"; else step × tokens_per_step
    flops: str | None = None  # usual name "flops"; else 6 · params · tokens
    stderr: str | None = None  # usual name "stderr"
    n: str | None = None  # usual name "n" (evaluation sample count)
    shots: str | None = None  # usual name "shots"
    chance: str | None = None  # usual name "chance" (random-guess accuracy of the task)


@dataclass(frozen=True)
class Row:
    """One chosen row, parsed. `step` None: the model's final checkpoint (an empty step)."""

    line: int
    model: str
    family: str
    params: float
    step: int | None
    tokens: float
    flops: float | None
    task: str
    metric: str
    value: float
    stderr: float | None
    n: float | None
    chance: float | None
    final: bool = False  # the step was empty (placed after the model's last numbered step)


def loss_value(metric: str, value: float) -> float:
    """The task loss a loss-like row gives: ln(ppl) for a perplexity, else the value."""
    return math.log(value) if metric in PERPLEXITY_METRICS else value


def read_rows(path: str | Path, columns: LongColumns, kinds: Mapping[str, str], shots: int | None,
              where: Mapping[str, str], tokens_per_step: float | None, family: str
              ) -> tuple[Table, list[Row], list[str], set[str]]:
    """The table, its rows with a chosen metric (`kinds`: metric -> "accuracy", "error" or
    "loss") that pass `shots` and `where`, parsed; the models and tasks of the rows that
    pass the filters (for notes on what was left out)."""
    table = read_table(path)
    index = {field: table.column(getattr(columns, field), f"`{field}_column`")
             for field in ("model", "task", "metric", "value", "params")}
    for field in ("step", "family", "tokens", "flops", "stderr", "n", "shots", "chance"):
        index[field] = table.optional_column(getattr(columns, field), field, f"`{field}_column`")
    filters = {table.column(name, "`where`"): value for name, value in where.items()}
    if index["tokens"] is None and (tokens_per_step is None or index["step"] is None):
        raise DataError(table.path, "tokens", "no tokens column", "name it with `tokens_column`"
                        + (" or pass `tokens_per_step`" if index["step"] is not None else
                           " (without a step column every row is a final checkpoint, which needs its tokens)"), line=1)
    if shots is not None and index["shots"] is None:
        raise DataError(table.path, "shots", "no shots column to choose `shots` from",
                        "name it with `shots_column`, or leave out `shots`", line=1)
    rows, models, tasks = [], {}, set()
    for line, cells in table:
        if any(cells[i] != value for i, value in filters.items()):
            continue
        models.setdefault(cells[index["model"]], None)
        tasks.add(cells[index["task"]])
        metric = cells[index["metric"]]
        if metric not in kinds:
            continue
        if shots is not None:
            shot = number(table, line, table.header[index["shots"]], cells[index["shots"]], minimum=0, integer=True)
            if shot != shots:
                continue
        rows.append(_parse(table, line, cells, index, metric, kinds[metric], tokens_per_step, family))
    return table, rows, [m for m in models if m], tasks


def _parse(table: Table, line: int, cells: tuple[str, ...], index: Mapping[str, int | None], metric: str, kind: str,
           tokens_per_step: float | None, family: str) -> Row:
    def cell(field: str, **limits: float) -> float | None:
        i = index[field]
        return None if i is None else number(table, line, table.header[i], cells[i], **limits)

    def required(field: str, value: float | None) -> float:
        if value is None:
            raise DataError(table.path, table.header[index[field]], f"empty {field} cell", f"fill in the {field}",
                            line=line)
        return value

    step = cell("step", minimum=0, integer=True)
    params = required("params", cell("params", minimum=0))
    if kind == "loss":
        value = required("value", cell("value", minimum=0))
        if metric in PERPLEXITY_METRICS and value <= 0:
            raise DataError(table.path, table.header[index["value"]], f"perplexity {value:g} is not positive",
                            "a perplexity is >= 1", line=line)
    else:
        what = "an error rate" if kind == "error" else "accuracy"
        value = required("value", cell("value", minimum=0, maximum=1,
                                       fix=f"give {what} as a fraction (0.42, not 42)"))
    if not params:
        raise DataError(table.path, table.header[index["params"]], "zero parameter count",
                        "give the model's parameter count", line=line)
    tokens = cell("tokens", minimum=0)
    if tokens is None:
        if step is None:
            where = "an empty step (the final checkpoint)" if index["step"] is not None else "no step column"
            raise DataError(table.path, table.header[index["tokens"]] if index["tokens"] is not None else "tokens",
                            f"empty tokens cell with {where}", "give the training tokens the model saw", line=line)
        if tokens_per_step is None:
            raise DataError(table.path, table.header[index["tokens"]], "empty tokens cell",
                            "fill in the tokens seen, or pass `tokens_per_step`", line=line)
        tokens = step * tokens_per_step
    model, task = cells[index["model"]], cells[index["task"]]
    if not model or not task:
        raise DataError(table.path, table.header[index["model"] if not model else index["task"]], "empty cell",
                        "every row needs its model and task", line=line)
    chance = cell("chance", minimum=0, maximum=1, fix="give the task's random-guess accuracy as a fraction in [0, 1)")
    if chance is not None and chance >= 1:
        raise DataError(table.path, table.header[index["chance"]], "chance level 1", "a chance level lies in [0, 1)",
                        line=line)
    fam = cells[index["family"]] if index["family"] is not None else family
    return Row(line, model, fam or family, params, None if step is None else int(step), tokens, cell("flops", minimum=0),
               task, metric, value, cell("stderr", minimum=0), cell("n", minimum=1),
               chance if kind != "loss" else None, final=step is None)


def parse_where(items: list[str]) -> dict[str, str]:
    """`--where COLUMN=VALUE` flags as a dict (a row is kept when every column holds its value)."""
    out = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise UsageError(f"`where`: expected COLUMN=VALUE, got {item!r}; write e.g. `where='excluded_in_epoch_fit=0'`",
                             parameter="where")
        out[column.strip()] = value.strip()
    return out
