"""Files on disk: atomic writes and JSON reads, shared by runs, fits, plots and the trainer.

Writers never leave a half-written file where a good one was: content goes to a temporary
file in the same directory, is flushed to disk, then renamed over the target (`os.replace`
is atomic on POSIX). Files get the mode the user's umask allows (a plain `open` would),
not the 0600 of `tempfile.mkstemp`, so colleagues can read what `forecast` wrote.
Reading a JSON file turns every way it can fail into one `DataError` naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from forecast.errors import DataError


def _umask() -> int:
    """The process umask (reading it means setting it; put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the current umask (0o644 under the usual 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a new directory under the current umask (0o755 under the usual 022)."""
    return 0o777 & ~_umask()


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds it becomes `path`
    (flushed, umask mode, atomic rename), when it fails it is removed."""
    path = Path(path)
    try:
        make_dirs(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    except OSError as exc:  # a full disk, a quota, a file system gone read-only: the old file stays
        tmp_path.unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _write_error(path: Path, exc: OSError) -> DataError:
    return DataError(path, None, f"cannot write it ({exc.strerror or exc}); what was there is unchanged",
                     "free some space, or choose another path")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file so that readers see the old content or the new, never a partial one."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """`atomic_write_text` for bytes (PNG images)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_save(path: str | Path, save: Callable[[Path], None], suffix: str = ".tmp") -> None:
    """Atomically write `path` with a writer that takes a file path (`torch.save`, a figure)."""
    with atomic_path(path, suffix) as tmp:
        save(tmp)


def make_dirs(path: str | Path) -> None:
    """`mkdir -p` with the umask's mode for every directory it creates."""
    Path(path).mkdir(parents=True, exist_ok=True, mode=dir_mode())


def staging_dir(parent: str | Path, prefix: str) -> Path:
    """A new hidden directory inside `parent` (same file system, so a rename out of it is
    atomic), with the umask's mode rather than mkdtemp's 0700."""
    make_dirs(parent)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(path, dir_mode())
    return path


def replace_dir(staged: Path, target: Path) -> None:
    """Put the directory `staged` at `target`, replacing what is there in one rename:
    readers see the old directory or the new one, never a mix (the old is removed after)."""
    if target.exists():
        trash = staging_dir(target.parent, f".{target.name}.replaced-")
        os.replace(target, trash / target.name)
        os.replace(staged, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, target)


# ---------------------------------------------------------------------------- reading
#
# One reader for every input file. The rules, in order:
# 1. only regular files are read: a FIFO, a device, a socket (or a symlink to one) is refused
#    before it can block or stream forever (opened non-blocking, checked with fstat);
# 2. at most `MAX_INPUT_BYTES` are read: a larger file is refused, not truncated;
# 3. text is UTF-8 (a leading byte-order mark is dropped); a NUL byte means binary data and is
#    refused with its line;
# 4. JSON: no NaN/Infinity, no key given twice in one object, nesting at most `MAX_JSON_DEPTH`;
# 5. CSV (`read_csv`): cells are trimmed of surrounding spaces and tabs; a cell longer than
#    csv's 131,072-character field limit, or a quote left open, is refused with its line.

MAX_INPUT_BYTES = 256 * 2**20
"""Largest input file read (256 MiB): real trajectories and eval results are a few MiB."""
MAX_INTEGER = 2**63 - 1
"""Largest whole number (a step, a sample count) read: what numpy's int64 holds."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of JSON objects and arrays read (run.json and lm-eval results use < 10)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | Path, what: str = "file", fix: str = "check the path") -> bytes:
    """A regular file's bytes (rules 1 and 2 above); every failure is a `DataError` naming the file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DataError(path, None, f"{what} not found", fix) from None
    except PermissionError:
        raise DataError(path, None, "permission denied", "make the file readable (chmod u+r)") from None
    except OSError as exc:
        raise DataError(path, None, f"cannot read it ({exc.strerror or exc})", fix) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            expected = f"is {kind}, expected a {what}" if kind != "not a regular file" else f"is not a regular file"
            raise DataError(path, None, expected, f"give the {what} itself (a regular file)")
        if info.st_size > MAX_INPUT_BYTES:
            raise DataError(path, None, f"{info.st_size / 2**20:.0f} MiB is larger than the {MAX_INPUT_BYTES // 2**20} MiB "
                            f"an input file may be", f"give the {what} itself, or split it")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise DataError(path, None, f"cannot read it ({exc.strerror or exc})", fix) from None
    finally:
        os.close(fd)
    if len(data) > MAX_INPUT_BYTES:
        raise DataError(path, None, f"larger than the {MAX_INPUT_BYTES // 2**20} MiB an input file may be", fix)
    return data


def decode_text(data: bytes, path: str | Path, fix: str = "save it as UTF-8 text") -> str:
    """UTF-8 text of `data` (rule 3): BOM dropped, NUL bytes and other encodings refused."""
    if b"\x00" in data:
        raise DataError(path, None, "holds a NUL byte (binary data, not text)", fix,
                        line=data[: data.index(b"\x00")].count(b"\n") + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, None, "not a UTF-8 text file", fix,
                        line=data[: exc.start].count(b"\n") + 1) from None


def read_text(path: str | Path, what: str = "file", fix: str = "check the path") -> str:
    """A text file's content (rules 1-3); every failure is a `DataError` naming the file."""
    return decode_text(read_bytes(path, what, fix), path, fix)


def _no_duplicate_keys(path: str | Path, fix: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise DataError(path, key, "key given twice in one JSON object (which one is meant?)",
                                "keep one of them")
            out[key] = value
        return out
    return build


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(text: str, path: str | Path, fix: str = "fix the JSON syntax", *, line: int | None = None,
               nan_as_null: bool = False) -> Any:
    """JSON text parsed by rule 4 (NaN, duplicate keys and deep nesting refused). With
    `nan_as_null`, NaN and Infinity read as null, for readers that then refuse a null where
    a number must be, naming the field (fits files)."""
    def refuse(constant: str) -> Any:
        if nan_as_null:
            return None
        raise DataError(path, None, f"holds the non-number {constant}", fix, line=line)

    try:
        data = json.loads(text, parse_constant=refuse, object_pairs_hook=_no_duplicate_keys(path, fix))
    except json.JSONDecodeError as exc:
        raise DataError(path, None, f"not valid JSON ({exc.msg})", fix,
                        line=exc.lineno if line is None else line) from None
    except RecursionError:
        raise DataError(path, None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", fix, line=line) from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise DataError(path, None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", fix, line=line)
    return data


def read_json(path: str | Path, what: str = "JSON file", fix: str = "fix the JSON syntax") -> Any:
    """Parse a JSON file by rules 1-4; missing, unreadable and malformed files are `DataError`s."""
    return parse_json(read_text(path, what, fix), path, fix)


def read_csv(path: str | Path, text: str | None = None, what: str = "CSV file",
             fix: str = "export the table as CSV text") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A CSV file's header and data rows (rule 5), each row with its line number; cells are
    trimmed, blank rows skipped. An empty file gives an empty header."""
    text = read_text(path, what, fix) if text is None else text
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    header: list[str] = []
    try:
        first = next(reader, None)
        header = [] if first is None else [cell.strip(" \t") for cell in first]
        start = reader.line_num
        for cells in reader:
            if cells and any(cell.strip() for cell in cells):
                rows.append((start + 1, [cell.strip(" \t") for cell in cells]))
            start = reader.line_num
    except csv.Error as exc:
        problem = str(exc)
        if "field larger than field limit" in problem:
            problem = f"a cell longer than {csv.field_size_limit():,} characters"
        raise DataError(path, None, f"unreadable CSV ({problem})", fix, line=reader.line_num) from None
    return header, rows


# ---------------------------------------------------------------------------- outputs
#
# The rule for every output path (`--plot`, `--out`): a path that does not exist is created;
# an existing path is replaced only when it is one of forecast's own outputs of the same
# kind (a PNG whose `Software` text says forecast wrote it; a fits directory with its
# index.json; a run folder with its run.json), or with `force`. A device, FIFO or socket is
# never written, `force` or not; a full disk fails with the one-line error.

OUTPUT_MARK = "forecast"
"""The PNG `Software` text that marks a figure as forecast's (`mark_png`, in `forecast.plots.save`)."""


def is_own_png(path: Path) -> bool:
    """Whether `path` is a PNG that forecast wrote (its tEXt chunk says Software=forecast)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except OSError:
        return False
    return head.startswith(_PNG_SIGNATURE) and b"tEXtSoftware\x00" + OUTPUT_MARK.encode() in head


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def mark_png(data: bytes) -> bytes:
    """`data` (a PNG) with a `Software: forecast` text chunk after its header chunk, the mark
    `is_own_png` reads; anything that is not a PNG is returned as it is."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return data
    end = 8 + 12 + int.from_bytes(data[8:12], "big")  # signature, then IHDR's length, type, data, CRC
    body = b"tEXt" + b"Software\x00" + OUTPUT_MARK.encode()
    chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return data[:end] + chunk + data[end:]


def check_output_file(path: str | Path, flag: str = "`path`", *, force: bool = False,
                      own: Callable[[Path], bool] = is_own_png) -> Path:
    """Check, before any work and without creating anything, that `path` may be written
    (the rule above): a `DataError` naming `flag` and the fix otherwise."""
    path = Path(path)
    if os.path.lexists(path):
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise DataError(path, None, f"cannot check it ({exc.strerror or exc})", f"choose another {flag}") from None
        if stat.S_ISDIR(mode):
            raise DataError(path, None, "is a directory", f"give a file name for {flag}, such as {path / 'forecast.png'}")
        if not stat.S_ISREG(mode):
            raise DataError(path, None, f"is {_kind(mode)}, not a regular file, so nothing can be written there",
                            f"give a file name for {flag}")
        if not force and not own(path):
            raise DataError(path, None, "exists and was not written by forecast",
                            f"pass `force=True` to replace it, or choose another {flag}")
    check_output_dir(path.parent, flag)
    return path


def check_output_dir(path: str | Path, flag: str = "`out_dir`", *, marker: str | None = None, force: bool = False) -> Path:
    """Check, before any work and without creating anything, that `path` is a writable
    directory or can be created as one: a `DataError` when it (or the nearest existing
    folder above it) is a file, or is not writable; with `marker` (e.g. index.json), also when
    it holds files but not `marker` (not one of forecast's own), unless `force`. Commands call it first, so that a bad
    `--out` fails in a second rather than after an hour of fitting or training."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise DataError(path, None, "exists and is not a directory", f"give a directory for {flag}")
        if not os.access(path, os.W_OK | os.X_OK):
            raise DataError(path, None, "not writable", f"choose a writable {flag} (or chmod u+w)")
        if marker is not None and not force and not (path / marker).is_file() and any(
                not p.name.startswith(".") for p in path.iterdir()):
            raise DataError(path, None, f"holds files but no {marker}, so forecast did not write it",
                            f"choose an empty or new {flag}, or pass `force=True` to write into it")
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DataError(ancestor, None, f"is a file, so {path} cannot be created", f"choose another {flag}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(ancestor, None, f"not writable, so {path} cannot be created",
                        f"choose a writable {flag} (or chmod u+w)")
    return path


def check_writable_dir(path: str | Path, flag: str = "`out_dir`") -> Path:
    """A directory we may write into (created if missing); `DataError` when `path` is a
    file, or it (or a parent) cannot be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(path, None, "exists and is not a directory", f"give a directory for {flag}")
    try:
        make_dirs(path)
    except PermissionError:
        raise DataError(path, None, "permission denied creating it", f"choose a writable {flag}") from None
    except OSError as exc:
        raise DataError(path, None, f"cannot create it ({exc.strerror or exc})", f"choose another {flag}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(path, None, "not writable", f"choose a writable {flag} (or chmod u+w)")
    return path
