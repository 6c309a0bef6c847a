"""Print what a recording says about the agent: steps, tools, memory, checkpoints, findings.

Run: ``.venv/bin/python examples/inspect_dump.py FILE.frec`` (a dump or a ring file).
"""

from __future__ import annotations

import sys
from collections import defaultdict

import flightrec


def main(path: str) -> int:
    """Print the analysis of one recording."""
    with flightrec.load(path) as rec:
        print("steps:")
        children = defaultdict(list)
        known = {s.id for s in rec.steps()}
        for s in rec.steps():
            children[s.parent if s.parent in known else None].append(s)

        def show(parent: int | None, depth: int) -> None:
            for s in children[parent]:
                status = f"error: {s.error}" if s.error else ("running" if s.end_seq is None else "ok")
                print(f"  {'  ' * depth}{s.name} {s.attrs or ''} {s.duration_ms or '-'} ms  {status}")
                show(s.id, depth + 1)

        show(None, 0)

        print("tools:")
        for name, st in rec.tool_stats().items():
            print(
                f"  {name:16} calls {st.calls:3}  errors {st.errors:3} {st.errors_by_origin}  "
                f"p50 {st.p50_ms} ms  p95 {st.p95_ms} ms"
            )

        timeline = rec.memory_timeline()
        if timeline:
            peak = max(timeline, key=lambda c: c.used / c.limit if c.limit else 0)
            print(f"context: {len(timeline)} samples, peak {peak.used}/{peak.limit} tokens at seq {peak.seq}")
            live = rec.live_items(timeline[-1].seq)
            print(f"  live at the last sample: {', '.join(map(str, live)) or 'nothing'}")

        cps = rec.checkpoints()
        print(f"checkpoints: {len(cps)} ({sum(c.rebuildable for c in cps)} rebuildable)")
        if len(cps) >= 2:
            print(f"  diff {cps[-2].label!r} -> {cps[-1].label!r}:")
            for d in rec.diff(cps[-2].seq, cps[-1].seq)[:10]:
                print(f"    {d}")

        print("findings:")
        for f in rec.findings():
            print(f"  [{f.severity}] {f}  (events {f.seqs})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        sys.exit(main(sys.argv[1]))
    except flightrec.FlightrecError as exc:  # a missing, foreign, damaged or too new file: say so, no traceback
        print(f"inspect_dump: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
