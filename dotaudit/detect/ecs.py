"""EDNS Client Subnet (RFC 7871) sent by a client.

A stub that puts its own subnet into queries tells every server on the resolution path
where it is. A source prefix of 0 is the opt-out the RFC asks privacy-minded clients to
send (§7.1.2), so only non-zero prefixes count.
"""

from __future__ import annotations

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
from dotaudit.model.events import (
    DnsMessageSeen,
    Event,
)
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding

MAX_PAIRS = 10_000
SAMPLE = 20


def ecs_prefix(ecs: str) -> int | None:
    """Source prefix length of an ``address/prefix`` ECS text; None when unreadable."""
    _, sep, prefix = ecs.rpartition("/")
    if not sep or not prefix.isdigit() or len(prefix) > 3:
        return None
    return int(prefix)


@dataclass(slots=True)
class _Pair:
    file: str
    first_ts: float
    last_ts: float
    subnets: CappedSample
    names: CappedSample
    queries: int = 0
    max_prefix: int = 0
    transports: set[str] = field(default_factory=set)
    frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))


class EcsDetector(Detector):
    name: ClassVar[str] = "ecs"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DnsMessageSeen})
    """The only event types ``on_event`` uses; a registry may route just these."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._pairs: CappedGroups[tuple[str, str], _Pair] = CappedGroups(MAX_PAIRS)
        self._budget = TrackShare(context.track)

    def on_event(self, event: Event) -> None:
        if type(event) is not DnsMessageSeen:
            return
        edns = event.edns
        if edns is None or edns.ecs is None or event.qr != "query":
            return
        prefix = ecs_prefix(edns.ecs)
        if not prefix:
            return
        key = (event.src, event.dst)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs.add(
                key,
                _Pair(
                    event.file,
                    event.ts,
                    event.ts,
                    CappedSample(limit=SAMPLE, track=1000, budget=self._budget),
                    CappedSample(limit=SAMPLE, track=10_000, budget=self._budget),
                ),
            )
            if pair is None:
                return
        pair.queries += 1
        pair.first_ts = min(pair.first_ts, event.ts)
        pair.last_ts = max(pair.last_ts, event.ts)
        pair.max_prefix = max(pair.max_prefix, prefix)
        pair.subnets.add(edns.ecs)
        if event.qname is not None:
            pair.names.add(event.qname)
        pair.transports.add(event.transport)
        pair.frames.add(event.frame)

    def caps(self) -> dict[str, int]:
        return bitten(
            {"ecs_pairs_full": self._pairs.dropped, "ecs_values_untracked": self._budget.refused}
        )

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for (client, server), pair in self._pairs.items():
            evidence: dict[str, Any] = {
                "queries": pair.queries,
                "subnets": pair.subnets.values,
                "subnet_count": pair.subnets.count,
                "max_source_prefix": pair.max_prefix,
                "qnames": pair.names.values,
                "qname_count": pair.names.count,
                "transports": sorted(pair.transports),
            }
            if pair.subnets.overflow:
                evidence["subnet_count_is_lower_bound"] = True
            if pair.names.overflow:
                evidence["qname_count_is_lower_bound"] = True
            if self._pairs.dropped:
                evidence["pairs_dropped"] = self._pairs.dropped
            findings.append(
                make_finding(
                    "DA-LEAK-006",
                    dedup_key=f"{client}|{server}",
                    confidence=Confidence.HIGH,
                    client=client,
                    server=server,
                    evidence=evidence,
                    frames=pair.frames,
                    first_ts=pair.first_ts,
                    last_ts=pair.last_ts,
                    file=pair.file,
                )
            )
        return findings

    def sections(self) -> dict[str, Section]:
        return {
            "ecs": [
                {
                    "client": client,
                    "server": server,
                    "queries": pair.queries,
                    "subnets": pair.subnets.values,
                    "first_ts": pair.first_ts,
                    "last_ts": pair.last_ts,
                }
                for (client, server), pair in self._pairs.items()
            ]
        }
