"""Rewriting captured frames for redacted evidence pcaps, with plain struct code.

Every frame keeps its length, so captured and wire lengths, TCP sequence numbers and
record sizes stay true; what changes, changes in place:

- MAC addresses (Ethernet, Linux cooked headers, ARP, NDP options) and IPv4/IPv6
  addresses (headers, routing headers, ARP, NDP targets, the IP header quoted in ICMP
  errors, A/AAAA records, EDNS Client Subnet, SVCB address hints) get the redactor's
  pseudonyms; IP options and IPv6 hop-by-hop/destination options are zeroed.
- DNS messages (UDP/TCP 53, mDNS 5353, LLMNR 5355) keep their structure: every label the
  name mask hides is overwritten with ``*`` of the same length, so compression pointers
  stay valid ("mail.corp.example.co.uk" reads "****.****.example.co.uk"). Record data
  that is not an address or a name (TXT, keys, signatures, cookies) is zeroed.
- Payloads that cannot be rewritten are kept as lengths only: TLS records keep their
  5-byte headers (content type, version, length) where a segment starts on one, with
  zeroed bodies; QUIC, other UDP and TCP payloads, fragments after the first and
  anything unparseable are zeroed.
- IPv4 header, TCP, UDP, ICMP and ICMPv6 checksums are recomputed, so Wireshark finds
  them good. A truncated frame (snap length) gets a zero transport checksum: it could
  not be verified anyway, and the original value would be a function of the original
  addresses. Quoted transport checksums in ICMP errors are zeroed for the same reason.

Unknown link types are zeroed entirely. Nothing here raises on hostile bytes: a frame
that cannot be walked is zeroed from the point where walking stopped.
"""

from __future__ import annotations

import contextlib
import struct
import sys
from array import array
from collections import Counter
from typing import Any

from dotaudit.redact.redactor import Redactor

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})
MAX_VLAN_TAGS = 8
MAX_IPV6_EXT = 12
MAX_NESTING = 3
"""IP in IP (or quoted in ICMP) this deep; deeper is zeroed."""
MAX_POINTER_JUMPS = 64
MAX_LABELS = 128

TCP = 6
UDP = 17
ICMP = 1
ICMPV6 = 58
DNS_PORTS = frozenset({53, 5353, 5355})
TLS_CONTENT_TYPES = frozenset({20, 21, 22, 23, 24})
MAX_TLS_RECORD = (1 << 14) + 2048

_NULL_FAMILIES = {2: 4, 24: 6, 28: 6, 30: 6}
_ICMP4_ERRORS = frozenset({3, 4, 5, 11, 12})
_ICMP6_ERRORS = frozenset({1, 2, 3, 4})
_V6_OPTIONS = frozenset({0, 60})

_U16 = struct.Struct("!H")
_DNS_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")

# RDATA layouts: bytes before a name, then whether more names follow.
_RDATA_NAMES: dict[int, tuple[int, int]] = {
    2: (0, 1),  # NS
    5: (0, 1),  # CNAME
    12: (0, 1),  # PTR
    39: (0, 1),  # DNAME
    15: (2, 1),  # MX
    18: (2, 1),  # AFSDB
    36: (2, 1),  # KX
    33: (6, 1),  # SRV
    6: (0, 2),  # SOA: mname, rname, then 20 bytes of numbers
    17: (0, 2),  # RP
}
_SOA = 6
_OPT = 41
_SVCB_TYPES = frozenset({64, 65})
_ECS = 8
_KEPT_SVC_PARAMS = frozenset({0, 1, 2, 3})  # mandatory, alpn, no-default-alpn, port


class _Unwalkable(Exception):
    """Bytes that cannot be walked as what they claim to be."""


def ones_complement(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The Internet checksum (RFC 1071) of ``data``, folded, complemented."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    words = array("H", bytes(data))
    if sys.byteorder == "little":
        words.byteswap()
    total = sum(words) + initial
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_sum(src: bytes, dst: bytes, protocol: int, length: int) -> int:
    header = bytes(src) + bytes(dst)
    words = array("H", header)
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words) + protocol + (length & 0xFFFF) + (length >> 16)


class FrameRewriter:
    """Rewrites frames for one redacted evidence set; counts what it did."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.counts: Counter[str] = Counter()

    # -- entry ----------------------------------------------------------------------

    def rewrite(self, linktype: int, data: bytes) -> bytes:
        buf = bytearray(data)
        self.counts["frames"] += 1
        # Every step zeroes what it could not walk before it gives up.
        with contextlib.suppress(_Unwalkable):
            self._link(linktype, buf)
        return bytes(buf)

    def summary(self) -> dict[str, Any]:
        """What was done to the evidence frames, for the report's redaction block."""
        counts = self.counts
        return {
            "frames": counts["frames"],
            "dns_messages_masked": counts["dns_masked"],
            "dns_labels_hidden": counts["dns_labels_hidden"],
            "tls_payloads_zeroed": counts["tls_zeroed"],
            "other_payloads_zeroed": counts["payload_zeroed"],
            "unparsed_zeroed": counts["unparsed_zeroed"],
            "method": "in place, lengths kept: hidden DNS labels become '*', TLS record "
            "bodies, QUIC and other payloads are zeroed; checksums recomputed",
        }

    def _zero(self, buf: bytearray, start: int, end: int, what: str) -> None:
        if end > start:
            buf[start:end] = bytes(end - start)
            self.counts[what] += 1

    # -- link layer -----------------------------------------------------------------

    def _link(self, linktype: int, buf: bytearray) -> None:
        n = len(buf)
        if linktype == 1:
            if n < 14:
                self._zero(buf, 0, n, "unparsed_zeroed")
                return
            self._mac(buf, 0)
            self._mac(buf, 6)
            self._ethertype(buf, _U16.unpack_from(buf, 12)[0], 14, n)
        elif linktype in (101, 12, 14):
            self._ip_any(buf, 0, n, 0)
        elif linktype == 228:
            self._ipv4(buf, 0, n, 0)
        elif linktype == 229:
            self._ipv6(buf, 0, n, 0)
        elif linktype == 113:
            if n < 16:
                self._zero(buf, 0, n, "unparsed_zeroed")
                return
            if _U16.unpack_from(buf, 4)[0] == 6:
                self._mac(buf, 6)
            self._ethertype(buf, _U16.unpack_from(buf, 14)[0], 16, n)
        elif linktype == 276:
            if n < 20:
                self._zero(buf, 0, n, "unparsed_zeroed")
                return
            if buf[11] == 6:
                self._mac(buf, 12)
            self._ethertype(buf, _U16.unpack_from(buf, 0)[0], 20, n)
        elif linktype in (0, 108):
            if n < 4:
                self._zero(buf, 0, n, "unparsed_zeroed")
                return
            family = int.from_bytes(buf[:4], "big")
            if linktype == 0 and family not in _NULL_FAMILIES:
                family = int.from_bytes(buf[:4], "little")
            version = _NULL_FAMILIES.get(family)
            if version == 4:
                self._ipv4(buf, 4, n, 0)
            elif version == 6:
                self._ipv6(buf, 4, n, 0)
            else:
                self._zero(buf, 4, n, "unparsed_zeroed")
        else:
            self._zero(buf, 0, n, "unparsed_zeroed")

    def _mac(self, buf: bytearray, at: int) -> None:
        buf[at : at + 6] = self.redactor.mac(bytes(buf[at : at + 6]))

    def _address(self, buf: bytearray, at: int, size: int) -> None:
        buf[at : at + size] = self.redactor.packed(bytes(buf[at : at + size]))

    def _ethertype(self, buf: bytearray, etype: int, off: int, end: int) -> None:
        tags = 0
        while etype in VLAN_TAGS and tags < MAX_VLAN_TAGS and off + 4 <= end:
            etype = _U16.unpack_from(buf, off + 2)[0]
            off += 4
            tags += 1
        if etype == ETH_IPV4:
            self._ipv4(buf, off, end, 0)
        elif etype == ETH_IPV6:
            self._ipv6(buf, off, end, 0)
        elif etype == ETH_ARP:
            self._arp(buf, off, end)
        else:
            self._zero(buf, off, end, "payload_zeroed")

    def _arp(self, buf: bytearray, off: int, end: int) -> None:
        # Ethernet/IPv4 ARP only: hardware type 1, protocol 0x0800, sizes 6 and 4.
        if end - off < 28 or bytes(buf[off : off + 6]) != b"\x00\x01\x08\x00\x06\x04":
            self._zero(buf, off, end, "unparsed_zeroed")
            return
        self._mac(buf, off + 8)
        self._address(buf, off + 14, 4)
        self._mac(buf, off + 18)
        self._address(buf, off + 24, 4)

    # -- IP ---------------------------------------------------------------------------

    def _ip_any(self, buf: bytearray, off: int, end: int, depth: int) -> None:
        if off >= end:
            return
        version = buf[off] >> 4
        if version == 4:
            self._ipv4(buf, off, end, depth)
        elif version == 6:
            self._ipv6(buf, off, end, depth)
        else:
            self._zero(buf, off, end, "unparsed_zeroed")

    def _ipv4(self, buf: bytearray, off: int, end: int, depth: int) -> None:
        if end - off < 20 or buf[off] >> 4 != 4 or depth > MAX_NESTING:
            self._zero(buf, off, end, "unparsed_zeroed")
            raise _Unwalkable
        ihl = (buf[off] & 0x0F) * 4
        if ihl < 20 or off + ihl > end:
            self._zero(buf, off, end, "unparsed_zeroed")
            raise _Unwalkable
        total = _U16.unpack_from(buf, off + 2)[0]
        stop = min(end, off + total) if total >= ihl else end
        truncated = total > end - off
        self._address(buf, off + 12, 4)
        self._address(buf, off + 16, 4)
        if ihl > 20:
            buf[off + 20 : off + ihl] = bytes(ihl - 20)  # options: record route and kin
        buf[off + 10 : off + 12] = b"\0\0"
        buf[off + 10 : off + 12] = _U16.pack(ones_complement(buf[off : off + ihl]))
        frag = _U16.unpack_from(buf, off + 6)[0]
        protocol = buf[off + 9]
        payload = off + ihl
        src, dst = bytes(buf[off + 12 : off + 16]), bytes(buf[off + 16 : off + 20])
        if frag & 0x1FFF:
            self._zero(buf, payload, stop, "payload_zeroed")  # a later fragment
            return
        fragmented = bool(frag & 0x2000)
        self._zero(buf, stop, end, "padding_zeroed")  # link padding can leak memory
        self._transport(buf, protocol, payload, stop, src, dst, truncated, fragmented, depth)

    def _ipv6(self, buf: bytearray, off: int, end: int, depth: int) -> None:
        if end - off < 40 or buf[off] >> 4 != 6 or depth > MAX_NESTING:
            self._zero(buf, off, end, "unparsed_zeroed")
            raise _Unwalkable
        length = _U16.unpack_from(buf, off + 4)[0]
        stop = min(end, off + 40 + length)
        truncated = off + 40 + length > end
        self._address(buf, off + 8, 16)
        self._address(buf, off + 24, 16)
        src = bytes(buf[off + 8 : off + 24])
        final_dst = bytes(buf[off + 24 : off + 40])
        next_header = buf[off + 6]
        at = off + 40
        fragmented = False
        self._zero(buf, stop, end, "padding_zeroed")
        for _ in range(MAX_IPV6_EXT):
            if next_header in _V6_OPTIONS or next_header == 43:
                if at + 8 > stop:
                    self._zero(buf, at, stop, "unparsed_zeroed")
                    return
                size = (buf[at + 1] + 1) * 8
                if at + size > stop:
                    self._zero(buf, at, stop, "unparsed_zeroed")
                    return
                if next_header == 43:
                    final_dst = self._routing(buf, at, size, final_dst)
                else:
                    buf[at + 2 : at + size] = bytes(size - 2)  # Pad1 options only
                next_header = buf[at]
                at += size
            elif next_header == 44:
                if at + 8 > stop:
                    self._zero(buf, at, stop, "unparsed_zeroed")
                    return
                offset_flags = _U16.unpack_from(buf, at + 2)[0]
                next_header = buf[at]
                at += 8
                if offset_flags & 0xFFF8:
                    self._zero(buf, at, stop, "payload_zeroed")  # a later fragment
                    return
                fragmented = fragmented or bool(offset_flags & 1)
            elif next_header == 51:
                if at + 12 > stop:
                    self._zero(buf, at, stop, "unparsed_zeroed")
                    return
                size = (buf[at + 1] + 2) * 4
                buf[at + 12 : min(at + size, stop)] = bytes(max(min(at + size, stop) - at - 12, 0))
                next_header = buf[at]
                at += size
            else:
                break
        else:
            self._zero(buf, at, stop, "unparsed_zeroed")
            return
        self._transport(buf, next_header, at, stop, src, final_dst, truncated, fragmented, depth)

    def _routing(self, buf: bytearray, at: int, size: int, final_dst: bytes) -> bytes:
        kind, segments_left = buf[at + 2], buf[at + 3]
        if kind in (0, 2, 4):
            addresses = []
            for pos in range(at + 8, at + size - 15, 16):
                self._address(buf, pos, 16)
                addresses.append(bytes(buf[pos : pos + 16]))
            if kind == 4:
                # SRH: TLVs may follow the segment list; the list is last_entry+1 long.
                count = buf[at + 4] + 1
                if count < len(addresses):
                    tail = at + 8 + 16 * count
                    buf[tail : at + size] = bytes(at + size - tail)
                    addresses = addresses[:count]
                if segments_left and addresses:
                    return addresses[0]
            elif segments_left and addresses:
                return addresses[-1]
        else:
            buf[at + 4 : at + size] = bytes(size - 4)
        return final_dst

    # -- transport --------------------------------------------------------------------

    def _transport(
        self,
        buf: bytearray,
        protocol: int,
        at: int,
        stop: int,
        src: bytes,
        dst: bytes,
        truncated: bool,
        fragmented: bool,
        depth: int,
    ) -> None:
        if protocol == UDP:
            self._udp(buf, at, stop, src, dst, truncated, fragmented)
        elif protocol == TCP:
            self._tcp(buf, at, stop, src, dst, truncated, fragmented)
        elif protocol == ICMP:
            self._icmp(buf, at, stop, truncated, depth)
        elif protocol == ICMPV6:
            self._icmp6(buf, at, stop, src, dst, truncated, depth)
        elif protocol == 4:
            self._ipv4(buf, at, stop, depth + 1)
        elif protocol == 41:
            self._ipv6(buf, at, stop, depth + 1)
        else:
            self._zero(buf, at, stop, "payload_zeroed")

    def _udp(
        self,
        buf: bytearray,
        at: int,
        stop: int,
        src: bytes,
        dst: bytes,
        truncated: bool,
        fragmented: bool,
    ) -> None:
        if stop - at < 8:
            self._zero(buf, at, stop, "unparsed_zeroed")
            return
        sport, dport = _U16.unpack_from(buf, at)[0], _U16.unpack_from(buf, at + 2)[0]
        declared = _U16.unpack_from(buf, at + 4)[0]
        if not fragmented and not truncated and 8 <= declared < stop - at:
            self._zero(buf, at + declared, stop, "padding_zeroed")
            stop = at + declared
        payload = at + 8
        if fragmented or truncated:
            self._zero(buf, payload, stop, "payload_zeroed")
        elif sport in DNS_PORTS or dport in DNS_PORTS:
            self._dns(buf, payload, stop)
        else:
            self._zero(buf, payload, stop, "payload_zeroed")
        if fragmented or truncated:
            if len(src) == 4:
                buf[at + 6 : at + 8] = b"\0\0"  # "no checksum", legal for UDP over IPv4
            return
        if len(src) == 4 and buf[at + 6 : at + 8] == b"\0\0":
            return  # sent without a checksum: keep it that way
        buf[at + 6 : at + 8] = b"\0\0"
        checksum = ones_complement(buf[at:stop], _pseudo_sum(src, dst, UDP, stop - at))
        buf[at + 6 : at + 8] = _U16.pack(checksum or 0xFFFF)

    def _tcp(
        self,
        buf: bytearray,
        at: int,
        stop: int,
        src: bytes,
        dst: bytes,
        truncated: bool,
        fragmented: bool,
    ) -> None:
        if stop - at < 20:
            self._zero(buf, at, stop, "unparsed_zeroed")
            return
        header = (buf[at + 12] >> 4) * 4
        if header < 20 or at + header > stop:
            self._zero(buf, at, stop, "unparsed_zeroed")
            return
        sport, dport = _U16.unpack_from(buf, at)[0], _U16.unpack_from(buf, at + 2)[0]
        payload = at + header
        if payload < stop:
            if fragmented or truncated:
                self._zero(buf, payload, stop, "payload_zeroed")
            elif sport == 53 or dport == 53:
                self._dns_stream(buf, payload, stop)
            else:
                self._tls_records(buf, payload, stop)
        if fragmented or truncated:
            buf[at + 16 : at + 18] = b"\0\0"
            return
        buf[at + 16 : at + 18] = b"\0\0"
        checksum = ones_complement(buf[at:stop], _pseudo_sum(src, dst, TCP, stop - at))
        buf[at + 16 : at + 18] = _U16.pack(checksum)

    def _tls_records(self, buf: bytearray, at: int, stop: int) -> None:
        """Record headers stay where the segment starts on one; every body is zeroed."""
        pos = at
        while pos + 5 <= stop:
            kind, major = buf[pos], buf[pos + 1]
            size = _U16.unpack_from(buf, pos + 3)[0]
            if kind not in TLS_CONTENT_TYPES or major != 3 or size > MAX_TLS_RECORD:
                break
            body = pos + 5
            buf[body : min(body + size, stop)] = bytes(max(min(body + size, stop) - body, 0))
            pos = body + size
        if pos < stop:
            buf[pos:stop] = bytes(stop - pos)
        self.counts["tls_zeroed"] += 1

    # -- ICMP -------------------------------------------------------------------------

    def _icmp(self, buf: bytearray, at: int, stop: int, truncated: bool, depth: int) -> None:
        if stop - at < 8:
            self._zero(buf, at, stop, "unparsed_zeroed")
            return
        kind = buf[at]
        if kind in _ICMP4_ERRORS:
            if kind == 5:
                self._address(buf, at + 4, 4)  # the redirect's gateway
            self._quoted(buf, at + 8, stop, depth)
        else:
            self._zero(buf, at + 8, stop, "payload_zeroed")  # echo data and the rest
        buf[at + 2 : at + 4] = b"\0\0"
        if not truncated:
            buf[at + 2 : at + 4] = _U16.pack(ones_complement(buf[at:stop]))

    def _icmp6(
        self,
        buf: bytearray,
        at: int,
        stop: int,
        src: bytes,
        dst: bytes,
        truncated: bool,
        depth: int,
    ) -> None:
        if stop - at < 8:
            self._zero(buf, at, stop, "unparsed_zeroed")
            return
        kind = buf[at]
        if kind in _ICMP6_ERRORS:
            self._quoted(buf, at + 8, stop, depth)
        elif kind in (135, 136) and stop - at >= 24:
            self._address(buf, at + 8, 16)
            self._ndp_options(buf, at + 24, stop)
        elif kind == 133:
            self._ndp_options(buf, at + 8, stop)
        elif kind == 134 and stop - at >= 16:
            self._ndp_options(buf, at + 16, stop)
        elif kind == 137 and stop - at >= 40:
            self._address(buf, at + 8, 16)
            self._address(buf, at + 24, 16)
            self._ndp_options(buf, at + 40, stop)
        else:
            self._zero(buf, at + 8, stop, "payload_zeroed")
        buf[at + 2 : at + 4] = b"\0\0"
        if not truncated:
            checksum = ones_complement(buf[at:stop], _pseudo_sum(src, dst, ICMPV6, stop - at))
            buf[at + 2 : at + 4] = _U16.pack(checksum)

    def _ndp_options(self, buf: bytearray, at: int, stop: int) -> None:
        pos = at
        while pos + 2 <= stop:
            kind, units = buf[pos], buf[pos + 1]
            size = units * 8
            if not size or pos + size > stop:
                break
            if kind in (1, 2) and size >= 8:
                self._mac(buf, pos + 2)
                buf[pos + 8 : pos + size] = bytes(size - 8)
            elif kind == 3 and size == 32:
                self._prefix(buf, pos + 16, buf[pos + 2])
            else:
                buf[pos + 2 : pos + size] = bytes(size - 2)
            pos += size
        if pos < stop:
            buf[pos:stop] = bytes(stop - pos)

    def _prefix(self, buf: bytearray, at: int, prefix_length: int) -> None:
        import ipaddress

        raw = bytes(buf[at : at + 16])
        try:
            network = ipaddress.ip_network((raw, min(prefix_length, 128)), strict=False)
        except ValueError:
            buf[at : at + 16] = bytes(16)
            return
        buf[at : at + 16] = self.redactor.network(network).network_address.packed

    def _quoted(self, buf: bytearray, at: int, stop: int, depth: int) -> None:
        """The offending packet's IP header and first transport bytes inside an ICMP error."""
        if at >= stop:
            return
        version = buf[at] >> 4
        with contextlib.suppress(_Unwalkable):
            if version == 4 and stop - at >= 20:
                ihl = (buf[at] & 0x0F) * 4
                self._quoted_header(buf, at, stop, ihl, depth, 4)
            elif version == 6 and stop - at >= 40:
                self._quoted_header(buf, at, stop, 40, depth, 6)
            else:
                self._zero(buf, at, stop, "unparsed_zeroed")

    def _quoted_header(
        self, buf: bytearray, at: int, stop: int, header: int, depth: int, version: int
    ) -> None:
        if depth >= MAX_NESTING or header < 20 or at + header > stop:
            self._zero(buf, at, stop, "unparsed_zeroed")
            return
        if version == 4:
            self._address(buf, at + 12, 4)
            self._address(buf, at + 16, 4)
            if header > 20:
                buf[at + 20 : at + header] = bytes(header - 20)
            buf[at + 10 : at + 12] = b"\0\0"
            buf[at + 10 : at + 12] = _U16.pack(ones_complement(buf[at : at + header]))
            protocol = buf[at + 9]
        else:
            self._address(buf, at + 8, 16)
            self._address(buf, at + 24, 16)
            protocol = buf[at + 6]
        inner = at + header
        # Ports (and a TCP header's numbers) stay; the quoted checksum and data do not:
        # the checksum is a function of the original addresses.
        if protocol == UDP and inner + 8 <= stop:
            buf[inner + 6 : inner + 8] = b"\0\0"
            self._zero(buf, inner + 8, stop, "payload_zeroed")
        elif protocol == TCP and inner + 8 <= stop:
            if inner + 18 <= stop:
                buf[inner + 16 : inner + 18] = b"\0\0"
            self._zero(buf, min(inner + 20, stop), stop, "payload_zeroed")
        else:
            self._zero(buf, inner, stop, "payload_zeroed")

    # -- DNS ----------------------------------------------------------------------------

    def _dns_stream(self, buf: bytearray, at: int, stop: int) -> None:
        """DNS over TCP: whole length-prefixed messages are masked, anything else zeroed."""
        pos = at
        while pos + 2 <= stop:
            size = _U16.unpack_from(buf, pos)[0]
            if pos + 2 + size > stop:
                break
            self._dns(buf, pos + 2, pos + 2 + size)
            pos += 2 + size
        if pos < stop:
            self._zero(buf, pos, stop, "unparsed_zeroed")

    def _dns(self, buf: bytearray, start: int, end: int) -> None:
        try:
            self._dns_message(buf, start, end)
        except _Unwalkable:
            self._zero(buf, start, end, "unparsed_zeroed")
            return
        self.counts["dns_masked"] += 1

    def _dns_message(self, buf: bytearray, start: int, end: int) -> None:
        if end - start < 12:
            raise _Unwalkable
        _, _, qdcount, ancount, nscount, arcount = _DNS_HEADER.unpack_from(buf, start)
        pos = start + 12
        for _ in range(qdcount):
            pos = self._name(buf, pos, start, end)
            if pos + 4 > end:
                raise _Unwalkable
            pos += 4
        for _ in range(ancount + nscount + arcount):
            pos = self._name(buf, pos, start, end)
            if pos + 10 > end:
                raise _Unwalkable
            rtype, _, _, rdlength = _RR_FIXED.unpack_from(buf, pos)
            rdata = pos + 10
            pos = rdata + rdlength
            if pos > end:
                raise _Unwalkable
            self._rdata(buf, rtype, rdata, pos, start, end)
        if pos < end:
            buf[pos:end] = bytes(end - pos)  # trailing bytes after the last record

    def _rdata(self, buf: bytearray, rtype: int, at: int, stop: int, start: int, end: int) -> None:
        size = stop - at
        if rtype == 1 and size == 4:
            self._address(buf, at, 4)
        elif rtype == 28 and size == 16:
            self._address(buf, at, 16)
        elif rtype in _RDATA_NAMES:
            skip, names = _RDATA_NAMES[rtype]
            pos = at + skip
            for _ in range(names):
                pos = self._name(buf, pos, start, end, stop)
            if pos < stop and rtype != _SOA:
                buf[pos:stop] = bytes(stop - pos)
        elif rtype in _SVCB_TYPES and size >= 3:
            pos = self._name(buf, at + 2, start, end, stop)
            self._svc_params(buf, pos, stop)
        elif rtype == _OPT:
            self._edns_options(buf, at, stop)
        else:
            buf[at:stop] = bytes(size)

    def _svc_params(self, buf: bytearray, pos: int, stop: int) -> None:
        while pos + 4 <= stop:
            key, size = _U16.unpack_from(buf, pos)[0], _U16.unpack_from(buf, pos + 2)[0]
            value = pos + 4
            if value + size > stop:
                break
            if key == 4 and size % 4 == 0:
                for hint in range(value, value + size, 4):
                    self._address(buf, hint, 4)
            elif key == 6 and size % 16 == 0:
                for hint in range(value, value + size, 16):
                    self._address(buf, hint, 16)
            elif key not in _KEPT_SVC_PARAMS:
                buf[value : value + size] = bytes(size)  # ECH configs name a public name
            pos = value + size
        if pos < stop:
            buf[pos:stop] = bytes(stop - pos)

    def _edns_options(self, buf: bytearray, pos: int, stop: int) -> None:
        while pos + 4 <= stop:
            code, size = _U16.unpack_from(buf, pos)[0], _U16.unpack_from(buf, pos + 2)[0]
            value = pos + 4
            if value + size > stop:
                break
            if code == _ECS and size >= 4:
                self._client_subnet(buf, value, value + size)
            else:
                buf[value : value + size] = bytes(size)  # cookies, NSID, padding, the rest
            pos = value + size
        if pos < stop:
            buf[pos:stop] = bytes(stop - pos)

    def _client_subnet(self, buf: bytearray, at: int, stop: int) -> None:
        import ipaddress

        family, source = _U16.unpack_from(buf, at)[0], buf[at + 2]
        width = {1: 4, 2: 16}.get(family)
        address = bytes(buf[at + 4 : stop])
        if width is None or len(address) > width or source > 8 * width:
            buf[at + 4 : stop] = bytes(stop - at - 4)
            return
        try:
            network = ipaddress.ip_network((address.ljust(width, b"\0"), source), strict=False)
        except ValueError:
            buf[at + 4 : stop] = bytes(stop - at - 4)
            return
        rewritten = self.redactor.network(network).network_address.packed
        buf[at + 4 : stop] = rewritten[: len(address)]

    def _name(
        self, buf: bytearray, pos: int, start: int, end: int, literal_end: int | None = None
    ) -> int:
        """Mask the name at ``pos`` in place; returns the offset after it.

        Its own labels must end by ``literal_end`` (the record data holding it); a
        compression pointer may lead anywhere before ``end``, the message's end.
        """
        bound = end if literal_end is None else literal_end
        literals: list[tuple[int, int]] = []
        labels: list[bytes] = []
        after = -1
        jumps = 0
        cursor = pos
        while True:
            if cursor >= bound:
                raise _Unwalkable
            length = buf[cursor]
            if length == 0:
                if after < 0:
                    after = cursor + 1
                break
            if length >= 0xC0:
                if cursor + 1 >= bound:
                    raise _Unwalkable
                if after < 0:
                    after = cursor + 2
                jumps += 1
                target = start + (((length & 0x3F) << 8) | buf[cursor + 1])
                if jumps > MAX_POINTER_JUMPS or target >= end:
                    raise _Unwalkable
                cursor, bound = target, end
                continue
            if length >= 0x40 or cursor + 1 + length > bound:
                raise _Unwalkable
            if after < 0:
                literals.append((cursor + 1, length))
            labels.append(bytes(buf[cursor + 1 : cursor + 1 + length]))
            if len(labels) > MAX_LABELS:
                raise _Unwalkable
            cursor += 1 + length
        if literals:
            kept = self.redactor.masker.kept_labels([_label_text(label) for label in labels])
            hidden = len(labels) - kept
            for index, (offset, length) in enumerate(literals):
                if index < hidden:
                    buf[offset : offset + length] = b"*" * length
                    self.counts["dns_labels_hidden"] += 1
        return after


_SPECIALS = frozenset(b'"().;\\@$')
_LABEL_TEXT = tuple(
    chr(c).lower()
    if 0x21 <= c < 0x7F and c not in _SPECIALS
    else "\\" + chr(c)
    if c in _SPECIALS
    else f"\\{c:03d}"
    for c in range(256)
)


def _label_text(label: bytes) -> str:
    """A wire label in lower-case presentation form (the escapes the events use)."""
    return "".join([_LABEL_TEXT[c] for c in label])
