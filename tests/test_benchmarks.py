"""The one table of known benchmarks: chance and item counts read from the same row."""

from __future__ import annotations

import pytest

from forecast.runs.benchmarks import BENCHMARKS, benchmark_for, chance_for, items_for


@pytest.mark.parametrize("skill, chance, items", [
    ("mmlu", 0.25, 14042), ("hendrycksTest-anatomy", 0.25, 14042), ("mmlu_pro", 0.1, 12032),
    ("arc_challenge", 0.25, 1172), ("arc_easy", 0.25, 2376), ("ARC", 0.25, 2376), ("hellaswag", 0.25, 10042),
    ("xwinograd_en", 0.5, 2325), ("winogrande", 0.5, 1267), ("wsc273", 0.5, None), ("piqa", 0.5, 1838),
    ("social_iqa", 1 / 3, 1954), ("lambada_openai", 0.0, 5153), ("gsm8k_cot", 0.0, 1319), ("mathqa", 0.2, 2985),
    ("math_algebra", 0.0, None), ("arithmetic_2da", 0.0, 2000), ("add", None, None),
])
def test_known_benchmarks(skill, chance, items):
    assert chance_for(skill) == (None if chance is None else pytest.approx(chance))
    assert items_for(skill) == items


def test_a_name_gets_chance_and_items_of_one_benchmark():
    """Two tables once gave `truthfulqa_boolq` TruthfulQA's chance and BoolQ's item count."""
    for b in BENCHMARKS:
        assert 0 <= b.chance < 1 and (b.items is None) == (b.split is None)
    found = benchmark_for("truthfulqa_boolq")
    assert (chance_for("truthfulqa_boolq"), items_for("truthfulqa_boolq")) == (found.chance, found.items)
