"""SVCB records read one at a time from a DNS response.

Oracles: RFC 1035 §4.1 (message layout), RFC 9460 §2.2 (SVCB RDATA: SvcPriority,
TargetName, SvcParams in increasing key order) and §8 (a key listed as mandatory must be
present), RFC 9461 §5 (dohpath: a relative URI template with a "dns" variable). Messages
are built with dnspython, malformed RDATA by hand.
"""

from __future__ import annotations

import struct

import dns.message
import dns.rdata
import dns.rrset
import pytest

from dotaudit.probe.discovery.svcb import (
    MAX_RECORDS,
    WireError,
    addresses_for,
    dohpath_post_path,
    dohpath_problem,
    read_svcb,
    walk,
)

OWNER = "_dns.resolver.arpa."


def response(*records: str, additional: tuple[str, ...] = ()) -> bytes:
    query = dns.message.make_query(OWNER, "SVCB")
    reply = dns.message.make_response(query)
    for text in records:
        reply.answer.append(dns.rrset.from_text(OWNER, 300, "IN", "SVCB", text))
    for text in additional:
        name, rdtype, data = text.split(" ", 2)
        reply.additional.append(dns.rrset.from_text(name, 300, "IN", rdtype, data))
    return reply.to_wire()


def with_raw_svcb(rdata: bytes) -> bytes:
    """A response whose one answer is SVCB RDATA written by hand (dnspython would refuse)."""
    header = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0)
    question = b"\x04_dns\x08resolver\x04arpa\x00" + struct.pack("!HH", 64, 1)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 64, 1, 300, len(rdata)) + rdata
    return header + question + answer


def test_every_field_of_a_servicemode_record() -> None:
    wire = response(
        "1 dns.test. alpn=dot,doq port=8853 ipv4hint=192.0.2.53 "
        'ipv6hint=2001:db8::53 dohpath="/q{?dns}" mandatory=port'
    )
    parsed = walk(wire)
    [record] = [read_svcb(wire, r) for r in parsed.answers]
    assert (record.priority, record.target, record.malformed) == (1, "dns.test.", None)
    assert record.params == {
        "mandatory": ["port"],
        "alpn": ["dot", "doq"],
        "port": 8853,
        "ipv4hint": ["192.0.2.53"],
        "ipv6hint": ["2001:db8::53"],
        "dohpath": "/q{?dns}",
    }
    assert record.mandatory_unknown == []


def test_an_unknown_mandatory_key_is_named() -> None:
    wire = response("1 dns.test. alpn=dot mandatory=key65000 key65000=x")
    [record] = [read_svcb(wire, r) for r in walk(wire).answers]
    assert record.mandatory_unknown == ["key65000"]
    assert record.params["key65000"] == b"x".hex()


def test_a_mandatory_key_that_is_absent_makes_the_record_malformed_and_kept_as_hex() -> None:
    # priority 8, target dns.test., key 0 (mandatory) lists key 1 (alpn), no alpn follows
    rdata = bytes.fromhex("0008 03646e730474657374 00 0000 0002 0001".replace(" ", ""))
    wire = with_raw_svcb(rdata)
    [record] = [read_svcb(wire, r) for r in walk(wire).answers]
    assert record.malformed is not None and "mandatory" in record.malformed
    assert record.text == f"\\# {len(rdata)} {rdata.hex()}"
    assert record.priority == 8  # read from the octets: the record still sorts by it


@pytest.mark.parametrize(
    "rdata",
    [
        "0001 00 0003 0003 035500",  # port with 3 octets
        "0001 00 0001 0004 03646f74 0001 0000",  # keys not in increasing order (1, 1)
        "0001 00 0004 0005 c000023501",  # ipv4hint not a multiple of 4
        "0001 03646e73",  # target name cut short
    ],
)
def test_malformed_rdata_is_reported_per_record(rdata: str) -> None:
    good = dns.rdata.from_text("IN", "SVCB", "2 dns.test. alpn=dot").to_wire()
    bad = bytes.fromhex(rdata.replace(" ", ""))
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 2, 0, 0)
    question = b"\x04_dns\x08resolver\x04arpa\x00" + struct.pack("!HH", 64, 1)
    answers = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", 64, 1, 300, len(r)) + r for r in (bad, good)
    )
    wire = header + question + answers
    with pytest.raises(Exception):  # noqa: B017 - the whole-message parse a library does
        dns.message.from_wire(wire)
    records = [read_svcb(wire, r) for r in walk(wire).answers]
    assert records[0].malformed is not None
    assert records[1].malformed is None and records[1].params["alpn"] == ["dot"]


@pytest.mark.parametrize(
    "wire",
    [
        b"\x00" * 11,
        struct.pack("!HHHHHH", 1, 0x8180, 0, 1, 0, 0) + b"\x00\x00\x40",
        struct.pack("!HHHHHH", 1, 0x8180, 0, 1, 0, 0) + b"\x00" + struct.pack("!HHIH", 64, 1, 0, 9),
    ],
)
def test_a_message_that_cannot_be_walked_raises_wire_error(wire: bytes) -> None:
    with pytest.raises(WireError):
        walk(wire)


def test_records_past_the_cap_are_counted_not_read() -> None:
    header = struct.pack("!HHHHHH", 1, 0x8180, 0, MAX_RECORDS + 1, 0, 0)
    one = b"\x00" + struct.pack("!HHIH", 1, 1, 0, 4) + b"\xc0\x00\x02\x01"
    parsed = walk(header + one * (MAX_RECORDS + 1))
    assert (len(parsed.answers), parsed.skipped) == (MAX_RECORDS, 1)
    parsed = walk(struct.pack("!HHHHHH", 1, 0x8180, 0, MAX_RECORDS, 0, 0) + one * MAX_RECORDS)
    assert (len(parsed.answers), parsed.skipped) == (MAX_RECORDS, 0)


def test_truncation_and_rcode_come_from_the_header() -> None:
    parsed = walk(struct.pack("!HHHHHH", 7, 0x8383, 0, 0, 0, 0))
    assert (parsed.id, parsed.truncated, parsed.rcode) == (7, True, 3)


def test_addresses_for_the_target_come_from_the_additional_section() -> None:
    wire = response(
        "1 dns.test. alpn=dot",
        additional=(
            "dns.test. A 192.0.2.53",
            "dns.test. AAAA 2001:db8::53",
            "other.test. A 192.0.2.9",
        ),
    )
    parsed = walk(wire)
    assert addresses_for(wire, parsed.additional, "dns.test.") == ["192.0.2.53", "2001:db8::53"]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("/dns-query{?dns}", None),  # RFC 9461 §5's example
        ("/q{?dns,x}", None),
        ("/q{&x,dns}", None),
        ("/dns-query", "has no 'dns' variable"),
        ("/q{?dnsx}", "has no 'dns' variable"),
        ("dns-query{?dns}", "is not a path starting with '/'"),
        ("https://x/q{?dns}", "is not a path starting with '/'"),
    ],
)
def test_dohpath_must_be_relative_with_a_dns_variable(template: str, problem: str | None) -> None:
    found = dohpath_problem(template)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_the_post_path_drops_the_template_expressions() -> None:
    assert dohpath_post_path("/dns-query{?dns}") == "/dns-query"
    assert dohpath_post_path("/a/{x}/b{?dns}") == "/a//b"
    assert dohpath_post_path("{?dns}") == "/"
