"""The per-message shortcuts in dns_fields (one-question messages: answer records skipped
by their length alone, a known OPT record ending the message) must agree with the
general record walk on every message, whole, cut short or corrupted.

Oracle: dotaudit's own general walk (``_walk_records`` from the end of the question,
which reads every record owner and type), over messages built by dnspython.
"""

from __future__ import annotations

import struct

import dns.edns
import dns.message
import dns.rrset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.dissect import dns as dns_module
from dotaudit.dissect.dns import dns_fields
from dotaudit.errors import MalformedError
from tests.fuzzing import examples

FUZZ = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def general_walk(data: bytes) -> tuple[object, int, str | None] | None:
    """(edns, rcode, problem) by the general walk; None where dns_fields would not walk."""
    _ident, word, qdcount, ancount, nscount, arcount = struct.unpack_from("!6H", data)
    _qname, pos, reason = dns_module._read_name(data, 12, len(data))
    if qdcount != 1 or pos < 0 or pos + 4 > len(data):
        return None
    edns, ext_rcode, rest = dns_module._walk_records(
        data, pos + 4, len(data), 0, ancount, nscount, arcount
    )
    return edns, (word & 0x0F) | (ext_rcode << 4), reason or rest


def fast(data: bytes) -> tuple[object, int, str | None] | None:
    try:
        fields = dns_fields(data)
    except MalformedError:
        return None
    return fields[12], fields[3], fields[13]


def response(answers: int, edns: bool, authority: bool, rcode: int = 0) -> bytes:
    query = dns.message.make_query("www.example.com", "A", use_edns=0 if edns else None)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    for index in range(answers):
        reply.answer.append(
            dns.rrset.from_text("www.example.com.", 60, "IN", "A", f"192.0.2.{index + 1}")
        )
    if authority:
        reply.authority.append(dns.rrset.from_text("example.com.", 60, "IN", "NS", "ns.example."))
    return reply.to_wire()


def check_agrees(data: bytes) -> None:
    expected = general_walk(data)
    if expected is not None:
        assert fast(data) == expected, data


@FUZZ
@given(
    answers=st.integers(0, 4),
    edns=st.booleans(),
    authority=st.booleans(),
    rcode=st.sampled_from([0, 3, 16]),
)
def test_every_truncation_agrees_with_the_general_walk(
    answers: int, edns: bool, authority: bool, rcode: int
) -> None:
    wire = response(answers, edns, authority, rcode)
    for _ in range(2):  # the second pass meets the OPT record in the cache
        for end in range(12, len(wire) + 1):
            check_agrees(wire[:end])


@FUZZ
@given(
    answers=st.integers(1, 4),
    edns=st.booleans(),
    position=st.integers(0, 10_000),
    value=st.integers(0, 255),
    extra=st.binary(max_size=6),
)
def test_corrupted_records_agree_with_the_general_walk(
    answers: int, edns: bool, position: int, value: int, extra: bytes
) -> None:
    wire = bytearray(response(answers, edns, authority=False))
    question_end = wire.index(0, 12) + 5
    wire[question_end + position % (len(wire) - question_end)] = value
    for data in (bytes(wire), bytes(wire) + extra):
        check_agrees(data)
        check_agrees(data)


def test_shortcut_reports_the_truncated_answer() -> None:
    wire = response(2, edns=False, authority=False)
    fields = dns_fields(wire[:-1])
    assert fields[13] == "truncated_answer"
    assert fields[12] is None


def test_opt_record_is_read_after_skipped_answers() -> None:
    wire = response(3, edns=True, authority=True, rcode=16)  # BADVERS: extended rcode bits
    fields = dns_fields(wire)
    assert fields[13] is None
    assert fields[12] is not None and fields[12].udp_size == dns.message.from_wire(wire).payload
    assert fields[3] == 16
    assert dns_fields(wire) == fields  # again, from the OPT cache


def test_record_after_the_opt_is_not_taken_by_the_cache() -> None:
    wire = response(1, edns=True, authority=False)
    dns_fields(wire)  # the OPT record is now cached
    # one more additional record after the OPT: the cache key must not match
    extra = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x09"
    grown = bytearray(wire + extra)
    grown[11] += 1
    fields = dns_fields(bytes(grown))
    assert fields[13] is None
    assert fields[12] is not None
    assert fields[8] == 2


def clear_caches() -> None:
    dns_module._NAME_CACHE.clear()
    dns_module._QUESTION_CACHE.clear()
    dns_module._OPT_CACHE.clear()


@FUZZ
@given(
    name=st.sampled_from(["www.example.com", "a.b", ".", "x" * 63 + ".test"]),
    rdtype=st.sampled_from(["A", "AAAA", "HTTPS", "TYPE65280"]),
    answers=st.integers(0, 2),
    edns=st.booleans(),
)
def test_cached_questions_parse_like_a_cold_cache(
    name: str, rdtype: str, answers: int, edns: bool
) -> None:
    """Oracle: the same parse with every cache empty (the label walk itself)."""
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else None)
    reply = dns.message.make_response(query)
    for index in range(answers):
        owner = name if name.endswith(".") else name + "."
        reply.answer.append(dns.rrset.from_text(owner, 60, "IN", "A", f"192.0.2.{index + 1}"))
    for wire in (query.to_wire(), reply.to_wire()):
        for end in range(12, len(wire) + 1):
            clear_caches()
            cold = fast_or_error(wire[:end])
            fast_or_error(wire)  # the name, then the question, enter the caches
            fast_or_error(wire)
            assert fast_or_error(wire[:end]) == cold


def fast_or_error(data: bytes) -> object:
    try:
        return dns_fields(data)
    except MalformedError as exc:
        return str(exc)


def test_question_cache_is_bounded() -> None:
    for i in range(dns_module.QUESTION_CACHE_SIZE + 10):
        wire = dns.message.make_query(f"q{i}.example", "A").to_wire()
        dns_fields(wire)
        dns_fields(wire)
    assert 0 < len(dns_module._QUESTION_CACHE) <= dns_module.QUESTION_CACHE_SIZE
