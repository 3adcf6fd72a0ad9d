"""mDNS and LLMNR queries for names that are not link-local.

Multicast resolution broadcasts the question to the whole link. mDNS is for names
under ``.local`` (RFC 6762 §3) and the link-local reverse zones (§4); anything else
usually means a resolver search list or a failed unicast lookup spilling onto the link.
LLMNR (RFC 4795) is for single-label host names; a dotted name is a DNS name leaking
to every host nearby (and an invitation to answer it, as Responder-style attacks do).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    CappedSample,
    Context,
    Detector,
    FrameSample,
    Section,
    TrackShare,
    bitten,
)
from dotaudit.detect.leak import qtype_name
from dotaudit.model.events import (
    DnsMessageSeen,
    Event,
)
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding

MAX_GROUPS = 10_000
NAMES_SAMPLE = 20
MAX_QTYPES = 32
"""Distinct query types counted per group (by name, as the plaintext findings count them)."""
LINK_LOCAL_REVERSE = (
    "254.169.in-addr.arpa",
    "8.e.f.ip6.arpa",
    "9.e.f.ip6.arpa",
    "a.e.f.ip6.arpa",
    "b.e.f.ip6.arpa",
)
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


def _under(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def is_nonlocal(service: str, qname: str) -> bool:
    """Does this multicast query ask for a name outside what the protocol is for?"""
    name = qname.lower().rstrip(".")
    if not name:
        return False
    if service == "mdns":
        if _under(name, "local"):
            return False
        return not any(_under(name, zone) for zone in LINK_LOCAL_REVERSE)
    if service == "llmnr":
        if any(_under(name, zone) for zone in REVERSE_ZONES):
            return False  # RFC 4795 §2.4 allows reverse lookups
        return "." in name
    return False


@dataclass(slots=True)
class _Group:
    file: str
    first_ts: float
    last_ts: float
    names: CappedSample
    queries: int = 0
    qtypes: Counter[str] = field(default_factory=Counter)
    groups: set[str] = field(default_factory=set)
    frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))


class LocalNamesDetector(Detector):
    name: ClassVar[str] = "local_names"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DnsMessageSeen})
    """The only event types ``on_event`` uses; a registry may route just these."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._groups: CappedGroups[tuple[str, str], _Group] = CappedGroups(MAX_GROUPS)
        self._budget = TrackShare(context.track)

    def on_event(self, event: Event) -> None:
        if type(event) is not DnsMessageSeen:
            return
        if event.service == "dns" or event.qr != "query" or event.malformed:
            return
        if event.qname is None or not is_nonlocal(event.service, event.qname):
            return
        key = (event.src, event.service)
        group = self._groups.get(key)
        if group is None:
            names = CappedSample(limit=NAMES_SAMPLE, track=10_000, budget=self._budget)
            group = self._groups.add(key, _Group(event.file, event.ts, event.ts, names))
            if group is None:
                return
        group.queries += 1
        group.first_ts = min(group.first_ts, event.ts)
        group.last_ts = max(group.last_ts, event.ts)
        group.names.add(event.qname)
        name = qtype_name(event.qtype)
        if name in group.qtypes or len(group.qtypes) < MAX_QTYPES:
            group.qtypes[name] += 1
        if len(group.groups) < 4:
            group.groups.add(event.dst)
        group.frames.add(event.frame)

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "local_names_groups_full": self._groups.dropped,
                "local_names_untracked": self._budget.refused,
            }
        )

    def finish(self) -> list[Finding]:
        by_client: dict[str, list[tuple[str, _Group]]] = {}
        for (client, service), group in self._groups.items():
            by_client.setdefault(client, []).append((service, group))
        findings: list[Finding] = []
        for client, groups in by_client.items():
            names: list[str] = []
            for _, group in groups:
                names.extend(n for n in group.names.values if n not in names)
            evidence: dict[str, Any] = {
                "queries": sum(g.queries for _, g in groups),
                "services": {service: g.queries for service, g in sorted(groups)},
                "qnames": names[:NAMES_SAMPLE],
                "qname_count": sum(g.names.count for _, g in groups),
                "qtypes": dict(sum((g.qtypes for _, g in groups), Counter()).most_common()),
                "destinations": sorted({d for _, g in groups for d in g.groups}),
            }
            if any(g.names.overflow for _, g in groups):
                evidence["qname_count_is_lower_bound"] = True
            if self._groups.dropped:
                evidence["groups_dropped"] = self._groups.dropped
            findings.append(
                make_finding(
                    "DA-LEAK-005",
                    dedup_key=client,
                    confidence=Confidence.HIGH,
                    client=client,
                    evidence=evidence,
                    frames=[f for _, g in groups for f in g.frames],
                    first_ts=min(g.first_ts for _, g in groups),
                    last_ts=max(g.last_ts for _, g in groups),
                    file=groups[0][1].file,
                )
            )
        return findings

    def sections(self) -> dict[str, Section]:
        rows = [
            {
                "client": client,
                "service": service,
                "queries": group.queries,
                "qnames": group.names.values,
                "qname_count": group.names.count,
                "qtypes": dict(group.qtypes.most_common()),
                "first_ts": group.first_ts,
                "last_ts": group.last_ts,
            }
            for (client, service), group in sorted(
                self._groups.items(), key=lambda item: (item[1].first_ts, item[0])
            )
        ]
        return {"local_names": rows}
