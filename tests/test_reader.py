"""The reader on damaged input: truncation at any byte, flipped bytes, foreign files, new versions."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

import flightrec
from flightrec import format as fmt
from flightrec.errors import FlightrecError, NotAFlightrecFile, RecordingNotFound, UnsupportedVersion
from flightrec.reader import open_recording


@pytest.fixture
def small_dump(frdir: Path) -> Path:
    """A dump of a few blocks: incompressible enough to make several blocks."""
    flightrec.start(size="256KiB", block_size="4KiB", dir=frdir, triggers=False, resources=0, redact=False)
    rng = random.Random(5)
    for i in range(300):
        flightrec.record("note", i=i, pad="".join(rng.choice("abcdef0123456789") for _ in range(60)))
    path = flightrec.dump()
    flightrec.stop()
    assert path is not None
    return path


def _block_spans(data: bytes) -> list[tuple[int, int, list[int]]]:
    """(start, end, seqs) of every block in an intact dump."""
    rec = open_recording_bytes(data)
    spans = []
    for i, b in enumerate(rec.blocks):
        spans.append((b.offset, b.offset + b.header.total_len, [e.seq for e in rec.block_events(i)]))
    return spans


def open_recording_bytes(data: bytes, tmp: Path | None = None) -> flightrec.Recording:
    import tempfile

    d = Path(tempfile.mkdtemp())
    p = d / "x.frec"
    p.write_bytes(data)
    return open_recording(p)


class TestTruncation:
    def test_truncating_at_any_byte_salvages_every_whole_block(self, small_dump: Path, tmp_path: Path) -> None:
        """Cut the dump at every byte: only FlightrecError escapes, and every block before the cut is read."""
        data = small_dump.read_bytes()
        spans = _block_spans(data)
        assert len(spans) >= 4
        target = tmp_path / "cut.frec"
        step = max(1, len(data) // 1500)
        for cut in [*list(range(0, len(data), step)), len(data) - 1]:
            target.write_bytes(data[:cut])
            try:
                rec = open_recording(target)
                got = {e.seq for e in rec.events()}
                rec.close()
            except FlightrecError:
                got = set()
            whole = [seqs for start, end, seqs in spans if end <= cut]
            for seqs in whole:
                assert set(seqs) <= got, f"cut at {cut}: an intact block was lost"


class TestBitFlips:
    def test_flipped_bytes_never_raise_and_intact_blocks_survive(self, small_dump: Path, tmp_path: Path) -> None:
        """Flip random bytes: only FlightrecError escapes, and blocks not hit are still read."""
        data = small_dump.read_bytes()
        spans = _block_spans(data)
        rng = random.Random(11)
        target = tmp_path / "flip.frec"
        for _ in range(400):
            buf = bytearray(data)
            hits = [rng.randrange(len(buf)) for _ in range(rng.choice([1, 1, 2, 5]))]
            for h in hits:
                buf[h] ^= 1 << rng.randrange(8)
            target.write_bytes(bytes(buf))
            try:
                rec = open_recording(target)
                got = {e.seq for e in rec.events()}
                rec.close()
            except FlightrecError:
                continue
            for start, end, seqs in spans:
                if not any(start <= h < end for h in hits):
                    assert set(seqs) <= got, f"flips at {hits}: an intact block was lost"

    def test_lying_length_does_not_allocate(self, small_dump: Path, tmp_path: Path) -> None:
        """A block header claiming 4 GB is rejected by its CRC and size bound, not allocated."""
        data = bytearray(small_dump.read_bytes())
        rec = open_recording(small_dump)
        off = rec.blocks[0].offset
        struct.pack_into("<I", data, off + 48, 0xFFFFFFF0)  # raw_len
        target = tmp_path / "lie.frec"
        target.write_bytes(bytes(data))
        rec2 = open_recording(target)
        assert len(list(rec2.events())) > 0
        assert rec2.damaged >= 1


class TestWrongFiles:
    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing path raises RecordingNotFound."""
        with pytest.raises(RecordingNotFound):
            open_recording(tmp_path / "nope.frec")

    def test_directory(self, tmp_path: Path) -> None:
        """A directory raises NotAFlightrecFile."""
        with pytest.raises(NotAFlightrecFile, match="directory"):
            open_recording(tmp_path)

    def test_empty_and_foreign_files(self, tmp_path: Path) -> None:
        """An empty file and a text file raise NotAFlightrecFile."""
        empty = tmp_path / "empty.frec"
        empty.write_bytes(b"")
        with pytest.raises(NotAFlightrecFile, match="empty"):
            open_recording(empty)
        text = tmp_path / "notes.txt"
        text.write_text("hello, I am not a recording\n")
        with pytest.raises(NotAFlightrecFile):
            open_recording(text)

    def test_newer_version(self, small_dump: Path, tmp_path: Path) -> None:
        """A dump from a newer format version raises UnsupportedVersion naming both versions."""
        data = bytearray(small_dump.read_bytes())
        struct.pack_into("<H", data, 8, fmt.FORMAT_VERSION + 1)
        newer = tmp_path / "newer.frec"
        newer.write_bytes(bytes(data))
        with pytest.raises(UnsupportedVersion, match=f"version {fmt.FORMAT_VERSION + 1}"):
            open_recording(newer)
