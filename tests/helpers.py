"""What the tests share: the real data's location, the CLI in-process, and its contracts.

Imported as `from helpers import ...` (pytest puts tests/ on the path)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forecast.cli import app

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FORECAST_SHARED_DATA", REPO.parent / "shared" / "data"))
RUNNER = CliRunner()


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real evaluation data not found at {path} (set FORECAST_SHARED_DATA)")
    return path


def invoke(*args: object):
    """Run `forecast ARGS...` in-process; returns typer's Result (stdout, stderr, exit_code)."""
    return RUNNER.invoke(app, [str(a) for a in args])


def output(result, kind: str) -> dict[str, Any]:
    """The `--json` document of a successful command: checks exit 0, the envelope's format
    and kind, and that it is strict JSON (no NaN or Infinity)."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    data = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON number {c} in output"))
    assert data["format"] == 1 and data["kind"] == kind, data.get("kind")
    return data


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (hidden ones too) with its bytes, to prove nothing changed."""
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()} | {
        str(p.relative_to(directory)) + "/": b"" for p in sorted(directory.rglob("*")) if p.is_dir()}


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2, exactly one stderr line containing every fragment, no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stdout == ""
    line = lines[0]
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


# An lm-evaluation-harness 0.4 results document of one checkpoint (the bad-input corpora's input).
LM_EVAL = {
    "results": {"piqa": {"acc,none": 0.6, "acc_stderr,none": 0.01}, "arc_easy": {"acc,none": 0.4}},
    "config": {"model": "hf", "model_args": "pretrained=EleutherAI/pythia-70m,revision=step1000"},
    "n-samples": {"piqa": {"original": 1838, "effective": 1838}},
}


def set_column(column: str, value: str) -> Callable[[str], str]:
    """Every data row's cell of `column` set to `value` (only the `skill` rows)."""
    def change(text: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.split(",")
            if cells[header.index("skill")] == "skill":
                cells[header.index(column)] = value
            out.append(",".join(cells))
        return "\n".join(out) + "\n"
    return change
