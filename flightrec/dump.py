"""Writing ``.frec`` dumps: framed blocks copied from the ring, a header, an index footer.

A dump is written to a hidden temporary name in the dump directory and renamed into place
once complete, so a half-written dump never looks whole. The directory is kept under its
configured caps (count and bytes) by deleting the oldest dumps first.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from . import format as fmt
from .encode import safe_repr
from .errors import DumpFailed
from .event import Event
from .paths import create_private_file, ensure_private_dir

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def dump_name(pid: int, reason: str, now: float | None = None) -> str:
    """A sortable, unique-enough file name: ``<prog>-<pid>-<YYYYmmdd-HHMMSS>-<reason>.frec``."""
    prog = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"
    prog = _safe_prog(prog)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{prog}-{pid}-{stamp}-{_SAFE.sub('_', reason)[:24]}{fmt.DUMP_SUFFIX}"


def _safe_prog(prog: str) -> str:
    """The program's part of a dump name: no leading dot (a hidden file) or dash (an option)."""
    return _SAFE.sub("_", prog).lstrip(".-")[:32] or "python"


def build_dump(meta: dict[str, Any], blocks: Sequence[bytes | memoryview]) -> tuple[bytes, list[bytes]]:
    """Return (preamble + header, index + trailer) for a dump holding ``blocks`` in order."""
    header = msgspec.msgpack.encode(header_safe(meta))
    head = fmt.DUMP_PREAMBLE.pack(fmt.DUMP_MAGIC, fmt.FORMAT_VERSION, 0, len(header), zlib.crc32(header)) + header
    offset = len(head)
    entries: list[bytes] = []
    for block in blocks:
        h = fmt.parse_block_header(block, 0)
        if h is None:  # never expected: we only copy blocks we framed ourselves
            offset += len(block)
            continue
        entries.append(
            fmt.INDEX_ENTRY.pack(offset, h.block_seq, h.first_seq, h.last_seq, h.first_ts, h.last_ts, h.count, h.flags)
        )
        offset += len(block)
    index = b"".join(entries)
    trailer = fmt.DUMP_TRAILER.pack(offset, len(entries), zlib.crc32(index), 0, fmt.TRAILER_MAGIC)
    return head, [index, trailer]


def write_dump(
    directory: Path,
    name: str,
    meta: dict[str, Any],
    blocks: Sequence[bytes | memoryview],
    max_dumps: int = 0,
    max_bytes: int = 0,
    require_private: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a dump atomically and return its path.

    ``require_private`` (the recorder's dumps) creates the directory 0700 and refuses one
    that others could write to; a user-chosen output path (``scrub -o``) is taken as is.
    If ``name`` exists, ``overwrite`` replaces it (an explicit output path); otherwise
    the dump takes the first free name of ``<stem>-2.frec``, ``<stem>-3.frec``...

    Raises:
        DumpFailed: the directory is unusable or the disk is full; no partial file is left
            under the final name (nor under the temporary one).
    """
    try:
        if require_private:
            ensure_private_dir(directory)
        elif not directory.is_dir():
            raise OSError(f"{directory} is not a directory")
    except (OSError, Exception) as exc:
        raise DumpFailed(f"dump directory {directory} is unusable: {exc}") from None
    head, tail = build_dump(meta, blocks)
    total = len(head) + sum(len(b) for b in blocks) + sum(len(t) for t in tail)
    if max_dumps or max_bytes:
        enforce_caps(directory, max_dumps, max_bytes, incoming=total)
    final = directory / name if overwrite else free_name(directory, name)
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        fd = create_private_file(tmp)
    except OSError as exc:
        raise DumpFailed(f"cannot create a dump in {directory}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for block in blocks:
                f.write(block)
            for part in tail:
                f.write(part)
        os.rename(tmp, final)
    except BaseException as exc:
        # Not only a full disk: a Ctrl-C (KeyboardInterrupt) or a signal handler's exception
        # landing mid-write must not leave a partial hidden file behind, which nothing would
        # ever delete and whose name the next dump of the same name would then collide with.
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if not isinstance(exc, OSError):
            raise
        raise DumpFailed(f"writing dump {final} failed: {exc.strerror or exc}") from None
    return final


def free_name(directory: Path, name: str) -> Path:
    """``directory / name``, or if that exists the first free ``<stem>-<n><suffix>``, the
    suffix being ``.frec`` when ``name`` has it, else nothing (``x.frec`` -> ``x-2.frec``)."""
    stem, suffix = (name[: -len(fmt.DUMP_SUFFIX)], fmt.DUMP_SUFFIX) if name.endswith(fmt.DUMP_SUFFIX) else (name, "")
    final = directory / name
    n = 1
    while final.exists():
        n += 1
        final = directory / f"{stem}-{n}{suffix}"
    return final


def enforce_caps(directory: Path, max_dumps: int, max_bytes: int, incoming: int = 0) -> list[Path]:
    """Delete the oldest dumps until ``max_dumps - 1`` remain and ``incoming`` bytes fit."""
    try:
        dumps = [(p.stat().st_mtime, p.stat().st_size, p) for p in directory.glob("*" + fmt.DUMP_SUFFIX)]
    except OSError:
        return []
    dumps.sort()
    removed: list[Path] = []
    total = sum(s for _, s, _ in dumps) + incoming
    while dumps and ((max_dumps and len(dumps) >= max_dumps) or (max_bytes and total > max_bytes)):
        _, size, path = dumps.pop(0)
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed.append(path)
    return removed


def encode_events_block(events: Sequence[Event], block_seq: int, flags: int) -> bytes | None:
    """Frame already-decoded events as one block (for open and pinned areas)."""
    if not events:
        return None
    enc = msgspec.msgpack.Encoder()
    return frame_events(b"".join(enc.encode(tuple(e)) for e in events), events, block_seq, flags)


def frame_events(raw: bytes, events: Sequence[Event], block_seq: int, flags: int = 0) -> bytes:
    """A block of ``raw`` (the encodings of ``events``, in order), its header taken from them."""
    return fmt.encode_block(
        raw,
        block_seq=block_seq,
        first_seq=events[0].seq,
        last_seq=events[-1].seq,
        first_ts=events[0].ts_ns,
        last_ts=events[-1].ts_ns,
        count=len(events),
        flags=flags,
    )


def header_safe(value: Any, depth: int = 0) -> Any:
    """``value`` made encodable as header data: UTF-8-clean strings, builtin containers.

    Command lines, paths and exception messages may hold undecodable bytes (Python's
    surrogate escapes, e.g. a Latin-1 file name in argv). MessagePack cannot carry those,
    and a header that cannot be encoded would mean no ring, or no dump, at all.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if value is None or isinstance(value, (bool, float, bytes)):
        return value
    if isinstance(value, int):
        return value if -(1 << 63) <= value < (1 << 64) else str(value)
    if depth >= 16:
        return "<max depth>"
    if isinstance(value, dict):
        return {str(header_safe(k, depth + 1)): header_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [header_safe(v, depth + 1) for v in value]
    return header_safe(safe_repr(value), depth + 1)


_FLAG = re.compile(r"(--?)([A-Za-z][A-Za-z0-9_.-]*)(?:=(.*))?", re.DOTALL)


def redact_argv(argv: Sequence[str], redactor: Any) -> list[str]:
    """A command line with its secrets replaced: secret-named flags' values, then patterns.

    ``--api-key X``, ``--token=X`` or ``-password X`` carry a secret that no pattern
    recognizes: the flag's name is judged like a dict key (``api_key``, ``token``...) by
    ``redactor.redact``. Every other argument goes through the pattern rules.
    """

    def value(name: str, text: str) -> str:
        out = redactor.redact({name: text})
        v = out.get(name) if isinstance(out, dict) else None
        return v if isinstance(v, str) else redactor.redact_text(text)

    out: list[str] = []
    flag: str | None = None  # the previous argument was a flag without "=": this may be its value
    for arg in map(str, argv):
        if flag is not None and not arg.startswith("-"):
            out.append(value(flag, arg))
            flag = None
            continue
        flag = None
        m = _FLAG.fullmatch(arg)
        if m is not None and m.group(3) is not None:
            out.append(f"{m.group(1)}{m.group(2)}={value(m.group(2), m.group(3))}")
            continue
        if m is not None:
            flag = m.group(2)
        out.append(redactor.redact_text(arg))
    return out


def host_meta() -> dict[str, Any]:
    """Facts about this process that every header carries."""
    from . import __version__

    return {
        "format_version": fmt.FORMAT_VERSION,
        "flightrec_version": __version__,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "platform": sys.platform,
        "executable": sys.executable,
    }


def recorded_dump_dir(meta: dict[str, Any]) -> Path | None:
    """The directory a recording's process wrote its dumps to, as its ring header says, if
    that directory exists: a dump recovered from its ring belongs beside them.

    None for a ring that does not say (an older flightrec's, or a path redaction would
    change) or whose directory is gone: a path read from a file is never created (a crafted
    ring must not make directories), and :func:`write_dump` refuses one that is a symlink,
    another user's or writable by others.
    """
    config = meta.get("config")
    recorded = config.get("dump_dir") if isinstance(config, dict) else None
    if not isinstance(recorded, str) or not os.path.isabs(recorded):
        return None
    path = Path(recorded)
    try:
        return path if path.is_dir() else None
    except (OSError, ValueError):  # (a NUL in the path, a name too long)
        return None


def recover_ring(recording: Any, directory: Path) -> Path:
    """Turn a ring file (orphaned by a crash or a kill -9) into a dump."""
    blocks = ring_file_blocks(recording)
    meta = dict(recording.meta)
    meta["trigger"] = {"reason": "recover", "ring": str(recording.path), "recovered_ns": time.time_ns()}
    meta["recovered"] = True
    name = dump_name(int(meta.get("pid", 0)), "recovered")
    prog = meta.get("prog")  # (the file name of the program's argv[0]; dump_name takes its stem)
    if isinstance(prog, str) and prog:
        name = f"{_safe_prog(Path(prog).stem)}-{name.split('-', 1)[1]}"
    return write_dump(directory, name, meta, blocks)


def ring_file_blocks(recording: Any) -> list[bytes]:
    """A dump's blocks, read back from an opened ring file as any reader sees it (no lock taken)."""
    buf = recording._buf
    blocks: list[bytes] = []
    pinned = encode_events_block(recording.pinned, 0, fmt.FLAG_PINNED)
    if pinned:
        blocks.append(pinned)
    for ref in recording.blocks:
        blocks.append(bytes(buf[ref.offset : ref.offset + ref.header.total_len]))
    last_block = recording.blocks[-1].header.block_seq if recording.blocks else 0
    # min(): a crafted ring may claim the largest block seq; the frame must still encode.
    open_block = encode_events_block(recording.open_events, min(last_block + 1, (1 << 64) - 1), fmt.FLAG_OPEN)
    if open_block:
        blocks.append(open_block)
    return blocks
