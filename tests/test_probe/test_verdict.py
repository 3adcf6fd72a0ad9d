"""Pure logic of dotaudit/probe/verdict.py: the strict and opportunistic verdicts, concluded
only from checks that ran, and what each weighs in each mode.

Oracle: RFC 8310 §5 (a strict client refuses what it cannot authenticate; an
opportunistic one uses an unauthenticated encrypted session, else falls back) and the
results given to ``judge`` by hand.
"""

from __future__ import annotations

import pytest

from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckStatus, Level
from dotaudit.probe.verdict import (
    Cause,
    TlsOutcome,
    Verdict,
    attempt_severity,
    judge,
    verdict_findings,
)


def attempt(
    check_id: str, status: str, reason: str | None = None, **evidence: object
) -> CheckAttempt:
    return CheckAttempt(check_id, CheckStatus(status), Level.MUST, "RFC", dict(evidence), reason)


def results(*attempts: CheckAttempt) -> dict[str, CheckAttempt]:
    return {a.id: a for a in attempts}


REACH_OK = attempt("reach.853", "pass", **{"class": "open"})
REFUSED = attempt("reach.853", "fail", "refused: a RST", **{"class": "refused"})
PLAIN_53 = attempt("reach.53", "pass", udp53={"answered": True}, tcp53={"answered": True})
NO_53 = attempt("reach.53", "not-applicable", "nothing answers",
                udp53={"answered": False}, tcp53={"answered": False})  # fmt: skip
GOOD = (
    REACH_OK,
    PLAIN_53,
    attempt("cert.chain", "pass"),
    attempt("cert.name", "pass"),
    attempt("cert.pin", "not-applicable", "no --pin given"),
)


def test_good_resolver_is_accepted_and_encrypted() -> None:
    verdict = judge(results(*GOOD), TlsOutcome(True), pinned=False, named=True)
    assert (verdict.strict, verdict.opportunistic) == ("accept", "encrypted")
    assert verdict.cause is None and verdict_findings(verdict, "strict") == []


def test_name_mismatch_refused_with_its_reason() -> None:
    res = results(*GOOD, attempt("cert.name", "fail", "the certificate is not for dns.test"))
    verdict = judge(res, TlsOutcome(True), pinned=False, named=True)
    assert verdict.strict == "refuse"
    assert any(
        "because cert.name: the certificate is not for dns.test" in r for r in verdict.reasons
    )
    assert verdict.opportunistic == "encrypted"
    assert (verdict.cause, verdict.covers) == (Cause.AUTHENTICATION, ("cert.name",))


def test_pin_alone_authenticates_without_a_name() -> None:
    res = results(*GOOD, attempt("cert.chain", "fail", "self-signed"), attempt("cert.pin", "pass"))
    assert judge(res, TlsOutcome(True), pinned=True, named=False).strict == "accept"
    # with a name as well, both must hold (as getdns requires)
    assert judge(res, TlsOutcome(True), pinned=True, named=True).strict == "refuse"


def test_blocked_853_with_53_open_is_plaintext_fallback() -> None:
    verdict = judge(results(REFUSED, PLAIN_53), TlsOutcome(None), pinned=False, named=True)
    assert (verdict.strict, verdict.opportunistic) == ("refuse", "plaintext-fallback")
    assert verdict.cause is Cause.PORT_UNUSABLE


def test_blocked_853_with_nothing_on_53_fails() -> None:
    """reach.53 measured nothing answering (not applicable): that is a measurement."""
    verdict = judge(results(REFUSED, NO_53), TlsOutcome(None), pinned=False, named=True)
    assert verdict.opportunistic == "fails"


def test_reach_853_alone_does_not_conclude_about_port_53() -> None:
    """Before, ``--checks reach.853`` concluded "neither 853 nor 53 works" without ever
    testing 53."""
    verdict = judge(results(REFUSED), TlsOutcome(None), pinned=False, named=True)
    assert verdict.strict == "refuse"  # reach.853 ran and refused: that much is known
    assert verdict.opportunistic == "not-tested"
    assert not any("neither" in r or "no DNS" in r for r in verdict.reasons)
    assert any("reach.53 was not run (not among --checks)" in r for r in verdict.reasons)


@pytest.mark.parametrize("status", ["error", "skip"])
def test_an_unmeasured_port_53_is_not_tested(status: str) -> None:
    plain = attempt("reach.53", status, "internal error")
    verdict = judge(results(REFUSED, plain), TlsOutcome(None), pinned=False, named=True)
    assert verdict.opportunistic == "not-tested"


def test_an_open_port_without_a_handshake_is_not_tested() -> None:
    """Before, an open port was taken for an encrypted session and a strict refusal was
    concluded from certificate checks that never ran."""
    verdict = judge(results(REACH_OK), TlsOutcome(None), pinned=False, named=True)
    assert (verdict.strict, verdict.opportunistic) == ("not-tested", "not-tested")
    assert any("cert.chain was not run" in r for r in verdict.reasons)
    assert verdict_findings(verdict, "strict") == []


def test_a_skipped_gate_is_not_tested_and_a_failed_one_decides() -> None:
    skipped = attempt("cert.name", "skip", "target budget of 90 s used up")
    res = results(*GOOD, skipped)
    verdict = judge(res, TlsOutcome(True), pinned=False, named=True)
    assert verdict.strict == "not-tested"
    assert any("target budget of 90 s used up" in r for r in verdict.reasons)
    failed_chain = attempt("cert.chain", "fail", "self-signed")
    assert judge(results(*GOOD, skipped, failed_chain), TlsOutcome(True), pinned=False,
                 named=True).strict == "refuse"  # fmt: skip


def test_an_error_of_the_server_refuses_but_the_probe_running_out_of_time_does_not() -> None:
    no_cert = attempt("cert.chain", "error", "the server sent no certificate")
    verdict = judge(results(*GOOD, no_cert), TlsOutcome(True), pinned=False, named=True)
    assert (verdict.strict, verdict.cause) == ("refuse", Cause.AUTHENTICATION)
    out_of_time = attempt("cert.chain", "error", "not run: budget", error_kind="budget")
    verdict = judge(results(*GOOD, out_of_time), TlsOutcome(True), pinned=False, named=True)
    assert verdict.strict == "not-tested"
    unclassified = attempt("reach.853", "error", "connect failed in an unclassified way")
    verdict = judge(results(unclassified), TlsOutcome(None), pinned=False, named=True)
    assert (verdict.strict, verdict.opportunistic) == ("not-tested", "not-tested")


def test_handshake_failure_refuses_and_falls_back() -> None:
    error = "timeout after 3.0 s"
    res = results(*GOOD[:2], attempt("cert.chain", "error", error), attempt("doq", "error", "x"))
    verdict = judge(res, TlsOutcome(False, error), pinned=False, named=True)
    assert verdict.strict == "refuse" and verdict.opportunistic == "plaintext-fallback"
    assert any(error in r for r in verdict.reasons)
    # the checks that only repeat the handshake's error are part of the refusal
    assert (verdict.cause, verdict.covers) == (Cause.TLS_FAILED, ("cert.chain",))


def test_interception_fail_means_intercepted() -> None:
    res = results(*GOOD, attempt("interception", "fail", "key matches none of the pins"))
    verdict = judge(res, TlsOutcome(True), pinned=False, named=True)
    assert verdict.opportunistic == "intercepted"
    for mode in ("strict", "opportunistic"):
        assert [(f.id, f.severity) for f in verdict_findings(verdict, mode)] == [
            ("DA-PROBE-003", Severity.HIGH)
        ]


def test_texts_name_the_port_probed() -> None:
    refused = attempt("reach.853", "fail", "refused", **{"class": "refused"})
    for verdict in (
        judge(results(refused, PLAIN_53), TlsOutcome(None), pinned=False, named=True, port=8853),
        judge(results(refused), TlsOutcome(None), pinned=False, named=True, port=8853),
        judge(results(REACH_OK), TlsOutcome(False, "x"), pinned=False, named=True, port=8853),
    ):
        text = " ".join(verdict.reasons)
        assert "8853" in text
        assert "853 " not in text.replace("8853", "") and "853:" not in text.replace("8853", "")


def test_an_unresolved_name_is_refused_with_its_cause() -> None:
    verdict = judge({}, TlsOutcome(None), pinned=False, named=True, unresolved="NXDOMAIN")
    assert (verdict.strict, verdict.opportunistic, verdict.cause) == (
        "refuse", "fails", Cause.UNRESOLVED)  # fmt: skip


@pytest.mark.parametrize(
    ("cause", "mode", "severity"),
    [
        # RFC 8310 §5: an opportunistic client still encrypts with a certificate it cannot
        # authenticate, so for it that is a weakness (low), for a strict one a refusal.
        (Cause.AUTHENTICATION, "strict", Severity.HIGH),
        (Cause.AUTHENTICATION, "opportunistic", Severity.LOW),
        # A DoT port that does not work lets neither kind of client encrypt.
        (Cause.PORT_UNUSABLE, "opportunistic", Severity.HIGH),
        (Cause.TLS_FAILED, "opportunistic", Severity.HIGH),
        (Cause.UNRESOLVED, "opportunistic", Severity.HIGH),
        (Cause.PORT_UNUSABLE, "strict", Severity.HIGH),
    ],
)
def test_a_refusal_weighs_by_cause_and_mode(cause: Cause, mode: str, severity: Severity) -> None:
    verdict = Verdict("refuse", "encrypted", ("why",), cause, ("cert.name",))
    assert [(f.id, f.severity, f.covers) for f in verdict_findings(verdict, mode)] == [
        ("DA-PROBE-001", severity, ("cert.name",))
    ]


def test_a_fallback_is_high_in_either_mode() -> None:
    verdict = Verdict("refuse", "plaintext-fallback", ("why",), Cause.PORT_UNUSABLE)
    for mode in ("strict", "opportunistic"):
        assert {(f.id, f.severity) for f in verdict_findings(verdict, mode)} == {
            ("DA-PROBE-001", Severity.HIGH), ("DA-PROBE-002", Severity.HIGH)}  # fmt: skip


def test_attempt_severity_by_level_and_mode() -> None:
    must = CheckAttempt("x", CheckStatus.FAIL, Level.MUST, "", {}, "r")
    should = CheckAttempt("x", CheckStatus.FAIL, Level.SHOULD, "", {}, "r")
    warn = CheckAttempt("x", CheckStatus.WARN, Level.MUST, "", {}, "r")
    ok = CheckAttempt("x", CheckStatus.PASS, Level.MUST, "", {}, None)
    nothing = CheckAttempt("x", CheckStatus.NOT_APPLICABLE, Level.MUST, "", {}, "no pin")
    assert attempt_severity(must, strict_only=False, mode="strict") is Severity.HIGH
    assert attempt_severity(must, strict_only=True, mode="opportunistic") is Severity.LOW
    assert attempt_severity(should, strict_only=False, mode="strict") is Severity.MEDIUM
    assert attempt_severity(warn, strict_only=False, mode="strict") is Severity.LOW
    assert attempt_severity(ok, strict_only=False, mode="strict") is None
    assert attempt_severity(nothing, strict_only=False, mode="strict") is None
