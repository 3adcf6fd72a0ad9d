"""A readable summary for terminals (and for stderr by default)."""

from __future__ import annotations

from typing import Any

from dotaudit.model.report import AuditReport

MAX_FINDINGS = 40


def _printable(text: object) -> str:
    """Terminal-safe text: attacker-controlled names must not carry escape sequences."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def render_text(report: AuditReport) -> str:
    summary = report.summary()
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
            f"{summary['plaintext_clients']} clients; DoT sessions: {summary['dot_sessions']} "
            f"({summary['dot_established']} established); fallbacks: {summary['fallback_events']}"
        )
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
