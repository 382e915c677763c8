"""Skills that measure one task: splits (val/test), normalisations (acc, len_norm), shot
counts and prompt formats of one benchmark. They get one answer.

Two splits of one benchmark are two samples of one skill on the same models: fitted apart,
each picks its own law, and their forecasts can differ by far more than the splits differ on
the pilots (issue 24: `arc_challenge_val` 62.6 beside `arc_challenge_test` 44.7 at OLMo
7B-4T). The reconciliation rule, written down: the task is fitted once, on the average of
its variants' accuracies (and task losses) at every checkpoint all of them logged, with every
candidate, hold-out and calibration as for any skill; each variant's forecast is the task's
forecast shifted by the variant's offset: its mean accuracy minus the task average over the
final checkpoints of the larger half of the pilot sizes (`variant_offset`). So the variants
carry one law, one status and one interval width, and their medians differ by as much as the
splits differ on the largest pilots. Variants whose chance levels differ are not one task.

A task is what is left of a skill's name once every `TASK_PATTERNS` match (and the user's
own, `FitOptions.tasks`) is removed; skills with the same remainder measure one task.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

import numpy as np

from forecast.fitting.observations import Observations
from forecast.fitting.results import SkillFit
from forecast.fitting.status import Note, NoteCode
from forecast.runs.model import Run, Series

TASK_PATTERNS: tuple[str, ...] = (
    r"[_.-](val|valid|validation|test|dev)(?=$|[_.-])",  # splits
    r"[_.-]\d+[_-]?shots?(?=$|[_.-])",  # shot counts (5shot, 0_shot)
    r"[_.-](rc|mc|cloze|gen)(?=$|[_.-])",  # prompt formats (OLMo's ranked classification, multiple choice)
    r"[_.-](len_norm|byte_norm|acc_norm|norm|acc|soft|bpb|macro|micro)$",  # metrics, normalisations, averages
)
"""Regexes removed from a skill name to find its task (case-insensitive), in order."""


def task_of(skill: str, extra: Sequence[str] = ()) -> str:
    """The task a skill measures: its name with every pattern's match removed (lower case);
    the name itself when nothing is left."""
    name = skill.lower()
    for pattern in (*TASK_PATTERNS, *extra):
        while True:
            stripped = re.sub(pattern, "", name, count=1, flags=re.IGNORECASE)
            if stripped == name:
                break
            name = stripped
    return name.strip("_.-") or skill.lower()


def task_groups(skills: Iterable[str], extra: Sequence[str] = ()) -> dict[str, list[str]]:
    """Tasks measured by more than one of `skills`: task → its skills, in their order."""
    groups: dict[str, list[str]] = {}
    for skill in skills:
        groups.setdefault(task_of(skill, extra), []).append(skill)
    return {task: members for task, members in groups.items() if len(members) > 1}



def tasks_in(runs: Sequence[Run], skills: Sequence[str], extra: Sequence[str] = ()) -> dict[str, list[str]]:
    """Tasks measured by several of `skills` in `runs`, with one chance level among them."""
    def chance(skill: str) -> set:
        return {r.series[skill].chance for r in runs if skill in r.series}
    return {task: members for task, members in task_groups(skills, extra).items()
            if len(set().union(*(chance(m) for m in members))) == 1}


def average_series(runs: Sequence[Run], name: str, members: Sequence[str]) -> list[Run]:
    """The runs with one more series, `name`: the mean of the `members` series at the steps
    every one of them logged (accuracy; task loss where all logged one). Runs lacking a
    member are returned unchanged."""
    out = []
    for run in runs:
        series = [run.series.get(m) for m in members]
        if any(s is None or s.accuracy is None for s in series):
            out.append(run)
            continue
        steps = set(series[0].step.tolist())
        for s in series[1:]:
            steps &= set(s.step.tolist())
        keep = [np.isin(s.step, sorted(steps)) for s in series]
        first = series[0]
        acc = np.mean([s.accuracy[k] for s, k in zip(series, keep)], axis=0)
        losses = [s.loss[k] for s, k in zip(series, keep) if s.loss is not None]
        loss = np.mean(losses, axis=0) if len(losses) == len(series) else None
        n = [s.n[k] for s, k in zip(series, keep) if s.n is not None]
        avg = Series(skill=name, step=first.step[keep[0]], tokens=first.tokens[keep[0]], flops=first.flops[keep[0]],
                     accuracy=acc, loss=loss, stderr=None, n=np.sum(n, axis=0) if len(n) == len(series) else None,
                     chance=first.chance, ceiling=first.ceiling)
        out.append(dataclasses.replace(run, series={**run.series, name: avg}))
    return out


def variant_offset(variant: Observations, task: Observations) -> float:
    """Mean accuracy of `variant` minus the task average's over the final checkpoints of the
    larger half of the sizes (the pilots nearest the target), matched by run."""
    sizes = task.sizes[len(task.sizes) // 2:]
    diffs = []
    for r in np.unique(task.run):
        name = task.run_names[r]
        t = task.subset((task.run == r) & np.isin(task.params, sizes))
        if not len(t) or name not in variant.run_names:
            continue
        v = variant.subset(variant.run == variant.run_names.index(name))
        if len(v):
            diffs.append(float(v.accuracy[np.argmax(v.tokens)] - t.accuracy[np.argmax(t.tokens)]))
    return float(np.mean(diffs)) if diffs else 0.0


TASK_PREFIX = "task:"
"""Name of a task's averaged series while it is fitted (never a skill of the output)."""
VARIANT_OWN = ("family", "recipe", "skill", "chance", "top", "noise", "n_eval", "pilots", "tokens_known", "span")
"""What a variant of a task keeps of its own (the rest, law and shape, is the task's)."""


def variant_fit(task: SkillFit, obs: Observations, base: SkillFit, average: Observations, name: str,
                members: Sequence[str]) -> SkillFit:
    """One variant's fit (its observations `obs`, its own unfitted `base`): the task's laws
    and record, shifted by the variant's offset, with its own pilots, noise and chance."""
    offset = variant_offset(obs, average) if len(obs) else 0.0
    candidates = tuple(dataclasses.replace(c, fit=dataclasses.replace(c.fit, offset=c.fit.offset + offset))
                       for c in task.candidates)
    others = ", ".join(m for m in members if m != base.skill)
    note = Note(NoteCode.ONE_TASK, f"one task ({name}) with {others}: fitted once on their average, this variant "
                f"{100 * offset:+.1f} points from it on the largest pilots; the same law, status and interval width")
    # the shape (flat, accelerating) is the task's: one law, one status for every variant
    own = {k: getattr(base, k) for k in VARIANT_OWN}
    return dataclasses.replace(task, **own, candidates=candidates, notes=(*task.notes, note),
                               why=task.why.replace(TASK_PREFIX + name, name))
