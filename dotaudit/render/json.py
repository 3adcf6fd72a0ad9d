"""The machine contract: the whole AuditReport as one JSON object (schema/report.schema.json)."""

from __future__ import annotations

import json

from dotaudit.model.report import AuditReport


def render_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
