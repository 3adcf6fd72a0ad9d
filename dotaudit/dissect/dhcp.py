"""DHCPv4 (RFC 2131, options RFC 2132): which client hardware address got which address,
and the host name and client identifier it gave.

Only what identifies a machine is read: the fixed header's ``chaddr``, ``ciaddr`` and
``yiaddr``, and options 53 (message type), 1 (subnet mask), 12 (host name) and 61
(client identifier). Options in the ``file`` and ``sname`` fields (option overload, 52)
are not read.
"""

from __future__ import annotations

import struct

from dotaudit.dissect.tls import escape_text
from dotaudit.errors import MalformedError

SERVER_PORT, CLIENT_PORT = 67, 68
BOOTREQUEST, BOOTREPLY = 1, 2
ACK = 5
MAGIC_COOKIE = b"\x63\x82\x53\x63"
FIXED_LENGTH = 236
MAX_HOSTNAME = 255
_FIXED = struct.Struct("!BBBB4x4x4s4s4x4x16s").unpack_from
_ZERO4 = b"\x00" * 4


class DhcpMessage:
    """What one DHCP message says about a machine (a plain slotted class: no code
    compiled at import)."""

    __slots__ = (
        "client_id", "client_ip", "client_mac", "hostname", "message_type", "op",
        "subnet_mask", "your_ip",
    )  # fmt: skip

    def __init__(
        self, op: int, message_type: int | None, client_mac: bytes, client_ip: bytes | None,
        your_ip: bytes | None, subnet_mask: bytes | None, hostname: str | None,
        client_id: bytes | None,
    ) -> None:  # fmt: skip
        self.op = op
        """1 from a client, 2 from a server."""
        self.message_type = message_type
        """Option 53: 1 DISCOVER ... 5 ACK ...; None without it (plain BOOTP)."""
        self.client_mac = client_mac
        self.client_ip = client_ip
        """``ciaddr``: the address a client already uses (renewing, INFORM); None when 0."""
        self.your_ip = your_ip
        """``yiaddr``: the address a server assigns; None when 0."""
        self.subnet_mask = subnet_mask
        self.hostname = hostname
        self.client_id = client_id


def parse_dhcp(payload: bytes) -> DhcpMessage | None:
    """The DHCP message in a UDP payload on port 67/68, None when it is not for Ethernet
    hardware or not DHCP/BOOTP at all; raises MalformedError when cut or malformed."""
    if len(payload) < FIXED_LENGTH:
        raise MalformedError(f"BOOTP header cut at {len(payload)} bytes")
    op, htype, hlen, _hops, ciaddr, yiaddr, chaddr = _FIXED(payload, 0)
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise MalformedError(f"BOOTP op {op}")
    if htype != 1 or hlen != 6:
        return None
    message_type: int | None = None
    mask: bytes | None = None
    hostname: str | None = None
    client_id: bytes | None = None
    if payload[FIXED_LENGTH : FIXED_LENGTH + 4] == MAGIC_COOKIE:
        at = FIXED_LENGTH + 4
        end = len(payload)
        while at < end:
            code = payload[at]
            if code == 255:
                break
            if code == 0:
                at += 1
                continue
            if at + 2 > end:
                raise MalformedError(f"DHCP option {code} cut")
            size = payload[at + 1]
            data = payload[at + 2 : at + 2 + size]
            if len(data) < size:
                raise MalformedError(f"DHCP option {code} overruns the message")
            if code == 53 and size == 1:
                message_type = data[0]
            elif code == 1 and size == 4:
                mask = data
            elif code == 12 and size:
                hostname = escape_text(data[:MAX_HOSTNAME])
            elif code == 61 and size:
                client_id = data
            at += 2 + size
    return DhcpMessage(
        op,
        message_type,
        chaddr[:6],
        ciaddr if ciaddr != _ZERO4 else None,
        yiaddr if yiaddr != _ZERO4 else None,
        mask,
        hostname,
        client_id,
    )


def prefix_length(mask: bytes) -> int | None:
    """The prefix length of a contiguous IPv4 netmask, None for a non-contiguous one."""
    value = int.from_bytes(mask, "big")
    length = bin(value).count("1")
    return length if value == (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF else None
