"""The run store: one model trained once, with per-skill metrics along its training.

On disk a run is a directory holding two files (format version 1, documented in README):

- `run.json`: metadata: `format`, `name`, `params`, `params_kind`, `family`, `recipe`,
  `seed`, `source`, and free-form `extra`.
- `trajectory.csv`: a tidy table, one row per checkpoint x skill, with columns
  `step, tokens, flops, skill, accuracy, loss, stderr, n, chance, ceiling`.
  A row with an empty `accuracy` and a `loss` is a run-level continuous *metric*
  (validation loss, say): it is not forecast as a skill but may carry a two-step fit.

Loading validates everything and raises `DataError` naming file, line, field and fix.
Writing is atomic: a failed write never leaves a half-written run or replaces a good one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.errors import DataError

FORMAT_VERSION = 1
METADATA_FILE = "run.json"
TRAJECTORY_FILE = "trajectory.csv"
COLUMNS = ("step", "tokens", "flops", "skill", "accuracy", "loss", "stderr", "n", "chance", "ceiling")
REQUIRED_COLUMNS = ("step", "tokens", "skill", "accuracy", "chance")
PARAMS_KINDS = ("non-embedding", "total", "unknown")
FLOPS_PER_PARAM_TOKEN = 6.0
"""Training FLOPs per parameter per token when a run does not give its FLOPs: the 6ND rule
(2 forward + 4 backward multiply-adds per parameter per token; Kaplan et al. 2020, sec. 2.1)."""


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

    def to_json(self) -> dict[str, Any]:
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
            if not isinstance(mix, dict) or not all(_is_number(v) and v >= 0 for v in mix.values()):
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
    `loss`, `stderr` and `n` hold NaN where a checkpoint did not log them.
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

    @property
    def is_skill(self) -> bool:
        """True for a skill (has accuracy); False for a run-level loss-only metric."""
        return self.accuracy is not None

    @property
    def has_loss(self) -> bool:
        return self.loss is not None and bool(np.isfinite(self.loss).any())

    def accuracy_stderr(self) -> np.ndarray:
        """Evaluation noise of each accuracy (standard error), NaN where unknown.

        Taken from `stderr` where logged, else from the binomial sqrt(p(1-p)/n)."""
        size = len(self.step)
        out = np.full(size, np.nan)
        if self.accuracy is None:
            return out
        if self.n is not None:
            # binomial, with p pulled half an item off 0 and 1 so a perfect score keeps a noise
            p = (self.accuracy * self.n + 0.5) / (self.n + 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.sqrt(p * (1 - p) / self.n)
        if self.stderr is not None:
            out = np.where(np.isfinite(self.stderr), self.stderr, out)
        return out


@dataclass(frozen=True, eq=False)
class Run:
    """One model trained once: its size, data recipe and per-skill trajectories."""

    name: str
    params: float  # parameter count; `params_kind` says which count
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

    def to_json(self) -> dict[str, Any]:
        """The `run.json` content (without the trajectory)."""
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "params": _json_number(self.params),
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
        writer.writerow(COLUMNS)
        for name in sorted(self.series):
            s = self.series[name]
            for i in range(len(s.step)):
                writer.writerow([
                    int(s.step[i]),
                    _csv_number(s.tokens[i]),
                    _csv_number(s.flops[i]),
                    name,
                    "" if s.accuracy is None else _csv_number(s.accuracy[i]),
                    "" if s.loss is None else _csv_number(s.loss[i]),
                    "" if s.stderr is None else _csv_number(s.stderr[i]),
                    "" if s.n is None else _csv_number(s.n[i]),
                    "" if s.chance is None else _csv_number(s.chance),
                    "" if s.ceiling is None else _csv_number(s.ceiling),
                ])
        return buffer.getvalue()

    def content_hash(self) -> str:
        """SHA-256 over the canonical metadata and trajectory (not the path): identifies
        exactly which data a fit saw. Computed once per run object (runs are immutable)."""
        cached = self.__dict__.get("_content_hash")
        if cached is None:
            cached = self._compute_hash()
            object.__setattr__(self, "_content_hash", cached)
        return cached

    def _compute_hash(self) -> str:
        meta = json.dumps(self.to_json(), sort_keys=True)
        digest = hashlib.sha256(meta.encode() + b"\0" + self.trajectory_csv().encode())
        return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------- building


def make_series(
    skill: str,
    step: Iterable[int],
    tokens: Iterable[float],
    *,
    accuracy: Iterable[float] | None = None,
    loss: Iterable[float] | None = None,
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
        accuracy=arr(accuracy), loss=arr(loss), stderr=arr(stderr), n=arr(n),
        chance=chance, ceiling=ceiling,
    )


def validate_run(run: Run, file: str | Path | None = None) -> None:
    """Check a run built in code (or loaded) against the format's rules; raise `DataError`."""
    file = file or (run.path / TRAJECTORY_FILE if run.path else f"run '{run.name}'")
    if not run.name or "/" in run.name or run.name.startswith("."):
        raise DataError(file, "name", f"invalid run name {run.name!r}",
                        "use a non-empty name without '/' that does not start with '.'")
    if not (_is_number(run.params) and math.isfinite(run.params) and run.params > 0):
        raise DataError(file, "params", f"must be a positive number of parameters, got {run.params!r}",
                        "give the parameter count, e.g. 4.1e8")
    if run.params_kind not in PARAMS_KINDS:
        raise DataError(file, "params_kind", f"unknown kind {run.params_kind!r}",
                        f"use one of {', '.join(PARAMS_KINDS)}")
    if not run.series:
        raise DataError(file, "skill", "the run has no checkpoints", "add at least one row per skill")
    for name, s in run.series.items():
        _validate_series(name, s, file)


def _validate_series(name: str, s: Series, file: str | Path) -> None:
    where = f"skill '{name}'"
    if len(s.step) == 0:
        raise DataError(file, "step", f"{where} has no checkpoints", "add rows or drop the skill")
    if np.any(s.step < 0):
        raise DataError(file, "step", f"{where} has a negative step", "steps count from 0")
    dup = s.step[1:][np.diff(s.step) == 0]
    if dup.size:
        raise DataError(file, "step", f"{where} has step {int(dup[0])} twice (duplicate checkpoint)",
                        "keep one row per step and skill")
    for col, values in (("tokens", s.tokens), ("flops", s.flops)):
        if np.any(np.isinf(values)) or np.any(values[np.isfinite(values)] < 0):
            raise DataError(file, col, f"{where} has a negative or infinite {col} value",
                            f"{col} must be finite and >= 0 (leave the cell empty if unknown)")
    if np.isnan(s.tokens).any() and not np.isnan(s.tokens).all():
        raise DataError(file, "tokens", f"{where} gives tokens on some checkpoints but not others",
                        "give tokens on every row of a skill, or on none if they are unknown")
    if np.any(np.diff(s.tokens) < 0):
        i = int(np.argmax(np.diff(s.tokens) < 0)) + 1
        raise DataError(file, "tokens", f"{where}: tokens decrease at step {int(s.step[i])} (non-monotone)",
                        "tokens seen must not decrease as steps increase; check the tokens column")
    if s.accuracy is not None:
        if not np.all(np.isfinite(s.accuracy)):
            raise DataError(file, "accuracy", f"{where} has NaN or infinite accuracy",
                            "drop those checkpoints or fill in the value")
        if np.any((s.accuracy < 0) | (s.accuracy > 1)):
            bad = float(s.accuracy[(s.accuracy < 0) | (s.accuracy > 1)][0])
            raise DataError(file, "accuracy", f"{where} has accuracy {bad} outside [0, 1]",
                            "give accuracy as a fraction (0.42, not 42)")
        if s.chance is None or not (0 <= s.chance < 1):
            raise DataError(file, "chance", f"{where} needs a chance level in [0, 1), got {s.chance!r}",
                            "0 for exact-match generation, 1/k for k-way multiple choice")
        if s.ceiling is not None and not (s.chance < s.ceiling <= 1):
            raise DataError(file, "ceiling", f"{where} has ceiling {s.ceiling} not in (chance, 1]",
                            "leave it empty or give the best attainable accuracy")
    elif s.loss is None or not np.all(np.isfinite(s.loss)):
        raise DataError(file, "loss", f"{where} has neither accuracy nor a finite loss on every row",
                        "a metric row without accuracy must give a loss")
    if s.loss is not None and np.any(np.isinf(s.loss)):
        raise DataError(file, "loss", f"{where} has an infinite loss", "leave the cell empty instead")
    if s.stderr is not None and np.any(s.stderr[np.isfinite(s.stderr)] < 0):
        raise DataError(file, "stderr", f"{where} has a negative stderr", "stderr must be >= 0")
    if s.n is not None and np.any(s.n[np.isfinite(s.n)] <= 0):
        raise DataError(file, "n", f"{where} has a sample count <= 0", "n must be a positive integer")


# ---------------------------------------------------------------------------- loading


def load_run(directory: str | Path) -> Run:
    """Load and validate one run directory (`run.json` + `trajectory.csv`)."""
    directory = Path(directory)
    meta_path = directory / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise DataError(meta_path, None, "file not found", "a run directory holds run.json and trajectory.csv") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(meta_path, None, f"not valid JSON ({exc})", "fix the JSON syntax") from None
    if not isinstance(meta, dict):
        raise DataError(meta_path, None, f"expected a JSON object, got {type(meta).__name__}",
                        "run.json holds one object with name, params, family, ...")
    version = meta.get("format")
    if version != FORMAT_VERSION:
        raise DataError(meta_path, "format", f"unsupported format version {version!r}",
                        f"this version of forecast reads format {FORMAT_VERSION}; re-import the run")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise DataError(meta_path, "name", "missing or not a string", 'add "name": "my-run"')
    params = meta.get("params")
    if not _is_number(params) or not math.isfinite(params) or params <= 0:
        raise DataError(meta_path, "params", f"must be a positive number, got {params!r}",
                        'give the parameter count, e.g. "params": 4.1e8')
    family = meta.get("family")
    if not isinstance(family, str) or not family:
        raise DataError(meta_path, "family", "missing or not a string", 'add "family": "my-ladder"')
    seed = meta.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise DataError(meta_path, "seed", f"expected an integer or null, got {seed!r}", 'write "seed": 0')
    source = meta.get("source", "")
    if not isinstance(source, str):
        raise DataError(meta_path, "source", "expected a string", 'write "source": "where it came from"')
    extra = meta.get("extra") or {}
    if not isinstance(extra, dict):
        raise DataError(meta_path, "extra", "expected an object", 'write "extra": {}')
    params_kind = meta.get("params_kind", "unknown")
    recipe = Recipe.from_json(meta.get("recipe"), meta_path)
    series = _read_trajectory(directory / TRAJECTORY_FILE, float(params))
    run = Run(
        name=name, params=float(params), family=family, recipe=recipe, series=series,
        params_kind=params_kind, seed=seed, source=source, extra=extra, path=directory,
    )
    validate_run(run, directory / TRAJECTORY_FILE)
    if params_kind not in PARAMS_KINDS:  # validate_run names the trajectory; name run.json here
        raise DataError(meta_path, "params_kind", f"unknown kind {params_kind!r}", f"use one of {', '.join(PARAMS_KINDS)}")
    return run


def load_runs(path: str | Path) -> list[Run]:
    """Load every run under `path` (a run directory, or a tree of them), sorted by
    family, recipe, params and name. Raises `DataError` if none is found."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "no such file or directory", "give the directory holding your runs")
    if (path / METADATA_FILE).is_file():
        return [load_run(path)]
    if not path.is_dir():
        raise DataError(path, None, "not a run directory", "give a directory holding run directories")
    found = sorted(p.parent for p in path.rglob(METADATA_FILE) if not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not found:
        raise DataError(path, None, "no runs found (no run.json under it)",
                        "import runs with `forecast import` or train some with `forecast pilot`")
    runs = [load_run(d) for d in found]
    seen: dict[str, Path] = {}
    for run in runs:
        if run.name in seen:
            raise DataError(run.path / METADATA_FILE, "name", f"run name {run.name!r} also used by {seen[run.name]}",
                            "give every run a unique name")
        seen[run.name] = run.path
    return sorted(runs, key=lambda r: (r.family, r.recipe.label, r.params, r.name))


def _read_trajectory(path: Path, params: float) -> dict[str, Series]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(path, None, "file not found", "a run directory holds run.json and trajectory.csv") from None
    except UnicodeDecodeError:
        raise DataError(path, None, "not a UTF-8 text file", "save the trajectory as CSV text") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError(path, None, "empty file", f"the first line must be the header: {','.join(COLUMNS)}")
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(path, missing[0], "required column missing from the header",
                        f"the header needs {', '.join(REQUIRED_COLUMNS)} (optional: flops, loss, stderr, n, ceiling)", line=1)
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise DataError(path, unknown[0], "unknown column", f"known columns are {', '.join(COLUMNS)}", line=1)
    index = {c: header.index(c) for c in COLUMNS if c in header}
    rows: dict[str, list[tuple]] = {}
    chance: dict[str, float | None] = {}
    ceiling: dict[str, float | None] = {}
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(path, None, f"expected {len(header)} cells, found {len(row)}",
                            "every row needs one cell per header column", line=line_no)

        def cell(col: str, *, required: bool = False, integer: bool = False) -> float | None:
            if col not in index:
                return None
            raw = row[index[col]].strip()
            if raw == "":
                if required:
                    raise DataError(path, col, "empty cell", f"give a value for {col}", line=line_no)
                return None
            try:
                value = float(raw)
            except ValueError:
                raise DataError(path, col, f"cannot read {raw!r} as a number", f"{col} must be numeric", line=line_no) from None
            if math.isnan(value):
                raise DataError(path, col, "NaN value", "leave the cell empty or give a number", line=line_no)
            if integer and value != int(value):
                raise DataError(path, col, f"expected an integer, got {raw!r}", f"{col} must be a whole number", line=line_no)
            return value

        skill = row[index["skill"]].strip()
        if not skill:
            raise DataError(path, "skill", "empty skill name", "name the skill on every row", line=line_no)
        step = cell("step", required=True, integer=True)
        tokens = cell("tokens")  # empty: unknown (a published model that does not say)
        flops = cell("flops")
        acc = cell("accuracy")
        loss = cell("loss")
        for col, value in (("tokens", tokens), ("flops", flops), ("step", step)):
            if value is not None and (value < 0 or math.isinf(value)):
                raise DataError(path, col, f"{col} must be finite and >= 0, got {value}", f"fix the {col} value", line=line_no)
        if acc is not None and not 0 <= acc <= 1:
            raise DataError(path, "accuracy", f"accuracy {acc} outside [0, 1]",
                            "give accuracy as a fraction (0.42, not 42)", line=line_no)
        if acc is None and loss is None:
            raise DataError(path, "accuracy", "neither accuracy nor loss given",
                            "a row needs an accuracy (a skill) or a loss (a metric)", line=line_no)
        ch = cell("chance")
        if acc is not None and ch is None:
            raise DataError(path, "chance", "empty chance level on a row with accuracy",
                            "0 for exact-match generation, 1/k for k-way multiple choice", line=line_no)
        ce = cell("ceiling")
        if skill in chance and (chance[skill] != ch or ceiling[skill] != ce):
            raise DataError(path, "chance", f"skill '{skill}' changes its chance or ceiling between rows",
                            "give one chance (and ceiling) per skill", line=line_no)
        chance[skill], ceiling[skill] = ch, ce
        rows.setdefault(skill, []).append(
            (int(step), tokens, flops, acc, loss, cell("stderr"), cell("n"), line_no))

    if not rows:
        raise DataError(path, None, "no data rows", "add one row per checkpoint and skill")
    series = {}
    for skill, items in rows.items():
        has_acc = [r[3] is not None for r in items]
        if any(has_acc) and not all(has_acc):
            bad = items[has_acc.index(False)][-1]
            raise DataError(path, "accuracy", f"skill '{skill}' has accuracy on some rows but not others",
                            "give accuracy on every row of a skill (or on none, for a loss-only metric)", line=bad)

        def column(i: int) -> list[float] | None:
            values = [r[i] for r in items]
            if all(v is None for v in values):
                return None
            return [math.nan if v is None else v for v in values]

        flops = column(2)
        tokens = [math.nan if r[1] is None else r[1] for r in items]
        if flops is not None:  # fill a missing cell from 6ND
            flops = [FLOPS_PER_PARAM_TOKEN * params * t if math.isnan(f) else f for f, t in zip(flops, tokens)]
        series[skill] = make_series(
            skill, [r[0] for r in items], tokens, flops=flops, params=params,
            accuracy=column(3), loss=column(4), stderr=column(5), n=column(6),
            chance=chance[skill], ceiling=ceiling[skill],
        )
    return series


# ---------------------------------------------------------------------------- writing


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_run(run: Run, directory: str | Path) -> Path:
    """Write (or rewrite) one run directory in place, file by file atomically.

    For trainers that update a run as it trains; importers use `write_runs`."""
    validate_run(run)
    directory = Path(directory)
    atomic_write_text(directory / TRAJECTORY_FILE, run.trajectory_csv())
    atomic_write_text(directory / METADATA_FILE, json.dumps(run.to_json(), indent=2) + "\n")
    return directory


def write_runs(runs: Sequence[Run], out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write runs as `out_dir/<name>/`, all or nothing.

    Every run is validated and staged in a temporary directory first; an existing run
    directory is an error unless `overwrite` (then it is replaced only after the new one
    is complete). Returns the written directories."""
    out_dir = Path(out_dir)
    names = [r.name for r in runs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise DataError(out_dir, "name", f"two runs would both be named {sorted(duplicates)[0]!r}",
                        "give each model a distinct name (e.g. with --name or a name column)")
    for run in runs:
        validate_run(run)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(out_dir, None, "exists and is not a directory", "give a directory for --out")
    if not overwrite:
        for name in names:
            if (out_dir / name).exists():
                raise DataError(out_dir / name, None, "run directory already exists",
                                "pass --overwrite to replace it, or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    written = []
    try:
        for run in runs:
            save_run(run, staging / run.name)
        for run in runs:
            target = out_dir / run.name
            if target.exists():
                trash = Path(tempfile.mkdtemp(dir=out_dir, prefix=".replaced-"))
                os.replace(target, trash / run.name)
                os.replace(staging / run.name, target)
                shutil.rmtree(trash)
            else:
                os.replace(staging / run.name, target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


# ---------------------------------------------------------------------------- summary


def run_summary(run: Run) -> dict[str, Any]:
    """A run at a glance, as plain JSON (what `forecast runs --json` prints, keys stable):
    `name`, `family`, `recipe` (label), `params`, `params_kind`, `seed`, `checkpoints`
    (distinct steps), `tokens_min`/`tokens_max` (training tokens seen at the first/last
    checkpoint), `flops_max` (training FLOPs at the last), `skills` and `metrics` (sorted
    names), `source`, `path` (the run directory, or null)."""
    return {
        "name": run.name,
        "family": run.family,
        "recipe": run.recipe.label,
        "params": _json_number(run.params),
        "params_kind": run.params_kind,
        "seed": run.seed,
        "checkpoints": int(len(run.steps)),
        "tokens_min": _json_number(run.min_tokens),
        "tokens_max": _json_number(run.final_tokens),
        "flops_max": _json_number(run.final_flops),
        "skills": sorted(run.skills),
        "metrics": sorted(run.metrics),
        "source": run.source,
        "path": None if run.path is None else str(run.path),
    }


# ---------------------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _csv_number(value: float) -> str:
    """Shortest round-trip text of a number; empty for NaN. Integers print without '.0'."""
    value = float(value)
    if math.isnan(value):
        return ""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _json_number(value: float) -> int | float | None:
    """A number for JSON: integral values as int, NaN (unknown) as null."""
    if math.isnan(value):
        return None
    return int(value) if float(value) == int(value) and abs(value) < 1e16 else float(value)


def _nan_extreme(pick, arrays: Sequence[np.ndarray]) -> float:
    """The largest (np.fmax) or smallest (np.fmin) value across arrays, ignoring NaN."""
    return float(pick.reduce(np.concatenate(arrays)))
