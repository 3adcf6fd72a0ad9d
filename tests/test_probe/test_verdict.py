"""Pure logic: verdicts, exit-code weights, expiry thresholds, cleartext-answer
detection, registry order."""

from __future__ import annotations

import dns.message
import pytest

from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckStatus, Level
from dotaudit.probe.checks.cert_expiry import judge_days
from dotaudit.probe.checks.cleartext_on_853 import BAD_CLIENT_HELLO, answered
from dotaudit.probe.registry import CHECKS, order_problems, with_dependencies
from dotaudit.probe.verdict import TlsOutcome, attempt_severity, judge, verdict_severity


def attempt(
    check_id: str, status: str, reason: str | None = None, **evidence: object
) -> CheckAttempt:
    return CheckAttempt(check_id, CheckStatus(status), Level.MUST, "RFC", dict(evidence), reason)


def results(*attempts: CheckAttempt) -> dict[str, CheckAttempt]:
    return {a.id: a for a in attempts}


GOOD = (
    attempt("reach.853", "pass", **{"class": "open"}),
    attempt("reach.53", "pass", udp53={"answered": True}),
    attempt("cert.chain", "pass"),
    attempt("cert.name", "pass"),
    attempt("cert.pin", "skip", "no --pin given"),
)


def test_good_resolver_is_accepted_and_encrypted() -> None:
    verdict = judge(results(*GOOD), TlsOutcome(True), pinned=False, named=True)
    assert (verdict.strict, verdict.opportunistic) == ("accept", "encrypted")


def test_name_mismatch_refused_with_its_reason() -> None:
    res = results(*GOOD, attempt("cert.name", "fail", "the certificate is not for dns.test"))
    verdict = judge(res, TlsOutcome(True), pinned=False, named=True)
    assert verdict.strict == "refuse"
    assert any(
        "because cert.name: the certificate is not for dns.test" in r for r in verdict.reasons
    )
    assert verdict.opportunistic == "encrypted"


def test_pin_alone_authenticates_without_a_name() -> None:
    res = results(*GOOD, attempt("cert.chain", "fail", "self-signed"), attempt("cert.pin", "pass"))
    assert judge(res, TlsOutcome(True), pinned=True, named=False).strict == "accept"
    # with a name as well, both must hold (as getdns requires)
    assert judge(res, TlsOutcome(True), pinned=True, named=True).strict == "refuse"


def test_blocked_853_with_53_open_is_plaintext_fallback() -> None:
    res = results(attempt("reach.853", "fail", "filtered"), GOOD[1])
    verdict = judge(res, TlsOutcome(None), pinned=False, named=True)
    assert (verdict.strict, verdict.opportunistic) == ("refuse", "plaintext-fallback")
    res = results(attempt("reach.853", "fail", "filtered"), attempt("reach.53", "pass"))
    assert judge(res, TlsOutcome(None), pinned=False, named=True).opportunistic == "fails"


def test_handshake_failure_refuses_and_falls_back() -> None:
    verdict = judge(
        results(*GOOD), TlsOutcome(False, "timeout after 3.0 s"), pinned=False, named=True
    )
    assert verdict.strict == "refuse" and verdict.opportunistic == "plaintext-fallback"
    assert any("timeout after 3.0 s" in r for r in verdict.reasons)


def test_interception_fail_means_intercepted() -> None:
    res = results(*GOOD, attempt("interception", "fail", "key matches none of the pins"))
    verdict = judge(res, TlsOutcome(True), pinned=False, named=True)
    assert verdict.opportunistic == "intercepted"
    assert verdict_severity(verdict, "opportunistic") is Severity.HIGH


def test_attempt_severity_by_level_and_mode() -> None:
    must = CheckAttempt("x", CheckStatus.FAIL, Level.MUST, "", {}, "r")
    should = CheckAttempt("x", CheckStatus.FAIL, Level.SHOULD, "", {}, "r")
    warn = CheckAttempt("x", CheckStatus.WARN, Level.MUST, "", {}, "r")
    ok = CheckAttempt("x", CheckStatus.PASS, Level.MUST, "", {}, None)
    assert attempt_severity(must, strict_only=False, mode="strict") is Severity.HIGH
    assert attempt_severity(must, strict_only=True, mode="opportunistic") is Severity.LOW
    assert attempt_severity(should, strict_only=False, mode="strict") is Severity.MEDIUM
    assert attempt_severity(warn, strict_only=False, mode="strict") is Severity.LOW
    assert attempt_severity(ok, strict_only=False, mode="strict") is None


@pytest.mark.parametrize(
    ("days", "status"),
    [(-0.1, "fail"), (3.0, "fail"), (7.0, "fail"), (7.5, "warn"), (14.0, "warn"), (14.1, "pass")],
)
def test_expiry_thresholds_match_getdns_defaults(days: float, status: str) -> None:
    # Oracle: getdns_server_mon tls-cert-valid "warning or critical if days to expiry at or
    # below thresholds (default 14,7)".
    assert judge_days(days)[0] == status


def test_cleartext_answer_detection() -> None:
    query = dns.message.make_query("example.com", "A")
    reply = dns.message.make_response(query).to_wire()
    framed = len(reply).to_bytes(2, "big") + reply
    alert = bytes.fromhex("15030300020232")
    assert answered(framed, query)
    assert answered(alert + framed, query)  # an alert, then an answer anyway: still a fail
    assert not answered(alert, query)
    assert not answered(BAD_CLIENT_HELLO, query)
    other = dns.message.make_query("example.com", "A")
    other.id = (query.id + 1) % 65536
    wrong = dns.message.make_response(other).to_wire()
    assert not answered(len(wrong).to_bytes(2, "big") + wrong, query)


def test_registry_order_and_dependencies() -> None:
    assert order_problems() == []
    ids = [c.id for c in with_dependencies({"blocked-port"})]
    assert ids == ["reach.853", "reach.53", "rst-injection", "blocked-port"]
    expected = {"reach.853", "reach.53", "rst-injection", "blocked-port", "tls.versions",
                "cert.chain", "cert.name", "cert.pin", "cert.expiry", "cert.quality",
                "interception", "cleartext-on-853", "tls.resumption"}  # fmt: skip
    assert expected <= {c.id for c in CHECKS}
    for check in CHECKS:
        assert check.rfc.startswith("RFC") and check.level in Level and check.budget > 0
