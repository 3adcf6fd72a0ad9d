"""mDNS/LLMNR non-local names. Oracles: RFC 6762 §3-4 (.local and the link-local reverse
zones 254.169.in-addr.arpa, 8-b.e.f.ip6.arpa), RFC 4795 §2 (LLMNR single-label names), and
scapy-built packets run through the real pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotaudit.detect import base, local_names
from dotaudit.detect.base import Context
from dotaudit.detect.local_names import LocalNamesDetector, is_nonlocal
from dotaudit.model.events import Event
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, Severity
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


def _mdns(**kw: object) -> Event:
    values: dict[str, object] = {
        "dst": "224.0.0.251", "dport": 5353, "sport": 5353, "service": "mdns",
        "qname": "www.example.com",
    }  # fmt: skip
    values.update(kw)
    return dns_query(**values)


def _llmnr(**kw: object) -> Event:
    values: dict[str, object] = {
        "dst": "224.0.0.252", "dport": 5355, "service": "llmnr", "qname": "fs.corp.example",
    }  # fmt: skip
    values.update(kw)
    return dns_query(**values)


def test_local_names_finding_and_section_in_full() -> None:
    events: list[Event] = [
        _mdns(ts=10.0, qname="www.example.com", qtype=1),
        _llmnr(ts=11.0, qname="fs.corp.example", qtype=28),
        _mdns(ts=12.0, qname="www.example.com", qtype=28, dst="ff02::fb"),
        _llmnr(ts=13.0, qname="www.example.com", qtype=None),
    ]
    detector = _run(events)
    (finding,) = detector.finish()
    assert finding.evidence == {
        "queries": 4,
        "services": {"llmnr": 2, "mdns": 2},
        "qnames": ["www.example.com", "fs.corp.example"],
        "qname_count": 3,
        "qtypes": {"AAAA": 2, "A": 1, "none": 1},
        "destinations": ["224.0.0.251", "224.0.0.252", "ff02::fb"],
    }
    assert finding.dedup_key == "DA-LEAK-005|10.0.0.2"
    assert finding.confidence is Confidence.HIGH
    assert (finding.client, finding.server, finding.file) == ("10.0.0.2", None, "test.pcap")
    assert (finding.first_ts, finding.last_ts) == (10.0, 13.0)
    assert finding.frames == tuple(sorted(e.frame for e in events))
    assert detector.sections()["local_names"] == [
        {
            "client": "10.0.0.2",
            "service": "mdns",
            "queries": 2,
            "qnames": ["www.example.com"],
            "qname_count": 1,
            "qtypes": {"A": 1, "AAAA": 1},
            "first_ts": 10.0,
            "last_ts": 12.0,
        },
        {
            "client": "10.0.0.2",
            "service": "llmnr",
            "queries": 2,
            "qnames": ["fs.corp.example", "www.example.com"],
            "qname_count": 2,
            "qtypes": {"AAAA": 1, "none": 1},
            "first_ts": 11.0,
            "last_ts": 13.0,
        },
    ]


def test_local_names_ignore_answers_malformed_and_plain_dns() -> None:
    events: list[Event] = [
        dns_response(service="mdns", qname="www.example.com", dst="224.0.0.251"),
        _mdns(malformed=True),
        dns_query(qname="www.example.com"),
        _mdns(qname=None),
    ]
    assert _run(events).finish() == []


def test_local_names_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_names, "MAX_GROUPS", 1)
    events: list[Event] = [_mdns(), _mdns(src="10.0.0.3"), _llmnr()]
    detector = _run(events)
    (finding,) = detector.finish()
    assert finding.evidence["groups_dropped"] == 2
    assert detector.caps() == {"local_names_groups_full": 2}
    at_cap = _run(events[:1])
    assert "groups_dropped" not in at_cap.finish()[0].evidence
    assert at_cap.caps() == {}


def test_local_names_rows_seen_at_once_come_in_client_and_service_order() -> None:
    # Same first timestamp, arriving in the reverse of (client, service) order.
    events: list[Event] = [
        _mdns(src="10.0.0.9", ts=5.0),
        _mdns(src="10.0.0.3", ts=5.0),
        _llmnr(src="10.0.0.3", ts=5.0),
        _mdns(src="10.0.0.1", ts=4.0),
    ]
    rows = _run(events).sections()["local_names"]
    assert [(r["client"], r["service"]) for r in rows] == [
        ("10.0.0.1", "mdns"),
        ("10.0.0.3", "llmnr"),
        ("10.0.0.3", "mdns"),
        ("10.0.0.9", "mdns"),
    ]


def test_local_names_samples_are_bounded() -> None:
    events: list[Event] = [
        _mdns(ts=10.0 + i, qtype=i + 1, dst=f"224.0.0.{i}", qname=f"n{i}.example")
        for i in range(40)
    ]
    events += [_mdns(ts=60.0 + i) for i in range(MAX_FRAMES)]
    (finding,) = _run(events).finish()
    assert len(finding.evidence["qtypes"]) == 32
    assert finding.evidence["destinations"] == sorted(f"224.0.0.{i}" for i in range(4))
    assert finding.evidence["qnames"] == [f"n{i}.example" for i in range(20)]
    assert finding.evidence["qname_count"] == 41
    assert finding.frames == tuple(sorted(e.frame for e in events[:MAX_FRAMES]))


def test_local_names_frame_sample_keeps_the_first_queries() -> None:
    events: list[Event] = [_mdns(frame=1000 + i) for i in range(MAX_FRAMES)]
    events.append(_mdns(frame=1))  # e.g. from a later file
    (finding,) = _run(events).finish()
    assert 1 not in finding.frames


def test_local_names_draw_on_the_run_s_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TRACK_BUDGET", 1)
    detector = _run([_mdns(qname="a.example"), _mdns(qname="b.example")])
    (finding,) = detector.finish()
    assert finding.evidence["qname_count"] == 1
    assert finding.evidence["qname_count_is_lower_bound"] is True
    assert finding.evidence["qnames"] == ["a.example", "b.example"]
    assert detector.caps() == {"local_names_untracked": 1}


def test_local_names_sample_lists_names_sample_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_names, "NAMES_SAMPLE", 2)
    names = ["a.example", "b.example", "c.example"]
    detector = _run([_mdns(qname=name) for name in names])
    (finding,) = detector.finish()
    assert (finding.evidence["qnames"], finding.evidence["qname_count"]) == (names[:2], 3)
    (row,) = detector.sections()["local_names"]
    assert (row["qnames"], row["qname_count"]) == (names[:2], 3)


def test_local_names_count_each_query_type() -> None:
    events: list[Event] = [_mdns(qtype=1), _mdns(qtype=1), _mdns(qtype=28)]
    (finding,) = _run(events).finish()
    assert finding.evidence["qtypes"] == {"A": 2, "AAAA": 1}


@pytest.mark.parametrize("count", [10_000, 10_001])
def test_local_names_count_ten_thousand_names_per_client_and_service(count: int) -> None:
    events: list[Event] = [_mdns(qname=f"n{n}.example", ts=10.0) for n in range(count)]
    (finding,) = _run(events).finish()
    assert finding.evidence["qname_count"] == 10_000
    assert finding.evidence.get("qname_count_is_lower_bound", False) is (count > 10_000)
