"""Where rings and dumps live, and creating files there safely.

Rings go to a per-user directory on a RAM-backed file system when there is one
(``$XDG_RUNTIME_DIR/flightrec`` or ``/dev/shm/flightrec-<uid>``), else the temp dir. Dumps
go to ``$XDG_STATE_HOME/flightrec`` (``~/.local/state/flightrec``) so they survive a
reboot. Directories are 0700 and files 0600, created with ``O_EXCL | O_NOFOLLOW`` so a
pre-created file or a symlink planted in a shared directory cannot redirect our writes.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import UnsafeDirectory


def default_ring_dir() -> Path:
    """The per-user directory for ring files when none is configured."""
    uid = os.getuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime) / "flightrec"
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return Path("/dev/shm") / f"flightrec-{uid}"
    return Path(tempfile.gettempdir()) / f"flightrec-{uid}"


def default_dump_dir() -> Path:
    """The per-user directory for dumps when none is configured."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "flightrec"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) if missing and check that it is safe to use.

    Raises:
        UnsafeDirectory: the directory belongs to another user, is writable by others, or
            is a symlink.
        OSError: it cannot be created.
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass
    check_private_dir(path)
    return path


def check_private_dir(path: Path) -> None:
    """Check that the existing directory ``path`` is safe to use (see :func:`ensure_private_dir`).

    Raises:
        UnsafeDirectory: it is a symlink or not a directory, belongs to another user, or is
            writable by others.
        OSError: it cannot be looked at (it does not exist, a component is not a directory).
    """
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectory(f"{path} is not a directory (or is a symlink); refusing to use it")
    if st.st_uid != os.getuid():
        raise UnsafeDirectory(f"{path} is owned by uid {st.st_uid}, not by you; refusing to use it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeDirectory(f"{path} is writable by other users; refusing to use it (chmod 700 it)")


def create_private_file(path: Path) -> int:
    """Create a new 0600 file exclusively, without following symlinks; return its fd."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o600)


PID_MAX = 2**31 - 1
"""The largest value a ``pid_t`` can hold: any pid read from a file above it is garbage."""


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (it may belong to another user).

    Any value that cannot be a pid (zero, negative, beyond ``pid_t``), as read from a damaged
    ring header, is simply not alive.
    """
    if not 0 < pid <= PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but is not yet reaped by its parent (Linux; False elsewhere).

    A zombie still answers ``kill(pid, 0)``, but it runs no code: its recorder will never
    answer a dump request, and its ring is orphaned, for ``recover`` to turn into a dump.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat.rpartition(b")")[2].split(maxsplit=1)[:1]  # the field after "(comm)"
    return state in ([b"Z"], [b"X"])
