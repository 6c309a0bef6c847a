"""Checkpoint cost of a state holding one big dict (a retrieval cache, a tool-result map).

``state = {"kb": <N keys>, "turn": n}`` checkpointed in a tight loop, only ``turn`` changing
(``same``), or ``kb`` gaining a key a checkpoint (``grow``), or ``kb``'s values being small
dicts (``dictvals``). A big dict that changed a little, every checkpoint: one of its values
edited (``edit``), one of its small dict values edited two levels down (``deep``), the state
itself a big dict gaining a key (``top``), or a big dict as a list item, edited (``item``).
Prints the median time of ``flightrec.checkpoint`` (the first two checkpoints, which store
everything, left out).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/checkpoint_bigdict.py`` (``--kinds``,
``--sizes``, ``--reps``, ``--no-redact``; ``FLIGHTREC_PURE_PYTHON=1`` for the pure Python path).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

import flightrec


def run(kind: str, n: int, reps: int, redact: bool) -> float:
    """Median milliseconds of one checkpoint over ``reps`` checkpoints."""
    with tempfile.TemporaryDirectory() as d:
        flightrec.start(dir=d, size="64MiB", triggers=False, resources=0, redact=redact)
        kb: dict[str, Any]
        if kind in ("dictvals", "deep"):
            kb = {f"doc{i}": {"text": f"text {i}", "meta": {"score": i * 0.5}} for i in range(n)}
        else:
            kb = {f"doc{i}": f"text {i}" for i in range(n)}
        state: Any = {"kb": kb, "turn": 0}
        if kind == "top":
            state = kb
        elif kind == "item":
            state = [kb, {"turn": 0}]
        times = []
        for t in range(reps + 2):
            if kind == "top":
                kb[f"new{t}"] = t
            elif kind == "item":
                kb[f"doc{(t * 7919) % n}"] = f"edited {t}"
                state[1]["turn"] = t
            else:
                state["turn"] = t
            if kind == "grow":
                kb[f"new{t}"] = f"new text {t}"
            elif kind == "edit":
                kb[f"doc{(t * 7919) % n}"] = f"edited {t}"
            elif kind == "deep":
                kb[f"doc{(t * 7919) % n}"]["meta"]["score"] = -t
            t0 = time.perf_counter()
            flightrec.checkpoint(state, label=f"turn {t}")
            if t >= 2:
                times.append(time.perf_counter() - t0)
        flightrec.stop()
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--kinds",
        default="same,grow,dictvals,edit,deep,top,item",
        help="comma-separated: same, grow, dictvals, edit, deep, top, item",
    )
    parser.add_argument("--sizes", default="100,10000,100000", help="comma-separated key counts")
    parser.add_argument("--reps", type=int, default=0, help="checkpoints timed (default: by size)")
    parser.add_argument("--no-redact", action="store_true", help="redaction off")
    args = parser.parse_args()
    mode = "pure Python" if os.environ.get("FLIGHTREC_PURE_PYTHON") == "1" else "C extensions"
    for kind in args.kinds.split(","):
        for n in map(int, args.sizes.split(",")):
            reps = args.reps or (200 if n <= 100 else 40 if n <= 10_000 else 15)
            ms = run(kind, n, reps, not args.no_redact)
            print(f"{mode:12} {kind:8} {n:>7} keys: {ms:9.3f} ms (median of {reps})", flush=True)


if __name__ == "__main__":
    main()
