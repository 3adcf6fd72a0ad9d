"""EDNS Client Subnet from clients. Oracles: RFC 7871 §6 (option layout) and §7.1.2
(source prefix 0 opts out), with scapy-built queries run through the real pipeline."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from dotaudit.detect import base, ecs
from dotaudit.detect.base import Context
from dotaudit.detect.ecs import EcsDetector, ecs_prefix
from dotaudit.model.events import Event
from dotaudit.model.findings import MAX_FRAMES, Confidence, Severity
from dotaudit.model.policy import Policy
from tests.detection import detect
from tests.factories import dns_query, dns_response, edns, fed_detector, run_detectors


def _run(events: list[Event], context: Context | None = None) -> EcsDetector:
    return fed_detector(EcsDetector, events, context)


def test_ecs_prefix() -> None:
    assert ecs_prefix("192.0.2.0/24") == 24
    assert ecs_prefix("2001:db8::/56") == 56
    assert ecs_prefix("0.0.0.0/0") == 0
    assert ecs_prefix("junk") is None
    assert ecs_prefix("1.2.3.4/x") is None


def test_aggregates_per_client_and_server() -> None:
    detector = _run(
        [
            dns_query(edns=edns(ecs="192.0.2.0/24"), qname="a.example", ts=1.0),
            dns_query(edns=edns(ecs="192.0.2.0/24"), qname="b.example", ts=2.0),
            dns_query(edns=edns(ecs="198.51.100.0/24"), qname="a.example", ts=3.0, dst="8.8.8.8"),
            # Opt-out (prefix 0), no ECS, and answers: none count.
            dns_query(edns=edns(ecs="0.0.0.0/0"), ts=4.0),
            dns_query(edns=edns(), ts=5.0),
            dns_response(edns=edns(ecs="192.0.2.0/24"), ts=6.0),
        ]
    )
    findings = {f.server: f for f in detector.finish()}
    assert set(findings) == {"9.9.9.9", "8.8.8.8"}
    quad9 = findings["9.9.9.9"]
    assert quad9.id == "DA-LEAK-006" and quad9.severity == Severity.MEDIUM
    assert quad9.evidence["queries"] == 2
    assert quad9.evidence["subnets"] == ["192.0.2.0/24"]
    assert quad9.evidence["qnames"] == ["a.example", "b.example"]
    assert quad9.evidence["max_source_prefix"] == 24
    assert quad9.first_ts == 1.0 and quad9.last_ts == 2.0
    assert len(quad9.frames) == 2
    assert quad9.dedup_key == "DA-LEAK-006|10.0.0.2|9.9.9.9"
    assert len(detector.sections()["ecs"]) == 2


def test_no_ecs_no_finding() -> None:
    assert _run([dns_query(), dns_query(edns=edns(ecs="::/0"))]).finish() == []


def test_override() -> None:
    policy = Policy(severity_overrides={"DA-LEAK-006": Severity.HIGH})
    events = [dns_query(edns=edns(ecs="10.1.0.0/16"))]
    (finding,) = run_detectors(events, policy, only=EcsDetector).findings
    assert finding.severity == Severity.HIGH


def test_pipeline_end_to_end(tmp_path: Path) -> None:
    scapy = pytest.importorskip("scapy.all")
    from scapy.layers.dns import EDNS0ClientSubnet

    from dotaudit.pipeline import CaptureRun

    def query(name: str, subnet: str, prefix: int) -> object:
        opt = scapy.DNSRROPT(
            rclass=1232,
            rdata=[EDNS0ClientSubnet(source_plen=prefix, address=subnet)],
        )
        return (
            scapy.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / scapy.IP(src="10.9.0.5", dst="9.9.9.9")
            / scapy.UDP(sport=40001, dport=53)
            / scapy.DNS(rd=1, qd=scapy.DNSQR(qname=name), ar=opt)
        )

    packets = [query("a.example", "203.0.113.0", 24), query("b.example", "0.0.0.0", 0)]
    for i, packet in enumerate(packets):
        packet.time = 1700000000 + i  # type: ignore[attr-defined]
    path = tmp_path / "ecs.pcap"
    scapy.wrpcap(str(path), packets)
    (finding,) = _run(list(CaptureRun(path).events())).finish()
    assert finding.client == "10.9.0.5" and finding.server == "9.9.9.9"
    assert finding.evidence["subnets"] == ["203.0.113.0/24"]
    assert finding.evidence["queries"] == 1
    assert finding.frames == (1,)


@pytest.mark.parametrize(("ecs", "leaks"), [("0.0.0.0/0", False), ("128.0.0.0/1", True)])
def test_the_smallest_non_zero_prefix_already_leaks(ecs: str, leaks: bool) -> None:
    # RFC 7871 §7.1.2: only source prefix 0 opts out; a single bit already says something.
    detected = detect([dns_query(edns=edns(ecs=ecs))])
    assert [x.id for x in detected.findings if x.id == "DA-LEAK-006"] == (
        ["DA-LEAK-006"] if leaks else []
    )


def test_ecs_finding_and_section_in_full() -> None:
    events: list[Event] = [
        dns_query(ts=10.0, qname="a.example", edns=edns(ecs="198.51.100.0/24")),
        dns_query(ts=11.0, qname=None, edns=edns(ecs="198.51.100.0/20"), transport="tcp"),
        dns_query(ts=12.0, qname="a.example", edns=edns(ecs="198.51.100.0/24")),
    ]
    detector = _run(events)
    (finding,) = detector.finish()
    assert finding.evidence == {
        "queries": 3,
        "subnets": ["198.51.100.0/24", "198.51.100.0/20"],
        "subnet_count": 2,
        "max_source_prefix": 24,
        "qnames": ["a.example"],
        "qname_count": 1,
        "transports": ["tcp", "udp"],
    }
    assert finding.dedup_key == "DA-LEAK-006|10.0.0.2|9.9.9.9"
    assert finding.confidence is Confidence.HIGH
    assert (finding.client, finding.server, finding.file) == ("10.0.0.2", "9.9.9.9", "test.pcap")
    assert (finding.first_ts, finding.last_ts) == (10.0, 12.0)
    assert finding.frames == tuple(e.frame for e in events)
    assert detector.sections() == {
        "ecs": [
            {
                "client": "10.0.0.2",
                "server": "9.9.9.9",
                "queries": 3,
                "subnets": ["198.51.100.0/24", "198.51.100.0/20"],
                "first_ts": 10.0,
                "last_ts": 12.0,
            }
        ]
    }


def test_ecs_frames_stop_at_the_cap() -> None:
    events: list[Event] = [
        dns_query(ts=10.0 + i, edns=edns(ecs="198.51.100.0/24")) for i in range(MAX_FRAMES + 3)
    ]
    (finding,) = _run(events).finish()
    assert finding.frames == tuple(e.frame for e in events[:MAX_FRAMES])
    assert finding.evidence["queries"] == MAX_FRAMES + 3


def test_ecs_prefix_edges() -> None:
    # RFC 7871 §6: SOURCE PREFIX-LENGTH is at most 128; text longer than 3 digits is not one.
    assert ecs_prefix("2001:db8::/128") == 128
    assert ecs_prefix("192.0.2.0/1000") is None
    assert ecs_prefix("192.0.2.0/") is None
    assert ecs_prefix("192.0.2.0") is None
    assert ecs_prefix("a/b/24") == 24


def test_ecs_frame_sample_keeps_the_first_queries() -> None:
    events: list[Event] = [
        dns_query(frame=1000 + i, edns=edns(ecs="198.51.100.0/24")) for i in range(MAX_FRAMES)
    ]
    events.append(dns_query(frame=1, edns=edns(ecs="198.51.100.0/24")))  # e.g. a later file
    (finding,) = _run(events).finish()
    assert 1 not in finding.frames


def _ecs_queries(subnets: list[str], names: list[str]) -> list[Event]:
    return [
        dns_query(edns=edns(ecs=subnet), qname=name, ts=1.0 + n * 0.001)
        for n, (subnet, name) in enumerate(zip(subnets, names, strict=True))
    ]


def test_ecs_subnets_and_names_draw_on_the_run_s_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TRACK_BUDGET", 2)
    detector = _run(_ecs_queries(["192.0.2.0/24", "198.51.100.0/24"], ["a.example", "b.example"]))
    (finding,) = detector.finish()
    assert (finding.evidence["subnet_count"], finding.evidence["qname_count"]) == (1, 1)
    assert finding.evidence["subnet_count_is_lower_bound"] is True
    assert finding.evidence["qname_count_is_lower_bound"] is True
    assert finding.evidence["subnets"] == ["192.0.2.0/24", "198.51.100.0/24"]  # still listed
    assert detector.caps() == {"ecs_values_untracked": 2}


def test_ecs_samples_list_sample_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ecs, "SAMPLE", 2)
    subnets = [f"192.0.2.{n}/32" for n in range(3)]
    names = [f"n{n}.example" for n in range(3)]
    (finding,) = _run(_ecs_queries(subnets, names)).finish()
    assert finding.evidence["subnets"] == subnets[:2]
    assert finding.evidence["qnames"] == names[:2]
    assert (finding.evidence["subnet_count"], finding.evidence["qname_count"]) == (3, 3)


@pytest.mark.parametrize("count", [1000, 1001])
def test_ecs_counts_a_thousand_subnets_per_pair(count: int) -> None:
    subnets = [str(ipaddress.IPv4Network((0x0A000000 + (n << 8), 24))) for n in range(count)]
    (finding,) = _run(_ecs_queries(subnets, ["a.example"] * count)).finish()
    assert finding.evidence["subnet_count"] == 1000
    assert finding.evidence.get("subnet_count_is_lower_bound", False) is (count > 1000)


@pytest.mark.parametrize("count", [10_000, 10_001])
def test_ecs_counts_ten_thousand_names_per_pair(count: int) -> None:
    names = [f"n{n}.example" for n in range(count)]
    (finding,) = _run(_ecs_queries(["192.0.2.0/24"] * count, names)).finish()
    assert finding.evidence["qname_count"] == 10_000
    assert finding.evidence.get("qname_count_is_lower_bound", False) is (count > 10_000)
