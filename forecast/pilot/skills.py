"""Synthetic skills with known difficulty: problem generators and their text formats.

A skill samples *problems* (rows of integer operands) and renders each one as a
(prompt, answer) text pair in one of its *formats*. Problems are format-free, so one
held-out evaluation set serves every format of a skill and recipes that only change the
format are compared on the same problems.

Addition follows the four formats of Lee et al. 2023, "Teaching Arithmetic to Small
Transformers" (arXiv:2307.03381, sec. 4 and appendix), written compactly for a
character-level model (`128+367` throughout):

- plain              `128+367=` -> `495`
- reverse            `128+367=` -> `594`   (answer digits least-significant first)
- scratch_simple     `128+367=` -> `a5c1,a9c0,a4c0>495`
                     one step per digit from the right: answer digit (a) and carry (c)
- scratch_detailed   `128+367=` -> `8+7+0=15a5c1,2+6+1=9a9c0,1+3+0=4a4c0>495`
                     each step also writes the digit sum it computes (digits + carry in)

With `pad = true` the arithmetic skills write every operand and answer zero-padded to its
full width (`028+367=` -> `5930` reversed): digit positions then line up across problems,
which small models with learned absolute positions learn several times faster (measured
on this trainer: a 55k-parameter model reaches 86% on reversed 3-digit addition at step
600 padded, 10% unpadded; the "zero-padding" of Lee et al. sec. 4).

Other operations, in rough order of difficulty for a small transformer: sorting digits
(`sort`), subtraction (`sub`), multiplication by one digit (`mul1`), and a composite
two-step word problem (`word`, a tiny GSM8K analogue: "has 12, gets 35, gives 7"), which
needs an addition then a subtraction.

Two more, a fixed table of facts and a composite over it (`fact`, `factadd`), are in
`facts.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from forecast.pilot.render import DIGIT_IDS, Encoded, Piece, digits_of, encoded, literal, natural_length, number, when


@dataclass(frozen=True)
class Example:
    """One problem as text: the model reads `prompt` and must write `answer` (then END)."""

    prompt: str
    answer: str


class Skill(ABC):
    """A problem generator with one or more text formats; the first format is the default."""

    kind: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    option_bounds: ClassVar[dict[str, tuple[int, int]]] = {}
    """Allowed range of each whole-number option in a config file (default 1 to 9)."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` problems as an int64 array (count, operands), drawn uniformly."""

    @abstractmethod
    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        """The problem as text in format `fmt` (one of `formats`)."""

    @abstractmethod
    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        """Many problems (n, operands) as token ids at once: the same as encoding `render` of
        each (see render.py), without strings."""

    @property
    @abstractmethod
    def space(self) -> int:
        """Number of distinct problems: caps the held-out set size (see `data.eval_problems`)."""

    @abstractmethod
    def max_length(self, fmt: str) -> int:
        """Upper bound on len(prompt) + len(answer) in characters (= tokens) for format `fmt`:
        sizes the model's position table."""

    def options(self) -> dict[str, int]:
        """The generator's options as written in a config file (e.g. {"digits": 3})."""
        return dict(vars(self))


def _reverse_or_plain(value: int, fmt: str, width: int = 0) -> str:
    """The number's digits, zero-padded to `width`, reversed in the `reverse` format."""
    text = str(value).zfill(width)
    return text[::-1] if fmt == "reverse" else text


def _operand(value: int, width: int) -> str:
    return str(value).zfill(width)


@dataclass(frozen=True)
class Addition(Skill):
    """a + b with a, b uniform in [0, 10**digits)."""

    digits: int = 3
    pad: bool = False  # zero-pad operands to `digits` and the sum to digits + 1
    kind: ClassVar[str] = "add"
    formats: ClassVar[tuple[str, ...]] = ("plain", "reverse", "scratch_simple", "scratch_detailed")
    description: ClassVar[str] = "multi-digit addition (Lee et al. 2023 formats)"

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(0, 10**self.digits, size=(count, 2))

    @property
    def space(self) -> int:
        return 10 ** (2 * self.digits)

    def max_length(self, fmt: str) -> int:
        d = self.digits
        # prompt 'a+b=' then: d+1 answer digits; or d steps 'aXcY' (+ 'x+y+c=ss' detailed),
        # d-1 commas, '>' and the d+1 digit sum
        answer = {"plain": d + 1, "reverse": d + 1, "scratch_simple": 6 * d + 1, "scratch_detailed": 14 * d + 1}
        return 2 * d + 2 + answer[fmt]

    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        a, b = problem
        width = self.digits if self.pad else 0
        prompt = f"{_operand(a, width)}+{_operand(b, width)}="
        if fmt in ("plain", "reverse"):
            return Example(prompt, _reverse_or_plain(a + b, fmt, width + 1 if self.pad else 0))
        width = self.digits if self.pad else max(len(str(a)), len(str(b)))
        da, db = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]
        carry, steps = 0, []
        for x, y in zip(da, db):  # least-significant digit first, as a person adds
            total = int(x) + int(y) + carry
            step = f"a{total % 10}c{total // 10}"
            if fmt == "scratch_detailed":
                step = f"{x}+{y}+{carry}={total}" + step
            steps.append(step)
            carry = total // 10
        return Example(prompt, ",".join(steps) + f">{_reverse_or_plain(a + b, 'plain', width + 1 if self.pad else 0)}")

    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        a, b = problems[:, 0], problems[:, 1]
        count, places = len(a), self.digits + 1
        width = self.digits if self.pad else 0
        prompt = [number(a, width, places=places), literal("+", count), number(b, width, places=places), literal("=", count)]
        if fmt in ("plain", "reverse"):
            return encoded(prompt, [number(a + b, width + 1 if self.pad else 0, fmt == "reverse", places)])
        steps = np.full(count, self.digits) if self.pad else np.maximum(natural_length(a), natural_length(b))
        da, db = digits_of(a, self.digits), digits_of(b, self.digits)
        carry, answer = np.zeros(count, dtype=np.int64), []
        for k in range(self.digits):  # least-significant digit first; rows with fewer digits stop early
            active, total = k < steps, da[:, k] + db[:, k] + carry
            step: list[Piece] = []
            if fmt == "scratch_detailed":
                step += [number(da[:, k]), literal("+", count), number(db[:, k]), literal("+", count), number(carry),
                         literal("=", count), number(total)]
            step += [literal("a", count), number(total % 10), literal("c", count), number(total // 10)]
            answer += [when(p, active) for p in step] + [when(literal(",", count), k < steps - 1)]
            carry = total // 10
        answer += [literal(">", count), number(a + b, self.digits + 1 if self.pad else 0, places=places)]
        return encoded(prompt, answer)


@dataclass(frozen=True)
class Subtraction(Skill):
    """a - b with a >= b, both uniform in [0, 10**digits) (so the answer is non-negative)."""

    digits: int = 3
    pad: bool = False  # zero-pad operands and the difference to `digits`
    kind: ClassVar[str] = "sub"
    formats: ClassVar[tuple[str, ...]] = ("plain", "reverse")
    description: ClassVar[str] = "multi-digit subtraction, non-negative result"

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        pairs = rng.integers(0, 10**self.digits, size=(count, 2))
        return np.sort(pairs, axis=1)[:, ::-1].copy()

    @property
    def space(self) -> int:
        return 10 ** (2 * self.digits) // 2

    def max_length(self, fmt: str) -> int:
        return 2 * self.digits + 2 + self.digits

    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        a, b = problem
        w = self.digits if self.pad else 0
        return Example(f"{_operand(a, w)}-{_operand(b, w)}=", _reverse_or_plain(a - b, fmt, w))

    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        a, b = problems[:, 0], problems[:, 1]
        count, w = len(a), self.digits if self.pad else 0
        prompt = [number(a, w), literal("-", count), number(b, w), literal("=", count)]
        return encoded(prompt, [number(a - b, w, fmt == "reverse")])


@dataclass(frozen=True)
class MultiplyDigit(Skill):
    """a * b with a uniform in [0, 10**digits) and b a single digit in [0, 9]."""

    digits: int = 3
    pad: bool = False  # zero-pad the multi-digit operand to `digits` and the product to digits + 1
    kind: ClassVar[str] = "mul1"
    formats: ClassVar[tuple[str, ...]] = ("plain", "reverse")
    description: ClassVar[str] = "multi-digit times one-digit multiplication"

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return np.stack([rng.integers(0, 10**self.digits, size=count), rng.integers(0, 10, size=count)], axis=1)

    @property
    def space(self) -> int:
        return 10 ** (self.digits + 1)

    def max_length(self, fmt: str) -> int:
        return self.digits + 3 + self.digits + 1

    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        a, b = problem
        w = self.digits if self.pad else 0
        return Example(f"{_operand(a, w)}*{b}=", _reverse_or_plain(a * b, fmt, w + 1 if self.pad else 0))

    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        a, b = problems[:, 0], problems[:, 1]
        count, w = len(a), self.digits if self.pad else 0
        prompt = [number(a, w), literal("*", count), number(b), literal("=", count)]
        return encoded(prompt, [number(a * b, w + 1 if self.pad else 0, fmt == "reverse")])


@dataclass(frozen=True)
class SortDigits(Skill):
    """Sort `length` random digits ascending: `s:5381=` -> `1358`."""

    length: int = 5
    kind: ClassVar[str] = "sort"
    formats: ClassVar[tuple[str, ...]] = ("plain",)
    description: ClassVar[str] = "sort a list of digits"

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(0, 10, size=(count, self.length))

    @property
    def space(self) -> int:
        return 10**self.length

    def max_length(self, fmt: str) -> int:
        return 2 * self.length + 3

    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        digits = "".join(str(d) for d in problem)
        return Example(f"s:{digits}=", "".join(sorted(digits)))

    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        count, width = problems.shape
        lengths = np.full(count, width)
        prompt = [literal("s:", count), Piece(DIGIT_IDS[problems], lengths), literal("=", count)]
        return encoded(prompt, [Piece(DIGIT_IDS[np.sort(problems, axis=1)], lengths)])


@dataclass(frozen=True)
class WordProblem(Skill):
    """Composite two-step skill, a tiny GSM8K analogue: `has12 get35 give7?` -> `40`.

    Solving it chains two single skills: an addition (12 + 35 = 47) then a subtraction
    (47 - 7 = 40); the amount given away never exceeds what is held. Formats: `plain`,
    `reverse` (answer digits reversed) and `steps`, a chain-of-thought answer writing each
    intermediate result (`12+35=47,47-7=40`), the analogue of GSM8K's worked solutions.
    """

    digits: int = 2
    pad: bool = False  # zero-pad the three amounts to `digits` and the answer to digits + 1
    kind: ClassVar[str] = "word"
    formats: ClassVar[tuple[str, ...]] = ("plain", "reverse", "steps")
    description: ClassVar[str] = "composite word problem: add then subtract"

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        high = 10**self.digits
        a = rng.integers(0, high, size=count)
        b = rng.integers(0, high, size=count)
        c = rng.integers(0, np.minimum(a + b, high - 1) + 1)  # gives away at most what it has
        return np.stack([a, b, c], axis=1)

    @property
    def space(self) -> int:
        return 10 ** (3 * self.digits) // 2

    def max_length(self, fmt: str) -> int:
        d = self.digits
        answer = {"plain": d + 1, "reverse": d + 1, "steps": 7 * d + 8}
        return 3 * d + 13 + answer[fmt]

    def render(self, problem: tuple[int, ...], fmt: str) -> Example:
        a, b, c = problem
        w = self.digits if self.pad else 0
        prompt = f"has{_operand(a, w)} get{_operand(b, w)} give{_operand(c, w)}?"
        if fmt == "steps":
            return Example(prompt, f"{a}+{b}={a + b},{a + b}-{c}={a + b - c}")
        return Example(prompt, _reverse_or_plain(a + b - c, fmt, w + 1 if self.pad else 0))

    def encode(self, problems: np.ndarray, fmt: str) -> Encoded:
        a, b, c = problems[:, 0], problems[:, 1], problems[:, 2]
        count, w = len(a), self.digits if self.pad else 0
        lit = lambda text: literal(text, count)  # noqa: E731
        prompt = [lit("has"), number(a, w), lit(" get"), number(b, w), lit(" give"), number(c, w), lit("?")]
        if fmt == "steps":
            answer = [number(a), lit("+"), number(b), lit("="), number(a + b), lit(","), number(a + b), lit("-"),
                      number(c), lit("="), number(a + b - c)]
        else:
            answer = [number(a + b - c, w + 1 if self.pad else 0, fmt == "reverse")]
        return encoded(prompt, answer)
