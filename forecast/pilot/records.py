"""What a pilot run writes: one evaluation as a trajectory row, the run record (run format
v1) of the evaluations so far, and whether a run directory already holds this run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from forecast.errors import UsageError
from forecast.pilot.evaluate import SkillScore
from forecast.runs.model import METADATA_FILE, Run, make_series

VAL_LOSS = "val_loss"  # run-level metric: mean NLL per answer token over all held-out sets


def existing_run(run_dir: Path, config: dict[str, Any], state_path: Path) -> bool:
    """True if `run_dir` holds this run, complete; raise if it holds a different run."""
    meta = run_dir / METADATA_FILE
    if not meta.exists():
        return False
    try:
        extra = json.loads(meta.read_text()).get("extra", {})
    except (json.JSONDecodeError, AttributeError):
        extra = {}
    if extra.get("config") != config:
        raise UsageError(f"{run_dir}: holds a run with a different configuration; "
                         "choose another `out` or delete that directory to retrain it")
    if extra.get("complete"):
        state_path.unlink(missing_ok=True)  # killed between the last write and the cleanup
        return True
    return False


def eval_row(step: int, tokens: int, flops: float, scores: Mapping[str, SkillScore]) -> dict[str, Any]:
    """One evaluation, in plain types (it goes into the checkpoint and run.json's trajectory)."""
    nll = sum(s.nll_sum for s in scores.values())
    answer_tokens = sum(s.answer_tokens for s in scores.values())
    return {
        "step": step, "tokens": tokens, "flops": flops,
        "accuracy": {name: s.accuracy for name, s in scores.items()},
        "loss": {name: s.loss for name, s in scores.items()},
        "prob": {name: s.prob for name, s in scores.items()},
        "n": {name: s.problems for name, s in scores.items()},
        VAL_LOSS: nll / max(answer_tokens, 1),
    }


def run_record(spec: Any, rows: list[dict[str, Any]], device: torch.device, complete: bool,
            trained_with: Sequence[str] = ()) -> Run:
    """The run record (run format v1) of the evaluations so far."""
    steps = [r["step"] for r in rows]
    tokens = [r["tokens"] for r in rows]
    flops = [r["flops"] for r in rows]
    series = {
        name: make_series(name, steps, tokens, flops=flops, chance=0.0,
                          accuracy=[r["accuracy"][name] for r in rows],
                          loss=[r["loss"][name] for r in rows], prob=[r["prob"][name] for r in rows],
                          n=[r["n"][name] for r in rows])
        for name in spec.skills
    }
    series[VAL_LOSS] = make_series(VAL_LOSS, steps, tokens, flops=flops, loss=[r[VAL_LOSS] for r in rows])
    extra = {
        "complete": complete,
        "device": device.type,
        "trained_with": list(trained_with),  # the other runs of its ensemble (the last it trained in)
        "params_total": spec.model.params_total,
        "params_matmul": spec.model.params_matmul,
        "examples_per_step": spec.train.batch_size,
        "tokens_counted": "every input token of each training sequence (prompt and answer), padding excluded",
        "flops_counted": "per sequence of T input tokens: 6*params_matmul*T + 12*n_layer*n_embd*T^2",
        "accuracy": "exact match of greedy decoding on the held-out set; loss: answer NLL in nats per problem; "
                    "prob: probability of the exact answer by teacher forcing, exp(-answer NLL), mean over problems",
        "config": spec.to_json(),
    }
    return Run(name=spec.name, params=float(spec.model.params_non_embedding), family=spec.family,
               recipe=spec.recipe.to_recipe(), series=series, params_kind="non-embedding", seed=spec.seed,
               source="forecast pilot", extra=extra)
