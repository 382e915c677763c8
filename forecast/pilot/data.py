"""Batches of token ids: held-out evaluation sets and stateless per-step training batches.

Training data is a pure function of (run seed, step): the batch of step s is drawn from
`numpy.random.default_rng([seed, s])`, so a resumed run sees exactly the batches an
uninterrupted one would, with no data-loader state to save. Runs of different sizes with
the same seed see the same data stream. Evaluation problems come from a fixed seed per
skill and are excluded from training by rejection sampling, so they stay held out.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from forecast.pilot.recipes import RecipeSpec
from forecast.pilot.skills import Example, Skill
from forecast.pilot.vocab import END, PAD_ID, encode

IGNORE = -1  # target id of positions without loss (prompt and padding)


@dataclass(frozen=True)
class Batch:
    """Right-padded sequences of `prompt + answer + END`, split into inputs and next-token targets."""

    inputs: torch.Tensor  # (batch, length) int64 token ids, PAD after each sequence
    targets: torch.Tensor  # (batch, length) next token at answer positions, IGNORE elsewhere
    lengths: torch.Tensor  # (batch,) input tokens per sequence (len(prompt + answer)), padding excluded

    @property
    def tokens(self) -> int:
        """Training tokens in the batch: every input token, prompt included, padding excluded."""
        return int(self.lengths.sum())

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.inputs.to(device), self.targets.to(device), self.lengths)


def collate(examples: Sequence[Example]) -> Batch:
    """Encode examples into one batch; only the answer (and its END) carries a target, so the
    loss is on answer tokens alone."""
    seqs = [encode(e.prompt + e.answer + END) for e in examples]
    prompt_lengths = np.array([len(e.prompt) for e in examples])
    lengths = np.array([len(s) - 1 for s in seqs])
    width = int(lengths.max())
    ids = np.full((len(seqs), width + 1), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
    positions = np.arange(width)
    # target j predicts token j+1: an answer token when j+1 >= len(prompt), up to END
    answer = (positions >= prompt_lengths[:, None] - 1) & (positions < lengths[:, None])
    targets = np.where(answer, ids[:, 1:], IGNORE)
    return Batch(torch.from_numpy(ids[:, :-1].copy()), torch.from_numpy(targets), torch.from_numpy(lengths))


def eval_problems(skill: Skill, size: int, seed: int) -> np.ndarray:
    """`size` distinct problems of `skill`, the same for every run, format and recipe that uses
    this skill with these options (the seed mixes in the skill's kind and options)."""
    key = zlib.crc32(repr((skill.kind, sorted(skill.options().items()))).encode())
    rng = np.random.default_rng([seed, key])
    unique: dict[tuple[int, ...], None] = {}
    while len(unique) < size:
        for row in skill.sample(rng, size):
            unique.setdefault(tuple(int(x) for x in row), None)
    return np.array(list(unique)[:size], dtype=np.int64)


def sample_excluding(skill: Skill, rng: np.random.Generator, count: int, held_out: frozenset) -> list[tuple[int, ...]]:
    """`count` training problems, none of them in `held_out` (redrawn until clear)."""
    out: list[tuple[int, ...]] = []
    while len(out) < count:
        for row in skill.sample(rng, count - len(out)):
            problem = tuple(int(x) for x in row)
            if problem not in held_out:
                out.append(problem)
    return out


def training_batch(
    skills: Mapping[str, Skill],
    recipe: RecipeSpec,
    held_out: Mapping[str, frozenset],
    seed: int,
    step: int,
    batch_size: int,
) -> Batch:
    """The batch of optimizer step `step`: skills drawn by the mix of the recipe's phase at that
    step, problems drawn fresh (never from the held-out sets), rendered in the recipe's formats."""
    rng = np.random.default_rng([seed, step])
    mix = recipe.phase_at(step).mix
    names = sorted(mix)
    weights = np.array([mix[n] for n in names])
    counts = np.bincount(rng.choice(len(names), size=batch_size, p=weights / weights.sum()), minlength=len(names))
    examples = []
    for name, count in zip(names, counts):
        fmt = recipe.format_of(name, skills)
        for problem in sample_excluding(skills[name], rng, int(count), held_out[name]):
            examples.append(skills[name].render(problem, fmt))
    return collate(examples)
