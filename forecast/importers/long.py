"""Import a tidy (long) evaluation table: one row per model × checkpoint × task × metric,
as `pythia_evals.csv`. One run per model.

Rows are chosen by metric (a preference list: each task uses the first metric it reports)
and by shots. Perplexity rows (`ppl`, `perplexity`) become the task's loss as ln(ppl),
nats per token, lower is better. Tasks with neither a chosen metric nor a perplexity are
left out, and so are models with no selected rows (each with a `SkippedWarning`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from forecast.errors import DataError, UsageError
from forecast.importers.common import (
    Point, build_run, check_overrides_used, describe_sources, note_skipped, sanitize_run_name,
)
from forecast.importers.table_io import Table, number, read_table
from forecast.runs import Recipe, Run

PERPLEXITY_METRICS = ("ppl", "perplexity")


@dataclass(frozen=True)
class LongColumns:
    """Column names. None for an optional column means: use its usual name when present.

    A name given explicitly must exist in the header."""

    model: str = "model"
    step: str = "step"
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


@dataclass(frozen=True)
class _Row:
    line: int
    model: str
    family: str
    params: float
    step: int
    tokens: float | None
    flops: float | None
    task: str
    metric: str
    value: float
    stderr: float | None
    n: float | None


def import_long(
    path: str | Path,
    *,
    columns: LongColumns = LongColumns(),
    metrics: Sequence[str] = ("acc",),
    shots: int | None = None,
    tokens_per_step: float | None = None,
    family: str = "default",
    recipe: Recipe | None = None,
    params_kind: str = "unknown",
    chance: Mapping[str, float] | None = None,
) -> list[Run]:
    """Read a long table as one run per model.

    `metrics`: accuracy metrics in order of preference (`acc`, `acc_norm`, ...). `shots`:
    keep only rows with this many few-shot examples. Parameters come from `columns.params`
    (say which count with `params_kind`); tokens from the tokens column or
    `step × tokens_per_step`; the family from the family column, else `family`.
    """
    if not metrics:
        raise UsageError("--metric: give at least one accuracy metric, e.g. --metric acc")
    table = read_table(path)
    rows = _select(table, columns, set(metrics), shots, tokens_per_step, family)
    chance = dict(chance or {})
    runs = []
    by_model: dict[str, list[_Row]] = {}
    for row in rows:
        by_model.setdefault(row.model, []).append(row)
    model_i, task_i = table.column(columns.model, "--model-column"), table.column(columns.task, "--task-column")
    metric_i = table.column(columns.metric, "--metric-column")
    missing = [m for m in dict.fromkeys(cells[model_i] for _, cells in table) if m not in by_model]
    left_out = sorted({cells[task_i] for _, cells in table} - {row.task for row in rows})
    if not by_model:
        raise DataError(table.path, columns.metric, f"no rows with metric {' or '.join(metrics)}"
                        + ("" if shots is None else f" and shots {shots}"),
                        f"choose rows that exist with --metric and --shots; metrics in the file: "
                        f"{', '.join(sorted({cells[metric_i] for _, cells in table}))}")
    if missing:
        note_skipped(f"{table.path}: no rows with metric {'/'.join(metrics)}"
                     + ("" if shots is None else f" and shots {shots}")
                     + f" for {len(missing)} models, left out: {', '.join(missing)}")
    if left_out:
        note_skipped(f"{table.path}: tasks without metric {'/'.join(metrics)} left out: {', '.join(left_out)}")
    for model, model_rows in by_model.items():
        runs.append(_model_run(table, model, model_rows, metrics, shots, chance, recipe, params_kind, columns))
    check_overrides_used(chance, runs)
    return runs


def _select(table: Table, columns: LongColumns, metrics: set[str], shots: int | None,
            tokens_per_step: float | None, family: str) -> list[_Row]:
    """The rows with a chosen metric (or a perplexity) and the chosen shots, parsed."""
    index = {
        field: table.column(getattr(columns, field), f"--{field}-column")
        for field in ("model", "step", "task", "metric", "value", "params")
    }
    for field in ("family", "tokens", "flops", "stderr", "n", "shots"):
        index[field] = table.optional_column(getattr(columns, field), field, f"--{field}-column")
    if index["tokens"] is None and tokens_per_step is None:
        raise DataError(table.path, "tokens", "no tokens column", "name it with --tokens-column or pass --tokens-per-step",
                        line=1)
    if shots is not None and index["shots"] is None:
        raise DataError(table.path, "shots", "no shots column to choose --shots from",
                        "name it with --shots-column, or leave out --shots", line=1)
    rows = []
    for line, cells in table:
        metric = cells[index["metric"]]
        if metric not in metrics and metric not in PERPLEXITY_METRICS:
            continue
        if shots is not None:
            shot = number(table, line, table.header[index["shots"]], cells[index["shots"]], minimum=0, integer=True)
            if shot != shots:
                continue

        def cell(field: str, **limits: float) -> float | None:
            i = index[field]
            return None if i is None else number(table, line, table.header[i], cells[i], **limits)

        step = cell("step", minimum=0, integer=True)
        params = cell("params", minimum=0)
        value = cell("value", minimum=0, **({} if metric in PERPLEXITY_METRICS else {"maximum": 1}),
                     fix=None if metric in PERPLEXITY_METRICS else "give accuracy as a fraction (0.42, not 42)")
        for field, v in (("step", step), ("params", params), ("value", value)):
            if v is None:
                raise DataError(table.path, table.header[index[field]], f"empty {field} cell", f"fill in the {field}",
                                line=line)
        if not params:
            raise DataError(table.path, table.header[index["params"]], "zero parameter count",
                            "give the model's parameter count", line=line)
        tokens = cell("tokens", minimum=0)
        if tokens is None:
            if tokens_per_step is None:
                raise DataError(table.path, table.header[index["tokens"]], "empty tokens cell",
                                "fill in the tokens seen, or pass --tokens-per-step", line=line)
            tokens = step * tokens_per_step
        model = cells[index["model"]]
        task = cells[index["task"]]
        if not model or not task:
            raise DataError(table.path, columns.model if not model else columns.task, "empty cell",
                            "every row needs its model and task", line=line)
        fam = cells[index["family"]] if index["family"] is not None else family
        if metric in PERPLEXITY_METRICS and value <= 0:
            raise DataError(table.path, table.header[index["value"]], f"perplexity {value:g} is not positive",
                            "a perplexity is >= 1", line=line)
        rows.append(_Row(line, model, fam or family, params, int(step), tokens, cell("flops", minimum=0), task, metric,
                         value, cell("stderr", minimum=0), cell("n", minimum=1)))
    return rows


def _model_run(table: Table, model: str, rows: list[_Row], metrics: Sequence[str], shots: int | None,
               chance: Mapping[str, float], recipe: Recipe | None, params_kind: str, columns: LongColumns) -> Run:
    first = rows[0]
    for row in rows:
        if row.params != first.params:
            raise DataError(table.path, columns.params, f"model {model!r} has params {row.params:g} here but "
                            f"{first.params:g} on line {first.line}", "give one parameter count per model", line=row.line)
        if row.family != first.family:
            raise DataError(table.path, columns.family or "family", f"model {model!r} changes family "
                            f"({first.family!r} on line {first.line})", "give one family per model", line=row.line)
    _check_tokens(table, model, rows)
    # each task's accuracy metric: the first preferred metric it reports
    chosen: dict[str, str] = {}
    for metric in reversed(metrics):
        for row in rows:
            if row.metric == metric:
                chosen[row.task] = metric
    points: dict[str, dict[int, Point]] = {}
    seen: dict[tuple[str, int, str], int] = {}
    for row in rows:
        if row.metric not in PERPLEXITY_METRICS and row.metric != chosen.get(row.task):
            continue
        key = (row.task, row.step, row.metric)
        if key in seen:
            raise DataError(table.path, columns.step, f"model {model!r} task {row.task!r} metric {row.metric!r} has "
                            f"step {row.step} twice (also line {seen[key]}): duplicate checkpoint",
                            "keep one row per checkpoint, or choose rows with --shots", line=row.line)
        seen[key] = row.line
        point = points.setdefault(row.task, {}).get(row.step, Point(row.step, row.tokens, row.flops))
        if row.metric in PERPLEXITY_METRICS:  # ln(ppl): nats per token, lower is better
            point = replace(point, loss=math.log(row.value))
        else:
            point = replace(point, accuracy=row.value, stderr=row.stderr, n=row.n)
        points[row.task][row.step] = point
    return build_run(
        file=table.path, name=sanitize_run_name(model), params=first.params,
        points={task: list(by_step.values()) for task, by_step in points.items()},
        chance=chance, family=first.family, recipe=recipe, params_kind=params_kind,
        metric_of=chosen, source=describe_sources("long", [table.path]),
        extra={"model": model, "metric": dict(sorted(chosen.items())), "shots": shots},
    )


def _check_tokens(table: Table, model: str, rows: list[_Row]) -> None:
    """One token count per checkpoint, growing with the step."""
    tokens_at: dict[int, _Row] = {}
    for row in rows:
        other = tokens_at.setdefault(row.step, row)
        if other.tokens != row.tokens:
            raise DataError(table.path, "tokens", f"model {model!r} step {row.step} has tokens {row.tokens:g} here "
                            f"but {other.tokens:g} on line {other.line}", "give one token count per checkpoint",
                            line=row.line)
    ordered = sorted(tokens_at.items())
    for (step_a, a), (step_b, b) in zip(ordered, ordered[1:]):
        if b.tokens < a.tokens:
            raise DataError(table.path, "tokens", f"model {model!r}: tokens decrease from {a.tokens:g} at step "
                            f"{step_a} to {b.tokens:g} at step {step_b} (non-monotone)",
                            "tokens seen must grow with the step", line=b.line)
