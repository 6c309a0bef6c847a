"""Output paths named by the user (``export -o``, ``scrub -o``): the checks both verbs share.

An explicit output path is used as given: never renamed, its directory never created, an
existing file replaced. It must not be the input, under any name (``./x``, a symlink, a hard
link): the reader maps the input, so truncating it would crash the reader (SIGBUS), destroy
the recording and, for a live ring, corrupt the agent's recording under its feet. It must
not be a directory nor lie in a directory that does not exist. A dump (``scrub``) goes only
to a regular file, since it is written aside and renamed into place; an export may also go
to a device or a FIFO (``/dev/stdout``, a named pipe).

Also what text read from a recording needs before it is printed to a terminal
(:func:`terminal_safe`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import FlightrecError

__all__ = ["TERMINAL_ESCAPES", "check_output", "display_path", "printable", "same_file", "terminal_safe"]


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as printable text: bytes of a file name that are not UTF-8 shown as U+FFFD."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "replace")


def printable(text: str) -> str:
    """``text`` safe to print: undecodable bytes of file names in it shown as U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate no file name decodes to
        return text.encode("utf-8", "replace").decode("utf-8")


TERMINAL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
TERMINAL_ESCAPES |= {c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
"""What must not reach a terminal as it is (for ``str.translate``): C0 and C1 controls
but tab and line feed, DEL, and the bidirectional controls, each as its escape."""


def terminal_safe(text: str) -> str:
    """``text`` fit for a terminal: what a recording holds must not drive the terminal.

    A recording's text is the agent's (or whoever wrote the file's): an ESC in it would start
    a sequence that clears the screen, hides what follows, retitles the window or writes the
    clipboard; a carriage return overwrites the line; a bidirectional control reorders what
    follows it. Those (C0 and C1 controls, DEL, bidi controls) are shown escaped, ``\\x1b``,
    ``\\u202e``; tabs and line breaks are kept, and undecodable bytes become U+FFFD.
    """
    return printable(text).translate(TERMINAL_ESCAPES)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True if ``a`` and ``b`` name one existing file (same device and inode, symlinks followed)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output(
    out: str | os.PathLike[str],
    src: str | os.PathLike[str],
    error: type[FlightrecError],
    *,
    special_ok: bool,
) -> Path:
    """Check an explicit output path before anything is written; return the path to write.

    Args:
        out: the output path as the user gave it.
        src: the input recording (the output must be another file).
        error: the error class raised (its exit code is the verb's).
        special_ok: a device or FIFO is acceptable (exports); otherwise only a regular file.

    Returns:
        The path to write: ``out``, or the file it links to when it is a symlink to a
        regular file (so the link is kept and its target replaced).

    Raises:
        error: the output is the input, a directory, not a regular file (unless
            ``special_ok``), or its directory does not exist.
    """
    text = os.fspath(out)
    if not text:
        raise error("the output path is empty")
    path = Path(text)
    shown = display_path(path)
    if same_file(path, src):
        raise error(
            f"{shown} is the input file {display_path(src)}: give an output path different from the "
            "input (writing it would destroy the recording)"
        )
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise error(f"cannot write {shown}: {exc.strerror or exc}") from None
    if st is None:
        _check_parent(path, shown, error)
        return path
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{shown} is a directory: give a file path")
    if not stat.S_ISREG(st.st_mode):
        if special_ok:
            return path
        raise error(f"{shown} is not a regular file (a device, FIFO or socket): give a file path")
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _check_parent(path: Path, shown: str, error: type[FlightrecError]) -> None:
    """Refuse an output whose directory does not exist (it is never created)."""
    parent = path.parent
    try:
        st = parent.stat()
    except FileNotFoundError:
        raise error(f"cannot write {shown}: directory {display_path(parent)} does not exist") from None
    except OSError as exc:
        raise error(f"cannot write {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"cannot write {shown}: {display_path(parent)} is not a directory")
