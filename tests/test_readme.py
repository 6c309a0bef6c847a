"""The README's reference tables say what the code does: every CLI flag, every FLIGHTREC_* variable.

(The TUI's key table is checked against the key map in ``tests/tui/test_model.py``.)
"""

from __future__ import annotations

import argparse
import re

from flightrec.cli.main import VERBS, build_parser
from flightrec.config import _ENV

from .conftest import REPO

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    """The text of the README section ``## title``, up to the next ``## `` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def cli_rows() -> dict[str, str]:
    """Each verb's row of the CLI table (a row may describe several verbs: ``open`` / ``attach`` / ``tui``)."""
    rows: dict[str, str] = {}
    for line in section("CLI").splitlines():
        if not line.startswith("| `flightrec "):
            continue
        first_cell = line.split(" | ")[0]
        for verb in re.findall(r"`(?:flightrec )?([a-z]+)\b", first_cell):
            rows.setdefault(verb, line)
    return rows


def option_groups(verb: str) -> list[tuple[str, ...]]:
    """The options ``flightrec VERB`` accepts, each with its aliases (``-o``, ``--out``), without ``-h``."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [
        tuple(a.option_strings) for a in sub.choices[verb]._actions if a.option_strings and "-h" not in a.option_strings
    ]


def options(verb: str) -> set[str]:
    """Every option string ``flightrec VERB`` accepts."""
    return {o for group in option_groups(verb) for o in group}


def names_flag(text: str, flag: str) -> bool:
    """``flag`` appears in ``text`` as a flag (``--dir``, not part of ``--dir-x`` or a word)."""
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


class TestCliTable:
    def test_every_verb_has_a_row(self) -> None:
        """Each command the CLI has is described in the README's CLI table."""
        assert set(VERBS) <= set(cli_rows()), set(VERBS) - set(cli_rows())

    def test_every_flag_of_every_verb_is_in_its_row(self) -> None:
        """Each flag a command accepts appears in that command's row, so a user can find it."""
        rows = cli_rows()
        missing = {
            verb: [group for group in option_groups(verb) if not any(names_flag(rows[verb], o) for o in group)]
            for verb in VERBS
        }
        assert {v: m for v, m in missing.items() if m} == {}

    def test_no_row_names_a_flag_the_verb_lacks(self) -> None:
        """A flag in a command's row exists (a renamed or removed flag does not stay documented)."""
        rows = cli_rows()
        for verb in VERBS:
            first_cell = rows[verb].split(" | ")[0]
            # Only this verb's part of a row shared with others (open / attach / tui).
            part = next(p for p in first_cell.split(" / ") if re.match(rf"\|? ?`(flightrec )?{verb}\b", p.strip("| ")))
            named = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", part))
            assert named <= options(verb), (verb, named - options(verb))


class TestConfigurationTable:
    def test_every_variable_is_documented(self) -> None:
        """Each FLIGHTREC_* variable the configuration reads, and the two read elsewhere, has a row."""
        table = section("Configuration")
        names = {var for var, _ in _ENV.values()} | {"FLIGHTREC_INTEGRATIONS", "FLIGHTREC_PURE_PYTHON"}
        documented: set[str] = set()
        for row in table.splitlines():
            first = row.split(" | ")[0]
            for base in re.findall(r"`(FLIGHTREC_\w+)`", first):
                documented.add(base)
                # `FLIGHTREC_REDACT_RULES` / `_KEYS` / `_ALLOW`: a short name replaces the base's last part(s).
                parts = base.split("_")
                for short in re.findall(r"/ `(_\w+)`", first):
                    candidates = ["_".join(parts[:k]) + short for k in range(len(parts) - 1, 0, -1)]
                    documented.add(next((c for c in candidates if c in names), candidates[0]))
        assert names <= documented, names - documented
        assert documented <= names, documented - names
