"""DoT session outcomes: how each DoT connection went, and what its handshake says.

Reads the sessions the session stage assembled (``detect/session_assembly.py``). Fills
the ``dot_sessions`` section (one row per connection) and aggregates findings per
(client, server): failed connections by failure mode, obsolete or old TLS versions,
missing SNI, and sessions to resolvers that policy does not approve.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dotaudit.detect.base import Context, Detector, Section
from dotaudit.detect.padding import infer_padding
from dotaudit.detect.session_assembly import DotSession, DotSessionAssembled
from dotaudit.model.events import ConnectionSeen, Event
from dotaudit.model.findings import Confidence, Finding, make_finding

MAX_SESSIONS = 20_000
OBSOLETE_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1")


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


class DotSessionOutcomesDetector(Detector):
    name: ClassVar[str] = "dot_session_outcomes"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DotSessionAssembled, ConnectionSeen})

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.rows: list[dict[str, Any]] = []
        self.dropped = 0
        self.server_ttls: dict[str, set[int]] = {}
        """TTLs of packets each server sent on any flow: a reset with another TTL was
        most likely injected by a middlebox on the path."""

    def on_event(self, event: Event) -> None:
        if isinstance(event, DotSessionAssembled):
            if len(self.rows) >= MAX_SESSIONS:
                self.dropped += 1
                return
            self.rows.append(_session_row(event.session))
        elif (
            isinstance(event, ConnectionSeen)
            and event.server_ttl is not None
            and len(self.server_ttls) < MAX_SESSIONS
        ):
            self.server_ttls.setdefault(event.dst, set()).add(event.server_ttl)

    def shared_facts(self) -> dict[str, set[int]]:
        """TTLs by server: a reset is judged against what the server sent to anyone."""
        return self.server_ttls

    @classmethod
    def merge_shared_facts(cls, shares: list[dict[str, set[int]]]) -> dict[str, set[int]]:
        merged: dict[str, set[int]] = {}
        for share in shares:
            for server, ttls in share.items():
                if server in merged:
                    merged[server] |= ttls
                elif len(merged) < MAX_SESSIONS:
                    merged[server] = set(ttls)
        return merged

    def adopt_shared_facts(self, facts: dict[str, set[int]]) -> None:
        self.server_ttls = facts

    def _mark_injected_resets(self) -> None:
        for row in self.rows:
            rst_ttl = row.get("rst_ttl")
            seen = self.server_ttls.get(row["server"], set())
            row["reset_injected"] = (
                rst_ttl is not None and bool(seen) and rst_ttl not in seen
                if row["outcome"] in ("reset", "reset_in_handshake")
                else None
            )
            if row["reset_injected"]:
                row["server_ttls"] = sorted(seen)

    def sections(self) -> dict[str, Section]:
        self._mark_injected_resets()
        return {"dot_sessions": list(self.rows)}

    def finish(self) -> list[Finding]:
        groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}

        def group(kind: str, row: dict[str, Any]) -> None:
            groups.setdefault((kind, row["file"], row["client"], row["server"]), []).append(row)

        approved = self.context.policy.approved_addresses()
        for row in self.rows:
            outcome = row["outcome"]
            if outcome == "mid_stream":
                continue
            if outcome == "established":
                group("DA-DOT-006", row)
                if row["version"] in OBSOLETE_VERSIONS:
                    group("DA-DOT-002", row)
                elif row["version"] == "TLSv1.2":
                    group("DA-DOT-003", row)
                if approved and row["server"] not in approved:
                    group("DA-POLICY-001", row)
            else:
                group("DA-DOT-001", row)
            if row["sni"] is None and row["ja4"] is not None:
                group("DA-DOT-004", row)
        findings: list[Finding] = []
        self._mark_injected_resets()
        for (finding_id, file, client, server), rows in groups.items():
            evidence: dict[str, Any] = {
                "sessions": len(rows),
                "outcomes": _counts(r["outcome"] for r in rows),
                "versions": _counts(str(r["version"]) for r in rows if r["version"]),
                "sni": sorted({r["sni"] for r in rows if r["sni"]}),
                "ja4": sorted({r["ja4"] for r in rows if r["ja4"]}),
                "queries_est": sum(int(r["queries_est"]) for r in rows),
            }
            if self.dropped:
                evidence["sessions_dropped"] = self.dropped
            if finding_id == "DA-DOT-001":
                evidence["failures"] = _counts(r["outcome"] for r in rows)
                evidence["alerts"] = sorted({r["alert"] for r in rows if r["alert"]})
                evidence["syn_retransmits"] = max(int(r["syn_retransmits"]) for r in rows)
                evidence["icmp"] = sorted({r["icmp"] for r in rows if r["icmp"]})
                injected = [r for r in rows if r.get("reset_injected")]
                if injected:
                    evidence["reset_injected"] = True
                    evidence["reset_ttl"] = sorted({r["rst_ttl"] for r in injected})
                    evidence["server_ttls"] = injected[0]["server_ttls"]
                    evidence["note"] = (
                        "the RST's TTL differs from every packet this server sent on other "
                        "flows: a middlebox on the path most likely injected it"
                    )
            confidence = Confidence.HIGH
            if finding_id == "DA-DOT-001" and all(
                r["outcome"] == "aborted_after_server_hello" for r in rows
            ):
                confidence = Confidence.MEDIUM
            findings.append(
                make_finding(
                    finding_id,
                    dedup_key=f"{file}|{client}|{server}",
                    confidence=confidence,
                    client=client,
                    server=server,
                    evidence=evidence,
                    frames=[f for r in rows for f in r["frames"]],
                    first_ts=min(float(r["start"]) for r in rows),
                    last_ts=max(float(r["end"]) for r in rows),
                    file=file,
                )
            )
        return findings


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out
