"""Frames -> :class:`Packet`: link layer, IPv4/IPv6 (with fragments), TCP, UDP, ICMP errors,
and the encapsulations field captures arrive in.

Everything works on offsets into the frame's bytes; the only copy made per packet is
the transport payload. Broken headers give None plus an anomaly. Nothing is dropped
without a trace: frames of ordinary non-IP traffic (ARP, LLDP, STP, ...) are tallied per
ethertype in ``not_ip``, IP packets of protocols we do not read (IGMP, OSPF, ESP, ...) per
protocol in ``other_ip``, and a packet whose encapsulation we do not decode (an unknown
ethertype, an undecoded tunnel) is an ``encapsulation_not_decoded`` anomaly naming it.

Encapsulations are decoded down to the inner packet, which reaches the flow table's
``tunnelled`` with a :class:`Tunnel` naming its outer layers (outermost first):

=========  ===================================================  =======================
layer      what                                                 identity (flow key)
=========  ===================================================  =======================
gre        GRE (RFC 2784/2890) carrying IPv4, IPv6, Ethernet     key, outer addresses
           (0x6558), MPLS, ...
erspan1-3  ERSPAN type I and II (GRE 0x88BE), III (GRE 0x22EB)   session, outer addresses
vxlan      VXLAN, UDP 4789 (RFC 7348)                            VNI, outer addresses
geneve     Geneve, UDP 6081 (RFC 8926)                           VNI, outer addresses
gtpu       GTP-U, UDP 2152 (3GPP TS 29.281), G-PDUs              outer addresses
ipip ...   IPv4 in IPv4 (ipip), IPv6 in IPv4 (6in4), IPv4 in     outer addresses
           IPv6 (4in6), IPv6 in IPv6 (6in6)
mpls       MPLS label stack (0x8847/0x8848, IP protocol 137)     outer addresses if in IP
pw         Ethernet pseudowire with control word under MPLS      (none)
pppoe      PPPoE session (0x8864; under VLAN/QinQ tags too)       session id
=========  ===================================================  =======================

A tunnel's identity is the same in both directions (outer addresses as an unordered pair;
GTP-U TEIDs and MPLS labels, which differ per direction and per hop, are left out), so
both halves of an inner connection meet in one flow. Nesting is bounded by
``MAX_TUNNEL_DEPTH``. None of this touches the fast path: tunnels are recognised where
the general path already goes (non-IP ethertypes, IP protocols other than TCP/UDP/ICMP)
or, for UDP tunnels, where the flow table would make a new flow.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from dotaudit.capture.ipfrag import FragmentReassembler
from dotaudit.capture.packet import (
    ICMP,
    ICMPV6,
    TCP,
    UDP,
    UDP_TUNNEL_PORTS,
    Anomaly,
    AnomalySink,
    FlowSink,
    IcmpQuote,
    Packet,
    Tunnel,
    TunnelledPacket,
    addr_text,
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

_U32 = struct.Struct("!I").unpack_from
_GTP = struct.Struct("!BBHI").unpack_from
_PPPOE = struct.Struct("!BBHH").unpack_from

MAX_TUNNEL_DEPTH = 8
"""Nested encapsulations followed; deeper is a ``tunnel_too_deep`` anomaly (a hostile
capture can nest GRE in GRE until the frame ends)."""
MAX_MPLS_LABELS = 16
MAX_GTP_EXTENSIONS = 16
TUNNEL_CACHE_SIZE = 1024
"""Distinct tunnels whose :class:`Tunnel` (and text) is kept; emptied when full."""

ETH_TEB = 0x6558  # transparent Ethernet bridging: an Ethernet frame follows
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = frozenset({0x8847, 0x8848})
GRE_ERSPAN = 0x88BE  # ERSPAN type I (no GRE sequence number) and II
GRE_ERSPAN_3 = 0x22EB
VXLAN_PORT, GENEVE_PORT, GTPU_PORT = 4789, 6081, 2152
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
GTP_G_PDU = 255

NOT_IP_ETHERTYPES: dict[int, str] = {
    0x0806: "arp",
    0x8035: "rarp",
    0x0842: "wake-on-lan",
    0x8808: "ethernet-pause",
    0x8809: "slow-protocols",  # LACP, marker, OAM
    0x888E: "eapol",
    0x88CC: "lldp",
    0x88F7: "ptp",
    0x8863: "pppoe-discovery",
    0x9000: "loopback",
    0x893A: "ieee1905",
    0x88E1: "homeplug",
    0x8902: "cfm",
    0x88C7: "rsn-preauth",
    0x890D: "ieee802.11",
    0x8137: "ipx",
    0x809B: "appletalk",
    0x80F3: "aarp",
    0x6003: "decnet",
    0x8899: "realtek",
    0x88B8: "goose",
    0x88BA: "sampled-values",
    0x8892: "profinet",
    0x88A4: "ethercat",
    0x88E3: "mrp",
    0x8906: "fcoe",
    0x8914: "fip",
    0x88A2: "aoe",
    0x88AB: "powerlink",
    0x892F: "hsr",
    0x88FB: "prp",
}
"""Ordinary traffic that is not IP and carries none: tallied, not an anomaly. Frames with
an IEEE 802.3 length instead of an ethertype (STP, CDP, ... over LLC) count as "llc"."""
UNDECODED_ETHERTYPES: dict[int, str] = {
    0x88E5: "MACsec",
    0x88E7: "PBB 802.1ah",
    0x894F: "NSH",
    0x880B: "PPP",
    0x883E: "WCCP",
    ETH_TEB: "Ethernet bridging",
    GRE_ERSPAN: "ERSPAN",
    GRE_ERSPAN_3: "ERSPAN III",
}
"""Encapsulations we know but do not decode: an ``encapsulation_not_decoded`` anomaly
names them (what they carry could be DNS)."""
UNDECODED_IP_PROTOCOLS = {97: "EtherIP", 115: "L2TPv3", 98: "ENCAP", 94: "KA9Q IPIP"}
IP_PROTOCOL_NAMES = {
    0: "hopopt",
    1: "icmp",
    2: "igmp",
    33: "dccp",
    46: "rsvp",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    59: "ipv6-nonxt",
    88: "eigrp",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    124: "isis",
    132: "sctp",
    136: "udplite",
}
"""Names of IP protocols tallied in ``other_ip`` (others appear as "ip-proto-N")."""
PPP_CONTROL = {0xC021: "lcp", 0xC023: "pap", 0xC223: "chap", 0x8021: "ipcp", 0x8057: "ipv6cp"}
_IP_IN_IP = {(4, 4): "ipip", (4, 41): "6in4", (6, 4): "4in6", (6, 41): "6in6"}

Layer = tuple[str, tuple[tuple[str, int], ...], bytes, bytes]
"""(kind, identifying attributes, outer address pair or two empty bytes)."""

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


UdpTunnelSink = Callable[
    [int, float, int, bytes, int, bytes, int, int, int, bytes, int, int, int], None
]


class _Collector:
    """The flow sink :meth:`Decoder.decode` uses: keeps the one packet instead of tracking."""

    __slots__ = ("decapsulate", "packet")

    def __init__(self) -> None:
        self.packet: Packet | None = None
        self.decapsulate: UdpTunnelSink | None = None

    def process(self, pkt: Packet) -> None:
        self.packet = pkt

    def tunnelled(self, pkt: Packet) -> None:
        self.packet = pkt

    def tcp_fast(self, *segment: object) -> bool:
        return False

    def udp_fast(
        self, frame: int, ts: float, version: int, src: bytes, sport: int, dst: bytes,
        dport: int, ttl: int, ident: int, data: bytes, start: int, end: int, wire_len: int,
    ) -> None:  # fmt: skip
        if dport in UDP_TUNNEL_PORTS and self.decapsulate is not None:
            self.decapsulate(
                frame, ts, version, src, sport, dst, dport, ttl, ident, data, start, end, wire_len
            )
            return
        self.packet = Packet(
            frame, ts, version, src, dst, UDP, ttl, ident, sport, dport,
            data[start:end], 0, 0, 0, False, None, wire_len,
        )  # fmt: skip


class Decoder:
    """Decode captured frames; anomalies go to ``sink``. Keeps fragment state between calls.

    :meth:`take` feeds a flow table (``flows``): complete TCP/UDP packets over Ethernet
    (one optional 802.1Q tag) and option-less IPv4 or extension-less IPv6 go to its
    ``tcp_fast``/``udp_fast`` as plain values, without a :class:`Packet`; everything else
    is decoded in full and handed to its ``process``. Packets from inside encapsulations go
    to its ``tunnelled`` (``process`` if it has none), and it hands datagrams to UDP tunnel
    ports back through its ``decapsulate``. :meth:`decode` returns the Packet instead,
    through the very same code.

    ``encapsulations``, ``not_ip`` and ``other_ip`` count, per name, the packets that had
    each encapsulation layer, the non-IP frames and the IP packets of protocols not read;
    ``undecoded`` the frames that could not be decoded, per anomaly (the first one a frame
    met).
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
        self.encapsulations: dict[str, int] = {}
        self.not_ip: dict[str, int] = {}
        self.other_ip: dict[str, int] = {}
        self.undecoded: dict[str, int] = {}
        """Frames that could not be decoded (and reached no flow), per anomaly."""
        self._undecoded_frame = 0
        self._depth = 0
        self._chain: list[Layer] = []
        """The layers entered for the current frame, outermost first (``_depth`` of them
        are open)."""
        self._tunnels: dict[tuple[Layer, ...], Tunnel] = {}
        self._collector = _Collector()
        self._use(flows if flows is not None else self._collector)

    def _use(self, flows: FlowSink) -> None:
        self._flows = flows
        self._process = flows.process
        self._tcp_fast = flows.tcp_fast
        self._udp_fast = flows.udp_fast
        self._tunnelled: Callable[[Packet], None] = getattr(flows, "tunnelled", flows.process)
        if hasattr(flows, "decapsulate"):
            flows.decapsulate = self._udp_tunnel_fast

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
                return self._not_ip(f"loopback-family-{family}")
            return self._ip(frame, ts, data, 4, version, orig_len)
        if linktype not in self._unknown_links:
            self._unknown_links.add(linktype)
            self._anomaly("unknown_linktype", frame, ts, f"link type {linktype} not decoded")
        else:  # one anomaly per link type, but every such frame is counted
            self._count_undecoded("unknown_linktype", frame)
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
        return self._link_payload(frame, ts, data, etype, off, orig_len, "ethertype")

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
            else:  # a tunnel, or ESP, no next header, anything else we do not read
                return self._ip_payload(frame, ts, 6, src, dst, nh, data, pos, end, cut, orig_len)
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
                self._payload_cut(frame, ts, "TCP payload cut")
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
            if dport in UDP_TUNNEL_PORTS:
                return self._udp_tunnel(
                    frame, ts, src, dst, dport, data, pos + 8, stop, pos + ulen - stop, wire_len
                )
            if cut:
                self._payload_cut(frame, ts, "UDP payload cut")
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
        return self._ip_payload(frame, ts, version, src, dst, proto, data, pos, end, cut, wire_len)

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

    # -- what IP and link layers carry besides TCP/UDP/ICMP ---------------------------

    def _ip_payload(
        self, frame: int, ts: float, version: int, src: bytes, dst: bytes, proto: int,
        data: bytes, pos: int, end: int, cut: bool, wire_len: int,
    ) -> Packet | None:  # fmt: skip
        """An IP payload that is not TCP, UDP or ICMP: a tunnel, or something we tally."""
        missing = max(wire_len - len(data), 1) if cut else 0
        if proto == 47:
            return self._gre(frame, ts, src, dst, data, pos, end, missing, wire_len)
        kind = _IP_IN_IP.get((version, proto))
        if kind is not None:
            inner = data[pos:end]
            inner_ip = self._ipv4 if proto == 4 else self._ipv6
            return self._layer(
                frame, ts, (kind, (), *_pair(src, dst)), wire_len,
                inner_ip, frame, ts, inner, 0, len(inner) + missing,
            )  # fmt: skip
        if proto == 137:
            return self._mpls(frame, ts, data[pos:end], 0, end - pos + missing, src, dst, wire_len)
        name = UNDECODED_IP_PROTOCOLS.get(proto)
        if name is not None:
            return self._not_decoded(frame, ts, f"IP protocol {proto} ({name})")
        tally = self.other_ip
        name = IP_PROTOCOL_NAMES.get(proto) or f"ip-proto-{proto}"
        tally[name] = tally.get(name, 0) + 1
        return None

    def _link_payload(
        self, frame: int, ts: float, data: bytes, etype: int, off: int, orig_len: int,
        carrier: str,
    ) -> Packet | None:  # fmt: skip
        """What an ethertype (or a tunnel's protocol field, ``carrier``) names, not IP."""
        if etype == ETH_PPPOE_SESSION:
            return self._pppoe(frame, ts, data, off, orig_len)
        if etype in ETH_MPLS:
            return self._mpls(frame, ts, data, off, orig_len, b"", b"", orig_len)
        name = NOT_IP_ETHERTYPES.get(etype)
        if name is None and etype < 0x0600:
            name = "llc"  # an IEEE 802.3 length, not an ethertype
        if name is not None:
            return self._not_ip(name)
        known = UNDECODED_ETHERTYPES.get(etype)
        return self._not_decoded(
            frame, ts, f"{carrier} 0x{etype:04x}" + (f" ({known})" if known else "")
        )

    def _typed_payload(
        self, frame: int, ts: float, data: bytes, ptype: int, orig_len: int, carrier: str
    ) -> Packet | None:
        """A tunnel payload named by an ethertype (GRE's and Geneve's protocol field)."""
        if ptype == ETH_TEB:
            return self._inner_ether(frame, ts, data, orig_len)
        if ptype in (ETH_IPV4, ETH_IPV6) or ptype in VLAN_TAGS:
            return self._ether_type(frame, ts, data, ptype, 0, orig_len)
        if ptype == 0 and carrier == "GRE protocol":
            return self._not_ip("gre-keepalive")  # a looped-back keepalive (RFC 8157 style)
        return self._link_payload(frame, ts, data, ptype, 0, orig_len, carrier)

    def _not_ip(self, name: str) -> Packet | None:
        tally = self.not_ip
        tally[name] = tally.get(name, 0) + 1
        return None

    # -- tunnels -----------------------------------------------------------------------

    def _layer(
        self, frame: int, ts: float, layer: Layer, wire_len: int,
        inner: Callable[..., Packet | None], *args: object,
    ) -> Packet | None:  # fmt: skip
        """Decode ``inner(*args)`` inside one more encapsulation layer.

        The outermost layer of a frame hands the inner packet to the flow sink with its
        :class:`Tunnel` and returns None; nested layers return it to the one above.
        """
        depth = self._depth
        if depth >= MAX_TUNNEL_DEPTH:
            return self._anomaly(
                "tunnel_too_deep", frame, ts, f"more than {MAX_TUNNEL_DEPTH} nested encapsulations"
            )
        kind = layer[0]
        counts = self.encapsulations
        counts[kind] = counts.get(kind, 0) + 1
        if depth:
            del self._chain[depth:]
            self._chain.append(layer)
        else:
            self._chain = [layer]
        self._depth = depth + 1
        try:
            pkt = inner(*args)
        finally:
            self._depth = depth
        if pkt is None or depth:
            return pkt
        tunnelled = TunnelledPacket(pkt, self._tunnel(tuple(self._chain)))
        tunnelled.wire_len = wire_len
        self._tunnelled(tunnelled)
        return None

    def _tunnel(self, chain: tuple[Layer, ...]) -> Tunnel:
        tunnels = self._tunnels
        tunnel = tunnels.get(chain)
        if tunnel is None:
            if len(tunnels) >= TUNNEL_CACHE_SIZE:
                tunnels.clear()
            tunnel = tunnels[chain] = Tunnel(chain, ">".join(map(_layer_text, chain)))
        return tunnel

    def _udp_tunnel_fast(
        self, frame: int, ts: float, version: int, src: bytes, sport: int, dst: bytes,
        dport: int, ttl: int, ident: int, data: bytes, start: int, end: int, wire_len: int,
    ) -> None:  # fmt: skip
        """The flow sink's ``decapsulate``: a whole datagram to a UDP tunnel port."""
        self._udp_tunnel(frame, ts, src, dst, dport, data, start, end, 0, wire_len)

    def _udp_tunnel(
        self, frame: int, ts: float, src: bytes, dst: bytes, dport: int, data: bytes,
        pos: int, end: int, missing: int, wire_len: int,
    ) -> Packet | None:  # fmt: skip
        """The payload ``data[pos:end]`` of a datagram to a UDP tunnel port (``missing``
        more bytes were not captured)."""
        if dport == VXLAN_PORT:
            # RFC 7348: flags (I = 0x08), 24 reserved bits, the 24-bit VNI, 8 reserved bits.
            # The flags are not insisted on, as Zeek and Wireshark do not.
            if end - pos < 8:
                return self._tunnel_cut(frame, ts, missing, "VXLAN header")
            vni = _U32(data, pos + 4)[0] >> 8
            inner = data[pos + 8 : end]
            return self._layer(
                frame, ts, ("vxlan", (("vni", vni),), *_pair(src, dst)), wire_len,
                self._inner_ether, frame, ts, inner, len(inner) + missing,
            )  # fmt: skip
        if dport == GENEVE_PORT:
            return self._geneve(frame, ts, src, dst, data, pos, end, missing, wire_len)
        return self._gtpu(frame, ts, src, dst, data, pos, end, missing, wire_len)

    def _geneve(
        self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, pos: int, end: int,
        missing: int, wire_len: int,
    ) -> Packet | None:  # fmt: skip
        # RFC 8926 §3.4: version (2 bits) and option length (6 bits, 4-byte units), flags,
        # protocol type (an ethertype), the 24-bit VNI, then the options.
        if end - pos < 8:
            return self._tunnel_cut(frame, ts, missing, "Geneve header")
        first = data[pos]
        if first >> 6:
            return self._tunnel_malformed(frame, ts, f"Geneve version {first >> 6}")
        ptype = _U16(data, pos + 2)[0]
        vni = _U32(data, pos + 4)[0] >> 8
        start = pos + 8 + ((first & 0x3F) << 2)
        if start > end:
            return self._tunnel_cut(frame, ts, missing, "Geneve options")
        inner = data[start:end]
        return self._layer(
            frame, ts, ("geneve", (("vni", vni),), *_pair(src, dst)), wire_len,
            self._typed_payload, frame, ts, inner, ptype, len(inner) + missing, "Geneve protocol",
        )  # fmt: skip

    def _gtpu(
        self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, pos: int, end: int,
        missing: int, wire_len: int,
    ) -> Packet | None:  # fmt: skip
        # 3GPP TS 29.281 §5.1: flags (version 1, PT 1, E, S, PN), message type, length of
        # what follows the first 8 bytes, TEID; then, when E, S or PN is set, sequence
        # number, N-PDU number and the first extension header type.
        if end - pos < 8:
            return self._tunnel_cut(frame, ts, missing, "GTP-U header")
        flags, message, length, _teid = _GTP(data, pos)
        if flags >> 5 != 1:
            return self._tunnel_malformed(frame, ts, f"GTP version {flags >> 5} on port 2152")
        if not flags & 0x10:
            return self._not_decoded(frame, ts, "GTP' (protocol type 0)")
        stop = pos + 8 + length
        if stop > end:
            if not missing:
                return self._tunnel_malformed(frame, ts, f"GTP-U length {length} beyond datagram")
            missing, stop = stop - end, end
        else:
            missing = 0  # the header's length ends the payload, whatever follows
        at = pos + 8
        if flags & 0x07:
            if at + 4 > stop:
                return self._tunnel_cut(frame, ts, missing, "GTP-U optional fields")
            next_type = data[at + 3]
            at += 4
            for _ in range(MAX_GTP_EXTENSIONS):
                if not next_type:
                    break
                # Each extension: a length in 4-byte units, content, the next type.
                if at >= stop:
                    return self._tunnel_cut(frame, ts, missing, "GTP-U extension header")
                size = data[at] << 2
                if not size:
                    return self._tunnel_malformed(frame, ts, "GTP-U extension length 0")
                if at + size > stop:
                    return self._tunnel_cut(frame, ts, missing, "GTP-U extension header")
                next_type = data[at + size - 1]
                at += size
            else:
                if next_type:
                    return self._tunnel_malformed(
                        frame, ts, f"more than {MAX_GTP_EXTENSIONS} GTP-U extension headers"
                    )
        layer: Layer = ("gtpu", (), *_pair(src, dst))
        if message != GTP_G_PDU:  # echo, error indication, end marker: signalling
            return self._layer(frame, ts, layer, wire_len, self._not_ip, "gtpu-signalling")
        inner = data[at:stop]
        return self._layer(
            frame, ts, layer, wire_len,
            self._inner_ip, frame, ts, inner, len(inner) + missing, "GTP-U payload",
        )  # fmt: skip

    def _gre(
        self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, pos: int, end: int,
        missing: int, wire_len: int,
    ) -> Packet | None:  # fmt: skip
        # RFC 2784 with RFC 2890's key and sequence number: C, K, S flags, version, protocol
        # type; then checksum + reserved (C), key (K), sequence number (S), 4 bytes each.
        if end - pos < 4:
            return self._tunnel_cut(frame, ts, missing, "GRE header")
        flags, ptype = _PORTS(data, pos)
        version = flags & 7
        if version == 1:
            return self._not_decoded(frame, ts, f"GRE version 1 (PPTP), protocol 0x{ptype:04x}")
        if version:
            return self._tunnel_malformed(frame, ts, f"GRE version {version}")
        if flags & 0x4000:
            return self._not_decoded(frame, ts, "GRE with source routing (RFC 1701)")
        at = pos + 4 + (4 if flags & 0x8000 else 0)
        key: int | None = None
        if flags & 0x2000:
            if at + 4 > end:
                return self._tunnel_cut(frame, ts, missing, "GRE key")
            key = _U32(data, at)[0]
            at += 4
        sequenced = bool(flags & 0x1000)
        if sequenced:
            at += 4
        if at > end:
            return self._tunnel_cut(frame, ts, missing, "GRE header")
        a, b = _pair(src, dst)
        if ptype in (GRE_ERSPAN, GRE_ERSPAN_3):
            return self._erspan(frame, ts, ptype, sequenced, a, b, data, at, end, missing, wire_len)
        inner = data[at:end]
        return self._layer(
            frame, ts, ("gre", (("key", key),) if key is not None else (), a, b), wire_len,
            self._typed_payload, frame, ts, inner, ptype, len(inner) + missing, "GRE protocol",
        )  # fmt: skip

    def _erspan(
        self, frame: int, ts: float, ptype: int, sequenced: bool, a: bytes, b: bytes,
        data: bytes, at: int, end: int, missing: int, wire_len: int,
    ) -> Packet | None:  # fmt: skip
        """ERSPAN (draft-foschiano-erspan-03): type I is GRE 0x88BE without a sequence
        number and no header of its own; type II adds an 8-byte header (version 1), type
        III (GRE 0x22EB) a 12-byte one (version 2) and an optional 8-byte platform one."""
        if ptype == GRE_ERSPAN and not sequenced:
            inner = data[at:end]
            return self._layer(
                frame, ts, ("erspan1", (), a, b), wire_len,
                self._inner_ether, frame, ts, inner, len(inner) + missing,
            )  # fmt: skip
        size = 8 if ptype == GRE_ERSPAN else 12
        if end - at < size:
            return self._tunnel_cut(frame, ts, missing, "ERSPAN header")
        version = data[at] >> 4
        want = 1 if ptype == GRE_ERSPAN else 2
        if version != want:
            return self._tunnel_malformed(
                frame, ts, f"ERSPAN version {version} in GRE protocol 0x{ptype:04x}"
            )
        session = _U16(data, at + 2)[0] & 0x3FF
        frame_type = 0
        if ptype == GRE_ERSPAN_3:
            word = _U16(data, at + 10)[0]
            frame_type = (word >> 10) & 0x1F
            if word & 1:  # O: a platform-specific subheader follows
                size += 8
                if end - at < size:
                    return self._tunnel_cut(frame, ts, missing, "ERSPAN platform subheader")
        inner = data[at + size : end]
        layer: Layer = ("erspan2" if want == 1 else "erspan3", (("session", session),), a, b)
        if frame_type == 0:
            return self._layer(
                frame, ts, layer, wire_len,
                self._inner_ether, frame, ts, inner, len(inner) + missing,
            )  # fmt: skip
        if frame_type == 2:
            return self._layer(
                frame, ts, layer, wire_len,
                self._inner_ip, frame, ts, inner, len(inner) + missing, "ERSPAN payload",
            )  # fmt: skip
        return self._not_decoded(frame, ts, f"ERSPAN III frame type {frame_type}")

    def _pppoe(self, frame: int, ts: float, data: bytes, off: int, orig_len: int) -> Packet | None:
        # RFC 2516 §4: version and type (1, 1), code 0, session id, length of the payload,
        # which is a PPP frame: protocol (1 or 2 bytes, RFC 1661 §6.5) and its datagram.
        n = len(data)
        if n - off < 8:
            return self._tunnel_cut(frame, ts, orig_len - n, "PPPoE header")
        vertype, code, session, length = _PPPOE(data, off)
        if vertype != 0x11 or code:
            return self._tunnel_malformed(
                frame, ts, f"PPPoE session version/type 0x{vertype:02x} code 0x{code:02x}"
            )
        stop = off + 6 + length
        missing = 0
        if stop > n:
            if n >= orig_len:
                return self._tunnel_malformed(frame, ts, f"PPPoE length {length} beyond frame")
            missing, stop = stop - n, n
        if length < 2:
            return self._tunnel_malformed(frame, ts, f"PPPoE length {length}")
        protocol = data[off + 6]
        at = off + 7
        if not protocol & 1:  # an uncompressed protocol field: two bytes
            protocol = (protocol << 8) | data[at]
            at += 1
        return self._layer(
            frame, ts, ("pppoe", (("session", session),), b"", b""), orig_len,
            self._ppp, frame, ts, data[at:stop], protocol, missing,
        )  # fmt: skip

    def _ppp(
        self, frame: int, ts: float, data: bytes, protocol: int, missing: int
    ) -> Packet | None:
        if protocol == PPP_IPV4:
            return self._ipv4(frame, ts, data, 0, len(data) + missing)
        if protocol == PPP_IPV6:
            return self._ipv6(frame, ts, data, 0, len(data) + missing)
        if protocol >= 0x8000:  # link and network control protocols (RFC 1661 §2)
            return self._not_ip("ppp-" + PPP_CONTROL.get(protocol, f"0x{protocol:04x}"))
        return self._not_decoded(frame, ts, f"PPP protocol 0x{protocol:04x}")

    def _mpls(
        self, frame: int, ts: float, data: bytes, off: int, orig_len: int, src: bytes,
        dst: bytes, wire_len: int,
    ) -> Packet | None:  # fmt: skip
        """An MPLS label stack at ``data[off:]`` (RFC 3032); ``src``/``dst``: the outer IP
        addresses when it came in IP (protocol 137, RFC 4023), else empty."""
        n = len(data)
        at = off
        for _ in range(MAX_MPLS_LABELS):
            if at + 4 > n:
                return self._tunnel_cut(frame, ts, orig_len - n, "MPLS label stack")
            bottom = data[at + 2] & 1
            at += 4
            if bottom:
                break
        else:
            return self._tunnel_malformed(frame, ts, f"more than {MAX_MPLS_LABELS} MPLS labels")
        inner = data[at:]
        return self._layer(
            frame, ts, ("mpls", (), *_pair(src, dst)), wire_len,
            self._mpls_payload, frame, ts, inner, len(inner) + orig_len - n,
        )  # fmt: skip

    def _mpls_payload(self, frame: int, ts: float, data: bytes, orig_len: int) -> Packet | None:
        """What follows the bottom label. RFC 3032 does not say: like Zeek and Wireshark
        we read IPv4 or IPv6 by the first nibble. A first nibble of 0 is a pseudowire
        control word (RFC 4385); the Ethernet frame behind it is decoded only when it is
        unmistakable (see :func:`_pw_ethernet`), else it is counted as not decoded: an
        Ethernet pseudowire without control word cannot be told apart at all."""
        if not data:
            return self._tunnel_cut(frame, ts, orig_len, "MPLS payload")
        nibble = data[0] >> 4
        if nibble == 4:
            return self._ipv4(frame, ts, data, 0, orig_len)
        if nibble == 6:
            return self._ipv6(frame, ts, data, 0, orig_len)
        if nibble == 1:  # associated channel (RFC 4385/5586): OAM, BFD
            return self._not_ip("mpls-ach")
        if nibble == 0:
            if _pw_ethernet(data, orig_len):
                return self._layer(
                    frame, ts, ("pw", (), b"", b""), orig_len,
                    self._inner_ether, frame, ts, data[4:], orig_len - 4,
                )  # fmt: skip
            if len(data) < orig_len:  # too little captured to tell
                return self._snaplen(frame, ts, "MPLS pseudowire cut")
        return self._not_decoded(
            frame, ts, f"MPLS payload starting 0x{data[0]:02x} (pseudowire, not IP)"
        )

    def _inner_ether(self, frame: int, ts: float, data: bytes, orig_len: int) -> Packet | None:
        if len(data) < 14:
            return self._short_link(frame, ts, data, orig_len, "inner ethernet")
        return self._ether(frame, ts, data, 12, orig_len)

    def _inner_ip(
        self, frame: int, ts: float, data: bytes, orig_len: int, carrier: str
    ) -> Packet | None:
        if not data:
            return self._tunnel_cut(frame, ts, orig_len, carrier)
        version = data[0] >> 4
        if version == 4:
            return self._ipv4(frame, ts, data, 0, orig_len)
        if version == 6:
            return self._ipv6(frame, ts, data, 0, orig_len)
        return self._not_decoded(frame, ts, f"{carrier} starting 0x{data[0]:02x}, not IP")

    def _tunnel_cut(self, frame: int, ts: float, missing: int, what: str) -> Packet | None:
        if missing > 0:
            return self._snaplen(frame, ts, f"{what} cut")
        return self._tunnel_malformed(frame, ts, f"{what} too short")

    def _tunnel_malformed(self, frame: int, ts: float, detail: str) -> Packet | None:
        return self._anomaly("tunnel_malformed", frame, ts, detail)

    def _not_decoded(self, frame: int, ts: float, detail: str) -> Packet | None:
        return self._anomaly("encapsulation_not_decoded", frame, ts, detail)

    # -- anomalies -----------------------------------------------------------------

    def _anomaly(self, what: str, frame: int, ts: float, detail: str) -> Packet | None:
        """Report a packet that cannot be decoded further (and count it undecoded)."""
        self._count_undecoded(what, frame)
        self._report(what, frame, ts, detail)
        return None

    def _report(self, what: str, frame: int, ts: float, detail: str) -> None:
        depth = self._depth
        if depth:  # found inside an encapsulation: the anomaly names it
            tunnel = self._tunnel(tuple(self._chain[:depth])).text
            self._sink(Anomaly(what, frame, ts, detail, tunnel=tunnel))
        else:
            self._sink(Anomaly(what, frame, ts, detail))

    def _count_undecoded(self, what: str, frame: int) -> None:
        if frame != self._undecoded_frame:  # a frame is counted once, by its first reason
            self._undecoded_frame = frame
            self.undecoded[what] = self.undecoded.get(what, 0) + 1

    def _snaplen(self, frame: int, ts: float, detail: str) -> Packet | None:
        return self._anomaly("snaplen_truncated", frame, ts, detail)

    def _payload_cut(self, frame: int, ts: float, detail: str) -> None:
        """A packet decoded whole but for the end of its payload: reported, still used."""
        self._report("snaplen_truncated", frame, ts, detail)

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


def _pair(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    """A tunnel's two endpoints in a fixed order (lower first): the same both ways."""
    return (a, b) if a <= b else (b, a)


def _layer_text(layer: Layer) -> str:
    """``kind[:name=value,...][@address-address]``, e.g. ``vxlan:vni=42@192.0.2.1-192.0.2.2``."""
    kind, attrs, a, b = layer
    text = kind
    if attrs:
        text += ":" + ",".join(f"{name}={value}" for name, value in attrs)
    if a:
        text += f"@{addr_text(a)}-{addr_text(b)}"
    return text


def _pw_ethernet(data: bytes, orig_len: int) -> bool:
    """Is ``data`` a pseudowire control word (RFC 4385: first nibble 0) followed by an
    Ethernet frame (RFC 4448) whose payload checks out? An IPv4 header's checksum, an
    IPv6 header whose payload length fits the frame (allowing Ethernet's padding), or
    ARP's fixed fields."""
    if len(data) < 4 + 14 + 20:
        return False
    at = 16
    etype = _U16(data, at)[0]
    if etype in VLAN_TAGS:
        at += 4
        etype = _U16(data, at)[0]
    ip = at + 2
    if etype == ETH_IPV4:
        hlen = (data[ip] & 15) << 2
        if data[ip] >> 4 != 4 or hlen < 20 or len(data) < ip + hlen:
            return False
        total: int = sum(struct.unpack_from(f"!{hlen // 2}H", data, ip))
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
        return total == 0xFFFF
    if etype == ETH_IPV6 and len(data) >= ip + 40 and data[ip] >> 4 == 6:
        stop = ip + 40 + _U16(data, ip + 4)[0]
        frame_end = orig_len  # the pseudowire's Ethernet frame ends with the packet
        return stop == frame_end or (stop < frame_end and frame_end - 4 <= 60)
    # ARP for IPv4 over Ethernet: hardware type 1, protocol 0x0800, sizes 6 and 4.
    return etype == 0x0806 and data[ip : ip + 6] == b"\x00\x01\x08\x00\x06\x04"


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
