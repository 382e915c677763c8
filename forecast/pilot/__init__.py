"""Pilot trainer: ladders of small transformers on synthetic skills, written as runs.

    ladder = preset_ladder("demo")                 # or load_ladder("study.toml")
    run_ladder(ladder.run_specs(), "runs/demo")    # resumable; skips complete runs; ensembles
    train_run(spec, "runs/x")                      # one run; train_runs(specs, ...) one ensemble

Modules: `vocab` (characters), `skills` (problem generators and formats), `recipes`
(formats, mix, curriculum), `render` (problems to token ids in bulk), `data` (batches and
their flat layout), `model` (a stacked GPT: one model or an ensemble; parameter and FLOP
counts), `evaluate` (exact match, answer NLL, answer probability), `trainer` (runs of one
shape as one ensemble), `ensemble` (which runs train together; per-member state),
`ladder` (configs), `presets`,
`executors` (a sweep in turn, in a process pool, or on Slurm via submitit), `sweep` (its
state on disk: finished / running / failed / pending).
"""

from forecast.pilot.executors import (
    RunOutcome, RunJob, SlurmOptions, make_jobs, run_pool, run_sequential, submit_submitit, submitit_executor, wait_submitit,
)
from forecast.pilot.ladder import Ladder, load_ladder, parse_ladder, resolve_device, run_ladder
from forecast.pilot.model import GPT, ModelConfig
from forecast.pilot.presets import preset_ladder, preset_names
from forecast.pilot.recipes import Phase, RecipeSpec
from forecast.pilot.kinds import SKILL_KINDS
from forecast.pilot.skills import Skill
from forecast.pilot.sweep import RunStatus, SweepError, run_status, sweep_status, unfinished
from forecast.pilot.ensemble import ensemble_groups
from forecast.pilot.trainer import EvalConfig, Progress, RunSpec, TrainConfig, train_run, train_runs

__all__ = [
    "Ladder", "load_ladder", "parse_ladder", "resolve_device", "run_ladder",
    "GPT", "ModelConfig", "preset_names", "preset_ladder", "Phase", "RecipeSpec",
    "SKILL_KINDS", "Skill", "EvalConfig", "Progress", "RunSpec", "TrainConfig", "train_run", "train_runs",
    "ensemble_groups",
    "RunOutcome", "RunJob", "SlurmOptions", "make_jobs", "run_pool", "run_sequential", "submit_submitit",
    "submitit_executor", "wait_submitit", "RunStatus", "SweepError", "run_status", "sweep_status", "unfinished",
]
