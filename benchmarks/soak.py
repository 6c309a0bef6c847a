"""Soak: millions of events through a ring that wraps over and over, with periodic dumps.

Run: ``.venv/bin/python benchmarks/soak.py`` (10 million events, 64 MiB ring, a dump every
million events). ``--events``, ``--size``, ``--dump-every``, ``--windows`` and
``--redact on|off`` change the run; ``--json`` prints one JSON object per window instead of
the table (tests/test_soak.py runs a short version that way).

Every window reports the recording rate (events per wall-clock second and per CPU second
of this process), the resident set size (and its anonymous part: RSS minus the mapped
ring and other shared pages), the open file descriptors, and the dumps written so far.
What must hold: after the first wrap-around, RSS and fds stay flat and the rate at the end
is the rate at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flightrec


@dataclass(frozen=True, slots=True)
class Window:
    """Measurements at the end of one window of events."""

    window: int
    events: int
    events_per_s: float
    events_per_cpu_s: float
    rss_mib: float
    anon_mib: float
    fds: int
    dumps: int
    ring_wraps: int


def _payloads(seed: int = 7) -> list[tuple[str, dict[str, object]]]:
    """A fixed pool of realistic events (tool calls, LLM calls, notes, memory), built once."""
    rng = random.Random(seed)
    words = ["order", "status", "refund", "search", "customer", "invoice", "shipping", "delay", "ticket", "retry"]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(n))

    pool: list[tuple[str, dict[str, object]]] = []
    for i in range(256):
        pool.append(("tool_call", {"tool": "search_orders", "args": {"q": text(4), "limit": 10}, "call": i}))
        pool.append(("tool_result", {"call": i, "result": text(rng.randint(5, 60)), "latency_ms": rng.random() * 50}))
        pool.append(("llm", {"model": "m-1", "prompt": text(rng.randint(20, 200)), "tokens": rng.randint(10, 4000)}))
        pool.append(("note", {"i": i, "ok": i % 3 == 0}))
        pool.append(("memory", {"op": "retain", "ids": [f"m{j}" for j in range(i % 12)], "tokens": i * 7}))
    return pool


def run_soak(
    events: int, size: str, dump_every: int, windows: int, redact: bool, workdir: Path
) -> tuple[list[Window], dict[str, object]]:
    """Record ``events`` events, dumping every ``dump_every``; measure at ``windows`` points."""
    proc = psutil.Process()
    rec = flightrec.start(
        size=size, dir=workdir, triggers=False, resources=0, redact=redact, max_dumps=3, keep_ring=False
    )
    assert rec is not None
    pool = _payloads()
    n_pool = len(pool)
    per_window = max(1, events // windows)
    record = flightrec.record
    out: list[Window] = []
    dumps = 0
    done = 0
    for w in range(1, windows + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        end = events if w == windows else done + per_window
        while done < end:
            stop = min(end, (done // dump_every + 1) * dump_every)
            for i in range(done, stop):
                kind, data = pool[i % n_pool]
                record(kind, **data)
            done = stop
            if done % dump_every == 0 and done < events and rec.dump(reason="soak") is not None:
                dumps += 1
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        mem = proc.memory_info()
        n = end - (out[-1].events if out else 0)
        out.append(
            Window(
                window=w,
                events=end,
                events_per_s=n / wall if wall else 0.0,
                events_per_cpu_s=n / cpu if cpu else 0.0,
                rss_mib=mem.rss / 2**20,
                anon_mib=(mem.rss - getattr(mem, "shared", 0)) / 2**20,
                fds=proc.num_fds(),
                dumps=dumps,
                ring_wraps=_wraps(rec),
            )
        )
    info = {
        "ring_bytes": rec.ring.size,
        "recorded": rec.recorded,
        "errors": rec.errors,
        "dump_failures": rec.dump_failures,
        "dumps_on_disk": len(list(rec.dump_dir.glob("*.frec"))),
    }
    flightrec.stop()
    return out, info


def _wraps(rec: flightrec.api.Recorder) -> int:
    """How many times the ring has been filled: blocks written over blocks it holds at once."""
    ring = rec.ring
    return (ring.block_seq - 1) // max(len(ring.blocks), 1)


def summarize(rows: list[Window]) -> dict[str, float]:
    """Start vs end: rates (median of the first and last three windows), RSS and fds after warm-up."""
    k = min(3, max(1, len(rows) // 3))
    warm = rows[min(len(rows) - 1, max(1, len(rows) // 5))]  # after the first wrap-arounds
    return {
        "rate_start": statistics.median(r.events_per_s for r in rows[:k]),
        "rate_end": statistics.median(r.events_per_s for r in rows[-k:]),
        "cpu_rate_start": statistics.median(r.events_per_cpu_s for r in rows[:k]),
        "cpu_rate_end": statistics.median(r.events_per_cpu_s for r in rows[-k:]),
        "rss_warm": warm.rss_mib,
        "rss_end": rows[-1].rss_mib,
        "anon_warm": warm.anon_mib,
        "anon_end": rows[-1].anon_mib,
        "rss_max": max(r.rss_mib for r in rows[rows.index(warm) :]),
        "fds_warm": warm.fds,
        "fds_end": rows[-1].fds,
        "fds_max": max(r.fds for r in rows[rows.index(warm) :]),
    }


def main() -> int:
    """Run the soak and print the table (or JSON lines)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--size", default="64MiB", help="ring size (default 64MiB)")
    p.add_argument("--dump-every", type=int, default=1_000_000)
    p.add_argument("--windows", type=int, default=20)
    p.add_argument("--redact", choices=["on", "off"], default="on")
    p.add_argument("--json", action="store_true", help="one JSON object per window, then the summary")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flightrec-soak-"))
    os.chmod(workdir, 0o700)
    try:
        rows, info = run_soak(args.events, args.size, args.dump_every, args.windows, args.redact == "on", workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    s = summarize(rows)
    if args.json:
        for r in rows:
            print(json.dumps(asdict(r)))
        print(json.dumps({"summary": s, **info}))
        return 0
    print(
        f"soak: {args.events:,} events, ring {args.size}, a dump every {args.dump_every:,} events, "
        f"redaction {args.redact}, python {sys.version.split()[0]}"
    )
    print(f"{'window':>6} {'events':>12} {'events/s':>10} {'ev/cpu-s':>10} {'RSS MiB':>8} {'anon MiB':>8} "
          f"{'fds':>4} {'dumps':>5} {'wraps':>5}")  # fmt: skip
    for r in rows:
        print(f"{r.window:>6} {r.events:>12,} {r.events_per_s:>10,.0f} {r.events_per_cpu_s:>10,.0f} "
              f"{r.rss_mib:>8.1f} {r.anon_mib:>8.1f} {r.fds:>4} {r.dumps:>5} {r.ring_wraps:>5}")  # fmt: skip
    print(
        f"events/s start {s['rate_start']:,.0f} -> end {s['rate_end']:,.0f} "
        f"(x{s['rate_end'] / s['rate_start']:.2f}); RSS after warm-up {s['rss_warm']:.1f} MiB -> end "
        f"{s['rss_end']:.1f} MiB (max {s['rss_max']:.1f}); anon {s['anon_warm']:.1f} -> {s['anon_end']:.1f} MiB; "
        f"fds {s['fds_warm']} -> {s['fds_end']} (max {s['fds_max']}); recorder errors {info['errors']}, "
        f"dump failures {info['dump_failures']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
