"""Pilot sweeps: a process pool and submitit jobs give the runs of a sequential sweep, byte for
byte; a failing job is reported and the others finish; resubmission reruns only unfinished
runs; a killed or preempted job resumes without losing evaluations; `--status`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from helpers import assert_one_line_error, invoke, output
from forecast.pilot import preset_ladder
from forecast.pilot.executors import SlurmOptions, make_jobs, submit_submitit, submitit_executor, wait_submitit
from forecast.pilot.sweep import (
    ERROR_FILE, SWEEP_FILE, WORKER_FILE, run_status, sweep_status, unfinished, worker_files,
)

REPO = Path(__file__).resolve().parents[1]
TINY4 = ["pilot", "--preset", "tiny", "--seeds", "2", "--device", "cpu", "--threads", "1", "--ensemble", "off"]
"""2 sizes x 2 seeds, each run its own job: these tests are about sweeps (pool, submitit, resubmission);
ensembles, whose members match runs trained alone to float tolerance, not bytes, are tested in
test_pilot_ensemble.py."""


def _submitit() -> None:
    pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[dev]' or '.[slurm]')")


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """submitit's local jobs are fresh Python processes: they must import this checkout."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> Path:
    """The 4-run tiny sweep, trained in turn in this process with one torch thread."""
    out = tmp_path_factory.mktemp("sequential")
    result = invoke(*TINY4, "--out", out)
    assert result.exit_code == 0, result.output
    return out / "tiny"


def _trajectories(family_dir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(family_dir.glob("*/trajectory.csv"))}


def _files(family_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every run file with its bytes and modification time (hidden files and folders excluded)."""
    return {str(p.relative_to(family_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(family_dir.glob("*/*")) if not p.name.startswith(".") and not p.parent.name.startswith(".")}


def _flat(text: str) -> str:
    """Log text with rich's line wrapping undone."""
    return " ".join(text.split())


def _status(*args: object) -> dict:
    result = invoke("pilot", "--status", *args, "--json")
    return output(result, "pilot-status")


@pytest.mark.slow
def test_process_pool_matches_sequential(sequential, tmp_path):
    result = invoke(*TINY4, "--jobs", "2", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    family_dir = tmp_path / "tiny"
    assert _trajectories(family_dir) == _trajectories(sequential) and len(_trajectories(sequential)) == 4
    assert [r["name"] for r in output(result, "pilot")["runs"]] == [s.name for s in preset_ladder("tiny").run_specs(2)]
    assert "2 at a time" in _flat(result.stderr) and "1 torch thread each" in _flat(result.stderr)
    assert not list(family_dir.glob("*/.*"))  # no worker, error or checkpoint files left
    recorded = json.loads((family_dir / SWEEP_FILE).read_text())
    assert recorded["executor"] == "local" and recorded["threads"] == 1 and recorded["ladder"]["seeds"] == [0, 1]
    status = _status(family_dir)  # the directory alone: .sweep.json names the runs
    assert status["counts"] == {"finished": 4, "running": 0, "failed": 0, "pending": 0}


@pytest.mark.slow
def test_submitit_sweep_with_a_failing_job_then_resubmission(sequential, tmp_path):
    """One run's directory holds another run: that job fails and is reported, the other three
    finish; after the conflict is removed, resubmitting trains only that run."""
    _submitit()
    family_dir = tmp_path / "tiny"
    family_dir.mkdir()
    shutil.copytree(sequential / "tiny-reverse-xs-s1", family_dir / "tiny-reverse-s-s1")  # a conflicting run
    args = [*TINY4, "--executor", "submitit-local", "--out", tmp_path]
    first = invoke(*args)
    line = first.stderr.strip().splitlines()[-1]
    assert first.exit_code == 2 and "Traceback" not in first.output, first.output
    assert line.startswith("error: 1 of 4 runs failed (tiny-reverse-s-s1: UsageError:")
    assert "different configuration" in line and "rerun the same command" in line
    assert "submitting 4 via submitit (local)" in _flat(first.stderr)
    finished = {n: t for n, t in _trajectories(family_dir).items() if n != "tiny-reverse-s-s1"}
    assert finished == {n: t for n, t in _trajectories(sequential).items() if n != "tiny-reverse-s-s1"}
    assert len(finished) == 3 and "tiny-reverse-xs-s0" in first.stdout and "tiny-reverse-s-s1" not in first.stdout

    status = _status("--preset", "tiny", "--seeds", "2", "--out", tmp_path)
    assert status["counts"] == {"finished": 3, "running": 0, "failed": 1, "pending": 0}
    failed = next(r for r in status["runs"] if r["state"] == "failed")
    assert failed["name"] == "tiny-reverse-s-s1" and "different configuration" in failed["detail"]
    recorded = json.loads((family_dir / SWEEP_FILE).read_text())
    assert sorted(recorded["job_ids"]) == sorted(_trajectories(sequential))

    before = _files(family_dir)
    shutil.rmtree(family_dir / "tiny-reverse-s-s1")
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "3 finished, 0 running); submitting 1" in _flat(second.stderr)
    assert list(json.loads((family_dir / SWEEP_FILE).read_text())["job_ids"]) == ["tiny-reverse-s-s1"]
    after = _files(family_dir)
    assert {k: v for k, v in after.items() if not k.startswith("tiny-reverse-s-s1/")} == \
        {k: v for k, v in before.items() if not k.startswith("tiny-reverse-s-s1/")}  # finished runs untouched
    assert _trajectories(family_dir) == _trajectories(sequential)
    assert _status(family_dir)["counts"]["finished"] == 4


@pytest.mark.slow
def test_killed_and_preempted_jobs_lose_no_evaluations(sequential, tmp_path):
    """kill -9 one job's worker mid-run, send the other the preemption signal (USR2, as Slurm
    does before preempting): the preempted job checkpoints, requeues and finishes; the killed
    run shows as pending; resubmitting the unfinished runs completes the sweep, and every
    trajectory equals the uninterrupted sweep's."""
    _submitit()
    family_dir = tmp_path / "tiny"
    specs = preset_ladder("tiny").run_specs(1)
    killed, preempted = specs
    executor = submitit_executor("local", family_dir / ".submitit", SlurmOptions(time_min=5))
    jobs = make_jobs([[s] for s in specs], family_dir, "cpu", 1)  # one job per run
    handles = submit_submitit(jobs, executor)
    todo, deadline = {killed.name: signal.SIGKILL, preempted.name: signal.SIGUSR2}, time.monotonic() + 90
    while todo:
        for name, sig in list(todo.items()):
            run_dir = family_dir / name
            if all((run_dir / f).exists() for f in (".state.pt", "trajectory.csv", "run.json")):  # evaluated once
                pid = json.loads((run_dir / WORKER_FILE).read_text())["pid"]
                os.kill(pid, sig)
                del todo[name]
        waiting = [h for spec, h in zip(specs, handles) if spec.name in todo]
        assert time.monotonic() < deadline and not any(h.done() for h in waiting), "a job ended before its signal"
        time.sleep(0.003)
    outcomes = wait_submitit(jobs, handles, poll_s=0.2, grace_s=2.0)
    assert outcomes[0].error is not None and "ended without a result" in outcomes[0].error
    assert outcomes[1].error is None and outcomes[1].path == family_dir / preempted.name
    assert "Calling checkpoint method" in handles[1].stdout() and "Requeued" in handles[1].stdout()

    interrupted = run_status(family_dir / killed.name, killed)
    assert interrupted.state == "pending" and "interrupted" in interrupted.detail
    assert not json.loads((family_dir / killed.name / "run.json").read_text())["extra"]["complete"]
    assert unfinished(family_dir, specs) == [killed]
    again = make_jobs([[s] for s in unfinished(family_dir, specs)], family_dir, "cpu", 1)
    assert wait_submitit(again, submit_submitit(again, executor), poll_s=0.2)[0].error is None
    assert _trajectories(family_dir) == {n: t for n, t in _trajectories(sequential).items() if n.endswith("-s0")}
    assert not list(family_dir.glob("*/.*"))


def test_worker_files_mark_running_and_failed(tmp_path):
    spec = preset_ladder("tiny").run_specs()[0]
    run_dir = tmp_path / spec.name
    assert run_status(run_dir, spec).state == "pending"
    with worker_files(run_dir, spec.train.steps):
        status = run_status(run_dir, spec)
        assert status.state == "running" and f"pid {os.getpid()}" in status.detail
    assert not (run_dir / WORKER_FILE).exists()
    with pytest.raises(ValueError), worker_files(run_dir, spec.train.steps):
        raise ValueError("bad thing\nmore")
    assert (run_dir / ERROR_FILE).read_text() == "ValueError: bad thing\n"
    assert run_status(run_dir, spec).state == "failed" and not (run_dir / WORKER_FILE).exists()
    (run_dir / WORKER_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere", "heartbeat": time.time() - 3600}))
    (run_dir / ERROR_FILE).unlink()
    status = run_status(run_dir, spec)
    assert status.state == "pending" and "elsewhere is gone" in status.detail  # stale heartbeat on another host
    assert [s.name for s in sweep_status(tmp_path)] == [spec.name]  # found without a config


def test_status_table_and_errors(sequential, tmp_path):
    table = invoke("pilot", "--status", "--preset", "tiny", "--seeds", "3", "--out", sequential.parent)
    assert table.exit_code == 0, table.output
    assert "4 finished, 0 running, 0 failed, 2 pending" in table.stdout and "tiny-reverse-s-s2" in table.stdout
    (tmp_path / "empty").mkdir()
    for args, fragments in [
        (["pilot", "--status", tmp_path / "empty"], ("--status: no runs in", "runs/tiny")),
        (["pilot", "--status", tmp_path / "missing"], ("--status: no runs in",)),
        (["pilot", "--preset", "tiny", "--jobs", "0"], ("--jobs 0", "positive")),
        (["pilot", "--preset", "tiny", "--executor", "nope"], ("--executor nope", "local, slurm, submitit-local")),
        (["pilot", tmp_path, "--preset", "tiny"], ("goes with --status",)),
        (["pilot", "--preset", "tiny", "--executor", "slurm", "--device", "tpu"], ("--device", "unknown device")),
        (["pilot", "--preset", "tiny", "--executor", "slurm", "--time", "0"], ("--time 0", "positive")),
    ]:
        assert_one_line_error(invoke(*args), *fragments)


def test_slurm_without_submitit_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    assert_one_line_error(invoke("pilot", "--preset", "tiny", "--executor", "slurm", "--out", tmp_path),
                          "--executor slurm needs submitit", "pip install")
    assert not (tmp_path / "tiny").exists()


def test_slurm_job_parameters(monkeypatch, tmp_path):
    """What each Slurm job asks for (the sbatch script is built, not submitted: no cluster here)."""
    _submitit()
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # pretend srun exists
    options = SlurmOptions(partition="gpu", time_min=90, gpus_per_task=1, cpus_per_task=4, mem_gb=16, array_parallelism=8)
    executor = submitit_executor("slurm", tmp_path, options)
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit x", "uid")
    for line in ("--partition=gpu", "--time=90", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=16GB",
                 "--ntasks-per-node=1", "--signal=USR2@", "--job-name=forecast-pilot"):
        assert f"#SBATCH {line}" in script, (line, script)
    assert executor._executor.parameters["array_parallelism"] == 8


def test_slurm_without_a_cluster_is_a_usage_error(tmp_path):
    _submitit()
    assert_one_line_error(invoke("pilot", "--preset", "tiny", "--executor", "slurm", "--out", tmp_path),
                          "--executor slurm: no Slurm on this machine", "--executor local")
