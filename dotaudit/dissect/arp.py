"""ARP (RFC 826) over Ethernet for IPv4: who says which IPv4 address is theirs.

Only the sender's pair is taken: a host states its own hardware and protocol address in
every request and reply it sends (and in gratuitous ARP). The target's pair is what the
sender believes or asks, not a statement about the target.
"""

from __future__ import annotations

import struct

from dotaudit.errors import MalformedError

ARP_LENGTH = 28
"""An Ethernet/IPv4 ARP message: 8 bytes of header, two 6-byte MACs, two IPv4 addresses."""
_HEADER = struct.Struct("!HHBBH").unpack_from
REQUEST, REPLY = 1, 2


class ArpMessage:
    """One ARP message. A plain slotted class: a dataclass would compile code at import,
    which every ``dotaudit events`` run would pay."""

    __slots__ = ("operation", "sender_ip", "sender_mac", "target_ip", "target_mac")

    def __init__(
        self, operation: int, sender_mac: bytes, sender_ip: bytes, target_mac: bytes,
        target_ip: bytes,
    ) -> None:  # fmt: skip
        self.operation = operation
        """1 request, 2 reply (others are not ARP for IPv4 over Ethernet: not returned)."""
        self.sender_mac = sender_mac
        self.sender_ip = sender_ip
        self.target_mac = target_mac
        self.target_ip = target_ip


def parse_arp(body: bytes) -> ArpMessage | None:
    """The ARP message at the start of ``body`` (Ethernet padding may follow), None when
    it is ARP for another hardware or protocol type; raises MalformedError when cut."""
    if len(body) < 8:
        raise MalformedError(f"ARP header cut at {len(body)} bytes")
    htype, ptype, hlen, plen, operation = _HEADER(body, 0)
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
        return None
    if len(body) < ARP_LENGTH:
        raise MalformedError(f"ARP message cut at {len(body)} bytes")
    if operation not in (REQUEST, REPLY):
        return None
    return ArpMessage(operation, body[8:14], body[14:18], body[18:24], body[24:28])
