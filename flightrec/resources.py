"""Resource samples of the agent process: RSS, CPU, threads and open files.

A daemon thread wakes every ``Config.resources`` seconds (default 1; 0 turns it off), takes
one psutil ``oneshot()`` sample and records a ``"resource"`` event
``{rss, cpu_percent, threads, open_files}``. It runs outside the agent's threads and costs
about 0.1 ms per sample, so the agent pays nothing measurable at the default rate.
``open_files`` counts open file descriptors (handles on Windows), sockets included.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["ResourceSampler", "sample", "start_sampler"]


def sample(proc: Any) -> dict[str, Any]:
    """One sample of ``proc`` (a ``psutil.Process``), all read in one ``oneshot()``."""
    with proc.oneshot():
        rss = proc.memory_info().rss
        cpu = proc.cpu_percent(None)
        threads = proc.num_threads()
        if hasattr(proc, "num_fds"):
            files = proc.num_fds()
        elif hasattr(proc, "num_handles"):
            files = proc.num_handles()
        else:
            files = len(proc.open_files())
    return {"rss": rss, "cpu_percent": cpu, "threads": threads, "open_files": files}


class ResourceSampler:
    """The background sampling thread of one recorder."""

    def __init__(self, recorder: Recorder, interval: float) -> None:
        """Prepare (not start) sampling ``recorder``'s process every ``interval`` seconds."""
        self._rec = recorder
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flightrec-resources", daemon=True)
        self._imported = threading.Event()  # (tried: done or failed)
        self.samples = 0

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wait_imported(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the thread's import of psutil to end.

        Called before a fork: a fork in the middle of it leaves psutil's import lock held in
        the child, by a thread the child does not have, and the child hangs for good at its
        own import of psutil (or of any module psutil was importing).
        """
        if self._thread.ident is not None:  # started (else nothing to wait for)
            self._imported.wait(timeout)

    def _run(self) -> None:
        rec = self._rec
        try:
            try:
                import psutil
            finally:
                self._imported.set()
            proc = psutil.Process()
            proc.cpu_percent(None)  # the first reading is meaningless: prime it
        except Exception:
            rec.errors += 1
            return
        failures = 0
        while not self._stop.wait(self.interval):
            if rec.closed:
                return
            try:
                rec.record("resource", sample(proc))
                self.samples += 1
                failures = 0
            except Exception:
                rec.errors += 1
                failures += 1
                if failures >= 10:  # psutil keeps failing (a sandbox?): stop trying
                    return

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and wait for it (up to ``timeout`` seconds)."""
        self._stop.set()
        t = self._thread
        if t.is_alive() and t is not threading.current_thread():
            t.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread.is_alive()


def start_sampler(recorder: Recorder) -> ResourceSampler | None:
    """Start sampling at ``recorder.config.resources`` seconds; None when that is 0."""
    interval = recorder.config.resources
    if not interval or interval <= 0:
        return None
    sampler = ResourceSampler(recorder, interval)
    sampler.start()
    return sampler
