"""Keep/drop decisions for recorded events, made on the hot path before encoding.

The recorder asks :meth:`Sampler.keep` about every event. The policy is chosen per
event *kind* (see :class:`KindPolicy`):

* ``all`` -- keep everything (the default, and the only path that must be tiny);
* ``fraction`` -- keep a deterministic share of *steps*: all events of a step share
  one decision, so a sampled step is always complete;
* ``rate`` -- a per-kind token bucket capping events per second;
* ``off`` -- drop everything.

Regardless of policy, errors are always kept, every later event of a step that has
had an error is kept, and for ``keep_all_after_error_s`` seconds after any error
everything is kept, so the moments after a failure are never sampled away. (Each
event is decided as it is recorded: what was dropped before an error stays dropped.)

Specs for :func:`parse_sampling` (e.g. from an environment variable) look like::

    token=rate:20,resource=off,note=fraction:0.1,*=all,@error_window=5,@seed=7

Items are ``KIND=POLICY`` where POLICY is ``all``, ``off``, ``fraction:F`` or
``rate:R`` / ``rate:R:BURST``; ``*`` sets the policy of kinds not listed, and the
``@error_window`` (seconds) and ``@seed`` (integer) items set the global options.
"""

from __future__ import annotations

import itertools
import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Literal

__all__ = [
    "KindPolicy",
    "Mode",
    "Sampler",
    "SamplingConfig",
    "default_sampling",
    "format_sampling",
    "parse_sampling",
]

Mode = Literal["all", "fraction", "rate", "off"]
_MODES: tuple[str, ...] = ("all", "fraction", "rate", "off")

_MASK64 = (1 << 64) - 1
# Sentinel for "no error window open": below any plausible clock reading.
_NEVER_NS = -(1 << 63)


def _check_number(name: str, value: object) -> float:
    """Return ``value`` as a finite float, or raise.

    Raises:
        TypeError: If ``value`` is not an int or float (bools are rejected too).
        ValueError: If ``value`` is NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class KindPolicy:
    """How events of one kind are sampled.

    Attributes:
        mode: ``"all"`` keeps everything, ``"fraction"`` keeps a deterministic share
            of steps, ``"rate"`` caps events per second with a token bucket and
            ``"off"`` drops everything (errors are still kept).
        fraction: For ``"fraction"``: the share of steps to keep, in ``[0, 1]``. The
            decision hashes the step id (or the event's sequence number when the
            event belongs to no step). Ignored by other modes.
        rate: For ``"rate"``: maximum sustained events per second (``> 0``).
            Ignored by other modes.
        burst: For ``"rate"``: bucket size, i.e. how many events may pass at once
            after a quiet period; ``None`` means ``max(1, rate)``. Must be ``>= 1``.
    """

    mode: Mode = "all"
    fraction: float = 1.0
    rate: float = 0.0
    burst: float | None = None

    def __post_init__(self) -> None:
        """Validate the fields so a bad policy fails at construction, not per event."""
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}; got {self.mode!r}")
        fraction = _check_number("fraction", self.fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be within [0, 1], got {self.fraction!r}")
        rate = _check_number("rate", self.rate)
        if rate < 0.0:
            raise ValueError(f"rate must be >= 0, got {self.rate!r}")
        if self.mode == "rate" and rate == 0.0:
            raise ValueError("rate must be > 0 for mode 'rate' (use mode 'off' to drop all)")
        if self.burst is not None and _check_number("burst", self.burst) < 1.0:
            # A bucket that can never hold a whole token would never let anything pass.
            raise ValueError(f"burst must be >= 1, got {self.burst!r}")

    @property
    def effective_burst(self) -> float:
        """The token bucket size actually used: ``burst`` or ``max(1, rate)``."""
        return float(self.burst) if self.burst is not None else max(1.0, float(self.rate))


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    """Sampling policies for a :class:`Sampler`.

    Attributes:
        policies: Policy per event kind; kinds not listed use ``default``. Stored
            as a read-only copy, so later changes to the caller's mapping have no
            effect.
        default: Policy for kinds missing from ``policies``.
        keep_all_after_error_s: After an error, keep every event for this many
            seconds (``0`` disables the window; errors and their steps are still
            kept).
        seed: Mixed into the per-step hash used by ``"fraction"`` policies; samplers
            with the same seed make the same per-step decisions.
    """

    policies: Mapping[str, KindPolicy] = field(default_factory=dict)
    default: KindPolicy = KindPolicy()
    keep_all_after_error_s: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate the fields and freeze ``policies``."""
        policies = dict(self.policies)
        for kind, policy in policies.items():
            if not isinstance(kind, str) or not kind:
                raise ValueError(f"policy kinds must be non-empty strings, got {kind!r}")
            if not isinstance(policy, KindPolicy):
                raise TypeError(f"policy for {kind!r} must be a KindPolicy, got {policy!r}")
        if not isinstance(self.default, KindPolicy):
            raise TypeError(f"default must be a KindPolicy, got {self.default!r}")
        window = _check_number("keep_all_after_error_s", self.keep_all_after_error_s)
        if window < 0.0:
            raise ValueError(f"keep_all_after_error_s must be >= 0, got {window!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        # Frozen dataclass: bypass __setattr__ once to store the read-only copy.
        object.__setattr__(self, "policies", MappingProxyType(policies))


_KEEP_ALL = KindPolicy()

# Kinds that are kept whole by default: they are rare and carry the story of a run.
_DEFAULT_KEEP_ALL_KINDS: tuple[str, ...] = (
    "tool_call",
    "tool_result",
    "memory",
    "checkpoint",
    "chunk",
    "error",
    "step_start",
    "step_end",
    "llm",
    "log",
)


def default_sampling() -> SamplingConfig:
    """Return the default sampling configuration.

    Structural and rare kinds (tool calls and results, memory, checkpoints, chunks,
    errors, step boundaries, LLM calls and logs) are kept in full; streamed tokens
    are capped at 50 per second and resource samples at 2 per second; every other
    kind is kept. Errors open a 5 second keep-everything window.

    Returns:
        A new :class:`SamplingConfig`.
    """
    policies: dict[str, KindPolicy] = dict.fromkeys(_DEFAULT_KEEP_ALL_KINDS, _KEEP_ALL)
    policies["token"] = KindPolicy("rate", rate=50.0)
    policies["resource"] = KindPolicy("rate", rate=2.0)
    return SamplingConfig(policies=policies)


# --------------------------------------------------------------------------- spec


def _spec_number(item: str, what: str, text: str) -> float:
    """Parse a finite float out of a spec item, with an error naming the item."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"sampling spec item {item!r}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"sampling spec item {item!r}: {what} must be finite, got {text!r}")
    return value


def _parse_policy(item: str, text: str) -> KindPolicy:
    """Parse the POLICY part of a ``KIND=POLICY`` spec item."""
    name, sep, args = text.partition(":")
    parts = args.split(":") if sep else []
    try:
        if name == "all" and not parts:
            return KindPolicy("all")
        if name == "off" and not parts:
            return KindPolicy("off")
        if name == "fraction" and len(parts) == 1:
            return KindPolicy("fraction", fraction=_spec_number(item, "fraction", parts[0]))
        if name == "rate" and len(parts) in (1, 2):
            rate = _spec_number(item, "rate", parts[0])
            burst = _spec_number(item, "burst", parts[1]) if len(parts) == 2 else None
            return KindPolicy("rate", rate=rate, burst=burst)
    except ValueError as exc:
        if str(exc).startswith("sampling spec item"):
            raise
        # KindPolicy validation (range checks): add the item for context.
        raise ValueError(f"sampling spec item {item!r}: {exc}") from None
    raise ValueError(
        f"sampling spec item {item!r}: bad policy {text!r}; expected one of "
        "'all', 'off', 'fraction:F', 'rate:R' or 'rate:R:BURST'"
    )


def parse_sampling(spec: str, *, base: SamplingConfig | None = None) -> SamplingConfig:
    """Build a :class:`SamplingConfig` from a compact spec string.

    The spec is a comma-separated list of ``KEY=VALUE`` items; whitespace around
    items, keys and values is ignored, as are empty items. Keys are:

    * an event kind, with a policy ``all``, ``off``, ``fraction:F`` (``0 <= F <= 1``),
      ``rate:R`` or ``rate:R:BURST`` (``R > 0`` events per second, ``BURST >= 1``);
    * ``*``: the policy for kinds not listed;
    * ``@error_window``: seconds to keep everything after an error (``>= 0``);
    * ``@seed``: integer seed for fraction sampling.

    Items override ``base`` (by default :func:`default_sampling`), so
    ``"note=fraction:0.1"`` only changes notes and keeps the other defaults.

    Args:
        spec: The spec, e.g. ``"token=rate:20,resource=off,note=fraction:0.1,*=all"``.
        base: Configuration the items are applied to; ``None`` means
            :func:`default_sampling`. Pass ``SamplingConfig()`` to start empty.

    Returns:
        The resulting configuration.

    Raises:
        ValueError: If an item is malformed, a kind or option is given twice, an
            option is unknown or a value is out of range. The message names the item.
    """
    if not isinstance(spec, str):
        raise TypeError(f"sampling spec must be a str, got {type(spec).__name__}")
    cfg = base if base is not None else default_sampling()
    policies = dict(cfg.policies)
    default = cfg.default
    window = cfg.keep_all_after_error_s
    seed = cfg.seed
    seen: set[str] = set()
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise ValueError(f"sampling spec item {item!r}: expected KIND=POLICY")
        if any(ch.isspace() for ch in key):
            raise ValueError(f"sampling spec item {item!r}: kind {key!r} contains whitespace")
        if key in seen:
            raise ValueError(f"sampling spec item {item!r}: {key!r} is given more than once")
        seen.add(key)
        if key == "@error_window":
            window = _spec_number(item, "error window", value)
            if window < 0.0:
                raise ValueError(f"sampling spec item {item!r}: error window must be >= 0")
        elif key == "@seed":
            try:
                seed = int(value)
            except ValueError:
                raise ValueError(f"sampling spec item {item!r}: seed {value!r} is not an integer") from None
        elif key.startswith("@"):
            raise ValueError(f"sampling spec item {item!r}: unknown option {key!r} (known: @error_window, @seed)")
        elif key == "*":
            default = _parse_policy(item, value)
        else:
            policies[key] = _parse_policy(item, value)
    return SamplingConfig(policies=policies, default=default, keep_all_after_error_s=window, seed=seed)


def _format_number(value: float) -> str:
    """Format a float so that ``float()`` reads back exactly the same value."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _format_policy(policy: KindPolicy) -> str:
    """Format a policy as the POLICY part of a spec item."""
    if policy.mode == "fraction":
        return f"fraction:{_format_number(policy.fraction)}"
    if policy.mode == "rate":
        text = f"rate:{_format_number(policy.rate)}"
        if policy.burst is not None:
            text += f":{_format_number(policy.burst)}"
        return text
    return policy.mode


def format_sampling(config: SamplingConfig) -> str:
    """Format a configuration as a spec string accepted by :func:`parse_sampling`.

    Every policy and option is written out, so
    ``parse_sampling(format_sampling(c), base=SamplingConfig()) == c`` for any
    config whose policies only set the fields their mode uses (and, when ``c``
    extends the defaults, also with the default ``base``).

    Args:
        config: The configuration to format.

    Returns:
        The spec string.

    Raises:
        ValueError: If a kind cannot be written in a spec (it contains ``,``,
            ``=`` or whitespace, or starts with ``@``).
    """
    items = [f"*={_format_policy(config.default)}"]
    for kind in sorted(config.policies):
        if kind == "*" or kind.startswith("@") or any(c in ",=" or c.isspace() for c in kind):
            raise ValueError(f"kind {kind!r} cannot be written in a sampling spec")
        items.append(f"{kind}={_format_policy(config.policies[kind])}")
    items.append(f"@error_window={_format_number(float(config.keep_all_after_error_s))}")
    items.append(f"@seed={config.seed}")
    return ",".join(items)


# ------------------------------------------------------------------------ sampler


def _mix64(x: int) -> int:
    """Scramble a 64-bit integer (MurmurHash3's fmix64 finalizer, a bijection)."""
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK64
    x ^= x >> 33
    return x


class _AtomicCounter:
    """An exact counter whose increment is one C call, hence atomic under the GIL.

    ``d[k] += 1`` is a read-modify-write of several bytecodes, and a thread switch
    in between loses counts. ``next()`` on an ``itertools.count`` runs entirely in
    C without releasing the GIL (CPython's own ``threading`` module relies on this
    to number threads), so concurrent increments are never lost, at no lock cost.
    """

    __slots__ = ("_count", "incr")

    def __init__(self) -> None:
        self._count = itertools.count()
        self.incr: Callable[[], object] = self._count.__next__

    def value(self) -> int:
        """Return the number of increments so far."""
        # itertools.count only exposes its position through repr ("count(N)");
        # reading it this way does not advance it.
        return int(repr(self._count)[6:-1])


class _LockedCounter:
    """An exact counter guarded by a lock, for interpreters running without a GIL."""

    __slots__ = ("_lock", "_n")

    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def incr(self) -> None:
        """Add one."""
        with self._lock:
            self._n += 1

    def value(self) -> int:
        """Return the number of increments so far."""
        with self._lock:
            return self._n


_Counter = _AtomicCounter | _LockedCounter

# Free-threaded builds (3.13t+) have no GIL to make the C-level increment atomic.
_GIL_ENABLED: bool = bool(getattr(sys, "_is_gil_enabled", lambda: True)())
_new_counter: Callable[[], _Counter] = _AtomicCounter if _GIL_ENABLED else _LockedCounter

# Recent step hashes remembered by fraction sampling (cleared when full).
_HASH_CACHE_SIZE = 4096

_ALL, _FRACTION, _RATE, _OFF = 0, 1, 2, 3
_MODE_CODES: dict[str, int] = {
    "all": _ALL,
    "fraction": _FRACTION,
    "rate": _RATE,
    "off": _OFF,
}


class _KindState:
    """Per-kind decision state and counters (one per kind ever seen)."""

    __slots__ = (
        "burst",
        "dropped",
        "kept",
        "kind",
        "last_ns",
        "lock",
        "mode",
        "rate_per_ns",
        "reason",
        "threshold",
        "tokens",
    )

    def __init__(self, kind: str, policy: KindPolicy, new_counter: Callable[[], _Counter]) -> None:
        self.kind = kind
        mode = _MODE_CODES[policy.mode]
        if mode == _FRACTION and policy.fraction >= 1.0:
            mode = _ALL  # keeps everything anyway; take the fast path
        self.mode = mode
        # The mode is fixed per kind, so each kind has at most one drop reason.
        self.reason: str = policy.mode
        self.kept = new_counter()
        self.dropped = new_counter()
        # Keep a step iff hash(step) < fraction * 2**64.
        self.threshold = int(policy.fraction * (1 << 64))
        self.rate_per_ns = policy.rate / 1e9
        self.burst = policy.effective_burst
        self.tokens = self.burst
        self.last_ns: int | None = None
        self.lock = threading.Lock()

    def take(self, now_ns: int) -> bool:
        """Take one token from the bucket, refilled up to ``now_ns``; False if empty."""
        with self.lock:
            last = self.last_ns
            if last is None:
                self.last_ns = now_ns
            elif now_ns > last:
                tokens = self.tokens + (now_ns - last) * self.rate_per_ns
                self.tokens = min(self.burst, tokens)
                self.last_ns = now_ns
            # A now_ns older than last (threads racing to the sampler with clock
            # readings taken in a different order) refills nothing: time never
            # runs backwards for the bucket.
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class Sampler:
    """Decides, per event, whether the recorder keeps it.

    Thread-safe and lock-free on the keep-all path: :meth:`keep` may be called
    from many threads at once, and the counters stay exact.

    Args:
        config: The policies; ``None`` means :func:`default_sampling`.
    """

    #: How many failing step ids are remembered (oldest are forgotten first).
    MAX_FAILING_STEPS: ClassVar[int] = 1024

    __slots__ = (
        "_config",
        "_error_until_ns",
        "_failing",
        "_fast",
        "_hash_cache",
        "_lock",
        "_new_counter",
        "_seed_key",
        "_states",
        "_window_ns",
    )

    def __init__(self, config: SamplingConfig | None = None) -> None:
        self._config = config if config is not None else default_sampling()
        self._lock = threading.Lock()
        self._new_counter = _new_counter
        # kind -> kept-counter increment, only for kinds whose policy is keep-all.
        # keep() needs a single dict lookup and one C call for those kinds.
        self._fast: dict[str, Callable[[], object]] = {}
        self._states: dict[str, _KindState] = {}
        self._error_until_ns = _NEVER_NS
        self._window_ns = round(self._config.keep_all_after_error_s * 1e9)
        # Insertion-ordered set of recent failing steps, bounded to MAX_FAILING_STEPS.
        self._failing: OrderedDict[int, None] = OrderedDict()
        self._hash_cache: dict[int, int] = {}
        self._seed_key = _mix64((self._config.seed + 0x9E3779B97F4A7C15) & _MASK64)
        for kind in self._config.policies:
            self._add_kind(kind)

    @property
    def config(self) -> SamplingConfig:
        """The configuration this sampler applies."""
        return self._config

    def fast_path(self) -> Callable[[str], Callable[[], object] | None]:
        """The keep-all fast path, for callers that inline :meth:`keep`.

        Returns a lookup ``kind -> incr`` (or None): when it returns a callable and the
        event is not an error, calling it counts the event as kept and the event is kept;
        otherwise the caller must call :meth:`keep`. Kinds join the table as they are seen.
        """
        return self._fast.get

    def keep(self, kind: str, step: int | None, seq_hint: int, is_error: bool, now_ns: int) -> bool:
        """Decide whether to keep an event, and count the decision.

        Errors (``is_error`` or kind ``"error"``) are always kept and mark their
        step as failing (see :meth:`mark_error`). Otherwise, events are kept if
        their kind's policy is ``all``, if their step is failing, or within the
        error window; else the kind's ``fraction``/``rate``/``off`` policy decides.

        Args:
            kind: The event kind.
            step: Id of the innermost step the event belongs to, or ``None``.
            seq_hint: The event's sequence number; hashed instead of ``step`` by
                ``fraction`` policies when ``step`` is ``None``.
            is_error: Whether the event reports an error.
            now_ns: Current time in nanoseconds (any monotonic clock, used
                consistently); drives token buckets and the error window.

        Returns:
            True to keep the event, False to drop it.
        """
        if not is_error:
            incr = self._fast.get(kind)
            if incr is not None:
                incr()
                return True
        return self._keep_slow(kind, step, seq_hint, is_error, now_ns)

    def _keep_slow(self, kind: str, step: int | None, seq_hint: int, is_error: bool, now_ns: int) -> bool:
        """Everything :meth:`keep` does beyond the keep-all fast path."""
        state = self._states.get(kind)
        if state is None:
            state = self._add_kind(kind)
        if is_error or kind == "error":
            self.mark_error(step, now_ns)
            state.kept.incr()
            return True
        mode = state.mode
        if (
            mode == _ALL  # first sighting of a kind using a keep-all default
            or now_ns < self._error_until_ns
            or (step is not None and step in self._failing)
        ):
            state.kept.incr()
            return True
        if mode == _FRACTION:
            # Hash the step so every event of a step gets the same answer.
            kept = self._step_hash(step, seq_hint) < state.threshold
        elif mode == _RATE:
            kept = state.take(now_ns)
        else:
            kept = False
        if kept:
            state.kept.incr()
        else:
            state.dropped.incr()
        return kept

    def _step_hash(self, step: int | None, seq_hint: int) -> int:
        """Return the 64-bit sampling hash of ``step`` (of ``seq_hint`` if no step)."""
        if step is None:
            return _mix64((seq_hint ^ self._seed_key) & _MASK64)
        # Big-int arithmetic makes the mix cost several hundred ns, and a step usually has
        # many events, so remember recent steps' hashes. Lost updates or a clear()
        # racing with another thread only cost a recomputation of the same value.
        cache = self._hash_cache
        h = cache.get(step)
        if h is None:
            h = _mix64((step ^ self._seed_key) & _MASK64)
            if len(cache) >= _HASH_CACHE_SIZE:
                cache.clear()
            cache[step] = h
        return h

    def _add_kind(self, kind: str) -> _KindState:
        """Create (once) and return the state for ``kind``."""
        with self._lock:
            state = self._states.get(kind)
            if state is None:
                policy = self._config.policies.get(kind, self._config.default)
                state = _KindState(kind, policy, self._new_counter)
                self._states[kind] = state
                # Errors need the slow path (mark_error), whatever their policy.
                if state.mode == _ALL and kind != "error":
                    self._fast[kind] = state.kept.incr
            return state

    def mark_error(self, step: int | None, now_ns: int) -> None:
        """Record an error: open the keep-everything window and mark its step failing.

        Every later event of a failing step is kept; only the most recent
        :attr:`MAX_FAILING_STEPS` failing steps are remembered.

        Args:
            step: The step the error happened in, or ``None``.
            now_ns: Time of the error; the window lasts until
                ``now_ns + keep_all_after_error_s``.
        """
        with self._lock:
            if self._window_ns > 0:
                until = now_ns + self._window_ns
                self._error_until_ns = max(self._error_until_ns, until)
            if step is not None:
                failing = self._failing
                if step in failing:
                    failing.move_to_end(step)
                else:
                    failing[step] = None
                    if len(failing) > self.MAX_FAILING_STEPS:
                        failing.popitem(last=False)

    def is_failing(self, step: int) -> bool:
        """Return whether ``step`` is a remembered failing step.

        Args:
            step: A step id.

        Returns:
            True if an error was recorded for ``step`` and it has not been evicted.
        """
        return step in self._failing

    def counters(self) -> dict[str, dict[str, int]]:
        """Return a snapshot of the decision counters.

        Returns:
            ``{"offered": {kind: n}, "kept": {kind: n}, "dropped": {"kind:reason": n}}``
            where reason is ``"fraction"``, ``"rate"`` or ``"off"``. Only kinds
            offered at least once appear; ``kept`` lists each of them (possibly
            with 0) and ``dropped`` only non-zero entries. ``offered`` is derived
            as kept + dropped, so the identity holds exactly in every snapshot,
            even one taken while other threads are calling :meth:`keep`.
        """
        with self._lock:
            states = list(self._states.values())
        offered: dict[str, int] = {}
        kept: dict[str, int] = {}
        dropped: dict[str, int] = {}
        for state in states:
            n_kept = state.kept.value()
            n_dropped = state.dropped.value()
            if n_kept + n_dropped == 0:
                continue
            offered[state.kind] = n_kept + n_dropped
            kept[state.kind] = n_kept
            if n_dropped:
                dropped[f"{state.kind}:{state.reason}"] = n_dropped
        return {"offered": offered, "kept": kept, "dropped": dropped}
