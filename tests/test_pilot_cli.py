"""`forecast pilot` end to end: the tiny preset, determinism, resume after kill -9, bad configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast import load_runs
from forecast.threads import torch_threads
from forecast.pilot import load_ladder, preset_ladder, train_run

REPO = Path(__file__).resolve().parents[1]
TINY = ["pilot", "--preset", "tiny", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny preset trained once, uninterrupted, through the CLI."""
    out = tmp_path_factory.mktemp("tiny")
    result = CliRunner().invoke(app, [*TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "tiny", result


def _trajectories(family_dir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(family_dir.glob("*/trajectory.csv"))}


def test_tiny_preset_writes_loadable_runs(tiny):
    family_dir, result = tiny
    runs = load_runs(family_dir)
    ladder = preset_ladder("tiny")
    assert sorted(r.name for r in runs) == sorted(s.name for s in ladder.run_specs())
    for run in runs:
        assert run.family == "tiny" and run.params_kind == "non-embedding" and run.source == "forecast pilot"
        assert run.skills == ("add", "sort") and run.metrics == ("val_loss",)
        assert run.recipe.label == "reverse" and run.recipe.format == "reverse" and run.recipe.mix == {"add": 1.0, "sort": 1.0}
        assert run.extra["complete"] and run.extra["config"]["train"]["steps"] == 150
        assert run.params == ladder.sizes[run.extra["config"]["size"]].params_non_embedding
        series = run.series["sort"]
        assert series.step[-1] == 150 and series.chance == 0 and (series.n == 64).all()
        assert (series.tokens > 0).all() and (series.flops > 6 * run.params * series.tokens).all()
        assert (series.loss > 0).all()
        assert series.has_prob and ((series.prob > 0) & (series.prob < 1)).all()
        assert run.examples_per_step == run.extra["examples_per_step"] == ladder.train.batch_size
    assert max(r.series["sort"].accuracy[-1] for r in runs) > 0.2  # it learns something
    assert not list(family_dir.rglob("*.pt")) and not list(family_dir.rglob(".*"))  # no checkpoints left
    assert "tiny-reverse-s-s0" in result.stdout  # the summary table


def test_same_seed_gives_identical_trajectory(tiny, tmp_path):
    family_dir, _ = tiny
    spec = preset_ladder("tiny").run_specs()[0]
    with torch_threads(1):  # as the CLI ran it (--threads 1): runs are identical for equal thread counts
        train_run(spec, tmp_path, "cpu")
    assert (tmp_path / spec.name / "trajectory.csv").read_bytes() == (family_dir / spec.name / "trajectory.csv").read_bytes()


def test_complete_runs_are_skipped(tiny):
    family_dir, _ = tiny
    before = {p: p.stat().st_mtime_ns for p in family_dir.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, [*TINY, "--out", str(family_dir.parent)])
    assert result.exit_code == 0 and "skipped" in result.stderr
    assert before == {p: p.stat().st_mtime_ns for p in family_dir.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_resume_after_kill_is_identical(tiny, tmp_path):
    """kill -9 a ladder after its first evaluation was written, rerun the same command, and
    get byte-identical trajectories to the uninterrupted ladder."""
    family_dir, _ = tiny
    command = [sys.executable, "-c", "from forecast.cli import app; app()", *TINY, "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "tiny" / "tiny-reverse-xs-s0"
    deadline = time.monotonic() + 60
    while not all((first / f).exists() for f in (".state.pt", "trajectory.csv", "run.json")):  # save_run writes run.json last
        assert process.poll() is None and time.monotonic() < deadline, "ladder ended before its first evaluation"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = json.loads((first / "run.json").read_text())
    assert not partial["extra"]["complete"]  # killed mid-run
    resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert _trajectories(tmp_path / "tiny") == _trajectories(family_dir)
    assert not list((tmp_path / "tiny").rglob("*.pt"))


def test_cli_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[skills]\nadd = {digits = 2}\n[sizes]\ns = {layers = 1, width = 16, heads = 2}\n'
                   '[[recipes]]\nlabel = "r"\nmix = {add = 1, mul = 2}\n')
    for args, needle in [
        (["pilot", "--config", str(bad)], "field 'recipes[0].mix.mul': unknown skill"),
        (["pilot", "--preset", "nope"], "unknown preset 'nope'"),
        (["pilot"], "exactly one of --preset"),
        (["pilot", "--config", str(tmp_path / "missing.toml")], "no such file"),
        (["pilot", "--preset", "tiny", "--device", "tpu"], "unknown device"),
    ]:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.output, result.stderr
    assert str(bad) in CliRunner().invoke(app, ["pilot", "--config", str(bad)]).stderr


def test_changed_config_does_not_overwrite_a_run(tiny, tmp_path):
    family_dir, _ = tiny
    config = preset_ladder("tiny").to_json()
    config["train"]["lr"] = 3e-3
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(config))
    before = _trajectories(family_dir)
    result = CliRunner().invoke(app, ["pilot", "--config", str(path), "--out", str(family_dir.parent), "--threads", "1"])
    assert result.exit_code == 2 and "different configuration" in result.stderr
    assert _trajectories(family_dir) == before


def test_show_config_round_trips(tmp_path):
    result = CliRunner().invoke(app, ["pilot", "--preset", "tiny", "--show-config"])
    assert result.exit_code == 0
    path = tmp_path / "tiny.json"
    path.write_text(result.stdout)
    assert load_ladder(path) == preset_ladder("tiny")
