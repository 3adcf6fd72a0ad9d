"""Flows inside tunnels: keyed by their 5-tuple and the tunnel's identity, with the same
life cycle as plain flows (the decoder feeds the table, as in a real pass)."""

from __future__ import annotations

from scapy.all import IP, TCP, raw

from dotaudit.capture.decode import Decoder
from dotaudit.capture.flows import Flow, FlowTable
from dotaudit.capture.packet import UDP, Anomaly
from tests.lab import encap
from tests.test_capture.test_decode_tunnels import (
    A,
    B,
    C,
    S,
    inner_eth,
    inner_ip,
    over_ip,
    over_udp,
)
from tests.test_capture.test_flows import T0, Recorder

VNI1 = f"vxlan:vni=1@{A}-{B}"


class Feed:
    """Frames through a Decoder into a FlowTable, numbered and timed."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self.table = FlowTable(self.rec, self.rec.anomalies.append)  # type: ignore[arg-type]
        self.decoder = Decoder(self.rec.anomalies.append, flows=self.table)
        self.frame = 0

    def __call__(self, frame: bytes, ts: float) -> None:
        self.frame += 1
        self.decoder.take(self.frame, ts, 1, frame, 0, len(frame), len(frame))

    def finish(self) -> list[Flow]:
        self.decoder.finish()
        self.table.finish()
        return self.rec.ended


def vxlan(frame: bytes, vni: int, up: bool, sport: int) -> bytes:
    src, dst = (A, B) if up else (B, A)
    return over_udp(encap.vxlan(frame, vni), 4789, src, dst, sport)


def test_both_directions_meet_and_tunnels_keep_flows_apart() -> None:
    feed = Feed()
    feed(vxlan(inner_eth(C, S), 1, True, 1111), T0)  # the query
    feed(
        vxlan(inner_eth(S, C, 53, 40000), 1, False, 2222), T0 + 0.01
    )  # its answer, other outer port
    feed(vxlan(inner_eth(C, S), 2, True, 1111), T0 + 0.02)  # same 5-tuple, other VNI
    feed(inner_eth(C, S), T0 + 0.03)  # same 5-tuple, not tunnelled
    live = feed.table.get(UDP, encap.addr(C), 40000, encap.addr(S), 53)
    assert live is not None and live.tunnel is None
    flows = feed.finish()
    assert [(f.tunnel.text if f.tunnel else None) for f in flows] == [
        VNI1,
        f"vxlan:vni=2@{A}-{B}",
        None,
    ]
    first = flows[0]
    assert (first.packets_fwd, first.packets_rev, first.first_frame, first.last_frame) == (
        1,
        1,
        1,
        2,
    )
    assert (first.client, first.cport, first.server, first.sport) == (
        encap.addr(C),
        40000,
        encap.addr(S),
        53,
    )
    assert [len(d[2]) for d in feed.rec.datagrams] == [21, 21, 21, 21]
    # No flow was ever made of the outer datagrams.
    assert feed.table.get(UDP, encap.addr(A), 1111, encap.addr(B), 4789) is None
    assert feed.table.active_flows == 0 and not feed.table._udp


def segment(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int,
            data: bytes = b"") -> bytes:  # fmt: skip
    return raw(
        IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / data
    )


def test_tcp_in_gre_has_the_whole_life_cycle() -> None:
    feed = Feed()

    def send(up: bool, flags: str, seq: int, ack: int, data: bytes = b"") -> None:
        inner = (
            segment(C, S, 40000, 853, flags, seq, ack, data)
            if up
            else segment(S, C, 853, 40000, flags, seq, ack, data)
        )
        outer = (A, B) if up else (B, A)
        feed(over_ip(encap.gre(inner, 0x0800, key=5), 47, *outer), T0 + feed.frame * 0.01)

    send(True, "S", 100, 0)
    send(False, "SA", 900, 101)
    send(True, "A", 101, 901)
    send(True, "PA", 101, 901, b"hello")
    send(False, "PA", 901, 106, b"world!")
    send(True, "FA", 106, 907)
    send(False, "FA", 907, 107)
    send(True, "A", 107, 908)
    [flow] = feed.finish()
    assert flow.tunnel is not None and flow.tunnel.text == f"gre:key=5@{A}-{B}"
    assert (flow.outcome, flow.handshake_seen, flow.closed_by, flow.mid_stream) == (
        "closed_fin",
        True,
        "client",
        False,
    )
    assert feed.rec.stream(flow, True) == b"hello"
    assert feed.rec.stream(flow, False) == b"world!"
    assert (flow.packets_fwd, flow.packets_rev) == (5, 3)


def test_icmp_error_inside_a_tunnel_rejects_the_inner_flow_only() -> None:
    feed = Feed()
    query = inner_ip(C, S, 40000, 853)
    feed(over_ip(encap.gre(query, 0x0800), 47), T0)
    feed(inner_eth(C, S), T0)  # a plain flow on another 5-tuple
    icmp = encap.ipv4(b"\x03\x03\x00\x00\x00\x00\x00\x00" + query[:28], S, C, 1)
    feed(over_ip(encap.gre(icmp, 0x0800), 47, B, A), T0 + 0.01)
    tunnelled, plain = feed.finish()
    assert (tunnelled.outcome, tunnelled.icmp, tunnelled.icmp_frame) == (
        "icmp_rejected",
        "port-unreachable",
        3,
    )
    assert plain.icmp is None and plain.outcome == "udp"


def test_an_icmp_error_outside_does_not_reach_a_tunnelled_flow() -> None:
    feed = Feed()
    query = inner_ip(C, S, 40000, 853)
    feed(over_ip(encap.gre(query, 0x0800), 47), T0)
    icmp = encap.ipv4(b"\x03\x03\x00\x00\x00\x00\x00\x00" + query[:28], S, C, 1)
    feed(encap.ethernet(icmp, 0x0800), T0 + 0.01)
    [flow] = feed.finish()
    assert flow.icmp is None


def test_tunnelled_flows_expire_and_leave_the_table() -> None:
    feed = Feed()
    for i in range(50):
        feed(vxlan(inner_eth(C, S, 30000 + i), 1, True, 1000 + i), T0 + i)
    feed(inner_eth(), T0 + 500)  # long after: every DNS flow above has gone idle
    assert len(feed.rec.ended) == 50
    assert all(f.tunnel is not None for f in feed.rec.ended)
    assert feed.table.active_flows == 1 and len(feed.table._udp) == 2  # the plain flow
    feed.finish()


def test_flow_anomalies_name_the_tunnel() -> None:
    feed = Feed()
    feed(vxlan(inner_eth(C, S), 1, True, 1111), T0 + 1)
    feed(vxlan(inner_eth(S, C, 53, 40000), 1, False, 2222), T0)  # time runs backwards
    feed.finish()
    assert [(a.what, a.tunnel) for a in feed.rec.anomalies] == [("ts_backwards", VNI1)]


def test_plain_anomalies_have_no_tunnel() -> None:
    feed = Feed()
    feed(inner_eth(C, S), T0 + 1)
    feed(inner_eth(S, C, 53, 40000), T0)
    feed.finish()
    assert feed.rec.anomalies == [
        Anomaly(
            "ts_backwards",
            2,
            T0,
            "1.000000s before an earlier packet of this flow",
            encap.addr(C),
            40000,
            encap.addr(S),
            53,
            UDP,
        )
    ]
