"""Finding recorders and dumps on this machine (for ``ls``, ``recover``, ``attach``, the TUI)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import resolve_config
from ..format import DUMP_SUFFIX, RING_SUFFIX, RingField
from ..paths import default_dump_dir, default_ring_dir, pid_alive


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
    dirs: list[Path] = []
    try:
        cfg = resolve_config()
        if cfg.dir is not None:
            dirs.append(cfg.dir)
    except Exception:
        pass
    dirs.append(default_ring_dir())
    return list(dict.fromkeys(dirs))


def dump_dirs(explicit: str | None = None) -> list[Path]:
    """Where to look for dumps: ``--dir``, ``FLIGHTREC_DUMP_DIR``/``FLIGHTREC_DIR``, then the default."""
    if explicit:
        return [Path(explicit).expanduser()]
    dirs: list[Path] = []
    try:
        cfg = resolve_config()
        if cfg.dump_dir is not None:
            dirs.append(cfg.dump_dir)
        if cfg.dir is not None:
            dirs.append(cfg.dir)
    except Exception:
        pass
    dirs.append(default_dump_dir())
    return list(dict.fromkeys(dirs))


def read_ring_info(path: Path) -> RingInfo | None:
    """Header facts of one ring file, or None if it is not a readable ring of ours."""
    import mmap

    from ..reader import read_ring_meta, ring_u64

    try:
        st = path.stat()
        if st.st_uid != os.getuid():
            return None  # only the current user's recorders
        with open(path, "rb") as f:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    try:
        if len(buf) < 4096 or bytes(buf[:8]) != b"FRECRING":
            return None
        meta = read_ring_meta(buf)
        pid = ring_u64(buf, RingField.PID)
        argv = meta.get("argv", [])
        return RingInfo(
            path=path,
            pid=pid,
            start_ns=ring_u64(buf, RingField.START_NS),
            size=len(buf),
            argv=[str(a) for a in argv] if isinstance(argv, list) else [],
            alive=pid_alive(pid),
            closed=bool(ring_u64(buf, RingField.CLOSED)),
        )
    finally:
        buf.close()


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
    """Every dump in the dump directories, newest first."""
    out: list[DumpInfo] = []
    for d in dump_dirs(explicit_dir):
        try:
            for p in d.glob("*" + DUMP_SUFFIX):
                st = p.stat()
                if st.st_uid == os.getuid():
                    out.append(DumpInfo(p, st.st_size, st.st_mtime))
        except OSError:
            continue
    out.sort(key=lambda d: d.mtime, reverse=True)
    return out


def find_ring_for_pid(pid: int, explicit_dir: str | None = None) -> RingInfo | None:
    """The newest ring file written by ``pid``."""
    for info in find_rings(explicit_dir):
        if info.pid == pid:
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
