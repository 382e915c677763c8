"""Data recipes: which format each skill is written in, and the mix of skills over training.

A recipe is a sequence of *phases* (a curriculum); each phase has a mix (skill -> weight,
normalised when sampling) and a length in optimizer steps, the last phase running to the
end of training. A plain mix is a curriculum of one phase. In a config file (TOML or JSON):

    [[recipes]]
    label = "reverse"                       # names the runs and groups them in fits
    formats = { add = "reverse" }           # skill -> format; unlisted skills use their first
    mix = { add = 2, sub = 1, word = 1 }    # or, instead of mix, a curriculum:

    [[recipes]]
    label = "curriculum"
    curriculum = [ { steps = 300, mix = { add = 1 } },
                   { mix = { add = 1, word = 1 } } ]   # last phase: no steps, runs to the end
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.errors import DataError
from forecast.pilot.skills import Skill
from forecast.runs.model import Recipe

LABEL = re.compile(r"^[A-Za-z0-9_.]+$")  # no '-': run names are '<ladder>-<recipe>-<size>-s<seed>'


@dataclass(frozen=True)
class Phase:
    """One curriculum phase: the skill mix for `steps` optimizer steps (None: to the end)."""

    mix: Mapping[str, float]  # skill -> weight >= 0; sampled in proportion
    steps: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mix": dict(self.mix)}
        if self.steps is not None:
            out["steps"] = self.steps
        return out


@dataclass(frozen=True)
class RecipeSpec:
    """A data recipe: per-skill formats and an ordered list of phases."""

    label: str
    formats: Mapping[str, str]  # skill -> format; unlisted skills use their default format
    phases: tuple[Phase, ...]

    def format_of(self, skill: str, skills: Mapping[str, Skill]) -> str:
        return self.formats.get(skill, skills[skill].formats[0])

    def phase_at(self, step: int) -> Phase:
        """The phase that draws the batch of optimizer step `step` (counting from 1)."""
        end = 0
        for phase in self.phases:
            if phase.steps is None:
                return phase
            end += phase.steps
            if step <= end:
                return phase
        return self.phases[-1]

    def to_recipe(self) -> Recipe:
        """The run-format recipe recorded in run.json."""
        distinct = sorted(set(self.formats.values()))
        fmt = distinct[0] if len(distinct) == 1 else ",".join(f"{k}={v}" for k, v in sorted(self.formats.items())) or None
        if len(self.phases) == 1:
            return Recipe(self.label, fmt, dict(self.phases[0].mix), None)
        return Recipe(self.label, fmt, None, [p.to_json() for p in self.phases])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "formats": dict(self.formats)}
        if len(self.phases) == 1 and self.phases[0].steps is None:
            out["mix"] = dict(self.phases[0].mix)
        else:
            out["curriculum"] = [p.to_json() for p in self.phases]
        return out


def parse_recipe(data: Any, skills: Mapping[str, Skill], file: str | Path, where: str) -> RecipeSpec:
    """Read one recipe object (see module docstring); `where` names it in errors ("recipes[0]")."""
    if not isinstance(data, Mapping):
        raise DataError(file, where, f"expected an object, got {type(data).__name__}",
                        'write e.g. {label = "reverse", mix = {add = 1}}')
    unknown = set(data) - {"label", "formats", "mix", "curriculum"}
    if unknown:
        raise DataError(file, f"{where}.{sorted(unknown)[0]}", "unknown field",
                        "a recipe has label, formats, and mix or curriculum")
    label = data.get("label")
    if not isinstance(label, str) or not LABEL.match(label):
        raise DataError(file, f"{where}.label", f"expected a label of letters, digits, '_' or '.', got {label!r}",
                        'write e.g. label = "reverse" (no "-": it separates parts of run names)')
    formats = data.get("formats", {})
    if not isinstance(formats, Mapping):
        raise DataError(file, f"{where}.formats", "expected an object of skill -> format",
                        'write e.g. formats = {add = "reverse"}')
    for skill, fmt in formats.items():
        _known_skill(skill, skills, file, f"{where}.formats")
        if fmt not in skills[skill].formats:
            raise DataError(file, f"{where}.formats.{skill}", f"unknown format {fmt!r}",
                            f"use one of {', '.join(skills[skill].formats)}")
    if ("mix" in data) == ("curriculum" in data):
        raise DataError(file, where, "needs exactly one of 'mix' or 'curriculum'",
                        "give mix = {skill = weight, ...} or curriculum = [{steps = N, mix = {...}}, ...]")
    if "mix" in data:
        phases = (Phase(_parse_mix(data["mix"], skills, file, f"{where}.mix")),)
    else:
        curriculum = data["curriculum"]
        if not isinstance(curriculum, list) or not curriculum:
            raise DataError(file, f"{where}.curriculum", "expected a non-empty list of phases",
                            "write e.g. curriculum = [{steps = 300, mix = {add = 1}}, {mix = {add = 1, word = 1}}]")
        phases = tuple(_parse_phase(p, i == len(curriculum) - 1, skills, file, f"{where}.curriculum[{i}]")
                       for i, p in enumerate(curriculum))
    return RecipeSpec(label, dict(formats), phases)


def _parse_phase(data: Any, last: bool, skills: Mapping[str, Skill], file: str | Path, where: str) -> Phase:
    if not isinstance(data, Mapping) or "mix" not in data:
        raise DataError(file, where, "expected a phase object with a mix", "write e.g. {steps = 300, mix = {add = 1}}")
    unknown = set(data) - {"mix", "steps"}
    if unknown:
        raise DataError(file, f"{where}.{sorted(unknown)[0]}", "unknown field", "a phase has steps and mix")
    steps = data.get("steps")
    if steps is None and not last:
        raise DataError(file, f"{where}.steps", "missing", "every phase but the last needs steps = N (optimizer steps)")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0):
        raise DataError(file, f"{where}.steps", f"expected a positive whole number of steps, got {steps!r}",
                        "write e.g. steps = 300")
    return Phase(_parse_mix(data["mix"], skills, file, f"{where}.mix"), steps)


def _parse_mix(data: Any, skills: Mapping[str, Skill], file: str | Path, where: str) -> dict[str, float]:
    if not isinstance(data, Mapping) or not data:
        raise DataError(file, where, "expected a non-empty object of skill -> weight", "write e.g. mix = {add = 2, sub = 1}")
    mix = {}
    for skill, weight in data.items():
        _known_skill(skill, skills, file, where)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0 or weight == float("inf"):
            raise DataError(file, f"{where}.{skill}", f"expected a non-negative weight, got {weight!r}",
                            "weights are relative, e.g. 1 or 0.5")
        mix[skill] = float(weight)
    if sum(mix.values()) <= 0:
        raise DataError(file, where, "all weights are zero", "give at least one skill a positive weight")
    return mix


def _known_skill(skill: str, skills: Mapping[str, Skill], file: str | Path, where: str) -> None:
    if skill not in skills:
        raise DataError(file, f"{where}.{skill}", "unknown skill",
                        f"declare it under [skills] or use one of {', '.join(skills)}")
