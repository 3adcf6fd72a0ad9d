"""What a strict and an opportunistic client (RFC 8310 §5) would do with a target, and
how check results count towards the exit code. Pure functions over check attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dotaudit.model.findings import Severity
from dotaudit.probe.base import CheckAttempt, CheckStatus, Level

GOOD = (CheckStatus.PASS, CheckStatus.WARN)


@dataclass(frozen=True, slots=True)
class TlsOutcome:
    """Whether any TLS handshake on the DoT port succeeded (None: never tried)."""

    ok: bool | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    strict: str
    """"accept" or "refuse"."""
    opportunistic: str
    """"encrypted", "plaintext-fallback", "intercepted" or "fails"."""
    reasons: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "strict": self.strict,
            "opportunistic": self.opportunistic,
            "reasons": list(self.reasons),
        }


def _why(attempt: CheckAttempt) -> str:
    return attempt.error_reason or attempt.status.value


def _strict_problems(
    results: Mapping[str, CheckAttempt], tls: TlsOutcome, pinned: bool, named: bool
) -> list[str]:
    reach = results.get("reach.853")
    if reach is not None and reach.status not in GOOD:
        return [f"port 853 is not usable: {_why(reach)}"]
    if tls.ok is False:
        return [f"no TLS session could be set up: {tls.error}"]
    problems: list[str] = []
    # With pins and no name, the pin alone authenticates (RFC 7858 §4.2, RFC 8310 §6.4);
    # with both, both must hold, as getdns/stubby require.
    gates = ["cert.pin"] if pinned and not named else ["cert.chain", "cert.name"]
    if pinned and named:
        gates.append("cert.pin")
    for check_id in gates:
        attempt = results.get(check_id)
        if attempt is None:
            problems.append(f"{check_id} was not run, so authentication was not shown")
        elif attempt.status not in GOOD:
            problems.append(f"{check_id}: {_why(attempt)}")
    return problems


def _reaches_53(results: Mapping[str, CheckAttempt]) -> bool:
    evidence = results["reach.53"].evidence if "reach.53" in results else {}
    return bool(
        evidence.get("udp53", {}).get("answered") or evidence.get("tcp53", {}).get("answered")
    )


def judge(
    results: Mapping[str, CheckAttempt], tls: TlsOutcome, *, pinned: bool, named: bool
) -> Verdict:
    reasons: list[str] = []
    problems = _strict_problems(results, tls, pinned, named)
    if problems:
        strict = "refuse"
        reasons += [f"a strict client would refuse this resolver because {p}" for p in problems]
    else:
        strict = "accept"
        reasons.append("a strict client would accept this resolver: it authenticates")
    interception = results.get("interception")
    if tls.ok:
        if interception is not None and interception.status is CheckStatus.FAIL:
            opportunistic = "intercepted"
            reasons.append(
                "an opportunistic client would accept the interceptor's certificate and leak "
                f"every query to it ({_why(interception)})"
            )
        else:
            opportunistic = "encrypted"
            reasons.append("an opportunistic client gets an encrypted (if unauthenticated) session")
    elif tls.ok is None and "reach.853" in results and results["reach.853"].status in GOOD:
        opportunistic = "encrypted"
        reasons.append("port 853 is open; TLS itself was not tried (not among --checks)")
    elif _reaches_53(results):
        opportunistic = "plaintext-fallback"
        reasons.append(
            "an opportunistic client cannot use DoT here and falls back to plaintext port 53, "
            "which answers"
        )
    else:
        opportunistic = "fails"
        reasons.append("an opportunistic client gets no DNS at all: neither 853 nor 53 works")
    return Verdict(strict, opportunistic, tuple(reasons))


LEVEL_SEVERITY = {Level.MUST: Severity.HIGH, Level.SHOULD: Severity.MEDIUM, Level.MAY: Severity.LOW}


def attempt_severity(attempt: CheckAttempt, *, strict_only: bool, mode: str) -> Severity | None:
    """How a check result counts for ``--fail-on``: a fail weighs as its level (MUST high,
    SHOULD medium, MAY low), a warn or an error as low; in opportunistic mode a failure
    that only stops strict clients counts low."""
    if attempt.status is CheckStatus.FAIL:
        if strict_only and mode == "opportunistic":
            return Severity.LOW
        return LEVEL_SEVERITY[attempt.level]
    if attempt.status in (CheckStatus.WARN, CheckStatus.ERROR):
        return Severity.LOW
    return None


def verdict_severity(verdict: Verdict, mode: str) -> Severity | None:
    """The verdict for the chosen ``--mode`` counts high when that client is let down."""
    if verdict.opportunistic == "intercepted":
        return Severity.HIGH
    if mode == "strict":
        return Severity.HIGH if verdict.strict == "refuse" else None
    return Severity.HIGH if verdict.opportunistic != "encrypted" else None
