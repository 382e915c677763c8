"""Training pilot runs: specs in, run directories out, resumable and deterministic.

`train_runs(specs, out_dir, device)` trains runs of one model shape together, as one
ensemble (a `GPT` with stacked weights, model.py; see ensemble.py for what may share one):
one batched forward, backward and AdamW step for all, each run with its own initialisation,
data stream, loss and gradient clipping, each written as its own run directory.
`train_run(spec, ...)` is an ensemble of one. Specs are picklable, so an executor (a process
pool, Slurm via submitit) can train a ladder's ensembles in parallel.

It reads top to bottom: build each run's held-out sets, resume each from its checkpoint if
it has one, then train, evaluating at log-spaced steps. The batches up to the next
evaluation are generated in bulk and moved to the device at once; nothing in a step waits
for the device (the step's loss is never read back), so evaluation, checkpointing and
progress are the only host syncs. After every evaluation each run's checkpoint is written
(`.state.pt`: its weights, its AdamW moments, step, evaluations so far; atomically), then
its run directory (run.json + trajectory.csv), so a kill loses at most one eval interval.
The data of step s depends only on (seed, s) (see data.py), so a resumed run's trajectory
is identical to an uninterrupted one on the same device, thread count and ensemble. Runs
that a kill left at different steps resume in step: the ones behind catch up first.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forecast.errors import UsageError
from forecast.io import atomic_save
from forecast.pilot.data import IGNORE, Batch, Packed, collate, eval_problems, pack, to_device, training_batches
from forecast.pilot.ensemble import clip_members, ensemble_key, load_members, member_state
from forecast.pilot.evaluate import SkillScore, autocast_for, score_members
from forecast.pilot.model import GPT, ModelConfig
from forecast.pilot.recipes import RecipeSpec
from forecast.pilot.skills import Skill
from forecast.pilot.records import eval_row, existing_run, run_record
from forecast.runs.model import Run
from forecast.runs.files import save_run

STATE_FILE = ".state.pt"  # hidden: `load_runs` and git (via *.pt) ignore it; deleted when the run completes
STATE_VERSION = 2  # 2: one member's slices of a stacked model (this trainer); 1: a single nn.Module
CHUNK_STEPS = 64  # most steps whose batches are generated (and moved to the device) at once
REPORT_S = 0.2  # progress is reported at most this often per run (and at every evaluation)


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
    compile: bool = False,
) -> Path:
    """Train (or resume, or skip if complete) one run; returns its directory `out_dir/<name>`."""
    return train_runs([spec], out_dir, device, progress, compile)[0]


def train_runs(
    specs: Sequence[RunSpec],
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    progress: Callable[[Progress], None] | None = None,
    compile: bool = False,
) -> list[Path]:
    """Train (or resume, or skip if complete) runs of one model shape as one ensemble;
    returns their directories `out_dir/<name>`. `compile`: `torch.compile` the step.

    Raises `UsageError` if a directory holds a run with a different configuration, or a
    checkpoint from another device or trainer version; `ValueError` if the specs cannot
    share an ensemble (`ensemble.ensemble_key`)."""
    device = torch.device(device)
    if len({ensemble_key(s) for s in specs}) > 1:
        raise ValueError("runs of one ensemble need the same model, train, eval and skills; "
                         "group them with forecast.pilot.ensemble.ensemble_groups")
    report = progress or (lambda _: None)
    members = []
    for spec in specs:
        member = _Member(spec, Path(out_dir) / spec.name, device)
        if member.complete:
            report(Progress(spec.name, spec.train.steps, spec.train.steps, 0, 0.0, status="skipped"))
        else:
            members.append(member)
    with torch_settings(device):
        while any(m.step < m.spec.train.steps for m in members):
            behind = min(m.step for m in members)
            group = [m for m in members if m.step == behind]
            ahead = [m.step for m in members if m.step > behind]
            _train(group, device, min(ahead, default=group[0].spec.train.steps), report, compile)
    for m in members:
        m.finish()
        report(Progress(m.spec.name, m.step, m.spec.train.steps, m.tokens, m.rate, m.accuracy, "done"))
    return [Path(out_dir) / spec.name for spec in specs]


class _Member:
    """One run of an ensemble: its data, held-out sets, evaluations and checkpoint."""

    def __init__(self, spec: RunSpec, run_dir: Path, device: torch.device) -> None:
        self.spec, self.run_dir, self.device = spec, run_dir, device
        self.state_path = run_dir / STATE_FILE
        self.config = json.loads(json.dumps(spec.to_json()))  # as it reads back from run.json
        self.complete = existing_run(run_dir, self.config, self.state_path)
        self.step, self.tokens, self.flops, self.rows, self.state = 0, 0, 0.0, [], None
        self.rate = 0.0  # training tokens per second, the latest report's (the final report repeats it)
        self.trained_with: list[str] = []
        if self.complete:
            return
        for stale in run_dir.glob(".*.tmp*"):  # temporary files of a write that a kill interrupted
            stale.unlink()
        # held-out problems: fixed per skill, never drawn for training
        self.held_out, self.eval_batches = {}, {}
        for name, skill in spec.skills.items():
            problems = eval_problems(skill, spec.eval.size, spec.eval.seed)
            self.held_out[name] = problems
            fmt = spec.recipe.format_of(name, spec.skills)
            self.eval_batches[name] = collate([skill.render(tuple(int(x) for x in p), fmt) for p in problems]).to(device)
        if self.state_path.exists():
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
            if state.get("trainer") != STATE_VERSION:
                raise UsageError(f"{self.state_path}: checkpoint from another version of the trainer; "
                                 f"delete {run_dir} to retrain it")
            if state["config"] != self.config or state["device"] != device.type:
                raise UsageError(f"{self.state_path}: checkpoint is from a different configuration or device "
                                 f"({state['device']}); rerun with the original settings or delete {run_dir}")
            self.step, self.tokens, self.flops, self.rows = state["step"], state["tokens"], state["flops"], state["rows"]
            self.state = state
            save_run(self.record(complete=False), run_dir)

    @property
    def accuracy(self) -> dict[str, float]:
        return self.rows[-1]["accuracy"] if self.rows else {}

    def batches(self, steps: range) -> list[Batch]:
        spec = self.spec
        return training_batches(spec.skills, spec.recipe, self.held_out, spec.seed, steps, spec.train.batch_size)

    def evaluated(self, scores: Mapping[str, SkillScore], state: dict[str, Any]) -> None:
        """Record an evaluation at the current step; checkpoint, then rewrite the run directory."""
        self.rows.append(eval_row(self.step, self.tokens, self.flops, scores))
        self.state = {"trainer": STATE_VERSION, "config": self.config, "device": self.device.type, "step": self.step,
                      "tokens": self.tokens, "flops": self.flops, "rows": self.rows, **state}
        atomic_save(self.state_path, lambda tmp: torch.save(self.state, tmp), suffix=".tmp.pt")
        save_run(self.record(complete=False), self.run_dir)

    def record(self, complete: bool) -> Run:
        return run_record(self.spec, self.rows, self.device, complete, self.trained_with)

    def finish(self) -> None:
        save_run(self.record(complete=True), self.run_dir)
        self.state_path.unlink(missing_ok=True)


def _train(members: list[_Member], device: torch.device, stop: int, report: Callable[[Progress], None],
           compile: bool) -> None:
    """Train `members` (all at the same step) as one ensemble up to step `stop`."""
    spec = members[0].spec
    train, names = spec.train, [m.spec.name for m in members]
    for m in members:
        m.trained_with = [n for n in names if n != m.spec.name]
    model = GPT(spec.model, [torch.Generator().manual_seed(m.spec.seed) for m in members]).to(device)
    optimizer = optimizer_for(model, train, device)
    if members[0].state is not None:
        load_members(model, optimizer, [m.state for m in members])
    loss_of = compiled_loss() if compile else _loss
    checkpoints = set(eval_steps(train, spec.eval))
    step, started, tokens_at_start, last_report = members[0].step, time.perf_counter(), [m.tokens for m in members], 0.0
    lengths = None
    while step < stop:
        end = min(stop, step + CHUNK_STEPS, min(c for c in checkpoints if c > step))
        steps = range(step + 1, end + 1)
        per_member = [m.batches(steps) for m in members]  # in bulk, each run's own stream
        if compile and lengths is None:  # one set of block lengths, so the compiled graph stays one
            lengths = [length for _, length in pack([b[0] for b in per_member]).blocks]
        packed = [pack([b[i] for b in per_member], lengths=lengths, min_rows=2 if compile else 1)
                  for i in range(len(steps))]
        packed = to_device(packed, device)
        for i, (s, batch) in enumerate(zip(steps, packed)):
            train_step(model, optimizer, batch, learning_rate(train, s), train.grad_clip, loss_of)
            for m, b in zip(members, per_member):
                m.step, m.tokens, m.flops = s, m.tokens + b[i].tokens, m.flops + spec.model.training_flops(b[i].lengths)
            now = time.perf_counter()
            if s in checkpoints:
                scores = {name: score_members(model, [m.eval_batches[name] for m in members]) for name in spec.skills}
                for e, m in enumerate(members):
                    m.evaluated({name: scores[name][e] for name in spec.skills}, member_state(model, optimizer, e))
            if s in checkpoints or now - last_report > REPORT_S:
                last_report = now
                for e, m in enumerate(members):
                    m.rate = (m.tokens - tokens_at_start[e]) / max(now - started, 1e-9)
                    report(Progress(m.spec.name, s, train.steps, m.tokens, m.rate, m.accuracy,
                                    "evaluated" if s in checkpoints else "training"))
        step = end


def train_step(model: GPT, optimizer: torch.optim.Optimizer, batch: Packed, lr: float, grad_clip: float,
               loss_of: Callable[[GPT, Packed], torch.Tensor] | None = None) -> None:
    """One optimizer step of every member on its batch (`data.pack`): forward, backward,
    per-member clipping, AdamW. Reads nothing back from the device."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = (loss_of or _loss)(model, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_members([p for group in optimizer.param_groups for p in group["params"]], grad_clip)
    optimizer.step()


def _loss(model: GPT, batch: Packed) -> torch.Tensor:
    """Sum over members of each member's mean answer-token NLL: each member's gradient is
    its own loss's, as if it trained alone. Logits only where there is a target."""
    with autocast_for(batch.tokens.device):
        logits = model.logits(model.hidden(batch.tokens, batch.blocks), batch.answer_index)
    nll = F.cross_entropy(logits.float().transpose(1, 2), batch.answer_targets, ignore_index=IGNORE, reduction="none")
    return (nll.sum(dim=1) / batch.answer_counts).sum()


def compiled_loss() -> Callable[[GPT, Packed], torch.Tensor]:
    """`_loss` through `torch.compile` (inductor: fused elementwise kernels, and on CPU a
    fused attention, model.py). After the first layouts the token axis and block sizes go
    dynamic (dynamo's automatic dynamic shapes), so a handful of graphs serve every step;
    the member axis stays static (a dynamic one compiles measured 1.5x slower kernels)."""
    compiled = torch.compile(_loss)

    def loss(model: GPT, batch: Packed) -> torch.Tensor:
        for tensor in (batch.tokens, batch.answer_index, batch.answer_targets, batch.answer_counts):
            torch._dynamo.mark_static(tensor, 0)
        return compiled(model, batch)
    return loss


# ---------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def torch_settings(device: torch.device) -> Iterator[None]:
    """Process-wide torch settings a pilot run needs, put back when training ends.

    Denormal floats are flushed to zero: the softmax probabilities of tokens a skill never
    uses underflow into the denormal range, where x86 arithmetic is ~100x slower (measured:
    a 100k-parameter run went from 7 s to 46 s without this); torch has no getter, so it is
    put back to off, torch's default. CUDA runs fp32 matmuls on TF32 tensor cores (the rest
    is bf16 autocast) and deterministic kernels (cuBLAS needs a fixed workspace, an
    environment variable that stays set); CPU kernels already are, for a fixed thread count."""
    torch.set_flush_denormal(True)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.get_float32_matmul_precision())
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_float32_matmul_precision("high")  # TF32
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.set_float32_matmul_precision(before[2])


def optimizer_for(model: GPT, train: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (nanoGPT's split; the member
    axis adds one dimension), fused into one kernel per step where torch has one."""
    decay = [p for p in model.parameters() if p.dim() > 2]
    other = [p for p in model.parameters() if p.dim() <= 2]
    groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": other, "weight_decay": 0.0}]
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=train.lr, betas=(0.9, train.beta2), fused=fused)
