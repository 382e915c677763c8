"""The run model: one model trained once, with per-skill metrics along its training.

A `Run` holds its metadata and one `Series` per skill (or run-level metric); `validate_run`
checks one against the format's rules. Reading and writing run directories is
`forecast.runs.files`; the format itself is documented in `forecast.schema.outputs` and README.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.errors import DataError
from forecast.quantities import FLOPS_PER_PARAM_TOKEN
from forecast.schema.outputs import RUN_FORMAT, TRAJECTORY_COLUMNS, RecipeJson, RunJson, RunSummaryJson, number

PARAMS_KINDS = ("non-embedding", "total", "unknown")
METADATA_FILE = "run.json"
TRAJECTORY_FILE = "trajectory.csv"


@dataclass(frozen=True)
class Recipe:
    """The data recipe a run was trained on.

    `label` is free-form and is what runs are grouped by; `format`, `mix` (skill -> weight)
    and `curriculum` (ordered phases, each a mapping such as {"steps": 500, "mix": {...}})
    are optional structure for recipe comparisons.
    """

    label: str = "default"
    format: str | None = None
    mix: Mapping[str, float] | None = None
    curriculum: Sequence[Mapping[str, Any]] | None = None

    def to_json(self) -> RecipeJson:
        return {
            "label": self.label,
            "format": self.format,
            "mix": None if self.mix is None else dict(self.mix),
            "curriculum": None if self.curriculum is None else [dict(p) for p in self.curriculum],
        }

    @classmethod
    def from_json(cls, data: Any, file: str | Path) -> Recipe:
        """Read a recipe given as a plain label string or as an object with a `label`."""
        if data is None:
            return cls()
        if isinstance(data, str):
            if not data.strip():
                raise DataError(file, "recipe", "empty recipe label", "give a label such as \"default\"")
            return cls(label=data)
        if not isinstance(data, dict):
            raise DataError(file, "recipe", f"expected a string or an object, got {type(data).__name__}",
                            'write "recipe": "my-recipe" or {"label": "my-recipe"}')
        label = data.get("label")
        if not isinstance(label, str) or not label.strip():
            raise DataError(file, "recipe.label", "missing or not a non-empty string",
                            'add "label": "my-recipe" to the recipe object')
        mix = data.get("mix")
        if mix is not None:
            if not isinstance(mix, dict) or not all(is_number(v) and v >= 0 for v in mix.values()):
                raise DataError(file, "recipe.mix", "expected an object of skill -> non-negative weight",
                                'write e.g. "mix": {"add": 0.5, "sub": 0.5}')
            mix = {str(k): float(v) for k, v in mix.items()}
        curriculum = data.get("curriculum")
        if curriculum is not None:
            if not isinstance(curriculum, list) or not all(isinstance(p, dict) for p in curriculum):
                raise DataError(file, "recipe.curriculum", "expected a list of phase objects",
                                'write e.g. "curriculum": [{"steps": 500, "mix": {"add": 1}}]')
        fmt = data.get("format")
        if fmt is not None and not isinstance(fmt, str):
            raise DataError(file, "recipe.format", "expected a string", 'write e.g. "format": "reverse"')
        return cls(label=label, format=fmt, mix=mix, curriculum=curriculum)


@dataclass(frozen=True, eq=False)
class Series:
    """One skill's (or one metric's) trajectory within one run, sorted by step.

    Arrays are aligned, one entry per checkpoint. `accuracy` is None for a loss-only metric;
    `loss`, `prob`, `stderr` and `n` hold NaN where a checkpoint did not log them.
    """

    skill: str
    step: np.ndarray  # optimizer step, int64
    tokens: np.ndarray  # training tokens seen, float64
    flops: np.ndarray  # training FLOPs so far, float64
    accuracy: np.ndarray | None  # in [0, 1]; None for a loss-only metric
    loss: np.ndarray | None  # task loss (bits-per-byte, NLL, ...), lower is better
    stderr: np.ndarray | None  # standard error of accuracy
    n: np.ndarray | None  # evaluation sample count
    chance: float | None  # random-guess accuracy (0 for exact-match generation)
    ceiling: float | None = None  # best attainable accuracy if below 1 (label noise)
    prob: np.ndarray | None = None  # mean probability of the correct answer, in [0, 1]

    @property
    def is_skill(self) -> bool:
        """True for a skill (has accuracy); False for a run-level loss-only metric."""
        return self.accuracy is not None

    @property
    def has_loss(self) -> bool:
        return self.loss is not None and bool(np.isfinite(self.loss).any())

    @property
    def has_prob(self) -> bool:
        return self.prob is not None and bool(np.isfinite(self.prob).any())

    def accuracy_stderr(self) -> np.ndarray:
        """Evaluation noise of each accuracy (standard error), NaN where unknown.

        Taken from `stderr` where logged, else from the binomial sqrt(p(1-p)/n)."""
        size = len(self.step)
        out = np.full(size, np.nan)
        if self.accuracy is None:
            return out
        if self.n is not None:
            out = binomial_stderr(self.accuracy, self.n)
        if self.stderr is not None:
            out = np.where(np.isfinite(self.stderr), self.stderr, out)
        return out


def binomial_stderr(accuracy: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
    """Binomial standard error of an accuracy over n items, with p pulled half an item off
    0 and 1 so that a perfect (or zero) score keeps a noise."""
    accuracy, n = np.asarray(accuracy, float), np.asarray(n, float)
    p = (accuracy * n + 0.5) / (n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(p * (1 - p) / n)


@dataclass(frozen=True, eq=False)
class Run:
    """One model trained once: its size, data recipe and per-skill trajectories."""

    name: str
    params: float  # parameter count; `params_kind` says which
    family: str  # ladder / model family; runs of different families are never pooled
    recipe: Recipe
    series: Mapping[str, Series]
    params_kind: str = "unknown"  # "non-embedding" (preferred), "total" or "unknown"
    seed: int | None = None
    source: str = ""  # where the run came from (importer and file, or "forecast pilot")
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form, kept verbatim
    path: Path | None = None  # directory it was loaded from, if any

    @property
    def skills(self) -> tuple[str, ...]:
        """Names of the series that carry accuracy (the forecastable skills)."""
        return tuple(name for name, s in self.series.items() if s.is_skill)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names of the loss-only run-level metrics."""
        return tuple(name for name, s in self.series.items() if not s.is_skill)

    @property
    def group(self) -> tuple[str, str]:
        """The (family, recipe label) key under which runs are fitted together."""
        return (self.family, self.recipe.label)

    @property
    def steps(self) -> np.ndarray:
        """All checkpoint steps of the run, sorted."""
        return np.unique(np.concatenate([s.step for s in self.series.values()]))

    @property
    def final_tokens(self) -> float:
        """Training tokens at the last checkpoint (NaN when the run's tokens are unknown)."""
        return _nan_extreme(np.fmax, [s.tokens for s in self.series.values()])

    @property
    def min_tokens(self) -> float:
        return _nan_extreme(np.fmin, [s.tokens for s in self.series.values()])

    @property
    def final_flops(self) -> float:
        return _nan_extreme(np.fmax, [s.flops for s in self.series.values()])

    @property
    def complete(self) -> bool | None:
        """Whether training finished: pilots record it in `extra.complete`; None for runs
        that do not say (imported ones, which are complete as published)."""
        value = self.extra.get("complete")
        return bool(value) if isinstance(value, bool) else None

    @property
    def examples_per_step(self) -> float | None:
        """Training examples (sequences) per optimizer step, when the run records it (pilot
        runs do: `extra.examples_per_step`, or the batch size of `extra.config`); None else."""
        value = self.extra.get("examples_per_step")
        if value is None:
            config = self.extra.get("config")
            value = config.get("train", {}).get("batch_size") if isinstance(config, Mapping) else None
        return float(value) if is_number(value) and value > 0 else None

    def to_json(self) -> RunJson:
        """The `run.json` content (without the trajectory)."""
        return {
            "format": RUN_FORMAT,
            "name": self.name,
            "params": number(self.params),
            "params_kind": self.params_kind,
            "family": self.family,
            "recipe": self.recipe.to_json(),
            "seed": self.seed,
            "source": self.source,
            "extra": dict(self.extra),
        }

    def trajectory_csv(self) -> str:
        """The `trajectory.csv` content: tidy rows sorted by skill then step."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TRAJECTORY_COLUMNS)
        for name in sorted(self.series):
            s = self.series[name]
            cell = lambda a, i: "" if a is None else csv_number(a[i])  # noqa: E731
            for i in range(len(s.step)):
                writer.writerow([
                    int(s.step[i]), csv_number(s.tokens[i]), csv_number(s.flops[i]), name,
                    cell(s.accuracy, i), cell(s.loss, i), cell(s.prob, i), cell(s.stderr, i), cell(s.n, i),
                    "" if s.chance is None else csv_number(s.chance),
                    "" if s.ceiling is None else csv_number(s.ceiling),
                ])
        return buffer.getvalue()

    @functools.cached_property
    def content_hash(self) -> str:
        """SHA-256 over the canonical metadata and trajectory (not the path, nor `source`,
        which records where an import read it from): identifies exactly which data a fit saw,
        wherever the files lie. Computed once per run object (runs are immutable)."""
        meta = json.dumps({k: v for k, v in self.to_json().items() if k != "source"}, sort_keys=True)
        digest = hashlib.sha256(meta.encode() + b"\0" + self.trajectory_csv().encode())
        return digest.hexdigest()[:16]

    def summary(self) -> RunSummaryJson:
        """The run at a glance (`forecast runs --json`, keys stable; see `schema.RunSummaryJson`)."""
        return {
            "name": self.name,
            "family": self.family,
            "recipe": self.recipe.label,
            "params": number(self.params),
            "params_kind": self.params_kind,
            "seed": self.seed,
            "complete": self.complete,
            "checkpoints": int(len(self.steps)),
            "tokens_min": number(self.min_tokens),
            "tokens_max": number(self.final_tokens),
            "flops_max": number(self.final_flops),
            "skills": sorted(self.skills),
            "metrics": sorted(self.metrics),
            "source": self.source,
            "path": None if self.path is None else str(self.path),
        }


# ---------------------------------------------------------------------------- building


def make_series(
    skill: str,
    step: Iterable[int],
    tokens: Iterable[float],
    *,
    accuracy: Iterable[float] | None = None,
    loss: Iterable[float] | None = None,
    prob: Iterable[float] | None = None,
    stderr: Iterable[float] | None = None,
    n: Iterable[float] | None = None,
    flops: Iterable[float] | None = None,
    params: float | None = None,
    chance: float | None = None,
    ceiling: float | None = None,
) -> Series:
    """Build a `Series` from plain sequences, sorted by step; FLOPs default to 6·params·tokens.

    Does not validate: `validate_run` does, for runs built in code and runs loaded from disk.
    """
    step_a = np.asarray(list(step), dtype=np.int64)
    order = np.argsort(step_a, kind="stable")

    def arr(values: Iterable[float] | None) -> np.ndarray | None:
        if values is None:
            return None
        return np.asarray(list(values), dtype=np.float64)[order]

    tokens_a = arr(tokens)
    flops_a = arr(flops)
    if flops_a is None:
        if params is None:
            raise ValueError("make_series needs flops or params (for 6·params·tokens)")
        flops_a = FLOPS_PER_PARAM_TOKEN * float(params) * tokens_a
    return Series(
        skill=skill, step=step_a[order], tokens=tokens_a, flops=flops_a,
        accuracy=arr(accuracy), loss=arr(loss), prob=arr(prob), stderr=arr(stderr), n=arr(n),
        chance=chance, ceiling=ceiling,
    )


# ---------------------------------------------------------------------------- helpers


MAX_NAME_LENGTH = 200
"""Longest run, skill, family or recipe name: names become file and folder names (limit 255)."""


def unsafe_label(name: str) -> str | None:
    """Why `name` (a family or recipe label, free text: `GPT-Neo/J`) cannot be shown and
    stored, or None: empty or blank, a control character, or over `MAX_NAME_LENGTH` characters.
    The fits directory stores labels under a slug (`forecast.store.files.slug`)."""
    if not isinstance(name, str) or not name.strip():
        return "empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds a control character"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    return None


def unsafe_name(name: str, *, hidden_ok: bool = True) -> str | None:
    """Why `name` (of a run, skill, family or recipe) is not a safe single path component,
    or None. The rule: not empty or blank, no '/' or '\\', not '.' or '..', no control
    character (NUL, newline, tab, ...), at most `MAX_NAME_LENGTH` characters; with
    `hidden_ok=False` (run names: their folder), not starting with '.'."""
    if not isinstance(name, str) or not name.strip():
        return "empty"
    if "/" in name or "\\" in name:
        return "holds a path separator ('/' or '\\')"
    if name in (".", ".."):
        return "is '.' or '..'"
    if not hidden_ok and name.startswith("."):
        return "starts with '.' (a hidden folder)"
    return unsafe_label(name)  # control characters and length, as for any label


def is_number(value: Any) -> bool:
    """A JSON number (int or float, not bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def csv_number(value: float) -> str:
    """Shortest round-trip text of a number; empty for NaN. Integers print without '.0'."""
    value = float(value)
    if math.isnan(value):
        return ""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _nan_extreme(pick, arrays: Sequence[np.ndarray]) -> float:
    """The largest (np.fmax) or smallest (np.fmin) value across arrays, ignoring NaN."""
    return float(pick.reduce(np.concatenate(arrays)))
