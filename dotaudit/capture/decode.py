"""Frames -> :class:`Packet`: link layer, IPv4/IPv6 (with fragments), TCP, UDP, ICMP errors.

Everything works on offsets into the frame's bytes; the only copy made per packet is
the transport payload. Frames that carry nothing we analyse (ARP, ICMP echo, other
ethertypes) give None quietly; broken headers give None plus an anomaly.
"""

from __future__ import annotations

import struct

from dotaudit.capture.ipfrag import FragmentReassembler
from dotaudit.capture.packet import (
    ICMP,
    ICMPV6,
    TCP,
    UDP,
    Anomaly,
    AnomalySink,
    FlowSink,
    IcmpQuote,
    Packet,
)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})
MAX_VLAN_TAGS = 8
MAX_IPV6_EXT = 12

_IPV4 = struct.Struct("!BxHHHBB2x4s4s").unpack_from
_IPV6 = struct.Struct("!4xHBB16s16s").unpack_from
_TCP = struct.Struct("!HHIIBB").unpack_from
_UDP = struct.Struct("!HHH").unpack_from
# Fast path: from the ethertype on, IPv4 without options or IPv6 without extension
# headers, then the first 14 bytes of a TCP header (which cover a UDP header too).
_ETH_V4 = struct.Struct("!12xHBxHHHBB2x4s4sHHIIBB").unpack_from
_ETH_V6 = struct.Struct("!12xHB3xHBB16s16sHHIIBB").unpack_from
# ... and for frames too short for those: UDP with a tiny payload.
_V4_UDP = struct.Struct("!2xHHHB3x4s4sHHH").unpack_from
_V6_UDP = struct.Struct("!4xHxB16s16sHHH").unpack_from
_U16 = struct.Struct("!H").unpack_from
_PORTS = struct.Struct("!HH").unpack_from
_FRAG6 = struct.Struct("!BxHI").unpack_from

_V6_TRANSPORTS = frozenset({TCP, UDP, ICMPV6})
_ICMPS = frozenset({ICMP, ICMPV6})
_NULL_FAMILIES = {2: 4, 24: 6, 28: 6, 30: 6}
_V6_EXT_8 = frozenset({0, 43, 60})  # length field counts 8-octet units beyond the first

_ICMP4_ERRORS = frozenset({3, 4, 5, 11, 12})
_ICMP4_UNREACH = {
    0: "net-unreachable",
    1: "host-unreachable",
    2: "proto-unreachable",
    3: "port-unreachable",
    4: "fragmentation-needed",
    5: "source-route-failed",
    6: "net-unknown",
    7: "host-unknown",
    8: "host-isolated",
    9: "admin-prohibited",
    10: "admin-prohibited",
    11: "net-unreachable-tos",
    12: "host-unreachable-tos",
    13: "admin-prohibited",
    14: "host-precedence-violation",
    15: "precedence-cutoff",
}
_ICMP4_OTHER = {4: "source-quench", 5: "redirect", 11: "time-exceeded", 12: "parameter-problem"}
_ICMP6_UNREACH = {
    0: "net-unreachable",  # "no route to destination"
    1: "admin-prohibited",
    2: "beyond-scope",
    3: "host-unreachable",  # "address unreachable"
    4: "port-unreachable",
    5: "source-policy-failed",
    6: "reject-route",
    7: "source-routing-error",
}
_ICMP6_OTHER = {2: "packet-too-big", 3: "time-exceeded", 4: "parameter-problem"}


def icmp_kind(version: int, icmp_type: int, code: int) -> str:
    """Readable name of an ICMP (version 4) or ICMPv6 (version 6) error."""
    if version == 4:
        if icmp_type == 3:
            return _ICMP4_UNREACH.get(code, f"unreachable-code-{code}")
        if icmp_type == 11 and code == 1:
            return "reassembly-time-exceeded"
        return _ICMP4_OTHER.get(icmp_type, f"icmp-type-{icmp_type}")
    if icmp_type == 1:
        return _ICMP6_UNREACH.get(code, f"unreachable-code-{code}")
    return _ICMP6_OTHER.get(icmp_type, f"icmp6-type-{icmp_type}")


class _Collector:
    """The flow sink :meth:`Decoder.decode` uses: keeps the one packet instead of tracking."""

    __slots__ = ("packet",)

    def __init__(self) -> None:
        self.packet: Packet | None = None

    def process(self, pkt: Packet) -> None:
        self.packet = pkt

    def tcp_fast(self, *segment: object) -> bool:
        return False

    def udp_fast(
        self, frame: int, ts: float, version: int, src: bytes, sport: int, dst: bytes,
        dport: int, ttl: int, ident: int, data: bytes, start: int, end: int, wire_len: int,
    ) -> None:  # fmt: skip
        self.packet = Packet(
            frame, ts, version, src, dst, UDP, ttl, ident, sport, dport,
            data[start:end], 0, 0, 0, False, None, wire_len,
        )  # fmt: skip


class Decoder:
    """Decode captured frames; anomalies go to ``sink``. Keeps fragment state between calls.

    :meth:`take` feeds a flow table (``flows``): complete TCP/UDP packets over Ethernet
    (one optional 802.1Q tag) and option-less IPv4 or extension-less IPv6 go to its
    ``tcp_fast``/``udp_fast`` as plain values, without a :class:`Packet`; everything else
    is decoded in full and handed to its ``process``. :meth:`decode` returns the Packet
    instead, through the very same code.
    """

    def __init__(
        self,
        sink: AnomalySink,
        *,
        max_frag_bytes: int = 4 << 20,
        frag_timeout: float = 30.0,
        flows: FlowSink | None = None,
    ) -> None:
        self._sink = sink
        self.frags = FragmentReassembler(sink, max_frag_bytes, frag_timeout)
        self._unknown_links: set[int] = set()
        self._collector = _Collector()
        self._use(flows if flows is not None else self._collector)

    def _use(self, flows: FlowSink) -> None:
        self._flows = flows
        self._process = flows.process
        self._tcp_fast = flows.tcp_fast
        self._udp_fast = flows.udp_fast

    def finish(self) -> None:
        """Capture ended: report fragments that never completed."""
        self.frags.flush()

    # -- link layer ----------------------------------------------------------------

    def decode(
        self, frame: int, ts: float, linktype: int, data: bytes, orig_len: int
    ) -> Packet | None:
        """The packet in one frame, or None (nothing to analyse, or an anomaly)."""
        flows = self._flows
        collector = self._collector
        collector.packet = None
        self._use(collector)
        try:
            self.take(frame, ts, linktype, data, 0, len(data), orig_len)
        finally:
            self._use(flows)
        return collector.packet

    def take(
        self, frame: int, ts: float, linktype: int, buf: bytes, start: int, end: int, orig_len: int
    ) -> None:
        """Decode the frame ``buf[start:end]`` into the flow table (a reader's FrameSink)."""
        # Fast path for the common case: Ethernet (one optional 802.1Q tag), IPv4 without
        # options or IPv6 without extension headers, TCP or UDP, all read by one unpack
        # that includes the ethertype. Anything unusual (or cut) takes the general path
        # below, which decides the same way for these packets.
        if linktype == 1 and end - start >= 54:
            base = start  # the frame as if untagged: an 802.1Q tag shifts it by 4 bytes
            kind = buf[start + 12]  # the ethertype's high byte tells the layouts apart
            if kind == 0x81 and buf[start + 13] == 0:
                base += 4
                kind = buf[base + 12]
            if kind == 0x08:
                if end - base >= 54:
                    (
                        etype, vihl, total, ident, frag, ttl, proto, src, dst,
                        sport, dport, seq, ack, doff, flags,
                    ) = _ETH_V4(buf, base)  # fmt: skip
                    if etype == ETH_IPV4 and vihl == 0x45 and not frag & 0x3FFF:
                        off = base + 14
                        if proto == TCP:
                            stop = off + total
                            at = off + 20 + ((doff >> 4) << 2)
                            if stop <= end and doff >= 0x50 and at <= stop:
                                if not self._tcp_fast(
                                    frame, ts, src, sport, dst, dport, seq, ack, flags, ttl,
                                    buf, at, stop,
                                ):  # fmt: skip
                                    self._process(Packet(
                                        frame, ts, 4, src, dst, TCP, ttl, ident, sport, dport,
                                        buf[at:stop], flags, seq, ack, False, None, orig_len,
                                    ))  # fmt: skip
                                return
                        elif proto == UDP:
                            ulen = seq >> 16  # UDP's length field sits where TCP's seq starts
                            stop = off + 20 + ulen
                            if ulen >= 8 and stop <= off + total <= end:
                                self._udp_fast(
                                    frame, ts, 4, src, sport, dst, dport, ttl, ident,
                                    buf, off + 28, stop, orig_len,
                                )  # fmt: skip
                                return
                elif self._short_udp(frame, ts, 4, buf, base + 14, end, orig_len):
                    return
            elif kind == 0x86:
                if end - base >= 68:
                    (
                        etype, vtc, plen, proto, hops, src, dst,
                        sport, dport, seq, ack, doff, flags,
                    ) = _ETH_V6(buf, base)  # fmt: skip
                    if etype == ETH_IPV6 and vtc >> 4 == 6:
                        off = base + 54  # the transport header
                        if proto == TCP:
                            stop = off + plen
                            at = off + ((doff >> 4) << 2)
                            if plen and stop <= end and doff >= 0x50 and at <= stop:
                                if not self._tcp_fast(
                                    frame, ts, src, sport, dst, dport, seq, ack, flags, hops,
                                    buf, at, stop,
                                ):  # fmt: skip
                                    self._process(Packet(
                                        frame, ts, 6, src, dst, TCP, hops, 0, sport, dport,
                                        buf[at:stop], flags, seq, ack, False, None, orig_len,
                                    ))  # fmt: skip
                                return
                        elif proto == UDP:
                            ulen = seq >> 16
                            stop = off + ulen
                            if ulen >= 8 and stop <= off + plen <= end:
                                self._udp_fast(
                                    frame, ts, 6, src, sport, dst, dport, hops, 0,
                                    buf, off + 8, stop, orig_len,
                                )  # fmt: skip
                                return
                elif self._short_udp(frame, ts, 6, buf, base + 14, end, orig_len):
                    return
        decoded = self._decode(frame, ts, linktype, buf[start:end], orig_len)
        if decoded is not None:
            self._process(decoded)

    def _short_udp(
        self, frame: int, ts: float, version: int, buf: bytes, off: int, end: int, orig_len: int
    ) -> bool:
        """The fast path for a frame too short for the joint unpack: a UDP datagram with
        under 12 payload bytes, or the general path (False). ``off`` is the IP header; the
        caller checked the ethertype's high byte only."""
        if version == 4:
            if end < off + 28 or buf[off - 1] or buf[off] != 0x45 or buf[off + 9] != UDP:
                return False
            total, ident, frag, ttl, src, dst, sport, dport, ulen = _V4_UDP(buf, off)
            stop = off + 20 + ulen
            if frag & 0x3FFF or ulen < 8 or not stop <= off + total <= end:
                return False
            self._udp_fast(
                frame, ts, 4, src, sport, dst, dport, ttl, ident, buf, off + 28, stop, orig_len
            )
            return True
        if end < off + 48 or buf[off - 1] != 0xDD or buf[off] >> 4 != 6 or buf[off + 6] != UDP:
            return False
        plen, hops, src, dst, sport, dport, ulen = _V6_UDP(buf, off)
        stop = off + 40 + ulen
        if ulen < 8 or not stop <= off + 40 + plen <= end:
            return False
        self._udp_fast(frame, ts, 6, src, sport, dst, dport, hops, 0, buf, off + 48, stop, orig_len)
        return True

    def _decode(
        self, frame: int, ts: float, linktype: int, data: bytes, orig_len: int
    ) -> Packet | None:
        if linktype == 1:
            if len(data) < 14:
                return self._short_link(frame, ts, data, orig_len, "ethernet")
            return self._ether(frame, ts, data, 12, orig_len)
        if linktype in (101, 12, 14):
            if not data:
                return self._short_link(frame, ts, data, orig_len, "raw")
            return self._ip(frame, ts, data, 0, data[0] >> 4, orig_len)
        if linktype == 113:
            if len(data) < 16:
                return self._short_link(frame, ts, data, orig_len, "sll")
            return self._ether(frame, ts, data, 14, orig_len)
        if linktype == 276:
            if len(data) < 20:
                return self._short_link(frame, ts, data, orig_len, "sll2")
            return self._ether_type(frame, ts, data, _U16(data, 0)[0], 20, orig_len)
        if linktype == 228:
            return self._ip(frame, ts, data, 0, 4, orig_len)
        if linktype == 229:
            return self._ip(frame, ts, data, 0, 6, orig_len)
        if linktype == 0 or linktype == 108:
            if len(data) < 4:
                return self._short_link(frame, ts, data, orig_len, "loopback")
            # NULL stores the family in the capturing host's byte order, LOOP in network order.
            family = int.from_bytes(data[:4], "big")
            if linktype == 0 and family not in _NULL_FAMILIES:
                family = int.from_bytes(data[:4], "little")
            version = _NULL_FAMILIES.get(family)
            if version is None:
                return None
            return self._ip(frame, ts, data, 4, version, orig_len)
        if linktype not in self._unknown_links:
            self._unknown_links.add(linktype)
            self._anomaly("unknown_linktype", frame, ts, f"link type {linktype} not decoded")
        return None

    def _ether(self, frame: int, ts: float, data: bytes, at: int, orig_len: int) -> Packet | None:
        """Ethernet-style header whose ethertype sits at ``at`` (VLAN tags may follow)."""
        etype = (data[at] << 8) | data[at + 1]
        return self._ether_type(frame, ts, data, etype, at + 2, orig_len)

    def _ether_type(
        self, frame: int, ts: float, data: bytes, etype: int, off: int, orig_len: int
    ) -> Packet | None:
        if etype == ETH_IPV4:
            return self._ipv4(frame, ts, data, off, orig_len)
        if etype == ETH_IPV6:
            return self._ipv6(frame, ts, data, off, orig_len)
        tags = 0
        while etype in VLAN_TAGS:
            tags += 1
            if tags > MAX_VLAN_TAGS:
                self._anomaly("vlan_too_deep", frame, ts, f"more than {MAX_VLAN_TAGS} VLAN tags")
                return None
            if len(data) < off + 4:
                return self._short_link(frame, ts, data, orig_len, "vlan")
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
        if etype == ETH_IPV4:
            return self._ipv4(frame, ts, data, off, orig_len)
        if etype == ETH_IPV6:
            return self._ipv6(frame, ts, data, off, orig_len)
        return None

    def _ip(
        self, frame: int, ts: float, data: bytes, off: int, version: int, orig_len: int
    ) -> Packet | None:
        if version == 4:
            return self._ipv4(frame, ts, data, off, orig_len)
        if version == 6:
            return self._ipv6(frame, ts, data, off, orig_len)
        if len(data) <= off and len(data) < orig_len:
            return self._snaplen(frame, ts, "no IP header captured")
        self._anomaly("ip_header_malformed", frame, ts, f"IP version {version}")
        return None

    # -- IP ------------------------------------------------------------------------

    def _ipv4(self, frame: int, ts: float, data: bytes, off: int, orig_len: int) -> Packet | None:
        n = len(data)
        if n - off < 20:
            if n < orig_len:
                return self._snaplen(frame, ts, "IPv4 header cut")
            return self._anomaly("ip_header_malformed", frame, ts, "IPv4 header too short")
        vihl, total, ident, frag, ttl, proto, src, dst = _IPV4(data, off)
        hlen = (vihl & 15) << 2
        if vihl >> 4 != 4 or hlen < 20:
            return self._anomaly("ip_header_malformed", frame, ts, f"IPv4 version/IHL {vihl:#x}")
        end = off + total
        if total < hlen:
            if total != 0:
                return self._anomaly("ip_header_malformed", frame, ts, f"total length {total}")
            end = n  # 0 means "see the frame" (TSO on the capturing host)
        cut = False
        if end > n:
            if n >= orig_len:
                return self._anomaly(
                    "ip_header_malformed", frame, ts, f"total length {total} beyond frame"
                )
            cut = True
            end = n
        start = off + hlen
        if start > end:
            if cut:
                return self._snaplen(frame, ts, "IPv4 options cut")
            return self._anomaly("ip_header_malformed", frame, ts, "IHL beyond total length")
        if frag & 0x3FFF:
            if cut:
                return self._snaplen(frame, ts, "IPv4 fragment cut")
            done = self.frags.add(
                (4, src, dst, proto, ident),
                (frag & 0x1FFF) << 3,
                bool(frag & 0x2000),
                data[start:end],
                proto,
                frame,
                ts,
            )
            if done is None:
                return None
            data, start, end = done[0], 0, len(done[0])
        return self._transport(
            frame, ts, 4, src, dst, proto, ttl, ident, data, start, end, cut, orig_len
        )

    def _ipv6(self, frame: int, ts: float, data: bytes, off: int, orig_len: int) -> Packet | None:
        n = len(data)
        if n - off < 40:
            if n < orig_len:
                return self._snaplen(frame, ts, "IPv6 header cut")
            return self._anomaly("ip_header_malformed", frame, ts, "IPv6 header too short")
        if data[off] >> 4 != 6:
            return self._anomaly("ip_header_malformed", frame, ts, "IPv6 version")
        plen, nh, hops, src, dst = _IPV6(data, off)
        pos = off + 40
        end = pos + plen if plen else n  # 0: jumbogram, the frame decides
        cut = False
        if end > n:
            if n >= orig_len:
                return self._anomaly(
                    "ip_header_malformed", frame, ts, f"payload length {plen} beyond frame"
                )
            cut = True
            end = n
        ident = 0
        for _ in range(MAX_IPV6_EXT):
            if nh in _V6_TRANSPORTS:
                return self._transport(
                    frame, ts, 6, src, dst, nh, hops, ident, data, pos, end, cut, orig_len
                )
            if nh in _V6_EXT_8 or nh == 51:
                if pos + 2 > end:
                    return self._ext_cut(frame, ts, cut, nh)
                hlen = (data[pos + 1] + 1) << 3 if nh != 51 else (data[pos + 1] + 2) << 2
                nh = data[pos]
                pos += hlen
                if pos > end:
                    return self._ext_cut(frame, ts, cut, nh)
            elif nh == 44:
                if pos + 8 > end:
                    return self._ext_cut(frame, ts, cut, nh)
                inner, offmore, ident = _FRAG6(data, pos)
                pos += 8
                if offmore & 0xFFF9 == 0:  # atomic fragment (RFC 6946): nothing to join
                    nh = inner
                    continue
                if cut:
                    return self._snaplen(frame, ts, "IPv6 fragment cut")
                done = self.frags.add(
                    (6, src, dst, 0, ident),
                    offmore & 0xFFF8,
                    bool(offmore & 1),
                    data[pos:end],
                    inner,
                    frame,
                    ts,
                )
                if done is None:
                    return None
                data, nh, pos, end = done[0], done[1], 0, len(done[0])
            else:  # ESP, no next header, anything unknown: nothing to read
                return None
        return self._anomaly(
            "ipv6_ext_header_malformed", frame, ts, f"more than {MAX_IPV6_EXT} extension headers"
        )

    def _ext_cut(self, frame: int, ts: float, cut: bool, nh: int) -> Packet | None:
        if cut:
            return self._snaplen(frame, ts, "IPv6 extension header cut")
        return self._anomaly("ipv6_ext_header_malformed", frame, ts, f"header {nh} overruns")

    # -- transport ---------------------------------------------------------------------

    def _transport(
        self,
        frame: int,
        ts: float,
        version: int,
        src: bytes,
        dst: bytes,
        proto: int,
        ttl: int,
        ident: int,
        data: bytes,
        pos: int,
        end: int,
        cut: bool,
        wire_len: int,
    ) -> Packet | None:
        if proto == TCP:
            if end - pos < 20:
                return self._short_l4(frame, ts, cut, "tcp_header_malformed", "TCP header cut")
            sport, dport, seq, ack, doff, flags = _TCP(data, pos)
            hlen = (doff >> 4) << 2
            if hlen < 20 or pos + hlen > end:
                return self._short_l4(
                    frame, ts, cut and hlen >= 20, "tcp_header_malformed", f"data offset {hlen}"
                )
            if cut:
                self._snaplen(frame, ts, "TCP payload cut")
            return Packet(
                frame,
                ts,
                version,
                src,
                dst,
                TCP,
                ttl,
                ident,
                sport,
                dport,
                data[pos + hlen : end],
                flags,
                seq,
                ack,
                cut,
                None,
                wire_len,
            )
        if proto == UDP:
            if end - pos < 8:
                return self._short_l4(frame, ts, cut, "udp_header_malformed", "UDP header cut")
            sport, dport, ulen = _UDP(data, pos)
            if ulen < 8:
                return self._anomaly("udp_header_malformed", frame, ts, f"UDP length {ulen}")
            stop = pos + ulen
            if stop > end:
                if not cut:
                    return self._anomaly(
                        "udp_header_malformed", frame, ts, f"UDP length {ulen} beyond IP payload"
                    )
                stop = end
            if cut:
                self._snaplen(frame, ts, "UDP payload cut")
            return Packet(
                frame, ts, version, src, dst, UDP, ttl, ident, sport, dport,
                data[pos + 8 : stop], 0, 0, 0, cut, None, wire_len,
            )  # fmt: skip
        if proto in _ICMPS:
            if end - pos < 8:
                return None  # too short to be an error we could use
            quote = self._icmp_error(frame, ts, version, data, pos, end)
            if quote is None:
                return None
            return Packet(
                frame, ts, version, src, dst, proto, ttl, ident, 0, 0,
                b"", 0, 0, 0, cut, quote, wire_len,
            )  # fmt: skip
        return None

    def _icmp_error(
        self, frame: int, ts: float, version: int, data: bytes, pos: int, end: int
    ) -> IcmpQuote | None:
        icmp_type, code = data[pos], data[pos + 1]
        if version == 4:
            if icmp_type not in _ICMP4_ERRORS:
                return None
        elif not 1 <= icmp_type <= 4:
            return None
        quoted = _quoted_flow(data, pos + 8, end)
        if quoted is None:
            self._anomaly(
                "icmp_quote_malformed", frame, ts, f"ICMP type {icmp_type} quote unreadable"
            )
            return None
        proto, qsrc, sport, qdst, dport = quoted
        return IcmpQuote(
            icmp_kind(version, icmp_type, code), icmp_type, code, proto, qsrc, sport, qdst, dport
        )

    # -- anomalies -----------------------------------------------------------------

    def _anomaly(self, what: str, frame: int, ts: float, detail: str) -> Packet | None:
        self._sink(Anomaly(what, frame, ts, detail))
        return None

    def _snaplen(self, frame: int, ts: float, detail: str) -> Packet | None:
        self._sink(Anomaly("snaplen_truncated", frame, ts, detail))
        return None

    def _short_link(
        self, frame: int, ts: float, data: bytes, orig_len: int, layer: str
    ) -> Packet | None:
        if len(data) < orig_len:
            return self._snaplen(frame, ts, f"{layer} header cut")
        return self._anomaly("link_header_malformed", frame, ts, f"{layer} header too short")

    def _short_l4(self, frame: int, ts: float, cut: bool, what: str, detail: str) -> Packet | None:
        if cut:
            return self._snaplen(frame, ts, detail)
        return self._anomaly(what, frame, ts, detail)


def _quoted_flow(data: bytes, pos: int, end: int) -> tuple[int, bytes, int, bytes, int] | None:
    """(proto, src, sport, dst, dport) of the packet an ICMP error quotes; ports 0 if absent."""
    if end - pos < 20:
        return None
    version = data[pos] >> 4
    if version == 4:
        vihl, _total, _ident, frag, _ttl, proto, src, dst = _IPV4(data, pos)
        hlen = (vihl & 15) << 2
        if hlen < 20:
            return None
        at = pos + hlen
        if frag & 0x1FFF:
            return proto, src, 0, dst, 0  # a later fragment: no transport header quoted
    elif version == 6:
        if end - pos < 40:
            return None
        _plen, proto, _hops, src, dst = _IPV6(data, pos)
        at = pos + 40
        for _ in range(MAX_IPV6_EXT):
            if proto not in _V6_EXT_8 and proto != 51 and proto != 44:
                break
            if at + 8 > end:
                return proto, src, 0, dst, 0
            if proto == 44:
                if _U16(data, at + 2)[0] & 0xFFF8:
                    return data[at], src, 0, dst, 0
                step = 8
            elif proto == 51:
                step = (data[at + 1] + 2) << 2
            else:
                step = (data[at + 1] + 1) << 3
            proto = data[at]
            at += step
    else:
        return None
    if proto in (TCP, UDP) and at + 4 <= end:
        sport, dport = _PORTS(data, at)
        return proto, src, sport, dst, dport
    return proto, src, 0, dst, 0
