"""Fallback: a client's DoT attempt fails and it then asks in plaintext.

This is the downgrade an on-path attacker forces by blocking port 853 (RFC 8310 §5
opportunistic profile). A plaintext query from the same client between the attempt's
first packet and ``fallback_window_s`` after its last packet counts. Connections seen
only mid-stream are not attempts (the capture simply started late).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    CappedSample,
    Context,
    Detector,
    FrameSample,
    LowestFrames,
    Section,
    bitten,
)
from dotaudit.detect.recent_plaintext import OutboundPlaintextQuery
from dotaudit.detect.session_assembly import DotSessionAssembled
from dotaudit.model.events import Event
from dotaudit.model.findings import MAX_FRAMES, Finding, make_finding

MAX_PENDING = 20_000
"""Failed attempts whose window is still open, over all clients; past this the one whose
window ends first stops collecting queries early (counted)."""
MAX_PENDING_PER_CLIENT = 64
"""The same, per client; past this its oldest attempt stops collecting early (counted)."""
MAX_EVENTS = 5_000
"""Rows of the ``fallback_events`` table; the findings count every fallback."""
MAX_GROUPS = 10_000
"""(client, DoT server) pairs with findings."""
QNAME_SAMPLE = 20
QUERY_FRAMES = 50
"""Frames of the plaintext queries listed per attempt."""
MAX_SERVERS = 20
"""Plaintext servers listed per attempt and per finding."""

FAILURE_TEXT = {
    "syn_unanswered": "SYN unanswered (port 853 dropped)",
    "reset": "connection reset (port 853 refused or RST injected)",
    "icmp_rejected": "ICMP rejection",
    "tls_alert": "TLS alert during the handshake",
    "reset_in_handshake": "reset during the TLS handshake",
    "handshake_incomplete": "TLS handshake incomplete",
    "aborted_after_server_hello": "client aborted the TLS handshake (certificate refused?)",
}


class _Attempt:
    """A failed DoT attempt and a summary of the plaintext queries of its window."""

    __slots__ = (
        "client",
        "done",
        "dot_port",
        "dot_server",
        "end",
        "failure",
        "file",
        "first",
        "frames",
        "names",
        "queries",
        "seq",
        "servers",
        "session_frames",
        "sni",
        "start",
        "window_end",
    )

    def __init__(self, event: DotSessionAssembled, seq: int, window: float) -> None:
        session = event.session
        self.seq = seq
        self.file = session.file
        self.client = session.client
        self.dot_server = session.server
        self.dot_port = session.sport
        self.failure = session.failure
        self.start = session.start
        self.end = session.end
        self.sni = session.sni
        self.session_frames = session.frames()
        self.window_end = session.end + window
        self.done = False
        self.queries = 0
        self.first: OutboundPlaintextQuery | None = None
        self.names: CappedSample | None = None
        self.servers: set[str] = set()
        self.frames = FrameSample(QUERY_FRAMES)

    def add(self, query: OutboundPlaintextQuery) -> None:
        self.queries += 1
        if self.first is None:
            self.first = query
            self.names = CappedSample(limit=QNAME_SAMPLE, track=1000)
        if query.qname is not None:
            assert self.names is not None
            self.names.add(query.qname)
        if len(self.servers) < MAX_SERVERS:
            self.servers.add(query.server)
        self.frames.add(query.frame)

    def row(self) -> dict[str, Any]:
        first = self.first
        assert first is not None and self.names is not None
        servers = sorted(self.servers)
        names = self.names
        row = {
            "file": self.file,
            "client": self.client,
            "dot_server": self.dot_server,
            "dot_port": self.dot_port,
            "failure": self.failure,
            "failure_text": FAILURE_TEXT.get(self.failure or "", self.failure),
            "attempt_start": self.start,
            "attempt_end": self.end,
            "plaintext_server": servers[0] if len(servers) == 1 else servers,
            "plaintext_transport": first.transport,
            "first_plaintext_ts": first.ts,
            "delay_s": round(first.ts - self.start, 6),
            "qnames": list(names.values),
            "qname_count": names.count,
            "queries": self.queries,
            "same_names_repeated": names.count < self.queries,
            "sni": self.sni,
            "frames": sorted({*self.session_frames, *self.frames}),
        }
        if names.overflow:
            # Past the names it tracks the count is a lower bound, and fewer distinct names
            # than queries no longer shows that a name was asked again.
            row["qname_count_is_lower_bound"] = True
            del row["same_names_repeated"]
        return row


@dataclass(slots=True)
class _Group:
    """The fallbacks of one client to one DoT server, summed as they are decided."""

    first_seq: int
    first_row: dict[str, Any]
    frames: LowestFrames
    attempts: int = 0
    failures: set[str] = field(default_factory=set)
    delay_s: float = float("inf")
    queries: int = 0
    servers: set[str] = field(default_factory=set)
    first_ts: float = float("inf")
    last_ts: float = float("-inf")

    def add(self, seq: int, row: dict[str, Any]) -> None:
        if seq < self.first_seq:
            self.first_seq, self.first_row = seq, row
        self.attempts += 1
        self.failures.add(str(row["failure"]))
        self.delay_s = min(self.delay_s, float(row["delay_s"]))
        self.queries += int(row["queries"])
        for server in _as_list(row["plaintext_server"]):
            if len(self.servers) < MAX_SERVERS:
                self.servers.add(str(server))
        for frame in row["frames"]:
            self.frames.add(frame)
        self.first_ts = min(self.first_ts, float(row["attempt_start"]))
        self.last_ts = max(self.last_ts, float(row["first_plaintext_ts"]))


class FallbackDetector(Detector):
    name: ClassVar[str] = "fallback"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset(
        {DotSessionAssembled, OutboundPlaintextQuery}
    )

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.window = context.policy.fallback_window_s
        self.pending: dict[tuple[str, str], list[_Attempt]] = {}
        """Attempts whose window is open, by client, oldest first."""
        self._closing: list[tuple[float, int, _Attempt]] = []
        """The same by window end, soonest first."""
        self._pending = 0
        self._seq = 0
        self._now = float("-inf")
        """The latest capture time the events showed."""
        self._rows: list[tuple[int, dict[str, Any]]] = []
        self._groups: CappedGroups[tuple[str, str, str], _Group] = CappedGroups(MAX_GROUPS)
        self.rows_dropped = 0
        self.cut_short = 0
        """Attempts that stopped collecting queries before their window closed."""

    def on_event(self, event: Event) -> None:
        if isinstance(event, OutboundPlaintextQuery):
            self._advance(event.ts)
            for attempt in self.pending.get((event.file, event.src), ()):
                if attempt.start <= event.ts <= attempt.window_end:
                    attempt.add(event)
            return
        if not isinstance(event, DotSessionAssembled):
            return
        session = event.session
        self._advance(session.end)
        if session.failure is None:
            return
        self._seq += 1
        attempt = _Attempt(event, self._seq, self.window)
        for query in event.recent_plaintext:
            if query.ts <= attempt.window_end:
                attempt.add(query)
        if attempt.window_end < self._now:
            self._decide(attempt)  # its window closed already: nothing more can come
            return
        key = (attempt.file, attempt.client)
        pending = self.pending.setdefault(key, [])
        pending.append(attempt)
        self._pending += 1
        heapq.heappush(self._closing, (attempt.window_end, attempt.seq, attempt))
        if len(pending) > MAX_PENDING_PER_CLIENT:
            self._decide(pending[0], early=True)
        while self._pending > MAX_PENDING:
            _, _, soonest = heapq.heappop(self._closing)
            if not soonest.done:
                self._decide(soonest, early=True)

    def _advance(self, ts: float) -> None:
        """Capture time moved on to ``ts``: attempts whose window ended are decided."""
        if ts <= self._now:
            return
        self._now = ts
        closing = self._closing
        while closing and closing[0][0] < ts:
            _, _, attempt = heapq.heappop(closing)
            if not attempt.done:
                self._decide(attempt)

    def _decide(self, attempt: _Attempt, early: bool = False) -> None:
        """No more queries for ``attempt``: a fallback if it has any."""
        if attempt.done:
            return
        key = (attempt.file, attempt.client)
        pending = self.pending.get(key)
        if pending is not None and attempt in pending:
            pending.remove(attempt)
            self._pending -= 1
            if not pending:
                del self.pending[key]
        attempt.done = True
        if early:
            self.cut_short += 1
        if not attempt.queries:
            return
        row = attempt.row()
        if len(self._rows) < MAX_EVENTS:
            self._rows.append((attempt.seq, row))
        else:
            self.rows_dropped += 1
        group_key = (attempt.file, attempt.client, attempt.dot_server)
        group = self._groups.get(group_key)
        if group is None:
            group = self._groups.add(group_key, _Group(attempt.seq, row, LowestFrames(MAX_FRAMES)))
            if group is None:
                return
        group.add(attempt.seq, row)

    def _close(self) -> None:
        """The events ended: every attempt still open is decided."""
        for pending in list(self.pending.values()):
            for attempt in list(pending):
                self._decide(attempt)
        self._closing.clear()

    def sections(self) -> dict[str, Section]:
        self._close()
        return {"fallback_events": [row for _, row in sorted(self._rows, key=_seq)]}

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "fallback_attempts_cut_short": self.cut_short,
                "fallback_rows_full": self.rows_dropped,
                "fallback_groups_full": self._groups.dropped,
            }
        )

    def finish(self) -> list[Finding]:
        self._close()
        findings = []
        groups = sorted(self._groups.items(), key=lambda item: item[1].first_seq)
        for (file, client, server), group in groups:
            first = group.first_row
            evidence: dict[str, Any] = {
                "attempts": group.attempts,
                "failures": sorted(group.failures),
                "failure_text": first["failure_text"],
                "delay_s": group.delay_s,
                "plaintext_queries": group.queries,
                "plaintext_servers": sorted(group.servers),
                "qnames": first["qnames"],
                "window_s": self.window,
            }
            if self._groups.dropped:
                evidence["pairs_dropped"] = self._groups.dropped
            if self.cut_short:
                evidence["attempts_cut_short"] = self.cut_short
            findings.append(
                make_finding(
                    "DA-FALLBACK-001",
                    dedup_key=f"{file}|{client}|{server}",
                    client=client,
                    server=server,
                    evidence=evidence,
                    frames=group.frames.frames,
                    first_ts=group.first_ts,
                    last_ts=group.last_ts,
                    file=file,
                )
            )
        return findings


def _seq(item: tuple[int, dict[str, Any]]) -> int:
    return item[0]


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]
