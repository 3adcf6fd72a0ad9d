"""The machine contract: the whole AuditReport as one JSON object (schema/report.schema.json)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from dotaudit.model.report import AuditReport

_JOIN_EVERY = 8192
"""Encoder pieces joined at a time. ``json.dumps`` with an indent keeps every piece (a few
bytes each, about a hundred bytes of memory apiece) until the end: for a large report
that is many times the text itself."""


def render_json(report: AuditReport) -> str:
    return "".join(json_chunks(report))


def json_chunks(report: AuditReport) -> Iterator[str]:
    """The report's JSON text in pieces of a few hundred kilobytes, for a writer that
    need not hold the whole text at once (a large report's text is tens of megabytes)."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False)
    pieces: list[str] = []
    for piece in encoder.iterencode(report.to_dict()):
        pieces.append(piece)
        if len(pieces) >= _JOIN_EVERY:
            yield "".join(pieces)
            pieces.clear()
    pieces.append("\n")
    yield "".join(pieces)
