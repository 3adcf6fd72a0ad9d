"""The HTML audit report: one self-contained file an admin can attach to a ticket.

``render_html`` turns an ``AuditReport`` into a view model (plain dicts of already
formatted values) and renders ``templates/report.html.j2`` with autoescaping on. Every
value from the report goes through ``safe_text.neutral`` (jinja2 ``finalize``); the only
Markup is generated here from numbers (SVG charts) or by ``neutral`` itself. Long tables
are capped: the JSON report keeps everything.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from dotaudit.model.coerce import as_dict, as_int, as_str, rows_of
from dotaudit.model.evidence import evidence_name
from dotaudit.model.findings import Finding
from dotaudit.model.report import AuditReport, coerce_report
from dotaudit.render import svg
from dotaudit.render.html_format import (
    MAX_ROWS,
    MAX_TOP,
    fmt_ts,
    generic_table,
    plural,
    redaction_view,
    text_of,
    words,
)
from dotaudit.render.html_network import network_view
from dotaudit.render.html_sections import (
    DOH_COLUMNS,
    LOCAL_COLUMNS,
    SNI_COLUMNS,
    certificates_view,
    completeness_view,
    dot_view,
    histograms,
    inputs_view,
    padding_of,
    plaintext_view,
    probe_view,
    timeline,
)
from dotaudit.render.probe_evidence import probe_setting_rows
from dotaudit.render.safe_text import finalize, neutral

MAX_DETAILED_FINDINGS = 120
MAX_REMEDIATION = 1200
"""Characters of remediation shown: ours are a few sentences, often naming the server."""
MAX_LISTED_FINDINGS = 400

SEVERITIES = ("high", "medium", "low", "info")

FAILURE_PHRASE = {
    "syn_unanswered": "after port 853 was dropped",
    "reset": "after port 853 was reset",
    "reset_in_handshake": "after a reset during the TLS handshake",
    "icmp_rejected": "after port 853 was rejected by ICMP",
    "tls_alert": "after a TLS alert",
    "handshake_incomplete": "after an incomplete TLS handshake",
    "aborted_after_server_hello": "after the TLS handshake was aborted",
}

_RFC_REF = re.compile(r"RFC \d{3,5}(?: §[\d.]+)?|BCP \d+")
_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")

# -- findings ------------------------------------------------------------------------


def finding_anchor(finding: Finding, used: set[str]) -> str:
    """Stable across renders of the same finding: the ID plus a hash of its dedup key."""
    digest = hashlib.sha256(finding.dedup_key.encode("utf-8", "replace")).hexdigest()[:10]
    base = _ANCHOR_UNSAFE.sub("_", finding.id)[:40] + "-" + digest
    anchor, n = base, 1
    while anchor in used:
        n += 1
        anchor = f"{base}-{n}"
    used.add(anchor)
    return anchor


class EvidenceLinks:
    """Relative links from the HTML file to the ``--evidence`` pcaps that exist."""

    def __init__(self, directory: str, output: str | None) -> None:
        self.directory = Path(directory)
        base = Path(output).resolve().parent if output and output != "-" else Path.cwd()
        try:
            relative = Path(self.directory.resolve()).relative_to(base)
            parts = relative.parts
        except ValueError:
            import os

            parts = Path(os.path.relpath(self.directory.resolve(), base)).parts
        self.prefix = "/".join(quote(p, safe="") for p in parts if p not in ("", "."))

    def href(self, index: int, finding_id: str) -> str | None:
        name = evidence_name(index, finding_id)
        if not (self.directory / name).is_file():
            return None
        return (self.prefix + "/" if self.prefix else "") + quote(name, safe="")


def _rfc_refs(text: str) -> list[str]:
    refs: list[str] = []
    for ref in _RFC_REF.findall(text):
        if ref not in refs:
            refs.append(ref)
    return refs


def finding_view(
    finding: Finding, index: int, anchor: str, links: EvidenceLinks | None
) -> dict[str, Any]:
    evidence = [
        (str(k).replace("_", " "), text_of(v)) for k, v in list(finding.evidence.items())[:30]
    ]
    frames = list(finding.frames)
    return {
        "anchor": anchor,
        "index": index,
        "id": finding.id,
        "severity": finding.severity.label,
        "mark": svg.SEVERITY_MARK[finding.severity.label],
        "confidence": finding.confidence.label,
        "title": finding.title,
        "client": finding.client,
        "server": finding.server,
        "file": finding.file,
        "first": fmt_ts(finding.first_ts),
        "last": fmt_ts(finding.last_ts),
        "frames": text_of(frames) if frames else "—",
        "evidence": evidence,
        "remediation": neutral(finding.remediation, MAX_REMEDIATION),
        "refs": _rfc_refs(finding.remediation),
        "href": links.href(index, finding.id) if links else None,
    }


def findings_view(report: AuditReport, links: EvidenceLinks | None) -> dict[str, Any]:
    ordered = report.sorted_findings()
    used: set[str] = set()
    groups: dict[str, list[dict[str, Any]]] = {s: [] for s in SEVERITIES}
    listed: list[dict[str, Any]] = []
    totals = Counter(f.severity.label for f in ordered)
    for index, finding in enumerate(ordered, 1):
        anchor = finding_anchor(finding, used)
        if index <= MAX_DETAILED_FINDINGS:
            groups[finding.severity.label].append(finding_view(finding, index, anchor, links))
        elif len(listed) < MAX_LISTED_FINDINGS:
            listed.append(
                {
                    "anchor": anchor,
                    "id": finding.id,
                    "severity": finding.severity.label,
                    "mark": svg.SEVERITY_MARK[finding.severity.label],
                    "title": finding.title,
                    "client": finding.client,
                    "server": finding.server,
                }
            )
    return {
        "groups": [
            {"label": s, "mark": svg.SEVERITY_MARK[s], "cards": groups[s], "total": totals[s]}
            for s in SEVERITIES
            if groups[s]
        ],
        "listed": listed,
        "unlisted": max(len(ordered) - MAX_DETAILED_FINDINGS - len(listed), 0),
        "total": len(ordered),
    }


# -- summary sentence ------------------------------------------------------------------


def _clients(report: AuditReport) -> set[str]:
    clients: set[str] = set()
    for name in ("plaintext_dns", "dot_sessions", "fallback_events", "doh_doq", "sni_inventory"):
        for row in rows_of(report.sections.get(name)):
            client = as_str(row.get("client"))
            if client and not (name == "plaintext_dns" and row.get("local_stub")):
                clients.add(client)
    return clients


def analyze_summary(report: AuditReport) -> list[str]:
    summary = report.summary()
    sentences: list[str] = []
    total_clients = len(_clients(report))
    plain_clients = int(summary["plaintext_clients"])
    plain_queries = int(summary["plaintext_queries"])
    fallbacks = rows_of(report.sections.get("fallback_events"))
    if plain_queries:
        sentence = (
            f"{plain_clients} of {total_clients} {plural(total_clients, 'client')} sent "
            f"{plain_queries:,} DNS {plural(plain_queries, 'query', 'queries')} in plaintext"
        )
    else:
        sentence = (
            f"No client sent DNS queries in plaintext over the network ({total_clients} "
            f"{plural(total_clients, 'client')} seen)"
        )
    if fallbacks:
        by_client: dict[str, str] = {}
        for row in fallbacks:
            by_client.setdefault(str(row.get("client")), str(row.get("failure")))
        modes = Counter(by_client.values())
        n = len(by_client)
        if len(modes) == 1:
            mode = next(iter(modes))
            phrase = FAILURE_PHRASE.get(mode, "after a failed DoT attempt")
            sentence += f"; {words(n)} fell back from DoT to plaintext {phrase}"
        else:
            parts = [
                f"{words(count)} {FAILURE_PHRASE.get(mode, 'after a failed DoT attempt')}"
                for mode, count in sorted(modes.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
            sentence += f"; {words(n)} fell back from DoT to plaintext: " + ", ".join(parts)
    sentences.append(sentence + ".")
    sessions = rows_of(report.sections.get("dot_sessions"))
    if sessions:
        established = int(summary["dot_established"])
        unpadded = sum(1 for s in sessions if padding_of(s).get("verdict") == "unpadded")
        sentence = (
            f"{len(sessions):,} DoT {plural(len(sessions), 'session')} seen, "
            f"{established:,} established"
        )
        if unpadded:
            sentence += (
                f"; {unpadded:,} {plural(unpadded, 'was', 'were')} not padded, so record sizes "
                "can reveal the names asked"
            )
        sentences.append(sentence + ".")
    encrypted_other = rows_of(report.sections.get("doh_doq"))
    if encrypted_other:
        kinds = sorted({str(r.get("protocol", "")).upper() for r in encrypted_other} - {""})
        doh_clients = {str(r.get("client")) for r in encrypted_other}
        sentences.append(
            f"{words(len(doh_clients)).capitalize()} {plural(len(doh_clients), 'client')} "
            f"used {' and '.join(kinds) or 'DoH/DoQ'}."
        )
    return sentences


def probe_summary(targets: list[dict[str, Any]]) -> list[str]:
    if not targets:
        return []
    verdicts = [as_dict(t.get("verdict")) for t in targets]
    accept = sum(1 for v in verdicts if v.get("strict") == "accept")
    opportunistic = Counter(str(v.get("opportunistic")) for v in verdicts)
    sentence = (
        f"{accept} of {len(targets)} {plural(len(targets), 'resolver')} would be accepted by a "
        "strict-mode client (RFC 8310)"
    )
    untested = sum(1 for v in verdicts if v.get("strict") == "not-tested")
    if untested:
        sentence += f"; for {words(untested)} that was not tested"
    if opportunistic.get("plaintext-fallback"):
        n = opportunistic["plaintext-fallback"]
        sentence += f"; at {words(n)} an opportunistic client would fall back to plaintext"
    if opportunistic.get("intercepted"):
        n = opportunistic["intercepted"]
        sentence += f"; {words(n)} {plural(n, 'looks', 'look')} intercepted"
    return [sentence + "."]


def build_view(report: AuditReport, links: EvidenceLinks | None = None) -> dict[str, Any]:
    sections = {name: rows_of(rows) for name, rows in report.sections.items()}
    targets = sections.get("targets", [])
    counts = report.counts_by_severity()
    network = network_view(sections)
    summary_sentences = (
        (analyze_summary(report) if report.kind != "probe" or not targets else [])
        + probe_summary(targets)
        + (network["summary"] if network else [])
    )
    highest = report.highest_severity()
    anomalies = sorted(
        ((str(k), as_int(v)) for k, v in report.anomalies.items()), key=lambda kv: (-kv[1], kv[0])
    )
    policy = [(str(k).replace("_", " "), text_of(v)) for k, v in list(report.policy.items())[:30]]
    settings = list(report.probe_config.items()) + list(report.bulk.items())
    probe_settings = probe_setting_rows(settings[:30])
    has_capture = report.kind != "probe" or bool(report.inputs)
    return {
        "kind": report.kind,
        "title": {
            "analyze": "DNS privacy audit: capture analysis",
            "probe": "DNS privacy audit: DoT resolver probe",
        }.get(report.kind, "DNS privacy audit"),
        "generated_at": report.generated_at or "—",
        "redaction": redaction_view(report.redaction),
        "completeness": completeness_view(report),
        "version": report.tool_version or "unknown",
        "inputs": inputs_view(report),
        "inputs_more": max(len(report.inputs) - MAX_ROWS, 0),
        "packets": f"{as_int(report.summary()['packets']):,}",
        "policy": policy,
        "probe_settings": probe_settings,
        "counts": [(s, svg.SEVERITY_MARK[s], counts.get(s, 0)) for s in SEVERITIES],
        "severity_svg": svg.severity_bar(counts),
        "highest": highest.label if highest is not None else None,
        "summary": summary_sentences,
        "findings": findings_view(report, links),
        "has_capture": has_capture,
        "plaintext": plaintext_view(sections.get("plaintext_dns", [])),
        "plaintext_rows": len(sections.get("plaintext_dns", [])),
        "dot": dot_view(sections.get("dot_sessions", [])),
        "certificates": certificates_view(sections.get("dot_sessions", [])),
        "histograms": histograms(sections.get("dot_sessions", [])),
        "timeline": timeline(report),
        "sni": generic_table(sections.get("sni_inventory", []), SNI_COLUMNS),
        "doh": generic_table(sections.get("doh_doq", []), DOH_COLUMNS),
        "local": generic_table(sections.get("local_names", []), LOCAL_COLUMNS),
        "probe": probe_view(targets) if targets else None,
        "network": network,
        "anomalies": anomalies[:MAX_TOP],
        "anomalies_more": max(len(anomalies) - MAX_TOP, 0),
        "anomaly_total": sum(v for _, v in anomalies),
    }


_ENV: Environment | None = None


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = Environment(
            loader=PackageLoader("dotaudit.render", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            finalize=finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        _ENV.filters["neutral"] = neutral
    return _ENV


def render_html(
    report: AuditReport, *, evidence_dir: str | None = None, output: str | None = None
) -> str:
    """The whole report as one HTML document (UTF-8 text, no external references)."""
    links = EvidenceLinks(evidence_dir, output) if evidence_dir else None
    view = build_view(coerce_report(report), links)
    body = environment().get_template("report.html.j2").render(v=view)
    # Defence in depth: nothing unencodable (a lone surrogate) may reach the writer.
    return body.encode("utf-8", "replace").decode("utf-8")
