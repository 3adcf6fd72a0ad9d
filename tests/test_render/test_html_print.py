"""The HTML report prints to PDF cleanly: real headless Chromium, real pdftotext."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dotaudit.detect.base import Context
from dotaudit.pipeline import analyze
from dotaudit.render.html import render_html
from tests.conftest import IN_CI, ROOT

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        reason = f"{tool} not installed (Debian package 'poppler-utils'; `make test` installs it)"
        if IN_CI:
            pytest.fail(reason + " (CI=true: must not skip)")
        pytest.skip(reason)
    return found


def test_demo_report_prints_every_finding_without_a_page_per_finding(
    tmp_path: Path, chromium: str
) -> None:
    report = analyze([ROOT / "pcaps" / "09-office.pcap"], Context(), workers=1)
    html = tmp_path / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--print-to-pdf={pdf}",
            "--no-pdf-header-footer",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert pdf.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run([poppler("pdfinfo"), str(pdf)], capture_output=True, text=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))  # type: ignore[union-attr]
    text = subprocess.run(
        [poppler("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True
    ).stdout
    for finding in report.findings:
        assert finding.id in text, f"{finding.id} missing from the printed report"
    # Findings flow across pages instead of one (mostly empty) page each.
    assert pages < len(report.findings), (pages, len(report.findings))
