"""The findings of one probed target: everything about it that counts for ``--fail-on``.

- its verdicts (:func:`dotaudit.probe.verdict.verdict_findings`): DA-PROBE-001 when a
  strict client refuses it, DA-PROBE-002 when opportunistic clients fall back to plaintext,
  DA-PROBE-003 for interception, each with the remediation its cause calls for (a refused
  port is not fixed by a new certificate);
- every other check result that weighs: DA-PROBE-004 for a check that failed or warned,
  DA-PROBE-005 for one that could not be completed, with the check's own advice.

A target's severity is the highest of its findings, so the findings a report lists and the
exit status it gives always agree. A check result a verdict finding stands for (the
refused port behind DA-PROBE-001) gets no finding of its own: one incident, one finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dotaudit.model.endpoint import host_port
from dotaudit.model.findings import Finding, Severity, make_finding
from dotaudit.probe.base import CheckAttempt, CheckStatus
from dotaudit.probe.registry import BY_ID
from dotaudit.probe.target import ProbeTarget
from dotaudit.probe.verdict import Cause, Verdict, attempt_severity, verdict_findings

PORT_CLASS = {
    "refused": "a RST answers the SYN: no DoT service listens there, or a firewall rejects "
    "the port",
    "filtered": "nothing answers the SYN: a firewall drops it, or the host is down",
    "icmp": "an ICMP unreachable comes back: a router or firewall rejects the port by policy",
}

STATUS_WORDS = {CheckStatus.FAIL: "failed", CheckStatus.WARN: "warning",
                CheckStatus.ERROR: "could not be completed"}  # fmt: skip


def server_of(target: ProbeTarget) -> str:
    """The target as ``address:port`` (``[v6]:port``), as every probe finding names it."""
    return host_port(target.address or target.target, target.port)


def target_findings(
    target: ProbeTarget,
    name: str | None,
    attempts: Sequence[CheckAttempt],
    verdict: Verdict,
    mode: str,
) -> list[Finding]:
    """Every finding of one target for ``mode``: its verdicts, then the check results that
    weigh and that no verdict finding stands for."""
    results = {a.id: a for a in attempts}
    server = server_of(target)
    weights = {a.id: severity for a in attempts if (severity := _weight(a, mode)) is not None}
    base = {"target": target.target, "name": name}
    findings: list[Finding] = []
    covered: set[str] = set()
    for found in verdict_findings(verdict, mode):
        covered.update(found.covers)
        # A check the verdict stands for never weighs more than the verdict finding shows.
        severity = max([found.severity, *(weights[c] for c in found.covers if c in weights)])
        evidence: dict[str, Any] = {
            **base,
            "reasons": list(verdict.reasons),
            "checks": [c for c in found.covers if c in results],
        }
        if found.id == "DA-PROBE-001" and verdict.cause is not None:
            evidence["cause"] = verdict.cause.value
        findings.append(
            make_finding(
                found.id,
                dedup_key=server,
                server=server,
                severity=severity,
                evidence=evidence,
                remediation=_remediation(found.id, verdict, results, target, name, mode),
            )
        )
    for attempt in attempts:
        findings.extend(attempt.findings)
        severity = weights.get(attempt.id)
        if severity is None or attempt.id in covered:
            continue
        findings.append(_check_finding(attempt, severity, server, base))
    return findings


def _weight(attempt: CheckAttempt, mode: str) -> Severity | None:
    check = BY_ID.get(attempt.id)
    strict_only = check.strict_only if check is not None else False
    return attempt_severity(attempt, strict_only=strict_only, mode=mode)


def _check_finding(
    attempt: CheckAttempt, severity: Severity, server: str, base: dict[str, Any]
) -> Finding:
    check = BY_ID.get(attempt.id)
    title = (check.title if check is not None else attempt.title) or attempt.id
    finding_id = "DA-PROBE-005" if attempt.status is CheckStatus.ERROR else "DA-PROBE-004"
    advice = check.advice if check is not None else ""
    return make_finding(
        finding_id,
        dedup_key=f"{server}|{attempt.id}",
        server=server,
        severity=severity,
        title=f"{attempt.id}: {title} ({STATUS_WORDS.get(attempt.status, attempt.status.value)})",
        evidence={
            **base,
            "check": attempt.id,
            "status": attempt.status.value,
            "level": attempt.level.value,
            "rfc": attempt.rfc,
            "reason": attempt.error_reason,
        },
        remediation=advice or None,
    )


# -- remediation by cause ---------------------------------------------------------------


def _remediation(
    finding_id: str,
    verdict: Verdict,
    results: Mapping[str, CheckAttempt],
    target: ProbeTarget,
    name: str | None,
    mode: str,
) -> str | None:
    port = target.port
    if finding_id == "DA-PROBE-001":
        return _refusal_remedy(verdict, results, target, name, mode)
    if finding_id == "DA-PROBE-002":
        return (
            f"DoT on TCP port {port} does not work here ({_port_problem(results, port)}) "
            "while plaintext DNS on port 53 answers, so opportunistic clients send every "
            f"name in clear. Open TCP port {port} on the path (RFC 7858 §3.1), and configure "
            "clients in strict mode (RFC 8310 §5) so that they fail closed instead of "
            "falling back."
        )
    if finding_id == "DA-PROBE-003":
        interception = results.get("interception")
        reason = interception.error_reason if interception is not None else None
        why = f" ({reason})" if reason else ""
        return (
            f"The certificate on port {port} is not the resolver's{why}: opportunistic "
            "clients leak every query to whoever presents it. Find the device on the path "
            "that terminates TLS, pin the resolver's key (RFC 7858 §4.2) and use strict "
            "mode (RFC 8310 §5)."
        )
    return None


def _port_problem(results: Mapping[str, CheckAttempt], port: int) -> str:
    mechanism = _evidence(results, "blocked-port").get("mechanism")
    if mechanism:
        return f"likely cause: {mechanism}"
    reach = results.get("reach.853")
    if reach is not None:
        klass = str(reach.evidence.get("class"))
        return PORT_CLASS.get(klass, reach.error_reason or klass)
    return f"TLS on port {port} fails"


def _refusal_remedy(
    verdict: Verdict,
    results: Mapping[str, CheckAttempt],
    target: ProbeTarget,
    name: str | None,
    mode: str,
) -> str:
    port = target.port
    if verdict.cause is Cause.UNRESOLVED:
        return (
            f"The host name {target.hostname or target.target} does not resolve: check the "
            "name, or give the address as NAME@ADDRESS."
        )
    if verdict.cause is Cause.PORT_UNUSABLE:
        reach = results.get("reach.853")
        klass = str(reach.evidence.get("class")) if reach is not None else ""
        text = (
            f"DoT clients cannot connect to TCP port {port} "
            f"({PORT_CLASS.get(klass, _port_problem(results, port))}). Start the DoT service "
            f"on {server_of(target)}, or open TCP port {port} on every firewall between the "
            "clients and the resolver (RFC 7858 §3.1). The certificate was never reached, so "
            "it is not the problem."
        )
        mechanism = str(_evidence(results, "blocked-port").get("mechanism", ""))
        if "injected" in mechanism:
            text += " A middlebox on the path injects the resets: find it and let port "
            text += f"{port} through."
        return text
    if verdict.cause is Cause.TLS_FAILED:
        return (
            f"TCP port {port} accepts connections but no TLS session comes up. Check the DoT "
            "service's TLS setup: a certificate and key loaded, TLS 1.2 or 1.3 enabled "
            "(RFC 7858 §3.2, RFC 8996), and nothing on the path cutting the handshake "
            "(SNI-based blocking resets or closes it)."
        )
    parts = [_gate_remedy(check_id, results, target, name) for check_id in verdict.covers]
    lead = (
        "Opportunistic clients still encrypt, but cannot tell this resolver from an "
        "attacker in the middle; strict clients refuse it. "
        if mode == "opportunistic"
        else ""
    )
    return lead + " ".join(p for p in parts if p)


def _gate_remedy(
    check_id: str, results: Mapping[str, CheckAttempt], target: ProbeTarget, name: str | None
) -> str:
    attempt = results.get(check_id)
    why = f" ({attempt.error_reason})" if attempt is not None and attempt.error_reason else ""
    if attempt is not None and attempt.status is CheckStatus.ERROR:
        return (
            f"{check_id} could not be completed{why}, so nothing showed that the server "
            "authenticates: a strict client refuses what it cannot verify (RFC 8310 §5). "
            "Check that the server sends its certificate chain, then probe again."
        )
    if check_id == "cert.name":
        if name is None:
            return (
                f"The certificate does not list the address {target.address} (RFC 8310 §8.1)"
                f"{why}: give the name clients use with --name, or add the address as an "
                "iPAddress subjectAltName."
            )
        return (
            f"The certificate does not name {name}{why}: install one whose subjectAltName "
            f"lists {name} (RFC 6125 §6, RFC 8310 §8.1); if clients know the resolver by "
            "another name, probe with that name (--name, or NAME@ADDRESS)."
        )
    if check_id == "cert.chain":
        return (
            f"The certificate chain does not validate{why}: serve the whole chain up to a CA "
            "the clients trust and renew an expired certificate (RFC 8310 §8.1, RFC 5280 "
            "§6); for a private CA, give its certificate with --ca."
        )
    if check_id == "cert.pin":
        return (
            f"The server's key matches none of the given SPKI pins{why}: if the key was "
            "rolled over, update the pins clients use and keep a backup pin (RFC 7858 §4.2); "
            "if not, something else presents its key (see DA-PROBE-003)."
        )
    return f"{check_id}{why}."


def _evidence(results: Mapping[str, CheckAttempt], check_id: str) -> dict[str, Any]:
    attempt = results.get(check_id)
    return attempt.evidence if attempt is not None else {}
