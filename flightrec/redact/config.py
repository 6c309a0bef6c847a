"""The redactor's settings (:class:`RedactConfig`, the built-in rule names) and the key-name rule.

The key-name rule replaces the whole value of a dict key whose normalized name ends in a
secret word: :func:`normalize_key` is that normalization, and the secret endings (the
deny-list), the harmless names that end like one, and the key classes live here with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedactConfig:
    """Settings for a :class:`Redactor`.

    Attributes:
        enabled: ``False`` turns every rule off (patterns, key names, callback);
            the walk still sanitizes values (truncation, type conversion).
        rules: Built-in rule names to run; ``None`` runs all of
            :data:`BUILTIN_RULES`.
        disabled_rules: Rule names (built-in or extra) not to run.
        extra_patterns: ``(rule_name, regex)`` pairs; matches are replaced by
            ``<RULE_NAME:hash>``. They run before the built-in rules.
        extra_keys: Extra secret key-name endings (normalized like keys are). Like
            the built-in names they count in text too (``ssn_last4=1234``,
            ``"ssnLast4": "1234"``) wherever the ``secret`` rule runs.
        allow_keys: Normalized key names, or dotted paths such as
            ``"tool.args.email"``, whose values are never redacted. Dict keys
            only: the same name in text (``password=...``) is still redacted.
        callback: ``(path, value) -> replacement | None`` called for every
            string value before the built-in handling; ``None`` keeps it.
        max_str: Maximum characters kept from a string value; only these are
            scanned. (Placeholders can make the stored text a little longer
            than the kept input, since ``<EMAIL:3f9a0c>`` may replace ``a@b.io``.)
        max_bytes: Maximum stored bytes per bytes value.
        max_depth: Maximum container nesting depth kept.
        max_items: Maximum items kept per list or dict.
        cache_size: Maximum number of cached redacted strings.
    """

    enabled: bool = True
    rules: frozenset[str] | None = None
    disabled_rules: frozenset[str] = frozenset()
    extra_patterns: tuple[tuple[str, str], ...] = ()
    extra_keys: tuple[str, ...] = ()
    allow_keys: tuple[str, ...] = ()
    callback: Callable[[str, str], str | None] | None = None
    max_str: int = 4096
    max_bytes: int = 4096
    max_depth: int = 64
    max_items: int = 1000
    cache_size: int = 4096


# Order matters only for reporting; the scanner's priority is fixed by _FRAGS.
BUILTIN_RULES: tuple[str, ...] = (
    "private_key",
    "url_password",
    "jwt",
    "anthropic_key",
    "openai_key",
    "aws_key",
    "github_token",
    "gitlab_token",
    "huggingface_token",
    "slack_token",
    "google_key",
    "stripe_key",
    "stripe_webhook_secret",
    "sendgrid_key",
    "google_oauth_token",
    "npm_token",
    "pypi_token",
    "auth_header",
    "bearer",
    "email",
    "iban",
    "ipv6",
    "ipv4",
    "ssn",
    "phone",
    "card",
    "secret",  # key-name rule: value of a key such as "password" or "api_key"
)

# --------------------------------------------------------------------------
# Key-name rule
# --------------------------------------------------------------------------

# Normalized key endings whose value is replaced wholesale by <SECRET:...>.
# Matching is on the *end* of the normalized name, so "access_token" matches
# "token" while "token_count", "tokens" and "max_tokens" do not.
_SECRET_KEY_ENDINGS: tuple[str, ...] = (
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "_pwd",  # "db_pwd"; a bare "pwd"/"PWD" is the shell's working directory
    "secret",
    "secrets",
    "secret_key",
    "token",
    "api_key",
    "api_keys",
    "apikey",
    "access_key",
    "private_key",
    "authorization",
    "cookie",
    "cookies",
    "credential",
    "credentials",
    "session_id",
    "sessionid",
    "passcode",
    "signing_key",
    "encryption_key",
    # Short words only as the last segment of a name ("card_pin", "x-auth", "userOtp"):
    # as bare endings they would take "spin", "oauth" or "author"-like names.
    "_pin",
    "_otp",
    "totp",
    "_auth",
    "_cvv",
    "_cvc",
)

# Whole normalized names that are secrets (the short words above, alone).
_SECRET_KEY_NAMES = frozenset({"pin", "otp", "auth", "cvv", "cvc"})

# Names that end like a secret but are well-known harmless LLM / pagination
# fields (tokenizer special tokens, page cursors).
_BENIGN_KEYS = frozenset(
    {
        "max_token",
        "num_token",
        "n_token",
        "bos_token",
        "eos_token",
        "pad_token",
        "unk_token",
        "sep_token",
        "cls_token",
        "mask_token",
        "stop_token",
        "start_token",
        "end_token",
        "page_token",
        "next_page_token",
        "prev_page_token",
        "next_token",
        "continuation_token",
        "cancellation_token",
    }
)

_KEY_NORMAL, _KEY_SECRET, _KEY_ALLOWED = 0, 1, 2


def _secret_name(norm: str) -> bool:
    """Whether a normalized key name (see :func:`normalize_key`) names a secret."""
    return norm not in _BENIGN_KEYS and (norm.endswith(_SECRET_KEY_ENDINGS) or norm in _SECRET_KEY_NAMES)


_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_KEY_SEP = re.compile(r"[^a-z0-9]+")
_PATH_INDEX = re.compile(r"\[\d+\]")


def normalize_key(name: str) -> str:
    """Normalize a key name for the key-name rules.

    Lowercases and turns camelCase, ``-``, spaces and other separators into
    single underscores: ``"X-Api-Key"`` and ``"apiKey"`` both become
    ``"x_api_key"``/``"api_key"``.

    Args:
        name: The raw key name.

    Returns:
        The normalized name.
    """
    name = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name))
    return _KEY_SEP.sub("_", name.lower()).strip("_")
