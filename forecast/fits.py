"""Fitted models of each skill, and their file format (`fits/`, format version 1).

`fits/index.json` lists every (family, recipe) group and the file of each skill;
`fits/<family>--<recipe>/<skill>.json` holds one `SkillFit`: status and reason, every
candidate law's parameters, bootstrap draws (compact), hold-out extrapolation scores and
weights, the chosen law and why, the pilot trajectories it saw (run names and content
hashes), tool and format versions. Writing is atomic per file and the index is written
last, so an interrupted `forecast fit` never leaves an index pointing at a partial file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.candidates import CandidateFit, Scales, Spec
from forecast.errors import DataError, UsageError
from forecast.runs import atomic_write_text

FITS_FORMAT = 1
INDEX_FILE = "index.json"
FITTED = "fitted"
NOT_PREDICTABLE = "not-predictable"


@dataclass(frozen=True, eq=False)
class Candidate:
    """A candidate law with its hold-out score and its weight in the forecast mixture.

    The hold-out score fits the law on all but the largest pilot size and predicts the
    largest: `holdout_mae` (accuracy, fraction), `holdout_shift` (how far, in e-folds of
    tokens, the law misplaced the largest size's curve: the shift that best aligns them;
    it sets how fast forecast intervals widen with extrapolation) and `holdout_distance`
    (how far that hold-out extrapolated, in e-folds of parameters or FLOPs), and
    `holdout_misfit` (accuracy error left once the curve is aligned: error of shape)."""

    fit: CandidateFit
    weight: float
    holdout_mae: float | None = None
    holdout_shift: float | None = None
    holdout_distance: float | None = None
    holdout_misfit: float | None = None

    @property
    def key(self) -> str:
        return self.fit.spec.key


@dataclass(frozen=True)
class PilotRun:
    """One pilot run as the fit saw it (post warm-up checkpoints)."""

    name: str
    hash: str
    params: float  # parameters
    seed: int | None
    tokens: tuple[float, ...]  # training tokens at each checkpoint
    flops: tuple[float, ...]  # training FLOPs at each checkpoint
    accuracy: tuple[float, ...]
    smoothed: tuple[float, ...]  # isotonic (non-decreasing) accuracy


@dataclass(frozen=True, eq=False)
class SkillFit:
    """Everything `forecast` knows about one skill of one (family, recipe) group."""

    family: str
    recipe: str
    skill: str
    status: str  # "fitted" or "not-predictable"
    reason: str | None  # why not predictable, or None
    chance: float
    top: float  # highest attainable accuracy (ceiling, else 1)
    noise: float  # checkpoint-to-checkpoint noise of accuracy (standard deviation)
    n_eval: float | None  # typical evaluation sample count (for binomial noise at the target)
    pilots: tuple[PilotRun, ...]
    scales: Scales | None = None
    candidates: tuple[Candidate, ...] = ()
    chosen: str | None = None
    why: str = ""
    warnings: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def predictable(self) -> bool:
        return self.status == FITTED

    @property
    def sizes(self) -> tuple[float, ...]:
        return tuple(sorted({p.params for p in self.pilots}))

    @property
    def max_flops(self) -> float:
        """Largest training compute any pilot reached (FLOPs)."""
        return max(max(p.flops) for p in self.pilots if p.flops)

    @property
    def floor(self) -> float:
        """Floor of the chosen law (chance unless an estimated floor won)."""
        best = max(self.candidates, key=lambda c: c.weight, default=None)
        return best.fit.floor if best else self.chance



@dataclass(frozen=True, eq=False)
class Fits:
    """A collection of skill fits, keyed by (family, recipe, skill). Load with `Fits.load`."""

    skills: tuple[SkillFit, ...]
    tool: str = ""
    source: str | None = None  # directory loaded from

    def groups(self) -> list[tuple[str, str]]:
        return sorted({(s.family, s.recipe) for s in self.skills})

    def group(self, family: str | None = None, recipe: str | None = None) -> tuple[str, str]:
        """The one (family, recipe) group selected; `UsageError` if none or ambiguous."""
        groups = [g for g in self.groups() if (family is None or g[0] == family) and (recipe is None or g[1] == recipe)]
        if len(groups) == 1:
            return groups[0]
        listing = ", ".join(f"--family {f} --recipe {r}" for f, r in self.groups())
        if not groups:
            raise UsageError(f"no fits for family={family!r} recipe={recipe!r}; the fits hold: {listing}")
        raise UsageError(f"the fits hold several groups; choose one with {listing}")

    def select(self, family: str | None = None, recipe: str | None = None,
               skills: Sequence[str] | None = None) -> list[SkillFit]:
        """Skill fits of one group; `skills` None or ["all"] for every skill. Skill names
        match case-insensitively; an unknown one is a `UsageError` listing the known ones."""
        fam, rec = self.group(family, recipe)
        members = [s for s in self.skills if s.family == fam and s.recipe == rec]
        if not skills or any(s.lower() == "all" for s in skills):
            return members
        by_name = {s.skill.lower(): s for s in members}
        out = []
        for name in skills:
            if name.lower() not in by_name:
                known = ", ".join(sorted(s.skill for s in members))
                raise UsageError(f"unknown skill {name!r} for family {fam!r}; the fits hold: {known}")
            out.append(by_name[name.lower()])
        return out

    # -------------------------------------------------------------------- forecasts

    def predict(self, params: float, **kwargs: Any):
        """Forecast for a model of `params` parameters; see `forecast.predict.predict`."""
        from forecast.predict import predict

        return predict(self, params, **kwargs)

    def plan_target(self, skill: str, target: float, **kwargs: Any):
        """Smallest compute to reach `target` accuracy; see `forecast.plan.plan_target`."""
        from forecast.plan import plan_target

        return plan_target(self, skill, target, **kwargs)

    def plan_budget(self, flops: float, **kwargs: Any):
        """Per-skill outlook of a compute-optimal model at `flops`; see `forecast.plan.plan_budget`."""
        from forecast.plan import plan_budget

        return plan_budget(self, flops, **kwargs)

    # -------------------------------------------------------------------- files

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write the fits under `out_dir`, merging with groups already there."""
        return save_fits(self, out_dir)

    @classmethod
    def load(cls, path: str | Path) -> Fits:
        return load_fits(path)


# ============================================================================ JSON


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def _num(x: float | None, digits: int | None = None) -> float | None:
    if x is None:
        return None
    x = float(x)
    if not np.isfinite(x):
        return None
    return float(f"{x:.{digits}g}") if digits else x


def skill_fit_to_json(fit: SkillFit, tool: str) -> dict[str, Any]:
    return {
        "format": FITS_FORMAT,
        "tool": tool,
        "family": fit.family,
        "recipe": fit.recipe,
        "skill": fit.skill,
        "status": fit.status,
        "reason": fit.reason,
        "chance": fit.chance,
        "top": fit.top,
        "noise": _num(fit.noise),
        "n_eval": _num(fit.n_eval),
        "chosen": fit.chosen,
        "why": fit.why,
        "warnings": list(fit.warnings),
        "scales": None if fit.scales is None else fit.scales.__dict__,
        "candidates": [_candidate_to_json(c) for c in fit.candidates],
        "pilots": [{
            "name": p.name, "hash": p.hash, "params": p.params, "seed": p.seed,
            "tokens": list(p.tokens), "flops": list(p.flops),
            "accuracy": [_num(a, 6) for a in p.accuracy], "smoothed": [_num(a, 6) for a in p.smoothed],
        } for p in fit.pilots],
        "options": fit.options,
    }


def _candidate_to_json(c: Candidate) -> dict[str, Any]:
    f = c.fit
    names = f.spec.param_names
    return {
        "law": f.spec.law, "floor_kind": f.spec.floor, "via": f.spec.via,
        "weight": _num(c.weight, 6),
        "holdout": {"mae": _num(c.holdout_mae, 6), "shift": _num(c.holdout_shift, 6),
                    "distance": _num(c.holdout_distance, 6), "misfit": _num(c.holdout_misfit, 6)},
        "floor": f.floor, "top": f.top,
        "params": dict(zip(names, (_num(v) for v in f.theta))),
        "stderr": dict(zip(names, (_num(v, 6) for v in f.stderr))),
        "converged": f.converged, "at_bound": list(f.at_bound),
        "loss_ref": f.loss_ref, "loss_scale": f.loss_scale, "notes": list(f.notes),
        "draws": [[_num(v, 6) for v in row] for row in f.draws],
    }


def skill_fit_from_json(data: dict[str, Any], file: Path) -> SkillFit:
    if data.get("format") != FITS_FORMAT:
        raise DataError(file, "format", f"unsupported fits format {data.get('format')!r}",
                        f"this version reads format {FITS_FORMAT}; re-run `forecast fit`")
    nan = lambda v: np.nan if v is None else v  # noqa: E731
    try:
        scales = None if data["scales"] is None else Scales(**data["scales"])
        candidates = []
        for c in data["candidates"]:
            spec = Spec(c["law"], c["floor_kind"], c["via"])
            names = spec.param_names
            fit = CandidateFit(
                spec=spec, floor=c["floor"], top=c["top"], scales=scales,
                theta=np.array([nan(c["params"][n]) for n in names], dtype=float),
                stderr=np.array([nan(c["stderr"][n]) for n in names], dtype=float),
                draws=np.array([[nan(v) for v in row] for row in c["draws"]], dtype=float).reshape(-1, len(names)),
                converged=c["converged"], at_bound=tuple(c["at_bound"]),
                loss_ref=c["loss_ref"], loss_scale=c["loss_scale"], notes=tuple(c["notes"]),
            )
            h = c["holdout"]
            candidates.append(Candidate(fit, c["weight"], h["mae"], h["shift"], h["distance"], h["misfit"]))
        pilots = tuple(PilotRun(
            name=p["name"], hash=p["hash"], params=p["params"], seed=p["seed"], tokens=tuple(p["tokens"]),
            flops=tuple(p["flops"]), accuracy=tuple(nan(a) for a in p["accuracy"]),
            smoothed=tuple(nan(a) for a in p["smoothed"]),
        ) for p in data["pilots"])
        return SkillFit(
            family=data["family"], recipe=data["recipe"], skill=data["skill"], status=data["status"],
            reason=data["reason"], chance=data["chance"], top=data["top"],
            noise=nan(data["noise"]), n_eval=data["n_eval"], pilots=pilots, scales=scales,
            candidates=tuple(candidates), chosen=data["chosen"], why=data["why"],
            warnings=tuple(data["warnings"]), options=data["options"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(file, str(exc).strip("'"), "missing or malformed entry in a fit file",
                        "re-run `forecast fit` to regenerate it") from None


def save_fits(fits: Fits, out_dir: str | Path) -> list[Path]:
    """Write each skill file atomically, then the merged index (last, also atomic).

    Groups present in `fits` replace those groups in an existing index; other groups
    already in `out_dir` stay."""
    out_dir = Path(out_dir)
    index_path = out_dir / INDEX_FILE
    existing: dict[tuple[str, str], dict[str, str]] = {}
    if index_path.exists():
        for g in _read_index(index_path)["groups"]:
            existing[(g["family"], g["recipe"])] = g["skills"]
    written = []
    new_groups: dict[tuple[str, str], dict[str, str]] = {}
    for fit in fits.skills:
        rel = f"{_slug(fit.family)}--{_slug(fit.recipe)}/{_slug(fit.skill)}.json"
        atomic_write_text(out_dir / rel, json.dumps(skill_fit_to_json(fit, fits.tool), indent=1, allow_nan=False) + "\n")
        new_groups.setdefault((fit.family, fit.recipe), {})[fit.skill] = rel
        written.append(out_dir / rel)
    stale = [rel for key, skills in existing.items() if key in new_groups
             for rel in skills.values() if rel not in new_groups[key].values()]
    existing.update(new_groups)
    index = {"format": FITS_FORMAT, "tool": fits.tool, "groups": [
        {"family": f, "recipe": r, "skills": dict(sorted(existing[(f, r)].items()))} for f, r in sorted(existing)]}
    atomic_write_text(index_path, json.dumps(index, indent=1) + "\n")
    for rel in stale:
        (out_dir / rel).unlink(missing_ok=True)
    return written


def _read_index(path: Path) -> dict[str, Any]:
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"not valid JSON ({exc})", "re-run `forecast fit`") from None
    if not isinstance(index, dict) or index.get("format") != FITS_FORMAT or not isinstance(index.get("groups"), list):
        raise DataError(path, "format", "not a fits index of format 1", "re-run `forecast fit` to regenerate it")
    return index


def load_fits(path: str | Path) -> Fits:
    """Load every skill fit listed in `path/index.json`."""
    path = Path(path)
    index_path = path / INDEX_FILE
    if not index_path.exists():
        raise DataError(path, None, "no fits here (no index.json)", "run `forecast fit RUNS --out DIR` first")
    index = _read_index(index_path)
    skills = []
    for group in index["groups"]:
        for rel in group["skills"].values():
            file = path / rel
            try:
                data = json.loads(file.read_text())
            except FileNotFoundError:
                raise DataError(file, None, "listed in index.json but missing", "re-run `forecast fit`") from None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(file, None, f"not valid JSON ({exc})", "re-run `forecast fit`") from None
            skills.append(skill_fit_from_json(data, file))
    return Fits(skills=tuple(skills), tool=index.get("tool", ""), source=str(path))
