"""The flow table's two ways of handing over datagrams must agree.

A consumer with ``on_udp_payload`` gets plain values (no Packet); one without it gets
``on_datagram`` Packets. Oracle: the Packet path, fed the same datagrams through
``udp_fast`` (timestamps going backwards included, which takes the Packet path in both).
"""

from __future__ import annotations

from dotaudit.capture.flows import Flow, FlowTable
from dotaudit.capture.packet import Anomaly, Packet

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])
T0 = 1_000_000_000.0

Seen = tuple[int, bool, bytes, int, float]


class _Base:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.ended: list[tuple[int, int, int, int, int, str, int | None]] = []
        self.ids: dict[int, int] = {}
        self.flows: list[Flow] = []
        """Every flow seen, kept alive: an ended flow's id() could otherwise be reused by
        a later one, which would then be numbered as the ended flow."""

    def _id(self, flow: Flow) -> int:
        if id(flow) not in self.ids:
            self.flows.append(flow)
        return self.ids.setdefault(id(flow), len(self.ids))

    def on_stream_data(self, flow: Flow, c: bool, data: bytes, frame: int, ts: float) -> None:
        raise AssertionError("no TCP here")

    def on_stream_gap(self, flow: Flow, c: bool, missing: int, frame: int, ts: float) -> None:
        raise AssertionError("no TCP here")

    def on_flow_end(self, flow: Flow) -> None:
        self.ended.append(
            (
                self._id(flow), flow.packets_fwd, flow.packets_rev, flow.bytes_fwd,
                flow.bytes_rev, flow.ended_by, flow.server_ttl,
            )
        )  # fmt: skip


class PacketConsumer(_Base):
    def on_datagram(self, flow: Flow, from_client: bool, pkt: Packet) -> None:
        self.seen.append((self._id(flow), from_client, pkt.payload, pkt.frame, pkt.ts))
        if pkt.payload == b"stop":
            flow.ignore_payload = True


class ValueConsumer(PacketConsumer):
    def on_udp_payload(
        self, flow: Flow, from_client: bool, payload: bytes, frame: int, ts: float
    ) -> None:
        self.seen.append((self._id(flow), from_client, payload, frame, ts))
        if payload == b"stop":
            flow.ignore_payload = True

    def on_datagram(self, flow: Flow, from_client: bool, pkt: Packet) -> None:
        raise AssertionError("a value consumer gets no Packets")


def _run(consumer: PacketConsumer) -> tuple[list[Seen], list[object], list[Anomaly]]:
    anomalies: list[Anomaly] = []
    table = FlowTable(consumer, anomalies.append)
    datagrams = [
        (A, 40000, B, 53, b"q1", 0.0),
        (B, 53, A, 40000, b"r1", 0.1),
        (A, 40001, B, 53, b"q2", 0.2),
        (A, 40001, B, 53, b"", 0.3),  # empty: counted, not delivered
        (A, 40001, B, 53, b"q2 again", 0.25),  # time goes backwards
        (A, 5000, B, 6000, b"stop", 0.4),
        (B, 6000, A, 5000, b"ignored", 0.5),
        (A, 40002, B, 53, b"late", 30.0),  # after the DNS flows' idle timeout
    ]
    buf_prefix = b"xx"
    for frame, (src, sport, dst, dport, payload, dt) in enumerate(datagrams, 1):
        buf = buf_prefix + payload + b"yy"
        table.udp_fast(
            frame, T0 + dt, 4, src, sport, dst, dport, 60 + frame, 0,
            buf, 2, 2 + len(payload), len(buf),
        )  # fmt: skip
    table.finish()
    return consumer.seen, list(consumer.ended), anomalies


def test_value_and_packet_consumers_see_the_same() -> None:
    by_packet = _run(PacketConsumer())
    by_value = _run(ValueConsumer())
    assert by_value == by_packet
    seen, ended, anomalies = by_value
    assert [s[2] for s in seen] == [b"q1", b"r1", b"q2", b"q2 again", b"stop", b"late"]
    assert [a.what for a in anomalies] == ["ts_backwards"]
    assert len(ended) == 4
