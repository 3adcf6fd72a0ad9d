"""What the capture layer hands upward: decoded packets and their anomalies.

A :class:`Packet` is created once per frame that carried TCP, UDP or an ICMP error,
so it is a plain slotted class (no dataclass ``__init__`` overhead on the hot path).
Addresses stay as raw bytes; text forms are made only when an event is written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

TCP = 6
UDP = 17
ICMP = 1
ICMPV6 = 58

UDP_TUNNEL_PORTS = frozenset({4789, 6081, 2152})
"""Destination ports of the UDP encapsulations decoded: VXLAN, Geneve, GTP-U."""

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


@dataclass(frozen=True, slots=True)
class IcmpQuote:
    """An ICMP/ICMPv6 error and the flow it quotes (the packet that caused it)."""

    kind: str
    """Readable reason: "port-unreachable", "admin-prohibited", "host-unreachable", ..."""
    icmp_type: int
    icmp_code: int
    proto: int
    src: bytes
    sport: int
    dst: bytes
    dport: int


class Tunnel:
    """The encapsulation a packet arrived in, outermost layer first (see decode.py).

    ``key`` is its identity, the same for both directions of an inner flow: inner flows
    are told apart by it. ``text`` is the ``tunnel`` field of events, for example
    ``"vxlan:vni=42@192.0.2.1-192.0.2.2"``; it names exactly what ``key`` holds.
    """

    __slots__ = ("key", "text")

    def __init__(self, key: tuple[object, ...], text: str) -> None:
        self.key = key
        self.text = text

    def __repr__(self) -> str:
        return f"Tunnel({self.text!r})"


class Packet:
    tunnel: Tunnel | None = None
    """None: not tunnelled. Plain packets share this class default, so the hot path stores
    nothing for it; a :class:`TunnelledPacket` has its own."""

    __slots__ = (
        "ack",
        "dport",
        "dst",
        "flags",
        "frame",
        "icmp",
        "ip_id",
        "ip_version",
        "payload",
        "proto",
        "seq",
        "sport",
        "src",
        "truncated",
        "ts",
        "ttl",
        "wire_len",
    )

    def __init__(
        self,
        frame: int,
        ts: float,
        ip_version: int,
        src: bytes,
        dst: bytes,
        proto: int,
        ttl: int,
        ip_id: int,
        sport: int,
        dport: int,
        payload: bytes,
        flags: int = 0,
        seq: int = 0,
        ack: int = 0,
        truncated: bool = False,
        icmp: IcmpQuote | None = None,
        wire_len: int = 0,
    ) -> None:
        self.frame = frame
        self.ts = ts
        self.ip_version = ip_version
        self.src = src
        self.dst = dst
        self.proto = proto
        self.ttl = ttl
        self.ip_id = ip_id
        self.sport = sport
        self.dport = dport
        self.payload = payload
        self.flags = flags
        self.seq = seq
        self.ack = ack
        self.truncated = truncated
        self.icmp = icmp
        self.wire_len = wire_len

    def __repr__(self) -> str:
        return (
            f"Packet(frame={self.frame}, {addr_text(self.src)}:{self.sport} -> "
            f"{addr_text(self.dst)}:{self.dport} proto={self.proto} len={len(self.payload)})"
        )


class TunnelledPacket(Packet):
    """A packet decoded from inside one or more encapsulations."""

    __slots__ = ("tunnel",)

    def __init__(self, pkt: Packet, tunnel: Tunnel) -> None:
        super().__init__(
            pkt.frame, pkt.ts, pkt.ip_version, pkt.src, pkt.dst, pkt.proto, pkt.ttl,
            pkt.ip_id, pkt.sport, pkt.dport, pkt.payload, pkt.flags, pkt.seq, pkt.ack,
            pkt.truncated, pkt.icmp, pkt.wire_len,
        )  # fmt: skip
        self.tunnel = tunnel


def addr_text(raw: bytes) -> str:
    """Text form of a 4- or 16-byte address (IPv6 compressed, as RFC 5952)."""
    text = _ADDR_TEXT.get(raw)
    if text is None:
        if len(raw) == 4:
            text = f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
        else:
            text = str(ipaddress.IPv6Address(raw))
        if len(_ADDR_TEXT) >= ADDR_CACHE_SIZE:
            _ADDR_TEXT.clear()  # bounded; the hosts of a capture come back quickly
        _ADDR_TEXT[raw] = text
    return text


ADDR_CACHE_SIZE = 4096
"""Address texts kept: every flow needs two, mostly of the same few hosts."""
_ADDR_TEXT: dict[bytes, str] = {}
cached_addr_text = _ADDR_TEXT.get
"""The text of an address :func:`addr_text` has made lately, else None: a dict lookup,
no Python call (the cache is only ever cleared, never replaced)."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A capture-layer problem (Zeek's "weird"): counted and reported, never fatal."""

    what: str
    frame: int
    ts: float
    detail: str = ""
    src: bytes = b""
    sport: int = 0
    dst: bytes = b""
    dport: int = 0
    proto: int = 0
    tunnel: str | None = None
    """The ``tunnel`` text of the encapsulation the problem was found in, if any."""


AnomalySink = Callable[[Anomaly], None]


class LinkObserver(Protocol):
    """What a decoder tells about the capture's own link: frames that were not inside an
    encapsulation. ARP and NDP are told before the frame goes on (they reach no flow
    table); a flow start while the flow table makes the flow."""

    def arp(self, frame: int, ts: float, body: bytes) -> None:
        """An ARP message (``body`` from its hardware type on, Ethernet padding included)."""
        ...

    def ndp(
        self, frame: int, ts: float, src: bytes, dst: bytes, hop_limit: int, message: bytes
    ) -> None:
        """An ICMPv6 message of types 133-137 (``message`` from its type byte on)."""
        ...

    def frame_source(
        self, frame: int, ts: float, mac: bytes, src: bytes, sport: int, dst: bytes,
        dport: int, proto: int,
    ) -> None:  # fmt: skip
        """The Ethernet source ``mac`` of the first flow an address started (its TCP SYN or
        first UDP datagram; once per address; unicast MACs only)."""
        ...


class FlowSink(Protocol):
    """Where a decoder puts packets: a flow table (``capture.flows.FlowTable``)."""

    def process(self, pkt: Packet) -> None: ...

    def tcp_fast(
        self, frame: int, ts: float, src: bytes, sport: int, dst: bytes, dport: int,
        seq: int, ack: int, flags: int, ttl: int, data: bytes, start: int, end: int,
    ) -> bool:  # fmt: skip
        """A TCP segment as plain values, payload ``data[start:end]``; False: not taken,
        hand it to ``process`` as a Packet."""
        ...

    def udp_fast(
        self, frame: int, ts: float, version: int, src: bytes, sport: int, dst: bytes,
        dport: int, ttl: int, ident: int, data: bytes, start: int, end: int, wire_len: int,
    ) -> None:  # fmt: skip
        """A complete UDP datagram as plain values, payload ``data[start:end]``."""
        ...

    # Optional: ``tunnelled(pkt)`` takes the packets decoded from inside an encapsulation
    # (``pkt.tunnel`` set); a sink without it gets them through ``process``. And a sink that
    # offers ``udp_fast`` for whole datagrams has a ``decapsulate`` attribute the decoder
    # sets: it must hand every new datagram to a UDP tunnel port to it (see flows.py).
