"""A short soak (benchmarks/soak.py in a fresh process): 300k events through a 1 MiB ring that
wraps dozens of times, with a dump every 50k events. Memory, file descriptors and the
recording rate stay flat. The full 10-million-event run is ``python benchmarks/soak.py``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.fixture(scope="module")
def soak() -> tuple[list[dict[str, float]], dict[str, float], dict[str, int]]:
    """Windows, summary and final counters of one short soak run."""
    args = ["--events", "300000", "--size", "1MiB", "--dump-every", "50000", "--windows", "12", "--json"]
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak.py"), *args], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    *rows, last = [json.loads(line) for line in result.stdout.splitlines()]
    summary = last.pop("summary")
    return rows, summary, last


class TestSoak:
    def test_the_ring_wraps_and_every_dump_is_written(
        self, soak: tuple[list[dict[str, float]], dict[str, float], dict[str, int]]
    ) -> None:
        """The run really wraps the ring many times and writes its five dumps without a failure or an error."""
        rows, _, info = soak
        assert rows[-1]["events"] == 300_000 and info["recorded"] == 300_000
        assert rows[-1]["ring_wraps"] >= 10
        assert rows[-1]["dumps"] == 5 and info["dump_failures"] == 0 and info["errors"] == 0
        assert info["dumps_on_disk"] <= 3, "the dump directory cap holds"

    def test_memory_and_file_descriptors_stay_flat(
        self, soak: tuple[list[dict[str, float]], dict[str, float], dict[str, int]]
    ) -> None:
        """After warm-up, RSS grows by less than 16 MiB and the open file descriptors do not grow at all."""
        _, s, _ = soak
        assert s["rss_max"] - s["rss_warm"] < 16, s
        assert s["anon_end"] - s["anon_warm"] < 16, s
        assert s["fds_max"] == s["fds_warm"] == s["fds_end"], s

    def test_the_recording_rate_stays_flat(
        self, soak: tuple[list[dict[str, float]], dict[str, float], dict[str, int]]
    ) -> None:
        """Events per CPU-second at the end are at least half those at the start (generous: noise, not drift)."""
        _, s, _ = soak
        assert s["cpu_rate_end"] >= 0.5 * s["cpu_rate_start"], s
