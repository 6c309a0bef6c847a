"""The reader's fuzz harness, shared by the atheris target (``make fuzz``) and the pytest pass.

:func:`check_input` is the whole contract: feed it any bytes, and opening them as a recording
and consuming everything a user can ask for (events, counts, counters, the ``show`` summary
and JSON lines, ``recover`` for ring files) either works or raises a
:class:`~flightrec.errors.FlightrecError` subclass. Anything else escaping is a bug.

The mutators model what happens to files in the wild (truncation, flipped bits, spliced or
lost ranges, random garbage) plus what a crafted file can do that random damage cannot:
lie in a length field and still carry valid CRCs (:func:`fix_crcs`).
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import struct
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flightrec import format as fmt
from flightrec.cli.show_cmd import event_json, summary
from flightrec.dump import recover_ring
from flightrec.errors import FlightrecError
from flightrec.format import RingField
from flightrec.reader import open_recording

CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True, slots=True)
class Result:
    """What the reader returned for one input."""

    kind: str | None
    """``"dump"`` or ``"ring"``, or None when a FlightrecError refused the input."""
    seqs: frozenset[int]
    error: FlightrecError | None


def exercise(path: Path, recover_dir: Path | None = None, strict: bool = True) -> Result:
    """Open ``path`` and consume everything a user of the reader can ask for.

    With ``strict``, ``recover`` (for a ring file) must also keep every event the ring gives;
    a crafted file (lying fields with valid CRCs) may legitimately shadow some.

    Raises:
        Exception: anything that is not a FlightrecError: that is the bug being hunted.
    """
    try:
        rec = open_recording(path)
    except FlightrecError as exc:
        return Result(None, frozenset(), exc)
    try:
        seqs = {ev.seq for ev in rec.events()}
        for ev in rec.events(["note", "error"]):
            assert ev.kind in ("note", "error")
        for ev in rec.events():
            event_json(ev)
        _ = rec.event_count, rec.counters, rec.first_ts, rec.damaged
        for i in range(len(rec.blocks)):
            rec.block_events(i)
        summary(rec)
        if rec.kind == "ring" and recover_dir is not None:
            try:
                out = recover_ring(rec, recover_dir)
            except FlightrecError:
                pass
            else:
                try:
                    with open_recording(out) as again:
                        recovered = {ev.seq for ev in again.events()}
                finally:
                    out.unlink()
                assert not strict or seqs <= recovered, "recover lost events the ring file holds"
        return Result(rec.kind, frozenset(seqs), None)
    finally:
        rec.close()


_scratch: Path | None = None


def scratch_dir() -> Path:
    """A private directory (on tmpfs when there is one) for the files under test."""
    global _scratch
    if _scratch is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        _scratch = Path(tempfile.mkdtemp(prefix="flightrec-fuzz-", dir=base))
        (_scratch / "out").mkdir(mode=0o700)
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def check_input(data: bytes, name: str = "input", recover: bool = True, strict: bool = True) -> Result:
    """Write ``data`` to a file and :func:`exercise` it (see the module docstring)."""
    d = scratch_dir()
    path = d / name
    path.write_bytes(data)
    try:
        return exercise(path, d / "out" if recover else None, strict)
    finally:
        path.unlink()


# ==================================================================== watchdog


class Hang(BaseException):
    """Raised by :func:`watchdog` in the stuck code (a BaseException: ``except Exception`` can't eat it)."""


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Fail with :class:`Hang` if the block runs longer than ``seconds`` (main thread only)."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds}s: the reader hangs on this input")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ==================================================================== CRC fix-ups


def _fix_block(buf: bytearray, pos: int) -> None:
    """Recompute the CRCs of a block header at ``pos`` (and its payload, if inside the file)."""
    if pos + fmt.BLOCK_HEADER_SIZE > len(buf):
        return
    comp_len = struct.unpack_from("<I", buf, pos + 56)[0]
    start = pos + fmt.BLOCK_HEADER_SIZE
    if start + comp_len <= len(buf):
        struct.pack_into("<I", buf, pos + 60, zlib.crc32(buf[start : start + comp_len]))
    struct.pack_into("<I", buf, pos + 68, zlib.crc32(buf[pos : pos + 68]))


def fix_crcs(data: bytes) -> bytes:
    """Make every CRC in ``data`` match again, so content mutations reach the decoders.

    Random damage is almost always caught by a CRC; a crafted file is not. This turns a
    mutated file into the crafted file it resembles: block headers and payloads, the dump's
    header map and index, and the ring's metadata get valid CRCs.
    """
    buf = bytearray(data)
    pos = buf.find(fmt.BLOCK_MAGIC)
    while pos >= 0:
        _fix_block(buf, pos)
        pos = buf.find(fmt.BLOCK_MAGIC, pos + 1)
    if buf[:8] == fmt.DUMP_MAGIC and len(buf) >= fmt.DUMP_PREAMBLE.size:
        header_len = struct.unpack_from("<I", buf, 12)[0]
        end = fmt.DUMP_PREAMBLE.size + header_len
        if end <= len(buf):
            struct.pack_into("<I", buf, 16, zlib.crc32(buf[fmt.DUMP_PREAMBLE.size : end]))
        tsize = fmt.DUMP_TRAILER.size
        if len(buf) >= tsize and buf[-8:] == fmt.TRAILER_MAGIC:
            index_offset, n_blocks = struct.unpack_from("<QI", buf, len(buf) - tsize)
            index_end = index_offset + n_blocks * fmt.INDEX_ENTRY.size
            if index_end <= len(buf) - tsize:
                struct.pack_into("<I", buf, len(buf) - tsize + 12, zlib.crc32(buf[index_offset:index_end]))
    if buf[:8] == fmt.RING_MAGIC and len(buf) >= fmt.RING_HEADER_SIZE:
        meta_len = struct.unpack_from("<I", buf, RingField.META_LEN)[0]
        if meta_len <= fmt.META_MAX:
            blob = buf[RingField.META : RingField.META + meta_len]
            struct.pack_into("<I", buf, RingField.META_LEN + 4, zlib.crc32(blob))
    return bytes(buf)


# ==================================================================== seeds and layout


@dataclass(frozen=True, slots=True)
class Block:
    """One block of a seed file: where it is, its bytes, and the seqs it holds."""

    offset: int
    data: bytes
    seqs: frozenset[int]


def blocks_of(data: bytes) -> list[Block]:
    """The blocks of an intact seed file, with the seqs each one holds."""
    d = scratch_dir()
    path = d / "seed"
    path.write_bytes(data)
    try:
        with open_recording(path) as rec:
            assert rec.damaged == 0, f"seed is damaged: {rec.warnings}"
            out = []
            for i, b in enumerate(rec.blocks):
                seqs = frozenset(e.seq for e in rec.block_events(i))
                out.append(Block(b.offset, data[b.offset : b.offset + b.header.total_len], seqs))
            return out
    finally:
        path.unlink()


def corpus_seeds() -> dict[str, bytes]:
    """The checked-in corpus: ``seed-*`` files are intact recordings, the others damaged."""
    return {p.name: p.read_bytes() for p in sorted(CORPUS.iterdir()) if p.is_file()}


_LAYOUT = slice(RingField.RING_OFFSET, RingField.PIN_SIZE + 8)


def ring_layout(data: bytes) -> tuple[bytes, bool] | None:
    """The layout bytes of a ring file and whether they agree with the format and the file size."""
    if len(data) < fmt.RING_HEADER_SIZE:
        return None
    _, header_size, _ = fmt.RING_VERSION.unpack_from(data, RingField.VERSION)
    ro, rs, oo, os_, po, ps = struct.unpack_from("<6Q", data, RingField.RING_OFFSET)
    consistent = (
        header_size == fmt.RING_HEADER_SIZE
        and oo == header_size
        and po == oo + os_
        and ro == fmt.align(po + ps)
        and ro + rs == len(data)
    )
    return data[_LAYOUT] + data[8:12], consistent


def must_find(original: bytes, mutated: bytes, block: Block, new_offset: int) -> bool:
    """Whether the reader is obliged to return ``block``, now at ``new_offset`` of ``mutated``."""
    if original[:8] == fmt.RING_MAGIC:
        before, after = ring_layout(original), ring_layout(mutated)
        if after is None or before is None:
            return False
        if after[1]:
            if after[0] != before[0]:
                return False  # a different, self-consistent geometry: trusting it is legitimate
            ring_offset = struct.unpack_from("<Q", mutated, RingField.RING_OFFSET)[0]
            return new_offset % fmt.BLOCK_ALIGN == 0 and new_offset >= ring_offset
        return new_offset >= fmt.RING_HEADER_SIZE
    return True


def legit_refusal(original: bytes, mutated: bytes, error: FlightrecError) -> bool:
    """Whether refusing ``mutated`` as a whole is justified by what was changed."""
    from flightrec.errors import CorruptRecording, NotAFlightrecFile, RecordingNotFound, UnsupportedVersion

    if isinstance(error, NotAFlightrecFile):
        return mutated[:8] != original[:8]
    if isinstance(error, UnsupportedVersion):
        return mutated[8:10] != original[8:10]
    if isinstance(error, CorruptRecording):
        return True  # checked by the caller: no intact block may exist then
    return not isinstance(error, RecordingNotFound)


# ==================================================================== mutations


@dataclass(slots=True)
class Mutant:
    """A mutated file and where each original block now is (None: touched by a mutation)."""

    data: bytearray
    where: list[int | None]
    ops: list[str] = field(default_factory=list)
    """What was done, for failure messages."""
    crafted: bool = False
    """Set once a field was made to lie with valid CRCs: then the file says what it says (a
    crafted block may reorder or shadow others), and only crash-freedom is checked."""

    def _touch(self, start: int, end: int, blocks: Sequence[Block]) -> None:
        for i, off in enumerate(self.where):
            if off is not None and off < end and start < off + len(blocks[i].data):
                self.where[i] = None

    def flip(self, pos: int, bit: int, blocks: Sequence[Block]) -> None:
        """Flip one bit."""
        if not self.data:
            return
        pos %= len(self.data)
        self.data[pos] ^= 1 << (bit % 8)
        self.ops.append(f"flip({pos}, {bit % 8})")
        self._touch(pos, pos + 1, blocks)

    def overwrite(self, pos: int, chunk: bytes, blocks: Sequence[Block]) -> None:
        """Replace bytes in place (a splice of the same length)."""
        if not self.data:
            return
        pos %= len(self.data)
        chunk = chunk[: len(self.data) - pos]
        self.data[pos : pos + len(chunk)] = chunk
        self.ops.append(f"overwrite({pos}, {len(chunk)} bytes)")
        self._touch(pos, pos + len(chunk), blocks)

    def insert(self, pos: int, chunk: bytes, blocks: Sequence[Block]) -> None:
        """Insert bytes (shifts everything after ``pos``)."""
        pos %= len(self.data) + 1
        self.data[pos:pos] = chunk
        self.ops.append(f"insert({pos}, {len(chunk)} bytes)")
        for i, off in enumerate(self.where):
            if off is None:
                continue
            if off < pos < off + len(blocks[i].data):
                self.where[i] = None
            elif off >= pos:
                self.where[i] = off + len(chunk)

    def delete(self, pos: int, n: int, blocks: Sequence[Block]) -> None:
        """Cut bytes out (shifts everything after them)."""
        if not self.data:
            return
        pos %= len(self.data)
        n = min(n, len(self.data) - pos)
        del self.data[pos : pos + n]
        self.ops.append(f"delete({pos}, {n})")
        for i, off in enumerate(self.where):
            if off is None:
                continue
            if off < pos + n and pos < off + len(blocks[i].data):
                self.where[i] = None
            elif off >= pos + n:
                self.where[i] = off - n

    def truncate(self, n: int, blocks: Sequence[Block]) -> None:
        """Keep only the first ``n`` bytes."""
        n %= len(self.data) + 1
        del self.data[n:]
        self.ops.append(f"truncate({n})")
        self._touch(n, 1 << 62, blocks)

    def lie(self, field_pos: int, value: int, width: int, blocks: Sequence[Block]) -> None:
        """Set an integer field to a hostile value and make the CRCs match (a crafted file)."""
        if field_pos + width > len(self.data):
            return
        self.data[field_pos : field_pos + width] = value.to_bytes(width, "little", signed=False)
        self.crafted = True
        self.ops.append(f"lie({field_pos}, {value:#x}, {width})")
        self._touch(field_pos, field_pos + width, blocks)
        fixed = fix_crcs(bytes(self.data))
        changed = [i for i in range(len(fixed)) if fixed[i] != self.data[i]]
        for i in changed:
            self._touch(i, i + 1, blocks)
        self.data[:] = fixed


def length_fields(data: bytes, blocks: Sequence[Block]) -> list[tuple[int, int]]:
    """``(offset, width)`` of every length, count and offset field a crafted file could lie in."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        out += [(b.offset + 48, 4), (b.offset + 52, 4), (b.offset + 56, 4), (b.offset + 8, 8), (b.offset + 16, 8)]
    if data[:8] == fmt.DUMP_MAGIC:
        out += [(8, 2), (12, 4)]
        tsize = fmt.DUMP_TRAILER.size
        if len(data) >= tsize:
            t = len(data) - tsize
            out += [(t, 8), (t + 8, 4)]
            index_offset = struct.unpack_from("<Q", data, t)[0]
            out += [(index_offset + i * fmt.INDEX_ENTRY.size, 8) for i in range(len(blocks))]
    elif data[:8] == fmt.RING_MAGIC:
        out += [(off, 8) for off in range(RingField.PID, RingField.CLOSED + 8, 8)]
        out += [(RingField.META_LEN, 4), (8, 2), (10, 2)]
    return out


HOSTILE_INTS = (0, 1, 7, 8, 255, 4096, 65535, 1 << 24, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF, (1 << 63) - 1, (1 << 64) - 1)


Op = tuple[str, int, int, bytes]
"""One mutation: ``(name, a, b, chunk)``; positions are taken modulo the file's size."""
OP_NAMES = ("flip", "overwrite", "splice", "insert", "insert_copy", "delete", "truncate", "lie")


def apply_op(m: Mutant, op: Op, blocks: Sequence[Block], fields: Sequence[tuple[int, int]]) -> None:
    """Apply one mutation to ``m`` (see :data:`Op`)."""
    name, a, b, chunk = op
    size = len(m.data) or 1
    if name == "flip":
        m.flip(a, b, blocks)
    elif name == "overwrite":
        m.overwrite(a, chunk or b"\0", blocks)
    elif name == "splice":  # a range of the file copied over another one
        src = b % size
        m.overwrite(a, bytes(m.data[src : src + 1 + len(chunk) * 64]), blocks)
    elif name == "insert":
        m.insert(a, chunk or b"\0", blocks)
    elif name == "insert_copy":
        src = b % size
        m.insert(a, bytes(m.data[src : src + 1 + len(chunk) * 64]), blocks)
    elif name == "delete":
        m.delete(a, 1 + b % 4096, blocks)
    elif name == "truncate":
        m.truncate(a, blocks)
    elif name == "lie" and fields:
        pos, width = fields[a % len(fields)]
        m.lie(pos, HOSTILE_INTS[b % len(HOSTILE_INTS)] & ((1 << (8 * width)) - 1), width, blocks)


def mutant_of(data: bytes, blocks: Sequence[Block], ops: Sequence[Op]) -> Mutant:
    """``data`` with ``ops`` applied, tracking where its blocks went."""
    m = Mutant(bytearray(data), [b.offset for b in blocks])
    fields = length_fields(data, blocks)
    for op in ops:
        apply_op(m, op, blocks, fields)
    return m


def random_ops(rng: random.Random, max_ops: int = 4) -> list[Op]:
    """1..``max_ops`` random mutations, flips weighted up (the commonest damage)."""
    ops: list[Op] = []
    for _ in range(rng.randint(1, max_ops)):
        name = rng.choice(("flip", *OP_NAMES))
        chunk = rng.randbytes(rng.randint(1, 300) if name == "insert" else rng.randint(1, 64))
        ops.append((name, rng.randrange(1 << 20), rng.randrange(1 << 20), chunk))
    return ops


def random_mutant(data: bytes, blocks: Sequence[Block], rng: random.Random, max_ops: int = 4) -> Mutant:
    """Apply 1..``max_ops`` random mutations (the ``--mutate`` loop uses this)."""
    return mutant_of(data, blocks, random_ops(rng, max_ops))


def check_mutant(original: bytes, blocks: Sequence[Block], mutant: Mutant) -> Result:
    """Check a mutant: only FlightrecError escapes, and every block it left intact is read back."""
    mutated = bytes(mutant.data)
    result = check_input(mutated, strict=not mutant.crafted)
    owed = [
        b
        for b, off in zip(blocks, mutant.where, strict=True)
        if off is not None
        and not mutant.crafted
        and mutated[off : off + len(b.data)] == b.data
        and must_find(original, mutated, b, off)
    ]
    if result.error is not None:
        assert legit_refusal(original, mutated, result.error), f"{mutant.ops}: refused without cause: {result.error}"
        from flightrec.errors import CorruptRecording

        if isinstance(result.error, CorruptRecording):
            assert not owed, f"{mutant.ops}: '{result.error}' although {len(owed)} block(s) are intact"
        return result
    for b in owed:
        missing = b.seqs - result.seqs
        assert not missing, f"{mutant.ops}: intact block at {b.offset} lost {len(missing)} event(s)"
    return result
