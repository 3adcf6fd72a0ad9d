"""View models of the HTML report's data sections: tables, charts and the probe matrix."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dotaudit.model.coerce import as_dict, as_int, as_list, as_str, num, rows_of
from dotaudit.model.endpoint import host_port
from dotaudit.model.findings import Severity
from dotaudit.model.report import AuditReport, input_completeness
from dotaudit.render import svg
from dotaudit.render.html_format import (
    MAX_LIST_ITEMS,
    MAX_ROWS,
    MAX_TOP,
    Table,
    cell,
    fmt_span,
    fmt_ts,
    plural,
    readable_dn,
    text_of,
)
from dotaudit.render.probe_evidence import evidence_rows

MAX_TARGET_DETAILS = 50
_SEVERITY_LABELS = frozenset(s.label for s in Severity)
MAX_MATRIX_TARGETS = 200
MAX_MATRIX_CHECKS = 40
MAX_LANES = 12
MAX_HIST_SIZES = 50_000

CHECK_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The probe matrix: one narrow table per group, so that it fits a phone's width.
    ("Reachability", ("reach.853", "reach.53", "rst-injection", "blocked-port")),
    (
        "TLS and authentication",
        ("tls.versions", "cert.chain", "cert.name", "cert.pin", "cert.expiry", "cert.quality",
         "interception", "cleartext-on-853", "tls.resumption"),
    ),
    (
        "DNS behaviour",
        ("dns.answer", "padding.response", "padding.unsolicited", "keepalive", "pipelining",
         "reuse", "latency", "hijack.53", "dnssec", "qname-min"),
    ),
    ("Other transports", ("doh", "doq")),
)  # fmt: skip
MAX_GROUP_COLUMNS = 10
"""Columns of one matrix table: ten narrow columns and the resolver fit a phone's width."""
OTHER_GROUP = "Other checks"
"""Checks a report names that this renderer does not know (a newer or edited report)."""
CHECK_ORDER = tuple(check for _, checks in CHECK_GROUPS for check in checks)

STATUS = {
    "pass": ("✓", "pass", "pass", "pass"),
    "warn": ("!", "warn", "warning", "warning"),
    "fail": ("✗", "fail", "fail", "fail"),
    "error": ("⚠", "error", "error", "error: could not complete"),
    "skip": ("–", "skip", "skipped", "skipped: not tested"),
    "not-applicable": ("○", "na", "not applicable", "not applicable: nothing to test"),
}
"""status -> (symbol, CSS class, word, the legend's explanation)."""

VERDICT_WORDS = {
    "accept": "accepts",
    "refuse": "refuses",
    "encrypted": "encrypted",
    "plaintext-fallback": "falls back to plaintext",
    "intercepted": "intercepted",
    "fails": "no DNS at all",
    "not-tested": "not tested",
}

FAILURE_CODE = {
    "syn_unanswered": "D",
    "reset": "R",
    "reset_in_handshake": "R",
    "icmp_rejected": "I",
    "tls_alert": "A",
    "handshake_incomplete": "H",
    "aborted_after_server_hello": "H",
}


def plaintext_view(rows: list[dict[str, Any]]) -> dict[str, Any]:
    network = [r for r in rows if not r.get("local_stub")]
    names: Counter[str] = Counter()
    name_clients: dict[str, set[str]] = {}
    clients: dict[str, dict[str, Any]] = {}
    resolvers: dict[str, dict[str, Any]] = {}
    for row in network:
        client, server = str(row.get("client")), str(row.get("server"))
        queries = as_int(row.get("queries"))
        qnames = as_list(row.get("qnames"))
        for name in qnames[: MAX_TOP * 5]:
            key = str(name)
            names[key] += 1
            holders = name_clients.setdefault(key, set())
            if len(holders) < 1000:
                holders.add(client)
        c = clients.setdefault(client, {"queries": 0, "resolvers": set(), "padded": 0})
        c["queries"] += queries
        c["padded"] += as_int(row.get("padded_queries"))
        if len(c["resolvers"]) < 1000:
            c["resolvers"].add(server)
        r = resolvers.setdefault(
            server,
            {"queries": 0, "clients": set(), "known": None, "internal": False, "transports": set()},
        )
        r["queries"] += queries
        if len(r["clients"]) < 100_000:
            r["clients"].add(client)
        r["known"] = r["known"] or as_str(row.get("known_resolver"))
        r["internal"] = r["internal"] or bool(row.get("internal"))
        transport = as_str(row.get("transport"))
        if transport and len(r["transports"]) < 4:
            r["transports"].add(transport)
    top_names = [
        [name, str(count), str(len(name_clients.get(name, ())))]
        for name, count in names.most_common(MAX_TOP)
    ]
    top_clients = sorted(clients.items(), key=lambda kv: (-kv[1]["queries"], kv[0]))
    top_resolvers = sorted(resolvers.items(), key=lambda kv: (-kv[1]["queries"], kv[0]))
    return {
        "local_rows": len(rows) - len(network),
        "local_queries": sum(as_int(r.get("queries")) for r in rows if r.get("local_stub")),
        "names": Table(["name", "client/resolver pairs asking", "clients"], top_names, len(names)),
        "clients": Table(
            ["client", "queries", "resolvers", "padded queries"],
            [
                [k, f"{v['queries']:,}", str(len(v["resolvers"])), f"{v['padded']:,}"]
                for k, v in top_clients[:MAX_TOP]
            ],
            len(clients),
        ),
        "resolvers": Table(
            ["resolver", "queries", "clients", "known public resolver", "internal", "transport"],
            [
                [
                    k,
                    f"{v['queries']:,}",
                    str(len(v["clients"])),
                    v["known"] or "—",
                    "yes" if v["internal"] else "no",
                    ", ".join(sorted(v["transports"])) or "—",
                ]
                for k, v in top_resolvers[:MAX_TOP]
            ],
            len(resolvers),
        ),
    }


def padding_of(row: dict[str, Any]) -> dict[str, Any]:
    return as_dict(row.get("padding"))


def dot_view(rows: list[dict[str, Any]]) -> Table:
    ordered = sorted(
        rows, key=lambda r: (r.get("outcome") == "established", num(r.get("start")) or 0.0)
    )
    shown = []
    for row in ordered[:MAX_ROWS]:
        padding = padding_of(row)
        alpn = row.get("alpn") or text_of(row.get("alpn_offered") or []) or "—"
        port = row.get("dport")
        version = text_of(row.get("version"))
        shown.append(
            [
                fmt_ts(row.get("start"))[:19],
                text_of(row.get("client")),
                text_of(row.get("server")) + ("" if port in (853, None) else f" port {port}"),
                text_of(row.get("sni")) if row.get("sni") else "(no SNI)",
                version.removeprefix("TLSv"),
                text_of(alpn),
                text_of(row.get("ja4")),
                text_of(row.get("outcome")).replace("_", " "),
                text_of(padding.get("verdict", "—")),
            ]
        )
    return Table(
        [
            "start (UTC)",
            "client",
            "server (port 853)",
            "SNI",
            "TLS",
            "ALPN",
            "JA4",
            "outcome",
            "padding",
        ],
        shown,
        len(rows),
    )


def certificates_view(rows: list[dict[str, Any]]) -> Table:
    """Leaf certificates seen in cleartext (TLS 1.2 and older), one row per distinct one."""
    seen: dict[tuple[str, str, str, str], list[Any]] = {}
    for row in rows:
        cert = as_dict(row.get("certificate"))
        if not cert:
            continue
        key = tuple(text_of(cert.get(k)) for k in ("subject", "issuer", "not_after", "spki_sha256"))
        entry = seen.setdefault(key, [set(), 0])  # type: ignore[arg-type]
        entry[1] += 1
        if len(entry[0]) < 10:
            entry[0].add(text_of(row.get("server")))
    shown = [
        [
            readable_dn(subject),
            readable_dn(issuer),
            not_after,
            pin,
            ", ".join(sorted(servers)),
            str(count),
        ]
        for (subject, issuer, not_after, pin), (servers, count) in list(seen.items())[:MAX_ROWS]
    ]
    return Table(
        ["subject", "issuer", "not after", "SPKI pin (sha256)", "servers", "sessions"],
        shown,
        len(seen),
    )


def histograms(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Estimated DNS message lengths (record − prefix − cipher overhead) per direction."""
    queries = svg.SizeHistogram(block=128)
    responses = svg.SizeHistogram(block=468)
    verdicts: Counter[str] = Counter()
    unknown_overhead = 0
    for row in rows:
        padding = padding_of(row)
        if not padding:
            continue
        verdicts[str(padding.get("verdict", "unknown"))] += 1
        overhead = padding.get("overhead")
        if (
            not isinstance(overhead, list)
            or len(overhead) != 2
            or overhead[0] != overhead[1]
            or num(overhead[0]) is None
        ):
            unknown_overhead += 1
            continue
        cost = 2 + as_int(overhead[0])
        for key, hist in (("client_sizes", queries), ("server_sizes", responses)):
            sizes = padding.get(key)
            if isinstance(sizes, list) and len(hist.sizes) < MAX_HIST_SIZES:
                hist.sizes.extend(as_int(s) - cost for s in sizes if num(s) is not None)
    if not verdicts:
        return None
    charts = []
    for hist, direction in ((queries, "queries"), (responses, "responses")):
        charts.append(
            {
                "direction": direction,
                "block": hist.block,
                "svg": svg.size_histogram(hist, direction),
                "records": len(hist.sizes),
                "on_grid": hist.on_grid(),
                "common": svg.counts_line(hist.sizes) or "—",
            }
        )
    return {
        "charts": charts,
        "verdicts": sorted(verdicts.items(), key=lambda kv: (-kv[1], kv[0])),
        "unknown_overhead": unknown_overhead,
    }


def timeline(report: AuditReport) -> dict[str, Any] | None:
    events = rows_of(report.sections.get("fallback_events"))
    if not events:
        return None
    clients: list[str] = []
    for row in events:
        client = str(row.get("client"))
        if client not in clients:
            clients.append(client)
    shown_clients = clients[:MAX_LANES]
    starts = [num(r.get("attempt_start")) for r in events if str(r.get("client")) in shown_clients]
    ends = [num(r.get("first_plaintext_ts")) for r in events]
    begin = min((s for s in starts if s is not None), default=None)
    if begin is None:
        return None
    finish = max((e for e in ends + starts if e is not None), default=begin)
    window = num(report.policy.get("fallback_window_s")) or 10.0
    origin = begin - 1.0
    span = max(finish - origin + min(window, 10.0), 2.0)
    stop = origin + span
    lanes: list[svg.Lane] = []
    for number, client in enumerate(shown_clients, 1):
        lane = svg.Lane(number)
        for row in rows_of(report.sections.get("dot_sessions")):
            start, end = num(row.get("start")), num(row.get("end"))
            if str(row.get("client")) != client or start is None or not origin <= start <= stop:
                continue
            outcome = str(row.get("outcome"))
            lane.attempts.append(
                svg.Attempt(
                    start,
                    end if end is not None else start,
                    FAILURE_CODE.get(outcome, "?"),
                    outcome in ("established", "mid_stream"),
                )
            )
        for row in rows_of(report.sections.get("plaintext_dns")):
            first, last = num(row.get("first_ts")), num(row.get("last_ts"))
            if str(row.get("client")) != client or first is None:
                continue
            last = last if last is not None else first
            if last >= origin and first <= stop:
                lane.plaintext.append((max(first, origin), min(last, stop)))
        for row in events:
            ts = num(row.get("first_plaintext_ts"))
            if str(row.get("client")) == client and ts is not None:
                lane.fallbacks.append(ts)
        lanes.append(lane)
    table = []
    for row in events[:MAX_ROWS]:
        client = str(row.get("client"))
        lane_no = shown_clients.index(client) + 1 if client in shown_clients else None
        attempt = num(row.get("attempt_start"))
        table.append(
            [
                f"client {lane_no}" if lane_no else "—",
                client,
                f"+{attempt - origin:.3f} s" if attempt is not None else "—",
                text_of(row.get("dot_server")),
                text_of(row.get("failure_text") or row.get("failure")),
                cell("delay_s", row.get("delay_s")),
                text_of(row.get("plaintext_server")),
                text_of(row.get("queries")),
                text_of(row.get("qnames")),
            ]
        )
    return {
        "svg": svg.fallback_timeline(lanes, origin, span),
        "origin": fmt_ts(origin),
        "lanes_hidden": len(clients) - len(shown_clients),
        "table": Table(
            [
                "lane",
                "client",
                "DoT attempt",
                "DoT server",
                "failure",
                "plaintext after",
                "plaintext resolver",
                "queries",
                "names",
            ],
            table,
            len(events),
        ),
    }


def _severity_label(value: object) -> str | None:
    return value if isinstance(value, str) and value in _SEVERITY_LABELS else None


def _status(value: object) -> dict[str, str]:
    text = str(value) if value is not None else "—"
    symbol, css, word, _ = STATUS.get(text, ("?", "unknown", text, text))
    return {"symbol": symbol, "css": css, "text": word}


def _groups(ids: list[str]) -> list[tuple[str, list[str]]]:
    """The matrix's column groups holding the checks a report has, in their order."""
    groups = [(title, [c for c in checks if c in ids]) for title, checks in CHECK_GROUPS]
    other = [c for c in ids if c not in CHECK_ORDER]
    groups.append((OTHER_GROUP, other))
    shown: list[tuple[str, list[str]]] = []
    budget = MAX_MATRIX_CHECKS
    for title, checks in groups:
        checks = checks[: max(budget, 0)]
        budget -= len(checks)
        for start in range(0, len(checks), MAX_GROUP_COLUMNS):
            part = f" ({start // MAX_GROUP_COLUMNS + 1})" if len(checks) > MAX_GROUP_COLUMNS else ""
            shown.append((title + part, checks[start : start + MAX_GROUP_COLUMNS]))
    return shown


def _verdict_text(value: object) -> str:
    text = text_of(value)
    return VERDICT_WORDS.get(text, text)


def probe_view(targets: list[dict[str, Any]]) -> dict[str, Any]:
    ids: list[str] = []
    for target in targets[:MAX_MATRIX_TARGETS]:
        for check in rows_of(target.get("checks")):
            check_id = str(check.get("id"))
            if check_id not in ids:
                ids.append(check_id)
    groups = _groups(ids)

    verdicts = []
    matrices: list[dict[str, Any]] = [
        {"title": title, "columns": columns, "rows": []} for title, columns in groups
    ]
    details = []
    for number, target in enumerate(targets, 1):
        verdict = as_dict(target.get("verdict"))
        checks = {str(c.get("id")): c for c in rows_of(target.get("checks"))}
        anchor = f"target-{number}"
        label = text_of(target.get("target") or target.get("address"))
        severity = _severity_label(target.get("severity"))
        if number <= MAX_MATRIX_TARGETS:
            detailed = number <= MAX_TARGET_DETAILS
            verdicts.append(
                {
                    "anchor": anchor,
                    "label": label,
                    "strict": _verdict_text(verdict.get("strict")),
                    "strict_css": {"accept": "pass", "refuse": "fail"}.get(
                        str(verdict.get("strict")), "skip"
                    ),
                    "opportunistic": _verdict_text(verdict.get("opportunistic")),
                    "severity": severity,
                    "detailed": detailed,
                }
            )
            for matrix in matrices:
                matrix["rows"].append(
                    {
                        "anchor": anchor,
                        "label": label,
                        "detailed": detailed,
                        "cells": [
                            _status(checks[c].get("status")) if c in checks else None
                            for c in matrix["columns"]
                        ],
                    }
                )
        if number <= MAX_TARGET_DETAILS:
            reasons = as_list(verdict.get("reasons"))
            details.append(
                {
                    "anchor": anchor,
                    "label": label,
                    "where": host_port(text_of(target.get("address")), text_of(target.get("port"))),
                    "name": text_of(target.get("name")) if target.get("name") else "—",
                    "severity": severity,
                    "strict": _verdict_text(verdict.get("strict")),
                    "strict_css": {"accept": "pass", "refuse": "fail"}.get(
                        str(verdict.get("strict")), "skip"
                    ),
                    "opportunistic": _verdict_text(verdict.get("opportunistic")),
                    "reasons": [text_of(r) for r in reasons[:MAX_LIST_ITEMS]],
                    "checks": [
                        {
                            "id": text_of(c.get("id")),
                            "title": text_of(c.get("title")) if c.get("title") else "",
                            "status": _status(c.get("status")),
                            "level": text_of(c.get("level")),
                            "rfc": text_of(c.get("rfc")),
                            "reason": text_of(c.get("error_reason"))
                            if c.get("error_reason")
                            else "",
                            "evidence": evidence_rows(c.get("evidence")),
                        }
                        for c in rows_of(target.get("checks"))[:60]
                    ],
                }
            )
    return {
        "verdicts": verdicts,
        "matrices": matrices,
        "details": details,
        "total": len(targets),
        "matrix_more": max(len(targets) - MAX_MATRIX_TARGETS, 0),
        "details_more": max(len(targets) - MAX_TARGET_DETAILS, 0),
        "legend": [(symbol, css, explained) for symbol, css, _, explained in STATUS.values()],
    }


def completeness_view(report: AuditReport) -> dict[str, Any] | None:
    """The banner at the top of a report whose inputs were not all read whole (or some
    skipped): None when every input was."""
    block = report.completeness()
    warnings = [text_of(line) for line in as_list(block.get("warnings"))]
    skipped = [text_of(line) for line in as_list(block.get("skipped"))]
    if not warnings and not skipped:
        return None
    counts = as_dict(block.get("inputs"))
    parts = [
        f"{as_int(counts.get(status))} {status}"
        for status in ("unreadable", "partial")
        if as_int(counts.get(status))
    ]
    read = sum(as_int(n) for status, n in counts.items() if status != "skipped")
    headline = (
        f"Incomplete audit: {' and '.join(parts)} of {read} {plural(read, 'input', 'inputs')}."
        if parts
        else ""
    )
    return {
        "headline": headline,
        "warnings": warnings[:MAX_LIST_ITEMS],
        "warnings_more": max(len(warnings) - MAX_LIST_ITEMS, 0),
        "skipped": skipped[:MAX_LIST_ITEMS],
        "skipped_more": max(len(skipped) - MAX_LIST_ITEMS, 0),
    }


def inputs_view(report: AuditReport) -> list[dict[str, Any]]:
    out = []
    for item in report.inputs[:MAX_ROWS]:
        if not isinstance(item, dict):
            continue
        warnings = as_list(item.get("warnings"))
        judged = input_completeness(item)
        out.append(
            {
                "path": item.get("path"),
                "sha256": item.get("sha256") or "—",
                "format": item.get("format") or "—",
                "packets": f"{as_int(item.get('packets')):,}",
                "first": fmt_ts(item.get("first_ts")),
                "last": fmt_ts(item.get("last_ts")),
                "span": fmt_span(item.get("span_s")),
                "truncated_at": item.get("truncated_at"),
                "status": judged.status,
                "status_reason": judged.reason or "",
                "warnings": [text_of(w) for w in warnings[:MAX_LIST_ITEMS]],
            }
        )
    return out


LOCAL_COLUMNS = ("client", "service", "qname", "qnames", "queries", "first_ts", "last_ts")
SNI_COLUMNS = ("client", "sni", "server", "port", "connections", "known_resolver", "provider")
DOH_COLUMNS = (
    "client",
    "server",
    "protocol",
    "provider",
    "sni",
    "via",
    "alpn",
    "connections",
    "packets",
    "first_ts",
    "last_ts",
)
