"""Running the runs of a ladder: in turn, in a local process pool, or as Slurm jobs (submitit).

Every job (`RunJob`: a picklable callable around `train_runs`) trains one ensemble of runs
(often a single run; see ensemble.py) and writes each run's own directory, so a sweep can
be resubmitted: complete runs are skipped, interrupted ones resume from their last
evaluation (the trainer's `.state.pt`), in whatever ensemble the resubmission forms.

- `run_sequential`: one run after another in this process (the default `forecast pilot`).
- `run_pool`: a 'spawn' process pool (torch is not fork-safe) of `jobs` workers. Each
  worker sets torch's CPU threads (default: cores // jobs) and owns one device for its
  life: `cuda:i` for worker i on a machine with GPUs, so one run per GPU at a time.
- `submit_submitit`: one submitit job per ensemble, submitted as a job array (`executor.batch()`);
  `RunJob.checkpoint` makes a preempted or timed-out job requeue itself, and the requeued
  job resumes from the run's last evaluation. `submitit_executor("slurm", ...)` builds
  the Slurm executor; `"local"` runs the same jobs as local subprocesses (for tests and
  trying a config without a cluster).

Determinism: a run's trajectory depends on its spec, the device, torch's CPU thread count
and its ensemble (float rounding), so every worker sets the thread count explicitly
(`RunJob.threads`); a sequential sweep with `--threads T` gives byte-identical runs to a
pool whose workers use T threads, with the same `--ensemble` setting.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from forecast.errors import UsageError
from forecast.pilot.sweep import ERROR_FILE, error_line, is_complete, worker_files
from forecast.pilot.trainer import Progress, RunSpec, train_runs

EXECUTORS = ("local", "slurm", "submitit-local")
ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class RunJob:
    """One ensemble of runs (one run when it has one spec) as a job: picklable, so a pool
    worker or a Slurm node can run it.

    `device` is resolved where the job runs ('auto' on a Slurm node picks that node's GPU);
    `threads` is torch's CPU thread count there (None: leave torch's default); `compile`
    compiles the training step (`torch.compile`)."""

    specs: tuple[RunSpec, ...]
    family_dir: str
    device: str = "auto"
    threads: int | None = None
    compile: bool = False

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def __call__(self, progress: ProgressFn | None = None) -> list[str]:
        """Train (resume, or skip) the runs; returns their directories."""
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        device = _worker_device(self.device)
        with contextlib.ExitStack() as stack:
            beats = {}
            for spec in self.specs:
                run_dir = Path(self.family_dir) / spec.name
                # a complete run is skipped by train_runs: no worker file, so its directory is not touched
                announce = not is_complete(run_dir)
                beats[spec.name] = stack.enter_context(worker_files(run_dir, spec.train.steps, announce=announce))

            def report(p: Progress) -> None:
                beats[p.run](p)
                if progress is not None:
                    progress(p)
            return [str(path) for path in train_runs(self.specs, self.family_dir, device, report, self.compile)]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's hook on preemption or timeout: resubmit this same job. The trainer
        checkpoints after every evaluation, so the requeued job loses no evaluations."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


@dataclass(frozen=True)
class RunOutcome:
    """How one job of a sweep ended: its run directory, or the error's last line."""

    name: str
    path: Path | None = None
    error: str | None = None


def make_jobs(groups: Sequence[Sequence[RunSpec]], family_dir: str | Path, device: str, threads: int | None,
              compile: bool = False) -> list[RunJob]:
    """One job per ensemble (a group of specs, `ensemble.ensemble_groups`), all writing into `family_dir`."""
    return [RunJob(tuple(group), str(Path(family_dir).absolute()), device, threads, compile) for group in groups]


def cpu_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(jobs: int) -> int:
    """Torch threads per worker so that `jobs` workers share the cores: cores // jobs, at least 1."""
    return max(1, cpu_cores() // jobs)


def check_jobs(jobs: int, device: torch.device) -> None:
    """`--jobs` must be positive, and on GPUs at most one run per GPU at a time."""
    if jobs < 1:
        raise UsageError(f"`jobs={jobs}`: give a positive number of parallel runs, e.g. `jobs=2`", parameter="jobs")
    if device.type == "cuda" and jobs > torch.cuda.device_count():
        raise UsageError(f"`jobs={jobs}`: this machine has {torch.cuda.device_count()} GPU(s) and runs one run "
                         "per GPU at a time; use `jobs` up to that, or `device='cpu'`", parameter="jobs")


# ---------------------------------------------------------------------------- in this process


def run_sequential(jobs: Sequence[RunJob], progress: ProgressFn | None = None) -> list[Path]:
    """Run the jobs in turn in this process; the first failure raises (as `forecast pilot` always did)."""
    return [Path(path) for job in jobs for path in job(progress)]


# ---------------------------------------------------------------------------- process pool

_WORKER: dict[str, Any] = {}  # per worker process: its device and the progress queue


def run_pool(jobs: Sequence[RunJob], workers: int, device: torch.device,
             progress: ProgressFn | None = None, done: Callable[[RunOutcome], None] | None = None) -> list[RunOutcome]:
    """Run the jobs in a 'spawn' pool of `workers` processes; a failing job is reported in
    its `RunOutcome` and the others go on. Worker i trains on `cuda:i` when `device` is CUDA,
    else on `device`; progress events come back through a queue (at most ~5 per second
    per run, and every evaluation)."""
    context = multiprocessing.get_context("spawn")
    devices, events = context.Queue(), context.Queue()
    for i in range(workers):
        devices.put(f"cuda:{i}" if device.type == "cuda" else device.type)
    outcomes: dict[str, RunOutcome] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(devices, events)) as pool:
        futures: dict[Future, RunJob] = {pool.submit(_pool_run, job): job for job in jobs}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            _drain(events, progress)
            for future in finished:
                job = futures[future]
                error = future.exception()
                paths = [None] * len(job.specs) if error is not None else future.result()
                for name, path in zip(job.names, paths):
                    outcome = RunOutcome(name, error=error_line(error)) if error is not None else RunOutcome(name, Path(path))
                    outcomes[name] = outcome
                    if done is not None:
                        done(outcome)
        _drain(events, progress)
    return [outcomes[name] for job in jobs for name in job.names]


def _init_worker(devices: Any, events: Any) -> None:
    _WORKER["device"] = devices.get()
    _WORKER["events"] = events


def _pool_run(job: RunJob) -> list[str]:
    """A job in a pool worker: on the worker's own device, progress sent to the parent."""
    last: dict[str, float] = {}

    def send(p: Progress) -> None:
        now = time.monotonic()
        if p.status != "training" or now - last.get(p.run, 0.0) > 0.2:
            last[p.run] = now
            _WORKER["events"].put(p)

    job = RunJob(job.specs, job.family_dir, _WORKER["device"], job.threads, job.compile)
    return job(send)


def _drain(events: Any, progress: ProgressFn | None) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(event)


def _worker_device(name: str) -> torch.device:
    """'auto'/'cpu'/'cuda' as `resolve_device`; 'cuda:i' as given (a pool worker's GPU)."""
    from forecast.pilot.ladder import resolve_device

    return torch.device(name) if name.startswith("cuda:") else resolve_device(name)


# ---------------------------------------------------------------------------- submitit (Slurm)


@dataclass(frozen=True)
class SlurmOptions:
    """What each Slurm job asks for (one ensemble per job, one task per job)."""

    partition: str | None = None  # None: the cluster's default partition
    time_min: int = 60  # wall-clock limit per job; a job that hits it is requeued and resumes
    gpus_per_task: int = 0  # GPUs per job (0 for CPU runs)
    cpus_per_task: int = 1  # also torch's thread count in the job
    mem_gb: float | None = None  # None: the cluster's default
    array_parallelism: int = 64  # most array tasks running at once
    job_name: str = "forecast-pilot"


def submitit_executor(cluster: str, folder: str | Path, options: SlurmOptions) -> Any:
    """A submitit executor: 'slurm', or 'local' (the same jobs as local subprocesses).
    `UsageError` if submitit is not installed."""
    try:
        import submitit
    except ImportError:
        raise UsageError("`executor='slurm'` needs submitit: pip install 'grok-forecast[slurm]' "
                         "(or pip install submitit), or use `executor='local'`", parameter="executor") from None
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    except RuntimeError:  # SlurmExecutor: "Could not detect srun"
        raise UsageError("`executor='slurm'`: no Slurm on this machine (srun not found); run it on the cluster's "
                         "login node, or use `executor='local'` (or submitit-local to try the jobs locally)",
                         parameter="executor") from None
    parameters: dict[str, Any] = {
        "name": options.job_name, "timeout_min": options.time_min, "tasks_per_node": 1, "nodes": 1,
        "cpus_per_task": options.cpus_per_task, "gpus_per_node": options.gpus_per_task,
        "mem_gb": options.mem_gb, "slurm_array_parallelism": options.array_parallelism,
    }
    if options.partition:
        parameters["slurm_partition"] = options.partition
    executor.update_parameters(**parameters)
    return executor


def submit_submitit(jobs: Sequence[RunJob], executor: Any) -> list[Any]:
    """Submit one submitit job per ensemble, as one job array; returns submitit's jobs."""
    if not jobs:
        return []
    with executor.batch():
        submitted = [executor.submit(job) for job in jobs]
    return submitted


def wait_submitit(jobs: Sequence[RunJob], submitted: Sequence[Any], poll_s: float = 0.5, grace_s: float = 15.0,
                  done: Callable[[RunOutcome], None] | None = None) -> list[RunOutcome]:
    """Wait for submitted jobs; one outcome per run. A failed job's outcomes carry the
    error's last line (from the run's error file when the worker wrote one, else from
    submitit). A job that ended without a result file within `grace_s` (slow shared
    filesystems) was killed."""
    outcomes: dict[int, list[RunOutcome]] = {}
    while len(outcomes) < len(jobs):
        for i, (job, handle) in enumerate(zip(jobs, submitted)):
            if i in outcomes or not handle.done():
                continue
            outcomes[i] = _submitit_outcomes(job, handle, grace_s)
            for outcome in outcomes[i]:
                if done is not None:
                    done(outcome)
        if len(outcomes) < len(jobs):
            time.sleep(poll_s)
    return [o for i in range(len(jobs)) for o in outcomes[i]]


def _submitit_outcomes(job: RunJob, handle: Any, grace_s: float) -> list[RunOutcome]:
    deadline = time.monotonic() + grace_s
    while not handle.paths.result_pickle.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not handle.paths.result_pickle.exists():
        return [RunOutcome(name, error=f"job {handle.job_id} ended without a result (killed, preempted without "
                                    f"requeue, or out of memory?); log: {handle.paths.stderr}") for name in job.names]
    try:
        return [RunOutcome(name, Path(path)) for name, path in zip(job.names, handle.result())]
    except Exception as exc:  # submitit's FailedJobError: the worker raised
        parts = str(exc).split("-" * 22)  # FailedJobError: message, ----, traceback, ----, log paths
        lines = [line.strip() for line in (parts[1] if len(parts) > 2 else str(exc)).splitlines() if line.strip()]
        fallback = f"job {handle.job_id}: {lines[-1] if lines else type(exc).__name__}"
        outcomes = []
        for name in job.names:
            error_file = Path(job.family_dir) / name / ERROR_FILE
            outcomes.append(RunOutcome(name, error=error_file.read_text().strip() if error_file.exists() else fallback))
        return outcomes
