"""Pure logic: verdicts, exit-code weights, expiry thresholds, cleartext-answer
detection, registry order."""

from __future__ import annotations

from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckStatus, Level
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
