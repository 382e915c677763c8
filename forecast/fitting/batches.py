"""Skills in batches: what bounds a fit's memory when a sweep holds many skills.

A batch's candidates are fitted together (one batched solve per law and stage), so work
that Python dispatches is per batch, not per skill; its tensors are freed before the next
batch, so peak memory depends on the largest batch, never on the number of skills.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from forecast.runs.model import Run

BATCH_POINTS = 100_000
"""Checkpoints (summed over a batch's skills) fitted together: hundreds of small skills, a
few of a lab sweep's (16,000 points each for 2,000 runs × 8 checkpoints)."""

Progress = Callable[[int, int, str], None]
"""`progress(done, total, skill)`: skills fitted so far, of how many, the last one fitted (called
once with done 0 and skill "" before the first batch)."""


def skill_batches(runs: Sequence[Run], skills: Sequence[str], points: int = BATCH_POINTS) -> list[list[str]]:
    """`skills`, in order, in consecutive batches of at most `points` checkpoints (over the
    runs that log them); a skill larger than that is a batch of its own."""
    batches: list[list[str]] = []
    size = 0
    for skill in skills:
        count = sum(len(r.series[skill].step) for r in runs if skill in r.series)
        if batches and size + count <= points:
            batches[-1].append(skill)
            size += count
        else:
            batches.append([skill])
            size = count
    return batches
