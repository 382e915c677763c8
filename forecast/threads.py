"""Torch CPU thread count for a block: the one place the library sets it (and restores it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with torch on `count` CPU threads (None: leave it), restoring the
    previous count after. Fits are many small tensors, where a second OpenMP thread only
    spins (measured several-fold slower on a loaded 2-core machine), so `FitOptions`
    asks for one; callers choose, nothing below this sets threads on its own."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
