"""Recent outbound plaintext DNS queries per client, for detectors that correlate in time.

A failed DoT attempt's connection event can arrive long after the plaintext queries
that followed it (an unanswered SYN ends only when the flow expires), so correlating
detectors look back into this bounded window instead of requiring events in order. The
session stage (``detect/session_assembly.py``) keeps the one window of an analysis: it
emits each query it keeps as an ``OutboundPlaintextQuery`` and hands every assembled
session the queries since its start.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from dotaudit.detect.base import CappedGroups
from dotaudit.model.events import DnsMessageSeen, Event
from dotaudit.model.policy import Policy

PER_CLIENT = 512
"""Queries kept per client: a sliding window, the oldest leave first."""
MAX_CLIENTS = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundPlaintextQuery(Event):
    """A plaintext query to port 53 that leaves the host (not to a local stub or an
    internal resolver), as the window keeps it. ``src`` is the client."""

    type: ClassVar[str] = "outbound_plaintext_query"
    qname: str | None

    @property
    def server(self) -> str:
        return self.dst


class RecentPlaintextQueries:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._by_client: CappedGroups[tuple[str, str], deque[OutboundPlaintextQuery]] = (
            CappedGroups(MAX_CLIENTS)
        )

    @property
    def dropped(self) -> int:
        """Queries not kept because ``MAX_CLIENTS`` other clients filled the window."""
        return self._by_client.dropped

    def add(self, event: DnsMessageSeen) -> OutboundPlaintextQuery | None:
        """Keep a plaintext query that leaves the host; returns it, or None if not kept."""
        if event.qr != "query" or event.service != "dns" or event.dport != 53:
            return None
        policy = self._policy
        if policy.is_local_stub(event.dst) or policy.is_internal(event.dst):
            return None
        key = (event.file, event.src)
        queue = self._by_client.get(key)
        if queue is None:
            queue = self._by_client.add(key, deque(maxlen=PER_CLIENT))
            if queue is None:
                return None
        query = OutboundPlaintextQuery(
            file=event.file,
            frame=event.frame,
            ts=event.ts,
            src=event.src,
            sport=event.sport,
            dst=event.dst,
            dport=event.dport,
            transport=event.transport,
            qname=event.qname,
        )
        queue.append(query)
        return query

    def since(self, file: str, client: str, start: float) -> tuple[OutboundPlaintextQuery, ...]:
        """The client's kept queries from ``start`` on, oldest first."""
        queue = self._by_client.get((file, client))
        if not queue:
            return ()
        return tuple(q for q in queue if start <= q.ts)
