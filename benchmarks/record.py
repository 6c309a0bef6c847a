"""Cost of ``flightrec.record()`` beside what a user would otherwise reach for, in one run.

Run: ``.venv/bin/python benchmarks/record.py`` (``make bench`` runs every benchmark).

Prints the median per-call cost (ns) of recording one ~300-byte event:
- ``flightrec.record`` with no recorder running (disabled) vs. calling an empty function
  of the same signature;
- ``flightrec.record`` enabled with redaction off, and with redaction on;
- the floors: ``deque.append`` of a tuple, ``msgpack.packb`` of the same event;
- the peers: a stdlib ``logging`` call into a ``MemoryHandler`` and
  ``sentry_sdk.add_breadcrumb`` (when sentry-sdk is installed);
then reading back (iterating a dump's events vs. msgpack's own ``Unpacker`` over the same
decompressed bytes) and the time to dump a full 64 MiB ring.
"""

from __future__ import annotations

import collections
import logging
import logging.handlers
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median_s, no_options, per_call_ns, table

import flightrec
from flightrec import format as fmt
from flightrec.event import iter_unpacked

EVENT = {
    "tool": "search_orders",
    "call_id": 1234,
    "args": {"query": "status of order ORD-2024-000123", "limit": 10},
    "result": "3 orders found: ORD-2024-000123 in transit, ORD-2024-000124 delivered, ORD-2024-000125 pending",
    "latency_ms": 12.5,
    "ok": True,
}


def bench_calls(tmp: Path) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []

    def empty(kind: str, /, **data: object) -> None:
        return None

    ev = EVENT
    rows.append(("empty function call", per_call_ns(lambda: empty("tool_result", **ev))))
    flightrec.stop()
    rows.append(("flightrec.record, disabled", per_call_ns(lambda: flightrec.record("tool_result", **ev))))

    dq: collections.deque[tuple[object, ...]] = collections.deque(maxlen=100_000)
    rows.append(("deque.append(tuple)", per_call_ns(lambda: dq.append(("tool_result", time.time_ns(), ev)))))
    rows.append(("msgpack.packb(event)", per_call_ns(lambda: msgpack.packb(("tool_result", 1, ev)))))

    flightrec.start(dir=tmp, redact=False, triggers=False, resources=0)
    rows.append(("flightrec.record, redact off", per_call_ns(lambda: flightrec.record("tool_result", **ev))))
    flightrec.stop()
    flightrec.start(dir=tmp, redact=True, triggers=False, resources=0)
    rows.append(("flightrec.record, redact on", per_call_ns(lambda: flightrec.record("tool_result", **ev))))
    flightrec.stop()

    logger = logging.getLogger("bench.memoryhandler")
    logger.propagate = False
    handler = logging.handlers.MemoryHandler(capacity=10**9, flushLevel=logging.CRITICAL + 1, target=None)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def log_call() -> None:
        logger.info("tool_result %s", ev)
        if len(handler.buffer) > 100_000:
            handler.buffer.clear()

    rows.append(("logging -> MemoryHandler", per_call_ns(log_call)))
    try:
        import sentry_sdk
        from sentry_sdk.transport import Transport

        class _NoTransport(Transport):
            def capture_envelope(self, envelope: object) -> None:  # never sends anything
                return None

        sentry_sdk.init(
            dsn="http://public@127.0.0.1:9/1", transport=_NoTransport, default_integrations=False, max_breadcrumbs=100
        )
        rows.append(
            (
                "sentry_sdk.add_breadcrumb",
                per_call_ns(lambda: sentry_sdk.add_breadcrumb(category="tool_result", message="tool_result", data=ev)),
            )
        )
    except ImportError:
        print("  (sentry-sdk not installed: breadcrumb row skipped)")
    return rows


def bench_read(tmp: Path) -> tuple[float, float, int]:
    """Seconds to iterate a dump's events vs. Unpacker over the same decompressed bytes."""
    flightrec.start(dir=tmp, size="64MiB", redact=False, triggers=False, resources=0)
    for i in range(200_000):
        flightrec.record("tool_result", i=i, **EVENT)
    path = flightrec.dump(path=tmp / "read.frec")
    flightrec.stop()
    assert path is not None
    rec = flightrec.load(path)
    raws = [fmt.decode_block_payload(b.header, rec._buf, b.offset) for b in rec.blocks]
    n = rec.event_count

    def unpack_all() -> None:
        for raw in raws:
            for _ in iter_unpacked(raw):  # type: ignore[arg-type]
                pass

    def events_all() -> None:
        r = flightrec.load(path)
        for _ in r.events():
            pass
        r.close()

    return median_s(events_all, 5), median_s(unpack_all, 5), n


def bench_dump(tmp: Path) -> tuple[float, int]:
    """Seconds to dump a full (wrapped) 64 MiB ring of realistic, poorly compressible events."""
    flightrec.start(dir=tmp, size="64MiB", redact=False, triggers=False, resources=0)
    rng = random.Random(7)
    words = ["order", "status", "customer", "refund", "tool", "search", "agent", "context", "memory"]
    rec = flightrec.get_recorder()
    assert rec is not None
    i = 0
    while rec.ring.block_seq < 10 or rec.ring.write_pos > rec.ring.ring_size // 2 or i < 400_000:
        flightrec.record("note", i=i, text=" ".join(rng.choice(words) + str(rng.randrange(10**6)) for _ in range(30)))
        i += 1
        if rec.ring.blocks and rec.ring.blocks[0][0] > 1 and i > 400_000:
            break
    times = []
    for k in range(5):
        t0 = time.perf_counter()
        out = flightrec.dump(path=tmp / f"full-{k}.frec")
        times.append(time.perf_counter() - t0)
        assert out is not None
        size = out.stat().st_size
        out.unlink()
    flightrec.stop()
    return statistics.median(times), size


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.chmod(tmp, 0o700)
        print(f"flightrec {flightrec.__version__}, python {sys.version.split()[0]}, event ~300 B\n")
        rows = bench_calls(tmp)
        print("median cost per call (ratios to the empty function call):")
        print(table(rows))
        by = dict(rows)
        on = by["flightrec.record, redact off"]
        print()
        print(
            f"  disabled / empty call       x{by['flightrec.record, disabled'] / by['empty function call']:.2f}"
            "   (goal: <= 2)"
        )
        print(f"  enabled (redact off)        {on:.0f} ns   (goal: <= 1200 ns)")
        print(f"  logging / flightrec         x{by['logging -> MemoryHandler'] / on:.2f}   (goal: >= 4)")
        if "sentry_sdk.add_breadcrumb" in by:
            print(f"  breadcrumb / flightrec      x{by['sentry_sdk.add_breadcrumb'] / on:.2f}   (goal: > 1)")
        ev_s, unp_s, n = bench_read(tmp)
        print(
            f"\nreading back {n} events: flightrec events() {ev_s * 1e3:.1f} ms, msgpack Unpacker "
            f"{unp_s * 1e3:.1f} ms on the same decompressed bytes: x{ev_s / unp_s:.2f} (goal: <= 1.5)"
        )
        dump_s, size = bench_dump(tmp)
        print(f"dumping a full 64 MiB ring: {dump_s * 1e3:.1f} ms (median of 5), dump {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    no_options(__doc__)
    main()
