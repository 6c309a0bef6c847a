"""Tests for flightrec.sampling: policies, spec parsing, decisions and counters."""

from __future__ import annotations

import math
import sys
import threading
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flightrec
from flightrec import sampling
from flightrec.sampling import (
    KindPolicy,
    Sampler,
    SamplingConfig,
    default_sampling,
    format_sampling,
    parse_sampling,
)

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND  # an arbitrary, realistic clock origin


def config(spec: str, **overrides: object) -> SamplingConfig:
    """Build a config from an empty base, with the error window off unless overridden."""
    base = SamplingConfig(keep_all_after_error_s=0.0)
    cfg = parse_sampling(spec, base=base)
    if overrides:
        fields = {
            "policies": cfg.policies,
            "default": cfg.default,
            "keep_all_after_error_s": cfg.keep_all_after_error_s,
            "seed": cfg.seed,
        }
        fields.update(overrides)
        cfg = SamplingConfig(**fields)  # type: ignore[arg-type]
    return cfg


def assert_consistent(counters: dict[str, dict[str, int]]) -> None:
    """Assert offered == kept + dropped for every kind in a counters snapshot."""
    dropped_by_kind: dict[str, int] = {}
    for key, n in counters["dropped"].items():
        kind, _, reason = key.rpartition(":")
        assert reason in ("fraction", "rate", "off")
        dropped_by_kind[kind] = dropped_by_kind.get(kind, 0) + n
    assert set(counters["kept"]) == set(counters["offered"])
    for kind, offered in counters["offered"].items():
        assert offered == counters["kept"][kind] + dropped_by_kind.get(kind, 0)
    assert set(dropped_by_kind) <= set(counters["offered"])


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    """Make the interpreter switch threads very often, to expose non-atomic updates."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class TestPolicies:
    """KindPolicy / SamplingConfig validation and the defaults."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"mode": "sometimes"},
            {"mode": "fraction", "fraction": 1.5},
            {"mode": "fraction", "fraction": -0.1},
            {"mode": "fraction", "fraction": math.nan},
            {"mode": "rate", "rate": 0.0},
            {"mode": "rate", "rate": -1.0},
            {"mode": "rate", "rate": math.inf},
            {"mode": "rate", "rate": 5.0, "burst": 0.5},
        ],
    )
    def test_invalid_policy_rejected(self, kwargs: dict[str, object]) -> None:
        """Out-of-range or unknown policy fields raise ValueError at construction."""
        with pytest.raises(ValueError):
            KindPolicy(**kwargs)  # type: ignore[arg-type]

    def test_default_burst_is_max_of_one_and_rate(self) -> None:
        """Without an explicit burst the bucket holds max(1, rate) tokens."""
        assert KindPolicy("rate", rate=50.0).effective_burst == 50.0
        assert KindPolicy("rate", rate=0.2).effective_burst == 1.0
        assert KindPolicy("rate", rate=50.0, burst=5.0).effective_burst == 5.0

    def test_config_rejects_bad_fields(self) -> None:
        """A negative error window or a non-policy value is rejected."""
        with pytest.raises(ValueError):
            SamplingConfig(keep_all_after_error_s=-1.0)
        with pytest.raises(TypeError):
            SamplingConfig(policies={"note": "all"})  # type: ignore[dict-item]

    def test_config_policies_are_a_frozen_copy(self) -> None:
        """Mutating the caller's dict after construction does not change the config."""
        policies = {"note": KindPolicy("off")}
        cfg = SamplingConfig(policies=policies)
        policies["note"] = KindPolicy("all")
        assert cfg.policies["note"] == KindPolicy("off")
        with pytest.raises(TypeError):
            cfg.policies["x"] = KindPolicy()  # type: ignore[index]

    def test_default_sampling(self) -> None:
        """Defaults keep structural kinds whole and rate-limit tokens and resource samples."""
        cfg = default_sampling()
        for kind in ("tool_call", "tool_result", "memory", "checkpoint", "chunk", "error"):
            assert cfg.policies[kind].mode == "all"
        for kind in ("step_start", "step_end", "llm", "log"):
            assert cfg.policies[kind].mode == "all"
        assert cfg.policies["token"] == KindPolicy("rate", rate=50.0)
        assert cfg.policies["resource"] == KindPolicy("rate", rate=2.0)
        assert cfg.default.mode == "all"
        assert cfg.keep_all_after_error_s == 5.0

    def test_sampler_without_config_uses_defaults(self) -> None:
        """Sampler() applies default_sampling()."""
        assert Sampler().config == default_sampling()


class TestParseSampling:
    """parse_sampling / format_sampling."""

    def test_parses_example_spec(self) -> None:
        """The documented example yields the expected policies on top of the defaults."""
        cfg = parse_sampling("token=rate:20,resource=off,note=fraction:0.1,*=all")
        assert cfg.policies["token"] == KindPolicy("rate", rate=20.0)
        assert cfg.policies["resource"] == KindPolicy("off")
        assert cfg.policies["note"] == KindPolicy("fraction", fraction=0.1)
        assert cfg.default == KindPolicy("all")
        assert cfg.policies["tool_call"] == KindPolicy("all")  # untouched default

    def test_options_burst_and_whitespace(self) -> None:
        """Burst, @error_window, @seed and surrounding whitespace are understood."""
        cfg = parse_sampling(" token = rate:10:40 , @error_window=2.5, @seed=-7, *=off ,", base=SamplingConfig())
        assert cfg == SamplingConfig(
            policies={"token": KindPolicy("rate", rate=10.0, burst=40.0)},
            default=KindPolicy("off"),
            keep_all_after_error_s=2.5,
            seed=-7,
        )

    def test_empty_spec_is_base(self) -> None:
        """An empty spec returns the base configuration."""
        assert parse_sampling("") == default_sampling()
        assert parse_sampling("  ,  ", base=SamplingConfig()) == SamplingConfig()

    def test_round_trip_default_and_custom(self) -> None:
        """Formatting then parsing gives back the same configuration, over either base."""
        for cfg in (
            default_sampling(),
            parse_sampling("token=rate:20,resource=off,note=fraction:0.1,@seed=3,@error_window=0"),
        ):
            spec = format_sampling(cfg)
            assert parse_sampling(spec) == cfg
            assert parse_sampling(spec, base=SamplingConfig()) == cfg
        bare = SamplingConfig(default=KindPolicy("fraction", fraction=1 / 3), seed=2**70)
        assert parse_sampling(format_sampling(bare), base=SamplingConfig()) == bare

    @given(
        policies=st.dictionaries(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.:0123456789", min_size=1, max_size=12),
            st.one_of(
                st.just(KindPolicy("all")),
                st.just(KindPolicy("off")),
                st.floats(0.0, 1.0).map(lambda f: KindPolicy("fraction", fraction=f)),
                st.tuples(
                    st.floats(1e-6, 1e9),
                    st.none() | st.floats(1.0, 1e9),
                ).map(lambda rb: KindPolicy("rate", rate=rb[0], burst=rb[1])),
            ),
            max_size=8,
        ),
        window=st.floats(0.0, 1e6),
        seed=st.integers(-(2**80), 2**80),
    )
    def test_round_trip_property(self, policies: dict[str, KindPolicy], window: float, seed: int) -> None:
        """Any canonical configuration survives format_sampling -> parse_sampling exactly."""
        cfg = SamplingConfig(policies=policies, keep_all_after_error_s=window, seed=seed)
        assert parse_sampling(format_sampling(cfg), base=SamplingConfig()) == cfg

    @pytest.mark.parametrize(
        ("spec", "fragment"),
        [
            ("token", "token"),
            ("token=", "token="),
            ("=all", "=all"),
            ("token=sometimes", "bad policy"),
            ("token=rate", "bad policy"),
            ("token=rate:", "is not a number"),
            ("token=rate:abc", "is not a number"),
            ("token=rate:0", "rate must be > 0"),
            ("token=rate:-5", "rate must be >= 0"),
            ("token=rate:10:0.5", "burst must be >= 1"),
            ("token=rate:1:2:3", "bad policy"),
            ("note=fraction:1.5", "fraction must be within"),
            ("note=fraction:nan", "must be finite"),
            ("note=fraction", "bad policy"),
            ("note=all:1", "bad policy"),
            ("note=off,note=all", "more than once"),
            ("my kind=all", "whitespace"),
            ("@bogus=1", "unknown option"),
            ("@seed=1.5", "not an integer"),
            ("@error_window=-1", "must be >= 0"),
            ("@error_window=inf", "must be finite"),
        ],
    )
    def test_rejects_bad_specs(self, spec: str, fragment: str) -> None:
        """Malformed specs raise ValueError naming the offending item."""
        with pytest.raises(ValueError, match="sampling spec item") as info:
            parse_sampling(f"tool_call=all,{spec}")
        assert fragment in str(info.value)

    def test_format_rejects_unwritable_kind(self) -> None:
        """A kind containing a separator cannot be formatted."""
        with pytest.raises(ValueError):
            format_sampling(SamplingConfig(policies={"a,b": KindPolicy()}))


class TestKeepAll:
    """The keep-all path."""

    def test_keep_all_kinds_and_unknown_kinds_kept(self) -> None:
        """Kinds with an 'all' policy, and unknown kinds under an 'all' default, are kept and counted."""
        sampler = Sampler()
        for i in range(100):
            assert sampler.keep("tool_call", i, i, False, T0)
            assert sampler.keep("some_new_kind", None, i, False, T0)
        counters = sampler.counters()
        assert counters["offered"] == {"tool_call": 100, "some_new_kind": 100}
        assert counters["kept"] == {"tool_call": 100, "some_new_kind": 100}
        assert counters["dropped"] == {}

    def test_unknown_kind_uses_default_policy(self) -> None:
        """Kinds missing from the policies follow `default`."""
        sampler = Sampler(config("*=off,note=all"))
        assert sampler.keep("note", None, 0, False, T0)
        assert not sampler.keep("whatever", None, 1, False, T0)
        assert sampler.counters()["dropped"] == {"whatever:off": 1}

    def test_keep_all_cost(self) -> None:
        """Measure keep() per call on each path and print it (run with -s); no timing assertion."""
        n = 200_000
        default = Sampler()
        sampled = Sampler(config("note=fraction:0.1,token=rate:50"))
        cases = {
            "keep-all (tool_call)": (default.keep, "'tool_call', 3, 7, False, 0"),
            "keep-all, unknown kind": (default.keep, "'custom', None, 7, False, 0"),
            "fraction, cached step": (sampled.keep, "'note', 3, 7, False, 0"),
            "fraction, no step": (sampled.keep, "'note', None, 7, False, 0"),
            "rate, empty bucket": (sampled.keep, "'token', 3, 7, False, 0"),
        }
        print()
        for label, (keep, args) in cases.items():
            best = min(timeit.repeat(f"keep({args})", globals={"keep": keep}, number=n, repeat=5))
            print(f"sampling: {label:24s} {best / n * 1e9:7.1f} ns/call")


class TestFraction:
    """Deterministic per-step fraction sampling."""

    @pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9])
    @pytest.mark.parametrize("seed", [0, 1, 12345])
    def test_fraction_within_statistical_bounds(self, fraction: float, seed: int) -> None:
        """Over 20,000 distinct steps the kept share is within 4 sigma of the fraction."""
        n = 20_000
        sampler = Sampler(config(f"note=fraction:{fraction}", seed=seed))
        kept = sum(sampler.keep("note", step, step, False, T0) for step in range(n))
        sigma = math.sqrt(n * fraction * (1 - fraction))
        assert abs(kept - n * fraction) <= 4 * sigma

    def test_fraction_without_step_uses_seq(self) -> None:
        """Events outside any step are sampled by sequence number, within bounds and deterministically."""
        n = 20_000
        a = Sampler(config("note=fraction:0.25"))
        b = Sampler(config("note=fraction:0.25"))
        decisions = [a.keep("note", None, seq, False, T0) for seq in range(n)]
        assert decisions == [b.keep("note", None, seq, False, T0) for seq in range(n)]
        assert abs(sum(decisions) - n / 4) <= 4 * math.sqrt(n * 0.25 * 0.75)

    def test_whole_steps_kept_or_dropped(self) -> None:
        """All events of a step, of any kind with the same fraction, share one decision."""
        sampler = Sampler(config("note=fraction:0.3,context=fraction:0.3"))
        seq = 0
        per_step: dict[int, set[bool]] = {}
        # Interleave the steps' events, as concurrent steps would.
        for _round in range(5):
            for step in range(2_000):
                for kind in ("note", "context"):
                    seq += 1
                    per_step.setdefault(step, set()).add(sampler.keep(kind, step, seq, False, T0))
        assert all(len(decisions) == 1 for decisions in per_step.values())
        assert 0 < sum(True in d for d in per_step.values()) < len(per_step)

    def test_same_seed_same_decisions_across_instances(self) -> None:
        """Two samplers with the same seed make identical per-step decisions; another seed differs."""
        steps = range(-500, 5_000)
        a = Sampler(config("note=fraction:0.2", seed=42))
        b = Sampler(config("note=fraction:0.2", seed=42))
        c = Sampler(config("note=fraction:0.2", seed=43))
        da = [a.keep("note", s, 0, False, T0) for s in steps]
        assert da == [b.keep("note", s, 99, False, T0) for s in steps]
        assert da != [c.keep("note", s, 0, False, T0) for s in steps]

    def test_decisions_survive_cache_eviction(self) -> None:
        """A step's decision is the same before and after the step-hash cache was cleared."""
        sampler = Sampler(config("note=fraction:0.5"))
        first = [sampler.keep("note", s, 0, False, T0) for s in range(10_000)]
        again = [sampler.keep("note", s, 0, False, T0) for s in range(10_000)]
        assert first == again

    def test_smaller_fraction_keeps_a_subset(self) -> None:
        """A step kept at fraction 0.1 is also kept at 0.5 (same seed), so kinds nest coherently."""
        sampler = Sampler(config("a=fraction:0.1,b=fraction:0.5"))
        for step in range(5_000):
            if sampler.keep("a", step, 0, False, T0):
                assert sampler.keep("b", step, 0, False, T0)

    def test_fraction_zero_drops_and_counts(self) -> None:
        """Fraction 0 drops every event, counted under reason 'fraction'; fraction 1 keeps all."""
        sampler = Sampler(config("a=fraction:0,b=fraction:1"))
        for step in range(1_000):
            assert not sampler.keep("a", step, step, False, T0)
            assert sampler.keep("b", step, step, False, T0)
        counters = sampler.counters()
        assert counters["dropped"] == {"a:fraction": 1_000}
        assert counters["kept"] == {"a": 0, "b": 1_000}


class TestRate:
    """Token-bucket rate limiting driven by an explicit clock."""

    def test_rate_over_simulated_interval(self) -> None:
        """10/s over 5 simulated seconds with 10,000 offers keeps about 50 + burst."""
        sampler = Sampler(config("token=rate:10"))
        offers = 10_000
        kept = sum(sampler.keep("token", None, i, False, T0 + i * 5 * SECOND // offers) for i in range(offers))
        assert 50 + 10 - 1 <= kept <= 50 + 10
        assert sampler.counters()["dropped"] == {"token:rate": offers - kept}

    def test_explicit_burst(self) -> None:
        """The burst caps how many events pass at once; afterwards the rate applies."""
        sampler = Sampler(config("token=rate:100:3"))
        assert [sampler.keep("token", None, i, False, T0) for i in range(5)] == [True] * 3 + [False] * 2
        # 10 ms later exactly one token has been refilled.
        t = T0 + SECOND // 100
        assert [sampler.keep("token", None, i, False, t) for i in range(3)] == [True, False, False]

    def test_refill_capped_at_burst_after_idle(self) -> None:
        """A long idle period refills the bucket only up to its burst size."""
        sampler = Sampler(config("token=rate:2"))
        assert sum(sampler.keep("token", None, i, False, T0) for i in range(10)) == 2
        later = T0 + 3600 * SECOND
        assert sum(sampler.keep("token", None, i, False, later) for i in range(10)) == 2

    def test_clock_going_backwards_mints_nothing(self) -> None:
        """Offers stamped earlier than the last refill get no extra tokens."""
        sampler = Sampler(config("token=rate:1"))
        assert sampler.keep("token", None, 0, False, T0 + 10 * SECOND)
        assert not sampler.keep("token", None, 1, False, T0)
        assert not sampler.keep("token", None, 2, False, T0 + 10 * SECOND)
        assert sampler.keep("token", None, 3, False, T0 + 11 * SECOND)

    def test_buckets_are_per_kind(self) -> None:
        """Two kinds sharing a rate policy (via the default) do not share a bucket."""
        sampler = Sampler(config("*=rate:1"))
        assert sampler.keep("a", None, 0, False, T0)
        assert sampler.keep("b", None, 1, False, T0)
        assert not sampler.keep("a", None, 2, False, T0)
        assert sampler.counters()["dropped"] == {"a:rate": 1}


class TestErrors:
    """Errors, the error window and failing steps."""

    def test_errors_kept_even_when_off(self) -> None:
        """is_error events and 'error' events are kept even if their kind's policy is 'off'."""
        sampler = Sampler(config("*=off,error=off"))
        assert sampler.keep("tool_result", 1, 0, True, T0)
        assert sampler.keep("error", None, 1, False, T0)
        assert not sampler.keep("tool_result", 2, 2, False, T0)
        counters = sampler.counters()
        assert counters["kept"] == {"tool_result": 1, "error": 1}
        assert counters["dropped"] == {"tool_result:off": 1}

    def test_error_window_keeps_everything_then_stops(self) -> None:
        """After an error, every event is kept for keep_all_after_error_s, and sampling resumes after."""
        sampler = Sampler(config("note=off,token=rate:1:1,x=fraction:0", keep_all_after_error_s=2.0))
        assert not sampler.keep("note", None, 0, False, T0)
        assert sampler.keep("error", None, 1, False, T0)
        for t in (T0, T0 + SECOND, T0 + 2 * SECOND - 1):
            for i in range(20):
                assert sampler.keep("note", None, i, False, t)
                assert sampler.keep("token", i, i, False, t)
                assert sampler.keep("x", i, i, False, t)
        after = T0 + 2 * SECOND
        assert not sampler.keep("note", None, 0, False, after)
        assert not sampler.keep("x", 5, 0, False, after)
        assert sampler.keep("token", None, 0, False, after)  # the bucket was not drained by the window
        assert not sampler.keep("token", None, 0, False, after)

    def test_later_error_extends_window(self) -> None:
        """A second error extends the window from its own time."""
        sampler = Sampler(config("note=off", keep_all_after_error_s=1.0))
        sampler.mark_error(None, T0)
        sampler.mark_error(None, T0 + SECOND // 2)
        assert sampler.keep("note", None, 0, False, T0 + SECOND + SECOND // 4)
        assert not sampler.keep("note", None, 0, False, T0 + SECOND + SECOND // 2)

    def test_error_window_zero_disables_window(self) -> None:
        """With keep_all_after_error_s=0 an error does not keep unrelated events."""
        sampler = Sampler(config("note=off", keep_all_after_error_s=0.0))
        assert sampler.keep("error", 1, 0, True, T0)
        assert not sampler.keep("note", 2, 1, False, T0)

    def test_failing_step_kept_after_mark_error(self) -> None:
        """After mark_error(step), all later events of that step are kept; other steps are not."""
        sampler = Sampler(config("note=off,x=fraction:0,token=rate:1:1"))
        sampler.mark_error(7, T0)
        assert sampler.is_failing(7)
        for i in range(50):
            assert sampler.keep("note", 7, i, False, T0 + i * SECOND)
            assert sampler.keep("x", 7, i, False, T0)
            assert sampler.keep("token", 7, i, False, T0)
        assert not sampler.keep("note", 8, 0, False, T0)
        assert not sampler.keep("x", 8, 0, False, T0)

    def test_error_event_marks_its_step(self) -> None:
        """keep() with is_error=True marks the step failing by itself."""
        sampler = Sampler(config("note=off"))
        assert not sampler.keep("note", 3, 0, False, T0)
        assert sampler.keep("tool_result", 3, 1, True, T0)
        assert sampler.keep("note", 3, 2, False, T0 + 100 * SECOND)

    def test_failing_steps_bounded(self) -> None:
        """Only the most recent MAX_FAILING_STEPS failing steps are remembered; re-marking refreshes."""
        cap = Sampler.MAX_FAILING_STEPS
        sampler = Sampler(config("note=off"))
        for step in range(cap):
            sampler.mark_error(step, T0)
        sampler.mark_error(0, T0)  # refresh step 0: step 1 is now the oldest
        sampler.mark_error(cap, T0)
        assert sampler.is_failing(0)
        assert not sampler.is_failing(1)
        assert sampler.is_failing(cap)
        assert sum(sampler.is_failing(s) for s in range(cap + 10)) == cap
        assert not sampler.keep("note", 1, 0, False, T0)


class TestCounters:
    """Exactness of the counters, including under real threads."""

    def test_counters_add_up(self) -> None:
        """offered == kept + dropped per kind across all modes, with per-reason drop keys."""
        sampler = Sampler(config("note=fraction:0.3,token=rate:5,resource=off,*=all"))
        for i in range(3_000):
            for kind in ("note", "token", "resource", "tool_call"):
                sampler.keep(kind, i // 3, i, False, T0 + i * SECOND // 1_000)
        counters = sampler.counters()
        assert counters["offered"] == {"note": 3_000, "token": 3_000, "resource": 3_000, "tool_call": 3_000}
        assert set(counters["dropped"]) == {"note:fraction", "token:rate", "resource:off"}
        assert counters["kept"]["tool_call"] == 3_000
        assert counters["kept"]["resource"] == 0
        assert_consistent(counters)

    def test_unoffered_kinds_absent(self) -> None:
        """Configured kinds that were never offered do not appear in the counters."""
        assert Sampler().counters() == {"offered": {}, "kept": {}, "dropped": {}}

    @pytest.mark.parametrize("counter", [sampling._AtomicCounter, sampling._LockedCounter])
    def test_counters_exact_under_threads(
        self,
        counter: Callable[[], sampling._AtomicCounter | sampling._LockedCounter],
        monkeypatch: pytest.MonkeyPatch,
        fast_thread_switching: None,
    ) -> None:
        """8 threads hammering keep() lose no counts, with both counter implementations."""
        monkeypatch.setattr(sampling, "_new_counter", counter)
        spec = "note=fraction:0.3,token=rate:10:25,resource=off,*=all"
        sampler = Sampler(config(spec))
        threads_n, per_thread = 8, 5_000
        kinds = ("tool_call", "note", "token", "resource", "custom")
        start = threading.Barrier(threads_n + 1)
        stop = threading.Event()
        snapshots: list[dict[str, dict[str, int]]] = []
        errors: list[BaseException] = []

        def worker(tid: int) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    step = tid * per_thread + i
                    for kind in kinds:
                        # A fixed clock: the rate bucket never refills.
                        sampler.keep(kind, step, step, False, T0)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def reader() -> None:
            while not stop.is_set():
                snapshots.append(sampler.counters())

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
        watcher = threading.Thread(target=reader)
        for thread in threads:
            thread.start()
        watcher.start()
        start.wait()
        for thread in threads:
            thread.join()
        stop.set()
        watcher.join()
        assert not errors

        total = threads_n * per_thread
        counters = sampler.counters()
        assert counters["offered"] == dict.fromkeys(kinds, total)
        assert counters["kept"]["tool_call"] == total
        assert counters["kept"]["custom"] == total
        assert counters["kept"]["token"] == 25  # exactly the burst
        assert counters["kept"]["resource"] == 0
        # Fraction decisions are deterministic, so the exact kept count is known.
        reference = Sampler(config(spec))
        expected_notes = sum(reference.keep("note", s, s, False, T0) for s in range(total))
        assert counters["kept"]["note"] == expected_notes
        assert_consistent(counters)
        # Snapshots taken mid-run are consistent too.
        assert snapshots
        for snapshot in snapshots:
            assert_consistent(snapshot)

    def test_errors_under_threads(self, fast_thread_switching: None) -> None:
        """Errors from many threads are all kept and counted while other events are dropped."""
        sampler = Sampler(config("note=off"))

        def worker(tid: int) -> None:
            for i in range(2_000):
                step = tid * 10_000 + i
                sampler.keep("note", step, i, False, T0)
                sampler.keep("note", step, i, True, T0)
                sampler.keep("note", step, i, False, T0)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counters = sampler.counters()
        # Per step: one dropped before the error, the error, and one kept after it
        # (unless the step was evicted from the bounded failing set in between).
        assert counters["offered"]["note"] == 8 * 2_000 * 3
        assert counters["kept"]["note"] >= 8 * 2_000
        assert counters["dropped"]["note:off"] >= 8 * 2_000
        assert_consistent(counters)


def test_a_tool_error_result_is_an_error_for_sampling(frdir: Path) -> None:
    """A result marked with tool_error() is a failure like a raised one: kept whatever its kind's
    policy, and it opens the keep-everything window."""
    flightrec.start(dir=frdir, triggers=False, resources=0, sampling="tool_result=off,note=off")

    @flightrec.tool
    def search() -> dict[str, int]:
        flightrec.tool_error("service said no")
        return {"status": 503}

    search()
    flightrec.record("note", text="right after the failure")
    path = flightrec.dump("test")
    assert path is not None
    kinds = [e.kind for e in flightrec.load(path).events()]
    assert kinds == ["tool_call", "tool_result", "note"]
