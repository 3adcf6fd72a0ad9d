"""Encapsulation headers built byte by byte from their specifications, for wrapping real
captured packets where this machine's kernel cannot make the tunnel itself.

Nothing here comes from a packet library: each builder follows the RFC (or 3GPP/IEEE
document) it names, so that tshark, which decodes the result independently, is a fair
oracle for it and for dotaudit's decoder alike.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence

MAC_A = bytes.fromhex("020000000a01")
MAC_B = bytes.fromhex("020000000a02")

ETH_IPV4, ETH_IPV6, ETH_TEB = 0x0800, 0x86DD, 0x6558
ETH_VLAN, ETH_QINQ = 0x8100, 0x88A8
ETH_MPLS, ETH_PPPOE_DISCOVERY, ETH_PPPOE_SESSION = 0x8847, 0x8863, 0x8864
GRE_ERSPAN, GRE_ERSPAN_3 = 0x88BE, 0x22EB


def addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(payload: bytes, ethertype: int, dst: bytes = MAC_B, src: bytes = MAC_A) -> bytes:
    """IEEE 802.3 header with an ethertype (no FCS, as captures show it)."""
    return dst + src + struct.pack("!H", ethertype) + payload


def vlan_tags(payload: bytes, ethertype: int, tags: Sequence[tuple[int, int]]) -> bytes:
    """IEEE 802.1Q tags, outermost first, each ``(TPID, VLAN id)``; returns what follows
    the MAC addresses: the first TPID, the tag control fields, the inner ethertype."""
    out = b""
    for i, (_tpid, vid) in enumerate(tags):
        following = tags[i + 1][0] if i + 1 < len(tags) else ethertype
        out += struct.pack("!HH", vid & 0xFFF, following)
    return struct.pack("!H", tags[0][0]) + out + payload


def ipv4(payload: bytes, src: str, dst: str, proto: int, ident: int = 1, ttl: int = 64) -> bytes:
    """RFC 791 header without options, DF set, with its checksum."""
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, ttl, proto, 0,
        addr(src), addr(dst),
    )  # fmt: skip
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def ipv6(payload: bytes, src: str, dst: str, next_header: int, hops: int = 64) -> bytes:
    """RFC 8200 fixed header."""
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, hops)
        + addr(src)
        + addr(dst)
        + payload
    )


def ip(payload: bytes, src: str, dst: str, proto: int) -> bytes:
    if ":" in src:
        return ipv6(payload, src, dst, proto)
    return ipv4(payload, src, dst, proto)


def udp(payload: bytes, src: str, dst: str, sport: int, dport: int) -> bytes:
    """RFC 768 header; the checksum over the RFC 768 / RFC 8200 §8.1 pseudo-header."""
    length = 8 + len(payload)
    if ":" in src:
        pseudo = addr(src) + addr(dst) + struct.pack("!IxxxB", length, 17)
    else:
        pseudo = addr(src) + addr(dst) + struct.pack("!xBH", 17, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    value = checksum(pseudo + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, value) + payload


def gre(
    payload: bytes,
    protocol: int,
    key: int | None = None,
    sequence: int | None = None,
    with_checksum: bool = False,
) -> bytes:
    """RFC 2784 header with RFC 2890's key and sequence number fields."""
    flags = (0x8000 if with_checksum else 0) | (0x2000 if key is not None else 0)
    flags |= 0x1000 if sequence is not None else 0
    optional = b""
    if key is not None:
        optional += struct.pack("!I", key)
    if sequence is not None:
        optional += struct.pack("!I", sequence)
    if with_checksum:
        bare = struct.pack("!HHHH", flags, protocol, 0, 0) + optional + payload
        optional = struct.pack("!HH", checksum(bare), 0) + optional
    return struct.pack("!HH", flags, protocol) + optional + payload


def erspan2(frame: bytes, session: int, index: int = 0, vlan: int = 0) -> bytes:
    """ERSPAN type II header (draft-foschiano-erspan-03 §4.1): version 1, VLAN, COS, En,
    T, session id, reserved, index. Goes in GRE 0x88BE with a sequence number."""
    return struct.pack("!HHI", (1 << 12) | vlan, session & 0x3FF, index & 0xFFFFF) + frame


def erspan3(
    frame: bytes,
    session: int,
    timestamp: int,
    hardware: int = 0,
    platform: bytes = b"",
    frame_type: int = 0,
) -> bytes:
    """ERSPAN type III header (draft §4.2): version 2, VLAN, COS, BSO, T, session id,
    timestamp, SGT, then P, FT (0: Ethernet, 2: IP), hardware id, D, Gra, O; ``platform``
    (8 bytes) is the optional platform-specific subheader (O set). GRE 0x22EB."""
    word = (frame_type & 0x1F) << 10 | (hardware & 0x3F) << 4 | (1 if platform else 0)
    header = struct.pack("!HHIHH", 2 << 12, session & 0x3FF, timestamp, 0, word)
    return header + platform + frame


def vxlan(frame: bytes, vni: int) -> bytes:
    """RFC 7348 §5: flags with I set, reserved, VNI, reserved."""
    return struct.pack("!II", 0x08000000, vni << 8) + frame


def geneve(payload: bytes, vni: int, protocol: int, options: bytes = b"") -> bytes:
    """RFC 8926 §3.4: version 0, option length in 4-byte units, flags, protocol type,
    VNI, reserved; then the options (each a class, type, length and data: §3.5)."""
    if len(options) % 4:
        raise ValueError("Geneve options come in 4-byte units")
    return struct.pack("!BBHI", len(options) // 4, 0, protocol, vni << 8) + options + payload


def geneve_option(option_class: int, option_type: int, data: bytes) -> bytes:
    if len(data) % 4:
        raise ValueError("Geneve option data comes in 4-byte units")
    return struct.pack("!HBB", option_class, option_type, len(data) // 4) + data


def gtpu(
    payload: bytes,
    teid: int,
    message: int = 255,
    sequence: int | None = None,
    extensions: Iterable[tuple[int, bytes]] = (),
) -> bytes:
    """3GPP TS 29.281 §5.1 header: version 1, PT 1, E/S/PN flags, message type (255:
    G-PDU), length of what follows the first 8 bytes, TEID; when E or S is set, the
    sequence number, N-PDU number and next extension header type, then the extension
    headers (§5.2: length in 4-byte units, content, next type)."""
    extensions = list(extensions)
    flags = 0x30 | (0x04 if extensions else 0) | (0x02 if sequence is not None else 0)
    optional = b""
    if flags & 0x06:
        first = extensions[0][0] if extensions else 0
        optional = struct.pack("!HBB", sequence or 0, 0, first)
        for i, (_kind, content) in enumerate(extensions):
            following = extensions[i + 1][0] if i + 1 < len(extensions) else 0
            body = content + bytes([following])
            if (len(body) + 1) % 4:
                raise ValueError("a GTP-U extension header is a multiple of 4 bytes")
            optional += bytes([(len(body) + 1) // 4]) + body
    body = optional + payload
    return struct.pack("!BBHI", flags, message, len(body), teid) + body


PDU_SESSION_CONTAINER = 0x85
"""TS 29.281 §5.2.1 extension header type; content per TS 38.415 (PDU type, QFI)."""


def pppoe_session(session: int, protocol: int, payload: bytes) -> bytes:
    """RFC 2516 §4: version 1, type 1, code 0, session id, length; then the PPP
    protocol field (RFC 1661 §2, two bytes, uncompressed) and the datagram."""
    ppp = struct.pack("!H", protocol) + payload
    return struct.pack("!BBHH", 0x11, 0, session, len(ppp)) + ppp


def pppoe_padi(host_uniq: bytes) -> bytes:
    """RFC 2516 §5.1 PADI: code 0x09, session 0, a Service-Name tag (empty) and a
    Host-Uniq tag."""
    tags = struct.pack("!HH", 0x0101, 0) + struct.pack("!HH", 0x0103, len(host_uniq)) + host_uniq
    return struct.pack("!BBHH", 0x11, 0x09, 0, len(tags)) + tags


def lcp_echo_request(ident: int, magic: int) -> bytes:
    """RFC 1661 §5.8 Echo-Request: code 9, identifier, length, magic number."""
    return struct.pack("!BBHI", 9, ident, 8, magic)


def mpls(payload: bytes, labels: Sequence[int], ttl: int = 64) -> bytes:
    """RFC 3032 label stack entries, outermost first; the last has bottom-of-stack set."""
    out = b""
    for i, label in enumerate(labels):
        bottom = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", (label << 12) | (bottom << 8) | ttl)
    return out + payload


def pw_control_word(sequence: int) -> bytes:
    """RFC 4385 §3 preferred control word (first nibble 0, flags, FRG, length 0,
    sequence number), as RFC 4448 §4.6 uses it for Ethernet pseudowires."""
    return struct.pack("!HH", 0, sequence & 0xFFFF)
