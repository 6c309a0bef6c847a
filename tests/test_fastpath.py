"""The optional C hot path (flightrec/_fastpath.c) against the pure-Python one.

The same recording script runs in two fresh interpreters, one with the C extension and one
with ``FLIGHTREC_PURE_PYTHON=1``; their dumps must hold the same events. The other tests
drive the C path directly: its hand-offs to Python (pinned events, errors, keywords, kinds
the sampler decides on), a closed recorder, threads, and a dump taken while it writes.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flightrec
from flightrec import fastpath

from .conftest import recorded, run_child

needs_c = pytest.mark.skipif(not fastpath.AVAILABLE, reason="the C extension is not built here")

# Every kind of event the hot path meets or hands off, in a fixed order.
SCRIPT = r"""
import json, sys, threading
import flightrec

class Opaque:
    def __repr__(self):
        return "<Opaque>"

rec = flightrec.start(size="1MiB", block_size="16KiB", triggers=False, resources=0, sampling="token=rate:3")
flightrec.record("note", text="plain", n=1, f=1.5, ok=True, none=None)
flightrec.record("note", nested={"a": [1, 2, {"b": "c"}], "t": (1, 2)}, raw=b"\x00\x01bytes")
flightrec.record("note", obj=Opaque(), big=10**30)
flightrec.record("note", huge="x" * 200_000)
flightrec.record("note", contact="mail jane.doe@example.com or call +44 20 7946 0958", api_key="sk-abc")
flightrec.record("config", pin=True, model="m")
flightrec.record("note", pin=False, spelled="out")
flightrec.record("error", message="boom")
for i in range(10):
    flightrec.record("token", i=i)  # rate-limited: the sampler decides, in Python
with flightrec.step("outer"):
    with flightrec.step("inner"):
        flightrec.record("note", inside=True)
    rec.record("direct", {"via": "Recorder.record"})
    rec.record("direct", {"is_error": "positional"}, False, True)
    rec.record("direct", {"keywords": 1}, is_error=False)
    for i in range(40):  # the payload cache: hits, and a kind that gives up on it after misses
        flightrec.record("novel", n=i, who="jane.doe@example.com")
        flightrec.record("same", who="jane.doe@example.com", nested={"ip": "10.0.0.1"})
    rec.record_fresh("direct", {"fresh": "jane.doe@example.com"})  # redacted, without the payload cache
    rec.record_fresh("token", {"fresh_and_sampled": "jane.doe@example.com"})  # via Python
    with rec._lock:  # what flush listeners and the checkpoint store append, in C or Python
        rec.append_locked("direct", {"locked": True})
        rec.append_locked("direct", {"obj": Opaque(), "big": "y" * 100_000}, 7, 3)  # sanitized, shrunk
    for turn in range(3):
        flightrec.checkpoint({"messages": [{"role": "user", "text": f"message {i} " * 30} for i in range(turn * 40)]})
    flightrec.memory.retain("doc", tokens=5, reason="kept")

@flightrec.tool
def lookup(email, n):
    return f"found {email} x{n}"

with flightrec.step("tools"):  # events the agent API records fresh (Recorder.record_fresh: no payload cache)
    lookup("jane.doe@example.com", 2)
    lookup(email="sam@example.org", n=[1, {"card": "4111 1111 1111 1111"}])
    flightrec.llm(model="m", prompt_tokens=1, completion_tokens=2, latency_ms=1.5, response="call +44 20 7946 0958")

# Tool calls the C Tool hands back to Python: a failure and its retries, tool_error(),
# a result cut to max_value, a method (self), unknown keywords.
attempts = {"n": 0}

@flightrec.tool
def flaky(q):
    attempts["n"] += 1
    if attempts["n"] < 3:
        raise TimeoutError("slow upstream")
    return "ok " + q

@flightrec.tool
def marked(q):
    flightrec.tool_error("bad answer", code=7)
    return {"error": q}

@flightrec.tool
def long(q):
    return q * 10_000

class Service:
    @flightrec.tool
    def meth(self, a):
        return a + 1

@flightrec.tool
def loose(*args, **kwargs):
    return len(args) + len(kwargs)

with flightrec.step("hand-offs"):
    for _ in range(3):
        try:
            flaky("x")
        except TimeoutError:
            pass
    lookup("again@example.com", 1)  # after a failure: the Python path
with flightrec.step("more"):
    marked("m")
    long("y")
    Service().meth(5)
    loose(1, 2, k=3)
    try:
        lookup("x@example.com", 1, unknown=2)
    except TypeError:
        pass

def worker():
    flightrec.record("note", from_thread=True)

t = threading.Thread(target=worker, name="worker-1")
t.start(); t.join()
for i in range(3000):  # several blocks: flushes and LZ4 in between
    flightrec.record("filler", i=i, text="f" * 100)
path = flightrec.dump("test")
print(json.dumps({"path": str(path), "fast": flightrec.fastpath.AVAILABLE, "counters": rec.counters()}))
flightrec.stop()
"""

_PSEUDONYM = re.compile(r"<([A-Z_0-9]+):[0-9a-f]{6}>")


def _normalized(path: str) -> list[tuple[Any, ...]]:
    """The dump's events without what differs between runs (times, durations, HMAC keys)."""
    with flightrec.load(path) as rec:
        events = list(rec.events())
        pinned = [e.seq for e in rec.pinned]
    out = []
    for e in events:
        data = json.loads(_PSEUDONYM.sub(r"<\1>", json.dumps(e.data, default=repr, sort_keys=True)))
        for timing in ("duration_ms", "latency_ms"):
            if timing in data and e.kind != "llm":
                data[timing] = "timing"
        out.append((e.seq, e.kind, e.thread, e.span, e.parent, data))
    return [*out, ("pinned", pinned)]


def _run(frdir: Path, **env: str) -> dict[str, Any]:
    proc = run_child(SCRIPT, frdir, **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@needs_c
def test_c_and_python_paths_record_the_same_events(tmp_path: Path) -> None:
    """Same script, with and without the C extension: the same events, in the same order."""
    (c_dir := tmp_path / "c").mkdir(mode=0o700)
    (py_dir := tmp_path / "py").mkdir(mode=0o700)
    c_run = _run(c_dir)
    py_run = _run(py_dir, FLIGHTREC_PURE_PYTHON="1")
    assert c_run["fast"] is True and py_run["fast"] is False
    c_events, py_events = _normalized(c_run["path"]), _normalized(py_run["path"])
    assert len(c_events) > 3000
    assert c_events == py_events
    for key in ("recorded", "dropped", "errors", "degraded"):
        assert c_run["counters"][key] == py_run["counters"][key], key
    assert c_run["counters"]["sampling"] == py_run["counters"]["sampling"]


@needs_c
@pytest.mark.parametrize("redact", [True, False])
def test_the_c_path_attaches_with_and_without_redaction(frdir: Path, redact: bool) -> None:
    """Every configuration gets the C path (a recorder that could not attach records in Python)."""
    rec = flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)
    try:
        assert rec._fast is not None
        assert type(rec.record).__name__ == "builtin_function_or_method"
        assert type(rec.append_locked).__name__ == "builtin_function_or_method"
        assert type(rec.record_fresh).__name__ == "builtin_function_or_method"
    finally:
        flightrec.stop()


@needs_c
def test_plain_tools_take_the_c_path_and_others_python(rec: Any) -> None:
    """A tool with a plain signature gets the C call path; *args tools and methods stay in Python."""
    from flightrec import agent

    @flightrec.tool
    def plain(a: int, b: str = "x") -> str:
        return b * a

    @flightrec.tool
    def star(*args: Any) -> int:
        return len(args)

    class Service:
        @flightrec.tool
        def meth(self, a: int) -> int:
            return a

    assert plain.__code__.co_name == "ctool" and agent._fastpath is not None
    assert star.__code__.co_name == "stool"
    assert Service.meth.__code__.co_name == "stool"
    assert (plain(2, b="ab"), star(1, 2), Service().meth(4)) == ("abab", 2, 4)
    with recorded() as r:
        calls = [e.data for e in r.events() if e.kind == "tool_call"]
        results = [e.data for e in r.events() if e.kind == "tool_result"]
    assert [c["args"] for c in calls] == [{"a": 2, "b": "ab"}, {"args": [1, 2]}, {"a": 4}]
    assert [x["result"] for x in results] == ["abab", 2, 4]
    assert [x["call_id"] for x in results] == [c["call_id"] for c in calls]


@needs_c
def test_a_tool_that_stops_the_recorder_or_runs_in_threads(frdir: Path) -> None:
    """The C tool path keeps its recorder for the whole call: stopping it inside is safe, threads too."""
    flightrec.start(dir=frdir, triggers=False, resources=0)

    @flightrec.tool
    def stopper(x: int) -> int:
        flightrec.stop()  # the tool_result then goes to a closed recorder: dropped, never an error
        return x * 2

    @flightrec.tool
    def work(i: int) -> str:
        return f"done {i}"

    assert stopper(21) == 42
    rec = flightrec.start(dir=frdir, triggers=False, resources=0)
    try:
        threads = [threading.Thread(target=lambda t=t: [work(t * 1000 + i) for i in range(300)]) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        with recorded() as r:
            results = [e.data for e in r.events() if e.kind == "tool_result"]
        assert sorted(x["result"] for x in results) == sorted(
            f"done {t * 1000 + i}" for t in range(4) for i in range(300)
        )
        assert len({x["call_id"] for x in results}) == 1200
        assert rec.errors == 0
    finally:
        flightrec.stop()


@needs_c
def test_the_c_path_serves_both_entry_points(rec: Any) -> None:
    """flightrec.record and Recorder.record both go through C while a recorder runs."""
    assert type(flightrec.record).__name__ == "builtin_function_or_method"
    assert type(rec.record).__name__ == "builtin_function_or_method"
    assert flightrec.record("note", a=1) == 1
    assert rec.record("note", {"b": 2}) == 2
    with recorded() as r:
        assert [(e.seq, e.data) for e in r.events()] == [(1, {"a": 1}), (2, {"b": 2})]


def test_record_fresh_redacts_like_record(rec: Any) -> None:
    """record_fresh redacts as record does, only without the payload cache, on both paths."""
    data = {"who": "jane.doe@example.com"}
    b = rec.record("note", dict(data))
    c = rec.record_fresh("token", dict(data))  # a sampled kind: decided in Python
    d = rec.record_fresh("note", dict(data))
    with recorded() as r:
        got = {e.seq: e.data["who"] for e in r.events()}
    assert got[b].startswith("<EMAIL:") and got[b] == got[c] == got[d]


def test_payloads_that_never_repeat_are_redacted_by_path_rules_too(frdir: Path) -> None:
    """Tool calls skip the payload cache; an allow-listed path (which needs the path-aware walk) still holds."""
    rec = flightrec.start(dir=frdir, triggers=False, resources=0, redact_allow=["args.contact"])
    try:

        @flightrec.tool
        def notify(contact: str, cc: str) -> str:
            return "sent"

        notify("jane.doe@example.com", "sam@example.org")
        with recorded() as r:
            (call,) = [e for e in r.events() if e.kind == "tool_call"]
        assert call.data["args"]["contact"] == "jane.doe@example.com"
        assert call.data["args"]["cc"].startswith("<EMAIL:")
        assert rec.errors == 0
    finally:
        flightrec.stop()


def test_pure_python_is_one_variable_away(frdir: Path) -> None:
    """FLIGHTREC_PURE_PYTHON=1 records without the extension, through the Python method."""
    proc = run_child(
        """
        import flightrec
        rec = flightrec.start(triggers=False)
        print(flightrec.fastpath.AVAILABLE, type(rec.record).__name__, flightrec.record("note", a=1))
        flightrec.stop()
        """,
        frdir,
        FLIGHTREC_PURE_PYTHON="1",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "method", "1"]


def test_not_recording_and_closed_recorders_record_nothing(frdir: Path) -> None:
    """No recorder: None. A stopped recorder's own record(): None, and no error counted."""
    flightrec.stop()
    assert flightrec.record("note", a=1) is None
    rec = flightrec.start(dir=frdir, size="1MiB", triggers=False, resources=0)
    assert rec is not None
    assert flightrec.record("note", a=1) == 1
    flightrec.stop()
    assert flightrec.record("note", a=2) is None
    assert rec.record("note", {"a": 3}) is None
    assert rec.errors == 0


def test_calls_the_python_method_would_refuse_are_refused(rec: Any) -> None:
    """A wrong call raises TypeError, exactly as the Python method would."""
    with pytest.raises(TypeError):
        rec.record("note")
    with pytest.raises(TypeError):
        rec.record("note", {}, no_such_argument=True)
    with pytest.raises(TypeError):
        flightrec.record("note", "positional data")  # type: ignore[misc]
    assert rec.errors == 0


def test_threads_and_dumps_while_the_hot_path_writes(frdir: Path) -> None:
    """Eight threads record while another dumps: every dump reads whole, seqs never repeat."""
    rec = flightrec.start(dir=frdir, size="2MiB", block_size="16KiB", triggers=False, resources=0)
    assert rec is not None
    stop = threading.Event()
    dumps: list[Path] = []

    def dumper() -> None:
        while not stop.is_set() and len(dumps) < 10:  # (the dump directory keeps 50 at most)
            p = flightrec.dump("test")
            if p is not None:
                dumps.append(p)

    def worker(n: int) -> None:
        for i in range(3000):
            flightrec.record("note", worker=n, i=i)

    d = threading.Thread(target=dumper)
    d.start()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    d.join()
    assert rec.recorded == 8 * 3000 and rec.errors == 0
    with recorded() as r:
        seqs = [e.seq for e in r.events()]
    assert seqs == list(range(seqs[0], 8 * 3000 + 1))
    for p in dumps:
        with flightrec.load(p) as r:
            got = [e.seq for e in r.events()]
            assert got == sorted(set(got))


_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=20)
    | st.sampled_from(["jane.doe@example.com", "+44 20 7946 0958", "sk-" + "a1" * 12, "x" * 5000])
)
_payloads = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.recursive(
        _leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ),
    max_size=6,
)


@needs_c
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(_payloads, min_size=1, max_size=5), redact=st.booleans())
def test_any_payload_is_stored_alike_by_both_paths(frdir: Path, payloads: list[dict[str, Any]], redact: bool) -> None:
    """Each payload recorded through the C method and through the Python one, side by side."""
    flightrec.stop()
    rec = flightrec.start(dir=frdir, size="1MiB", triggers=False, resources=0, redact=redact)
    assert rec is not None
    python_record = type(rec).record
    pairs = []
    for data in payloads:
        c_seq = rec.record("note", dict(data))
        py_seq = python_record(rec, "note", dict(data))
        pairs.append((c_seq, py_seq))
    with recorded() as r:
        by_seq = {e.seq: e for e in r.events()}
    flightrec.stop()
    for c_seq, py_seq in pairs:
        assert c_seq is not None and py_seq == c_seq + 1
        c_ev, py_ev = by_seq[c_seq], by_seq[py_seq]
        assert (c_ev.kind, c_ev.thread, c_ev.span) == (py_ev.kind, py_ev.thread, py_ev.span)
        assert c_ev.data == py_ev.data
    assert rec.errors == 0


@needs_c
def test_every_event_names_its_own_thread(frdir: Path) -> None:
    """The C path remembers the last thread's name: each event still gets its own thread's.

    Threads run one after another (a finished thread's state may be reused by the next), the
    main thread records between them, and two threads record at once.
    """
    flightrec.start(dir=frdir, triggers=False, resources=0)

    def worker(i: int) -> None:
        for j in range(3):
            flightrec.record("note", i=i, j=j)

    for i in range(400):
        t = threading.Thread(target=worker, args=(i,), name=f"w-{i}")
        t.start()
        t.join()
        if i % 40 == 39:  # mostly not (back to back: the next thread's state may take the same place)
            flightrec.record("note", i=-1, j=i)
    barrier = threading.Barrier(2)

    def both(name: str) -> None:
        barrier.wait()
        for j in range(200):
            flightrec.record("note", i=name, j=j)

    pair = [threading.Thread(target=both, args=(n,), name=n) for n in ("left", "right")]
    for t in pair:
        t.start()
    for t in pair:
        t.join()
    with recorded() as r:
        notes = [e for e in r.events() if e.kind == "note"]
    assert len(notes) == 400 * 3 + 10 + 400
    for e in notes:
        i = e.data["i"]
        want = "MainThread" if i == -1 else i if isinstance(i, str) else f"w-{i}"
        assert e.thread == want, (e.seq, e.data, e.thread)


@needs_c
def test_plain_payloads_are_written_as_the_event_tuple_encodes(frdir: Path) -> None:
    """A plain payload is redacted and encoded in one walk (DictWalk.encode) and written with
    the event's fields around it: byte for byte what msgspec writes for the event tuple, from
    threads whose names take each of MessagePack's str forms, inside and outside steps."""
    import msgpack
    import msgspec

    rec = flightrec.start(dir=frdir, size="1MiB", triggers=False, resources=0)
    assert rec is not None

    def work() -> None:
        rec.record("note", {"i": 1, "text": "plain words", "nested": {"x": 2.5, "n": None}})
        with flightrec.step("plan", attempt=2):
            rec.record_fresh("llm", {"model": "m", "latency_ms": 3.25, "response": "Zürich at 9"})
            rec.record("note", {"to": "jane@example.com"})  # redacted: the usual path, same framing

    for name in ["t", "n" * 31, "n" * 32, "é" * 127, "x" * 300, "y" * 600]:
        thread = threading.Thread(target=work, name=name)
        thread.start()
        thread.join()
    raw = rec.ring.open_raw()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(raw)
    events = list(unpacker)
    flightrec.stop()
    assert len(events) == 6 * 5
    assert b"".join(msgspec.msgpack.encode(tuple(e)) for e in events) == raw
    assert {e[3] for e in events} == {"t", "n" * 31, "n" * 32, "é" * 127, "x" * 300, "y" * 600}
    assert [e[6]["to"].startswith("<EMAIL:") for e in events if e[2] == "note" and "to" in e[6]] == [True] * 6


@needs_c
def test_the_payload_cache_keeps_its_schedule_beside_the_fused_walk(frdir: Path) -> None:
    """A payload that may repeat tries the payload cache first (a hit reuses a whole
    encoding); a kind whose payloads never repeat gives the cache up after 16 misses in a row
    and tries it once in 16 events after that, whichever walk runs in between: the C path
    keeps the same counts and cache entries as the Python method."""
    payloads = [{"n": 1, "text": "the same"}] * 5 + [{"step": f"step {i}", "i": i} for i in range(100)]
    seen = []
    for native in (True, False):
        flightrec.stop()
        rec = flightrec.start(dir=frdir, size="1MiB", triggers=False, resources=0)
        assert rec is not None
        record = rec.record if native else type(rec).record.__get__(rec)
        for data in payloads:
            assert record("note", dict(data)) is not None
        seen.append((dict(rec._cache_misses), len(rec._redact_cache)))
        with recorded() as r:
            seen.append([e.data for e in r.events() if e.kind == "note"])
        flightrec.stop()
    assert seen[0] == seen[2] and seen[1] == seen[3]
    misses, entries = seen[0]
    # the repeated payload's one entry, 16 misses in a row, then a try at 16, 32, ... 96 misses
    assert misses == {"note": 100} and entries == 1 + 16 + len(range(16, 100, 16))


RENAMES = r"""
import json, threading
import flightrec

flightrec.start(size="1MiB", triggers=False, resources=0)
go, done = threading.Event(), threading.Event()

def work():
    flightrec.record("note", i=1)
    threading.current_thread().name = "worker-3"  # renamed by itself
    flightrec.record("note", i=2)
    done.set()
    go.wait()
    flightrec.record("note", i=4)

t = threading.Thread(target=work, name="worker")
t.start()
done.wait()
flightrec.record("note", i=3)
t.name = 42  # renamed from another thread, between two of its events (a str, as always)
go.set()
t.join()
threading.current_thread().name = "main-renamed"
flightrec.record("note", i=5)
with flightrec.load(flightrec.dump()) as r:
    print(json.dumps([[e.data["i"], e.thread] for e in r.events() if e.kind == "note"]))
"""


@pytest.mark.parametrize("pure", ["0", "1"])
def test_a_thread_renamed_after_its_first_event_records_its_new_name(frdir: Path, pure: str) -> None:
    """`thread.name = ...` after the thread recorded, by itself or by another thread: the events
    after it carry the new name (the name cached at the first event stayed), in C and in Python."""
    result = run_child(RENAMES, frdir, FLIGHTREC_PURE_PYTHON=pure)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        [1, "worker"],
        [2, "worker-3"],
        [3, "MainThread"],
        [4, "42"],
        [5, "main-renamed"],
    ]


SUBCLASS_RENAMES = r"""
import json, threading
import flightrec

flightrec.start(size="1MiB", triggers=False, resources=0)


class Worker(threading.Thread):  # made before the first event
    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):  # its own setter, which stores the name itself
        self._name = "worker:" + str(value)


def work():
    flightrec.record("note", i=threading.current_thread().name)
    threading.current_thread().name = "a"
    flightrec.record("note", i=threading.current_thread().name)


t = Worker(target=work, name="first")
t.start()
t.join()


class Labelled(threading.Thread):  # made after it, and keeping the name elsewhere
    label = "unnamed"
    name = property(lambda self: self.label, lambda self, value: setattr(self, "label", value))


t = Labelled(target=work)
t.start()
t.join()
with flightrec.load(flightrec.dump()) as r:
    print(json.dumps([[e.data["i"], e.thread] for e in r.events() if e.kind == "note"]))
"""


@pytest.mark.parametrize("pure", ["0", "1"])
def test_a_rename_through_a_subclass_name_property_is_seen(frdir: Path, pure: str) -> None:
    """A Thread subclass with a `name` property of its own, made before or after the first
    event: a rename through it shows from the next event on (only `Thread.name`'s setter was
    watched, and the events kept the old name)."""
    result = run_child(SUBCLASS_RENAMES, frdir, FLIGHTREC_PURE_PYTHON=pure)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        ["first", "first"],
        ["worker:a", "worker:a"],
        ["unnamed", "unnamed"],
        ["a", "a"],
    ]
