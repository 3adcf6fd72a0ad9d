"""BPF programs, run by libpcap's own interpreter (``pcap_offline_filter``) on frames built
here: the bypass program skips exactly the non-control packets of the flows in its slots,
in both directions, over every link layout it knows; the live prefilter admits what the
detectors need, IPv6 and 802.1Q included (the oracle is how each frame was built)."""

from __future__ import annotations

import ctypes
import struct

import pytest

from dotaudit.capture import libpcap
from dotaudit.capture.bpf import (
    BUCKETS,
    IPV4_SLOTS,
    BypassProgram,
    FlowKey,
    prefilter_expression,
)
from dotaudit.capture.libpcap import BpfProgram, PktHdr

A4, B4 = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 53])
A6 = bytes.fromhex("20010db8000000000000000000000010")
B6 = bytes.fromhex("26064700470000000000000000001111")
MACS = b"\x02\0\0\0\0\2\x02\0\0\0\0\1"
ACK, SYN, FIN, RST, PSH = 0x10, 0x02, 0x01, 0x04, 0x08


@pytest.fixture(scope="module")
def pcap() -> libpcap.Libpcap:
    lib = libpcap.load()
    assert lib is not None, libpcap.unavailable_reason()
    return lib


def run(pcap: libpcap.Libpcap, program: BpfProgram, frame: bytes, wire: int | None = None) -> bool:
    hdr = PktHdr()
    hdr.caplen = len(frame)
    hdr.len = len(frame) if wire is None else wire
    return bool(pcap.lib.pcap_offline_filter(ctypes.byref(program), ctypes.byref(hdr), frame))


def tcp(sport: int, dport: int, flags: int = ACK, payload: bytes = b"x" * 100) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 5 << 4, flags, 1000, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes = b"y" * 100) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(src: bytes, dst: bytes, proto: int, l4: bytes, frag: int = 0, ihl: int = 5) -> bytes:
    options = b"\x01" * (4 * (ihl - 5))
    total = 4 * ihl + len(l4)
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 7, frag, 64, proto, 0, src, dst)
    return head + options + l4


def ipv6(src: bytes, dst: bytes, nh: int, l4: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(l4), nh, 64, src, dst) + l4


def ether(packet: bytes, *, vlan: bool | int = False) -> bytes:
    """``packet`` in Ethernet under ``vlan`` tags (True: one; 2: QinQ, 802.1ad outside)."""
    etype = b"\x86\xdd" if packet[0] >> 4 == 6 else b"\x08\x00"
    return MACS + TAGS[int(vlan)] + etype + packet


TAGS = (b"", b"\x81\x00\x00\x0a", b"\x88\xa8\x00\x0b\x81\x00\x00\x0a")
"""No tag, one 802.1Q tag, an 802.1ad tag over an 802.1Q tag (QinQ)."""


def flow4(proto: int = 6, cport: int = 40000, sport: int = 443) -> FlowKey:
    return FlowKey(proto, A4, cport, B4, sport)


def flow6(proto: int = 6, cport: int = 40000, sport: int = 443) -> FlowKey:
    return FlowKey(proto, A6, cport, B6, sport)


# -- the bypass program -------------------------------------------------------------


@pytest.mark.parametrize("vlan", [False, True])
@pytest.mark.parametrize("v6", [False, True])
def test_skips_only_the_bypassed_flow_and_never_its_control_segments(
    pcap: libpcap.Libpcap, vlan: bool, v6: bool
) -> None:
    program = BypassProgram(1, 262144)
    ip, a, b, key = (ipv6, A6, B6, flow6) if v6 else (ipv4, A4, B4, flow4)
    to_server = ether(ip(a, b, 6, tcp(40000, 443)), vlan=vlan)
    to_client = ether(ip(b, a, 6, tcp(443, 40000)), vlan=vlan)
    other_port = ether(ip(a, b, 6, tcp(40001, 443)), vlan=vlan)
    assert run(pcap, program.program, to_server)  # nothing bypassed yet
    program.add(key())
    assert not run(pcap, program.program, to_server)
    assert not run(pcap, program.program, to_client)
    assert run(pcap, program.program, other_port)
    for flags in (SYN, FIN | ACK, RST, SYN | ACK, RST | ACK, FIN | PSH | ACK):
        assert run(pcap, program.program, ether(ip(a, b, 6, tcp(40000, 443, flags)), vlan=vlan))
    assert run(pcap, program.program, ether(ip(a, b, 17, udp(40000, 443)), vlan=vlan))
    program.remove(key())
    assert run(pcap, program.program, to_server)


def test_udp_flows(pcap: libpcap.Libpcap) -> None:
    program = BypassProgram(1, 262144)
    program.add(flow4(17, 50000, 443))
    program.add(flow6(17, 50000, 443))
    for ip, a, b in ((ipv4, A4, B4), (ipv6, A6, B6)):
        assert not run(pcap, program.program, ether(ip(a, b, 17, udp(50000, 443))))
        assert not run(pcap, program.program, ether(ip(b, a, 17, udp(443, 50000))))
        assert run(pcap, program.program, ether(ip(a, b, 6, tcp(50000, 443))))


def test_what_the_decoder_would_not_take_the_fast_way_is_admitted(pcap: libpcap.Libpcap) -> None:
    program = BypassProgram(1, 262144)
    program.add(flow4())
    program.add(flow6())
    admitted = [
        ether(ipv4(A4, B4, 6, tcp(40000, 443), frag=0x2000)),  # first fragment (MF)
        ether(ipv4(A4, B4, 6, tcp(40000, 443), frag=0x0010)),  # later fragment
        ether(ipv4(A4, B4, 6, tcp(40000, 443), ihl=6)),  # IP options
        ether(ipv4(A4, B4, 6, tcp(40000, 443))[:-10]),  # total length beyond the frame
        ether(ipv6(A6, B6, 0, b"\x06\0\0\0\0\0\0\0" + tcp(40000, 443))),  # extension header
        ether(ipv6(A6, B6, 6, tcp(40000, 443))[:-10]),  # payload length beyond the frame
        MACS + b"\x88\xa8\x00\x0a\x81\x00\x00\x0b\x08\x00" + ipv4(A4, B4, 6, tcp(40000, 443)),
        MACS + b"\x08\x06" + bytes(28),  # ARP
        ether(ipv4(A4, B4, 6, tcp(40000, 443, payload=b""))[:-4]),  # cut TCP header
    ]
    for frame in admitted:
        assert run(pcap, program.program, frame)
    whole = ether(ipv4(A4, B4, 6, tcp(40000, 443)))
    assert not run(pcap, program.program, whole)
    # Captured short of its wire length: the program cannot know what is missing.
    assert run(pcap, program.program, whole, wire=len(whole) + 300000)
    tight = BypassProgram(1, len(whole) - 1)
    tight.add(flow4())
    assert run(pcap, tight.program, whole)


def test_a_full_bucket_gives_up_its_oldest_slot(pcap: libpcap.Libpcap) -> None:
    program = BypassProgram(1, 262144)
    # Same low bits of sport ^ dport: one bucket.
    flows = [flow4(cport=40000 + BUCKETS * i) for i in range(IPV4_SLOTS + 1)]
    evicted = [program.add(f) for f in flows]
    assert evicted[:-1] == [None] * IPV4_SLOTS
    assert evicted[-1] == flows[0]
    assert run(pcap, program.program, ether(ipv4(A4, B4, 6, tcp(flows[0].cport, 443))))
    for f in flows[1:]:
        assert not run(pcap, program.program, ether(ipv4(A4, B4, 6, tcp(f.cport, 443))))


def test_hundreds_of_flows(pcap: libpcap.Libpcap) -> None:
    program = BypassProgram(1, 262144)
    flows = [flow4(cport=32768 + 7 * i) for i in range(300)]
    for f in flows:
        assert program.add(f) is None
    for f in flows:
        assert not run(pcap, program.program, ether(ipv4(B4, A4, 6, tcp(443, f.cport))))
    assert run(pcap, program.program, ether(ipv4(B4, A4, 6, tcp(443, 32769))))


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (101, lambda p: p),
        (228, lambda p: p),
        (113, lambda p: struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + p),
        (276, lambda p: struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes(8)) + p),
        (0, lambda p: struct.pack("<I", 2) + p),
        (0, lambda p: struct.pack(">I", 2) + p),
        (108, lambda p: struct.pack(">I", 2) + p),
    ],
)
def test_other_link_types(pcap: libpcap.Libpcap, linktype: int, frame: object) -> None:
    program = BypassProgram(linktype, 262144)
    program.add(flow4())
    packet = ipv4(A4, B4, 6, tcp(40000, 443))
    assert not run(pcap, program.program, frame(packet))  # type: ignore[operator]
    assert run(pcap, program.program, frame(ipv4(A4, B4, 6, tcp(40000, 443, SYN))))  # type: ignore[operator]


def test_loop_link_family_in_host_order_is_not_decoded_so_not_skipped(
    pcap: libpcap.Libpcap,
) -> None:
    program = BypassProgram(108, 262144)
    program.add(flow4())
    assert run(pcap, program.program, struct.pack("<I", 2) + ipv4(A4, B4, 6, tcp(40000, 443)))


# -- the live prefilter --------------------------------------------------------------


@pytest.fixture(scope="module")
def prefilter(pcap: libpcap.Libpcap) -> BpfProgram:
    dead = pcap.lib.pcap_open_dead(1, 262144)
    program = BpfProgram()
    text = prefilter_expression().encode()
    assert pcap.lib.pcap_compile(dead, ctypes.byref(program), text, 1, 0xFFFFFFFF) == 0, pcap.error(
        dead
    )
    return program


def _tls_hello() -> bytes:
    return b"\x16\x03\x01\x00\x50" + b"\x01" + bytes(80)


@pytest.mark.parametrize("vlan", [0, 1, 2], ids=["plain", "vlan", "qinq"])
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_prefilter_admits_what_detectors_need(
    pcap: libpcap.Libpcap, prefilter: BpfProgram, v6: bool, vlan: int
) -> None:
    ip, a, b = (ipv6, A6, B6) if v6 else (ipv4, A4, B4)

    def admits(proto: int, l4: bytes) -> bool:
        return run(pcap, prefilter, ether(ip(a, b, proto, l4), vlan=vlan))

    for port in (53, 853, 784, 5353, 5355):
        assert admits(17, udp(40000, port)) and admits(17, udp(port, 40000))
        assert admits(6, tcp(40000, port)) and admits(6, tcp(port, 40000))
    for flags in (SYN, SYN | ACK, FIN | ACK, RST):  # any port, IPv6 too (the tcp[] trap)
        assert admits(6, tcp(40000, 8443, flags, b""))
    assert admits(6, tcp(40000, 8443, ACK | PSH, _tls_hello()))
    assert admits(17, udp(40000, 443, b"\xc3" + bytes(60)))  # QUIC long header
    for port in (4789, 6081, 2152):  # VXLAN, Geneve, GTP-U
        assert admits(17, udp(40000, port))
    for proto in (4, 41, 47, 137):  # IP-in-IP, 6in4/6in6, GRE, MPLS-in-IP
        assert admits(proto, bytes(40))
    for port in (547, 546) if v6 else (67, 68):  # DHCPv6, DHCP
        assert admits(17, udp(port + 1 if port in (67, 546) else port - 1, port))
    if v6:
        for kind in (133, 134, 135, 136, 137):  # Neighbor Discovery
            assert admits(58, bytes([kind]) + bytes(31))
        assert not admits(58, b"\x80" + bytes(31))  # echo request
    tags = TAGS[vlan]
    for etype in (b"\x08\x06", b"\x88\x63", b"\x88\x64", b"\x88\x47", b"\x88\x48"):
        # ARP, PPPoE discovery and session, MPLS
        assert run(pcap, prefilter, MACS + tags + etype + bytes(60))
    assert not run(pcap, prefilter, MACS + tags + b"\x88\xcc" + bytes(60))  # LLDP
    # Bulk: none of the above.
    assert not admits(6, tcp(40000, 443, ACK, b"\x17\x03\x03" + bytes(100)))
    assert not admits(6, tcp(40000, 443, ACK, b""))
    assert not admits(17, udp(40000, 443, b"\x43" + bytes(60)))  # QUIC short header


def test_prefilter_errors_fragments_tunnels(pcap: libpcap.Libpcap, prefilter: BpfProgram) -> None:
    def admits(frame: bytes) -> bool:
        return run(pcap, prefilter, frame)

    unreachable = b"\x03\x03\0\0\0\0\0\0" + ipv4(B4, A4, 17, udp(53, 40000))[:28]
    echo = b"\x08\x00\0\0\0\0\0\0" + bytes(32)
    assert admits(ether(ipv4(A4, B4, 1, unreachable)))
    assert not admits(ether(ipv4(A4, B4, 1, echo)))
    icmp6_error = b"\x01\x04\0\0\0\0\0\0" + bytes(48)
    icmp6_echo = b"\x80\x00\0\0\0\0\0\0" + bytes(48)
    assert admits(ether(ipv6(A6, B6, 58, icmp6_error)))
    assert not admits(ether(ipv6(A6, B6, 58, icmp6_echo)))
    assert admits(ether(ipv4(A4, B4, 6, tcp(40000, 443), frag=0x0010)))  # later fragment
    assert admits(ether(ipv6(A6, B6, 44, bytes(8) + tcp(40000, 443))))  # fragment header
    for proto in (4, 41, 47, 137):
        assert admits(ether(ipv4(A4, B4, proto, bytes(40))))
    for etype in (b"\x88\x63", b"\x88\x64", b"\x88\x47", b"\x88\x48"):
        assert admits(MACS + etype + bytes(60))
        assert admits(MACS + b"\x81\x00\x00\x0a" + etype + bytes(60))


@pytest.mark.parametrize("linktype", [1, 113, 276, 0, 108, 12, 228, 229])
def test_prefilter_compiles_for_every_link_type_a_live_capture_may_have(
    pcap: libpcap.Libpcap, linktype: int
) -> None:
    """libpcap refuses ``vlan`` and ethertype tests on cooked, loopback and raw links:
    the expression leaves them out there, and stays within the kernel's 4096
    instructions."""
    dead = pcap.lib.pcap_open_dead(linktype, 262144)
    program = BpfProgram()
    text = prefilter_expression(linktype).encode()
    assert pcap.lib.pcap_compile(dead, ctypes.byref(program), text, 1, 0xFFFFFFFF) == 0, pcap.error(
        dead
    )
    assert 0 < program.bf_len <= 4096
    pcap.lib.pcap_freecode(ctypes.byref(program))
    pcap.lib.pcap_close(dead)
