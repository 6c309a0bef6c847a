"""Finding recorders and dumps on this machine (for ``ls``, ``recover``, ``attach``, the TUI)."""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import env_dir
from ..errors import RecordingNotFound, UsageError
from ..format import (
    DUMP_SUFFIX,
    FORMAT_VERSION,
    META_LEN_CRC,
    META_MAX,
    RING_HEADER_SIZE,
    RING_MAGIC,
    RING_SUFFIX,
    RING_VERSION,
    RingField,
)
from ..paths import PID_MAX, default_dump_dir, default_ring_dir, pid_alive

_START_SLACK_NS = 86_400 * 10**9
"""A ring header's start time may be this far in the future (clock changes) and still be plausible."""


@dataclass(frozen=True, slots=True)
class RingInfo:
    """A ring file found on disk."""

    path: Path
    pid: int
    start_ns: int
    size: int
    argv: list[str]
    alive: bool
    closed: bool
    problems: tuple[str, ...] = ()
    """The header's bad fields (``pid 2392...``, ``format version 21761``...); empty if it is sound."""

    @property
    def damaged(self) -> bool:
        """True if the header holds values no recorder writes: its pid and command are not to be trusted."""
        return bool(self.problems)

    @property
    def problem(self) -> str:
        """:attr:`problems` as one phrase (empty if the header is sound)."""
        return ", ".join(self.problems)

    @property
    def age_s(self) -> float:
        """Seconds since the recorder started."""
        return max(0.0, time.time() - self.start_ns / 1e9)

    @property
    def command(self) -> str:
        """The recorded command line (redacted)."""
        return " ".join(self.argv) if self.argv else "?"


@dataclass(frozen=True, slots=True)
class DumpInfo:
    """A dump file found on disk."""

    path: Path
    size: int
    mtime: float


def ring_dirs(explicit: str | None = None) -> list[Path]:
    """Where to look for ring files: ``--dir``, ``FLIGHTREC_DIR``, then the default."""
    if explicit:
        return [Path(explicit).expanduser()]
    # (the variable alone: a typo in FLIGHTREC_SAMPLING must not make FLIGHTREC_DIR go unread)
    dirs = [d for d in (env_dir("FLIGHTREC_DIR"),) if d is not None]
    dirs.append(default_ring_dir())
    return list(dict.fromkeys(dirs))


def dump_dirs(explicit: str | None = None) -> list[Path]:
    """Where to look for dumps: ``--dir``, ``FLIGHTREC_DUMP_DIR``/``FLIGHTREC_DIR``, then the default."""
    if explicit:
        return [Path(explicit).expanduser()]
    dirs = [d for d in (env_dir("FLIGHTREC_DUMP_DIR"), env_dir("FLIGHTREC_DIR")) if d is not None]
    dirs.append(default_dump_dir())
    return list(dict.fromkeys(dirs))


def require_dir(explicit: str | None) -> None:
    """Check a ``--dir`` argument: it must name an existing directory.

    Raises:
        RecordingNotFound: nothing exists at that path.
        UsageError: the path is a file (or anything else that is not a directory), or a
            directory that cannot be listed (permission denied).
    """
    if explicit is None:
        return
    if not explicit:
        raise UsageError("--dir: empty path")
    path = Path(explicit).expanduser()
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:  # e.g. a name too long, a loop of symlinks
        raise UsageError(f"--dir {explicit}: cannot use it ({exc.strerror})") from None
    if not exists:
        raise RecordingNotFound(f"--dir {explicit}: no such directory")
    if not is_dir:
        raise UsageError(f"--dir {explicit}: not a directory")
    try:
        with os.scandir(path):  # (one we may not list would read as empty: "(none)", "nothing to recover")
            pass
    except OSError as exc:
        raise UsageError(f"--dir {explicit}: cannot read it ({exc.strerror})") from None


def ring_header_problems(buf: Any) -> tuple[str, ...]:
    """What is wrong with a ring header page (``buf`` holds at least one page); empty if nothing.

    Each item names a bad field and its value, e.g. ``format version 21761``.

    Only values no recorder ever writes count: a format version this reader does not know, a
    pid outside ``pid_t``, a start time at zero or in the future, metadata whose checksum fails.
    """
    from ..reader import ring_u64

    problems: list[str] = []
    version = RING_VERSION.unpack_from(buf, RingField.VERSION)[0]
    if not 0 < version <= FORMAT_VERSION:
        problems.append(f"format version {version}")
    pid = ring_u64(buf, RingField.PID)
    if not 0 < pid <= PID_MAX:
        problems.append(f"pid {pid}")
    start_ns = ring_u64(buf, RingField.START_NS)
    if not 0 < start_ns <= time.time_ns() + _START_SLACK_NS:
        problems.append(f"start time {start_ns}")
    meta_len, meta_crc = META_LEN_CRC.unpack_from(buf, RingField.META_LEN)
    if meta_len > META_MAX or zlib.crc32(bytes(buf[RingField.META : RingField.META + meta_len])) != meta_crc:
        problems.append("metadata fails its checksum")
    return tuple(problems)


def read_ring_info(path: Path) -> RingInfo | None:
    """Header facts of one ring file, or None if it is not a ring file of the current user.

    A ring whose header is damaged is still returned, with ``problems`` saying what is wrong
    (its pid then counts as not alive): ``ls`` shows it and ``recover`` tries to salvage it.
    """
    import mmap

    try:
        st = path.stat()
        if st.st_uid != os.getuid():
            return None  # only the current user's recorders
        with open(path, "rb") as f:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    try:
        if len(buf) < RING_HEADER_SIZE or bytes(buf[:8]) != RING_MAGIC:
            return None
        return _ring_info(path, buf)
    finally:
        buf.close()


def _ring_info(path: Path, buf: Any) -> RingInfo:
    """The :class:`RingInfo` of a mapped ring file (a ring's magic, at least a header page)."""
    from ..reader import read_ring_meta, ring_u64

    try:
        problems = ring_header_problems(buf)
        meta = read_ring_meta(buf)
    except Exception as exc:  # nothing in a header may stop discovery
        problems, meta = (f"unreadable header ({type(exc).__name__})",), {}
    pid = ring_u64(buf, RingField.PID)
    argv = meta.get("argv", [])
    return RingInfo(
        path=path,
        pid=pid,
        start_ns=ring_u64(buf, RingField.START_NS),
        size=len(buf),
        argv=[str(a) for a in argv] if isinstance(argv, list) else [],  # checksummed: sound if present
        alive=pid_alive(pid),
        closed=bool(ring_u64(buf, RingField.CLOSED)),
        problems=problems,
    )


def find_rings(explicit_dir: str | None = None) -> list[RingInfo]:
    """Every ring file of the current user in the ring directories, newest first."""
    out: list[RingInfo] = []
    for d in ring_dirs(explicit_dir):
        try:
            paths = sorted(d.glob("*" + RING_SUFFIX))
        except OSError:
            continue
        for p in paths:
            info = read_ring_info(p)
            if info is not None:
                out.append(info)
    out.sort(key=lambda r: r.start_ns, reverse=True)
    return out


def find_dumps(explicit_dir: str | None = None) -> list[DumpInfo]:
    """Every dump in the dump directories, newest first (a dangling link among them is skipped)."""
    out: list[DumpInfo] = []
    for d in dump_dirs(explicit_dir):
        try:
            paths = list(d.glob("*" + DUMP_SUFFIX))
        except OSError:
            continue
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            if st.st_uid == os.getuid():
                out.append(DumpInfo(p, st.st_size, st.st_mtime))
    out.sort(key=lambda d: d.mtime, reverse=True)
    return out


def find_ring_for_pid(pid: int, explicit_dir: str | None = None) -> RingInfo | None:
    """The newest ring file written by ``pid`` (a ring with a damaged header is never it)."""
    for info in find_rings(explicit_dir):
        if info.pid == pid and not info.damaged:
            return info
    return None


def human_size(n: float) -> str:
    """``1536`` -> ``1.5KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}GiB"


def human_age(seconds: float) -> str:
    """``3725`` -> ``1h02m``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
