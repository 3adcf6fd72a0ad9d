"""Assemble the events of one DoT connection into a ``DotSession``.

A DoT connection is TCP to port 853, or any TLS connection whose ClientHello offers the
ALPN "dot" (RFC 7858 §3.1). Handshake facts arrive as separate events; the connection
event comes last, when the flow ends, and completes the session. Only candidate flows
keep state, so memory stays bounded by the number of concurrently open DoT flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dotaudit.model.events import (
    ConnectionSeen,
    Event,
    TlsAlertSeen,
    TlsCertificateSeen,
    TlsClientHelloSeen,
    TlsRecord,
    TlsServerHelloSeen,
)

DOT_PORT = 853
APPLICATION_DATA = 23
CHANGE_CIPHER_SPEC = 20
TLS13_OVERHEAD = 17
"""AEAD tag (16) plus the inner content type (1) of a TLS 1.3 record."""
MAX_OPEN = 50_000

FlowKey = tuple[str, str, int, str, int]

SESSION_EVENTS: frozenset[type[Event]] = frozenset(
    {ConnectionSeen, TlsClientHelloSeen, TlsServerHelloSeen, TlsAlertSeen, TlsCertificateSeen}
)
"""The event types a DotSessionAssembler consumes (a detector's ``event_types``)."""


@dataclass
class DotSession:
    file: str
    client: str
    cport: int
    server: str
    sport: int
    first_frame: int
    start: float
    end: float = 0.0
    last_frame: int = 0
    client_hello: TlsClientHelloSeen | None = None
    server_hello: TlsServerHelloSeen | None = None
    alerts: list[TlsAlertSeen] = field(default_factory=list)
    certificates: list[TlsCertificateSeen] = field(default_factory=list)
    connection: ConnectionSeen | None = None

    @property
    def sni(self) -> str | None:
        return self.client_hello.sni if self.client_hello else None

    @property
    def version(self) -> str | None:
        return self.server_hello.version if self.server_hello else None

    @property
    def tls13(self) -> bool:
        return self.version == "TLSv1.3"

    def frames(self) -> list[int]:
        out = [self.first_frame]
        for event in (self.client_hello, self.server_hello, *self.alerts):
            if event is not None:
                out.append(event.frame)
        if self.connection is not None:
            out.append(self.connection.last_frame)
            if self.connection.icmp_frame:
                out.append(self.connection.icmp_frame)
        return out

    def app_records(self, from_client: bool) -> list[TlsRecord]:
        """Encrypted application-data records that carry DNS messages.

        In TLS 1.3 the client's Finished is its first application-data record and the
        server's encrypted flight and session tickets precede its answers, so the
        server's DNS records are taken as the last N records, N being the client's query
        records (one answer per query). A final 19-byte record is a close_notify alert.
        """
        conn = self.connection
        if conn is None:
            return []
        client = _drop_close_notify(
            [r for r in conn.tls_records_fwd if r.content_type == APPLICATION_DATA]
        )
        if self.tls13:
            client = client[1:]
        if from_client:
            return client
        server = _drop_close_notify(
            [r for r in conn.tls_records_rev if r.content_type == APPLICATION_DATA]
        )
        if self.tls13:
            answers = self.client_messages()
            server = server[len(server) - answers :] if answers else []
        return server

    def client_messages(self) -> int:
        """DNS messages the client sent: its data records longer than a bare length prefix.

        Some clients send the 2-byte length prefix in a record of its own; such a record
        (2 + 17 bytes in TLS 1.3) carries no message of its own.
        """
        records = self.app_records(from_client=True)
        overhead = TLS13_OVERHEAD if self.tls13 else 0
        return sum(1 for r in records if r.length > 2 + overhead)

    @property
    def outcome(self) -> str:
        return classify_outcome(self)

    @property
    def failure(self) -> str | None:
        """The failure mode when the session did not carry DNS, else None."""
        outcome = self.outcome
        return None if outcome in ("established", "mid_stream") else outcome


def _drop_close_notify(records: list[TlsRecord]) -> list[TlsRecord]:
    if records and records[-1].length == 2 + TLS13_OVERHEAD:
        return records[:-1]
    return records


def classify_outcome(session: DotSession) -> str:
    conn = session.connection
    if conn is None:
        return "open"
    if conn.outcome == "syn_unanswered":
        return "syn_unanswered"
    if conn.outcome == "refused":
        return "reset"
    if conn.outcome == "icmp_rejected":
        return "icmp_rejected"
    if conn.mid_stream and session.client_hello is None:
        return "mid_stream"
    fatal = [a for a in session.alerts if a.level == 2]
    if session.server_hello is None:
        if fatal:
            return "tls_alert"
        if conn.outcome == "closed_rst":
            return "reset_in_handshake"
        return "handshake_incomplete"
    if fatal and not session.app_records(from_client=True):
        return "tls_alert"
    # A TLS 1.3 client that closes right after the server's encrypted flight without a
    # query is typically a strict client refusing the certificate (its alert is encrypted).
    if (
        session.tls13
        and not session.app_records(from_client=True)
        and conn.outcome in ("closed_rst", "closed_fin")
        and conn.end - conn.start < 5.0
    ):
        return "aborted_after_server_hello"
    return "established"


def is_dot_candidate(event: Event) -> bool:
    return event.transport == "tcp" and (event.dport == DOT_PORT or event.sport == DOT_PORT)


class DotSessionAssembler:
    """Feed every event; ``feed`` returns a session when its connection event completes it."""

    def __init__(self) -> None:
        self._open: dict[FlowKey, DotSession] = {}

    def feed(self, event: Event) -> DotSession | None:
        if event.transport != "tcp":
            return None
        if isinstance(event, ConnectionSeen):
            key = (event.file, event.src, event.sport, event.dst, event.dport)
            session = self._open.pop(key, None)
            if session is None:
                if event.dport != DOT_PORT:
                    return None
                session = DotSession(
                    file=event.file,
                    client=event.src,
                    cport=event.sport,
                    server=event.dst,
                    sport=event.dport,
                    first_frame=event.first_frame,
                    start=event.start,
                )
            session.connection = event
            session.end = event.end
            session.last_frame = event.last_frame
            session.first_frame = event.first_frame
            session.start = event.start
            return session
        if isinstance(event, TlsClientHelloSeen):
            if event.dport != DOT_PORT and "dot" not in event.alpn:
                return None
            key = (event.file, event.src, event.sport, event.dst, event.dport)
            if key not in self._open and len(self._open) < MAX_OPEN:
                self._open[key] = DotSession(
                    file=event.file,
                    client=event.src,
                    cport=event.sport,
                    server=event.dst,
                    sport=event.dport,
                    first_frame=event.frame,
                    start=event.ts,
                )
            session = self._open.get(key)
            if session is not None and session.client_hello is None:
                session.client_hello = event
            return None
        if isinstance(event, TlsServerHelloSeen | TlsAlertSeen | TlsCertificateSeen):
            from_server = not isinstance(event, TlsAlertSeen) or event.from_server
            if from_server:
                key = (event.file, event.dst, event.dport, event.src, event.sport)
            else:
                key = (event.file, event.src, event.sport, event.dst, event.dport)
            session = self._open.get(key)
            if session is None:
                return None
            if isinstance(event, TlsServerHelloSeen):
                session.server_hello = event
            elif isinstance(event, TlsAlertSeen):
                if len(session.alerts) < 16:
                    session.alerts.append(event)
            elif len(session.certificates) < 16:
                session.certificates.append(event)
        return None
