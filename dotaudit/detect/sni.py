"""SNI inventory: every server name each client revealed in a TLS or QUIC ClientHello.

The SNI (RFC 6066 §3) travels in cleartext, so even encrypted DNS announces its
resolver by name; names of known DoT/DoH resolvers are flagged. State is capped per
client and overall; what the caps dropped is counted, never silently lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from dotaudit.detect.base import Context, Detector, Section
from dotaudit.model.events import (
    Event,
    QuicInitialSeen,
    TlsClientHelloSeen,
)
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding

MAX_CLIENTS = 1_000
MAX_SNIS_PER_CLIENT = 500
MAX_SERVERS_PER_SNI = 8
_TRANSPORTS: dict[type, str] = {TlsClientHelloSeen: "tls", QuicInitialSeen: "quic"}


@dataclass
class _SniStats:
    sni: str
    first_ts: float
    last_ts: float
    first_frame: int
    count: int = 0
    transports: set[str] = field(default_factory=set)
    servers: set[str] = field(default_factory=set)
    frames: list[int] = field(default_factory=list)
    provider: str | None = None
    roles: tuple[str, ...] = ()


@dataclass
class _Client:
    file: str
    snis: dict[str, _SniStats] = field(default_factory=dict)
    dropped_snis: int = 0
    dropped_hellos: int = 0


class SniDetector(Detector):
    name: ClassVar[str] = "sni"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({TlsClientHelloSeen, QuicInitialSeen})
    """The only event types ``on_event`` uses; a registry may route just these."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._clients: dict[str, _Client] = {}
        self._dropped_clients: set[str] = set()
        self._dropped_hellos = 0

    def on_event(self, event: Event) -> None:
        transport = _TRANSPORTS.get(type(event))
        if transport is None:
            return
        sni = cast(TlsClientHelloSeen | QuicInitialSeen, event).sni
        if not sni:
            return
        client = self._clients.get(event.src)
        if client is None:
            if len(self._clients) >= MAX_CLIENTS:
                self._dropped_hellos += 1
                if len(self._dropped_clients) < MAX_CLIENTS:
                    self._dropped_clients.add(event.src)
                return
            client = self._clients[event.src] = _Client(file=event.file)
        stats = client.snis.get(sni)
        if stats is None:
            if len(client.snis) >= MAX_SNIS_PER_CLIENT:
                client.dropped_hellos += 1
                client.dropped_snis += 1  # upper bound: repeats of one name count again
                return
            stats = client.snis[sni] = self._new_stats(sni, event)
        stats.count += 1
        stats.first_ts = min(stats.first_ts, event.ts)
        stats.last_ts = max(stats.last_ts, event.ts)
        stats.transports.add(transport)
        if len(stats.servers) < MAX_SERVERS_PER_SNI:
            stats.servers.add(event.dst)
        if len(stats.frames) < MAX_FRAMES:
            stats.frames.append(event.frame)

    def _new_stats(self, sni: str, event: Event) -> _SniStats:
        resolvers = self.context.resolvers
        dot = resolvers.by_dot_name(sni)
        doh = resolvers.by_doh_host(sni)
        roles = tuple(role for role, known in (("dot", dot), ("doh", doh)) if known)
        known = dot or doh
        return _SniStats(
            sni=sni,
            first_ts=event.ts,
            last_ts=event.ts,
            first_frame=event.frame,
            provider=known.provider if known else None,
            roles=roles,
        )

    def finish(self) -> list[Finding]:
        overrides = self.context.policy.severity_overrides
        findings: list[Finding] = []
        for address, client in self._clients.items():
            known = [s for s in client.snis.values() if s.provider]
            if not known:
                continue
            known.sort(key=lambda s: (s.first_ts, s.sni))
            frames = [f for s in known for f in s.frames]
            findings.append(
                make_finding(
                    "DA-SNI-001",
                    dedup_key=address,
                    confidence=Confidence.HIGH,
                    severity=overrides.get("DA-SNI-001"),
                    client=address,
                    server=None,
                    evidence={
                        "names": [
                            {
                                "sni": s.sni,
                                "provider": s.provider,
                                "roles": list(s.roles),
                                "count": s.count,
                                "servers": sorted(s.servers),
                            }
                            for s in known
                        ],
                        "hellos": sum(s.count for s in known),
                    },
                    frames=frames,
                    first_ts=known[0].first_ts,
                    last_ts=max(s.last_ts for s in known),
                    file=client.file,
                )
            )
        return findings

    def sections(self) -> dict[str, Section]:
        rows: list[dict[str, Any]] = []
        for address, client in self._clients.items():
            for stats in sorted(client.snis.values(), key=lambda s: (s.first_ts, s.sni)):
                rows.append(
                    {
                        "client": address,
                        "sni": stats.sni,
                        "count": stats.count,
                        "first_ts": stats.first_ts,
                        "last_ts": stats.last_ts,
                        "first_frame": stats.first_frame,
                        "transports": sorted(stats.transports),
                        "servers": sorted(stats.servers),
                        "known_resolver": stats.provider is not None,
                        "provider": stats.provider,
                        "roles": list(stats.roles),
                        "client_hellos_dropped": client.dropped_hellos,
                    }
                )
        if self._dropped_clients:
            # One marker row so a reader knows the inventory is incomplete.
            rows.append(
                {
                    "client": None,
                    "sni": None,
                    "count": self._dropped_hellos,
                    "note": f"{len(self._dropped_clients)} more clients over the cap of "
                    f"{MAX_CLIENTS}; their hellos are not listed",
                }
            )
        return {"sni_inventory": rows}
