"""Regenerate the fuzz seed corpus in tests/fuzz/corpus (run it after a format change).

    .venv/bin/python tests/fuzz/make_corpus.py

``seed-*`` files are intact recordings written by the real recorder (the pytest pass
mutates them and checks that intact blocks survive); ``crafted-*`` files are hand-built
edge cases with valid CRCs. Names avoid ``.frec``/``.ring`` (ignored by git). Keep the
whole directory well under 1 MB.
"""

from __future__ import annotations

import datetime
import os
import random
import socket
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import msgpack

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import flightrec  # noqa: E402
from flightrec import format as fmt  # noqa: E402
from flightrec.dump import build_dump  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"


def _pad(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("abcdef0123456789") for _ in range(n))


def _record(kind: str, rng: random.Random, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        flightrec.record(kind, i=i, pad=_pad(rng, rng.randint(20, 120)), ok=i % 3 == 0, ratio=i / 7)


def _start(d: Path, size: str) -> flightrec.api.Recorder:
    rec = flightrec.start(
        size=size, block_size="4KiB", dir=d, triggers=False, resources=0, redact=False, keep_ring=True
    )
    assert rec is not None
    return rec


def dump_small(d: Path) -> bytes:
    """Several blocks, a pinned event, an open block and an exception in the header."""
    rng = random.Random(1)
    rec = _start(d, "96KiB")
    flightrec.record("task", pin=True, prompt="the initial task")
    _record("note", rng, 240)
    flightrec.record("tool_call", tool="search", args={"q": "x", "n": [1, 2.5, None, True]}, result=b"\x00\x01bytes")
    flightrec.record("note", when=datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc), nan=float("nan"))
    try:
        raise ValueError("the tool returned garbage")
    except ValueError as exc:
        path = rec.dump(reason="exception", exc=exc)
    flightrec.stop()
    assert path is not None
    return path.read_bytes()


def dump_tiny(d: Path) -> bytes:
    """Three events, all in the open block."""
    rec = _start(d, "32KiB")
    for i in range(3):
        flightrec.record("note", i=i)
    path = rec.dump()
    flightrec.stop()
    assert path is not None
    return path.read_bytes()


def ring_wrapped(d: Path) -> bytes:
    """A ring that wrapped several times, with pinned events and a half-full open block."""
    rng = random.Random(2)
    rec = _start(d, "40KiB")
    flightrec.record("task", pin=True, prompt="pinned before the wrap")
    _record("note", rng, 700)
    flightrec.record("error", pin=True, message="pinned after the wrap")
    _record("note", rng, 13, start=700)
    data = rec.ring_path.read_bytes()
    flightrec.stop()
    return data


def ring_fresh(d: Path) -> bytes:
    """A ring that just started: a few events in the open block, no block written yet."""
    rec = _start(d, "32KiB")
    for i in range(5):
        flightrec.record("note", i=i, text=f"event {i}")
    data = rec.ring_path.read_bytes()
    flightrec.stop()
    return data


def crafted_ext_types() -> bytes:
    """A dump whose header and events carry msgpack extension types (must be read as data)."""
    ext = msgpack.ExtType(42, b"__import__('os').system('touch /tmp/pwned')")
    packer = msgpack.Packer()
    raw = b"".join(
        packer.pack([seq, 1_700_000_000_000_000_000 + seq, "note", "main", None, None, {"ext": ext, "seq": seq}])
        for seq in range(1, 4)
    )
    block = fmt.encode_block(
        raw,
        block_seq=1,
        first_seq=1,
        last_seq=3,
        first_ts=1_700_000_000_000_000_001,
        last_ts=1_700_000_000_000_000_003,
        count=3,
    )
    meta = {"format_version": 1, "pid": 1, "argv": ["agent"], "custom": ext}
    # Packed with msgpack by hand: the recorder's encoder (msgspec) never writes an ExtType.
    header = packer.pack(meta)
    head = fmt.DUMP_PREAMBLE.pack(fmt.DUMP_MAGIC, fmt.FORMAT_VERSION, 0, len(header), zlib.crc32(header)) + header
    index = fmt.INDEX_ENTRY.pack(len(head), 1, 1, 3, 1_700_000_000_000_000_001, 1_700_000_000_000_000_003, 3, 0)
    trailer = fmt.DUMP_TRAILER.pack(len(head) + len(block), 1, zlib.crc32(index), 0, fmt.TRAILER_MAGIC)
    return head + block + index + trailer


def crafted_deep_nesting() -> bytes:
    """A dump whose one event nests 100,000 arrays deep (valid CRCs)."""
    deep = b"\x91" * 100_000 + b"\xc0"
    raw = b"\x97\x01\x02\xa4note\xa4main\xc0\xc0\x81\xa1d" + deep
    block = fmt.encode_block(raw, block_seq=1, first_seq=1, last_seq=1, first_ts=2, last_ts=2, count=1)
    head, tail = build_dump({"format_version": 1}, [block])
    return head + block + b"".join(tail)


def crafted_lying_lengths(small: bytes) -> bytes:
    """``seed-dump-small`` with its first block claiming 64 MiB of raw bytes, CRCs made valid."""
    sys.path.insert(0, str(REPO / "tests" / "fuzz"))
    from harness import fix_crcs  # type: ignore[import-not-found]

    buf = bytearray(small)
    pos = buf.find(fmt.BLOCK_MAGIC)
    struct.pack_into("<I", buf, pos + 52, fmt.MAX_BLOCK_RAW)
    return fix_crcs(bytes(buf))


def main() -> None:
    """Write every seed into tests/fuzz/corpus."""
    CORPUS.mkdir(exist_ok=True)
    socket.gethostname = lambda: "fuzz-host"  # type: ignore[assignment]
    sys.argv = ["agent.py", "--task", "demo"]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        d = Path(tmp) / "fr"
        d.mkdir(mode=0o700)
        small = dump_small(d)
        seeds = {
            "seed-dump-small.bin": small,
            "seed-dump-tiny.bin": dump_tiny(d),
            "seed-ring-wrapped.bin": ring_wrapped(d),
            "seed-ring-fresh.bin": ring_fresh(d),
            "crafted-ext-types.bin": crafted_ext_types(),
            "crafted-deep-nesting.bin": crafted_deep_nesting(),
            "crafted-lying-lengths.bin": crafted_lying_lengths(small),
        }
    for name, data in seeds.items():
        (CORPUS / name).write_bytes(data)
        print(f"{name:28s} {len(data):>7} bytes")
    total = sum(p.stat().st_size for p in CORPUS.iterdir())
    assert total < 1_000_000, f"corpus too big: {total} bytes"
    print(f"{'total':28s} {total:>7} bytes")


if __name__ == "__main__":
    main()
