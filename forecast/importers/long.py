"""Import a tidy (long) evaluation table: one row per model × checkpoint × task × metric,
as `pythia_evals.csv` or an over-training ladder's release. One run per model.

Rows are read as papers release them (`long_rows` parses and checks them):
- **accuracy** metrics by preference (`acc`, `acc_norm`, ...): each task uses the first one
  it reports; **error-rate** metrics (`error`, `1-acc`, ...) count as accuracy = 1 − value,
  after every accuracy metric in preference;
- **loss-like** metrics (`loss`, `nll`, `bpb`, `ppl`, `perplexity`) give the task's loss,
  the first one a task reports: perplexity as ln(ppl) (nats per token), the others as they
  are. A task with a loss and no accuracy (validation loss on a named corpus) becomes a
  run-level metric: the intermediate of the two-step chain, and what `predict --metric
  loss` forecasts;
- an **empty step** (or no step column) is the model's final checkpoint, placed after its
  last numbered step, at the tokens its row gives;
- a **chance** column gives each task's chance level (a `--chance` flag overrides it).
What was converted is recorded in each run's `extra`. Tasks with no chosen metric and
models with no selected rows are left out, each with a `SkippedWarning`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from forecast.errors import DataError, UsageError
from forecast.importers.common import (
    Point, build_run, check_overrides_used, describe_sources, note_skipped, sanitize_run_name,
)
from forecast.importers.long_rows import (
    DEFAULT_ERROR_METRICS, DEFAULT_LOSS_METRICS, PERPLEXITY_METRICS, LongColumns, Row, loss_value, read_rows,
)
from forecast.importers.table_io import Table
from forecast.runs.model import Recipe, Run

__all__ = ["DEFAULT_ERROR_METRICS", "DEFAULT_LOSS_METRICS", "LongColumns", "import_long"]


def import_long(
    path: str | Path,
    *,
    columns: LongColumns = LongColumns(),
    metrics: Sequence[str] = ("acc",),
    loss_metrics: Sequence[str] = DEFAULT_LOSS_METRICS,
    error_metrics: Sequence[str] = DEFAULT_ERROR_METRICS,
    shots: int | None = None,
    where: Mapping[str, str] | None = None,
    tokens_per_step: float | None = None,
    family: str = "default",
    recipe: Recipe | None = None,
    params_kind: str = "unknown",
    chance: Mapping[str, float] | None = None,
) -> list[Run]:
    """Read a long table as one run per model.

    `metrics`: accuracy metrics in order of preference (`acc`, `acc_norm`, ...);
    `error_metrics`: error rates, read as 1 − accuracy, preferred after `metrics`;
    `loss_metrics`: task losses in order of preference (see module docstring). `shots`:
    keep only rows with this many few-shot examples; `where`: keep only rows whose column
    holds the value (`{"excluded_in_epoch_fit": "0"}`). Parameters come from
    `columns.params` (say which count with `params_kind`); tokens from the tokens column or
    `step × tokens_per_step`; the family from the family column, else `family`; chance
    levels from `chance` (overrides), else the chance column, else the known benchmarks.
    """
    if not metrics and not error_metrics and not loss_metrics:
        raise UsageError("`metrics`: give at least one metric to import, e.g. `metrics='acc'`", parameter="metrics")
    overlap = sorted(set(metrics) & set(error_metrics) | (set(metrics) | set(error_metrics)) & set(loss_metrics))
    if overlap:
        raise UsageError(f"metric {overlap[0]!r} is named as more than one kind (accuracy, error, loss); "
                         "name it once, in `metrics`, `error_metrics` or `loss_metrics`")
    chosen_kinds = {m: "accuracy" for m in metrics} | {m: "error" for m in error_metrics}
    chosen_kinds |= {m: "loss" for m in loss_metrics}
    table, rows, kept_models, all_tasks = read_rows(path, columns, chosen_kinds, shots, where or {}, tokens_per_step,
                                                    family)
    user_chance = dict(chance or {})
    by_model: dict[str, list[Row]] = {}
    for row in rows:
        by_model.setdefault(row.model, []).append(row)
    if not by_model:
        wanted = " or ".join([*metrics, *error_metrics, *loss_metrics])
        raise DataError(table.path, columns.metric, f"no rows with metric {wanted}"
                        + ("" if shots is None else f" and shots {shots}") + (" among the `where` rows" if where else ""),
                        f"choose rows that exist with `metrics` (or `loss_metrics`, `error_metrics`), `shots` and "
                        f"`where`; metrics in the file: {', '.join(sorted({cells[table.column(columns.metric, '`metric_column`')] for _, cells in table}))}")
    missing = [m for m in kept_models if m not in by_model]
    if missing:
        note_skipped(f"{table.path}: no rows with a chosen metric" + ("" if shots is None else f" and shots {shots}")
                     + f" for {len(missing)} models, left out: {', '.join(missing)}")
    left_out = sorted(all_tasks - {row.task for row in rows})
    if left_out:
        note_skipped(f"{table.path}: tasks without a chosen metric ({'/'.join([*metrics, *error_metrics])} or a loss "
                     f"{'/'.join(loss_metrics)}) left out: {', '.join(left_out)}")
    accuracy_order = [*metrics, *error_metrics]
    runs = [_model_run(table, model, model_rows, accuracy_order, list(loss_metrics), chosen_kinds, shots,
                       user_chance, recipe, params_kind, columns)
            for model, model_rows in by_model.items()]
    check_overrides_used(user_chance, runs)
    return runs


def _first_reported(rows: Sequence[Row], order: Sequence[str]) -> dict[str, str]:
    """Each task's first metric of `order` that it reports."""
    chosen: dict[str, str] = {}
    for metric in reversed(order):
        for row in rows:
            if row.metric == metric:
                chosen[row.task] = metric
    return chosen


def _model_run(table: Table, model: str, rows: list[Row], accuracy_order: Sequence[str], loss_order: Sequence[str],
               kinds: Mapping[str, str], shots: int | None, user_chance: Mapping[str, float], recipe: Recipe | None,
               params_kind: str, columns: LongColumns) -> Run:
    first = rows[0]
    for row in rows:
        if row.params != first.params:
            raise DataError(table.path, columns.params, f"model {model!r} has params {row.params:g} here but "
                            f"{first.params:g} on line {first.line}", "give one parameter count per model", line=row.line)
        if row.family != first.family:
            raise DataError(table.path, columns.family or "family", f"model {model!r} changes family "
                            f"({first.family!r} on line {first.line})", "give one family per model", line=row.line)
    rows = _place_final_rows(rows)
    _check_tokens(table, model, rows)
    accuracy_metric = _first_reported(rows, accuracy_order)
    loss_metric = _first_reported(rows, loss_order)
    points: dict[str, dict[int, Point]] = {}
    seen: dict[tuple[str, int, str], int] = {}
    for row in rows:
        kind = kinds[row.metric]
        if row.metric != (accuracy_metric if kind in ("accuracy", "error") else loss_metric).get(row.task):
            continue
        key = (row.task, row.step, row.metric)
        if key in seen:
            raise DataError(table.path, columns.step or "step", f"model {model!r} task {row.task!r} metric "
                            f"{row.metric!r} has step {row.step} twice (also line {seen[key]}): duplicate checkpoint",
                            "keep one row per checkpoint, or choose rows with `shots` or `where`", line=row.line)
        seen[key] = row.line
        point = points.setdefault(row.task, {}).get(row.step, Point(row.step, row.tokens, row.flops))
        if kind == "loss":
            point = replace(point, loss=loss_value(row.metric, row.value))
        else:
            accuracy = row.value if kind == "accuracy" else 1.0 - row.value
            point = replace(point, accuracy=accuracy, stderr=row.stderr, n=row.n)
        points[row.task][row.step] = point
    chance = _file_chance(table, model, rows, accuracy_metric) | dict(user_chance)
    extra = {"model": model, "metric": dict(sorted(accuracy_metric.items())), "shots": shots}
    errors = {t: f"accuracy = 1 - {m}" for t, m in sorted(accuracy_metric.items()) if kinds[m] == "error"}
    if errors:
        extra["converted"] = errors
    if loss_metric:
        extra["loss_metric"] = {t: {"metric": m, "as": _loss_unit(m)} for t, m in sorted(loss_metric.items())}
    if any(row.final for row in rows):
        extra["final_checkpoint"] = "rows with an empty step: the model's final checkpoint"
    return build_run(
        file=table.path, name=sanitize_run_name(model), params=first.params,
        points={task: list(by_step.values()) for task, by_step in points.items()},
        chance=chance, family=first.family, recipe=recipe, params_kind=params_kind,
        metric_of=accuracy_metric, source=describe_sources("long", [table.path]), extra=extra,
    )


def _loss_unit(metric: str) -> str:
    if metric in PERPLEXITY_METRICS:
        return "ln(ppl): nats per token"
    if metric == "bpb":
        return "bits per byte, as given"
    return "as given (nats per token for a cross-entropy loss)"


def _place_final_rows(rows: list[Row]) -> list[Row]:
    """Rows with an empty step are the model's final checkpoint: step = its last numbered
    step + 1 (0 when none), which `_check_tokens` then checks for tokens."""
    finals = [r for r in rows if r.step is None]
    if not finals:
        return rows
    numbered = [r.step for r in rows if r.step is not None]
    step = max(numbered) + 1 if numbered else 0
    return [replace(r, step=step) if r.step is None else r for r in rows]


def _file_chance(table: Table, model: str, rows: Sequence[Row], accuracy_metric: Mapping[str, str]
                 ) -> dict[str, float]:
    """Each task's chance level from the file's chance column, one value per model and task."""
    found: dict[str, Row] = {}
    for row in rows:
        if row.chance is None or accuracy_metric.get(row.task) != row.metric:
            continue
        other = found.setdefault(row.task, row)
        if other.chance != row.chance:
            raise DataError(table.path, "chance", f"model {model!r} task {row.task!r} has chance {row.chance:g} here "
                            f"but {other.chance:g} on line {other.line}", "give one chance level per task",
                            line=row.line)
    return {task: row.chance for task, row in found.items()}


def _check_tokens(table: Table, model: str, rows: list[Row]) -> None:
    """One token count per checkpoint, growing with the step."""
    tokens_at: dict[int, Row] = {}
    for row in rows:
        other = tokens_at.setdefault(row.step, row)
        if other.tokens != row.tokens:
            raise DataError(table.path, "tokens", f"model {model!r} step {row.step} has tokens {row.tokens:g} here "
                            f"but {other.tokens:g} on line {other.line}", "give one token count per checkpoint",
                            line=row.line)
    ordered = sorted(tokens_at.items())
    for (step_a, a), (step_b, b) in zip(ordered, ordered[1:]):
        if b.tokens < a.tokens:
            what = "the final checkpoint (empty step)" if b.final else f"step {step_b}"
            raise DataError(table.path, "tokens", f"model {model!r}: tokens decrease from {a.tokens:g} at step "
                            f"{step_a} to {b.tokens:g} at {what} (non-monotone)",
                            "tokens seen must grow with the step", line=b.line)
