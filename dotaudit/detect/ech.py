"""Encrypted Client Hello (extension 0xfe0d) and the legacy draft ESNI (0xffce).

Real ECH puts the provider's ECH public name in the outer SNI and hides the true one;
GREASE ECH (draft-ietf-tls-esni §6.2) sends a dummy extension next to the real SNI and
hides nothing. Without the ECH configs a passive observer can only tell them apart by
the outer SNI: a known public name means real ECH, anything else is most likely GREASE.
Draft ESNI hides the name when no SNI accompanies it; ESNI next to a cleartext SNI is
suspicious (a decoy or a probe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    CappedSample,
    Context,
    Detector,
    FrameSample,
    TrackShare,
    bitten,
)
from dotaudit.model.events import (
    Event,
    QuicInitialSeen,
    TlsClientHelloSeen,
)
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding

ECH_PUBLIC_NAMES = frozenset(
    {
        # Cloudflare's ECH public name (Cloudflare blog "Encrypted Client Hello - the last
        # puzzle piece to privacy", 2023; also the outer SNI in Zeek's tls13-ech trace).
        "cloudflare-ech.com",
        # defo.ie ECH test service (its HTTPS RR publishes this public name).
        "cover.defo.ie",
    }
)
MAX_GROUPS = 10_000
SAMPLE = 20
"""Outer SNIs and servers listed per (client, kind) group."""
TRACK = 1000
"""Distinct outer SNIs and servers a group remembers (from the run's name budget): past
it the server count is a lower bound."""

KINDS: dict[str, tuple[str, Confidence]] = {
    "ech": ("Encrypted Client Hello in use (outer SNI is an ECH public name)", Confidence.HIGH),
    "ech_unverified": (
        "Encrypted Client Hello offered without an outer SNI",
        Confidence.MEDIUM,
    ),
    "grease_likely": (
        "ECH extension next to a real site name: most likely GREASE ECH, which hides nothing",
        Confidence.MEDIUM,
    ),
    "esni": ("Legacy draft ESNI in use (SNI hidden)", Confidence.HIGH),
    "esni_with_sni": (
        "Legacy draft ESNI next to a cleartext SNI: the name is not hidden (suspicious)",
        Confidence.MEDIUM,
    ),
}


def classify_ech(sni: str | None, ech: bool, esni: bool) -> str | None:
    """One of ``KINDS`` for a ClientHello, or None when it offers neither extension."""
    name = sni.lower().rstrip(".") if sni else None
    if ech:
        if name is None:
            return "ech_unverified"
        return "ech" if name in ECH_PUBLIC_NAMES else "grease_likely"
    if esni:
        return "esni" if name is None else "esni_with_sni"
    return None


@dataclass(slots=True)
class _Group:
    file: str
    first_ts: float
    last_ts: float
    snis: CappedSample
    servers: CappedSample
    hellos: int = 0
    transports: set[str] = field(default_factory=set)
    frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))


class EchDetector(Detector):
    name: ClassVar[str] = "ech"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({TlsClientHelloSeen, QuicInitialSeen})
    """The only event types ``on_event`` uses; a registry may route just these."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._groups: CappedGroups[tuple[str, str], _Group] = CappedGroups(MAX_GROUPS)
        self._budget = TrackShare(context.track)

    def on_event(self, event: Event) -> None:
        kind_of_event = type(event)
        if kind_of_event is not TlsClientHelloSeen and kind_of_event is not QuicInitialSeen:
            return
        if isinstance(event, TlsClientHelloSeen):
            kind = classify_ech(event.sni, event.ech, event.esni)
            transport = "tls"
        elif isinstance(event, QuicInitialSeen):
            kind = classify_ech(event.sni, event.ech, False)
            transport = "quic"
        else:
            return
        if kind is None:
            return
        key = (event.src, kind)
        group = self._groups.get(key)
        if group is None:
            budget = self._budget
            group = self._groups.add(
                key,
                _Group(
                    event.file,
                    event.ts,
                    event.ts,
                    CappedSample(limit=SAMPLE, track=TRACK, budget=budget),
                    CappedSample(limit=SAMPLE, track=TRACK, budget=budget),
                ),
            )
            if group is None:
                return
        group.hellos += 1
        group.first_ts = min(group.first_ts, event.ts)
        group.last_ts = max(group.last_ts, event.ts)
        group.transports.add(transport)
        if event.sni:
            group.snis.add(event.sni)
        group.servers.add(event.dst)
        group.frames.add(event.frame)

    def caps(self) -> dict[str, int]:
        return bitten(
            {"ech_groups_full": self._groups.dropped, "ech_values_untracked": self._budget.refused}
        )

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for (client, kind), group in self._groups.items():
            title, confidence = KINDS[kind]
            evidence = {
                "kind": kind,
                "hellos": group.hellos,
                "outer_sni": group.snis.values,
                "servers": group.servers.values,
                "server_count": group.servers.count,
                "transports": sorted(group.transports),
            }
            if group.servers.overflow:
                evidence["server_count_is_lower_bound"] = True
            if self._groups.dropped:
                evidence["groups_dropped"] = self._groups.dropped
            findings.append(
                make_finding(
                    "DA-ECH-001",
                    dedup_key=f"{client}|{kind}",
                    title=title,
                    confidence=confidence,
                    client=client,
                    server=group.servers.values[0] if group.servers.count == 1 else None,
                    evidence=evidence,
                    frames=group.frames,
                    first_ts=group.first_ts,
                    last_ts=group.last_ts,
                    file=group.file,
                )
            )
        return findings
