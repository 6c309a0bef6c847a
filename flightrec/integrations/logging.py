"""stdlib logging: records log records as ``log`` events and dumps at ERROR and above.

Two ways in, one recording:

* :func:`install_trigger`, what ``flightrec.start()`` installs (the ``logging`` trigger):
  it wraps the log record factory (:func:`logging.setLogRecordFactory`) instead of adding
  a handler, so the application's own logging set-up is left exactly as it was. A handler
  on the root logger would not be: ``logging.basicConfig()`` does nothing once the root
  has a handler, and Python's last-resort output to stderr (and with it asyncio's "Task
  exception was never retrieved") goes silent. It also sees the records of loggers that
  do not propagate to the root.
* :class:`FlightrecHandler`, a ``logging.Handler`` to attach to a logger of your choice
  (:func:`install` does that once), when only some loggers should be recorded.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import api
from ..triggers import wanted_by

__all__ = ["FlightrecHandler", "LogRecordHook", "install", "install_trigger"]


def _level(value: int | str | None, default: int | None) -> int | None:
    """A level given as a number or a name (``"error"``); ``default`` for a name logging does not know."""
    if isinstance(value, str):
        if value.strip().isdigit():
            return int(value)
        number = logging.getLevelName(value.strip().upper())
        return number if isinstance(number, int) else default
    return value


def _message(record: logging.LogRecord) -> str:
    """The record's message; one whose arguments do not fit its format (the app's own bug,
    which logging reports on stderr) is still recorded, as the format and the arguments."""
    try:
        return record.getMessage()
    except Exception:
        try:
            return f"{record.msg!s} % {record.args!r}"
        except Exception:
            return f"<unformattable log message: {type(record.msg).__name__}>"


def record_log(record: logging.LogRecord, dump_level: int | None) -> None:
    """Record ``record`` as a ``log`` event, and dump when it is at ``dump_level`` or above.

    Never raises; records of flightrec's own loggers are skipped (no recursion).
    """
    rec = api._recorder
    if rec is None or record.name.startswith("flightrec"):
        return
    try:
        data: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
            "where": f"{record.pathname}:{record.lineno}",
        }
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            data["exception"] = f"{type(exc).__name__}: {exc}"
            data["traceback"] = logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
        rec.record("log", data, is_error=record.levelno >= logging.ERROR)
        if dump_level is not None and record.levelno >= dump_level:
            rec.dump(reason=f"log-{record.levelname.lower()}", exc=exc, automatic=True)
    except Exception:
        rec.errors += 1


class FlightrecHandler(logging.Handler):
    """Records log records at ``level`` and above; triggers a dump at ``dump_level`` and above.

    Args:
        level: the lowest level recorded as a ``log`` event (default WARNING).
        dump_level: the lowest level that also triggers a (rate-limited) dump; None: never.
    """

    def __init__(self, level: int | str = logging.WARNING, dump_level: int | str | None = logging.ERROR) -> None:
        super().__init__(level)
        self.dump_level = _level(dump_level, logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        """Record the log record (never raises, never recurses into itself)."""
        record_log(record, self.dump_level)


class LogRecordHook:
    """The log record factory that the ``logging`` trigger installs: the previous factory, observed.

    Every record a logger creates (those its level lets through) passes here before any
    handler sees it; those at ``level`` and above are recorded, and those at ``dump_level``
    and above dump. The record is the previous factory's, returned unchanged.
    """

    def __init__(self, inner: Any, level: int, dump_level: int | None) -> None:
        self.inner = inner
        self.level = level
        self.dump_level = dump_level

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        record = self.inner(*args, **kwargs)
        try:
            rec = api._recorder
            if rec is not None and record.levelno >= self.level and wanted_by(rec, "logging"):
                record_log(record, self.dump_level)
        except Exception:  # a factory of the application's that returns something odd
            pass
        return record


def install_trigger(level: int | str = logging.WARNING, dump_level: int | str | None = logging.ERROR) -> LogRecordHook:
    """Observe every log record through the record factory, once (later calls update the levels)."""
    lowest = _level(level, logging.WARNING)
    lowest = logging.WARNING if lowest is None else lowest
    dumps = _level(dump_level, logging.ERROR)
    current = logging.getLogRecordFactory()
    if isinstance(current, LogRecordHook):
        current.level, current.dump_level = lowest, dumps
        return current
    hook = LogRecordHook(current, lowest, dumps)
    logging.setLogRecordFactory(hook)
    return hook


def install(
    level: int | str = logging.WARNING,
    dump_level: int | str | None = logging.ERROR,
    logger: logging.Logger | None = None,
) -> FlightrecHandler:
    """Attach a :class:`FlightrecHandler` to ``logger`` (the root logger by default), once.

    On the root logger a handler changes the application's logging (``basicConfig`` then
    does nothing, the last-resort output to stderr stops): to record everything, prefer
    :func:`install_trigger`, which ``flightrec.start()`` installs.
    """
    target = logger if logger is not None else logging.getLogger()
    for h in target.handlers:
        if isinstance(h, FlightrecHandler):
            return h
    handler = FlightrecHandler(level, dump_level)
    target.addHandler(handler)
    return handler
