"""The recorder: the hot path from an agent's call to bytes in the ring.

``record()`` does, in order: sample (keep or drop), redact (before any byte exists),
encode (MessagePack), and append to the ring under one lock. Every step is wrapped so that
nothing raised inside the recorder reaches the agent: failures are counted and shown in
the dump header.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from . import format as fmt
from .config import Config
from .context import _tls, current_span, thread_name
from .dump import dump_name, encode_events_block, header_safe, host_meta, redact_argv, ring_file_blocks, write_dump
from .encode import EventEncoder
from .errors import DumpFailed
from .fastpath import new_lock
from .format import RingField
from .paths import check_private_dir, create_private_file, default_ring_dir, ensure_private_dir
from .ring import RingWriter

_T = TypeVar("_T")

_WARNED_DUMP_DIRS: set[Path] = set()
"""Dump directories start() already said it cannot use (see Recorder._check_dump_dir)."""
_time_ns = time.time_ns
_span_get = current_span.get
_NO_SPAN = (None, None)
_MAX_META_PATH = 512  # longest dump directory recorded in the ring header (a page holds all the metadata)
_CACHE_GIVE_UP = 16  # misses in a row after which a kind mostly skips the payload cache (see _redacted)
_CACHE_KEY_MAX = 8192  # payloads encoded longer than this are not kept in the payload cache


def _long_text(data: dict[str, Any]) -> bool:
    """Whether a top-level value of ``data`` is a text longer than the payload cache keeps:
    encoding and hashing a 10 MB tool result only to look it up, where it can never be, cost
    milliseconds (``has_long_text`` in ``_fastpath.c`` is its twin)."""
    return any((type(v) is str or type(v) is bytes) and len(v) > _CACHE_KEY_MAX for v in data.values())


# Field names of the events flightrec itself writes (agent.py, memory.py, checkpoint/store.py).
_OWN_FIELDS = (
    "name",
    "attrs",
    "duration_ms",
    "error",
    "error_type",
    "tool",
    "call_id",
    "args",
    "attempt",
    "retry_of",
    "result",
    "result_len",
    "origin",
    "latency_ms",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "request",
    "response",
    "op",
    "item_id",
    "item_ids",
    "into",
    "tokens",
    "reason",
    "source",
    "content",
    "label",
    "root",
    "chunks",
    "new",
    "size",
    "stored",
    "inline",
    "hash",
    "data",
)


class Recorder:
    """One process's flight recorder. Create it with ``flightrec.start()``."""

    def __init__(self, config: Config) -> None:
        """Create the ring file and everything on the hot path (raises on failure)."""
        self.config = config
        self._lock = new_lock()  # taken once per event (the C one parses no arguments)
        self._dump_lock = threading.Lock()
        self._seq = 0
        self.errors = 0
        self.dump_failures = 0
        self._unsaved_failure = False
        """Whether the latest dump written or attempted failed (the ring is then kept at exit)."""
        self.dumps: list[Path] = []
        self.pinned_overflow = 0
        self._last_auto_dump = 0.0
        self.closed = False
        self.start_ns = _time_ns()
        self.error_info: dict[str, Any] | None = None
        # Imported here, not at module level: `import flightrec` must stay cheap.
        from .redact import RedactConfig, Redactor
        from .sampling import Sampler, default_sampling, parse_sampling

        self._sanitizer = Redactor(RedactConfig(enabled=False, max_str=config.max_value))
        self.redactor: Any = None
        if config.redact:
            self.redactor = Redactor(
                RedactConfig(
                    rules=frozenset(config.redact_rules) if config.redact_rules else None,
                    extra_keys=config.redact_keys,
                    allow_keys=config.redact_allow,
                    max_str=config.max_value,
                )
            )
        sampling = parse_sampling(config.sampling) if config.sampling else default_sampling()
        self.sampler = Sampler(sampling)
        self._encoder = EventEncoder(config.max_event, self._sanitizer.redact)
        self._encode_data = msgspec.msgpack.Encoder().encode  # no enc_hook: unknown types take the walk
        self._redact_cache: dict[bytes, msgspec.Raw] = {}
        self._cache_misses: dict[str, int] = {}  # kind -> consecutive misses of _redact_cache
        # Absolute, so that a chdir does not move the dumps and the path the recorder publishes
        # for a viewer's dump request means the same in the viewer's working directory.
        self.dump_dir = Path(os.path.abspath(config.resolved_dump_dir))
        self.ring_path, self.ring = self._create_ring(config)
        self._check_dump_dir()
        # Hot-path bindings (see record()).
        self._keep_fast = self.sampler.fast_path()
        self._encode = self._encoder.fast_encode
        self._max_event = config.max_event
        self._append = self.ring.append
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._flush_listeners: list[Any] = []
        self._extensions: dict[Any, Any] = {}
        self._extensions_lock = threading.Lock()
        self._in_flush_listener = False
        # Set only once a listener registers: a flush with no listener pays nothing.
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._start_housekeeper()
        from .resources import start_sampler

        self._resources = start_sampler(self)
        # The C hot path (flightrec/_fastpath.c), when built: same behaviour, half the cost.
        # It serves rec.record() from here on; the Python method below stays its fallback.
        from .fastpath import attach

        self._fast = attach(self)
        self._warm_up()
        if self._fast is not None:
            setattr(self, "record", self._fast.record)  # noqa: B010 (an instance attribute shadows the method)
            setattr(self, "record_fresh", self._fast.record_fresh)  # noqa: B010
            setattr(self, "append_locked", self._fast.append_locked)  # noqa: B010

    # ------------------------------------------------------------------ set-up
    def _warm_up(self) -> None:
        """Do at start what the agent's first calls would otherwise pay for (~0.5 ms).

        The checkpoint store and the memory tracker are made now, and the redactor has seen
        the field names of flightrec's own events (classifying a key name costs a few
        regex substitutions, once). Nothing is recorded. A failure only means the first
        calls do this work themselves.
        """
        try:
            from .checkpoint import CheckpointStore
            from .memory import MemoryTracker

            self.extension(CheckpointStore)
            self.extension(MemoryTracker)
            if self.redactor is not None:
                self.redactor.redact(dict.fromkeys(_OWN_FIELDS))
        except Exception:
            self.errors += 1

    def _check_dump_dir(self) -> None:
        """Say now, while it can still be fixed, that the dump directory will be refused: its
        dumps would fail at the crash they are for. (One that does not exist yet is made by
        the first dump: nothing is created here.)"""
        if self.dump_dir in _WARNED_DUMP_DIRS:
            return  # (said once: a forked worker inherits this, and its parent said it already)
        try:
            if os.path.lexists(self.dump_dir):
                check_private_dir(self.dump_dir)
        except Exception as exc:
            _WARNED_DUMP_DIRS.add(self.dump_dir)
            print(
                f"flightrec: dump directory {self.dump_dir} is unusable: {exc}; dumps will fail until it is "
                "fixed (the ring is then kept for `flightrec recover`)",
                file=sys.stderr,
            )

    def _create_ring(self, config: Config) -> tuple[Path, RingWriter]:
        """Create the ring in the configured directory, falling back to the default one."""
        # Absolute: the ring is removed at stop, its .fatal log written at a crash, by this
        # path; relative, a chdir of the agent's would make them miss it.
        candidates = [Path(os.path.abspath(config.resolved_ring_dir))]
        if config.dir is not None:
            candidates.append(default_ring_dir())
        last_exc: Exception | None = None
        for directory in candidates:
            try:
                ensure_private_dir(directory)
                path = directory / f"{os.getpid()}-{self.start_ns}{fmt.RING_SUFFIX}"
                fd = create_private_file(path)
            except Exception as exc:
                last_exc = exc
                continue
            try:
                ring = RingWriter(path, fd, config.size, config.block_size, config.pin_size, self._process_meta())
            except Exception as exc:
                os.close(fd)
                try:
                    os.unlink(path)
                except OSError:
                    pass
                last_exc = exc
                continue
            if directory != candidates[0]:
                print(
                    f"flightrec: ring directory {candidates[0]} unusable ({last_exc}); using {directory}",
                    file=sys.stderr,
                )
            return path, ring
        raise OSError(f"cannot create a ring file: {last_exc}")

    def _process_meta(self) -> dict[str, Any]:
        meta = host_meta()
        argv = [str(a) for a in sys.argv]
        meta["argv"] = argv
        if self.redactor is not None:
            try:  # `--api-key X` has no pattern to match: flags are judged by their names too
                meta["argv"] = redact_argv(argv, self.redactor)
            except Exception:
                self.errors += 1
                meta["argv"] = [self.redact_text(a) for a in argv]
        meta["prog"] = Path(meta["argv"][0]).name if argv and argv[0] else "python"
        meta["start_ns"] = self.start_ns
        meta["cwd"] = self.redact_text(os.getcwd())
        if self.config.env_keys:
            env = {k: os.environ[k] for k in self.config.env_keys if k in os.environ}
            # Redacted as a map, so that a secret-named variable (DB_PASSWORD) is replaced whole.
            meta["env"] = self._redact_map(env) if self.redactor is not None else env
        meta["config"] = {
            "size": self.config.size,
            "block_size": self.config.block_size,
            "redact": self.config.redact,
            "sampling": self.config.sampling or "default",
        }
        # Where this process's dumps go, so that a viewer puts the dump it recovers from this
        # ring next to them (the TUI's ctrl+r). Left out when redaction would change it (nothing
        # unredacted reaches the ring, and a redacted path leads nowhere) or it is too long for
        # the header page.
        dump_dir = str(self.dump_dir)
        if len(dump_dir) <= _MAX_META_PATH and self.redact_text(dump_dir) == dump_dir:
            meta["config"]["dump_dir"] = dump_dir
        return header_safe(meta)  # an undecodable byte in argv or cwd must not cost the ring

    def _redact_map(self, values: dict[str, str]) -> dict[str, Any]:
        try:
            out = self.redactor.redact(values)
        except Exception:
            out = None
        if not isinstance(out, dict):
            self.errors += 1
            return {k: "<unredactable>" for k in values}
        return out

    def redact_text(self, text: str) -> str:
        """Redact one string with this recording's rules (identity when redaction is off)."""
        if self.redactor is None:
            return text
        try:
            return self.redactor.redact_text(text)
        except Exception:
            self.errors += 1
            return "<unredactable>"

    # ------------------------------------------------------------------ hot path
    def record(
        self,
        kind: str,
        data: dict[str, Any],
        pin: bool = False,
        is_error: bool = False,
        fresh: bool = False,
    ) -> int | None:
        """Record one event; returns its seq, or None if it was dropped. Never raises.

        This is the hot path: its steps are inlined and its attributes bound at start.
        When the C extension is built, ``rec.record`` is its twin in C (see
        :mod:`flightrec.fastpath`), which comes back here for pinned events and errors.
        ``fresh=True`` says that ``data`` never repeats whole (see :meth:`record_fresh`).
        """
        try:
            ts = _time_ns()
            ctx = _span_get()
            span, parent = _NO_SPAN if ctx is None else ctx
            incr = None if pin or is_error else self._keep_fast(kind)
            if incr is not None:
                incr()
            else:
                if type(kind) is not str or len(kind) > KIND_MAX:
                    kind = bounded_kind(kind)  # (a kind in the fast table is a short str already)
                if not pin and not self.sampler.keep(kind, span, self._seq, is_error, ts):
                    return None  # counted by the sampler, per kind and reason
            if self.redactor is not None:
                data = self.redactor.redact(data) if fresh else self._redacted(data, kind)
            try:
                thread = _tls.name
            except AttributeError:
                thread = thread_name()
            prepared = False
            while True:
                # acquire/release bound once: half the cost of `with lock:` (~100 vs ~200 ns).
                self._acquire()
                try:
                    if self.closed:
                        return None
                    seq = self._seq + 1
                    try:
                        event: bytes | None = self._encode((seq, ts, kind, thread, span, parent, data))
                    except Exception:
                        event = self._encoder.encode(seq, ts, kind, thread, span, parent, data) if prepared else None
                    if event is not None:
                        if len(event) > self._max_event:
                            event = self._encoder.encode(seq, ts, kind, thread, span, parent, data)
                        self._seq = seq
                        self._append(event, seq, ts)
                        if pin and not self.ring.append_pinned(event):
                            self.pinned_overflow += 1
                        return seq
                finally:
                    self._release()
                # The plain encoder refused `data` (a type it does not know, a huge int...).
                # Converting it runs the agent's code (model_dump, __repr__), which may record
                # in turn: never under the lock, which is not reentrant.
                data = self._encoder.prepare(data, kind, thread)
                prepared = True
        except Exception:
            self.errors += 1
            return None

    def record_fresh(self, kind: str, data: dict[str, Any]) -> int | None:
        """Record an event whose ``data`` never repeats whole (it holds a call id or a measured
        time): redacted without consulting the payload cache of :meth:`_redacted`, where
        every lookup would miss and cost two encodings. (The walk's cache, by string value,
        still serves its strings.) Used by the agent API; never raises. The C fast path
        replaces this method as it does :meth:`record`.
        """
        return self.record(kind, data, False, False, True)

    def _redacted(self, data: dict[str, Any], kind: str) -> Any:
        """Redact ``data``, reusing the result for a payload seen before.

        Agent traffic repeats itself (the same tool result, the same prompt), and the
        redactor's walk costs microseconds while encoding costs a few hundred ns: the
        encoded payload is the cache key, the redacted payload's encoding the value
        (embedded as is with ``msgspec.Raw``). Same input, same redactor, same output, so
        a hit is exactly what the walk would have produced.

        Some kinds never repeat whole (a call id, a latency): after ``_CACHE_GIVE_UP``
        misses in a row, such a kind tries the cache only once every ``_CACHE_GIVE_UP``
        events, and saves the two encodings a miss costs. (The walk's own cache, by string
        value, still serves its strings.)
        """
        misses = self._cache_misses.get(kind, 0)
        if misses >= _CACHE_GIVE_UP and misses % _CACHE_GIVE_UP:
            self._cache_misses[kind] = misses + 1
            return self.redactor.redact(data)
        if _long_text(data):  # its key would be too long to be kept: it could never be found
            return self.redactor.redact(data)
        try:
            key = self._encode_data(data)
        except Exception:
            return self.redactor.redact(data)  # unencodable as given: the walk sanitizes it
        cache = self._redact_cache
        hit = cache.get(key)
        if hit is not None:
            if misses:
                self._cache_misses[kind] = 0
            return hit
        self._cache_misses[kind] = misses + 1
        clean = self.redactor.redact(data)
        if len(key) <= _CACHE_KEY_MAX:
            try:
                raw = msgspec.Raw(self._encode_data(clean))
            except Exception:
                return clean
            if len(cache) >= 4096:
                cache.clear()  # bounded; a full reset is cheaper than LRU bookkeeping here
            cache[key] = raw
            return raw
        return clean

    def append_locked(self, kind: str, data: dict[str, Any], span: int | None = None, parent: int | None = None) -> int:
        """Append an already-redacted event, bypassing sampling. Caller holds the lock.

        Only for flush listeners (re-emitting content that is about to be overwritten).
        """
        seq = self._seq = self._seq + 1
        ts = _time_ns()
        event = self._encoder.encode(seq, ts, kind, thread_name(), span, parent, data)
        self.ring.append(event, seq, ts)
        return seq

    def extension(self, factory: Callable[[Recorder], _T]) -> _T:
        """The object ``factory(self)`` made once for this recorder (created on first use).

        Per-recorder helpers (the checkpoint store, the memory tracker) live and die with
        their recorder; a forked child's new recorder gets new ones.
        """
        ext = self._extensions.get(factory)
        if ext is None:
            with self._extensions_lock:
                ext = self._extensions.get(factory)
                if ext is None:
                    ext = self._extensions[factory] = factory(self)
        return ext  # type: ignore[no-any-return]

    def add_flush_listener(self, listener: Any) -> None:
        """Call ``listener(at_risk)`` under the recorder lock after every block flush.

        ``at_risk`` lists the ``(first_seq, last_seq)`` of blocks the next flush may
        overwrite; the listener may call :meth:`append_locked` to re-emit what must survive.
        The event whose append flushed is in the open block already: what the listener
        appends comes after it, so every block holds the seqs its header names, in order.
        """
        self._flush_listeners.append(listener)
        self.ring.after_flush = self._after_flush

    def _after_flush(self) -> None:
        if self._in_flush_listener or not self._flush_listeners:
            return  # re-emission may itself flush; one level is enough
        at_risk = self.ring.at_risk()
        self._in_flush_listener = True
        try:
            for listener in self._flush_listeners:
                try:
                    listener(at_risk)
                except Exception:
                    self.errors += 1
        finally:
            self._in_flush_listener = False

    @property
    def dropped(self) -> int:
        """Events dropped by sampling (exact: the sampler counts them)."""
        try:
            return sum(self.sampler.counters()["dropped"].values())
        except Exception:
            return 0

    @property
    def recorded(self) -> int:
        """Events stored so far."""
        return self._seq

    # ------------------------------------------------------------------ dumps
    def counters(self) -> dict[str, Any]:
        """Counters for the dump header and the ring header."""
        out: dict[str, Any] = {
            "recorded": self._seq,
            "dropped": self.dropped,
            "errors": self.errors,
            "degraded": self._encoder.degraded
            + self._sanitizer.degraded()
            + (self.redactor.degraded() if self.redactor is not None else 0),
            "dump_failures": self.dump_failures,
            "pinned_overflow": self.pinned_overflow,
        }
        try:
            out["sampling"] = self.sampler.counters()
        except Exception:
            self.errors += 1
        return out

    def _publish_counters(self) -> None:
        ring = self.ring
        ring.set_counter(RingField.RECORDED, self._seq)
        ring.set_counter(RingField.DROPPED, self.dropped)
        ring.set_counter(RingField.ERRORS, self.errors)
        ring.set_counter(RingField.DUMP_FAILURES, self.dump_failures)
        ring.set_counter(RingField.HEARTBEAT_NS, _time_ns())

    def dump(
        self,
        reason: str = "manual",
        exc: BaseException | None = None,
        automatic: bool = False,
        path: str | os.PathLike[str] | None = None,
    ) -> Path | None:
        """Write the ring to a ``.frec`` dump and return its path.

        Returns None (and says why on stderr) when the dump was refused because another one
        is being written, rate-limited (automatic triggers only), or failed (disk full,
        unwritable directory); the ring is left intact either way. ``path``: write there
        (an existing file is kept and the dump takes ``<stem>-2.frec``; a directory gets the
        dump under its usual name) instead of into the dump directory.
        """
        if self.closed:
            return None
        if not isinstance(reason, str):
            reason = "manual" if reason is None else repr(reason)
        reason = self.redact_text(reason)  # (the header's trigger and the file's name carry it)
        if not self._dump_lock.acquire(blocking=False):
            return None  # concurrent dumps are refused, not queued
        try:
            now = time.monotonic()
            if automatic and now - self._last_auto_dump < self.config.dump_interval:
                return None
            if automatic:
                self._last_auto_dump = now
            meta = self._dump_meta(reason, exc)
            with self._lock:
                if self.closed:
                    return None
                blocks = self._snapshot_blocks()
                meta["counters"] = self.counters()
            if path is not None and os.fspath(path) == "":
                path = None
            if path is None:
                directory, name, caps = self.dump_dir, dump_name(os.getpid(), reason), True
            elif Path(path).is_dir():  # a directory: the dump goes in it, under its usual name
                directory, name, caps = Path(path), dump_name(os.getpid(), reason), False
            else:
                directory, name, caps = Path(path).parent, Path(path).name, False
            # The caps (max_dumps, max_dump_bytes) prune the dump directory only: never a
            # directory the caller named, whose older .frec files are not ours to delete.
            return self._write(directory, name, meta, blocks, publish=True, caps=caps)
        except Exception as failure:  # never let a dump take the agent down
            self._dump_failed(failure)
            return None
        finally:
            self._dump_lock.release()

    def dump_unlocked(self, reason: str) -> Path | None:
        """Write a dump read back from the ring file, without taking the recorder's locks.

        For a signal handler that interrupted the recorder itself: its lock is not reentrant,
        so :meth:`dump` would wait forever for the frame it interrupted. The ring file is
        framed for readers that never lock (checksums, seqs: what ``attach`` and ``recover``
        read), so this dump holds every event committed before the interruption.
        """
        if self.closed:
            return None
        from .reader import open_recording

        try:
            recording = open_recording(self.ring_path)
            try:
                blocks = ring_file_blocks(recording)
            finally:
                recording.close()
            meta = self._dump_meta(reason, None)
            return self._write(self.dump_dir, dump_name(os.getpid(), reason), meta, blocks, publish=False)
        except Exception as failure:  # never let a dump take the agent down
            self._dump_failed(failure)
            return None

    def _write(
        self, directory: Path, name: str, meta: dict[str, Any], blocks: list[Any], publish: bool, caps: bool = True
    ) -> Path | None:
        """Write the dump; a failure (full disk, unusable directory) is counted and said on stderr.

        ``publish``: also update the ring header's counters and last dump path (not from a
        signal handler that interrupted the recorder, which may be writing that header).
        """
        try:
            if caps:
                out = write_dump(directory, name, meta, blocks, self.config.max_dumps, self.config.max_dump_bytes)
            else:
                out = write_dump(directory, name, meta, blocks)
        except DumpFailed as failure:
            self.dump_failures += 1
            self._unsaved_failure = True
            if publish:
                self._publish_counters()
            print(f"flightrec: {failure}", file=sys.stderr)
            return None
        self.dumps.append(out)
        self._unsaved_failure = False  # this dump holds what the failed one would have (still in the ring)
        if publish:
            self.ring.set_last_dump_path(str(out))
            self._publish_counters()
        return out

    def _dump_failed(self, failure: Exception) -> None:
        """An unexpected error inside a dump: counted and said, never raised into the agent."""
        self.errors += 1
        print(f"flightrec: dump failed: {type(failure).__name__}: {failure}", file=sys.stderr)

    def _snapshot_blocks(self) -> list[bytes | memoryview]:
        """Framed blocks for a dump, oldest first: pinned, ring blocks, then the open block."""
        ring = self.ring
        blocks: list[bytes | memoryview] = []
        pinned_raw = ring.pinned_raw()
        if pinned_raw:
            from .event import decode_events

            pinned, _ = decode_events(pinned_raw)
            pb = encode_events_block(pinned, 0, fmt.FLAG_PINNED)
            if pb:
                blocks.append(pb)
        blocks.extend(ring.snapshot_blocks())
        if ring.open_count:
            blocks.append(
                fmt.encode_block(
                    ring.open_raw(),
                    block_seq=ring.block_seq,
                    first_seq=ring.open_first_seq,
                    last_seq=ring.last_seq,
                    first_ts=ring.open_first_ts,
                    last_ts=ring.last_ts,
                    count=ring.open_count,
                    flags=fmt.FLAG_OPEN,
                )
            )
        return blocks

    def _dump_meta(self, reason: str, exc: BaseException | None) -> dict[str, Any]:
        meta = self._process_meta()
        meta["dump_ns"] = _time_ns()
        meta["trigger"] = {"reason": reason, "thread": thread_name()}
        info = describe_exception(exc, self.redact_text) if exc is not None else self.error_info
        meta["exception"] = info
        if self.redactor is not None:
            try:
                meta["redaction"] = {"rules": self.redactor.rules(), "replaced": self.redactor.stats()}
            except Exception:
                self.errors += 1
        else:
            meta["redaction"] = {"rules": [], "replaced": {}, "off": True}
        return meta

    # ------------------------------------------------------------------ housekeeping
    def _start_housekeeper(self) -> None:
        t = threading.Thread(target=self._housekeep, name="flightrec-housekeeper", daemon=True)
        self._housekeeper = t
        t.start()

    def _housekeep(self) -> None:
        """Serve dump requests from viewers and publish counters, a few times a second."""
        while not self._stop.wait(0.2):
            try:
                request = self.ring.read_u64(RingField.DUMP_REQUEST)
                if request > self.ring.dump_request_seen:
                    self.ring.dump_request_seen = request
                    if self.dump(reason="request") is None:
                        # Refused or failed: the viewer must not take the previous dump's path,
                        # still in the header, for the answer to its request.
                        self.ring.set_last_dump_path("")
                    self.ring.set_counter(RingField.DUMP_ACK, request)
                self._publish_counters()
            except Exception:
                if self.closed:
                    return
                self.errors += 1

    # ------------------------------------------------------------------ shutdown
    def close(self, remove: bool | None = None) -> None:
        """Flush and close the ring; delete it unless ``keep_ring`` is configured."""
        if self.closed:
            return
        self._stop.set()
        if self._resources is not None:
            self._resources.stop()
        with self._lock:
            if self.closed:
                return
            try:
                self._publish_counters()
            except Exception:
                pass
            self.closed = True
            keep = self.config.keep_ring if remove is None else not remove
            if not keep and remove is None and self._unsaved_failure:
                # A dump that failed (unwritable directory, full disk) may have been the crash's:
                # the ring is then its only copy. (Not after a later dump succeeded: it copied
                # the ring as it was then.)
                keep = True
                ring = os.path.abspath(self.ring_path)
                note = f"a dump failed, so the ring is kept: `flightrec recover {ring}` makes it one"
                print(f"flightrec: {note}", file=sys.stderr)
            if self._fast is not None:
                self._fast.release()  # lets go of the map, so that it can be closed
            try:
                self.ring.close(remove=not keep)
            except Exception:
                pass
        t = self._housekeeper
        if t is not None and t is not threading.current_thread():
            t.join(timeout=1.0)

    def abandon_after_fork(self) -> None:
        """In a forked child: forget the parent's ring without touching it."""
        self.closed = True
        self._stop.set()


KIND_MAX = 64
"""Characters of an event's kind; a longer one is cut (its kind names a sort of event, not data)."""


def bounded_kind(kind: object) -> str:
    """``kind`` as a str of at most :data:`KIND_MAX` characters, cut with an ellipsis."""
    text = kind if isinstance(kind, str) else repr(kind)
    return text if len(text) <= KIND_MAX else text[: KIND_MAX - 1] + "…"


def describe_exception(exc: BaseException, redact: Any) -> dict[str, Any]:
    """The exception as header data: type, message and traceback, redacted."""
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        tb = "<traceback unavailable>"
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": redact(_safe_str(exc))[:8192],
        "traceback": redact(tb[-32768:]),
    }


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"
