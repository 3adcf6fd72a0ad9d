"""The JSONL report (dotaudit/render/jsonl.py): one finding per line, and, first, one
line per input that was not read whole, so that a short stream is never a clean one."""

from __future__ import annotations

import json

from dotaudit.model.findings import make_finding
from dotaudit.model.report import REPORT_SCHEMA, AuditReport
from dotaudit.render.jsonl import render_jsonl


def report_of(*statuses: str) -> AuditReport:
    report = AuditReport(kind="analyze", generated_at="2026-01-01T00:00:00Z")
    report.findings = [make_finding("DA-LEAK-001", dedup_key="k")]
    report.inputs = [
        {"path": f"{status}.pcap", "packets": 2, "status": status, "status_reason": "why",
         "stopped_at": 99 if status == "partial" else None, "undecoded": {"x": 1}}
        for status in statuses
    ]  # fmt: skip
    return report


def test_a_complete_audit_is_findings_only() -> None:
    lines = [json.loads(line) for line in render_jsonl(report_of("complete")).splitlines()]
    assert [line["record"] for line in lines] == ["finding"]
    assert lines[0]["id"] == "DA-LEAK-001" and lines[0]["schema"] == REPORT_SCHEMA


def test_inputs_not_read_whole_come_first() -> None:
    text = render_jsonl(report_of("complete", "unreadable", "partial", "skipped"))
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["record"], line.get("path")) for line in lines] == [
        ("input", "unreadable.pcap"),
        ("input", "partial.pcap"),
        ("input", "skipped.pcap"),
        ("finding", None),
    ]
    assert lines[1] | {"generated_at": None} == {
        "record": "input",
        "path": "partial.pcap",
        "status": "partial",
        "status_reason": "why",
        "stopped_at": 99,
        "packets": 2,
        "undecoded": {"x": 1},
        "schema": REPORT_SCHEMA,
        "kind": "analyze",
        "generated_at": None,
    }


def test_an_unreadable_audit_without_findings_is_not_an_empty_stream() -> None:
    report = report_of("unreadable")
    report.findings = []
    assert [json.loads(line)["status"] for line in render_jsonl(report).splitlines()] == [
        "unreadable"
    ]
