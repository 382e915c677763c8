"""Sweep state on disk: which runs of a ladder are finished, running, failed or pending.

Every run of a sweep is an independent job writing its own run directory, so the state
of a sweep is read from the directories alone (no scheduler is asked). Besides run.json
and trajectory.csv, a worker keeps two small hidden files in the run directory
(`load_runs` ignores names starting with '.'):

- `.worker.json`: written when a worker starts the run and refreshed as it trains (at
  most every `HEARTBEAT_S` seconds, and after every evaluation): pid, host, Slurm job id
  if any, start and heartbeat times (Unix seconds), step and total steps. Removed when
  the worker stops, however it stops, unless it is killed outright (kill -9, node loss).
- `.error.txt`: the last line of the traceback of a run that raised; removed when a
  worker starts the run again.

A run is *finished* when run.json says `extra.complete`; *failed* when it has an error
file, or its directory holds a run with a different configuration; *running* when its
worker file names a live process on this host, or (another host) its heartbeat is
younger than `STALE_S`; otherwise *pending* (never started, or interrupted: the next
submission resumes it from its last evaluation).

A sweep started by an executor also writes `<ladder dir>/.sweep.json` (the ladder config
with its seeds, the executor, threads, job ids), so `forecast pilot --status DIR` can list
runs that have not started yet.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from forecast.errors import ForecastError, UsageError
from forecast.pilot.trainer import Progress, RunSpec
from forecast.io import atomic_write_text
from forecast.runs.model import METADATA_FILE, TRAJECTORY_FILE
from forecast.schema.pilot import RunStatusJson

WORKER_FILE = ".worker.json"
ERROR_FILE = ".error.txt"
SWEEP_FILE = ".sweep.json"
HEARTBEAT_S = 15.0  # how often a training worker refreshes its worker file
STALE_S = 600.0  # a worker on another host whose heartbeat is older than this is presumed gone

FINISHED, RUNNING, FAILED, PENDING = "finished", "running", "failed", "pending"
STATES = (FINISHED, RUNNING, FAILED, PENDING)


class SweepError(ForecastError):
    """Some runs of a sweep failed; the others were trained. The message names them."""


@dataclass(frozen=True)
class RunStatus:
    """One run's state, as read from its directory."""

    name: str
    state: str  # finished, running, failed or pending
    step: int | None  # last evaluated step written to trajectory.csv (None: none yet)
    steps: int | None  # total steps of the run (None: unknown)
    detail: str = ""  # the error of a failed run, the worker of a running one, ...

    def to_json(self) -> RunStatusJson:
        return asdict(self)


# ---------------------------------------------------------------------------- worker side


@contextmanager
def worker_files(run_dir: Path, steps: int, announce: bool = True) -> Iterator[Callable[[Progress], None]]:
    """Mark `run_dir` as being trained by this process for the duration of the block.

    Yields a progress callback that refreshes the heartbeat. An exception leaves its last
    line in the error file; any exit (an exception, a requeue's SystemExit, Ctrl-C) removes
    the worker file. With `announce` False (a complete run, about to be skipped) no worker
    file is written, and the error file only if the block raises."""
    run_dir = Path(run_dir)
    started = time.time()
    last = [0.0]

    def beat(progress: Progress | None, force: bool = False) -> None:
        now = time.time()
        if not announce:
            return
        if not force and now - last[0] < HEARTBEAT_S and (progress is None or progress.status != "evaluated"):
            return
        last[0] = now
        info = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job_id": _slurm_job_id(),
                "started": started, "heartbeat": now, "step": 0 if progress is None else progress.step, "steps": steps}
        atomic_write_text(run_dir / WORKER_FILE, json.dumps(info) + "\n")

    if announce:
        (run_dir / ERROR_FILE).unlink(missing_ok=True)
    beat(None, force=True)
    try:
        yield beat
    except Exception as exc:
        atomic_write_text(run_dir / ERROR_FILE, error_line(exc) + "\n")
        raise
    finally:
        (run_dir / WORKER_FILE).unlink(missing_ok=True)


def error_line(exc: BaseException) -> str:
    """The last line of the exception's traceback: 'Type: message' (the message's first line)."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def is_complete(run_dir: Path) -> bool:
    """True if run.json in `run_dir` says the run is complete (its configuration is not checked)."""
    meta = _read_json(Path(run_dir) / METADATA_FILE)
    return bool(meta and isinstance(meta.get("extra"), dict) and meta["extra"].get("complete"))


def _slurm_job_id() -> str | None:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


# ---------------------------------------------------------------------------- reading state


def run_status(run_dir: Path, spec: RunSpec | None = None, now: float | None = None) -> RunStatus:
    """The state of the run in `run_dir` (see the module docstring); with `spec`, a run
    directory holding a different configuration counts as failed."""
    run_dir = Path(run_dir)
    now = time.time() if now is None else now
    meta = _read_json(run_dir / METADATA_FILE)
    extra = meta.get("extra", {}) if isinstance(meta, dict) and isinstance(meta.get("extra"), dict) else {}
    config = extra.get("config") if isinstance(extra.get("config"), dict) else None
    steps = spec.train.steps if spec is not None else _total_steps(config)
    step = _last_step(run_dir / TRAJECTORY_FILE)
    status = lambda state, detail="": RunStatus(run_dir.name, state, step, steps, detail)  # noqa: E731
    if spec is not None and meta is not None and config != json.loads(json.dumps(spec.to_json())):
        return status(FAILED, "holds a run with a different configuration; delete it or choose another `out`")
    if extra.get("complete"):
        return status(FINISHED)
    error = run_dir / ERROR_FILE
    if error.exists():
        return status(FAILED, error.read_text().strip())
    worker = _read_json(run_dir / WORKER_FILE)
    if worker is not None:
        where = f"pid {worker.get('pid')} on {worker.get('host')}"
        if worker.get("slurm_job_id"):
            where += f", job {worker['slurm_job_id']}"
        if _alive(worker, now):
            ago = max(0.0, now - float(worker.get("heartbeat", now)))
            return status(RUNNING, f"{where}, step {worker.get('step')}/{worker.get('steps')}, heartbeat {ago:.0f} s ago")
        return status(PENDING, f"interrupted ({where} is gone); resumes from step {step or 0}")
    return status(PENDING, "" if step is None else f"interrupted; resumes from step {step}")


def sweep_status(family_dir: Path, specs: Sequence[RunSpec] | None = None) -> list[RunStatus]:
    """The state of every run of a sweep: `specs` when given, else the runs `.sweep.json`
    records, else every run directory found in `family_dir` (runs never started are then
    unknown)."""
    family_dir = Path(family_dir)
    if specs is None:
        specs = recorded_specs(family_dir)
    if specs is not None:
        return [run_status(family_dir / s.name, s) for s in specs]
    dirs = sorted(p for p in family_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if family_dir.is_dir() else []
    found = [d for d in dirs if any((d / f).exists() for f in (METADATA_FILE, WORKER_FILE, ERROR_FILE))]
    if not found:
        raise UsageError(f"`family_dir`: no runs in {family_dir}; give a ladder directory OUT/<ladder> "
                         "(e.g. runs/tiny), or `preset`/`config` with `out`", parameter="family_dir")
    return [run_status(d) for d in found]


def unfinished(family_dir: Path, specs: Sequence[RunSpec]) -> list[RunSpec]:
    """The specs a resubmission should run: neither finished nor running now."""
    return [s for s in specs if run_status(Path(family_dir) / s.name, s).state in (FAILED, PENDING)]


def record_sweep(family_dir: Path, ladder_json: dict[str, Any], info: dict[str, Any]) -> None:
    """Write `.sweep.json`: the ladder config (seeds as run) and how it was submitted."""
    atomic_write_text(Path(family_dir) / SWEEP_FILE,
                      json.dumps({"format": 1, "ladder": ladder_json, "submitted": time.time(), **info}, indent=2) + "\n")


def recorded_specs(family_dir: Path) -> list[RunSpec] | None:
    """The run specs `.sweep.json` records, or None if there is none."""
    from forecast.pilot.ladder import parse_ladder

    path = Path(family_dir) / SWEEP_FILE
    data = _read_json(path)
    if data is None:
        return None
    return parse_ladder(data.get("ladder"), path).run_specs()


def counts(statuses: Sequence[RunStatus]) -> dict[str, int]:
    """How many runs are in each state."""
    return {state: sum(s.state == state for s in statuses) for state in STATES}


# ---------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _total_steps(config: dict[str, Any] | None) -> int | None:
    try:
        return int(config["train"]["steps"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


def _last_step(trajectory: Path) -> int | None:
    """The step of the last row of trajectory.csv (its first column), if any."""
    try:
        lines = trajectory.read_text().strip().splitlines()
        return int(lines[-1].split(",", 1)[0]) if len(lines) > 1 else None
    except (OSError, ValueError, IndexError):
        return None


def _alive(worker: dict[str, Any], now: float) -> bool:
    """A worker on this host is alive if its pid is; elsewhere, if its heartbeat is recent."""
    if worker.get("host") == socket.gethostname():
        try:
            os.kill(int(worker["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, KeyError, TypeError, ValueError):
            pass  # someone else's process, or no pid: fall back to the heartbeat
        else:
            return True
    return now - float(worker.get("heartbeat", 0)) < STALE_S
