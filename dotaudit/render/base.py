"""Renderers turn a whole ``AuditReport`` into text; they never decide verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import assert_never

from dotaudit.model.report import AuditReport


class OutputFormat(Enum):
    JSON = "json"
    JSONL = "jsonl"
    TEXT = "text"
    HTML = "html"

    @classmethod
    def from_path(cls, path: str) -> OutputFormat | None:
        suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        return {
            "json": cls.JSON,
            "jsonl": cls.JSONL,
            "txt": cls.TEXT,
            "html": cls.HTML,
            "htm": cls.HTML,
        }.get(suffix)


class RendererUnavailable(Exception):
    pass


def render(
    report: AuditReport,
    fmt: OutputFormat,
    *,
    evidence_dir: str | None = None,
    output: str | None = None,
) -> str:
    """``evidence_dir`` and ``output`` only matter to HTML: links to evidence pcaps."""
    if fmt is OutputFormat.JSON:
        from dotaudit.render.json import render_json

        return render_json(report)
    if fmt is OutputFormat.JSONL:
        from dotaudit.render.jsonl import render_jsonl

        return render_jsonl(report)
    if fmt is OutputFormat.TEXT:
        from dotaudit.render.text import render_text

        return render_text(report)
    if fmt is OutputFormat.HTML:
        from dotaudit.render.html import render_html

        return render_html(report, evidence_dir=evidence_dir, output=output)
    assert_never(fmt)


def render_chunks(
    report: AuditReport,
    fmt: OutputFormat,
    *,
    evidence_dir: str | None = None,
    output: str | None = None,
) -> Iterator[str]:
    """``render``'s text in pieces, to be written one after the other: JSON and JSONL
    are made as they are written, so a large report is never held whole as text. Any
    other format is made here, before the first piece is asked for (so that a renderer
    that cannot run fails before its output is opened)."""
    if fmt is OutputFormat.JSON:
        from dotaudit.render.json import json_chunks

        return json_chunks(report)
    if fmt is OutputFormat.JSONL:
        from dotaudit.render.jsonl import jsonl_lines

        return jsonl_lines(report)
    return iter((render(report, fmt, evidence_dir=evidence_dir, output=output),))
