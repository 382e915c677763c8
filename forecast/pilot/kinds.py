"""Every skill kind a ladder config may name (`[skills] name = {kind = ..., options}`)."""

from __future__ import annotations

from forecast.pilot.facts import FactAdd, Facts
from forecast.pilot.skills import Addition, MultiplyDigit, Skill, SortDigits, Subtraction, WordProblem

SKILL_KINDS: dict[str, type[Skill]] = {
    cls.kind: cls for cls in (Addition, Subtraction, MultiplyDigit, SortDigits, WordProblem, Facts, FactAdd)
}
