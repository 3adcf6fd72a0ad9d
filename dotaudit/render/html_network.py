"""View model of the HTML report's "Network" section (``probe --discover``): the
resolvers found and how, what each designates or offers, and what the network does to
encrypted DNS as a resolver x transport matrix, with the verdict and its evidence."""

from __future__ import annotations

from typing import Any

from dotaudit.model.coerce import as_dict, as_list, as_str, rows_of
from dotaudit.render.html_format import MAX_LIST_ITEMS, MAX_ROWS, Table, text_of

MATRIX_COLUMNS = (
    ("dot", "DoT (853)"),
    ("doh", "DoH (443)"),
    ("doq", "DoQ (UDP 853)"),
    ("plain", "port 53"),
)
CELL = {
    "pass": ("✓", "pass"),
    "blocked": ("✗", "fail"),
    "intercepted": ("⚠", "fail"),
    "hijacked": ("✗", "fail"),
    "unverified": ("?", "warn"),
    "failed": ("!", "error"),
    "not offered": ("–", "skip"),
    "not tested": ("·", "skip"),
}
DESIGNATION = {
    "verified": ("✓", "pass"),
    "opportunistic": ("!", "warn"),
    "not verified": ("✗", "fail"),
    "unreachable": ("✗", "error"),
    "no address": ("✗", "error"),
    "named by the network": ("·", "skip"),
    "not probed": ("·", "skip"),
}
CLAUSE_CSS = {
    "blocked": "fail",
    "intercepted": "fail",
    "hijacked": "fail",
    "unverified": "warn",
    "failed": "error",
    "passes": "pass",
    "untouched": "pass",
}
MAX_CLAUSE_EVIDENCE = 12


def _mark(table: dict[str, tuple[str, str]], value: object) -> dict[str, str]:
    text = as_str(value) or "—"
    symbol, css = table.get(text, ("?", "unknown"))
    return {"symbol": symbol, "css": css, "text": text}


def _resolvers(rows: list[dict[str, Any]]) -> Table:
    out = []
    for row in rows[:MAX_ROWS]:
        ddr = as_dict(row.get("ddr"))
        records = rows_of(ddr.get("records"))
        found = f"{as_str(ddr.get('status')) or '—'}"
        if records:
            found += f" ({len(records)} record{'s' if len(records) != 1 else ''})"
        if ddr.get("detail"):
            found += f": {text_of(ddr.get('detail'))}"
        identity = as_dict(row.get("identity"))
        out.append(
            [
                text_of(row.get("address")),
                text_of(row.get("role")),
                text_of(row.get("source"))
                + (f" — {text_of(row.get('note'))}" if row.get("note") else ""),
                found,
                text_of(identity) if identity else "—",
            ]
        )
    columns = [
        "address",
        "role",
        "read from",
        "DDR (_dns.resolver.arpa SVCB)",
        "tells about itself",
    ]
    return Table(columns, out, len(rows))


def _records(rows: list[dict[str, Any]]) -> Table:
    out = []
    for row in rows[:MAX_ROWS]:
        for record in rows_of(as_dict(row.get("ddr")).get("records"))[:MAX_ROWS]:
            if record.get("status") == "designation":
                continue
            out.append(
                [
                    text_of(record.get("resolver")),
                    text_of(record.get("status")),
                    text_of(record.get("text")),
                    text_of(as_list(record.get("problems"))) if record.get("problems") else "—",
                ]
            )
    return Table(["resolver", "record", "as received", "why"], out[:MAX_ROWS], len(out))


def _designations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows[:MAX_ROWS]:
        where = as_str(row.get("address"))
        if where and row.get("port") is not None:
            where += f" port {text_of(row.get('port'))}"
        out.append(
            {
                "found_by": text_of(row.get("found_by")),
                "resolver": text_of(row.get("resolver")),
                "target": text_of(row.get("target")),
                "protocol": text_of(row.get("protocol")).upper(),
                "where": where or text_of(row.get("addresses")),
                "status": _mark(DESIGNATION, row.get("status")),
                "reasons": [text_of(r) for r in as_list(row.get("reasons"))[:MAX_LIST_ITEMS]],
            }
        )
    return out


def _matrix(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows[:MAX_ROWS]:
        cells = []
        for key, _ in MATRIX_COLUMNS:
            outcome = as_dict(row.get(key))
            mark = _mark(CELL, outcome.get("status"))
            mark["how"] = as_str(outcome.get("how")) or ""
            mark["reason"] = as_str(outcome.get("reason")) or ""
            cells.append(mark)
        connections = as_dict(row.get("connections"))
        out.append(
            {
                "label": text_of(row.get("label")),
                "address": text_of(row.get("address")),
                "source": text_of(row.get("source")),
                "cells": cells,
                "opened": text_of(connections.get("opened")),
            }
        )
    return out


def _clauses(network: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for clause in rows_of(network.get("clauses"))[:MAX_ROWS]:
        evidence = [
            {
                "resolver": text_of(e.get("resolver")),
                "address": text_of(e.get("address")),
                "how": text_of(e.get("how")),
                "reason": text_of(e.get("reason")),
            }
            for e in rows_of(clause.get("evidence"))[:MAX_CLAUSE_EVIDENCE]
        ]
        kind = as_str(clause.get("kind")) or ""
        out.append(
            {
                "text": text_of(clause.get("text")),
                "kind": kind,
                "css": CLAUSE_CSS.get(kind, "unknown"),
                "evidence": evidence,
                "more": max(len(rows_of(clause.get("evidence"))) - MAX_CLAUSE_EVIDENCE, 0),
            }
        )
    return out


def _summary(clauses: list[dict[str, Any]], runs: int) -> list[str]:
    """One sentence for the report's verdict: how many clauses say what (the Network
    section has the whole verdict)."""
    if not runs:
        return []
    counts = {kind: sum(1 for c in clauses if c["kind"] == kind) for kind in CLAUSE_CSS}
    bad = [
        f"{counts[kind]} {word}"
        for kind, word in (
            ("blocked", "blocking"),
            ("intercepted", "intercepting"),
            ("hijacked", "redirecting"),
        )
        if counts[kind]
    ]
    if not bad:
        return [
            "The network survey found nothing blocked, intercepted or redirected (see Network)."
        ]
    return [f"The network survey found {', '.join(bad)} clause(s) (see Network)."]


def network_view(sections: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """The "Network" section, or None when the report has no discovery in it."""
    runs = sections.get("network", [])
    if not runs and not sections.get("system_resolvers"):
        return None
    verdicts = [as_str(r.get("verdict")) for r in runs if r.get("verdict")]
    budget = [as_dict(r.get("budget")) for r in runs]
    system = sections.get("system_resolvers", [])
    dnr = sections.get("dnr", [])
    clauses = [c for run in runs for c in _clauses(run)]
    return {
        "verdicts": verdicts,
        "summary": _summary(clauses, len(verdicts)),
        "clauses": clauses,
        "known": [text_of(r.get("known_source")) for r in runs],
        "problems": [text_of(p) for r in runs for p in as_list(r.get("system_problems"))][
            :MAX_LIST_ITEMS
        ],
        "budget": [
            {
                "resolvers": text_of(b.get("resolvers")),
                "survey_s": text_of(b.get("survey_s")),
                "timeout_s": text_of(b.get("timeout_s")),
                "max_connections": text_of(b.get("max_connections_per_resolver")),
            }
            for b in budget
            if b.get("resolvers") is not None
        ],
        "resolvers": _resolvers(system),
        "records": _records(system),
        "designations": _designations(sections.get("designations", [])),
        "designations_more": max(len(sections.get("designations", [])) - MAX_ROWS, 0),
        "dnr": Table(
            ["source", "where", "status", "detail"],
            [
                [
                    text_of(d.get("kind")),
                    text_of(d.get("where")),
                    text_of(d.get("status")),
                    text_of(d.get("detail"))
                    + (
                        f"; {len(as_list(d.get('instances')))} resolver(s)"
                        if d.get("instances")
                        else ""
                    ),
                ]
                for d in dnr[:MAX_ROWS]
            ],
            len(dnr),
        ),
        "columns": [label for _, label in MATRIX_COLUMNS],
        "matrix": _matrix(sections.get("survey", [])),
        "matrix_more": max(len(sections.get("survey", [])) - MAX_ROWS, 0),
        "legend": [(symbol, css, name) for name, (symbol, css) in CELL.items()],
    }
