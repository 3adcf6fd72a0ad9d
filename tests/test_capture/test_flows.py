"""Flow table: orientation, TCP connection outcomes, ICMP errors, expiry by capture time."""

from __future__ import annotations

import pytest

from dotaudit.capture.flows import Flow, FlowTable, server_is_destination
from dotaudit.capture.packet import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    TCP,
    UDP,
    Anomaly,
    IcmpQuote,
    Packet,
    Tunnel,
    TunnelledPacket,
)
from dotaudit.model.events import OUTCOMES

CLIENT = bytes([10, 0, 0, 1])
SERVER = bytes([10, 0, 0, 2])
T0 = 1_000_000_000.0  # far from the wall clock: expiry must follow capture time only


class Recorder:
    """A FlowConsumer that keeps everything it is given."""

    def __init__(self) -> None:
        self.streams: dict[tuple[Flow, bool], bytearray] = {}
        self.gaps: list[tuple[Flow, bool, int, int]] = []
        self.datagrams: list[tuple[Flow, bool, bytes]] = []
        self.ended: list[Flow] = []
        self.anomalies: list[Anomaly] = []
        self.log: list[tuple[bool, bytes | int]] = []
        """Stream data (bytes) and gaps (int) in delivery order."""

    def on_stream_data(
        self, flow: Flow, from_client: bool, data: bytes, frame: int, ts: float
    ) -> None:
        self.streams.setdefault((flow, from_client), bytearray()).extend(data)
        self.log.append((from_client, data))

    def on_stream_gap(
        self, flow: Flow, from_client: bool, missing: int, frame: int, ts: float
    ) -> None:
        self.gaps.append((flow, from_client, missing, frame))
        self.log.append((from_client, missing))

    def on_datagram(self, flow: Flow, from_client: bool, pkt: Packet) -> None:
        self.datagrams.append((flow, from_client, pkt.payload))

    def on_flow_end(self, flow: Flow) -> None:
        assert flow not in self.ended, "on_flow_end called twice"
        self.ended.append(flow)

    def stream(self, flow: Flow, from_client: bool) -> bytes:
        return bytes(self.streams.get((flow, from_client), b""))

    def anomaly_names(self) -> list[str]:
        return [a.what for a in self.anomalies]


def make_table(**kwargs: float | int) -> tuple[FlowTable, Recorder]:
    rec = Recorder()
    return FlowTable(rec, rec.anomalies.append, **kwargs), rec  # type: ignore[arg-type]


class Conn:
    """Writes one TCP connection's packets with running sequence numbers, frames and times."""

    def __init__(
        self,
        table: FlowTable,
        *,
        cport: int = 40000,
        sport: int = 853,
        cisn: int = 1000,
        sisn: int = 70000,
        t0: float = T0,
        frame: list[int] | None = None,
    ) -> None:
        self.table = table
        self.cport = cport
        self.sport = sport
        self.cseq = cisn
        self.sseq = sisn
        self.ts = t0
        self.frame = frame if frame is not None else [0]

    def _send(
        self,
        from_client: bool,
        flags: int,
        payload: bytes,
        seq: int | None,
        ttl: int,
        dt: float,
        advance: bool,
    ) -> Packet:
        self.frame[0] += 1
        self.ts += dt
        own = self.cseq if from_client else self.sseq
        peer = self.sseq if from_client else self.cseq
        use = own if seq is None else seq
        src, sport, dst, dport = (
            (CLIENT, self.cport, SERVER, self.sport)
            if from_client
            else (SERVER, self.sport, CLIENT, self.cport)
        )
        pkt = Packet(
            self.frame[0], self.ts, 4, src, dst, TCP, ttl, 0, sport, dport, payload,
            flags, use & 0xFFFFFFFF, peer & 0xFFFFFFFF,
        )  # fmt: skip
        if advance:
            step = len(payload) + (1 if flags & (SYN | FIN) else 0)
            if from_client:
                self.cseq = (self.cseq + step) & 0xFFFFFFFF
            else:
                self.sseq = (self.sseq + step) & 0xFFFFFFFF
        self.table.process(pkt)
        return pkt

    def c(
        self,
        flags: int = ACK,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ttl: int = 64,
        dt: float = 0.01,
        advance: bool = True,
    ) -> Packet:
        return self._send(True, flags, payload, seq, ttl, dt, advance)

    def s(
        self,
        flags: int = ACK,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ttl: int = 57,
        dt: float = 0.01,
        advance: bool = True,
    ) -> Packet:
        return self._send(False, flags, payload, seq, ttl, dt, advance)

    def handshake(self) -> None:
        self.c(SYN)
        self.s(SYN | ACK)
        self.c(ACK)


def only_flow(rec: Recorder) -> Flow:
    assert len(rec.ended) == 1
    return rec.ended[0]


def udp(
    frame: int, ts: float, src: bytes, sport: int, dst: bytes, dport: int, data: bytes
) -> Packet:
    return Packet(frame, ts, 4, src, dst, UDP, 64, 0, sport, dport, data)


def icmp_error(frame: int, ts: float, kind: str, proto: int, sport: int, dport: int) -> Packet:
    quote = IcmpQuote(
        kind, 3, 3 if kind == "port-unreachable" else 13, proto, CLIENT, sport, SERVER, dport
    )
    return Packet(frame, ts, 4, SERVER, CLIENT, 1, 64, 0, 0, 0, b"", icmp=quote)


def test_handshake_data_both_directions_and_fin_close() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    conn.c(ACK | PSH, b"hello ")
    conn.c(ACK | PSH, b"server")
    conn.s(ACK | PSH, b"hi client")
    conn.c(FIN | ACK)
    conn.s(FIN | ACK)
    conn.c(ACK)
    assert table.active_flows == 1
    table.finish()
    flow = only_flow(rec)
    assert (flow.client, flow.cport, flow.server, flow.sport) == (CLIENT, 40000, SERVER, 853)
    assert rec.stream(flow, True) == b"hello server"
    assert rec.stream(flow, False) == b"hi client"
    assert flow.handshake_seen and not flow.mid_stream
    assert (flow.packets_fwd, flow.packets_rev) == (6, 3)
    assert (flow.bytes_fwd, flow.bytes_rev) == (12, 9)
    assert (flow.first_frame, flow.last_frame) == (1, 9)
    assert flow.start == pytest.approx(T0 + 0.01) and flow.end == pytest.approx(T0 + 0.09)
    assert flow.outcome == "closed_fin" and flow.closed_by == "client"
    assert flow.server_ttl == 57 and flow.rst_ttl is None
    assert flow.outcome in OUTCOMES
    assert table.active_flows == 0


@pytest.mark.parametrize(
    ("sport", "dport", "dst_is_server"),
    [
        (40000, 853, True),
        (853, 40000, False),
        (53, 853, False),  # both well known: 53 ranks first
        (80, 443, True),  # 443 ranks before 80
        (5353, 5353, True),  # same port: the first sender's destination
        (40000, 22, True),  # lower port below 1024
        (22, 40000, False),
        (40001, 40000, True),  # no rule applies: first sender's destination
        (40000, 40001, True),
    ],
)
def test_server_is_destination(sport: int, dport: int, dst_is_server: bool) -> None:
    assert server_is_destination(sport, dport) is dst_is_server


def test_mid_stream_oriented_by_well_known_port() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.s(ACK | PSH, b"from server")  # first packet seen comes from 853
    conn.c(ACK | PSH, b"from client")
    table.finish()
    flow = only_flow(rec)
    assert flow.sport == 853 and flow.server == SERVER and flow.cport == 40000
    assert flow.mid_stream and not flow.handshake_seen
    assert rec.stream(flow, False) == b"from server"
    assert rec.stream(flow, True) == b"from client"
    assert (flow.packets_fwd, flow.packets_rev) == (1, 1)
    assert flow.outcome == "established" and flow.ended_by == "capture_end"


def test_syn_retransmits_unanswered() -> None:
    table, rec = make_table()
    conn = Conn(table)
    for _ in range(3):
        conn.c(SYN, advance=False, dt=1.0)
    table.finish()
    flow = only_flow(rec)
    assert flow.outcome == "syn_unanswered"
    assert flow.syn_retransmits == 2
    assert flow.packets_fwd == 3 and flow.packets_rev == 0
    assert not flow.handshake_seen and flow.ended_by == "capture_end"


def test_syn_answered_by_rst_is_refused() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.c(SYN)
    conn.s(RST | ACK, seq=0, ttl=64)
    conn.c(ACK, dt=0.5)  # a stray packet inside the linger still belongs to the flow
    assert rec.ended == []
    conn.c(ACK, dt=3.0)  # past the linger: the closed flow ends, this one starts a new flow
    flow = rec.ended[0]
    assert flow.outcome == "refused" and flow.closed_by == "server"
    assert flow.rst_ttl == 64 and flow.server_ttl is None
    assert flow.ended_by == "close" and flow.packets_fwd == 2
    assert table.active_flows == 1


def test_syn_rejected_by_icmp_admin_prohibited() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.c(SYN)
    table.process(icmp_error(2, T0 + 0.02, "admin-prohibited", TCP, 40000, 853))
    table.process(icmp_error(3, T0 + 0.03, "port-unreachable", TCP, 40001, 853))  # unknown flow
    assert table.active_flows == 1
    table.finish()
    flow = only_flow(rec)
    assert flow.outcome == "icmp_rejected"
    assert flow.icmp == "admin-prohibited" and flow.icmp_frame == 2
    assert flow.packets_rev == 0


def test_icmp_after_server_answer_does_not_reject_tcp() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    table.process(icmp_error(9, conn.ts + 0.01, "host-unreachable", TCP, 40000, 853))
    table.finish()
    flow = only_flow(rec)
    assert flow.icmp == "host-unreachable"
    assert flow.outcome == "established"


def test_fin_close_ends_after_linger_in_capture_time() -> None:
    table, rec = make_table(close_linger=2.0)
    conn = Conn(table)
    conn.handshake()
    conn.c(FIN | ACK)
    conn.s(FIN | ACK)
    conn.c(ACK, dt=1.0)  # within the linger: same flow
    other = Conn(table, cport=40001, frame=conn.frame, t0=conn.ts)
    other.c(SYN, dt=0.5)  # 1.5 s after the close: still lingering
    assert rec.ended == []
    other.c(SYN, dt=1.0, advance=False)  # 2.5 s after the close
    flow = only_flow(rec)
    assert flow.cport == 40000
    assert flow.outcome == "closed_fin" and flow.ended_by == "close"
    assert flow.packets_fwd == 4 and flow.closed_by == "client"


def test_rst_after_data_closed_by_server_and_ttls() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.c(SYN)
    conn.s(SYN | ACK, ttl=57)
    conn.c(ACK)
    conn.c(ACK | PSH, b"query")
    conn.s(ACK | PSH, b"answer", ttl=57)
    conn.s(RST | ACK, ttl=250)  # a middlebox-injected reset arrives with another TTL
    table.finish()
    flow = only_flow(rec)
    assert flow.outcome == "closed_rst" and flow.closed_by == "server"
    assert flow.server_ttl == 57 and flow.rst_ttl == 250
    assert flow.ended_by == "close"
    assert rec.stream(flow, False) == b"answer"


def test_client_rst_is_closed_by_client_and_no_rst_ttl() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    conn.c(RST | ACK)
    table.finish()
    flow = only_flow(rec)
    assert flow.outcome == "closed_rst" and flow.closed_by == "client"
    assert flow.rst_ttl is None


def test_idle_expiry_by_capture_time() -> None:
    table, rec = make_table(tcp_idle=300.0)
    conn = Conn(table)
    conn.handshake()
    other = Conn(table, cport=41000, frame=conn.frame, t0=conn.ts)
    other.c(SYN, dt=299.0, advance=False)
    assert rec.ended == []  # capture time moved 299 s only
    other.c(SYN, dt=2.0, advance=False)
    flow = only_flow(rec)
    assert flow.cport == 40000
    assert flow.ended_by == "idle_timeout" and flow.outcome == "established"
    assert table.active_flows == 1


def test_activity_postpones_idle_expiry() -> None:
    table, rec = make_table(tcp_idle=10.0)
    conn = Conn(table)
    conn.handshake()
    for _ in range(5):
        conn.c(ACK | PSH, b"x", dt=8.0)
    assert rec.ended == []
    other = Conn(table, cport=41000, frame=conn.frame, t0=conn.ts + 11.0)
    other.c(SYN)
    assert [f.cport for f in rec.ended] == [40000]
    assert rec.ended[0].ended_by == "idle_timeout"


def test_udp_flow_and_icmp_port_unreachable() -> None:
    table, rec = make_table()
    table.process(udp(1, T0, CLIENT, 50000, SERVER, 53, b"query"))
    table.process(udp(2, T0 + 0.01, SERVER, 53, CLIENT, 50000, b"answer"))
    table.process(udp(3, T0 + 0.02, CLIENT, 50001, SERVER, 53, b"query2"))
    table.process(icmp_error(4, T0 + 0.03, "port-unreachable", UDP, 50001, 53))
    table.process(udp(5, T0 + 0.04, CLIENT, 50002, SERVER, 53, b""))  # empty: no datagram
    table.finish()
    answered, rejected, empty = rec.ended
    assert answered.outcome == "udp" and answered.icmp is None
    assert (answered.packets_fwd, answered.packets_rev) == (1, 1)
    assert (answered.bytes_fwd, answered.bytes_rev) == (5, 6)
    assert rejected.outcome == "icmp_rejected"
    assert rejected.icmp == "port-unreachable" and rejected.icmp_frame == 4
    assert empty.outcome == "udp" and empty.packets_fwd == 1
    assert [(d[0].cport, d[1], d[2]) for d in rec.datagrams] == [
        (50000, True, b"query"),
        (50000, False, b"answer"),
        (50001, True, b"query2"),
    ]


def test_udp_first_sender_is_client_without_known_port() -> None:
    table, rec = make_table()
    table.process(udp(1, T0, SERVER, 40001, CLIENT, 40000, b"a"))
    table.process(udp(2, T0 + 1, CLIENT, 40000, SERVER, 40001, b"b"))
    table.finish()
    flow = only_flow(rec)
    assert (flow.client, flow.cport) == (SERVER, 40001)
    assert flow.packets_fwd == 1 and flow.packets_rev == 1


def test_udp_idle_expiry() -> None:
    table, rec = make_table(udp_idle=60.0)
    table.process(udp(1, T0, CLIENT, 50000, SERVER, 443, b"q"))
    table.process(udp(2, T0 + 59, CLIENT, 50001, SERVER, 443, b"q"))
    assert rec.ended == []
    table.process(udp(3, T0 + 61.5, CLIENT, 50002, SERVER, 443, b"q"))
    assert [f.cport for f in rec.ended] == [50000]
    assert rec.ended[0].ended_by == "idle_timeout"


def test_udp_dns_transactions_expire_sooner() -> None:
    """Each UDP DNS query uses a fresh client port: a flow per transaction, kept only
    dns_udp_idle seconds, so the table tracks live state, not the query rate."""
    table, rec = make_table(udp_idle=60.0, dns_udp_idle=10.0)
    table.process(udp(1, T0, CLIENT, 50000, SERVER, 53, b"q"))
    table.process(udp(2, T0 + 1, CLIENT, 50001, SERVER, 5353, b"q"))
    table.process(udp(3, T0 + 9, CLIENT, 50002, SERVER, 443, b"q"))
    assert rec.ended == []
    table.process(udp(4, T0 + 10.5, CLIENT, 50003, SERVER, 443, b"q"))
    assert [f.cport for f in rec.ended] == [50000]
    table.process(udp(5, T0 + 11.6, CLIENT, 50004, SERVER, 443, b"q"))
    assert [f.cport for f in rec.ended] == [50000, 50001]
    assert table.active_flows == 3


def test_max_flows_evicts_oldest() -> None:
    table, rec = make_table(max_flows=3)
    for i in range(5):
        table.process(udp(i + 1, T0 + i, CLIENT, 50000 + i, SERVER, 53, b"q"))
    assert table.active_flows == 3
    assert [f.cport for f in rec.ended] == [50000, 50001]
    assert all(f.ended_by == "evicted" for f in rec.ended)
    assert rec.anomaly_names() == ["flow_table_full"]  # reported once, not per eviction
    assert table.caps() == {"flows_evicted": 2}
    table.finish()
    assert len(rec.ended) == 5


def test_new_syn_on_reused_tuple_after_close_is_a_new_flow() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    conn.c(ACK | PSH, b"first")
    conn.c(FIN | ACK)
    conn.s(FIN | ACK)
    conn.c(ACK)
    conn.cseq = 900_000  # the OS picked a new ISN for the reused port
    conn.c(SYN, dt=0.1)  # before the linger expired: still a new connection
    assert len(rec.ended) == 1
    conn.s(SYN | ACK)
    conn.c(ACK)
    conn.c(ACK | PSH, b"second")
    table.finish()
    first, second = rec.ended
    assert first.outcome == "closed_fin" and first.ended_by == "close"
    assert second.outcome == "established" and second.handshake_seen
    assert rec.stream(first, True) == b"first"
    assert rec.stream(second, True) == b"second"
    assert second.first_frame == 8 and second.packets_fwd == 3


def test_syn_retransmit_after_synack_stays_one_flow() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.c(SYN)
    conn.s(SYN | ACK)
    conn.c(SYN, seq=1000, advance=False)  # same ISN: a retransmission
    conn.c(ACK)
    table.finish()
    flow = only_flow(rec)
    assert flow.syn_retransmits == 1 and flow.handshake_seen


def test_timestamps_backwards_reported_once_per_flow() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.handshake()
    conn.c(ACK | PSH, b"a", dt=-5.0)
    conn.c(ACK | PSH, b"b", dt=-1.0)
    conn.c(ACK | PSH, b"c", dt=10.0)
    table.finish()
    flow = only_flow(rec)
    assert rec.anomaly_names() == ["ts_backwards"]
    assert rec.stream(flow, True) == b"abc"
    assert flow.end == pytest.approx(T0 + 0.03 - 6.0 + 10.0)


def test_ignore_payload_stops_delivery_but_counts() -> None:
    class Ignoring(Recorder):
        def on_stream_data(
            self, flow: Flow, from_client: bool, data: bytes, frame: int, ts: float
        ) -> None:
            super().on_stream_data(flow, from_client, data, frame, ts)
            flow.ignore_payload = True

    rec = Ignoring()
    table = FlowTable(rec, rec.anomalies.append)
    conn = Conn(table)
    conn.handshake()
    conn.c(ACK | PSH, b"one")
    conn.c(ACK | PSH, b"two")
    conn.s(ACK | PSH, b"three")
    table.finish()
    flow = only_flow(rec)
    assert rec.stream(flow, True) == b"one" and rec.stream(flow, False) == b""
    assert flow.bytes_fwd == 6 and flow.bytes_rev == 5


def test_syn_with_data_is_delivered_after_isn() -> None:
    table, rec = make_table()
    conn = Conn(table)
    conn.c(SYN, b"early")  # TCP Fast Open: data rides on the SYN
    conn.s(SYN | ACK)
    conn.c(ACK | PSH, b" data")
    table.finish()
    flow = only_flow(rec)
    assert rec.stream(flow, True) == b"early data"


def test_finish_ends_each_flow_once_in_first_seen_order() -> None:
    table, rec = make_table()
    frames = [0]
    for port in (40003, 40001, 40002):
        Conn(table, cport=port, frame=frames).c(SYN)
    table.finish()
    table.finish()
    assert [f.cport for f in rec.ended] == [40003, 40001, 40002]
    assert table.active_flows == 0


def test_flow_churn_keeps_expiry_schedule_bounded() -> None:
    """Thousands of short connections: the flow table and its deadline heap stay small."""
    table, rec = make_table(close_linger=1.0)
    frames = [0]
    for i in range(5000):
        conn = Conn(table, cport=20000 + i, frame=frames, t0=T0 + i * 0.5)
        conn.handshake()
        conn.s(RST | ACK)
        assert table.active_flows <= 5
        assert len(table._heap) <= 2 * table.active_flows + 1024 + 2
    assert len(rec.ended) >= 4995
    assert all(f.outcome == "closed_rst" and f.ended_by == "close" for f in rec.ended)
    assert not hasattr(rec.ended[0], "__dict__")  # slotted: no per-flow dict


# -- bypass: the consumer is done with a flow ------------------------------------------


class Bypassing(Recorder):
    """A consumer that is done with a flow at its first data, like the dispatcher with
    a payload it does not recognise; it also records the table's bypass calls."""

    def __init__(self) -> None:
        super().__init__()
        self.bypass: object = None
        self.calls: list[tuple[str, Flow]] = []

    def set_bypass(self, bypass: object) -> None:
        self.bypass = bypass

    def on_stream_data(
        self, flow: Flow, from_client: bool, data: bytes, frame: int, ts: float
    ) -> None:
        super().on_stream_data(flow, from_client, data, frame, ts)
        self.bypass(flow)  # type: ignore[operator]

    def bypassed(self, flow: Flow) -> None:
        self.calls.append(("bypassed", flow))

    def released(self, flow: Flow) -> None:
        self.calls.append(("released", flow))


def bypass_table(**kwargs: float | int) -> tuple[FlowTable, Bypassing]:
    rec = Bypassing()
    table = FlowTable(rec, rec.anomalies.append, bypass=True, **kwargs)  # type: ignore[arg-type]
    table.bypass_listener = rec
    return table, rec


def test_without_bypass_mode_the_consumer_is_never_offered_it() -> None:
    rec = Bypassing()
    FlowTable(rec, rec.anomalies.append)
    assert rec.bypass is None


def test_bypassed_flow_counts_only_control_segments() -> None:
    table, rec = bypass_table()
    conn = Conn(table, sport=8080)
    conn.handshake()
    conn.c(ACK | PSH, b"GET / HTTP/1.1\r\n\r\n")  # done with it here: bypassed after frame 4
    for _ in range(5):
        conn.s(ACK, b"x" * 1000)
        conn.c(ACK)
    conn.c(FIN | ACK)
    conn.s(FIN | ACK)
    conn.c(ACK)
    table.finish()
    flow = only_flow(rec)
    assert flow.bypassed and flow.bypassed_after == 4
    assert rec.stream(flow, False) == b""  # nothing delivered after the bypass
    assert (flow.packets_fwd, flow.packets_rev) == (3 + 1, 1 + 1)  # handshake, data, FINs
    assert flow.outcome == "closed_fin" and flow.closed_by == "client"
    assert flow.last_frame == 16 and flow.server_ttl == 57
    assert [what for what, _ in rec.calls] == ["bypassed", "released"]


def test_bypass_waits_for_the_server_ttl() -> None:
    table, _rec = bypass_table()
    table.process(udp(1, T0, CLIENT, 50000, SERVER, 9999, b"a"))
    flow = table.get(UDP, CLIENT, 50000, SERVER, 9999)
    assert flow is not None
    table.bypass(flow)
    assert not flow.bypassed  # no packet of the server read yet
    table.process(udp(2, T0 + 0.1, CLIENT, 50000, SERVER, 9999, b"b"))
    table.process(udp(3, T0 + 0.2, SERVER, 9999, CLIENT, 50000, b"c"))
    assert flow.bypassed and flow.bypassed_after == 3 and flow.server_ttl == 64
    table.process(udp(4, T0 + 0.3, SERVER, 9999, CLIENT, 50000, b"d"))
    assert flow.packets_rev == 1 and flow.packets_fwd == 2


def test_tunnel_flows_are_never_bypassed() -> None:
    table, _rec = bypass_table()
    for port in (4789, 6081, 2152):
        table.process(udp(1, T0, CLIENT, 50000, SERVER, port, b"a"))
        table.process(udp(2, T0, SERVER, port, CLIENT, 50000, b"b"))
        flow = table.get(UDP, CLIENT, 50000, SERVER, port)
        assert flow is not None
        table.bypass(flow)
        assert not flow.bypassed


def test_idle_looking_bypassed_flow_is_probed_then_kept_or_ended() -> None:
    """Idle only as far as the packets read show: the next packet is read (and counted);
    a flow that shows no packet for another idle period ends."""
    table, rec = bypass_table(udp_idle=60.0)
    table.process(udp(1, T0, CLIENT, 50000, SERVER, 9999, b"a"))
    table.process(udp(2, T0 + 1, SERVER, 9999, CLIENT, 50000, b"b"))
    flow = table.get(UDP, CLIENT, 50000, SERVER, 9999)
    assert flow is not None
    table.bypass(flow)
    table.process(udp(3, T0 + 30, SERVER, 9999, CLIENT, 50000, b"ignored"))
    assert flow.packets_rev == 1
    table.tick(T0 + 62)  # idle as far as read: probe
    assert flow._probe and not flow._ended
    assert ("released", flow) in rec.calls
    table.process(udp(4, T0 + 70, SERVER, 9999, CLIENT, 50000, b"alive"))
    assert not flow._probe and flow.packets_rev == 2 and flow.end == T0 + 70
    assert flow.last_frame == 4 and flow.bypassed
    table.tick(T0 + 131)
    assert flow._probe
    table.tick(T0 + 200)  # no packet for a whole idle period: it ends
    assert rec.ended == [flow] and flow.ended_by == "idle_timeout" and flow.end == T0 + 70


def test_tick_runs_the_expiry_sweep_like_a_read_packet() -> None:
    table, rec = make_table(udp_idle=5.0)
    table.process(udp(1, T0, CLIENT, 50000, SERVER, 9999, b"a"))
    table.tick(T0 + 4)
    assert rec.ended == []
    table.tick(T0 + 6)
    assert len(rec.ended) == 1


class _InTunnel:
    """Hands a :class:`Conn`'s packets to the table as if decoded from inside a tunnel."""

    def __init__(self, table: FlowTable) -> None:
        self.table = table
        self.tunnel = Tunnel(("vxlan", 42), "vxlan:vni=42")

    def process(self, pkt: Packet) -> None:
        self.table.tunnelled(TunnelledPacket(pkt, self.tunnel))


def test_flows_inside_a_tunnel_are_never_bypassed() -> None:
    """An engine that skips packets before they are read matches outer headers only: an
    inner 5-tuple in its filter would skip a plain flow that shares it."""
    table, rec = bypass_table()
    conn = Conn(_InTunnel(table), sport=8080)  # type: ignore[arg-type]
    conn.handshake()
    conn.c(ACK | PSH, b"GET / HTTP/1.1\r\n\r\n")  # the consumer is done with it here
    for _ in range(3):
        conn.s(ACK | PSH, b"x" * 100)
    table.finish()
    flow = only_flow(rec)
    assert flow.tunnel is not None
    assert not flow.bypassed and flow.bypassed_after is None
    assert rec.stream(flow, False) == b"x" * 300  # every segment still delivered
    assert rec.calls == []  # the engine's filter never hears of it


def test_finishing_leaves_no_ended_flow_in_the_schedule() -> None:
    """What the table held goes with the flows: a finished table keeps none of them alive
    through superseded schedule entries (they once held megabytes after a large capture)."""
    table, rec = make_table()
    frame = [0]
    for cport in range(40000, 40020):
        conn = Conn(table, cport=cport, frame=frame)
        conn.handshake()
        conn.c(ACK | PSH, b"x")
    table.finish()
    assert len(rec.ended) == 20
    assert table._heap == []
