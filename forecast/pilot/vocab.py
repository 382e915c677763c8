"""Character-level tokenizer shared by every pilot skill.

One fixed vocabulary for all skills, so a model trained on a mix of skills sees one
embedding table and the skills compete for capacity as they would in a real pretraining mix.
Id 0 is padding (never a target), id 1 ends every answer: greedy decoding stops there.
"""

from __future__ import annotations

import numpy as np

PAD = "\0"
END = "$"  # ends every answer (Lee et al. 2023 wrap examples in '$' too)
CHARS = PAD + END + "0123456789+-*=?:;,.>| " + "abcdefghijklmnopqrstuvwxyz"
PAD_ID = 0
END_ID = 1
VOCAB_SIZE = len(CHARS)

_LOOKUP = np.full(128, -1, dtype=np.int64)
for _i, _c in enumerate(CHARS):
    _LOOKUP[ord(_c)] = _i


def encode(text: str) -> np.ndarray:
    """Token ids (int64) of `text`; raises ValueError on a character outside the vocabulary."""
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    ids = _LOOKUP[codes]
    if (ids < 0).any():
        bad = text[int(np.argmax(ids < 0))]
        raise ValueError(f"character {bad!r} is not in the pilot vocabulary")
    return ids


def decode(ids: np.ndarray | list[int]) -> str:
    """Text of token ids, stopping before the first END (padding dropped)."""
    out = []
    for i in ids:
        if int(i) == END_ID:
            break
        if int(i) != PAD_ID:
            out.append(CHARS[int(i)])
    return "".join(out)
