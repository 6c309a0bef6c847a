"""Framing shared by the ring writer, the dump writer and the reader.

This module is docs/FORMAT.md in code: every offset and struct layout lives here once.
All integers are little-endian. Events are MessagePack arrays
``[seq, ts_ns, kind, thread, span, parent, data]``; a block holds a concatenation of them.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import lz4.block

FORMAT_VERSION = 1
"""Bumped on any change a version-1 reader could misread."""

# ---------------------------------------------------------------------------- blocks
BLOCK_MAGIC = b"FRB1"
BLOCK_VERSION = 1
CODEC_NONE = 0
CODEC_LZ4 = 1
FLAG_PINNED = 1
"""Block flag: the events come from the pinned area (never overwritten by the ring)."""
FLAG_OPEN = 2
"""Block flag: the events were the open (not yet full) block when the dump was taken."""

# magic, version, codec, flags, block_seq, first_seq, last_seq, first_ts, last_ts,
# count, raw_len, comp_len, payload_crc, reserved, header_crc
BLOCK_HEADER = struct.Struct("<4sBBHQQQqqIIIII I")
BLOCK_HEADER_SIZE = BLOCK_HEADER.size  # 72
_BLOCK_HEADER_CRC_SPAN = BLOCK_HEADER_SIZE - 4
MAX_BLOCK_RAW = 64 * 1024 * 1024
"""A header claiming more raw bytes than this is corrupt: a reader never allocates past it."""
BLOCK_ALIGN = 8
LZ4_MAX_RATIO = 256
"""LZ4 never expands a payload more than ~255x: a header claiming more is corrupt, so a reader's
allocation stays proportional to the bytes it was given."""
MIN_EVENT_SIZE = 8
"""Bytes of the smallest encoded event (``[1, 0, "", "", nil, nil, {}]``): bounds a header's count."""

# ---------------------------------------------------------------------------- ring file
RING_MAGIC = b"FRECRING"
RING_HEADER_SIZE = 4096
RING_SUFFIX = ".ring"


class RingField:
    """Byte offsets of the u64 fields in a ring file's header page."""

    VERSION = 8  # u16 format version, u16 header size, u32 flags
    PID = 16
    START_NS = 24
    RING_OFFSET = 32
    RING_SIZE = 40
    OPEN_OFFSET = 48
    OPEN_SIZE = 56
    PIN_OFFSET = 64
    PIN_SIZE = 72
    OPEN_GEN = 80
    """Seqlock generation of the open block; bumped before the open area is reused."""
    OPEN_LEN = 88
    """Committed bytes in the open block, published after every event."""
    WRITE_POS = 96
    LAST_BLOCK_SEQ = 104
    PIN_LEN = 112
    DUMP_REQUEST = 120
    DUMP_ACK = 128
    RECORDED = 136
    DROPPED = 144
    ERRORS = 152
    DUMP_FAILURES = 160
    HEARTBEAT_NS = 168
    META_LEN = 176  # u32 meta length, u32 meta crc
    CLOSED = 184
    """Non-zero once the recorder stopped cleanly."""
    LAST_DUMP_PATH = 256  # 256 bytes, utf-8, NUL padded
    META = 512  # msgpack map up to the end of the header page


U64 = struct.Struct("<Q")
I64 = struct.Struct("<q")
U32 = struct.Struct("<I")
RING_VERSION = struct.Struct("<HHI")
META_LEN_CRC = struct.Struct("<II")
LAST_DUMP_PATH_SIZE = 256
META_MAX = RING_HEADER_SIZE - RingField.META

# ---------------------------------------------------------------------------- dump file
DUMP_MAGIC = b"FRECDUMP"
DUMP_SUFFIX = ".frec"
# magic, version, flags, header_len, header_crc
DUMP_PREAMBLE = struct.Struct("<8sHHII")
# offset, block_seq, first_seq, last_seq, first_ts, last_ts, count, flags
INDEX_ENTRY = struct.Struct("<QQQQqqIHxx")
# index_offset, n_blocks, index_crc, reserved, magic
DUMP_TRAILER = struct.Struct("<QIIQ8s")
TRAILER_MAGIC = b"FRECEND1"
MAX_DUMP_HEADER = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """A decoded, header-CRC-checked block header."""

    version: int
    codec: int
    flags: int
    block_seq: int
    first_seq: int
    last_seq: int
    first_ts: int
    last_ts: int
    count: int
    raw_len: int
    comp_len: int
    payload_crc: int

    @property
    def total_len(self) -> int:
        """Header plus payload, in bytes (unaligned)."""
        return BLOCK_HEADER_SIZE + self.comp_len


def encode_block(
    raw: bytes | memoryview,
    *,
    block_seq: int,
    first_seq: int,
    last_seq: int,
    first_ts: int,
    last_ts: int,
    count: int,
    flags: int = 0,
    compress: bool = True,
) -> bytes:
    """Frame ``raw`` (concatenated msgpack events) as one self-describing block.

    LZ4 is used unless it would not shrink the payload, in which case the block is stored raw.
    """
    codec = CODEC_NONE
    payload: bytes = bytes(raw)
    if compress and payload:
        packed = lz4.block.compress(payload, store_size=False)
        if len(packed) < len(payload):
            codec, payload = CODEC_LZ4, packed
    crc = zlib.crc32(payload)
    head = BLOCK_HEADER.pack(
        BLOCK_MAGIC,
        BLOCK_VERSION,
        codec,
        flags,
        block_seq,
        first_seq,
        last_seq,
        first_ts,
        last_ts,
        count,
        len(raw),
        len(payload),
        crc,
        0,
        0,
    )
    head = head[:_BLOCK_HEADER_CRC_SPAN] + U32.pack(zlib.crc32(head[:_BLOCK_HEADER_CRC_SPAN]))
    return head + payload


def parse_block_header(buf: bytes | memoryview, offset: int = 0) -> BlockHeader | None:
    """Decode and validate the block header at ``offset``; ``None`` if it is not a valid one.

    Validation covers the magic, the header CRC, the version and sane lengths. The payload
    is checked separately by :func:`decode_block_payload`.
    """
    end = offset + BLOCK_HEADER_SIZE
    if end > len(buf):
        return None
    head = bytes(buf[offset:end])
    if head[:4] != BLOCK_MAGIC:
        return None
    if zlib.crc32(head[:_BLOCK_HEADER_CRC_SPAN]) != U32.unpack_from(head, _BLOCK_HEADER_CRC_SPAN)[0]:
        return None
    (_, version, codec, flags, bseq, fseq, lseq, fts, lts, count, raw_len, comp_len, crc, _, _) = BLOCK_HEADER.unpack(
        head
    )
    if version != BLOCK_VERSION or codec not in (CODEC_NONE, CODEC_LZ4):
        return None
    if raw_len > MAX_BLOCK_RAW or comp_len > MAX_BLOCK_RAW or (codec == CODEC_NONE and raw_len != comp_len):
        return None
    if raw_len > LZ4_MAX_RATIO * comp_len or count * MIN_EVENT_SIZE > raw_len:
        return None  # more than LZ4 can expand, or more events than the bytes can hold: a lying header
    return BlockHeader(version, codec, flags, bseq, fseq, lseq, fts, lts, count, raw_len, comp_len, crc)


def decode_block_payload(header: BlockHeader, buf: bytes | memoryview, offset: int) -> bytes | None:
    """Return the block's raw event bytes, or ``None`` if the payload is torn or corrupt.

    ``offset`` is where the block's header starts. Decompression is bounded by the header's
    ``raw_len``, so a lying header cannot make the reader allocate more than that.
    """
    start = offset + BLOCK_HEADER_SIZE
    end = start + header.comp_len
    if end > len(buf):
        return None
    payload = bytes(buf[start:end])
    if zlib.crc32(payload) != header.payload_crc:
        return None
    if header.codec == CODEC_NONE:
        return payload
    try:
        raw = lz4.block.decompress(payload, uncompressed_size=header.raw_len)
    except Exception:  # lz4 raises LZ4BlockError, but be strict about containing anything
        return None
    if len(raw) != header.raw_len:
        return None
    return raw


def align(n: int) -> int:
    """Round ``n`` up to the block alignment."""
    return (n + BLOCK_ALIGN - 1) & ~(BLOCK_ALIGN - 1)
