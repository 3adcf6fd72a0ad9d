"""A readable summary for terminals (and for stderr by default)."""

from __future__ import annotations

from typing import Any

from dotaudit.model.endpoint import host_port
from dotaudit.model.fix_first import FixFirst
from dotaudit.model.report import (
    COMPLETE,
    PARTIAL,
    SKIPPED,
    UNREADABLE,
    AuditReport,
    input_completeness,
)
from dotaudit.render.probe_evidence import evidence_line

MAX_FINDINGS = 40
MAX_FIX_GROUPS = 10
MAX_FIX_SUBJECTS = 6
MAX_TARGET_DETAILS = 50
"""Targets shown with their reasons and checks; the others get their one line."""
MAX_EVIDENCE_LINE = 400
STATUS_ORDER = ("fail", "error", "warn", "skip", "not-applicable")
"""The check results listed under a target, worst first (passes are only counted)."""


def _printable(text: object) -> str:
    """Terminal-safe text: attacker-controlled names must not carry escape sequences."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _fix_first(first: FixFirst) -> list[str]:
    """The machines and the "Fix first" groups, one line each (the HTML has the detail)."""
    if not first.machines:
        return []
    worst = first.by_severity()
    counted = ", ".join(f"{worst[s]} {s}" for s in ("high", "medium", "low") if worst[s])
    lines = [
        f"machines: {len(first.machines)} ({first.addresses} addresses); "
        f"{len(first.to_fix())} need a fix" + (f" ({counted})" if counted else "")
    ]
    for group in first.groups[:MAX_FIX_GROUPS]:
        who = ", ".join(_printable(item.subject) for item in group.items[:MAX_FIX_SUBJECTS])
        more = len(group.items) - MAX_FIX_SUBJECTS
        lines.append(
            f"  fix first [{group.severity.label.upper():6}] {_printable(group.sentence())}: "
            + who
            + (f" … ({more} more)" if more > 0 else "")
        )
    return lines


def completeness_lines(report: AuditReport) -> list[str]:
    """The top of the summary when not every input was read whole: a WARNING line per
    input unreadable or partial, a note per input skipped."""
    block = report.completeness()
    lines = []
    if block["status"] != COMPLETE:
        counts = block["inputs"]
        read = sum(n for status, n in counts.items() if status != SKIPPED)
        parts = [f"{counts[s]} {s}" for s in (UNREADABLE, PARTIAL) if counts[s]]
        lines.append(
            f"WARNING: incomplete audit: {' and '.join(parts)} of {read} "
            f"input{'s' if read != 1 else ''}; nothing found there does not mean nothing there"
        )
    lines += [f"WARNING: {_printable(line)}" for line in block["warnings"]]
    lines += [f"note: {_printable(line)}" for line in block["skipped"]]
    return lines


def render_text(report: AuditReport) -> str:
    first = report.fix_first()
    summary = report.summary(first)
    lines = [f"dotaudit {report.tool_version} — {report.kind} report"]
    lines += completeness_lines(report)
    if report.redaction is not None:
        block: dict[str, Any] = report.redaction if isinstance(report.redaction, dict) else {}
        names = _mapping(block.get("names"))
        addresses = _mapping(block.get("addresses"))
        lines.append(
            f"REDACTED: key fingerprint {_printable(block.get('key_fingerprint'))}, names "
            f"{_printable(names.get('level'))}, resolvers {_printable(addresses.get('resolvers'))}"
        )
    for item in report.inputs:
        if not isinstance(item, dict):
            continue
        judged = input_completeness(item)
        if judged.status == SKIPPED:
            lines.append(f"  input {_printable(item.get('path'))}: skipped")
            continue
        span = item.get("span_s")
        lines.append(
            f"  input {_printable(item.get('path'))}: {item.get('packets', 0)} packets"
            + (f", {span:.1f} s" if isinstance(span, int | float) else "")
            + ("" if judged.status == COMPLETE else f", {judged.status}")
            + _set_note(item.get("set"))
        )
    counts = summary["by_severity"]
    lines.append(
        "findings: "
        + ", ".join(f"{n} {label}" for label, n in counts.items())
        + f" ({summary['findings']} total)"
    )
    if report.kind == "analyze":
        lines.append(
            f"plaintext DNS: {summary['plaintext_queries']} queries from "
            f"{summary['plaintext_machines']} machines ({summary['plaintext_clients']} "
            f"addresses); DoT sessions: {summary['dot_sessions']} "
            f"({summary['dot_established']} established{_listed(summary)}); "
            f"fallbacks: {summary['fallback_events']}"
        )
    if report.kind != "probe":
        lines.extend(_fix_first(first))
    if summary["anomalies"]:
        top = sorted(report.anomalies.items(), key=lambda kv: -kv[1])[:5]
        lines.append(
            f"anomalies: {summary['anomalies']} (" + ", ".join(f"{k} {v}" for k, v in top) + ")"
        )
    for number, target in enumerate(report.sections.get("targets", [])):
        lines += _target_lines(_mapping(target), detailed=number < MAX_TARGET_DETAILS)
    lines += _network_lines(report)
    findings = report.sorted_findings()
    for finding in findings[:MAX_FINDINGS]:
        who = " -> ".join(_printable(x) for x in (finding.client, finding.server) if x)
        lines.append(
            f"  [{finding.severity.label.upper():6}] {finding.id} {_printable(finding.title)}"
            + (f" ({who})" if who else "")
        )
    if len(findings) > MAX_FINDINGS:
        lines.append(f"  … {len(findings) - MAX_FINDINGS} more in the JSON report")
    return "\n".join(lines) + "\n"


def _set_note(capture_set: object) -> str:
    """Which capture set an input was read in ("" for a file read alone)."""
    if not isinstance(capture_set, dict):
        return ""
    note = (
        f" (file {_printable(capture_set.get('member'))} of "
        f"{_printable(capture_set.get('members'))} of the set "
        f"{_printable(capture_set.get('name'))})"
    )
    duplicates = capture_set.get("duplicate_frames")
    if isinstance(duplicates, int) and not isinstance(duplicates, bool) and duplicates > 0:
        note += f", {duplicates} duplicate frames skipped"
    return note


def _target_lines(target: dict[str, Any], *, detailed: bool) -> list[str]:
    """A probed target: its verdicts on one line, then (``detailed``) why, and each check
    that did not pass with its reason and its evidence as labelled values."""
    verdict = _mapping(target.get("verdict"))
    checks = [_mapping(c) for c in target.get("checks") or [] if isinstance(c, dict)]
    severity = target.get("severity")
    statuses: dict[str, int] = {}
    for check in checks:
        status = str(check.get("status"))
        statuses[status] = statuses.get(status, 0) + 1
    where = host_port(str(target.get("address")), _printable(target.get("port")))
    lines = [
        f"target {_printable(target.get('target'))} ({_printable(where)}): strict "
        f"{_printable(verdict.get('strict'))}, opportunistic "
        f"{_printable(verdict.get('opportunistic'))}; checks "
        + ", ".join(f"{n} {_printable(status)}" for status, n in sorted(statuses.items()))
        + (f"; counts as {_printable(severity)}" if isinstance(severity, str) else "")
    ]
    if not detailed:
        return lines
    reasons = verdict.get("reasons")
    lines += [f"  {_printable(r)}" for r in (reasons if isinstance(reasons, list) else [])[:10]]
    rank = {status: n for n, status in enumerate(STATUS_ORDER)}
    shown = [c for c in checks if str(c.get("status")) in rank]
    for check in sorted(shown, key=lambda c: rank[str(c.get("status"))]):
        why = check.get("error_reason")
        lines.append(
            f"  [{_printable(check.get('status'))}] {_printable(check.get('id'))}"
            + (f": {_printable(why)}" if why else "")
        )
        if str(check.get("status")) in ("fail", "error", "warn"):
            seen = evidence_line(check.get("evidence"))
            if seen:
                cut = seen[:MAX_EVIDENCE_LINE] + ("…" if len(seen) > MAX_EVIDENCE_LINE else "")
                lines.append(f"      {_printable(cut)}")
    return lines


MAX_NETWORK_ROWS = 40


def _network_lines(report: AuditReport) -> list[str]:
    """What ``probe --discover`` found: resolvers, designations, the network verdict."""
    lines: list[str] = []
    for row in report.sections.get("system_resolvers", [])[:MAX_NETWORK_ROWS]:
        ddr = _mapping(row.get("ddr"))
        lines.append(
            f"resolver {_printable(row.get('address'))} ({_printable(row.get('role'))}, "
            f"{_printable(row.get('source'))}): DDR {_printable(ddr.get('status'))}"
        )
    for row in report.sections.get("designations", [])[:MAX_NETWORK_ROWS]:
        where = row.get("address") or ", ".join(str(a) for a in row.get("addresses") or []) or "-"
        lines.append(
            f"  {_printable(row.get('found_by'))} {_printable(row.get('target'))} "
            f"({_printable(row.get('protocol'))}) at {_printable(where)} via "
            f"{_printable(row.get('resolver'))}: {_printable(row.get('status'))}"
        )
    for row in report.sections.get("network", []):
        if row.get("verdict"):
            lines.append(f"network: {_printable(row.get('verdict'))}")
    return lines


def _listed(summary: dict[str, Any]) -> str:
    """How many sessions the table lists, when its cap left some out."""
    listed = summary.get("dot_sessions_listed", summary["dot_sessions"])
    return f"; {listed} listed" if listed < summary["dot_sessions"] else ""
