"""Training one pilot run: a spec in, a run directory out, resumable and deterministic.

`train_run(spec, out_dir, device)` is self-contained and takes a picklable `RunSpec`, so
an executor (a process pool, Slurm via submitit) can run the runs of a ladder in parallel.
It reads top to bottom: build the held-out sets and the model, resume if a checkpoint
exists, then train, evaluating at log-spaced steps. After every evaluation it writes the
checkpoint (`.state.pt`: model, optimizer, step, evaluations so far; atomically) and then
the run directory (run.json + trajectory.csv), so a kill loses at most one eval interval.
The data of step s depends only on (seed, s) (see data.py), so a resumed run's trajectory
is identical to an uninterrupted one on the same device and thread count.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forecast.errors import UsageError
from forecast.io import atomic_save
from forecast.pilot.data import IGNORE, collate, eval_problems, training_batch
from forecast.pilot.evaluate import SkillScore, autocast_for, score
from forecast.pilot.model import GPT, ModelConfig
from forecast.pilot.recipes import RecipeSpec
from forecast.pilot.skills import Skill
from forecast.run_files import save_run
from forecast.runs import METADATA_FILE, Run, make_series

STATE_FILE = ".state.pt"  # hidden: `load_runs` and git (via *.pt) ignore it; deleted when the run completes
VAL_LOSS = "val_loss"  # run-level metric: mean NLL per answer token over all held-out sets


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, shared by every run of a ladder."""

    steps: int = 1000  # optimizer steps per run (the final step is always evaluated)
    batch_size: int = 128  # sequences (problems) per step; tokens per step vary with the mix
    lr: float = 3e-3  # peak AdamW rate: models this small train fastest near 1e-3..1e-2
    warmup_steps: int = 50  # linear warmup from 0 keeps the first large-rate steps stable
    decay: str = "constant"  # "constant" after warmup: a checkpoint does not depend on the run's length,
    # so one run traces the whole curve; "cosine" decays to min_lr_frac·lr at the last step
    min_lr_frac: float = 0.1  # floor of the cosine schedule, as a fraction of lr
    weight_decay: float = 0.1  # AdamW decay on matrices (not LayerNorm gains), as nanoGPT
    beta2: float = 0.99  # AdamW beta2: 0.99 suits the small batches of pilots (nanoGPT's shakespeare-char)
    grad_clip: float = 1.0  # global gradient-norm clip


@dataclass(frozen=True)
class EvalConfig:
    """When and on what each run is evaluated."""

    size: int = 256  # held-out problems per skill (n); binomial stderr <= 0.5/sqrt(n)
    points: int = 16  # log-spaced evaluation steps between `first` and the last step
    first: int = 10  # first evaluated step (step 0, an untrained model, is not evaluated)
    seed: int = 1234  # seed of the held-out problems: the same for every run of a ladder


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run's trajectory (with the device and thread count)."""

    name: str  # run name, '<ladder>-<recipe>-<size>-s<seed>'
    family: str  # ladder name: runs of one family are fitted together
    size: str  # size label within the ladder
    seed: int  # model initialisation and training-data stream
    model: ModelConfig
    recipe: RecipeSpec
    skills: Mapping[str, Skill]  # evaluated skills (the recipe trains a subset), name -> generator
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    def to_json(self) -> dict[str, Any]:
        """The full configuration, recorded in run.json `extra.config`."""
        return {
            "name": self.name, "family": self.family, "size": self.size, "seed": self.seed,
            "model": self.model.to_json(), "recipe": self.recipe.to_json(),
            "skills": {name: {"kind": s.kind, **s.options()} for name, s in self.skills.items()},
            "train": asdict(self.train), "eval": asdict(self.eval),
        }


@dataclass(frozen=True)
class Progress:
    """What `train_run` reports to its callback (after every step and every evaluation)."""

    run: str
    step: int  # optimizer steps done
    steps: int  # total steps of the run
    tokens: int  # training tokens seen
    tokens_per_second: float  # since this call started (evaluations included)
    accuracy: Mapping[str, float] = field(default_factory=dict)  # at the latest evaluation
    status: str = "training"  # "training", "evaluated", "done" or "skipped" (already complete)


def eval_steps(train: TrainConfig, evaluation: EvalConfig) -> list[int]:
    """Log-spaced steps from `first` to the last step (always included), as whole steps."""
    first = min(max(1, evaluation.first), train.steps)
    grid = np.geomspace(first, train.steps, max(evaluation.points, 2))
    return sorted({int(round(s)) for s in grid} | {train.steps})


def learning_rate(train: TrainConfig, step: int) -> float:
    """Rate for optimizer step `step` (from 1): linear warmup, then constant or cosine."""
    if step <= train.warmup_steps:
        return train.lr * step / max(1, train.warmup_steps)
    if train.decay == "constant":
        return train.lr
    progress = (step - train.warmup_steps) / max(1, train.steps - train.warmup_steps)
    floor = train.min_lr_frac * train.lr
    return floor + 0.5 * (train.lr - floor) * (1 + math.cos(math.pi * progress))


def train_run(
    spec: RunSpec,
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    progress: Callable[[Progress], None] | None = None,
) -> Path:
    """Train (or resume, or skip if complete) one run; returns its directory `out_dir/<name>`.

    Raises `UsageError` if the directory holds a run with a different configuration, or a
    checkpoint from another device."""
    device = torch.device(device)
    run_dir = Path(out_dir) / spec.name
    state_path = run_dir / STATE_FILE
    config = json.loads(json.dumps(spec.to_json()))  # as it reads back from run.json
    report = progress or (lambda _: None)
    if _existing_config(run_dir, config, state_path):  # already complete
        report(Progress(spec.name, spec.train.steps, spec.train.steps, 0, 0.0, status="skipped"))
        return run_dir
    _configure_torch(device)
    for stale in run_dir.glob(".*.tmp*"):  # temporary files of a write that a kill interrupted
        stale.unlink()

    # held-out problems: fixed per skill, never drawn for training
    held_out, eval_batches = {}, {}
    for name, skill in spec.skills.items():
        problems = eval_problems(skill, spec.eval.size, spec.eval.seed)
        held_out[name] = frozenset(tuple(int(x) for x in p) for p in problems)
        fmt = spec.recipe.format_of(name, spec.skills)
        eval_batches[name] = collate([skill.render(tuple(int(x) for x in p), fmt) for p in problems]).to(device)

    model = GPT(spec.model, torch.Generator().manual_seed(spec.seed)).to(device)
    optimizer = _optimizer(model, spec.train, device)
    step, tokens, flops, rows = 0, 0, 0.0, []
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["config"] != config or state["device"] != device.type:
            raise UsageError(f"{state_path}: checkpoint is from a different configuration or device "
                             f"({state['device']}); rerun with the original settings or delete {run_dir}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, tokens, flops, rows = state["step"], state["tokens"], state["flops"], state["rows"]
        save_run(_as_run(spec, rows, device, complete=False), run_dir)

    checkpoints = set(eval_steps(spec.train, spec.eval))
    started, tokens_at_start, rate = time.perf_counter(), tokens, 0.0
    accuracy: dict[str, float] = rows[-1]["accuracy"] if rows else {}
    model.train()
    while step < spec.train.steps:
        step += 1
        batch = training_batch(spec.skills, spec.recipe, held_out, spec.seed, step, spec.train.batch_size).to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(spec.train, step)
        with autocast_for(device):
            logits = model(batch.inputs)
        loss = F.cross_entropy(logits.float().transpose(1, 2), batch.targets, ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip)
        optimizer.step()
        tokens += batch.tokens
        flops += spec.model.training_flops(batch.lengths)
        rate = (tokens - tokens_at_start) / max(time.perf_counter() - started, 1e-9)

        if step in checkpoints:
            model.eval()
            scores = {name: score(model, b) for name, b in eval_batches.items()}
            model.train()
            accuracy = {name: s.accuracy for name, s in scores.items()}
            rows.append(_row(step, tokens, flops, scores))
            _save_state(state_path, config, device, step, tokens, flops, rows, model, optimizer)
            save_run(_as_run(spec, rows, device, complete=False), run_dir)
            report(Progress(spec.name, step, spec.train.steps, tokens, rate, accuracy, "evaluated"))
        else:
            report(Progress(spec.name, step, spec.train.steps, tokens, rate, accuracy))

    save_run(_as_run(spec, rows, device, complete=True), run_dir)
    state_path.unlink(missing_ok=True)
    report(Progress(spec.name, step, spec.train.steps, tokens, rate, accuracy, "done"))
    return run_dir


# ---------------------------------------------------------------------------- helpers


def _existing_config(run_dir: Path, config: dict[str, Any], state_path: Path) -> bool:
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
                         "choose another --out or delete that directory to retrain it")
    if extra.get("complete"):
        state_path.unlink(missing_ok=True)  # killed between the last write and the cleanup
        return True
    return False


def _configure_torch(device: torch.device) -> None:
    """Process-wide torch settings a pilot run needs.

    Denormal floats are flushed to zero: the softmax probabilities of tokens a skill never
    uses underflow into the denormal range, where x86 arithmetic is ~100x slower (measured:
    a 100k-parameter run went from 7 s to 46 s without this). CUDA gets deterministic
    kernels (cuBLAS needs a fixed workspace); CPU kernels already are, for a fixed thread count."""
    torch.set_flush_denormal(True)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cuda.matmul.allow_tf32 = False


def _optimizer(model: GPT, train: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (nanoGPT's split)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=train.lr, betas=(0.9, train.beta2), fused=device.type == "cuda")


def _row(step: int, tokens: int, flops: float, scores: Mapping[str, SkillScore]) -> dict[str, Any]:
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


def _as_run(spec: RunSpec, rows: list[dict[str, Any]], device: torch.device, complete: bool) -> Run:
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


def _save_state(path: Path, config: dict[str, Any], device: torch.device, step: int, tokens: int, flops: float,
                rows: list[dict[str, Any]], model: GPT, optimizer: torch.optim.Optimizer) -> None:
    """Write the checkpoint atomically: a kill leaves the previous one or the new one."""
    state = {"config": config, "device": device.type, "step": step, "tokens": tokens, "flops": flops,
             "rows": rows, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    atomic_save(path, lambda tmp: torch.save(state, tmp), suffix=".tmp.pt")
