"""The JSON report (dotaudit/render/json.py) is written in pieces: a large report is never
held whole as text, and the pieces make exactly the one JSON object of the report."""

from __future__ import annotations

import json

import pytest

from dotaudit.model.findings import make_finding
from dotaudit.model.report import AuditReport
from dotaudit.render import json as json_renderer
from dotaudit.render.json import json_chunks, render_json
from dotaudit.render.jsonl import jsonl_lines, render_jsonl


def report_with(findings: int) -> AuditReport:
    report = AuditReport(kind="analyze", generated_at="2026-01-01T00:00:00Z")
    report.findings = [
        make_finding("DA-LEAK-001", client=f"10.0.{i >> 8}.{i & 255}", dedup_key=f"k{i}")
        for i in range(findings)
    ]
    return report


def test_a_large_report_comes_in_several_pieces_that_make_its_json() -> None:
    report = report_with(300)
    pieces = list(json_chunks(report))
    assert len(pieces) > 1
    assert max(map(len, pieces)) < len("".join(pieces)) / 2
    assert json.loads("".join(pieces)) == json.loads(json.dumps(report.to_dict()))
    assert "".join(pieces) == render_json(report) and render_json(report).endswith("}\n")


def test_a_small_report_is_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_renderer, "_JOIN_EVERY", 10**9)
    assert len(list(json_chunks(report_with(3)))) == 1


def test_jsonl_is_one_piece_per_line() -> None:
    report = report_with(5)
    lines = list(jsonl_lines(report))
    assert len(lines) == 5 and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert "".join(lines) == render_jsonl(report)
