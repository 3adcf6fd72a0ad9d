"""What the decoder tells its link observer (capture/decode.py, LinkObserver): ARP and NDP
of the capture's own link, and the Ethernet source of the first flow each address starts;
nothing from inside a tunnel, nothing for link types without a sender address."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.all import IP, TCP, UDP, Ether, raw
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import ARP, CookedLinux

from dotaudit.capture import decode as decode_module
from dotaudit.capture.decode import Decoder
from dotaudit.capture.flows import FlowTable
from dotaudit.capture.packet import Anomaly
from tests.lab import encap
from tests.test_capture.test_flows import Recorder

MAC_A, MAC_B, ROUTER = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:fe"


class Observer:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def arp(self, frame: int, ts: float, body: bytes) -> None:
        self.calls.append(("arp", frame, body[:8]))

    def ndp(
        self, frame: int, ts: float, src: bytes, dst: bytes, hop_limit: int, message: bytes
    ) -> None:
        self.calls.append(("ndp", frame, hop_limit, message[0]))

    def frame_source(
        self,
        frame: int,
        ts: float,
        mac: bytes,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        proto: int,
    ) -> None:
        self.calls.append(("frame", frame, mac.hex(":"), src, proto))


def feed(frames: list[bytes], linktype: int = 1) -> tuple[Observer, list[Anomaly]]:
    observer = Observer()
    anomalies: list[Anomaly] = []
    table = FlowTable(Recorder(), anomalies.append)  # type: ignore[arg-type]
    decoder = Decoder(anomalies.append, flows=table, links=observer)
    for number, frame in enumerate(frames, 1):
        decoder.take(number, 100.0 + number, linktype, frame, 0, len(frame), len(frame))
    decoder.finish()
    table.finish()
    return observer, anomalies


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def udp(mac: str, src: str, dst: str, sport: int, dport: int = 53) -> bytes:
    return raw(
        Ether(src=mac, dst=ROUTER)
        / IP(src=src, dst=dst)
        / UDP(sport=sport, dport=dport)
        / (b"x" * 20)
    )


def test_the_first_flow_of_each_address_tells_its_ethernet_source() -> None:
    observer, _ = feed(
        [
            udp(MAC_A, "192.0.2.10", "203.0.113.53", 40000),  # starts a flow
            udp(ROUTER, "203.0.113.53", "192.0.2.10", 53, 40000),  # the answer: no start
            udp(MAC_A, "192.0.2.10", "203.0.113.53", 40001),  # A's second flow: known
            raw(
                Ether(src=MAC_B, dst=ROUTER)
                / IP(src="192.0.2.11", dst="203.0.113.80")
                / TCP(sport=40002, dport=443, flags="S")
            ),
            raw(
                Ether(src=ROUTER, dst=MAC_B)
                / IP(src="203.0.113.80", dst="192.0.2.11")
                / TCP(sport=443, dport=40002, flags="SA")
            ),
            raw(
                Ether(src=MAC_A, dst=ROUTER)
                / IP(src="192.0.2.12", dst="203.0.113.80")
                / TCP(sport=40003, dport=443, flags="A")
            ),  # mid-stream: not a start
        ]
    )
    assert observer.calls == [
        ("frame", 1, MAC_A, ip4("192.0.2.10"), 17),
        ("frame", 4, MAC_B, ip4("192.0.2.11"), 6),
    ]


def test_group_and_zero_macs_and_the_unspecified_address_tell_nothing() -> None:
    observer, _ = feed(
        [
            udp("00:00:00:00:00:00", "127.0.0.1", "127.0.0.53", 40000),  # loopback capture
            udp("03:00:00:00:00:01", "192.0.2.13", "203.0.113.53", 40001),  # group bit
            udp(MAC_A, "0.0.0.0", "255.255.255.255", 68, 67),
        ]
    )
    assert observer.calls == []


def test_arp_and_ndp_of_the_link_are_told_but_not_from_inside_a_tunnel() -> None:
    arp = raw(Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=MAC_A, psrc="192.0.2.10"))
    ns = raw(
        Ether(src=MAC_A, dst="33:33:ff:00:00:01")
        / IPv6(src="2001:db8::a", dst="ff02::1:ff00:1", hlim=255)
        / ICMPv6ND_NS(tgt="2001:db8::1")
        / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A)
    )
    tunnelled = [
        raw(
            Ether(src=ROUTER, dst=MAC_A)
            / IP(src="198.51.100.1", dst="198.51.100.2")
            / UDP(sport=1111, dport=4789)
        )
        + encap.vxlan(inner, 7)
        for inner in (arp, ns)
    ]
    observer, _ = feed([arp, ns, *tunnelled])
    kinds = [(c[0], c[1]) for c in observer.calls]
    assert ("arp", 1) in kinds and ("ndp", 2) in kinds
    assert not [c for c in observer.calls if c[0] in ("arp", "ndp") and c[1] > 2]


def test_linux_cooked_captures_name_the_sender() -> None:
    packet = CookedLinux(
        pkttype=4, lladdrtype=1, lladdrlen=6, src=bytes.fromhex("02000000000a") + b"\0\0"
    )
    frame = raw(packet / IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=40000, dport=53))
    observer, _ = feed([frame], linktype=113)
    assert observer.calls == [("frame", 1, MAC_A, ip4("192.0.2.10"), 17)]
    loopback = raw(
        CookedLinux(pkttype=0, lladdrtype=772, lladdrlen=6, src=b"\0" * 8)
        / IP(src="127.0.0.1", dst="127.0.0.53")
        / UDP(sport=40000, dport=53)
    )
    assert feed([loopback], linktype=113)[0].calls == []
    raw_ip = raw(IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=40000, dport=53))
    assert feed([raw_ip], linktype=101)[0].calls == []  # no link-layer header at all


@pytest.mark.parametrize("cap", [2, 3])
def test_addresses_beyond_the_cap_are_counted(monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    monkeypatch.setattr(decode_module, "MAX_LINK_SOURCES", cap)
    frames = [
        udp(MAC_A, f"10.0.{n // 256}.{n % 256}", "203.0.113.53", 20000 + n)
        for n in range(1, cap + 1002)
    ]
    observer, anomalies = feed(frames)
    assert len(observer.calls) == cap  # at the cap: all recorded; one past: refused
    full = [a for a in anomalies if a.what == "host_identity_table_full"]
    assert [a.detail.split(" ", 1)[0] for a in full] == ["1", "1001"]
