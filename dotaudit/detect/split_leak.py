"""Split leak: a client with a working DoT session still sends plaintext DNS meanwhile.

Typical causes are an application with its own resolver or a stub that sends some
names (search domains, local zones) in the clear. Outbound plaintext queries between the
start and end of any established DoT session of the same client count (the session
stage hands each session the client's recent ones), each once, however many of the
client's sessions it fell into.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    CappedSample,
    Context,
    Detector,
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


@dataclass(slots=True)
class _Split:
    names: CappedSample
    dot_servers: set[str] = field(default_factory=set)
    plaintext_servers: set[str] = field(default_factory=set)
    frames: set[int] = field(default_factory=set)
    counted: dict[int, None] = field(default_factory=dict)
    """The last COUNTED_KEPT counted frames, oldest first."""
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
            split = self.splits.add(key, _Split(CappedSample(budget=self._budget)))
            if split is None:
                return
        if len(split.dot_servers) < MAX_SERVERS:
            split.dot_servers.add(session.server)
        for query in during:
            if query.frame in split.counted:
                continue
            split.counted[query.frame] = None
            if len(split.counted) > COUNTED_KEPT:
                del split.counted[next(iter(split.counted))]
            split.queries += 1
            if len(split.plaintext_servers) < MAX_SERVERS:
                split.plaintext_servers.add(query.server)
            if len(split.frames) < MAX_FRAMES_SEEN:
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
