"""mDNS/LLMNR non-local names. Oracles: RFC 6762 §3-4 (.local and the link-local reverse
zones 254.169.in-addr.arpa, 8-b.e.f.ip6.arpa), RFC 4795 §2 (LLMNR single-label names), and
scapy-built packets run through the real pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotaudit.detect.base import Context
from dotaudit.detect.local_names import LocalNamesDetector, is_nonlocal
from dotaudit.model.events import Event
from dotaudit.model.findings import Finding, Severity
from dotaudit.model.policy import Policy
from tests.factories import dns_query, dns_response, fed_detector, run_detectors

MDNS = {"service": "mdns", "dst": "224.0.0.251", "dport": 5353, "sport": 5353}
LLMNR = {"service": "llmnr", "dst": "224.0.0.252", "dport": 5355}


def _run(events: list[Event], context: Context | None = None) -> LocalNamesDetector:
    return fed_detector(LocalNamesDetector, events, context)


@pytest.mark.parametrize(
    ("service", "qname", "expected"),
    [
        ("mdns", "printer.local", False),
        ("mdns", "_ipp._tcp.local", False),
        ("mdns", "Printer.LOCAL.", False),
        ("mdns", "4.3.254.169.in-addr.arpa", False),
        ("mdns", "0.8.e.f.ip6.arpa", False),
        ("mdns", "www.example.com", True),
        ("mdns", "notlocal", True),
        ("mdns", "1.1.168.192.in-addr.arpa", True),
        ("mdns", "local.example.com", True),
        ("llmnr", "fileserver", False),
        ("llmnr", "wpad", False),
        ("llmnr", "fileserver.corp.example", True),
        ("llmnr", "1.0.0.10.in-addr.arpa", False),
        ("dns", "www.example.com", False),
        ("mdns", "", False),
    ],
)
def test_is_nonlocal(service: str, qname: str, expected: bool) -> None:
    assert is_nonlocal(service, qname) is expected


def test_aggregates_per_client_across_services() -> None:
    detector = _run(
        [
            dns_query(qname="www.example.com", ts=1.0, qtype=28, **MDNS),
            dns_query(qname="www.example.com", ts=2.0, **MDNS),
            dns_query(qname="printer.local", ts=3.0, **MDNS),
            dns_query(qname="intranet.corp.example", ts=4.0, **LLMNR),
            dns_query(qname="fileserver", ts=5.0, **LLMNR),
            # Not queries, or plain DNS: ignored.
            dns_response(qname="www.example.com", service="mdns", dport=5353),
            dns_query(qname="www.example.com"),
            dns_query(qname="other.example", src="10.0.0.50", **MDNS),
        ]
    )
    findings = {f.client: f for f in detector.finish()}
    assert set(findings) == {"10.0.0.2", "10.0.0.50"}
    finding = findings["10.0.0.2"]
    assert finding.id == "DA-LEAK-005" and finding.severity == Severity.MEDIUM
    assert finding.evidence["queries"] == 3
    assert finding.evidence["services"] == {"llmnr": 1, "mdns": 2}
    assert finding.evidence["qnames"] == ["www.example.com", "intranet.corp.example"]
    assert finding.evidence["qname_count"] == 2
    assert finding.evidence["qtypes"] == {"A": 2, "AAAA": 1}  # named, as DA-LEAK-001 counts them
    assert finding.first_ts == 1.0 and finding.last_ts == 4.0
    assert len(finding.frames) == 3
    rows = detector.sections()["local_names"]
    assert [(r["client"], r["service"], r["queries"]) for r in rows] == [
        ("10.0.0.2", "mdns", 2),
        ("10.0.0.2", "llmnr", 1),
        ("10.0.0.50", "mdns", 1),
    ]


def test_only_local_names_no_finding() -> None:
    detector = _run([dns_query(qname="printer.local", **MDNS), dns_query(qname="pc", **LLMNR)])
    assert detector.finish() == []
    assert detector.sections()["local_names"] == []


def test_override() -> None:
    policy = Policy(severity_overrides={"DA-LEAK-005": Severity.LOW})
    events = [dns_query(qname="a.example", **MDNS)]
    (finding,) = run_detectors(events, policy, only=LocalNamesDetector).findings
    assert finding.severity == Severity.LOW


def test_pipeline_end_to_end(tmp_path: Path) -> None:
    scapy = pytest.importorskip("scapy.all")
    from dotaudit.pipeline import CaptureRun

    packets = [
        scapy.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / scapy.IP(src="192.168.1.20", dst="224.0.0.251")
        / scapy.UDP(sport=5353, dport=5353)
        / scapy.DNS(rd=0, qd=scapy.DNSQR(qname="www.example.com")),
        scapy.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / scapy.IP(src="192.168.1.20", dst="224.0.0.251")
        / scapy.UDP(sport=5353, dport=5353)
        / scapy.DNS(rd=0, qd=scapy.DNSQR(qname="tv.local")),
        scapy.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / scapy.IP(src="192.168.1.21", dst="224.0.0.252")
        / scapy.UDP(sport=51000, dport=5355)
        / scapy.DNS(rd=0, qd=scapy.DNSQR(qname="nas.corp.example")),
    ]
    for i, packet in enumerate(packets):
        packet.time = 1700000000 + i
    path = tmp_path / "local.pcap"
    scapy.wrpcap(str(path), packets)
    detector = _run(list(CaptureRun(path).events()))
    findings: dict[str | None, Finding] = {f.client: f for f in detector.finish()}
    assert set(findings) == {"192.168.1.20", "192.168.1.21"}
    assert findings["192.168.1.20"].evidence["qnames"] == ["www.example.com"]
    assert findings["192.168.1.20"].frames == (1,)
    assert findings["192.168.1.21"].evidence["services"] == {"llmnr": 1}
