"""Fallback: a client's DoT attempt fails and it then asks in plaintext.

This is the downgrade an on-path attacker forces by blocking port 853 (RFC 8310 §5
opportunistic profile). A plaintext query from the same client between the attempt's
first packet and ``fallback_window_s`` after its last packet counts. Connections seen
only mid-stream are not attempts (the capture simply started late).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from dotaudit.detect.base import Context, Detector, Section
from dotaudit.detect.recent_plaintext import OutboundPlaintextQuery
from dotaudit.detect.session_assembly import DotSession, DotSessionAssembled
from dotaudit.model.events import Event
from dotaudit.model.findings import Finding, make_finding

MAX_PENDING_PER_CLIENT = 64
MAX_EVENTS = 10_000
QNAME_SAMPLE = 20

FAILURE_TEXT = {
    "syn_unanswered": "SYN unanswered (port 853 dropped)",
    "reset": "connection reset (port 853 refused or RST injected)",
    "icmp_rejected": "ICMP rejection",
    "tls_alert": "TLS alert during the handshake",
    "reset_in_handshake": "reset during the TLS handshake",
    "handshake_incomplete": "TLS handshake incomplete",
    "aborted_after_server_hello": "client aborted the TLS handshake (certificate refused?)",
}


@dataclass
class _Attempt:
    """A failed DoT attempt and the plaintext queries of its window."""

    session: DotSession
    window_end: float
    queries: list[OutboundPlaintextQuery] = field(default_factory=list)

    def add(self, query: OutboundPlaintextQuery) -> None:
        if len(self.queries) < 1000:
            self.queries.append(query)


class FallbackDetector(Detector):
    name: ClassVar[str] = "fallback"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset(
        {DotSessionAssembled, OutboundPlaintextQuery}
    )

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.window = context.policy.fallback_window_s
        self.pending: dict[tuple[str, str], list[_Attempt]] = {}
        self.events: list[_Attempt] = []

    def on_event(self, event: Event) -> None:
        if isinstance(event, OutboundPlaintextQuery):
            for attempt in self.pending.get((event.file, event.src), ()):
                if attempt.session.start <= event.ts <= attempt.window_end:
                    attempt.add(event)
            return
        if not isinstance(event, DotSessionAssembled):
            return
        session = event.session
        if session.failure is None:
            return
        attempt = _Attempt(session, session.end + self.window)
        for query in event.recent_plaintext:
            if query.ts <= attempt.window_end:
                attempt.add(query)
        key = (session.file, session.client)
        pending = [a for a in self.pending.get(key, []) if a.window_end >= session.start]
        pending.append(attempt)
        self.pending[key] = pending[-MAX_PENDING_PER_CLIENT:]
        if len(self.events) < MAX_EVENTS:
            self.events.append(attempt)

    def _fallbacks(self) -> list[_Attempt]:
        return [a for a in self.events if a.queries]

    def _row(self, attempt: _Attempt) -> dict[str, Any]:
        session = attempt.session
        first = attempt.queries[0]
        names: list[str] = []
        for query in attempt.queries:
            if query.qname is not None and query.qname not in names:
                names.append(query.qname)
        servers = sorted({q.server for q in attempt.queries})
        return {
            "file": session.file,
            "client": session.client,
            "dot_server": session.server,
            "dot_port": session.sport,
            "failure": session.failure,
            "failure_text": FAILURE_TEXT.get(session.failure or "", session.failure),
            "attempt_start": session.start,
            "attempt_end": session.end,
            "plaintext_server": servers[0] if len(servers) == 1 else servers,
            "plaintext_transport": first.transport,
            "first_plaintext_ts": first.ts,
            "delay_s": round(first.ts - session.start, 6),
            "qnames": names[:QNAME_SAMPLE],
            "qname_count": len(names),
            "queries": len(attempt.queries),
            "same_names_repeated": len(names) < len(attempt.queries),
            "sni": session.sni,
            "frames": sorted({*session.frames(), *(q.frame for q in attempt.queries[:50])}),
        }

    def sections(self) -> dict[str, Section]:
        return {"fallback_events": [self._row(a) for a in self._fallbacks()]}

    def finish(self) -> list[Finding]:
        grouped: dict[tuple[str, str, str], list[_Attempt]] = {}
        for attempt in self._fallbacks():
            s = attempt.session
            grouped.setdefault((s.file, s.client, s.server), []).append(attempt)
        findings = []
        for (file, client, server), attempts in grouped.items():
            rows = [self._row(a) for a in attempts]
            frames = [f for row in rows for f in row["frames"]]
            findings.append(
                make_finding(
                    "DA-FALLBACK-001",
                    dedup_key=f"{file}|{client}|{server}",
                    client=client,
                    server=server,
                    evidence={
                        "attempts": len(rows),
                        "failures": sorted({str(r["failure"]) for r in rows}),
                        "failure_text": rows[0]["failure_text"],
                        "delay_s": min(float(r["delay_s"]) for r in rows),
                        "plaintext_queries": sum(int(r["queries"]) for r in rows),
                        "plaintext_servers": sorted(
                            {str(s) for r in rows for s in _as_list(r["plaintext_server"])}
                        ),
                        "qnames": rows[0]["qnames"],
                        "window_s": self.window,
                    },
                    frames=frames,
                    first_ts=min(float(r["attempt_start"]) for r in rows),
                    last_ts=max(float(r["first_plaintext_ts"]) for r in rows),
                    file=file,
                )
            )
        return findings


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]
