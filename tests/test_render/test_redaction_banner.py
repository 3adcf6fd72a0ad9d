"""The banner of a redacted report: driven by its ``redaction`` block, escaped like any value,
and (in Chromium) a redacted report keeps every section of the full one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dotaudit.detect.base import Context
from dotaudit.model.report import AuditReport
from dotaudit.pipeline import analyze
from dotaudit.redact import RedactionConfig, RedactionKey, redact_report
from dotaudit.render.base import OutputFormat, render
from dotaudit.render.html import render_html
from tests.conftest import ROOT
from tests.test_render.test_html import ALLOWED_TAGS, HOSTILE, Doc

KEY = RedactionKey(bytes(range(32)))


@pytest.fixture(scope="module")
def office() -> AuditReport:
    return analyze([ROOT / "pcaps" / "09-office.pcap"], Context(), generated_at="2026-01-01")


def banner_text(body: str) -> str:
    match = re.search(r'<div class="redacted".*?</div>', body, re.S)
    assert match, "no banner"
    return Doc(match.group(0)).visible


def test_redacted_report_has_the_banner_and_the_full_one_has_none(office: AuditReport) -> None:
    assert 'class="redacted"' not in render_html(office)
    redacted = redact_report(office, RedactionConfig(key=KEY))
    text = banner_text(render_html(redacted))
    assert "Redacted report." in text
    assert KEY.fingerprint in text
    assert "masked at level registrable" in text
    assert redacted.redaction is not None
    snapshot = redacted.redaction["names"]["public_suffix_list"]["snapshot"]
    assert f"Public Suffix List of {snapshot}" in text
    assert "resolver addresses: kept" in text
    assert "Not hidden: resolver addresses" in text and "JA3/JA4" in text


def test_text_summary_says_redacted(office: AuditReport) -> None:
    redacted = redact_report(office, RedactionConfig(key=KEY))
    text = render(redacted, OutputFormat.TEXT)
    assert text.splitlines()[1] == (
        f"REDACTED: key fingerprint {KEY.fingerprint}, names registrable, resolvers kept"
    )
    assert "REDACTED" not in render(office, OutputFormat.TEXT)


@pytest.mark.parametrize(
    "block",
    [
        {
            "key_fingerprint": HOSTILE,
            "names": {"level": HOSTILE, "public_suffix_list": {"snapshot": HOSTILE}},
            "addresses": {"resolvers": HOSTILE, "pseudonymised": "many"},
            "kept": [HOSTILE, 3, None],
            "evidence": {HOSTILE: HOSTILE},
        },
        {"names": "x", "addresses": [1], "kept": "not a list", "evidence": 7},
        {},
    ],
)
def test_hostile_or_malformed_blocks_render_inert(block: dict[str, object]) -> None:
    data = AuditReport(kind="analyze", generated_at="t").to_dict()
    data["redaction"] = block
    report = AuditReport.from_dict(json.loads(json.dumps(data)))
    body = render_html(report)
    doc = Doc(body)
    assert {tag for tag, _ in doc.tags} <= ALLOWED_TAGS
    text = banner_text(body)
    assert "Redacted report." in text
    if block.get("key_fingerprint") == HOSTILE:
        assert HOSTILE in doc.visible  # shown as text, not markup
        assert "<img" not in body
    render(report, OutputFormat.TEXT)


def test_redacted_report_in_chromium_keeps_every_section(
    office: AuditReport, chromium: str, tmp_path: Path
) -> None:
    from tests.test_render.test_html_browser import Trap, assert_inert, browse

    full = tmp_path / "full.html"
    full.write_text(render_html(office), encoding="utf-8")
    redacted_page = tmp_path / "redacted.html"
    redacted = redact_report(office, RedactionConfig(key=KEY))
    redacted_page.write_text(render_html(redacted), encoding="utf-8")
    trap = Trap()
    try:
        dom_full = browse(chromium, full, trap, "--dump-dom")
        dom_redacted = browse(chromium, redacted_page, trap, "--dump-dom")
        sections = re.compile(r'<section id="([^"]+)"')
        assert sections.findall(dom_redacted) == sections.findall(dom_full)
        assert len(sections.findall(dom_full)) >= 8
        doc = assert_inert(dom_redacted)
        assert "Redacted report." in doc.visible
        assert "198.51.100." not in dom_redacted and "secret" not in dom_redacted
        reports = ROOT / "reports"
        reports.mkdir(exist_ok=True)
        for name, size in (
            ("office-redacted.png", "1280,2400"),
            ("office-redacted-phone.png", "390,2400"),
        ):
            shot = reports / name
            shot.unlink(missing_ok=True)
            browse(chromium, redacted_page, trap, f"--screenshot={shot}", f"--window-size={size}")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.stat().st_size > 20_000
        assert trap.page_requests() == []
    finally:
        trap.close()
