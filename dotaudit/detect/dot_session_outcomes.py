"""DoT session outcomes: how each DoT connection went, and what its handshake says.

Reads the sessions the session stage assembled (``detect/session_assembly.py``). Fills
the ``dot_sessions`` section (one row per connection) and aggregates findings per
(client, server): failed connections by failure mode, obsolete or old TLS versions,
missing SNI, and sessions to resolvers that policy does not approve.
"""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    Context,
    Detector,
    LowestFrames,
    Section,
    bitten,
)
from dotaudit.detect.padding import infer_padding
from dotaudit.detect.session_assembly import DotSession, DotSessionAssembled
from dotaudit.model.events import ConnectionSeen, Event
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding

MAX_SESSIONS = 2_000
"""Rows of the ``dot_sessions`` table, the first sessions assembled. The findings and the
``dot_session_totals`` section count every session; ``events`` lists every one."""
MAX_GROUPS = 5_000
"""(finding, client, server) groups the findings are made of."""
MAX_SERVERS = 10_000
"""Servers whose own TTLs are remembered (to tell an injected reset)."""
MAX_NAMES = 100
"""SNIs, JA4s and alerts listed per finding."""
OBSOLETE_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1")
RESET_OUTCOMES = ("reset", "reset_in_handshake")


def _estimate_queries(session: DotSession) -> int:
    """DNS queries carried, from the client's application-data records.

    One query per record is the common case; a record holding several coalesced queries
    counts once, so this is a lower bound.
    """
    return session.client_messages()


def _close_reason(session: DotSession) -> str | None:
    conn = session.connection
    if conn.outcome == "syn_unanswered":
        return f"never connected: SYN unanswered ({conn.syn_retransmits} retransmits)"
    if conn.outcome == "refused":
        return "never connected: SYN answered by RST"
    if conn.outcome == "icmp_rejected":
        return f"never connected: ICMP {conn.icmp or 'error'}"
    if conn.outcome in ("closed_fin", "closed_rst"):
        by = conn.closed_by or "unknown side"
        return f"{'FIN' if conn.outcome == 'closed_fin' else 'RST'} by {by}"
    if conn.ended_by == "idle_timeout":
        return "idle (no packets until the flow expired)"
    if conn.ended_by == "capture_end":
        return "still open at the end of the capture"
    if conn.ended_by == "evicted":
        return "evicted from the flow table (memory cap) while still open"
    return conn.outcome


def _session_row(session: DotSession) -> dict[str, Any]:
    hello = session.client_hello
    server_hello = session.server_hello
    conn = session.connection
    fatal = [a for a in session.alerts if a.level == 2]
    return {
        "file": session.file,
        "client": session.client,
        "sport": session.cport,
        "server": session.server,
        "dport": session.sport,
        "sni": session.sni,
        "alpn": (server_hello.alpn if server_hello and server_hello.alpn else None)
        or (list(hello.alpn) if hello and hello.alpn else None),
        "alpn_offered": list(hello.alpn) if hello else [],
        "version": session.version,
        "cipher": server_hello.cipher if server_hello else None,
        "ja4": hello.ja4 if hello else None,
        "ja3": hello.ja3 if hello else None,
        "ech": hello.ech if hello else False,
        "outcome": session.outcome,
        "alert": fatal[0].description_name if fatal else None,
        "tcp_outcome": conn.outcome,
        "syn_retransmits": conn.syn_retransmits,
        "icmp": conn.icmp,
        "start": session.start,
        "end": session.end,
        "duration_s": round(session.end - session.start, 6),
        "queries_est": _estimate_queries(session),
        "close_reason": _close_reason(session),
        "rst_ttl": conn.rst_ttl,
        "server_ttl": conn.server_ttl,
        "padding": infer_padding(session),
        "certificate": _leaf(session),
        "frames": sorted(set(session.frames())),
    }


def _leaf(session: DotSession) -> dict[str, Any] | None:
    for cert in session.certificates:
        if cert.position == 0:
            return {
                "subject": cert.subject,
                "issuer": cert.issuer,
                "not_after": cert.not_after,
                "spki_sha256": cert.spki_sha256,
            }
    return None


def _mask(ttls: set[int]) -> int:
    mask = 0
    for ttl in ttls:
        mask |= 1 << ttl
    return mask


def _foreign(ttl: int, mask: int) -> bool:
    """A TTL the server was seen to send on no flow, when it was seen to send any."""
    return mask != 0 and not mask >> ttl & 1


def _ttls(mask: int) -> list[int]:
    """The TTLs of ``mask``, lowest first."""
    return [ttl for ttl in range(mask.bit_length()) if mask >> ttl & 1]


@dataclass(slots=True)
class _Group:
    """What one finding says of the sessions of one client and server, summed as they
    arrive (the rows of the report's table may stop at ``MAX_SESSIONS``; these do not)."""

    first_ts: float
    last_ts: float
    frames: LowestFrames
    sessions: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    sni: set[str] = field(default_factory=set)
    ja4: set[str] = field(default_factory=set)
    queries_est: int = 0
    alerts: set[str] = field(default_factory=set)
    syn_retransmits: int = 0
    icmp: set[str] = field(default_factory=set)
    reset_ttls: set[int] = field(default_factory=set)
    """TTLs of the resets that ended sessions of this group (checked at the end against
    what the server sent on other flows)."""
    all_aborted: bool = True
    names_cut: int = 0
    """SNIs, JA4s and alerts of sessions not listed because ``MAX_NAMES`` were (counted
    per session: a value not remembered may come again)."""

    def add(self, row: dict[str, Any]) -> None:
        self.sessions += 1
        outcome = row["outcome"]
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if row["version"]:
            version = str(row["version"])
            self.versions[version] = self.versions.get(version, 0) + 1
        for value, kept in (
            (row["sni"], self.sni),
            (row["ja4"], self.ja4),
            (row["alert"], self.alerts),
        ):
            if value and value not in kept:
                if len(kept) < MAX_NAMES:
                    kept.add(value)
                else:
                    self.names_cut += 1
        self.queries_est += int(row["queries_est"])
        self.syn_retransmits = max(self.syn_retransmits, int(row["syn_retransmits"]))
        if row["icmp"]:
            self.icmp.add(row["icmp"])
        if outcome in RESET_OUTCOMES and row["rst_ttl"] is not None:
            self.reset_ttls.add(row["rst_ttl"])
        self.all_aborted = self.all_aborted and outcome == "aborted_after_server_hello"
        for frame in row["frames"]:
            self.frames.add(frame)
        self.first_ts = min(self.first_ts, float(row["start"]))
        self.last_ts = max(self.last_ts, float(row["end"]))


class DotSessionOutcomesDetector(Detector):
    name: ClassVar[str] = "dot_session_outcomes"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DotSessionAssembled, ConnectionSeen})

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._rows: list[bytes] = []
        """The table's rows, each kept marshalled until the table is made: as dicts and
        lists a row takes about 4 KB, marshalled about a quarter of that, and a long
        capture fills all ``MAX_SESSIONS`` of them while its flows are still open."""
        self.dropped = 0
        """Sessions past ``MAX_SESSIONS``: counted in the findings, not listed as rows."""
        self._totals: dict[str, int] = {}
        """Every session by outcome, listed or not."""
        self._groups: CappedGroups[tuple[str, str, str, str], _Group] = CappedGroups(MAX_GROUPS)
        self._approved = context.policy.approved_addresses()
        self.server_ttls: CappedGroups[str, int] = CappedGroups(MAX_SERVERS)
        """TTLs of packets each server sent on any flow, as a bit mask (bit n: TTL n; a
        set cost six times as much, for up to ``MAX_SERVERS`` servers): a reset with
        another TTL was most likely injected by a middlebox on the path."""

    def on_event(self, event: Event) -> None:
        if isinstance(event, DotSessionAssembled):
            row = _session_row(event.session)
            self._group(row)
            outcome = row["outcome"]
            self._totals[outcome] = self._totals.get(outcome, 0) + 1
            if len(self._rows) >= MAX_SESSIONS:
                self.dropped += 1
                return
            self._rows.append(marshal.dumps(row))
        elif isinstance(event, ConnectionSeen) and event.server_ttl is not None:
            ttls = self.server_ttls
            seen = ttls.get(event.dst)
            if seen is None and ttls.add(event.dst, 0) is None:
                return
            ttls[event.dst] = (seen or 0) | 1 << event.server_ttl

    def _group(self, row: dict[str, Any]) -> None:
        outcome = row["outcome"]
        if outcome == "mid_stream":
            return
        kinds: list[str] = []
        if outcome == "established":
            kinds.append("DA-DOT-006")
            if row["version"] in OBSOLETE_VERSIONS:
                kinds.append("DA-DOT-002")
            elif row["version"] == "TLSv1.2":
                kinds.append("DA-DOT-003")
            if self._approved and row["server"] not in self._approved:
                kinds.append("DA-POLICY-001")
        else:
            kinds.append("DA-DOT-001")
        if row["sni"] is None and row["ja4"] is not None:
            kinds.append("DA-DOT-004")
        for kind in kinds:
            key = (kind, row["file"], row["client"], row["server"])
            group = self._groups.get(key)
            if group is None:
                start, end = float(row["start"]), float(row["end"])
                group = self._groups.add(key, _Group(start, end, LowestFrames(MAX_FRAMES)))
                if group is None:
                    continue
            group.add(row)

    def shared_facts(self) -> dict[str, set[int]]:
        """TTLs by server: a reset is judged against what the server sent to anyone."""
        return {server: set(_ttls(mask)) for server, mask in self.server_ttls.items()}

    @classmethod
    def merge_shared_facts(cls, shares: list[dict[str, set[int]]]) -> dict[str, set[int]]:
        merged: dict[str, set[int]] = {}
        for share in shares:
            for server, ttls in share.items():
                if server in merged:
                    merged[server] |= ttls
                elif len(merged) < MAX_SERVERS:
                    merged[server] = set(ttls)
        return merged

    def adopt_shared_facts(self, facts: dict[str, set[int]]) -> None:
        # Caps that bit in this share are counted already; a server of this share's that
        # the merge's cap cut is counted here (once: the share kept no count of its flows).
        # The merged facts are kept whole.
        ttls = self.server_ttls
        ttls.dropped += sum(1 for server in ttls if server not in facts)
        ttls.clear()
        ttls.update((server, _mask(seen)) for server, seen in facts.items())

    def _mark_injected_resets(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row["outcome"] not in RESET_OUTCOMES:
                row["reset_injected"] = None
                continue
            rst_ttl = row.get("rst_ttl")
            mask = self.server_ttls.get(row["server"], 0)
            row["reset_injected"] = rst_ttl is not None and _foreign(rst_ttl, mask)
            if row["reset_injected"]:
                row["server_ttls"] = _ttls(mask)

    def sections(self) -> dict[str, Section]:
        rows = [marshal.loads(row) for row in self._rows]
        self._mark_injected_resets(rows)
        totals = [
            {"outcome": outcome, "sessions": count}
            for outcome, count in sorted(self._totals.items())
        ]
        return {"dot_sessions": rows, "dot_session_totals": totals}

    def caps(self) -> dict[str, int]:
        return bitten(
            {
                "dot_session_rows_full": self.dropped,
                "dot_session_groups_full": self._groups.dropped,
                "dot_server_ttl_table_full": self.server_ttls.dropped,
                "dot_session_names_full": sum(g.names_cut for _, g in self._groups.items()),
            }
        )

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for (finding_id, file, client, server), group in self._groups.items():
            evidence: dict[str, Any] = {
                "sessions": group.sessions,
                "outcomes": dict(group.outcomes),
                "versions": dict(group.versions),
                "sni": sorted(group.sni),
                "ja4": sorted(group.ja4),
                "queries_est": group.queries_est,
            }
            if self.dropped:
                evidence["sessions_not_listed"] = self.dropped
            if self._groups.dropped:
                evidence["groups_dropped"] = self._groups.dropped
            if group.names_cut:
                evidence["names_not_listed"] = group.names_cut
            if finding_id == "DA-DOT-001":
                evidence["failures"] = dict(group.outcomes)
                evidence["alerts"] = sorted(group.alerts)
                evidence["syn_retransmits"] = group.syn_retransmits
                evidence["icmp"] = sorted(group.icmp)
                mask = self.server_ttls.get(server, 0)
                injected = sorted(t for t in group.reset_ttls if _foreign(t, mask))
                if injected:
                    evidence["reset_injected"] = True
                    evidence["reset_ttl"] = injected
                    evidence["server_ttls"] = _ttls(mask)
                    evidence["note"] = (
                        "the RST's TTL differs from every packet this server sent on other "
                        "flows: a middlebox on the path most likely injected it"
                    )
            confidence = Confidence.HIGH
            if finding_id == "DA-DOT-001" and group.all_aborted:
                confidence = Confidence.MEDIUM
            findings.append(
                make_finding(
                    finding_id,
                    dedup_key=f"{file}|{client}|{server}",
                    confidence=confidence,
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
