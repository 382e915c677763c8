"""Import wide per-run CSVs (Weights & Biases exports, trainer logs): one row per step,
one column per metric; one run per file.

Regexes map columns to skills: the first capture group is the skill name. Several columns
mapping to one skill (MMLU's subgroups, a task's val and test splits) are averaged with
equal weights on each row; a row where any of them is empty is skipped for that skill.

A W&B multi-run chart export (columns `RUN - METRIC`, with `RUN - METRIC__MIN` and
`__MAX` beside them) is read as one run per RUN prefix: each run's columns are its own,
the prefix stripped, and the columns without a prefix (`Step`) are shared. A row where one
run is empty is a checkpoint of the others. The `__MIN`/`__MAX` columns bound the values W&B
merged into each exported point (its sampling buckets), not a spread over seeds or items;
they are never averaged into a value, and a note names them as left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from forecast.errors import DataError, UsageError
from forecast.importers.common import (
    Point, build_run, check_overrides_used, describe_sources, note_skipped, sanitize_run_name,
)
from forecast.importers.table_io import Table, compile_regex, number, read_table
from forecast.runs.model import Recipe, Run

ACCURACY_FIX = "give accuracy as a fraction (0.42, not 42) or fix `accuracy_columns`"


def import_wide_csv(
    paths: Sequence[str | Path],
    *,
    params: float | Mapping[str, float],
    accuracy_columns: str | None = None,
    loss_columns: str | None = None,
    metric_columns: str | None = None,
    step_column: str = "_step",
    tokens_column: str | None = None,
    tokens_per_step: float | None = None,
    flops_column: str | None = None,
    flops_unit: float = 1.0,
    family: str = "default",
    recipe: Recipe | None = None,
    name: str | None = None,
    params_kind: str = "unknown",
    chance: Mapping[str, float] | None = None,
) -> list[Run]:
    """Read each wide CSV as one run.

    `params`: parameter count, or for a W&B multi-run export a mapping from each run's name
    to its count. Tokens come from `tokens_column` (tokens seen) or
    `step × tokens_per_step`; FLOPs from `flops_column × flops_unit` (e.g. GFLOPs with unit
    1e9), else 6 · params · tokens. `accuracy_columns` / `loss_columns` map columns to skills'
    accuracy and task loss; `metric_columns` to run-level loss-only metrics (validation loss).
    The run is named `name`, else the W&B run prefix, else the file stem.
    """
    if not paths:
        raise UsageError("give at least one CSV file")
    if not (accuracy_columns or loss_columns or metric_columns):
        raise UsageError("give `accuracy_columns`, `loss_columns` or `metric_columns`: a regex whose first "
                         "group names the skill, e.g. 'eval/downstream/(piqa)_.*'")
    if (tokens_column is None) == (tokens_per_step is None):
        raise UsageError("give exactly one of `tokens_column` (tokens seen) and `tokens_per_step`")
    if name is not None and len(paths) > 1:
        raise UsageError(f"`name={name!r}` would name all {len(paths)} runs alike; leave it out to name "
                         "each run by its file stem")
    regexes = {
        kind: compile_regex(pattern, flag)
        for kind, pattern, flag in (("accuracy", accuracy_columns, "`accuracy_columns`"),
                                    ("loss", loss_columns, "`loss_columns`"),
                                    ("metric", metric_columns, "`metric_columns`"))
        if pattern
    }
    chance = dict(chance or {})
    runs = []
    parts = [(path, prefix, table) for path in paths for prefix, table in split_runs(read_table(path))]
    if name is not None and len(parts) > 1:
        raise UsageError(f"`name={name!r}` would name all {len(parts)} runs of the export alike; leave it out to "
                         "name each run by its W&B run name", parameter="name")
    if isinstance(params, Mapping):
        given = {prefix or table.path.stem for _, prefix, table in parts}
        unknown = sorted(set(params) - given)
        missing = sorted(given - set(params))
        if unknown or missing:
            raise UsageError(f"`params`: {'no run named ' + repr(unknown[0]) if unknown else 'no count for run ' + repr(missing[0])}"
                             f"; the runs are: {', '.join(sorted(given))}", parameter="params")
    elif len(parts) > 1:
        note_skipped(f"all {len(parts)} runs of the export get --params {params:g}; give --params RUN=COUNT for "
                     "each if their sizes differ")
    for path, prefix, table in parts:
        columns = _map_columns(table, regexes)
        points = _read_points(table, columns, step_column, tokens_column, tokens_per_step, flops_column, flops_unit)
        key = prefix or table.path.stem
        runs.append(build_run(
            file=table.path, name=name or sanitize_run_name(key),
            params=params[key] if isinstance(params, Mapping) else params, points=points,
            chance=chance, family=family, recipe=recipe, params_kind=params_kind,
            source=describe_sources("csv", [path]),
            extra={"columns": {kind: {skill: [(f"{prefix} - " if prefix else "") + table.header[i] for i in idx]
                                      for skill, idx in by_skill.items()}
                               for kind, by_skill in columns.items()}},
        ))
    check_overrides_used(chance, runs)
    return runs


_WANDB_COLUMN = re.compile(r"(?P<run>.+?) - (?P<metric>.+?)(?P<bound>__MIN|__MAX)?")


def split_runs(table: Table) -> list[tuple[str | None, Table]]:
    """One table per W&B run prefix (`RUN - METRIC` columns), or the table itself when it
    has none: shared columns (no prefix) first, then the run's columns with the prefix
    stripped; rows where all of the run's cells are empty are left out of its table. The
    `__MIN`/`__MAX` columns are left out, with a note naming them (module docstring)."""
    matches = [_WANDB_COLUMN.fullmatch(h) for h in table.header]
    if not any(matches):
        return [(None, table)]
    shared = [i for i, m in enumerate(matches) if m is None]
    bounds = [table.header[i] for i, m in enumerate(matches) if m is not None and m.group("bound")]
    prefixes = list(dict.fromkeys(m.group("run") for m in matches if m is not None))
    if bounds:
        note_skipped(f"{table.path}: {len(bounds)} W&B min/max column{'s' if len(bounds) > 1 else ''} "
                     f"({', '.join(bounds[:3])}{', ...' if len(bounds) > 3 else ''}) bound each exported point's "
                     "sampling bucket, not a spread over seeds or items; left out (each run's own column is read)")
    out = []
    for prefix in prefixes:
        own = [i for i, m in enumerate(matches) if m is not None and m.group("run") == prefix and not m.group("bound")]
        header = tuple(table.header[i] for i in shared) + tuple(matches[i].group("metric") for i in own)
        twice = sorted({h for h in header if header.count(h) > 1})
        if twice:
            raise DataError(table.path, f"{prefix} - {twice[0]}", "a run's column has the name of a shared column",
                            "rename one of them in the export", line=1)
        rows, empty = [], 0
        for line, cells in table.rows:
            mine = tuple(cells[i] for i in own)
            if all(not c for c in mine):
                empty += 1
                continue
            rows.append((line, tuple(cells[i] for i in shared) + mine))
        if not rows:
            note_skipped(f"{table.path}: W&B run {prefix!r} has no values in any row; left out")
            continue
        if empty:
            note_skipped(f"{table.path}: W&B run {prefix!r} is empty on {empty} of {len(table.rows)} rows; "
                         "those steps are left out of it (the other runs keep them)")
        out.append((prefix, Table(table.path, header, tuple(rows))))
    return out


def _map_columns(table: Table, regexes: Mapping[str, object]) -> dict[str, dict[str, list[int]]]:
    """kind ('accuracy', 'loss', 'metric') -> skill -> column indices."""
    columns: dict[str, dict[str, list[int]]] = {}
    owner: dict[int, str] = {}
    for kind, pattern in regexes.items():
        columns[kind] = {}
        for index, skill in table.matching(pattern, f"`{kind}_columns`"):
            if index in owner:
                raise DataError(table.path, table.header[index], f"column matched by both `{owner[index]}_columns` "
                                f"and `{kind}_columns`", "narrow one of the regexes", line=1)
            owner[index] = kind
            columns[kind].setdefault(skill, []).append(index)
    clash = set(columns.get("metric", {})) & (set(columns.get("accuracy", {})) | set(columns.get("loss", {})))
    if clash:
        skill = sorted(clash)[0]
        raise DataError(table.path, "`metric_columns`", f"metric name {skill!r} is also a skill name",
                        "change the capture group of `metric_columns` so metrics and skills differ", line=1)
    return columns


def _read_points(
    table: Table,
    columns: Mapping[str, Mapping[str, list[int]]],
    step_column: str,
    tokens_column: str | None,
    tokens_per_step: float | None,
    flops_column: str | None,
    flops_unit: float,
) -> dict[str, list[Point]]:
    step_i = table.column(step_column, "`step_column`")
    tokens_i = None if tokens_column is None else table.column(tokens_column, "`tokens_column`")
    flops_i = None if flops_column is None else table.column(flops_column, "`flops_column`")
    seen: dict[int, int] = {}  # step -> line
    checkpoints = []  # (step, tokens, line)
    points: dict[str, list[Point]] = {}
    for line, row in table:
        step_v = number(table, line, step_column, row[step_i], minimum=0, integer=True)
        if step_v is None:
            raise DataError(table.path, step_column, "empty step cell", "every row needs its optimizer step", line=line)
        step = int(step_v)
        if step in seen:
            raise DataError(table.path, step_column, f"step {step} appears twice (also on line {seen[step]}): "
                            "duplicate checkpoint", "keep one row per step", line=line)
        seen[step] = line
        if tokens_i is not None:
            tokens = number(table, line, table.header[tokens_i], row[tokens_i], minimum=0)
            if tokens is None:
                raise DataError(table.path, table.header[tokens_i], "empty tokens cell",
                                "fill in the tokens seen, or use `tokens_per_step`", line=line)
        else:
            tokens = step * tokens_per_step
        flops = None
        if flops_i is not None:
            flops = number(table, line, table.header[flops_i], row[flops_i], minimum=0)
            flops = None if flops is None else flops * flops_unit
        checkpoints.append((step, tokens, line))

        def mean(indices: list[int], **limits: float) -> float | None:
            values = [number(table, line, table.header[i], row[i], **limits) for i in indices]
            return None if any(v is None for v in values) else sum(values) / len(values)

        for skill in {**columns.get("accuracy", {}), **columns.get("loss", {})}:
            accuracy = mean(columns.get("accuracy", {}).get(skill, []), minimum=0, maximum=1, fix=ACCURACY_FIX) \
                if skill in columns.get("accuracy", {}) else None
            loss = mean(columns["loss"][skill], minimum=0) if skill in columns.get("loss", {}) else None
            if accuracy is not None or loss is not None:
                points.setdefault(skill, []).append(Point(step, tokens, flops, accuracy=accuracy, loss=loss))
        for metric, indices in columns.get("metric", {}).items():
            loss = mean(indices, minimum=0)
            if loss is not None:
                points.setdefault(metric, []).append(Point(step, tokens, flops, loss=loss))
    _check_monotone(table, checkpoints, tokens_column or "tokens")
    empty = sorted({s for by_skill in columns.values() for s in by_skill} - set(points))
    if empty:
        note_skipped(f"{table.path}: no values at all for {', '.join(empty)}; left out")
    return points


def _check_monotone(table: Table, checkpoints: list[tuple[int, float, int]], column: str) -> None:
    """Tokens seen must not decrease as the step increases."""
    ordered = sorted(checkpoints)
    for (step_a, tokens_a, _), (step_b, tokens_b, line) in zip(ordered, ordered[1:]):
        if tokens_b < tokens_a:
            raise DataError(table.path, column, f"tokens decrease from {tokens_a:g} at step {step_a} to {tokens_b:g} "
                            f"at step {step_b} (non-monotone)", "tokens seen must grow with the step; check the column",
                            line=line)
