"""The resource sampler: samples at the configured rate, off when asked, stopped with the recorder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

import flightrec
from flightrec.resources import sample


def sampler_threads() -> list[threading.Thread]:
    """Live resource-sampler threads of this process."""
    return [t for t in threading.enumerate() if t.name == "flightrec-resources"]


class TestSampler:
    """A background thread records one psutil sample per interval."""

    def test_samples_at_a_fast_rate(self, frdir: Path) -> None:
        """At 0.05 s the sampler records a sample about every 50 ms, with sane values."""
        rec = flightrec.start(dir=frdir, triggers=False, resources=0.05, sampling="resource=all")
        assert rec is not None
        time.sleep(0.6)
        path = flightrec.dump("res")
        flightrec.stop()
        assert path is not None
        with flightrec.load(path) as r:
            samples = r.resources()
        assert 5 <= len(samples) <= 14
        s = samples[-1]
        assert s.rss > 1_000_000
        assert s.threads >= 2
        assert s.open_files >= 1
        assert s.cpu_percent >= 0
        assert [x.seq for x in samples] == sorted({x.seq for x in samples})

    def test_stops_with_the_recorder(self, frdir: Path) -> None:
        """stop() ends the sampling thread; no sample is recorded after it."""
        rec = flightrec.start(dir=frdir, triggers=False, resources=0.02, sampling="resource=all")
        assert rec is not None
        time.sleep(0.1)
        assert sampler_threads()
        flightrec.stop()
        assert sampler_threads() == []
        recorded = rec.recorded
        time.sleep(0.1)
        assert recorded == rec.recorded

    def test_zero_turns_it_off(self, frdir: Path) -> None:
        """resources=0 starts no thread and records no sample."""
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None
        assert sampler_threads() == []
        time.sleep(0.05)
        path = flightrec.dump("none")
        assert path is not None
        with flightrec.load(path) as r:
            assert r.resources() == []

    def test_one_sample(self) -> None:
        """sample() reads the four fields from one psutil oneshot."""
        proc = psutil.Process()
        got = sample(proc)
        assert {"rss", "cpu_percent", "threads", "open_files"} == set(got)
        assert all(isinstance(v, (int, float)) for v in got.values())
