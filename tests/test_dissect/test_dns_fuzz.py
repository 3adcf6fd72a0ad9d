"""Hostile input for the DNS dissector: it may return facts or raise MalformedError,
nothing else; its output never carries control characters; the TCP framer stays
bounded and does not depend on how the stream was cut into segments."""

from __future__ import annotations

import struct
import time

import dns.edns
import dns.message
import dns.rrset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.dissect import dns as dns_module
from dotaudit.dissect.dns import DnsFacts, DnsTcpFramer, looks_like_dns, parse_dns
from dotaudit.errors import MalformedError
from tests.fuzzing import examples

FUZZ = settings(
    max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def seed_messages() -> list[bytes]:
    query = dns.message.make_query(
        "www.example.com",
        "AAAA",
        use_edns=0,
        pad=128,
        options=[
            dns.edns.ECSOption("192.0.2.0", 24),
            dns.edns.NSIDOption(b""),
            dns.edns.GenericOption(dns.edns.KEEPALIVE, b"\x00\x64"),
        ],
    )
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text("www.example.com.", 60, "IN", "CNAME", "cdn.example.com.")
    )
    response.answer.append(dns.rrset.from_text("cdn.example.com.", 60, "IN", "AAAA", "2001:db8::1"))
    response.authority.append(
        dns.rrset.from_text("example.com.", 60, "IN", "NS", "ns.example.com.")
    )
    return [query.to_wire(), response.to_wire()]


SEEDS = seed_messages()


def parse_or_malformed(data: bytes) -> DnsFacts | None:
    try:
        facts = parse_dns(data)
    except MalformedError:
        return None
    assert isinstance(facts, DnsFacts)
    assert facts.size == len(data)
    if facts.qname is not None:
        # escaped presentation form: printable ASCII, no spaces, no control bytes
        assert facts.qname.isascii() and facts.qname.isprintable()
        assert " " not in facts.qname
        assert len(facts.qname) <= 4 * 255
    assert isinstance(looks_like_dns(data), bool)
    return facts


@FUZZ
@given(st.binary(max_size=700))
def test_random_bytes(data: bytes) -> None:
    parse_or_malformed(data)


@FUZZ
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_behind_a_plausible_header(body: bytes) -> None:
    # a sane header makes the parser go deep into names and records
    data = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 1, 1) + body
    assert parse_or_malformed(data) is not None


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x3F, 0x40, 0xC0, 0xC0 | 0x0C, 0xFF]))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and data:
            del data[pos]
        elif kind == "cut":
            del data[pos:]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_valid_messages(data: bytes) -> None:
    facts = parse_or_malformed(data)
    if facts is not None and facts.edns is not None:
        assert all(0 <= code <= 0xFFFF for code in facts.edns.options)


@FUZZ
@given(mutated())
def test_caches_never_change_the_result(data: bytes) -> None:
    # names and OPT records are cached by their wire bytes: a cold parse and a warm
    # one (served from the caches) must give equal facts
    dns_module._NAME_CACHE.clear()
    dns_module._OPT_CACHE.clear()
    cold = parse_or_malformed(data)
    warm = parse_or_malformed(data)
    assert cold == warm


def test_seeds_parse_cleanly() -> None:
    # the mutation test is only meaningful if its seeds are valid to begin with
    for seed in SEEDS:
        facts = parse_dns(seed)
        assert facts.malformed is None
        assert facts.qname == "www.example.com"
        assert facts.edns is not None
    query = parse_dns(SEEDS[0])
    assert query.edns is not None and query.edns.ecs == "192.0.2.0/24"
    assert parse_dns(SEEDS[1]).ancount == 2


def test_worst_case_unterminated_name_is_bounded() -> None:
    # a whole TCP message of one-octet labels that never ends: the longest name walk
    body = b"\x01a" * ((65535 - 12) // 2)
    data = struct.pack("!HHHHHH", 1, 0x0100, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF) + body
    started = time.perf_counter()
    facts = parse_dns(data)
    looks_like_dns(data)
    assert time.perf_counter() - started < 1.0
    assert facts.malformed == "truncated_question"
    assert facts.qname is None


def test_worst_case_question_count_is_bounded() -> None:
    # as many questions as fit in a TCP message, each a long name of short labels
    question = b"\x01a" * 100 + b"\x00\x00\x01\x00\x01"
    count = (65535 - 12) // len(question)
    data = struct.pack("!HHHHHH", 1, 0x0100, count, 0, 0, 0) + question * count
    started = time.perf_counter()
    facts = parse_dns(data)
    assert time.perf_counter() - started < 1.0
    assert facts.qname == ".".join(["a"] * 100)
    assert facts.malformed is None
    assert looks_like_dns(data)


def test_pointer_maze_is_bounded() -> None:
    # every pair of bytes is a pointer to the previous pair
    body = b"".join(struct.pack("!H", 0xC000 | (12 + 2 * i - 2)) for i in range(1, 8000))
    data = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + struct.pack("!H", 0xC000 | 13000)
    facts = parse_dns(data + body)
    assert facts.malformed == "compression_depth"
    assert facts.qname is None


@FUZZ
@given(
    stream=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 3000), max_size=20),
)
def test_framer_does_not_depend_on_segmentation(stream: bytes, cuts: list[int]) -> None:
    whole = DnsTcpFramer()
    expected = whole.feed(stream)
    framer = DnsTcpFramer()
    got: list[bytes] = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        got += framer.feed(stream[start:cut] if cut >= start else b"")
        start = max(start, cut)
        assert framer.buffered <= 65537
    assert got == expected
    assert framer.buffered == whole.buffered
    # every byte is accounted for: messages, their prefixes, and the held remainder
    assert sum(len(m) + 2 for m in got) + framer.buffered == len(stream)


@settings(max_examples=examples(50), deadline=None)
@given(lengths=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4), chunk=st.integers(1, 9000))
def test_framer_buffer_stays_bounded_with_large_messages(lengths: list[int], chunk: int) -> None:
    stream = b"".join(struct.pack("!H", n) + bytes([n & 0xFF]) * n for n in lengths)
    framer = DnsTcpFramer()
    got: list[bytes] = []
    for start in range(0, len(stream), chunk):
        got += framer.feed(stream[start : start + chunk])
        assert framer.buffered <= 65537
    assert [len(m) for m in got] == lengths
    assert framer.buffered == 0
