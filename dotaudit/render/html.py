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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from dotaudit.model.coerce import as_dict, as_int, rows_of
from dotaudit.model.evidence import evidence_name
from dotaudit.model.findings import Finding, Severity
from dotaudit.model.fix_first import FixFirst
from dotaudit.model.report import AuditReport, coerce_report
from dotaudit.render import labels, svg
from dotaudit.render.glossary import GLOSSARY, TermLinker, code_pieces
from dotaudit.render.html_format import (
    MAX_ROWS,
    MAX_TOP,
    Table,
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
MAX_WORKING = 400
"""Info findings listed under "What is working"; the JSON report has all of them."""
MAX_FIX_ITEMS = 50
"""Machines listed per "Fix first" group."""
MAX_MACHINE_ROWS = 200

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


def evidence_rows(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """A finding's evidence as labelled rows with units (``delay_s`` -> "plaintext began")."""
    return [
        {
            "label": labels.label(key),
            "value": labels.value(key, item),
            "raw": str(key) in labels.RAW_VALUES,
        }
        for key, item in list(evidence.items())[:30]
    ]


@dataclass
class Ref:
    """Where a finding is in the HTML: its anchor and number."""

    anchor: str
    index: int
    id: str
    title: str


def finding_view(
    finding: Finding,
    index: int,
    anchor: str,
    links: EvidenceLinks | None,
    refs: dict[str, Ref] | None = None,
) -> dict[str, Any]:
    evidence = evidence_rows(finding.evidence)
    frames = list(finding.frames)
    related = [refs[key] for key in finding.related if refs and key in refs][:20]
    capture = finding.file
    frames_text = text_of(frames) if frames else "—"
    if finding.frames_by_file:  # a capture set: the frames of each of its files
        capture = ", ".join(file for file, _ in finding.frames_by_file)
        frames_text = "; ".join(
            f"{file}: {text_of(list(numbers))}" for file, numbers in finding.frames_by_file
        )
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
        "file": capture,
        "first": fmt_ts(finding.first_ts),
        "last": fmt_ts(finding.last_ts),
        "frames": frames_text,
        "evidence": evidence,
        "remediation": neutral(finding.remediation, MAX_REMEDIATION),
        "refs": _rfc_refs(finding.remediation),
        "href": links.href(index, finding.id) if links else None,
        "related": related,
    }


def finding_refs(ordered: list[Finding]) -> tuple[dict[str, Ref], list[str]]:
    """Every finding's anchor and number (report order), by dedup key, and the anchors in
    order."""
    used: set[str] = set()
    refs: dict[str, Ref] = {}
    anchors: list[str] = []
    for index, finding in enumerate(ordered, 1):
        anchor = finding_anchor(finding, used)
        anchors.append(anchor)
        refs.setdefault(finding.dedup_key, Ref(anchor, index, finding.id, finding.title))
    return refs, anchors


def findings_view(
    report: AuditReport, links: EvidenceLinks | None, first: FixFirst | None = None
) -> dict[str, Any]:
    """Cards for findings of severity low and above; info findings ("DoT session
    established") folded into one "What is working" list, without remediation."""
    ordered = report.sorted_findings()
    refs, anchors = finding_refs(ordered)
    index_of = None if first is None else _machine_labels(first)
    groups: dict[str, list[dict[str, Any]]] = {s: [] for s in SEVERITIES}
    listed: list[dict[str, Any]] = []
    working: list[dict[str, Any]] = []
    working_kinds: Counter[str] = Counter()
    totals = Counter(f.severity.label for f in ordered)
    cards = 0
    for index, finding in enumerate(ordered, 1):
        anchor = anchors[index - 1]
        machine = index_of.get(finding.client or "") if index_of else None
        if finding.severity == Severity.INFO:
            working_kinds[finding.title] += 1
            if len(working) < MAX_WORKING:
                working.append(
                    {
                        "anchor": anchor,
                        "index": index,
                        "id": finding.id,
                        "title": finding.title,
                        "client": finding.client,
                        "machine": machine,
                        "server": finding.server,
                        "detail": _working_detail(finding),
                        "href": links.href(index, finding.id) if links else None,
                    }
                )
            continue
        if cards < MAX_DETAILED_FINDINGS:
            cards += 1
            card = finding_view(finding, index, anchor, links, refs)
            card["machine"] = machine
            groups[finding.severity.label].append(card)
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
    problems = sum(1 for f in ordered if f.severity != Severity.INFO)
    return {
        "groups": [
            {"label": s, "mark": svg.SEVERITY_MARK[s], "cards": groups[s], "total": totals[s]}
            for s in SEVERITIES
            if groups[s]
        ],
        "listed": listed,
        "unlisted": max(problems - cards - len(listed), 0),
        "working": working,
        "working_total": totals["info"],
        "working_more": max(totals["info"] - len(working), 0),
        "working_kinds": sorted(working_kinds.items(), key=lambda kv: (-kv[1], kv[0])),
        "total": len(ordered),
        "problems": problems,
    }


def _machine_labels(first: FixFirst) -> dict[str, str]:
    """Address -> how the report names its machine, for addresses of machines with
    several addresses (a lone address names itself)."""
    out: dict[str, str] = {}
    for machine in first.machines:
        if len(machine.addresses) > 1 or machine.hostnames:
            others = [a for a in machine.addresses]
            text = machine.label + " (" + ", ".join(others) + ")"
            for address in machine.addresses:
                out[address] = text
    return out


def _working_detail(finding: Finding) -> str:
    evidence = finding.evidence
    parts = []
    versions = evidence.get("versions")
    if isinstance(versions, dict) and versions:
        parts.append(", ".join(str(v) for v in versions))
    sni = evidence.get("sni")
    if isinstance(sni, list):
        parts.append("SNI " + ", ".join(str(n) for n in sni[:3]) if sni else "no SNI")
    verdict = evidence.get("verdict")
    if isinstance(verdict, str):
        parts.append(labels.words_of(verdict))
    provider = evidence.get("provider")
    if isinstance(provider, str) and provider:
        parts.append(provider)
    return "; ".join(parts)


# -- fix first -------------------------------------------------------------------------


def fix_first_view(
    report: AuditReport, first: FixFirst, refs: dict[str, Ref]
) -> dict[str, Any] | None:
    """The "Fix first" section: groups by action, each machine with how it was grouped."""
    if report.kind == "probe" or not (first.machines or first.groups):
        return None
    groups = []
    for group in first.groups:
        items = []
        for item in group.items[:MAX_FIX_ITEMS]:
            machine = item.machine
            items.append(
                {
                    "label": item.subject,
                    "addresses": [
                        a for a in (machine.addresses if machine else []) if a != item.subject
                    ],
                    "basis": machine.basis() if machine else "",
                    "details": item.details(),
                    "refs": [refs[f.dedup_key] for f in item.findings if f.dedup_key in refs],
                    "folded": [refs[f.dedup_key] for f in item.folded if f.dedup_key in refs],
                }
            )
        label = group.severity.label
        groups.append(
            {
                "severity": label,
                "mark": svg.SEVERITY_MARK[label],
                "sentence": group.sentence(),
                "fix": code_pieces(group.action.fix),
                "members": items,
                "more": max(len(group.items) - MAX_FIX_ITEMS, 0),
            }
        )
    machines = []
    for machine in first.machines[:MAX_MACHINE_ROWS]:
        machines.append(
            [
                machine.label,
                ", ".join(machine.addresses),
                ", ".join(machine.macs) or "—",
                machine.basis(),
            ]
        )
    severity = first.by_severity()
    return {
        "machines": len(first.machines),
        "addresses": first.addresses,
        "captures": len(report.inputs),
        "to_fix": len(first.to_fix()),
        "groups": groups,
        "grouped": sum(1 for m in first.machines if len(m.addresses) > 1),
        "machine_table": Table(
            ["machine", "addresses", "Ethernet address", "how the addresses were grouped"],
            machines,
            len(first.machines),
        ),
        "working": severity.get("info", 0) + severity.get("none", 0),
    }


# -- summary sentence ------------------------------------------------------------------


def analyze_summary(
    report: AuditReport, first: FixFirst | None = None, summary: dict[str, Any] | None = None
) -> list[str]:
    """The verdict in sentences, counting machines (addresses as detail)."""
    first = first or report.fix_first()
    summary = summary or report.summary(first)
    sentences: list[str] = []
    machine_of = {a: id(m) for m in first.machines for a in m.addresses}
    total = len(first.machines)
    plain_clients = {
        str(row.get("client"))
        for row in rows_of(report.sections.get("plaintext_dns"))
        if not row.get("local_stub")
    }
    plain_machines = {machine_of.get(c, c) for c in plain_clients}
    plain_queries = int(summary["plaintext_queries"])
    fallbacks = rows_of(report.sections.get("fallback_events"))
    if plain_queries:
        sentence = (
            f"{len(plain_machines)} of {total} {plural(total, 'machine')} sent "
            f"{plain_queries:,} DNS {plural(plain_queries, 'query', 'queries')} in plaintext"
        )
        if first.addresses != total:
            sentence += (
                f" (from {len(plain_clients)} of {first.addresses} "
                f"{plural(first.addresses, 'address', 'addresses')})"
            )
    else:
        sentence = (
            f"No machine sent DNS queries in plaintext over the network ({total} "
            f"{plural(total, 'machine')} seen)"
        )
    if fallbacks:
        by_machine: dict[object, str] = {}
        for row in fallbacks:
            client = str(row.get("client"))
            by_machine.setdefault(machine_of.get(client, client), str(row.get("failure")))
        modes = Counter(by_machine.values())
        n = len(by_machine)
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
        total = max(int(summary["dot_sessions"]), len(sessions))
        established = int(summary["dot_established"])
        unpadded = sum(1 for s in sessions if padding_of(s).get("verdict") == "unpadded")
        sentence = f"{total:,} DoT {plural(total, 'session')} seen, {established:,} established"
        if len(sessions) < total:
            sentence += f" ({len(sessions):,} listed below)"
        if unpadded:
            among = " of those listed" if len(sessions) < total else ""
            sentence += (
                f"; {unpadded:,}{among} {plural(unpadded, 'was', 'were')} not padded, so "
                "record sizes can reveal the names asked"
            )
        sentences.append(sentence + ".")
    encrypted_other = rows_of(report.sections.get("doh_doq"))
    if encrypted_other:
        names = {"doh": "DoH", "doq": "DoQ"}
        kinds = sorted({str(r.get("protocol", "")) for r in encrypted_other} - {""})
        used = " and ".join(names.get(k, k.upper()) for k in kinds) or "DoH/DoQ"
        users = {machine_of.get(c, c) for c in (str(r.get("client")) for r in encrypted_other)}
        sentences.append(
            f"{words(len(users)).capitalize()} {plural(len(users), 'machine')} used {used}."
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
    first = report.fix_first()
    summary = report.summary(first)
    by_machine = bool(first.machines) and report.kind != "probe"
    network = network_view(sections)
    summary_sentences = (
        (analyze_summary(report, first, summary) if report.kind != "probe" or not targets else [])
        + probe_summary(targets)
        + (network["summary"] if network else [])
    )
    highest = report.highest_severity()
    anomalies = sorted(
        ((str(k), as_int(v)) for k, v in report.anomalies.items()), key=lambda kv: (-kv[1], kv[0])
    )
    policy = [(labels.label(k), labels.value(k, v)) for k, v in list(report.policy.items())[:30]]
    settings = list(report.probe_config.items()) + list(report.bulk.items())
    probe_settings = probe_setting_rows(settings[:30])
    has_capture = report.kind != "probe" or bool(report.inputs)
    refs, _ = finding_refs(report.sorted_findings())
    tiles: list[tuple[str, str, int, str, int | None]]
    if by_machine:
        machine_counts = first.by_severity()
        tiles = [
            (s, svg.SEVERITY_MARK[s], machine_counts.get(s, 0), "machine", counts.get(s, 0))
            for s in SEVERITIES
        ]
        chart = svg.severity_bar({s: machine_counts.get(s, 0) for s in SEVERITIES}, "machines")
    else:
        tiles = [(s, svg.SEVERITY_MARK[s], counts.get(s, 0), "finding", None) for s in SEVERITIES]
        chart = svg.severity_bar(counts)
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
        "packets": f"{as_int(summary['packets']):,}",
        "policy": policy,
        "probe_settings": probe_settings,
        "by_machine": by_machine,
        "counts": tiles,
        "machines": len(first.machines),
        "addresses": first.addresses,
        "severity_svg": chart,
        "highest": highest.label if highest is not None else None,
        "summary": summary_sentences,
        "fix_first": fix_first_view(report, first, refs),
        "findings": findings_view(report, links, first),
        "has_capture": has_capture,
        "plaintext": plaintext_view(sections.get("plaintext_dns", [])),
        "plaintext_rows": len(sections.get("plaintext_dns", [])),
        "dot": dot_view(sections.get("dot_sessions", [])),
        "certificates": certificates_view(sections.get("dot_sessions", [])),
        "histograms": histograms(sections.get("dot_sessions", [])),
        "timeline": timeline(report),
        "sni": generic_table(
            sections.get("sni_inventory", []), SNI_COLUMNS, label=labels.label, value=labels.value
        ),
        "doh": generic_table(
            sections.get("doh_doq", []), DOH_COLUMNS, label=labels.label, value=labels.value
        ),
        "local": generic_table(
            sections.get("local_names", []), LOCAL_COLUMNS, label=labels.label, value=labels.value
        ),
        "probe": probe_view(targets) if targets else None,
        "network": network,
        "anomalies": anomalies[:MAX_TOP],
        "anomalies_more": max(len(anomalies) - MAX_TOP, 0),
        "anomaly_total": sum(v for _, v in anomalies),
        "glossary": GLOSSARY,
        "terms": TermLinker(),
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
