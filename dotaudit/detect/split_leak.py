"""Split leak: a client with a working DoT session still sends plaintext DNS meanwhile.

Typical causes are an application with its own resolver or a stub that sends some
names (search domains, local zones) in the clear. Outbound plaintext queries between the
start and end of any established DoT session of the same client count (the session
stage hands each session the client's recent ones), each once, however many of the
client's sessions it fell into.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    CappedSample,
    Context,
    Detector,
    FrameSample,
    TrackShare,
    bitten,
)
from dotaudit.detect.recent_plaintext import PER_CLIENT
from dotaudit.detect.session_assembly import DotSessionAssembled
from dotaudit.model.events import Event
from dotaudit.model.findings import Finding, make_finding

MAX_CLIENTS = 10_000
MAX_SERVERS = 20
"""DoT and plaintext servers listed per client."""
MAX_FRAMES_SEEN = 200
"""Frames of counted queries kept as the finding's evidence (``plaintext_queries`` counts
them all)."""
COUNTED_KEPT = 2 * PER_CLIENT
"""Counted query frames remembered per client, so that a query two sessions saw counts
once. A session sees only queries still in the client's window of its last PER_CLIENT
(``detect/recent_plaintext.py``). While a query is there, fewer than PER_CLIENT newer
ones have arrived, and it shared every window with fewer than PER_CLIENT older ones, so
fewer than 2 * PER_CLIENT queries can have been counted after it: forgetting the oldest
past that bound never forgets a query a later session can bring again."""


class _CountedFrames:
    """The last ``limit`` frames counted, in the order they were counted, with a sorted
    copy to look them up in. Two 64-bit columns: as a dict of ints the last 1,024 frames
    of a client cost about 70 KB, and up to ``MAX_CLIENTS`` clients keep them."""

    __slots__ = ("_next", "_order", "_sorted", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._order: array[int] | list[int] = array("Q")
        self._sorted: array[int] | list[int] = array("Q")
        self._next = 0
        """Where the next frame goes once ``limit`` are kept: the oldest one's place."""

    def add(self, frame: int) -> bool:
        """Count ``frame`` unless it was counted (and is still remembered)."""
        ordered = self._sorted
        at = bisect_left(ordered, frame)
        if at < len(ordered) and ordered[at] == frame:
            return False
        try:
            ordered.insert(at, frame)
        except OverflowError:
            # A capture set's frames carry the file's place above 64 bits; as in
            # ``FrameSample``, the columns become lists, which hold any number.
            self._order, self._sorted = list(self._order), list(ordered)
            ordered = self._sorted
            ordered.insert(at, frame)
        order = self._order
        if len(order) < self.limit:
            order.append(frame)
            return True
        oldest = order[self._next]
        order[self._next] = frame
        self._next = (self._next + 1) % self.limit
        del ordered[bisect_left(ordered, oldest)]
        return True


@dataclass(slots=True)
class _Split:
    names: CappedSample
    counted: _CountedFrames
    """The last COUNTED_KEPT counted frames."""
    frames: FrameSample
    dot_servers: list[str] = field(default_factory=list)
    plaintext_servers: list[str] = field(default_factory=list)
    """At most ``MAX_SERVERS`` each, each once: short lists cost less than sets."""
    queries: int = 0
    first_ts: float = float("inf")
    last_ts: float = 0.0


class SplitLeakDetector(Detector):
    name: ClassVar[str] = "split_leak"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DotSessionAssembled})

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.splits: CappedGroups[tuple[str, str], _Split] = CappedGroups(MAX_CLIENTS)
        self._budget = TrackShare(context.track)

    def on_event(self, event: Event) -> None:
        if not isinstance(event, DotSessionAssembled):
            return
        session = event.session
        if session.outcome != "established":
            return
        during = [q for q in event.recent_plaintext if q.ts <= session.end]
        if not during:
            return
        key = (session.file, session.client)
        split = self.splits.get(key)
        if split is None:
            split = self.splits.add(
                key,
                _Split(
                    CappedSample(budget=self._budget),
                    _CountedFrames(COUNTED_KEPT),
                    FrameSample(MAX_FRAMES_SEEN),
                ),
            )
            if split is None:
                return
        dot_servers = split.dot_servers
        if len(dot_servers) < MAX_SERVERS and session.server not in dot_servers:
            dot_servers.append(session.server)
        plaintext_servers = split.plaintext_servers
        for query in during:
            if not split.counted.add(query.frame):
                continue
            split.queries += 1
            if len(plaintext_servers) < MAX_SERVERS and query.server not in plaintext_servers:
                plaintext_servers.append(query.server)
            split.frames.add(query.frame)
            if query.qname is not None:
                split.names.add(query.qname)
            split.first_ts = min(split.first_ts, query.ts)
            split.last_ts = max(split.last_ts, query.ts)

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "split_leak_clients_full": self.splits.dropped,
                "split_leak_names_untracked": self._budget.refused,
            }
        )

    def finish(self) -> list[Finding]:
        findings = []
        for (file, client), split in self.splits.items():
            findings.append(
                make_finding(
                    "DA-LEAK-007",
                    dedup_key=f"{file}|{client}",
                    client=client,
                    server=", ".join(sorted(split.plaintext_servers)),
                    evidence={
                        "dot_servers": sorted(split.dot_servers),
                        "plaintext_servers": sorted(split.plaintext_servers),
                        "plaintext_queries": split.queries,
                        "qnames": list(split.names.values),
                        "qname_count": split.names.count,
                    },
                    frames=sorted(split.frames),
                    first_ts=split.first_ts,
                    last_ts=split.last_ts,
                    file=file,
                )
            )
        return findings
