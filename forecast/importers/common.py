"""What every importer shares: checkpoint points, chance levels, run names and provenance.

An importer reads its files into `Point`s keyed by skill, then calls `build_run`, which
fills chance levels (`--chance` override, else the known-benchmark table, else the level a
metric implies, else an error), builds the `Series` and validates the run, naming the file.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.runs.benchmarks import chance_for
from forecast.errors import DataError, UsageError
from forecast.quantities import FLOPS_PER_PARAM_TOKEN
from forecast.runs.files import write_runs
from forecast.runs.checks import validate_run
from forecast.runs.model import PARAMS_KINDS, Recipe, Run, Series, make_series

# Metrics whose chance level follows from the metric itself: exact-match generation and
# pass@k cannot be guessed right by a random answer.
CHANCE_BY_METRIC: dict[str, float] = {"exact_match": 0.0, "em": 0.0, "pass@1": 0.0, "pass_at_1": 0.0}


class SkippedWarning(UserWarning):
    """Part of the input was left out on purpose (a model with no selected rows, a task
    without an accuracy metric). The CLI prints these as notes on stderr."""


@dataclass(frozen=True)
class Point:
    """One checkpoint's measurement of one skill (or one run-level metric)."""

    step: int  # optimizer step
    tokens: float  # training tokens seen
    flops: float | None = None  # training FLOPs so far; None -> 6 · params · tokens
    accuracy: float | None = None  # in [0, 1]; None for a loss-only metric
    loss: float | None = None  # task loss, lower is better (bits-per-byte, nats/token, ...)
    stderr: float | None = None  # standard error of the accuracy
    n: float | None = None  # evaluation sample count
    prob: float | None = None  # mean probability of the correct answer, in [0, 1]


# ---------------------------------------------------------------------------- run names


def sanitize_run_name(raw: str) -> str:
    """A valid run (directory) name from a model name.

    '/' becomes '--' (`meta-llama/Llama-2-7b-hf` -> `meta-llama--Llama-2-7b-hf`), any other
    character outside letters, digits and `._+=-` becomes '_', and a leading '.' becomes '_'.
    """
    name = re.sub(r"[^A-Za-z0-9._+=-]", "_", raw.strip().replace("/", "--"))
    if name.startswith("."):
        name = "_" + name[1:]
    return name or "_"


# ---------------------------------------------------------------------------- flags


def parse_assignments(items: Iterable[str], flag: str, example: str) -> dict[str, str]:
    """Parse repeated `KEY=VALUE` flags (`--chance mmlu=0.25`) into a dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{flag}: expected KEY=VALUE, got {item!r}; write e.g. {flag} {example}")
        out[key.strip()] = value.strip()
    return out


def parse_chance_overrides(items: Iterable[str]) -> dict[str, float]:
    """Parse repeated `--chance skill=value` flags; each value must lie in [0, 1)."""
    out = {}
    for skill, text in parse_assignments(items, "`chance`", "mmlu=0.25").items():
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 <= value < 1:
            raise UsageError(f"`chance={skill}={text}`: the chance level must be a number in [0, 1) "
                             "(0 for exact match, 1/k for k-way multiple choice)")
        out[skill] = value
    return out


def check_params_kind(params_kind: str) -> str:
    if params_kind not in PARAMS_KINDS:
        raise UsageError(f"`params_kind`: unknown kind {params_kind!r}; use one of {', '.join(PARAMS_KINDS)}",
                         parameter="params_kind")
    return params_kind


def check_overrides_used(chance: Mapping[str, float], runs: Sequence[Run]) -> None:
    """A `--chance` for a skill the import does not produce is a typo, not a no-op."""
    produced = {skill for run in runs for skill in run.skills}
    unused = sorted(set(chance) - produced)
    if unused:
        raise UsageError(f"`chance={unused[0]}=...`: no imported skill is called {unused[0]!r}; "
                         f"the skills are: {', '.join(sorted(produced)) or '(none)'}")


def describe_sources(kind: str, paths: Sequence[str | Path]) -> str:
    """The `source` of an imported run: importer and absolute file path(s); many files are
    summarised by their common folder."""
    texts = [os.path.abspath(p) for p in paths]
    if len(texts) > 3:
        folder = Path(texts[0]).parent
        if all(Path(t).parent == folder for t in texts):
            return f"forecast import {kind}: {folder}/ ({len(texts)} files)"
    return f"forecast import {kind}: {', '.join(texts)}"


# ---------------------------------------------------------------------------- chance


def resolve_chance(skill: str, overrides: Mapping[str, float], metric: str | None = None) -> float | None:
    """Chance accuracy of a skill: `--chance` override, else the known-benchmark table,
    else the level its metric implies (exact match: 0), else None (unknown)."""
    if skill in overrides:
        return overrides[skill]
    known = chance_for(skill)
    if known is not None:
        return known
    if metric is not None:
        return CHANCE_BY_METRIC.get(metric.split(",")[0])
    return None


# ---------------------------------------------------------------------------- building


def build_run(
    *,
    file: str | Path,
    name: str,
    params: float,
    points: Mapping[str, Sequence[Point]],
    chance: Mapping[str, float],
    family: str = "default",
    recipe: Recipe | None = None,
    params_kind: str = "unknown",
    source: str = "",
    extra: Mapping[str, Any] | None = None,
    metric_of: Mapping[str, str] | None = None,
) -> Run:
    """Assemble and validate a run from per-skill points.

    A skill with accuracy at some points keeps only those points (the format needs an
    accuracy on every row of a skill); a skill with no accuracy at all becomes a run-level
    loss-only metric. `metric_of` names the metric each skill's accuracy came from (for the
    chance level it implies). Raises `DataError` naming `file` when a skill's chance level
    is unknown.
    """
    series: dict[str, Series] = {}
    unknown: list[str] = []
    for skill, skill_points in sorted(points.items()):
        with_acc = [p for p in skill_points if p.accuracy is not None]
        kept = list(with_acc or [p for p in skill_points if p.loss is not None])
        if not kept:
            continue
        chance_level = None
        if with_acc:
            chance_level = resolve_chance(skill, chance, (metric_of or {}).get(skill))
            if chance_level is None:
                unknown.append(skill)
                continue
        series[skill] = _series(skill, kept, params, chance_level)
    if unknown:
        fixes = " ".join(f"`chance={s}=VALUE`" for s in unknown[:3])
        raise DataError(file, "chance", f"no known chance level for skill{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(repr(s) for s in unknown)}",
                        f"pass {fixes} (1/k for k-way multiple choice, 0 for exact match)")
    run = Run(
        name=name, params=float(params), family=family, recipe=recipe or Recipe(), series=series,
        params_kind=check_params_kind(params_kind), source=source, extra=dict(extra or {}),
    )
    validate_run(run, file)
    return run


def _series(skill: str, points: Sequence[Point], params: float, chance: float | None) -> Series:
    points = sorted(points, key=lambda p: p.step)

    def column(values: list[float | None]) -> list[float] | None:
        if all(v is None for v in values):
            return None
        return [math.nan if v is None else v for v in values]

    flops = [FLOPS_PER_PARAM_TOKEN * params * p.tokens if p.flops is None else p.flops for p in points]
    return make_series(
        skill, [p.step for p in points], [p.tokens for p in points], flops=flops,
        accuracy=column([p.accuracy for p in points]), loss=column([p.loss for p in points]),
        stderr=column([p.stderr for p in points]), n=column([p.n for p in points]),
        prob=column([p.prob for p in points]), chance=chance,
    )


def note_skipped(message: str) -> None:
    """Tell the caller that part of the input was left out on purpose (see `SkippedWarning`)."""
    warnings.warn(message, SkippedWarning, stacklevel=3)


def import_and_write(read: Callable[[], list[Run]], out: str | Path | None, overwrite: bool
                     ) -> tuple[list[Run], list[Path], list[str]]:
    """Run an importer (`read`), then write its runs all-or-nothing under `out`.

    Returns the runs, the directories written, and the notes about input left out
    (`SkippedWarning`s), which callers print only once everything succeeded, so that a
    failure is exactly one error. An import that yields nothing (a run with neither a skill
    nor a loss metric) is an error, not an empty success; runs holding only loss metrics
    (a Chinchilla-style table of final losses) are written, with a note."""
    if out is None:
        raise UsageError("`out` is required: the runs directory to write into, e.g. `out='runs/'`", parameter="out")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedWarning)
        runs = read()
    notes = [str(w.message) for w in caught if issubclass(w.category, SkippedWarning)]
    empty = [run.name for run in runs if not run.series]
    if not runs or empty:
        what = f"run {empty[0]!r} would hold" if empty else "the input holds"
        detail = f" ({notes[0]})" if notes else ""
        raise UsageError(f"nothing to import: {what} no skill with an accuracy and no loss{detail}; check `metrics` "
                         "(or the column and skill flags) against the file")
    loss_only = [run.name for run in runs if not run.skills]
    if loss_only:
        metrics = sorted({m for run in runs if not run.skills for m in run.metrics})
        notes.append(f"{len(loss_only)} run{'s hold' if len(loss_only) > 1 else ' holds'} no skill with an accuracy, "
                     f"only the loss metric{'s' if len(metrics) > 1 else ''} {', '.join(metrics[:5])}"
                     f"{', ...' if len(metrics) > 5 else ''}: fit for loss forecasts (`predict --metric loss`); "
                     "check `metrics` if you expected accuracies")
    written = write_runs(runs, out, overwrite=overwrite)
    return runs, written, notes
