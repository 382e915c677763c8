"""The malformed-input corpus (issue 18, DESIGN §7): every command over a generated set of
bad inputs — broken run files, trajectories, fits, ladder configs, import inputs, bad
flags, unreadable files and read-only directories. For each input the contract is:

- exit code 2 and exactly one line on stderr (`error: ...`), no traceback;
- nothing on stdout (no result printed: a silent wrong result would be exit 0);
- every file the user had is byte-identical afterwards (`helpers.snapshot`).

`test_corpus` runs each in-process as its own case (select one with `-k`) and, once all have
run, prints one summary line (inputs tried, clear
errors, tracebacks, silent wrong results, files changed). The permission cases need a
user whom `chmod` stops: under root (which reads any file) they run in a subprocess as
`nobody`; where that is impossible they are skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import typer.testing
from helpers import LM_EVAL, set_column, REPO, RUNNER, snapshot

from forecast.cli import app
from forecast import Recipe, write_runs
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

CASE_SECONDS = 30
"""A bad input must be refused up front: a case that runs longer (training, fitting) fails."""


# ============================================================================ the workspace

WIDE_CSV = "_step,tokens,eval/acc/piqa,val/loss\n0,0,0.5,5.0\n100,1000,0.55,4.0\n200,2000,0.6,3.5\n"
TABLE_CSV = "model,params,tokens,mmlu,gsm8k\na-1b,1e9,2e10,0.3,0.05\na-7b,7e9,1.4e11,0.45,0.15\n"
LONG_CSV = ("model,params,step,tokens,task,metric,value\n"
            "m1,1e8,0,0,piqa,acc,0.5\nm1,1e8,100,1e9,piqa,acc,0.6\n"
            "m2,4e8,0,0,piqa,acc,0.5\nm2,4e8,100,1e9,piqa,acc,0.65\n")
TINY_TOML = (REPO / "forecast" / "pilot" / "presets" / "tiny.toml").read_text()

CSV_FLAGS = ("--params", "1M", "--tokens-column", "tokens", "--accuracy-columns", r"eval/acc/(\w+)")
LM_EVAL_FLAGS = ("--params", "70M", "--tokens-per-step", "2097152")
TABLE_FLAGS = ("--name-column", "model", "--params-column", "params", "--tokens-column", "tokens")


def build_workspace(root: Path) -> Path:
    """What a user has: a runs directory (a synthetic ladder of two skills), fits (the
    shipped demo fits), a file, import inputs, a ladder config, an output directory."""
    rng = np.random.default_rng(0)
    truth = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
    runs = synthetic_ladder(truth, np.geomspace(1e5, 1e7, 4), tokens_range=(3e6, 3e9), checkpoints=12, rng=rng)
    runs = [dataclasses.replace(r, series={**r.series, "other": dataclasses.replace(r.series["skill"], skill="other")})
            for r in runs]
    write_runs(runs, root / "runs")
    recipes = [dataclasses.replace(r, name=f"{r.name}-{label}", recipe=Recipe(label)) for label in ("a", "b")
               for r in runs[:3]]
    write_runs(recipes, root / "recipes")
    shutil.copytree(REPO / "fits", root / "fits")
    _only_demo_skills(root / "fits" / "index.json")
    (root / "file.txt").write_text("a file, not a directory\n")
    (root / "folder").mkdir()
    inputs = root / "inputs"
    inputs.mkdir()
    (inputs / "results.json").write_text(json.dumps(LM_EVAL, indent=1))
    (inputs / "wide.csv").write_text(WIDE_CSV)
    (inputs / "table.csv").write_text(TABLE_CSV)
    (inputs / "long.csv").write_text(LONG_CSV)
    (inputs / "ladder.toml").write_text(TINY_TOML)
    (root / "out").mkdir()  # an existing output directory with a run the user keeps
    shutil.copytree(root / "runs" / runs[0].name, root / "out" / runs[0].name)
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("pristine"))


def first_run(ws: Path) -> Path:
    return sorted((ws / "runs").iterdir())[0]


# ============================================================================ mutations


def edit_text(relative: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = ws / relative
        path.write_text(change(path.read_text()))
    return apply


def run_file(name: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    """Change `name` (run.json or trajectory.csv) of the first run."""
    def apply(ws: Path) -> None:
        path = first_run(ws) / name
        path.write_text(change(path.read_text()))
    return apply


def run_json(**fields) -> Callable[[Path], None]:
    """Set fields of the first run's run.json (a value `DELETE` removes the field)."""
    def change(text: str) -> str:
        data = json.loads(text)
        for key, value in fields.items():
            if value is DELETE:
                data.pop(key, None)
            else:
                data[key] = value
        return json.dumps(data)
    return run_file("run.json", change)


DELETE = object()


def run_json_raw(old: str, new: str) -> Callable[[Path], None]:
    return run_file("run.json", lambda t: json.dumps(json.loads(t), indent=1).replace(old, new, 1))


def trajectory_row(row: int, column: str, value: str) -> Callable[[Path], None]:
    """Set one cell of the first run's trajectory.csv (row 1 = the first data row)."""
    def change(text: str) -> str:
        lines = text.splitlines()
        if column not in lines[0].split(","):  # an optional column the writer left out
            lines = [lines[0] + f",{column}"] + [line + "," for line in lines[1:]]
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        return "\n".join(lines) + "\n"
    return run_file("trajectory.csv", change)


def binary(path_of: Callable[[Path], Path]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path_of(ws).write_bytes(b"\xff\xfe\x00garbage\x9c\x80" * 20)
    return apply


def truncated(path_of: Callable[[Path], Path]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = path_of(ws)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return apply


def replaced_by_dir(path_of: Callable[[Path], Path]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = path_of(ws)
        path.unlink()
        path.mkdir()
    return apply


def _only_demo_skills(index_path: Path) -> None:
    """The shipped fits (demo and the real slice, with loss fits) cut to the demo group's
    skill fits: one group, so `predict` needs no --family, and no loss fits."""
    index = json.loads(index_path.read_text())
    index["groups"] = [g for g in index["groups"] if g["family"] == "demo"]
    index.pop("losses", None)
    index_path.write_text(json.dumps(index, indent=1) + "\n")


def fit_file(ws: Path) -> Path:
    entry = json.loads((ws / "fits" / "index.json").read_text())["groups"][0]["skills"]["add"]
    return ws / "fits" / (entry["file"] if isinstance(entry, dict) else entry)  # (format 1 indexes: a path)


def fit_json(change: Callable[[dict], None], rehash: bool = True) -> Callable[[Path], None]:
    """Change the `add` fit file; with `rehash`, update its hash in index.json too, as a
    buggy writer would (so the loader's own checks, not the hash, must catch it)."""
    def apply(ws: Path) -> None:
        path = fit_file(ws)
        data = json.loads(path.read_text())
        change(data)
        text = json.dumps(data, indent=1) + "\n"
        path.write_text(text)
        if rehash:
            index_path = ws / "fits" / "index.json"
            index = json.loads(index_path.read_text())
            _set_hash(index, text)
            index_path.write_text(json.dumps(index, indent=1) + "\n")
    return apply


def _set_hash(index: dict, text: str) -> None:
    import hashlib

    entry = index["groups"][0]["skills"]["add"]
    if isinstance(entry, dict):
        entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()


def fit_text(old: str, new: str) -> Callable[[Path], None]:
    """Replace text in the `add` fit file (e.g. a number by NaN) and rehash."""
    def apply(ws: Path) -> None:
        path = fit_file(ws)
        text = path.read_text()
        assert old in text, old
        text = text.replace(old, new)
        path.write_text(text)
        index_path = ws / "fits" / "index.json"
        index = json.loads(index_path.read_text())
        _set_hash(index, text)
        index_path.write_text(json.dumps(index, indent=1) + "\n")
    return apply


def set_candidates(key: str, value) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        for c in data["candidates"]:
            c[key] = value
    return change


def set_field(key: str, value) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data[key] = value
    return change


def nan_draw(data: dict) -> None:
    data["candidates"][0]["draws"][0][0] = None


def ragged_draws(data: dict) -> None:
    data["candidates"][0]["draws"][0] = data["candidates"][0]["draws"][0][:1]


def write(relative: str, text: str | bytes) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = ws / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return apply


def duplicate_run_name(ws: Path) -> None:
    shutil.copytree(first_run(ws), ws / "runs" / "zz-copy")


def remove(relative_of: Callable[[Path], Path]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = relative_of(ws)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return apply


def run_json_path(ws: Path) -> Path:
    return first_run(ws) / "run.json"


def trajectory_path(ws: Path) -> Path:
    return first_run(ws) / "trajectory.csv"


def index_path(ws: Path) -> Path:
    return ws / "fits" / "index.json"


# ============================================================================ the cases


@dataclass(frozen=True)
class Case:
    """One bad input: `args` run as `forecast ARGS` from the workspace root (`{ws}` is
    replaced by its path), after `setup` broke something in it."""

    name: str
    args: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    fragments: tuple[str, ...] = ()  # what the error line must say
    permission: str | None = None  # "unreadable:REL" or "readonly:REL": chmod before the run (as nobody)
    tags: tuple[str, ...] = field(default=())


RUN_COMMANDS = (("runs", "{ws}/runs"), ("fit", "{ws}/runs", "--out", "{ws}/fits", "--draws", "20"),
                ("backtest", "{ws}/runs", "--draws", "20"))
PREDICT = ("predict", "--fits", "{ws}/fits", "--params", "1M")
PLAN_TARGET = ("plan", "--fits", "{ws}/fits", "--skill", "add", "--target", "0.5")
PLAN_BUDGET = ("plan", "--fits", "{ws}/fits", "--budget", "1e15")
BACKTEST = ("backtest", "{ws}/runs", "--draws", "20")
COMPARE = ("compare", "{ws}/recipes", "--draws", "20")
FIT = ("fit", "{ws}/runs", "--out", "{ws}/fits", "--draws", "20")


def run_cases() -> list[Case]:
    """Broken run.json and trajectory.csv, each through `runs`, `fit` and `backtest`."""
    broken = [
        ("run.json truncated", truncated(run_json_path), ("run.json", "not valid JSON")),
        ("run.json binary garbage", binary(run_json_path), ("run.json",)),
        ("run.json empty", write("runs/PLACEHOLDER", ""), ()),
        ("run.json a list", run_file("run.json", lambda t: "[1, 2]"), ("run.json", "JSON object")),
        ("params a string", run_json(params="big"), ("run.json", "params")),
        ("params NaN", run_json_raw('"params": 1', '"params": NaN, "x": 1'), ("run.json", "NaN")),
        ("params Infinity", run_json_raw('"params": 1', '"params": Infinity, "x": 1'), ("run.json",)),
        ("params negative", run_json(params=-5), ("run.json", "params")),
        ("params 1e308", run_json(params=1e308), ("run.json", "params")),
        ("params true", run_json(params=True), ("run.json", "params")),
        ("format 2", run_json(format=2), ("run.json", "format")),
        ("name missing", run_json(name=DELETE), ("run.json", "name")),
        ("family a number", run_json(family=3), ("run.json", "family")),
        ("seed a string", run_json(seed="zero"), ("run.json", "seed")),
        ("recipe a number", run_json(recipe=5), ("run.json", "recipe")),
        ("negative mix weight", run_json(recipe={"label": "r", "mix": {"skill": -1}}), ("run.json", "recipe.mix")),
        ("unknown params_kind", run_json(params_kind="weird"), ("run.json", "params_kind")),
        ("extra a list", run_json(extra=[]), ("run.json", "extra")),
        ("run.json a directory", replaced_by_dir(run_json_path), ("run.json",)),
        ("duplicate run name", duplicate_run_name, ("name",)),
        ("trajectory truncated mid-row", truncated(trajectory_path), ("trajectory.csv",)),
        ("trajectory binary garbage", binary(trajectory_path), ("trajectory.csv",)),
        ("trajectory empty", run_file("trajectory.csv", lambda t: ""), ("trajectory.csv", "empty")),
        ("trajectory header only", run_file("trajectory.csv", lambda t: t.splitlines()[0] + "\n"),
         ("trajectory.csv", "no data rows")),
        ("accuracy NaN", trajectory_row(2, "accuracy", "nan"), ("trajectory.csv:3", "NaN")),
        ("accuracy in percent", trajectory_row(2, "accuracy", "42"), ("trajectory.csv:3", "accuracy")),
        ("accuracy not a number", trajectory_row(2, "accuracy", "abc"), ("trajectory.csv:3", "'abc'")),
        ("tokens non-monotone", trajectory_row(3, "tokens", "1"), ("trajectory.csv", "non-monotone")),
        ("tokens negative", trajectory_row(2, "tokens", "-5"), ("trajectory.csv:3", "tokens")),
        ("tokens infinite", trajectory_row(2, "tokens", "inf"), ("trajectory.csv:3", "tokens")),
        ("tokens on some rows only", trajectory_row(2, "tokens", ""), ("trajectory.csv", "tokens")),
        ("duplicate step", trajectory_row(2, "step", "1"), ("trajectory.csv", "step 1 twice")),
        ("fractional step", trajectory_row(2, "step", "1.5"), ("trajectory.csv:3", "step")),
        ("missing chance column", run_file("trajectory.csv", lambda t: t.replace(",chance,", ",chancy,", 1)),
         ("trajectory.csv",)),
        ("chance changes", trajectory_row(2, "chance", "0.5"), ("trajectory.csv:3", "chance")),
        ("chance empty", trajectory_row(2, "chance", ""), ("trajectory.csv:3", "chance")),
        ("ceiling below chance", run_file("trajectory.csv", set_column("ceiling", "0")), ("trajectory.csv", "ceiling")),
        ("answer probability 2", trajectory_row(2, "prob", "2"), ("trajectory.csv:3", "prob")),
        ("negative stderr", trajectory_row(2, "stderr", "-0.1"), ("trajectory.csv", "stderr")),
        ("sample count 0", trajectory_row(2, "n", "0"), ("trajectory.csv", "n")),
        ("trajectory missing", remove(trajectory_path), ("trajectory.csv", "not found")),
        ("trajectory a directory", replaced_by_dir(trajectory_path), ("trajectory.csv",)),
    ]
    cases = []
    for label, setup, fragments in broken:
        if label == "run.json empty":
            setup, fragments = run_file("run.json", lambda t: ""), ("run.json",)
        for command in RUN_COMMANDS:
            cases.append(Case(f"{command[0]}: {label}", command, setup, fragments))
    return cases




def fits_cases() -> list[Case]:
    """Broken fits directories, each through `predict`, `plan --budget` and `plan --target`."""
    broken = [
        ("index truncated", truncated(index_path), ("index.json",)),
        ("index binary garbage", binary(index_path), ("index.json",)),
        ("index of another format", write("fits/index.json", '{"format": 99, "groups": []}'), ("index.json", "format")),
        ("index missing", remove(index_path), ("index.json",)),
        ("index groups not a list", write("fits/index.json", '{"format": 2, "groups": {}}'), ("index.json",)),
        ("skill file missing", remove(fit_file), ("add-",)),
        ("skill file truncated", truncated(fit_file), ("add-", "hash")),
        ("skill file changed, hash stale", fit_json(set_field("top", 0.5), rehash=False), ("add-", "hash")),
        ("NaN draw", fit_json(nan_draw), ("add-", "draws")),
        ("NaN literal in draws", fit_text('"draws": [\n    [\n     ', '"draws": [\n    [\n     NaN, '), ("add-",)),
        ("top null", fit_json(set_field("top", None)), ("add-", "top")),
        ("chance NaN", fit_text('"chance": 0.0', '"chance": NaN'), ("add-", "chance")),
        ("chance 2", fit_json(set_field("chance", 2)), ("add-", "chance")),
        ("every weight 0", fit_json(set_candidates("weight", 0)), ("add-", "weight")),
        ("negative weight", fit_json(set_candidates("weight", -1)), ("add-", "weight")),
        ("candidates missing", fit_json(lambda d: d.pop("candidates")), ("add-", "candidates")),
        ("unknown status", fit_json(set_field("status", "great")), ("add-",)),
        ("unknown law", fit_json(set_candidates("law", "magic")), ("add-",)),
        ("ragged draws", fit_json(ragged_draws), ("add-", "draws")),
        ("parameter missing", fit_json(set_candidates("params", {})), ("add-",)),
        ("scales negative", fit_json(lambda d: d["scales"].update({k: -1 for k in d["scales"]})), ("add-", "scales")),
        ("no pilots", fit_json(set_field("pilots", [])), ("add-", "pilots")),
        ("pilots' tokens strings", fit_json(lambda d: d["pilots"][0].update(tokens=["a"])), ("add-", "pilots")),
        ("fit file a list", fit_json(lambda d: d.clear()), ("add-", "format")),
    ]
    commands = (PREDICT, PLAN_BUDGET, PLAN_TARGET)
    return [Case(f"{c[0]}{' --budget' if '--budget' in c else ' --target' if '--target' in c else ''}: {label}",
                 c, setup, fragments) for label, setup, fragments in broken for c in commands]


def flag_cases() -> list[Case]:
    """Flags every command must refuse before doing any work."""
    f = []
    add = lambda name, args, *fragments: f.append(Case(name, tuple(args), None, fragments))  # noqa: E731
    for value in ("0", "-7B", "1e400", "nan", "70Q", "inf", ""):
        add(f"predict --params {value!r}", ("predict", "--fits", "{ws}/fits", "--params", value), "--params")
    add("predict --tokens 0", (*PREDICT, "--tokens", "0"), "--tokens")
    add("predict --compute abc", (*PREDICT, "--compute", "abc"), "--compute")
    for value in ("1.5", "0", "-0.2", "1", "nan"):
        add(f"predict --interval {value}", (*PREDICT, "--interval", value), "--interval")
        add(f"plan --interval {value}", (*PLAN_BUDGET, "--interval", value), "--interval")
        add(f"backtest --interval {value}", (*BACKTEST, "--interval", value), "--interval")
        add(f"compare --interval {value}", (*COMPARE, "--interval", value), "--interval")
    for value in ("2", "0", "1", "-0.5", "nan"):
        add(f"predict --threshold {value}", (*PREDICT, "--threshold", value), "--threshold")
        add(f"compare --threshold {value}", (*COMPARE, "--threshold", value), "--threshold")
    for value in ("0", "-20", "nan", "inf"):
        add(f"predict --tokens-per-param {value}", (*PREDICT, "--tokens-per-param", value), "--tokens-per-param")
        add(f"plan --budget --tokens-per-param {value}", (*PLAN_BUDGET, "--tokens-per-param", value),
            "--tokens-per-param")
        add(f"plan --target --tokens-per-param {value}", (*PLAN_TARGET, "--tokens-per-param", value),
            "--tokens-per-param")
    for command in (PREDICT, BACKTEST, COMPARE, FIT):
        add(f"{command[0]} --plot a directory", (*command, "--plot", "{ws}/folder"), "--plot", "directory")
        add(f"{command[0]} --plot in a missing directory's file", (*command, "--plot", "{ws}/file.txt/x.png"),
            "--plot")
    add("predict unknown skill", (*PREDICT, "--skill", "gsm9k"), "gsm9k")
    add("predict --metric bananas", (*PREDICT, "--metric", "bananas"), "--metric")
    add("predict --metric loss with --plot", (*PREDICT, "--metric", "loss", "--plot", "{ws}/p.png"), "--metric loss")
    add("predict --metric loss without loss fits", (*PREDICT, "--metric", "loss"), "loss")
    add("predict --aggregate without members", (*PREDICT, "--aggregate", "avg="), "--aggregate")
    add("predict --aggregate of an unknown skill", (*PREDICT, "--aggregate", "avg=add,nope"), "nope")
    add("plan --loss -1", ("plan", "--fits", "{ws}/fits", "--loss", "-1"), "--loss")
    add("plan --loss and --budget", ("plan", "--fits", "{ws}/fits", "--loss", "2", "--budget", "1e20"), "--loss")
    add("predict unknown family", (*PREDICT, "--family", "nope"), "nope")
    add("predict --fits a file", ("predict", "--fits", "{ws}/file.txt", "--params", "1M"), "file.txt")
    add("predict --fits missing", ("predict", "--fits", "{ws}/nope", "--params", "1M"), "nope")
    add("predict --tokens and --compute", (*PREDICT, "--tokens", "1B", "--compute", "1e20"), "--compute")
    add("plan --target 2", ("plan", "--fits", "{ws}/fits", "--skill", "add", "--target", "2"), "--target")
    add("plan --target 0", ("plan", "--fits", "{ws}/fits", "--skill", "add", "--target", "0"), "--target")
    add("plan --budget 0", ("plan", "--fits", "{ws}/fits", "--budget", "0"), "--budget")
    add("plan --budget and --target", (*PLAN_TARGET, "--budget", "1e20"), "--budget")
    add("plan --target without --skill", ("plan", "--fits", "{ws}/fits", "--target", "0.5"), "--skill")
    add("plan --target unknown skill", ("plan", "--fits", "{ws}/fits", "--skill", "nope", "--target", "0.5"), "nope")
    add("backtest --draws -1", ("backtest", "{ws}/runs", "--draws", "-1"), "--draws")
    add("backtest --holdout largest:0", (*BACKTEST, "--holdout", "largest:0"), "--holdout")
    add("backtest --holdout params>=foo", (*BACKTEST, "--holdout", "params>=foo"), "--holdout")
    add("backtest --holdout biggest", (*BACKTEST, "--holdout", "biggest"), "--holdout")
    add("backtest --holdout every size", (*BACKTEST, "--holdout", "params>=1"), "--holdout")
    add("backtest unknown skill", (*BACKTEST, "--skill", "nope"), "nope")
    add("compare --by size", (*COMPARE, "--by", "size"), "--by")
    add("compare --measure bananas", (*COMPARE, "--measure", "bananas"), "--measure")
    add("compare --target-params 0", (*COMPARE, "--target-params", "0"), "--target-params")
    add("compare one recipe only", ("compare", "{ws}/runs", "--draws", "20"), "two recipes")
    add("compare unknown --baseline", (*COMPARE, "--baseline", "c"), "--baseline")
    add("compare --by family, recipes differ", (*COMPARE, "--by", "family"), "--recipe")
    add("compare --by family with one family", (*COMPARE, "--by", "family", "--recipe", "a"), "two families")
    add("compare --draws 0", ("compare", "{ws}/recipes", "--draws", "0"), "--draws")
    add("fit --out a file", ("fit", "{ws}/runs", "--out", "{ws}/file.txt", "--draws", "20"), "file.txt")
    add("fit --draws -5", ("fit", "{ws}/runs", "--out", "{ws}/fits", "--draws", "-5"), "--draws")
    add("fit --skip-fraction 1.5", (*FIT, "--skip-fraction", "1.5"), "--skip-fraction")
    add("fit --skip-fraction nan", (*FIT, "--skip-fraction", "nan"), "--skip-fraction")
    add("fit --min-sizes 0", (*FIT, "--min-sizes", "0"), "--min-sizes")
    add("fit --laws nonsense", (*FIT, "--laws", "nonsense"), "nonsense")
    add("fit --pool bananas", (*FIT, "--pool", "bananas"), "--pool")
    add("backtest --pool x", (*BACKTEST, "--pool", "x"), "--pool")
    add("fit unknown skill", (*FIT, "--skill", "nope"), "nope")
    add("fit unknown family", (*FIT, "--family", "nope"), "nope")
    add("fit missing runs", ("fit", "{ws}/nope", "--out", "{ws}/fits"), "nope")
    add("fit runs is a file", ("fit", "{ws}/file.txt", "--out", "{ws}/fits"), "file.txt")
    add("fit empty runs directory", ("fit", "{ws}/folder", "--out", "{ws}/fits"), "no runs found")
    add("runs missing directory", ("runs", "{ws}/nope"), "nope")
    add("unknown command", ("frobnicate",), "frobnicate")
    add("unknown flag", ("predict", "--parms", "7B"), "--parms")
    add("pilot --seeds 0", ("pilot", "--preset", "tiny", "--out", "{ws}/out", "--seeds", "0"), "--seeds")
    add("pilot --seeds -1", ("pilot", "--preset", "tiny", "--out", "{ws}/out", "--seeds", "-1"), "--seeds")
    add("pilot --out a file", ("pilot", "--preset", "tiny", "--out", "{ws}/file.txt"), "file.txt")
    add("pilot --jobs 0", ("pilot", "--preset", "tiny", "--out", "{ws}/out", "--jobs", "0"), "--jobs")
    add("pilot --threads 0", ("pilot", "--preset", "tiny", "--out", "{ws}/out", "--threads", "0"), "--threads")
    add("pilot --device tpu", ("pilot", "--preset", "tiny", "--out", "{ws}/out", "--device", "tpu"), "tpu")
    add("pilot unknown preset", ("pilot", "--preset", "huge", "--out", "{ws}/out"), "huge")
    add("pilot --preset and --config", ("pilot", "--preset", "tiny", "--config", "{ws}/inputs/ladder.toml"),
        "--config")
    add("pilot --config missing", ("pilot", "--config", "{ws}/nope.toml", "--out", "{ws}/out"), "nope.toml")
    add("demo --out a file", ("demo", "--out", "{ws}/file.txt"), "file.txt")
    add("demo --params 0", ("demo", "--out", "{ws}/out", "--params", "0"), "--params")
    add("demo --threads 0", ("demo", "--out", "{ws}/out", "--threads", "0"), "--threads")
    add("demo --device tpu", ("demo", "--out", "{ws}/out", "--device", "tpu"), "tpu")
    return f


def ladder_config_cases() -> list[Case]:
    pilot = ("pilot", "--config", "{ws}/inputs/ladder.toml", "--out", "{ws}/out")
    edit = lambda old, new: edit_text("inputs/ladder.toml", lambda t: t.replace(old, new, 1))  # noqa: E731
    broken = [
        ("config truncated", truncated(lambda ws: ws / "inputs" / "ladder.toml"), ("ladder.toml",)),
        ("config binary garbage", binary(lambda ws: ws / "inputs" / "ladder.toml"), ("ladder.toml",)),
        ("config a width string", edit("width = 16", 'width = "wide"'), ("ladder.toml", "width")),
        ("config negative steps", edit("steps = 150", "steps = -150"), ("ladder.toml", "steps")),
        ("config steps a float", edit("steps = 150", "steps = 1.5"), ("ladder.toml", "steps")),
        ("config lr NaN", edit("lr = 1e-2", "lr = nan"), ("ladder.toml", "lr")),
        ("config unknown skill in mix", edit("mix = { add = 1", "mix = { addd = 1"), ("ladder.toml",)),
        ("config no recipes", edit("[[recipes]]", "[[nothing]]"), ("ladder.toml",)),
        ("config seeds a string", edit("seeds = [0]", 'seeds = "0"'), ("ladder.toml", "seeds")),
        ("config heads not dividing width", edit("width = 16, heads = 2", "width = 16, heads = 3"),
         ("ladder.toml",)),
    ]
    return [Case(f"pilot: {label}", pilot, setup, fragments) for label, setup, fragments in broken]


def import_cases() -> list[Case]:
    lm = ("import", "lm-eval", "{ws}/inputs/results.json", *LM_EVAL_FLAGS, "--out", "{ws}/out")
    wide = ("import", "csv", "{ws}/inputs/wide.csv", *CSV_FLAGS, "--out", "{ws}/out")
    table = ("import", "table", "{ws}/inputs/table.csv", *TABLE_FLAGS, "--out", "{ws}/out")
    long = ("import", "long", "{ws}/inputs/long.csv", "--out", "{ws}/out")
    results = lambda ws: ws / "inputs" / "results.json"  # noqa: E731
    lm_json = lambda change: edit_text("inputs/results.json", lambda t: json.dumps(change(json.loads(t))))  # noqa: E731
    c = []
    add = lambda name, args, setup, *fragments: c.append(Case(name, tuple(args), setup, fragments))  # noqa: E731
    add("lm-eval truncated", lm, truncated(results), "results.json")
    add("lm-eval binary garbage", lm, binary(results), "results.json")
    add("lm-eval NaN accuracy", lm, edit_text("inputs/results.json", lambda t: t.replace("0.6", "NaN", 1)),
        "results.json")
    add("lm-eval results a list", lm, lm_json(lambda d: d.update(results=[]) or d), "results.json")
    add("lm-eval --params 0", (*lm[:3], "--params", "0", "--tokens-per-step", "2097152", "--out", "{ws}/out"),
        None, "--params")
    add("lm-eval --params missing", (*lm[:3], "--tokens-per-step", "2097152", "--out", "{ws}/out"), None, "--params")
    add("lm-eval --out a file", (*lm[:-1], "{ws}/file.txt"), None, "file.txt")
    add("lm-eval missing file", ("import", "lm-eval", "{ws}/nope.json", *LM_EVAL_FLAGS, "--out", "{ws}/out"),
        None, "nope.json")
    add("lm-eval existing run without --overwrite", (*lm[:-1], "{ws}/out"), _lm_run_exists, "--overwrite")
    wide_path = "inputs/wide.csv"
    add("csv truncated", wide, truncated(lambda ws: ws / wide_path), "wide.csv")
    add("csv NaN", wide, edit_text(wide_path, lambda t: t.replace("0.55", "nan")), "wide.csv")
    add("csv binary garbage", wide, binary(lambda ws: ws / wide_path), "wide.csv")
    add("csv --out a file", (*wide[:-1], "{ws}/file.txt"), None, "file.txt")
    add("csv --params -1", ("import", "csv", "{ws}/inputs/wide.csv", "--params", "-1", *CSV_FLAGS[2:],
                            "--out", "{ws}/out"), None, "--params")
    add("csv regex without a group", ("import", "csv", "{ws}/inputs/wide.csv", "--params", "1M",
                                      "--tokens-column", "tokens", "--accuracy-columns", "eval/acc/piqa",
                                      "--out", "{ws}/out"), None, "--accuracy-columns")
    add("csv bad regex", ("import", "csv", "{ws}/inputs/wide.csv", "--params", "1M", "--tokens-column", "tokens",
                          "--accuracy-columns", "eval/(acc", "--out", "{ws}/out"), None, "--accuracy-columns")
    table_path = "inputs/table.csv"
    add("table params NaN", table, edit_text(table_path, lambda t: t.replace("1e9", "nan")), "table.csv")
    add("table missing name column", table, edit_text(table_path, lambda t: t.replace("model,", "name,", 1)),
        "model")
    add("table garbage", table, binary(lambda ws: ws / table_path), "table.csv")
    add("table accuracy as percent", table, edit_text(table_path, lambda t: t.replace("0.45", "45")), "table.csv")
    add("table --tokens-unit 0", (*table, "--tokens-unit", "0"), None, "--tokens-unit")
    long_path = "inputs/long.csv"
    add("long garbage", long, binary(lambda ws: ws / long_path), "long.csv")
    add("long missing column", long, edit_text(long_path, lambda t: t.replace("value", "val", 1)), "value")
    add("long non-monotone tokens", long, edit_text(long_path, lambda t: t.replace("100,1e9,piqa,acc,0.6",
                                                                                    "100,-1,piqa,acc,0.6")), "long.csv")
    add("import unknown kind", ("import", "parquet", "{ws}/inputs/wide.csv"), None, "parquet")
    return c


def _lm_run_exists(ws: Path) -> None:
    (ws / "out" / "pythia-70m").mkdir()
    (ws / "out" / "pythia-70m" / "notes.txt").write_text("mine\n")


def permission_cases() -> list[Case]:
    cases = [
        Case("runs: unreadable trajectory.csv", ("runs", "{ws}/runs"), fragments=("trajectory.csv",),
             permission="unreadable:RUN/trajectory.csv"),
        Case("fit: unreadable trajectory.csv", FIT, fragments=("trajectory.csv",),
             permission="unreadable:RUN/trajectory.csv"),
        Case("runs: unreadable run.json", ("runs", "{ws}/runs"), fragments=("run.json",),
             permission="unreadable:RUN/run.json"),
        Case("runs: unreadable runs directory", ("runs", "{ws}/runs"), fragments=("runs",),
             permission="unreadable:runs"),
        Case("predict: unreadable fit file", PREDICT, fragments=("add-",), permission="unreadable:FIT"),
        Case("predict: unreadable index", PREDICT, fragments=("index.json",), permission="unreadable:fits/index.json"),
        Case("fit: read-only --out", FIT, fragments=("fits",), permission="readonly:fits"),
        Case("fit: read-only parent of a new --out", ("fit", "{ws}/runs", "--out", "{ws}/folder/new", "--draws", "20"),
             fragments=("folder",), permission="readonly:folder"),
        Case("import csv: read-only --out", ("import", "csv", "{ws}/inputs/wide.csv", *CSV_FLAGS, "--out", "{ws}/out"),
             fragments=("out",), permission="readonly:out"),
        Case("import lm-eval: unreadable input", ("import", "lm-eval", "{ws}/inputs/results.json", *LM_EVAL_FLAGS,
                                                  "--out", "{ws}/out"),
             fragments=("results.json",), permission="unreadable:inputs/results.json"),
        Case("pilot: read-only --out", ("pilot", "--preset", "tiny", "--out", "{ws}/out"), fragments=("out",),
             permission="readonly:out"),
        Case("pilot: unreadable --config", ("pilot", "--config", "{ws}/inputs/ladder.toml", "--out", "{ws}/out"),
             fragments=("ladder.toml",), permission="unreadable:inputs/ladder.toml"),
        Case("demo: read-only --out", ("demo", "--out", "{ws}/out"), fragments=("out",), permission="readonly:out"),
        Case("predict: --plot in a read-only directory", (*PREDICT, "--plot", "{ws}/folder/f.png"),
             fragments=("folder",), permission="readonly:folder"),
        Case("backtest: --plot in a read-only directory", (*BACKTEST, "--plot", "{ws}/folder/b.png"),
             fragments=("folder",), permission="readonly:folder"),
        Case("fit: --plot in a read-only directory", (*FIT, "--plot", "{ws}/folder/g.png"),
             fragments=("folder",), permission="readonly:folder"),
    ]
    return cases


def all_cases() -> list[Case]:
    cases = run_cases() + fits_cases() + flag_cases() + ladder_config_cases() + import_cases()
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    return cases


# ============================================================================ running a case


@dataclass
class Outcome:
    case: str
    exit_code: int | None
    stderr: str
    stdout: str
    traceback: bool
    changed: list[str]
    missing: list[str]  # expected fragments the error line lacks
    seconds: float = 0.0

    @property
    def kind(self) -> str:
        if self.traceback or self.exit_code not in (0, 2):
            return "traceback"
        if self.exit_code == 0:
            return "silent"
        if self.changed:
            return "changed"
        lines = self.stderr.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("error: ") or self.stdout.strip() or self.missing:
            return "unclear"
        return "clear"


class _TooLong(Exception):
    pass


def _alarm(signum, frame):
    raise _TooLong(f"not refused within {CASE_SECONDS} s")


@functools.cache
def _command(app):
    return _build_command(app)


_build_command = typer.testing._get_command


def run(*args: str):
    """`forecast ARGS` in-process, as `helpers.invoke`, with the click command built once
    (typer's runner rebuilds it from the function signatures on every call)."""
    typer.testing._get_command = _command
    try:
        return RUNNER.invoke(app, list(args))
    finally:
        typer.testing._get_command = _build_command


def run_case(case: Case, pristine: Path, scratch: Path) -> Outcome:
    """Copy the workspace, break it, snapshot it, run the command in-process, compare."""
    scratch.mkdir(parents=True, exist_ok=True)
    ws = Path(tempfile.mkdtemp(dir=scratch)) / "ws"  # left for pytest to remove: rmdir is slow on some disks
    shutil.copytree(pristine, ws, symlinks=True)
    if case.setup is not None:
        case.setup(ws)
    before = snapshot(ws)
    args = [a.replace("{ws}", str(ws)) for a in case.args]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    start = time.perf_counter()
    try:
        result = run(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    after = snapshot(ws)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    line = result.stderr.strip().splitlines()[0] if result.stderr.strip() else ""
    missing = [f.replace("{ws}", str(ws)) for f in case.fragments if f.replace("{ws}", str(ws)) not in line]
    if crashed:
        import traceback

        stderr = result.stderr + "".join(traceback.format_exception(result.exception))
    else:
        stderr = result.stderr
    return Outcome(case.name, result.exit_code, stderr, result.stdout, crashed or "Traceback" in result.stderr,
                   changed, missing, seconds)


def summarise(outcomes: list[Outcome]) -> tuple[str, list[str]]:
    kinds = [o.kind for o in outcomes]
    summary = (f"bad-input corpus: {len(outcomes)} inputs tried, {kinds.count('clear')} clear errors, "
               f"{kinds.count('traceback')} tracebacks, {kinds.count('silent')} silent wrong results, "
               f"{kinds.count('changed')} files changed, {kinds.count('unclear')} unclear messages")
    problems = [f"[{o.kind}] {o.case}: exit {o.exit_code}; changed {o.changed}; missing {o.missing}; "
                f"stdout {o.stdout[-300:]!r}; stderr {o.stderr[-1500:]}" for o in outcomes if o.kind != "clear"]
    return summary, problems


# ============================================================================ the tests


CASES = all_cases()


@pytest.fixture(scope="module")
def corpus_outcomes(request):
    """Every case's outcome, in the order run; the summary line is printed once they are all in."""
    outcomes: list[Outcome] = []
    yield outcomes
    if outcomes:
        summary, _ = summarise(outcomes)
        lines = [f"\n{summary}"]
        if os.environ.get("FORECAST_SHOW_ERRORS"):
            lines += [f"{o.case}: {o.stderr.strip()}" for o in outcomes]
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print("\n".join(lines))


def test_corpus_is_large_and_named_uniquely():
    assert len(CASES) >= 300 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus(case, pristine, tmp_path, corpus_outcomes):
    """One bad input (select one with `-k`, e.g. `-k "fit and NaN"`): exit 2, one line, nothing changed."""
    outcome = run_case(case, pristine, tmp_path)
    corpus_outcomes.append(outcome)
    summary, problems = summarise([outcome])
    assert not problems, problems[0]


# ---------------------------------------------------------------------------- permissions
#
# Root reads and writes any file whatever its mode, through the capabilities
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER. Under root the cases therefore run
# in a subprocess that drops those from its capability bounding set before it starts (so
# chmod binds it as it binds any user); elsewhere in a plain subprocess.

DAC_CAPABILITIES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER (linux/capability.h)
PR_CAPBSET_DROP = 24  # linux/prctl.h


def _drop_dac_capabilities() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in DAC_CAPABILITIES:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap}) failed")


def _subprocess_bound_by_chmod() -> tuple[Callable[[], None] | None, str | None]:
    """(preexec function, None) for a subprocess that chmod binds; (None, why not) if none."""
    if os.geteuid() != 0:
        return None, None
    if not sys.platform.startswith("linux"):
        return None, "running as root, which ignores file modes, on a system without Linux capabilities"
    probe = Path(tempfile.mkdtemp(prefix="forecast-cap-"))
    try:
        (probe / "secret").write_text("x")
        (probe / "secret").chmod(0o000)
        done = subprocess.run([sys.executable, "-c", f"open({str(probe / 'secret')!r}).read()"],
                              preexec_fn=_drop_dac_capabilities, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"running as root, which ignores file modes, and cannot drop CAP_DAC_OVERRIDE ({exc})"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if done.returncode == 0:
        return None, "running as root, which ignores file modes, and dropping CAP_DAC_OVERRIDE did not bind it"
    return _drop_dac_capabilities, None


PERMISSION_SCRIPT = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_bad_inputs import permission_cases, run_case_in_place
pristine, scratch = Path(sys.argv[2]), Path(sys.argv[3])
print(json.dumps([run_case_in_place(case, pristine, scratch / f"case{i}") for i, case in enumerate(permission_cases())]))
"""


def apply_permission(case: Case, ws: Path) -> Path:
    kind, _, rel = case.permission.partition(":")
    if rel.startswith("RUN/"):
        path = first_run(ws) / rel[4:]
    elif rel == "FIT":
        path = fit_file(ws)
    else:
        path = ws / rel
    path.chmod(0o000 if kind == "unreadable" else 0o555)
    return path


def run_case_in_place(case: Case, pristine: Path, scratch: Path) -> dict:
    """In the permission subprocess: copy the workspace, chmod, snapshot what is readable,
    run the command, compare (a file made unreadable is compared by its mode)."""
    scratch.mkdir(parents=True)
    ws = scratch / "ws"
    shutil.copytree(pristine, ws, symlinks=True)
    apply_permission(case, ws)
    before = _snapshot_readable(ws)
    result = run(*[a.replace("{ws}", str(ws)) for a in case.args])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    after = _snapshot_readable(ws)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    line = result.stderr.strip().splitlines()[0] if result.stderr.strip() else ""
    stderr = result.stderr
    if crashed:
        import traceback

        stderr += "".join(traceback.format_exception(result.exception))
    return dataclasses.asdict(Outcome(case.name, result.exit_code, stderr, result.stdout, crashed, changed,
                                      [f for f in case.fragments if f not in line]))


def _snapshot_readable(directory: Path) -> dict[str, bytes]:
    """`snapshot`, with what this process cannot read recorded by its mode instead."""
    out: dict[str, bytes] = {}

    def visit(path: Path) -> None:
        key = str(path.relative_to(directory))
        try:
            if path.is_dir():
                out[key + "/"] = b""
                for child in sorted(path.iterdir()):
                    visit(child)
            else:
                out[key] = path.read_bytes()
        except PermissionError:
            out[key] = f"unreadable, mode {path.stat().st_mode:o}".encode()

    visit(directory)
    return out


def _restore_modes(path: Path) -> None:
    """Make a tree readable and writable again, top down (so that pytest can remove it)."""
    if not path.exists() or path.is_symlink():
        return
    path.chmod(0o755 if path.is_dir() else 0o644)
    if path.is_dir():
        for child in path.iterdir():
            _restore_modes(child)


@pytest.mark.slow
def test_permission_errors_are_one_line(tmp_path, capsys):
    """Unreadable files and read-only output directories, through every command that reads
    or writes them: one line, exit 2, nothing changed."""
    preexec, reason = _subprocess_bound_by_chmod()
    if reason:
        pytest.skip(reason)
    pristine = build_workspace(tmp_path / "pristine")
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", PERMISSION_SCRIPT, str(Path(__file__).parent), str(pristine),
                               str(tmp_path / "cases")], capture_output=True, text=True, env=env, cwd=REPO,
                              preexec_fn=preexec, timeout=600)
    finally:
        _restore_modes(tmp_path / "cases")
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = [Outcome(**o) for o in json.loads(done.stdout.strip().splitlines()[-1])]
    summary, problems = summarise(outcomes)
    if os.environ.get("FORECAST_SHOW_ERRORS"):
        print("\n".join(f"{o.case}: {o.stderr.strip()}" for o in outcomes))
    with capsys.disabled():
        print(f"\npermission cases: {summary.removeprefix('bad-input corpus: ')}")
    assert len(outcomes) == len(permission_cases())
    assert not problems, summary + "\n" + "\n".join(problems)
