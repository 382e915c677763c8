"""The terminal the CLI writes to: streams safe for its encoding, stdout failures, Ctrl-C.

- Tables use box-drawing characters, ×, –, ≥ and …; a terminal whose encoding cannot show
  them (PYTHONIOENCODING=ascii or latin-1, LANG=C) gets ASCII look-alikes instead of a
  UnicodeEncodeError, by a stream that transliterates what the encoding lacks.
- A full stdout (/dev/full, a full disk) raises `StdoutFailed`, which `OneLineErrors`
  turns into one error line; a closed one is checked there before any work.
- Ctrl-C: the first raises KeyboardInterrupt (the command unwinds; atomic writes leave the
  old or the new file), a second prints the one line (unless printed) and exits 130.
"""

from __future__ import annotations

import os
import signal
import sys
import unicodedata
from typing import Any

from rich.console import Console

ASCII_FORMS = {
    "×": "x", "–": "-", "—": "-", "−": "-", "≥": ">=", "≤": "<=", "…": "...", "±": "+/-", "→": "->", "←": "<-",
    "≈": "~", "·": ".", "²": "^2", "µ": "u", "α": "alpha", "β": "beta", "γ": "gamma", "‘": "'", "’": "'",
    "“": '"', "”": '"', "•": "*", "✓": "v", "✗": "x",
}


def _ascii_form(char: str) -> str:
    if char in ASCII_FORMS:
        return ASCII_FORMS[char]
    if "\u2500" <= char <= "\u257f":  # box drawing: lines become - and |, corners +
        name = unicodedata.name(char, "")
        words = set(name.split())
        if words & {"HORIZONTAL", "VERTICAL"} == {"HORIZONTAL"} and not words & {"UP", "DOWN"}:
            return "-"
        if words & {"HORIZONTAL", "VERTICAL"} == {"VERTICAL"} and not words & {"LEFT", "RIGHT"}:
            return "|"
        return "+"
    return "?"


class _Transliterating:
    """A text stream over `stream` that writes characters its encoding lacks as ASCII
    look-alikes (`ASCII_FORMS`, box lines as - | +, anything else as ?)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.encoding = "utf-8"  # what rich may send: all of it, translated here

    def write(self, text: str) -> int:
        target = getattr(self._stream, "encoding", None) or "ascii"
        try:
            text.encode(target)
            out = text
        except UnicodeEncodeError:
            out = "".join(c if _encodes(c, target) else _ascii_form(c) for c in text)
        return self._stream.write(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _encodes(char: str, encoding: str) -> bool:
    try:
        char.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def _terminal(stream: Any) -> Any:
    """`stream`, or a transliterating stream over it when its encoding cannot write a table."""
    encoding = getattr(stream, "encoding", None)
    if stream is None or encoding is None:
        return stream
    try:
        "━│×–≥…".encode(encoding)
        return stream
    except (UnicodeEncodeError, LookupError):
        return _Transliterating(stream)


class Stdout:
    """The current sys.stdout / sys.stderr, looked up at each write (tests swap them), made
    safe for its encoding (`_terminal`)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _stream(self) -> Any:
        return _terminal(getattr(sys, self._name))

    def write(self, text: str) -> int:
        stream = self._stream()
        if stream is None:  # closed at start (1>&-): checked by `OneLineErrors.main`
            return len(text)
        try:
            return stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:  # a full disk, /dev/full: one error line (`OneLineErrors`), not "a file: ..."
            if self._name == "stdout":
                silence_stdout()
                raise StdoutFailed(exc.strerror or str(exc)) from None
            raise

    def flush(self) -> None:
        stream = self._stream()
        if stream is None:
            return
        try:
            stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            if self._name == "stdout":
                silence_stdout()
                raise StdoutFailed(exc.strerror or str(exc)) from None
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream(), name)


# results; when piped (not a terminal) rich would assume 80 columns and fold the tables
console = Console(file=Stdout("stdout"), width=None if sys.stdout is not None and sys.stdout.isatty() else 140)
log = Console(file=Stdout("stderr"), stderr=True)  # progress and logs


class StdoutFailed(Exception):
    """stdout could not take the result (a full disk, /dev/full)."""


def flush_stdout() -> None:
    """Flush the result now, so a full disk or /dev/full is an error line, not a silent exit 0."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        silence_stdout()
        raise StdoutFailed(exc.strerror or str(exc)) from None


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def error_out(message: str) -> None:
    """Print `error: message` on stderr whatever its encoding (unencodable characters escaped)."""
    stream = sys.stderr
    if stream is None:
        return
    text = f"error: {message}"
    encoding = getattr(stream, "encoding", None) or "utf-8"
    text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
    try:
        print(text, file=stream, flush=True)
    except (OSError, ValueError):
        pass


INTERRUPT = {"count": 0, "printed": False}


def catch_second_interrupt(message: str) -> Any:
    """Install a SIGINT handler: the first Ctrl-C raises KeyboardInterrupt (the command
    unwinds, atomic writes leave the old or the new file); a second one, while that unwinds,
    prints the one line (unless printed) and exits 130 at once. Returns the old handler."""
    def handler(signum: int, frame: Any) -> None:
        INTERRUPT["count"] += 1
        if INTERRUPT["count"] == 1:
            raise KeyboardInterrupt
        if not INTERRUPT["printed"]:
            error_out(message)
        os._exit(130)

    INTERRUPT.update(count=0, printed=False)
    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (an embedding application): leave its handler
        return None


def restore_interrupt(previous: Any) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGINT, previous)
        except ValueError:
            pass
