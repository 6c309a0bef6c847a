"""Configuration from arguments and FLIGHTREC_* variables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flightrec.config import env_dir, parse_size, resolve_config
from flightrec.errors import ConfigError

from .conftest import child_env, run_child


class TestSizes:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("64MiB", 64 * 2**20), ("512k", 512_000), ("1048576", 2**20), ("1.5GiB", int(1.5 * 2**30)), (4096, 4096)],
    )
    def test_parse_size(self, text: str | int, expected: int) -> None:
        """Sizes accept binary and decimal units, plain numbers and ints."""
        assert parse_size(text) == expected

    @pytest.mark.parametrize("bad", ["", "lots", "-1", "12XB", 0])
    def test_bad_sizes_raise_config_error(self, bad: str | int) -> None:
        """An unparsable size raises ConfigError naming the value."""
        with pytest.raises(ConfigError):
            parse_size(bad)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1TiB", 2**40),
            ("2tib", 2**41),
            ("3Ti", 3 * 2**40),
            ("1PiB", 2**50),
            ("1T", 10**12),
            ("1TB", 10**12),
            ("1P", 10**15),
            ("64mb", 64 * 10**6),
            ("64M", 64 * 10**6),
            ("64Mi", 64 * 2**20),
            ("0.5TiB", 2**39),
            ("1125899906842624", 2**50),
        ],
    )
    def test_every_unit_up_to_the_limit_parses(self, text: str, expected: int) -> None:
        """The limit is 1PiB, so TiB and PiB (and T, TB, P, PB) parse, as K to G do, in any case."""
        assert parse_size(text) == expected

    @pytest.mark.parametrize(
        "big",
        ["2PiB", "1025TiB", "1125899906842625", "9" * 400, "9" * 5000, 10**5000],
        ids=["2PiB", "1025TiB", "2**50+1", "400 nines", "5000 nines", "int 10**5000"],
    )
    def test_a_size_over_the_limit_says_so(self, big: str | int) -> None:
        """Over 1PiB is 'too large', exactly (no float rounding 2**50 + 1 down), however many
        digits (400 nines made a float infinity: OverflowError), and the message stays short."""
        with pytest.raises(ConfigError, match=r"^size: .* is too large \(at most 1PiB\)$") as info:
            parse_size(big)
        assert len(str(info.value)) < 120

    def test_the_error_lists_the_units(self) -> None:
        """An unknown unit's message names every unit that parses."""
        with pytest.raises(ConfigError) as info:
            parse_size("1XiB", "FLIGHTREC_SIZE")
        assert str(info.value) == (
            "FLIGHTREC_SIZE: cannot parse size '1XiB' (a number of bytes, or with units B, KiB, MiB, GiB, TiB, "
            "PiB (powers of 1024) or KB, MB, GB, TB, PB (powers of 1000); e.g. 64MiB, 512KiB, 1048576)"
        )

    def test_a_ring_too_small_for_its_blocks_names_the_setting_and_the_least_size(self) -> None:
        """The error names what the user set (variable or argument) and the size that would do,
        not a bare 'size 1000 is too small ... need at least 4 blocks'."""
        with pytest.raises(ConfigError) as info:
            resolve_config(env={"FLIGHTREC_SIZE": "100k"})
        assert str(info.value) == (
            "FLIGHTREC_SIZE: 100000 bytes is too small for 4 blocks of 65536 bytes (block_size) and the header: "
            "the ring needs at least 270336 bytes (264KiB)"
        )
        assert resolve_config(env={"FLIGHTREC_SIZE": "264KiB"}).size == 270336  # (the size said does do)
        with pytest.raises(ConfigError, match=r"^size: 1048576 bytes .* at least 4202496 bytes \(4104KiB\)$"):
            resolve_config(env={}, size="1MiB", block_size="1MiB")
        with pytest.raises(ConfigError) as info:
            resolve_config(env={"FLIGHTREC_BLOCK_SIZE": "1GiB"})
        assert str(info.value) == (
            "FLIGHTREC_BLOCK_SIZE: a ring of 67108864 bytes (size) holds fewer than 4 blocks of 1073741824 bytes; "
            "give a block_size of at most 16775168 bytes"
        )
        assert resolve_config(env={"FLIGHTREC_BLOCK_SIZE": "16775168"}).block_size == 16775168
        with pytest.raises(ConfigError, match=r"^FLIGHTREC_BLOCK_SIZE: a block must be at least 4KiB"):
            resolve_config(env={"FLIGHTREC_BLOCK_SIZE": "1k"})

    def test_a_huge_size_variable_does_not_crash_the_agent(self, tmp_path: Path) -> None:
        """`import flightrec.auto` with FLIGHTREC_SIZE of 400 digits prints one line and runs unrecorded."""
        result = run_child("import flightrec.auto\nprint('ran')\n", tmp_path, FLIGHTREC_SIZE="9" * 400)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "ran\n"
        assert "Traceback" not in result.stderr and "is too large (at most 1PiB)" in result.stderr


class TestEnvironment:
    def test_an_empty_directory_variable_or_argument_is_unset_not_the_current_directory(self, tmp_path: Path) -> None:
        """FLIGHTREC_DIR= (empty) is the default, as an empty XDG variable is, not Path("") ("."):
        the ring and dumps went into whatever directory the agent ran in. dir="" likewise
        leaves the variable to decide."""
        cfg = resolve_config(env={"FLIGHTREC_DIR": "", "FLIGHTREC_DUMP_DIR": ""})
        assert (cfg.dir, cfg.dump_dir) == (None, None)
        assert env_dir("FLIGHTREC_DIR", {"FLIGHTREC_DIR": ""}) is None
        assert resolve_config(env={"FLIGHTREC_DIR": str(tmp_path)}, dir="").dir == tmp_path
        assert resolve_config(env={}, dump_dir="").dump_dir is None
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        dumps = tmp_path / "dumps"
        result = subprocess.run(
            [sys.executable, "-c", "import flightrec\nflightrec.start()\nflightrec.dump()\n"],
            cwd=cwd,
            env=child_env(tmp_path, FLIGHTREC_DIR="", FLIGHTREC_DUMP_DIR=str(dumps)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert list(cwd.iterdir()) == [] and len(list(dumps.glob("*.frec"))) == 1

    def test_env_dir_reads_the_directory_as_start_does(self, tmp_path: Path) -> None:
        """env_dir: FLIGHTREC_DIR / FLIGHTREC_DUMP_DIR as resolve_config reads them, unset -> None."""
        env = {"FLIGHTREC_DIR": "~/x", "FLIGHTREC_DUMP_DIR": str(tmp_path), "FLIGHTREC_SIZE": "bad"}
        assert env_dir("FLIGHTREC_DIR", env) == Path("~/x").expanduser()
        assert env_dir("FLIGHTREC_DUMP_DIR", env) == tmp_path
        assert env_dir("FLIGHTREC_DIR", {}) is None

    def test_arguments_win_over_environment(self) -> None:
        """An explicit argument beats the variable; the variable beats the default."""
        env = {"FLIGHTREC_SIZE": "8MiB", "FLIGHTREC_REDACT": "0", "FLIGHTREC_TRIGGERS": "excepthook,signals"}
        cfg = resolve_config(env=env)
        assert cfg.size == 8 * 2**20 and cfg.redact is False and cfg.triggers == ("excepthook", "signals")
        assert resolve_config(env=env, size="16MiB").size == 16 * 2**20

    def test_bad_variable_names_itself(self) -> None:
        """A bad FLIGHTREC_* value raises ConfigError naming the variable."""
        with pytest.raises(ConfigError, match="FLIGHTREC_DISABLE"):
            resolve_config(env={"FLIGHTREC_DISABLE": "maybe"})
        with pytest.raises(ConfigError, match="FLIGHTREC_TRIGGERS"):
            resolve_config(env={"FLIGHTREC_TRIGGERS": "excepthook,telepathy"})

    @pytest.mark.parametrize(
        ("var", "bad", "says"),
        [
            ("FLIGHTREC_SAMPLING", "token=bogus", "bad policy 'bogus'"),
            ("FLIGHTREC_SAMPLING", "note=fraction:2", "fraction"),
            ("FLIGHTREC_REDACT_RULES", "email,nosuchrule", r"unknown redaction rule\(s\) \['nosuchrule'\]"),
            ("FLIGHTREC_LOG_LEVEL", "loud", "expected a logging level"),
            ("FLIGHTREC_RESOURCES", "nan", "finite"),
            ("FLIGHTREC_RESOURCES", "1e-9", "at least 0.01 seconds"),
            ("FLIGHTREC_DUMP_INTERVAL", "inf", "finite"),
            ("FLIGHTREC_DUMP_INTERVAL", "-1", "expected a finite number of seconds, 0 or more, got '-1'$"),
            ("FLIGHTREC_DUMP_INTERVAL", "soon", "expected a number of seconds, 0 or more, got 'soon'$"),
            ("FLIGHTREC_RESOURCES", "-2", "expected a finite number of seconds, 0 or more, got '-2'$"),
            ("FLIGHTREC_RESOURCES", "0.001", r"at least 0.01 seconds between resource samples .*, got '0.001'$"),
            ("FLIGHTREC_MAX_DUMPS", "nan", "expected a whole number, 0 or more, got 'nan'"),
            ("FLIGHTREC_MAX_DUMPS", "2.7", "expected a whole number"),
            ("FLIGHTREC_MAX_DUMPS", "-1", "expected a whole number, 0 or more, got '-1'$"),
            ("FLIGHTREC_MAX_DUMPS", "many", "expected a whole number, 0 or more, got 'many'"),
            ("FLIGHTREC_SIZE", "99999999999999999999999", "too large"),
            ("FLIGHTREC_PURE_PYTHON", "x", "expected 1 or 0"),
        ],
    )
    def test_a_bad_spec_fails_at_start_naming_its_variable(self, var: str, bad: str, says: str) -> None:
        """Sampling specs, rule names and log levels are checked when the config is built, not later."""
        with pytest.raises(ConfigError, match=f"^{var}: .*{says}"):
            resolve_config(env={var: bad})

    def test_sizes_given_must_fit_the_ring_the_defaults_shrink(self) -> None:
        """A pinned area over 1/8 of the ring, or an event larger than a block, is an error when
        asked for (argument or variable), and the defaults shrink to fit a small ring."""
        small = resolve_config(env={}, size="1MiB", block_size="16KiB")
        assert small.pin_size == 128 * 1024 and small.max_event == 16 * 1024 - 64
        with pytest.raises(ConfigError, match=r"^pin_size: .*at most 1/8 of the ring \(131072 bytes"):
            resolve_config(env={}, size="1MiB", pin_size="512KiB")
        with pytest.raises(ConfigError, match=r"^FLIGHTREC_PIN_SIZE: "):
            resolve_config(env={"FLIGHTREC_SIZE": "1MiB", "FLIGHTREC_PIN_SIZE": "512KiB"})
        with pytest.raises(ConfigError, match=r"^FLIGHTREC_MAX_EVENT: an event must fit in a block \(16320 bytes"):
            resolve_config(env={"FLIGHTREC_MAX_EVENT": "1MiB"}, block_size="16KiB")
        assert resolve_config(env={}, size="1MiB", pin_size="128KiB").pin_size == 128 * 1024

    @pytest.mark.parametrize("flag", ["1", "0", "TRUE", " off ", ""])
    def test_pure_python_flags(self, flag: str) -> None:
        resolve_config(env={"FLIGHTREC_PURE_PYTHON": flag})

    def test_good_specs_pass_unchanged(self) -> None:
        """A valid sampling spec is kept as its text; a level may be a name (any case) or a number."""
        env = {"FLIGHTREC_SAMPLING": "token=rate:20,note=off", "FLIGHTREC_LOG_LEVEL": "warning"}
        cfg = resolve_config(env=env)
        assert (cfg.sampling, cfg.log_level) == ("token=rate:20,note=off", "WARNING")
        assert resolve_config(env={"FLIGHTREC_LOG_LEVEL": " 25 "}).log_level == "25"
        assert resolve_config(env={}, redact_rules=["email", "card"]).redact_rules == ("email", "card")

    def test_a_string_argument_means_what_its_variable_would(self) -> None:
        """start(max_event="4KiB", keep_ring="no", triggers="signals,atexit"...) parse as the variables do."""
        cfg = resolve_config(
            env={},
            max_event="4KiB",
            max_value="1k",
            max_dump_bytes="1GiB",
            dump_interval="2.5",
            max_dumps="3",
            resources="off",
            keep_ring="no",
            triggers="signals,atexit",
            redact_rules="email,phone",
        )
        assert (cfg.max_event, cfg.max_value, cfg.max_dump_bytes) == (4096, 1000, 2**30)
        assert (cfg.dump_interval, cfg.max_dumps, cfg.resources, cfg.keep_ring) == (2.5, 3, 0.0, False)
        with pytest.raises(ConfigError, match=r"^max_dumps: expected a whole number"):
            resolve_config(env={}, max_dumps="0.5")  # (not 0, which means no cap at all)
        assert cfg.triggers == ("signals", "atexit") and cfg.redact_rules == ("email", "phone")
        assert resolve_config(env={}, triggers=["signals"], keep_ring=1, resources=True).triggers == ("signals",)

    @pytest.mark.parametrize(
        ("key", "bad"),
        [
            ("max_event", [1]),
            ("max_event", 2.5),
            ("max_value", "abc"),
            ("dump_interval", "soon"),
            ("max_dumps", -1),
            ("resources", "often"),
            ("keep_ring", 3),
            ("triggers", 5),
            ("triggers", ("telepathy",)),
            ("redact_rules", [1]),
            ("redact_rules", ["email", "telepathy"]),
            ("redact_rules", "email,telepathy"),
            ("sampling", 5),
            ("sampling", "token=bogus"),
            ("log_level", "loud"),
            ("resources", 1e-9),
            ("resources", float("nan")),
            ("dump_interval", float("inf")),
            ("size", 2**80),
            ("dir", 5),
        ],
    )
    def test_a_bad_argument_names_itself(self, key: str, bad: object) -> None:
        """A value of the wrong kind raises ConfigError naming the option (never a TypeError later)."""
        with pytest.raises(ConfigError, match=key):
            resolve_config(env={}, **{key: bad})

    def test_unknown_argument(self) -> None:
        """A misspelt start() option raises ConfigError."""
        with pytest.raises(ConfigError, match="sise"):
            resolve_config(env={}, sise="1MiB")

    def test_auto_with_a_bad_variable_warns_and_runs_unrecorded(self, frdir: Path) -> None:
        """`import flightrec.auto` with a broken variable prints one line and the agent carries on."""
        result = run_child(
            """
            import flightrec.auto, flightrec
            print("agent ran", flightrec.record("note", x=1))
            """,
            frdir,
            FLIGHTREC_SIZE="huge",
        )
        assert result.returncode == 0
        assert "agent ran None" in result.stdout
        assert "flightrec: not recording" in result.stderr and "FLIGHTREC_SIZE" in result.stderr
