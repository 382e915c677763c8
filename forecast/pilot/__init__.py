"""Pilot trainer: ladders of small transformers on synthetic skills, written as runs.

    ladder = preset_ladder("demo")                 # or load_ladder("study.toml")
    for spec in ladder.run_specs():
        train_run(spec, "runs/demo", device="cpu")  # resumable; skips complete runs

Modules: `vocab` (characters), `skills` (problem generators and formats), `recipes`
(formats, mix, curriculum), `data` (batches), `model` (GPT, parameter and FLOP counts),
`evaluate` (exact match, answer NLL), `trainer` (one run), `ladder` (configs), `presets`,
`executors` (a sweep in turn, in a process pool, or on Slurm via submitit), `sweep` (its
state on disk: finished / running / failed / pending).
"""

from forecast.pilot.executors import (
    Outcome, RunJob, SlurmOptions, make_jobs, run_pool, run_sequential, submit_submitit, submitit_executor, wait_submitit,
)
from forecast.pilot.ladder import Ladder, load_ladder, parse_ladder, resolve_device, run_ladder
from forecast.pilot.model import GPT, ModelConfig
from forecast.pilot.presets import preset_ladder, preset_names
from forecast.pilot.recipes import Phase, RecipeSpec
from forecast.pilot.skills import SKILL_KINDS, Skill
from forecast.pilot.sweep import RunStatus, SweepError, run_status, sweep_status, unfinished
from forecast.pilot.trainer import EvalConfig, Progress, RunSpec, TrainConfig, train_run

__all__ = [
    "Ladder", "load_ladder", "parse_ladder", "resolve_device", "run_ladder",
    "GPT", "ModelConfig", "preset_names", "preset_ladder", "Phase", "RecipeSpec",
    "SKILL_KINDS", "Skill", "EvalConfig", "Progress", "RunSpec", "TrainConfig", "train_run",
    "Outcome", "RunJob", "SlurmOptions", "make_jobs", "run_pool", "run_sequential", "submit_submitit",
    "submitit_executor", "wait_submitit", "RunStatus", "SweepError", "run_status", "sweep_status", "unfinished",
]
