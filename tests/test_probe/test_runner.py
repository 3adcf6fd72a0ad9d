"""Runner behaviour on loopback: hostname targets are resolved and reported,
dependencies skip with their reason, exceptions become error attempts, a spent target
budget skips the rest, and online-only checks run only with --online."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import ClassVar

import pytest

from dotaudit.model.findings import Severity
from dotaudit.probe.base import (
    Check,
    CheckContext,
    CheckOptions,
    CheckStatus,
    Level,
    Outcome,
    ProbeConfig,
)
from dotaudit.probe.registry import BY_ID
from dotaudit.probe.runner import TargetResult, findings_of, result_severity, run_target, target_row
from dotaudit.probe.target import parse_target
from tests import certgen
from tests.test_probe.cert_server import CertServer


def closed_port() -> int:
    # Bind then close: nothing listens there for the next moment.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_hostname_target_is_resolved_and_reported() -> None:
    port = closed_port()
    result = run_target(parse_target(f"localhost:{port}"), ProbeConfig(timeout=1.0),
                        checks=[BY_ID["reach.853"]])  # fmt: skip
    assert result.target.address in ("127.0.0.1", "::1")
    assert result.target.address in result.target.resolved
    assert result.name == "localhost"  # the host name is the authentication name
    reach = result.attempt("reach.853")
    assert reach is not None and reach.evidence["class"] == "refused"


class Boom(Check):
    id = "test.boom"
    title = "raises"
    rfc = "RFC 0"
    level = Level.MAY
    depends_on: ClassVar[tuple[str, ...]] = ()

    def run(self, ctx: CheckContext) -> Outcome:
        raise KeyError("hostile")


class NeedsBoom(Boom):
    id = "test.needs-boom"
    depends_on = ("test.boom",)


def test_exception_is_an_error_attempt_and_dependants_skip() -> None:
    result = run_target(parse_target(f"127.0.0.1:{closed_port()}"), ProbeConfig(),
                        checks=[Boom(), NeedsBoom()])  # fmt: skip
    boom, needs = result.attempt("test.boom"), result.attempt("test.needs-boom")
    assert boom is not None and boom.status is CheckStatus.ERROR
    assert "internal error: KeyError" in (boom.error_reason or "")
    assert needs is not None and needs.status is CheckStatus.SKIP
    assert "needs test.boom, which is error" in (needs.error_reason or "")


def test_target_budget_exhausted_is_an_incomplete_audit() -> None:
    """A check the budget left no time for could not be completed: an error that counts
    (DA-PROBE-005), never a skip that would read as nothing wrong."""
    config = ProbeConfig(target_budget=0.0)
    result = run_target(parse_target("127.0.0.1:1"), config, checks=[BY_ID["reach.853"]])
    reach = result.attempt("reach.853")
    assert reach is not None and reach.status is CheckStatus.ERROR
    assert "budget of 0 s was used up (raise --budget)" in (reach.error_reason or "")
    # nothing is known about the server: the verdict is not tested, the error is listed
    assert result.verdict.strict == "not-tested"
    assert [(f.id, f.severity.label) for f in findings_of(result, "strict")] == [
        ("DA-PROBE-005", "low")
    ]


class _OnlineOnly(Check):
    id = "test.online-only"
    title = "needs the internet"
    rfc = "none"
    level = Level.MAY
    online_only = True
    ran: ClassVar[int] = 0

    def run(self, ctx: CheckContext) -> Outcome:
        _OnlineOnly.ran += 1
        return Outcome(CheckStatus.PASS, {}, "")


@pytest.mark.parametrize("online", [False, True])
def test_online_only_checks_run_only_with_online(online: bool) -> None:
    from dotaudit.probe.runner import run_check

    _OnlineOnly.ran = 0
    config = ProbeConfig(options=CheckOptions(online=online))
    attempt = run_check(_OnlineOnly(), CheckContext(parse_target("127.0.0.1"), config))
    if online:
        assert attempt.status is CheckStatus.PASS and _OnlineOnly.ran == 1
    else:
        assert attempt.status is CheckStatus.SKIP and _OnlineOnly.ran == 0
        assert "needs internet" in (attempt.error_reason or "")
        assert attempt.evidence == {"online_only": True}


@pytest.mark.lab
def test_online_checks_skip_without_online(padded_audit: TargetResult) -> None:
    for check_id in ("dnssec", "qname-min"):
        attempt = padded_audit.attempt(check_id)
        assert attempt is not None and attempt.status is CheckStatus.SKIP
        assert "needs internet" in (attempt.error_reason or "")


class _Passes(Check):
    id = "test.passes"
    title = "passes"
    rfc = "none"
    level = Level.MAY

    def run(self, ctx: CheckContext) -> Outcome:
        return Outcome(CheckStatus.PASS, {}, "")


class _FailsMust(Check):
    id = "test.fails-must"
    title = "a MUST that fails"
    rfc = "none"
    level = Level.MUST

    def run(self, ctx: CheckContext) -> Outcome:
        return Outcome(CheckStatus.FAIL, {}, "refused")


def test_target_row_counts_with_its_highest_finding_or_none() -> None:
    """The row's ``severity`` (what --fail-on weighs) is the highest of the findings the
    report lists for the target, and null, not an empty label, when it has none."""
    clean = run_target(parse_target("127.0.0.1:1"), ProbeConfig(), checks=[_Passes()])
    assert findings_of(clean, "strict") == []
    assert result_severity(clean, "strict") is None
    assert target_row(clean, "strict")["severity"] is None
    mixed = run_target(parse_target("127.0.0.1:1"), ProbeConfig(), checks=[_FailsMust(), Boom()])
    severities = [f.severity for f in findings_of(mixed, "strict")]
    assert sorted(severities) == [Severity.LOW, Severity.HIGH]  # the error, the failed MUST
    assert result_severity(mixed, "strict") is Severity.HIGH
    row = target_row(mixed, "strict")
    assert row["severity"] == "high"
    assert {k: v for k, v in row.items() if k != "severity"} == mixed.to_dict()


def test_target_row_weighs_in_the_runs_mode(tmp_path: Path) -> None:
    """A self-signed server: a strict client refuses it (high), an opportunistic one still
    gets an encrypted session, so the same refusal weighs low in that mode."""
    with CertServer(tmp_path, certgen.issue()) as server:
        target = parse_target(f"dns.test@127.0.0.1:{server.port}")
        result = run_target(
            target, ProbeConfig(timeout=3.0), checks=[BY_ID["reach.853"], BY_ID["cert.chain"]]
        )
    for mode, label in (("strict", "high"), ("opportunistic", "low")):
        assert [(f.id, f.severity.label) for f in findings_of(result, mode)] == [
            ("DA-PROBE-001", label)
        ]
        assert result_severity(result, mode) is Severity[label.upper()]
        assert target_row(result, mode)["severity"] == label
