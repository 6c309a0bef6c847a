"""flightrec: an in-process flight recorder for AI agents.

Start it with ``import flightrec.auto`` or :func:`start`; record with :func:`record` (and
the agent vocabulary: steps, tools, LLM calls, memory, checkpoints); read recordings back
with :func:`load`. Importing this package is cheap and never imports the TUI or any
optional integration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from . import memory
from .agent import ToolResponseError, llm, step, tool, tool_error
from .api import dump, get_recorder, load, record, start, stop
from .checkpoint import checkpoint
from .errors import (
    ConfigError,
    CorruptRecording,
    DumpFailed,
    FlightrecError,
    MissingChunk,
    NotAFlightrecFile,
    RecordingNotFound,
    UnsafeDirectory,
    UnsupportedVersion,
    UsageError,
)
from .event import Event

if TYPE_CHECKING:
    from .reader import Recording

__all__ = [
    "ConfigError",
    "CorruptRecording",
    "DumpFailed",
    "Event",
    "FlightrecError",
    "MissingChunk",
    "NotAFlightrecFile",
    "Recording",
    "RecordingNotFound",
    "ToolResponseError",
    "UnsafeDirectory",
    "UnsupportedVersion",
    "UsageError",
    "__version__",
    "checkpoint",
    "dump",
    "get_recorder",
    "llm",
    "load",
    "memory",
    "record",
    "start",
    "step",
    "stop",
    "tool",
    "tool_error",
]


def __getattr__(name: str) -> Any:
    """Load the reading side lazily: agents that only record never pay for it."""
    if name == "Recording":
        from .reader import Recording

        return Recording
    raise AttributeError(f"module 'flightrec' has no attribute {name!r}")
