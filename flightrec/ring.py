"""The ring: a memory-mapped file holding the recent past of one process.

Layout (see docs/FORMAT.md): a 4 KiB header page, the open block (raw events appended,
their committed length published after each one), the pinned area, and the ring area where
full blocks are written LZ4-compressed, oldest overwritten first.

Because the bytes live in a shared file mapping, a ``kill -9`` loses no committed event
(the page cache still holds them, ``flightrec recover`` reads them) and a viewer in another
process can map the same file read-only and follow along without any cost to the writer.

The writer is single-threaded by contract: :class:`~flightrec.recorder.Recorder` holds one
lock around :meth:`RingWriter.append`. Readers never lock; they detect torn reads with the
block CRCs and the open block's generation counter (a seqlock).
"""

from __future__ import annotations

import mmap
import os
import time
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from . import format as fmt
from .format import U64, RingField

_pack_u64 = U64.pack_into
_OPEN_LEN = RingField.OPEN_LEN


class RingWriter:
    """Owns one ring file and appends encoded events to it."""

    __slots__ = (
        "_fd",
        "_mm",
        "_open_end",
        "_open_limit",
        "after_flush",
        "block_seq",
        "blocks",
        "dump_request_seen",
        "last_seq",
        "last_ts",
        "open_first_seq",
        "open_first_ts",
        "open_offset",
        "open_size",
        "path",
        "pin_len",
        "pin_offset",
        "pin_size",
        "ring_offset",
        "ring_size",
        "size",
        "write_pos",
    )

    def __init__(self, path: Path, fd: int, size: int, block_size: int, pin_size: int, meta: dict[str, Any]) -> None:
        """Lay out and map a new ring file.

        Args:
            path: the file (already created 0600 by the caller, open as ``fd``).
            fd: its descriptor; this object takes ownership.
            size: total file size in bytes.
            block_size: capacity of the open block (raw bytes per block).
            pin_size: capacity of the pinned area.
            meta: process metadata stored in the header page (already redacted).
        """
        self.path = path
        self._fd = fd
        self.size = size
        os.ftruncate(fd, size)
        if hasattr(os, "posix_fallocate"):
            # Reserve the space now. A mapping over a sparse file on a full disk or tmpfs
            # kills the process with SIGBUS on the first write to a page that cannot be
            # backed; failing here only means the agent runs unrecorded (or falls back).
            os.posix_fallocate(fd, 0, size)
        self._mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.open_offset = fmt.RING_HEADER_SIZE
        self.open_size = block_size
        self.pin_offset = self.open_offset + block_size
        self.pin_size = pin_size
        self.ring_offset = fmt.align(self.pin_offset + pin_size)
        self.ring_size = size - self.ring_offset
        if self.ring_size < 4 * (block_size + fmt.BLOCK_HEADER_SIZE):
            raise ValueError("ring too small for its block size")
        self._open_end = self.open_offset  # absolute offset of the first free open-block byte
        self._open_limit = self.open_offset + block_size
        self.open_first_seq = 1  # the recorder's seqs start at 1 and are appended in order
        self.open_first_ts = 0
        self.last_seq = 0
        self.last_ts = 0
        self.block_seq = 1  # seq the open block will get when it is written
        self.write_pos = 0  # relative to ring_offset
        # (block_seq, abs offset, length, first_seq, last_seq), oldest first
        self.blocks: deque[tuple[int, int, int, int, int]] = deque()
        self.after_flush: Callable[[], None] | None = None
        """Called after each flush (see :meth:`at_risk`), so that content still referenced
        can be re-emitted before it is overwritten. When an append flushed, its event is in
        the new open block by then: what the listener appends (later seqs) comes after it."""
        self.pin_len = 0
        self.dump_request_seen = 0
        self._write_header(meta)

    # ------------------------------------------------------------------ header
    def _write_header(self, meta: dict[str, Any]) -> None:
        mm = self._mm
        mm[0:8] = fmt.RING_MAGIC
        fmt.RING_VERSION.pack_into(mm, RingField.VERSION, fmt.FORMAT_VERSION, fmt.RING_HEADER_SIZE, 0)
        for off, value in (
            (RingField.PID, os.getpid()),
            (RingField.START_NS, time.time_ns()),
            (RingField.RING_OFFSET, self.ring_offset),
            (RingField.RING_SIZE, self.ring_size),
            (RingField.OPEN_OFFSET, self.open_offset),
            (RingField.OPEN_SIZE, self.open_size),
            (RingField.PIN_OFFSET, self.pin_offset),
            (RingField.PIN_SIZE, self.pin_size),
            (RingField.OPEN_GEN, self.block_seq),
        ):
            U64.pack_into(mm, off, value)
        self.set_meta(meta)

    def set_meta(self, meta: dict[str, Any]) -> None:
        """Store process metadata in the header page (truncating argv if it would not fit)."""
        blob = msgspec.msgpack.encode(meta)
        if len(blob) > fmt.META_MAX:
            meta = dict(meta)
            meta["argv"] = [str(a)[:64] for a in list(meta.get("argv", []))[:16]]
            meta["meta_truncated"] = True
            blob = msgspec.msgpack.encode(meta)[: fmt.META_MAX]
        self._mm[RingField.META : RingField.META + len(blob)] = blob
        fmt.META_LEN_CRC.pack_into(self._mm, RingField.META_LEN, len(blob), zlib.crc32(blob))

    def set_counter(self, field: int, value: int) -> None:
        """Publish one of the header's u64 counters (recorded, dropped, errors...)."""
        U64.pack_into(self._mm, field, value)

    def read_u64(self, field: int) -> int:
        """Read a u64 header field."""
        return int(U64.unpack_from(self._mm, field)[0])

    def set_last_dump_path(self, path: str) -> None:
        """Record where the latest dump went, for ``flightrec dump PID`` to print."""
        raw = path.encode("utf-8", "replace")[: fmt.LAST_DUMP_PATH_SIZE - 1]
        start = RingField.LAST_DUMP_PATH
        self._mm[start : start + fmt.LAST_DUMP_PATH_SIZE] = raw.ljust(fmt.LAST_DUMP_PATH_SIZE, b"\0")

    # ------------------------------------------------------------------ hot path
    def append(self, event: bytes, seq: int, ts: int) -> None:
        """Append one encoded event and publish it (caller holds the recorder's lock).

        Events arrive in seq order with consecutive seqs, so a block's count and first seq
        follow from its last seq: the per-event bookkeeping is two attribute writes.
        ``event`` must be at most the block size (the encoder guarantees it).
        """
        end = self._open_end
        new_end = end + len(event)
        if new_end > self._open_limit:
            # The flush listener runs once this event is in the new open block, not before:
            # what it appends takes the seqs after this one, so it must come after it too.
            # (Written first, a block's events would not be in seq order, and its first_seq
            # and last_seq, which the listener's at_risk reports, would not say which seqs
            # it holds: a chunk re-emitted into it could be overwritten without being seen.)
            listener = self._flush_block()
            self.open_first_seq = seq
            self.open_first_ts = ts
            end = self._open_end
            new_end = end + len(event)
        else:
            listener = None
            if self.last_seq == 0:
                self.open_first_ts = ts
        mm = self._mm
        mm[end:new_end] = event
        self._open_end = new_end
        self.last_seq = seq
        self.last_ts = ts
        # Publish after the bytes: a reader (or recover after kill -9) sees whole events only.
        _pack_u64(mm, _OPEN_LEN, new_end - self.open_offset)
        if listener is not None:
            listener()

    @property
    def open_count(self) -> int:
        """Events in the open block."""
        return self.last_seq - self.open_first_seq + 1 if self._open_end > self.open_offset else 0

    def append_pinned(self, event: bytes) -> bool:
        """Append to the pinned area; False when it is full."""
        start = self.pin_offset + self.pin_len
        if self.pin_len + len(event) > self.pin_size:
            return False
        self._mm[start : start + len(event)] = event
        self.pin_len += len(event)
        U64.pack_into(self._mm, RingField.PIN_LEN, self.pin_len)
        return True

    # ------------------------------------------------------------------ blocks
    def open_raw(self) -> bytes:
        """The open block's committed raw bytes."""
        return self._mm[self.open_offset : self._open_end]

    def flush(self) -> None:
        """Compress the open block into the ring area and start a new open block."""
        listener = self._flush_block()
        if listener is not None:
            listener()

    def _flush_block(self) -> Callable[[], None] | None:
        """:meth:`flush` but for calling :attr:`after_flush`: returned (None if nothing was
        flushed, or no one listens), for the caller to call."""
        if self.open_count == 0:
            return None
        block = fmt.encode_block(
            self._mm[self.open_offset : self._open_end],
            block_seq=self.block_seq,
            first_seq=self.open_first_seq,
            last_seq=self.last_seq,
            first_ts=self.open_first_ts,
            last_ts=self.last_ts,
            count=self.open_count,
        )
        self._write_block(block)
        # Seqlock: bump the generation *before* the open area is reused, so a reader that
        # copied the old bytes notices the change and retries.
        self.block_seq += 1
        U64.pack_into(self._mm, RingField.OPEN_GEN, self.block_seq)
        U64.pack_into(self._mm, RingField.OPEN_LEN, 0)
        self._open_end = self.open_offset
        self.open_first_seq = self.last_seq + 1
        U64.pack_into(self._mm, RingField.HEARTBEAT_NS, time.time_ns())
        return self.after_flush

    def at_risk(self, extra: int = 0) -> list[tuple[int, int]]:
        """``(first_seq, last_seq)`` of the blocks the next flush may overwrite, oldest first.

        With ``extra``: and those that ``extra`` more bytes written after it would. Overwriting
        goes oldest first, so these are a prefix of :attr:`blocks`.
        """
        need = fmt.align(self.open_size + fmt.BLOCK_HEADER_SIZE) + max(0, extra)
        start = self.ring_offset + self.write_pos
        end = start + need
        wraps = end > self.ring_offset + self.ring_size  # then the tail and the head are at risk
        out: list[tuple[int, int]] = []
        for _, off, _, first, last in self.blocks:
            if (start <= off < end) or (wraps and (off >= start or off < self.ring_offset + need)):
                out.append((first, last))
            else:
                break
        return out

    def _write_block(self, block: bytes) -> None:
        length = fmt.align(len(block))
        pos = self.write_pos
        if pos + length > self.ring_size:
            # Wrap. The blocks between here and the end are the oldest: retire them (and wipe
            # their magic) so that the surviving set is always exactly the newest blocks.
            self._retire(self.ring_offset + pos, self.ring_offset + self.ring_size)
            pos = 0
        start = self.ring_offset + pos
        self._retire(start, start + length)
        mm = self._mm
        # Payload first, header last: a block torn by a crash has no valid header.
        mm[start + fmt.BLOCK_HEADER_SIZE : start + len(block)] = block[fmt.BLOCK_HEADER_SIZE :]
        mm[start : start + fmt.BLOCK_HEADER_SIZE] = block[: fmt.BLOCK_HEADER_SIZE]
        self.blocks.append((self.block_seq, start, len(block), self.open_first_seq, self.last_seq))
        self.write_pos = pos + length
        U64.pack_into(mm, RingField.WRITE_POS, self.write_pos)
        U64.pack_into(mm, RingField.LAST_BLOCK_SEQ, self.block_seq)

    def _retire(self, start: int, end: int) -> None:
        """Retire (oldest first) the previous pass's blocks that start inside ``[start, end)``.

        Blocks of the current pass all sit before ``start`` (the write position), so the
        blocks in range are exactly a prefix of the deque: the oldest ones.
        """
        blocks = self.blocks
        mm = self._mm
        while blocks and start <= blocks[0][1] < end:
            off = blocks.popleft()[1]
            mm[off : off + 4] = b"\0\0\0\0"

    def snapshot_blocks(self) -> list[memoryview]:
        """Copies of the framed blocks in the ring, oldest first (caller holds the lock).

        One contiguous copy of the used part of the ring area, sliced per block: a single
        large allocation goes back to the OS when the dump is done, where thousands of
        block-sized copies would leave the process's RSS a ring-size higher for good.
        """
        if not self.blocks:
            return []
        start = min(off for _, off, _, _, _ in self.blocks)
        end = max(off + length for _, off, length, _, _ in self.blocks)
        view = memoryview(self._mm[start:end])
        return [view[off - start : off - start + length] for _, off, length, _, _ in self.blocks]

    def pinned_raw(self) -> bytes:
        """The pinned area's raw events."""
        return self._mm[self.pin_offset : self.pin_offset + self.pin_len]

    def close(self, remove: bool) -> None:
        """Flush, mark closed, unmap; delete the file if ``remove``.

        The file is deleted first: a process killed while closing (a multiprocessing pool's
        worker, terminated by its pool as it exits) must not leave behind a ring it meant to delete.
        """
        if remove:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        try:
            self.flush()
            U64.pack_into(self._mm, RingField.CLOSED, 1)
            if not remove:
                self._mm.flush()
            self._mm.close()
        finally:
            os.close(self._fd)
