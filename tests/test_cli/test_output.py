"""What every subcommand shares (dotaudit/cli/output.py): the output file and format,
the atomic writer, the one exit status and the one timestamp format."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dotaudit.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UsageError
from dotaudit.cli.output import (
    TIMESTAMP_FORMAT,
    ReportOptions,
    atomic_writer,
    choose_format,
    exit_status,
    output_path,
    timestamp,
    write_report,
)
from dotaudit.errors import OutputError
from dotaudit.model.findings import Severity, make_finding
from dotaudit.model.report import AuditReport
from dotaudit.render.base import OutputFormat, render_chunks
from tests import pcapgen
from tests.test_cli.command import dotaudit


def test_format_comes_from_the_option_then_the_extension() -> None:
    assert choose_format("r.html", "json") is OutputFormat.JSON
    assert choose_format("r.HTML", None) is OutputFormat.HTML
    assert choose_format("r.txt", None) is OutputFormat.TEXT
    assert choose_format(None, None) is OutputFormat.JSON
    with pytest.raises(UsageError, match="--format"):
        choose_format("report.xyz", None)


def test_a_directory_is_no_output_file(tmp_path: Path) -> None:
    assert output_path(None) is None and output_path("-") is None
    assert output_path(str(tmp_path / "r.json")) == str(tmp_path / "r.json")
    with pytest.raises(UsageError, match=r": is a directory"):
        output_path(str(tmp_path))
    with pytest.raises(UsageError, match=r": is a directory"):
        output_path(f"{tmp_path}/")
    with pytest.raises(UsageError, match=r"absent/: names a directory"):
        output_path(f"{tmp_path}/absent/")


@pytest.mark.parametrize("command", ["events", "analyze"])
def test_o_directory_says_is_a_directory(tmp_path: Path, command: str) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    folder = tmp_path / "somedir"
    folder.mkdir()
    result = dotaudit(command, str(capture), "-o", f"{folder}/")
    assert result.returncode == 2
    assert result.stderr == f"dotaudit: {folder}/: is a directory (-o takes a file name)\n"
    assert list(folder.iterdir()) == []


def test_atomic_writer_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out" / "r.txt"
    target.parent.mkdir()
    with atomic_writer(str(target)) as handle:
        handle.write("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_writer(str(target)) as handle:
        handle.write("half")
        raise RuntimeError("cut")
    assert target.read_text() == "first", "a failed write leaves the old file"
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.txt"], "no temporary file"


def test_atomic_writer_names_the_file_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    where = re.escape(str(blocker / "r.txt"))
    with pytest.raises(OutputError, match=rf"^{where}: "), atomic_writer(str(blocker / "r.txt")):
        pass


def report_with(findings: list[Severity], targets: list[str | None]) -> AuditReport:
    ids = {
        Severity.HIGH: "DA-LEAK-001",
        Severity.MEDIUM: "DA-DOT-003",
        Severity.INFO: "DA-LEAK-003",
    }
    report = AuditReport(kind="combined", generated_at="t")
    for n, severity in enumerate(findings):
        report.findings.append(make_finding(ids[severity], dedup_key=str(n), severity=severity))
    report.sections["targets"] = [{"severity": label} for label in targets]
    return report


@pytest.mark.parametrize(
    ("findings", "targets", "fail_on", "status"),
    [
        ([], [], Severity.INFO, EXIT_OK),
        ([Severity.MEDIUM], [], Severity.MEDIUM, EXIT_FINDINGS),  # at the threshold
        ([Severity.MEDIUM], [], Severity.HIGH, EXIT_OK),  # below it
        ([Severity.HIGH], [], None, EXIT_OK),  # --fail-on none
        ([], ["medium"], Severity.MEDIUM, EXIT_FINDINGS),  # a probed target counts
        ([], ["medium", None], Severity.HIGH, EXIT_OK),
        ([Severity.INFO], ["low"], Severity.LOW, EXIT_FINDINGS),
    ],
)
def test_exit_status_weighs_what_the_report_shows(
    findings: list[Severity], targets: list[str | None], fail_on: Severity | None, status: int
) -> None:
    assert exit_status(report_with(findings, targets), fail_on) == status


def test_one_timestamp_format() -> None:
    assert TIMESTAMP_FORMAT == "%Y-%m-%dT%H:%M:%SZ"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", timestamp())


# -- --fail-on: exit 1 at or above the threshold, 0 below it -----------------------------

SEVERITY_ORDER = ["info", "low", "medium", "high"]
"""docs/findings.md: severities from least to most severe; README: "1 findings at or above
--fail-on"."""
FAIL_ON = [*SEVERITY_ORDER, "none"]


def cli_exit(*argv: str) -> int:
    """``dotaudit ARGV`` in-process (the console script's own entry point)."""
    from dotaudit.cli import main

    try:
        return main(list(argv))
    except SystemExit as exc:  # argparse rejects the arguments
        return int(exc.code or 0)


def expected_status(highest: str, fail_on: str) -> int:
    if fail_on == "none":
        return 0
    return 1 if SEVERITY_ORDER.index(highest) >= SEVERITY_ORDER.index(fail_on) else 0


def leak_report(tmp_path: Path, severity: str) -> tuple[Path, Path]:
    """A capture whose only finding is one plaintext leak, raised or lowered to
    ``severity`` by policy; returns the capture and the policy file."""
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["leak.example"])
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[severity]\n"DA-LEAK-001" = "{severity}"\n')
    return capture, policy


@pytest.mark.parametrize(
    ("fail_on", "status"),
    [("info", 1), ("low", 1), ("medium", 1), ("high", 1), ("none", 0)],
)
def test_high_leak_fails_every_threshold_at_or_below_high(
    tmp_path: Path, fail_on: str, status: int
) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["leak.example"])
    out = tmp_path / "r.json"
    assert cli_exit("analyze", str(capture), "-q", "-o", str(out), "--fail-on", fail_on) == (status)
    severities = [f["severity"] for f in json.loads(out.read_text())["findings"]]
    assert severities == ["high"]


@pytest.mark.parametrize("fail_on", FAIL_ON)
@pytest.mark.parametrize("highest", SEVERITY_ORDER)
def test_analyze_and_report_fail_on_is_at_or_above(
    tmp_path: Path, highest: str, fail_on: str
) -> None:
    capture, policy = leak_report(tmp_path, highest)
    saved = tmp_path / "analyze.json"
    status = cli_exit("analyze", str(capture), "--policy", str(policy), "-q",
                         "-o", str(saved), "--fail-on", fail_on)  # fmt: skip
    assert [f["severity"] for f in json.loads(saved.read_text())["findings"]] == [highest]
    assert status == expected_status(highest, fail_on)
    # `report` re-judges the saved findings with its own --fail-on.
    rendered = tmp_path / "report.txt"
    again = cli_exit("report", str(saved), "-q", "-o", str(rendered), "--fail-on", fail_on)
    assert again == expected_status(highest, fail_on)


def test_fail_on_unknown_severity_is_a_usage_error(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["leak.example"])
    result = dotaudit("analyze", str(capture), "-q", "--fail-on", "critical")
    assert result.returncode == 2
    assert "--fail-on" in result.stderr and "critical" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("fail_on", FAIL_ON)
@pytest.mark.parametrize("bulk", [False, True], ids=["targets", "targets-file"])
def test_probe_fail_on_is_at_or_above(tmp_path: Path, fail_on: str, bulk: bool) -> None:
    """A refused port 853 on loopback (nothing listens on 127.0.0.1:9): reach.853, a MUST,
    fails, so the result weighs high. The bulk path (--targets FILE) judges separately."""
    out = tmp_path / "probe.json"
    common = ["--checks", "reach.853", "--timeout", "2", "-q", "-o", str(out), "--fail-on", fail_on]
    if bulk:
        targets = tmp_path / "targets.txt"
        targets.write_text("127.0.0.1:9\n")
        status = cli_exit("probe", "--targets", str(targets), *common)
    else:
        status = cli_exit("probe", "127.0.0.1:9", *common)
    report = json.loads(out.read_text())
    assert [t["verdict"]["strict"] for t in report["targets"]] == ["refuse"]
    assert status == expected_status("high", fail_on)


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command line in this process (so that mutation runs see which code it reaches)."""
    from dotaudit.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_report_goes_to_stdout_or_the_file_and_the_summary_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "leak.pcap", ["leak.example"])
    code, out, err = _main(["analyze", str(capture), "--fail-on", "none"], capsys)
    assert code == 0 and json.loads(out)["kind"] == "analyze"
    assert "DA-LEAK-001" in err  # the text summary
    target = tmp_path / "r.json"
    code, out, err = _main(
        ["analyze", str(capture), "--fail-on", "none", "-o", str(target)], capsys
    )
    assert out == "" and json.loads(target.read_text())["kind"] == "analyze"
    assert "DA-LEAK-001" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leak.pcap", "r.json"]  # no temp file
    code, out, err = _main(["analyze", str(capture), "--fail-on", "none", "-q"], capsys)
    assert err == "" and json.loads(out)
    code, out, err = _main(
        ["analyze", str(capture), "--fail-on", "none", "--format", "text"], capsys
    )
    assert "DA-LEAK-001" in out and err == ""  # the text report is not printed twice
    text = tmp_path / "r.txt"
    code, out, err = _main(["analyze", str(capture), "--fail-on", "none", "-o", str(text)], capsys)
    assert out == "" and "DA-LEAK-001" in text.read_text()
    assert "DA-LEAK-001" in err  # a text report in a file: the summary still on stderr


def test_progress_without_a_total_shows_the_bytes_read() -> None:
    import io

    from dotaudit.cli.output import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar("<stdin>", stream)
    bar(3 * 1024 * 1024 + 512 * 1024, 0)  # a pipe: no total
    assert stream.getvalue().endswith("3.5 MiB read")
    assert "%" not in stream.getvalue()
    bar(50, 100)
    assert "50%" in stream.getvalue()


# -- an output that cannot be written: one line, exit 2, for every subcommand -----------------


def command_line(command: str, tmp_path: Path, output: str) -> list[str]:
    """``command`` writing its result to ``output`` (-o)."""
    if command == "events":
        capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
        return ["events", str(capture), "-o", output]
    if command == "analyze":
        capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
        return ["analyze", str(capture), "-q", "--format", "json", "-o", output]
    if command == "report":
        saved = tmp_path / "saved.json"
        saved.write_text(json.dumps(AuditReport(kind="analyze", generated_at="t").to_dict()))
        return ["report", str(saved), "-q", "--format", "json", "-o", output]
    # nothing listens on 127.0.0.1:9: refused at once
    return ["probe", "127.0.0.1:9", "--checks", "reach.853", "--timeout", "2", "-q",
            "--format", "json", "-o", output]  # fmt: skip


COMMANDS = ["events", "analyze", "report", "probe"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/proc/dotaudit-report.json", "cannot write: No such file or directory"),
        ("/dev/full", "cannot write: No space left on device"),
    ],
)
def test_an_output_that_cannot_be_written_is_one_line(
    tmp_path: Path, command: str, target: str, reason: str
) -> None:
    result = dotaudit(*command_line(command, tmp_path, target))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"dotaudit: {target}: {reason}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_output_directory_is_refused_not_created(tmp_path: Path, command: str) -> None:
    target = tmp_path / "reprots" / "r.json"  # a typo
    result = dotaudit(*command_line(command, tmp_path, str(target)))
    assert result.returncode == 2
    assert result.stderr == (
        f"dotaudit: {target}: {target.parent} does not exist (output directories are not created)\n"
    )
    assert not target.parent.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_file_system_is_one_line(tmp_path: Path, command: str) -> None:
    """A tmpfs mounted read-only in a private mount namespace (``unshare -m``, as root)."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux unshare (Debian: util-linux)"
    readonly = tmp_path / "ro"
    readonly.mkdir()
    target = readonly / "r.json"
    argv = command_line(command, tmp_path, str(target))
    script = f'mount -t tmpfs -o ro tmpfs "{readonly}" && exec "$@"'
    result = subprocess.run(
        [unshare, "-m", "sh", "-c", script, "sh", sys.executable, "-m", "dotaudit", *argv],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"dotaudit: {target}: cannot write: Read-only file system\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_stdout_is_one_line(tmp_path: Path, command: str) -> None:
    argv = command_line(command, tmp_path, "-")  # -o -: standard output
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "dotaudit", *argv],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == "dotaudit: <stdout>: cannot write: No space left on device\n"


def test_an_evidence_directory_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    for evidence, reason in (
        ("/proc/dotaudit-evidence", "cannot write: No such file or directory"),
        (str(capture), "not a directory"),
    ):
        result = dotaudit("analyze", str(capture), "-q", "--evidence", evidence)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"dotaudit: {evidence}: {reason}\n"


@pytest.mark.parametrize(
    ("status", "strict", "fail_on", "expected"),
    [
        ("complete", True, Severity.HIGH, EXIT_FINDINGS),
        ("partial", False, Severity.HIGH, EXIT_FINDINGS),  # a warning
        ("partial", False, None, EXIT_OK),
        ("partial", True, None, EXIT_USAGE),
        ("unreadable", False, None, EXIT_USAGE),  # --fail-on none: findings, not gaps
        ("unreadable", False, Severity.HIGH, EXIT_USAGE),  # more than "findings"
        ("skipped", True, None, EXIT_OK),
    ],
)
def test_exit_status_says_when_the_audit_is_incomplete(
    status: str, strict: bool, fail_on: Severity | None, expected: int
) -> None:
    report = report_with([Severity.HIGH], [])
    report.inputs = [{"path": "a.pcap", "packets": 3, "status": "complete"},
                     {"path": "b.pcap", "packets": 3, "status": status}]  # fmt: skip
    assert exit_status(report, fail_on, strict=strict) == expected


def test_exit_status_is_not_strict_unless_asked() -> None:
    """A partial input is a warning by default (`probe` and `watch` never pass strict)."""
    report = report_with([], [])
    report.inputs = [{"path": "a.pcap", "packets": 3, "status": "partial"}]
    assert exit_status(report, None) == EXIT_OK
    assert exit_status(report, None, strict=True) == EXIT_USAGE


def test_a_report_written_in_pieces_is_the_rendered_one(tmp_path: Path) -> None:
    report = AuditReport(kind="analyze", generated_at="2026-01-01T00:00:00Z")
    report.findings = [
        make_finding("DA-LEAK-001", client=f"10.0.{i >> 8}.{i & 255}", dedup_key=f"k{i}")
        for i in range(300)
    ]
    for fmt, name in ((OutputFormat.JSON, "r.json"), (OutputFormat.JSONL, "r.jsonl")):
        target = tmp_path / name
        write_report(report, ReportOptions(str(target), fmt, None, quiet=True))
        assert target.read_text() == "".join(render_chunks(report, fmt))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.jsonl"]  # no temp left


def test_only_target_rows_with_a_known_severity_label_count() -> None:
    # A report read back from JSON may hold anything: only a row's known label counts.
    report = report_with([Severity.INFO], [])
    rows = [{"severity": "Medium"}, {"severity": None}, "high", {}, {"severity": "severe"},
            {"severity": 3}, {"severity": "low"}]  # fmt: skip
    report.sections["targets"] = rows
    assert report.target_severities() == [Severity.MEDIUM, Severity.LOW]
    assert report.exit_severity() is Severity.MEDIUM
    assert exit_status(report, Severity.MEDIUM) == EXIT_FINDINGS
    assert exit_status(report, Severity.HIGH) == EXIT_OK
    del report.sections["targets"]  # an analysis report has no targets: its findings count
    assert report.target_severities() == []
    assert report.exit_severity() is Severity.INFO
