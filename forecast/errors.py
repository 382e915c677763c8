"""Error kinds. The CLI maps every `ForecastError` to one line on stderr and exit code 2.

- `DataError`: a file the user gave is malformed (names the file, the line or field, the fix).
- `UsageError`: arguments that cannot be honoured (unknown skill, bad flag combination).
- `FitError`: a fit that failed at run time (non-finite, no convergence); callers usually
  turn it into a `not-predictable` status with the reason rather than letting it escape.
"""

from __future__ import annotations

from pathlib import Path


class ForecastError(Exception):
    """Base of all user-facing errors: the message is one self-contained line."""


class DataError(ForecastError):
    """Malformed input data: says where (file, line/field), what was wrong and how to fix it."""

    def __init__(
        self,
        file: str | Path | None,
        field: str | None,
        problem: str,
        fix: str | None = None,
        *,
        line: int | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.field = field
        self.problem = problem
        self.fix = fix
        self.line = line
        where = self.file or "<input>"
        if line is not None:
            where += f":{line}"
        parts = [where]
        if field:
            parts.append(f"field '{field}'")
        message = ": ".join(parts) + f": {problem}"
        if fix:
            message += f"; fix: {fix}"
        super().__init__(message)


class UsageError(ForecastError):
    """Arguments that cannot be honoured (unknown skill, conflicting values, ...).

    The message speaks the caller's words: the Python parameter (`skills`, `target_params`),
    never a CLI flag; `parameter` names that parameter so the CLI can map it to its flag.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        self.parameter = parameter
        super().__init__(message)


class FitError(ForecastError):
    """A fit failed at run time: non-finite objective, no convergence, degenerate data."""
