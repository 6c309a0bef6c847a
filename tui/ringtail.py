"""Re-reading a live ring cheaply: scan only what the writer wrote since the last look.

:func:`flightrec.reader.open_recording` finds a ring's blocks by scanning the whole ring
area for block magic: right for a one-off read, but ~0.3 s per poll on a 64 MiB ring, which
would take a core away from the agent on a small machine. :class:`RingTail` keeps the block
headers it found and, on each :meth:`RingTail.snapshot`, scans only the bytes between the
previous and the current write position (published by the writer in the ring header),
dropping the blocks those bytes overwrote. It builds an ordinary
:class:`~flightrec.reader.Recording` from them, so everything downstream is the one reader
path. Any doubt (the writer lapped us, the header looks odd) falls back to a full scan.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

from flightrec import format as fmt
from flightrec.errors import NotAFlightrecFile
from flightrec.event import decode_events
from flightrec.format import BlockHeader, RingField
from flightrec.reader import BlockRef, Recording, add_live_header, read_open_block, read_ring_meta, ring_u64


class RingTail:
    """An incremental reader of one ring file, mapped read-only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Map ``path`` (a ring file).

        Raises:
            OSError: the file cannot be opened or mapped.
            NotAFlightrecFile: it is not a ring file.
        """
        self.path = Path(path)
        with open(self.path, "rb") as f:
            self.buf: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self.buf
        if len(buf) < fmt.RING_HEADER_SIZE or bytes(buf[:8]) != fmt.RING_MAGIC:
            raise NotAFlightrecFile(f"{self.path}: not a ring file")
        self.ring_offset = ring_u64(buf, RingField.RING_OFFSET)
        self.ring_size = ring_u64(buf, RingField.RING_SIZE)
        self.open_offset = ring_u64(buf, RingField.OPEN_OFFSET)
        self.open_size = ring_u64(buf, RingField.OPEN_SIZE)
        self.pin_offset = ring_u64(buf, RingField.PIN_OFFSET)
        self.pin_size = ring_u64(buf, RingField.PIN_SIZE)
        if self.ring_offset + self.ring_size > len(buf) or self.open_offset + self.open_size > len(buf):
            raise NotAFlightrecFile(f"{self.path}: ring header damaged")
        self.meta = read_ring_meta(buf)
        self.refs: dict[int, BlockHeader] = {}
        """Absolute offset -> header of every block believed live."""
        self.write_pos: int | None = None
        self.last_block_seq = 0
        self.full_scans = 0

    # ------------------------------------------------------------------ scanning
    def _scan(self, start: int, end: int) -> None:
        """Add every valid block header in ``[start, end)`` (absolute offsets)."""
        buf = self.buf
        magic = fmt.BLOCK_MAGIC
        pos = start
        while True:
            pos = buf.find(magic, pos, end)
            if pos < 0:
                return
            if pos % fmt.BLOCK_ALIGN:
                pos += 1
                continue
            header = fmt.parse_block_header(buf, pos)
            if header is not None and pos + header.total_len <= self.ring_offset + self.ring_size:
                self.refs[pos] = header
                pos += header.total_len
            else:
                pos += 1

    def _forget(self, start: int, end: int) -> None:
        """Drop the blocks starting in ``[start, end)``: the writer reused those bytes."""
        for off in [o for o in self.refs if start <= o < end]:
            del self.refs[off]

    def _refresh_blocks(self) -> None:
        buf = self.buf
        base = self.ring_offset
        wp = ring_u64(buf, RingField.WRITE_POS)
        lbs = ring_u64(buf, RingField.LAST_BLOCK_SEQ)
        old = self.write_pos
        if wp > self.ring_size:
            wp = self.ring_size
        lapped = (
            old is None
            or lbs < self.last_block_seq
            or (
                # more new blocks than the ring can hold since last time: it went all the way round
                self.refs and lbs - self.last_block_seq >= max(len(self.refs), 1)
            )
        )
        if lapped:
            self.refs.clear()
            self._scan(base, base + self.ring_size)
            self.full_scans += 1
        elif wp != old or lbs != self.last_block_seq:
            assert old is not None
            # Past our last position, or wrapped: the tail was retired and the head rewritten.
            regions = [(old, wp)] if wp >= old else [(old, self.ring_size), (0, wp)]
            for a, b in regions:
                self._forget(base + a, base + b)
                self._scan(base + a, base + b)
        self.write_pos = wp
        self.last_block_seq = lbs

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> Recording:
        """The ring as it is now, as a :class:`Recording` sharing this mapping."""
        self._refresh_blocks()
        buf = self.buf
        meta = dict(self.meta)
        add_live_header(meta, buf)
        rec = Recording(path=self.path, kind="ring", meta=meta, _buf=buf)
        seen: set[int] = set()
        blocks: list[BlockRef] = []
        for off, h in sorted(self.refs.items(), key=lambda kv: kv[1].block_seq):
            if h.block_seq in seen or h.flags & fmt.FLAG_PINNED:
                continue
            seen.add(h.block_seq)
            blocks.append(BlockRef(off, h))
        rec.blocks = blocks
        pin_len = min(ring_u64(buf, RingField.PIN_LEN), self.pin_size)
        pinned, _ = decode_events(bytes(buf[self.pin_offset : self.pin_offset + pin_len]), True)
        rec.pinned = pinned
        open_events = read_open_block(buf, self.open_offset, self.open_size)
        if blocks and open_events:
            last = blocks[-1].header.last_seq
            open_events = [e for e in open_events if e.seq > last]
        rec.open_events = open_events
        return rec
