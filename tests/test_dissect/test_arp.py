"""ARP parsing: the sender's pair of an Ethernet/IPv4 message; other ARP is not ours.

Oracle for real frames: tshark, in tests/test_dissect/test_host_identity.py. Here the
byte layout of RFC 826 itself, cut at every length.
"""

from __future__ import annotations

import pytest

from dotaudit.dissect.arp import ARP_LENGTH, parse_arp
from dotaudit.errors import MalformedError

REQUEST = bytes.fromhex(
    "0001" "0800" "06" "04" "0001" "020000000001" "c0000201" "000000000000" "c0000202"
)  # fmt: skip


def test_sender_and_target_are_read() -> None:
    message = parse_arp(REQUEST + bytes(18))  # Ethernet padding after the message
    assert message is not None
    assert message.operation == 1
    assert message.sender_mac.hex() == "020000000001" and message.sender_ip == bytes([192, 0, 2, 1])
    assert message.target_ip == bytes([192, 0, 2, 2])


@pytest.mark.parametrize("cut", range(ARP_LENGTH))
def test_every_cut_is_malformed(cut: int) -> None:
    with pytest.raises(MalformedError):
        parse_arp(REQUEST[:cut])


def test_a_whole_message_is_exactly_28_bytes() -> None:
    assert parse_arp(REQUEST[:ARP_LENGTH]) is not None


@pytest.mark.parametrize(
    "offset, value",
    [(0, b"\x00\x06"), (2, b"\x86\xdd"), (4, b"\x08"), (5, b"\x10"), (6, b"\x00\x03")],
    ids=["ieee802-hardware", "ipv6-protocol", "8-byte-mac", "16-byte-address", "rarp-request"],
)
def test_other_arp_is_not_read(offset: int, value: bytes) -> None:
    body = bytearray(REQUEST)
    body[offset : offset + len(value)] = value
    assert parse_arp(bytes(body)) is None
