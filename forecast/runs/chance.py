"""Chance (random-guess) accuracy of known benchmarks, matched on the skill name.

Multiple choice with k options has chance 1/k; exact-match generation has chance 0.
Names are matched case-insensitively against patterns, first match wins, so
`mmlu_stem_val`, `hendrycksTest-anatomy` and `MMLU` all get 0.25. Importers use
`chance_for`, and `--chance skill=value` overrides it.
"""

from __future__ import annotations

from forecast.runs.benchmarks import lookup

# (pattern, chance, why). Order matters: more specific patterns first.
KNOWN_CHANCE: tuple[tuple[str, float, str], ...] = (
    (r"arc[_-]?e(asy)?|arc[_-]?c(hallenge)?|^arc", 0.25, "4-way multiple choice (a few ARC items have 3 or 5)"),
    (r"mmlu[_-]?pro", 0.1, "10-way multiple choice"),
    (r"mmlu|hendryckstest", 0.25, "4-way multiple choice"),
    (r"hellaswag", 0.25, "4 candidate endings"),
    (r"openbookqa|obqa", 0.25, "4-way multiple choice"),
    (r"sciq", 0.25, "4-way multiple choice"),
    (r"logiqa", 0.25, "4-way multiple choice"),
    (r"truthfulqa", 0.23, "MC1 with a varying number of options (~0.23 on average)"),
    (r"csqa|commonsense_?qa", 0.2, "5-way multiple choice"),
    (r"mathqa", 0.2, "5-way multiple choice"),
    (r"social_?iqa|siqa", 1 / 3, "3-way multiple choice"),
    (r"piqa", 0.5, "2 candidate solutions"),
    (r"winogrande|winograd|xwinograd|wsc", 0.5, "2 candidate referents"),
    (r"boolq", 0.5, "yes/no"),
    (r"copa", 0.5, "2 alternatives"),
    (r"gsm8k|humaneval|mbpp|lambada|math|exact_match|triviaqa|nq_open|arithmetic", 0.0,
     "exact-match generation"),
)


def chance_for(skill: str) -> float | None:
    """Chance accuracy for a known benchmark name, or None when unknown."""
    return lookup(KNOWN_CHANCE, skill)
