"""Run directories on disk: reading and writing `run.json` + `trajectory.csv`.

Loading validates everything and raises `DataError` naming file, line, field and fix.
A folder under a runs directory that is not a run (no run.json) and a pilot run whose
training did not finish are not dropped silently: `scan_runs` reports both, and callers
(`forecast runs`, `forecast fit`) say so. Writing is atomic: a failed write never leaves a
half-written run or replaces a good one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.errors import DataError
from forecast.io import atomic_write_text, check_writable_dir, read_bytes, read_json, replace_dir, staging_dir
from forecast.runs.checks import validate_run
from forecast.runs.model import METADATA_FILE, PARAMS_KINDS, TRAJECTORY_FILE, Recipe, Run, is_number
from forecast.runs.trajectory import read_trajectory
from forecast.schema.outputs import RUN_FORMAT

WHOLE_PARAMS_BELOW = 1e3
"""Below a thousand, a parameter count must be a whole number: `1.5` is a count in billions
written without its unit. Above, a fraction is the rounding of a unit product or of a
planted size (1.3e9 · k) and is read as given."""


# ---------------------------------------------------------------------------- loading


def load_run(directory: str | Path) -> Run:
    """Load and validate one run directory (`run.json` + `trajectory.csv`)."""
    directory = Path(directory)
    meta_path = directory / METADATA_FILE
    meta = read_json(meta_path, "run.json", "a run directory holds run.json and trajectory.csv")
    if not isinstance(meta, dict):
        raise DataError(meta_path, None, f"expected a JSON object, got {type(meta).__name__}",
                        "run.json holds one object with name, params, family, ...")
    version = meta.get("format")
    if version != RUN_FORMAT:
        raise DataError(meta_path, "format", f"unsupported format version {version!r}",
                        f"this version of forecast reads format {RUN_FORMAT}; re-import the run")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise DataError(meta_path, "name", "missing or not a string", 'add "name": "my-run"')
    params = meta.get("params")
    if not is_number(params) or not math.isfinite(params) or params <= 0:
        raise DataError(meta_path, "params", f"must be a positive number, got {params!r}",
                        'give the parameter count, e.g. "params": 4.1e8')
    if params > 1e30:  # 6·N·D would overflow or lose all precision
        raise DataError(meta_path, "params", f"{params:.3g} parameters cannot be right",
                        "give the parameter count, e.g. 4.1e8")
    if params < 1 or (params < WHOLE_PARAMS_BELOW and params != round(params)):
        raise DataError(meta_path, "params", f"{params!r} is not a whole number of parameters (in billions? "
                        f"write {params:g}e9)", "give the parameter count, e.g. 410000000 or 4.1e8")
    if name != directory.name and directory.name:
        raise DataError(meta_path, "name", f"run name {name!r} differs from its folder {directory.name!r}",
                        f"rename the folder to {name!r} or set \"name\": {json.dumps(directory.name)}")
    family = meta.get("family")
    if not isinstance(family, str) or not family:
        raise DataError(meta_path, "family", "missing or not a string", 'add "family": "my-ladder"')
    seed = meta.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise DataError(meta_path, "seed", f"expected an integer or null, got {seed!r}", 'write "seed": 0')
    source = meta.get("source", "")
    if not isinstance(source, str):
        raise DataError(meta_path, "source", "expected a string", 'write "source": "where it came from"')
    if seed is not None and seed < 0:
        raise DataError(meta_path, "seed", f"seed {seed} is negative", 'seeds are whole numbers >= 0: "seed": 0')
    extra = meta.get("extra")
    extra = {} if extra is None else extra
    if not isinstance(extra, dict):
        raise DataError(meta_path, "extra", "expected an object", 'write "extra": {}')
    for key in ("complete",):
        where = meta if key in meta else extra
        if key in where and not isinstance(where[key], bool):
            raise DataError(meta_path, key if where is meta else f"extra.{key}",
                            f"expected true or false, got {json.dumps(where[key])}", f'write "{key}": true')
    params_kind = meta.get("params_kind", "unknown")
    if params_kind not in PARAMS_KINDS:
        raise DataError(meta_path, "params_kind", f"unknown kind {params_kind!r}", f"use one of {', '.join(PARAMS_KINDS)}")
    recipe = Recipe.from_json(meta.get("recipe"), meta_path)
    series = read_trajectory(directory / TRAJECTORY_FILE, float(params))
    run = Run(
        name=name, params=float(params), family=family, recipe=recipe, series=series,
        params_kind=params_kind, seed=seed, source=source, extra=extra, path=directory,
    )
    validate_run(run, directory / TRAJECTORY_FILE)
    return run


@dataclass(frozen=True)
class RunScan:
    """What a runs directory holds: the runs, and what was left out with why."""

    runs: tuple[Run, ...]
    not_runs: tuple[Path, ...]  # folders holding a trajectory.csv but no run.json
    skipped: tuple[tuple[Path, str], ...] = ()  # folders left out, each with why (`scan_runs`)

    @property
    def incomplete(self) -> tuple[Run, ...]:
        """Pilot runs whose training did not finish (run.json says `complete: false`)."""
        return tuple(r for r in self.runs if r.complete is False)

    def notes(self) -> list[str]:
        """One line per folder left out, with why (callers print them as notes)."""
        return ([f"{path}: holds a trajectory.csv but no run.json; left out" for path in self.not_runs]
                + [f"{path}: {why}" for path, why in self.skipped])


def _run_folders(root: Path) -> tuple[list[Path], list[Path], list[tuple[Path, str]]]:
    """Walk `root` for run folders (holding run.json), by these rules: a folder is read once
    (a symlink to a folder already walked, or to one outside `root`, is noted and left out);
    symlinked folders are walked after the real ones; hidden folders (`.name`) are left out,
    noted when they hold a run; a run folder holds no
    runs (one nested inside it is noted and left out); an unreadable folder is noted.
    Returns run folders, folders with a trajectory.csv but no run.json, and (folder, why)."""
    runs: list[Path] = []
    orphans: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    stack, links = [root], []  # symlinked folders are walked last, so the real folder is the one kept
    while stack or links:
        folder = stack.pop() if stack else links.pop(0)
        real = os.path.realpath(folder)
        if real in seen:
            skipped.append((folder, f"the same folder as {seen[real]} (a symlink); counted once"))
            continue
        seen[real] = folder
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append((folder, f"unreadable ({exc.strerror or exc}); left out"))
            continue
        names = {e.name for e in entries}
        if METADATA_FILE in names:
            runs.append(folder)
        elif TRAJECTORY_FILE in names:
            orphans.append(folder)
        for entry in reversed(entries):
            child = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                continue
            if not is_dir:
                continue
            if entry.name.startswith("."):
                if any(True for _ in _run_files_below(child)):
                    skipped.append((child, "a hidden folder holding runs; left out"))
                continue
            if METADATA_FILE in names:
                if any(True for _ in _run_files_below(child)):
                    skipped.append((child, f"inside the run folder {folder}, which holds no runs; left out "
                                           "(give it to forecast on its own)"))
                continue
            if entry.is_symlink() and not os.path.realpath(child).startswith(os.path.realpath(root) + os.sep):
                skipped.append((child, "a symlink to a folder outside the runs directory; left out"))
                continue
            (links if entry.is_symlink() else stack).append(child)
    return sorted(runs), sorted(orphans), skipped


def _run_files_below(folder: Path):
    try:
        yield from folder.rglob(METADATA_FILE)
    except OSError:
        return


def _fingerprint(folder: Path) -> str:
    """SHA-256 of a run folder's two files (a byte-identical copy has the same)."""
    digest = hashlib.sha256()
    for name in (METADATA_FILE, TRAJECTORY_FILE):
        try:
            digest.update(read_bytes(folder / name, name))
        except DataError:
            digest.update(b"?" + name.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def scan_runs(path: str | Path) -> RunScan:
    """Every run under `path` (a run directory, or a tree of them), sorted by family,
    recipe, params and name, and what was left out with why (`_run_folders`; a byte-identical
    copy of a run under another folder is counted once and noted). Raises `DataError` if no
    run is found or two different runs share a name."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "no such file or directory", "give the directory holding your runs")
    if (path / METADATA_FILE).is_file():
        return RunScan((load_run(path),), ())
    if not path.is_dir():
        raise DataError(path, None, "not a run directory", "give a directory holding run directories")
    found, orphans, skipped = _run_folders(path)
    if not found:
        raise DataError(path, None, "no runs found (no run.json under it)",
                        "import runs with `forecast import` or train some with `forecast pilot`")
    copies: dict[str, list[Path]] = {}
    for folder in found:
        copies.setdefault(_fingerprint(folder), []).append(folder)
    runs = []
    for group in copies.values():
        # a byte-identical copy in a folder of the same name (runs/a/x, runs/b/x) is counted once;
        # one in a folder of another name breaks the rule that a run's folder is its name (refused)
        kept = group[0]
        runs.append(load_run(kept))
        for folder in group[1:]:
            if folder.name != kept.name:
                load_run(folder)  # raises: its name differs from its folder
            skipped.append((folder, f"a byte-identical copy of {kept}; counted once"))
    seen: dict[str, Path] = {}
    for run in runs:
        if run.name in seen:
            raise DataError(run.path / METADATA_FILE, "name", f"run name {run.name!r} also used by {seen[run.name]}",
                            "give every run a unique name")
        seen[run.name] = run.path
    ordered = sorted(runs, key=lambda r: (r.family, r.recipe.label, r.params, r.name))
    return RunScan(tuple(ordered), tuple(orphans), tuple(skipped))


def load_runs(path: str | Path) -> list[Run]:
    """Load every run under `path` (see `scan_runs`)."""
    return list(scan_runs(path).runs)


# ---------------------------------------------------------------------------- writing


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
                        "give each model a distinct name (e.g. with `name` or a name column)")
    for run in runs:
        validate_run(run)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(out_dir, None, "exists and is not a directory", "give a directory for `out_dir`")
    for name in names:
        target = out_dir / name
        if os.path.lexists(target) and not overwrite:
            raise DataError(target, None, "run directory already exists",
                            "pass `overwrite=True` to replace it, or choose another `out_dir`")
        if os.path.lexists(target) and (target.is_symlink() or not (target / METADATA_FILE).is_file()):
            # overwrite replaces forecast's own run folders, never a file, a link or a folder of the user's
            raise DataError(target, None, "exists and is not a run folder (no run.json), so `overwrite` leaves it",
                            "move it away, or choose another `out_dir`")
    check_writable_dir(out_dir)
    staging = staging_dir(out_dir, ".staging-")
    written = []
    try:
        for run in runs:
            save_run(run, staging / run.name)
        for run in runs:
            replace_dir(staging / run.name, out_dir / run.name)
            written.append(out_dir / run.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def run_summaries(runs: Sequence[Run], paths: Sequence[Path] | None = None) -> list[dict[str, Any]]:
    """`Run.summary` of each run, with the written path when given."""
    out = [run.summary() for run in runs]
    if paths is not None:
        for summary, path in zip(out, paths):
            summary["path"] = str(path)
    return out


def final_accuracy(run: Run) -> dict[str, float]:
    """Each skill's accuracy at the run's last checkpoint."""
    return {s: float(run.series[s].accuracy[-1]) for s in run.skills}
