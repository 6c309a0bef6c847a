"""The keyed pseudonym of a replaced value: the pure-Python twin of ``_redact_native.Keyed``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

# The pseudonym: the first _PSEUDO_BYTES of keyed BLAKE2s (RFC 7693: BLAKE2's own keyed
# mode, a MAC and PRF that needs no HMAC construction around it). Three bytes are six
# hex digits: short enough to read, and enough to tell apart the values of one event.
_PSEUDO_BYTES = 3
_KEY_BYTES = 32  # BLAKE2s' maximum key size
_PSEUDO_CACHE_MAX = 8192  # values the pure-Python twin remembers before it starts over


def _utf8(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # lone surrogates
        return value.encode("utf-8", "surrogatepass")


def _python_keyed(key: bytes) -> Callable[[str], str]:
    """The pure-Python twin of ``_redact_native.Keyed(key, _PSEUDO_BYTES)``.

    Its hash costs three calls, so it keeps a small cache of values seen (the C hash
    costs less than a lookup and keeps none).
    """
    template = hashlib.blake2s(digest_size=_PSEUDO_BYTES, key=key)
    cache: dict[str, str] = {}

    def keyed(value: str) -> str:
        p = cache.get(value)
        if p is None:
            h = template.copy()
            h.update(_utf8(value))
            p = h.hexdigest()
            if len(cache) >= _PSEUDO_CACHE_MAX:
                cache.clear()
            cache[value] = p
        return p

    return keyed
