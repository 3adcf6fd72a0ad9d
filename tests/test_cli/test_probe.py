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
from dotaudit.cli.probe import ProbeRequest, probe_request
from dotaudit.model.findings import Severity
from dotaudit.probe.base import (
    DEFAULT_TARGET_BUDGET,
    CheckAttempt,
    CheckOptions,
    CheckStatus,
    Level,
    ProbeConfig,
)
from dotaudit.probe.checks.keepalive import DEFAULT_MAX_IDLE_WAIT
from dotaudit.probe.registry import CHECKS
from dotaudit.probe.runner import TargetResult, probe_report
from dotaudit.probe.target import parse_target
from dotaudit.probe.verdict import Cause, Verdict
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
    ("argv", "wait", "budget"),
    [((CLOSED,), 0.0, DEFAULT_TARGET_BUDGET),
     (("--targets", "t.txt"), 0.0, DEFAULT_TARGET_BUDGET),
     # measuring the idle close is opt-in, and its wait comes on top of the other checks
     ((CLOSED, "--max-idle-wait", "130"), 130.0, DEFAULT_TARGET_BUDGET + 130),
     ((CLOSED, "--max-idle-wait", "130", "--budget", "20"), 130.0, 20.0)],
)  # fmt: skip
def test_the_idle_close_is_measured_only_when_asked(
    argv: tuple[str, ...], wait: float, budget: float
) -> None:
    """Before, every probe waited up to 20 s for the idle close (a healthy resolver took
    22 s, 20 of them idle); the default now waits not at all."""
    assert DEFAULT_MAX_IDLE_WAIT == 0.0
    got = request(*argv).config
    assert (got.options.max_idle_wait, got.target_budget) == (wait, budget)


def test_the_keepalive_budget_grows_with_the_idle_wait() -> None:
    from dotaudit.probe.registry import BY_ID
    from dotaudit.probe.runner import check_budget

    keepalive = BY_ID["keepalive"]
    short = check_budget(keepalive, ProbeConfig())
    assert short == keepalive.budget
    longer = ProbeConfig(options=CheckOptions(max_idle_wait=130.0))
    assert check_budget(keepalive, longer) == keepalive.budget + 130.0
    assert check_budget(BY_ID["reach.853"], longer) == BY_ID["reach.853"].budget


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


def test_a_refused_port_is_remedied_by_opening_it_not_by_a_certificate(tmp_path: Path) -> None:
    """Before, DA-PROBE-001 always said "fix the certificate", even for a refused port."""
    out = tmp_path / "r.json"
    dotaudit("probe", CLOSED, "--checks", "reach.853", "--timeout", "0.5", "-q", "-o", str(out))
    report = json.loads(out.read_text())
    [finding] = report["findings"]
    assert finding["id"] == "DA-PROBE-001" and finding["evidence"]["cause"] == "port-unusable"
    remedy = finding["remediation"]
    assert "open TCP port 853" in remedy and "RST" in remedy
    assert "Fix the certificate" not in remedy and "not the problem" in remedy
    # reach.853 is the refusal's own evidence, not a second finding of the same incident
    assert finding["evidence"]["checks"] == ["reach.853"]


def test_only_checks_that_ran_decide_the_verdict(tmp_path: Path) -> None:
    """Before, ``--checks reach.853`` alone concluded "neither 853 nor 53 works"."""
    out = tmp_path / "r.json"
    result = dotaudit("probe", CLOSED, "--checks", "reach.853", "--timeout", "0.5",
                      "-o", str(out))  # fmt: skip
    verdict = json.loads(out.read_text())["targets"][0]["verdict"]
    assert (verdict["strict"], verdict["opportunistic"]) == ("refuse", "not-tested")
    shown = " ".join(verdict["reasons"]) + result.stderr
    assert "neither" not in shown and "no DNS" not in shown
    assert "whether it falls back to plaintext port 53 was not tested" in shown


def test_ipv6_and_other_ports_are_spelled_as_probed(tmp_path: Path) -> None:
    """Before, an IPv6 server was printed ``::1:853`` and every text said "port 853"."""
    out = tmp_path / "r.json"
    result = dotaudit("probe", "[::1]:1", "--checks", "reach.853", "--timeout", "0.5",
                      "--format", "json", "-o", str(out))  # fmt: skip
    report = json.loads(out.read_text())
    [finding] = report["findings"]
    assert finding["server"] == "[::1]:1"
    texts = [result.stderr, finding["remediation"], *report["targets"][0]["verdict"]["reasons"]]
    for text in texts:
        assert "853" not in text.replace("reach.853", ""), text
        assert "::1:1" not in text.replace("[::1]:1", ""), text
    assert "[::1]:1" in result.stderr and "port 1 " in finding["remediation"]


def test_a_ca_file_that_is_not_pem_is_a_usage_error(tmp_path: Path) -> None:
    """Before, it became an internal error of every TLS check, against the resolver."""
    for content in (b"not a certificate\n", b"\x30\x82\x01\x0a" + bytes(64), b""):
        ca = tmp_path / "ca.der"
        ca.write_bytes(content)
        result = dotaudit("probe", CLOSED, "--ca", str(ca), "--timeout", "0.5")
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"dotaudit: {ca}: --ca: not a PEM "), lines
        assert "Traceback" not in result.stderr


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


def synthetic(
    *attempts: CheckAttempt,
    strict: str = "accept",
    cause: Cause | None = None,
    covers: tuple[str, ...] = (),
) -> TargetResult:
    return TargetResult(parse_target("dns.test@192.0.2.1"), "dns.test", list(attempts),
                        Verdict(strict, "encrypted", ("why",), cause, covers))  # fmt: skip


def attempt(check_id: str, status: str, level: Level) -> CheckAttempt:
    return CheckAttempt(check_id, CheckStatus(status), level, "RFC", {}, None)


def test_a_check_failure_without_a_finding_is_shown_and_counted(tmp_path: Path) -> None:
    """Before the exit status was computed once, a failed SHOULD check made ``probe``
    exit 1 at --fail-on medium while the report showed nothing medium, and ``report`` on
    the same JSON exited 0. Now the failure is a finding of its own (DA-PROBE-004)."""
    result = synthetic(
        attempt("reach.853", "pass", Level.MUST), attempt("reuse", "fail", Level.SHOULD)
    )
    report = probe_report([result], ProbeConfig(), "t")
    assert [(f.id, f.severity) for f in report.findings] == [("DA-PROBE-004", Severity.MEDIUM)]
    assert report.sections["targets"][0]["severity"] == "medium"
    assert exit_status(report, Severity.MEDIUM) == EXIT_FINDINGS
    assert exit_status(report, Severity.HIGH) == EXIT_OK
    saved = tmp_path / "probe.json"
    saved.write_text(json.dumps(report.to_dict()))
    again = dotaudit("report", str(saved), "--fail-on", "medium", "--format", "text")
    assert again.returncode == EXIT_FINDINGS
    assert "counts as medium" in again.stdout
    assert dotaudit("report", str(saved), "--fail-on", "high", "-q").returncode == EXIT_OK


def test_opportunistic_mode_counts_a_certificate_failure_low(tmp_path: Path) -> None:
    """RFC 8310 §5: an opportunistic client that cannot authenticate still encrypts, so a
    failed certificate name is a weakness (low), not a break. Before, DA-PROBE-001 stayed
    high and the exit was 1 although the README promised low."""
    result = synthetic(
        attempt("reach.853", "pass", Level.MUST),
        attempt("cert.name", "fail", Level.MUST),
        strict="refuse",
        cause=Cause.AUTHENTICATION,
        covers=("cert.name",),
    )
    report = probe_report([result], ProbeConfig(mode="opportunistic"), "t")
    assert [(f.id, f.severity) for f in report.findings] == [("DA-PROBE-001", Severity.LOW)]
    assert report.sections["targets"][0]["severity"] == "low"
    assert exit_status(report, Severity.HIGH) == EXIT_OK
    assert exit_status(report, Severity.LOW) == EXIT_FINDINGS
    assert "still encrypt" in report.findings[0].remediation
    strict = probe_report([result], ProbeConfig(mode="strict"), "t")
    assert [(f.id, f.severity) for f in strict.findings] == [("DA-PROBE-001", Severity.HIGH)]
    assert exit_status(strict, Severity.HIGH) == EXIT_FINDINGS
    assert "subjectAltName" in strict.findings[0].remediation


def test_what_raises_the_exit_status_is_a_listed_finding(tmp_path: Path) -> None:
    """Before, a keepalive warning made ``--fail-on low`` exit 1 while the summary said
    "0 findings"."""
    result = synthetic(
        attempt("reach.853", "pass", Level.MUST),
        attempt("keepalive", "warn", Level.SHOULD),
        attempt("cert.pin", "not-applicable", Level.MUST),
        attempt("doq", "skip", Level.MAY),
    )
    report = probe_report([result], ProbeConfig(), "t")
    assert [(f.id, f.severity) for f in report.findings] == [("DA-PROBE-004", Severity.LOW)]
    assert report.findings[0].title.startswith("keepalive: ")
    assert report.summary()["findings"] == 1
    assert exit_status(report, Severity.LOW) == EXIT_FINDINGS
    assert exit_status(report, Severity.MEDIUM) == EXIT_OK
    saved = tmp_path / "probe.json"
    saved.write_text(json.dumps(report.to_dict()))
    again = dotaudit("report", str(saved), "--fail-on", "low", "--format", "text")
    assert again.returncode == EXIT_FINDINGS
    assert "(1 total)" in again.stdout and "DA-PROBE-004" in again.stdout
