"""Raw frame building for the benchmark generator: pcap records, Ethernet/VLAN, IPv4/IPv6,
TCP and UDP, with real checksums.

Speed matters (a million frames in seconds), so checksums are computed by arithmetic on the
header fields plus a payload partial sum that callers can precompute once per template.
"""

from __future__ import annotations

import struct
import sys

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
PCAP_RECORD = struct.Struct("<IIII")

ETH_IPV4 = b"\x08\x00"
ETH_IPV6 = b"\x86\xdd"
ETH_ARP = b"\x08\x06"
ETH_VLAN = b"\x81\x00"

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP_TS = struct.Struct("!HHIIHHHHBBBBII")  # 32-byte header: NOP NOP Timestamps
_UDP = struct.Struct("!HHHH")
_TCP_TS_OPT_SUM = 0x0101 + 0x080A
_LITTLE = sys.byteorder == "little"

TCP = 6
UDP = 17
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ones_sum(data: bytes) -> int:
    """16-bit ones' complement sum of big-endian words (RFC 1071), folded."""
    if len(data) & 1:
        data += b"\x00"
    s = fold(sum(memoryview(data).cast("H")))
    # The sum is byte-order independent up to a final swap (RFC 1071 section 2(B)).
    return ((s & 0xFF) << 8) | (s >> 8) if _LITTLE else s


class Payload:
    """Bytes plus their precomputed checksum partial sum."""

    __slots__ = ("data", "psum")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.psum = ones_sum(data)


class Link:
    """Both directions of one flow: MACs, optional VLAN tag, addresses, TTLs.

    ``a`` is the client (initiator), ``b`` the server.
    """

    __slots__ = (
        "a",
        "a_port",
        "addr_sum",
        "b",
        "b_port",
        "eth_ab",
        "eth_ba",
        "ip_id_a",
        "ip_id_b",
        "ttl_a",
        "ttl_b",
        "v6",
        "v6_flow_ab",
        "v6_flow_ba",
    )

    def __init__(
        self,
        mac_a: bytes,
        mac_b: bytes,
        a: bytes,
        b: bytes,
        a_port: int,
        b_port: int,
        vlan: int | None = None,
        ttl_a: int = 64,
        ttl_b: int = 57,
        ip_id: int = 0,
        flow_label: int = 0,
    ) -> None:
        self.v6 = len(a) == 16
        ethertype = ETH_IPV6 if self.v6 else ETH_IPV4
        tag = ETH_VLAN + struct.pack("!H", vlan) if vlan is not None else b""
        self.eth_ab = mac_b + mac_a + tag + ethertype
        self.eth_ba = mac_a + mac_b + tag + ethertype
        self.a, self.b, self.a_port, self.b_port = a, b, a_port, b_port
        self.addr_sum = ones_sum(a + b)
        self.ttl_a, self.ttl_b = ttl_a, ttl_b
        self.ip_id_a = ip_id & 0xFFFF
        self.ip_id_b = (ip_id * 7 + 12345) & 0xFFFF
        self.v6_flow_ab = 0x60000000 | (flow_label & 0xFFFFF)
        self.v6_flow_ba = 0x60000000 | ((flow_label * 31 + 7) & 0xFFFFF)

    def ip(self, from_a: bool, proto: int, l4: bytes) -> bytes:
        """Ethernet + IP header + ``l4`` (a complete TCP/UDP segment)."""
        if self.v6:
            if from_a:
                return (
                    self.eth_ab
                    + _IPV6.pack(self.v6_flow_ab, len(l4), proto, self.ttl_a, self.a, self.b)
                    + l4
                )
            return (
                self.eth_ba
                + _IPV6.pack(self.v6_flow_ba, len(l4), proto, self.ttl_b, self.b, self.a)
                + l4
            )
        total = 20 + len(l4)
        if from_a:
            self.ip_id_a = ip_id = (self.ip_id_a + 1) & 0xFFFF
            ttl, src, dst, eth = self.ttl_a, self.a, self.b, self.eth_ab
        else:
            self.ip_id_b = ip_id = (self.ip_id_b + 1) & 0xFFFF
            ttl, src, dst, eth = self.ttl_b, self.b, self.a, self.eth_ba
        csum = ~fold(0x4500 + 0x4000 + total + ip_id + (ttl << 8) + proto + self.addr_sum)
        return (
            eth
            + _IPV4.pack(0x45, 0, total, ip_id, 0x4000, ttl, proto, csum & 0xFFFF, src, dst)
            + l4
        )

    def udp(self, from_a: bool, payload: bytes, psum: int | None = None) -> bytes:
        if psum is None:
            psum = ones_sum(payload)
        length = 8 + len(payload)
        sport, dport = (self.a_port, self.b_port) if from_a else (self.b_port, self.a_port)
        csum = ~fold(self.addr_sum + UDP + length + sport + dport + length + psum) & 0xFFFF
        l4 = _UDP.pack(sport, dport, length, csum or 0xFFFF) + payload
        return self.ip(from_a, UDP, l4)


class Tcp:
    """A TCP connection's sequence state over a :class:`Link`; builds segments."""

    __slots__ = ("ack_a", "ack_b", "link", "seq_a", "seq_b", "ts_a", "ts_b", "win_a", "win_b")

    def __init__(self, link: Link, isn_a: int, isn_b: int, ts_a: int, ts_b: int) -> None:
        self.link = link
        self.seq_a, self.seq_b = isn_a & 0xFFFFFFFF, isn_b & 0xFFFFFFFF
        self.ts_a, self.ts_b = ts_a & 0xFFFFFFFF, ts_b & 0xFFFFFFFF
        self.win_a, self.win_b = 502, 501
        self.ack_a = self.ack_b = 0

    def syn(self, mss: int) -> bytes:
        return self._syn(True, SYN, mss)

    def syn_ack(self, mss: int) -> bytes:
        return self._syn(False, SYN | ACK, mss)

    def _syn(self, from_a: bool, flags: int, mss: int) -> bytes:
        link = self.link
        if from_a:
            seq, ack, ts, ecr = self.seq_a, 0, self.ts_a, 0
            sport, dport = link.a_port, link.b_port
        else:
            seq, ack, ts, ecr = self.seq_b, (self.seq_a) & 0xFFFFFFFF, self.ts_b, self.ts_a
            sport, dport = link.b_port, link.a_port
        opts = struct.pack("!BBHBBBBIIBBBB", 2, 4, mss, 4, 2, 8, 10, ts, ecr, 1, 3, 3, 7)
        hdr = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (10 << 12) | flags, 64240, 0, 0)
        seg = hdr + opts
        csum = ~fold(link.addr_sum + TCP + len(seg) + ones_sum(seg)) & 0xFFFF
        seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
        if from_a:
            self.seq_a = (self.seq_a + 1) & 0xFFFFFFFF
        else:
            self.seq_b = (self.seq_b + 1) & 0xFFFFFFFF
        return link.ip(from_a, TCP, seg)

    def seg(
        self, from_a: bool, payload: bytes = b"", flags: int = ACK, psum: int | None = None
    ) -> bytes:
        """A data or control segment with the Timestamps option; advances the sequence."""
        link = self.link
        if psum is None:
            psum = ones_sum(payload) if payload else 0
        if from_a:
            self.ts_a = ts = (self.ts_a + 1) & 0xFFFFFFFF
            seq, ack, ecr, win = self.seq_a, self.seq_b, self.ts_b, self.win_a
            sport, dport = link.a_port, link.b_port
        else:
            self.ts_b = ts = (self.ts_b + 1) & 0xFFFFFFFF
            seq, ack, ecr, win = self.seq_b, self.seq_a, self.ts_a, self.win_b
            sport, dport = link.b_port, link.a_port
        off_flags = (8 << 12) | flags
        length = 32 + len(payload)
        s = (
            link.addr_sum + TCP + length + sport + dport
            + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
            + off_flags + win + _TCP_TS_OPT_SUM
            + (ts >> 16) + (ts & 0xFFFF) + (ecr >> 16) + (ecr & 0xFFFF) + psum
        )  # fmt: skip
        csum = ~fold(s) & 0xFFFF
        hdr = _TCP_TS.pack(sport, dport, seq, ack, off_flags, win, csum, 0, 1, 1, 8, 10, ts, ecr)
        advance = len(payload) + (1 if flags & (SYN | FIN) else 0)
        if from_a:
            self.seq_a = (seq + advance) & 0xFFFFFFFF
        else:
            self.seq_b = (seq + advance) & 0xFFFFFFFF
        return link.ip(from_a, TCP, hdr + payload)

    def data(self, from_a: bool, stream: bytes, mss: int) -> list[bytes]:
        """``stream`` cut into MSS segments, PSH on the last one."""
        out = []
        n = len(stream)
        for off in range(0, n, mss):
            chunk = stream[off : off + mss]
            flags = ACK | PSH if off + mss >= n else ACK
            out.append(self.seg(from_a, chunk, flags))
        return out


def arp_request(mac: bytes, ip: bytes, target: bytes) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ip, b"\x00" * 6, target)
    return b"\xff" * 6 + mac + ETH_ARP + body + b"\x00" * 18
