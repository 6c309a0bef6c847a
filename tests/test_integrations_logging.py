"""The stdlib logging handler: records WARNING+ records, dumps at ERROR+ (both configurable)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec.integrations.logging import FlightrecHandler, install


@pytest.fixture
def log() -> Iterator[logging.Logger]:
    """A private logger that does not propagate to the root's handlers."""
    logger = logging.getLogger("tests.agent")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    for h in list(logger.handlers):
        logger.removeHandler(h)


def _events(rec: Any) -> list[Any]:
    with flightrec.load(rec.ring_path) as recording:
        return list(recording.events(["log"]))


class TestHandler:
    def test_warning_and_above_are_recorded_with_exception_info(self, recorder: Any, log: logging.Logger) -> None:
        """INFO is ignored; a WARNING with exc_info carries the exception and its traceback."""
        install(logger=log, dump_level=None)
        log.info("thinking")
        try:
            raise ValueError("bad tool arguments")
        except ValueError:
            log.warning("tool %s failed", "search", exc_info=True)
        [event] = _events(recorder)
        assert (event.data["level"], event.data["logger"], event.data["message"]) == (
            "WARNING",
            "tests.agent",
            "tool search failed",
        )
        assert event.data["exception"] == "ValueError: bad tool arguments"
        assert "Traceback" in event.data["traceback"]

    def test_error_triggers_a_dump(self, recorder: Any, log: logging.Logger, frdir: Path) -> None:
        """An ERROR record is recorded and dumps the ring."""
        install(logger=log)
        log.error("agent is stuck")
        [dump] = frdir.glob("*.frec")
        with flightrec.load(dump) as rec:
            assert rec.meta["trigger"]["reason"] == "log-error"
            assert [e.data["message"] for e in rec.events(["log"])] == ["agent is stuck"]

    def test_levels_are_configurable(self, recorder: Any, log: logging.Logger, frdir: Path) -> None:
        """level=INFO records INFO; dump_level=CRITICAL does not dump at ERROR."""
        log.addHandler(FlightrecHandler(level=logging.INFO, dump_level="CRITICAL"))
        log.info("step 1")
        log.error("recoverable")
        assert [e.data["message"] for e in _events(recorder)] == ["step 1", "recoverable"]
        assert list(frdir.glob("*.frec")) == []

    def test_install_is_idempotent(self, log: logging.Logger) -> None:
        """Installing twice attaches one handler."""
        assert install(logger=log) is install(logger=log)
        assert sum(isinstance(h, FlightrecHandler) for h in log.handlers) == 1
