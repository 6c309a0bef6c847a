"""Fuzz target for the reader: coverage-guided with atheris, or a seeded mutation loop without it.

    make fuzz                                       # atheris for FUZZ_TIME seconds (default 300)
    python tests/fuzz/fuzz_reader.py build/fuzz-corpus tests/fuzz/corpus -max_total_time=60
    python tests/fuzz/fuzz_reader.py --replay crash-1234          # re-run saved inputs
    python tests/fuzz/fuzz_reader.py --mutate 20000 --seed 7      # no atheris needed

Every input is checked twice: as is, and with all of its CRCs made valid again
(:func:`harness.fix_crcs`), so the fuzzer reaches the decoders behind the checksums. A
failure is any exception other than a FlightrecError (libFuzzer saves the input as
``crash-*``); ``-timeout`` and ``-rss_limit_mb`` turn a hang or a runaway allocation into
a failure too. ``--mutate`` also checks that every block a mutation left intact is read back.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def one_input(data: bytes) -> None:
    """The libFuzzer entry point: raises on a bug, returns otherwise."""
    from tests.fuzz import harness

    harness.check_input(data, recover=False)
    fixed = harness.fix_crcs(data)
    if fixed != data:
        harness.check_input(fixed, recover=False, strict=False)


def replay(paths: list[str]) -> int:
    """Run saved inputs (files or directories) through the checks; 1 if any fails."""
    import traceback

    from tests.fuzz import harness

    failed = 0
    files = [f for p in map(Path, paths) for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
    for f in files:
        try:
            data = f.read_bytes()
            r = harness.check_input(data)
            harness.check_input(harness.fix_crcs(data), strict=False)
        except Exception:
            failed += 1
            print(f"FAIL {f}")
            traceback.print_exc()
            continue
        print(f"ok   {f}: {r.kind or type(r.error).__name__}, {len(r.seqs)} events")
    return 1 if failed else 0


def mutate(n: int, seed: int, max_seconds: float) -> int:
    """Random mutations of the intact seeds, with the full oracle; 1 if any fails."""
    import traceback

    from tests.fuzz import harness

    seeds = {k: v for k, v in harness.corpus_seeds().items() if k.startswith("seed-")}
    blocks = {k: harness.blocks_of(v) for k, v in seeds.items()}
    rng = random.Random(seed)
    names = sorted(seeds)
    start = time.monotonic()
    failed = done = 0
    for i in range(n):
        if time.monotonic() - start > max_seconds:
            break
        name = rng.choice(names)
        mutant = harness.random_mutant(seeds[name], blocks[name], rng)
        try:
            harness.check_mutant(seeds[name], blocks[name], mutant)
        except Exception:
            failed += 1
            out = Path(f"mutant-{seed}-{i}.bin")
            out.write_bytes(bytes(mutant.data))
            print(f"FAIL {name} {mutant.ops} (saved as {out})")
            traceback.print_exc()
        done += 1
    print(f"{done} mutants of {len(names)} seeds in {time.monotonic() - start:.1f}s, {failed} failure(s)")
    return 1 if failed else 0


def main() -> int:
    """Dispatch on the mode; without ``--replay``/``--mutate`` hand argv to libFuzzer."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--replay", nargs="+")
    p.add_argument("--mutate", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=float("inf"))
    args, rest = p.parse_known_args()
    if args.replay:
        return replay(args.replay)
    if args.mutate is not None:
        return mutate(args.mutate, args.seed, args.max_seconds)
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["flightrec"]):
        from tests.fuzz import harness  # noqa: F401 -- imports (and instruments) the reader

    atheris.Setup([sys.argv[0], *rest], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
