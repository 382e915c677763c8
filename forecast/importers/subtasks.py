"""Average MMLU-style subtasks (`hendrycksTest-anatomy`, ...) into one skill (`mmlu`).

Subtasks are weighted by their size (question count), so the average is the accuracy over
all questions: the harness's sample count where the file gives it (lm-eval 0.4
`n-samples`), else the size implied by the older harness's stderr, which is
sqrt(p(1-p)/(n-1)), so n = p(1-p)/stderr² + 1 (the Pythia README checks this equals the
MMLU test sizes). When a subtask's size cannot be derived at any checkpoint, all subtasks
weigh equally. The standard error combines as independent: sqrt(Σ(wᵢ·seᵢ)²) / Σwᵢ.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import DataError, UsageError


@dataclass(frozen=True)
class Score:
    """One task's result at one checkpoint."""

    accuracy: float | None = None  # in [0, 1]
    stderr: float | None = None  # standard error of the accuracy
    n: float | None = None  # evaluation sample count
    loss: float | None = None  # task loss (ln perplexity, or mean NLL of the correct answer; nats)
    prob: float | None = None  # mean probability of the correct answer (from the samples files)


def average_subtasks(
    checkpoints: Mapping[int, Mapping[str, Score]],
    prefix: str,
    skill: str,
    files: Mapping[int, Sequence[Path]],
    groups: frozenset[str] = frozenset(),
) -> dict[int, dict[str, Score]]:
    """Replace the tasks named `prefix*` by one task `skill`, at every checkpoint (step -> task -> score).

    `groups` are the harness's own aggregates (lm-eval 0.4 `group_subtasks`, e.g.
    `mmlu_stem`): they are dropped rather than averaged in, which would count their subjects
    twice. Every checkpoint must hold the same number of subtasks, else the average would
    silently change meaning along training; `files` (step -> files) names them in errors.
    """
    members_at = {step: sorted(t for t, s in scores.items() if t.startswith(prefix) and t != skill and t not in groups
                               and s.accuracy is not None)
                  for step, scores in checkpoints.items()}
    all_members = sorted({t for members in members_at.values() for t in members})
    if not all_members:
        raise UsageError(f"`average={prefix}={skill}`: no task starts with {prefix!r}")
    dropped = sorted({t for scores in checkpoints.values() for t in scores
                      if t in groups and (t.startswith(prefix) or t == skill)})
    if dropped:
        from forecast.importers.common import note_skipped

        note_skipped(f"--average {prefix}={skill}: {len(dropped)} of the harness's own group averages "
                     f"({', '.join(dropped[:4])}{', ...' if len(dropped) > 4 else ''}) left out, so that each of the "
                     f"{len(all_members)} subtasks is counted once")
    sizes = _sizes(checkpoints, all_members)
    out: dict[int, dict[str, Score]] = {}
    for step, scores in checkpoints.items():
        members = members_at[step]
        rest = {t: s for t, s in scores.items() if not (t.startswith(prefix) and t != skill) and
                not (t == skill and t in groups)}
        if members:
            if len(members) != len(all_members):
                absent = sorted(set(all_members) - set(members))
                raise DataError(files[step][0], f"results.{absent[0]}", f"step {step} lacks {len(absent)} of the "
                                f"{len(all_members)} {prefix}* subtasks, so its {skill} average would differ",
                                "evaluate every subtask at every checkpoint, or drop the checkpoint's file")
            if skill in rest:
                raise DataError(files[step][0], f"results.{skill}", f"task {skill!r} exists already",
                                f"average into another name, e.g. `average={prefix}={skill}_avg`")
            rest[skill] = _average([scores[t] for t in members], [sizes.get(t, 1.0) for t in members],
                                   known_sizes=bool(sizes))
        out[step] = rest
    return out


def _sizes(checkpoints: Mapping[int, Mapping[str, Score]], members: Sequence[str]) -> dict[str, float]:
    """Each subtask's size (median over checkpoints), or {} when any one is unknown."""
    sizes = {}
    for task in members:
        found = []
        for scores in checkpoints.values():
            s = scores.get(task)
            if s is None or s.accuracy is None:
                continue
            if s.n is not None:
                found.append(s.n)
            elif s.stderr and 0 < s.accuracy < 1:
                found.append(round(s.accuracy * (1 - s.accuracy) / s.stderr**2 + 1))
        if not found:
            return {}
        sizes[task] = float(statistics.median(found))
    return sizes


def _average(scores: Sequence[Score], weights: Sequence[float], *, known_sizes: bool) -> Score:
    total = sum(weights)
    accuracy = sum(w * s.accuracy for w, s in zip(weights, scores)) / total
    stderr = None
    if all(s.stderr is not None for s in scores):
        stderr = math.sqrt(sum((w * s.stderr) ** 2 for w, s in zip(weights, scores))) / total
    loss = prob = None
    if all(s.loss is not None for s in scores):
        loss = sum(w * s.loss for w, s in zip(weights, scores)) / total
    if all(s.prob is not None for s in scores):
        prob = sum(w * s.prob for w, s in zip(weights, scores)) / total
    return Score(accuracy=accuracy, stderr=stderr, n=total if known_sizes else None, loss=loss, prob=prob)
