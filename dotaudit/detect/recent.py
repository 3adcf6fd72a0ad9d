"""Recent plaintext DNS queries per client, for detectors that correlate them in time.

A failed DoT attempt's connection event can arrive long after the plaintext queries
that followed it (an unanswered SYN ends only when the flow expires), so correlating
detectors look back into this bounded window instead of requiring events in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dotaudit.model.events import DnsMessageSeen
from dotaudit.model.policy import Policy

PER_CLIENT = 512
MAX_CLIENTS = 20_000


@dataclass(frozen=True, slots=True)
class PlainQuery:
    ts: float
    frame: int
    qname: str | None
    server: str
    transport: str


class RecentQueries:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.by_client: dict[tuple[str, str], deque[PlainQuery]] = {}

    def add(self, event: DnsMessageSeen) -> PlainQuery | None:
        """Record a plaintext query that leaves the host; returns it, or None if ignored."""
        if event.qr != "query" or event.service != "dns" or event.dport != 53:
            return None
        if self.policy.is_local_stub(event.dst) or self.policy.is_internal(event.dst):
            return None
        key = (event.file, event.src)
        queue = self.by_client.get(key)
        if queue is None:
            if len(self.by_client) >= MAX_CLIENTS:
                return None
            queue = deque(maxlen=PER_CLIENT)
            self.by_client[key] = queue
        query = PlainQuery(event.ts, event.frame, event.qname, event.dst, event.transport)
        queue.append(query)
        return query

    def between(self, file: str, client: str, start: float, end: float) -> list[PlainQuery]:
        queue = self.by_client.get((file, client))
        if not queue:
            return []
        return [q for q in queue if start <= q.ts <= end]
