"""The fuzzer's judge: what counts as ok, as a clean input error, and as a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzz.execute import (
    InProcessRunner,
    Invocation,
    SubprocessRunner,
    classify,
    traceback_signature,
)
from tests.pcapgen import plaintext_capture

TRACEBACK = """\
Traceback (most recent call last):
  File "/x/dotaudit/cli.py", line 580, in main
    code: int = args.handler(args)
  File "/x/dotaudit/capture/evidence.py", line 64, in write_evidence
    writer.write_packet(
  File "/x/.venv/lib/python3.11/site-packages/scapy/utils.py", line 2466, in _write_packet
    self.f.write(struct.pack(self.endian + "IIII",
struct.error: 'I' format requires 0 <= number <= 4294967295
"""


def invocation(tmp_path: Path, target: str = "analyze") -> Invocation:
    (tmp_path / "out").mkdir(exist_ok=True)
    capture = tmp_path / "c.pcap"
    capture.write_bytes(b"x")
    return Invocation(target, capture, tmp_path / "out")


def report(inv: Invocation, text: str = '{"findings": []}') -> None:
    (inv.outdir / "out.json").write_text(text)


def test_signature_is_the_innermost_dotaudit_frame() -> None:
    assert traceback_signature(TRACEBACK) == (
        "struct.error in dotaudit/capture/evidence.py:write_evidence"
    )


def test_a_traceback_is_a_crash_whatever_the_exit(tmp_path: Path) -> None:
    inv = invocation(tmp_path)
    report(inv)
    for code in (0, 1, 2):
        assert classify(inv, code, TRACEBACK).crashed


def test_exit_0_or_1_with_a_report_is_ok(tmp_path: Path) -> None:
    inv = invocation(tmp_path)
    report(inv)
    assert classify(inv, 0, "warning: x: truncated\n").kind == "ok"
    assert classify(inv, 1, "").kind == "ok"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "malformed JSON"),
        ("[]", "not a JSON object"),
        ('{"findings": [], "span_s": NaN}', "malformed JSON"),
        ('{"findings": [], "x": Infinity}', "malformed JSON"),
    ],
)
def test_bad_report_is_a_crash(tmp_path: Path, text: str, why: str) -> None:
    inv = invocation(tmp_path)
    report(inv, text)
    assert why in classify(inv, 0, "").signature


def test_missing_output_is_a_crash(tmp_path: Path) -> None:
    assert classify(invocation(tmp_path), 0, "").signature == "exit 0/1 without an output file"


def test_events_output_must_be_json_lines(tmp_path: Path) -> None:
    inv = invocation(tmp_path, "events")
    (inv.outdir / "out.jsonl").write_text('{"type": "dns"}\n{"type": "connection"}\n')
    assert classify(inv, 0, "").kind == "ok"
    (inv.outdir / "out.jsonl").write_text('{"type": "dns"}\n{"type": \n')
    assert classify(inv, 0, "").crashed


def test_exit_2_needs_exactly_one_dotaudit_line_last(tmp_path: Path) -> None:
    inv = invocation(tmp_path)
    assert classify(inv, 2, "dotaudit: c.pcap: not a pcap or pcapng file\n").kind == "input-error"
    assert classify(inv, 2, "warning: w\ndotaudit: c.pcap: bad\n").kind == "input-error"
    assert classify(inv, 2, "dotaudit: one\ndotaudit: two\n").crashed
    assert classify(inv, 2, "dotaudit: one\nwarning: after\n").crashed
    assert classify(inv, 2, "something else\ndotaudit: one\n").crashed
    assert classify(inv, 2, "").crashed


def test_exit_2_for_an_unreadable_input_needs_its_report(tmp_path: Path) -> None:
    inv = invocation(tmp_path)
    stderr = (
        "dotaudit 0.1.0 — analyze report\n"
        "WARNING: c.pcap: unreadable: none of its 4 packets could be decoded\n"
        "findings: 0 high, 0 medium, 0 low, 0 info (0 total)\n"
        "dotaudit: c.pcap: unreadable: none of its 4 packets could be decoded\n"
    )
    assert classify(inv, 2, stderr).crashed  # no report written
    assert classify(inv, 2, stderr).signature == "exit 2 (incomplete) without an output file"
    (inv.outdir / "out.json").write_text('{"findings": []}')
    assert classify(inv, 2, stderr).kind == "incomplete"
    strict = "dotaudit: c.pcap: partial: cut short at byte offset 40 (--strict)\n"
    assert classify(inv, 2, "summary\n" + strict).kind == "incomplete"
    assert classify(inv, 2, stderr + "after\n").crashed  # the one line comes last
    assert classify(inv, 2, "summary\ndotaudit: c.pcap: bad\n").crashed  # not incomplete


@pytest.mark.parametrize("code", [3, 127, 130])
def test_other_exit_codes_are_crashes(tmp_path: Path, code: int) -> None:
    assert classify(invocation(tmp_path), code, "").signature == f"exit {code}"


def test_signals_timeouts_and_memory_are_crashes(tmp_path: Path) -> None:
    inv = invocation(tmp_path)
    assert classify(inv, -9, "").signature == "killed by SIGKILL"
    assert classify(inv, None, "", timed_out=True).signature == "timeout"
    assert classify(inv, 1, "MemoryError\n").signature == "memory limit"


@pytest.mark.parametrize("name", [".out.json.123.tmp", "evidence/001-DA-LEAK-001.pcap.tmp"])
def test_a_leftover_temporary_file_is_a_crash(tmp_path: Path, name: str) -> None:
    inv = invocation(tmp_path)
    report(inv)
    leftover = inv.outdir / name
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"")
    assert classify(inv, 0, "").signature == "temporary file left behind"


def test_an_overwritten_input_is_a_crash(tmp_path: Path) -> None:
    inv = invocation(tmp_path)
    report(inv)
    assert classify(inv, 0, "", input_before=b"x").kind == "ok"
    assert classify(inv, 0, "", input_before=b"y").signature == "input overwritten"


@pytest.mark.parametrize("runner", [SubprocessRunner, InProcessRunner])
@pytest.mark.parametrize("target", ["analyze", "evidence", "events"])
def test_runners_run_the_real_commands(tmp_path: Path, runner: type, target: str) -> None:
    capture = plaintext_capture(tmp_path / "p.pcap", ["a.example", "b.example"])
    (tmp_path / "out").mkdir()
    inv = Invocation(target, capture, tmp_path / "out", policy=True)
    instance = runner()
    try:
        outcome = instance.run(inv)
    finally:
        instance.close()
    assert outcome.kind == "ok", outcome
    if target == "events":
        lines = (inv.outdir / "out.jsonl").read_text().splitlines()
        assert sum(json.loads(line)["type"] == "dns" for line in lines) >= 2
    else:
        findings = json.loads((inv.outdir / "out.json").read_text())["findings"]
        assert {f["id"] for f in findings} >= {"DA-LEAK-001"}
    if target == "evidence":
        assert list((inv.outdir / "evidence").glob("*.pcap"))


def test_runners_judge_a_non_capture_as_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    bogus = tmp_path / "bogus.pcap"
    bogus.write_text("not a capture\n")
    for runner in (SubprocessRunner(), InProcessRunner()):
        try:
            outcome = runner.run(Invocation("analyze", bogus, tmp_path / "out"))
        finally:
            runner.close()
        assert outcome.kind == "input-error", outcome
        assert outcome.detail == f"dotaudit: {bogus}: not a pcap or pcapng file"


@pytest.mark.parametrize("runner", [SubprocessRunner, InProcessRunner])
def test_a_time_limit_stops_a_run(tmp_path: Path, runner: type) -> None:
    (tmp_path / "out").mkdir()
    capture = plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    # Far below what interpreter start-up or the detectors' first import take.
    instance = runner(time_limit=0.001)
    try:
        outcome = instance.run(Invocation("analyze", capture, tmp_path / "out"))
    finally:
        instance.close()
    assert outcome.signature == "timeout"
