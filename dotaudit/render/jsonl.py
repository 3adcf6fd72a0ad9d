"""One finding per line, for SIEMs; each line names the report it came from.

Every line has a ``record`` field. ``"finding"`` lines are the findings. When an input
was not read whole (unreadable, partial) or was skipped, one ``"input"`` line per such
input comes first, so that an empty or short stream is never taken for a clean one:
consumers that want findings only keep the lines whose ``record`` is ``"finding"``
(lines written before this field existed were all findings).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from dotaudit.model.report import COMPLETE, REPORT_SCHEMA, AuditReport, input_completeness


def render_jsonl(report: AuditReport) -> str:
    return "".join(jsonl_lines(report))


def jsonl_lines(report: AuditReport) -> Iterator[str]:
    """The report's lines one at a time (a writer need not hold them all)."""
    envelope = {"schema": REPORT_SCHEMA, "kind": report.kind, "generated_at": report.generated_at}
    for item in report.inputs:
        if not isinstance(item, dict):
            continue
        judged = input_completeness(item)
        if judged.status == COMPLETE:
            continue
        yield _line(
            {
                "record": "input",
                "path": item.get("path"),
                "status": judged.status,
                "status_reason": judged.reason,
                "stopped_at": judged.stopped_at,
                "packets": item.get("packets", 0),
                "undecoded": item.get("undecoded", {}),
                **envelope,
            }
        )
    for finding in report.sorted_findings():
        record: dict[str, Any] = {"record": "finding", **finding.to_dict()}
        record.update(envelope)
        yield _line(record)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
