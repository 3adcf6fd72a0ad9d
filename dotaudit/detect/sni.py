"""SNI inventory: every server name each client revealed in a TLS or QUIC ClientHello.

The SNI (RFC 6066 §3) travels in cleartext, so even encrypted DNS announces its
resolver by name; names of known DoT/DoH resolvers are flagged. State is capped per
client and overall; what the caps dropped is counted, never silently lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from sys import intern
from typing import Any, ClassVar, cast

from dotaudit.detect.base import (
    CappedGroups,
    Context,
    Detector,
    FrameSample,
    Section,
    bitten,
)
from dotaudit.model.events import (
    Event,
    QuicInitialSeen,
    TlsClientHelloSeen,
)
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding

MAX_CLIENTS = 1_000
MAX_SNIS_PER_CLIENT = 500
MAX_SNIS = 10_000
"""Names kept over all clients (the inventory's rows)."""
MAX_SERVERS_PER_SNI = 8
_TRANSPORTS: dict[type, str] = {TlsClientHelloSeen: "tls", QuicInitialSeen: "quic"}


@dataclass(slots=True)
class _SniStats:
    """One name of one client. Busy networks hold tens of thousands of these, so they are
    lean: slots, and short lists where a set's table would cost more than its few members."""

    sni: str
    first_ts: float
    last_ts: float
    first_frame: int
    count: int = 0
    transports: tuple[str, ...] = ()
    servers: list[str] = field(default_factory=list)
    """At most ``MAX_SERVERS_PER_SNI``, each once."""
    frames: FrameSample | None = None
    """Only a known resolver's name has frames to keep: its finding points at them, while
    the inventory's rows list a name's first frame only."""
    provider: str | None = None
    roles: tuple[str, ...] = ()


_ONE_TRANSPORT = {transport: (transport,) for transport in _TRANSPORTS.values()}


def _sni_table() -> CappedGroups[str, _SniStats]:
    return CappedGroups(MAX_SNIS_PER_CLIENT)


@dataclass(slots=True)
class _Client:
    file: str
    snis: CappedGroups[str, _SniStats] = field(default_factory=_sni_table)
    """``snis.dropped`` counts the hellos whose name found no room (an upper bound of the
    names: repeats of one name count again)."""


class SniDetector(Detector):
    name: ClassVar[str] = "sni"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({TlsClientHelloSeen, QuicInitialSeen})
    """The only event types ``on_event`` uses; a registry may route just these."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._clients: CappedGroups[str, _Client] = CappedGroups(MAX_CLIENTS)
        """``_clients.dropped`` counts the hellos of the clients over the cap."""
        self._dropped_clients: set[str] = set()
        self._names = 0
        self._names_dropped = 0
        """Hellos whose name found no room because ``MAX_SNIS`` names were kept."""

    def on_event(self, event: Event) -> None:
        transport = _TRANSPORTS.get(type(event))
        if transport is None:
            return
        sni = cast(TlsClientHelloSeen | QuicInitialSeen, event).sni
        if not sni:
            return
        client = self._clients.get(event.src)
        if client is None:
            client = self._clients.add(event.src, _Client(file=event.file))
            if client is None:
                if len(self._dropped_clients) < MAX_CLIENTS:
                    self._dropped_clients.add(event.src)
                return
        stats = client.snis.get(sni)
        if stats is None:
            if self._names >= MAX_SNIS:
                self._names_dropped += 1
                return
            sni = intern(sni)  # the same names recur across clients
            stats = client.snis.add(sni, self._new_stats(sni, event))
            if stats is None:
                return
            self._names += 1
        stats.count += 1
        stats.first_ts = min(stats.first_ts, event.ts)
        stats.last_ts = max(stats.last_ts, event.ts)
        if transport not in stats.transports:
            stats.transports = (
                (*stats.transports, transport) if stats.transports else _ONE_TRANSPORT[transport]
            )
        servers = stats.servers
        if len(servers) < MAX_SERVERS_PER_SNI and event.dst not in servers:
            servers.append(intern(event.dst))
        if stats.frames is not None:
            stats.frames.add(event.frame)

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
            frames=FrameSample(MAX_FRAMES) if known else None,
            provider=known.provider if known else None,
            roles=roles,
        )

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "sni_clients_full": self._clients.dropped,
                "sni_client_names_full": sum(c.snis.dropped for c in self._clients.values()),
                "sni_names_full": self._names_dropped,
            }
        )

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for address, client in self._clients.items():
            known = [s for s in client.snis.values() if s.provider]
            if not known:
                continue
            known.sort(key=lambda s: (s.first_ts, s.sni))
            frames = [f for s in known if s.frames is not None for f in s.frames]
            evidence: dict[str, Any] = {
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
            }
            # What the caps turned away: this client's hellos whose name found no room,
            # and the hellos of clients over the client cap (the list may miss resolvers).
            if client.snis.dropped:
                evidence["snis_dropped"] = client.snis.dropped
            if self._clients.dropped:
                evidence["clients_dropped"] = self._clients.dropped
            findings.append(
                make_finding(
                    "DA-SNI-001",
                    dedup_key=address,
                    confidence=Confidence.HIGH,
                    client=address,
                    server=None,
                    evidence=evidence,
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
                        "client_hellos_dropped": client.snis.dropped,
                    }
                )
        if self._names_dropped:
            rows.append(
                {
                    "client": None,
                    "sni": None,
                    "count": self._names_dropped,
                    "note": f"{self._names_dropped} more hellos with names over the cap of "
                    f"{MAX_SNIS} names; their names are not listed",
                }
            )
        if self._dropped_clients:
            # One marker row so a reader knows the inventory is incomplete.
            rows.append(
                {
                    "client": None,
                    "sni": None,
                    "count": self._clients.dropped,
                    "note": f"{len(self._dropped_clients)} more clients over the cap of "
                    f"{MAX_CLIENTS}; their hellos are not listed",
                }
            )
        return {"sni_inventory": rows}
