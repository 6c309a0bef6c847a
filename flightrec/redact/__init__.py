"""PII and secret redaction for flightrec events.

The :class:`Redactor` turns any Python value into msgpack-able builtins (``dict``
with ``str`` keys, ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``,
``bytes``) and replaces personal data and credentials on the way with keyed
pseudonyms: ``<KIND:xxxxxx>``, where ``xxxxxx`` is keyed BLAKE2s(key, value)
with a 3-byte digest (BLAKE2's keyed mode is a MAC, as HMAC is). The same value
gets the same pseudonym within one Redactor (so events stay correlatable) and a
different one under another key.

Rules (rule name -> KIND label, upper-cased):

* text patterns: ``email`` (also internationalized: ``josé@exämple.de``, ``用户@例子.广告``;
  where a script written without blanks runs into an address, the change of script is
  where it begins and ends, and in such a script alone it takes the words before it along),
  ``phone`` (international ``+CC ...``, NANP
  ``(202) 555-0143`` / ``202-555-0143`` / ``1-800-...``, trunk-0 national
  ``020 7946 0958``, French ``06 12 34 56 78``, the ``00`` prefix ``0049 30
  1234567``), ``card`` (13-19 digits, Luhn, leading 2-6), ``ssn``
  (``123-45-6789``, never-issued areas excluded), ``ipv4``, ``ipv6``, ``iban``
  (country length + mod-97), ``openai_key``, ``anthropic_key``, ``aws_key``,
  ``github_token``, ``gitlab_token`` (``glpat-``...), ``huggingface_token``
  (``hf_``), ``slack_token`` (also app-level ``xapp-``), ``google_key``,
  ``google_oauth_token`` (``ya29.``), ``stripe_key``, ``stripe_webhook_secret``
  (``whsec_``), ``sendgrid_key`` (``SG.``), ``npm_token`` (``npm_``),
  ``pypi_token`` (``pypi-AgE``...), ``jwt``,
  ``bearer`` (the token after ``Bearer``), ``auth_header`` (the value of an
  ``Authorization:`` header), ``private_key`` (PEM blocks) and
  ``url_password`` (only the password of ``scheme://user:pass@host``);
* ``secret``: the whole value of a dict key whose normalized name ends in a
  secret word (``password``, ``token``, ``api_key``, ``cookie``, ...), or whose
  last segment is a short one (``pin``, ``otp``, ``auth``, ``cvv``: ``card_pin``
  but not ``spinner``); the same names in text, before a ``:`` or ``=``
  (``password=...``, ``"api_key": "..."``, ``X-Api-Key: ...``, a ``Cookie:`` line),
  or before a quoted word after a blank (``--password 'S3cret99'``: a word that is
  not all letters, not a path or a glob),
  unless what follows is prose or code, not a value (``Password: must be...``,
  ``token = get_token()``, ``auth=auth``, ``password: str``, ``"********"``) or a
  template's stand-in (``Bearer ${token}``, ``{{token}}``, ``<token>``, ``%s``, also
  after ``Authorization:``; a ``$`` variable is one when its name is upper-case,
  ``$API_KEY``, or a secret's, ``$token``/``$apiKey``: ``$ecret`` or ``$ecret99`` is a value);
* user ``extra_patterns`` and ``extra_keys`` (in dicts and, as the built-in
  names, in text; ``allow_keys`` keeps dict values only, never relaxes text).

Speed (this runs on the recorder's hot path):

* **One regex pass per string.** Every pattern rule is anchored on a literal
  "trigger" character: ``@`` for e-mail, ``-`` for ``sk-``/``xoxb-``/PEM,
  ``:`` for URLs and IPv6, ``:``/``=`` for secret-named keys in text, ``_`` for
  ``ghp_``/``sk_live_``, ``y`` for ``ya29.``, a digit for numbers,
  and so on. All rules are compiled into one alternation whose top-level
  branches each start with such a literal, so ``re`` compiles a charset prefix
  and skips in C from one trigger character to the next instead of trying every
  rule at every position. Context *before* the trigger (the ``sk`` of ``sk-``,
  an e-mail's local part, an IBAN's country code) is checked by look-behinds
  and re-attached when the replacement is spliced in. Cheap validations (octet
  ranges, SSN areas, digit counts, version words) are look-arounds too; only
  Luhn, mod-97 and IPv6 structure run in Python, and only on candidates.
* Whole-string ids (hex trace ids, SHAs, UUIDs, ISO timestamps) are recognised
  with ``str`` methods and never scanned: their many digits would each be a
  trigger.
* **A bounded two-generation cache** maps seen strings to their redacted form,
  since agent traffic repeats (system prompts, earlier messages, model names).
* Strings are truncated to ``max_str`` *before* scanning, so a 10 MB string
  costs what its stored 4 KiB costs; strings shorter than 5 characters hold no
  built-in match (the shortest is ``pin=1``) and are not scanned.

Bytes are scanned as UTF-8 text (HTTP bodies, JSON), truncated to ``max_bytes``
first (a value the cut splits is replaced whole, as in a string); bytes that are
not UTF-8 (Latin-1 text, binary framing around a text field) pass the scan as
lone surrogates (``surrogateescape``) and come back unchanged, so only the
replaced values differ from the input, still as ``bytes``.

Full-width forms (U+FF01-FF5E: ``＋４９ ３０ １２３４５６７８``, ``４１１１ １１１１ …``) and
no-break or ideographic spaces (U+00A0, U+202F, U+3000) are read as their ASCII forms,
character for character: a value written with them is replaced where its ASCII form would
be, and only there (the C prefilters test that form too).

Known gaps, by design (to keep false positives near zero): phone numbers
without any separator or ``+`` (indistinguishable from ids and epochs), national
numbers with a one-digit area code after the trunk 0 (``03-1234-5678``, however wide its
digits), a ``+`` and thousands then a decimal comma or a currency
(``+1 234 567,89 €``, an amount, not a phone), SSNs
written with spaces, lower-case IBANs, URL passwords containing a raw ``/``,
generic high-entropy strings without a known prefix, and names or postal
addresses (no NER). Numbers glued to a letter or preceded by ``-``/``.``
(``ORD-2024-000123``, ``v1.2.3.4``) are treated as parts of identifiers.

The key is never kept: only the hash's keyed state is, and a Redactor refuses to be
pickled or copied.
"""

from __future__ import annotations

from .checks import iban_ok, luhn_ok
from .config import BUILTIN_RULES, RedactConfig, normalize_key
from .redactor import CYCLE, MAX_DEPTH, Redactor, describe_header

__all__ = [
    "BUILTIN_RULES",
    "CYCLE",
    "MAX_DEPTH",
    "RedactConfig",
    "Redactor",
    "describe_header",
    "iban_ok",
    "luhn_ok",
    "normalize_key",
]
