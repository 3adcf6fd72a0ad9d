"""Decoder.take's fast path against the general decoder it short-cuts.

The oracle is ``Decoder._decode`` (the full link/IP/transport walk, which every frame
the fast path declines takes): for every frame, the Packet and anomalies the production
entry point gives must equal what the general walk gives. Frames are cut at every
length and mutated around the header fields the fast path reads, so each of its bounds
and checks is crossed.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from scapy.all import IP, TCP, UDP, Dot1AD, Dot1Q, IPv6, IPv6ExtHdrHopByHop, raw

from dotaudit.capture.decode import Decoder
from dotaudit.capture.packet import Anomaly, Packet
from tests.test_capture.test_decode import C4, C6, S4, S6, eth


class Counting:
    """A flow sink that refuses every TCP segment (so take builds the Packet itself) and
    records which entry point each packet came through."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Packet | None]] = []

    def process(self, pkt: Packet) -> None:
        self.calls.append(("process", pkt))

    def tcp_fast(self, *segment: Any) -> bool:
        self.calls.append(("tcp_fast", None))
        return False

    def udp_fast(
        self, frame: int, ts: float, version: int, src: bytes, sport: int, dst: bytes,
        dport: int, ttl: int, ident: int, data: bytes, start: int, end: int, wire_len: int,
    ) -> None:  # fmt: skip
        pkt = Packet(
            frame, ts, version, src, dst, 17, ttl, ident, sport, dport,
            data[start:end], 0, 0, 0, False, None, wire_len,
        )  # fmt: skip
        self.calls.append(("udp_fast", pkt))


def _via_take(frame: bytes, orig: int) -> tuple[list[tuple[str, Packet | None]], list[Anomaly]]:
    anomalies: list[Anomaly] = []
    sink = Counting()
    # Embed the frame in a larger buffer: the fast path must respect ``end``, not len(buf).
    buf = b"\xee" * 7 + frame + b"\x45\x06" * 40
    Decoder(anomalies.append, flows=sink).take(3, 1.5, 1, buf, 7, 7 + len(frame), orig)
    return sink.calls, anomalies


def _via_general(frame: bytes, orig: int) -> tuple[Packet | None, list[Anomaly]]:
    anomalies: list[Anomaly] = []
    pkt = Decoder(anomalies.append)._decode(3, 1.5, 1, frame, orig)
    return pkt, anomalies


def _fields(pkt: Packet) -> tuple[object, ...]:
    return tuple(getattr(pkt, name) for name in Packet.__slots__)


def _assert_same(frame: bytes, orig: int | None = None) -> str:
    """Both paths agree on ``frame``; returns the entry point take used ("" for none)."""
    orig = len(frame) if orig is None else orig
    calls, anomalies = _via_take(frame, orig)
    want, want_anomalies = _via_general(frame, orig)
    assert anomalies == want_anomalies
    packets = [_fields(pkt) for _, pkt in calls if pkt is not None]
    assert packets == ([_fields(want)] if want is not None else [])
    return "+".join(kind for kind, _ in calls)


def _payload(n: int) -> bytes:
    return bytes(range(n))


TCP_SEG = TCP(sport=40000, dport=853, seq=0xFFFFFFF0, ack=2000, flags="PA")
SHAPES: dict[str, bytes] = {
    "v4 tcp": raw(eth() / IP(src=C4, dst=S4, id=7) / TCP_SEG / _payload(30)),
    "v4 tcp options": raw(
        eth() / IP(src=C4, dst=S4) / TCP(options=[("MSS", 1460), ("NOP", None)]) / b"x"
    ),
    "v4 udp": raw(eth() / IP(src=C4, dst=S4, id=9) / UDP(sport=5353, dport=53) / _payload(20)),
    "v4 udp tiny": raw(eth() / IP(src=C4, dst=S4) / UDP(sport=1, dport=53) / b"ab"),
    "v4 udp empty": raw(eth() / IP(src=C4, dst=S4) / UDP(sport=1, dport=53)),
    "v6 tcp": raw(eth() / IPv6(src=C6, dst=S6, hlim=9) / TCP_SEG / _payload(30)),
    "v6 udp": raw(eth() / IPv6(src=C6, dst=S6) / UDP(sport=443, dport=4000) / _payload(40)),
    "v6 udp tiny": raw(eth() / IPv6(src=C6, dst=S6) / UDP(sport=1, dport=53) / b"abc"),
    "v6 ext": raw(eth() / IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop() / UDP() / (b"q" * 20)),
    "vlan v4 tcp": raw(eth() / Dot1Q(vlan=5) / IP(src=C4, dst=S4) / TCP_SEG / _payload(9)),
    "vlan v4 udp tiny": raw(eth() / Dot1Q(vlan=5) / IP(src=C4, dst=S4) / UDP() / b"a"),
    "vlan v4 udp short": raw(eth() / Dot1Q(vlan=5) / IP(src=C4, dst=S4) / UDP() / _payload(9)),
    "vlan v6 udp": raw(eth() / Dot1Q(vlan=5) / IPv6(src=C6, dst=S6) / UDP() / _payload(30)),
    "vlan v6 udp tiny": raw(eth() / Dot1Q(vlan=5) / IPv6(src=C6, dst=S6) / UDP() / b"a"),
    "qinq v4 tcp": raw(
        eth() / Dot1AD(vlan=1) / Dot1Q(vlan=5) / IP(src=C4, dst=S4) / TCP_SEG / (b"z" * 9)
    ),
    "double 802.1Q": raw(
        eth() / Dot1Q(vlan=1) / Dot1Q(vlan=5) / IP(src=C4, dst=S4) / UDP() / (b"z" * 20)
    ),
    "v4 fragment": raw(eth() / IP(src=C4, dst=S4, flags="MF", id=3) / UDP() / _payload(40)),
    "ethernet padding": raw(eth() / IP(src=C4, dst=S4) / UDP() / b"a") + b"\0" * 12,
}
# Frames under 54 bytes (the tiny untagged UDP ones) always take the general path.
FAST = {"v4 tcp", "v4 tcp options", "v4 udp", "v6 tcp", "v6 udp", "v6 udp tiny",
        "vlan v4 tcp", "vlan v4 udp short", "vlan v6 udp", "vlan v6 udp tiny",
        "ethernet padding"}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_whole_frames_agree_and_common_shapes_take_the_fast_path(shape: str) -> None:
    via = _assert_same(SHAPES[shape])
    if shape in FAST:
        assert via in ("tcp_fast+process", "udp_fast")
    else:
        assert "fast" not in via


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_cut_agrees(shape: str) -> None:
    frame = SHAPES[shape]
    for cut in range(len(frame) + 1):
        _assert_same(frame[:cut], len(frame))  # snaplen cut
        _assert_same(frame[:cut])  # a frame that really is this short


# Bytes the fast path reads: ethertypes, version/IHL, lengths, flags/offset, protocol,
# TCP data offset; for IPv6 the version, payload length and next header too.
HOT_OFFSETS = [*range(12, 28), *range(38, 48), 50, 51, 52, 53, 58, 59, 60, 61, 62, 63, 66, 67]
HOT_VALUES = [0x00, 0x01, 0x06, 0x08, 0x11, 0x20, 0x40, 0x45, 0x46, 0x4F, 0x50, 0x60, 0x81,
              0x86, 0xDD, 0xFF]  # fmt: skip


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_mutated_header_bytes_agree(shape: str) -> None:
    frame = SHAPES[shape]
    rng = random.Random(shape)  # reproducible per shape
    for _ in range(1500):
        data = bytearray(frame)
        for _ in range(rng.randint(1, 3)):
            where = rng.choice(HOT_OFFSETS)
            if where < len(data):
                data[where] = rng.choice(HOT_VALUES) if rng.random() < 0.7 else rng.randrange(256)
        cut = len(data) if rng.random() < 0.6 else rng.randint(0, len(data))
        _assert_same(bytes(data[:cut]), len(data) if rng.random() < 0.5 else cut)
