"""Files on disk: atomic writes and JSON reads, shared by runs, fits, plots and the trainer.

Writers never leave a half-written file where a good one was: content goes to a temporary
file in the same directory, is flushed to disk, then renamed over the target (`os.replace`
is atomic on POSIX). Files get the mode the user's umask allows (a plain `open` would),
not the 0600 of `tempfile.mkstemp`, so colleagues can read what `forecast` wrote.
Reading a JSON file turns every way it can fail into one `DataError` naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


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


def read_text(path: str | Path, what: str = "file", fix: str = "check the path") -> str:
    """A text file's content; every failure is a `DataError` naming the file."""
    path = Path(path)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise DataError(path, None, f"{what} not found", fix) from None
    except IsADirectoryError:
        raise DataError(path, None, f"is a directory, expected a {what}", fix) from None
    except PermissionError:
        raise DataError(path, None, "permission denied", "make the file readable (chmod u+r)") from None
    except UnicodeDecodeError:
        raise DataError(path, None, "not a UTF-8 text file", fix) from None
    except OSError as exc:
        raise DataError(path, None, f"cannot read it ({exc.strerror or exc})", fix) from None


def read_json(path: str | Path, what: str = "JSON file", fix: str = "fix the JSON syntax") -> Any:
    """Parse a JSON file; missing, unreadable and malformed files are `DataError`s. Numbers
    that JSON cannot hold (NaN, Infinity) are refused rather than read as floats."""
    text = read_text(path, what, fix)

    def refuse(constant: str) -> Any:
        raise DataError(path, None, f"holds the non-number {constant}", fix)

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise DataError(path, None, f"not valid JSON ({exc.msg})", fix, line=exc.lineno) from None


def check_output_dir(path: str | Path, flag: str = "`out_dir`") -> Path:
    """Check, before any work and without creating anything, that `path` is a writable
    directory or can be created as one: a `DataError` when it (or the nearest existing
    folder above it) is a file, or is not writable. Commands call it first, so that a bad
    `--out` fails in a second rather than after an hour of fitting or training."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise DataError(path, None, "exists and is not a directory", f"give a directory for {flag}")
        if not os.access(path, os.W_OK | os.X_OK):
            raise DataError(path, None, "not writable", f"choose a writable {flag} (or chmod u+w)")
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
