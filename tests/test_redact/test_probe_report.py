"""Redacting a probe report: resolvers are what it is about, so they stay unless asked."""

from __future__ import annotations

import json

from dotaudit.model.findings import make_finding
from dotaudit.model.report import REPORT_SCHEMA, AuditReport
from dotaudit.redact import RedactionConfig, RedactionKey, redact_report
from dotaudit.render.base import OutputFormat, render
from tests.test_render.test_html import probe_report

KEY = RedactionKey(bytes(range(32)))


def probe_with_prober_address() -> AuditReport:
    report = probe_report()
    target = report.sections["targets"][1]
    target["checks"][0]["evidence"] = {"class": "filtered", "local": "10.1.2.3:40000"}
    report.findings.append(
        make_finding(
            "DA-PROBE-002",
            dedup_key="192.0.2.1:853",
            server="192.0.2.1:853",
            evidence={"target": "dns.quad9.net@9.9.9.9", "name": "dns.quad9.net"},
        )
    )
    return report


def test_probe_report_keeps_resolvers_and_hides_the_prober() -> None:
    body = render(
        redact_report(probe_with_prober_address(), RedactionConfig(key=KEY)), OutputFormat.JSON
    )
    data = json.loads(body)
    assert [t["address"] for t in data["targets"]] == ["9.9.9.9", "192.0.2.1"]
    assert data["targets"][0]["name"] == "dns.quad9.net"
    assert data["findings"][0]["server"] == "192.0.2.1:853"
    assert "10.1.2.3" not in body
    assert data["schema"] == REPORT_SCHEMA and data["tool"]["name"] == "dotaudit"


def test_probe_report_with_hidden_resolvers() -> None:
    config = RedactionConfig(key=KEY, resolvers=True)
    body = render(redact_report(probe_with_prober_address(), config), OutputFormat.JSON)
    for text in ("9.9.9.9", "192.0.2.1", "dns.quad9.net", "10.1.2.3"):
        assert text not in body, text
    data = json.loads(body)
    assert data["targets"][0]["name"] == "*.quad9.net"
    assert data["targets"][0]["target"].startswith("*.quad9.net@")
    assert data["findings"][0]["server"].endswith(":853")
    assert data["redaction"]["addresses"]["resolvers"] == "pseudonymised"


def test_discovery_keeps_its_resolvers_unless_asked() -> None:
    """The resolvers discovery found and surveyed are resolvers like probe targets: kept by
    default, pseudonymised with the rest under --redact-resolvers."""
    from tests.test_render.test_html_network import discovery_report

    report = discovery_report()
    kept = json.loads(render(redact_report(report, RedactionConfig(key=KEY)), OutputFormat.JSON))
    assert kept["system_resolvers"][0]["address"] == "198.51.100.1"
    assert kept["designations"][0]["address"] == "198.51.100.53"
    assert kept["survey"][0]["address"] == "203.0.113.53"
    hidden = render(
        redact_report(discovery_report(), RedactionConfig(key=KEY, resolvers=True)),
        OutputFormat.JSON,
    )
    for text in ("198.51.100.1", "198.51.100.53", "203.0.113.53"):
        assert text not in hidden, text
