"""When the dispatcher lets the flow table bypass a flow (see ``FlowTable.bypass``): after
a TLS handshake, after a QUIC Initial, at once for a payload it does not recognise; never
for DNS, DoT (port 853 or ALPN "dot"), DoQ ports, or a flow a detector keeps whole. The
captures are built with the benchmark's frame builders (real TLS and QUIC messages)."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from dotaudit.detect.base import Context
from dotaudit.model.events import ConnectionSeen, Event
from dotaudit.pipeline import CaptureRun, analyze_file
from tests.conftest import ROOT
from tests.test_capture.capwrite import pcap

sys.path.insert(0, str(ROOT / "bench"))
import quicinit
import tlsmsg
from wire import ACK, FIN, PSH, Link, Tcp

CLIENT = bytes([192, 168, 1, 20])
MAC_C, MAC_S = b"\x02\0\0\0\0\1", b"\x02\0\0\0\0\2"


def tls_flow(server: bytes, port: int, sni: str, alpn: tuple[str, ...], cport: int) -> list[bytes]:
    rng = random.Random(cport)
    tcp = Tcp(Link(MAC_C, MAC_S, CLIENT, server, cport, port), 1000, 50000, 1, 1)
    frames = [tcp.syn(1460), tcp.syn_ack(1460), tcp.seg(True)]
    hello = tlsmsg.record(22, tlsmsg.client_hello(rng, sni, "openssl", alpn), 0x0301)
    frames += tcp.data(True, hello, 1448)
    frames += tcp.data(False, tlsmsg.server_flight_13(rng), 1448)
    frames.append(tcp.seg(True))
    for _ in range(10):
        frames += tcp.data(True, tlsmsg.app_data(rng, 100), 1448)
        frames += tcp.data(False, tlsmsg.app_data(rng, 3000), 1448)
    frames += [tcp.seg(True, flags=FIN | ACK), tcp.seg(False, flags=FIN | ACK), tcp.seg(True)]
    return frames


def quic_flow(server: bytes, port: int, sni: str, alpn: tuple[str, ...], cport: int) -> list[bytes]:
    rng = random.Random(cport)
    link = Link(MAC_C, MAC_S, CLIENT, server, cport, port)
    dcid, scid = rng.randbytes(8), rng.randbytes(8)
    hello = tlsmsg.client_hello(
        rng, sni, "chrome", alpn, quic_params=quicinit.transport_params(scid)
    )
    frames = [link.udp(True, d) for d in quicinit.client_initials(dcid, scid, hello)]
    reply = quicinit.server_initial(dcid, scid, rng.randbytes(8), b"\x02\0\0\x04" + bytes(4), b"")
    frames.append(link.udp(False, reply))
    for _ in range(20):
        frames.append(link.udp(False, b"\x45" + rng.randbytes(1000)))
        frames.append(link.udp(True, b"\x45" + rng.randbytes(40)))
    return frames


def other_flow(server: bytes, port: int, cport: int) -> list[bytes]:
    tcp = Tcp(Link(MAC_C, MAC_S, CLIENT, server, cport, port), 7, 9, 1, 1)
    frames = [tcp.syn(1460), tcp.syn_ack(1460), tcp.seg(True)]
    frames.append(tcp.seg(True, b"SSH-2.0-OpenSSH_9.2\r\n", ACK | PSH))
    frames += [tcp.seg(False, b"z" * 1000) for _ in range(20)]
    return frames


def capture(tmp: Path, *flows: list[bytes]) -> Path:
    frames = [f for flow in flows for f in flow]
    out = tmp / "flows.pcap"
    out.write_bytes(pcap([(1_700_000_000 + i * 0.01, f) for i, f in enumerate(frames)]))
    return out


def connections(events: list[Event]) -> dict[int, ConnectionSeen]:
    return {e.dport: e for e in events if isinstance(e, ConnectionSeen)}


def run_events(path: Path, **kwargs: Any) -> list[Event]:
    return list(CaptureRun(path, hash_input=False, **kwargs).events())


GOOGLE = bytes([8, 8, 8, 8])
WEB = bytes([93, 184, 216, 34])


def test_what_is_bypassed_and_what_is_kept_whole(tmp_path: Path) -> None:
    path = capture(
        tmp_path,
        tls_flow(WEB, 443, "www.example.com", ("h2",), 40001),
        tls_flow(WEB, 853, "dns.example", (), 40002),  # DoT by port
        tls_flow(WEB, 8443, "dns.example", ("dot",), 40003),  # DoT by ALPN
        quic_flow(WEB, 443, "www.example.com", ("h3",), 40004),
        quic_flow(WEB, 784, "dns.example", ("doq",), 40005),  # DoQ port
        other_flow(WEB, 22, 40006),
    )
    events = run_events(path)
    conns = connections(events)
    dot_port, dot_alpn, doq, ssh = (conns[p] for p in (853, 8443, 784, 22))
    server_hello = {e.sport: e for e in events if e.type == "tls_server_hello"}
    web = next(
        c for c in events if isinstance(c, ConnectionSeen) and c.app == "tls" and c.dport == 443
    )
    quic = next(
        c for c in events if isinstance(c, ConnectionSeen) and c.app == "quic" and c.dport == 443
    )
    # Bypassed once nothing more is reported: TLS after both handshake halves...
    assert web.bypassed_after is not None and web.bypassed_after >= server_hello[443].frame
    assert web.tls_records_truncated
    # ... QUIC after its Initial, anything unrecognised at its first data.
    assert quic.bypassed_after is not None and ssh.bypassed_after is not None
    for kept in (dot_port, dot_alpn, doq):
        assert kept.bypassed_after is None
    full = connections(run_events(path, prefilter=False))
    assert full[853].packets_fwd == dot_port.packets_fwd
    assert full[8443].tls_records_rev == dot_alpn.tls_records_rev
    assert full[22].packets_rev > ssh.packets_rev


def test_a_detector_keeps_doh_flows_whole(tmp_path: Path) -> None:
    """DoH rows count the packets of their connections: analyze keeps those flows whole,
    while the fact stream alone bypasses them."""
    path = capture(
        tmp_path,
        tls_flow(GOOGLE, 443, "dns.google", ("h2",), 41001),
        quic_flow(GOOGLE, 443, "dns.google", ("h3",), 41002),
    )
    bypassed = [c for c in run_events(path) if isinstance(c, ConnectionSeen)]
    assert all(c.bypassed_after is not None for c in bypassed)
    seen: list[ConnectionSeen] = []
    from dotaudit.detect.doh_doq import DohDoqDetector

    original = DohDoqDetector.on_event

    def spy(self: DohDoqDetector, event: Event) -> None:
        if isinstance(event, ConnectionSeen):
            seen.append(event)
        original(self, event)

    DohDoqDetector.on_event = spy  # type: ignore[method-assign]
    try:
        result = analyze_file(path, Context())
        full = analyze_file(path, Context(), prefilter=False)
    finally:
        DohDoqDetector.on_event = original  # type: ignore[method-assign]
    assert seen and all(c.bypassed_after is None for c in seen)
    assert [f.to_dict() for f in result.findings] == [f.to_dict() for f in full.findings]
    assert any(f.id == "DA-DOH-001" for f in result.findings)


def test_dns_is_never_bypassed(tmp_path: Path) -> None:
    from tests.pcapgen import dns_udp_exchange, write

    packets = []
    for i in range(20):
        packets += dns_udp_exchange(f"n{i}.example.com", 1_700_000_000 + i, sport=40000, qid=i)
    path = write(tmp_path / "dns.pcap", packets)
    events = run_events(path)
    assert sum(e.type == "dns" for e in events) == 40
    assert all(e.bypassed_after is None for e in events if isinstance(e, ConnectionSeen))
