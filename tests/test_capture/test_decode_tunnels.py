"""Decoder: encapsulations down to the inner packet, their anomalies, and the tallies of
traffic that is not read.

Frames are built with ``tests/lab/encap.py`` (headers written from the specifications,
independently of the decoder); the expected inner fields are the values they were built
from. tshark's view of the same encapsulations is checked on real packets in
tests/conformance/test_tunnel_captures.py.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.capture.decode import MAX_MPLS_LABELS, MAX_TUNNEL_DEPTH, Decoder
from dotaudit.capture.packet import UDP, Anomaly, Packet, TunnelledPacket
from tests.lab import encap

C, S = "10.0.0.1", "10.0.0.2"
C6, S6 = "fd00::1", "fd00::2"
A, B = "192.0.2.1", "192.0.2.2"
A6, B6 = "2001:db8::a", "2001:db8::b"
PAYLOAD = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01"


def inner_ip(src: str = C, dst: str = S, sport: int = 40000, dport: int = 53) -> bytes:
    return encap.ip(encap.udp(PAYLOAD, src, dst, sport, dport), src, dst, 17)


def inner_eth(src: str = C, dst: str = S, sport: int = 40000, dport: int = 53) -> bytes:
    return encap.ethernet(
        inner_ip(src, dst, sport, dport), encap.ETH_IPV6 if ":" in src else encap.ETH_IPV4
    )


def over_ip(body: bytes, proto: int, src: str = A, dst: str = B) -> bytes:
    return encap.ethernet(
        encap.ip(body, src, dst, proto), encap.ETH_IPV6 if ":" in src else encap.ETH_IPV4
    )


def over_udp(body: bytes, dport: int, src: str = A, dst: str = B, sport: int = 5555) -> bytes:
    return over_ip(encap.udp(body, src, dst, sport, dport), 17, src, dst)


def pppoe_frame(body: bytes, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    if not tags:
        return encap.ethernet(body, encap.ETH_PPPOE_SESSION)
    return encap.MAC_B + encap.MAC_A + encap.vlan_tags(body, encap.ETH_PPPOE_SESSION, tags)


PAIR4, PAIR6 = f"{A}-{B}", f"{A6}-{B6}"
CASES: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (frame builder, tunnel text, inner IP version)
    "vxlan": (lambda: over_udp(encap.vxlan(inner_eth(), 42), 4789), f"vxlan:vni=42@{PAIR4}", "4"),
    "vxlan-ipv6-outer": (
        lambda: over_udp(encap.vxlan(inner_eth(C6, S6), 9), 4789, A6, B6),
        f"vxlan:vni=9@{PAIR6}",
        "6",
    ),
    "geneve-ethernet": (
        lambda: over_udp(
            encap.geneve(inner_eth(), 7, encap.ETH_TEB, encap.geneve_option(1, 2, bytes(8))),
            6081,
        ),
        f"geneve:vni=7@{PAIR4}",
        "4",
    ),
    "geneve-ip": (
        lambda: over_udp(encap.geneve(inner_ip(), 8, encap.ETH_IPV4), 6081),
        f"geneve:vni=8@{PAIR4}",
        "4",
    ),
    "gtpu": (lambda: over_udp(encap.gtpu(inner_ip(), 5), 2152, sport=2152), f"gtpu@{PAIR4}", "4"),
    "gtpu-extensions": (
        lambda: over_udp(
            encap.gtpu(
                inner_ip(C6, S6),
                5,
                sequence=9,
                extensions=[(0x85, b"\x10\x09"), (0x40, b"\x00\x00\x00\x00\x00\x00")],
            ),
            2152,
        ),
        f"gtpu@{PAIR4}",
        "6",
    ),
    "gre-ip": (
        lambda: over_ip(encap.gre(inner_ip(), 0x0800, key=9), 47),
        f"gre:key=9@{PAIR4}",
        "4",
    ),
    "gre-ipv6-checksum-sequence": (
        lambda: over_ip(encap.gre(inner_ip(C6, S6), 0x86DD, sequence=3, with_checksum=True), 47),
        f"gre@{PAIR4}",
        "6",
    ),
    "gretap-over-ipv6": (
        lambda: over_ip(encap.gre(inner_eth(), encap.ETH_TEB), 47, A6, B6),
        f"gre@{PAIR6}",
        "4",
    ),
    "erspan1": (lambda: over_ip(encap.gre(inner_eth(), 0x88BE), 47), f"erspan1@{PAIR4}", "4"),
    "erspan2": (
        lambda: over_ip(encap.gre(encap.erspan2(inner_eth(), 33), 0x88BE, sequence=1), 47),
        f"erspan2:session=33@{PAIR4}",
        "4",
    ),
    "erspan3-platform": (
        lambda: over_ip(
            encap.gre(encap.erspan3(inner_eth(), 44, 1, platform=bytes(8)), 0x22EB, sequence=1),
            47,
        ),
        f"erspan3:session=44@{PAIR4}",
        "4",
    ),
    "erspan3-ip": (
        lambda: over_ip(
            encap.gre(encap.erspan3(inner_ip(), 45, 1, frame_type=2), 0x22EB, sequence=1), 47
        ),
        f"erspan3:session=45@{PAIR4}",
        "4",
    ),
    "ipip": (lambda: over_ip(inner_ip(), 4), f"ipip@{PAIR4}", "4"),
    "6in4": (lambda: over_ip(inner_ip(C6, S6), 41), f"6in4@{PAIR4}", "6"),
    "4in6": (lambda: over_ip(inner_ip(), 4, A6, B6), f"4in6@{PAIR6}", "4"),
    "6in6": (lambda: over_ip(inner_ip(C6, S6), 41, A6, B6), f"6in6@{PAIR6}", "6"),
    "mpls": (lambda: encap.ethernet(encap.mpls(inner_ip(), [100, 200]), 0x8847), "mpls", "4"),
    "mpls-ipv6-multicast": (
        lambda: encap.ethernet(encap.mpls(inner_ip(C6, S6), [16]), 0x8848),
        "mpls",
        "6",
    ),
    "mpls-in-ip": (lambda: over_ip(encap.mpls(inner_ip(), [100]), 137), f"mpls@{PAIR4}", "4"),
    "mpls-in-gre": (
        lambda: over_ip(encap.gre(encap.mpls(inner_ip(), [7]), 0x8847), 47),
        f"gre@{PAIR4}>mpls",
        "4",
    ),
    "mpls-pseudowire": (
        lambda: encap.ethernet(encap.mpls(encap.pw_control_word(1) + inner_eth(), [5, 6]), 0x8847),
        "mpls>pw",
        "4",
    ),
    "mpls-pseudowire-ipv6": (
        lambda: encap.ethernet(
            encap.mpls(encap.pw_control_word(1) + inner_eth(C6, S6), [5]), 0x8847
        ),
        "mpls>pw",
        "6",
    ),
    "pppoe": (
        lambda: pppoe_frame(encap.pppoe_session(66, 0x21, inner_ip())),
        "pppoe:session=66",
        "4",
    ),
    "pppoe-ipv6-qinq": (
        lambda: pppoe_frame(
            encap.pppoe_session(67, 0x57, inner_ip(C6, S6)), ((0x88A8, 10), (0x8100, 20))
        ),
        "pppoe:session=67",
        "6",
    ),
    "pppoe-compressed-protocol": (
        # RFC 1661 §6.5: the protocol field may be one byte (0x21: IPv4).
        lambda: pppoe_frame(
            struct.pack("!BBHH", 0x11, 0, 68, 1 + len(inner_ip())) + b"\x21" + inner_ip()
        ),
        "pppoe:session=68",
        "4",
    ),
    "vxlan-in-gre": (
        lambda: over_ip(
            encap.gre(
                encap.ethernet(
                    encap.ip(encap.udp(encap.vxlan(inner_eth(), 3), A, B, 1, 4789), A, B, 17),
                    0x0800,
                ),
                encap.ETH_TEB,
                key=1,
            ),
            47,
            "198.51.100.1",
            "198.51.100.2",
        ),
        f"gre:key=1@198.51.100.1-198.51.100.2>vxlan:vni=3@{PAIR4}",
        "4",
    ),
}


class Sink(list[Anomaly]):
    def whats(self) -> list[str]:
        return [a.what for a in self]


def decode(frame: bytes, orig: int | None = None) -> tuple[Packet | None, Sink, Decoder]:
    sink = Sink()
    decoder = Decoder(sink.append)
    pkt = decoder.decode(7, 100.5, 1, frame, len(frame) if orig is None else orig)
    return pkt, sink, decoder


@pytest.mark.parametrize("name", list(CASES))
def test_inner_packet_and_tunnel(name: str) -> None:
    build, text, version = CASES[name]
    frame = build()
    pkt, sink, decoder = decode(frame)
    assert sink == []
    assert isinstance(pkt, TunnelledPacket) and pkt.tunnel is not None
    assert pkt.tunnel.text == text
    src, dst = (C, S) if version == "4" else (C6, S6)
    assert (pkt.src, pkt.dst) == (encap.addr(src), encap.addr(dst))
    assert (pkt.proto, pkt.sport, pkt.dport, pkt.payload) == (UDP, 40000, 53, PAYLOAD)
    assert (pkt.frame, pkt.ts, pkt.wire_len, pkt.truncated) == (7, 100.5, len(frame), False)
    kinds = [layer.split(":")[0].split("@")[0] for layer in text.split(">")]
    assert decoder.encapsulations == {kind: kinds.count(kind) for kind in kinds}
    assert decoder.not_ip == decoder.other_ip == {}


def test_tunnel_identity_is_the_same_both_ways() -> None:
    out, _, _ = decode(over_udp(encap.vxlan(inner_eth(), 42), 4789, A, B, sport=1))
    back, _, _ = decode(over_udp(encap.vxlan(inner_eth(S, C), 42), 4789, B, A, sport=2))
    other, _, _ = decode(over_udp(encap.vxlan(inner_eth(), 43), 4789, A, B, sport=1))
    assert out is not None and back is not None and other is not None
    assert out.tunnel is not None and back.tunnel is not None and other.tunnel is not None
    assert out.tunnel.key == back.tunnel.key
    assert out.tunnel.text == back.tunnel.text == f"vxlan:vni=42@{PAIR4}"
    assert other.tunnel.key != out.tunnel.key


def test_direction_dependent_fields_stay_out_of_the_identity() -> None:
    """GTP-U TEIDs and MPLS labels differ per direction (and per hop): keying on them would
    split a connection in two."""
    up, _, _ = decode(over_udp(encap.gtpu(inner_ip(), 0x1001), 2152, A, B))
    down, _, _ = decode(over_udp(encap.gtpu(inner_ip(S, C), 0x2002), 2152, B, A))
    assert up is not None and down is not None and up.tunnel is not None
    assert down.tunnel is not None and up.tunnel.key == down.tunnel.key
    one, _, _ = decode(encap.ethernet(encap.mpls(inner_ip(), [100, 200]), 0x8847))
    two, _, _ = decode(encap.ethernet(encap.mpls(inner_ip(S, C), [300]), 0x8847))
    assert one is not None and two is not None and one.tunnel is not None
    assert two.tunnel is not None and one.tunnel.key == two.tunnel.key


def test_plain_frames_are_not_tunnelled() -> None:
    pkt, sink, decoder = decode(inner_eth())
    assert type(pkt) is Packet and pkt.tunnel is None and sink == []
    assert decoder.encapsulations == {}


# -- nesting and hostile headers ------------------------------------------------------------


def gre_nest(depth: int) -> bytes:
    body = inner_ip()
    for _ in range(depth):
        body = encap.ip(encap.gre(body, 0x0800), A, B, 47)
    return encap.ethernet(body, 0x0800)


def test_nesting_up_to_the_cap_is_decoded() -> None:
    pkt, sink, decoder = decode(gre_nest(MAX_TUNNEL_DEPTH))
    assert sink == [] and pkt is not None and pkt.tunnel is not None
    assert pkt.tunnel.text == ">".join([f"gre@{PAIR4}"] * MAX_TUNNEL_DEPTH)
    assert decoder.encapsulations == {"gre": MAX_TUNNEL_DEPTH}


@pytest.mark.parametrize("depth", [MAX_TUNNEL_DEPTH + 1, 200])
def test_nesting_beyond_the_cap_is_an_anomaly(depth: int) -> None:
    pkt, sink, decoder = decode(gre_nest(depth))
    assert pkt is None
    assert sink.whats() == ["tunnel_too_deep"]
    assert sink[0].tunnel == ">".join([f"gre@{PAIR4}"] * MAX_TUNNEL_DEPTH)
    assert decoder.encapsulations == {"gre": MAX_TUNNEL_DEPTH}


MALFORMED = {
    "geneve version 1": (
        over_udp(b"\x40" + encap.geneve(inner_eth(), 1, encap.ETH_TEB)[1:], 6081),
        "tunnel_malformed",
        "Geneve version 1",
    ),
    "geneve options beyond the datagram": (
        over_udp(b"\x3f" + encap.geneve(b"", 1, encap.ETH_TEB)[1:], 6081),
        "snaplen_truncated|tunnel_malformed",
        "Geneve options",
    ),
    "gtp version 2 on 2152": (
        over_udp(b"\x50" + encap.gtpu(inner_ip(), 1)[1:], 2152),
        "tunnel_malformed",
        "GTP version 2",
    ),
    "gtp prime": (
        over_udp(b"\x20" + encap.gtpu(inner_ip(), 1)[1:], 2152),
        "encapsulation_not_decoded",
        "GTP'",
    ),
    "gtp length beyond the datagram": (
        over_udp(encap.gtpu(inner_ip(), 1)[:2] + b"\x7f\xff" + encap.gtpu(inner_ip(), 1)[4:], 2152),
        "tunnel_malformed",
        "GTP-U length 32767 beyond datagram",
    ),
    "gtp extension length 0": (
        over_udp(struct.pack("!BBHIHBB", 0x34, 255, 8, 1, 0, 0, 0x85) + b"\x00\x00\x00\x00", 2152),
        "tunnel_malformed",
        "GTP-U extension length 0",
    ),
    "gtp extension chain endless": (
        over_udp(
            struct.pack("!BBHIHBB", 0x34, 255, 4 + 4 * 20, 1, 0, 0, 0x85)
            + b"\x01\x00\x00\x85" * 20,
            2152,
        ),
        "tunnel_malformed",
        "more than 16 GTP-U extension headers",
    ),
    "gtp payload not ip": (
        over_udp(encap.gtpu(b"\x00" * 20, 1), 2152),
        "encapsulation_not_decoded",
        "GTP-U payload starting 0x00, not IP",
    ),
    "gre version 1 (pptp)": (
        over_ip(b"\x30\x01\x88\x0b" + bytes(8), 47),
        "encapsulation_not_decoded",
        "GRE version 1 (PPTP), protocol 0x880b",
    ),
    "gre version 5": (
        over_ip(b"\x00\x05\x08\x00" + inner_ip(), 47),
        "tunnel_malformed",
        "GRE version 5",
    ),
    "gre source routing": (
        over_ip(b"\x40\x00\x08\x00" + inner_ip(), 47),
        "encapsulation_not_decoded",
        "GRE with source routing (RFC 1701)",
    ),
    "gre unknown protocol": (
        over_ip(encap.gre(b"xyz", 0x1234), 47),
        "encapsulation_not_decoded",
        "GRE protocol 0x1234",
    ),
    "gre wccp": (
        over_ip(encap.gre(bytes(24), 0x883E), 47),
        "encapsulation_not_decoded",
        "GRE protocol 0x883e (WCCP)",
    ),
    "erspan ii with version 2": (
        over_ip(encap.gre(b"\x20" + encap.erspan2(inner_eth(), 1)[1:], 0x88BE, sequence=1), 47),
        "tunnel_malformed",
        "ERSPAN version 2 in GRE protocol 0x88be",
    ),
    "erspan iii unknown frame type": (
        over_ip(encap.gre(encap.erspan3(inner_eth(), 1, 0, frame_type=5), 0x22EB, sequence=1), 47),
        "encapsulation_not_decoded",
        "ERSPAN III frame type 5",
    ),
    "pppoe bad version": (
        pppoe_frame(b"\x21" + encap.pppoe_session(1, 0x21, inner_ip())[1:]),
        "tunnel_malformed",
        "PPPoE session version/type 0x21 code 0x00",
    ),
    "pppoe length beyond the frame": (
        pppoe_frame(encap.pppoe_session(1, 0x21, inner_ip())[:4] + b"\x7f\xff" + inner_ip()),
        "tunnel_malformed",
        "PPPoE length 32767 beyond frame",
    ),
    "pppoe length 1": (
        pppoe_frame(struct.pack("!BBHH", 0x11, 0, 1, 1) + b"\x21" + bytes(40)),
        "tunnel_malformed",
        "PPPoE length 1",
    ),
    "ppp protocol not decoded": (
        pppoe_frame(encap.pppoe_session(1, 0x0281, encap.mpls(inner_ip(), [1]))),
        "encapsulation_not_decoded",
        "PPP protocol 0x0281",
    ),
    "mpls stack without bottom": (
        encap.ethernet(
            struct.pack("!I", 100 << 12 | 64) * (MAX_MPLS_LABELS + 1) + inner_ip(), 0x8847
        ),
        "tunnel_malformed",
        f"more than {MAX_MPLS_LABELS} MPLS labels",
    ),
    "mpls payload nibble 5": (
        encap.ethernet(encap.mpls(b"\x50" + bytes(40), [1]), 0x8847),
        "encapsulation_not_decoded",
        "MPLS payload starting 0x50 (pseudowire, not IP)",
    ),
    "mpls pseudowire without a recognisable frame": (
        encap.ethernet(encap.mpls(encap.pw_control_word(1) + bytes(60), [1]), 0x8847),
        "encapsulation_not_decoded",
        "MPLS payload starting 0x00 (pseudowire, not IP)",
    ),
    "mpls pseudowire with a bad ipv4 checksum": (
        encap.ethernet(
            encap.mpls(
                encap.pw_control_word(1) + inner_eth()[:24] + b"\xde\xad" + inner_eth()[26:], [1]
            ),
            0x8847,
        ),
        "encapsulation_not_decoded",
        "MPLS payload starting 0x00 (pseudowire, not IP)",
    ),
    "ip protocol l2tpv3": (
        over_ip(bytes(40), 115),
        "encapsulation_not_decoded",
        "IP protocol 115 (L2TPv3)",
    ),
    "ip protocol l2tpv3 in ipv6": (
        over_ip(bytes(40), 115, A6, B6),
        "encapsulation_not_decoded",
        "IP protocol 115 (L2TPv3)",
    ),
    "unknown ethertype": (
        encap.ethernet(bytes(46), 0x1234),
        "encapsulation_not_decoded",
        "ethertype 0x1234",
    ),
    "macsec": (
        encap.ethernet(bytes(46), 0x88E5),
        "encapsulation_not_decoded",
        "ethertype 0x88e5 (MACsec)",
    ),
    "unknown ethertype in vxlan": (
        over_udp(encap.vxlan(encap.ethernet(bytes(46), 0x4321), 1), 4789),
        "encapsulation_not_decoded",
        "ethertype 0x4321",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_bad_headers_are_named_anomalies(name: str) -> None:
    frame, what, detail = MALFORMED[name]
    pkt, sink, _ = decode(frame)
    assert pkt is None
    assert len(sink) == 1
    assert sink[0].what in what.split("|")
    assert sink[0].detail.startswith(detail), sink[0].detail


def test_anomaly_inside_a_tunnel_names_it() -> None:
    frame = over_udp(encap.vxlan(encap.ethernet(b"\x45" + bytes(10), 0x0800), 5), 4789)
    pkt, sink, _ = decode(frame)
    assert pkt is None
    assert [(a.what, a.tunnel) for a in sink] == [("ip_header_malformed", f"vxlan:vni=5@{PAIR4}")]


@pytest.mark.parametrize("name", list(CASES))
def test_every_cut_is_a_packet_or_an_anomaly(name: str) -> None:
    """Cut anywhere: by the snapshot length (the original was whole) or for real (every
    length field lies). Never an exception, never silence."""
    frame = CASES[name][0]()
    for size in range(len(frame)):
        for orig in (len(frame), size):
            pkt, sink, _ = decode(frame[:size], orig)
            assert pkt is not None or sink, (size, orig)
            if orig > size:  # cut by the capture: only ever reported as that
                assert set(sink.whats()) <= {"snaplen_truncated"}, (size, sink)


# -- what is not read: tallied, or named --------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "tally"),
    [
        (encap.ethernet(bytes(28), 0x0806), {"arp": 1}),
        (encap.ethernet(bytes(46), 0x88CC), {"lldp": 1}),
        (encap.MAC_B + encap.MAC_A + b"\x00\x26\x42\x42\x03" + bytes(38), {"llc": 1}),
        (encap.ethernet(encap.pppoe_padi(b"x"), 0x8863), {"pppoe-discovery": 1}),
        (
            pppoe_frame(encap.pppoe_session(1, 0xC021, encap.lcp_echo_request(1, 2))),
            {"ppp-lcp": 1},
        ),
        (over_udp(encap.gtpu(b"", 0, message=1, sequence=1), 2152), {"gtpu-signalling": 1}),
        (
            encap.ethernet(encap.mpls(b"\x10\x00\x00\x07" + bytes(20), [13]), 0x8847),
            {"mpls-ach": 1},
        ),
        (over_ip(encap.gre(b"", 0), 47), {"gre-keepalive": 1}),
        (over_udp(encap.vxlan(encap.ethernet(bytes(28), 0x0806), 1), 4789), {"arp": 1}),
    ],
)
def test_ordinary_non_ip_frames_are_tallied(frame: bytes, tally: dict[str, int]) -> None:
    pkt, sink, decoder = decode(frame)
    assert (pkt, list(sink)) == (None, [])
    assert decoder.not_ip == tally


@pytest.mark.parametrize(
    ("proto", "name"),
    [(2, "igmp"), (50, "esp"), (89, "ospf"), (112, "vrrp"), (132, "sctp"), (253, "ip-proto-253")],
)
def test_other_ip_protocols_are_tallied(proto: int, name: str) -> None:
    for outer in ((A, B), (A6, B6)):
        pkt, sink, decoder = decode(over_ip(bytes(24), proto, *outer))
        assert (pkt, list(sink)) == (None, [])
        assert decoder.other_ip == {name: 1}


def test_loopback_family_not_ip_is_tallied() -> None:
    sink = Sink()
    decoder = Decoder(sink.append)
    assert decoder.decode(1, 1.0, 0, struct.pack("<I", 7) + bytes(20), 24) is None
    assert decoder.not_ip == {"loopback-family-7": 1} and sink == []


# -- fuzzing ---------------------------------------------------------------------------------

LAYERS: list[Callable[[bytes, bytes], bytes]] = [
    # each wraps (Ethernet frame, its IP packet) into a new Ethernet frame
    lambda eth, ip: over_udp(encap.vxlan(eth, 1), 4789),
    lambda eth, ip: over_udp(encap.geneve(eth, 2, encap.ETH_TEB), 6081),
    lambda eth, ip: over_udp(encap.gtpu(ip, 3, sequence=1, extensions=[(0x85, b"\x10\x01")]), 2152),
    lambda eth, ip: over_ip(encap.gre(eth, encap.ETH_TEB, key=4), 47),
    lambda eth, ip: over_ip(encap.gre(encap.erspan2(eth, 5), 0x88BE, sequence=1), 47),
    lambda eth, ip: over_ip(encap.gre(encap.erspan3(eth, 6, 0, platform=bytes(8)), 0x22EB), 47),
    lambda eth, ip: over_ip(ip, 4 if ip[0] >> 4 == 4 else 41),
    lambda eth, ip: over_ip(ip, 4 if ip[0] >> 4 == 4 else 41, A6, B6),
    lambda eth, ip: encap.ethernet(encap.mpls(ip, [7, 8]), 0x8847),
    lambda eth, ip: encap.ethernet(encap.mpls(encap.pw_control_word(1) + eth, [9]), 0x8847),
    lambda eth, ip: pppoe_frame(
        encap.pppoe_session(10, 0x21 if ip[0] >> 4 == 4 else 0x57, ip), ((0x8100, 3),)
    ),
]


PSEUDOWIRE = 9
IP_ONLY = {2, 6, 7, 8, 10, PSEUDOWIRE}
"""Layers that carry an IP packet (or, the pseudowire, an Ethernet frame that is only
decoded when it carries IP: see decode._pw_ethernet)."""


def nest(choices: list[int]) -> tuple[bytes, int]:
    """The inner frame in the chosen layers (innermost first) and how many layers that
    makes: an IP-only layer over a frame that is not IP gets GRE (Ethernet) in between."""
    frame, layers = inner_eth(), 0
    for choice in choices:
        if choice in IP_ONLY and frame[12:14] not in (b"\x08\x00", b"\x86\xdd"):
            frame, layers = over_ip(encap.gre(frame, encap.ETH_TEB), 47), layers + 1
        frame = LAYERS[choice](frame, frame[14:])
        layers += 2 if choice == PSEUDOWIRE else 1  # mpls>pw
    return frame, layers


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    choices=st.lists(st.integers(0, len(LAYERS) - 1), min_size=1, max_size=MAX_TUNNEL_DEPTH + 3),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 10_000),
)
def test_nested_and_mangled_tunnels_never_crash(
    choices: list[int], edits: list[tuple[int, int]], cut: int
) -> None:
    whole, layers = nest(choices)
    pkt, sink, _ = decode(whole)
    if layers <= MAX_TUNNEL_DEPTH:
        assert pkt is not None and pkt.tunnel is not None and sink == []
        assert pkt.tunnel.text.count(">") == layers - 1
        assert pkt.payload == PAYLOAD
    else:
        assert pkt is None and sink.whats() == ["tunnel_too_deep"]
    mangled = bytearray(whole)
    for at, value in edits:
        mangled[at % len(mangled)] = value
    data = bytes(mangled[: cut % (len(mangled) + 1)])
    for orig in (len(whole), len(data)):
        pkt, sink, decoder = decode(data, orig)  # must not raise
        assert pkt is None or isinstance(pkt, Packet)
        assert set(sink.whats()) <= DECODER_ANOMALIES
        assert sum(decoder.encapsulations.values()) <= MAX_TUNNEL_DEPTH


DECODER_ANOMALIES = {
    "encapsulation_not_decoded", "icmp_quote_malformed", "ip_header_malformed",
    "ipv6_ext_header_malformed", "link_header_malformed", "snaplen_truncated",
    "tcp_header_malformed", "tunnel_malformed", "tunnel_too_deep", "udp_header_malformed",
    "vlan_too_deep", "ip_frag_malformed", "ip_frag_oversize", "ip_frag_overlap",
}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([4789, 6081, 2152]))
def test_random_udp_tunnel_payloads_are_read_or_reported(payload: bytes, port: int) -> None:
    """Whatever follows a tunnel port is either a header we counted or an anomaly."""
    _pkt, sink, decoder = decode(over_udp(payload, port))
    assert decoder.encapsulations or sink
    assert set(sink.whats()) <= DECODER_ANOMALIES
