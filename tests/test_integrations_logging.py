"""The stdlib logging integration: records WARNING+ records, dumps at ERROR+ (both configurable)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec.integrations.logging import FlightrecHandler, install

from .conftest import run_child


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

    def test_an_error_whose_arguments_do_not_fit_its_format_is_recorded_and_dumps(
        self, recorder: Any, log: logging.Logger, frdir: Path
    ) -> None:
        """log.error("%s %s", one_arg) is the app's bug, not a reason to lose the error and its dump."""
        install(logger=log)
        log.error("booking %s failed: %s", "SK1")
        [dump] = frdir.glob("*.frec")
        with flightrec.load(dump) as rec:
            assert rec.meta["trigger"]["reason"] == "log-error"
            [event] = rec.events(["log"])
        assert event.data["message"] == "booking %s failed: %s % ('SK1',)"
        assert recorder.errors == 0

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


class TestTrigger:
    """The ``logging`` trigger that start() installs observes records without adding a handler.

    Each test runs in a fresh interpreter: the point is what the application's own logging
    does afterwards, which a handler left on the root logger by another test would change.
    """

    def test_the_apps_logging_set_up_still_takes_effect(self, frdir: Path) -> None:
        """basicConfig after start() still configures the root; records are recorded and ERROR dumps."""
        proc = run_child(
            """
            import logging, flightrec
            flightrec.start(triggers=("logging",), resources=0)
            logging.basicConfig(format="APP %(levelname)s %(message)s", level=logging.INFO)
            log = logging.getLogger("agent")
            log.info("planning")
            log.error("tool %s failed", "search")
            print([type(h).__name__ for h in logging.getLogger().handlers])
            """,
            frdir,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "['StreamHandler']"
        assert "APP INFO planning" in proc.stderr and "APP ERROR tool search failed" in proc.stderr
        [dump] = frdir.glob("*.frec")
        with flightrec.load(dump) as rec:
            assert rec.meta["trigger"]["reason"] == "log-error"
            assert [e.data["message"] for e in rec.events(["log"])] == ["tool search failed"]

    def test_last_resort_output_and_unretrieved_task_errors_still_print(self, frdir: Path) -> None:
        """With no logging set up, WARNING+ still reaches stderr (asyncio's report too), and is recorded."""
        proc = run_child(
            """
            import asyncio, gc, logging, flightrec
            flightrec.start(triggers=("logging",), resources=0, dump_interval=0)
            logging.getLogger("agent").warning("context at 91%")
            quiet = logging.getLogger("agent.private")
            quiet.propagate = False
            quiet.warning("not propagated")

            async def fails():
                raise RuntimeError("nobody awaited me")

            async def main():
                task = asyncio.ensure_future(fails())
                await asyncio.sleep(0.01)
                del task
                gc.collect()

            asyncio.run(main())
            rec = flightrec.get_recorder()
            with flightrec.load(rec.ring_path) as r:
                print([e.data["logger"] for e in r.events(["log"])])
            """,
            frdir,
        )
        assert proc.returncode == 0, proc.stderr
        assert "context at 91%" in proc.stderr and "not propagated" in proc.stderr
        assert "Task exception was never retrieved" in proc.stderr and "nobody awaited me" in proc.stderr
        assert proc.stdout.strip() == "['agent', 'agent.private', 'asyncio']"

    def test_the_previous_record_factory_still_makes_the_records(self, frdir: Path) -> None:
        """An application's own record factory keeps working; starting again installs no second hook."""
        proc = run_child(
            """
            import logging, flightrec
            from flightrec.integrations.logging import LogRecordHook
            base = logging.getLogRecordFactory()

            def tagged(*args, **kwargs):
                record = base(*args, **kwargs)
                record.request_id = "req-7"
                return record

            logging.setLogRecordFactory(tagged)
            logging.basicConfig(format="%(request_id)s %(message)s")
            flightrec.start(triggers=("logging",), resources=0, log_level="CRITICAL")
            flightrec.stop()
            flightrec.start(triggers=("logging",), resources=0, log_level="CRITICAL")
            factory = logging.getLogRecordFactory()
            logging.getLogger("agent").error("slow tool")
            print(isinstance(factory, LogRecordHook), factory.inner is tagged, factory.dump_level)
            """,
            frdir,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "True True 50"
        assert "req-7 slow tool" in proc.stderr
        assert list(frdir.glob("*.frec")) == []  # log_level=CRITICAL: an ERROR is recorded, not dumped

    def test_log_level_from_the_environment(self, frdir: Path) -> None:
        """FLIGHTREC_LOG_LEVEL=WARNING dumps at a warning."""
        proc = run_child(
            """
            import logging, flightrec
            flightrec.start(triggers=("logging",), resources=0)
            logging.getLogger("agent").warning("retrying")
            """,
            frdir,
            FLIGHTREC_LOG_LEVEL="warning",
        )
        assert proc.returncode == 0, proc.stderr
        [dump] = frdir.glob("*.frec")
        with flightrec.load(dump) as rec:
            assert rec.meta["trigger"]["reason"] == "log-warning"


class TestARecorderStartedLater:
    """The trigger hooks stay installed once a recorder installed them (each once per
    process); a recorder started later takes only the triggers it was started with."""

    def test_without_the_logging_trigger_records_no_log_and_never_dumps(self, frdir: Path) -> None:
        result = run_child(
            """
            import logging, flightrec
            flightrec.start(triggers="all")
            flightrec.stop()
            rec = flightrec.start(triggers="none", keep_ring=True)
            logging.getLogger("agent").error("the tool failed")
            print(rec.ring_path)
            flightrec.stop()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        assert list(frdir.glob("*.frec")) == []
        with flightrec.load(result.stdout.strip()) as rec:
            assert [e for e in rec.events() if e.kind == "log"] == []

    def test_its_own_dump_level_counts(self, frdir: Path) -> None:
        result = run_child(
            """
            import logging, flightrec
            flightrec.start()
            flightrec.stop()
            flightrec.start(log_level="CRITICAL")
            logging.getLogger("agent").error("recoverable")
            print(len(flightrec.api._recorder.dumps))
            flightrec.stop()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "0" and list(frdir.glob("*.frec")) == []

    def test_without_the_exception_triggers_an_uncaught_error_does_not_dump(self, frdir: Path) -> None:
        result = run_child(
            """
            import threading, flightrec
            flightrec.start()
            flightrec.stop()
            flightrec.start(triggers="logging")
            t = threading.Thread(target=lambda: 1 / 0)
            t.start(); t.join()
            raise RuntimeError("the agent gave up")
            """,
            frdir,
        )
        assert result.returncode == 1 and "RuntimeError: the agent gave up" in result.stderr
        assert "ZeroDivisionError" in result.stderr  # (the hooks before ours still run)
        assert list(frdir.glob("*.frec")) == []
