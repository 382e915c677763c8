"""Batches of token ids: held-out evaluation sets, stateless per-step training batches, and
the flat layout (`pack`) in which an ensemble trains on its members' batches at once.

Training data is a pure function of (run seed, step): the batch of step s is drawn from
`numpy.random.default_rng([seed, s])`, so a resumed run sees exactly the batches an
uninterrupted one would, with no data-loader state to save. Runs of different sizes with
the same seed see the same data stream. Evaluation problems come from a fixed seed per
skill and are excluded from training by rejection sampling, so they stay held out.
Problems are rendered to token ids in bulk (`Skill.encode`, render.py), many steps at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from forecast.pilot.model import Blocks
from forecast.pilot.recipes import RecipeSpec
from forecast.pilot.render import Encoded
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
    """Encode examples (text) into one batch; only the answer (and its END) carries a target, so the
    loss is on answer tokens alone."""
    seqs = [encode(e.prompt + e.answer + END) for e in examples]
    ids = np.full((len(seqs), max(len(s) for s in seqs)), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
    return _batch(Encoded(ids, np.array([len(s) for s in seqs]), np.array([len(e.prompt) for e in examples])))


def _batch(sequences: Encoded) -> Batch:
    """Split `prompt + answer + END` sequences into inputs and next-token targets."""
    lengths = sequences.lengths - 1  # the last token (END) is only ever a target
    width = int(lengths.max())
    ids = sequences.ids[:, : width + 1]
    positions = np.arange(width)
    # target j predicts token j+1: an answer token when j+1 >= len(prompt), up to END
    answer = (positions >= sequences.prompt_lengths[:, None] - 1) & (positions < lengths[:, None])
    targets = np.where(answer, ids[:, 1:], IGNORE)
    inputs = np.where(positions < lengths[:, None], ids[:, :-1], PAD_ID)  # a shorter sequence's END is no input
    return Batch(torch.from_numpy(inputs), torch.from_numpy(targets),
                 torch.from_numpy(lengths.astype(np.int64)))


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


def _row_keys(problems: np.ndarray) -> np.ndarray:
    """Each problem row as one opaque value, so sets of rows compare with `np.isin`."""
    rows = np.ascontiguousarray(problems, dtype=np.int64)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))[:, 0]


def sample_excluding(skill: Skill, rng: np.random.Generator, count: int, held_out: np.ndarray) -> np.ndarray:
    """`count` training problems (count, operands), none of them a row of `held_out` (rejected
    ones are redrawn, in order, until clear)."""
    held, parts, need = _row_keys(held_out), [], count
    while need > 0:
        drawn = skill.sample(rng, need)
        kept = drawn[~np.isin(_row_keys(drawn), held)]
        parts.append(kept)
        need -= len(kept)
    return np.concatenate(parts) if parts else np.zeros((0, held_out.shape[1]), dtype=np.int64)


def training_batch(
    skills: Mapping[str, Skill],
    recipe: RecipeSpec,
    held_out: Mapping[str, np.ndarray],
    seed: int,
    step: int,
    batch_size: int,
) -> Batch:
    """The batch of optimizer step `step`: skills drawn by the mix of the recipe's phase at that
    step, problems drawn fresh (never rows of the held-out sets), rendered in the recipe's formats."""
    return training_batches(skills, recipe, held_out, seed, [step], batch_size)[0]


def training_batches(
    skills: Mapping[str, Skill],
    recipe: RecipeSpec,
    held_out: Mapping[str, np.ndarray],
    seed: int,
    steps: Sequence[int],
    batch_size: int,
) -> list[Batch]:
    """`training_batch` of each of `steps`, generated in bulk: every step draws from its own
    generator as alone, and each skill renders the problems of all steps in one call."""
    drawn: dict[str, list[np.ndarray]] = {}
    per_step = []  # per step: (skill, count) in batch order
    for step in steps:
        rng = np.random.default_rng([seed, step])
        mix = recipe.phase_at(step).mix
        names = sorted(mix)
        weights = np.array([mix[n] for n in names])
        counts = np.bincount(rng.choice(len(names), size=batch_size, p=weights / weights.sum()), minlength=len(names))
        for name, count in zip(names, counts):
            drawn.setdefault(name, []).append(sample_excluding(skills[name], rng, int(count), held_out[name]))
        per_step.append([(n, int(c)) for n, c in zip(names, counts)])
    rendered = {name: skills[name].encode(np.concatenate(parts), recipe.format_of(name, skills))
                for name, parts in drawn.items()}
    cursor = dict.fromkeys(rendered, 0)
    batches = []
    for entries in per_step:
        rows = []
        for name, count in entries:
            rows.append((rendered[name], slice(cursor[name], cursor[name] + count)))
            cursor[name] += count
        width = max(int(r.ids.shape[1]) for r, _ in rows)
        ids = np.concatenate([np.pad(r.ids[part], ((0, 0), (0, width - r.ids.shape[1])), constant_values=PAD_ID)
                              for r, part in rows])
        batches.append(_batch(Encoded(ids, np.concatenate([r.lengths[part] for r, part in rows]),
                                      np.concatenate([r.prompt_lengths[part] for r, part in rows]))))
    return batches


@dataclass(frozen=True)
class Packed:
    """One optimizer step of an ensemble: member e's batch in row e of a flat layout (see
    `model.GPT.hidden`), and where the answer tokens (the only targets) sit in it."""

    tokens: torch.Tensor  # (E, N) input ids, PAD in padding slots
    blocks: Blocks  # layout of the N axis: (rows, length) per block
    answer_index: torch.Tensor  # (E, M) positions on the N axis whose next token is an answer token
    answer_targets: torch.Tensor  # (E, M) those next tokens; IGNORE past a member's own answer count
    answer_counts: torch.Tensor  # (E,) int64 answer tokens per member: each member's loss is its own mean

    def to(self, device: torch.device | str) -> Packed:
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Packed(move(self.tokens), self.blocks, move(self.answer_index), move(self.answer_targets),
                      move(self.answer_counts))


def to_device(steps: Sequence[Packed], device: torch.device) -> list[Packed]:
    """Many steps' layouts on `device` in one transfer: every tensor of every step goes into
    one pinned host buffer, copied without blocking (a copy from pageable memory would wait
    for the device to finish its queue: a host sync per step). On the CPU, as they are."""
    if device.type == "cpu":
        return list(steps)
    parts = [t.flatten() for p in steps for t in (p.tokens, p.answer_index, p.answer_targets, p.answer_counts)]
    buffer = torch.cat(parts).pin_memory().to(device, non_blocking=True)
    out, start = [], 0
    for p in steps:
        fields = []
        for t in (p.tokens, p.answer_index, p.answer_targets, p.answer_counts):
            fields.append(buffer[start:start + t.numel()].view(t.shape))
            start += t.numel()
        out.append(Packed(fields[0], p.blocks, fields[1], fields[2], fields[3]))
    return out


BLOCK_COST = 0.02
"""Each block beyond the first must save this share of the padded tokens: a block costs an
attention call and a copy per layer (measured to pay on CPU above ~2%)."""


def pack(batches: Sequence[Batch], max_blocks: int = 4, lengths: Sequence[int] | None = None,
         min_rows: int = 1) -> Packed:
    """Lay out the members' batches (one per member, any widths) in one flat (E, N) layout.

    Blocks of rows, each block right-padded to its own length: every member puts its
    longest sequences in the longest block, the next longest in the next block, and so on,
    so every member fills the same rows (none is left empty while another member needs
    it) and only the padding within rows is wasted. The block lengths are chosen (at most
    `max_blocks`, dynamic programming over the distinct lengths) to pad the least, or
    given (`lengths`, extended by this step's longest sequence if it is longer: a compiled
    step keeps one graph when only the row counts change). Every block has at least
    `min_rows` rows."""
    spans = [b.lengths.numpy() for b in batches]
    members, rows = len(batches), max(len(l) for l in spans)
    ordered = [np.sort(l) for l in spans]

    def longer(values: np.ndarray) -> np.ndarray:  # the most sequences any member has longer than each value
        return np.max([len(l) - np.searchsorted(l, values, side="right") for l in ordered], axis=0)

    if lengths is None:
        distinct = np.unique(np.concatenate(spans))  # sorted ascending
        ends = distinct[_block_ends(longer(distinct), distinct, rows, max_blocks)]
    else:
        longest = max(int(l.max()) for l in spans)
        ends = np.array(sorted({*(int(x) for x in lengths), longest} if longest > max(lengths) else
                               {int(x) for x in lengths}))
    above = longer(ends)  # rows in the blocks longer than each block
    counts = np.concatenate([[rows], above[:-1]]) - above
    layout = tuple((max(int(c), min_rows), int(t)) for c, t in zip(counts, ends) if c > 0 or lengths is not None)
    width = sum(count * length for count, length in layout)
    tokens = np.full((members, width), PAD_ID, dtype=np.int64)
    targets = np.full((members, width), IGNORE, dtype=np.int64)
    for e, batch in enumerate(batches):
        inputs, goal = batch.inputs.numpy(), batch.targets.numpy()
        order = np.argsort(-spans[e], kind="stable")  # longest first, into the longest block first
        start, taken = width, 0
        for count, length in reversed(layout):
            start -= count * length
            chosen = order[taken:taken + count]
            taken += count
            cols = min(length, inputs.shape[1])
            region = slice(start, start + len(chosen) * length)
            tokens[e, region].reshape(len(chosen), length)[:, :cols] = inputs[chosen, :cols]
            targets[e, region].reshape(len(chosen), length)[:, :cols] = goal[chosen, :cols]
    answers = [np.flatnonzero(row != IGNORE) for row in targets]
    most = max(len(a) for a in answers)
    index = np.zeros((members, most), dtype=np.int64)
    answer_targets = np.full((members, most), IGNORE, dtype=np.int64)
    for e, positions in enumerate(answers):
        index[e, : len(positions)] = positions
        answer_targets[e, : len(positions)] = targets[e, positions]
    return Packed(torch.from_numpy(tokens), layout, torch.from_numpy(index), torch.from_numpy(answer_targets),
                  torch.tensor([len(a) for a in answers], dtype=torch.int64))


def _block_ends(longer: np.ndarray, distinct: np.ndarray, rows: int, max_blocks: int) -> list[int]:
    """Indices into `distinct` of the block lengths that pad least: block k ends at length
    distinct[j_k] and holds (rows above block k−1) − (rows above block k) rows, where the rows
    above a length are `longer` there. Dynamic programming over at most `max_blocks` blocks,
    each extra block charged `BLOCK_COST`."""
    m = len(distinct)
    above = np.concatenate([[rows], longer]).astype(np.float64)  # above[i]: rows above the end i - 1 (0: all)
    # cost[i, j]: padded tokens of a block from just after end i - 1 up to distinct[j - 1] (1-based j)
    cost = (above[:, None] - above[None, :]) * np.concatenate([[0], distinct])[None, :]
    cost[np.tril_indices(m + 1)] = np.inf
    best, back = [cost[0]], []
    for _ in range(1, max_blocks):
        total = best[-1][:, None] + cost
        back.append(total.argmin(axis=0))
        best.append(total.min(axis=0))
    scores = [b[m] * (1 + BLOCK_COST * k) for k, b in enumerate(best)]
    blocks = int(np.argmin(scores))
    ends, j = [m], m
    for k in range(blocks, 0, -1):
        j = int(back[k - 1][j])
        ends.append(j)
    return [e - 1 for e in sorted(ends)]
