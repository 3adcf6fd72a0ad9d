"""The parser and entry points (dotaudit/cli/__init__.py): unknown options, the examples
each ``--help`` ends with, lazy subcommand imports, ``python -m dotaudit`` and the
console script."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dotaudit.cli import COMMANDS, EXAMPLES_HEADING, build_parser
from tests.conftest import ROOT
from tests.test_cli.command import dotaudit

ARGUMENTS = {
    "events": ["x.pcap"],
    "analyze": ["x.pcap"],
    "report": ["x.json"],
    "probe": ["127.0.0.1"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unknown_option_shows_the_subcommands_usage(command: str) -> None:
    result = dotaudit(command, *ARGUMENTS[command], "--bogus")
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: dotaudit {command} ")
    assert f"dotaudit {command}: error: unrecognized arguments: --bogus" in result.stderr


def test_an_unknown_option_before_the_subcommand_shows_the_top_usage() -> None:
    result = dotaudit("--bogus", "events", "x.pcap")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: dotaudit [-h]")
    assert "dotaudit: error: unrecognized arguments: --bogus" in result.stderr


def examples(command: str) -> list[str]:
    result = dotaudit(command, "--help")
    assert result.returncode == 0, result.stderr
    _, _, tail = result.stdout.partition("\n" + EXAMPLES_HEADING)
    assert tail, f"{command} --help has no examples"
    return [line.strip() for line in tail.splitlines() if line.strip()]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_help_ends_with_examples_that_parse(command: str) -> None:
    lines = examples(command)
    assert 2 <= len(lines) <= 4, lines
    for line in lines:
        words = shlex.split(line)
        assert words[:2] == ["dotaudit", command], line
        args, unknown = build_parser().parse_known_args(words[1:])
        assert unknown == [] and args.command == command, line
        for word in words:  # a sample capture or policy named in an example exists
            if word.startswith("pcaps/") and not word.endswith("/"):
                assert (ROOT / word).is_file(), word


def test_analyze_examples_run_on_the_samples(tmp_path: Path) -> None:
    """The examples without an output file run as printed, from the checkout."""
    for line in examples("analyze"):
        if " -o " in line:
            continue
        words = shlex.split(line)
        result = subprocess.run(
            [sys.executable, "-m", "dotaudit", *words[1:]],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert result.returncode in (0, 1), (line, result.stderr)
        assert result.stdout.startswith("dotaudit "), line  # --format text


def imported_by(*argv: str) -> set[str]:
    """The modules a command line imports."""
    code = (
        "import sys\nfrom dotaudit.cli import main\n"
        f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "for m in sys.modules:\n    print('module', m)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    lines = (line.split() for line in done.stdout.splitlines() if line.startswith("module "))
    return {words[1] for words in lines}


def test_events_and_analyze_start_without_the_probe() -> None:
    probe = imported_by("probe", "--help")
    assert "dotaudit.probe.registry" in probe and "ssl" in probe  # the check can see them
    for argv in (("events", "--help"), ("analyze", "--help")):
        loaded = imported_by(*argv)
        assert not {m for m in loaded if m.startswith(("dotaudit.probe", "dns", "ssl"))}, argv
        assert "dotaudit.cli.probe" not in loaded
    events = imported_by("events", "--help")
    assert not {m for m in events if m.startswith("dotaudit.render")}, "events renders nothing"


def test_module_and_console_script_run_the_same_main() -> None:
    script = Path(sys.executable).parent / "dotaudit"
    assert script.is_file(), "the console script of pyproject.toml is installed"
    by_script = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    by_module = dotaudit("--version")
    assert by_script.returncode == by_module.returncode == 0
    assert by_script.stdout == by_module.stdout and by_module.stdout.startswith("dotaudit ")
