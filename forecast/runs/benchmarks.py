"""Known benchmarks, matched on the skill name: chance accuracy and evaluation items.

One table (`BENCHMARKS`), one row per benchmark: the regex its names match, its chance
(random-guess) accuracy, and the items of its standard evaluation split. Names are matched
case-insensitively (`re.search`), first match wins, so `mmlu_stem_val`,
`hendrycksTest-anatomy` and `MMLU` are all MMLU.

- Chance: multiple choice with k options has chance 1/k; exact-match generation has 0.
  Importers use `chance_for` (a `chance` override wins, see `forecast.importers.common`).
- Items set the binomial noise of one evaluation, sqrt(p(1−p)/n): the floor under any
  forecast interval, and the noise a fit should expect when a table gives neither a
  standard error nor a sample count (leaderboards rarely do). Counts are the standard
  evaluation splits (the test split where it is public, else validation), as the
  lm-evaluation-harness task configs define them; None where no one count applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    pattern: str  # regex over the lower-cased skill name
    chance: float  # random-guess accuracy, fraction
    items: int | None  # evaluation items of `split`; None: not one known count
    split: str | None  # which evaluation set `items` counts
    why: str  # where the chance level comes from


BENCHMARKS: tuple[Benchmark, ...] = (  # more specific patterns first
    Benchmark(r"mmlu[_-]?pro", 0.1, 12032, "test", "10-way multiple choice"),
    Benchmark(r"mmlu|hendryckstest", 0.25, 14042, "test (57 subjects)", "4-way multiple choice"),
    Benchmark(r"arc[_-]?c(hallenge)?", 0.25, 1172, "test", "4-way multiple choice (a few ARC items have 3 or 5)"),
    Benchmark(r"arc[_-]?e(asy)?|^arc", 0.25, 2376, "test", "4-way multiple choice (a few ARC items have 3 or 5)"),
    Benchmark(r"hellaswag", 0.25, 10042, "validation", "4 candidate endings"),
    Benchmark(r"xwinograd", 0.5, 2325, "en", "2 candidate referents"),
    Benchmark(r"winogrande|winograd", 0.5, 1267, "validation", "2 candidate referents"),
    Benchmark(r"wsc", 0.5, None, None, "2 candidate referents"),
    Benchmark(r"piqa", 0.5, 1838, "validation", "2 candidate solutions"),
    Benchmark(r"boolq", 0.5, 3270, "validation", "yes/no"),
    Benchmark(r"openbookqa|obqa", 0.25, 500, "test", "4-way multiple choice"),
    Benchmark(r"sciq", 0.25, 1000, "test", "4-way multiple choice"),
    Benchmark(r"truthfulqa", 0.23, 817, "validation", "MC1 with a varying number of options (~0.23 on average)"),
    Benchmark(r"csqa|commonsense_?qa", 0.2, 1221, "validation", "5-way multiple choice"),
    Benchmark(r"social_?iqa|siqa", 1 / 3, 1954, "validation", "3-way multiple choice"),
    Benchmark(r"lambada", 0.0, 5153, "test", "exact-match generation (the last word)"),
    Benchmark(r"gsm8k", 0.0, 1319, "test", "exact-match generation"),
    Benchmark(r"humaneval", 0.0, 164, "test", "exact-match generation (pass@1)"),
    Benchmark(r"mbpp", 0.0, 500, "test", "exact-match generation (pass@1)"),
    Benchmark(r"copa", 0.5, 100, "validation", "2 alternatives"),
    Benchmark(r"logiqa", 0.25, 651, "test", "4-way multiple choice"),
    Benchmark(r"mathqa", 0.2, 2985, "test", "5-way multiple choice"),
    Benchmark(r"arithmetic", 0.0, 2000, "BIG-bench / GPT-3 arithmetic: 2,000 problems per task",
              "exact-match generation"),
    Benchmark(r"math|exact_match|triviaqa|nq_open", 0.0, None, None, "exact-match generation"),
)
"""Every known benchmark (cited counts: the lm-evaluation-harness task configs)."""


def benchmark_for(skill: str) -> Benchmark | None:
    """The first benchmark whose pattern matches `skill` (case-insensitive), or None."""
    lowered = skill.lower()
    return next((b for b in BENCHMARKS if re.search(b.pattern, lowered)), None)


def chance_for(skill: str) -> float | None:
    """Chance accuracy of a known benchmark, or None when unknown."""
    found = benchmark_for(skill)
    return None if found is None else found.chance


def items_for(skill: str) -> int | None:
    """Evaluation items of a known benchmark, or None when unknown."""
    found = benchmark_for(skill)
    return None if found is None else found.items
