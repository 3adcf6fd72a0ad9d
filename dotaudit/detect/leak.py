"""Plaintext DNS: every unencrypted query is a name the whole path can read.

Aggregated per (client, resolver, transport, port): one finding per pair, never one per
packet. Loopback stubs are local traffic (info) unless policy treats loopback as the
network; policy-approved internal resolvers are listed but not flagged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dns.rdatatype

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
from dotaudit.model.events import DnsMessageSeen, Event
from dotaudit.model.findings import Confidence, Finding, make_finding

MAX_PAIRS = 10_000
FRAME_SAMPLE = 50
MAX_QTYPES = 32
"""Query types counted apart per pair; the rest count as "other"."""


def qtype_name(qtype: int | None) -> str:
    """The mnemonic of a query type (``A``, ``HTTPS``), ``TYPEnnn`` for one without."""
    if qtype is None:
        return "none"
    try:
        return dns.rdatatype.to_text(dns.rdatatype.RdataType(qtype))
    except ValueError:
        return f"TYPE{qtype}"


@dataclass(slots=True)
class _PlaintextPair:
    file: str
    client: str
    server: str
    transport: str
    port: int
    names: CappedSample
    queries: int = 0
    responses: int = 0
    padded_queries: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    qtypes: Counter[str] = field(default_factory=Counter)
    frames: FrameSample = field(default_factory=lambda: FrameSample(FRAME_SAMPLE))
    padded_frames: FrameSample = field(default_factory=lambda: FrameSample(FRAME_SAMPLE))

    def add(self, event: DnsMessageSeen, is_query: bool) -> None:
        if not self.queries and not self.responses:
            self.first_ts = event.ts
        self.last_ts = max(self.last_ts, event.ts)
        if is_query:
            self.queries += 1
            if event.edns is not None and event.edns.padding is not None:
                self.padded_queries += 1
                self.padded_frames.add(event.frame)
        else:
            self.responses += 1
        if event.qname is not None:
            self.names.add(event.qname)
        if is_query:
            qtype = qtype_name(event.qtype)
            qtypes = self.qtypes
            if qtype not in qtypes and len(qtypes) >= MAX_QTYPES:
                qtype = "other"
            qtypes[qtype] += 1
        self.frames.add(event.frame)


class PlaintextLeakDetector(Detector):
    name: ClassVar[str] = "leak"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DnsMessageSeen})

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.pairs: CappedGroups[tuple[str, str, str, str, int], _PlaintextPair] = CappedGroups(
            MAX_PAIRS
        )
        self._budget = TrackShare(context.track)

    def on_event(self, event: Event) -> None:
        if not isinstance(event, DnsMessageSeen) or event.service != "dns" or event.opcode != 0:
            return
        is_query = event.qr == "query"
        if is_query:
            client, server, port = event.src, event.dst, event.dport
        else:
            client, server, port = event.dst, event.src, event.sport
        key = (event.file, client, server, event.transport, port)
        pair = self.pairs.get(key)
        if pair is None:
            names = CappedSample(budget=self._budget)
            pair = self.pairs.add(
                key, _PlaintextPair(event.file, client, server, event.transport, port, names)
            )
            if pair is None:
                return
        pair.add(event, is_query)

    def _row(self, pair: _PlaintextPair) -> dict[str, Any]:
        policy = self.context.policy
        known = self.context.resolvers.by_address(pair.server)
        row = {
            "file": pair.file,
            "client": pair.client,
            "server": pair.server,
            "transport": pair.transport,
            "port": pair.port,
            "queries": pair.queries,
            "responses": pair.responses,
            "qnames": list(pair.names.values),
            "qname_count": pair.names.count,
            "qtypes": dict(pair.qtypes.most_common()),
            "padded_queries": pair.padded_queries,
            "first_ts": pair.first_ts,
            "last_ts": pair.last_ts,
            "frames": list(pair.frames),
            "known_resolver": known.provider if known else None,
            "local_stub": policy.is_local_stub(pair.server),
            "internal": policy.is_internal(pair.server),
        }
        if pair.names.overflow:
            row["qname_count_is_lower_bound"] = True
        return row

    def sections(self) -> dict[str, Section]:
        rows = [self._row(p) for p in self.pairs.values()]
        rows.sort(key=lambda r: (-r["queries"], r["client"], r["server"]))
        return {"plaintext_dns": rows}

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "plaintext_pairs_full": self.pairs.dropped,
                "plaintext_names_untracked": self._budget.refused,
            }
        )

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for pair in self.pairs.values():
            row = self._row(pair)
            if row["internal"]:
                continue
            evidence = {
                k: row[k]
                for k in (
                    "transport",
                    "port",
                    "queries",
                    "responses",
                    "qnames",
                    "qname_count",
                    "qtypes",
                    "known_resolver",
                    "padded_queries",
                )
            }
            if pair.names.overflow:
                evidence["qname_count_is_lower_bound"] = True
            if pair.queries == 0:
                evidence["note"] = "only responses were captured; the names still crossed the path"
            if self.pairs.dropped:
                evidence["pairs_dropped"] = self.pairs.dropped
            if row["local_stub"]:
                finding_id = "DA-LEAK-003"
            else:
                finding_id = "DA-LEAK-002" if pair.transport == "tcp" else "DA-LEAK-001"
            dedup = f"{pair.file}|{pair.client}|{pair.server}|{pair.transport}|{pair.port}"
            findings.append(
                make_finding(
                    finding_id,
                    dedup_key=dedup,
                    confidence=Confidence.HIGH if pair.port == 53 else Confidence.MEDIUM,
                    client=pair.client,
                    server=pair.server,
                    evidence=evidence,
                    frames=pair.frames,
                    first_ts=pair.first_ts,
                    last_ts=pair.last_ts,
                    file=pair.file,
                )
            )
            if pair.padded_queries and not row["local_stub"]:
                findings.append(
                    make_finding(
                        "DA-LEAK-004",
                        dedup_key=dedup,
                        client=pair.client,
                        server=pair.server,
                        evidence={
                            "padded_queries": pair.padded_queries,
                            "queries": pair.queries,
                            "qnames": list(pair.names.values),
                        },
                        frames=pair.padded_frames,
                        first_ts=pair.first_ts,
                        last_ts=pair.last_ts,
                        file=pair.file,
                    )
                )
        return findings
