"""DHCPv4 parsing (RFC 2131, RFC 2132): chaddr, ciaddr, yiaddr, message type, subnet mask,
host name and client identifier; everything else is skipped."""

from __future__ import annotations

import pytest

from dotaudit.dissect.dhcp import FIXED_LENGTH, MAGIC_COOKIE, parse_dhcp, prefix_length
from dotaudit.errors import MalformedError

CHADDR = bytes.fromhex("02000000000c")


def message(op: int = 2, yiaddr: bytes = bytes([192, 0, 2, 12]), options: bytes = b"") -> bytes:
    head = bytes([op, 1, 6, 0]) + bytes(8) + bytes(4) + yiaddr + bytes(8) + CHADDR + bytes(10)
    return head + bytes(192) + MAGIC_COOKIE + options + b"\xff"


ACK = message(options=b"\x35\x01\x05" + b"\x01\x04\xff\xff\xff\x00" + b"\x0c\x04\x70\x72\x00\x5c")


def test_ack_fields() -> None:
    parsed = parse_dhcp(ACK)
    assert parsed is not None
    assert (parsed.op, parsed.message_type, parsed.client_mac) == (2, 5, CHADDR)
    assert parsed.your_ip == bytes([192, 0, 2, 12]) and parsed.client_ip is None
    assert parsed.subnet_mask == b"\xff\xff\xff\x00"
    assert parsed.hostname == "pr\\x00\\x5c"  # wire text escaped like TLS text


def test_pad_options_and_a_missing_end_are_fine() -> None:
    parsed = parse_dhcp(message(options=b"\x00\x00\x3d\x03\x01\x02\x03")[:-1])
    assert parsed is not None and parsed.client_id == b"\x01\x02\x03"


def test_plain_bootp_has_no_message_type() -> None:
    parsed = parse_dhcp(message()[:FIXED_LENGTH])
    assert parsed is not None and parsed.message_type is None


@pytest.mark.parametrize("cut", [0, 100, FIXED_LENGTH - 1])
def test_a_cut_header_is_malformed(cut: int) -> None:
    with pytest.raises(MalformedError):
        parse_dhcp(ACK[:cut])


def test_an_option_overrunning_the_message_is_malformed() -> None:
    with pytest.raises(MalformedError, match="overruns"):
        parse_dhcp(message(options=b"\x0c\x20abc")[:-1])
    with pytest.raises(MalformedError, match="cut"):
        parse_dhcp(message(options=b"\x0c")[:-1])


def test_other_hardware_is_not_read_and_a_bad_op_is_malformed() -> None:
    assert parse_dhcp(ACK[:1] + b"\x06" + ACK[2:]) is None  # IEEE 802
    assert parse_dhcp(ACK[:2] + b"\x08" + ACK[3:]) is None
    with pytest.raises(MalformedError, match="op"):
        parse_dhcp(b"\x03" + ACK[1:])


@pytest.mark.parametrize(
    "mask, length",
    [("255.255.255.0", 24), ("255.255.255.255", 32), ("0.0.0.0", 0), ("255.255.254.0", 23),
     ("255.0.255.0", None), ("0.255.255.255", None)],
)  # fmt: skip
def test_prefix_length_of_contiguous_masks_only(mask: str, length: int | None) -> None:
    assert prefix_length(bytes(int(x) for x in mask.split("."))) == length
