"""The fits directory's index (`index.json`), read without the numerical stack.

A leaf module (json, hashlib and the error types only), so that `forecast predict --fits
DIR` with a wrong or missing DIR, or a broken index, answers in a fraction of a second:
the CLI checks the index here before it imports the fitting engine. `forecast.store.files`
reads the skill files the index lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forecast.errors import DataError
from forecast.io import read_json
from forecast.schema.outputs import FITS_FORMAT

INDEX_FILE = "index.json"
REFIT = "re-run `forecast fit RUNS --out DIR` to regenerate it"


def read_index(path: str | Path) -> dict[str, Any]:
    """`index.json` checked for its shape: format, groups, and a file and SHA-256 per skill."""
    path = Path(path)
    index = read_json(path, "fits index", REFIT)
    if not isinstance(index, dict) or index.get("format") != FITS_FORMAT or not isinstance(index.get("groups"), list):
        raise DataError(path, "format", f"not a fits index of format {FITS_FORMAT}", REFIT)
    for g in index["groups"]:
        if not isinstance(g, dict) or not isinstance(g.get("skills"), dict) or not {"family", "recipe"} <= set(g):
            raise DataError(path, "groups", "malformed group entry", REFIT)
        for entry in g["skills"].values():
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "sha256" not in entry:
                raise DataError(path, "groups.skills", "malformed skill entry (needs file and sha256)", REFIT)
            check_inside(entry["file"], path)
    return index


def check_inside(rel: str, index: Path) -> str:
    """A file named in index.json: a relative path inside the fits directory (no '..', not
    absolute), so that a hand-edited index never reads a file elsewhere."""
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts or "\\" in rel or "\x00" in rel:
        raise DataError(index, "groups.skills.file", f"{rel!r} is not a path inside the fits directory", REFIT)
    return rel


def check_fits_dir(path: str | Path) -> dict[str, Any]:
    """The index of the fits directory `path`; a `DataError` when `path` is not one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(path, None, "not a directory", "give the directory `forecast fit --out` wrote")
    if not (path / INDEX_FILE).exists():
        raise DataError(path, None, "no fits here (no index.json)", "run `forecast fit RUNS --out DIR` first")
    return read_index(path / INDEX_FILE)
