"""The fits directory on disk (`forecast fit` writes it, every forecast reads it).

Layout (format `schema.FITS_FORMAT`):

    fits/
      index.json                        groups, and each skill's file with its SHA-256
      <family>--<recipe>/<skill>-<hash>.json   one `SkillFit` (schema.SkillFitJson)

A write is one atomic switch: new skill files get new names (their content hash), the
index is renamed into place last, and only then are files no index lists removed. A kill
at any moment leaves the old index pointing at the old files, or the new index at the new
ones, never a mix; loading checks every file against the hash the index gives. Fitting a
subset of skills replaces those skills and keeps every other one. Folder names are
unique per (family, recipe): labels that a file system cannot hold verbatim get a short
hash of the exact label.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forecast.fitting.candidates import TWO_STEP, CandidateFit, Scales, Spec
from forecast.errors import DataError
from forecast.store.index import INDEX_FILE, REFIT, check_fits_dir, check_inside, read_index
from forecast.io import atomic_write_text, check_writable_dir, parse_json, read_json, read_text
from forecast.fitting.laws import ACCURACY_LAWS
from forecast.fitting.loss_fit import LossFit
from forecast.fitting.results import (RECORD_COLUMNS, Calibration, Candidate, HoldoutItem, HoldoutScore, PilotRun,
                                     SkillFit)
from forecast.schema.outputs import FITS_FORMAT, CandidateJson, SkillFitJson, finite, finite_list
from forecast.fitting.status import Note, Status

KNOWN_LAWS = (*ACCURACY_LAWS, TWO_STEP)


def slug(label: str) -> str:
    """A folder-name-safe form of a label, unique per label: kept verbatim when it is
    plain ASCII letters, digits, '.', '_' or '-'; otherwise the safe part plus a short
    hash of the exact label (so `pythiä` and `pythiö` get different folders)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "_"
    if safe == label:
        return safe
    return f"{safe}-{hashlib.sha256(label.encode()).hexdigest()[:6]}"


def group_dir(family: str, recipe: str) -> str:
    return f"{slug(family)}--{slug(recipe)}"


# ---------------------------------------------------------------------------- to JSON


def skill_fit_to_json(fit: SkillFit, tool: str) -> SkillFitJson:
    return {
        "format": FITS_FORMAT,
        "tool": tool,
        "family": fit.family,
        "recipe": fit.recipe,
        "skill": fit.skill,
        "status": str(fit.status),
        "reason": fit.reason,
        "chance": fit.chance,
        "top": fit.top,
        "noise": finite(fit.noise),
        "n_eval": finite(fit.n_eval),
        "law": fit.law,
        "why": fit.why,
        "notes": [n.to_json() for n in fit.notes],
        "scales": None if fit.scales is None else fit.scales.to_json(),
        "calibration": None if fit.calibration is None else fit.calibration.to_json(),
        "candidates": [_candidate_to_json(c) for c in fit.candidates],
        "pilots": [{
            "name": p.name, "hash": p.hash, "params": p.params, "seed": p.seed,
            "tokens": finite_list(p.tokens), "flops": finite_list(p.flops),
            "accuracy": finite_list(p.accuracy, 6), "smoothed": finite_list(p.smoothed, 6),
            "examples": None if p.examples is None else finite_list(p.examples),
        } for p in fit.pilots],
        "options": fit.options,
        "tokens_known": fit.tokens_known,
        "borrowed_from": list(fit.borrowed_from),
        "borrowed_skills": list(fit.borrowed_skills),
        "flat": fit.flat,
        "accelerating": fit.accelerating,
        "span": fit.span,
    }


def _record(rows: list, file: str, where: str) -> tuple[HoldoutItem, ...]:
    if not all(isinstance(r, list) and len(r) == len(RECORD_COLUMNS) for r in rows):
        raise DataError(file, where, f"each record row holds {len(RECORD_COLUMNS)} values "
                        f"({', '.join(RECORD_COLUMNS)})", REFIT)
    return tuple(HoldoutItem.from_row([_finite_number(v, file, f"{where}[{j}].{k}")
                                       for k, v in zip(RECORD_COLUMNS, row)]) for j, row in enumerate(rows))


def _candidate_to_json(c: Candidate) -> CandidateJson:
    f = c.fit
    names = f.spec.param_names
    h = c.holdout
    return {
        "law": f.spec.law, "floor_kind": f.spec.floor, "via": f.spec.via,
        "weight": finite(c.weight, 6),
        "holdout": {"mae": finite(h.mae, 6), "shift": finite(h.shift, 6), "distance": finite(h.distance, 6),
                    "error": finite(h.error, 6), "loglik": finite(h.loglik, 6), "origins": h.origins,
                    "record": [i.to_row() for i in h.record]} if h else
                   {"mae": None, "shift": None, "distance": None, "error": None, "loglik": None, "origins": 0,
                    "record": []},
        "floor": f.floor, "top": f.top,
        "params": dict(zip(names, finite_list(f.theta))),
        "stderr": dict(zip(names, finite_list(f.stderr, 6))),
        "converged": f.converged, "at_bound": list(f.at_bound),
        "loss_ref": f.loss_ref, "loss_scale": f.loss_scale, "notes": list(f.notes), "least": finite(f.least),
        "offset": f.offset,
        "draws": [finite_list(row, 6) for row in f.draws],
    }


# ---------------------------------------------------------------------------- from JSON


def _finite_number(value: Any, file: Path, field: str, *, lower: float | None = None,
                   upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(file, field, f"expected a finite number, got {value!r}", REFIT)
    if (lower is not None and value < lower) or (upper is not None and value > upper):
        raise DataError(file, field, f"{value!r} is out of range [{lower}, {upper}]", REFIT)
    return float(value)


MAX_LAW_PARAMETER = 1e30
"""Largest magnitude a law parameter or bootstrap draw may have in a fits file: laws work in
scaled units (exponents, logs, slopes of order 1; token scales up to 1e30), and a value like
1e300 overflows every curve drawn from it (inf or NaN forecasts)."""


def _parameter(value: Any, file: Path, field: str) -> float:
    number = _finite_number(value, file, field)
    if abs(number) > MAX_LAW_PARAMETER:
        raise DataError(file, field, f"{number:.3g} is beyond any law parameter (|value| <= {MAX_LAW_PARAMETER:.0e})",
                        REFIT)
    return number


def _array(rows: Any, file: Path, field: str, width: int) -> np.ndarray:
    """Bootstrap draws: a list of rows of `width` finite numbers each, within `MAX_LAW_PARAMETER`."""
    if not isinstance(rows, list) or not all(isinstance(row, list) and len(row) == width for row in rows):
        raise DataError(file, field, f"expected a list of rows of {width} numbers each", REFIT)
    return np.array([[_parameter(v, file, field) for v in row] for row in rows], dtype=float).reshape(-1, width)


def _calibration(data: Any, file: Path) -> Calibration | None:
    """The calibration of a fit file, checked for its meaning: rates >= 0, a whole number of
    holdouts (0: the prior alone), degrees of freedom > 0 (a t interval with 0 has no width), distance >= 0."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise DataError(file, "calibration", "expected an object", REFIT)
    for key in ("shift_rate", "error_rate", "max_distance"):
        _finite_number(data.get(key), file, f"calibration.{key}", lower=0)
    dof = _finite_number(data.get("dof"), file, "calibration.dof")
    if dof <= 0:
        raise DataError(file, "calibration.dof", f"{dof:g} degrees of freedom (needs > 0)", REFIT)
    holdouts = data.get("holdouts")
    if isinstance(holdouts, bool) or not isinstance(holdouts, int) or holdouts < 0:
        raise DataError(file, "calibration.holdouts", f"expected a whole number >= 0, got {holdouts!r}", REFIT)
    return Calibration.from_json(data)


def _numbers(values: Any, file: Path, field: str) -> tuple[float, ...]:
    """A list of numbers, null for unknown (NaN): what a pilot's trajectory holds."""
    if not isinstance(values, list):
        raise DataError(file, field, f"expected a list of numbers, got {type(values).__name__}", REFIT)
    return tuple(np.nan if v is None else _finite_number(v, file, field) for v in values)


def skill_fit_from_json(data: Any, file: Path) -> SkillFit:
    """Read one skill file, checking that every number a forecast reads is finite."""
    if not isinstance(data, dict) or data.get("format") != FITS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise DataError(file, "format", f"unsupported fits format {found!r}",
                        f"this version reads format {FITS_FORMAT}; {REFIT}")
    try:
        status = Status(data["status"])
        scales = None if data["scales"] is None else Scales.from_json(data["scales"])
        if scales is not None and not all(math.isfinite(v) and v > 0 for v in scales.to_json().values()):
            raise DataError(file, "scales", "non-finite or non-positive reference scale", REFIT)
        chance = _finite_number(data["chance"], file, "chance", lower=0, upper=1)
        top = _finite_number(data["top"], file, "top", lower=0, upper=1)
        candidates = []
        for i, c in enumerate(data["candidates"]):
            where = f"candidates[{i}]"
            if c["law"] not in KNOWN_LAWS:
                raise DataError(file, f"{where}.law", f"unknown law {c['law']!r} (this version knows "
                                f"{', '.join(KNOWN_LAWS)})", REFIT)
            spec = Spec(c["law"], c["floor_kind"], c["via"])
            names = spec.param_names
            if not isinstance(c["params"], dict) or set(names) - set(c["params"]):
                missing = sorted(set(names) - set(c["params"])) if isinstance(c["params"], dict) else names
                raise DataError(file, f"{where}.params", f"missing parameter {missing[0]!r} of law {spec.law}", REFIT)
            theta = np.array([_parameter(c["params"][n], file, f"{where}.params.{n}") for n in names])
            draws = _array(c["draws"], file, f"{where}.draws", len(names))
            weight = _finite_number(c["weight"], file, f"{where}.weight", lower=0, upper=1)
            fit = CandidateFit(
                spec=spec, floor=_finite_number(c["floor"], file, f"{where}.floor", lower=0, upper=1),
                top=_finite_number(c["top"], file, f"{where}.top", lower=0, upper=1), scales=scales,
                theta=theta, stderr=np.array([np.nan if c["stderr"].get(n) is None else
                                              _finite_number(c["stderr"][n], file, f"{where}.stderr.{n}")
                                              for n in names]),
                draws=draws, converged=bool(c["converged"]), at_bound=tuple(c["at_bound"]),
                loss_ref=_finite_number(c["loss_ref"], file, f"{where}.loss_ref"),
                loss_scale=_finite_number(c["loss_scale"], file, f"{where}.loss_scale"), notes=tuple(c["notes"]),
                least=None if c.get("least") is None else _finite_number(c["least"], file, f"{where}.least", lower=0, upper=1),
                offset=_finite_number(c.get("offset", 0.0), file, f"{where}.offset", lower=-1, upper=1),
            )
            h = c["holdout"]
            holdout = None if h["mae"] is None else HoldoutScore(
                mae=h["mae"], shift=h["shift"] if h["shift"] is not None else math.nan,
                error=h["error"] if h["error"] is not None else math.nan,
                distance=h["distance"] if h["distance"] is not None else math.nan, loglik=h.get("loglik"),
                origins=int(h.get("origins") or 1),
                record=_record(h.get("record") or [], file, f"{where}.holdout.record"))
            candidates.append(Candidate(fit, weight, holdout))
        if status == Status.FITTED:
            if not candidates:
                raise DataError(file, "candidates", "a fitted skill with no candidate law", REFIT)
            if sum(c.weight for c in candidates) <= 0:
                raise DataError(file, "candidates", "every candidate has weight 0", REFIT)
        pilots = tuple(_pilot(p, file, f"pilots[{i}]") for i, p in enumerate(data["pilots"]))
        if status == Status.FITTED and not pilots:
            raise DataError(file, "pilots", "a fitted skill with no pilot runs", REFIT)
        if status == Status.FITTED and not all(p.tokens and np.isfinite(p.tokens).any() for p in pilots):
            raise DataError(file, "pilots", "a pilot of a fitted skill has no known tokens", REFIT)
        return SkillFit(
            family=str(data["family"]), recipe=str(data["recipe"]), skill=str(data["skill"]), status=status,
            reason=data["reason"], chance=chance, top=top,
            noise=np.nan if data["noise"] is None else _finite_number(data["noise"], file, "noise", lower=0),
            n_eval=data["n_eval"], pilots=pilots, scales=scales, candidates=tuple(candidates), law=data["law"],
            calibration=_calibration(data.get("calibration"), file),
            why=data["why"], notes=tuple(Note.from_json(n) for n in data["notes"]), options=data["options"],
            tokens_known=bool(data.get("tokens_known", True)),
            borrowed_from=tuple(data.get("borrowed_from", ())),
            borrowed_skills=tuple(data.get("borrowed_skills", ())), flat=bool(data.get("flat", False)),
            accelerating=data.get("accelerating") if isinstance(data.get("accelerating"), bool) else None,
            span=float(data.get("span", 0.0)),
        )
    except DataError:
        raise
    except KeyError as exc:
        raise DataError(file, str(exc.args[0]), "missing entry in a fit file", REFIT) from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise DataError(file, None, f"malformed entry in a fit file ({exc})", REFIT) from None


def _pilot(p: Any, file: Path, where: str) -> PilotRun:
    """One pilot run of a fit file, every number checked (a forecast reads them)."""
    if not isinstance(p, dict):
        raise DataError(file, where, "expected an object", REFIT)
    series = {key: _numbers(p[key], file, f"{where}.{key}") for key in ("tokens", "flops", "accuracy", "smoothed")}
    if len({len(v) for v in series.values()}) != 1:
        raise DataError(file, where, "tokens, flops, accuracy and smoothed differ in length", REFIT)
    return PilotRun(
        name=str(p["name"]), hash=str(p["hash"]), params=_finite_number(p["params"], file, f"{where}.params", lower=1),
        seed=p["seed"], **series,
        examples=None if p.get("examples") is None else _numbers(p["examples"], file, f"{where}.examples"),
    )


# ---------------------------------------------------------------------------- the directory


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def save_fits(skill_fits: Sequence[SkillFit], tool: str, out_dir: str | Path,
              loss_fits: Sequence[LossFit] = ()) -> list[Path]:
    """Write skill fits (and loss fits) under `out_dir`, merged with what is there (see
    module docstring): a skill (or loss series) present replaces that one; every other stays."""
    out_dir = Path(out_dir)
    check_writable_dir(out_dir)
    index_path = out_dir / INDEX_FILE
    existing: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    old_losses: dict[tuple[str, str, str], dict[str, str]] = {}
    superseded: list[Path] = []
    if index_path.exists():
        old = read_json(index_path, "fits index", REFIT)
        if isinstance(old, dict) and old.get("format") == 1 and isinstance(old.get("groups"), list):
            # format 1 (forecast 0.1) cannot be merged: replaced whole, its files removed after the switch
            superseded = [out_dir / rel for g in old["groups"] for rel in g.get("skills", {}).values()
                          if isinstance(rel, str)]
        else:
            old_index = read_index(index_path)
            for g in old_index["groups"]:
                existing[(g["family"], g["recipe"])] = dict(g["skills"])
            old_losses = _loss_entries(old_index, index_path)
    for stale in out_dir.rglob(".*.tmp"):  # left by a write that was killed
        stale.unlink(missing_ok=True)
    merged = {key: dict(skills) for key, skills in existing.items()}
    written = []
    for fit in skill_fits:
        text = json.dumps(skill_fit_to_json(fit, tool), indent=1, allow_nan=False) + "\n"
        digest = _sha(text)
        rel = f"{group_dir(fit.family, fit.recipe)}/{slug(fit.skill)}-{digest[:10]}.json"
        if not (out_dir / rel).exists() or _sha((out_dir / rel).read_text()) != digest:
            atomic_write_text(out_dir / rel, text)
        merged.setdefault((fit.family, fit.recipe), {})[fit.skill] = {"file": rel, "sha256": digest}
        written.append(out_dir / rel)
    losses = _write_loss_files(loss_fits, tool, out_dir, old_losses)
    written += [out_dir / e["file"] for key, e in losses.items() if key in {(f.family, f.recipe, f.metric)
                                                                             for f in loss_fits}]
    index = {"format": FITS_FORMAT, "tool": tool, "groups": [
        {"family": f, "recipe": r, "skills": dict(sorted(merged[(f, r)].items()))} for f, r in sorted(merged)]}
    if losses:
        index["losses"] = [{"family": f, "recipe": r, "metric": m, **losses[(f, r, m)]} for f, r, m in sorted(losses)]
    atomic_write_text(index_path, json.dumps(index, indent=1) + "\n")
    # the switch is done; files no index lists are leftovers of earlier writes
    listed = {out_dir / e["file"] for skills in merged.values() for e in skills.values()}
    listed |= {out_dir / e["file"] for e in losses.values()}
    for folder in {file.parent for file in listed} | {(out_dir / e["file"]).parent for e in old_losses.values()}:
        for file in folder.glob("*.json"):
            if file not in listed:
                file.unlink(missing_ok=True)
    for file in superseded:
        if file not in listed:
            file.unlink(missing_ok=True)
    return written


# ---------------------------------------------------------------------------- loss fits
# Listed in index.json under "losses": [{family, recipe, metric, file, sha256}], one file
# per loss series, <family>--<recipe>/losses/<metric>-<hash>.json (schema.LossFitJson).


def _loss_entries(index: dict[str, Any], path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    entries = index.get("losses", [])
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("file"), str) and "sha256" in e and {"family", "recipe", "metric"} <= set(e)
            for e in entries):
        raise DataError(path, "losses", "malformed loss entry (needs family, recipe, metric, file and sha256)", REFIT)
    return {(e["family"], e["recipe"], e["metric"]): {"file": check_inside(e["file"], path), "sha256": e["sha256"]}
            for e in entries}


def _write_loss_files(loss_fits: Sequence[LossFit], tool: str, out_dir: Path,
                      old: dict[tuple[str, str, str], dict[str, str]]) -> dict[tuple[str, str, str], dict[str, str]]:
    """Write each loss fit's file (named by its content hash); the merged entries."""
    merged = dict(old)
    for fit in loss_fits:
        text = json.dumps(fit.to_json(tool), indent=1, allow_nan=False) + "\n"
        digest = _sha(text)
        rel = f"{group_dir(fit.family, fit.recipe)}/losses/{slug(fit.metric)}-{digest[:10]}.json"
        if not (out_dir / rel).exists() or _sha((out_dir / rel).read_text()) != digest:
            atomic_write_text(out_dir / rel, text)
        merged[(fit.family, fit.recipe, fit.metric)] = {"file": rel, "sha256": digest}
    return merged


def load_loss_fits(path: str | Path) -> list[LossFit]:
    """Every loss fit listed in `path/index.json` ("losses"), each checked against its hash."""
    path = Path(path)
    out = []
    for entry in _loss_entries(check_fits_dir(path), path / INDEX_FILE).values():
        file = path / entry["file"]
        text = read_text(file, "loss-fit file listed in index.json", REFIT)
        if _sha(text) != entry["sha256"]:
            raise DataError(file, None, "does not match the hash index.json gives (changed or partly written)", REFIT)
        data = parse_json(text, file, REFIT, nan_as_null=True)
        out.append(LossFit.from_json(data, file))
    return out


def load_fits(path: str | Path) -> tuple[list[SkillFit], str]:
    """Every skill fit listed in `path/index.json`, each checked against its hash; and
    the tool that wrote the index."""
    path = Path(path)
    index = check_fits_dir(path)
    skills = []
    for group in index["groups"]:
        for entry in group["skills"].values():
            file = path / entry["file"]
            text = read_text(file, "fit file listed in index.json", REFIT)
            if _sha(text) != entry["sha256"]:
                raise DataError(file, None, "does not match the hash index.json gives (changed or partly written)",
                                REFIT)
            data = parse_json(text, file, REFIT, nan_as_null=True)
            skills.append(skill_fit_from_json(data, file))
    return skills, str(index.get("tool", ""))
