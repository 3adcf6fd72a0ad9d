"""Decoder: link types, IPv4/IPv6 headers, TCP/UDP fields, ICMP error quoting, anomalies.

The oracle for field values is scapy, which builds each packet from the same values.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import (
    AH,
    ARP,
    ESP,
    ICMP,
    IP,
    TCP,
    UDP,
    CookedLinux,
    Dot1AD,
    Dot1Q,
    Ether,
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Loopback,
    raw,
)

from dotaudit.capture.decode import Decoder
from dotaudit.capture.packet import SYN, Anomaly, Packet
from tests.fuzzing import examples
from tests.test_capture.capwrite import MACS


def eth(**fields: int) -> Ether:
    return Ether(**MACS, **fields)


C4, S4 = "192.0.2.10", "198.51.100.53"
C6, S6 = "2001:db8::10", "2001:db8:1::53"
TCP4 = (
    IP(src=C4, dst=S4, ttl=61, id=4242)
    / TCP(sport=40000, dport=853, seq=1000, ack=2000, flags="PA")
    / b"hello tls"
)
UDP6 = IPv6(src=C6, dst=S6, hlim=55) / UDP(sport=5353, dport=53) / b"dns query"


def a4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def a6(text: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(text).packed


class Sink(list[Anomaly]):
    def whats(self) -> list[str]:
        return [a.what for a in self]


def decode(linktype: int, data: bytes, orig: int | None = None) -> tuple[Packet | None, Sink]:
    sink = Sink()
    pkt = Decoder(sink.append).decode(7, 100.5, linktype, data, len(data) if orig is None else orig)
    return pkt, sink


def check_tcp4(pkt: Packet | None) -> None:
    assert pkt is not None
    assert (pkt.ip_version, pkt.src, pkt.dst) == (4, a4(C4), a4(S4))
    assert (pkt.proto, pkt.ttl, pkt.ip_id) == (6, 61, 4242)
    assert (pkt.sport, pkt.dport, pkt.seq, pkt.ack) == (40000, 853, 1000, 2000)
    assert pkt.flags == int(TCP4[TCP].flags) == 0x18
    assert pkt.payload == b"hello tls"
    assert (pkt.frame, pkt.ts, pkt.truncated, pkt.icmp) == (7, 100.5, False, None)


def check_udp6(pkt: Packet | None) -> None:
    assert pkt is not None
    assert (pkt.ip_version, pkt.src, pkt.dst, pkt.proto, pkt.ttl) == (6, a6(C6), a6(S6), 17, 55)
    assert (pkt.sport, pkt.dport, pkt.payload) == (5353, 53, b"dns query")


def et(version: int) -> int:
    return 0x0800 if version == 4 else 0x86DD


def sll2(proto: int, ip: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 3, 1, 0, 6, b"\x02" * 6) + ip


def null_le(family: int, ip: bytes) -> bytes:
    return struct.pack("<I", family) + ip


LINKS: list[tuple[str, int, Callable[[bytes, int], bytes]]] = [
    ("ethernet", 1, lambda ip, v: raw(eth(type=et(v)) / ip)),
    ("vlan", 1, lambda ip, v: raw(eth() / Dot1Q(vlan=5, type=et(v)) / ip)),
    (
        "qinq-88a8",
        1,
        lambda ip, v: raw(eth() / Dot1AD(vlan=7) / Dot1Q(vlan=5, type=et(v)) / ip),
    ),
    (
        "qinq-9100",
        1,
        lambda ip, v: raw(eth(type=0x9100) / Dot1Q(vlan=7) / Dot1Q(vlan=5, type=et(v)) / ip),
    ),
    ("sll", 113, lambda ip, v: raw(CookedLinux(proto=et(v)) / ip)),
    ("sll2", 276, lambda ip, v: sll2(et(v), ip)),
    ("raw101", 101, lambda ip, v: ip),
    ("raw12", 12, lambda ip, v: ip),
    ("raw14", 14, lambda ip, v: ip),
    ("null", 0, lambda ip, v: null_le(2 if v == 4 else 30, ip)),
    ("null-bsd-v6-24", 0, lambda ip, v: null_le(2 if v == 4 else 24, ip)),
    ("null-big-endian-host", 0, lambda ip, v: struct.pack(">I", 2 if v == 4 else 28) + ip),
    ("loop", 108, lambda ip, v: struct.pack(">I", 2 if v == 4 else 24) + ip),
]


@pytest.mark.parametrize(("name", "linktype", "wrap"), LINKS, ids=[x[0] for x in LINKS])
def test_link_types(name: str, linktype: int, wrap: Callable[[bytes, int], bytes]):
    pkt, sink = decode(linktype, wrap(raw(TCP4), 4))
    check_tcp4(pkt)
    pkt, sink2 = decode(linktype, wrap(raw(UDP6), 6))
    check_udp6(pkt)
    assert sink == [] and sink2 == []


def test_raw_ipv4_and_ipv6_link_types():
    check_tcp4(decode(228, raw(TCP4))[0])
    check_udp6(decode(229, raw(UDP6))[0])


def test_scapy_loopback_header_is_null_linktype():
    check_tcp4(decode(0, raw(Loopback(type=2) / TCP4))[0])


def test_unknown_linktype_reported_once():
    sink = Sink()
    dec = Decoder(sink.append)
    assert dec.decode(1, 1.0, 147, raw(TCP4), 50) is None
    assert dec.decode(2, 2.0, 147, raw(TCP4), 50) is None
    assert dec.decode(3, 3.0, 148, raw(TCP4), 50) is None
    assert [(a.what, a.frame) for a in sink] == [("unknown_linktype", 1), ("unknown_linktype", 3)]


@pytest.mark.parametrize(
    "frame",
    [
        raw(eth() / ARP()),
        raw(eth() / IP() / ICMP(type=8)),
        raw(eth() / IPv6() / ICMPv6EchoRequest()),
        raw(eth(type=0x88CC) / (b"\0" * 46)),
        raw(eth() / IP() / ESP(spi=1)),
        raw(eth() / IPv6() / ESP(spi=1)),
    ],
    ids=["arp", "echo", "echo6", "lldp", "esp", "esp6"],
)
def test_uninteresting_frames_are_none_without_anomaly(frame: bytes):
    assert decode(1, frame) == (None, [])


def test_ethernet_padding_trimmed():
    small = eth() / IP(src=C4, dst=S4) / UDP(sport=1, dport=53) / b"ab"
    data = raw(small) + b"\0" * (60 - len(small))
    pkt, sink = decode(1, data)
    assert pkt is not None and pkt.payload == b"ab" and sink == []


def test_ipv4_options_header_length():
    pkt = IP(src=C4, dst=S4, options=b"\x01\x01\x01\x00") / UDP(sport=9, dport=53) / b"x"
    got, _ = decode(228, raw(pkt))
    assert got is not None and (got.sport, got.payload) == (9, b"x")


def test_ipv6_extension_headers_walked():
    ip = (
        IPv6(src=C6, dst=S6)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting(addresses=[])
        / AH(nh=6, payloadlen=4, spi=1, icv=b"\0" * 12)  # (4 + 2) * 4 = 24 bytes
        / TCP(sport=1, dport=853, flags="S")
        / b"tail"
    )
    pkt, sink = decode(229, raw(ip))
    assert pkt is not None and sink == []
    assert (pkt.proto, pkt.sport, pkt.dport, pkt.flags, pkt.payload) == (6, 1, 853, SYN, b"tail")


def test_vlan_too_deep():
    tags = eth()
    for _ in range(9):
        tags = tags / Dot1Q(vlan=1)
    pkt, sink = decode(1, raw(tags / TCP4))
    assert pkt is None and sink.whats() == ["vlan_too_deep"]


def test_snaplen_truncated_tcp_keeps_what_was_captured():
    frame = raw(eth() / TCP4)
    pkt, sink = decode(1, frame[:60], orig=len(frame))
    assert pkt is not None and pkt.truncated
    assert pkt.payload == b"hello "  # 60 - 14 - 20 - 20 captured payload bytes
    assert pkt.wire_len == len(frame)
    assert [(a.what, a.frame) for a in sink] == [("snaplen_truncated", 7)]


def test_snaplen_truncated_udp6():
    frame = raw(eth() / UDP6)
    pkt, sink = decode(1, frame[:-3], orig=len(frame))
    assert pkt is not None and pkt.truncated and pkt.payload == b"dns qu"
    assert sink.whats() == ["snaplen_truncated"]


def test_snaplen_cut_inside_tcp_header():
    frame = raw(eth() / TCP4)
    pkt, sink = decode(1, frame[:40], orig=len(frame))
    assert pkt is None and sink.whats() == ["snaplen_truncated"]


def test_padding_cut_is_not_truncation():
    small = raw(eth() / IP(src=C4, dst=S4) / UDP(sport=1, dport=53) / b"ab")
    pkt, sink = decode(1, small, orig=64)  # only the Ethernet padding/FCS was not captured
    assert pkt is not None and not pkt.truncated and sink == []


def set_byte(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + bytes([value]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("linktype", "data", "what"),
    [
        (228, set_byte(raw(TCP4), 0, 0x43), "ip_header_malformed"),  # IHL 3
        (228, raw(TCP4)[:-4], "ip_header_malformed"),  # total length beyond frame
        (228, raw(TCP4)[:12], "ip_header_malformed"),
        (228, set_byte(raw(TCP4), 32, 0x20), "tcp_header_malformed"),  # data offset 2
        (228, set_byte(raw(TCP4), 32, 0xF0), "tcp_header_malformed"),  # beyond the segment
        (229, set_byte(raw(UDP6), 45, 4), "udp_header_malformed"),  # UDP length 4
        (229, set_byte(raw(UDP6), 45, 200), "udp_header_malformed"),  # beyond the payload
        (229, raw(IPv6(src=C6, dst=S6, nh=0, plen=8) / (b"\x06\x05" + b"\0" * 6)),
         "ipv6_ext_header_malformed"),
        (1, raw(eth())[:10], "link_header_malformed"),
        (101, raw(TCP4)[1:], "ip_header_malformed"),  # version nibble 5
    ],
)  # fmt: skip
def test_malformed_headers(linktype: int, data: bytes, what: str):
    pkt, sink = decode(linktype, data)
    assert pkt is None
    assert sink.whats() == [what]
    assert sink[0].frame == 7


def test_tso_zero_total_length_uses_frame():
    data = bytearray(raw(TCP4))
    data[2:4] = b"\0\0"
    pkt, sink = decode(228, bytes(data))
    assert pkt is not None and pkt.payload == b"hello tls" and sink == []


# -- ICMP errors -------------------------------------------------------------------

SYN4 = IP(src=C4, dst=S4) / TCP(sport=40001, dport=853, flags="S")
UDP4 = IP(src=C4, dst=S4) / UDP(sport=40002, dport=53) / b"query"
SYN6 = IPv6(src=C6, dst=S6) / TCP(sport=40003, dport=853, flags="S")


@pytest.mark.parametrize(
    ("code", "kind"),
    [(13, "admin-prohibited"), (10, "admin-prohibited"), (9, "admin-prohibited"),
     (3, "port-unreachable"), (1, "host-unreachable"), (0, "net-unreachable"),
     (2, "proto-unreachable")],
)  # fmt: skip
@pytest.mark.parametrize("quoted", [SYN4, UDP4], ids=["tcp-syn", "udp"])
def test_icmp4_dest_unreachable(code: int, kind: str, quoted: IP):
    router = "203.0.113.1"
    err = IP(src=router, dst=C4, ttl=250) / ICMP(type=3, code=code) / raw(quoted)
    pkt, sink = decode(1, raw(eth() / err))
    assert pkt is not None and sink == []
    assert (pkt.proto, pkt.src, pkt.dst, pkt.ttl) == (1, a4(router), a4(C4), 250)
    q = pkt.icmp
    assert q is not None
    assert (q.kind, q.icmp_type, q.icmp_code) == (kind, 3, code)
    assert (q.proto, q.src, q.dst) == (quoted.proto, a4(C4), a4(S4))
    assert (q.sport, q.dport) == (quoted.payload.sport, quoted.payload.dport)


def test_icmp4_time_exceeded_with_short_quote():
    err = IP(src="203.0.113.9", dst=C4) / ICMP(type=11, code=0) / raw(SYN4)[:28]
    pkt, _ = decode(228, raw(err))
    assert pkt is not None and pkt.icmp is not None
    assert (pkt.icmp.kind, pkt.icmp.sport, pkt.icmp.dport) == ("time-exceeded", 40001, 853)


@pytest.mark.parametrize(
    ("layer", "kind"),
    [
        (ICMPv6DestUnreach(code=1), "admin-prohibited"),
        (ICMPv6DestUnreach(code=4), "port-unreachable"),
        (ICMPv6DestUnreach(code=3), "host-unreachable"),
        (ICMPv6DestUnreach(code=6), "reject-route"),
        (ICMPv6TimeExceeded(), "time-exceeded"),
    ],
)
@pytest.mark.parametrize("quoted", [SYN6, UDP6], ids=["tcp-syn", "udp"])
def test_icmp6_errors(layer, kind: str, quoted: IPv6):  # type: ignore[no-untyped-def]
    err = IPv6(src="2001:db8:ffff::1", dst=C6) / layer / raw(quoted)
    pkt, sink = decode(1, raw(eth() / err))
    assert pkt is not None and sink == []
    assert pkt.proto == 58 and pkt.icmp is not None
    q = pkt.icmp
    assert (q.kind, q.proto, q.src, q.dst) == (kind, quoted.nh, a6(C6), a6(S6))
    assert (q.sport, q.dport) == (quoted.payload.sport, quoted.payload.dport)


def test_icmp_error_with_garbage_quote_is_anomaly():
    err = IP(src="203.0.113.1", dst=C4) / ICMP(type=3, code=3) / (b"\x99" * 4)
    pkt, sink = decode(228, raw(err))
    assert pkt is None and sink.whats() == ["icmp_quote_malformed"]


# -- hostile input -----------------------------------------------------------------

LINKTYPES = [1, 113, 276, 101, 12, 14, 228, 229, 0, 108, 9999]
SEEDS = [
    raw(eth() / TCP4),
    raw(eth() / UDP6),
    raw(eth() / IP() / ICMP(type=3) / raw(SYN4)),
]


@settings(max_examples=examples(400), deadline=None)
@given(st.sampled_from(LINKTYPES), st.binary(max_size=200), st.integers(0, 400))
def test_random_bytes_never_raise(linktype: int, data: bytes, orig: int):
    sink = Sink()
    pkt = Decoder(sink.append).decode(1, 0.0, linktype, data, orig)
    # Every anomaly names what went wrong and where; at most one per frame.
    assert len(sink) <= 1
    assert all(a.what and a.frame == 1 and a.ts == 0.0 for a in sink)
    if linktype == 9999:  # no such link type: said so, not silently dropped
        assert pkt is None and sink.whats() == ["unknown_linktype"]
    if pkt is not None:
        # A decoded packet is built only from the frame's own bytes.
        assert sink == []
        assert (pkt.frame, pkt.ts) == (1, 0.0)
        assert pkt.ip_version in (4, 6)
        assert pkt.src in data and pkt.dst in data and pkt.payload in data


@settings(max_examples=examples(400), deadline=None)
@given(
    st.sampled_from(LINKTYPES),
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    st.integers(0, 200),
)
def test_mutated_frames_never_raise(linktype: int, seed: bytes, edits, cut: int):  # type: ignore[no-untyped-def]
    data = bytearray(seed)
    for where, value in edits:
        data[where % len(data)] = value
    sink = Sink()
    pkt = Decoder(sink.append).decode(1, 0.0, linktype, bytes(data[:cut]), len(data))
    if pkt is not None:
        assert len(pkt.payload) <= len(data)


# -- frames that could not be decoded, counted per reason --------------------------------


def test_every_frame_of_an_unknown_link_type_is_counted_undecoded():
    """One anomaly per link type (above), but the input's completeness needs the count of
    frames (model/report.judge_input: none decoded is an unreadable input)."""
    dec = Decoder(Sink().append)
    for frame in range(1, 6):
        dec.decode(frame, float(frame), 105, raw(TCP4), 50)
    dec.decode(6, 6.0, 1, raw(eth() / TCP4), 60)
    assert dec.undecoded == {"unknown_linktype": 5}


def test_a_frame_is_counted_undecoded_once_and_a_cut_payload_not_at_all():
    dec = Decoder(Sink().append)
    frame = raw(eth() / TCP4)
    dec.decode(1, 1.0, 1, frame[:60], len(frame))  # payload cut: still decoded and used
    dec.decode(2, 2.0, 1, frame[:40], len(frame))  # TCP header cut: not decoded
    tags = eth()
    for _ in range(9):
        tags = tags / Dot1Q(vlan=1)
    dec.decode(3, 3.0, 1, raw(tags / TCP4), 200)
    dec.decode(4, 4.0, 1, raw(eth() / ARP()), 60)  # not IP: tallied, not undecoded
    assert dec.undecoded == {"snaplen_truncated": 1, "vlan_too_deep": 1}
