"""The `--json` shapes of `forecast pilot` (kinds "pilot", "pilot-status", "pilot-submitted",
"ladder-config"): part of the output contract of `forecast.schema.outputs` (same conventions)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class PilotRunJson(TypedDict):
    """One trained pilot run."""

    name: str
    path: str  # its run directory
    params: float  # non-embedding parameters
    tokens: float | None  # training tokens at the last checkpoint
    flops: float | None  # training FLOPs at the last checkpoint
    accuracy: dict[str, float]  # skill -> accuracy at the last checkpoint


class PilotJson(TypedDict):
    """`forecast pilot --json` (kind "pilot"): the runs that finished (a failed run is an error)."""

    runs: list[PilotRunJson]


class RunStatusJson(TypedDict):
    """One run of a sweep as read from its directory (`forecast.pilot.sweep.RunStatus`)."""

    name: str
    state: str  # "finished" | "running" | "failed" | "pending"
    step: int | None  # last evaluated step in trajectory.csv; null: none yet
    steps: int | None  # total steps of the run; null: unknown
    detail: str  # the error of a failed run, the worker of a running one, ...


class PilotStatusJson(TypedDict):
    """`forecast pilot --status DIR --json` (kind "pilot-status")."""

    ladder_dir: str
    counts: dict[str, int]  # state -> runs: finished, running, failed, pending
    runs: list[RunStatusJson]


class PilotSubmittedJson(TypedDict):
    """`forecast pilot --executor slurm --json` without `--wait` (kind "pilot-submitted")."""

    submitted: dict[str, str]  # run name -> job id
    ladder_dir: str


class LadderSizeJson(TypedDict):
    """One model size of a ladder config."""

    layers: int  # transformer blocks
    width: int  # embedding width
    heads: int  # attention heads
    lr: NotRequired[float]  # this size's own peak learning rate (else train.lr)
    steps: NotRequired[int]  # this size's own optimizer steps (else train.steps)


class LadderRecipeJson(TypedDict):
    """A data recipe of a ladder config: one mix, or a curriculum of phases."""

    label: str
    formats: dict[str, str]  # skill -> data format (e.g. "reverse")
    mix: NotRequired[dict[str, float]]  # skill -> weight (a single phase)
    curriculum: NotRequired[list[dict[str, Any]]]  # phases: {"mix": {...}, "steps": optional int}


class LadderTrainJson(TypedDict):
    """Optimisation shared by every run (`forecast.pilot.trainer.TrainConfig`)."""

    steps: int  # optimizer steps per run
    batch_size: int  # sequences per step
    lr: float  # peak AdamW learning rate
    warmup_steps: int
    decay: str  # "constant" | "cosine"
    min_lr_frac: float  # cosine floor, × lr
    weight_decay: float
    beta2: float
    grad_clip: float  # global gradient-norm clip


class LadderEvalJson(TypedDict):
    """When and on what each run is evaluated (`forecast.pilot.trainer.EvalConfig`)."""

    size: int  # held-out problems per skill
    points: int  # log-spaced evaluation steps
    first: int  # first evaluated step
    seed: int  # seed of the held-out problems


class LadderVerifyJson(TypedDict):
    """The larger model `forecast demo` trains to check the forecast."""

    layers: int
    width: int
    heads: int
    lr: float
    steps: int


class LadderConfigJson(TypedDict):
    """`forecast pilot --show-config --json` (kind "ladder-config"): the config in the file
    format `forecast pilot --config` reads. Its own "format" (the ladder config's version,
    `LADDER_FORMAT` = 1) stands where the envelope's is, with the same value."""

    format: NotRequired[int]  # LADDER_FORMAT: the config file's; printed, it is the envelope's "format"
    name: str
    seeds: list[int]
    skills: dict[str, dict[str, Any]]  # skill -> {"kind": generator, ...its options (digits, length, ...)}
    sizes: dict[str, LadderSizeJson]  # size label -> shape
    train: LadderTrainJson
    eval: LadderEvalJson
    recipes: list[LadderRecipeJson]
    verify: NotRequired[LadderVerifyJson]
