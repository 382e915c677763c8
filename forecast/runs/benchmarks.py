"""Evaluation sets of known benchmarks: how many items each scores, matched on the skill name.

A benchmark's item count sets the binomial noise of one evaluation, sqrt(p(1−p)/n): the
floor under any forecast interval, and the noise a fit should expect when a table gives
neither a standard error nor a sample count (leaderboards rarely do). Counts are the
standard evaluation splits (the test split where it is public, else validation), as the
lm-evaluation-harness task configs define them. Matched case-insensitively, first match wins.
"""

from __future__ import annotations

import re

# (pattern, items, split). More specific patterns first.
KNOWN_ITEMS: tuple[tuple[str, int, str], ...] = (
    (r"mmlu[_-]?pro", 12032, "test"),
    (r"mmlu|hendryckstest", 14042, "test (57 subjects)"),
    (r"arc[_-]?c(hallenge)?", 1172, "test"),
    (r"arc[_-]?e(asy)?|^arc", 2376, "test"),
    (r"hellaswag", 10042, "validation"),
    (r"xwinograd", 2325, "en"),
    (r"winogrande|winograd", 1267, "validation"),
    (r"piqa", 1838, "validation"),
    (r"boolq", 3270, "validation"),
    (r"openbookqa|obqa", 500, "test"),
    (r"sciq", 1000, "test"),
    (r"truthfulqa", 817, "validation"),
    (r"csqa|commonsense_?qa", 1221, "validation"),
    (r"social_?iqa|siqa", 1954, "validation"),
    (r"lambada", 5153, "test"),
    (r"gsm8k", 1319, "test"),
    (r"humaneval", 164, "test"),
    (r"mbpp", 500, "test"),
    (r"copa", 100, "validation"),
    (r"logiqa", 651, "test"),
    (r"mathqa", 2985, "test"),
    (r"arithmetic", 2000, "BIG-bench / GPT-3 arithmetic: 2,000 problems per task"),
)


def lookup(table: tuple[tuple, ...], skill: str):
    """The value of the first (pattern, value, why) row whose pattern matches `skill`
    (case-insensitive search), or None."""
    lowered = skill.lower()
    return next((row[1] for row in table if re.search(row[0], lowered)), None)


def items_for(skill: str) -> int | None:
    """Evaluation items of a known benchmark, or None when unknown."""
    return lookup(KNOWN_ITEMS, skill)
