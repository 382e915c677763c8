"""Import a leaderboard table: one row per published model, one column per benchmark.

Each row becomes a run with a single checkpoint (step 0) at the model's real training
tokens: the tokens column, else FLOPs / (6 · params). Model names become run names by
`sanitize_run_name` (`meta-llama/Llama-2-7b-hf` -> `meta-llama--Llama-2-7b-hf`); the
original name is kept in the run's `extra.model`.
"""

from __future__ import annotations

import math

from collections.abc import Mapping, Sequence
from pathlib import Path

from forecast.errors import DataError, UsageError
from forecast.importers.common import (
    Point, build_run, check_overrides_used, describe_sources, note_skipped, sanitize_run_name,
)
from forecast.importers.table_io import Table, number, read_table
from forecast.quantities import FLOPS_PER_PARAM_TOKEN
from forecast.runs.model import Recipe, Run

MISSING_TOKENS = ("error", "skip", "keep")


def import_table(
    path: str | Path,
    *,
    name_column: str,
    params_column: str,
    params_unit: float = 1.0,
    family_column: str | None = None,
    family: str = "default",
    tokens_column: str | None = None,
    tokens_unit: float = 1.0,
    flops_column: str | None = None,
    flops_unit: float = 1.0,
    skills: Sequence[str] | None = None,
    recipe: Recipe | None = None,
    params_kind: str = "unknown",
    chance: Mapping[str, float] | None = None,
    missing_tokens: str = "error",
) -> list[Run]:
    """Read a leaderboard: one single-checkpoint run per row.

    Parameters are `params_column × params_unit` (e.g. billions: unit 1e9), training tokens
    `tokens_column × tokens_unit`, training FLOPs `flops_column × flops_unit`. `skills` are
    the benchmark columns (default: every column not used otherwise); a skill keeps its
    column name and an empty cell skips that benchmark for that model. A row with neither
    tokens nor FLOPs is an error, or left out (with a `SkippedWarning`) when
    `missing_tokens="skip"`, or kept with unknown (NaN) tokens when `missing_tokens="keep"`:
    listed by `forecast runs`, left out of fits, which need to place a model in tokens. The family is the `family_column` cell, else `family`.
    """
    if missing_tokens not in MISSING_TOKENS:
        raise UsageError(f"`missing_tokens`: use one of {', '.join(MISSING_TOKENS)}, got {missing_tokens!r}",
                         parameter="missing_tokens")
    if tokens_column is None and flops_column is None:
        raise UsageError("give `tokens_column` or `flops_column`: a run needs its training tokens", parameter="tokens_column")
    table = read_table(path)
    name_i = table.column(name_column, "`name_column`")
    params_i = table.column(params_column, "`params_column`")
    family_i = None if family_column is None else table.column(family_column, "`family_column`")
    tokens_i = None if tokens_column is None else table.column(tokens_column, "`tokens_column`")
    flops_i = None if flops_column is None else table.column(flops_column, "`flops_column`")
    used = {name_i, params_i, family_i, tokens_i, flops_i}
    if skills is None:
        skill_cols = [(i, h) for i, h in enumerate(table.header) if i not in used]
    else:
        skill_cols = [(table.column(s, "`skills`"), s) for s in skills]
    if not skill_cols:
        raise UsageError("no benchmark columns left; name them with `skills='A,B,C'`")
    chance = dict(chance or {})
    runs: list[Run] = []
    skipped: list[str] = []
    unknown: list[str] = []
    seen: dict[str, int] = {}
    for line, row in table:
        model = row[name_i]
        if not model:
            raise DataError(table.path, name_column, "empty model name", "name every model", line=line)
        run_name = sanitize_run_name(model)
        if run_name in seen:
            raise DataError(table.path, name_column, f"model {model!r} gives run name {run_name!r}, as line "
                            f"{seen[run_name]} does", "give every model a distinct name", line=line)
        seen[run_name] = line
        params = number(table, line, params_column, row[params_i], minimum=0)
        if not params:
            raise DataError(table.path, params_column, "empty or zero parameter count",
                            f"give the model size in units of {params_unit:g} parameters", line=line)
        params *= params_unit
        tokens, flops = _tokens_and_flops(table, line, row, params, tokens_i, tokens_unit, flops_i, flops_unit)
        if tokens is None:
            if missing_tokens == "skip":
                skipped.append(model)
                continue
            if missing_tokens == "error":
                raise DataError(table.path, tokens_column or flops_column,
                                f"model {model!r} has neither training tokens nor FLOPs",
                                "fill in the cell, or pass `missing_tokens='skip'` (leave it out) or `missing_tokens='keep'` (tokens unknown)",
                                line=line)
            unknown.append(model)
            tokens = math.nan
        points = {}
        for index, skill in skill_cols:
            accuracy = number(table, line, skill, row[index], minimum=0, maximum=1,
                              fix="give accuracy as a fraction (0.42, not 42)")
            if accuracy is not None:
                points[skill] = [Point(0, tokens, flops, accuracy=accuracy)]
        if not points:
            raise DataError(table.path, skill_cols[0][1], f"model {model!r} has no benchmark values",
                            "fill in at least one benchmark cell or remove the row", line=line)
        family_name = family
        if family_i is not None:
            family_name = row[family_i]
            if not family_name:
                raise DataError(table.path, family_column, "empty family", "give every model its family", line=line)
        runs.append(build_run(
            file=table.path, name=run_name, params=params, points=points, chance=chance, family=family_name,
            recipe=recipe, params_kind=params_kind, source=f"{describe_sources('table', [table.path])} line {line}",
            extra={"model": model},
        ))
    if skipped:
        note_skipped(f"{table.path}: left out {len(skipped)} models with neither tokens nor FLOPs: "
                     f"{', '.join(skipped)}")
    if unknown:
        note_skipped(f"{table.path}: kept {len(unknown)} models whose training tokens are unknown (fits leave them "
                     f"out): {', '.join(unknown)}")
    check_overrides_used(chance, runs)
    return runs


def _tokens_and_flops(table: Table, line: int, row: tuple[str, ...], params: float, tokens_i: int | None,
                      tokens_unit: float, flops_i: int | None, flops_unit: float) -> tuple[float | None, float | None]:
    """Training tokens and FLOPs of one row; tokens from FLOPs / (6 · params) when only FLOPs are given."""
    tokens = flops = None
    if tokens_i is not None:
        tokens = number(table, line, table.header[tokens_i], row[tokens_i], minimum=0)
        tokens = None if tokens is None else tokens * tokens_unit
    if flops_i is not None:
        flops = number(table, line, table.header[flops_i], row[flops_i], minimum=0)
        flops = None if flops is None else flops * flops_unit
    if tokens is None and flops is not None:
        tokens = flops / (FLOPS_PER_PARAM_TOKEN * params)
    return tokens, flops
