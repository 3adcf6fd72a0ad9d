"""Findings: verdicts with evidence an admin can check frame by frame.

Every finding has a stable catalogue ID (``DA-LEAK-001``), a severity and a separate
confidence, the frames and capture times behind it, and remediation text citing RFCs.
The catalogue (``CATALOGUE``) is the single source of IDs, default severities and
remediation; ``docs/findings.md`` documents it and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of: {names})") from None


class Confidence(IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    id: str
    title: str
    severity: Severity
    remediation: str


def _entries(*entries: CatalogueEntry) -> dict[str, CatalogueEntry]:
    return {entry.id: entry for entry in entries}


CATALOGUE: dict[str, CatalogueEntry] = _entries(
    CatalogueEntry(
        "DA-LEAK-001",
        "Plaintext DNS over UDP/53",
        Severity.HIGH,
        "Configure the client or its stub resolver to use DNS over TLS (RFC 7858) or HTTPS "
        "(RFC 8484) in strict mode (RFC 8310 §5), and block outbound port 53 except to approved "
        "internal resolvers.",
    ),
    CatalogueEntry(
        "DA-LEAK-002",
        "Plaintext DNS over TCP/53",
        Severity.HIGH,
        "As DA-LEAK-001: move the client to DoT/DoH in strict mode (RFC 8310 §5); plaintext TCP "
        "DNS (RFC 7766) exposes every name to the path.",
    ),
    CatalogueEntry(
        "DA-LEAK-003",
        "Plaintext DNS to a local stub resolver",
        Severity.INFO,
        "Traffic to a loopback stub stays on the host; check that the stub itself forwards over "
        "an encrypted transport (RFC 7858, RFC 8484).",
    ),
    CatalogueEntry(
        "DA-LEAK-004",
        "Plaintext DNS from an encryption-capable client (EDNS padding in cleartext)",
        Severity.HIGH,
        "EDNS(0) padding (RFC 7830) only makes sense inside encryption (RFC 8467 §4); seeing it "
        "in plaintext means a DoT/DoH-capable client fell back. Use strict mode (RFC 8310 §5) so "
        "it fails closed.",
    ),
    CatalogueEntry(
        "DA-LEAK-005",
        "mDNS/LLMNR query for a non-local name",
        Severity.MEDIUM,
        "Multicast name resolution (RFC 6762, RFC 4795) broadcasts the name to the whole link "
        "and invites spoofed answers; disable LLMNR and restrict mDNS to .local names.",
    ),
    CatalogueEntry(
        "DA-LEAK-006",
        "EDNS Client Subnet sent by a client",
        Severity.MEDIUM,
        "ECS (RFC 7871 §11.1) reveals the client's network to every server on the resolution "
        "path; clients should send source prefix 0 or no ECS option at all.",
    ),
    CatalogueEntry(
        "DA-LEAK-007",
        "Plaintext DNS alongside a working DoT session (split leak)",
        Severity.HIGH,
        "Some queries bypass the encrypted resolver: find the application or stub that uses "
        "its own resolver, and block port 53 egress (RFC 8310 §5 strict mode).",
    ),
    CatalogueEntry(
        "DA-DOT-001",
        "DoT connection failed",
        Severity.MEDIUM,
        "Check that port 853 is reachable (RFC 7858 §3.1) and not filtered or reset on the "
        "path; a strict client cannot resolve without it, an opportunistic one falls back.",
    ),
    CatalogueEntry(
        "DA-DOT-002",
        "DoT session uses an obsolete TLS version",
        Severity.HIGH,
        "RFC 7858 §8 points to BCP 195; TLS 1.0 and 1.1 are deprecated (RFC 8996). Enable TLS "
        "1.3 (RFC 8446) on the resolver and client.",
    ),
    CatalogueEntry(
        "DA-DOT-003",
        "DoT session uses TLS 1.2",
        Severity.LOW,
        "TLS 1.2 sends the certificate in cleartext and leaks more handshake metadata; prefer "
        "TLS 1.3 (RFC 8446, RFC 9325).",
    ),
    CatalogueEntry(
        "DA-DOT-004",
        "DoT ClientHello without SNI",
        Severity.INFO,
        "No SNI points to an opportunistic or pin-only client (RFC 7858 §4.2, RFC 8310 §8.1); "
        "strict clients should authenticate a name (RFC 8310 §7).",
    ),
    CatalogueEntry(
        "DA-DOT-005",
        "DoT certificate problem seen passively",
        Severity.HIGH,
        "The resolver presented a certificate a strict client must refuse (RFC 8310 §8, "
        "RFC 6125): expired, self-signed or for another name. Fix the certificate or the "
        "interception on the path.",
    ),
    CatalogueEntry(
        "DA-DOT-006",
        "DoT session established",
        Severity.INFO,
        "Encrypted DNS in use (RFC 7858).",
    ),
    CatalogueEntry(
        "DA-FALLBACK-001",
        "Fallback from DoT to plaintext DNS",
        Severity.HIGH,
        "An on-path attacker can force this downgrade by blocking port 853. Configure strict "
        "mode (RFC 8310 §5) so the client fails closed instead of falling back to port 53.",
    ),
    CatalogueEntry(
        "DA-PAD-001",
        "DoT session without EDNS padding: sizes reveal names",
        Severity.MEDIUM,
        "Enable EDNS(0) padding (RFC 7830) with the recommended block-length policy: queries to "
        "128 octets, responses to 468 octets (RFC 8467 §4.1).",
    ),
    CatalogueEntry(
        "DA-PAD-002",
        "DoT session padded; timing and counts still leak",
        Severity.INFO,
        "Padding hides sizes but not timing or query counts; traffic analysis has de-anonymised "
        "padded traces (Bushart & Rossow 2020). Consider connection reuse and cover traffic.",
    ),
    CatalogueEntry(
        "DA-DOH-001",
        "DNS over HTTPS in use",
        Severity.INFO,
        "Encrypted DNS (RFC 8484). Check that the provider is approved by policy; DoH bypasses "
        "local resolver controls.",
    ),
    CatalogueEntry(
        "DA-DOH-002",
        "DNS over HTTP/2 in cleartext (h2c)",
        Severity.HIGH,
        "RFC 8484 §5 requires HTTPS; cleartext DoH exposes every query. Use https:// endpoints.",
    ),
    CatalogueEntry(
        "DA-DOQ-001",
        "DNS over QUIC in use",
        Severity.INFO,
        "Encrypted DNS (RFC 9250). Check that the provider is approved by policy.",
    ),
    CatalogueEntry(
        "DA-SNI-001",
        "SNI names a known encrypted-DNS resolver",
        Severity.INFO,
        "The SNI (RFC 6066) reveals which resolver the client uses; Encrypted Client Hello "
        "(draft-ietf-tls-esni) hides it.",
    ),
    CatalogueEntry(
        "DA-ECH-001",
        "Encrypted Client Hello offered",
        Severity.INFO,
        "The ClientHello carries an ECH extension (draft-ietf-tls-esni); when the outer SNI is a "
        "real site name this is most likely GREASE ECH, which hides nothing. Real ECH needs the "
        "server's ECHConfig, published in HTTPS records (RFC 9460).",
    ),
    CatalogueEntry(
        "DA-PROBE-001",
        "A strict-mode client would refuse this DoT resolver",
        Severity.HIGH,
        "Depends on why: a DoT port that refuses or drops connections must be opened (RFC 7858 "
        "§3.1); a failing TLS handshake needs the server's TLS setup fixed; a certificate whose "
        "chain, name or pin does not hold must be replaced (RFC 8310 §8, RFC 6125, RFC 7858 "
        "§4.2). Each finding names its cause. Low under --mode opportunistic when only the "
        "certificate fails: those clients still encrypt.",
    ),
    CatalogueEntry(
        "DA-PROBE-002",
        "DoT unusable here while port 53 answers: opportunistic clients fall back to plaintext",
        Severity.HIGH,
        "Open TCP 853 on the path (RFC 7858 §3.1), or configure clients in strict mode "
        "(RFC 8310 §5) so that they fail closed instead of leaking names on port 53.",
    ),
    CatalogueEntry(
        "DA-PROBE-003",
        "TLS interception of DoT",
        Severity.HIGH,
        "The certificate on port 853 does not match the pin or the expected CA: opportunistic "
        "clients leak every query to the interceptor. Pin the resolver (RFC 7858 §4.2) and use "
        "strict mode (RFC 8310 §5).",
    ),
    CatalogueEntry(
        "DA-PROBE-004",
        "A probe check failed or warned",
        Severity.MEDIUM,
        "Each finding names the check, the RFC section it tests and what to change; its "
        "severity follows the check's requirement level (RFC 2119: a failed MUST high, SHOULD "
        "medium, MAY low; a warning low).",
    ),
    CatalogueEntry(
        "DA-PROBE-005",
        "A probe check could not be completed",
        Severity.LOW,
        "The check could not reach a result (a timeout, an unexpected answer): what it tests "
        "is unknown for this resolver. Probe again, with a longer --timeout if the network is "
        "slow (each DoT connection costs a TCP and a TLS round trip, RFC 7858 §3.4); the "
        "finding gives the reason.",
    ),
    CatalogueEntry(
        "DA-DDR-001",
        "Malformed DDR record at _dns.resolver.arpa",
        Severity.MEDIUM,
        "The resolver answers _dns.resolver.arpa with an SVCB record clients must discard "
        "(RFC 9460 §2.2, §8; RFC 9461; RFC 9462 §4): fix the record so that clients can "
        "discover the encrypted resolver, or remove it.",
    ),
    CatalogueEntry(
        "DA-DDR-002",
        "DDR designation names a resolver that does not resolve",
        Severity.MEDIUM,
        "The designated resolver's name has no address at the designating resolver and the "
        "record carries no ipv4hint/ipv6hint: add the hints or the A/AAAA records "
        "(RFC 9462 §4 asks for them in the additional section).",
    ),
    CatalogueEntry(
        "DA-DDR-003",
        "DDR designation cannot be verified",
        Severity.LOW,
        "Verified discovery (RFC 9462 §4.2) needs a certificate that chains to a trust anchor "
        "and lists the unencrypted resolver's IP address as a subjectAltName; without it "
        "clients MUST NOT use the designation automatically and stay on plaintext DNS.",
    ),
    CatalogueEntry(
        "DA-NET-001",
        "The network blocks DoT to resolvers",
        Severity.MEDIUM,
        "Port 853 (RFC 7858 §3.1) is dropped, reset or rejected on the path: opportunistic "
        "clients fall back to plaintext port 53 (RFC 8310 §5). Open TCP 853 to the resolvers "
        "the network's users rely on, or give them a designated resolver that works here.",
    ),
    CatalogueEntry(
        "DA-NET-002",
        "The network blocks DoH to resolvers",
        Severity.MEDIUM,
        "HTTPS to DNS-over-HTTPS resolvers (RFC 8484) is cut, typically by SNI filtering: "
        "clients fall back to plaintext DNS. Stop filtering on the resolver's name, or offer "
        "an encrypted resolver of the network's own through DDR (RFC 9462) or DNR (RFC 9463).",
    ),
    CatalogueEntry(
        "DA-NET-003",
        "The network blocks DoQ to resolvers",
        Severity.LOW,
        "UDP 853 (RFC 9250 §4.1.1) gets no answer: DoQ clients fall back to another "
        "transport. Allow UDP 853 to the resolvers in use.",
    ),
    CatalogueEntry(
        "DA-NET-004",
        "The network redirects plaintext DNS (port 53 hijack)",
        Severity.HIGH,
        "Port 53 to another resolver is answered by someone else (its NSID, RFC 5001, or "
        "CHAOS identity, RFC 4892, differs from the resolver's over an encrypted path): every "
        "plaintext name goes to the network's resolver. Use an encrypted transport in strict "
        "mode (RFC 8310 §5).",
    ),
    CatalogueEntry(
        "DA-NET-005",
        "Encrypted DNS is intercepted on the path",
        Severity.HIGH,
        "A resolver's certificate does not chain to a trust anchor or does not name the "
        "resolver (RFC 8310 §8, RFC 6125): something on the path terminates the TLS session. "
        "Strict clients refuse it; opportunistic ones hand every query to the interceptor.",
    ),
    CatalogueEntry(
        "DA-POLICY-001",
        "DoT to a resolver that policy does not approve",
        Severity.MEDIUM,
        "Add the resolver to the policy's approved list with its SPKI pins (RFC 7858 §4.2), or "
        "block it.",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    id: str
    severity: Severity
    confidence: Confidence
    title: str
    dedup_key: str
    client: str | None = None
    server: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    frames: tuple[int, ...] = ()
    first_ts: float | None = None
    last_ts: float | None = None
    remediation: str = ""
    file: str | None = None
    related: tuple[str, ...] = ()
    """``dedup_key`` of the findings about the same incident (the failed DoT attempt, the
    fallback and the plaintext queries that followed it): a report counts them once."""
    frames_by_file: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """A finding of a capture set whose frames lie in several files: every file with its
    frames, in timeline order (``file`` and ``frames`` are the first of them). Empty when
    the frames are all in ``file``."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity.label,
            "confidence": self.confidence.label,
            "title": self.title,
            "client": self.client,
            "server": self.server,
            "evidence": self.evidence,
            "frames": list(self.frames),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "remediation": self.remediation,
            "dedup_key": self.dedup_key,
            "file": self.file,
            "related": list(self.related),
        }
        if self.frames_by_file:
            out["frames_by_file"] = [
                {"file": file, "frames": list(frames)} for file, frames in self.frames_by_file
            ]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=str(data["id"]),
            severity=Severity.parse(str(data["severity"])),
            confidence=Confidence[str(data["confidence"]).upper()],
            title=str(data["title"]),
            dedup_key=str(data.get("dedup_key", "")),
            client=data.get("client"),
            server=data.get("server"),
            evidence=dict(data.get("evidence") or {}),
            frames=tuple(int(f) for f in data.get("frames") or ()),
            first_ts=data.get("first_ts"),
            last_ts=data.get("last_ts"),
            remediation=str(data.get("remediation", "")),
            file=data.get("file"),
            related=_keys(data.get("related")),
            frames_by_file=tuple(
                (str(group["file"]), tuple(int(f) for f in group.get("frames") or ()))
                for group in data.get("frames_by_file") or ()
            ),
        )


def _keys(value: object) -> tuple[str, ...]:
    return tuple(str(key) for key in value) if isinstance(value, list | tuple) else ()


MAX_FRAMES = 50
"""Frames listed per finding; the count of all frames is in the evidence."""


def make_finding(
    finding_id: str,
    *,
    dedup_key: str,
    confidence: Confidence = Confidence.HIGH,
    severity: Severity | None = None,
    title: str | None = None,
    client: str | None = None,
    server: str | None = None,
    evidence: dict[str, Any] | None = None,
    frames: Iterable[int] = (),
    first_ts: float | None = None,
    last_ts: float | None = None,
    file: str | None = None,
    remediation: str | None = None,
) -> Finding:
    """Build a finding from its catalogue entry: IDs, titles and remediation live in one
    place. ``remediation`` replaces the catalogue's text where the cause calls for more
    specific advice (a refused port is not fixed by a new certificate)."""
    entry = CATALOGUE[finding_id]
    return Finding(
        id=finding_id,
        severity=entry.severity if severity is None else severity,
        confidence=confidence,
        title=title or entry.title,
        dedup_key=f"{finding_id}|{dedup_key}",
        client=client,
        server=server,
        evidence=evidence or {},
        frames=tuple(sorted(set(frames)))[:MAX_FRAMES],
        first_ts=first_ts,
        last_ts=last_ts,
        remediation=remediation or entry.remediation,
        file=file,
    )
