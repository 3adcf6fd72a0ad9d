"""The text summary (dotaudit/render/text.py): the lines ``probe --discover`` adds.

Oracle: the sections of tests/test_render/test_html_network.py's report.
"""

from __future__ import annotations

from dotaudit.render.text import render_text
from tests.test_render.test_html_network import VERDICT, discovery_report


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
