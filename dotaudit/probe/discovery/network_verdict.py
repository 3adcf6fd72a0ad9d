"""The network verdict: one sentence in plain words, built from clauses that each carry
their evidence ("blocks DoT to public resolvers by RST injection (TTL 64 vs 63)").

A clause is said only of what the survey measured; a transport no resolver offered, or
none could be tested, gets no clause rather than a guess.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dotaudit.model.findings import Confidence, Finding, make_finding
from dotaudit.probe.discovery.survey import Outcome, SurveyResult

NAMES = {"dot": "DoT", "doh": "DoH", "doq": "DoQ"}
PHRASES = {
    "RST injection": "by RST injection",
    "reset": "with TCP resets",
    "dropped": "by dropping it",
    "no answer": "by dropping it",
    "icmp": "with ICMP unreachables",
    "SNI filtering": "by SNI (a reset right after the ClientHello)",
    "reset after ClientHello": "by resetting it after the ClientHello",
    "closed after ClientHello": "by closing it after the ClientHello",
    "stalled after ClientHello": "by stalling it after the ClientHello",
    "reset after handshake": "by resetting it after the TLS handshake",
}
FINDING_OF = {
    ("dot", "blocked"): "DA-NET-001",
    ("doh", "blocked"): "DA-NET-002",
    ("doq", "blocked"): "DA-NET-003",
    ("plain", "hijacked"): "DA-NET-004",
    ("dot", "intercepted"): "DA-NET-005",
    ("doh", "intercepted"): "DA-NET-005",
    ("doq", "intercepted"): "DA-NET-005",
}
MAX_LISTED = 4
"""Resolvers named in one clause; the evidence lists all of them."""


@dataclass
class Clause:
    transport: str
    kind: str
    """blocked, intercepted, passes, hijacked, unverified, untouched."""
    text: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "kind": self.kind,
            "text": self.text,
            "evidence": self.evidence,
        }


@dataclass
class NetworkVerdict:
    sentence: str
    clauses: list[Clause] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _group_noun(results: list[SurveyResult]) -> str:
    groups = {r.target.group for r in results}
    if groups == {"public"}:
        return "public resolvers"
    if groups == {"designated"}:
        return "the designated resolvers"
    return "resolvers"


def _who(results: list[SurveyResult], total: int) -> str:
    """ "public resolvers" when it is all of them, else the addresses (a few of them)."""
    if len(results) == total and total > 1:
        return _group_noun(results)
    names = [r.target.address for r in results[:MAX_LISTED]]
    more = len(results) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


def _evidence(result: SurveyResult, key: str) -> dict[str, Any]:
    outcome = result.outcomes[key]
    row: dict[str, Any] = {
        "resolver": result.target.label,
        "address": result.target.address,
        "status": outcome.status,
        "how": outcome.how,
        "reason": outcome.reason,
    }
    for detail in ("ttl", "differences", "redirected_to", "certificate", "error", "compared_with"):
        if detail in outcome.evidence:
            row[detail] = outcome.evidence[detail]
    return row


def _ttl_note(results: list[SurveyResult], key: str) -> str:
    pairs = []
    for result in results:
        ttl = result.outcomes[key].evidence.get("ttl") or {}
        if ttl.get("injected"):
            refs = sorted(set(ttl.get("reference_ttls", {}).values()))
            pairs.append(f"TTL {ttl.get('rst_ttl')} vs {'/'.join(str(r) for r in refs)}")
    return f" ({'; '.join(sorted(set(pairs)))})" if pairs else ""


def _blocked_text(name: str, blocked: list[SurveyResult], tested: int, key: str) -> str:
    hows = Counter(r.outcomes[key].how for r in blocked)
    who = _who(blocked, tested)
    if len(hows) == 1:
        how = next(iter(hows))
        note = _ttl_note(blocked, key) if how == "RST injection" else ""
        if how == "SNI filtering":
            hosts = sorted({str(r.target.doh_host) for r in blocked})
            return (
                f"blocks {name} to {who} by SNI (a reset right after the ClientHello "
                f"naming {', '.join(hosts)})"
            )
        return f"blocks {name} to {who} {PHRASES.get(how, f'({how})')}{note}"
    parts = [f"{r.target.address}: {r.outcomes[key].how}" for r in blocked[:MAX_LISTED]]
    return f"blocks {name} to {who} ({'; '.join(parts)}){_ttl_note(blocked, key)}"


def _transport_clauses(results: list[SurveyResult], key: str) -> list[Clause]:
    name = NAMES[key]
    tested = [
        r
        for r in results
        if r.outcomes.get(key, Outcome("not tested")).status not in ("not offered", "not tested")
    ]
    if not tested:
        return []
    by_status: dict[str, list[SurveyResult]] = {}
    for result in tested:
        by_status.setdefault(result.outcomes[key].status, []).append(result)
    clauses: list[Clause] = []
    blocked = by_status.get("blocked", [])
    if blocked:
        clauses.append(
            Clause(
                key,
                "blocked",
                _blocked_text(name, blocked, len(tested), key),
                [_evidence(r, key) for r in blocked],
            )
        )
    intercepted = by_status.get("intercepted", [])
    if intercepted:
        whys = sorted({r.outcomes[key].how for r in intercepted})
        clauses.append(
            Clause(
                key,
                "intercepted",
                f"intercepts {name} to {_who(intercepted, len(tested))} ({'; '.join(whys)})",
                [_evidence(r, key) for r in intercepted],
            )
        )
    passed = by_status.get("pass", [])
    if passed:
        text = f"lets {name} through"
        if len(passed) != len(tested):
            text += f" to {_who(passed, len(tested))}"
        clauses.append(Clause(key, "passes", text, [_evidence(r, key) for r in passed]))
    failed = by_status.get("failed", [])
    if failed:
        clauses.append(
            Clause(
                key,
                "failed",
                f"leaves {name} to {_who(failed, len(tested))} failing "
                f"({'; '.join(sorted({r.outcomes[key].how for r in failed}))})",
                [_evidence(r, key) for r in failed],
            )
        )
    return clauses


def _plain_clauses(results: list[SurveyResult]) -> list[Clause]:
    clauses: list[Clause] = []
    outcomes = [(r, r.outcomes["plain"]) for r in results if "plain" in r.outcomes]
    redirected: dict[str, list[SurveyResult]] = {}
    for result, outcome in outcomes:
        if outcome.status == "hijacked":
            redirected.setdefault(str(outcome.evidence.get("redirected_to") or ""), []).append(
                result
            )
    for target, hijacked in sorted(redirected.items()):
        addresses = ", ".join(r.target.address for r in hijacked[:MAX_LISTED])
        diffs = [d for r in hijacked for d in r.outcomes["plain"].evidence.get("differences", [])]
        detail = f" ({diffs[0]})" if diffs else ""
        if target:
            text = f"transparently redirects port 53 for {addresses} to {target}{detail}"
        else:
            text = f"answers port 53 for {addresses} in the resolver's place{detail}"
        clauses.append(Clause("plain", "hijacked", text, [_evidence(r, "plain") for r in hijacked]))
    blocked = [r for r, o in outcomes if o.status == "blocked"]
    if blocked:
        tested = [r for r, o in outcomes if o.status not in ("not offered", "not tested")]
        clauses.append(
            Clause(
                "plain",
                "blocked",
                _blocked_text("port 53", blocked, len(tested), "plain"),
                [_evidence(r, "plain") for r in blocked],
            )
        )
    suspicious = [r for r, o in outcomes if o.how == "answered while unreachable"]
    if suspicious:
        addresses = ", ".join(r.target.address for r in suspicious[:MAX_LISTED])
        clauses.append(
            Clause(
                "plain",
                "unverified",
                f"answers port 53 for {addresses} although nothing else of "
                f"{'it' if len(suspicious) == 1 else 'them'} answers",
                [_evidence(r, "plain") for r in suspicious],
            )
        )
    same = [r for r, o in outcomes if o.status == "pass"]
    if same and not redirected:
        clauses.append(
            Clause(
                "plain",
                "untouched",
                "lets port 53 reach the resolvers themselves",
                [_evidence(r, "plain") for r in same],
            )
        )
    return clauses


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


def _confidence(clause: Clause) -> Confidence:
    hows = {row.get("how") for row in clause.evidence}
    if clause.kind == "blocked" and hows <= {"dropped"} and len(clause.evidence) == 1:
        return Confidence.MEDIUM  # one silent resolver may be down rather than blocked
    return Confidence.HIGH


def network_verdict(results: list[SurveyResult]) -> NetworkVerdict:
    """The sentence, its clauses and the findings they raise."""
    clauses: list[Clause] = []
    for key in NAMES:
        clauses += _transport_clauses(results, key)
    clauses += _plain_clauses(results)
    if not clauses:
        sentence = (
            "The survey could test nothing on this network (no resolver was reachable "
            "to test or every test was refused)."
        )
        return NetworkVerdict(sentence)
    sentence = "This network " + _join([c.text for c in clauses]) + "."
    findings: list[Finding] = []
    for clause in clauses:
        finding_id = FINDING_OF.get((clause.transport, clause.kind))
        if finding_id is None:
            continue
        addresses = sorted(str(row["address"]) for row in clause.evidence)
        findings.append(
            make_finding(
                finding_id,
                dedup_key=f"{clause.transport}|{','.join(addresses)}",
                confidence=_confidence(clause),
                server=", ".join(addresses[:MAX_LISTED]),
                evidence={"clause": clause.text, "resolvers": clause.evidence},
            )
        )
    return NetworkVerdict(sentence, clauses, findings)
