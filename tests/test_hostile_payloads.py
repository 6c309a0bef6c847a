"""Hostile payloads handed to the recorder: the agent sees no exception and no stall, and the
event is stored degraded but honest (and counted), with redaction on (the default) and off."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec.event import Event

from .conftest import run_child
from .fuzz.harness import watchdog

STALL_S = 30.0
"""A record() call taking longer than this is a stall (generous: the slowest, 100 MB, takes ~1 s)."""


class BadRepr:
    """An object whose __repr__ and __str__ raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


class BadAttr:
    """An object whose every attribute lookup raises (so probing it for model_dump fails too)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name}")

    def __repr__(self) -> str:
        return "<BadAttr>"


class EvilDict(dict):  # type: ignore[type-arg]
    """A dict whose iteration raises."""

    def items(self) -> Any:
        raise ValueError("items() refused")

    def __iter__(self) -> Any:
        raise ValueError("iteration refused")


def _cyclic_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"name": "loop"}
    d["self"] = d
    return d


def _cyclic_list() -> list[Any]:
    lst: list[Any] = [1]
    lst.append(lst)
    return lst


def _nested(levels: int) -> list[Any]:
    root: list[Any] = []
    cur = root
    for _ in range(levels):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


def _flatten(value: Any) -> Iterator[Any]:
    """Every leaf of a stored value (iteratively: stored values are depth-limited, but be safe)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        else:
            yield v


def _mentions(value: Any, *markers: str) -> bool:
    """True if some string leaf of ``value`` contains one of ``markers``."""
    return any(isinstance(leaf, str) and any(m in leaf for m in markers) for leaf in _flatten(value))


Check = Callable[[Any], bool]
PAYLOADS: dict[str, tuple[Callable[[], Any], Check, bool]] = {
    # name: (make the value, is the stored value honest?, is it degraded?)
    "cyclic dict": (_cyclic_dict, lambda v: _mentions(v, "<cycle>") and _mentions(v, "loop"), True),
    "cyclic list": (_cyclic_list, lambda v: _mentions(v, "<cycle>") and 1 in list(_flatten(v)), True),
    "raising repr and str": (BadRepr, lambda v: _mentions(v, "unrepresentable BadRepr"), True),
    "raising getattr": (BadAttr, lambda v: v == "<BadAttr>", True),
    "huge int": (lambda: 10**100, lambda v: v == str(10**100), True),
    "int past u64": (lambda: 2**64, lambda v: v == str(2**64), True),
    "int below i64": (lambda: -(2**63) - 1, lambda v: v == str(-(2**63) - 1), True),
    "5000-digit int": (lambda: 7**6000, lambda v: isinstance(v, str) and len(v) <= 8192, True),
    "nan": (lambda: float("nan"), lambda v: isinstance(v, float) and math.isnan(v), False),
    "inf": (lambda: float("inf"), lambda v: v == math.inf, False),
    "-inf": (lambda: -math.inf, lambda v: v == -math.inf, False),
    "bytes": (lambda: b"\x00\xffbinary\x80", lambda v: v == b"\x00\xffbinary\x80", False),
    "bytearray": (lambda: bytearray(b"abc\x00"), lambda v: v == b"abc\x00", False),
    "memoryview": (lambda: memoryview(b"view of bytes"), lambda v: v == b"view of bytes", False),
    "100 MB string": (
        lambda: "x" * 100_000_000,
        lambda v: isinstance(v, str) and len(v) < 100_000 and "truncated" in v,
        True,
    ),
    "10,000-level nested list": (lambda: _nested(10_000), lambda v: _mentions(v, "<max depth>"), True),
    "non-str keys": (
        lambda: {1: "int", (1, 2): "tuple", None: "none", frozenset({3}): "frozenset", 2.5: "float"},
        lambda v: (
            isinstance(v, dict) and sorted(map(str, v.values())) == ["float", "frozenset", "int", "none", "tuple"]
        ),
        False,
    ),
    "dict whose iteration raises": (
        lambda: EvilDict(a=1),
        lambda v: v == {"a": 1} or _mentions(v, "unredactable", "unrepresentable"),
        False,
    ),
}


def _stored(path: Path) -> list[Event]:
    with flightrec.load(path) as rec:
        return list(rec.events())


@pytest.fixture(params=[True, False], ids=["redact-on", "redact-off"])
def redact(request: pytest.FixtureRequest) -> bool:
    """Every hostile payload is tried with redaction on (the default) and off."""
    return bool(request.param)


@pytest.fixture(scope="class", params=[True, False], ids=["redact-on", "redact-off"])
def hostile_dump(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, int]]:
    """A dump holding one event per hostile payload (plus a sane event after each), per redaction mode."""
    frdir = tmp_path_factory.mktemp("hostile")
    frdir.chmod(0o700)
    flightrec.stop()
    rec = flightrec.start(dir=frdir, triggers=False, resources=0, redact=request.param, size="4MiB")
    assert rec is not None
    seqs: dict[str, int] = {}
    for name, (make, _, _) in PAYLOADS.items():
        value = make()
        with watchdog(STALL_S):
            seq = flightrec.record("hostile", name=name, value=value)
        assert isinstance(seq, int), f"{name}: not recorded"
        seqs[name] = seq
        assert flightrec.record("sane", after=name) == seq + 1
    path = flightrec.dump()
    flightrec.stop()
    assert path is not None
    return path, seqs


def _data_of(events: list[Event], seq: int) -> dict[str, Any]:
    [ev] = [e for e in events if e.seq == seq]
    return ev.data


class TestHostilePayloads:
    @pytest.mark.parametrize("name", sorted(PAYLOADS))
    def test_each_payload_is_stored_honestly(self, name: str, hostile_dump: tuple[Path, dict[str, int]]) -> None:
        """Each hostile value is recorded without raising, and read back as itself or as a marked stand-in."""
        path, seqs = hostile_dump
        events = _stored(path)
        data = _data_of(events, seqs[name])
        value = data.get("value", data)
        _, honest, _ = PAYLOADS[name]
        assert honest(value), f"{name}: stored as {str(value)[:300]!r}"
        assert _data_of(events, seqs[name] + 1) == {"after": name}, "the next event is intact"

    def test_the_recording_stays_whole(self, hostile_dump: tuple[Path, dict[str, int]]) -> None:
        """After all the hostile payloads the recording has every event, gap-free, and no damaged block."""
        path, _ = hostile_dump
        with flightrec.load(path) as rec:
            got = [e.seq for e in rec.events()]
            assert rec.damaged == 0
        assert got == list(range(1, 2 * len(PAYLOADS) + 1))

    def test_degraded_payloads_are_counted(self, frdir: Path, redact: bool) -> None:
        """Every payload that could not be stored as given is counted as degraded, redaction on or off."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)
        degraded = [name for name, (_, _, is_degraded) in PAYLOADS.items() if is_degraded]
        for name in degraded:
            flightrec.record("hostile", value=PAYLOADS[name][0]())
        path = flightrec.dump()
        assert path is not None
        counters = flightrec.load(path).meta["counters"]
        assert counters["degraded"] + counters["errors"] >= len(degraded)

    def test_a_payload_the_sanitizer_gives_up_on_still_leaves_an_event(self, frdir: Path, redact: bool) -> None:
        """An event whose whole payload cannot be walked is still read back, marked degraded, not lost."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)

        class Unwalkable(dict):  # type: ignore[type-arg]
            def items(self) -> Any:
                raise ValueError("no")

            def __len__(self) -> int:
                raise ValueError("no")

        seq = flightrec.record("hostile", value=Unwalkable(a=1), ok=True)
        assert seq is not None
        events = _stored(flightrec.dump())  # type: ignore[arg-type]
        assert [e.seq for e in events] == [seq]

    def test_a_kind_that_is_not_a_string_is_kept_as_text(self, frdir: Path, redact: bool) -> None:
        """record(42) is stored; the reader shows the kind as "42" and the rest of the block is intact."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)
        flightrec.record("note", i=0)
        flightrec.record(42, i=1)  # type: ignore[arg-type]
        flightrec.record("note", i=2)
        events = _stored(flightrec.dump())  # type: ignore[arg-type]
        assert [(e.kind, e.data["i"]) for e in events] == [("note", 0), ("42", 1), ("note", 2)]


class TestTextForms:
    def test_datetimes_uuids_decimals_and_paths_read_back_as_text(self, frdir: Path, redact: bool) -> None:
        """Redaction on or off, such values are stored as their text, not their repr; an aware
        datetime, with redaction off, as msgspec encodes it itself (MessagePack's timestamp)."""
        import datetime
        import decimal
        import uuid

        when = datetime.datetime(2026, 11, 27, 12, 30, tzinfo=datetime.timezone.utc)
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)
        values = {"naive": when.replace(tzinfo=None), "day": when.date(), "id": uuid.UUID(int=5)}
        values |= {"price": decimal.Decimal("1.50"), "file": Path("/srv/a.txt"), "aware": when}
        flightrec.record("note", **values)
        seq = flightrec.checkpoint(values, label="with dates")
        path = flightrec.dump()
        flightrec.stop()
        assert path is not None
        with flightrec.load(path) as rec:
            (note,) = [e for e in rec.events() if e.kind == "note"]
            state = rec.state_at(seq)
        text = {"naive": "2026-11-27T12:30:00", "day": "2026-11-27", "id": "00000000-0000-0000-0000-000000000005"}
        text |= {"price": "1.50", "file": "/srv/a.txt", "aware": "2026-11-27T12:30:00+00:00" if redact else when}
        assert note.data == text and state == text


class TestNumpy:
    def test_arrays_and_scalars_are_stored_as_readable_values(self, frdir: Path, redact: bool) -> None:
        """numpy arrays (small, 2-D, 10 million elements) and scalars are recorded without raising."""
        np = pytest.importorskip("numpy")
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)
        values = {
            "small": np.arange(5),
            "matrix": np.ones((3, 3)),
            "huge": np.zeros(10_000_000),
            "float64": np.float64(1.5),
            "int64": np.int64(7),
            "bool": np.bool_(True),
        }
        for name, value in values.items():
            with watchdog(STALL_S):
                assert flightrec.record("array", name=name, value=value) is not None
        events = {e.data["name"]: e.data["value"] for e in _stored(flightrec.dump())}  # type: ignore[arg-type]
        assert "0, 1, 2, 3, 4" in str(events["small"])
        assert len(str(events["huge"])) < 10_000
        assert events["float64"] == 1.5 or "1.5" in str(events["float64"])
        assert events["int64"] == 7 or "7" in str(events["int64"])


class TestConcurrentMutation:
    @pytest.mark.timeout(60)
    def test_a_dict_mutated_by_another_thread_while_recorded(self, frdir: Path, redact: bool) -> None:
        """A dict (and a list) changing size in another thread while being recorded: no exception, no lost event."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact, size="8MiB")
        shared: dict[str, Any] = {f"k{i}": "v" * 50 for i in range(200)}
        items: list[int] = list(range(200))
        stop = threading.Event()

        def mutate() -> None:
            i = 0
            while not stop.is_set():
                shared[f"n{i % 500}"] = i
                shared.pop(f"n{(i + 250) % 500}", None)
                items.append(i)
                if len(items) > 400:
                    del items[:200]
                i += 1

        t = threading.Thread(target=mutate, name="mutator")
        t.start()
        seqs: list[int | None] = []
        try:
            with watchdog(STALL_S):
                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:
                    seqs.append(flightrec.record("state", shared=shared, items=items))
        finally:
            stop.set()
            t.join()
        assert seqs and all(isinstance(s, int) for s in seqs)
        stored = _stored(flightrec.dump())  # type: ignore[arg-type]
        assert stored and [e.seq for e in stored] == seqs[-len(stored) :]  # the ring may have wrapped
        for e in stored:
            assert isinstance(e.data.get("shared"), (dict, str)) and isinstance(e.data.get("items"), (list, str))


class TestReentrantRecording:
    """The agent's own code, run while its payload is converted, may record too.

    ``__repr__`` and ``model_dump()`` run when a payload holds a type the encoder does not
    know; with redaction off that conversion used to happen under the recorder's lock,
    which is not reentrant, and the agent hung forever. Run in a child with a timeout, on
    the C hot path and on the pure-Python one.
    """

    CODE = """
        import logging, flightrec, flightrec.fastpath
        flightrec.start(triggers=("logging",), resources=0, redact={redact})
        log = logging.getLogger("agent")

        class Chatty:
            def __repr__(self):
                flightrec.record("note", text="inside repr")
                return "<Chatty>"

        class Model:
            def model_dump(self):
                log.error("model_dump logs an error")  # the logging integration records it (and dumps)
                return {{"field": 1}}

        outer = flightrec.record("note", obj=Chatty(), model=Model())
        rec = flightrec.get_recorder()
        path = flightrec.dump("test")
        with flightrec.load(path) as r:
            events = [(e.seq, e.kind, e.data) for e in r.events()]
        print(flightrec.fastpath.AVAILABLE, outer, rec.errors, events)
        flightrec.stop()
    """

    @pytest.mark.parametrize("pure", ["0", "1"], ids=["c-path", "pure-python"])
    def test_a_payload_whose_conversion_records_does_not_hang(self, frdir: Path, redact: bool, pure: str) -> None:
        proc = run_child(self.CODE.format(redact=redact), frdir, timeout=30, FLIGHTREC_PURE_PYTHON=pure)
        assert proc.returncode == 0, proc.stderr
        line = proc.stdout.strip().splitlines()[-1]
        assert " 0 [" in line  # no error inside the recorder
        assert "'inside repr'" in line and "model_dump logs an error" in line
        assert "'obj': '<Chatty>'" in line and "'model': {'field': 1}" in line


class TestHostileKindsAndReasons:
    def test_a_huge_or_odd_kind_is_cut_not_stored_whole(self, recorder: Any) -> None:
        """A 100,000-character kind is cut to KIND_MAX characters; a kind that is no str becomes its repr."""
        from flightrec.recorder import KIND_MAX

        assert flightrec.record("k" * 100_000, x=1) is not None
        assert recorder.record(("t",), {"y": 2}) is not None
        assert flightrec.record("tool_call", x=3) is not None  # a usual kind, untouched
        dump = flightrec.dump()
        assert dump is not None
        with flightrec.load(dump) as rec:
            kinds = [e.kind for e in rec.events()]
        assert kinds == ["k" * (KIND_MAX - 1) + "…", "('t',)", "tool_call"]

    def test_a_dump_reason_of_none_is_a_manual_dump(self, recorder: Any) -> None:
        """dump(reason=None) writes a dump (it used to fail inside the recorder)."""
        errors = recorder.errors
        dump = flightrec.dump(reason=None)  # type: ignore[arg-type]
        assert dump is not None and dump.name.endswith("-manual.frec")
        assert recorder.errors == errors


class TestOversizedEvents:
    def test_an_oversized_event_keeps_its_content_with_redaction_on(self, frdir: Path, redact: bool) -> None:
        """An event over max_event is shrunk from its payload, never stored as the repr of an internal
        wrapper (the redaction cache hands payloads over pre-encoded, as msgspec.Raw)."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact, max_event="4KiB")
        seq = flightrec.record("note", **{f"k{i}": "word " * 100 for i in range(12)})  # ~6 KB encoded
        assert seq is not None
        (event,) = _stored(flightrec.dump())  # type: ignore[arg-type]
        assert "_truncated" in event.data
        assert "msgspec.Raw" not in str(event.data)
        assert "word word" in str(event.data)


class TestUndecodableNames:
    """A lone surrogate (a name decoded from bytes with surrogateescape) in a kind or a thread's
    name: MessagePack carries UTF-8 only, and such events used to be lost whole (counted as
    recorder errors)."""

    @pytest.mark.parametrize("pure", ["0", "1"], ids=["c-path", "pure-python"])
    def test_events_of_a_thread_with_an_undecodable_name_are_kept(self, frdir: Path, pure: str) -> None:
        proc = run_child(
            """
            import threading, flightrec
            rec = flightrec.start(triggers=False, resources=0)
            def work():
                flightrec.record("note", i=1)
                with flightrec.step("s"):
                    pass
            t = threading.Thread(target=work, name="worker-\\udcff")
            t.start(); t.join()
            flightrec.record("note\\udc80", i=2)
            with flightrec.load(flightrec.dump()) as r:
                print(rec.errors, [(e.kind, e.thread) for e in r.events()])
            """,
            frdir,
            timeout=30,
            FLIGHTREC_PURE_PYTHON=pure,
        )
        assert proc.returncode == 0, proc.stderr
        errors, events = proc.stdout.strip().splitlines()[-1].split(" ", 1)
        assert errors == "0"
        assert events == (
            "[('note', 'worker-\ufffd'), ('step_start', 'worker-\ufffd'), ('step_end', 'worker-\ufffd'),"
            " ('note\ufffd', 'MainThread')]"
        )

    def test_a_value_with_a_lone_surrogate_loses_only_that_character(self, frdir: Path, redact: bool) -> None:
        """The event keeps every field; the strings MessagePack refuses are made UTF-8-clean
        (the event is marked degraded), where the whole event used to become its repr."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)
        flightrec.record("note", good="fine", bad="caf\udce9", nested={"k\udc80": ["x\ud800y", 3]})
        path = flightrec.dump()
        flightrec.stop()
        assert path is not None
        with flightrec.load(path) as rec:
            (note,) = [e for e in rec.events() if e.kind == "note"]
        assert note.data == {
            "good": "fine",
            "bad": "caf\ufffd",
            "nested": {"k\ufffd": ["x?y", 3]},
            "_degraded": "UnicodeEncodeError",
        }


HUGE_VALUES = """
import ctypes, json, sys, flightrec
rec = flightrec.start(triggers=False, resources=0)
text = "x" * (10 << 20) + sys.argv[0][:0] + "!"  # built at run time: its hash not yet computed
blob = b"y" * (10 << 20)
flightrec.record("huge", text=text, blob=blob)
flightrec.record("small", text="short")
with flightrec.load(flightrec.dump()) as r:
    [huge] = [e.data for e in r.events() if e.kind == "huge"]
print(json.dumps({
    # CPython keeps a str's hash in the object, -1 until computed (after ob_refcnt, ob_type, length)
    "text_hashed": ctypes.c_ssize_t.from_address(id(text) + 24).value != -1,
    "payload_cache": {k: rec._cache_misses.get(k) for k in ("huge", "small")},
    "kept": [len(huge["text"]), len(huge["blob"])],
}))
"""


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reads CPython's str layout")
@pytest.mark.parametrize("pure", ["0", "1"])
def test_a_huge_value_is_cut_without_being_hashed_or_encoded_whole(frdir: Path, pure: str) -> None:
    """A 10 MB tool result is cut to max_value; it used to be hashed whole for the redactor's
    text cache and encoded whole as a payload-cache key, neither of which could ever hold
    it (milliseconds a call). Neither looks it up now; a small payload still does."""
    result = run_child(HUGE_VALUES, frdir, FLIGHTREC_PURE_PYTHON=pure)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["text_hashed"] is False
    assert facts["payload_cache"] == {"huge": None, "small": 1}
    assert facts["kept"][0] < 10 << 20 and facts["kept"][1] < 10 << 20
