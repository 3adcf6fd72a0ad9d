"""NDP parsing (RFC 4861): link-layer address options, the router flag, on-link prefixes,
and the messages a node must not believe (hop limit, code, option of length 0)."""

from __future__ import annotations

import pytest

from dotaudit.dissect.ndp import MAX_OPTIONS, parse_ndp
from dotaudit.errors import MalformedError

MAC = bytes.fromhex("02000000000a")
TARGET = bytes.fromhex("20010db8000000010000000000000001")


def option(kind: int, data: bytes) -> bytes:
    return bytes([kind, (len(data) + 2) // 8]) + data


NS = bytes([135, 0, 0, 0]) + bytes(4) + TARGET + option(1, MAC)
NA = bytes([136, 0, 0, 0, 0xE0, 0, 0, 0]) + TARGET + option(2, MAC)
PREFIX = bytes.fromhex("20010db8000100000000000000000000")
RA = (
    bytes([134, 0, 0, 0, 64, 0, 7, 8]) + bytes(8) + option(1, MAC)
    + option(3, bytes([64, 0xC0]) + bytes(12) + PREFIX)
    + option(3, bytes([48, 0x40]) + bytes(12) + PREFIX)  # autonomous only: not on-link
)  # fmt: skip


def test_solicitation_advertisement_and_router_advertisement() -> None:
    ns = parse_ndp(NS, 255)
    assert ns is not None and ns.link_address == MAC and ns.target == TARGET and not ns.router
    na = parse_ndp(NA, 255)
    assert na is not None and na.link_address == MAC and na.router  # R flag set
    ra = parse_ndp(RA, 255)
    assert ra is not None and ra.router and ra.link_address == MAC
    assert ra.on_link_prefixes == ((PREFIX, 64),)


def test_an_na_without_the_router_flag_is_a_host() -> None:
    na = parse_ndp(NA[:4] + b"\x60" + NA[5:], 255)
    assert na is not None and not na.router


def test_an_na_reads_the_target_option_not_a_source_one() -> None:
    na = parse_ndp(NA[:24] + option(1, MAC), 255)
    assert na is not None and na.link_address is None


@pytest.mark.parametrize("hop_limit", [254, 64, 0])
def test_only_hop_limit_255_is_believed(hop_limit: int) -> None:
    assert parse_ndp(NS, hop_limit) is None  # forwarded: not from the link


def test_a_code_other_than_zero_is_ignored() -> None:
    assert parse_ndp(NS[:1] + b"\x01" + NS[2:], 255) is None


def test_other_icmpv6_is_not_read() -> None:
    assert parse_ndp(bytes([128, 0, 0, 0, 0, 1, 0, 1]), 255) is None  # echo request
    assert parse_ndp(bytes([137, 0, 0, 0]) + bytes(36), 255) is None  # redirect


@pytest.mark.parametrize("cut", range(4, 24))
def test_a_cut_fixed_part_is_malformed(cut: int) -> None:
    with pytest.raises(MalformedError):
        parse_ndp(NS[:cut], 255)


def test_malformed_options() -> None:
    with pytest.raises(MalformedError, match="length 0"):
        parse_ndp(NS[:24] + bytes([1, 0]) + bytes(6), 255)
    with pytest.raises(MalformedError, match="overruns"):
        parse_ndp(NS[:24] + bytes([1, 2]) + bytes(6), 255)
    with pytest.raises(MalformedError, match="prefix information"):
        parse_ndp(RA[:16] + option(3, bytes(14)), 255)
    with pytest.raises(MalformedError, match="cut"):
        parse_ndp(NS + b"\x01", 255)


def test_options_are_read_up_to_the_cap_and_no_further() -> None:
    padding = option(99, bytes(6))
    assert parse_ndp(NS[:24] + padding * MAX_OPTIONS, 255) is not None
    with pytest.raises(MalformedError, match="more than"):
        parse_ndp(NS[:24] + padding * (MAX_OPTIONS + 1), 255)
