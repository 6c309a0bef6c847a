"""Reading recordings: one code path for dumps and for ring files (live or orphaned).

A :class:`Recording` is a list of block references plus metadata. Blocks are decoded
lazily (the dump's index footer, or the block headers, give each block's event count), so
opening a million-event dump costs only its index. Every block is validated (header CRC,
payload CRC, bounded decompression); torn or corrupt blocks are skipped and counted in
:attr:`Recording.damaged`, the rest is salvaged.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from . import format as fmt
from .analysis import AnalysisMixin
from .errors import CorruptRecording, NotAFlightrecFile, RecordingNotFound, UnsupportedVersion, UsageError
from .event import Event, decode_events
from .format import U64, BlockHeader, RingField
from .outputs import display_path
from .paths import pid_alive


@dataclass(frozen=True, slots=True)
class BlockRef:
    """Where one block lives and what its header promises."""

    offset: int
    header: BlockHeader

    @property
    def count(self) -> int:
        """Events the header says the block holds."""
        return self.header.count


@dataclass
class Recording(AnalysisMixin):
    """A recording opened for reading: a dump (``.frec``) or a ring file.

    Use :func:`open_recording` (or ``flightrec.load``) to get one.
    """

    path: Path
    kind: str
    """``"dump"`` or ``"ring"``."""
    meta: dict[str, Any]
    blocks: list[BlockRef] = field(default_factory=list)
    pinned: list[Event] = field(default_factory=list)
    open_events: list[Event] = field(default_factory=list)
    damaged: int = 0
    """Blocks found damaged and skipped (plus a damaged header, if any)."""
    overwritten: int = 0
    """Blocks of a live ring that its writer overwrote with newer ones after this reader found
    them (the ring wrapped while it was being read): gone, not damaged."""
    warnings: list[str] = field(default_factory=list)
    _buf: Any = None
    _live_buf: Any = None
    """The mapping a live ring's writer still writes, when ``_buf`` is a copy of it."""
    _file: Any = None
    _cache: OrderedDict[int, list[Event]] = field(default_factory=OrderedDict)
    _bad_blocks: set[int] = field(default_factory=set)
    _gone_blocks: set[int] = field(default_factory=set)

    # ---------------------------------------------------------------- access
    def events(self, kinds: str | Iterable[str] | None = None) -> Iterator[Event]:
        """All events, oldest first, without duplicates; optionally only some kinds.

        ``kinds`` is one kind (``"tool_call"``) or several (``["tool_call", "error"]``).

        Raises:
            UsageError: ``kinds`` is neither a str nor an iterable of str.
        """
        want = _kind_set(kinds)
        pinned = [e for e in self.pinned if not self._covered(e.seq)]
        last = -1
        for p in pinned:  # pinned events older than anything in the ring come first
            last = p.seq
            if want is None or p.kind in want:
                yield p
        for i in range(len(self.blocks) + 1):
            evs = self.block_events(i) if i < len(self.blocks) else self.open_events
            if not evs:
                continue
            if evs[0].seq <= last:  # overlaps what was already yielded (rare): filter
                evs = [e for e in evs if e.seq > last]
                if not evs:
                    continue
            last = evs[-1].seq
            if want is None:
                yield from evs
            else:
                for ev in evs:
                    if ev.kind in want:
                        yield ev

    def _covered(self, seq: int) -> bool:
        """True if ``seq`` lies inside the range of a ring block or the open block."""
        if self.blocks and self.blocks[0].header.first_seq <= seq:
            return True
        return bool(self.open_events) and self.open_events[0].seq <= seq

    def block_events(self, index: int) -> list[Event]:
        """Decode one block's events (cached); an empty list if the block is damaged."""
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        ref = self.blocks[index]
        raw = fmt.decode_block_payload(ref.header, self._buf, ref.offset)
        events: list[Event] = []
        if raw is None:
            self._mark_unreadable(index)
        else:
            events, clean = decode_events(raw, count=ref.header.count)
            if not clean:
                self._mark_unreadable(index)
        self._cache[index] = events
        if len(self._cache) > 64:
            self._cache.popitem(last=False)
        return events

    def _mark_unreadable(self, index: int) -> None:
        if index in self._bad_blocks or index in self._gone_blocks:
            return
        ref = self.blocks[index]
        # A writer retires a block (wipes its magic) before it writes over it, and every new
        # block has a new seq: a header no longer the one found means the block was
        # overwritten since (a live ring that wrapped), not that it is damaged.
        live = self._live_buf if self._live_buf is not None else self._buf
        if self.kind == "ring" and fmt.parse_block_header(live, ref.offset) != ref.header:
            self._gone_blocks.add(index)
            self.overwritten += 1
        else:
            self._bad_blocks.add(index)
            self.damaged += 1

    def was_overwritten(self, index: int) -> bool:
        """Whether block ``index`` could not be read because the ring's writer overwrote it
        after it was found (see :attr:`overwritten`)."""
        return index in self._gone_blocks

    @property
    def event_count(self) -> int:
        """Events in the recording, as promised by the block headers (no decoding)."""
        pinned = sum(1 for e in self.pinned if not self._covered(e.seq))
        return sum(b.count for b in self.blocks) + len(self.open_events) + pinned

    @property
    def first_ts(self) -> int | None:
        """Timestamp of the oldest event (from block headers when possible)."""
        for ev in self.events():
            return ev.ts_ns
        return None

    @property
    def counters(self) -> dict[str, Any]:
        """The recorder's counters (recorded, dropped, errors...) from the header."""
        return dict(self.meta.get("counters", {}))

    def close(self) -> None:
        """Release the file mapping."""
        for buf in (self._buf, self._live_buf):
            if isinstance(buf, mmap.mmap):
                try:
                    buf.close()
                except BufferError:  # an exported memoryview still alive; the GC will close it
                    pass
        self._buf = self._live_buf = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kind_set(kinds: str | Iterable[str] | None) -> frozenset[str] | None:
    """The kinds :meth:`Recording.events` keeps (None: all); a single str is one kind."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        return frozenset((kinds,))
    try:
        want = frozenset(kinds)
    except TypeError:
        raise UsageError(
            f"events(kinds): kinds must be a str or an iterable of str, not {type(kinds).__name__}"
        ) from None
    odd = sorted({type(k).__name__ for k in want if not isinstance(k, str)})
    if odd:
        raise UsageError(f"events(kinds): every kind must be a str, not {', '.join(odd)}")
    return want


# ==================================================================== opening


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Open a dump or a ring file.

    Raises:
        RecordingNotFound: the path does not exist.
        NotAFlightrecFile: a directory, an empty file, or a file that is not ours.
        UnsupportedVersion: written by a newer format version.
        CorruptRecording: ours, but damaged beyond salvage.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise UsageError(f"a recording's path must be a str or a path, not {type(path).__name__}")
    if not os.fspath(path):
        raise RecordingNotFound("the path is empty: give a dump or ring file")
    p = Path(path)
    shown = display_path(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise RecordingNotFound(f"{shown}: no such file") from None
    except (OSError, ValueError) as exc:
        raise NotAFlightrecFile(f"{shown}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise NotAFlightrecFile(f"{shown}: is a directory, not a flightrec recording")
    if not stat.S_ISREG(st.st_mode):
        raise NotAFlightrecFile(f"{shown}: not a regular file (a device, FIFO or socket), not a flightrec recording")
    try:
        f = open(p, "rb")  # noqa: SIM115 -- kept open for the mapping's lifetime
    except OSError as exc:
        raise NotAFlightrecFile(f"{shown}: cannot open it ({exc.strerror})") from None
    if st.st_size == 0:
        _refuse_empty(f, shown)
    try:
        buf: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        f.close()
        raise NotAFlightrecFile(f"{shown}: cannot map it ({exc})") from None
    try:
        magic = bytes(buf[:8])
        if magic == fmt.DUMP_MAGIC:
            rec = _open_dump(p, buf)
        elif magic == fmt.RING_MAGIC:
            rec = _open_ring(p, buf)
        elif len(buf) < 8 and (fmt.DUMP_MAGIC.startswith(magic) or fmt.RING_MAGIC.startswith(magic)):
            raise CorruptRecording(f"{shown}: truncated flightrec file ({len(buf)} bytes)")
        else:
            raise NotAFlightrecFile(f"{shown}: not a flightrec recording (unknown magic {magic[:8]!r})")
    except BaseException:
        buf.close()
        f.close()
        raise
    rec._file = f
    return rec


def _refuse_empty(f: Any, shown: str) -> None:
    """Raise for a file of size 0: empty, or a pseudo-file (``/proc``, ``/sys``) that has no size.

    Raises:
        NotAFlightrecFile: always; the file is closed.
    """
    try:
        has_data = bool(f.read(1))
    except OSError:
        has_data = False
    f.close()
    if has_data:
        raise NotAFlightrecFile(f"{shown}: not a regular file (a pseudo-file of no size), not a flightrec recording")
    raise NotAFlightrecFile(f"{shown}: empty file, not a flightrec recording")


MAX_PLAUSIBLE_VERSION = 255
"""Format versions above this are not a newer format but a damaged header: the version
is bumped only for changes an older reader could misread, a few times in the format's life."""


def _newer_version(path: Path, version: int, what: str) -> UnsupportedVersion:
    return UnsupportedVersion(
        f"{display_path(path)}: {what}written by format version {version}; this flightrec reads up to "
        f"version {fmt.FORMAT_VERSION} (upgrade flightrec)"
    )


def _decode_meta(blob: bytes) -> dict[str, Any] | None:
    try:
        meta = msgpack.unpackb(blob, raw=False, strict_map_key=False, timestamp=3)
    except Exception:
        return None
    return meta if isinstance(meta, dict) else None


_META_MAPS = ("trigger", "exception", "counters", "redaction", "config", "env")
_META_INTS = ("format_version", "pid", "start_ns", "dump_ns")


def _clean_meta(meta: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Drop header fields whose type is not the documented one (a crafted or damaged header).

    Every consumer (``show``, the TUI, ``recover``) can then use the documented fields as
    documented, without guarding each access.
    """
    bad = [k for k in _META_MAPS if k in meta and meta[k] is not None and not isinstance(meta[k], dict)]
    bad += [k for k in _META_INTS if k in meta and type(meta[k]) is not int]
    if "argv" in meta and not isinstance(meta["argv"], list):
        bad.append("argv")
    for key in bad:
        del meta[key]
    if "argv" in meta:
        meta["argv"] = [a if isinstance(a, str) else repr(a) for a in meta["argv"]]
    counters = meta.get("counters")
    if counters:
        meta["counters"] = {k: v for k, v in counters.items() if type(v) is int or k == "sampling"}
    if bad:
        warnings.append(f"header fields of the wrong type ignored: {', '.join(sorted(bad))}")
    return meta


def _open_dump(path: Path, buf: Any) -> Recording:
    size = len(buf)
    if size < fmt.DUMP_PREAMBLE.size:
        raise CorruptRecording(f"{display_path(path)}: truncated dump ({size} bytes, no complete header)")
    _, version, _flags, header_len, header_crc = fmt.DUMP_PREAMBLE.unpack_from(buf, 0)
    if fmt.FORMAT_VERSION < version <= MAX_PLAUSIBLE_VERSION:
        raise _newer_version(path, version, "")
    rec = Recording(path=path, kind="dump", meta={}, _buf=buf)
    bad_version = not 1 <= version <= fmt.FORMAT_VERSION
    if bad_version:  # not a version anyone wrote: a damaged preamble, salvage the rest
        rec.damaged += 1
        rec.warnings.append(f"corrupt header: invalid format version {version} in the preamble, read as version 1")
    data_start = fmt.DUMP_PREAMBLE.size
    meta = None
    if header_len <= min(fmt.MAX_DUMP_HEADER, size - data_start):
        blob = bytes(buf[data_start : data_start + header_len])
        if zlib.crc32(blob) == header_crc:
            meta = _decode_meta(blob)
    if meta is None:
        rec.damaged += 1
        rec.warnings.append("dump header damaged: metadata lost, events salvaged")
    else:
        rec.meta = _clean_meta(meta, rec.warnings)
        data_start += header_len
    refs = _read_index(buf, data_start)
    if refs is None:
        refs = _scan_blocks(buf, data_start, size, aligned=False)
        rec.warnings.append(_missing_footer(refs, size, data_start))
    elif any(header is _BAD for _, header in refs):
        # The index points at damaged headers: the blocks may have moved (bytes inserted or
        # cut out), so look for them; what is still missing then is counted as damaged.
        rec.warnings.append("index footer points at damaged blocks: blocks found by scanning")
        listed = len(refs)
        refs = _scan_blocks(buf, data_start, size, aligned=False)
        rec.damaged += max(0, listed - len(refs))
    _place_blocks(rec, refs)
    if meta is None and not rec.blocks and not rec.pinned:
        why = f"corrupt header (format version field {version})" if bad_version else "damaged beyond salvage"
        raise CorruptRecording(f"{display_path(path)}: {why}: no readable header or block")
    return rec


def _missing_footer(refs: list[tuple[int, BlockHeader]], size: int, data_start: int) -> str:
    """Why a dump's index footer could not be read: cut off (the file ends before there is room
    for an entry per block found and the trailer: a truncated file, which `show` must say),
    or damaged."""
    if any(header is _TORN for _, header in refs):  # (the cut block says the file was truncated)
        return "index footer missing: blocks found by scanning"
    found = [(offset, header) for offset, header in refs if header is not _BAD]
    end = max((offset + header.total_len for offset, header in found), default=data_start)
    if size - end < len(found) * fmt.INDEX_ENTRY.size + fmt.DUMP_TRAILER.size:
        return "file truncated: the index footer is cut off by the end of the file; blocks found by scanning"
    return "index footer missing or damaged: blocks found by scanning"


def _read_index(buf: Any, data_start: int) -> list[tuple[int, BlockHeader]] | None:
    size = len(buf)
    tsize = fmt.DUMP_TRAILER.size
    if size < data_start + tsize:
        return None
    index_offset, n_blocks, index_crc, _, magic = fmt.DUMP_TRAILER.unpack_from(buf, size - tsize)
    if magic != fmt.TRAILER_MAGIC:
        return None
    index_len = n_blocks * fmt.INDEX_ENTRY.size
    if index_offset < data_start or index_offset + index_len != size - tsize:
        return None
    index = bytes(buf[index_offset : index_offset + index_len])
    if zlib.crc32(index) != index_crc:
        return None
    refs: list[tuple[int, BlockHeader]] = []
    prev_end = data_start
    for i in range(n_blocks):
        offset = fmt.INDEX_ENTRY.unpack_from(index, i * fmt.INDEX_ENTRY.size)[0]
        if offset < prev_end:
            # A writer lists its blocks in file order without overlap; anything else is not an
            # index we wrote (and overlapping entries would make reading quadratic): scan instead.
            return None
        header = fmt.parse_block_header(buf, offset) if offset < index_offset else None
        if header is not None and offset + header.total_len <= index_offset:
            refs.append((offset, header))
            prev_end = offset + header.total_len
        else:
            refs.append((offset, _BAD))
            prev_end = offset + 1
    return refs


_BAD = BlockHeader(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
"""Placeholder for an index entry whose block header is damaged."""
_TORN = BlockHeader(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
"""Placeholder for a block cut off by the end of the file (a truncated file)."""


def _scan_blocks(buf: Any, start: int, end: int, aligned: bool) -> list[tuple[int, BlockHeader]]:
    """Find every block with a valid header in ``buf[start:end]``.

    Uses ``find`` on the magic (C speed), so a scan is linear in the file size. A valid
    header is trusted to jump over its payload when the next block follows right after it
    with the next block seq (the common case). Otherwise the block may be torn (its end cut
    out, say) and claim the bytes of the intact block after it: if another magic lies inside
    its span, its payload CRC decides whether to jump. Those checks are capped at twice the
    scanned size, so a crafted file cannot make the scan quadratic. A header rejected that
    way is returned as ``_BAD`` (a damaged block); a block (or block header) that runs past
    ``end`` as ``_TORN`` (the file was cut there).
    """
    refs: list[tuple[int, BlockHeader]] = []
    pos = start
    magic = fmt.BLOCK_MAGIC
    budget = 2 * max(0, end - start)
    ahead: tuple[int, BlockHeader | None] = (-1, None)  # the follower parsed last time round
    covered = start  # where the last block accepted ends
    while True:
        pos = buf.find(magic, pos, end)
        if pos < 0:
            break
        if aligned and pos % fmt.BLOCK_ALIGN:
            pos += 1
            continue
        if pos + fmt.BLOCK_HEADER_SIZE > end:  # a header cut off by the end: nothing else can follow
            refs.append((pos, _TORN))
            break
        header = ahead[1] if ahead[0] == pos else fmt.parse_block_header(buf, pos)
        if header is not None and pos + header.total_len > end:
            refs.append((pos, _TORN))
            header = None
        if header is None:
            pos += 1
            continue
        nxt = pos + header.total_len
        after = fmt.align(nxt) if aligned else nxt
        follower = fmt.parse_block_header(buf, after) if after + fmt.BLOCK_HEADER_SIZE <= end else None
        ahead = (after, follower)
        if (
            (follower is None or follower.block_seq != header.block_seq + 1)
            and budget >= header.comp_len
            and buf.find(magic, pos + len(magic), nxt + len(magic) - 1) >= 0  # a magic starting in the span
        ):
            budget -= header.comp_len
            if not _payload_ok(buf, pos, header):
                refs.append((pos, _BAD))  # counted as damaged
                pos += 1
                continue
        refs.append((pos, header))
        pos = covered = nxt
    tail = bytes(buf[covered:end]) if not aligned and 0 < end - covered < len(magic) else b""
    if tail and magic.startswith(tail):  # the file was cut inside the next block's magic
        refs.append((covered, _TORN))
    return refs


def _payload_ok(buf: Any, offset: int, header: BlockHeader) -> bool:
    """True if the payload of the block at ``offset`` matches its CRC."""
    start = offset + fmt.BLOCK_HEADER_SIZE
    return zlib.crc32(buf[start : start + header.comp_len]) == header.payload_crc


def _place_blocks(rec: Recording, refs: list[tuple[int, BlockHeader]]) -> None:
    """Sort valid blocks by seq, split out the pinned ones, count the damaged ones."""
    good: list[BlockRef] = []
    by_seq: dict[int, int] = {}
    checked: dict[int, bool] = {}

    def ok(ref: BlockRef) -> bool:
        if ref.offset not in checked:
            checked[ref.offset] = _payload_ok(rec._buf, ref.offset, ref.header)
        return checked[ref.offset]

    for offset, header in refs:
        if header is _TORN:
            rec.damaged += 1
            rec.warnings.append(f"file truncated: the block at byte {offset} is cut off by the end of the file")
            continue
        if header is _BAD:
            rec.damaged += 1
            continue
        if header.flags & fmt.FLAG_PINNED:
            raw = fmt.decode_block_payload(header, rec._buf, offset)
            if raw is None:
                rec.damaged += 1
                continue
            events, _ = decode_events(raw)
            rec.pinned.extend(events)
            continue
        ref = BlockRef(offset, header)
        i = by_seq.get(header.block_seq)
        if i is not None:
            # Two blocks claim one seq (a spliced or partly overwritten file): keep an intact one.
            if not ok(good[i]) and ok(ref):
                good[i] = ref
            continue
        by_seq[header.block_seq] = len(good)
        good.append(ref)
    good.sort(key=lambda b: b.header.block_seq)
    rec.blocks = good
    rec.pinned.sort(key=lambda e: e.seq)


# ==================================================================== ring files


def ring_u64(buf: Any, field_offset: int) -> int:
    """Read one u64 field of a ring header."""
    return int(U64.unpack_from(buf, field_offset)[0])


def read_ring_meta(buf: Any) -> dict[str, Any]:
    """The metadata map stored in a ring's header page (empty if damaged)."""
    meta_len, meta_crc = fmt.META_LEN_CRC.unpack_from(buf, RingField.META_LEN)
    if meta_len > fmt.META_MAX:
        return {}
    blob = bytes(buf[RingField.META : RingField.META + meta_len])
    if zlib.crc32(blob) != meta_crc:
        return {}
    return _decode_meta(blob) or {}


def _open_ring(path: Path, mapped: Any) -> Recording:
    size = len(mapped)
    if size < fmt.RING_HEADER_SIZE:
        raise CorruptRecording(f"{display_path(path)}: truncated ring file ({size} bytes)")
    buf = _copy_if_written(mapped)
    version, header_size, _ = fmt.RING_VERSION.unpack_from(buf, RingField.VERSION)
    if fmt.FORMAT_VERSION < version <= MAX_PLAUSIBLE_VERSION:
        raise _newer_version(path, version, "ring ")
    bad_version = version > MAX_PLAUSIBLE_VERSION
    layout = {
        name: ring_u64(buf, off)
        for name, off in (
            ("ring_offset", RingField.RING_OFFSET),
            ("ring_size", RingField.RING_SIZE),
            ("open_offset", RingField.OPEN_OFFSET),
            ("open_size", RingField.OPEN_SIZE),
            ("pin_offset", RingField.PIN_OFFSET),
            ("pin_size", RingField.PIN_SIZE),
        )
    }
    floor = max(header_size, fmt.RING_HEADER_SIZE)

    def inside(base: str, length: str) -> bool:
        return floor <= layout[base] and layout[base] + layout[length] <= size

    # The layout is fixed by the format (header page | open block | pinned area | ring area to
    # the end); a header that disagrees with it, or with the file's size, is damaged or the
    # file was truncated: then blocks are searched for in the whole file.
    consistent = (
        not bad_version
        and header_size == fmt.RING_HEADER_SIZE
        and layout["open_offset"] == header_size
        and layout["pin_offset"] == layout["open_offset"] + layout["open_size"]
        and layout["ring_offset"] == fmt.align(layout["pin_offset"] + layout["pin_size"])
        and layout["ring_offset"] + layout["ring_size"] == size
    )
    meta_warnings: list[str] = []
    meta = _clean_meta(read_ring_meta(buf), meta_warnings)
    rec = Recording(
        path=path,
        kind="ring",
        meta=meta,
        _buf=buf,
        _live_buf=mapped if buf is not mapped else None,
        warnings=meta_warnings,
    )
    if not meta:
        rec.warnings.append("ring metadata damaged")
    add_live_header(meta, buf)
    if consistent:
        start = layout["ring_offset"]
        refs = _scan_blocks(buf, start, start + layout["ring_size"], aligned=True)
    else:
        rec.damaged += 1
        rec.warnings.append(
            f"corrupt ring header (invalid format version {version}): blocks found by scanning the whole file"
            if bad_version
            else "ring header damaged or file truncated: blocks found by scanning the whole file"
        )
        refs = _scan_blocks(buf, fmt.RING_HEADER_SIZE, size, aligned=False)
    _place_blocks(rec, refs)
    # Pinned area: committed length, then whole events only.
    if inside("pin_offset", "pin_size"):
        pin_len = min(ring_u64(buf, RingField.PIN_LEN), layout["pin_size"])
        pinned, _ = decode_events(bytes(buf[layout["pin_offset"] : layout["pin_offset"] + pin_len]), True)
        rec.pinned = sorted({e.seq: e for e in rec.pinned + pinned}.values(), key=lambda e: e.seq)
    if inside("open_offset", "open_size"):
        rec.open_events = read_open_block(buf, layout["open_offset"], layout["open_size"])
    if rec.blocks and rec.open_events:
        last = rec.blocks[-1].header.last_seq
        rec.open_events = [e for e in rec.open_events if e.seq > last]
    _count_what_was_read(meta, rec)
    if not consistent and not (meta or rec.blocks or rec.pinned or rec.open_events):
        why = f"corrupt ring header (format version field {version})" if bad_version else "ring header damaged"
        raise CorruptRecording(f"{display_path(path)}: {why} beyond salvage (no readable block or event)")
    return rec


_COPY_MAX = 256 * 1024 * 1024
"""Largest ring copied whole when its process still writes it (see :func:`_copy_if_written`)."""


def _copy_if_written(mapped: Any) -> Any:
    """The ring's bytes as of now if its process is alive and still writing it, else the mapping.

    Decoding a ring takes seconds, copying it milliseconds. Read through the mapping, a busy
    ring's oldest blocks are overwritten before they are decoded, differently on every pass
    over the events (an export makes several); read from one copy, every pass sees the same
    recording. A ring too big to copy (or no memory for it) is read through the mapping.
    """
    if ring_u64(mapped, RingField.CLOSED) or len(mapped) > _COPY_MAX:
        return mapped
    if not pid_alive(ring_u64(mapped, RingField.PID)):
        return mapped
    try:
        copy = bytearray(len(mapped))
    except MemoryError:
        return mapped
    # The header page, the open block and the pinned area first, under the open block's
    # seqlock (a length and bytes of one generation, however memcpy orders its stores),
    # then the blocks: what the open block held is flushed after it, and a block the copy
    # misses is newer than every block it holds.
    head = min(max(ring_u64(mapped, RingField.RING_OFFSET), fmt.RING_HEADER_SIZE), len(mapped))
    for _ in range(50):
        gen, length = ring_u64(mapped, RingField.OPEN_GEN), ring_u64(mapped, RingField.OPEN_LEN)
        copy[:head] = mapped[:head]
        if ring_u64(mapped, RingField.OPEN_GEN) == gen:
            U64.pack_into(copy, RingField.OPEN_GEN, gen)
            U64.pack_into(copy, RingField.OPEN_LEN, length)
            break
    copy[head:] = mapped[head:]
    return copy


def add_live_header(meta: dict[str, Any], buf: Any) -> None:
    """Complete a ring's ``meta`` with what its header holds live: pid and start time (when
    the stored metadata lacks them), the counters the recorder publishes, and ``closed``."""
    meta.setdefault("pid", ring_u64(buf, RingField.PID))
    meta.setdefault("start_ns", ring_u64(buf, RingField.START_NS))
    meta["counters"] = {
        "recorded": ring_u64(buf, RingField.RECORDED),
        "dropped": ring_u64(buf, RingField.DROPPED),
        "errors": ring_u64(buf, RingField.ERRORS),
        "dump_failures": ring_u64(buf, RingField.DUMP_FAILURES),
        **dict(meta.get("counters", {})),
    }
    meta["closed"] = bool(ring_u64(buf, RingField.CLOSED))


def _count_what_was_read(meta: dict[str, Any], rec: Recording) -> None:
    """Raise the published ``recorded`` counter to the highest seq read: the recorder
    publishes its counters now and then, so a ring whose process died early (a crash in its
    first second) holds events its header does not count yet."""
    highest = max(
        [b.header.last_seq for b in rec.blocks] + [e.seq for e in rec.pinned] + [e.seq for e in rec.open_events],
        default=0,
    )
    counters = meta.get("counters")
    if isinstance(counters, dict) and isinstance(counters.get("recorded"), int) and counters["recorded"] < highest:
        counters["recorded"] = highest


def read_open_block(buf: Any, offset: int, capacity: int) -> list[Event]:
    """Seqlock read of a ring's open block: retry if the writer reused it while we copied."""
    events: list[Event] = []
    for _ in range(50):
        gen = ring_u64(buf, RingField.OPEN_GEN)
        length = min(ring_u64(buf, RingField.OPEN_LEN), capacity)
        raw = bytes(buf[offset : offset + length])
        if ring_u64(buf, RingField.OPEN_GEN) == gen:
            events, _ = decode_events(raw, tolerate_tail=True)
            return events
        time.sleep(0.001)
    return events


def load(path: str | os.PathLike[str]) -> Recording:
    """Open a recording (dump or ring file); see :func:`open_recording`."""
    return open_recording(path)
