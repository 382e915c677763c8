"""Same numbers on any machine of a kind: a pilot's trajectory depends on its seed, device
and thread count, never on how busy the machine is (issue 26: thread counts that backed off
under load changed the demo's pilots)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from forecast.demo import DEMO_THREADS, run_demo
from forecast.pilot import preset_ladder, train_run
from forecast.pilot.executors import cpu_cores
from forecast.threads import torch_threads

SPIN = "import time\nend = time.time() + 120\nwhile time.time() < end: pass\n"  # one busy core, at most 2 minutes


class Busy:
    """Every core kept busy by a spinning process while the block runs."""

    def __enter__(self) -> Busy:
        self.procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(max(2, cpu_cores()))]
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def _short_pilot():
    spec = preset_ladder("tiny").run_specs()[0]
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, steps=25))


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name in ("trajectory.csv", "run.json")}


def test_a_pilot_trained_under_a_busy_cpu_is_byte_identical(tmp_path):
    """The demo's default thread count (a fixed number, read off nothing) on an idle and on
    a fully busy machine: the same trajectory, byte for byte."""
    spec = _short_pilot()
    with torch_threads(DEMO_THREADS):
        quiet = train_run(spec, tmp_path / "quiet", "cpu")
        with Busy():
            busy = train_run(spec, tmp_path / "busy", "cpu")
    quiet_csv, busy_csv = (Path(p) / "trajectory.csv" for p in (quiet, busy))
    assert quiet_csv.read_bytes() == busy_csv.read_bytes()
    assert len(quiet_csv.read_text().splitlines()) > 5  # evaluations were written


@pytest.mark.slow
def test_the_demo_under_a_busy_cpu_gives_the_same_numbers(tmp_path):
    """The whole main job (tiny ladder: pilots, fits, verification) with no thread count
    given, once on an idle machine and once with every core busy: every run's trajectory
    and every fit file the same bytes."""
    quiet = run_demo(tmp_path / "quiet", "cpu", preset="tiny")
    with Busy():
        busy = run_demo(tmp_path / "busy", "cpu", preset="tiny")
    assert _files(tmp_path / "quiet" / "runs").keys() == _files(tmp_path / "busy" / "runs").keys()
    for name, data in _files(tmp_path / "quiet" / "runs").items():
        if name.endswith("trajectory.csv"):
            assert _files(tmp_path / "busy" / "runs")[name] == data, name
    fits = sorted(p.relative_to(quiet.fits_dir) for p in quiet.fits_dir.rglob("*.json"))
    assert fits == sorted(p.relative_to(busy.fits_dir) for p in busy.fits_dir.rglob("*.json"))
    for rel in fits:
        assert (quiet.fits_dir / rel).read_bytes() == (busy.fits_dir / rel).read_bytes(), rel
