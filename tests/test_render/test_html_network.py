"""The HTML report's "Network" section (dotaudit/render/html_network.py and
templates/network.html.j2): at the top, the verdict whole with each clause's evidence,
the resolver x transport matrix, and nothing a resolver or a lease file said escaping
into markup.

Oracle: the sections as ``probe --discover`` writes them (schema/report.schema.json),
filled here with attacker text where the network supplies it.
"""

from __future__ import annotations

from typing import Any

from dotaudit.model.report import AuditReport
from dotaudit.render.html import render_html
from dotaudit.render.html_network import network_view
from tests.test_render.test_html import ALLOWED_TAGS, HOSTILE, Doc

VERDICT = (
    "This network blocks DoT to public resolvers by RST injection (TTL 64 vs 63), lets "
    "DoH through, and transparently redirects port 53 for 203.0.113.54 to 198.51.100.1 "
    "(NSID 'hotel-resolver' over port 53, 'resolver-inet' over DoT). " + "x" * 400
)


def cell(status: str, how: str = "", reason: str = "") -> dict[str, Any]:
    return {"status": status, "how": how, "reason": reason, "evidence": {}}


def discovery_report(text: str = "dns.test") -> AuditReport:
    report = AuditReport(kind="probe", generated_at="2026-01-01T00:00:00Z")
    report.sections["targets"] = []
    report.sections["network"] = [
        {
            "verdict": VERDICT,
            "clauses": [
                {
                    "transport": "dot",
                    "kind": "blocked",
                    "text": f"blocks DoT ({text})",
                    "evidence": [
                        {
                            "resolver": text,
                            "address": "203.0.113.53",
                            "status": "blocked",
                            "how": "RST injection",
                            "reason": f"the RST has TTL 64 ({text})",
                        }
                    ],
                }
            ],
            "known_source": text,
            "system_problems": [text],
            "budget": {
                "resolvers": 1,
                "survey_s": 1.5,
                "timeout_s": 3.0,
                "max_connections_per_resolver": 3,
            },
        }
    ]
    report.sections["system_resolvers"] = [
        {
            "address": "198.51.100.1",
            "source": f"/etc/resolv.conf:1 {text}",
            "role": "system resolver",
            "note": "",
            "identity": {"nsid": text, "id.server": [text]},
            "ddr": {
                "status": "designations",
                "detail": text,
                "records": [
                    {
                        "resolver": "198.51.100.1",
                        "owner": "_dns.resolver.arpa.",
                        "text": text,
                        "status": "malformed",
                        "problems": [text],
                    }
                ],
            },
        }
    ]
    report.sections["designations"] = [
        {
            "found_by": "DDR",
            "resolver": "198.51.100.1",
            "target": text,
            "protocol": "dot",
            "port": 853,
            "addresses": ["198.51.100.53"],
            "address": "198.51.100.53",
            "status": "verified",
            "verified": True,
            "reasons": [text],
        }
    ]
    report.sections["dnr"] = [
        {"kind": "dhclient lease", "where": text, "status": "none", "detail": text, "instances": []}
    ]
    report.sections["survey"] = [
        {
            "label": text,
            "address": "203.0.113.53",
            "source": text,
            "group": "public",
            "dot": cell("blocked", "RST injection", text),
            "doh": cell("pass", "open"),
            "doq": cell("not offered"),
            "plain": cell("hijacked", "identity differs", text),
            "connections": {"opened": 2},
        }
    ]
    return report


def test_the_network_section_comes_first_with_the_whole_verdict() -> None:
    body = render_html(discovery_report())
    assert body.index('id="network"') < body.index('id="scope"') < body.index('id="verdict"')
    visible = Doc(body).visible
    assert VERDICT in visible  # not clipped at the 300 characters other values get
    assert "blocks DoT (dns.test)" in visible and "the RST has TTL 64 (dns.test)" in visible
    assert 'href="#network"' in body
    assert "The report names no inputs" not in visible


def test_the_matrix_has_one_cell_per_transport() -> None:
    view = network_view(discovery_report().sections)
    assert view is not None
    [row] = view["matrix"]
    assert [(c["text"], c["css"]) for c in row["cells"]] == [
        ("blocked", "fail"),
        ("pass", "pass"),
        ("not offered", "skip"),
        ("hijacked", "fail"),
    ]
    assert view["columns"] == ["DoT (853)", "DoH (443)", "DoQ (UDP 853)", "port 53"]
    assert view["summary"] == ["The network survey found 1 blocking clause(s) (see Network)."]


def test_no_discovery_no_network_section() -> None:
    report = AuditReport(kind="analyze", generated_at="t")
    assert network_view(report.sections) is None
    assert 'id="network"' not in render_html(report)


def test_what_the_network_said_renders_inert() -> None:
    bad = HOSTILE + "\u202e\x00" + "Z" * 500
    body = render_html(discovery_report(bad))
    doc = Doc(body)
    assert {tag for tag, _ in doc.tags} <= ALLOWED_TAGS
    for tag, attrs in doc.tags:
        assert not any(name.startswith("on") for name in attrs), tag
    assert "\u202e" not in body and "\x00" not in body
    assert "<script>document.title='x'</script>" in doc.visible
