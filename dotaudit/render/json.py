"""The machine contract: the whole AuditReport as one JSON object (schema/report.schema.json)."""

from __future__ import annotations

import json

from dotaudit.model.report import AuditReport

_JOIN_EVERY = 8192
"""Encoder pieces joined at a time. ``json.dumps`` with an indent keeps every piece (a few
bytes each, about a hundred bytes of memory apiece) until the end: for a large report
that is many times the text itself."""


def render_json(report: AuditReport) -> str:
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False)
    parts: list[str] = []
    pieces: list[str] = []
    for piece in encoder.iterencode(report.to_dict()):
        pieces.append(piece)
        if len(pieces) >= _JOIN_EVERY:
            parts.append("".join(pieces))
            pieces.clear()
    parts.append("".join(pieces))
    parts.append("\n")
    return "".join(parts)
