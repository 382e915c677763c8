"""Vectorised rendering: many problems of one skill to token ids at once, without strings.

`Skill.render` writes one problem as text; training draws thousands per second, and a
Python loop over strings cost more than training the smallest models (measured ~3 ms per
batch of 128). Here a format is a concatenation of *pieces*, each a matrix of token ids
with a length per problem (a literal, a number in decimal, a digit), and `concat` packs
them left to right with numpy. `Skill.encode` builds its pieces from these helpers and
the tests check it against `encode(render(...))` for every skill and format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.pilot.vocab import PAD_ID, encode

DIGIT_IDS = encode("0123456789")  # token id of each decimal digit


@dataclass(frozen=True)
class Piece:
    """Token ids (n, width), row i meaningful up to `lengths[i]`."""

    ids: np.ndarray
    lengths: np.ndarray


@dataclass(frozen=True)
class Encoded:
    """Problems as token sequences `prompt + answer + END`, right-padded with PAD."""

    ids: np.ndarray  # (n, longest) int64
    lengths: np.ndarray  # (n,) tokens per sequence
    prompt_lengths: np.ndarray  # (n,) tokens of the prompt


def literal(text: str, count: int) -> Piece:
    ids = encode(text)
    return Piece(np.broadcast_to(ids, (count, len(ids))), np.full(count, len(ids)))


def digits_of(values: np.ndarray, places: int) -> np.ndarray:
    """Decimal digits (n, places), least significant first."""
    return (np.asarray(values, dtype=np.int64)[:, None] // 10 ** np.arange(places)) % 10


def natural_length(values: np.ndarray) -> np.ndarray:
    """Digits of each value as `str` writes it (1 for 0)."""
    values = np.asarray(values, dtype=np.int64)
    return 1 + np.sum(values[:, None] >= 10 ** np.arange(1, 19), axis=1)


def number(values: np.ndarray, width: int = 0, reverse: bool = False, places: int = 10) -> Piece:
    """Decimal numbers: zero-padded to `width` (0: their natural length, as `str`), digits
    reversed with `reverse`. `places` bounds the digits of the largest value."""
    values = np.asarray(values, dtype=np.int64)
    lengths = np.maximum(natural_length(values), width)
    places = max(places, width)
    low_first = digits_of(values, places)
    if reverse:
        return Piece(DIGIT_IDS[low_first], lengths)
    column = lengths[:, None] - 1 - np.arange(places)  # most significant first
    return Piece(DIGIT_IDS[np.take_along_axis(low_first, np.clip(column, 0, places - 1), axis=1)], lengths)


def when(piece: Piece, mask: np.ndarray) -> Piece:
    """The piece where `mask`, nothing (length 0) elsewhere."""
    return Piece(piece.ids, np.where(mask, piece.lengths, 0))


def concat(pieces: Sequence[Piece]) -> tuple[np.ndarray, np.ndarray]:
    """Pieces joined left to right: ids (n, longest) PAD-padded, and lengths (n,)."""
    count = len(pieces[0].lengths)
    lengths = np.stack([np.asarray(p.lengths, dtype=np.int64) for p in pieces], axis=1)  # (n, pieces)
    starts = np.cumsum(lengths, axis=1) - lengths
    total = lengths.sum(axis=1)
    out = np.full((count, int(total.max()) + 1), PAD_ID, dtype=np.int64)  # + 1: a spill column
    rows = np.arange(count)[:, None]
    for k, piece in enumerate(pieces):
        cols = np.arange(piece.ids.shape[1])[None, :]
        keep = cols < lengths[:, k : k + 1]
        target = np.where(keep, starts[:, k : k + 1] + cols, out.shape[1] - 1)  # unused cells go to the spill
        out[rows, target] = np.where(keep, piece.ids, PAD_ID)
    out[:, -1] = PAD_ID
    return out[:, :-1], total


def encoded(prompt: Sequence[Piece], answer: Sequence[Piece]) -> Encoded:
    """`prompt + answer + END` as an `Encoded` batch."""
    count = len(prompt[0].lengths)
    ids, lengths = concat([*prompt, *answer, literal("$", count)])
    prompt_lengths = np.sum([p.lengths for p in prompt], axis=0)
    return Encoded(ids, lengths, prompt_lengths)
