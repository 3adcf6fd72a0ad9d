"""Pure logic of dotaudit/probe/verdict.py: the strict and opportunistic verdicts, concluded
only from checks that ran, and what each weighs in each mode.

Oracle: RFC 8310 §5 (a strict client refuses what it cannot authenticate; an
opportunistic one uses an unauthenticated encrypted session, else falls back) and the
results given to ``judge`` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckStatus, Level
from dotaudit.probe.verdict import (
    NOT_TESTED,
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


ACCEPT = "a strict client would accept this resolver: it authenticates"
ENCRYPTED = "an opportunistic client gets an encrypted (if unauthenticated) session"


def test_accepting_verdict_in_full() -> None:
    verdict = judge(results(*GOOD), TlsOutcome(True), pinned=False, named=True)
    assert verdict.to_dict() == {
        "strict": "accept",
        "opportunistic": "encrypted",
        "reasons": [ACCEPT, ENCRYPTED],
        "cause": None,
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
        "cause": None,
    }
    # An interception check that passes or warns is no interception.
    warned = results(*GOOD, attempt("interception", "warn", "cut short"))
    assert judge(warned, TlsOutcome(True), pinned=False, named=True).opportunistic == "encrypted"


def test_plaintext_fallback_and_no_dns_reasons_in_full() -> None:
    blocked = attempt("reach.853", "fail", "filtered")
    tcp_only = attempt("reach.53", "pass", udp53={"answered": False}, tcp53={"answered": True})
    verdict = judge(results(blocked, tcp_only), TlsOutcome(None), pinned=False, named=True)
    assert verdict.to_dict() == {
        "strict": "refuse",
        "opportunistic": "plaintext-fallback",
        "reasons": [
            "a strict client would refuse this resolver because port 853 is not usable: filtered",
            "an opportunistic client cannot use DoT on port 853 and falls back to plaintext "
            "port 53, which answers",
        ],
        "cause": "port-unusable",
    }
    silent = attempt(
        "reach.53", "not-applicable", udp53={"answered": False}, tcp53={"answered": False}
    )
    verdict = judge(results(blocked, silent), TlsOutcome(None), pinned=False, named=True)
    assert verdict.opportunistic == "fails"
    assert verdict.reasons[-1] == (
        "an opportunistic client gets no DNS here: DoT on port 853 does not work and "
        "plaintext port 53 does not answer"
    )


def test_reach_853_failure_reason_falls_back_to_the_status() -> None:
    res = results(CheckAttempt("reach.853", CheckStatus.FAIL, Level.MUST, "RFC", {}, None))
    verdict = judge(res, TlsOutcome(None), pinned=False, named=True)
    assert verdict.reasons[0] == (
        "a strict client would refuse this resolver because port 853 is not usable: fail"
    )


def test_handshake_failure_reason_in_full() -> None:
    verdict = judge(results(*GOOD), TlsOutcome(False, "reset"), pinned=False, named=True)
    assert verdict.reasons[0] == (
        "a strict client would refuse this resolver because no TLS session could be set up "
        "on port 853: reset"
    )


def test_pinned_and_named_needs_the_pin_as_well() -> None:
    pin_failed = results(*GOOD[:4], attempt("cert.pin", "fail", "no pin matches"))
    assert list(judge(pin_failed, TlsOutcome(True), pinned=True, named=True).reasons) == [
        "a strict client would refuse this resolver because cert.pin: no pin matches",
        ENCRYPTED,
    ]


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


# --- every verdict branch, with the reasons a user reads in full ----------------------------

STRICT_REFUSES = "a strict client would refuse this resolver because "
STRICT_UNTESTED = "whether a strict client accepts this resolver was not tested: "
FALLS_BACK = (
    "an opportunistic client cannot use DoT on port 853 and falls back to plaintext port 53, "
    "which answers"
)
NO_DNS = (
    "an opportunistic client gets no DNS here: DoT on port 853 does not work and plaintext "
    "port 53 does not answer"
)
FALLBACK_UNTESTED = (
    "an opportunistic client cannot use DoT on port 853; whether it falls back to plaintext "
    "port 53 was not tested: "
)
OPPORTUNISTIC_UNTESTED = "what an opportunistic client gets was not tested: "
OUT_OF_BUDGET = "not run: the target budget of 90 s was used up (raise --budget)"
CONNECT_ERROR = "connect failed in an unclassified way: [Errno 22] Invalid argument"
REACH_ERROR = attempt("reach.853", "error", CONNECT_ERROR, **{"class": "error"})


def needing_reach(reach: CheckAttempt) -> tuple[CheckAttempt, ...]:
    """The certificate checks as the runner leaves them when reach.853 did not pass: each
    depends on it, so none ran and no handshake was tried."""
    why = f"needs reach.853, which is {reach.status.value}: {reach.error_reason}"
    return tuple(attempt(g, "skip", why) for g in ("cert.chain", "cert.name", "cert.pin"))


@dataclass(frozen=True)
class Case:
    results: dict[str, CheckAttempt]
    tls: TlsOutcome
    strict: str
    opportunistic: str
    reasons: tuple[str, ...]
    cause: Cause | None = None
    covers: tuple[str, ...] = ()
    pinned: bool = False
    named: bool = True
    port: int = 853
    unresolved: str | None = None


# Each row is what a probe run leaves: the results of the checks it ran (``--checks`` may
# leave some out; a check that needs reach.853 is skipped when that did not pass).
CASES = {
    "authenticated-and-encrypted": Case(
        results(*GOOD), TlsOutcome(True), "accept", "encrypted", (ACCEPT, ENCRYPTED)
    ),
    "certificate-not-for-the-name": Case(
        results(*GOOD, attempt("cert.name", "fail", "the certificate is not for dns.test")),
        TlsOutcome(True),
        "refuse",
        "encrypted",
        (STRICT_REFUSES + "cert.name: the certificate is not for dns.test", ENCRYPTED),
        Cause.AUTHENTICATION,
        ("cert.name",),
    ),
    "pin-alone-authenticates-an-unnamed-target": Case(
        results(*GOOD, attempt("cert.chain", "fail", "self-signed"), attempt("cert.pin", "pass")),
        TlsOutcome(True),
        "accept",
        "encrypted",
        (ACCEPT, ENCRYPTED),
        pinned=True,
        named=False,
    ),
    "intercepted": Case(
        results(*GOOD, attempt("interception", "fail", "key matches none of the pins")),
        TlsOutcome(True),
        "accept",
        "intercepted",
        (
            ACCEPT,
            "an opportunistic client would accept the interceptor's certificate and leak "
            "every query to it (key matches none of the pins)",
        ),
    ),
    "name-check-out-of-budget": Case(
        results(*GOOD, attempt("cert.name", "error", OUT_OF_BUDGET, error_kind="budget")),
        TlsOutcome(True),
        NOT_TESTED,
        "encrypted",
        (STRICT_UNTESTED + f"cert.name is error ({OUT_OF_BUDGET})", ENCRYPTED),
    ),
    "handshake-fails-and-53-answers": Case(
        results(REACH_OK, PLAIN_53, attempt("cert.chain", "error", "reset")),
        TlsOutcome(False, "reset"),
        "refuse",
        "plaintext-fallback",
        (STRICT_REFUSES + "no TLS session could be set up on port 853: reset", FALLS_BACK),
        Cause.TLS_FAILED,
        ("cert.chain",),
    ),
    "853-refused-and-53-answers": Case(
        results(REFUSED, PLAIN_53, *needing_reach(REFUSED)),
        TlsOutcome(None),
        "refuse",
        "plaintext-fallback",
        (STRICT_REFUSES + "port 853 is not usable: refused: a RST", FALLS_BACK),
        Cause.PORT_UNUSABLE,
        ("reach.853", "blocked-port"),
    ),
    "853-refused-and-only-udp-53-answers": Case(
        results(
            REFUSED,
            attempt("reach.53", "pass", udp53={"answered": True}, tcp53={"answered": False}),
        ),
        TlsOutcome(None),
        "refuse",
        "plaintext-fallback",
        (STRICT_REFUSES + "port 853 is not usable: refused: a RST", FALLS_BACK),
        Cause.PORT_UNUSABLE,
        ("reach.853", "blocked-port"),
    ),
    "853-refused-and-only-tcp-53-answers": Case(
        results(
            REFUSED,
            attempt("reach.53", "pass", udp53={"answered": False}, tcp53={"answered": True}),
        ),
        TlsOutcome(None),
        "refuse",
        "plaintext-fallback",
        (STRICT_REFUSES + "port 853 is not usable: refused: a RST", FALLS_BACK),
        Cause.PORT_UNUSABLE,
        ("reach.853", "blocked-port"),
    ),
    "853-refused-and-nothing-on-53": Case(
        results(REFUSED, NO_53),
        TlsOutcome(None),
        "refuse",
        "fails",
        (STRICT_REFUSES + "port 853 is not usable: refused: a RST", NO_DNS),
        Cause.PORT_UNUSABLE,
        ("reach.853", "blocked-port"),
    ),
    "853-refused-and-53-not-among-checks": Case(
        results(REFUSED),
        TlsOutcome(None),
        "refuse",
        NOT_TESTED,
        (
            STRICT_REFUSES + "port 853 is not usable: refused: a RST",
            FALLBACK_UNTESTED + "reach.53 was not run (not among --checks)",
        ),
        Cause.PORT_UNUSABLE,
        ("reach.853", "blocked-port"),
    ),
    "853-refused-and-53-out-of-budget": Case(
        results(REFUSED, attempt("reach.53", "error", OUT_OF_BUDGET, error_kind="budget")),
        TlsOutcome(None),
        "refuse",
        NOT_TESTED,
        (
            STRICT_REFUSES + "port 853 is not usable: refused: a RST",
            FALLBACK_UNTESTED + f"reach.53 is error ({OUT_OF_BUDGET})",
        ),
        Cause.PORT_UNUSABLE,
        ("reach.853", "blocked-port"),
    ),
    "853-open-and-no-tls-check-among-checks": Case(
        results(REACH_OK, PLAIN_53),
        TlsOutcome(None),
        NOT_TESTED,
        NOT_TESTED,
        (
            STRICT_UNTESTED + "cert.chain was not run (not among --checks)",
            STRICT_UNTESTED + "cert.name was not run (not among --checks)",
            "port 853 accepts connections, but no TLS handshake was tried (no TLS check "
            "among --checks): what an opportunistic client gets was not tested",
        ),
    ),
    "another-port-open-and-no-tls-check-among-checks": Case(
        results(attempt("reach.853", "pass", port=8853, **{"class": "open"}), PLAIN_53),
        TlsOutcome(None),
        NOT_TESTED,
        NOT_TESTED,
        (
            STRICT_UNTESTED + "cert.chain was not run (not among --checks)",
            STRICT_UNTESTED + "cert.name was not run (not among --checks)",
            "port 8853 accepts connections, but no TLS handshake was tried (no TLS check "
            "among --checks): what an opportunistic client gets was not tested",
        ),
        port=8853,
    ),
    "853-not-among-checks": Case(
        results(PLAIN_53),
        TlsOutcome(None),
        NOT_TESTED,
        NOT_TESTED,
        (
            STRICT_UNTESTED + "reach.853 was not run (not among --checks)",
            STRICT_UNTESTED + "cert.chain was not run (not among --checks)",
            STRICT_UNTESTED + "cert.name was not run (not among --checks)",
            OPPORTUNISTIC_UNTESTED + "reach.853 was not run (not among --checks)",
        ),
    ),
    "853-connect-error": Case(
        results(REACH_ERROR, PLAIN_53, *needing_reach(REACH_ERROR)),
        TlsOutcome(None),
        NOT_TESTED,
        NOT_TESTED,
        (
            STRICT_UNTESTED + f"reach.853 is error ({CONNECT_ERROR})",
            STRICT_UNTESTED
            + f"cert.chain is skip (needs reach.853, which is error: {CONNECT_ERROR})",
            STRICT_UNTESTED
            + f"cert.name is skip (needs reach.853, which is error: {CONNECT_ERROR})",
            OPPORTUNISTIC_UNTESTED + f"reach.853 is error ({CONNECT_ERROR})",
        ),
    ),
    "name-did-not-resolve": Case(
        results(*(attempt(a.id, "skip", "NXDOMAIN") for a in GOOD)),
        TlsOutcome(None),
        "refuse",
        "fails",
        (
            "a strict client would refuse this resolver because its name did not resolve: NXDOMAIN",
            "an opportunistic client gets no DNS from it either",
        ),
        Cause.UNRESOLVED,
        unresolved="NXDOMAIN",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_verdict_and_what_the_user_is_told(case: Case) -> None:
    verdict = judge(
        case.results,
        case.tls,
        pinned=case.pinned,
        named=case.named,
        port=case.port,
        unresolved=case.unresolved,
    )
    assert (verdict.strict, verdict.opportunistic) == (case.strict, case.opportunistic)
    assert verdict.reasons == case.reasons
    assert (verdict.cause, verdict.covers) == (case.cause, case.covers)
    assert verdict.to_dict()["reasons"] == list(case.reasons)


REFUSAL_853 = ("DA-PROBE-001", Severity.HIGH, ("reach.853", "blocked-port"))
REFUSAL_TLS = ("DA-PROBE-001", Severity.HIGH, ("cert.chain",))
FALLBACK = ("DA-PROBE-002", Severity.HIGH, ("blocked-port",))
INTERCEPTION = ("DA-PROBE-003", Severity.HIGH, ("interception",))


# A refusal, a fallback and an interception each stand for the check results that show
# them (``covers``): those get no finding of their own.
@pytest.mark.parametrize(
    ("situation", "mode", "findings"),
    [
        ("authenticated-and-encrypted", "strict", []),
        ("853-open-and-no-tls-check-among-checks", "strict", []),
        ("853-refused-and-53-not-among-checks", "strict", [REFUSAL_853]),
        ("853-refused-and-53-answers", "strict", [REFUSAL_853, FALLBACK]),
        ("853-refused-and-53-answers", "opportunistic", [REFUSAL_853, FALLBACK]),
        ("handshake-fails-and-53-answers", "strict", [REFUSAL_TLS, FALLBACK]),
        ("handshake-fails-and-53-answers", "opportunistic", [REFUSAL_TLS, FALLBACK]),
        (
            "certificate-not-for-the-name",
            "strict",
            [("DA-PROBE-001", Severity.HIGH, ("cert.name",))],
        ),
        (
            "certificate-not-for-the-name",
            "opportunistic",
            [("DA-PROBE-001", Severity.LOW, ("cert.name",))],
        ),
        ("intercepted", "strict", [INTERCEPTION]),
        ("intercepted", "opportunistic", [INTERCEPTION]),
    ],
)
def test_the_findings_of_a_verdict_and_what_each_stands_for(
    situation: str, mode: str, findings: list[tuple[str, Severity, tuple[str, ...]]]
) -> None:
    case = CASES[situation]
    verdict = judge(case.results, case.tls, pinned=case.pinned, named=case.named, port=case.port)
    assert [(f.id, f.severity, f.covers) for f in verdict_findings(verdict, mode)] == findings
