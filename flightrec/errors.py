"""The errors flightrec raises: one base class and a few narrow subclasses.

Everything flightrec raises on purpose derives from :class:`FlightrecError`, so a caller
(and the CLI) can catch one class. The recorder itself never lets any of these reach the
agent: they surface only from the reading side (``load``, the CLI, the TUI).
"""

from __future__ import annotations


class FlightrecError(Exception):
    """Base class of every error flightrec raises."""

    exit_code: int = 1


class NotAFlightrecFile(FlightrecError):
    """The file is neither a flightrec dump nor a ring file (wrong magic, empty, a directory)."""

    exit_code = 2


class UnsupportedVersion(FlightrecError):
    """The file was written by a newer format version than this reader understands."""

    exit_code = 3


class CorruptRecording(FlightrecError):
    """The file is a flightrec file, but damaged beyond salvage."""

    exit_code = 4


class RecordingNotFound(FlightrecError):
    """The path, pid or recorder asked for does not exist."""

    exit_code = 5


class DumpFailed(FlightrecError):
    """A dump could not be written (disk full, unwritable directory, refused)."""

    exit_code = 6


class ConfigError(FlightrecError):
    """A configuration value (argument or FLIGHTREC_* variable) is invalid."""

    exit_code = 7


class UnsafeDirectory(FlightrecError):
    """A directory is owned by another user or writable by others, so it is refused."""

    exit_code = 8


class UsageError(FlightrecError):
    """A command line or a call is wrong: an unknown name, a bad argument, flags that conflict."""

    exit_code = 2


class MissingChunk(CorruptRecording):
    """A checkpoint cannot be rebuilt: a chunk it references is not in the recording, or its
    state was never stored (refused when recorded, e.g. too large for the ring)."""
