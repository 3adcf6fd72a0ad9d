"""DA-DOH-002, DNS over HTTP/2 in cleartext. Oracles: RFC 8484 §5 (DoH requires HTTPS)
and the corpus capture suricata-verify/doh-h2c-port80 (Suricata's doh2 events: 2 DNS
transactions per name, http.host dns.google; tshark: 4 responses, all padded)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dotaudit.detect.base import Context
from dotaudit.detect.doh_doq import DohDoqDetector
from dotaudit.detect.leak import PlaintextLeakDetector
from dotaudit.detect.local_names import LocalNamesDetector
from dotaudit.model.events import Event, HttpRequestSeen
from dotaudit.model.findings import Confidence, Finding, Severity
from dotaudit.model.policy import Policy
from dotaudit.pipeline import analyze
from tests.conftest import corpus_path
from tests.factories import dns_query, dns_response, edns, fed_detector, run_detectors

CLIENT, SERVER = "10.0.0.2", "192.0.2.80"


def request(**kw: Any) -> HttpRequestSeen:
    fields: dict[str, Any] = {
        "file": "test.pcap",
        "frame": 1,
        "ts": 1000.0,
        "src": CLIENT,
        "sport": 40000,
        "dst": SERVER,
        "dport": 80,
        "transport": "tcp",
        "method": "GET",
        "authority": "doh.example",
        "path": "/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
        "content_type": None,
        "stream": 1,
    }
    fields.update(kw)
    return HttpRequestSeen(**fields)


def doh(kind: str, qname: str, frame: int, ts: float, padded: bool = False) -> Event:
    common: dict[str, Any] = {
        "file": "test.pcap",
        "frame": frame,
        "ts": ts,
        "transport": "tcp",
        "service": "doh",
        "qname": qname,
        "edns": edns(padding=128) if padded else None,
    }
    if kind == "query":
        return dns_query(src=CLIENT, sport=40000, dst=SERVER, dport=80, **common)
    return dns_response(src=SERVER, sport=80, dst=CLIENT, dport=40000, **common)


def findings(events: list[Event], context: Context | None = None) -> list[Finding]:
    return run_detectors(events, context, only=DohDoqDetector).findings


def test_cleartext_doh_is_one_high_finding_per_client_and_server() -> None:
    events = [
        request(frame=3, ts=10.0),
        doh("query", "a.example", 3, 10.0),
        doh("response", "a.example", 5, 10.2, padded=True),
        request(frame=7, ts=11.0, stream=3, method="POST", path="/dns-query",
                content_type="application/dns-message"),
        doh("query", "b.example", 7, 11.0, padded=True),
        doh("response", "b.example", 9, 11.3),
    ]  # fmt: skip
    (finding,) = findings(events)
    assert finding.id == "DA-DOH-002"
    assert finding.severity == Severity.HIGH and finding.confidence == Confidence.HIGH
    assert (finding.client, finding.server) == (CLIENT, SERVER)
    ev = finding.evidence
    assert ev["authorities"] == ["doh.example"]
    assert (ev["requests"], ev["doh_requests"], ev["queries"], ev["responses"]) == (2, 2, 2, 2)
    assert (ev["padded_queries"], ev["padded_responses"]) == (1, 1)
    assert ev["names"] == ["a.example", "b.example"] and ev["ports"] == [80]
    assert finding.frames == (3, 5, 7, 9)
    assert (finding.first_ts, finding.last_ts) == (10.0, 11.3)


def test_h2c_that_is_not_doh_raises_nothing() -> None:
    events: list[Event] = [
        request(
            path="/helloworld.Greeter/SayHello", method="POST", content_type="application/grpc"
        ),
        request(path="/index.html", stream=3),
    ]
    assert findings(events) == []
    # The same requests over a flow not marked h2c do not count either.
    assert findings([request(h2c=False)]) == []


def test_doh_shaped_request_without_a_decoded_message_is_medium() -> None:
    (finding,) = findings([request(path="/dns-query?dns=AAAB")])
    assert finding.confidence == Confidence.MEDIUM
    assert finding.evidence["queries"] == 0 and finding.evidence["doh_requests"] == 1


def test_known_provider_by_authority_and_severity_override() -> None:
    context = Context(policy=Policy(severity_overrides={"DA-DOH-002": Severity.MEDIUM}))
    events = [request(authority="dns.google"), doh("query", "a.example", 1, 1000.0)]
    (finding,) = findings(events, context)
    assert finding.evidence["provider"] == "Google Public DNS"
    assert finding.severity == Severity.MEDIUM


def test_doh_messages_are_not_plaintext_leaks_nor_local_name_leaks() -> None:
    events = [doh("query", "printer.example", 1, 1.0), doh("response", "printer.example", 2, 1.1)]
    for cls, control in ((PlaintextLeakDetector, "dns"), (LocalNamesDetector, "mdns")):
        for service, expected in (("doh", 0), (control, 1)):
            changed = [dataclasses.replace(event, service=service) for event in events]
            assert len(fed_detector(cls, changed).finish()) == expected, (cls.__name__, service)


def test_corpus_doh_h2c_port80() -> None:
    path = corpus_path("suricata-verify/doh-h2c-port80/dns_over_https.pcap")
    report = analyze([path], Context())
    ids = [f.id for f in report.findings]
    assert "DA-LEAK-001" not in ids and "DA-LEAK-002" not in ids
    (finding,) = [f for f in report.findings if f.id == "DA-DOH-002"]
    assert (finding.client, finding.server) == ("10.200.30.140", "8.8.4.4")
    ev = finding.evidence
    assert ev["authorities"] == ["dns.google"]  # Suricata: http.host dns.google
    assert set(ev["names"]) == {"www.gstatic.com", "nav-edge.smartscreen.microsoft.com"}
    assert (ev["queries"], ev["responses"]) == (4, 4)  # Suricata: 2 transactions per name
    assert ev["padded_responses"] == 4  # tshark (e): 4 frames with the padding option
    assert {9, 11, 17, 22} <= set(finding.frames)  # tshark (a2): the response frames
