"""What a strict and an opportunistic client (RFC 8310 §5) would do with a target, and
what each result weighs for ``--fail-on``. Pure functions over check attempts.

A verdict is concluded only from checks that ran: when the checks that decide it were
not run (``--checks``), skipped or could not say, the verdict is ``not-tested`` with the
reason, never a guess.

What weighs, by mode (RFC 8310 §5): a strict client refuses a resolver it cannot
authenticate, so in strict mode a refusal is high. An opportunistic client that meets a
certificate it cannot authenticate still uses the encrypted connection: for it an
authentication failure is a privacy weakness (an active attacker could read along), low,
not a break. A DoT port that does not work at all, a fallback to plaintext and an
interceptor are high in either mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckStatus, Level

GOOD = (CheckStatus.PASS, CheckStatus.WARN)
BAD = (CheckStatus.FAIL, CheckStatus.ERROR)
NOT_TESTED = "not-tested"
"""The verdict when the checks that decide it did not run."""


class Cause(StrEnum):
    """Why a strict client refuses a target: it decides DA-PROBE-001's remediation."""

    UNRESOLVED = "unresolved"
    """The target's host name did not resolve."""
    PORT_UNUSABLE = "port-unusable"
    """The DoT port does not accept TCP connections (refused, filtered, ICMP)."""
    TLS_FAILED = "tls-failed"
    """The port accepts connections, but no TLS session could be set up."""
    AUTHENTICATION = "authentication"
    """TLS works, but the certificate's chain, name or pin does not hold."""


@dataclass(frozen=True, slots=True)
class TlsOutcome:
    """Whether any TLS handshake on the DoT port succeeded (None: never tried)."""

    ok: bool | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    strict: str
    """"accept", "refuse" or "not-tested"."""
    opportunistic: str
    """"encrypted", "plaintext-fallback", "intercepted", "fails" or "not-tested"."""
    reasons: tuple[str, ...] = field(default=())
    cause: Cause | None = None
    """Why a strict client refuses (None unless ``strict`` is "refuse")."""
    covers: tuple[str, ...] = ()
    """The check results the refusal stands for: the failures that decide it, and those
    that only repeat it (a check that needed the failed handshake)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "strict": self.strict,
            "opportunistic": self.opportunistic,
            "reasons": list(self.reasons),
            "cause": self.cause.value if self.cause is not None else None,
        }


def _why(attempt: CheckAttempt) -> str:
    return attempt.error_reason or attempt.status.value


def _not_run(check_id: str, attempt: CheckAttempt | None) -> str:
    if attempt is None:
        return f"{check_id} was not run (not among --checks)"
    if attempt.error_reason:
        return f"{check_id} is {attempt.status.value} ({attempt.error_reason})"
    return f"{check_id} is {attempt.status.value}"


@dataclass(frozen=True, slots=True)
class _Strict:
    verdict: str
    reasons: list[str]
    cause: Cause | None = None
    covers: tuple[str, ...] = ()


def _strict(
    results: Mapping[str, CheckAttempt], tls: TlsOutcome, pinned: bool, named: bool, port: int
) -> _Strict:
    reach = results.get("reach.853")
    if reach is not None and reach.status is CheckStatus.FAIL:
        why = f"port {port} is not usable: {_why(reach)}"
        return _Strict("refuse", [why], Cause.PORT_UNUSABLE, ("reach.853", "blocked-port"))
    if tls.ok is False:
        why = f"no TLS session could be set up on port {port}: {tls.error}"
        # The checks that needed the handshake end with its error: one incident, not many.
        repeats = tuple(
            check_id
            for check_id, attempt in results.items()
            if attempt.status is CheckStatus.ERROR and attempt.error_reason == tls.error
        )
        return _Strict("refuse", [why], Cause.TLS_FAILED, repeats)
    # With pins and no name, the pin alone authenticates (RFC 7858 §4.2, RFC 8310 §6.4);
    # with both, both must hold, as getdns/stubby require.
    gates = ["cert.pin"] if pinned and not named else ["cert.chain", "cert.name"]
    if pinned and named:
        gates.append("cert.pin")
    failing = tuple(g for g in gates if _refuses(results.get(g)))
    if failing:
        reasons = [f"{g}: {_why(results[g])}" for g in failing]
        return _Strict("refuse", reasons, Cause.AUTHENTICATION, failing)
    unknown = [_not_run(g, results.get(g)) for g in gates if _status(results, g) not in GOOD]
    if reach is None or reach.status not in GOOD:
        unknown.insert(0, _not_run("reach.853", reach))
    if unknown:
        return _Strict(NOT_TESTED, unknown)
    return _Strict("accept", [])


def _refuses(attempt: CheckAttempt | None) -> bool:
    """Whether a strict client would refuse on this authentication result: a failure, or an
    error the server caused (no certificate, a broken one). An error of the probe's own
    (its time budget used up) shows nothing about the server."""
    if attempt is None or attempt.status not in BAD:
        return False
    return attempt.evidence.get("error_kind") != "budget"


def _status(results: Mapping[str, CheckAttempt], check_id: str) -> CheckStatus | None:
    attempt = results.get(check_id)
    return attempt.status if attempt is not None else None


def _plain_53(results: Mapping[str, CheckAttempt]) -> bool | None:
    """Whether plaintext DNS answers on UDP or TCP 53; None when reach.53 did not measure it."""
    attempt = results.get("reach.53")
    if attempt is None or attempt.status not in (*GOOD, CheckStatus.NOT_APPLICABLE):
        return None
    evidence = attempt.evidence
    return bool(
        evidence.get("udp53", {}).get("answered") or evidence.get("tcp53", {}).get("answered")
    )


def _opportunistic(
    results: Mapping[str, CheckAttempt], tls: TlsOutcome, port: int
) -> tuple[str, str]:
    interception = results.get("interception")
    if tls.ok:
        if interception is not None and interception.status is CheckStatus.FAIL:
            return "intercepted", (
                "an opportunistic client would accept the interceptor's certificate and leak "
                f"every query to it ({_why(interception)})"
            )
        return "encrypted", "an opportunistic client gets an encrypted (if unauthenticated) session"
    reach = results.get("reach.853")
    reach_ok = reach is not None and reach.status in GOOD
    if tls.ok is None:
        if reach_ok:
            return NOT_TESTED, (
                f"port {port} accepts connections, but no TLS handshake was tried (no TLS "
                "check among --checks): what an opportunistic client gets was not tested"
            )
        if reach is None or reach.status is not CheckStatus.FAIL:
            return NOT_TESTED, (
                f"what an opportunistic client gets was not tested: {_not_run('reach.853', reach)}"
            )
    # DoT does not work here: the port is unusable or TLS fails.
    plain = _plain_53(results)
    if plain is None:
        return NOT_TESTED, (
            f"an opportunistic client cannot use DoT on port {port}; whether it falls back to "
            f"plaintext port 53 was not tested: {_not_run('reach.53', results.get('reach.53'))}"
        )
    if plain:
        return "plaintext-fallback", (
            f"an opportunistic client cannot use DoT on port {port} and falls back to "
            "plaintext port 53, which answers"
        )
    return "fails", (
        f"an opportunistic client gets no DNS here: DoT on port {port} does not work and "
        "plaintext port 53 does not answer"
    )


def judge(
    results: Mapping[str, CheckAttempt],
    tls: TlsOutcome,
    *,
    pinned: bool,
    named: bool,
    port: int = 853,
    unresolved: str | None = None,
) -> Verdict:
    """The verdicts for a target from the results of the checks that ran on it.

    ``unresolved``: why the target's host name did not resolve (nothing was run).
    """
    if unresolved is not None:
        return Verdict(
            "refuse",
            "fails",
            (
                f"a strict client would refuse this resolver because its name did not "
                f"resolve: {unresolved}",
                "an opportunistic client gets no DNS from it either",
            ),
            Cause.UNRESOLVED,
        )
    strict = _strict(results, tls, pinned, named, port)
    if strict.verdict == "refuse":
        reasons = [f"a strict client would refuse this resolver because {p}"
                   for p in strict.reasons]  # fmt: skip
    elif strict.verdict == NOT_TESTED:
        reasons = [f"whether a strict client accepts this resolver was not tested: {p}"
                   for p in strict.reasons]  # fmt: skip
    else:
        reasons = ["a strict client would accept this resolver: it authenticates"]
    opportunistic, why = _opportunistic(results, tls, port)
    reasons.append(why)
    return Verdict(strict.verdict, opportunistic, tuple(reasons), strict.cause, strict.covers)


LEVEL_SEVERITY = {Level.MUST: Severity.HIGH, Level.SHOULD: Severity.MEDIUM, Level.MAY: Severity.LOW}


def attempt_severity(attempt: CheckAttempt, *, strict_only: bool, mode: str) -> Severity | None:
    """How a check result counts for ``--fail-on``: a fail weighs as its level (MUST high,
    SHOULD medium, MAY low), a warn or an error as low; in opportunistic mode a failure
    that only stops strict clients counts low. Pass, skip and not-applicable weigh nothing."""
    if attempt.status is CheckStatus.FAIL:
        if strict_only and mode == "opportunistic":
            return Severity.LOW
        return LEVEL_SEVERITY[attempt.level]
    if attempt.status in (CheckStatus.WARN, CheckStatus.ERROR):
        return Severity.LOW
    return None


@dataclass(frozen=True, slots=True)
class VerdictFinding:
    """A verdict as a catalogue finding: its ID, what it weighs in the run's mode, and the
    check results it stands for (they get no finding of their own)."""

    id: str
    severity: Severity
    covers: tuple[str, ...]


def verdict_findings(verdict: Verdict, mode: str) -> list[VerdictFinding]:
    """DA-PROBE-001 (a strict client refuses), -002 (opportunistic clients fall back to
    plaintext) and -003 (interception), each weighed for ``mode``."""
    found: list[VerdictFinding] = []
    if verdict.strict == "refuse":
        stops_only_strict = verdict.cause is Cause.AUTHENTICATION
        low = stops_only_strict and mode == "opportunistic"
        found.append(
            VerdictFinding("DA-PROBE-001", Severity.LOW if low else Severity.HIGH, verdict.covers)
        )
    if verdict.opportunistic == "plaintext-fallback":
        found.append(VerdictFinding("DA-PROBE-002", Severity.HIGH, ("blocked-port",)))
    if verdict.opportunistic == "intercepted":
        found.append(VerdictFinding("DA-PROBE-003", Severity.HIGH, ("interception",)))
    return found
