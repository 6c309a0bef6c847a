"""Configuration: ``start()`` arguments, with ``FLIGHTREC_*`` environment variables filling the gaps.

Everything ends up in one frozen :class:`Config`. Parsing errors raise :class:`ConfigError`
with the offending variable named; ``flightrec.auto`` turns that into a warning and runs
disabled rather than crash the agent.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import ConfigError

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1}
for _i, _prefix in enumerate("kmgtp", start=1):
    # K, KB: powers of 1000; KiB, Ki: powers of 1024 (any case: 64mb, 64M, 1tib)
    _UNITS[_prefix] = _UNITS[f"{_prefix}b"] = 1000**_i
    _UNITS[f"{_prefix}i"] = _UNITS[f"{_prefix}ib"] = 1024**_i
del _i, _prefix
_SIZE_UNITS_HELP = "units B, KiB, MiB, GiB, TiB, PiB (powers of 1024) or KB, MB, GB, TB, PB (powers of 1000)"

ALL_TRIGGERS = ("excepthook", "threading", "asyncio", "signals", "logging", "faulthandler", "atexit")


_SIZE_MAX = 1 << 50  # 1PiB (a bigger number overflows the OS's sizes before it means anything)


def parse_size(value: str | int, name: str = "size") -> int:
    """Parse ``"64MiB"``, ``"1.5GiB"``, ``"512k"``, ``"1048576"`` or an int into bytes.

    A unit is B, or K, M, G, T, P: alone or with B (``64M``, ``64MB``: powers of 1000) or
    with i (``64Mi``, ``64MiB``: powers of 1024), in any case; a fraction of a byte is dropped.

    Raises:
        ConfigError: not a size, not positive, or over 1PiB.
    """
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE_RE.match(str(value))
        unit = (m.group(2) or "").lower() if m else ""
        if not m or unit not in _UNITS:
            raise ConfigError(
                f"{name}: cannot parse size {value!r} (a number of bytes, or with {_SIZE_UNITS_HELP}; "
                "e.g. 64MiB, 512KiB, 1048576)"
            )
        whole, _, frac = m.group(1).lstrip("0").partition(".")
        if len(whole) > 20:  # (far over the limit; exact arithmetic below stays small)
            raise ConfigError(f"{name}: {_shown(value)} is too large (at most 1PiB)")
        # Exact: a float would turn 20 digits into a neighbour and 400 into infinity.
        n = int(Fraction(f"{whole or 0}.{frac[:30] or 0}") * _UNITS[unit])
    if n <= 0:
        raise ConfigError(f"{name} must be positive, got {_shown(value)}")
    if n > _SIZE_MAX:
        raise ConfigError(f"{name}: {_shown(value)} is too large (at most 1PiB)")
    return n


def _binary(n: int) -> str:
    """``270336`` -> ``"264KiB"``: a size as it may be written back (rounded up to a KiB)."""
    kib = -(-n // 1024)
    for unit, factor in (("GiB", 1024**2), ("MiB", 1024)):
        if kib % factor == 0:
            return f"{kib // factor}{unit}"
    return f"{kib}KiB"


def _shown(value: object) -> str:
    """``repr(value)`` for an error message, its middle cut if long (a pasted 5,000 digits)."""
    if isinstance(value, int) and value.bit_length() > 200:  # (repr refuses past 4,300 digits)
        return f"an int of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:28]}...{text[-28:]} ({len(text) - 2} characters)"


def parse_bool(value: str | bool, name: str) -> bool:
    """Parse 1/0, true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on", "y"):
        return True
    if v in ("0", "false", "no", "off", "n", ""):
        return False
    raise ConfigError(f"{name}: expected 1/0, true/false, yes/no or on/off, got {value!r}")


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the recorder needs to know, resolved once at ``start()``."""

    size: int = 64 * 1024 * 1024
    """Bytes of the mapped ring file (fixed at start)."""
    block_size: int = 64 * 1024
    """Raw bytes per block before compression (the open block's capacity)."""
    pin_size: int = 256 * 1024
    """Bytes of the pinned area (events that the ring never overwrites)."""
    dir: Path | None = None
    """Ring directory (None: the per-user default)."""
    dump_dir: Path | None = None
    """Dump directory (None: ``dir`` if given, else the per-user state directory)."""
    disabled: bool = False
    keep_ring: bool = False
    """Leave the ring file behind at ``stop()`` (a clean exit normally removes it)."""
    redact: bool = True
    redact_rules: tuple[str, ...] = ()
    """Only these redaction rules (empty: all)."""
    redact_keys: tuple[str, ...] = ()
    """Extra key names whose values are secrets."""
    redact_allow: tuple[str, ...] = ()
    """Keys or dotted paths that are never redacted."""
    sampling: str = ""
    """Sampling spec, e.g. ``token=rate:20,note=fraction:0.1`` (empty: defaults)."""
    triggers: tuple[str, ...] = ALL_TRIGGERS
    log_level: str = "ERROR"
    """Logging records at or above this level trigger a dump."""
    max_value: int = 4096
    """Stored characters per string value; longer ones are truncated with a marker."""
    max_event: int = 32 * 1024
    """Encoded bytes per event; a bigger event is stored degraded, with a marker."""
    dump_interval: float = 1.0
    """Minimum seconds between two automatically triggered dumps."""
    max_dumps: int = 50
    """Most dumps kept in the dump directory; the oldest are deleted first."""
    max_dump_bytes: int = 2 * 1024**3
    """Most bytes of dumps kept in the dump directory."""
    dump_on_exit: bool = False
    resources: float = 1.0
    """Seconds between resource samples (0: off)."""
    env_keys: tuple[str, ...] = ()
    """Environment variables copied (redacted) into the dump header; none by default."""

    @property
    def resolved_ring_dir(self) -> Path:
        """The directory rings are written to."""
        from .paths import default_ring_dir

        return self.dir if self.dir is not None else default_ring_dir()

    @property
    def resolved_dump_dir(self) -> Path:
        """The directory dumps are written to."""
        from .paths import default_dump_dir

        if self.dump_dir is not None:
            return self.dump_dir
        return self.dir if self.dir is not None else default_dump_dir()


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _parse_dir(value: str | os.PathLike[str]) -> Path | None:
    """A directory variable's (or argument's) path; empty means unset, as for the XDG
    variables: ``FLIGHTREC_DIR=`` is the default directory, not the current one (``Path("")``)."""
    return Path(value).expanduser() if os.fspath(value) else None


def env_dir(var: str, environ: Any = None) -> Path | None:
    """The directory ``FLIGHTREC_DIR`` or ``FLIGHTREC_DUMP_DIR`` names, as ``start()`` reads it
    (None when unset), read alone: where to look for rings and dumps does not depend on
    whether the other ``FLIGHTREC_*`` variables parse."""
    value = (os.environ if environ is None else environ).get(var)
    return None if value is None else _ENV[_DIR_FIELDS[var]][1](value, var)


_DIR_FIELDS = {"FLIGHTREC_DIR": "dir", "FLIGHTREC_DUMP_DIR": "dump_dir"}


_ENV: dict[str, tuple[str, Any]] = {
    # field name -> (env var, parser(value, name))
    "size": ("FLIGHTREC_SIZE", parse_size),
    "block_size": ("FLIGHTREC_BLOCK_SIZE", parse_size),
    "pin_size": ("FLIGHTREC_PIN_SIZE", parse_size),
    "dir": ("FLIGHTREC_DIR", lambda v, n: _parse_dir(v)),
    "dump_dir": ("FLIGHTREC_DUMP_DIR", lambda v, n: _parse_dir(v)),
    "disabled": ("FLIGHTREC_DISABLE", parse_bool),
    "keep_ring": ("FLIGHTREC_KEEP_RING", parse_bool),
    "redact": ("FLIGHTREC_REDACT", parse_bool),
    "redact_rules": ("FLIGHTREC_REDACT_RULES", lambda v, n: _known_rules(_split(v), n)),
    "redact_keys": ("FLIGHTREC_REDACT_KEYS", lambda v, n: _split(v)),
    "redact_allow": ("FLIGHTREC_REDACT_ALLOW", lambda v, n: _split(v)),
    "sampling": ("FLIGHTREC_SAMPLING", lambda v, n: _checked_sampling(v, n)),
    "triggers": ("FLIGHTREC_TRIGGERS", lambda v, n: _parse_triggers(v, n)),
    "log_level": ("FLIGHTREC_LOG_LEVEL", lambda v, n: _parse_log_level(v, n)),
    "max_value": ("FLIGHTREC_MAX_VALUE", parse_size),
    "max_event": ("FLIGHTREC_MAX_EVENT", parse_size),
    "dump_interval": ("FLIGHTREC_DUMP_INTERVAL", lambda v, n: _parse_float(v, n)),
    "max_dumps": ("FLIGHTREC_MAX_DUMPS", lambda v, n: _parse_count(v, n)),
    "max_dump_bytes": ("FLIGHTREC_MAX_DUMP_BYTES", parse_size),
    "dump_on_exit": ("FLIGHTREC_DUMP_ON_EXIT", parse_bool),
    "resources": ("FLIGHTREC_RESOURCES", lambda v, n: _parse_resources(v, n)),
    "env_keys": ("FLIGHTREC_ENV_KEYS", lambda v, n: _split(v)),
}


def _parse_float(value: str, name: str) -> float:
    """A number of seconds, 0 or more; an error quotes the value as written (``'-1'``, not ``-1.0``)."""
    try:
        f = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, 0 or more, got {value!r}") from None
    return _finite(f, name, value)


def _parse_count(value: str, name: str) -> int:
    """A whole number, 0 or more: ``2.7`` dumps is refused, not cut to 2 (nor ``0.5`` to 0)."""
    try:
        f = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, 0 or more, got {value!r}") from None
    if not math.isfinite(f) or f < 0 or not f.is_integer():
        raise ConfigError(f"{name}: expected a whole number, 0 or more, got {value!r}")
    return int(f)


def _finite(f: float, name: str, written: str | None = None) -> float:
    if not math.isfinite(f) or f < 0:
        shown = repr(written) if written is not None else repr(f)
        raise ConfigError(f"{name}: expected a finite number of seconds, 0 or more, got {shown}")
    return f


_RESOURCES_MIN = 0.01  # seconds between samples: less would keep a core busy sampling


def _parse_resources(value: str, name: str) -> float:
    if value.strip().lower() in ("off", "no", "false", "0", ""):
        return 0.0
    return _sampling_interval(_parse_float(value, name), name, value)


def _sampling_interval(f: float, name: str, written: str | None = None) -> float:
    if 0 < f < _RESOURCES_MIN:
        shown = repr(written) if written is not None else repr(f)
        raise ConfigError(f"{name}: at least {_RESOURCES_MIN} seconds between resource samples (or off), got {shown}")
    return f


def _parse_triggers(value: str, name: str = "FLIGHTREC_TRIGGERS") -> tuple[str, ...]:
    v = value.strip().lower()
    if v in ("all", "1", "on", "yes", "true"):
        return ALL_TRIGGERS
    if v in ("none", "0", "off", "no", "false", ""):
        return ()
    return _known_triggers(_split(v), name)


def _known_triggers(names: tuple[str, ...], name: str) -> tuple[str, ...]:
    unknown = [n for n in names if n not in ALL_TRIGGERS]
    if unknown:
        raise ConfigError(f"{name}: unknown trigger(s) {unknown}; known: {', '.join(ALL_TRIGGERS)}")
    return names


def _known_rules(names: tuple[str, ...], name: str) -> tuple[str, ...]:
    from .redact.config import BUILTIN_RULES  # (light: the rules' names, no pattern compiled)

    unknown = [n for n in names if n not in BUILTIN_RULES]
    if unknown:
        raise ConfigError(f"{name}: unknown redaction rule(s) {unknown}; known: {', '.join(BUILTIN_RULES)}")
    return names


def _checked_sampling(value: str, name: str) -> str:
    """A sampling spec, parsed now so that a bad one fails ``start()`` (the recorder keeps the text)."""
    from .sampling import parse_sampling

    if value.strip():
        try:
            parse_sampling(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return value


def _parse_log_level(value: str, name: str) -> str:
    import logging

    level = value.strip().upper()
    if level.isdigit() or isinstance(logging.getLevelName(level), int):
        return level
    raise ConfigError(
        f"{name}: expected a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL or a number), got {value!r}"
    )


_FIELD_NAMES = {f.name for f in fields(Config)}


def resolve_config(env: dict[str, str] | None = None, **kwargs: Any) -> Config:
    """Build a :class:`Config` from keyword arguments, then ``FLIGHTREC_*`` variables, then defaults.

    Raises:
        ConfigError: an unknown argument or an unparsable value.
    """
    environ = os.environ if env is None else env
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in kwargs.items():
        if value is None or (key in ("dir", "dump_dir") and value == ""):  # ("": unset, as for the variable)
            continue
        if key not in _FIELD_NAMES:
            extra[key] = value
            continue
        values[key] = value
    given = list(values)
    source = {key: key for key in given}  # field -> the argument or variable that set it
    for name, (var, parse) in _ENV.items():
        if name in values:
            continue
        raw = environ.get(var)
        if raw is None:
            continue
        source[name] = var
        try:
            values[name] = parse(raw, var)
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{var}: {exc}") from None
    for key in given:
        values[key] = _argument(key, values[key])
    if extra:
        unknown = ", ".join(sorted(extra))
        raise ConfigError(f"unknown flightrec option(s): {unknown}")
    _check_pure_python(environ)
    cfg = Config(**values)
    _validate(cfg, source)
    return cfg


_PURE_PYTHON_VALUES = ("1", "true", "yes", "on", "0", "false", "no", "off", "")


def _check_pure_python(environ: Any) -> None:
    """``FLIGHTREC_PURE_PYTHON``, read when the C extensions load (at import), must be a flag."""
    value = environ.get("FLIGHTREC_PURE_PYTHON")
    if value is not None and value.strip().lower() not in _PURE_PYTHON_VALUES:
        raise ConfigError(f"FLIGHTREC_PURE_PYTHON: expected 1 or 0 (true/false, yes/no, on/off), got {value!r}")


_SIZES = frozenset({"size", "block_size", "pin_size", "max_value", "max_event", "max_dump_bytes"})
_BOOLS = frozenset({"disabled", "keep_ring", "redact", "dump_on_exit"})
_NAMES = frozenset({"redact_rules", "redact_keys", "redact_allow", "env_keys"})


def _argument(key: str, value: Any) -> Any:
    """A ``start()`` argument as its field holds it: a string means what the variable's would.

    Raises:
        ConfigError: a value of the wrong kind (named, with what was expected).
    """
    if key in ("dir", "dump_dir"):
        if isinstance(value, (str, os.PathLike)):
            return _parse_dir(value)
        raise ConfigError(f"{key}: expected a path, got {value!r}")
    if key == "triggers":
        if value is True or value is False:
            return ALL_TRIGGERS if value else ()
        if isinstance(value, str):
            return _parse_triggers(value, key)
        if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(t, str) for t in value):
            return _known_triggers(tuple(value), key)
        raise ConfigError(f"{key}: expected True, False or trigger names, got {value!r}")
    if key == "resources" and (value is True or value is False):
        return 1.0 if value else 0.0
    if isinstance(value, str) and key in _ENV:
        return _ENV[key][1](value, key)
    if key in _SIZES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return parse_size(value, key)
        raise ConfigError(f"{key}: expected a size such as 64MiB or a positive int, got {value!r}")
    if key == "max_dumps":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ConfigError(f"{key}: expected a count (an int, 0 or more), got {value!r}")
    if key in ("dump_interval", "resources"):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return _sampling_interval(float(value), key) if key == "resources" else float(value)
        raise ConfigError(f"{key}: expected a number of seconds (0 or more), got {value!r}")
    if key in _BOOLS:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        raise ConfigError(f"{key}: expected True or False, got {value!r}")
    if key in _NAMES:
        if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
            return _known_rules(tuple(value), key) if key == "redact_rules" else tuple(value)
        raise ConfigError(f"{key}: expected names (a list of str, or one comma-separated str), got {value!r}")
    if key in ("sampling", "log_level") and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a str, got {value!r}")
    return value


def _validate(cfg: Config, source: dict[str, str] | None = None) -> None:
    """Check the sizes against each other. ``source``: which argument or variable set a field.

    The defaults of ``pin_size`` and ``max_event`` shrink to fit a small ring or block; a
    value given that does not fit is an error (it would not be what was asked for).
    """
    source = source or {}
    if cfg.block_size < 4096:
        name = source.get("block_size", "block_size")
        raise ConfigError(f"{name}: a block must be at least 4KiB (4096 bytes), got {cfg.block_size}")
    least = 4 * cfg.block_size + 8192
    if cfg.size < least:
        # Named as the user set it, with the size that would do: a bare "too small" leaves them guessing.
        if "block_size" in source and "size" not in source:
            raise ConfigError(
                f"{source['block_size']}: a ring of {cfg.size} bytes (size) holds fewer than 4 blocks of "
                f"{cfg.block_size} bytes; give a block_size of at most {(cfg.size - 8192) // 4} bytes"
            )
        raise ConfigError(
            f"{source.get('size', 'size')}: {cfg.size} bytes is too small for 4 blocks of {cfg.block_size} "
            f"bytes (block_size) and the header: the ring needs at least {least} bytes ({_binary(least)})"
        )
    pin_max = max(4096, cfg.size // 8 // 4096 * 4096)
    if cfg.pin_size > pin_max:
        if "pin_size" in source:
            raise ConfigError(
                f"{source['pin_size']}: the pinned area can take at most 1/8 of the ring ({pin_max} bytes "
                f"of size {cfg.size}), got {cfg.pin_size}"
            )
        object.__setattr__(cfg, "pin_size", pin_max)
    if cfg.max_event > cfg.block_size - 64:
        if "max_event" in source:
            raise ConfigError(
                f"{source['max_event']}: an event must fit in a block ({cfg.block_size - 64} bytes at most "
                f"with block_size {cfg.block_size}), got {cfg.max_event}"
            )
        object.__setattr__(cfg, "max_event", cfg.block_size - 64)
