"""A flow table that owns one shard of a capture's flows, for parallel passes.

Every shard process reads and decodes the whole capture, but only the flows whose ports
and addresses hash to its shard reach its dissectors. Each event a shard emits gets a sort key
(:meth:`ShardFlowTable.key`) that places it where a single, unsharded pass would have
emitted it, so merging the shards' outputs by key gives the serial output exactly:

- ``(frame, 0, due, first_frame)``: a flow that expired in the sweep run before ``frame``
  (every shard sweeps at the same packets, because every shard sees every timestamp; a
  sweep ends flows in ``(due, first_frame)`` order, see :class:`FlowTable`);
- ``(frame, 1, 0.0, 0)``: events of the packet ``frame`` itself (one shard owns it);
- ``(frame, 2, 0.0, 0)``: decoder anomalies raised after ``frame`` reached the flow table
  (shard 0 reports those alone);
- ``(END, 2 or 3, 0.0, first_frame)``: the end of the capture, flows in capture order.
"""

from __future__ import annotations

from dotaudit.capture.flows import Flow, FlowConsumer, FlowTable
from dotaudit.capture.packet import TCP, UDP, UDP_TUNNEL_PORTS, AnomalySink, Packet

EventKey = tuple[int, int, float, int]
END_FRAME = 1 << 62
"""Frame number of the end-of-capture phase: after every real frame."""

SWEEP, PACKET, DECODER, FINISH = 0, 1, 2, 3

_MIX = 0x9E3779B1  # Fibonacci hashing: spreads neighbouring ephemeral ports over shards


def shard_of(addr_a: bytes, port_a: int, addr_b: bytes, port_b: int, shards: int) -> int:
    """The shard of a flow, the same for both directions of it. The addresses' last bytes
    count too: mDNS and LLMNR flows have the same port at both ends."""
    mixed = port_a ^ port_b ^ (addr_a[-1] if addr_a else 0) ^ (addr_b[-1] if addr_b else 0)
    return (((mixed * _MIX) & 0xFFFFFFFF) >> 16) % shards


class ShardFlowTable(FlowTable):
    """A :class:`FlowTable` that ignores the flows of other shards but sweeps on every
    packet's timestamp, as the whole table would."""

    def __init__(
        self,
        consumer: FlowConsumer,
        sink: AnomalySink,
        *,
        shard: int,
        shards: int,
        bypass: bool = False,
    ) -> None:
        super().__init__(consumer, sink, bypass=bypass)
        self.shard = shard
        self.shards = shards
        self.at_frame = 0
        self.phase = PACKET
        self._due = 0.0
        self._first = 0

    def key(self) -> EventKey:
        """Where an event emitted now sorts among every shard's events."""
        return (self.at_frame, self.phase, self._due, self._first)

    # The three entry points of the decoder. Shard membership is computed inline: these
    # run once per packet in every shard.

    def tcp_fast(
        self,
        frame: int,
        ts: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        ttl: int,
        data: bytes,
        start: int,
        end: int,
    ) -> bool:
        self.at_frame = frame
        mixed = sport ^ dport ^ src[-1] ^ dst[-1]
        if (((mixed * _MIX) & 0xFFFFFFFF) >> 16) % self.shards != self.shard:
            if ts >= self._next_sweep:
                self._sweep(ts)
            return True
        return FlowTable.tcp_fast(
            self, frame, ts, src, sport, dst, dport, seq, ack, flags, ttl, data, start, end
        )

    def udp_fast(
        self,
        frame: int,
        ts: float,
        version: int,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        ttl: int,
        ident: int,
        data: bytes,
        start: int,
        end: int,
        wire_len: int,
    ) -> None:
        self.at_frame = frame
        mixed = sport ^ dport ^ src[-1] ^ dst[-1]
        if (((mixed * _MIX) & 0xFFFFFFFF) >> 16) % self.shards != self.shard:
            if ts >= self._next_sweep:
                self._sweep(ts)
            if dport in UDP_TUNNEL_PORTS and self.decapsulate is not None:
                # The inner flow decides the shard: every shard decapsulates (in its own
                # shard the table's new-flow check does the same, after the same sweep).
                self.decapsulate(
                    frame, ts, version, src, sport, dst, dport, ttl, ident, data, start, end,
                    wire_len,
                )  # fmt: skip
            return
        FlowTable.udp_fast(
            self, frame, ts, version, src, sport, dst, dport, ttl, ident, data, start, end,
            wire_len,
        )  # fmt: skip

    def process(self, pkt: Packet) -> None:
        self.at_frame = pkt.frame
        if self._owner(pkt) != self.shard:
            if pkt.ts >= self._next_sweep:
                self._sweep(pkt.ts)
            return
        FlowTable.process(self, pkt)

    def tunnelled(self, pkt: Packet) -> None:
        self.at_frame = pkt.frame
        if self._owner(pkt) != self.shard:
            if pkt.ts >= self._next_sweep:
                self._sweep(pkt.ts)
            return
        FlowTable.tunnelled(self, pkt)

    def _owner(self, pkt: Packet) -> int:
        quote = pkt.icmp
        if quote is not None:  # an ICMP error belongs with the flow it quotes
            return shard_of(quote.src, quote.sport, quote.dst, quote.dport, self.shards)
        if pkt.proto == TCP or pkt.proto == UDP:
            return shard_of(pkt.src, pkt.sport, pkt.dst, pkt.dport, self.shards)
        return 0

    def finish(self) -> None:
        self.at_frame = END_FRAME
        self.phase = FINISH
        FlowTable.finish(self)

    def _sweep(self, now: float) -> None:
        self.phase = SWEEP
        try:
            FlowTable._sweep(self, now)
        finally:
            self.phase = PACKET
            self._due = 0.0
            self._first = 0

    def _end(self, flow: Flow, ended_by: str) -> None:
        if self.phase == SWEEP:
            self._due = flow._due
            self._first = flow.first_frame
        elif self.phase == FINISH:
            self._first = flow.first_frame
        FlowTable._end(self, flow, ended_by)
