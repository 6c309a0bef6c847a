"""The reader against hostile files: fuzzed, crafted, huge-claiming, and built to be slow.

The bounded pass here runs in CI (``make test``); ``make fuzz`` runs the coverage-guided
target in tests/fuzz for as long as it is given. Both share tests/fuzz/harness.py, whose
contract is: only FlightrecError subclasses escape, every intact block is read back, no
input hangs, allocates without bound or costs more than linear time.
"""

from __future__ import annotations

import gc
import os
import random
import resource
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightrec import format as fmt
from flightrec.cli.show_cmd import event_json, summary
from flightrec.dump import build_dump
from flightrec.errors import FlightrecError
from flightrec.format import RingField
from flightrec.reader import open_recording

from .conftest import REPO
from .fuzz import harness

EXAMPLES = int(os.environ.get("FLIGHTREC_FUZZ_EXAMPLES", "150"))
"""Examples per property in the CI pass; ``make fuzz`` (without atheris) raises it."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the watchdog bounds each input instead: wall-clock deadlines flake on busy CI
    derandomize="FLIGHTREC_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
PER_INPUT_S = 10.0
"""No single input may take longer than this (generous: the slowest seen is ~50 ms)."""

SEEDS = {k: v for k, v in harness.corpus_seeds().items() if k.startswith("seed-")}
BLOCKS = {k: harness.blocks_of(v) for k, v in SEEDS.items()}

OPS = st.tuples(
    st.sampled_from(harness.OP_NAMES),
    st.integers(0, 1 << 20),
    st.integers(0, 1 << 20),
    st.binary(min_size=1, max_size=64),
)


def _check(data: bytes, strict: bool = True) -> harness.Result:
    with harness.watchdog(PER_INPUT_S):
        return harness.check_input(data, strict=strict)


@pytest.fixture
def small_dump() -> bytes:
    """The corpus's multi-block dump (pinned block, open block, exception in the header)."""
    return SEEDS["seed-dump-small.bin"]


@pytest.fixture
def wrapped_ring() -> bytes:
    """The corpus's ring file that wrapped several times."""
    return SEEDS["seed-ring-wrapped.bin"]


def _write(tmp_path: Path, data: bytes, name: str = "x.bin") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


class TestCorpus:
    def test_corpus_is_small_and_its_seeds_read_clean(self) -> None:
        """The checked-in corpus stays under 1 MB and every seed reads back undamaged."""
        total = sum(p.stat().st_size for p in harness.CORPUS.iterdir())
        assert total < 1_000_000
        assert {"seed-dump-small.bin", "seed-dump-tiny.bin", "seed-ring-wrapped.bin", "seed-ring-fresh.bin"} <= set(
            SEEDS
        )
        for name, data in SEEDS.items():
            result = _check(data)
            assert result.error is None and result.seqs, name
        assert len(BLOCKS["seed-ring-wrapped.bin"]) >= 4

    def test_every_corpus_file_passes_the_harness(self) -> None:
        """Crafted corpus files (ext types, deep nesting, lying lengths) only ever raise FlightrecError."""
        for data in harness.corpus_seeds().values():
            _check(data)
            _check(harness.fix_crcs(data), strict=False)


class TestMutatedFiles:
    @FUZZ
    @given(seed=st.sampled_from(sorted(SEEDS)), ops=st.lists(OPS, min_size=1, max_size=4))
    def test_mutations_keep_every_intact_block(self, seed: str, ops: list[harness.Op]) -> None:
        """Truncated, bit-flipped, spliced and cut files: only FlightrecError escapes, intact blocks survive."""
        mutant = harness.mutant_of(SEEDS[seed], BLOCKS[seed], ops)
        with harness.watchdog(PER_INPUT_S):
            harness.check_mutant(SEEDS[seed], BLOCKS[seed], mutant)

    @FUZZ
    @given(seed=st.sampled_from(sorted(SEEDS)), ops=st.lists(OPS, min_size=1, max_size=4))
    def test_mutations_with_valid_crcs_are_contained(self, seed: str, ops: list[harness.Op]) -> None:
        """The same mutations with every CRC made valid (a crafted file) reach the decoders and stay contained."""
        mutant = harness.mutant_of(SEEDS[seed], BLOCKS[seed], ops)
        _check(harness.fix_crcs(bytes(mutant.data)), strict=False)

    @FUZZ
    @given(
        prefix=st.sampled_from([b"", fmt.DUMP_MAGIC + b"\x01\x00", fmt.RING_MAGIC + b"\x01\x00\x00\x10", b"FRB1"]),
        body=st.binary(max_size=6000),
    )
    def test_random_bytes_are_refused_cleanly(self, prefix: bytes, body: bytes) -> None:
        """Random bytes, bare or behind a valid magic, are refused or read, never crash the reader."""
        _check(prefix + body)
        _check(harness.fix_crcs(prefix + body), strict=False)

    def test_truncating_a_ring_at_any_block_boundary_keeps_the_blocks_before(self, wrapped_ring: bytes) -> None:
        """A ring file cut short is salvaged by scanning: every block before the cut is read back."""
        blocks = BLOCKS["seed-ring-wrapped.bin"]
        for b in blocks:
            for cut in (b.offset + len(b.data), b.offset + len(b.data) + 7, b.offset + 5):
                mutant = harness.mutant_of(wrapped_ring, blocks, [("truncate", cut, 0, b"")])
                harness.check_mutant(wrapped_ring, blocks, mutant)


class TestRegressions:
    def test_a_torn_block_does_not_hide_the_next_one(self, small_dump: bytes, tmp_path: Path) -> None:
        """Bytes cut from the end of one block leave the next block readable (the scan no longer jumps over it)."""
        blocks = BLOCKS["seed-dump-small.bin"]
        b = blocks[3]
        end = b.offset + len(b.data)
        data = small_dump[: end - 5] + small_dump[end:]
        with open_recording(_write(tmp_path, data)) as rec:
            seqs = {e.seq for e in rec.events()}
            assert rec.damaged >= 1
        for other in blocks[4:]:
            assert other.seqs <= seqs

    def test_a_spliced_header_copy_does_not_shadow_the_real_block(self, small_dump: bytes, tmp_path: Path) -> None:
        """A torn copy of a block's header earlier in the file loses against the intact block of the same seq."""
        blocks = BLOCKS["seed-dump-small.bin"]
        victim, target = blocks[1], blocks[5]
        data = bytearray(small_dump)
        data[victim.offset : victim.offset + 200] = target.data[:200]  # header of 5, start of its payload
        data = bytearray(data[:-40])  # and lose the index, so blocks are found by scanning
        with open_recording(_write(tmp_path, bytes(data))) as rec:
            seqs = {e.seq for e in rec.events()}
        assert target.seqs <= seqs

    def test_a_ring_with_a_damaged_layout_is_scanned_whole(self, wrapped_ring: bytes, tmp_path: Path) -> None:
        """A ring header whose layout disagrees with the file is salvaged by scanning, with a warning."""
        data = bytearray(wrapped_ring)
        struct.pack_into("<Q", data, RingField.RING_SIZE, 12345)
        with open_recording(_write(tmp_path, bytes(data))) as rec:
            seqs = {e.seq for e in rec.events()}
            assert any("scanning the whole file" in w for w in rec.warnings)
        for b in BLOCKS["seed-ring-wrapped.bin"]:
            assert b.seqs <= seqs

    def test_absurd_nesting_is_a_damaged_block_not_a_recursion_error(self, tmp_path: Path) -> None:
        """An event nested 100,000 deep (valid CRCs) is skipped as damaged; show and JSON still work."""
        data = harness.corpus_seeds()["crafted-deep-nesting.bin"]
        with open_recording(_write(tmp_path, data)) as rec:
            assert list(rec.events()) == []
            assert rec.damaged == 1
            summary(rec)

    def test_event_fields_of_the_wrong_type_are_not_events(self, tmp_path: Path) -> None:
        """A decoded item whose seq is a string (a torn or crafted event) is dropped, so sorting never fails."""
        packer = msgpack.Packer()
        good = [packer.pack([i, 10 + i, "note", "main", None, None, {"i": i}]) for i in (1, 2)]
        bad = packer.pack(["3", 13, "note", "main", None, None, {}])
        raw = good[0] + good[1] + bad
        block = fmt.encode_block(raw, block_seq=1, first_seq=1, last_seq=3, first_ts=11, last_ts=13, count=3)
        head, tail = build_dump({"format_version": 1}, [block])
        with open_recording(_write(tmp_path, head + block + b"".join(tail))) as rec:
            assert [e.seq for e in rec.events()] == [1, 2]
            assert rec.damaged == 1

    def test_header_fields_of_the_wrong_type_are_dropped(self, tmp_path: Path) -> None:
        """A crafted header with a list for `trigger` and text for `dump_ns` still gives a summary, with a warning."""
        raw = msgpack.packb([1, 10, "note", "main", None, None, {"v": {(1, 2): "tuple key", 3: "int key"}}])
        block = fmt.encode_block(raw, block_seq=1, first_seq=1, last_seq=1, first_ts=10, last_ts=10, count=1)
        meta = {"trigger": ["x"], "dump_ns": "soon", "exception": 5, "counters": {"recorded": "many"}, "argv": 3}
        header = msgpack.packb(meta)
        head = fmt.DUMP_PREAMBLE.pack(fmt.DUMP_MAGIC, 1, 0, len(header), zlib.crc32(header)) + header
        index = fmt.INDEX_ENTRY.pack(len(head), 1, 1, 1, 10, 10, 1, 0)
        trailer = fmt.DUMP_TRAILER.pack(len(head) + len(block), 1, zlib.crc32(index), 0, fmt.TRAILER_MAGIC)
        with open_recording(_write(tmp_path, head + block + index + trailer)) as rec:
            assert "trigger" not in rec.meta and "dump_ns" not in rec.meta and "argv" not in rec.meta
            assert rec.counters == {}
            assert any("wrong type" in w for w in rec.warnings)
            assert "pid ?" in summary(rec)
            [ev] = list(rec.events())
            assert '"(1, 2)": "tuple key"' in event_json(ev)

    def test_version_zero_is_damage_not_a_refusal(self, small_dump: bytes, tmp_path: Path) -> None:
        """A dump whose version field was zeroed is salvaged with a warning (only newer versions are refused)."""
        data = bytearray(small_dump)
        struct.pack_into("<H", data, 8, 0)
        with open_recording(_write(tmp_path, bytes(data))) as rec:
            assert len(list(rec.events())) == len(list(open_recording(_write(tmp_path, small_dump, "y")).events()))
            assert any("version 0" in w for w in rec.warnings)


def _lying_variants(data: bytes, blocks: list[harness.Block]) -> Iterator[tuple[str, bytes]]:
    """The file with each length/count/offset field in turn set to a hostile value, CRCs made valid.

    Block fields are taken from the first two blocks only: the others are the same fields again.
    """
    for pos, width in harness.length_fields(data, blocks[:2]):
        for value in (0xFFFFFFFF, (1 << 64) - 1, fmt.MAX_BLOCK_RAW):
            m = harness.mutant_of(data, blocks, [])
            m.lie(pos, value & ((1 << (8 * width)) - 1), width, blocks)
            yield f"field {pos} ({width} bytes) = {value:#x}", bytes(m.data)


class TestBoundedMemory:
    @pytest.mark.parametrize("seed", ["seed-dump-small.bin", "seed-ring-wrapped.bin"])
    def test_lying_lengths_allocate_in_proportion_to_the_file(self, seed: str) -> None:
        """No length, count or offset field (CRCs valid) makes the reader allocate more than ~256x the file."""
        data = SEEDS[seed]
        bound = 256 * len(data) + 16 * 2**20
        tracemalloc.start()
        try:
            for label, variant in _lying_variants(data, BLOCKS[seed]):
                tracemalloc.reset_peak()
                with harness.watchdog(PER_INPUT_S):
                    harness.check_input(variant, recover=False, strict=False)
                peak = tracemalloc.get_traced_memory()[1]
                assert peak < bound, f"{label}: peak {peak / 2**20:.1f} MiB"
        finally:
            tracemalloc.stop()

    def test_a_block_claiming_64_mib_from_a_few_bytes_is_refused_before_allocating(self, small_dump: bytes) -> None:
        """A raw length LZ4 could never produce from the payload is rejected from the header alone."""
        blocks = BLOCKS["seed-dump-small.bin"]
        m = harness.mutant_of(small_dump, blocks, [])
        m.lie(blocks[0].offset + 52, fmt.MAX_BLOCK_RAW, 4, blocks)
        tracemalloc.start()
        try:
            result = harness.check_input(bytes(m.data), recover=False, strict=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 2**20
        assert blocks[1].seqs <= result.seqs

    @pytest.mark.timeout(120)
    def test_no_mutant_allocates_past_an_address_space_limit(self) -> None:
        """Hundreds of random mutants read in a child whose address space is capped: no MemoryError, no failure."""
        limit = 1024 * 2**20

        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [sys.executable, str(REPO / "tests" / "fuzz" / "fuzz_reader.py"), "--mutate", "400", "--seed", "3"],
            preexec_fn=cap,
            env=env,
            capture_output=True,
            text=True,
            timeout=110,
            cwd=harness.scratch_dir(),
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "0 failure(s)" in result.stdout


# ==================================================================== linear time


class _Counter:
    """Counts the work the reader does: header parses, CRC'd bytes, decoded bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ops = 0
        crc, parse = zlib.crc32, fmt.parse_block_header
        import flightrec.event
        import flightrec.reader

        decode = flightrec.event.decode_events

        def counting_crc(data: bytes, value: int = 0) -> int:
            self.ops += len(data)
            return crc(data, value)

        def counting_parse(buf: bytes, offset: int = 0) -> fmt.BlockHeader | None:
            self.ops += fmt.BLOCK_HEADER_SIZE
            return parse(buf, offset)

        def counting_decode(raw: bytes, *args: object, **kwargs: object) -> object:
            self.ops += len(raw)
            return decode(raw, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(zlib, "crc32", counting_crc)
        monkeypatch.setattr(fmt, "parse_block_header", counting_parse)
        monkeypatch.setattr(flightrec.reader, "decode_events", counting_decode)


def _consume(path: Path) -> None:
    try:
        with open_recording(path) as rec:
            for _ in rec.events():
                pass
    except FlightrecError:
        pass


def _dump_around(body: bytes) -> bytes:
    """A dump preamble and empty header, then ``body`` (no index: the reader must scan)."""
    header = msgpack.packb({})
    return fmt.DUMP_PREAMBLE.pack(fmt.DUMP_MAGIC, 1, 0, len(header), zlib.crc32(header)) + header + body


def _magic_carpet(n: int) -> bytes:
    """A block magic every 8 bytes, none with a valid header."""
    return _dump_around((fmt.BLOCK_MAGIC + b"\0\0\0\0") * (n // 8))


def _nested_liars(n: int) -> bytes:
    """Valid headers every 80 bytes, each claiming a payload up to the end of the file, none intact."""
    body = bytearray(n)
    for pos in range(0, n - fmt.BLOCK_HEADER_SIZE, 80):
        comp = min(n - pos - fmt.BLOCK_HEADER_SIZE, fmt.MAX_BLOCK_RAW)
        head = fmt.BLOCK_HEADER.pack(fmt.BLOCK_MAGIC, 1, fmt.CODEC_NONE, 0, 1 + pos, 1, 1, 0, 0, 0, comp, comp, 0, 0, 0)
        body[pos : pos + fmt.BLOCK_HEADER_SIZE] = head[:68] + struct.pack("<I", zlib.crc32(head[:68]))
    return _dump_around(bytes(body))


def _overlapping_index(n: int) -> bytes:
    """One raw block full of nested valid headers, and an index listing every one of them."""
    inner = bytearray(n)
    offsets = []
    for pos in range(0, n - 200, 80):
        comp = n - pos - fmt.BLOCK_HEADER_SIZE
        head = fmt.BLOCK_HEADER.pack(fmt.BLOCK_MAGIC, 1, fmt.CODEC_NONE, 0, 2 + pos, 1, 1, 0, 0, 0, comp, comp, 0, 0, 0)
        inner[pos : pos + fmt.BLOCK_HEADER_SIZE] = head[:68] + struct.pack("<I", zlib.crc32(head[:68]))
        offsets.append(pos)
    header = msgpack.packb({})
    head = fmt.DUMP_PREAMBLE.pack(fmt.DUMP_MAGIC, 1, 0, len(header), zlib.crc32(header)) + header
    index = b"".join(fmt.INDEX_ENTRY.pack(len(head) + o, 2 + o, 1, 1, 0, 0, 0, 0) for o in offsets)
    trailer = fmt.DUMP_TRAILER.pack(len(head) + n, len(offsets), zlib.crc32(index), 0, fmt.TRAILER_MAGIC)
    return head + bytes(inner) + index + trailer


def _many_blocks(n: int) -> bytes:
    """A plain dump of many small valid blocks."""
    rng = random.Random(0)
    blocks, seq, total = [], 1, 0
    while total < n:
        raw = b"".join(
            msgpack.packb([seq + i, seq + i, "note", "main", None, None, {"pad": rng.randbytes(40)}]) for i in range(8)
        )
        blocks.append(fmt.encode_block(raw, block_seq=len(blocks) + 1, first_seq=seq, last_seq=seq + 7,
                                       first_ts=seq, last_ts=seq + 7, count=8))  # fmt: skip
        total += len(blocks[-1])
        seq += 8
    head, tail = build_dump({}, blocks)
    return head + b"".join(blocks) + b"".join(tail)


def _deep_events(n: int) -> bytes:
    """Blocks whose events each nest 900 lists deep (just under the decoders' limits), stored raw.

    Raw, because LZ4 would shrink them ~100x and the test would measure decompressed size.
    """
    ev = msgpack.packb([1, 1, "note", "main", None, None, {"d": 0}])[:-1] + b"\x91" * 900 + b"\xc0"
    blocks, seq, total = [], 1, 0
    while total < n:
        raw = b"".join(ev[:1] + msgpack.packb(seq + i) + ev[2:] for i in range(20))
        blocks.append(fmt.encode_block(raw, block_seq=len(blocks) + 1, first_seq=seq, last_seq=seq + 19,
                                       first_ts=1, last_ts=1, count=20, compress=False))  # fmt: skip
        total += len(blocks[-1])
        seq += 20
    head, tail = build_dump({}, blocks)
    return head + b"".join(blocks) + b"".join(tail)


def _big_ring(n: int) -> bytes:
    """A ring file of about ``n`` bytes whose ring area is full of valid blocks."""
    rng = random.Random(1)
    ring_offset = 3 * fmt.RING_HEADER_SIZE
    buf = bytearray(ring_offset + n)
    buf[:8] = fmt.RING_MAGIC
    fmt.RING_VERSION.pack_into(buf, RingField.VERSION, 1, fmt.RING_HEADER_SIZE, 0)
    for off, value in ((RingField.RING_OFFSET, ring_offset), (RingField.RING_SIZE, n),
                       (RingField.OPEN_OFFSET, 4096), (RingField.OPEN_SIZE, 4096),
                       (RingField.PIN_OFFSET, 8192), (RingField.PIN_SIZE, 4096)):  # fmt: skip
        struct.pack_into("<Q", buf, off, value)
    pos, seq, bseq = ring_offset, 1, 1
    while True:
        raw = b"".join(
            msgpack.packb([seq + i, seq + i, "note", "main", None, None, {"pad": rng.randbytes(60)}]) for i in range(16)
        )
        block = fmt.encode_block(raw, block_seq=bseq, first_seq=seq, last_seq=seq + 15, first_ts=seq,
                                 last_ts=seq + 15, count=16)  # fmt: skip
        if pos + len(block) > len(buf):
            break
        buf[pos : pos + len(block)] = block
        pos, seq, bseq = fmt.align(pos + len(block)), seq + 16, bseq + 1
    return bytes(buf)


FAMILIES: dict[str, Callable[[int], bytes]] = {
    "magic carpet": _magic_carpet,
    "nested liars": _nested_liars,
    "overlapping index": _overlapping_index,
    "many blocks": _many_blocks,
    "deep events": _deep_events,
    "big ring": _big_ring,
}


class TestLinearTime:
    @pytest.mark.parametrize("family", sorted(FAMILIES))
    def test_four_times_the_input_costs_about_four_times_the_work(
        self, family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Adversarial inputs of size N and 4N: the reader's work (and, generously, its CPU time) grows ~4x."""
        n = 200_000 if family == "deep events" else 400_000  # deep events decode slowly per byte
        small, large = _write(tmp_path, FAMILIES[family](n), "s"), _write(tmp_path, FAMILIES[family](4 * n), "l")

        def cpu(path: Path) -> float:
            # Best of 3, with the cyclic GC paused: its passes cost in proportion to the whole
            # test session's heap, not to the input, and would only add noise.
            best = float("inf")
            gc.collect()
            gc.disable()
            try:
                for _ in range(3):
                    t = time.process_time()
                    with harness.watchdog(PER_INPUT_S):
                        _consume(path)
                    best = min(best, time.process_time() - t)
            finally:
                gc.enable()
            return max(best, 1e-3)

        time_ratio = cpu(large) / cpu(small)
        counter = _Counter(monkeypatch)
        _consume(small)
        small_ops, counter.ops = counter.ops, 0
        _consume(large)
        ratio = counter.ops / max(small_ops, 1)
        assert ratio < 6, f"{family}: 4x the input cost {ratio:.1f}x the operations ({small_ops} -> {counter.ops})"
        assert time_ratio < 12, f"{family}: 4x the input cost {time_ratio:.1f}x the CPU time"
