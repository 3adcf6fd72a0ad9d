"""DoT sessions, assembled once per analysis, before the detectors run.

A DoT connection is TCP to port 853, or any TLS connection whose ClientHello offers the
ALPN "dot" (RFC 7858 §3.1). Handshake facts arrive as separate events; the connection
event comes last, when the flow ends, and completes the session.

``SessionStage`` sits between the dissectors and the detectors: it assembles every
session once and emits it as a ``DotSessionAssembled`` event, and it keeps the one window
of recent outbound plaintext queries (``detect/recent_plaintext.py``) that the
correlating detectors look back into. Detectors subscribe to both derived events through
``event_types`` like to any other. Only candidate flows keep state, so memory stays
bounded by the number of concurrently open DoT handshakes; what a cap turns away is
counted (``SessionStage.caps``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from dotaudit.detect.base import NamePool, bitten
from dotaudit.detect.recent_plaintext import OutboundPlaintextQuery, RecentPlaintextQueries
from dotaudit.model.events import (
    ConnectionSeen,
    DnsMessageSeen,
    Event,
    TlsAlertSeen,
    TlsCertificateSeen,
    TlsClientHelloSeen,
    TlsRecord,
    TlsServerHelloSeen,
)
from dotaudit.model.policy import Policy

DOT_PORT = 853
APPLICATION_DATA = 23
TLS13_OVERHEAD = 17
"""AEAD tag (16) plus the inner content type (1) of a TLS 1.3 record."""
MAX_OPEN = 10_000
"""DoT handshakes followed at once; past this the oldest is forgotten (and counted)."""
MAX_HANDSHAKE_FACTS = 16
"""Alerts, and certificates, kept per session; more are counted."""

FlowKey = tuple[str, str, int, str, int]


@dataclass(frozen=True, slots=True)
class DotSession:
    """One DoT connection, complete: its connection event and the handshake facts seen."""

    file: str
    client: str
    cport: int
    server: str
    sport: int
    connection: ConnectionSeen
    client_hello: TlsClientHelloSeen | None = None
    server_hello: TlsServerHelloSeen | None = None
    alerts: tuple[TlsAlertSeen, ...] = ()
    certificates: tuple[TlsCertificateSeen, ...] = ()

    @property
    def first_frame(self) -> int:
        return self.connection.first_frame

    @property
    def last_frame(self) -> int:
        return self.connection.last_frame

    @property
    def start(self) -> float:
        return self.connection.start

    @property
    def end(self) -> float:
        return self.connection.end

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
        return _classify_outcome(self)

    @property
    def failure(self) -> str | None:
        """The failure mode when the session did not carry DNS, else None."""
        outcome = self.outcome
        return None if outcome in ("established", "mid_stream") else outcome


def _drop_close_notify(records: list[TlsRecord]) -> list[TlsRecord]:
    if records and records[-1].length == 2 + TLS13_OVERHEAD:
        return records[:-1]
    return records


def _classify_outcome(session: DotSession) -> str:
    conn = session.connection
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


@dataclass(slots=True)
class _OpenHandshake:
    """What a DoT flow showed before its connection event completes it."""

    client_hello: TlsClientHelloSeen
    server_hello: TlsServerHelloSeen | None = None
    alerts: list[TlsAlertSeen] = field(default_factory=list)
    certificates: list[TlsCertificateSeen] = field(default_factory=list)


class DotSessionAssembler:
    """Feed the handshake and connection events of TCP flows; ``feed`` returns a session
    when its connection event completes it."""

    def __init__(self) -> None:
        self._open: dict[FlowKey, _OpenHandshake] = {}
        """Oldest ClientHello first."""
        self.dropped = 0
        """Open handshakes forgotten, the oldest first, because ``MAX_OPEN`` were open:
        their sessions complete without their handshake facts."""
        self.facts_dropped = 0
        """Alerts and certificates past ``MAX_HANDSHAKE_FACTS`` of one session."""

    def feed(self, event: Event) -> DotSession | None:
        if event.transport != "tcp":
            return None
        if isinstance(event, ConnectionSeen):
            key = (event.file, event.src, event.sport, event.dst, event.dport)
            handshake = self._open.pop(key, None)
            if handshake is None:
                if event.dport != DOT_PORT:
                    return None
                return DotSession(event.file, event.src, event.sport, event.dst, event.dport, event)
            return DotSession(
                event.file,
                event.src,
                event.sport,
                event.dst,
                event.dport,
                event,
                handshake.client_hello,
                handshake.server_hello,
                tuple(handshake.alerts),
                tuple(handshake.certificates),
            )
        if isinstance(event, TlsClientHelloSeen):
            if event.dport != DOT_PORT and "dot" not in event.alpn:
                return None
            key = (event.file, event.src, event.sport, event.dst, event.dport)
            if key not in self._open:
                if len(self._open) >= MAX_OPEN:
                    self.dropped += 1
                    if not self._open:
                        return None
                    del self._open[next(iter(self._open))]
                self._open[key] = _OpenHandshake(event)
            return None
        if isinstance(event, TlsServerHelloSeen | TlsAlertSeen | TlsCertificateSeen):
            from_server = not isinstance(event, TlsAlertSeen) or event.from_server
            if from_server:
                key = (event.file, event.dst, event.dport, event.src, event.sport)
            else:
                key = (event.file, event.src, event.sport, event.dst, event.dport)
            handshake = self._open.get(key)
            if handshake is None:
                return None
            if isinstance(event, TlsServerHelloSeen):
                handshake.server_hello = event
            elif isinstance(event, TlsAlertSeen):
                if len(handshake.alerts) < MAX_HANDSHAKE_FACTS:
                    handshake.alerts.append(event)
                else:
                    self.facts_dropped += 1
            elif len(handshake.certificates) < MAX_HANDSHAKE_FACTS:
                handshake.certificates.append(event)
            else:
                self.facts_dropped += 1
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DotSessionAssembled(Event):
    """A DoT session, complete. The event's own fields are those of the connection event
    that completed it (``src`` is the client)."""

    type: ClassVar[str] = "dot_session_assembled"
    session: DotSession
    recent_plaintext: tuple[OutboundPlaintextQuery, ...]
    """The client's outbound plaintext queries from the session's start on that the
    window still held when the session completed, oldest first."""


SESSION_SOURCES: frozenset[type[Event]] = frozenset(
    {ConnectionSeen, TlsClientHelloSeen, TlsServerHelloSeen, TlsAlertSeen, TlsCertificateSeen}
)
"""The event types the assembler reads."""

Emit = Callable[[Event], None]


class SessionStage:
    """Runs before the detectors: assembles DoT sessions and keeps the plaintext window,
    passing each ``DotSessionAssembled`` and ``OutboundPlaintextQuery`` it makes to
    ``emit`` as soon as it exists."""

    emits: ClassVar[frozenset[type[Event]]] = frozenset(
        {DotSessionAssembled, OutboundPlaintextQuery}
    )

    def __init__(self, policy: Policy, emit: Emit, names: NamePool | None = None) -> None:
        self._emit = emit
        self._assembler = DotSessionAssembler()
        self._recent = RecentPlaintextQueries(policy, names)

    def handlers(self) -> dict[type[Event], Callable[[Event], None]]:
        """The stage's handler for each event type it reads."""
        out: dict[type[Event], Callable[[Event], None]] = dict.fromkeys(
            SESSION_SOURCES, self._on_session_source
        )
        out[DnsMessageSeen] = self._on_dns_message
        return out

    def _on_dns_message(self, event: Event) -> None:
        query = self._recent.add(event)  # type: ignore[arg-type]  # routed by type
        if query is not None:
            self._emit(query)

    def _on_session_source(self, event: Event) -> None:
        session = self._assembler.feed(event)
        if session is None:
            return
        self._emit(
            DotSessionAssembled(
                file=event.file,
                frame=event.frame,
                ts=event.ts,
                src=event.src,
                sport=event.sport,
                dst=event.dst,
                dport=event.dport,
                transport=event.transport,
                session=session,
                recent_plaintext=self._recent.since(session.file, session.client, session.start),
            )
        )

    def caps(self) -> dict[str, int]:
        """What the stage's caps turned away, by name, where they bit."""
        return bitten(
            {
                "dot_handshake_table_full": self._assembler.dropped,
                "dot_handshake_facts_dropped": self._assembler.facts_dropped,
                "plaintext_window_evicted": self._recent.evicted,
                "plaintext_lookback_cut": self._recent.lookback_cut,
            }
        )
