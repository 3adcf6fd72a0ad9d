"""A readable summary for terminals (and for stderr by default)."""

from __future__ import annotations

from typing import Any

from dotaudit.model.fix_first import FixFirst
from dotaudit.model.report import AuditReport

MAX_FINDINGS = 40
MAX_FIX_GROUPS = 10
MAX_FIX_SUBJECTS = 6


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


def render_text(report: AuditReport) -> str:
    first = report.fix_first()
    summary = report.summary(first)
    lines = [f"dotaudit {report.tool_version} — {report.kind} report"]
    if report.redaction is not None:
        block: dict[str, Any] = report.redaction if isinstance(report.redaction, dict) else {}
        names = _mapping(block.get("names"))
        addresses = _mapping(block.get("addresses"))
        lines.append(
            f"REDACTED: key fingerprint {_printable(block.get('key_fingerprint'))}, names "
            f"{_printable(names.get('level'))}, resolvers {_printable(addresses.get('resolvers'))}"
        )
    for item in report.inputs:
        span = item.get("span_s")
        lines.append(
            f"  input {_printable(item.get('path'))}: {item.get('packets', 0)} packets"
            + (f", {span:.1f} s" if isinstance(span, int | float) else "")
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
            f"({summary['dot_established']} established); fallbacks: {summary['fallback_events']}"
        )
    if report.kind != "probe":
        lines.extend(_fix_first(first))
    if summary["anomalies"]:
        top = sorted(report.anomalies.items(), key=lambda kv: -kv[1])[:5]
        lines.append(
            f"anomalies: {summary['anomalies']} (" + ", ".join(f"{k} {v}" for k, v in top) + ")"
        )
    for target in report.sections.get("targets", []):
        verdict = target.get("verdict") or {}
        checks = target.get("checks") or []
        severity = target.get("severity")
        statuses: dict[str, int] = {}
        for check in checks:
            status = str(check.get("status"))
            statuses[status] = statuses.get(status, 0) + 1
        lines.append(
            f"target {_printable(target.get('target'))} ({_printable(target.get('address'))} "
            f"port {target.get('port')}): strict {verdict.get('strict')}, opportunistic "
            f"{verdict.get('opportunistic')}; checks "
            + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
            + (f"; counts as {_printable(severity)}" if isinstance(severity, str) else "")
        )
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
