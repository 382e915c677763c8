"""Library errors speak Python (the parameter, in backticks); the CLI maps them to its flags.

The scan reads every message a library module outside `forecast/cli/` can raise (strings
under a `raise`, in a call of an error class, in a `fix`/`listing`-like variable, or a
`flag=`/`what=` default) and refuses a `--flag` in it. A command line quoted for the user to
run (`` `forecast fit RUNS --out DIR` ``) and lm-eval's own `--log_samples` are not our flags.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.cli.flags import FLAGS, RENAMED_BY, flag_for, to_cli
from forecast.errors import UsageError

PACKAGE = Path(__file__).resolve().parents[1] / "forecast"
FLAG = re.compile(r"(?<![\w-])--[a-z{]")
QUOTED_COMMAND = re.compile(r"`(?:forecast|lm-eval|lm_eval) [^`]*`")
FOREIGN = ("--log_samples",)  # lm-evaluation-harness's flag, named so the user can rerun it
MESSAGE_NAMES = re.compile(r"(?i)fix|listing|example|message|hint")


def _text(node: ast.AST) -> str:
    """A string constant, or an f-string with each `{...}` written as `{}`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ""


def _strings(node: ast.AST) -> list[tuple[int, str]]:
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Constant, ast.JoinedStr)) and _text(sub):
            found.append((sub.lineno, _text(sub)))
    return found


@functools.cache
def library_messages() -> list[tuple[str, int, str]]:
    """(file, line, text) of every message text a library module can raise."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            pieces: list[tuple[int, str]] = []
            if isinstance(node, ast.Raise) and node.exc is not None:
                pieces = _strings(node.exc)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")).endswith("Error"):
                pieces = _strings(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and MESSAGE_NAMES.search(t.id) for t in targets) and node.value:
                    pieces = _strings(node.value)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args[len(node.args.args) - len(node.args.defaults):] if node.args.defaults else []
                pieces = [p for a, d in zip(args, node.args.defaults) if a.arg in ("flag", "what")
                          for p in _strings(d)]
            rel = str(path.relative_to(PACKAGE.parent))
            out += [(rel, line, text) for line, text in pieces]
    return out


def test_the_scan_reads_messages():
    """The scan must see the messages it judges (else the next test passes on nothing)."""
    texts = [t for _, _, t in library_messages()]
    assert len(texts) > 300
    assert any("`holdout`: cannot read" in t for t in texts)  # a raise
    assert any(t == "`level`" for t in texts)  # a flag= default


def test_library_messages_name_no_cli_flag():
    offenders = []
    for file, line, text in library_messages():
        bare = QUOTED_COMMAND.sub("", text)
        for foreign in FOREIGN:
            bare = bare.replace(foreign, "")
        if FLAG.search(bare):
            offenders.append(f"{file}:{line}: {text!r}")
    assert not offenders, "library messages naming CLI flags (name the Python parameter in backticks):\n" + \
        "\n".join(offenders)


def test_every_parameter_a_library_error_carries_has_a_flag():
    named = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "parameter" and isinstance(node.value, ast.Constant):
                named.add(node.value.value)
    renamed = {p for table in RENAMED_BY.values() for p in table}
    assert len(named) > 25
    assert not named - set(FLAGS) - renamed


def test_to_cli_rewrites_references_only():
    assert to_cli("`holdout='largest:2'`: no group") == "--holdout largest:2: no group"
    assert to_cli("`holdout`: cannot read 'x'") == "--holdout: cannot read 'x'"
    assert to_cli("`chance=mmlu=2`: not in [0, 1)") == "--chance mmlu=2: not in [0, 1)"
    assert to_cli("pass `overwrite=True`") == "pass --overwrite"
    assert to_cli("run `forecast fit RUNS` or `prob`") == "run `forecast fit RUNS` or `prob`"  # not parameters
    assert to_cli("`target` must be a positive loss", ["plan_loss", "plan_command"]) == "--loss must be a positive loss"
    assert flag_for("skills") == "--skill" and flag_for("skills", ["import_table_command"]) == "--skills"


def test_python_and_cli_words_for_one_error():
    """The same mistake: Python reads the parameter, the CLI its flag, the line otherwise alike."""
    from forecast import Fits

    fits = PACKAGE.parent / "fits"
    with pytest.raises(UsageError) as caught:
        Fits.load(fits).predict(1e9, skills=["nope"], family="demo")
    assert caught.value.parameter == "skills"
    python_words = str(caught.value)
    assert python_words.startswith("`skills='nope'`: unknown skill")
    result = CliRunner().invoke(app, ["predict", "--fits", str(fits), "--params", "1B", "--skill", "nope", "--family", "demo"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: " + python_words.replace("`skills='nope'`", "--skill nope")
