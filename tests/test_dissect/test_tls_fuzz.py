"""Hostile input: random and mutated hellos, certificates and record streams may only ever
raise MalformedError, must not grow buffers beyond their caps, and must split-invariantly
produce the same items."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.dissect.fingerprint import ja3, ja4
from dotaudit.dissect.tls import (
    MAX_RECORD,
    TlsItem,
    TlsStream,
    parse_certificate_list,
    parse_client_hello,
    parse_server_hello,
)
from dotaudit.errors import MalformedError
from dotaudit.x509 import parse_certificate
from tests.fuzzing import examples
from tests.test_dissect.test_tls import (
    alpn_ext,
    client_hello_body,
    ext,
    handshake,
    record,
    server_hello_body,
    sni_ext,
    tls13_client_hello,
    u16s,
    vec8,
    vec16,
)

FUZZ = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

VALID_CH = handshake(
    1,
    client_hello_body(
        ciphers=[0x1A1A, 0x1301, 0xC02F],
        extensions=[
            sni_ext(b"dns.example"),
            alpn_ext([b"h2", b"dot"]),
            ext(43, vec8(u16s([0x0304, 0x0303]))),
            ext(13, vec16(u16s([0x0403, 0x0804]))),
            ext(10, vec16(u16s([0x001D]))),
            ext(11, vec8(b"\x00")),
            ext(0xFE0D, b"\x00\x01"),
        ],
    ),
)[4:]


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


mutations = st.tuples(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.integers(0, 400)),
)


def _hello_or_malformed(body: bytes) -> None:
    try:
        ch = parse_client_hello(body)
    except MalformedError:
        return
    # anything that parses must fingerprint without error, and print as plain text
    assert len(ja3(ch)) == 32
    assert ja4(ch).count("_") == 2
    for text in (ch.sni or "", *ch.alpn):
        assert all(0x20 <= ord(c) < 0x7F for c in text)


@FUZZ
@given(st.binary(max_size=600))
def test_random_client_hello_bodies(body: bytes) -> None:
    _hello_or_malformed(body)


@FUZZ
@given(mutations)
def test_mutated_client_hellos(m: tuple[list[tuple[int, int]], int | None]) -> None:
    _hello_or_malformed(mutate(VALID_CH, *m))


@FUZZ
@given(st.binary(max_size=300) | mutations.map(lambda m: mutate(server_hello_body(), *m)))
def test_random_server_hellos(body: bytes) -> None:
    with contextlib.suppress(MalformedError):
        parse_server_hello(body)


@FUZZ
@given(st.binary(max_size=300))
def test_random_certificate_lists_and_certs(body: bytes) -> None:
    for fn in (parse_certificate_list, parse_certificate):
        with contextlib.suppress(MalformedError):
            fn(body)


def _run(stream: TlsStream, chunks: list[bytes]) -> tuple[list[TlsItem], bool]:
    items: list[TlsItem] = []
    for n, chunk in enumerate(chunks):
        try:
            items.extend(stream.feed(chunk, n, float(n)))
        except MalformedError:
            return items, True
        # memory stays bounded: partial header < 5 bytes, handshake buffer under its cap
        assert len(stream._hdr) < 5
        assert len(stream._hs) <= stream.max_handshake + MAX_RECORD
    return items, False


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(0, 4000), max_size=8), st.booleans())
def test_random_streams(data: bytes, cuts: list[int], gap: bool) -> None:
    stream = TlsStream(from_client=True, max_handshake=4096, max_records=16)
    if gap:
        stream.gap()
    items, _ = _run(stream, _chunks(data, cuts))
    assert sum(type(i).__name__ == "RecordItem" for i in items) <= 16


valid_stream = st.lists(
    st.sampled_from(
        [
            record(22, tls13_client_hello(), version=0x0301),
            record(22, tls13_client_hello()[:30]) + record(22, tls13_client_hello()[30:]),
            record(21, b"\x02\x28"),
            record(20, b"\x01"),
            record(23, bytes(300)),
            record(23, b""),
            record(22, handshake(11, b"\x00\x00\x03\x00\x00\x00")),
        ]
    ),
    min_size=1,
    max_size=8,
).map(b"".join)


@FUZZ
@given(valid_stream, st.lists(st.integers(0, 5000), max_size=10))
def test_split_invariance(data: bytes, cuts: list[int]) -> None:
    whole, whole_failed = _run(TlsStream(True), [data])
    parts, parts_failed = _run(TlsStream(True), _chunks(data, cuts))
    assert whole_failed == parts_failed
    strip = [(type(i).__name__, getattr(i, "length", None)) for i in whole]
    assert strip == [(type(i).__name__, getattr(i, "length", None)) for i in parts]
    if not whole_failed:
        # same items up to which segment completed them
        assert [_no_pos(i) for i in whole] == [_no_pos(i) for i in parts]


def _no_pos(item: TlsItem) -> object:
    return {k: getattr(item, k) for k in item.__slots__ if k not in ("frame", "ts")}


@FUZZ
@given(valid_stream, mutations)
def test_mutated_streams(data: bytes, m: tuple[list[tuple[int, int]], int | None]) -> None:
    _run(TlsStream(True, max_handshake=2048), [mutate(data, m[0], None)])
    _run(TlsStream(False, max_handshake=2048), [mutate(data, *m)])
