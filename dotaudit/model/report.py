"""The one envelope for ``analyze`` and ``probe`` results: ``AuditReport``.

Renderers take the whole report and never decide verdicts; the summary is computed
here once so that every format shows the same totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dotaudit import __version__
from dotaudit.model.findings import Finding, Severity

REPORT_SCHEMA = "dotaudit.report/1"

SECTION_NAMES = (
    "plaintext_dns",
    "dot_sessions",
    "fallback_events",
    "sni_inventory",
    "doh_doq",
    "local_names",
    "targets",
)


@dataclass
class AuditReport:
    kind: str
    """"analyze" or "probe"."""
    generated_at: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    anomalies: dict[str, int] = field(default_factory=dict)
    anomaly_samples: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    tool_version: str = __version__
    redaction: dict[str, Any] | None = None
    """Set on a redacted report: levels, key fingerprint, what was rewritten and kept."""

    def sorted_findings(self) -> list[Finding]:
        return sorted(
            self.findings,
            key=lambda f: (-f.severity, -f.confidence, f.id, f.first_ts or 0.0, f.dedup_key),
        )

    def counts_by_severity(self) -> dict[str, int]:
        counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for finding in self.findings:
            counts[finding.severity.label] += 1
        return counts

    def highest_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def summary(self) -> dict[str, Any]:
        # Reports may be re-read from JSON written by anyone: count defensively.
        plaintext = [r for r in self.sections.get("plaintext_dns", []) if isinstance(r, dict)]
        sessions = [r for r in self.sections.get("dot_sessions", []) if isinstance(r, dict)]
        network = [r for r in plaintext if not r.get("local_stub")]
        clients = {str(row.get("client")) for row in network}
        return {
            "findings": len(self.findings),
            "by_severity": self.counts_by_severity(),
            "packets": sum(_count(i.get("packets")) for i in self.inputs if isinstance(i, dict)),
            "plaintext_queries": sum(_count(row.get("queries")) for row in network),
            "plaintext_clients": len(clients),
            "dot_sessions": len(sessions),
            "dot_established": sum(1 for s in sessions if s.get("outcome") == "established"),
            "fallback_events": len(self.sections.get("fallback_events", [])),
            "anomalies": sum(self.anomalies.values()),
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "tool": {"name": "dotaudit", "version": self.tool_version},
            "kind": self.kind,
            "generated_at": self.generated_at,
            "inputs": self.inputs,
            "policy": self.policy,
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "anomalies": {
                "counts": dict(sorted(self.anomalies.items())),
                "samples": self.anomaly_samples,
            },
        }
        for name in SECTION_NAMES:
            if name in self.sections or name != "targets":
                out[name] = self.sections.get(name, [])
        if self.redaction is not None:
            out["redaction"] = self.redaction
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditReport:
        if data.get("schema") != REPORT_SCHEMA:
            raise ValueError(f"not a dotaudit report (schema {data.get('schema')!r})")
        anomalies = data.get("anomalies") or {}
        report = cls(
            kind=str(data.get("kind", "analyze")),
            generated_at=str(data.get("generated_at", "")),
            inputs=list(data.get("inputs") or []),
            findings=[Finding.from_dict(f) for f in data.get("findings") or []],
            anomalies=dict(anomalies.get("counts") or {}),
            anomaly_samples=list(anomalies.get("samples") or []),
            policy=dict(data.get("policy") or {}),
            tool_version=str((data.get("tool") or {}).get("version", "")),
        )
        redaction = data.get("redaction")
        if redaction is not None:
            if not isinstance(redaction, dict):
                raise ValueError("redaction is not an object")
            report.redaction = dict(redaction)
        for name in SECTION_NAMES:
            if name in data:
                report.sections[name] = list(data[name])
        return report


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
