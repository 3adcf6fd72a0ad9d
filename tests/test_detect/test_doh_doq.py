"""DoH/DoQ detection. Oracles: the packaged resolver list (provider documentation),
RFC 9250 §4.1.1 (ALPN "doq", UDP 853) and the corpus manifest's nDPI/Zeek baselines."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotaudit.detect import doh_doq
from dotaudit.detect.base import Context
from dotaudit.detect.doh_doq import DohDoqDetector, is_doq_alpn
from dotaudit.model.events import Event
from dotaudit.model.findings import Confidence, Finding, Severity
from dotaudit.model.policy import Policy
from tests.conftest import corpus_path
from tests.factories import client_hello, connection, fed_detector, quic_initial, run_detectors


def _run(events: list[Event], context: Context | None = None) -> DohDoqDetector:
    return fed_detector(DohDoqDetector, events, context)


def _findings(detector: DohDoqDetector) -> dict[str, Finding]:
    return {f.id: f for f in detector.finish()}


def test_doh_by_sni_aggregates_connections() -> None:
    events: list[Event] = []
    for i, sport in enumerate((50001, 50002, 50003)):
        hello = client_hello(
            sport=sport,
            dst="104.16.248.249",
            dport=443,
            sni="mozilla.cloudflare-dns.com",
            alpn=("h2", "http/1.1"),
            ts=100.0 + i,
        )
        events += [
            hello,
            connection(
                sport=sport,
                dst="104.16.248.249",
                dport=443,
                start=100.0 + i,
                end=110.0 + i,
                packets_fwd=5,
                packets_rev=7,
            ),
        ]
    detector = _run(events)
    findings = _findings(detector)
    assert set(findings) == {"DA-DOH-001"}
    finding = findings["DA-DOH-001"]
    assert finding.evidence["connections"] == 3
    assert finding.evidence["packets"] == 36
    assert finding.evidence["provider"] == "Cloudflare 1.1.1.1"
    assert finding.evidence["via"] == ["sni"]
    assert finding.confidence == Confidence.HIGH
    assert finding.first_ts == 100.0 and finding.last_ts == 112.0
    assert finding.severity == Severity.INFO
    (row,) = detector.sections()["doh_doq"]
    assert row["protocol"] == "doh" and row["via"] == "sni" and row["connections"] == 3


def test_doh_by_address_without_sni() -> None:
    detector = _run([client_hello(dst="1.1.1.1", dport=443, sni=None, alpn=("h2",))])
    finding = _findings(detector)["DA-DOH-001"]
    assert finding.evidence["via"] == ["address"]
    assert finding.confidence == Confidence.MEDIUM


def test_https_to_unknown_host_or_known_ip_with_other_sni_is_not_doh() -> None:
    detector = _run(
        [
            client_hello(dst="93.184.216.34", dport=443, sni="example.com"),
            client_hello(dst="93.184.216.34", dport=443, sni=None),
            client_hello(dst="1.1.1.1", dport=8443, sni=None),
            # DoT belongs to the DoT detectors, not here.
            client_hello(dst="1.1.1.1", dport=853, sni="one.one.one.one"),
        ]
    )
    assert detector.finish() == []
    assert detector.sections()["doh_doq"] == []


def test_doq_by_alpn_and_by_port() -> None:
    assert is_doq_alpn("doq") and is_doq_alpn("doq-i00") and not is_doq_alpn("h3")
    detector = _run(
        [
            quic_initial(dst="94.140.14.14", dport=784, alpn=("doq-i00",), sni="dns.adguard.com"),
            quic_initial(src="10.0.0.9", dst="192.0.2.1", dport=853, alpn=("h3",), sni=None),
            # QUIC on 443 with h3 and an unrelated name: neither DoQ nor DoH.
            quic_initial(src="10.0.0.8", dst="192.0.2.1", dport=443, alpn=("h3",), sni="a.example"),
        ]
    )
    rows = {(r["client"], r["via"]): r for r in detector.sections()["doh_doq"]}
    assert set(rows) == {("10.0.0.2", "alpn"), ("10.0.0.9", "port")}
    assert rows[("10.0.0.2", "alpn")]["provider"] == "AdGuard DNS"
    findings = detector.finish()
    assert sorted(f.id for f in findings) == ["DA-DOQ-001", "DA-DOQ-001"]


def test_doh_over_quic_by_sni() -> None:
    detector = _run([quic_initial(dst="8.8.8.8", dport=443, alpn=("h3",), sni="dns.google")])
    (row,) = detector.sections()["doh_doq"]
    assert row["protocol"] == "doh" and row["provider"] == "Google Public DNS"


def test_retransmitted_initial_is_one_connection() -> None:
    initial = quic_initial()
    detector = _run([initial, quic_initial(frame=initial.frame + 1, ts=initial.ts + 0.2)])
    (row,) = detector.sections()["doh_doq"]
    assert row["connections"] == 1
    assert len(row["frames"]) == 2


def test_mid_stream_quic_on_doq_port() -> None:
    detector = _run(
        [
            connection(transport="udp", outcome="udp", app="quic", dport=784, dst="::1", src="::1"),
            connection(transport="udp", outcome="udp", app=None, dport=853),
        ]
    )
    (row,) = detector.sections()["doh_doq"]
    assert row["protocol"] == "doq" and row["via"] == "port" and row["server"] == "::1"


def test_severity_override_and_policy_approval() -> None:
    policy = Policy(severity_overrides={"DA-DOH-001": Severity.MEDIUM})
    events = [client_hello(dst="9.9.9.9", dport=443, sni="dns.quad9.net", alpn=("h2",))]
    (finding,) = run_detectors(events, policy, only=DohDoqDetector).findings
    assert finding.id == "DA-DOH-001" and finding.severity == Severity.MEDIUM
    assert finding.evidence["approved_by_policy"] is False


def _corpus(relative: str) -> DohDoqDetector:
    from dotaudit.pipeline import CaptureRun

    path: Path = corpus_path(relative)
    return _run(list(CaptureRun(path).events()))


def test_corpus_doh_cloudflare_sni() -> None:
    # nDPI baseline: 172.20.10.4 -> 104.16.248.249:443, SNI mozilla.cloudflare-dns.com.
    detector = _corpus("ndpi/doh-cloudflare-sni/dns_doh.pcap")
    (row,) = detector.sections()["doh_doq"]
    assert row["client"] == "172.20.10.4" and row["server"] == "104.16.248.249"
    assert row["sni"] == "mozilla.cloudflare-dns.com" and row["via"] == "sni"
    assert _findings(detector)["DA-DOH-001"].client == "172.20.10.4"


def test_corpus_doh_by_ip_without_sni() -> None:
    # nDPI baseline calls this plain TLS; the manifest notes it is DoH to 1.1.1.1.
    detector = _corpus("ndpi/doh-1.1.1.1-no-sni/doh.pcapng")
    (row,) = detector.sections()["doh_doq"]
    assert row["server"] == "1.1.1.1" and row["via"] == "address" and row["sni"] is None
    assert row["protocol"] == "doh"


def test_corpus_doq_rfc9250() -> None:
    # Zeek quic.log: 127.0.0.1:46907 -> 127.0.0.1:853, client_protocol doq, no SNI.
    detector = _corpus("zeek/quic-doq-853/quicdoq.pcap")
    (row,) = detector.sections()["doh_doq"]
    assert row["protocol"] == "doq" and row["via"] == "alpn" and row["alpn"] == ["doq"]
    assert row["connections"] == 1
    assert _findings(detector)["DA-DOQ-001"].server == "127.0.0.1"


def test_corpus_doq_adguard_draft() -> None:
    # nDPI baseline: 192.168.12.169:41070 -> 94.140.14.14:784, ALPN doq-i00, SNI
    # dns.adguard.com, 296 packets.
    detector = _corpus("ndpi/doq-adguard-784/doq_adguard.pcapng")
    (row,) = detector.sections()["doh_doq"]
    assert row["alpn"] == ["doq-i00"] and row["sni"] == "dns.adguard.com"
    assert row["provider"] == "AdGuard DNS"
    assert row["packets"] == 296


def test_connections_over_the_open_cap_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert doh_doq.MAX_OPEN == 20_000
    monkeypatch.setattr(doh_doq, "MAX_OPEN", 1)

    def hello(sport: int) -> Event:
        return client_hello(sport=sport, dst="104.16.248.249", dport=443,
                            sni="mozilla.cloudflare-dns.com", alpn=("h2",))  # fmt: skip

    at_cap = _run([hello(50001)])
    assert at_cap.caps() == {}
    over = _run([hello(50001), hello(50002)])
    assert over.caps() == {"doh_open_flows_full": 1}
    (finding,) = over.finish()
    assert finding.evidence["connections"] == 2  # counted, only its packets go uncounted
