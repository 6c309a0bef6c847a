"""flightrec._lock.Lock: the recorder's mutex behaves as threading.Lock, with real threads and signals."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from flightrec import fastpath
from flightrec.fastpath import new_lock

native = fastpath._native_lock
pytestmark = pytest.mark.skipif(native is None, reason="the C lock is not built here")


def test_the_recorder_takes_the_c_lock_when_built(tmp_path):
    import flightrec

    rec = flightrec.start(dir=tmp_path)
    try:
        assert type(rec._lock) is native.Lock
        assert type(new_lock()) is native.Lock
        flightrec.record("note", text="one")  # the C hot path takes and releases it
        assert not rec._lock.locked()
    finally:
        flightrec.stop()


def test_acquire_release_locked_and_context_manager():
    lock = native.Lock()
    assert not lock.locked() and "unlocked" in repr(lock)
    assert lock.acquire() is True
    assert lock.locked() and "locked" in repr(lock)
    assert lock.acquire(False) is False  # not reentrant
    assert lock.acquire(blocking=False) is False
    lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_release_of_an_unlocked_lock_raises_as_threading_lock_does():
    lock = native.Lock()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    with pytest.raises(RuntimeError):
        threading.Lock().release()


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((False, 1.0), {}, ValueError),  # a timeout on a non-blocking call
        ((), {"timeout": -5}, ValueError),
        ((), {"timeout": "soon"}, TypeError),
        ((), {"wait": True}, TypeError),
        ((True,), {"blocking": True}, TypeError),
        ((True, 1, 2), {}, TypeError),
        ((), {"timeout": 1e300}, OverflowError),
    ],
)
def test_bad_arguments_are_refused_like_threading_lock(args, kwargs, error):
    lock = native.Lock()
    with pytest.raises(error):
        lock.acquire(*args, **kwargs)
    with pytest.raises(error):
        threading.Lock().acquire(*args, **kwargs)
    assert not lock.locked()


def test_lock_takes_no_arguments():
    with pytest.raises(TypeError):
        native.Lock(1)


def test_a_timed_acquire_waits_for_the_holder_then_gives_up():
    lock = native.Lock()
    lock.acquire()
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.1) is False
    assert time.monotonic() - t0 >= 0.09
    # released by another thread while we wait: taken before the timeout
    threading.Timer(0.05, lock.release).start()
    assert lock.acquire(timeout=10) is True
    lock.release()


def test_threads_exclude_each_other():
    lock = native.Lock()
    counter = {"n": 0, "inside": 0, "overlap": 0}

    def work() -> None:
        for _ in range(2000):
            with lock:
                counter["inside"] += 1
                if counter["inside"] > 1:
                    counter["overlap"] += 1
                n = counter["n"]
                if n % 97 == 0:
                    time.sleep(0)  # let go of the GIL inside, now and then
                counter["n"] = n + 1
                counter["inside"] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter["n"] == 8000 and counter["overlap"] == 0


def test_a_signal_handler_runs_during_a_blocking_wait_and_may_raise():
    lock = native.Lock()
    lock.acquire()
    seen = []

    class Alarm(Exception):
        pass

    def handler(signum, frame):
        seen.append(signum)
        raise Alarm

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.monotonic()
        with pytest.raises(Alarm):
            lock.acquire()  # held by us: only the handler can end this wait
        assert seen == [signal.SIGALRM] and time.monotonic() - t0 < 5
        # a handler that returns: the wait goes on, within its timeout
        signal.signal(signal.SIGALRM, lambda s, f: seen.append(s))
        signal.setitimer(signal.ITIMER_REAL, 0.03)
        t0 = time.monotonic()
        assert lock.acquire(timeout=0.2) is False
        assert len(seen) == 2 and 0.15 <= time.monotonic() - t0 < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        lock.release()


def test_pure_python_gets_threading_lock(monkeypatch):
    monkeypatch.setattr(fastpath, "_native_lock", None)
    assert type(new_lock()) is type(threading.Lock())
