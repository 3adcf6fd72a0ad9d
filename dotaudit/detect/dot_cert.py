"""Passive check of DoT server certificates (visible in cleartext up to TLS 1.2).

A strict DoT client (RFC 8310 §8) must refuse a leaf that is expired or not yet valid
*when it was presented* (the capture time, never today), self-signed (unless pinned by
policy, RFC 7858 §4.2), or not valid for the SNI (RFC 6125 §6.4). A server whose leaf
issuer changes between sessions hints at interception on some paths.
"""

from __future__ import annotations

import calendar
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    Context,
    Detector,
    FrameSample,
    bitten,
)
from dotaudit.detect.session_assembly import DotSession, DotSessionAssembled
from dotaudit.model.events import Event, TlsCertificateSeen
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, Severity, make_finding

MAX_PAIRS = 10_000
MAX_SERVERS = 10_000
"""Servers whose leaf issuers are compared."""
MAX_ISSUERS = 8
"""Issuers counted per server; leaves of more are counted apart."""
MAX_SAN_SHOWN = 20
ISSUER_REASON = "issuer_differs"


def parse_utc(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 UTC time ``YYYY-MM-DDTHH:MM:SSZ``; None if malformed."""
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except (ValueError, OverflowError):
        return None


def _normal(name: str) -> str:
    return name.strip().rstrip(".").lower()


def wildcard_match(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4.3: "*" only in the left-most label, matching exactly one label."""
    pattern = _normal(pattern)
    host = _normal(host)
    if not pattern or not host:
        return False
    if "*" not in pattern:
        return pattern == host
    p_first, _, p_rest = pattern.partition(".")
    h_first, _, h_rest = host.partition(".")
    if "*" in p_rest or p_rest.count(".") < 1 or p_rest != h_rest:
        return False  # wildcard outside the left-most label, or over a public suffix
    if p_first.count("*") != 1 or p_first.startswith("xn--") or h_first.startswith("xn--"):
        return False
    prefix, _, suffix = p_first.partition("*")
    return (
        len(h_first) >= len(prefix) + len(suffix)
        and h_first.startswith(prefix)
        and h_first.endswith(suffix)
        and bool(h_first)
    )


def _common_name(subject: str) -> str | None:
    for part in subject.split(","):
        key, sep, value = part.strip().partition("=")
        if sep and key.upper() == "CN":
            return value
    return None


def name_matches(cert: TlsCertificateSeen, sni: str) -> bool:
    """Does the leaf cover ``sni``? DNS SANs first; the CN only without them (§6.4.4)."""
    try:
        address = ipaddress.ip_address(sni.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        for entry in cert.san:
            if entry.startswith("IP:"):
                try:
                    if ipaddress.ip_address(entry[3:]) == address:
                        return True
                except ValueError:
                    continue
        return False
    dns_names = [entry[4:] for entry in cert.san if entry.startswith("DNS:")]
    if not dns_names:
        common = _common_name(cert.subject)
        dns_names = [common] if common else []
    return any(wildcard_match(name, sni) for name in dns_names)


def certificate_problems(cert: TlsCertificateSeen, sni: str | None, pinned: bool) -> list[str]:
    """Reasons a strict client would refuse this leaf at the time it was seen."""
    reasons: list[str] = []
    not_after = parse_utc(cert.not_after)
    not_before = parse_utc(cert.not_before)
    if not_after is not None and cert.ts > not_after:
        reasons.append("expired")
    if not_before is not None and cert.ts < not_before:
        reasons.append("not_yet_valid")
    if cert.self_signed and not pinned:
        reasons.append("self_signed")
    if sni and not name_matches(cert, sni):
        reasons.append("name_mismatch")
    return reasons


@dataclass(slots=True)
class _Pair:
    """What the sessions of one (file, client, server) showed; the key names them."""

    first_ts: float
    last_ts: float
    sessions: int = 0
    bad_sessions: int = 0
    reasons: set[str] = field(default_factory=set)
    frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))
    """Frames of the sessions with problems."""
    cert_frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))
    """Leaf certificate frames of every session (evidence for the issuer hint)."""
    leaf: dict[str, Any] | None = None


class DotCertDetector(Detector):
    name: ClassVar[str] = "dot_cert"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DotSessionAssembled})

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._pairs: CappedGroups[tuple[str, str, str], _Pair] = CappedGroups(MAX_PAIRS)
        self._issuers: CappedGroups[tuple[str, str], dict[str, int]] = CappedGroups(MAX_SERVERS)
        self._issuers_dropped = 0
        """Leaves whose issuer was not counted: one more than ``MAX_ISSUERS`` per server."""
        self._pins: dict[str, frozenset[str]] = {
            r.address: frozenset(r.pins) for r in context.policy.approved_dot if r.pins
        }

    def on_event(self, event: Event) -> None:
        if isinstance(event, DotSessionAssembled):
            self._check(event.session)

    def _check(self, session: DotSession) -> None:
        leaf = next((c for c in session.certificates if c.position == 0), None)
        if leaf is None:
            return
        pinned = leaf.spki_sha256 in self._pins.get(session.server, frozenset())
        reasons = certificate_problems(leaf, session.sni, pinned)
        issuers = self._issuers.get((session.file, session.server))
        if issuers is None:
            issuers = self._issuers.add((session.file, session.server), {})
        if issuers is not None:
            if leaf.issuer in issuers or len(issuers) < MAX_ISSUERS:
                issuers[leaf.issuer] = issuers.get(leaf.issuer, 0) + 1
            else:
                self._issuers_dropped += 1
        key = (session.file, session.client, session.server)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs.add(key, _Pair(leaf.ts, leaf.ts))
            if pair is None:
                return
        pair.sessions += 1
        pair.first_ts = min(pair.first_ts, leaf.ts)
        pair.last_ts = max(pair.last_ts, leaf.ts)
        pair.cert_frames.add(leaf.frame)
        if not reasons:
            return
        pair.bad_sessions += 1
        pair.reasons.update(reasons)
        if session.client_hello is not None:
            pair.frames.add(session.client_hello.frame)
        pair.frames.add(leaf.frame)
        if pair.leaf is None:
            pair.leaf = {
                "sni": session.sni,
                "subject": leaf.subject,
                "issuer": leaf.issuer,
                "san": list(leaf.san[:MAX_SAN_SHOWN]),
                "not_before": leaf.not_before,
                "not_after": leaf.not_after,
                "seen_at": leaf.ts,
                "spki_sha256": leaf.spki_sha256,
                "self_signed": leaf.self_signed,
                "pinned": pinned,
            }

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "dot_cert_pairs_full": self._pairs.dropped,
                "dot_cert_servers_full": self._issuers.dropped,
                "dot_cert_issuers_full": self._issuers_dropped,
            }
        )

    def shared_facts(self) -> dict[tuple[str, str], dict[str, int]]:
        """Leaf issuers by (file, server): the issuer hint compares every client's view."""
        return self._issuers

    @classmethod
    def merge_shared_facts(
        cls, shares: list[dict[tuple[str, str], dict[str, int]]]
    ) -> dict[tuple[str, str], dict[str, int]]:
        merged: dict[tuple[str, str], dict[str, int]] = {}
        for share in shares:
            for key, counts in share.items():
                if key not in merged and len(merged) >= MAX_SERVERS:
                    continue
                issuers = merged.setdefault(key, {})
                for issuer, count in counts.items():
                    if issuer in issuers or len(issuers) < MAX_ISSUERS:
                        issuers[issuer] = issuers.get(issuer, 0) + count
        return merged

    def adopt_shared_facts(self, facts: dict[tuple[str, str], dict[str, int]]) -> None:
        # Caps that bit in this share are counted already; what the merge's caps cut of
        # this share's own facts is counted here, as one run counts it: the sessions of a
        # server, the leaves of an issuer. The merged facts are kept whole.
        issuers = self._issuers
        for key, counts in issuers.items():
            kept = facts.get(key)
            if kept is None:
                issuers.dropped += sum(counts.values())
            else:
                self._issuers_dropped += sum(n for i, n in counts.items() if i not in kept)
        issuers.clear()
        issuers.update(facts)

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for (file, client, server), pair in self._pairs.items():
            issuers = self._issuers.get((file, server), {})
            reasons = sorted(pair.reasons)
            if len(issuers) > 1:
                reasons.append(ISSUER_REASON)
            if not reasons:
                continue
            hint_only = reasons == [ISSUER_REASON]
            evidence: dict[str, Any] = {
                "reasons": reasons,
                "sessions": pair.sessions,
                "sessions_with_problems": pair.bad_sessions,
                "leaf": pair.leaf,
            }
            if len(issuers) > 1:
                evidence["issuers"] = dict(sorted(issuers.items()))
            if self._pairs.dropped:
                evidence["pairs_dropped"] = self._pairs.dropped
            findings.append(
                make_finding(
                    "DA-DOT-005",
                    dedup_key=f"{client}|{server}",
                    title=(
                        "DoT certificate issuer differs between sessions (possible interception)"
                        if hint_only
                        else None
                    ),
                    confidence=Confidence.LOW if hint_only else Confidence.HIGH,
                    # An issuer change alone is a hint, not a refusal; an override of
                    # DA-DOT-005 in the policy replaces the severity of both kinds.
                    severity=Severity.MEDIUM if hint_only else None,
                    client=client,
                    server=server,
                    evidence=evidence,
                    frames=pair.cert_frames if hint_only else pair.frames,
                    first_ts=pair.first_ts,
                    last_ts=pair.last_ts,
                    file=file,
                )
            )
        return findings
