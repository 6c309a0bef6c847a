"""A ``logging.Handler`` that records log records as events and dumps at ERROR and above."""

from __future__ import annotations

import logging
from typing import Any

from .. import api


class FlightrecHandler(logging.Handler):
    """Records log records at ``level`` and above; triggers a dump at ``dump_level`` and above.

    Args:
        level: the lowest level recorded as a ``log`` event (default WARNING).
        dump_level: the lowest level that also triggers a (rate-limited) dump; None: never.
    """

    def __init__(self, level: int | str = logging.WARNING, dump_level: int | str | None = logging.ERROR) -> None:
        super().__init__(level)
        if isinstance(dump_level, str):
            dump_level = logging.getLevelName(dump_level.upper())
            if not isinstance(dump_level, int):
                dump_level = logging.ERROR
        self.dump_level = dump_level

    def emit(self, record: logging.LogRecord) -> None:
        """Record the log record (never raises, never recurses into itself)."""
        rec = api._recorder
        if rec is None or record.name.startswith("flightrec"):
            return
        try:
            data: dict[str, Any] = {
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
                "where": f"{record.pathname}:{record.lineno}",
            }
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                data["exception"] = f"{type(exc).__name__}: {exc}"
                data["traceback"] = logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
            is_error = record.levelno >= logging.ERROR
            rec.record("log", data, is_error=is_error)
            if self.dump_level is not None and record.levelno >= self.dump_level:
                rec.dump(reason=f"log-{record.levelname.lower()}", exc=exc, automatic=True)
        except Exception:
            rec.errors += 1


def install(
    level: int | str = logging.WARNING,
    dump_level: int | str | None = logging.ERROR,
    logger: logging.Logger | None = None,
) -> FlightrecHandler:
    """Attach a :class:`FlightrecHandler` to ``logger`` (the root logger by default), once."""
    target = logger if logger is not None else logging.getLogger()
    for h in target.handlers:
        if isinstance(h, FlightrecHandler):
            return h
    handler = FlightrecHandler(level, dump_level)
    target.addHandler(handler)
    if target.level > handler.level or (target.level == logging.NOTSET and logger is None):
        # The root logger defaults to WARNING; don't lower it (that would change the app's output).
        pass
    return handler
