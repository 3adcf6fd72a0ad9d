"""TCP reassembly: retransmissions, reordering, gaps, wraparound, buffer caps, fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotaudit.capture.flows import Flow, FlowTable
from dotaudit.capture.packet import ACK, FIN, PSH, RST, SYN, TCP, Packet
from dotaudit.capture.reassembly import MAX_AHEAD, SEGMENT_COST, Reassembler, seq_diff
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
