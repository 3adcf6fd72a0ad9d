"""TCP reassembly: retransmissions, reordering, gaps, wraparound, buffer caps, fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotaudit.capture.flows import Flow, FlowTable
from dotaudit.capture.packet import ACK, FIN, PSH, RST, SYN, TCP, Packet
from dotaudit.capture.reassembly import (
    MAX_AHEAD,
    SEGMENT_COST,
    Reassembler,
    StreamContext,
    seq_diff,
)
from tests.fuzzing import examples
from tests.test_capture.test_flows import CLIENT, SERVER, Conn, Recorder, make_table, only_flow

DATA = ACK | PSH
ISN = 1000


def client_stream(table: FlowTable) -> Reassembler:
    flow = table.get(TCP, CLIENT, 40000, SERVER, 853)
    assert flow is not None and flow.c2s is not None
    return flow.c2s


def send_at(conn: Conn, offset: int, data: bytes, *, isn: int = ISN, flags: int = DATA) -> Packet:
    """Client data at stream offset ``offset`` (0 = first byte after the SYN)."""
    return conn.c(flags, data, seq=(isn + 1 + offset) & 0xFFFFFFFF, advance=False)


def check_log_matches(rec: Recorder, from_client: bool, truth: bytes) -> int:
    """Every delivered chunk equals the original bytes at its offset; returns the end offset."""
    offset = 0
    for direction, item in rec.log:
        if direction != from_client:
            continue
        if isinstance(item, int):
            assert item > 0
            offset += item
        else:
            assert item == truth[offset : offset + len(item)], f"invented bytes at {offset}"
            offset += len(item)
    assert offset <= len(truth)
    return offset


def test_seq_diff_wraps() -> None:
    assert seq_diff(5, 0xFFFFFFFE) == 7
    assert seq_diff(0xFFFFFFFE, 5) == -7
    assert seq_diff(100, 100) == 0


def test_in_order_data_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    conn.c(DATA, b"warm")  # first segment may initialise state

    def no_slow(*_args: object) -> None:
        raise AssertionError("in-order segment went through the slow path")

    monkeypatch.setattr(Reassembler, "_segment_slow", no_slow)
    for i in range(50):
        conn.c(DATA, bytes([65 + i % 26]) * 100)
        conn.s(ACK)
    table.finish()
    assert len(rec.stream(only_flow(rec), True)) == 4 + 50 * 100


def test_retransmissions_exact_and_partial_are_delivered_once() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 0, b"abcdef")
    send_at(conn, 0, b"abcdef")  # exact retransmission
    send_at(conn, 3, b"defghi")  # partial overlap: only "ghi" is new
    send_at(conn, 0, b"abc")  # old data
    send_at(conn, 9, b"jkl")
    table.finish()
    flow = only_flow(rec)
    assert rec.stream(flow, True) == b"abcdefghijkl"
    assert rec.gaps == [] and rec.anomalies == []
    assert flow.bytes_fwd == 6 + 6 + 6 + 3 + 3  # counters count every captured byte


def test_out_of_order_segments_are_reordered() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 8, b"89")
    send_at(conn, 4, b"4567")
    assert rec.stream(table.get(TCP, CLIENT, 40000, SERVER, 853), True) == b""  # type: ignore[arg-type]
    assert client_stream(table).buffered == 6
    send_at(conn, 0, b"0123")
    assert client_stream(table).buffered == 0
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"0123456789"
    assert rec.gaps == []


def test_out_of_order_overlaps_first_seen_wins() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 4, b"EFGH")
    send_at(conn, 2, b"cdXXXXij")  # overlaps the buffered bytes with different content
    send_at(conn, 0, b"ab")
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"abcdEFGHij"
    assert rec.anomaly_names() == ["tcp_overlap_mismatch"]


# A new segment that starts inside one already buffered out of order. Buffered: "EFGH"
# at offsets 4..8, ahead of a hole at 0..4. Then the hole is filled with "abcd". The
# bytes first seen win; a differing overlap is reported once; nothing is buffered or
# delivered twice. Oracle: RFC 9293 §3.10.7.4 (bytes of a segment that the receiver
# already holds are trimmed) and the house rule "never count a packet twice".


@pytest.mark.parametrize(
    ("offset", "data", "stream", "buffered", "mismatch"),
    [
        (5, b"FG", b"abcdEFGH", 4, False),  # starts inside, ends inside, same bytes
        (5, b"XY", b"abcdEFGH", 4, True),  # starts inside, ends inside, other bytes
        (4, b"EFGH", b"abcdEFGH", 4, False),  # exact duplicate
        (4, b"WXYZ", b"abcdEFGH", 4, True),  # exact duplicate span, other bytes
        (6, b"GHij", b"abcdEFGHij", 6, False),  # starts inside, ends beyond
        (6, b"XXij", b"abcdEFGHij", 6, True),  # starts inside, ends beyond, other bytes
        (7, b"H", b"abcdEFGH", 4, False),  # the last buffered byte alone
        (7, b"X", b"abcdEFGH", 4, True),  # the last buffered byte alone, another byte
        (8, b"ij", b"abcdEFGHij", 6, False),  # starts right at the buffered end: no overlap
        (4, b"EF", b"abcdEFGH", 4, False),  # starts at the buffered start, ends inside
    ],
    ids=[
        "inside-inside", "inside-inside-differs", "duplicate", "duplicate-differs",
        "inside-beyond", "inside-beyond-differs", "last-byte", "last-byte-differs", "adjacent",
        "start-inside",
    ],
)  # fmt: skip
def test_segment_starting_inside_a_buffered_one(
    offset: int, data: bytes, stream: bytes, buffered: int, mismatch: bool
) -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 4, b"EFGH")
    send_at(conn, offset, data)
    reassembler = client_stream(table)
    assert reassembler.buffered == buffered
    assert table.streams.buffered_total == reassembler.cost
    assert reassembler.cost == buffered + SEGMENT_COST * len(reassembler.starts)
    assert sorted(set(reassembler.starts)) == reassembler.starts, "no segment twice"
    send_at(conn, 0, b"abcd")
    assert reassembler.buffered == 0 and table.streams.buffered_total == 0
    table.finish()
    assert rec.stream(only_flow(rec), True) == stream
    assert rec.gaps == []
    assert rec.anomaly_names() == (["tcp_overlap_mismatch"] if mismatch else [])


def test_segment_spanning_two_buffered_ones_from_inside_the_first() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 4, b"EFGH")
    send_at(conn, 12, b"MNOP")
    send_at(conn, 6, b"GHijklMN")  # starts inside the first, fills the hole, ends inside
    reassembler = client_stream(table)
    assert reassembler.buffered == 12  # offsets 4..16, each byte once
    send_at(conn, 0, b"abcd")
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"abcdEFGHijklMNOP"
    assert rec.anomaly_names() == []


def test_segment_starting_inside_one_and_covering_the_next() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 4, b"EFGH")
    send_at(conn, 10, b"KL")
    send_at(conn, 5, b"FGHijKLmn")  # starts inside the first, covers the second entirely
    reassembler = client_stream(table)
    assert reassembler.buffered == 10  # offsets 4..14
    send_at(conn, 0, b"abcd")
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"abcdEFGHijKLmn"
    assert rec.anomaly_names() == []


def test_gap_acknowledged_by_peer_is_reported_and_stream_resumes() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 0, b"0123")
    send_at(conn, 10, b"ABCD")  # bytes 4..9 were never captured
    acked = (ISN + 1 + 14) & 0xFFFFFFFF  # the server acknowledges everything up to "D"
    table.process(
        Packet(
            99, conn.ts + 0.01, 4, SERVER, CLIENT, TCP, 57, 0, 853, 40000, b"", ACK, 70001, acked
        )
    )
    send_at(conn, 14, b"EF")
    table.finish()
    flow = only_flow(rec)
    assert rec.stream(flow, True) == b"0123ABCDEF"
    assert [(g[1], g[2], g[3]) for g in rec.gaps] == [(True, 6, 99)]
    gaps = [a for a in rec.anomalies if a.what == "tcp_gap"]
    assert len(gaps) == 1 and gaps[0].frame == 99 and "6 bytes" in gaps[0].detail


def test_ack_ahead_without_buffered_data_waits_for_the_data() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    # The capture shows the server's ACK before the data it acknowledges (capture reordering).
    table.process(
        Packet(50, conn.ts, 4, SERVER, CLIENT, TCP, 57, 0, 853, 40000, b"", ACK, 70001, ISN + 1 + 5)
    )
    send_at(conn, 0, b"hello")
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"hello"
    assert rec.gaps == []


def test_gap_at_flow_end_flushes_queued_data() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 0, b"abc")
    send_at(conn, 5, b"fgh")
    last = send_at(conn, 8, b"", flags=FIN | ACK)
    table.finish()
    flow = only_flow(rec)
    assert rec.stream(flow, True) == b"abcfgh"
    assert [(g[2], g[3]) for g in rec.gaps] == [(2, last.frame)]
    assert rec.anomaly_names() == ["tcp_gap"]


def test_sequence_wraparound() -> None:
    table, rec = make_table()
    isn = 0xFFFFFFFF - 3
    conn = Conn(table, cisn=isn)
    conn.handshake()
    send_at(conn, 0, b"012", isn=isn)  # ends exactly at 2**32
    send_at(conn, 6, b"678", isn=isn)  # out of order, after the wrap
    send_at(conn, 3, b"345", isn=isn)  # seq 0
    send_at(conn, 1, b"12345", isn=isn)  # retransmission straddling the wrap
    send_at(conn, 9, b"9", isn=isn)
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"0123456789"
    assert rec.gaps == []


def test_mid_stream_starts_at_first_data_segment() -> None:
    table, rec = make_table()
    conn = Conn(table, cisn=5_000_000)
    conn.c(DATA, b"first")
    conn.c(DATA, b"second")
    conn.c(DATA, b"old", seq=4_999_990, advance=False)  # before the start: dropped
    table.finish()
    flow = only_flow(rec)
    assert rec.stream(flow, True) == b"firstsecond"
    assert flow.mid_stream


def test_absurdly_far_segment_is_not_buffered() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, MAX_AHEAD + 10, b"junk")
    assert client_stream(table).buffered == 0
    send_at(conn, 0, b"real")
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"real" and rec.gaps == []


def test_rst_payload_is_not_stream_data() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    conn.s(DATA, b"ok")
    conn.s(RST | ACK, b"diagnostic text")
    table.finish()
    flow = only_flow(rec)
    assert rec.stream(flow, False) == b"ok"
    assert flow.bytes_rev == 2 + 15


def test_per_stream_cap_holds_under_out_of_order_flood() -> None:
    cap = 10_000
    table, rec = make_table(max_stream_buffer=cap)
    conn = Conn(table)
    conn.handshake()
    truth = bytes(random.Random(1).randbytes(200 * 1000 + 100))
    send_at(conn, 0, truth[:100])
    peak = 0
    for i in range(200):  # a 1000-byte hole at offset 100, then everything after it
        off = 1100 + i * 1000
        send_at(conn, off, truth[off : off + 1000])
        stream = client_stream(table)
        assert stream.cost <= cap
        peak = max(peak, stream.buffered)
        assert table.streams.buffered_total <= cap
    assert 0 < peak <= cap - 9 * SEGMENT_COST
    table.finish()
    flow = only_flow(rec)
    end = check_log_matches(rec, True, truth)
    assert end == 1100 + 200 * 1000 - 1000  # the last 1000-byte slot past truth was never sent
    assert rec.gaps[0][2] == 1000  # the hole, reported with its exact size
    delivered = len(rec.stream(flow, True))
    assert delivered == 100 + 199 * 1000
    assert table.streams.buffered_total == 0


@pytest.mark.parametrize(
    ("cap_kind", "over"),
    [("max_stream_buffer", 0), ("max_stream_buffer", 1),
     ("max_total_buffer", 0), ("max_total_buffer", 1)],
)  # fmt: skip
def test_buffer_cap_bites_one_byte_past_its_value(cap_kind: str, over: int) -> None:
    # Two out-of-order segments of 100 bytes behind a hole: they cost 2 * (100 + 64). A
    # cap of exactly that holds them; one byte less skips to the first of them, reporting
    # the hole as a gap with its reason.
    held = 2 * (100 + SEGMENT_COST)
    caps = {"max_stream_buffer": 1 << 20, "max_total_buffer": 1 << 20}
    caps[cap_kind] = held - over
    table, rec = make_table(**caps)
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 10, b"b" * 100)
    send_at(conn, 110, b"c" * 100)
    stream = client_stream(table)
    if over:
        assert rec.gaps and rec.gaps[0][2] == 10  # the 10-byte hole at the start
        assert [a.detail for a in rec.anomalies] == [
            "10 bytes client->server missing: buffer cap reached"
        ]
        assert stream.buffered == 0 and table.streams.buffered_total == 0
    else:
        assert rec.gaps == [] and rec.anomalies == []
        assert stream.buffered == 200 and table.streams.buffered_total == held


def test_tiny_segment_flood_is_bounded_by_segment_cost() -> None:
    cap = 4096
    table, _rec = make_table(max_stream_buffer=cap)
    conn = Conn(table)
    conn.handshake()
    for i in range(2000):
        send_at(conn, 2 + 2 * i, b"x")  # 1-byte segments with 1-byte holes between them
        assert len(client_stream(table).starts) <= cap // (1 + SEGMENT_COST)


def test_total_cap_holds_across_flows() -> None:
    total = 50_000
    table, rec = make_table(max_stream_buffer=20_000, max_total_buffer=total)
    frames = [0]
    conns = [Conn(table, cport=41000 + i, frame=frames) for i in range(20)]
    for conn in conns:
        conn.handshake()
    for round_ in range(10):
        for conn in conns:
            send_at(conn, 100 + round_ * 1000, b"z" * 1000)  # never fills the hole at 0
            assert table.streams.buffered_total <= total
    assert rec.gaps, "the total cap must force gaps"
    assert all(g[2] == 100 for g in rec.gaps)
    table.finish()
    assert table.streams.buffered_total == 0
    for flow in rec.ended:
        assert len(rec.stream(flow, True)) == 10_000
    assert len(rec.gaps) == 20  # one hole per flow, reported once


def test_fin_then_late_retransmission_fills_the_hole_before_close() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    send_at(conn, 0, b"ab")
    send_at(conn, 4, b"ef")
    send_at(conn, 6, b"", flags=FIN | ACK)
    send_at(conn, 2, b"cd")  # retransmitted after the FIN, within the linger
    table.finish()
    assert rec.stream(only_flow(rec), True) == b"abcdef"
    assert rec.gaps == []


# --- property tests ------------------------------------------------------------------

_segment = st.tuples(
    st.booleans(),  # from client
    st.integers(0, 0xFFFFFFFF),  # seq
    st.integers(0, 0xFFFFFFFF),  # ack
    st.sampled_from([0, ACK, ACK | PSH, SYN, SYN | ACK, FIN | ACK, RST, RST | ACK, 0x3F]),
    st.binary(max_size=64),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_segment, max_size=60), st.integers(0, 0xFFFFFFFF))
def test_random_segments_never_raise_and_never_invent_bytes(
    segments: list[tuple[bool, int, int, int, bytes]], base: int
) -> None:
    table, rec = make_table(max_stream_buffer=512, max_total_buffer=2048, close_linger=0.5)
    sent = {True: 0, False: 0}
    for i, (from_client, seq, ack, flags, payload) in enumerate(segments):
        if i % 3 == 0:
            seq = (base + seq % 200) & 0xFFFFFFFF  # keep many segments near each other
        src, sport, dst, dport = (
            (CLIENT, 40000, SERVER, 853) if from_client else (SERVER, 853, CLIENT, 40000)
        )
        table.process(
            Packet(
                i + 1,
                100.0 + i * 0.1,
                4,
                src,
                dst,
                TCP,
                64,
                0,
                sport,
                dport,
                payload,
                flags,
                seq,
                ack,
            )
        )
        sent[from_client] += len(payload)
        assert table.streams.buffered_total <= 2048 + 64 + SEGMENT_COST
    table.finish()
    assert table.active_flows == 0 and table.streams.buffered_total == 0
    for from_addr_client in (True, False):  # per sending address; orientation may differ
        delivered = sum(
            len(rec.stream(f, (f.client == CLIENT) == from_addr_client)) for f in rec.ended
        )
        assert delivered <= sent[from_addr_client]
    assert len({id(f) for f in rec.ended}) == len(rec.ended)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.binary(min_size=1, max_size=300),
    st.lists(st.tuples(st.integers(0, 299), st.integers(1, 80)), max_size=40),
    st.integers(0, 0xFFFFFFFF),
    st.randoms(use_true_random=False),
)
def test_reassembly_reproduces_the_sent_stream(
    truth: bytes, slices: list[tuple[int, int]], isn: int, rnd: random.Random
) -> None:
    """Random slices of one stream, shuffled and duplicated, with a full copy at the end:
    the output is exactly the stream; without the copy it is a faithful subsequence."""
    table, rec = make_table()
    conn = Conn(table, cisn=isn)
    conn.c(SYN)
    pieces = [(o, truth[o : o + n]) for o, n in slices if o < len(truth)]
    rnd.shuffle(pieces)
    for offset, data in pieces:
        send_at(conn, offset, data, isn=isn)
    end = check_log_matches(rec, True, truth)
    covered = set()
    for offset, data in pieces:
        covered.update(range(offset, offset + len(data)))
    prefix = 0
    while prefix in covered:
        prefix += 1
    assert end == prefix  # everything contiguous from the start was delivered, nothing more
    send_at(conn, 0, truth, isn=isn)
    table.finish()
    flow: Flow = only_flow(rec)
    assert rec.stream(flow, True) == truth
    assert rec.gaps == []


class StreamLog:
    """A StreamConsumer and anomaly report that keep every call with its frame and ts;
    ``skips`` are what on_stream_data answers, one per call (then 0)."""

    def __init__(self, skips: tuple[int, ...] = ()) -> None:
        self.calls: list[tuple[str, object, int, float]] = []
        self.reports: list[tuple[str, int, float, str]] = []
        self.flows: set[int] = set()
        self._skips = list(skips)

    def on_stream_data(
        self, flow: Flow, from_client: bool, data: bytes, frame: int, ts: float
    ) -> int | None:
        self.flows.add(id(flow))
        self.calls.append(("data", data, frame, ts))
        return self._skips.pop(0) if self._skips else None

    def on_stream_gap(
        self, flow: Flow, from_client: bool, missing: int, frame: int, ts: float
    ) -> None:
        self.flows.add(id(flow))
        self.calls.append(("gap", missing, frame, ts))

    def report(self, flow: Flow, what: str, frame: int, ts: float, detail: str) -> None:
        self.flows.add(id(flow))
        self.reports.append((what, frame, ts, detail))


def _stream(
    log: StreamLog,
    *,
    from_client: bool = True,
    stream_cap: int = 1 << 20,
    total_cap: int = 1 << 22,
    isn: int = ISN,
) -> tuple[Reassembler, StreamContext]:
    ctx = StreamContext(log, log.report, stream_cap, total_cap)
    flow = Flow(TCP, b"\x0a\x00\x00\x02", 40000, b"\x09\x09\x09\x09", 853, 1, 0.0)
    stream = Reassembler(ctx, flow, from_client)
    stream.start(isn + 1)
    return stream, ctx


def test_stream_starts_once_at_the_first_sequence_number() -> None:
    log = StreamLog()
    stream, _ = _stream(log, isn=-1)  # ISN 0xFFFFFFFF: data starts at sequence 0
    assert stream.nxt == 0
    stream.start(500)  # a later SYN retransmission does not move it
    stream.segment(0, b"ab", 2, 0.5)
    assert log.calls == [("data", b"ab", 2, 0.5)]
    assert (stream.pos, stream.nxt) == (2, 2)


def test_in_order_and_out_of_order_delivery_carry_frame_and_ts() -> None:
    log = StreamLog()
    stream, ctx = _stream(log)
    base = ISN + 1
    stream.segment(base + 4, b"efgh", 3, 0.3)  # ahead: buffered
    assert (stream.buffered, stream.cost, ctx.buffered_total) == (4, 4 + SEGMENT_COST, 68)
    stream.segment(base, b"abcd", 4, 0.4)  # fills the hole: both delivered now
    assert log.calls == [("data", b"abcd", 4, 0.4), ("data", b"efgh", 4, 0.4)]
    assert (stream.buffered, stream.cost, ctx.buffered_total) == (0, 0, 0)
    assert (stream.pos, stream.nxt) == (8, base + 8)


def test_consumer_skip_drops_exactly_the_bytes_it_asked_for() -> None:
    log = StreamLog(skips=(5,))
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base, b"head", 2, 0.2)  # consumer: skip the next 5 bytes
    stream.segment(base + 4, b"abc", 3, 0.3)  # all skipped
    stream.segment(base + 7, b"defgh", 4, 0.4)  # 2 skipped, "fgh" delivered
    stream.segment(base + 12, b"ij", 5, 0.5)
    assert log.calls == [
        ("data", b"head", 2, 0.2),
        ("data", b"fgh", 4, 0.4),
        ("data", b"ij", 5, 0.5),
    ]
    assert stream.skip == 0 and stream.pos == 14


def test_consumer_skip_applies_to_buffered_data_too() -> None:
    log = StreamLog(skips=(3,))
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 2, b"cdefg", 3, 0.3)  # buffered
    stream.segment(base, b"ab", 4, 0.4)  # delivered; then 3 of "cdefg" skipped
    assert log.calls == [("data", b"ab", 4, 0.4), ("data", b"fg", 4, 0.4)]
    log2 = StreamLog(skips=(3,))
    stream2, _ = _stream(log2)
    stream2.segment(base + 2, b"cd", 3, 0.3)
    stream2.segment(base + 4, b"ef", 3, 0.3)
    stream2.segment(base, b"ab", 4, 0.4)  # "cd" skipped whole, one byte of "ef" too
    assert log2.calls == [("data", b"ab", 4, 0.4), ("data", b"f", 4, 0.4)]
    assert stream2.skip == 0


def test_skip_exactly_the_segment_length_is_all_of_it() -> None:
    log = StreamLog(skips=(3,))
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base, b"x", 1, 0.1)
    stream.segment(base + 1, b"abc", 2, 0.2)
    assert stream.skip == 0
    stream.segment(base + 4, b"d", 3, 0.3)
    assert log.calls == [("data", b"x", 1, 0.1), ("data", b"d", 3, 0.3)]


def test_retransmission_of_delivered_bytes_is_dropped_and_partial_one_trimmed() -> None:
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base, b"abcd", 1, 0.1)
    stream.segment(base + 2, b"cd", 2, 0.2)  # ends exactly at what was delivered
    stream.segment(base + 2, b"cdef", 3, 0.3)  # "ef" is new
    assert log.calls == [("data", b"abcd", 1, 0.1), ("data", b"ef", 3, 0.3)]


def test_partial_retransmission_keeps_exactly_the_bytes_past_what_was_delivered() -> None:
    """The overlap and the new part differ in length, so trimming from the wrong end
    shows (with equal lengths both ends give the same bytes)."""
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base, b"abcd", 1, 0.1)
    stream.segment(base + 1, b"bcdefgh", 2, 0.2)  # 3 bytes again, then 4 new
    stream.segment(base + 8, b"ij", 3, 0.3)
    assert log.calls == [
        ("data", b"abcd", 1, 0.1),
        ("data", b"efgh", 2, 0.2),
        ("data", b"ij", 3, 0.3),
    ]


def test_segment_at_max_ahead_is_dropped_and_just_below_is_kept() -> None:
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment((base + MAX_AHEAD) & 0xFFFFFFFF, b"far", 1, 0.1)
    assert stream.starts == []
    stream.segment((base + MAX_AHEAD - 1) & 0xFFFFFFFF, b"x", 2, 0.2)
    assert stream.starts == [MAX_AHEAD - 1]


def test_gap_reports_name_side_size_reason_frame_and_ts() -> None:
    log = StreamLog()
    stream, _ = _stream(log, from_client=False)
    base = ISN + 1
    stream.segment(base + 10, b"late", 7, 0.7)
    stream.peer_ack(base + 4, 8, 0.8)  # the peer has 4 bytes we never saw
    stream.close(9, 0.9)
    assert log.calls == [("gap", 4, 8, 0.8), ("gap", 6, 9, 0.9), ("data", b"late", 9, 0.9)]
    assert log.reports == [
        ("tcp_gap", 8, 0.8, "4 bytes server->client missing: acknowledged by peer"),
        ("tcp_gap", 9, 0.9, "6 bytes server->client missing: stream ended"),
    ]
    assert len(log.flows) == 1


def test_peer_ack_at_or_behind_the_stream_or_absurdly_ahead_changes_nothing() -> None:
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 10, b"late", 7, 0.7)
    stream.peer_ack(base, 8, 0.8)
    stream.peer_ack(base - 1, 8, 0.8)
    stream.peer_ack((base + MAX_AHEAD) & 0xFFFFFFFF, 8, 0.8)
    assert log.calls == [] and stream.starts == [10]
    stream.peer_ack(base + 1, 9, 0.9)  # one byte: the smallest gap there is
    assert log.calls == [("gap", 1, 9, 0.9)]


def test_peer_ack_past_the_buffered_data_skips_only_to_it() -> None:
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 4, b"efgh", 7, 0.7)
    stream.peer_ack(base + 100, 8, 0.8)
    assert log.calls == [("gap", 4, 8, 0.8), ("data", b"efgh", 8, 0.8)]
    assert stream.pos == 8


def test_stream_cap_skips_to_the_first_buffered_segment_with_its_reason() -> None:
    log = StreamLog()
    # Room for one 10-byte segment (10 + SEGMENT_COST), not two.
    stream, ctx = _stream(log, stream_cap=10 + SEGMENT_COST)
    base = ISN + 1
    stream.segment(base + 5, b"0123456789", 3, 0.3)
    assert log.calls == []  # exactly at the cap: kept
    stream.segment(base + 20, b"abcdefghij", 4, 0.4)
    assert log.calls == [
        ("gap", 5, 4, 0.4),
        ("data", b"0123456789", 4, 0.4),
    ]
    assert log.reports == [
        ("tcp_gap", 4, 0.4, "5 bytes client->server missing: buffer cap reached")
    ]
    assert stream.starts == [20] and ctx.buffered_total == 10 + SEGMENT_COST


def test_total_cap_is_shared_and_exactly_full_is_allowed() -> None:
    log = StreamLog()
    stream, ctx = _stream(log, total_cap=2 * (4 + SEGMENT_COST))
    base = ISN + 1
    stream.segment(base + 10, b"aaaa", 1, 0.1)
    stream.segment(base + 20, b"bbbb", 2, 0.2)
    assert log.calls == [] and ctx.buffered_total == 2 * (4 + SEGMENT_COST)
    stream.segment(base + 30, b"cccc", 3, 0.3)
    assert log.calls[0] == ("gap", 10, 3, 0.3)


def test_ignored_payload_releases_the_buffer_on_close() -> None:
    log = StreamLog()
    stream, ctx = _stream(log)
    base = ISN + 1
    stream.segment(base + 10, b"aaaa", 1, 0.1)
    stream.segment(base + 20, b"bbbb", 2, 0.2)
    stream.flow.ignore_payload = True
    stream.close(3, 0.3)
    assert log.calls == []
    assert (stream.buffered, stream.cost, ctx.buffered_total) == (0, 0, 0)
    assert stream.starts == [] and stream.segs == {}


def test_overlap_mismatch_is_reported_once_with_side_frame_and_ts() -> None:
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 10, b"abcdef", 1, 0.1)
    stream.segment(base + 12, b"XY", 2, 0.2)  # inside, different bytes
    stream.segment(base + 8, b"..abcdef..", 3, 0.3)  # covers it, same bytes: no report
    stream.segment(base + 14, b"ZZ", 4, 0.4)  # differs again: already reported
    assert log.reports == [
        (
            "tcp_overlap_mismatch",
            2,
            0.2,
            "client->server retransmission differs from the bytes first seen; first seen kept",
        )
    ]
    stream.segment(base, b"01234567", 5, 0.5)
    delivered = b"".join(c[1] for c in log.calls if c[0] == "data")  # type: ignore[misc]
    assert delivered == b"01234567..abcdef.."


def test_segment_ending_where_a_buffered_one_starts_is_no_overlap() -> None:
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 10, b"klm", 1, 0.1)
    stream.segment(base + 6, b"ghij", 2, 0.2)  # ends at 10, where "klm" starts
    stream.segment(base + 13, b"nop", 3, 0.3)  # starts where "klm" ends
    assert stream.starts == [6, 10, 13] and log.reports == []
    assert stream.buffered == 10


def test_segment_spanning_two_buffered_ones_fills_only_the_holes() -> None:
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 4, b"EF", 1, 0.1)
    stream.segment(base + 8, b"IJ", 2, 0.2)
    stream.segment(base + 2, b"cdefghijkl", 3, 0.3)  # differs inside the buffered ones
    assert stream.starts == [2, 4, 6, 8, 10]
    assert [stream.segs[s] for s in stream.starts] == [b"cd", b"EF", b"gh", b"IJ", b"kl"]
    assert stream.buffered == 10
    assert [r[0] for r in log.reports] == ["tcp_overlap_mismatch"]


def test_buffered_segment_skipped_exactly_whole_is_not_delivered_empty() -> None:
    """The consumer asks to skip exactly the next buffered segment: it gets nothing for
    that segment (no empty delivery) and the following bytes whole."""
    log = StreamLog(skips=(2,))
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 2, b"cd", 3, 0.3)
    stream.segment(base + 4, b"ef", 4, 0.4)
    stream.segment(base, b"ab", 5, 0.5)  # "cd" skipped whole, "ef" delivered whole
    assert log.calls == [("data", b"ab", 5, 0.5), ("data", b"ef", 5, 0.5)]


def test_segment_starting_inside_the_second_of_two_buffered_ones() -> None:
    """The new segment starts inside the later of two buffered segments, past where the
    earlier one would reach with the later one's length: it is trimmed against the
    segment it starts in, never buffered over it."""
    log = StreamLog()
    stream, _ = _stream(log)
    base = ISN + 1
    stream.segment(base + 4, b"EF", 1, 0.1)
    stream.segment(base + 8, b"IJKL", 2, 0.2)
    stream.segment(base + 10, b"KLmn", 3, 0.3)
    assert stream.starts == [4, 8, 12] and stream.buffered == 8
    stream.segment(base, b"abcd", 4, 0.4)
    stream.segment(base + 6, b"gh", 5, 0.5)
    delivered = b"".join(c[1] for c in log.calls if c[0] == "data")  # type: ignore[misc]
    assert delivered == b"abcdEFghIJKLmn"
    assert log.reports == []


def test_overlap_mismatch_from_the_server_names_its_side() -> None:
    log = StreamLog()
    stream, _ = _stream(log, from_client=False)
    base = ISN + 1
    stream.segment(base + 10, b"abcdef", 1, 0.1)
    stream.segment(base + 12, b"XY", 2, 0.2)
    assert log.reports == [
        (
            "tcp_overlap_mismatch",
            2,
            0.2,
            "server->client retransmission differs from the bytes first seen; first seen kept",
        )
    ]
