"""Mutations inside one captured packet: link, IP, TCP/UDP header fields and payload bytes.

Header offsets are found the way a decoder would (link type, EtherType, IHL, data
offset), so a mutation lands on the field it names even in VLAN-tagged or IPv6 frames;
where the layers cannot be found the packet is treated as opaque bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

LINK_HEADER = {0: 4, 108: 4, 101: 0, 12: 0, 14: 0, 228: 0, 229: 0, 113: 16, 276: 20}
ETHERTYPES = (0x0800, 0x86DD, 0x8100, 0x88A8, 0x0806, 0x8864, 0x0000, 0xFFFF)
IP_PROTOCOLS = (6, 17, 1, 58, 0, 4, 41, 43, 44, 47, 50, 59, 60, 132, 255)
PORTS = (53, 853, 443, 784, 8853, 5353, 5355, 80, 0, 65535)
INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF)
INTERESTING_16 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xC000, 0xFFFF)
INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)


@dataclass
class Layers:
    """Offsets into one packet; ``l4`` is None when no TCP/UDP header was found."""

    ip: int | None
    version: int
    l4: int | None
    protocol: int
    payload: int | None


def layers(data: bytes, linktype: int) -> Layers:
    ip: int | None
    if linktype == 1:
        ip, ethertype = 14, int.from_bytes(data[12:14], "big") if len(data) >= 14 else 0
        while ethertype in (0x8100, 0x88A8) and len(data) >= ip + 4:
            ethertype = int.from_bytes(data[ip + 2 : ip + 4], "big")
            ip += 4
        if ethertype not in (0x0800, 0x86DD):
            ip = None
    else:
        ip = LINK_HEADER.get(linktype)
    if ip is None or len(data) <= ip:
        return Layers(None, 0, None, 0, None)
    version = data[ip] >> 4
    l4: int | None = None
    protocol = 0
    if version == 4 and len(data) >= ip + 20:
        l4 = ip + (data[ip] & 0x0F) * 4
        protocol = data[ip + 9]
    elif version == 6 and len(data) >= ip + 40:
        l4 = ip + 40
        protocol = data[ip + 6]
    payload: int | None = None
    if l4 is not None and protocol == 6 and len(data) >= l4 + 20:
        payload = l4 + (data[l4 + 12] >> 4) * 4
    elif l4 is not None and protocol == 17 and len(data) >= l4 + 8:
        payload = l4 + 8
    else:
        l4 = None if l4 is None or protocol not in (6, 17) else l4
    return Layers(ip, version, l4, protocol, payload)


def _set(buf: bytearray, offset: int, size: int, value: int) -> None:
    if offset >= 0 and offset + size <= len(buf):
        buf[offset : offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")


def _value(rng: random.Random, size: int, current: int) -> int:
    roll = rng.random()
    if roll < 0.3:
        return current + rng.choice((-1, 1, -2, 2, -16, 16, 1000, -1000))
    if roll < 0.5:
        return rng.getrandbits(8 * size)
    table = {1: INTERESTING_8, 2: INTERESTING_16, 4: INTERESTING_32}[size]
    return rng.choice(table)


def _field(rng: random.Random, buf: bytearray, fields: list[tuple[str, int, int]]) -> str:
    name, offset, size = rng.choice(fields)
    current = int.from_bytes(buf[offset : offset + size], "big") if offset + size <= len(buf) else 0
    if name.endswith("port"):
        value = rng.choice(PORTS) if rng.random() < 0.7 else rng.getrandbits(16)
    elif name == "protocol":
        value = rng.choice(IP_PROTOCOLS)
    elif name == "ethertype":
        value = rng.choice(ETHERTYPES)
    else:
        value = _value(rng, size, current)
    _set(buf, offset, size, value)
    return f"{name}={value:#x}"


def mutate_packet(
    rng: random.Random, data: bytes, linktype: int, donor: bytes
) -> tuple[bytes, str]:
    """One mutation of one packet; ``donor`` is another packet to splice from."""
    buf = bytearray(data)
    found = layers(data, linktype)
    choices = ["payload", "payload", "truncate", "extend", "splice"]
    if found.ip is not None:
        choices += ["ip", "ip", "link"]
    if found.l4 is not None:
        choices += ["l4", "l4", "l4"]
    kind = rng.choice(choices)
    if kind == "ip" and found.ip is not None:
        ip = found.ip
        if found.version == 6:
            fields = [
                ("ip.version", ip, 1),
                ("ip.payload_length", ip + 4, 2),
                ("protocol", ip + 6, 1),
                ("ip.hop_limit", ip + 7, 1),
            ]
        else:
            fields = [
                ("ip.version_ihl", ip, 1),
                ("ip.total_length", ip + 2, 2),
                ("ip.id", ip + 4, 2),
                ("ip.flags_fragment", ip + 6, 2),
                ("ip.ttl", ip + 8, 1),
                ("protocol", ip + 9, 1),
                ("ip.src", ip + 12, 4),
                ("ip.dst", ip + 16, 4),
            ]
        what = _field(rng, buf, fields)
        return bytes(buf), what
    if kind == "l4" and found.l4 is not None:
        l4 = found.l4
        if found.protocol == 6:
            fields = [
                ("tcp.sport", l4, 2),
                ("tcp.dport", l4 + 2, 2),
                ("tcp.seq", l4 + 4, 4),
                ("tcp.ack", l4 + 8, 4),
                ("tcp.data_offset", l4 + 12, 1),
                ("tcp.flags", l4 + 13, 1),
                ("tcp.window", l4 + 14, 2),
            ]
        else:
            fields = [("udp.sport", l4, 2), ("udp.dport", l4 + 2, 2), ("udp.length", l4 + 4, 2)]
        what = _field(rng, buf, fields)
        return bytes(buf), what
    if kind == "link" and found.ip is not None and linktype == 1:
        what = _field(rng, buf, [("ethertype", found.ip - 2, 2)])
        return bytes(buf), what
    start = found.payload if found.payload is not None and rng.random() < 0.8 else 0
    start = min(start, len(buf))
    if kind == "truncate" and buf:
        cut = rng.randint(0, len(buf) - 1)
        return bytes(buf[:cut]), f"truncated to {cut}"
    if kind == "extend":
        extra = rng.choice(
            (b"\0" * rng.randint(1, 64), rng.randbytes(rng.randint(1, 64)), bytes(buf[start:]))
        )
        return bytes(buf) + extra, f"extended by {len(extra)}"
    if kind == "splice" and donor:
        at = rng.randint(start, len(buf))
        cut = rng.randint(0, len(donor))
        return bytes(buf[:at]) + donor[cut:], f"spliced donor[{cut}:] at {at}"
    what = mutate_bytes(rng, buf, start)
    return bytes(buf), what


def mutate_bytes(rng: random.Random, buf: bytearray, start: int = 0) -> str:
    """Flip bits or set bytes or a 16/32-bit value in ``buf[start:]`` in place."""
    if len(buf) <= start:
        return "payload empty"
    roll = rng.random()
    if roll < 0.4:
        flips = rng.randint(1, 8)
        for _ in range(flips):
            at = rng.randint(start, len(buf) - 1)
            buf[at] ^= 1 << rng.randint(0, 7)
        return f"{flips} bit flips"
    if roll < 0.7:
        at = rng.randint(start, len(buf) - 1)
        buf[at] = rng.choice(INTERESTING_8) if rng.random() < 0.5 else rng.getrandbits(8)
        return f"byte {at} set"
    size = rng.choice((2, 4))
    at = rng.randint(start, max(start, len(buf) - size))
    table = INTERESTING_16 if size == 2 else INTERESTING_32
    _set(buf, at, size, rng.choice(table))
    return f"u{8 * size} at {at} set"
