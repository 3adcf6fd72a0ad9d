"""The text summary (dotaudit/render/text.py): what was not read comes first, and the
lines ``probe --discover`` adds.

Oracle for the latter: the sections of tests/test_render/test_html_network.py's report.
"""

from __future__ import annotations

from dotaudit.model.report import AuditReport
from dotaudit.render.text import render_text
from tests.factories import capped_dot_report
from tests.test_render.test_html_network import VERDICT, discovery_report


def test_the_summary_starts_with_what_was_not_read() -> None:
    report = AuditReport(kind="analyze", generated_at="t")
    report.inputs = [
        {"path": "ok.pcap", "packets": 5, "span_s": 1.0, "status": "complete"},
        {"path": "cut.pcap", "packets": 3, "status": "partial", "status_reason": "cut short"},
        {"path": "wifi\x1b[2J.pcap", "packets": 4, "status": "unreadable",
         "status_reason": "none of its 4 packets could be decoded"},
        {"path": "again.pcap", "status": "skipped", "status_reason": "given twice"},
    ]  # fmt: skip
    lines = render_text(report).splitlines()
    assert lines[1:6] == [
        "WARNING: incomplete audit: 1 unreadable and 1 partial of 3 inputs; nothing found "
        "there does not mean nothing there",
        "WARNING: cut.pcap: partial: cut short",
        "WARNING: wifi\\x1b[2J.pcap: unreadable: none of its 4 packets could be decoded",
        "note: again.pcap: skipped: given twice",
        "  input ok.pcap: 5 packets, 1.0 s",
    ]
    assert "  input cut.pcap: 3 packets, partial" in lines
    assert "  input again.pcap: skipped" in lines


def test_a_complete_audit_has_no_warning() -> None:
    report = AuditReport(kind="analyze", generated_at="t")
    report.inputs = [{"path": "ok.pcap", "packets": 5, "status": "complete"}]
    assert not [line for line in render_text(report).splitlines() if "WARNING" in line]


def test_discovery_lines_name_resolvers_designations_and_the_verdict() -> None:
    lines = render_text(discovery_report()).splitlines()
    assert (
        "resolver 198.51.100.1 (system resolver, /etc/resolv.conf:1 dns.test): DDR designations"
    ) in lines
    assert "  DDR dns.test (dot) at 198.51.100.53 via 198.51.100.1: verified" in lines
    assert f"network: {VERDICT}" in lines


def test_terminal_control_characters_are_escaped() -> None:
    text = render_text(discovery_report("evil\x1b[31m"))
    assert "\x1b" not in text and "evil\\x1b[31m" in text


def test_a_capped_dot_session_table_is_said_to_list_fewer_than_were_seen() -> None:
    assert "DoT sessions: 10 (7 established; 2 listed);" in render_text(capped_dot_report())
    whole = capped_dot_report()
    whole.sections["dot_session_totals"] = [
        {"outcome": "established", "sessions": 1},
        {"outcome": "refused", "sessions": 1},
    ]
    assert "DoT sessions: 2 (1 established);" in render_text(whole)
