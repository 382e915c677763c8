"""Skills bound by what a model can store rather than by an algorithm a lucky seed finds.

`fact` is a fixed table of key -> value facts (drawn once from the table's own seed, the same
for every run), asked in one of several phrasings, so the held-out set asks known facts in
phrasings training never paired them with; `factadd` is a composite over the same table that
needs a fact and then an addition (`c123+45=` -> the value of key 123, plus 45). What the
demo ladder's probes measured with them: docs/demo-ladder.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from forecast.pilot.render import Encoded, Piece, encoded, literal, natural_length, number
from forecast.pilot.skills import Example, Skill, _operand, _reverse_or_plain
from forecast.pilot.vocab import encode as _encode_text

LETTERS = "abcdefghijklmnopqrstuvwxyz"
LETTER_IDS = _encode_text(LETTERS)  # token id of each lower-case letter (a fact's phrasing)


@lru_cache(maxsize=16)
def fact_table(keys: int, values: int, seed: int) -> np.ndarray:
    """The value of each key (keys,), uniform in [0, values): fixed by (keys, values, seed), so
    every run, size and seed of a ladder learns the same facts."""
    table = np.random.default_rng([seed, keys, values, 0xFAC7]).integers(0, values, size=keys)
    table.setflags(write=False)
    return table


def _width(count: int) -> int:
    """Decimal digits of the largest of `count` values 0..count-1."""
    return int(natural_length(np.array([max(count - 1, 0)]))[0])


@dataclass(frozen=True)
class Facts(Skill):
    """Recall from a fixed table of `keys` facts: `c042=` -> the value of key 42, asked in one of
    `phrasings` phrasings (a letter before the key: `a042=`, `b042=`, ...), zero-padded.

    A problem is (key, phrasing): the held-out set pairs facts with phrasings that training
    never pairs them with, so it scores stored facts recalled in a new context (as an LLM's
    knowledge is probed with questions unlike its pretraining text). The facts cannot be
    inferred, only stored: a model that holds fewer than the table's `keys * log2(values)`
    bits scores about the fraction it stores."""

    keys: int = 1000
    values: int = 100
    phrasings: int = 10
    seed: int = 0  # of the table (not of the run)
    kind: ClassVar[str] = "fact"
    formats: ClassVar[tuple[str, ...]] = ("plain", "reverse")
    description: ClassVar[str] = "recall of a fixed key -> value table (capacity-bound)"
    option_bounds: ClassVar[dict[str, tuple[int, int]]] = {
        "keys": (1, 100_000), "values": (2, 10**6), "phrasings": (1, 26), "seed": (0, 2**31 - 1)}

    def __post_init__(self) -> None:
        if not (1 <= self.phrasings <= len(LETTER_IDS)) or self.keys < 1 or self.values < 2:
            raise ValueError(f"fact: keys >= 1, values >= 2 and 1 <= phrasings <= {len(LETTER_IDS)}")

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return np.stack([rng.integers(0, self.keys, size=count), rng.integers(0, self.phrasings, size=count)], axis=1)

    @property
    def space(self) -> int:
        return self.keys * self.phrasings

    def max_length(self, fmt: str) -> int:
        return 1 + _width(self.keys) + 1 + _width(self.values)

    def value(self, keys: np.ndarray) -> np.ndarray:
        """The table's value of each key."""
        return fact_table(self.keys, self.values, self.seed)[np.asarray(keys, dtype=np.int64)]

    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        key, phrasing = problem
        prompt = f"{LETTERS[phrasing]}{_operand(key, _width(self.keys))}="
        return Example(prompt, _reverse_or_plain(int(self.value(np.array([key]))[0]), fmt, _width(self.values)))

    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        key, phrasing = problems[:, 0], problems[:, 1]
        count = len(key)
        prompt = [Piece(LETTER_IDS[phrasing][:, None], np.ones(count, dtype=np.int64)), number(key, _width(self.keys)),
                  literal("=", count)]
        return encoded(prompt, [number(self.value(key), _width(self.values), fmt == "reverse")])


@dataclass(frozen=True)
class FactAdd(Skill):
    """Composite over the `fact` table (same `keys`, `values`, `phrasings`, `seed`): a fact,
    then an addition, `c042+35=` -> the value of key 42 plus 35 (zero-padded to one digit
    more than a value). Asked like a fact with `+b` appended, it needs the fact stored and the
    addition done on it, so its answer probability rises with what a model can store."""

    keys: int = 1000
    values: int = 100
    phrasings: int = 10
    seed: int = 0  # of the table: the same as the `fact` skill's to share its facts
    kind: ClassVar[str] = "factadd"
    formats: ClassVar[tuple[str, ...]] = ("plain", "reverse")
    description: ClassVar[str] = "composite: a fact of the table, plus a number"
    option_bounds: ClassVar[dict[str, tuple[int, int]]] = Facts.option_bounds

    def _fact(self) -> Facts:
        return Facts(self.keys, self.values, self.phrasings, self.seed)

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return np.concatenate([self._fact().sample(rng, count), rng.integers(0, self.values, size=(count, 1))], axis=1)

    @property
    def space(self) -> int:
        return self.keys * self.phrasings * self.values

    def _answer_width(self) -> int:
        return _width(2 * self.values - 1)

    def max_length(self, fmt: str) -> int:
        return self._fact().max_length(fmt) + 1 + _width(self.values) + 1

    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        key, phrasing, b = problem
        fact = self._fact().render((key, phrasing), "plain")
        total = int(fact.answer) + b
        return Example(f"{fact.prompt[:-1]}+{_operand(b, _width(self.values))}=",
                       _reverse_or_plain(total, fmt, self._answer_width()))

    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        key, phrasing, b = problems[:, 0], problems[:, 1], problems[:, 2]
        count, fact = len(key), self._fact()
        prompt = [Piece(LETTER_IDS[phrasing][:, None], np.ones(count, dtype=np.int64)), number(key, _width(self.keys)),
                  literal("+", count), number(b, _width(self.values)), literal("=", count)]
        return encoded(prompt, [number(fact.value(key) + b, self._answer_width(), fmt == "reverse")])
