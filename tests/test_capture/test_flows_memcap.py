"""The flow table's memory: SYN-only flows as small records, reassembly state made when
data comes, and the memory cap with emergency eviction (every eviction counted)."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from dotaudit.capture import flows
from dotaudit.capture.flows import (
    FLOW_COST,
    STREAM_COST,
    SYN_ONLY_COST,
    UDP_FLOW_COST,
    Flow,
    FlowTable,
)
from dotaudit.capture.packet import ACK, FIN, PSH, RST, SYN, TCP, Packet
from tests.fuzzing import examples
from tests.test_capture.test_flows import (
    CLIENT,
    SERVER,
    T0,
    Conn,
    Recorder,
    icmp_error,
    make_table,
    only_flow,
    udp,
)

ENDED_FIELDS = (
    "proto", "client", "cport", "server", "sport", "first_frame", "last_frame", "start",
    "end", "packets_fwd", "packets_rev", "bytes_fwd", "bytes_rev", "outcome",
    "syn_retransmits", "handshake_seen", "mid_stream", "closed_by", "ended_by", "icmp",
    "icmp_frame", "rst_ttl", "server_ttl",
)  # fmt: skip
"""What the consumer reads of an ended flow (the connection event's fields)."""


class FlowsOnlyTable(FlowTable):
    """Every flow a Flow from its first packet: the reference for SYN-only records."""

    syn_only_records: ClassVar[bool] = False


def syn(frame: int, ts: float, cport: int, *, seq: int = 1000) -> Packet:
    return Packet(frame, ts, 4, CLIENT, SERVER, TCP, 64, 0, cport, 853, b"", SYN, seq, 0)


def ended(rec: Recorder) -> list[tuple[object, ...]]:
    return [tuple(getattr(flow, name) for name in ENDED_FIELDS) for flow in rec.ended]


# -- SYN-only flows ----------------------------------------------------------------------


def test_a_bare_syn_makes_a_small_record_and_ends_as_an_unanswered_flow() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.c(SYN)
    assert table.active_flows == 1 and not table._tcp
    assert table.charged_bytes == SYN_ONLY_COST
    conn.c(SYN, seq=1000, advance=False, dt=1.0)  # retransmissions
    conn.c(SYN, seq=1000, advance=False, dt=2.0)
    assert table.active_flows == 1 and not table._tcp
    table.finish()
    flow = only_flow(rec)
    assert isinstance(flow, Flow)
    assert (flow.outcome, flow.syn_retransmits, flow.packets_fwd) == ("syn_unanswered", 2, 3)
    assert (flow.first_frame, flow.last_frame, flow.end - flow.start) == (1, 3, 3.0)
    assert flow.ended_by == "capture_end"
    assert table.charged_bytes == 0


def test_the_first_other_packet_makes_the_record_a_flow_in_its_place() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.c(SYN)
    conn.s(SYN | ACK)
    assert table._tcp and not table._syn_only
    assert table.charged_bytes == FLOW_COST  # no direction has carried data yet
    conn.c(ACK)
    conn.c(ACK | PSH, b"query")
    assert table.charged_bytes == FLOW_COST + STREAM_COST
    table.finish()
    flow = only_flow(rec)
    assert flow.outcome == "established" and flow.handshake_seen
    assert rec.stream(flow, True) == b"query"
    assert table.charged_bytes == 0


def test_an_icmp_error_quoting_a_syn_only_flow_rejects_it() -> None:
    table, rec = make_table()
    Conn(table).c(SYN)
    table.process(icmp_error(2, T0 + 0.1, "admin-prohibited", TCP, 40000, 853))
    table.finish()
    flow = only_flow(rec)
    assert (flow.outcome, flow.icmp, flow.icmp_frame) == ("icmp_rejected", "admin-prohibited", 2)


def test_get_returns_a_syn_only_flow_as_a_flow() -> None:
    table, _ = make_table()
    Conn(table).c(SYN)
    flow = table.get(TCP, SERVER, 853, CLIENT, 40000)  # either direction
    assert isinstance(flow, Flow) and flow.cport == 40000 and flow.packets_fwd == 1
    assert table.get(TCP, CLIENT, 40000, SERVER, 853) is flow


def test_reassembly_state_is_made_when_a_direction_carries_data() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    flow = table.get(TCP, CLIENT, 40000, SERVER, 853)
    assert flow is not None and flow.c2s is None and flow.s2c is None
    conn.s(ACK | PSH, b"greeting")
    assert flow.c2s is None and flow.s2c is not None
    assert flow.s2c.nxt == (70000 + 1 + len(b"greeting")) & 0xFFFFFFFF  # from the SYN/ACK
    table.finish()
    assert rec.stream(flow, False) == b"greeting"


PACKET_KINDS = ("syn", "syn_other_isn", "synack", "ack", "data", "server_data", "fin",
                "server_fin", "rst", "server_rst", "icmp", "late")  # fmt: skip


def _replay(table_class: type[FlowTable], script: list[tuple[int, str]]) -> Recorder:
    rec = Recorder()
    table = table_class(rec, rec.anomalies.append)  # type: ignore[arg-type]
    conns = [Conn(table, cport=40000 + i, sisn=90000 + i * 1000, frame=[0]) for i in range(3)]
    frame = [0]
    for conn in conns:
        conn.frame = frame
    ts = T0
    for which, kind in script:
        conn = conns[which]
        ts += 0.5
        conn.ts = ts
        if kind == "syn":
            conn.c(SYN, seq=1000, advance=False, dt=0)
        elif kind == "syn_other_isn":
            conn.c(SYN, seq=5000, advance=False, dt=0)
        elif kind == "synack":
            conn.s(SYN | ACK, seq=conn.sseq, advance=False, dt=0)
        elif kind == "ack":
            conn.c(ACK, dt=0)
        elif kind == "data":
            conn.c(ACK | PSH, b"x" * 5, seq=1001, dt=0)
        elif kind == "server_data":
            conn.s(ACK | PSH, b"y" * 7, seq=conn.sseq + 1, advance=False, dt=0)
        elif kind == "fin":
            conn.c(FIN | ACK, dt=0)
        elif kind == "server_fin":
            conn.s(FIN | ACK, dt=0)
        elif kind == "rst":
            conn.c(RST, dt=0)
        elif kind == "server_rst":
            conn.s(RST | ACK, ttl=40, dt=0)
        elif kind == "icmp":
            frame[0] += 1
            table.process(icmp_error(frame[0], ts, "admin-prohibited", TCP, conn.cport, 853))
        else:  # a packet from long ago: time going backwards
            conn.c(SYN, seq=1000, advance=False, dt=-100.0)
        ts += 400.0 if kind == "late" else 0.0  # and then past every idle timeout
    table.finish()
    return rec


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(PACKET_KINDS)), max_size=25))
def test_syn_only_records_change_nothing_the_consumer_sees(
    script: list[tuple[int, str]],
) -> None:
    """Any mix of packets ends the same flows, with the same fields, data and anomalies,
    whether SYN-only flows are kept as records or as Flows from the start."""
    records = _replay(FlowTable, script)
    reference = _replay(FlowsOnlyTable, script)
    assert ended(records) == ended(reference)
    assert records.log == reference.log
    assert [(a.what, a.frame, a.detail) for a in records.anomalies] == [
        (a.what, a.frame, a.detail) for a in reference.anomalies
    ]


# -- the memory cap ----------------------------------------------------------------------


def test_memcap_default_and_costs_are_the_documented_ones() -> None:
    assert flows.FLOW_MEMCAP == 32 * 1024 * 1024
    assert flows.EMERGENCY_RECOVERY == 0.85
    assert (SYN_ONLY_COST, FLOW_COST, STREAM_COST, UDP_FLOW_COST) == (800, 1100, 2000, 1400)


def _syn_flood(table: FlowTable, count: int, *, start: int = 0) -> None:
    for i in range(start, start + count):
        table.process(syn(i + 1, T0 + i * 0.001, 1024 + i))


def test_at_the_memcap_nothing_is_evicted() -> None:
    table, rec = make_table(memcap=10 * SYN_ONLY_COST)
    _syn_flood(table, 10)
    assert table.active_flows == 10 and table.charged_bytes == table.memcap
    assert rec.ended == [] and rec.anomalies == [] and table.caps() == {}


def test_past_the_memcap_the_oldest_syn_only_flows_are_evicted_and_counted() -> None:
    table, rec = make_table(memcap=10 * SYN_ONLY_COST)
    _syn_flood(table, 11)
    # The eleventh found the table full: evicted down to 85% of the cap (8 of 10 flows),
    # then it came in.
    assert table.active_flows == 9 and table.charged_bytes == 9 * SYN_ONLY_COST
    assert [flow.cport for flow in rec.ended] == [1024, 1025]
    assert all(f.ended_by == "evicted" and f.outcome == "syn_unanswered" for f in rec.ended)
    assert table.caps() == {"flows_evicted": 2, "flows_evicted_syn_only": 2}
    assert rec.anomaly_names() == ["flow_memcap"]  # one per emergency, not per flow
    assert "evicted 2 (2 SYN-only), 2 so far in 1 emergencies" in rec.anomalies[0].detail


def test_a_retransmitted_syn_makes_its_flow_the_last_to_go() -> None:
    table, rec = make_table(memcap=4 * SYN_ONLY_COST)
    _syn_flood(table, 4)
    table.process(syn(10, T0 + 1.0, 1024))  # the oldest retransmits: now the most recent
    table.process(syn(11, T0 + 1.1, 2000))
    assert [flow.cport for flow in rec.ended] == [1025]


def test_syn_only_flows_go_before_flows_that_carry_data() -> None:
    table, rec = make_table(memcap=FLOW_COST + STREAM_COST + 3 * SYN_ONLY_COST)
    conn = Conn(table, cport=40000, t0=T0 - 10)  # older than every SYN below
    conn.handshake()
    conn.c(ACK | PSH, b"query")
    _syn_flood(table, 4)
    assert rec.ended and all(flow.cport != 40000 for flow in rec.ended)
    assert table.get(TCP, CLIENT, 40000, SERVER, 853) is not None


def test_flows_nearest_their_idle_end_go_first() -> None:
    table, rec = make_table(memcap=3 * UDP_FLOW_COST)
    for i, ts in enumerate((T0, T0 + 1, T0 + 2)):
        table.process(udp(i + 1, ts, CLIENT, 50000 + i, SERVER, 443, b"q"))
    table.process(udp(4, T0 + 2.5, CLIENT, 50000, SERVER, 443, b"again"))  # the oldest, busy
    table.process(udp(5, T0 + 3, CLIENT, 50003, SERVER, 443, b"q"))
    assert [flow.cport for flow in rec.ended] == [50001]
    assert rec.ended[0].ended_by == "evicted"
    assert table.caps() == {"flows_evicted": 1}


def test_bytes_buffered_out_of_order_count_against_the_memcap() -> None:
    table, rec = make_table(memcap=FLOW_COST + STREAM_COST + 5000)
    conn = Conn(table)
    conn.handshake()
    conn.c(ACK | PSH, b"z" * 4000, seq=1000 + 1 + 100)  # a hole before it: held back
    assert table.charged_bytes > FLOW_COST + STREAM_COST + 4000
    table.process(udp(50, conn.ts + 0.1, CLIENT, 50000, SERVER, 443, b"q"))
    assert [flow.cport for flow in rec.ended] == [40000]  # the only flow that could go
    assert rec.gaps  # its held bytes were delivered after a gap, never dropped silently
    assert table.streams.buffered_total == 0


def test_finish_steps_pause_between_batches_of_ended_flows() -> None:
    table, rec = make_table()
    _syn_flood(table, 5)
    seen = []
    for _ in table.finish_steps(step=2):
        seen.append(len(rec.ended))
    assert seen == [2, 4] and len(rec.ended) == 5


def test_shards_share_one_tables_memory() -> None:
    from dotaudit.capture.flow_shard import ShardFlowTable

    rec = Recorder()
    shard = ShardFlowTable(rec, rec.anomalies.append, shard=0, shards=4)  # type: ignore[arg-type]
    assert shard.memcap == flows.FLOW_MEMCAP // 4
