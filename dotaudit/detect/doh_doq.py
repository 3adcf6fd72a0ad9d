"""DNS over HTTPS (RFC 8484) and DNS over QUIC (RFC 9250) seen from handshakes.

DoH looks like any HTTPS, so it is recognised by where it goes: a ClientHello (TCP) or
QUIC Initial whose SNI is a known DoH host, or, without SNI, one to a known resolver
address on port 443 (clients configured with an IP literal send no SNI). DoQ announces
itself with ALPN "doq" (draft versions "doq-i00".."doq-i12"), or runs QUIC on its ports
(853 in RFC 9250, 784 and 8853 in the drafts).

Cleartext DoH over h2c (DA-DOH-002) is seen directly: the dissector decodes HTTP/2 in
the clear and emits its requests (``http_request``) and the DNS messages they carry
(``dns`` with service "doh"), which the plaintext-leak detector leaves to this one.
"""

from __future__ import annotations

import ipaddress
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
    ConnectionSeen,
    DnsMessageSeen,
    Event,
    HttpRequestSeen,
    QuicInitialSeen,
    TlsClientHelloSeen,
)
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding
from dotaudit.model.resolvers import KnownResolver

HTTPS_PORT = 443
DOQ_PORTS = frozenset({853, 784, 8853})
MAX_ROWS = 10_000
MAX_OPEN = 20_000
"""Connections followed from their hello to their end (for packet counts)."""

FlowKey = tuple[str, str, int, str, int]
RowKey = tuple[str, str, str, str, str | None]


def is_doq_alpn(alpn: str) -> bool:
    return alpn == "doq" or alpn.startswith("doq-i")


def _is_ip_literal(name: str | None) -> bool:
    if not name:
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class _Row:
    file: str
    client: str
    server: str
    protocol: str
    sni: str | None
    provider: str | None
    via: str
    first_ts: float
    last_ts: float
    connections: int = 0
    packets: int = 0
    alpn: list[str] = field(default_factory=list)
    """As offered, first-seen order (the order is part of the client's fingerprint)."""
    frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))

    def add_frame(self, frame: int) -> None:
        if len(self.frames) < MAX_FRAMES and frame not in self.frames:
            self.frames.add(frame)

    def seen(self, first: float, last: float) -> None:
        self.first_ts = min(self.first_ts, first)
        self.last_ts = max(self.last_ts, last)

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "server": self.server,
            "protocol": self.protocol,
            "sni": self.sni,
            "provider": self.provider,
            "via": self.via,
            "alpn": list(self.alpn),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "connections": self.connections,
            "packets": self.packets,
            "frames": sorted(self.frames),
        }


def _is_doh_request(event: HttpRequestSeen) -> bool:
    """RFC 8484 request shapes: a dns-message body, or a GET with the ``dns`` parameter."""
    content_type = (event.content_type or "").split(";", 1)[0].strip().lower()
    return content_type == "application/dns-message" or (
        "?dns=" in event.path or "&dns=" in event.path
    )


@dataclass(slots=True)
class _Cleartext:
    """DoH over cleartext HTTP/2 between one client and one server."""

    file: str
    client: str
    server: str
    first_ts: float
    last_ts: float
    authorities: CappedSample
    names: CappedSample
    ports: set[int] = field(default_factory=set)
    requests: int = 0
    doh_requests: int = 0
    queries: int = 0
    responses: int = 0
    padded_queries: int = 0
    padded_responses: int = 0
    frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))

    def seen(self, frame: int, ts: float) -> None:
        self.first_ts = min(self.first_ts, ts)
        self.last_ts = max(self.last_ts, ts)
        if len(self.frames) < MAX_FRAMES and frame not in self.frames:
            self.frames.add(frame)


_CONFIDENCE = {
    "sni": Confidence.HIGH,
    "alpn": Confidence.HIGH,
    "address": Confidence.MEDIUM,
    "port": Confidence.MEDIUM,
}


class DohDoqDetector(Detector):
    name: ClassVar[str] = "doh_doq"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset(
        {TlsClientHelloSeen, QuicInitialSeen, ConnectionSeen, DnsMessageSeen, HttpRequestSeen}
    )
    """The only event types ``on_event`` uses; a registry may route just these."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._rows: CappedGroups[RowKey, _Row] = CappedGroups(MAX_ROWS)
        self._flows: dict[FlowKey, RowKey] = {}
        self._cleartext: CappedGroups[tuple[str, str, str], _Cleartext] = CappedGroups(MAX_ROWS)
        self._budget = TrackShare(context.track)
        self._untracked_flows = 0
        """Connections not followed because ``MAX_OPEN`` were: their packets go uncounted."""

    def on_event(self, event: Event) -> None:
        # Exact type tests: cheaper than isinstance on the stream's bulk of DNS events.
        if type(event) is DnsMessageSeen:
            if event.service == "doh":
                self._doh_message(event)
        elif type(event) is TlsClientHelloSeen:
            if event.transport == "tcp":
                self._hello(event, event.sni, event.alpn, quic=False)
        elif type(event) is QuicInitialSeen:
            self._hello(event, event.sni, event.alpn, quic=True)
        elif type(event) is ConnectionSeen and (self._flows or event.app == "quic"):
            self._connection(event)
        elif type(event) is HttpRequestSeen and event.h2c:
            self._h2c_request(event)

    def keeps_flow(self, hello: Event) -> bool:
        # A DoH/DoQ row counts the packets of its connections.
        if type(hello) is TlsClientHelloSeen:
            return (
                hello.transport == "tcp"
                and self._classify(hello, hello.sni, hello.alpn, quic=False) is not None
            )
        if type(hello) is QuicInitialSeen:
            return self._classify(hello, hello.sni, hello.alpn, quic=True) is not None
        return False

    def _cleartext_row(self, file: str, client: str, server: str, ts: float) -> _Cleartext | None:
        key = (file, client, server)
        row = self._cleartext.get(key)
        if row is None:
            budget = self._budget
            row = self._cleartext.add(
                key,
                _Cleartext(
                    file,
                    client,
                    server,
                    ts,
                    ts,
                    CappedSample(limit=10, budget=budget),
                    CappedSample(budget=budget),
                ),
            )
        return row

    def _h2c_request(self, event: HttpRequestSeen) -> None:
        row = self._cleartext_row(event.file, event.src, event.dst, event.ts)
        if row is None:
            return
        row.requests += 1
        row.ports.add(event.dport)
        if _is_doh_request(event):
            row.doh_requests += 1
            if event.authority:
                row.authorities.add(event.authority)
            row.seen(event.frame, event.ts)

    def _doh_message(self, event: DnsMessageSeen) -> None:
        query = event.qr == "query"
        client, server = (event.src, event.dst) if query else (event.dst, event.src)
        row = self._cleartext_row(event.file, client, server, event.ts)
        if row is None:
            return
        padded = event.edns is not None and event.edns.padding is not None
        if query:
            row.queries += 1
            row.padded_queries += padded
            row.ports.add(event.dport)
        else:
            row.responses += 1
            row.padded_responses += padded
            row.ports.add(event.sport)
        if event.qname is not None:
            row.names.add(event.qname)
        row.seen(event.frame, event.ts)

    def _classify(
        self, event: Event, sni: str | None, alpn: tuple[str, ...], quic: bool
    ) -> tuple[str, str, KnownResolver | None] | None:
        """(protocol, via, known resolver) for a hello that is DoH or DoQ, else None."""
        resolvers = self.context.resolvers
        if quic:
            if any(is_doq_alpn(a) for a in alpn):
                return "doq", "alpn", resolvers.by_address(event.dst)
            if event.dport in DOQ_PORTS:
                return "doq", "port", resolvers.by_address(event.dst)
        elif event.dport == 853 or "dot" in alpn:
            return None  # DoT: the dot_session detector's business
        known = resolvers.by_doh_host(sni)
        if known is not None:
            return "doh", "sni", known
        if (sni is None or _is_ip_literal(sni)) and event.dport == HTTPS_PORT:
            known = resolvers.by_address(event.dst)
            if known is not None:
                return "doh", "address", known
        return None

    def _hello(self, event: Event, sni: str | None, alpn: tuple[str, ...], quic: bool) -> None:
        verdict = self._classify(event, sni, alpn, quic)
        if verdict is None:
            return
        protocol, via, known = verdict
        key: RowKey = (event.file, event.src, event.dst, protocol, sni)
        row = self._row(key, via, known, event.ts)
        if row is None:
            return
        flow = (event.file, event.src, event.sport, event.dst, event.dport)
        if flow not in self._flows:  # a retransmitted Initial is the same connection
            row.connections += 1
            if len(self._flows) < MAX_OPEN:
                self._flows[flow] = key
            else:
                self._untracked_flows += 1
        for name in alpn[:8]:
            if len(row.alpn) < 16 and name not in row.alpn:
                row.alpn.append(name)
        row.add_frame(event.frame)
        row.seen(event.ts, event.ts)

    def _row(self, key: RowKey, via: str, known: KnownResolver | None, ts: float) -> _Row | None:
        row = self._rows.get(key)
        if row is None:
            file, client, server, protocol, sni = key
            row = self._rows.add(
                key,
                _Row(
                    file=file,
                    client=client,
                    server=server,
                    protocol=protocol,
                    sni=sni,
                    provider=known.provider if known else None,
                    via=via,
                    first_ts=ts,
                    last_ts=ts,
                ),
            )
        return row

    def _connection(self, event: ConnectionSeen) -> None:
        flow = (event.file, event.src, event.sport, event.dst, event.dport)
        key = self._flows.pop(flow, None)
        if key is None:
            # QUIC on a DoQ port whose Initial was not seen (capture began mid-flow).
            if event.transport != "udp" or event.app != "quic" or event.dport not in DOQ_PORTS:
                return
            key = (event.file, event.src, event.dst, "doq", None)
            row = self._row(key, "port", self.context.resolvers.by_address(event.dst), event.start)
            if row is None:
                return
            row.connections += 1
            row.add_frame(event.first_frame)
        else:
            row = self._rows[key]
        row.packets += event.packets_fwd + event.packets_rev
        row.add_frame(event.last_frame)
        row.seen(event.start, event.end)

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "doh_rows_full": self._rows.dropped + self._cleartext.dropped,
                "doh_open_flows_full": self._untracked_flows,
                "doh_names_untracked": self._budget.refused,
            }
        )

    def finish(self) -> list[Finding]:
        return self._encrypted_findings() + self._cleartext_findings()

    def _cleartext_findings(self) -> list[Finding]:
        findings: list[Finding] = []
        for row in self._cleartext.values():
            messages = row.queries + row.responses
            if not messages and not row.doh_requests:
                continue  # h2c that is not DoH (gRPC, plain web)
            known = self.context.resolvers.by_address(row.server)
            for authority in row.authorities.values:
                known = known or self.context.resolvers.by_doh_host(authority.split(":")[0])
            evidence: dict[str, Any] = {
                "authorities": list(row.authorities.values),
                "provider": known.provider if known else None,
                "ports": sorted(row.ports)[:10],
                "requests": row.requests,
                "doh_requests": row.doh_requests,
                "queries": row.queries,
                "responses": row.responses,
                "padded_queries": row.padded_queries,
                "padded_responses": row.padded_responses,
                "names": list(row.names.values),
                "name_count": row.names.count,
            }
            if row.names.overflow:
                evidence["name_count_is_lower_bound"] = True
            dropped = self._rows.dropped + self._cleartext.dropped
            if dropped:
                evidence["rows_dropped"] = dropped
            findings.append(
                make_finding(
                    "DA-DOH-002",
                    dedup_key=f"{row.client}|{row.server}",
                    # Decoded DNS messages are proof; a DoH-shaped request alone is not.
                    confidence=Confidence.HIGH if messages else Confidence.MEDIUM,
                    client=row.client,
                    server=row.server,
                    evidence=evidence,
                    frames=row.frames,
                    first_ts=row.first_ts,
                    last_ts=row.last_ts,
                    file=row.file,
                )
            )
        return findings

    def _encrypted_findings(self) -> list[Finding]:
        approved = self.context.policy.approved_addresses()
        groups: dict[tuple[str, str, str], list[_Row]] = {}
        for row in self._rows.values():
            target = row.provider or row.server
            groups.setdefault((row.protocol, row.client, target), []).append(row)
        findings: list[Finding] = []
        for (protocol, client, target), rows in groups.items():
            finding_id = "DA-DOH-001" if protocol == "doh" else "DA-DOQ-001"
            servers = sorted({r.server for r in rows})
            frames = sorted({f for r in rows for f in r.frames})
            vias = sorted({r.via for r in rows})
            confidence = max(_CONFIDENCE[v] for v in vias)
            evidence: dict[str, Any] = {
                "provider": rows[0].provider,
                "servers": servers[:20],
                "sni": sorted({r.sni for r in rows if r.sni})[:20],
                "via": vias,
                "alpn": list(dict.fromkeys(a for r in rows for a in r.alpn))[:16],
                "connections": sum(r.connections for r in rows),
                "packets": sum(r.packets for r in rows),
                "approved_by_policy": all(s in approved for s in servers),
            }
            # One count for both tables: what either cap turned away.
            dropped = self._rows.dropped + self._cleartext.dropped
            if dropped:
                evidence["rows_dropped"] = dropped
            findings.append(
                make_finding(
                    finding_id,
                    dedup_key=f"{client}|{target}",
                    confidence=confidence,
                    client=client,
                    server=servers[0] if len(servers) == 1 else target,
                    evidence=evidence,
                    frames=frames,
                    first_ts=min(r.first_ts for r in rows),
                    last_ts=max(r.last_ts for r in rows),
                    file=rows[0].file,
                )
            )
        return findings

    def sections(self) -> dict[str, Section]:
        rows = sorted(self._rows.values(), key=lambda r: (r.first_ts, r.client, r.server))
        return {"doh_doq": [row.to_dict() for row in rows]}
