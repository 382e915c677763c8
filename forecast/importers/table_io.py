"""Reading CSV tables for the importers, with errors that name file, line and column.

Cells are text; `number` reads one as a float: an empty cell is None (a value that was
not logged), while `nan`, `inf` and non-numbers are errors — a silently dropped NaN is
how a wrong forecast starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import DataError, UsageError
from forecast.io import MAX_INTEGER, read_csv


@dataclass(frozen=True)
class Table:
    """A CSV file as header plus rows, each row remembering its line number (1 = header)."""

    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (line number, cells)

    def column(self, name: str, flag: str) -> int:
        """Index of a named column; a `DataError` listing some columns when absent."""
        if name in self.header:
            return self.header.index(name)
        raise DataError(self.path, name, f"no column {name!r} in the header",
                        f"pass {flag} with one of: {self.preview()}", line=1)

    def optional_column(self, name: str | None, default: str | None, flag: str) -> int | None:
        """Index of a column given by flag (`name`, must exist) or by its usual name
        (`default`, used only when present)."""
        if name is not None:
            return self.column(name, flag)
        if default is not None and default in self.header:
            return self.header.index(default)
        return None

    def matching(self, pattern: re.Pattern[str], flag: str) -> list[tuple[int, str]]:
        """(index, skill name) of every column the regex matches (`re.search`); the skill
        is the first capture group. A regex matching nothing is a `DataError`."""
        found = []
        for index, name in enumerate(self.header):
            match = pattern.search(name)
            if match:
                skill = match.group(1)
                if not skill:
                    raise UsageError(f"{flag} {pattern.pattern!r}: the capture group is empty for column {name!r}; "
                                     "the first group must capture the skill name")
                found.append((index, skill))
        if not found:
            raise DataError(self.path, flag, f"the regex {pattern.pattern!r} matches no column",
                            f"change the regex; some columns are: {self.preview()}", line=1)
        return found

    def preview(self, limit: int = 8) -> str:
        """The first few column names, for error messages."""
        shown = ", ".join(repr(h) for h in self.header[:limit])
        return shown + (f", ... ({len(self.header)} columns)" if len(self.header) > limit else "")

    def __iter__(self) -> Iterator[tuple[int, tuple[str, ...]]]:
        return iter(self.rows)


def read_table(path: str | Path) -> Table:
    """Read a CSV file with a header line; errors name the file (and line)."""
    path = Path(path)
    header, data = read_csv(path, what="CSV file", fix="export the table as CSV text")
    if not header or all(not h for h in header):
        raise DataError(path, None, "empty file (no header line)", "the first line must name the columns", line=1)
    header_t = tuple(header)
    dup = sorted({h for h in header_t if header_t.count(h) > 1})
    if dup:
        raise DataError(path, dup[0], "column name appears twice in the header", "give every column a distinct name",
                        line=1)
    rows = []
    for line, row in data:
        if len(row) != len(header_t):
            raise DataError(path, None, f"expected {len(header_t)} cells, found {len(row)}",
                            "every row needs one cell per header column (quote cells that contain commas)",
                            line=line)
        rows.append((line, tuple(row)))
    if not rows:
        raise DataError(path, None, "no data rows below the header", "add one row per record")
    return Table(path, header_t, tuple(rows))


def number(table: Table, line: int, column: str, raw: str, *, minimum: float | None = None,
           maximum: float | None = None, integer: bool = False, fix: str | None = None) -> float | None:
    """Read one cell as a finite number (None when empty), checking its range."""
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise DataError(table.path, column, f"cannot read {raw!r} as a number", fix or "give a number or leave the cell empty",
                        line=line) from None
    if math.isnan(value):
        raise DataError(table.path, column, "NaN value", "leave the cell empty (the value is then skipped) or give a number",
                        line=line)
    if math.isinf(value):
        raise DataError(table.path, column, f"infinite value {raw!r}", "give a finite number or leave the cell empty",
                        line=line)
    if minimum is not None and value < minimum:
        raise DataError(table.path, column, f"value {raw} is below {minimum:g}", fix or f"{column} must be >= {minimum:g}",
                        line=line)
    if maximum is not None and value > maximum:
        raise DataError(table.path, column, f"value {raw} is above {maximum:g}", fix or f"{column} must be <= {maximum:g}",
                        line=line)
    if integer and value != int(value):
        raise DataError(table.path, column, f"expected a whole number, got {raw!r}", f"{column} must be an integer",
                        line=line)
    if integer and abs(value) > MAX_INTEGER:
        raise DataError(table.path, column, f"{raw} is larger than a whole number can be here (2**63 - 1)",
                        f"check the {column} column", line=line)
    return value


def compile_regex(pattern: str, flag: str) -> re.Pattern[str]:
    """Compile a column regex given on the command line; it needs one capture group."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{flag} {pattern!r}: not a valid regular expression ({exc})") from None
    if compiled.groups < 1:
        raise UsageError(f"{flag} {pattern!r}: needs a capture group for the skill name, "
                         "e.g. 'eval/downstream/(piqa)_.*'")
    return compiled
