"""kill -9 during `forecast fit RUNS --out EXISTING` (issue 18, item 4): whenever the
process dies, `forecast predict --fits EXISTING --json` gives exactly the forecast of the
old fits or exactly that of the new ones: never a mix of skills, never an error.

Each trial is its own process, killed with SIGKILL (no handler, no cleanup) at a random
moment: half of them anywhere from its start to just past its switch of the index, half within
its write phase (found by watching
the directory for the first file the fit writes), where a non-atomic writer would leave a
mix. The processes are forked from a server that imported the CLI and the fitting engine
once, so a trial costs the fit, not the 3-5 s of importing torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, invoke, output

from forecast import write_runs
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

TRIALS = 24
SKILLS = tuple(f"skill{i}" for i in range(8))  # eight files, then the index: a window to land in
MIN_IN_WINDOW = 3  # trials go on (up to 3 × TRIALS) until this many kills landed inside the write window
FIT_FLAGS = ("--draws", "20", "--laws", "grok_scaling")
FIT = "from forecast.cli import app; app(prog_name='forecast')"


def _ladder(directory: Path, truth: GrokTruth, seed: int) -> None:
    runs = synthetic_ladder(truth, np.geomspace(1e5, 1e7, 4), tokens_range=(3e6, 3e9), checkpoints=10,
                            rng=np.random.default_rng(seed))
    runs = [dataclasses.replace(r, series={s: dataclasses.replace(r.series["skill"], skill=s) for s in SKILLS})
            for r in runs]
    write_runs(runs, directory)


def _predict(fits: Path) -> str:
    result = invoke("predict", "--fits", fits, "--params", "3e7", "--json")
    output(result, "predict")  # exit 0, strict JSON
    return result.stdout


def _forecasts(text: str) -> list[dict]:
    data = json.loads(text)
    return data["forecasts"] if isinstance(data, dict) else data  # (before the JSON envelope: a bare list)


def _listing(directory: Path) -> set[tuple[str, int]]:
    found = set()
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root, name)
            try:
                found.add((str(path), path.stat().st_mtime_ns))
            except FileNotFoundError:  # renamed away while we looked
                pass
    return found


SERVER = r"""
import json, os, sys
from forecast.cli import app
import forecast.fitting.fit, forecast.store.files  # the heavy imports (torch, numpy, scipy), once

for line in sys.stdin:
    pid = os.fork()
    if pid == 0:  # the trial: `forecast fit ...`, output discarded
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        try:
            app(args=json.loads(line), prog_name="forecast")
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        except BaseException:
            os._exit(1)
        os._exit(0)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"killed": os.WIFSIGNALED(status), "code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class ForkServer:
    """Starts `forecast fit` processes on request (forked, so already imported)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SERVER], cwd=REPO, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)

    def start(self, *args: object) -> int:
        self.process.stdin.write(json.dumps([str(a) for a in args]) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["pid"]

    def wait(self) -> dict:
        line = self.process.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _watch(pid: int, changed, timeout: float = 120.0) -> float | None:
    """Seconds until `changed()` holds (None if the trial ended first), polling fast."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if changed():
            return time.perf_counter() - start
        if not _alive(pid):
            return None
        time.sleep(0.0005)
    return None


def _alive(pid: int) -> bool:
    """Whether the trial is still running (a finished one is a zombie until the server reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_kill_9_during_fit_leaves_the_old_forecast_or_the_new(tmp_path):
    truth = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
    _ladder(tmp_path / "old-runs", truth, seed=0)
    _ladder(tmp_path / "new-runs", dataclasses.replace(truth, d_half=3e8), seed=1)
    pristine, fresh = tmp_path / "existing", tmp_path / "fresh"
    for runs, out in ((tmp_path / "old-runs", pristine), (tmp_path / "new-runs", fresh)):
        assert invoke("fit", runs, "--out", out, *FIT_FLAGS).exit_code == 0
    old, new = _predict(pristine), _predict(fresh)
    assert old != new
    per_skill_old = {f["skill"]: f for f in _forecasts(old)}
    per_skill_new = {f["skill"]: f for f in _forecasts(new)}
    assert all(per_skill_old[s] != per_skill_new[s] for s in SKILLS)  # a mix would show

    server = ForkServer()
    try:
        server.start("--version")  # returns once the server has imported everything
        assert server.wait() == {"killed": False, "code": 0}
        # calibrate: when the first new skill file appears, and how long until the index switches
        trial_dir = tmp_path / "trial"
        shutil.copytree(pristine, trial_dir)
        before, index = _listing(trial_dir), (pristine / "index.json").read_bytes()
        started = time.perf_counter()
        pid = server.start("fit", tmp_path / "new-runs", "--out", trial_dir, *FIT_FLAGS)
        writes_at = _watch(pid, lambda: _listing(trial_dir) != before)
        window = _watch(pid, lambda: (trial_dir / "index.json").read_bytes() != index)
        assert server.wait() == {"killed": False, "code": 0} and writes_at is not None and window is not None
        total = time.perf_counter() - started
        assert _predict(trial_dir) == new

        rng = random.Random(18)
        seen = {"old": 0, "new": 0}
        in_window = done = 0
        for trial in range(3 * TRIALS):
            if trial >= TRIALS and in_window >= MIN_IN_WINDOW:
                break
            shutil.rmtree(trial_dir)
            shutil.copytree(pristine, trial_dir)
            before = _listing(trial_dir)
            pid = server.start("fit", tmp_path / "new-runs", "--out", trial_dir, *FIT_FLAGS)
            if trial % 2 == 0:  # anywhere from the start to just past the switch of the index
                time.sleep(rng.uniform(0, writes_at + 2 * window))
            elif _watch(pid, lambda: _listing(trial_dir) != before) is not None:  # inside the write phase
                time.sleep(rng.uniform(0, 1.5 * window))
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)  # no handler, no cleanup
            status = server.wait()
            index_switched = (trial_dir / "index.json").read_bytes() != (pristine / "index.json").read_bytes()
            if status["killed"] and _listing(trial_dir) != before and not index_switched:
                in_window += 1  # new skill files on disk, old index: the moment a mix could show
            result = _predict(trial_dir)
            assert result in (old, new), f"trial {trial} ({status}): a mix of old and new fits"
            seen["old" if result == old else "new"] += 1
            done += 1
    finally:
        server.close()
    print(f"\nkill -9 during fit (fit {total:.2f} s, writes from {writes_at:.2f} s, index {window * 1e3:.0f} ms "
          f"later): {done} trials, "
          f"{in_window} killed with new skill files written but the old index in place, "
          f"{seen['old']} read the old forecast, {seen['new']} the new, 0 mixed, 0 errors")
    assert done >= TRIALS and in_window >= MIN_IN_WINDOW, "too few kills landed while the fits were being written"
    assert seen["old"]  # (the calibration run read the new forecast)
