"""Pure logic: verdicts, exit-code weights, expiry thresholds, cleartext-answer
detection, registry order."""

from __future__ import annotations

import pytest

from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckStatus, Level
from dotaudit.probe.verdict import TlsOutcome, Verdict, attempt_severity, judge, verdict_severity


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


ACCEPT = "a strict client would accept this resolver: it authenticates"
ENCRYPTED = "an opportunistic client gets an encrypted (if unauthenticated) session"


def test_accepting_verdict_in_full() -> None:
    verdict = judge(results(*GOOD), TlsOutcome(True), pinned=False, named=True)
    assert verdict.to_dict() == {
        "strict": "accept",
        "opportunistic": "encrypted",
        "reasons": [ACCEPT, ENCRYPTED],
    }


def test_intercepted_verdict_in_full() -> None:
    res = results(*GOOD, attempt("interception", "fail", "key matches none of the pins"))
    verdict = judge(res, TlsOutcome(True), pinned=False, named=True)
    assert verdict.to_dict() == {
        "strict": "accept",
        "opportunistic": "intercepted",
        "reasons": [
            ACCEPT,
            "an opportunistic client would accept the interceptor's certificate and leak "
            "every query to it (key matches none of the pins)",
        ],
    }
    # An interception check that passes or warns is no interception.
    warned = results(*GOOD, attempt("interception", "warn", "cut short"))
    assert judge(warned, TlsOutcome(True), pinned=False, named=True).opportunistic == "encrypted"


def test_open_853_without_tls_tried_is_encrypted_with_its_reason() -> None:
    res = results(attempt("reach.853", "warn", "slow"), GOOD[1])
    verdict = judge(res, TlsOutcome(None), pinned=False, named=True)
    assert verdict.opportunistic == "encrypted"
    assert verdict.reasons[-1] == "port 853 is open; TLS itself was not tried (not among --checks)"
    # The strict client never saw authentication: every gate is named as not run.
    assert verdict.strict == "refuse"
    assert list(verdict.reasons[:-1]) == [
        "a strict client would refuse this resolver because cert.chain was not run, so "
        "authentication was not shown",
        "a strict client would refuse this resolver because cert.name was not run, so "
        "authentication was not shown",
    ]


def test_plaintext_fallback_and_no_dns_reasons_in_full() -> None:
    blocked = attempt("reach.853", "fail", "filtered")
    tcp_only = attempt("reach.53", "pass", udp53={"answered": False}, tcp53={"answered": True})
    verdict = judge(results(blocked, tcp_only), TlsOutcome(None), pinned=False, named=True)
    assert verdict.to_dict() == {
        "strict": "refuse",
        "opportunistic": "plaintext-fallback",
        "reasons": [
            "a strict client would refuse this resolver because port 853 is not usable: filtered",
            "an opportunistic client cannot use DoT here and falls back to plaintext port 53, "
            "which answers",
        ],
    }
    silent = attempt("reach.53", "fail", udp53={"answered": False}, tcp53={"answered": False})
    verdict = judge(results(blocked, silent), TlsOutcome(None), pinned=False, named=True)
    assert verdict.opportunistic == "fails"
    assert verdict.reasons[-1] == (
        "an opportunistic client gets no DNS at all: neither 853 nor 53 works"
    )
    assert judge(results(blocked), TlsOutcome(None), pinned=False, named=True).opportunistic == (
        "fails"
    )


def test_reach_853_failure_reason_falls_back_to_the_status() -> None:
    res = results(CheckAttempt("reach.853", CheckStatus.ERROR, Level.MUST, "RFC", {}, None))
    verdict = judge(res, TlsOutcome(None), pinned=False, named=True)
    assert verdict.reasons[0] == (
        "a strict client would refuse this resolver because port 853 is not usable: error"
    )


def test_handshake_failure_reason_in_full() -> None:
    verdict = judge(results(*GOOD), TlsOutcome(False, "reset"), pinned=False, named=True)
    assert verdict.reasons[0] == (
        "a strict client would refuse this resolver because no TLS session could be set up: reset"
    )


def test_pinned_and_named_needs_the_pin_as_well() -> None:
    res = results(*GOOD[:4])  # chain and name pass, no pin result at all
    verdict = judge(res, TlsOutcome(True), pinned=True, named=True)
    assert verdict.strict == "refuse"
    assert verdict.reasons[0] == (
        "a strict client would refuse this resolver because cert.pin was not run, so "
        "authentication was not shown"
    )
    pin_failed = results(*GOOD[:4], attempt("cert.pin", "fail", "no pin matches"))
    assert list(judge(pin_failed, TlsOutcome(True), pinned=True, named=True).reasons) == [
        "a strict client would refuse this resolver because cert.pin: no pin matches",
        ENCRYPTED,
    ]


@pytest.mark.parametrize(
    ("strict", "opportunistic", "mode", "severity"),
    [
        ("accept", "encrypted", "strict", None),
        ("refuse", "encrypted", "strict", Severity.HIGH),
        ("accept", "intercepted", "strict", Severity.HIGH),
        ("refuse", "encrypted", "opportunistic", None),
        ("refuse", "plaintext-fallback", "opportunistic", Severity.HIGH),
        ("refuse", "fails", "opportunistic", Severity.HIGH),
        ("accept", "intercepted", "opportunistic", Severity.HIGH),
        ("accept", "plaintext-fallback", "strict", None),
    ],
)
def test_verdict_severity_for_each_mode(
    strict: str, opportunistic: str, mode: str, severity: Severity | None
) -> None:
    assert verdict_severity(Verdict(strict, opportunistic), mode) is severity


def test_attempt_severity_strict_only_counts_in_full_in_strict_mode() -> None:
    must = CheckAttempt("x", CheckStatus.FAIL, Level.MUST, "", {}, "r")
    may = CheckAttempt("x", CheckStatus.FAIL, Level.MAY, "", {}, "r")
    error = CheckAttempt("x", CheckStatus.ERROR, Level.MUST, "", {}, "r")
    skip = CheckAttempt("x", CheckStatus.SKIP, Level.MUST, "", {}, "r")
    assert attempt_severity(must, strict_only=True, mode="strict") is Severity.HIGH
    assert attempt_severity(must, strict_only=False, mode="opportunistic") is Severity.HIGH
    assert attempt_severity(may, strict_only=False, mode="strict") is Severity.LOW
    assert attempt_severity(error, strict_only=False, mode="strict") is Severity.LOW
    assert attempt_severity(skip, strict_only=False, mode="strict") is None
