"""TlsStream with a record sink (what the dispatcher uses) must see exactly the records a
stream without one returns as RecordItems, on any input, however it is cut, with the
caller skipping what take_skip allows, and with the sink's cap.

Oracle: the same TlsStream without a sink (its RecordItem output, which the TLS unit
tests check against hand-built records).
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.dissect.tls import RecordItem, TlsItem, TlsStream
from dotaudit.errors import MalformedError
from dotaudit.model.events import TlsRecord
from tests.fuzzing import examples
from tests.test_dissect.test_tls import handshake, record, tls13_client_hello

FUZZ = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

Row = tuple[float, int, int, int]


def drive(stream: TlsStream, chunks: list[bytes], skip: bool) -> tuple[list[TlsItem], bool]:
    """Feed the chunks as the flow layer does; with ``skip`` drop what take_skip allows."""
    items: list[TlsItem] = []
    dropping = 0
    for frame, chunk in enumerate(chunks, start=1):
        if dropping:
            cut = min(dropping, len(chunk))
            dropping -= cut
            chunk = chunk[cut:]
            if not chunk:
                continue
        try:
            items.extend(stream.feed(chunk, frame, frame / 10))
        except MalformedError:
            return items, True
        if skip:
            dropping = stream.take_skip()
    return items, False


def rows_of(items: list[TlsItem]) -> list[Row]:
    return [(i.ts, i.frame, i.length, i.content_type) for i in items if type(i) is RecordItem]


def sink_rows(sink: list[TlsRecord]) -> list[Row]:
    assert all(type(r) is TlsRecord for r in sink)
    return [(r.ts, r.frame, r.length, r.content_type) for r in sink]


def chunks_of(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


def check(data: bytes, cuts: list[int], skip: bool, gap: bool, cap: int) -> None:
    plain = TlsStream(True, max_handshake=4096, max_records=64)
    sink: list[TlsRecord] = []
    sunk = TlsStream(True, max_handshake=4096, max_records=64, record_sink=sink, sink_cap=cap)
    if gap:
        plain.gap()
        sunk.gap()
    chunks = chunks_of(data, cuts)
    items, failed = drive(plain, chunks, skip)
    others, sunk_failed = drive(sunk, chunks, skip)
    assert failed == sunk_failed
    expected = rows_of(items)
    assert sink_rows(sink) == expected[:cap]
    assert sunk.records_dropped == (len(expected) > cap)
    assert not any(type(i) is RecordItem for i in others)
    assert [i for i in items if type(i) is not RecordItem] == others
    assert sunk.records_truncated == plain.records_truncated


streams = st.lists(
    st.sampled_from(
        [
            record(22, tls13_client_hello(), version=0x0301),
            record(21, b"\x02\x28"),
            record(20, b"\x01"),
            record(23, bytes(300)),
            record(23, bytes(5000)),
            record(23, b""),
            record(22, handshake(11, b"\x00\x00\x03\x00\x00\x00")),
            b"\x17\x03\x03\xff\xff",  # a record longer than TLS allows: malformed
        ]
    ),
    min_size=1,
    max_size=12,
).map(b"".join)


@FUZZ
@given(
    streams | st.binary(max_size=3000),
    st.lists(st.integers(0, 60_000), max_size=12),
    st.booleans(),
    st.booleans(),
    st.integers(0, 6),
)
def test_sink_holds_exactly_the_records_a_plain_stream_returns(
    data: bytes, cuts: list[int], skip: bool, gap: bool, cap: int
) -> None:
    check(data, cuts, skip, gap, cap)


def test_records_of_a_failing_feed_are_taken_back() -> None:
    sink: list[TlsRecord] = []
    stream = TlsStream(True, record_sink=sink, sink_cap=1)
    stream.feed(record(23, b"abc"), 1, 0.1)
    assert sink_rows(sink) == [(0.1, 1, 3, 23)]
    # two whole records (the second over the cap), then garbage: all in one failing call
    try:
        stream.feed(record(23, b"x") + record(23, b"y") + b"\x99" * 5, 2, 0.2)
    except MalformedError:
        pass
    else:
        raise AssertionError("the bad header must raise")
    assert sink_rows(sink) == [(0.1, 1, 3, 23)]
    assert not stream.records_dropped
