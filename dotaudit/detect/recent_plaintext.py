"""Recent outbound plaintext DNS queries per client, for detectors that correlate in time.

A failed DoT attempt's connection event can arrive long after the plaintext queries
that followed it (an unanswered SYN ends only when the flow expires), so correlating
detectors look back into this bounded window instead of requiring events in order. The
session stage (``detect/session_assembly.py``) keeps the one window of an analysis: it
emits each query it keeps as an ``OutboundPlaintextQuery`` and hands every assembled
session the queries since its start.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from sys import intern
from typing import ClassVar

from dotaudit.detect.base import NamePool
from dotaudit.model.events import DnsMessageSeen, Event
from dotaudit.model.policy import Policy

PER_CLIENT = 512
"""Queries kept per client: a sliding window, the oldest leave first."""
MAX_CLIENTS = 10_000
MAX_QUERIES = 100_000
"""Queries kept over all clients. Past this or ``MAX_CLIENTS`` the client seen least
recently (in capture order) is forgotten with all its queries, and counted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundPlaintextQuery(Event):
    """A plaintext query to port 53 that leaves the host (not to a local stub or an
    internal resolver), as the window keeps it. ``src`` is the client."""

    type: ClassVar[str] = "outbound_plaintext_query"
    qname: str | None

    @property
    def server(self) -> str:
        return self.dst


class _ClientWindow:
    """One client's last ``PER_CLIENT`` queries as columns, oldest overwritten first.

    A query object per kept query cost about 200 bytes, and a window holds tens of
    thousands of them on an ordinary busy network; as columns a query costs about 40
    (its names shared through the window's ``NamePool``: they repeat across queries and
    clients). The queries are
    made again, equal to the ones ``add`` returned, only when ``since`` hands them out.
    """

    __slots__ = ("dsts", "frames", "next", "qnames", "sports", "stamps", "transports")

    def __init__(self) -> None:
        self.stamps = array("d")
        self.frames: array[int] | list[int] = array("Q")
        """A list instead once a frame number needs more than 64 bits (a capture set's
        frames carry their file's place in the set above the file's own number)."""
        self.sports = array("H")
        self.dsts: list[str] = []
        self.transports: list[str] = []
        self.qnames: list[str | None] = []
        self.next = 0
        """Where the next query goes once the window is full: the oldest one's place."""

    def __len__(self) -> int:
        return len(self.stamps)

    def oldest_ts(self) -> float:
        return self.stamps[self.next]

    def append(self, query: OutboundPlaintextQuery, names: NamePool) -> None:
        qname = None if query.qname is None else names.share(query.qname)
        if len(self.stamps) < PER_CLIENT:
            self.stamps.append(query.ts)
            self._put_frame(len(self.frames), query.frame)
            self.sports.append(query.sport)
            self.dsts.append(intern(query.dst))
            self.transports.append(intern(query.transport))
            self.qnames.append(qname)
            return
        at = self.next
        self.stamps[at] = query.ts
        self._put_frame(at, query.frame)
        self.sports[at] = query.sport
        self.dsts[at] = intern(query.dst)
        self.transports[at] = intern(query.transport)
        self.qnames[at] = qname
        self.next = (at + 1) % len(self.stamps)

    def _put_frame(self, at: int, frame: int) -> None:
        frames = self.frames
        try:
            if at == len(frames):
                frames.append(frame)
            else:
                frames[at] = frame
        except OverflowError:
            self.frames = list(frames)  # a list takes any frame number: this recurses once
            self._put_frame(at, frame)

    def since(self, file: str, client: str, start: float) -> tuple[OutboundPlaintextQuery, ...]:
        held = len(self.stamps)
        stamps = self.stamps
        return tuple(
            OutboundPlaintextQuery(
                file=file,
                frame=self.frames[at],
                ts=stamps[at],
                src=client,
                sport=self.sports[at],
                dst=self.dsts[at],
                dport=53,
                transport=self.transports[at],
                qname=self.qnames[at],
            )
            for at in (i % held for i in range(self.next, self.next + held))
            if start <= stamps[at]
        )


class RecentPlaintextQueries:
    """Each client's latest outbound plaintext queries, for ``since`` to hand out.

    Bounded three ways, each counted: a client keeps its last ``PER_CLIENT`` queries
    (``lookback_cut`` counts the look-backs that reached into what it forgot), and past
    ``MAX_CLIENTS`` clients or ``MAX_QUERIES`` queries the least recently seen client is
    forgotten (``evicted`` counts its queries). A flood of new clients thus pushes out old
    ones instead of locking the window for every client that comes later.
    """

    def __init__(self, policy: Policy, names: NamePool | None = None) -> None:
        self._policy = policy
        self._by_client: dict[tuple[str, str], _ClientWindow] = {}
        self._names = NamePool() if names is None else names
        """The run's (``TrackBudget.names``), shared with the detectors' samples."""
        """Least recently seen client first."""
        self._forgot: dict[tuple[str, str], float] = {}
        """Of a client whose window is full: the time of the last query it let go."""
        self._held = 0
        self.evicted = 0
        """Queries forgotten with their client (the least recently seen) to make room."""
        self.lookback_cut = 0
        """Look-backs (``since``) that reached past a query the client's window let go."""

    def add(self, event: DnsMessageSeen) -> OutboundPlaintextQuery | None:
        """Keep a plaintext query that leaves the host; returns it, or None if not kept."""
        if event.qr != "query" or event.service != "dns" or event.dport != 53:
            return None
        policy = self._policy
        if policy.is_local_stub(event.dst) or policy.is_internal(event.dst):
            return None
        key = (event.file, event.src)
        by_client = self._by_client
        queue = by_client.pop(key, None)  # back in last: the most recently seen
        if queue is None:
            queue = _ClientWindow()
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
        if len(queue) >= PER_CLIENT:
            self._forgot[key] = queue.oldest_ts()
        else:
            self._held += 1
        queue.append(query, self._names)
        by_client[key] = queue
        while len(by_client) > MAX_CLIENTS or self._held > MAX_QUERIES:
            oldest = next(iter(by_client))
            forgotten = by_client.pop(oldest)
            self._forgot.pop(oldest, None)
            self._held -= len(forgotten)
            self.evicted += len(forgotten)
        return query

    def since(self, file: str, client: str, start: float) -> tuple[OutboundPlaintextQuery, ...]:
        """The client's kept queries from ``start`` on, oldest first."""
        key = (file, client)
        queue = self._by_client.get(key)
        if not queue:
            return ()
        forgot = self._forgot.get(key)
        if forgot is not None and forgot >= start:
            self.lookback_cut += 1
        return queue.since(file, client, start)
