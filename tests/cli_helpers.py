"""Helpers for CLI tests: invoke `forecast` in-process and check the error contract."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli import app

RUNNER = CliRunner()


def invoke(*args: object):
    """Run `forecast ARGS...` in-process; returns typer's Result (stdout, stderr, exit_code)."""
    return RUNNER.invoke(app, [str(a) for a in args])


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
