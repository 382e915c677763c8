"""Ensembles: which runs train together as one stacked model, and each member's own state.

Runs can share one `GPT` with stacked weights (model.py) when everything but their seed and
data recipe is equal: model shape, optimisation, evaluation and skills
(`ensemble_key`). `ensemble_groups` forms the groups a ladder trains (`--ensemble auto`):
compatible runs whose sequences have similar lengths, at most `MAX_MEMBERS` a group, in
the ladder's order. Runs whose examples differ much in length (a scratchpad format beside
a plain one) are kept apart: a stacked step pads every member to the longest member's
layout, which would cost more than it saves.

Each member keeps its own checkpoint (its slices of the weights and of AdamW's moments),
so a run can resume alone or in another ensemble, and its gradient is clipped by its own
norm: nothing couples the members, and a run trained in an ensemble follows the trajectory
it follows alone up to float rounding (batched kernels sum in a different order).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch

from forecast.pilot.data import eval_problems, training_batch

MAX_MEMBERS = 8
"""Most runs per ensemble: on one CPU thread, 8 members of a 25k-parameter model reach
most of the throughput of 16 (benchmarks/pilot_throughput.py), and memory grows with E."""
LENGTH_TOLERANCE = 0.15
"""Runs group when their mean sequence lengths differ by less than this fraction."""


def ensemble_key(spec: Any) -> str:
    """Runs with equal keys can train as one ensemble: the same model shape, optimisation,
    evaluation and skills (seed and recipe are free)."""
    skills = {name: {"kind": s.kind, **s.options()} for name, s in spec.skills.items()}
    return json.dumps([spec.model.to_json(), asdict(spec.train), asdict(spec.eval), skills], sort_keys=True)


def mean_length(spec: Any) -> float:
    """Mean training sequence length (tokens) over the run, what its steps cost: of each
    curriculum phase's first batch, weighted by the phase's steps (one phase: the first batch).
    A curriculum whose short first phase is the parts of the target skill then trains with
    the uniform mix it ends in, not alone."""
    held = {name: eval_problems(skill, spec.eval.size, spec.eval.seed) for name, skill in spec.skills.items()}
    start, total, weighted = 1, spec.train.steps, 0.0
    for phase in spec.recipe.phases:
        steps = total - start + 1 if phase.steps is None else min(phase.steps, total - start + 1)
        if steps <= 0:
            break
        batch = training_batch(spec.skills, spec.recipe, held, spec.seed, start, spec.train.batch_size)
        weighted += steps * float(batch.lengths.double().mean())
        start += steps
    return weighted / max(start - 1, 1)


def ensemble_groups(specs: Sequence[Any], mode: str = "auto", max_members: int = MAX_MEMBERS) -> list[list[Any]]:
    """The runs grouped into ensembles, each group in the ladder's order and the groups
    ordered by their first run. `mode` "off": one run per group."""
    if mode == "off" or max_members <= 1:
        return [[spec] for spec in specs]
    if mode != "auto":
        raise ValueError(f"unknown ensemble mode {mode!r}")
    by_key: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        by_key.setdefault(ensemble_key(spec), []).append(i)
    groups: list[list[int]] = []
    for indices in by_key.values():
        lengths = {i: mean_length(specs[i]) for i in indices}
        current: list[int] = []
        for i in sorted(indices, key=lambda j: (lengths[j], j)):
            if current and (len(current) >= max_members or lengths[i] > lengths[current[0]] * (1 + LENGTH_TOLERANCE)):
                groups.append(current)
                current = []
            current.append(i)
        groups.append(current)
    return [[specs[i] for i in sorted(group)] for group in sorted(groups, key=min)]


# ---------------------------------------------------------------------------- per-member state


def member_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, e: int) -> dict[str, Any]:
    """Member e's weights and AdamW moments, as CPU tensors (what its checkpoint holds)."""
    weights, moments = {}, {"exp_avg": {}, "exp_avg_sq": {}}
    for name, p in model.named_parameters():
        weights[name] = p.detach()[e].to("cpu", copy=True)
        state = optimizer.state.get(p, {})
        for key in moments:
            if key in state:
                moments[key][name] = state[key][e].to("cpu", copy=True)
    steps = [float(s["step"]) for s in optimizer.state.values() if "step" in s]
    return {"model": weights, "optimizer": {"step": steps[0] if steps else 0.0, **moments}}


def load_members(model: torch.nn.Module, optimizer: torch.optim.Optimizer, states: Sequence[dict[str, Any]]) -> None:
    """Stack members' checkpoints (`member_state` of each, in member order) into the model
    and the optimizer; every member must have trained the same number of steps."""
    names = [name for name, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in names:
            params[name].copy_(torch.stack([s["model"][name] for s in states]))
    steps = {s["optimizer"]["step"] for s in states}
    if len(steps) != 1:
        raise ValueError(f"members at different optimizer steps {sorted(steps)} cannot resume as one ensemble")
    (step,) = steps
    if not states[0]["optimizer"]["exp_avg"]:
        return  # saved before the first step
    saved = optimizer.state_dict()
    order = [id(p) for group in optimizer.param_groups for p in group["params"]]
    by_id = {id(params[n]): n for n in names}
    saved["state"] = {
        i: {"step": torch.tensor(step),
            "exp_avg": torch.stack([s["optimizer"]["exp_avg"][by_id[pid]] for s in states]),
            "exp_avg_sq": torch.stack([s["optimizer"]["exp_avg_sq"][by_id[pid]] for s in states])}
        for i, pid in enumerate(order)
    }
    optimizer.load_state_dict(saved)


def clip_members(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """Clip each member's gradient to global norm `max_norm` by its own norm (as
    `torch.nn.utils.clip_grad_norm_` does for one model): gradients (E, ...) per tensor."""
    grads = [p.grad for p in params if p.grad is not None]
    squares = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0)  # (E,)
    scale = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))

