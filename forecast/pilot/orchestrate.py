"""A ladder's sweep from start to summary: what `forecast pilot` runs, as library calls.

- `run_local`: train the runs on this machine, in turn (`jobs` 1) or in a process pool,
  returning one `RunOutcome` per run (finished runs are skipped, interrupted ones resume).
- `submit`: send the unfinished runs to Slurm (or submitit's local executor) as one job
  array, optionally waiting for them.
Both group compatible runs into ensembles first (`ensemble` "auto"; "off": one run per
job; see ensemble.py): one job trains a group as one stacked model.
Progress goes to callbacks the caller passes (the CLI draws bars with them); torch's
thread count is set only for runs trained in this process, and put back after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.errors import UsageError
from forecast.threads import torch_threads
from forecast.pilot.executors import (
    RunOutcome, SlurmOptions, check_jobs, default_threads, make_jobs, run_pool, run_sequential, submit_submitit,
    submitit_executor, wait_submitit,
)
from forecast.pilot.ensemble import ensemble_groups
from forecast.pilot.ladder import Ladder, resolve_device
from forecast.pilot.sweep import FINISHED, counts, record_sweep, sweep_status, unfinished
from forecast.pilot.trainer import Progress, RunSpec

ProgressFn = Callable[[Progress], None]


def swept_ladder(ladder: Ladder, specs: Sequence[RunSpec]) -> dict[str, Any]:
    """The ladder config with the seeds actually run (for `.sweep.json`)."""
    return ladder.to_json() | {"seeds": sorted({s.seed for s in specs})}


def run_local(ladder: Ladder, specs: Sequence[RunSpec], family_dir: Path, device: str = "auto",
              threads: int | None = None, jobs: int = 1, progress: ProgressFn | None = None,
              done: Callable[[RunOutcome], None] | None = None, ensemble: str = "auto",
              compile: bool = False) -> list[RunOutcome]:
    """Train `specs` on this machine: in turn in this process (`jobs` 1, on `threads`
    torch threads, None: torch's default), or in a pool of `jobs` processes (each on
    `threads`, default cores // jobs; the costliest ensembles first). `done` hears of each
    finished run. Outcomes come in the order of `specs`."""
    torch_device = resolve_device(device)
    if jobs < 1:
        raise UsageError(f"`jobs={jobs}`: give a positive number of parallel runs, e.g. `jobs=2`", parameter="jobs")
    check_jobs(jobs, torch_device)
    groups = ensemble_groups(specs, _ensemble_mode(ensemble))
    if jobs == 1:
        outcomes = {}
        with torch_threads(threads):
            for job in make_jobs(groups, family_dir, torch_device.type, None, compile):
                for name, path in zip(job.names, run_sequential([job], progress)):
                    outcomes[name] = RunOutcome(name, path)
                    if done:
                        done(outcomes[name])
        return [outcomes[s.name] for s in specs]
    threads = threads or default_threads(jobs)
    record_sweep(family_dir, swept_ladder(ladder, specs), {"executor": "local", "jobs": jobs, "threads": threads,
                                                            "ensemble": ensemble})
    groups = sorted(groups, key=lambda g: -len(g) * g[0].model.params_matmul * g[0].train.steps)  # longest first
    outcomes = {o.name: o for o in run_pool(make_jobs(groups, family_dir, torch_device.type, threads, compile), jobs,
                                            torch_device, progress, done or (lambda _: None))}
    return [outcomes[s.name] for s in specs]


def _ensemble_mode(mode: str) -> str:
    if mode not in ("auto", "off"):
        raise UsageError(f"`ensemble={mode!r}`: use auto (train compatible runs as one stacked model) or off")
    return mode


@dataclass(frozen=True)
class Submission:
    """A submitted sweep: the job id of each submitted run, what was already finished, and
    (when waited for) every run's outcome."""

    job_ids: dict[str, str]
    finished: tuple[str, ...]
    outcomes: tuple[RunOutcome, ...] | None
    state: dict[str, int]


def submit(ladder: Ladder, specs: Sequence[RunSpec], family_dir: Path, executor: str, options: SlurmOptions,
           device: str = "auto", wait: bool = True, done: Callable[[RunOutcome], None] | None = None,
           started: Callable[[dict[str, int], int, str], None] | None = None, ensemble: str = "auto",
           compile: bool = False) -> Submission:
    """Submit the runs that are neither finished nor running as one submitit job array;
    with `wait`, wait for them and return every run's outcome. `started(state counts,
    runs to submit, cluster)` hears once the submission is sure to go ahead."""
    if device not in ("auto", "cpu", "cuda"):  # resolved on the node that runs each job
        raise UsageError(f"`device`: unknown device {device!r}; use auto, cpu or cuda", parameter="device")
    cluster = "slurm" if executor == "slurm" else "local"
    submitter = submitit_executor(cluster, Path(family_dir) / ".submitit", options)
    statuses = sweep_status(family_dir, specs)
    state = counts(statuses)
    finished = tuple(s.name for s, st in zip(specs, statuses) if st.state == FINISHED)
    todo = unfinished(family_dir, specs)
    run_jobs = make_jobs(ensemble_groups(todo, _ensemble_mode(ensemble)), family_dir, device, options.cpus_per_task,
                         compile)
    if started is not None:
        started(state, len(todo), cluster)
    handles = submit_submitit(run_jobs, submitter)
    job_ids = {name: handle.job_id for job, handle in zip(run_jobs, handles) for name in job.names}
    record_sweep(family_dir, swept_ladder(ladder, specs),
                 {"executor": executor, "threads": options.cpus_per_task, "gpus_per_task": options.gpus_per_task,
                  "job_ids": job_ids})
    if not wait:
        return Submission(job_ids, finished, None, state)
    outcomes = wait_submitit(run_jobs, handles, grace_s=15.0 if cluster == "slurm" else 2.0,
                             done=done or (lambda _: None))
    by_name = {o.name: o for o in [*(RunOutcome(n, Path(family_dir) / n) for n in finished), *outcomes]}
    return Submission(job_ids, finished, tuple(by_name[s.name] for s in specs if s.name in by_name), state)
