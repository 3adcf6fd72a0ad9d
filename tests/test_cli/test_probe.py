"""``dotaudit probe`` (dotaudit/cli/probe.py): the command line turned into typed settings,
its messages and help, and whole runs against closed loopback addresses (127.54.9.x:
nothing listens there, so port 853 refuses; no lab needed).

Oracle for the exit status: the severities the written report shows (its findings and
``targets[].severity``), compared with ``--fail-on`` by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest

from dotaudit.cli import EXIT_FINDINGS, EXIT_OK, UsageError, build_parser
from dotaudit.cli.output import exit_status
from dotaudit.cli.probe import BULK_MAX_IDLE_WAIT, ProbeRequest, probe_request
from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckOptions, CheckStatus, Level, ProbeConfig
from dotaudit.probe.checks.keepalive import DEFAULT_MAX_IDLE_WAIT
from dotaudit.probe.registry import CHECKS
from dotaudit.probe.runner import TargetResult, probe_report
from dotaudit.probe.target import parse_target
from dotaudit.probe.verdict import Verdict
from tests.test_cli.command import SCHEMA, dotaudit, jsonl

CLOSED = "127.54.9.1"


def request(*argv: str) -> ProbeRequest:
    return probe_request(build_parser().parse_args(["probe", *argv]))


def test_the_command_line_becomes_typed_settings() -> None:
    got = request("dns.test@192.0.2.1", "--online", "--slow-qname", "slow.example",
                  "--timeout", "2", "--mode", "opportunistic", "--checks", "reach.853")  # fmt: skip
    assert got.config.options == CheckOptions(
        online=True, max_idle_wait=DEFAULT_MAX_IDLE_WAIT, slow_qname="slow.example"
    )
    assert (got.config.timeout, got.config.mode) == (2.0, "opportunistic")
    assert got.config.checks == frozenset({"reach.853"})
    assert got.targets == (parse_target("dns.test@192.0.2.1"),)
    assert not got.nagios and not got.bulk.wanted
    for settings in (got, got.config, got.config.options, got.bulk, got.thresholds):
        for field in dataclasses.fields(settings):
            value = getattr(settings, field.name)
            assert not isinstance(value, argparse.Namespace), field.name


def test_an_unknown_check_option_is_an_error_not_a_default() -> None:
    assert ProbeConfig().options.get("doh_port") is None
    with pytest.raises(KeyError, match="doh_prot"):
        ProbeConfig().options.get("doh_prot")


@pytest.mark.parametrize(
    ("argv", "wait"),
    [((CLOSED,), DEFAULT_MAX_IDLE_WAIT), (("--targets", "t.txt"), BULK_MAX_IDLE_WAIT),
     ((CLOSED, "--max-idle-wait", "0"), 0.0)],
)  # fmt: skip
def test_idle_wait_default_depends_on_bulk(argv: tuple[str, ...], wait: float) -> None:
    assert request(*argv).config.options.max_idle_wait == wait


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--max-idle-wait", "-0.1"), "--max-idle-wait must not be negative"),
        (("--concurrency", "0"), "--concurrency and --per-address must be at least 1"),
        (("--per-address", "0"), "--concurrency and --per-address must be at least 1"),
        (("--timeout", "0"), "--timeout and --budget must be positive"),
        (("--checks", "reach.853,bogus"), "--checks: "),
        (("--slow-qname", "bad name"), "--slow-qname: 'bad name' is not a valid name"),
    ],
)
def test_bad_values_are_usage_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        request(CLOSED, *argv)
    request(CLOSED, "--concurrency", "1", "--per-address", "1")  # the boundary is allowed


def test_empty_target_says_what_a_target_is() -> None:
    result = dotaudit("probe", "")
    assert result.returncode == 2
    assert result.stderr == (
        "dotaudit: target '': empty; give IP, IP:PORT, [IPv6]:PORT, NAME@IP or a host name\n"
    )


def test_nagios_reports_a_bad_command_line_as_unknown() -> None:
    result = dotaudit("probe", "", "--nagios")
    assert result.returncode == 3
    assert result.stdout.startswith("DOT UNKNOWN - target '': empty")


def probe_help() -> str:
    result = dotaudit("probe", "--help")
    assert result.returncode == 0
    return " ".join(result.stdout.split())  # unwrapped


def test_checks_help_lists_every_check_id() -> None:
    text = probe_help()
    listed = text.split("(default: all): ", 1)[1]
    assert [word.strip(",") for word in listed.split()[: len(CHECKS)]] == [c.id for c in CHECKS]


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--cert-warn-days D", "WARNING when the certificate expires within D days (default 14)"),
        ("--cert-crit-days D", "CRITICAL when the certificate expires within D days (default 7)"),
        ("--handshake-warn-ms MS", "WARNING when the median TLS handshake takes MS"),
        ("--handshake-crit-ms MS", "CRITICAL when the median TLS handshake takes MS"),
        ("--query-warn-ms MS", "WARNING when the answer to the first query takes MS"),
        ("--query-crit-ms MS", "CRITICAL when the answer to the first query takes MS"),
    ],
)
def test_monitoring_thresholds_have_help(option: str, says: str) -> None:
    assert f"{option} {says}" in probe_help()


def test_a_refused_target_counts_as_the_report_shows(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["probe", CLOSED, "--checks", "reach.853", "--timeout", "0.5", "-o", str(out)]
    result = dotaudit(*argv)
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["policy"] == {} and report["probe_config"]["checks"] == ["reach.853"]
    assert "bulk" not in report
    assert report["targets"][0]["severity"] == "high"  # strict: refused
    assert result.returncode == EXIT_FINDINGS
    assert "counts as high" in result.stderr
    relaxed = dotaudit(*argv, "--fail-on", "none", "-q")
    assert relaxed.returncode == EXIT_OK and relaxed.stderr == ""


def test_bulk_run_has_its_own_report_field(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{CLOSED}\n127.54.9.2 dns.test  # named\n")
    out, stream = tmp_path / "r.json", tmp_path / "s.jsonl"
    result = dotaudit("probe", "--targets", str(targets), "--checks", "reach.853", "-q",
                      "--timeout", "0.5", "--stream", str(stream), "-o", str(out))  # fmt: skip
    assert result.returncode == EXIT_FINDINGS, result.stderr
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["bulk"]["targets_given"] == 2 and report["bulk"]["interrupted"] is False
    assert report["bulk"]["aggregate"]["reach_853"] == {"refused": 2}
    assert "aggregate" not in report["probe_config"] and report["policy"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["generated_at"])
    assert sorted(str(row["target"]) for row in jsonl(stream.read_text())) == [
        CLOSED, "127.54.9.2"]  # fmt: skip


def synthetic(*attempts: CheckAttempt, strict: str = "accept") -> TargetResult:
    return TargetResult(parse_target("dns.test@192.0.2.1"), "dns.test", list(attempts),
                        Verdict(strict, "encrypted", ("why",)))  # fmt: skip


def attempt(check_id: str, status: str, level: Level) -> CheckAttempt:
    return CheckAttempt(check_id, CheckStatus(status), level, "RFC", {}, None)


def test_a_check_failure_without_a_finding_is_shown_and_counted(tmp_path: Path) -> None:
    """Before the exit status was computed once, a failed SHOULD check made ``probe``
    exit 1 at --fail-on medium while the report showed nothing medium, and ``report`` on
    the same JSON exited 0."""
    result = synthetic(
        attempt("reach.853", "pass", Level.MUST), attempt("reuse", "fail", Level.SHOULD)
    )
    report = probe_report([result], ProbeConfig(), "t")
    assert report.findings == []
    assert report.sections["targets"][0]["severity"] == "medium"
    assert exit_status(report, Severity.MEDIUM) == EXIT_FINDINGS
    assert exit_status(report, Severity.HIGH) == EXIT_OK
    saved = tmp_path / "probe.json"
    saved.write_text(json.dumps(report.to_dict()))
    again = dotaudit("report", str(saved), "--fail-on", "medium", "--format", "text")
    assert again.returncode == EXIT_FINDINGS
    assert "counts as medium" in again.stdout
    assert dotaudit("report", str(saved), "--fail-on", "high", "-q").returncode == EXIT_OK


def test_verdict_findings_count_in_every_mode() -> None:
    """Opportunistic mode weighs a strict-only certificate failure low, but a resolver a
    strict client refuses is still finding DA-PROBE-001 (high), and findings count."""
    result = synthetic(attempt("cert.name", "fail", Level.MUST), strict="refuse")
    report = probe_report([result], ProbeConfig(mode="opportunistic"), "t")
    assert report.sections["targets"][0]["severity"] == "low"
    assert [f.id for f in report.findings] == ["DA-PROBE-001"]
    assert exit_status(report, Severity.HIGH) == EXIT_FINDINGS
    strict = probe_report([result], ProbeConfig(mode="strict"), "t")
    assert strict.sections["targets"][0]["severity"] == "high"
