"""The parser and entry points (dotaudit/cli/__init__.py): unknown options, the examples
each ``--help`` ends with, lazy subcommand imports, ``python -m dotaudit`` and the
console script; Ctrl-C, SIGTERM and running out of memory, each one line."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dotaudit.cli import COMMANDS, EXAMPLES_HEADING, build_parser
from tests import pcapgen
from tests.conftest import ROOT
from tests.fifos import feed_fifos, wait_for
from tests.test_cli.command import dotaudit

ARGUMENTS = {
    "events": ["x.pcap"],
    "analyze": ["x.pcap"],
    "report": ["x.json"],
    "probe": ["127.0.0.1"],
    "watch": ["lo"],
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


# -- interrupted, terminated, out of memory: one line, never a traceback ---------------------


def test_ctrl_c_during_parallel_analyze_is_one_line(mixed_capture: Path, tmp_path: Path) -> None:
    """SIGINT to the process group of ``analyze --workers 2`` while both workers read:
    the workers ignore it and are stopped by the parent, which prints the one line."""
    fifos = [tmp_path / "a.pcap", tmp_path / "b.pcap"]
    for fifo in fifos:
        os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotaudit", "analyze", *map(str, fifos), "--workers", "2",
         "-o", str(tmp_path / "r.json")],
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    threads = feed_fifos(fifos, mixed_capture.read_bytes(), repeat=100)
    wait_for(lambda: len(children_of(proc.pid)) >= 2, "two worker processes")
    time.sleep(1.0)  # both are analysing now
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr == "dotaudit: interrupted\n"
    wait_for(lambda: not children_of(proc.pid), "the workers gone")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pcap", "b.pcap"]
    for thread in threads:
        thread.join(timeout=10)


@pytest.mark.parametrize("command", ["events", "analyze"])
def test_sigterm_removes_the_temporary_output_and_exits_143(
    mixed_capture: Path, tmp_path: Path, command: str
) -> None:
    """SIGTERM (a CI job's timeout, ``kill``) ends a run as Ctrl-C does: the temporary
    output file is removed, one line, exit 128 + 15."""
    fifo = tmp_path / "in.pcap"
    os.mkfifo(fifo)
    out = tmp_path / "out" / ("r.jsonl" if command == "events" else "r.json")
    out.parent.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotaudit", command, str(fifo), "-o", str(out)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # One long capture (a second file header in the middle would read as a corrupt record
    # and end the run before the signal comes); the signal ends the run, not the data.
    feed_fifos([fifo], mixed_capture.read_bytes(), repeat=100)
    if command == "events":  # its output is open from the start: the temporary file exists
        wait_for(lambda: any(out.parent.iterdir()), "the temporary output file")
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert stderr == "dotaudit: terminated\n"
    assert list(out.parent.iterdir()) == []


MEMORY_LIMITED = """
import re, resource, sys
margin = int(sys.argv[1]) << 20
import dotaudit.cli, dotaudit.cli.analyze, dotaudit.cli.events, dotaudit.cli.report
import dotaudit.pipeline, dotaudit.detect.runner, dotaudit.render.json
status = open("/proc/self/status").read()
size = int(re.search(r"VmSize:\\s+(\\d+) kB", status).group(1)) << 10
resource.setrlimit(resource.RLIMIT_AS, (size + margin, resource.RLIM_INFINITY))
sys.exit(dotaudit.cli.main(sys.argv[2:]))
"""
"""Run ``dotaudit ARGV`` with its address space limited to what it holds after its
imports plus ``margin`` MiB (``ulimit -v``, set where the imports cannot fail)."""


def memory_limited(margin_mib: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED, str(margin_mib), *argv],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300,000 clients at once: far more flow state than the flow memcap (32 MiB) holds."""
    folder = tmp_path_factory.mktemp("flood")
    return pcapgen.distinct_clients_flood(folder / "flood.pcap", 300_000)


@pytest.mark.parametrize("command", ["events", "events-workers", "analyze"])
# Margins that no run of the flood fits, with memory caps or without (the 16 MiB reserve
# alone takes half of the larger): the path under test is the MemoryError one.
@pytest.mark.parametrize("margin", [16, 32])
def test_out_of_memory_is_one_line(flood: Path, tmp_path: Path, command: str, margin: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    argv = {
        "events": ["events", str(flood), "-o", str(out / "e.jsonl")],
        "events-workers": ["events", str(flood), "--workers", "2", "-o", str(out / "e.jsonl")],
        "analyze": ["analyze", str(flood), "-q", "-o", str(out / "r.json")],
    }[command]
    result = memory_limited(margin, *argv)
    assert result.returncode == 2, result.stderr
    assert re.fullmatch(rf"dotaudit: {re.escape(str(flood))}: out of memory( after \d+ packets)?\n",
                        result.stderr)  # fmt: skip
    assert list(out.iterdir()) == [], "no output, and no temporary file"


def test_a_saved_report_too_big_for_memory_is_one_line(tmp_path: Path) -> None:
    rows = [{"client": f"10.0.{n >> 8 & 255}.{n & 255}", "queries": 1, "qnames": ["a" * 40]}
            for n in range(400_000)]  # fmt: skip
    saved = tmp_path / "big.json"
    saved.write_text(json.dumps({"schema": "dotaudit.report/2", "plaintext_dns": rows}))
    result = memory_limited(64, "report", str(saved), "-q", "-o", str(tmp_path / "r.html"))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"dotaudit: {saved}: out of memory reading it\n"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found
