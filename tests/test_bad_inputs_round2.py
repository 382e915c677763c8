"""The second bad-input corpus (issue 28): one pytest case per input, selectable with -k.

Each case builds a small workspace (a synthetic runs directory, the shipped demo fits,
import inputs), changes one thing, runs one command in-process, and checks the contract:

- refused: exit 2, exactly one stderr line holding the named fragments, nothing on stdout,
  and every file of the workspace byte-identical afterwards (`helpers.snapshot`);
- accepted: exit 0, with the note or result that says what was done.

The rules behind the cases (README "Errors and notes"): one reader for every input file
(`forecast.io`), one size grammar (`forecast.quantities`), one output rule (`--force`), the
run-folder rules (`forecast.runs.files.scan_runs`). A few cases need a real process (stdout
closed or full, a terminal's encoding, Ctrl-C): they run the CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import LM_EVAL, set_column, REPO, invoke, snapshot

from forecast import write_runs
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

# ============================================================================ the workspace

WIDE_CSV = "_step,tokens,eval/acc/piqa\n0,0,0.5\n100,1000,0.55\n200,2000,0.6\n"
TABLE_CSV = "model,params,tokens,mmlu\na-1b,1e9,2e10,0.3\na-7b,7e9,1.4e11,0.45\n"
LONG_CSV = ("model,params,step,tokens,task,metric,value\n"
            "m1,1e8,0,0,piqa,acc,0.5\nm1,1e8,100,1e9,piqa,acc,0.6\n")
LM_FLAGS = ("--params", "70M", "--tokens-per-step", "2097152")
CSV_FLAGS = ("--params", "1M", "--tokens-column", "tokens", "--accuracy-columns", r"eval/acc/(\w+)")
TABLE_FLAGS = ("--name-column", "model", "--params-column", "params", "--tokens-column", "tokens")


def workspace(root: Path) -> Path:
    """A runs directory (three synthetic sizes, skills `skill` and `other`), the demo fits,
    a user's file, and one input per importer."""
    truth = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
    runs = synthetic_ladder(truth, np.geomspace(1e5, 1e7, 3), tokens_range=(3e6, 3e9), checkpoints=8,
                            rng=np.random.default_rng(0))
    write_runs(runs, root / "runs")
    shutil.copytree(REPO / "fits", root / "fits")
    (root / "notes.txt").write_text("my notes\n")
    inputs = root / "inputs"
    inputs.mkdir()
    (inputs / "results.json").write_text(json.dumps(LM_EVAL))
    (inputs / "wide.csv").write_text(WIDE_CSV)
    (inputs / "table.csv").write_text(TABLE_CSV)
    (inputs / "long.csv").write_text(LONG_CSV)
    return root


def first_run(ws: Path) -> Path:
    return sorted(p for p in (ws / "runs").iterdir() if p.is_dir())[0]


def edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text()))


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def traj_cell(ws: Path, column: str, value: str, row: int = 1) -> None:
    """Set `column` of data row `row` of the first run's trajectory.csv (adding the column if absent)."""
    path = first_run(ws) / "trajectory.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def fit_file(ws: Path) -> Path:
    """The `add` skill's fit file in the demo fits, and a function rewriting it with its hash."""
    index = json.loads((ws / "fits" / "index.json").read_text())
    entry = next(g for g in index["groups"] if "add" in g["skills"])["skills"]["add"]
    return ws / "fits" / entry["file"]


def change_fit(ws: Path, change: Callable[[dict], object]) -> None:
    """Change the `add` fit as a buggy writer would, its hash in index.json included."""
    import hashlib

    path = fit_file(ws)
    data = json.loads(path.read_text())
    change(data)
    text = json.dumps(data, indent=1)
    path.write_text(text)
    index_path = ws / "fits" / "index.json"
    index = json.loads(index_path.read_text())
    next(g for g in index["groups"] if "add" in g["skills"])["skills"]["add"]["sha256"] = \
        hashlib.sha256(text.encode()).hexdigest()
    index_path.write_text(json.dumps(index))


def lm_eval_change(change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda ws: edit_json(ws / "inputs" / "results.json", change)


# ============================================================================ the cases


@dataclass(frozen=True)
class Case:
    """One input: what to set up, the command (`{ws}` is the workspace), and the answer:
    `fragments` for a refusal (exit 2), or `ok` (exit 0) with `note` expected on stderr."""

    id: str
    args: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    fragments: tuple[str, ...] = ()
    ok: bool = False
    note: str | None = None


def refused(id: str, args: tuple[str, ...], *fragments: str, setup: Callable[[Path], None] | None = None) -> Case:
    return Case(id, args, setup, fragments)


def accepted(id: str, args: tuple[str, ...], note: str | None = None,
             setup: Callable[[Path], None] | None = None) -> Case:
    return Case(id, args, setup, ok=True, note=note)


PREDICT = ("predict", "--fits", "{ws}/fits", "--family", "demo", "--skill", "add")
RUNS = ("runs", "{ws}/runs")
LM = ("import", "lm-eval", "{ws}/inputs/results.json", *LM_FLAGS, "--out", "{ws}/out")
WIDE = ("import", "csv", "{ws}/inputs/wide.csv", *CSV_FLAGS, "--out", "{ws}/out")
TABLE = ("import", "table", "{ws}/inputs/table.csv", *TABLE_FLAGS, "--out", "{ws}/out")
LONG = ("import", "long", "{ws}/inputs/long.csv", "--out", "{ws}/out")
DESIGN = ("design", "--target-params", "70B", "--budget", "1e20")


def _symlink_zero(path: Path) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        target = ws / path.as_posix().replace("RUN", first_run(ws).name)
        target.unlink()
        target.symlink_to("/dev/zero")
    return setup


def _fifo(ws: Path) -> None:
    target = first_run(ws) / "trajectory.csv"
    target.unlink()
    os.mkfifo(target)


def _long_cell(ws: Path) -> None:
    for name in ("wide.csv", "table.csv", "long.csv"):
        edit(ws / "inputs" / name, lambda t: t.rstrip("\n") + "," * 0 + "\n" + '"' + "x" * 140_000 + '"\n')


def _copy_run_elsewhere(ws: Path) -> None:
    run = first_run(ws)
    shutil.copytree(run, ws / "runs" / "more" / run.name)


def _symlinked_run(ws: Path) -> None:
    (ws / "runs" / "zz-link").symlink_to(first_run(ws), target_is_directory=True)


def _nested(ws: Path) -> None:
    run = sorted(p for p in (ws / "runs").iterdir() if p.is_dir())[1]
    shutil.copytree(run, first_run(ws) / "sub" / "inner")


def _rename_skill(name: str) -> Callable[[Path], None]:
    """Rename the skill on the first run's first data row (a second skill of that name)."""
    return lambda ws: traj_cell(ws, "skill", name)


def _params_note_csv(ws: Path) -> None:
    (ws / "inputs" / "wide.csv").write_text(WIDE_CSV.replace("_step,tokens,eval/acc/piqa", "_step, tokens, eval/acc/piqa")
                                            .replace("0,0,0.5", "0, 0, 0.5"))


CASES = [
    # --- 1: outputs: nothing the user had is replaced without --force; no device written
    refused("plot over a user's file", (*PREDICT, "--params", "10M", "--plot", "{ws}/notes.txt"),
            "--plot", "not written by forecast", "--force"),
    refused("plot over a run's trajectory", (*PREDICT, "--params", "10M", "--plot", "{ws}/runs/RUN/trajectory.csv"),
            "--plot", "not written by forecast"),
    refused("plot to /dev/full", (*PREDICT, "--params", "10M", "--plot", "/dev/full"), "/dev/full", "character device"),
    refused("plot to a directory", (*PREDICT, "--params", "10M", "--plot", "{ws}/runs"), "--plot", "directory"),
    accepted("plot over a user's file with --force", (*PREDICT, "--params", "10M", "--plot", "{ws}/notes.txt",
                                                      "--force"), "wrote"),
    refused("fit --out a folder of the user's", ("fit", "{ws}/runs", "--out", "{ws}/inputs"),
            "--out", "no index.json", "--force"),
    refused("design --out over a user's file", (*DESIGN, "--out", "{ws}/notes.txt"), "--out", "--force"),
    refused("import --overwrite over a folder that is not a run",
            (*LM, "--overwrite"), "not a run folder", setup=lambda ws: (ws / "out" / "pythia-70m").mkdir(parents=True)),
    # --- 2: one reader: special files, limits, JSON and CSV rules
    refused("trajectory.csv a FIFO", RUNS, "trajectory.csv", "FIFO", setup=_fifo),
    refused("trajectory.csv a symlink to /dev/zero", RUNS, "trajectory.csv", "character device",
            setup=_symlink_zero(Path("runs/RUN/trajectory.csv"))),
    refused("fits index.json a symlink to /dev/zero", (*PREDICT, "--params", "10M"), "index.json", "character device",
            setup=_symlink_zero(Path("fits/index.json"))),
    refused("csv cell over the field limit (import csv)", WIDE, "wide.csv", "131,072", setup=_long_cell),
    refused("csv cell over the field limit (import table)", TABLE, "table.csv", "131,072", setup=_long_cell),
    refused("csv cell over the field limit (import long)", LONG, "long.csv", "131,072", setup=_long_cell),
    refused("csv cell over the field limit (trajectory)", RUNS, "trajectory.csv", "131,072",
            setup=lambda ws: traj_cell(ws, "skill", '"' + "s" * 140_000 + '"')),
    refused("NUL byte in a CSV", WIDE, "wide.csv", "NUL", setup=lambda ws: edit(ws / "inputs" / "wide.csv",
                                                                             lambda t: t.replace("0.55", "0.5\x005"))),
    refused("NUL byte in trajectory.csv", RUNS, "trajectory.csv", "NUL",
            setup=lambda ws: traj_cell(ws, "skill", "sk\x00ill")),
    accepted("spaces after commas are trimmed", WIDE, setup=_params_note_csv),
    refused("step 2**63 in trajectory.csv", RUNS, "step", "2**63", setup=lambda ws: traj_cell(ws, "step", str(2**63))),
    refused("step 2**64 in trajectory.csv", RUNS, "step", "2**63", setup=lambda ws: traj_cell(ws, "step", str(2**64))),
    refused("step 2**63 in a long table", LONG, "step", "2**63",
            setup=lambda ws: edit(ws / "inputs" / "long.csv", lambda t: t.replace(",100,1e9", f",{2**63},1e9"))),
    refused("lm-eval JSON nested 100,000 deep", LM, "results.json", "nested",
            setup=lambda ws: (ws / "inputs" / "results.json").write_text("[" * 100_000 + "]" * 100_000)),
    refused("lm-eval JSON nested 100 deep", LM, "results.json", "nested",
            setup=lambda ws: (ws / "inputs" / "results.json").write_text("[" * 100 + "]" * 100)),
    refused("lm-eval revision with a 20-digit step", LM, "revision", "too large",
            setup=lm_eval_change(lambda d: d["config"].update(
                model_args="pretrained=EleutherAI/pythia-70m,revision=step99999999999999999999"))),
    refused("lm-eval revision=step-5", LM, "revision", "step-5",
            setup=lm_eval_change(lambda d: d["config"].update(model_args="pretrained=x,revision=step-5"))),
    refused("lm-eval empty pretrained", LM, "pretrained", "empty",
            setup=lm_eval_change(lambda d: d["config"].update(model_args="pretrained=,revision=step1000"))),
    refused("lm-eval acc null", LM, "results.piqa.acc,none", "null",
            setup=lm_eval_change(lambda d: d["results"]["piqa"].update({"acc,none": None}))),
    refused("lm-eval acc true", LM, "results.piqa.acc,none", "true",
            setup=lm_eval_change(lambda d: d["results"]["piqa"].update({"acc,none": True}))),
    refused("lm-eval acc a string", LM, "results.piqa.acc,none", "not a number",
            setup=lm_eval_change(lambda d: d["results"]["piqa"].update({"acc,none": "0.6"}))),
    refused("lm-eval negative sample count", LM, "n-samples.piqa", "positive whole",
            setup=lm_eval_change(lambda d: d["n-samples"]["piqa"].update(effective=-5))),
    refused("lm-eval string sample count", LM, "n-samples.piqa", "positive whole",
            setup=lm_eval_change(lambda d: d["n-samples"]["piqa"].update(effective="1838"))),
    refused("lm-eval duplicate keys", LM, "results.json", "twice",
            setup=lambda ws: (ws / "inputs" / "results.json").write_text(
                json.dumps(LM_EVAL)[:-1] + ', "results": {}}')),
    refused("run.json duplicate keys", RUNS, "run.json", "params", "twice",
            setup=lambda ws: edit(first_run(ws) / "run.json", lambda t: t.rstrip().rstrip("}") + ', "params": 5}')),
    # --- 2: values checked against their meaning
    refused("negative loss", RUNS, "loss", ">= 0", setup=lambda ws: traj_cell(ws, "loss", "-1")),
    refused("stderr 10", RUNS, "stderr", "[0, 0.5]", setup=lambda ws: traj_cell(ws, "stderr", "10")),
    refused("fractional n", RUNS, "field 'n'", "whole", setup=lambda ws: traj_cell(ws, "n", "10.5")),
    refused("n of zero", RUNS, "field 'n'", "whole", setup=lambda ws: traj_cell(ws, "n", "0")),
    refused("ceiling below the accuracy reached", RUNS, "ceiling", "above its ceiling",
            setup=lambda ws: edit(first_run(ws) / "trajectory.csv", set_column("ceiling", "0.55"))),
    refused("run.json params 1.5", RUNS, "params", "whole number",
            setup=lambda ws: edit_json(first_run(ws) / "run.json", lambda d: d.update(params=1.5))),
    refused("run.json params 0.5", RUNS, "params", setup=lambda ws: edit_json(first_run(ws) / "run.json",
                                                                             lambda d: d.update(params=0.5))),
    refused("run.json complete 'yes'", RUNS, "complete", "true or false",
            setup=lambda ws: edit_json(first_run(ws) / "run.json", lambda d: d["extra"].update(complete="yes"))),
    refused("run.json name differs from its folder", RUNS, "name", "differs from its folder",
            setup=lambda ws: edit_json(first_run(ws) / "run.json", lambda d: d.update(name="elsewhere"))),
    refused("run.json negative seed", RUNS, "seed", setup=lambda ws: edit_json(first_run(ws) / "run.json",
                                                                              lambda d: d.update(seed=-1))),
    # --- 3: one size grammar
    *[refused(f"--params {text!r}", (*PREDICT, "--params", text), "--params", "70B, 410M, 1.4T")
      for text in ("0.5", "70 B", "70G", "1_000", "70,000,000,000", "-5", "1e400", "")],
    refused("--tokens 0.5", (*PREDICT, "--params", "10M", "--tokens", "0.5"), "--tokens", "at least 1"),
    refused("--tokens-per-param beside --tokens", (*PREDICT, "--params", "10M", "--tokens", "1B",
                                                   "--tokens-per-param", "20"), "--tokens-per-param", "--tokens"),
    refused("--tokens-per-param beside --compute", (*PREDICT, "--params", "10M", "--tokens-per-param", "20",
                                                    "--compute", "1e18"), "--tokens-per-param", "--compute"),
    refused("fit --laws ''", ("fit", "{ws}/runs", "--laws", "", "--out", "{ws}/newfits"), "--laws", "names nothing"),
    refused("import --params 70G", ("import", "lm-eval", "{ws}/inputs/results.json", "--params", "70G",
                                    "--tokens-per-step", "2097152", "--out", "{ws}/out"), "--params", "70B"),
    # --- 4: runs directories
    accepted("a symlinked run folder is counted once", RUNS, "a symlink", setup=_symlinked_run),
    accepted("a byte-identical copy is counted once", RUNS, "byte-identical copy", setup=_copy_run_elsewhere),
    accepted("a runs dir nested in a run folder is noted", RUNS, "holds no runs", setup=_nested),
    refused("skill named ../../escape", RUNS, "skill", "path separator", setup=_rename_skill("../../escape")),
    refused("skill named /etc/passwd", RUNS, "skill", "path separator", setup=_rename_skill("/etc/passwd")),
    refused("skill named ..", RUNS, "skill", "'.' or '..'", setup=_rename_skill("..")),
    refused("skills ADD beside add", RUNS, "differ only in case", setup=_rename_skill("SKILL")),
    refused("import --family ''", (*LM, "--family", ""), "--family", "empty"),
    refused("import --out ''", (*LM[:-2], "--out", ""), "--out", "empty"),
    accepted("import --chance above every accuracy is noted", (*LM, "--chance", "arc_easy=0.6"), "below its chance level"),
    # --- 6: no option value hangs a command
    refused("design --seeds 0", (*DESIGN, "--seeds", "0"), "--seeds"),
    refused("design --skills ''", (*DESIGN, "--skills", ""), "--skills", "names nothing"),
    refused("design --sizes 1", (*DESIGN, "--sizes", "1"), "--sizes", "2 to 64"),
    refused("design --spacing 1", (*DESIGN, "--spacing", "1"), "--spacing", "above 1"),
    refused("design --candidates with one name twice",
            ("design", "--runs", "{ws}/runs", "--candidates", "{ws}/candidates.csv", "--target-params", "1B"),
            "candidates.csv:3", "given twice",
            setup=lambda ws: (ws / "candidates.csv").write_text("name,params,tokens\nbig,1B,20B\nbig,2B,40B\n")),
    refused("fit --seed -5", ("fit", "{ws}/runs", "--seed", "-5"), "--seed"),
    refused("fit --draws 100000000", ("fit", "{ws}/runs", "--draws", "100000000"), "--draws", "100,000"),
    refused("pilot --seeds 0", ("pilot", "--preset", "tiny", "--seeds", "0"), "--seeds"),
    # --- 6: fits refused on load
    refused("fits calibration with 0 degrees of freedom", (*PREDICT, "--params", "10M"), "calibration.dof",
            setup=lambda ws: change_fit(ws, lambda d: d["calibration"].update(dof=0))),
    refused("fits negative calibration rate", (*PREDICT, "--params", "10M"), "calibration.shift_rate",
            setup=lambda ws: change_fit(ws, lambda d: d["calibration"].update(shift_rate=-0.1))),
    refused("fits draws of 1e300", (*PREDICT, "--params", "10M"), "draws", "1e+300",
            setup=lambda ws: change_fit(ws, lambda d: d["candidates"][0]["draws"][0].__setitem__(0, 1e300))),
    refused("fits index naming a file outside", (*PREDICT, "--params", "10M"), "index.json", "inside the fits",
            setup=lambda ws: edit(ws / "fits" / "index.json",
                                  lambda t: t.replace('"file": "', '"file": "../../', 1))),
]




@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    if case.setup is not None:
        case.setup(ws)
    run = first_run(ws).name
    args = [a.replace("{ws}", str(ws)).replace("RUN", run) for a in case.args]
    before = snapshot(ws)
    result = invoke(*args)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if case.ok:
        assert result.exit_code == 0, (result.exit_code, result.stderr)
        if case.note is not None:  # notes go to stderr, or into the table's caption (`forecast runs`)
            said = " ".join((result.stderr + result.stdout).split())
            assert case.note in said, said
        return
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    for fragment in case.fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert snapshot(ws) == before, "a refused command changed the workspace"


def test_own_png_is_replaced_without_force(tmp_path: Path) -> None:
    """A PNG that forecast wrote is one of its own outputs: a second --plot replaces it."""
    ws = workspace(tmp_path / "ws")
    png = ws / "forecast.png"
    for _ in range(2):
        result = invoke("predict", "--fits", ws / "fits", "--family", "demo", "--skill", "add", "--params", "10M", "--plot", png)
        assert result.exit_code == 0, result.stderr
    assert png.read_bytes().startswith(b"\x89PNG")
    other = ws / "other.png"
    other.write_bytes(png.read_bytes().replace(b"tEXtSoftware\x00forecast", b"tEXtSoftware\x00Gimp....", 1))
    result = invoke("predict", "--fits", ws / "fits", "--family", "demo", "--skill", "add", "--params", "10M", "--plot", other)
    assert result.exit_code == 2 and "--force" in result.stderr


# ============================================================================ real processes

CLI = [sys.executable, "-c", "from forecast.cli import app; app(prog_name='forecast')"]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return workspace(tmp_path_factory.mktemp("proc")) / "runs"


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_table_on_a_terminal_that_cannot_encode_it(runs_dir: Path, encoding: str) -> None:
    done = subprocess.run([*CLI, "runs", str(runs_dir)], capture_output=True, env=_env(PYTHONIOENCODING=encoding),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode(encoding)
    assert "synthetic" in text and "─" not in text and "-----" in text


@pytest.mark.parametrize("how", ["closed", "full"])
def test_closed_or_full_stdout(runs_dir: Path, how: str) -> None:
    if how == "full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    stdout = subprocess.DEVNULL if how == "closed" else open("/dev/full", "w")
    kwargs = {"close_fds": True}
    if how == "closed":
        cmd = ["sh", "-c", 'exec "$@" 1>&-', "sh", *CLI, "runs", str(runs_dir)]
    else:
        cmd = [*CLI, "runs", str(runs_dir), "--json"]
    done = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, env=_env(), timeout=60, **kwargs)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: stdout"), lines


@pytest.mark.slow
def test_second_interrupt_during_fit_exits_130_with_one_line(runs_dir: Path, tmp_path: Path) -> None:
    """Two Ctrl-Cs in a row during `fit`: exit 130, one line, no half-written fits."""
    out = tmp_path / "fits"
    proc = subprocess.Popen([*CLI, "fit", str(runs_dir), "--out", str(out), "--draws", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(OMP_NUM_THREADS="1"))
    time.sleep(4)  # imports done (~1.5 s), fitting under way (the whole fit takes ~10 s)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    assert proc.returncode == 130, stderr
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), lines
    assert not out.exists() or (out / "index.json").exists() or not any(out.iterdir())
