"""The TUI's data layer without a terminal: the lazy index, the filtered view, event rendering."""

from __future__ import annotations

from pathlib import Path

from flightrec.tui.index import EventIndex
from flightrec.tui.keys import KEYS_MARKDOWN
from flightrec.tui.render import REDACTION, is_error, summary, total
from flightrec.tui.screens.checkpoints import default_base
from flightrec.tui.view import EventFilter, TimelineView
from flightrec.tui.widgets.bars import columns, render_bars

from flightrec import format as fmt
from flightrec.analysis import CheckpointInfo
from flightrec.event import Event
from flightrec.reader import open_recording

from .builder import T0, Script, encode_blocks, meta_for, rich_script, write_events


def notes(n: int) -> list[Event]:
    s = Script()
    for i in range(n):
        s.add("note", text=f"note {i}", thread="worker" if i % 3 == 0 else "MainThread")
    return s.events


class TestEventIndex:
    def test_rows_and_seqs_without_decoding(self, tmp_path: Path) -> None:
        """The index knows every row from block headers; decoding happens per block, on access."""
        path = write_events(tmp_path, notes(100), per_block=10)
        rec = open_recording(path)
        index = EventIndex(rec)
        assert index.total == 100 and len(index.segments) == 10
        assert len(index.cache._blocks) == 0
        ev = index.event_at(57)
        assert ev is not None and ev.seq == 58
        assert len(index.cache._blocks) == 1
        assert index.row_of_seq(58) == 57
        assert index.event_by_seq(100).data["text"] == "note 99"
        assert index.event_at(100) is None and index.row_of_seq(101) is None

    def test_damaged_block_is_shown_as_such(self, tmp_path: Path) -> None:
        """A block whose payload fails its CRC yields placeholder rows, the rest stays readable."""
        events = notes(30)
        blocks = encode_blocks(events, per_block=10)
        bad = bytearray(blocks[1])
        bad[fmt.BLOCK_HEADER_SIZE + 3] ^= 0xFF
        blocks[1] = bytes(bad)
        from flightrec.dump import write_dump

        path = write_dump(tmp_path, "bad.frec", meta_for(events), blocks)
        index = EventIndex(open_recording(path))
        assert index.total == 30
        assert index.event_at(15) is None
        seg = index.damaged_at(15)
        assert seg is not None and (seg.first_seq, seg.last_seq) == (11, 20)
        assert index.event_at(25).seq == 26

    def test_rows_evicted_when_a_ring_wraps(self, tmp_path: Path) -> None:
        """A newer snapshot without the oldest blocks reports how many rows fell off the front."""
        events = notes(40)
        blocks = encode_blocks(events, per_block=10)
        from flightrec.dump import write_dump

        old = EventIndex(open_recording(write_dump(tmp_path, "a.frec", meta_for(events), blocks[:3])))
        new = EventIndex(open_recording(write_dump(tmp_path, "b.frec", meta_for(events), blocks[1:])))
        assert new.rows_evicted_since(old) == 10


class TestTimelineView:
    def test_filter_scan_and_positions(self, tmp_path: Path) -> None:
        """A filtered view holds the matching seqs; positions map back to events."""
        index = EventIndex(open_recording(write_events(tmp_path, notes(50), per_block=8)))
        view = TimelineView(index, EventFilter(threads=frozenset({"worker"})))
        for found, scanned in view.scan(-1, lambda: False):
            view.add_matches(found, scanned)
        assert len(view) == 17
        assert all(view.event_at(i).thread == "worker" for i in range(len(view)))
        assert view.pos_of_seq(4) == 1  # seq 4 is the second worker note

    def test_iter_from_runs_both_ways(self, tmp_path: Path) -> None:
        """iter_from walks the unfiltered view forward and back across blocks."""
        index = EventIndex(open_recording(write_events(tmp_path, notes(25), per_block=4)))
        view = TimelineView(index)
        assert [e.seq for _, e in view.iter_from(20, 1)] == [21, 22, 23, 24, 25]
        assert [e.seq for _, e in view.iter_from(3, -1)] == [4, 3, 2, 1]

    def test_filter_conditions(self) -> None:
        """Kinds, tools, spans, seq ranges, text and errors-only all narrow; include overrides."""
        ev = Event(5, T0, "tool_result", "MainThread", 2, 1, {"tool": "search", "error": "boom"})
        assert EventFilter(kinds=frozenset({"tool_result"})).predicate()(ev)
        assert not EventFilter(tools=frozenset({"other"})).predicate()(ev)
        assert EventFilter(spans=frozenset({2}), seq_range=(1, 9)).predicate()(ev)
        assert not EventFilter(spans=frozenset({3})).predicate()(ev)
        assert EventFilter(spans=frozenset({3}), include=frozenset({5})).predicate()(ev)
        assert EventFilter(text="BOOM").predicate()(ev)
        assert EventFilter(errors_only=True).predicate()(ev)
        assert EventFilter().empty and not EventFilter(text="x").empty


class TestRender:
    def test_every_kind_has_a_summary(self) -> None:
        """Each event kind renders a short line without raising, even with odd payloads."""
        for ev in rich_script().events:
            line = summary(ev)
            assert line and "\n" not in line
        odd = Event(1, T0, "tool_result", "t", None, None, {"tool": None, "latency_ms": "fast"})
        assert summary(odd)

    def test_an_llm_call_without_model_or_usage_says_so(self) -> None:
        """Integrations record an unknown model or usage as None: shown as '?', not 'None'."""
        ev = Event(1, T0, "llm", "t", None, None, {"model": None, "prompt_tokens": None, "completion_tokens": 0})
        assert summary(ev) == "?  ?→0 tok"

    def test_errors_and_markers(self) -> None:
        """Errors are recognised across kinds; redaction markers are found."""
        assert is_error(Event(1, T0, "error", "t", None, None, {}))
        assert is_error(Event(1, T0, "log", "t", None, None, {"level": "ERROR"}))
        assert not is_error(Event(1, T0, "tool_result", "t", None, None, {"result": 1}))
        assert REDACTION.findall("mail <EMAIL:3f9a2c> and <PHONE:00aa11>") == ["<EMAIL:3f9a2c>", "<PHONE:00aa11>"]

    def test_counters_may_be_per_kind_maps(self) -> None:
        """A counter given per kind is summed."""
        assert total({"note": 2, "llm": 3}) == 5 and total(7) == 7 and total(None) == 0


def test_keys_md_is_the_help_text() -> None:
    """tui/KEYS.md (for the README) is the key map the ? screen shows."""
    keys_md = Path(__file__).resolve().parents[2] / "tui" / "KEYS.md"
    assert keys_md.read_text() == KEYS_MARKDOWN


class TestDefaultCheckpointPair:
    """Side A of the first checkpoint diff: the latest before the last with another state."""

    @staticmethod
    def cp(seq: int, root: str | None, rebuildable: bool = True) -> CheckpointInfo:
        return CheckpointInfo(seq, 0, f"c{seq}", 10, rebuildable, None, root)

    def test_skips_the_checkpoints_of_the_same_state(self) -> None:
        cps = [self.cp(1, "r1"), self.cp(2, "r2"), self.cp(3, "r3"), self.cp(4, "r3"), self.cp(5, "r3")]
        assert default_base(cps) is cps[1]

    def test_skips_what_cannot_be_rebuilt(self) -> None:
        cps = [self.cp(1, "r1"), self.cp(2, "r2", rebuildable=False), self.cp(3, "r3")]
        assert default_base(cps) is cps[0]

    def test_else_the_one_before_the_last(self) -> None:
        same = [self.cp(1, "r"), self.cp(2, "r"), self.cp(3, "r")]
        assert default_base(same) is same[1]
        unknown = [self.cp(1, "r1"), self.cp(2, None)]
        assert default_base(unknown) is unknown[0]


class TestZeroBars:
    """Resource plots stand on zero: a small change looks small, a constant series is drawn."""

    def test_a_small_change_looks_small(self) -> None:
        lines = render_bars([27.7, 27.8], 4, 2, 27.8, "").plain.splitlines()
        assert lines == ["████", "████"]  # 27.7 of 27.8 is 99.6% of the height, rounded up to it
        low = render_bars([10.0, 80.0], 2, 1, 100.0, "").plain
        assert low == "▁▆"

    def test_a_constant_series_fills_its_height(self) -> None:
        assert render_bars([3, 3, 3], 3, 2, 3, "").plain.splitlines() == ["███", "███"]

    def test_columns_keep_spikes_and_stretch_few_samples(self) -> None:
        assert columns([1, 9, 1, 1], 2) == [9, 1]
        assert columns([1, 2], 4) == [1, 1, 2, 2]
        assert render_bars([], 4, 2, 1, "").plain == ""
