"""One finding per line, for SIEMs; each line names the report it came from."""

from __future__ import annotations

import json

from dotaudit.model.report import REPORT_SCHEMA, AuditReport


def render_jsonl(report: AuditReport) -> str:
    lines = []
    for finding in report.sorted_findings():
        record = finding.to_dict()
        record["schema"] = REPORT_SCHEMA
        record["kind"] = report.kind
        record["generated_at"] = report.generated_at
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    return "".join(line + "\n" for line in lines)
