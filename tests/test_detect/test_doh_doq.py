"""DoH/DoQ detection. Oracles: the packaged resolver list (provider documentation),
RFC 9250 §4.1.1 (ALPN "doq", UDP 853) and the corpus manifest's nDPI/Zeek baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dotaudit.detect import base, doh_doq
from dotaudit.detect.base import Context
from dotaudit.detect.doh_doq import DohDoqDetector, is_doq_alpn
from dotaudit.model.events import Event, HttpRequestSeen
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, Severity
from dotaudit.model.policy import Policy
from tests.conftest import corpus_path
from tests.factories import (
    client_hello,
    connection,
    dns_query,
    dns_response,
    edns,
    fed_detector,
    quic_initial,
    run_detectors,
)


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
            # A resolver's address with a name that is not an IP literal: some other site
            # on a shared address, even when the name holds an address.
            client_hello(dst="1.1.1.1", dport=443, sni="www.example.com", alpn=("h2",)),
            client_hello(dst="1.1.1.1", dport=443, sni="X1.1.1.1", alpn=("h2",)),
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
    assert {row["protocol"] for row in rows.values()} == {"doq"}
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
    assert _run([hello(50001), hello(50002), hello(50003)]).caps() == {"doh_open_flows_full": 2}


CLOUDFLARE_IP = "104.16.248.249"


def test_doh_row_and_finding_in_full() -> None:
    first = client_hello(
        sport=50001, dst=CLOUDFLARE_IP, dport=443, sni="mozilla.cloudflare-dns.com",
        alpn=("h2", "http/1.1"), ts=100.0,
    )  # fmt: skip
    first_conn = connection(
        sport=50001, dst=CLOUDFLARE_IP, dport=443, start=100.0, end=130.0, ts=100.0,
        packets_fwd=7, packets_rev=9, app="tls",
    )  # fmt: skip
    second = client_hello(
        sport=50002, dst="104.16.249.249", dport=443, sni="mozilla.cloudflare-dns.com",
        alpn=("h3", "h2"), ts=140.0,
    )  # fmt: skip
    detector = _run([first, first_conn, second])
    rows = detector.sections()["doh_doq"]
    assert rows[0] == {
        "client": "10.0.0.2",
        "server": CLOUDFLARE_IP,
        "protocol": "doh",
        "sni": "mozilla.cloudflare-dns.com",
        "provider": "Cloudflare 1.1.1.1",
        "via": "sni",
        "alpn": ["h2", "http/1.1"],
        "first_ts": 100.0,
        "last_ts": 130.0,
        "connections": 1,
        "packets": 16,
        "frames": sorted({first.frame, first_conn.last_frame}),
    }
    assert rows[1]["server"] == "104.16.249.249" and rows[1]["packets"] == 0
    (finding,) = detector.finish()
    assert finding.id == "DA-DOH-001" and finding.confidence is Confidence.HIGH
    assert finding.evidence == {
        "provider": "Cloudflare 1.1.1.1",
        "servers": [CLOUDFLARE_IP, "104.16.249.249"],
        "sni": ["mozilla.cloudflare-dns.com"],
        "via": ["sni"],
        "alpn": ["h2", "http/1.1", "h3"],
        "connections": 2,
        "packets": 16,
        "approved_by_policy": False,
    }
    # Two servers of one provider: the finding names the provider as its server.
    assert finding.server == "Cloudflare 1.1.1.1"
    assert finding.dedup_key == "DA-DOH-001|10.0.0.2|Cloudflare 1.1.1.1"
    assert finding.file == "test.pcap"
    assert (finding.first_ts, finding.last_ts) == (100.0, 140.0)
    assert finding.frames == tuple(sorted({first.frame, first_conn.last_frame, second.frame}))


def test_doq_by_port_is_medium_and_names_its_server() -> None:
    initial = quic_initial(dst="192.0.2.77", dport=784, alpn=("h3",), sni=None)
    (finding,) = _run([initial]).finish()
    assert finding.id == "DA-DOQ-001" and finding.confidence is Confidence.MEDIUM
    assert finding.server == "192.0.2.77"
    assert finding.dedup_key == "DA-DOQ-001|10.0.0.2|192.0.2.77"
    assert finding.evidence["via"] == ["port"] and finding.evidence["provider"] is None
    assert finding.evidence["sni"] == []
    assert _run([quic_initial(dst="192.0.2.77", dport=443, alpn=("h3",), sni=None)]).finish() == []


def test_doq_by_port_at_a_known_resolver_names_its_provider() -> None:
    (finding,) = _run([quic_initial(dst="9.9.9.9", dport=853, alpn=(), sni=None)]).finish()
    assert finding.evidence["provider"] == "Quad9"


def test_tls_to_853_or_offering_dot_is_left_to_the_dot_detector() -> None:
    cloudflare = {"dst": CLOUDFLARE_IP, "sni": "mozilla.cloudflare-dns.com"}
    assert _run([client_hello(dport=853, alpn=("h2",), **cloudflare)]).finish() == []
    assert _run([client_hello(dport=443, alpn=("dot",), **cloudflare)]).finish() == []
    # A QUIC hello on 853 is DoQ, and "dot" in a QUIC offer does not make it DoT.
    assert _run([quic_initial(dport=853, alpn=("dot",), sni=None)]).finish()


def test_doh_by_address_needs_port_443_and_an_ip_literal_or_no_sni() -> None:
    literal = client_hello(dst=CLOUDFLARE_IP, dport=443, sni="[104.16.248.249]", alpn=("h2",))
    (finding,) = _run([literal]).finish()
    assert finding.evidence["via"] == ["address"] and finding.confidence is Confidence.MEDIUM
    assert _run([client_hello(dst=CLOUDFLARE_IP, dport=8443, sni=None, alpn=("h2",))]) \
        .finish() == []  # fmt: skip


def test_quic_hello_for_a_doh_host_over_udp_but_tls_over_udp_is_ignored() -> None:
    udp_tls = client_hello(
        transport="udp", dst=CLOUDFLARE_IP, dport=443, sni="mozilla.cloudflare-dns.com"
    )
    assert _run([udp_tls]).finish() == []


def test_mid_stream_quic_needs_udp_quic_and_a_doq_port() -> None:
    def mid(**kw: object) -> Event:
        values: dict[str, object] = {
            "transport": "udp", "app": "quic", "dport": 853, "dst": "9.9.9.9",
            "outcome": "udp", "packets_fwd": 3, "packets_rev": 4, "start": 50.0, "end": 60.0,
            "ts": 50.0, "handshake_seen": False,
        }  # fmt: skip
        values.update(kw)
        return connection(**values)

    seen = mid()
    detector = _run([seen])
    (row,) = detector.sections()["doh_doq"]
    assert (row["protocol"], row["via"], row["provider"], row["sni"]) == (
        "doq",
        "port",
        "Quad9",
        None,
    )
    assert (row["connections"], row["packets"], row["first_ts"], row["last_ts"]) == (
        1,
        7,
        50.0,
        60.0,
    )
    assert row["frames"] == sorted({seen.first_frame, seen.last_frame})
    for other in (mid(transport="tcp"), mid(app="dns"), mid(dport=443)):
        # A hello on another flow first, so that connection events are looked at at all.
        rows = _run([quic_initial(sport=50000, dport=853), other]).sections()["doh_doq"]
        assert [r["packets"] for r in rows] == [0]


def test_mid_stream_quic_connections_to_one_server_add_up() -> None:
    """Two QUIC flows on a DoQ port whose Initials were not captured: one row, two
    connections."""
    flows = [
        connection(transport="udp", app="quic", dport=853, dst="9.9.9.9", outcome="udp",
                   sport=sport, handshake_seen=False)
        for sport in (50001, 50002)
    ]  # fmt: skip
    (row,) = _run(flows).sections()["doh_doq"]
    assert (row["via"], row["connections"]) == ("port", 2)


def test_row_frames_are_the_first_distinct_ones_up_to_the_cap() -> None:
    """One connection's Initials (retransmissions included, one frame seen twice): the
    row names each frame once, the first MAX_FRAMES of them."""
    frames = [100, 100, *range(101, 101 + 2 * MAX_FRAMES)]
    initials = [quic_initial(frame=f, ts=10.0 + i / 100) for i, f in enumerate(frames)]
    (row,) = _run(initials).sections()["doh_doq"]
    assert row["connections"] == 1
    assert row["frames"] == list(range(100, 100 + MAX_FRAMES))


def test_alpn_lists_are_capped() -> None:
    offered = tuple(f"p{i}" for i in range(10))
    hellos = [
        quic_initial(sport=50000 + i, alpn=("doq", *offered[i : i + 8]), ts=10.0 + i)
        for i in range(3)
    ]
    (row,) = _run(hellos).sections()["doh_doq"]
    # Eight names read per hello, in first-seen order.
    assert row["alpn"] == ["doq", *offered[:9]]
    many = [quic_initial(sport=51000 + i, alpn=("doq", f"x{i}")) for i in range(20)]
    (row,) = _run(many).sections()["doh_doq"]
    assert len(row["alpn"]) == 16


def test_rows_cap_counts_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doh_doq, "MAX_ROWS", 1)
    kept = quic_initial(dst="192.0.2.1")
    dropped = quic_initial(dst="192.0.2.2", sport=50001)
    detector = _run([kept, dropped])
    (finding,) = detector.finish()
    assert finding.evidence["rows_dropped"] == 1
    assert detector.caps() == {"doh_rows_full": 1}
    at_cap = _run([kept])
    assert "rows_dropped" not in at_cap.finish()[0].evidence
    assert at_cap.caps() == {}


def test_cleartext_doh_finding_in_full() -> None:
    events: list[Event] = [
        h2c_request(frame=1, ts=10.0, authority="doh.example:8080", dport=8080),
        h2c_request(frame=2, ts=11.0, path="/index.html", dport=8080),
        h2c_query(frame=3, ts=12.0, qname="a.example", padded=True),
        h2c_response(frame=4, ts=13.0, qname="a.example"),
        h2c_query(frame=5, ts=14.0, qname="b.example"),
    ]
    (finding,) = _run(events).finish()
    assert finding.id == "DA-DOH-002" and finding.confidence is Confidence.HIGH
    assert finding.evidence == {
        "authorities": ["doh.example:8080"],
        "provider": None,
        "ports": [80, 8080],
        "requests": 2,
        "doh_requests": 1,
        "queries": 2,
        "responses": 1,
        "padded_queries": 1,
        "padded_responses": 0,
        "names": ["a.example", "b.example"],
        "name_count": 2,
    }
    assert finding.dedup_key == "DA-DOH-002|10.0.0.2|192.0.2.80"
    assert (finding.client, finding.server, finding.file) == ("10.0.0.2", "192.0.2.80", "test.pcap")
    assert (finding.first_ts, finding.last_ts) == (10.0, 14.0)
    assert finding.frames == (1, 3, 4, 5)


def test_cleartext_doh_provider_from_the_authority_without_port() -> None:
    events: list[Event] = [h2c_request(authority="cloudflare-dns.com:80")]
    (finding,) = _run(events).finish()
    assert finding.evidence["provider"] == "Cloudflare 1.1.1.1"


def test_cleartext_non_doh_row_does_not_hide_later_doh() -> None:
    events: list[Event] = [
        h2c_request(path="/grpc.Service/Method", content_type="application/grpc"),
        h2c_request(dst="192.0.2.81", frame=9),
    ]
    (finding,) = _run(events).finish()
    assert finding.server == "192.0.2.81"


@pytest.mark.parametrize(
    ("content_type", "path", "doh"),
    [
        ("application/dns-message", "/dns-query", True),
        (" Application/DNS-Message ; charset=x; q=1", "/dns-query", True),
        ("application/json", "/resolve?name=a&dns=AAAB", True),
        ("application/json", "/resolve?name=a&DNS=AAAB", False),
        (None, "/dns-query?dns=AAAB", True),
        (None, "/dns-query", False),
        ("text/html;application/dns-message", "/", False),
    ],
)
def test_doh_request_shapes(content_type: str | None, path: str, doh: bool) -> None:
    detector = _run([h2c_request(content_type=content_type, path=path)])
    assert bool(detector.finish()) is doh


def test_cleartext_doh_seen_only_as_dns_messages() -> None:
    """A capture that starts after the request headers still shows the DoH messages: the
    row starts at the first message's time."""
    events: list[Event] = [
        h2c_query(frame=3, ts=12.0, qname="a.example"),
        h2c_response(frame=4, ts=13.5, qname="a.example"),
    ]
    (finding,) = _run(events).finish()
    assert (finding.id, finding.first_ts, finding.last_ts) == ("DA-DOH-002", 12.0, 13.5)
    assert (finding.evidence["queries"], finding.evidence["responses"]) == (1, 1)
    assert finding.frames == (3, 4)


def test_cleartext_doh_keeps_the_first_frames_seen() -> None:
    """The frame sample holds the first MAX_FRAMES distinct frames in the order seen, not
    the lowest numbers (events of several flows need not come in frame order)."""
    frames = [500, 500, *range(499, 499 - 2 * MAX_FRAMES, -1)]
    events: list[Event] = [h2c_query(frame=f, ts=10.0, qname="a.example") for f in frames]
    (finding,) = _run(events).finish()
    assert finding.frames == tuple(sorted(range(500, 500 - MAX_FRAMES, -1)))


def test_cleartext_rows_cap_counts_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doh_doq, "MAX_ROWS", 1)
    detector = _run([h2c_request(), h2c_request(dst="192.0.2.81"), h2c_query(dst="192.0.2.82")])
    (finding,) = detector.finish()
    assert finding.server == "192.0.2.80"
    # Without any encrypted finding, the cleartext one says what the cap turned away.
    assert finding.evidence["rows_dropped"] == 2
    assert detector.caps() == {"doh_rows_full": 2}
    assert "rows_dropped" not in _run([h2c_request()]).finish()[0].evidence


def test_rows_full_counts_the_drops_of_both_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """One anomaly for both tables: one encrypted row and two cleartext rows turned away
    make three, as each finding's ``rows_dropped`` says."""
    monkeypatch.setattr(doh_doq, "MAX_ROWS", 1)
    detector = _run(
        [
            quic_initial(dst="192.0.2.1"),
            quic_initial(dst="192.0.2.2", sport=50001),
            h2c_request(),
            h2c_request(dst="192.0.2.81"),
            h2c_query(dst="192.0.2.82"),
        ]
    )
    findings = detector.finish()
    assert [f.evidence["rows_dropped"] for f in findings] == [3, 3]
    assert detector.caps() == {"doh_rows_full": 3}


def h2c_request(**kw: Any) -> HttpRequestSeen:
    fields: dict[str, Any] = {
        "file": "test.pcap", "frame": 1, "ts": 10.0, "src": "10.0.0.2", "sport": 40000,
        "dst": "192.0.2.80", "dport": 80, "transport": "tcp", "method": "GET",
        "authority": None, "path": "/dns-query?dns=AAAB", "content_type": None, "stream": 1,
    }  # fmt: skip
    fields.update(kw)
    return HttpRequestSeen(**fields)


def h2c_query(*, padded: bool = False, **kw: Any) -> Event:
    values: dict[str, Any] = {
        "dst": "192.0.2.80", "dport": 80, "transport": "tcp", "service": "doh",
        "edns": edns(padding=100) if padded else None,
    }  # fmt: skip
    values.update(kw)
    return dns_query(**values)


def h2c_response(**kw: Any) -> Event:
    values: dict[str, Any] = {
        "src": "192.0.2.80", "sport": 80, "dport": 40000, "transport": "tcp", "service": "doh",
    }  # fmt: skip
    values.update(kw)
    return dns_response(**values)


UNKNOWN_IP = "203.0.113.9"


@pytest.mark.parametrize(
    ("hello", "kept"),
    [
        # DoH by its name, wherever it goes, over TCP and over QUIC (HTTP/3).
        pytest.param(
            client_hello(dst=UNKNOWN_IP, dport=443, sni="cloudflare-dns.com", alpn=("h2",)),
            True,
            id="doh-by-name",
        ),
        pytest.param(
            quic_initial(dst=UNKNOWN_IP, dport=443, alpn=("h3",), sni="dns.google"),
            True,
            id="doh3-by-name",
        ),
        # DoH by a resolver's address without a name.
        pytest.param(
            client_hello(dst="1.1.1.1", dport=443, sni=None, alpn=("h2",)),
            True,
            id="doh-by-address",
        ),
        # DoQ by its ALPN and by its port.
        pytest.param(quic_initial(), True, id="doq-by-alpn"),
        pytest.param(
            quic_initial(dst="192.0.2.1", dport=784, alpn=("h3",), sni=None),
            True,
            id="doq-by-port",
        ),
        # Not DoH or DoQ: the web, DoT (the DoT detectors read it from its records), TLS
        # over UDP, and an empty name, which is neither a DoH host nor an IP literal.
        pytest.param(
            client_hello(dst="93.184.216.34", dport=443, sni="example.com", alpn=("h2",)),
            False,
            id="https",
        ),
        pytest.param(
            quic_initial(dst=UNKNOWN_IP, dport=443, alpn=("h3",), sni="a.example"),
            False,
            id="http3",
        ),
        pytest.param(client_hello(), False, id="dot"),
        pytest.param(
            client_hello(dst="1.1.1.1", dport=853, sni="one.one.one.one"),
            False,
            id="dot-to-a-doh-resolver",
        ),
        pytest.param(
            client_hello(transport="udp", dst=CLOUDFLARE_IP, dport=443, sni="cloudflare-dns.com"),
            False,
            id="tls-over-udp",
        ),
        pytest.param(
            client_hello(dst="1.1.1.1", dport=443, sni="", alpn=("h2",)),
            False,
            id="empty-name",
        ),
    ],
)
def test_flows_kept_whole_are_exactly_those_of_doh_and_doq_rows(hello: Event, kept: bool) -> None:
    # A DoH/DoQ row counts the packets of its connections, so its flows must be read whole;
    # any other flow may be bypassed.
    detector = DohDoqDetector(Context())
    assert detector.keeps_flow(hello) is kept
    assert bool(_run([hello]).sections()["doh_doq"]) is kept


def test_only_hellos_ask_for_a_flow_whole() -> None:
    detector = DohDoqDetector(Context())
    doh_flow = connection(dst="1.1.1.1", dport=443)
    for event in (doh_flow, h2c_request(), h2c_query(), dns_query(dst="1.1.1.1")):
        assert detector.keeps_flow(event) is False


def test_cleartext_names_draw_on_the_run_s_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TRACK_BUDGET", 2)
    names = ("a.example", "b.example", "c.example")
    detector = _run([h2c_query(frame=n, qname=name) for n, name in enumerate(names, 1)])
    (finding,) = detector.finish()
    assert finding.evidence["names"] == list(names)  # the sample still lists it
    assert finding.evidence["name_count"] == 2
    assert finding.evidence["name_count_is_lower_bound"] is True
    assert detector.caps() == {"doh_names_untracked": 1}


def test_cleartext_authorities_draw_on_the_same_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TRACK_BUDGET", 1)
    detector = _run([h2c_request(authority="doh.example"), h2c_query(qname="a.example")])
    (finding,) = detector.finish()
    assert finding.evidence["authorities"] == ["doh.example"]
    assert (finding.evidence["names"], finding.evidence["name_count"]) == (["a.example"], 0)
    assert detector.caps() == {"doh_names_untracked": 1}


@pytest.mark.parametrize("count", [10, 11])
def test_cleartext_finding_lists_the_first_ten_authorities(count: int) -> None:
    authorities = [f"doh{n}.example" for n in range(count)]
    events: list[Event] = [
        h2c_request(frame=n, authority=authority) for n, authority in enumerate(authorities, 1)
    ]
    (finding,) = _run(events).finish()
    assert finding.evidence["authorities"] == authorities[:10]
    assert finding.evidence["doh_requests"] == count


def test_cleartext_doh_to_a_known_resolver_address_names_its_provider() -> None:
    """No authority to go by: the server's address alone names the provider."""
    (finding,) = _run([h2c_request(dst="1.1.1.1", authority=None)]).finish()
    assert (finding.server, finding.evidence["provider"]) == ("1.1.1.1", "Cloudflare 1.1.1.1")


@pytest.mark.parametrize("count", [10, 11])
def test_cleartext_finding_lists_the_lowest_ten_ports(count: int) -> None:
    ports = [8000 + n for n in range(count)]
    events: list[Event] = [h2c_request(frame=n, dport=port) for n, port in enumerate(ports, 1)]
    (finding,) = _run(events).finish()
    assert finding.evidence["ports"] == ports[:10]
    assert finding.evidence["requests"] == count


def test_one_server_of_a_known_provider_is_the_finding_s_server() -> None:
    """A single server is named as itself, even when a provider is known."""
    (finding,) = _run([client_hello(dst="1.1.1.1", dport=443, sni=None, alpn=("h2",))]).finish()
    assert finding.evidence["provider"] == "Cloudflare 1.1.1.1"
    assert finding.server == "1.1.1.1"


@pytest.mark.parametrize("count", [20, 21])
def test_encrypted_finding_lists_the_first_twenty_servers(count: int) -> None:
    servers = sorted(f"192.0.2.{n}" for n in range(1, count + 1))
    hellos = [
        client_hello(sport=50000 + n, dst=server, dport=443, sni="cloudflare-dns.com",
                     alpn=("h2",))
        for n, server in enumerate(servers)
    ]  # fmt: skip
    (finding,) = _run(hellos).finish()
    assert finding.evidence["servers"] == servers[:20]
    assert finding.evidence["connections"] == count


@pytest.mark.parametrize("count", [20, 21])
def test_encrypted_finding_lists_the_first_twenty_names(count: int) -> None:
    """DoQ by port to one unknown server under many names: one finding, one row a name."""
    names = sorted(f"doq{n:02}.example" for n in range(count))
    initials = [
        quic_initial(sport=50000 + n, dst="192.0.2.1", dport=784, alpn=("h3",), sni=name)
        for n, name in enumerate(names)
    ]
    (finding,) = _run(initials).finish()
    assert finding.evidence["sni"] == names[:20]
    assert finding.evidence["connections"] == count


@pytest.mark.parametrize("count", [16, 17])
def test_encrypted_finding_lists_the_first_sixteen_alpns(count: int) -> None:
    """Each row keeps its own sixteen; the finding's union of rows is capped again."""
    offered = ["doq", *(f"p{n:02}" for n in range(count - 1))]
    initials = [
        quic_initial(sport=50000 + n, dst="192.0.2.1", sni=f"doq{n}.example",
                     alpn=tuple(offered[start : start + 8]))
        for n, start in enumerate(range(0, count, 8))
    ]  # fmt: skip
    (finding,) = _run(initials).finish()
    assert finding.evidence["alpn"] == offered[:16]
