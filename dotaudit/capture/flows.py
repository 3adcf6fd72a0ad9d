"""Flow table: TCP/UDP flows keyed by 5-tuple, TCP connection state, expiry by capture time.

Each flow is stored under both directional keys ``(src, sport, dst, dport)`` so a packet
finds its flow with one dict lookup and no normalisation. Expiry is driven by packet
timestamps: a heap of per-flow deadlines is swept at most once per second of capture time,
and a flow's deadline is only re-checked when it comes due, so busy flows cost nothing.

Memory is bounded by bytes, not only by a flow count (in the spirit of Suricata's
``flow.memcap``): every flow is charged an estimate of what it holds (the flow, its keys
and schedule entry, each reassembled direction with its parser state, and the bytes
buffered out of order). Over ``memcap`` the table enters emergency mode and evicts, until
it is back under :data:`EMERGENCY_RECOVERY` of the cap: first flows that never got past
their client's SYN (oldest first), then the flows closest to their idle timeout. An
evicted flow ends like any other, with ``ended_by == "evicted"``; each emergency is an
anomaly (``flow_memcap``) and :meth:`FlowTable.caps` counts the flows evicted.

A flow that has shown only its client's SYN (and retransmissions of it) is kept as a
small :class:`SynOnly` record under its client-to-server key, with no reassembly state:
a SYN flood costs a few hundred bytes per half-open attempt. The first other packet of
the flow (SYN/ACK, RST, data, an ICMP error) turns it into a :class:`Flow` exactly as if
it had been one all along. Reassembly state is made only when a direction carries data.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import ClassVar, Protocol

from dotaudit.capture.packet import (
    ACK,
    FIN,
    RST,
    SYN,
    TCP,
    UDP,
    UDP_TUNNEL_PORTS,
    Anomaly,
    AnomalySink,
    Packet,
    Tunnel,
)
from dotaudit.capture.reassembly import SEQ_MASK, Reassembler, StreamConsumer, StreamContext

WELL_KNOWN_PORTS = (53, 853, 443, 80, 784, 8853, 5353, 5355)
"""Server ports, most telling first, used to orient flows whose start was not captured."""
_PORT_RANK = {port: rank for rank, port in enumerate(WELL_KNOWN_PORTS)}
_SWEEP_INTERVAL = 1.0
_NEVER = float("inf")
_FULL_REPORT_EVERY = 1000

FLOW_MEMCAP = 32 * 1024 * 1024
"""Bytes the flow table may hold (estimated as below) before emergency eviction."""
EMERGENCY_RECOVERY = 0.85
"""An emergency evicts until the table holds at most this fraction of its cap."""
SYN_ONLY_COST = 800
"""Bytes charged for a flow that has shown only its client's SYN (:class:`SynOnly`)."""
FLOW_COST = 1100
"""Bytes charged for a :class:`Flow`: the object, its two keys, addresses, schedule entry."""
STREAM_COST = 2000
"""Bytes charged for each direction that carries data: its reassembler and the
consumer's parser state for it (a TLS record reader, a DNS framer, the endpoint texts)."""
UDP_FLOW_COST = FLOW_COST + 300
"""A UDP flow: the flow and the consumer's state for its datagrams."""


_DNS_PORTS = frozenset({53, 5353, 5355})

UdpPayloadSink = Callable[["Flow", bool, bytes, int, float], None]
"""``(flow, from_client, payload, frame, ts)``: a datagram's payload as plain values."""
UdpTunnelSink = Callable[
    [int, float, int, bytes, int, bytes, int, int, int, bytes, int, int, int], None
]
"""A datagram to a UDP tunnel port, with ``udp_fast``'s arguments: the decoder's."""
FlowStartSink = Callable[[int, float, bytes, int, bytes, int, int], None]
"""``(frame, ts, src, sport, dst, dport, proto)`` of the packet that started a flow (a TCP
SYN, or the datagram that made a UDP flow), told while that frame is being decoded."""


class BypassListener(Protocol):
    """Told when flows start and stop being bypassed (see :meth:`FlowTable.bypass`): a
    capture engine that skips the packets of bypassed flows before they are read keeps
    its filter in step through these calls."""

    def bypassed(self, flow: Flow) -> None: ...

    def released(self, flow: Flow) -> None:
        """``flow``'s next packets must be read again (a keep-alive probe, or its end)."""


class FlowConsumer(StreamConsumer, Protocol):
    def on_datagram(self, flow: Flow, from_client: bool, pkt: Packet) -> None: ...

    """A datagram with a payload. A consumer may also offer ``on_udp_payload(flow,
    from_client, payload, frame, ts)``: the table then calls that instead, sparing a
    :class:`Packet` per datagram (see :data:`UdpPayloadSink`)."""

    def on_flow_end(self, flow: Flow) -> None: ...


def server_is_destination(sport: int, dport: int) -> bool:
    """Orientation without a SYN: is the destination of this packet the server?"""
    rank_src = _PORT_RANK.get(sport)
    rank_dst = _PORT_RANK.get(dport)
    if rank_dst is not None and (rank_src is None or rank_dst < rank_src):
        return True
    if rank_src is not None and (rank_dst is None or rank_src < rank_dst):
        return False
    if sport != dport and min(sport, dport) < 1024:
        return dport < sport
    return True


class Flow:
    __slots__ = (
        "_bypass_wanted",
        "_close",
        "_closed_at",
        "_due",
        "_ended",
        "_fin",
        "_fin_by",
        "_icmp_early",
        "_isn",
        "_probe",
        "_refused",
        "_rst_by",
        "_server_isn",
        "_settled",
        "_synack",
        "_syns",
        "_ts_back",
        "app",
        "bypassed",
        "bypassed_after",
        "bytes_fwd",
        "bytes_rev",
        "c2s",
        "client",
        "closed_by",
        "cport",
        "end",
        "ended_by",
        "first_frame",
        "handshake_seen",
        "icmp",
        "icmp_frame",
        "ignore_payload",
        "last_frame",
        "mid_stream",
        "outcome",
        "packets_fwd",
        "packets_rev",
        "proto",
        "rst_ttl",
        "s2c",
        "server",
        "server_ttl",
        "sport",
        "start",
        "syn_retransmits",
        "tunnel",
    )

    def __init__(
        self,
        proto: int,
        client: bytes,
        cport: int,
        server: bytes,
        sport: int,
        frame: int,
        ts: float,
    ) -> None:
        self.proto = proto
        self.client = client
        self.cport = cport
        self.server = server
        self.sport = sport
        self.app: object | None = None
        """Opaque per-flow state owned by the consumer."""
        self.ignore_payload = False
        """Set by the consumer to stop reassembly and delivery; counters keep counting."""
        self.first_frame = frame
        self.last_frame = frame
        self.start = ts
        self.end = ts
        self.packets_fwd = 0
        self.packets_rev = 0
        self.bytes_fwd = 0
        self.bytes_rev = 0
        self.outcome = ""
        """One of ``dotaudit.model.events.OUTCOMES``; set when the flow ends."""
        self.syn_retransmits = 0
        self.handshake_seen = False
        self.mid_stream = False
        self.closed_by: str | None = None
        self.ended_by = ""
        self.icmp: str | None = None
        self.icmp_frame: int | None = None
        self.rst_ttl: int | None = None
        self.server_ttl: int | None = None
        self.c2s: Reassembler | None = None
        self.s2c: Reassembler | None = None
        self._syns = 0
        self._isn = -1
        """The client's initial sequence number, -1 until its SYN is seen."""
        self._server_isn = -1
        self._synack = False
        self._fin = 0
        """Bit 1: client sent FIN, bit 2: server sent FIN."""
        self._fin_by: str | None = None
        self._rst_by: str | None = None
        self._close = ""
        """"fin" or "rst": what closed the connection first."""
        self._closed_at: float | None = None
        self._refused = False
        self._icmp_early = False
        self._settled = False
        """No per-packet TCP state left to track: packets may take the fast path."""
        self._ts_back = False
        self._due = 0.0
        self._ended = False
        self.bypassed = False
        """The consumer has nothing more to learn from this flow: only its SYN, FIN and
        RST segments are read now (see :meth:`FlowTable.bypass`)."""
        self.bypassed_after: int | None = None
        """The last frame read in full before the flow was bypassed."""
        self._bypass_wanted = False
        """The consumer is done, but no packet of the server was read yet: the flow is
        bypassed once one is (its TTL is a fact of the connection record)."""
        self._probe = False
        """Bypassed and idle as far as the packets read show: the next packet is read
        (and counted) to learn whether the flow is still alive."""
        self.tunnel: Tunnel | None = None
        """The encapsulation of a flow seen inside one: it is keyed by its 5-tuple and the
        tunnel's identity, so the same inner 5-tuple in two tunnels makes two flows."""


class SynOnly:
    """A TCP flow that has shown nothing but its client's SYN and retransmissions of it.

    What a SYN flood leaves behind, so it holds only what the flow's end needs. It takes
    the place of a :class:`Flow` in the expiry schedule (``_due``, ``_ended``,
    ``first_frame``, ``end`` and the endpoints have the same meaning) and becomes one
    (:meth:`FlowTable._grown`) at the flow's first other packet or at its end.
    """

    __slots__ = (
        "_due",
        "_ended",
        "client",
        "cport",
        "end",
        "first_frame",
        "isn",
        "last_frame",
        "server",
        "sport",
        "start",
        "syns",
    )
    proto = TCP
    _closed_at = None
    tunnel = None

    def __init__(
        self, client: bytes, cport: int, server: bytes, sport: int, frame: int, ts: float,
        isn: int,
    ) -> None:  # fmt: skip
        self.client = client
        self.cport = cport
        self.server = server
        self.sport = sport
        self.first_frame = self.last_frame = frame
        self.start = self.end = ts
        self.isn = isn
        self.syns = 1
        self._due = 0.0
        self._ended = False


Scheduled = Flow | SynOnly
"""What the expiry schedule holds."""


class FlowTable:
    """Flows by 5-tuple: plain flows under ``(src, sport, dst, dport)``, tunnelled ones
    under ``(src, sport, dst, dport, tunnel key)``.

    Datagrams to a UDP tunnel port never make a flow here: ``udp_fast`` hands them to
    ``decapsulate`` (set by the decoder) and their inner packets come back through
    :meth:`tunnelled`. The check sits where a new flow would be made, so the datagrams of
    known flows, most of the traffic, pay nothing for it.
    """

    syn_only_records: ClassVar[bool] = True
    """Keep flows that showed only a client's SYN as :class:`SynOnly` records. False makes
    every flow a :class:`Flow` from its first packet: the same results at more memory
    (the reference the tests hold the records to)."""

    def __init__(
        self,
        consumer: FlowConsumer,
        sink: AnomalySink,
        *,
        tcp_idle: float = 300.0,
        udp_idle: float = 60.0,
        dns_udp_idle: float = 10.0,
        close_linger: float = 2.0,
        max_stream_buffer: int = 256 * 1024,
        max_total_buffer: int = 16 * 1024 * 1024,
        max_flows: int = 500_000,
        bypass: bool = False,
        memcap: int | None = None,
    ) -> None:
        self.consumer = consumer
        self.sink = sink
        self.tcp_idle = tcp_idle
        self.udp_idle = udp_idle
        # A UDP DNS "flow" is one transaction on a fresh client port: keeping each for the
        # generic 60 s would make memory grow with the query rate, not with real state.
        self.dns_udp_idle = dns_udp_idle
        self.close_linger = close_linger
        self.max_flows = max_flows
        self.memcap = FLOW_MEMCAP if memcap is None else memcap
        """Bytes (estimated, buffered stream bytes included) before emergency eviction."""
        self.streams = StreamContext(
            consumer, self._flow_anomaly, max_stream_buffer, max_total_buffer
        )
        # Plain flows under 4-tuples, tunnelled ones under 5-tuples ending in the tunnel key.
        self._tcp: dict[tuple[object, ...], Flow] = {}
        self._udp: dict[tuple[object, ...], Flow] = {}
        # SYN-only flows under their client-to-server 4-tuple, least recently seen first.
        self._syn_only: dict[tuple[bytes, int, bytes, int], SynOnly] = {}
        # Entries are (due, first_frame, counter, flow): flows due at the same moment end in
        # capture order, an order that a shard of the table (capture/flow_shard.py) reproduces.
        self._heap: list[tuple[float, int, int, Scheduled]] = []
        self._counter = 0
        self._active = 0
        self._charged = 0
        """Estimated bytes of every live flow (see FLOW_COST); buffered bytes come on top."""
        self._evicted = 0
        self._evicted_syn_only = 0
        self._table_full = 0
        self._emergencies = 0
        self._next_sweep = float("-inf")
        # Most datagrams are DNS, each its own short flow: a consumer that takes plain
        # values spares building a Packet for every one of them.
        self._on_udp_payload: UdpPayloadSink | None = getattr(consumer, "on_udp_payload", None)
        self.bypass_listener: BypassListener | None = None
        if bypass:
            # The consumer says when a flow has nothing more to tell; without this the
            # table reads every packet of every flow (the full path).
            offer = getattr(consumer, "set_bypass", None)
            if offer is not None:
                offer(self.bypass)
        self.decapsulate: UdpTunnelSink | None = None
        self.on_flow_start: FlowStartSink | None = None
        """Set by a decoder that reports the link-layer source of a flow's start."""

    @property
    def active_flows(self) -> int:
        return self._active

    @property
    def charged_bytes(self) -> int:
        """What the live flows are estimated to hold, out-of-order stream bytes included."""
        return self._charged + self.streams.buffered_total

    def caps(self) -> dict[str, int]:
        """What the table's caps cut, by name, where they bit: flows evicted before they
        ended (``flows_evicted``; of them ``flows_evicted_syn_only`` never got past a SYN)."""
        counts = {
            "flows_evicted": self._evicted,
            "flows_evicted_syn_only": self._evicted_syn_only,
        }
        return {name: count for name, count in counts.items() if count}

    def get(
        self, proto: int, src: bytes, sport: int, dst: bytes, dport: int,
        tunnel: Tunnel | None = None,
    ) -> Flow | None:  # fmt: skip
        """The live flow for a 5-tuple (inside ``tunnel``, if given), in either direction.

        A SYN-only flow is made a :class:`Flow` to be returned."""
        table = self._tcp if proto == TCP else self._udp if proto == UDP else {}
        if tunnel is not None:
            return table.get((src, sport, dst, dport, tunnel.key))
        flow = table.get((src, sport, dst, dport))
        if flow is None and proto == TCP and self._syn_only:
            flow = self._grown(src, sport, dst, dport)
        return flow

    def process(self, pkt: Packet) -> None:
        ts = pkt.ts
        if ts >= self._next_sweep:
            self._sweep(ts)
        if pkt.icmp is not None:
            self._icmp(pkt)
            return
        proto = pkt.proto
        if proto == TCP:
            payload = pkt.payload
            if not self.tcp_fast(
                pkt.frame, ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.seq, pkt.ack,
                pkt.flags, pkt.ttl, payload, 0, len(payload),
            ):  # fmt: skip
                flow = self._tcp.get((pkt.src, pkt.sport, pkt.dst, pkt.dport))
                self._tcp_slow(pkt, flow, pkt.flags, ts)
        elif proto == UDP:
            self._udp_packet(pkt, ts)

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
        """Take a TCP segment of an established flow from plain values (no :class:`Packet`).

        The payload is ``data[start:end]``; it is sliced only when a consumer reads it.
        Returns False, having changed nothing, when the segment needs the full state
        machine (SYN/FIN/RST, unknown or unsettled flow, time going backwards): the caller
        then hands a Packet to :meth:`process`. Mirrors ``_tcp_slow`` + ``_tcp_data``.
        """
        if ts >= self._next_sweep:
            self._sweep(ts)
        flow = self._tcp.get((src, sport, dst, dport))
        if flow is None or flags & 0x07 or not flow._settled or ts < flow.end:  # SYN|FIN|RST
            return False
        if flow.bypassed:
            if flow._probe:
                self._probe_seen(
                    flow, sport == flow.cport and src == flow.client, frame, ts, end - start
                )
            return True
        flow.last_frame = frame
        flow.end = ts
        n = end - start
        from_client = sport == flow.cport and src == flow.client
        if from_client:
            flow.packets_fwd += 1
            flow.bytes_fwd += n
            peer = flow.s2c
        else:
            flow.packets_rev += 1
            flow.bytes_rev += n
            if flow.server_ttl is None:
                flow.server_ttl = ttl
                if flow._bypass_wanted:
                    self.bypass(flow)
            peer = flow.c2s
        if n and not flow.ignore_payload:
            stream = flow.c2s if from_client else flow.s2c
            if stream is None:
                stream = self._stream(flow, from_client)
            if seq == stream.nxt and not stream.starts:
                # In order: Reassembler.segment's fast path, inline (the bulk-packet path).
                stream.nxt = (seq + n) & 0xFFFFFFFF
                stream.pos += n
                skip = stream.skip
                if skip >= n:
                    # Bytes the consumer does not need (bulk TLS record bodies).
                    stream.skip = skip - n
                else:
                    stream.skip = 0
                    stream.skip = (
                        stream.consumer.on_stream_data(
                            flow, from_client, data[start + skip : end], frame, ts
                        )
                        or 0
                    )
            else:
                stream.segment(seq, data[start:end], frame, ts)
        # Only a stream holding out-of-order bytes cares about the peer's ACK (gap finding).
        if flags & 0x10 and peer is not None and peer.starts:
            peer.peer_ack(ack, frame, ts)
        return True

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
        """Take a complete UDP datagram from plain values; a :class:`Packet` is made only
        for a consumer without ``on_udp_payload`` that still reads this flow's datagrams."""
        if ts >= self._next_sweep:
            self._sweep(ts)
        flow = self._udp.get((src, sport, dst, dport))
        on_payload = self._on_udp_payload
        if flow is None:
            # Two calls written out rather than an idle time in a variable: one of these
            # per DNS transaction.
            if sport in _DNS_PORTS or dport in _DNS_PORTS:
                if on_payload is not None:
                    flow = self._new_flow(
                        UDP, src, sport, dst, dport, frame, ts,
                        server_is_destination(sport, dport), self.dns_udp_idle,
                    )  # fmt: skip
            elif dport in UDP_TUNNEL_PORTS and self.decapsulate is not None:
                self.decapsulate(
                    frame, ts, version, src, sport, dst, dport, ttl, ident, data, start, end,
                    wire_len,
                )  # fmt: skip
                return
            elif on_payload is not None:
                flow = self._new_flow(
                    UDP, src, sport, dst, dport, frame, ts, server_is_destination(sport, dport),
                    self.udp_idle,
                )  # fmt: skip
        elif flow.bypassed:
            if flow._probe:
                self._probe_seen(
                    flow, sport == flow.cport and src == flow.client, frame, ts, end - start
                )
            return
        elif ts < flow.end or (on_payload is None and not flow.ignore_payload):
            flow = None
        if flow is None:
            pkt = Packet(
                frame, ts, version, src, dst, UDP, ttl, ident, sport, dport,
                data[start:end], 0, 0, 0, False, None, wire_len,
            )  # fmt: skip
            self._udp_packet(pkt, ts)
            return
        flow.last_frame = frame
        flow.end = ts
        n = end - start
        if sport == flow.cport and src == flow.client:
            from_client = True
            flow.packets_fwd += 1
            flow.bytes_fwd += n
        else:
            from_client = False
            flow.packets_rev += 1
            flow.bytes_rev += n
            if flow.server_ttl is None:
                flow.server_ttl = ttl
                if flow._bypass_wanted:
                    self.bypass(flow)
        if n and not flow.ignore_payload and on_payload is not None:
            on_payload(flow, from_client, data[start:end], frame, ts)

    def tunnelled(self, pkt: Packet) -> None:
        """A packet decoded from inside an encapsulation (``pkt.tunnel`` is set): the same
        life cycle as :meth:`process`, under keys that include the tunnel's identity."""
        tunnel = pkt.tunnel
        if tunnel is None:
            self.process(pkt)
            return
        ts = pkt.ts
        if ts >= self._next_sweep:
            self._sweep(ts)
        tkey = tunnel.key
        quote = pkt.icmp
        if quote is not None:
            self._icmp(pkt, (quote.src, quote.sport, quote.dst, quote.dport, tkey))
        elif pkt.proto == TCP:
            flow = self._tcp.get((pkt.src, pkt.sport, pkt.dst, pkt.dport, tkey))
            self._tcp_slow(pkt, flow, pkt.flags, ts)
        elif pkt.proto == UDP:
            key = (pkt.src, pkt.sport, pkt.dst, pkt.dport, tkey)
            flow = self._udp.get(key)
            if flow is None:
                flow = self._new_tunnelled_flow(
                    tunnel, UDP, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.frame, ts,
                    server_is_destination(pkt.sport, pkt.dport),
                    self._udp_idle_for(pkt.sport, pkt.dport),
                )  # fmt: skip
            self._udp_datagram(flow, pkt, ts)

    def finish(self) -> None:
        """End every remaining flow (capture end), oldest first."""
        for _ in self.finish_steps():
            pass

    def finish_steps(self, step: int = 1000) -> Iterator[None]:
        """:meth:`finish`, pausing after every ``step`` flows ended, so that a caller can
        pass on what their ends produced: a full table ends many flows at once."""
        live: dict[int, Scheduled] = {id(f): f for f in self._tcp.values()}
        live.update((id(f), f) for f in self._udp.values())
        live.update((id(f), f) for f in self._syn_only.values())
        for count, flow in enumerate(sorted(live.values(), key=lambda f: f.first_frame), 1):
            closed = flow._closed_at is not None
            self._end(flow, "close" if closed else "capture_end")
            if count % step == 0:
                yield
        # Every flow has ended: the schedule's entries would only keep them in memory.
        self._heap.clear()

    # --- TCP -----------------------------------------------------------------------

    def _tcp_slow(self, pkt: Packet, flow: Flow | None, flags: int, ts: float) -> None:
        if flow is not None and flow.bypassed and not flags & (SYN | FIN | RST):
            if flow._probe:
                from_client = pkt.sport == flow.cport and pkt.src == flow.client
                self._probe_seen(flow, from_client, pkt.frame, ts, len(pkt.payload))
            return
        syn_only = flags & (SYN | ACK) == SYN
        if flow is not None and syn_only and _syn_starts_new_flow(flow, pkt.seq):
            self._end(flow, "close" if flow._close or flow._fin else "idle_timeout")
            flow = None
        if flow is None:
            if pkt.tunnel is None and self.syn_only_records:
                # A bare SYN (no FIN, RST or data) starts or repeats a SYN-only flow; any
                # other packet makes the SYN-only flow it belongs to a Flow.
                bare_syn = flags & (SYN | ACK | FIN | RST) == SYN and not pkt.payload
                if self._syn_only:
                    key = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
                    early = self._syn_only.get(key)
                    if early is not None and bare_syn and ts >= early.end:
                        early.syns += 1
                        early.last_frame = pkt.frame
                        early.end = ts
                        del self._syn_only[key]  # to the end: least recently seen first
                        self._syn_only[key] = early
                        return
                    flow = self._grown(pkt.src, pkt.sport, pkt.dst, pkt.dport)
                if flow is None and bare_syn:
                    self._new_syn_only(pkt, ts)
                    return
            if flow is None:
                flow = self._new_tcp_flow(pkt, flags, ts)
        from_client = pkt.sport == flow.cport and pkt.src == flow.client
        side = "client" if from_client else "server"
        seq = pkt.seq
        if from_client:
            if syn_only:
                flow._syns += 1
                if flow._syns == 1:
                    flow._isn = seq
                    flow.mid_stream = False
                    if flow.c2s is not None:  # else made with this start when data comes
                        flow.c2s.start(seq + 1)
                else:
                    flow.syn_retransmits = flow._syns - 1
            elif flow._synack and flags & ACK:
                flow.handshake_seen = True
        else:
            if flags & (SYN | ACK) == SYN | ACK and not flow._synack:
                flow._synack = True
                flow.mid_stream = False
                flow._server_isn = seq
                if flow.s2c is not None:
                    flow.s2c.start(seq + 1)
            if flags & RST:
                if flow.rst_ttl is None:
                    flow.rst_ttl = pkt.ttl
                if flow._syns and not flow._synack and not flow.packets_rev and not flow._close:
                    flow._refused = True
            elif flow.server_ttl is None:
                flow.server_ttl = pkt.ttl
        if pkt.payload and flow._synack:
            flow.handshake_seen = True
        if flags & FIN:
            bit = 1 if from_client else 2
            if not flow._fin & bit:
                flow._fin |= bit
                if flow._fin_by is None:
                    flow._fin_by = side
                if flow._fin == 3 and not flow._close:
                    flow._close = "fin"
                    self._closing(flow, ts)
        if flags & RST and not flow._close:
            flow._close = "rst"
            flow._rst_by = side
            self._closing(flow, ts)
        flow._settled = not flow._synack or flow.handshake_seen
        self._tcp_data(flow, from_client, pkt, flags, ts)
        if flow._bypass_wanted and flow.server_ttl is not None:
            self.bypass(flow)

    def _tcp_data(self, flow: Flow, from_client: bool, pkt: Packet, flags: int, ts: float) -> None:
        frame = flow.last_frame = pkt.frame
        if ts >= flow.end:
            flow.end = ts
        else:
            self._ts_backwards(flow, pkt)
        payload = pkt.payload
        if from_client:
            flow.packets_fwd += 1
            flow.bytes_fwd += len(payload)
        else:
            flow.packets_rev += 1
            flow.bytes_rev += len(payload)
        if flow.ignore_payload:
            return
        if payload and not flags & RST:  # RST payload is diagnostic text, not stream data
            seq = pkt.seq + 1 if flags & SYN else pkt.seq
            self._stream(flow, from_client).segment(seq, payload, frame, ts)
        peer = flow.s2c if from_client else flow.c2s
        if peer is not None and peer.starts and flags & ACK:
            peer.peer_ack(pkt.ack, frame, ts)

    def _stream(self, flow: Flow, from_client: bool) -> Reassembler:
        """The reassembler of one direction, made when it first carries data."""
        stream = flow.c2s if from_client else flow.s2c
        if stream is None:
            stream = Reassembler(self.streams, flow, from_client)
            if from_client:
                flow.c2s = stream
                isn = flow._isn
            else:
                flow.s2c = stream
                isn = flow._server_isn
            if isn >= 0:  # the SYN was seen: the data starts after it
                stream.nxt = (isn + 1) & SEQ_MASK
            self._charged += STREAM_COST
        return stream

    def _new_tcp_flow(self, pkt: Packet, flags: int, ts: float) -> Flow:
        if flags & SYN:
            to_server = not flags & ACK
            mid_stream = False
            started = self.on_flow_start
            if started is not None and to_server and pkt.tunnel is None:
                started(pkt.frame, ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, TCP)
        else:
            to_server = server_is_destination(pkt.sport, pkt.dport)
            mid_stream = True
        tunnel = pkt.tunnel
        if tunnel is None:
            flow = self._new_flow(
                TCP, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.frame, ts, to_server,
                self.tcp_idle,
            )  # fmt: skip
        else:
            flow = self._new_tunnelled_flow(
                tunnel, TCP, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.frame, ts, to_server,
                self.tcp_idle,
            )  # fmt: skip
        flow.mid_stream = mid_stream
        return flow

    def _closing(self, flow: Flow, ts: float) -> None:
        flow._closed_at = ts
        due = ts + self.close_linger
        if due < flow._due:
            self._schedule(flow, due)

    # --- UDP and ICMP ----------------------------------------------------------------

    def _udp_packet(self, pkt: Packet, ts: float) -> None:
        flow = self._udp.get((pkt.src, pkt.sport, pkt.dst, pkt.dport))
        if flow is not None and flow.bypassed:
            if flow._probe:
                from_client = pkt.sport == flow.cport and pkt.src == flow.client
                self._probe_seen(flow, from_client, pkt.frame, ts, len(pkt.payload))
            return
        if flow is None:
            to_server = server_is_destination(pkt.sport, pkt.dport)
            flow = self._new_flow(
                UDP, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.frame, ts, to_server,
                self._udp_idle_for(pkt.sport, pkt.dport),
            )  # fmt: skip
        self._udp_datagram(flow, pkt, ts)

    def _udp_datagram(self, flow: Flow, pkt: Packet, ts: float) -> None:
        flow.last_frame = pkt.frame
        if ts >= flow.end:
            flow.end = ts
        else:
            self._ts_backwards(flow, pkt)
        from_client = pkt.sport == flow.cport and pkt.src == flow.client
        n = len(pkt.payload)
        if from_client:
            flow.packets_fwd += 1
            flow.bytes_fwd += n
        else:
            flow.packets_rev += 1
            flow.bytes_rev += n
            if flow.server_ttl is None:
                flow.server_ttl = pkt.ttl
                if flow._bypass_wanted:
                    self.bypass(flow)
        if n and not flow.ignore_payload:
            on_payload = self._on_udp_payload
            if on_payload is not None:
                on_payload(flow, from_client, pkt.payload, pkt.frame, ts)
            else:
                self.consumer.on_datagram(flow, from_client, pkt)

    def _icmp(self, pkt: Packet, key: tuple[object, ...] | None = None) -> None:
        """An ICMP error: marks the flow it quotes, found under ``key`` (by default the
        quote's plain 5-tuple)."""
        quote = pkt.icmp
        if quote is None:
            return
        table = self._tcp if quote.proto == TCP else self._udp if quote.proto == UDP else None
        if table is None:
            return
        flow = table.get(key or (quote.src, quote.sport, quote.dst, quote.dport))
        if flow is None and key is None and quote.proto == TCP and self._syn_only:
            flow = self._grown(quote.src, quote.sport, quote.dst, quote.dport)
        if flow is None or flow.icmp is not None:
            return
        flow.icmp = quote.kind
        flow.icmp_frame = pkt.frame
        if flow.proto == UDP or not flow.packets_rev:
            flow._icmp_early = True

    # --- lifecycle -------------------------------------------------------------------

    def _new_flow(
        self, proto: int, src: bytes, sport: int, dst: bytes, dport: int, frame: int,
        ts: float, to_server: bool, idle: float,
    ) -> Flow:  # fmt: skip
        """A flow for a packet ``src:sport -> dst:dport``, stored under both keys."""
        cost = FLOW_COST if proto == TCP else UDP_FLOW_COST
        if self._active >= self.max_flows:
            self._evict_one(frame, ts)
        if self._charged + cost + self.streams.buffered_total > self.memcap:
            self._emergency(frame, ts)
        if proto == UDP:
            started = self.on_flow_start
            if started is not None:
                started(frame, ts, src, sport, dst, dport, UDP)
        if not to_server:
            src, sport, dst, dport = dst, dport, src, sport
        flow = Flow(proto, src, sport, dst, dport, frame, ts)
        table = self._tcp if proto == TCP else self._udp
        table[(src, sport, dst, dport)] = flow
        table[(dst, dport, src, sport)] = flow
        self._active += 1
        self._charged += cost
        # _schedule, inline: one of these per flow, most of them one-transaction DNS flows.
        due = flow._due = ts + idle
        self._counter += 1
        heapq.heappush(self._heap, (due, frame, self._counter, flow))
        return flow

    def _new_tunnelled_flow(
        self, tunnel: Tunnel, proto: int, src: bytes, sport: int, dst: bytes, dport: int,
        frame: int, ts: float, to_server: bool, idle: float,
    ) -> Flow:  # fmt: skip
        """:meth:`_new_flow` for a packet inside ``tunnel``: keys end in its identity."""
        cost = FLOW_COST if proto == TCP else UDP_FLOW_COST
        if self._active >= self.max_flows:
            self._evict_one(frame, ts)
        if self._charged + cost + self.streams.buffered_total > self.memcap:
            self._emergency(frame, ts)
        if not to_server:
            src, sport, dst, dport = dst, dport, src, sport
        flow = Flow(proto, src, sport, dst, dport, frame, ts)
        flow.tunnel = tunnel
        table = self._tcp if proto == TCP else self._udp
        table[(src, sport, dst, dport, tunnel.key)] = flow
        table[(dst, dport, src, sport, tunnel.key)] = flow
        self._active += 1
        self._charged += cost
        self._schedule(flow, ts + idle)
        return flow

    def _new_syn_only(self, pkt: Packet, ts: float) -> None:
        """A plain flow's first packet is its client's bare SYN: a :class:`SynOnly`."""
        frame = pkt.frame
        if self._active >= self.max_flows:
            self._evict_one(frame, ts)
        if self._charged + SYN_ONLY_COST + self.streams.buffered_total > self.memcap:
            self._emergency(frame, ts)
        started = self.on_flow_start
        if started is not None:  # a SYN-only flow is a flow start like any other
            started(frame, ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, TCP)
        key = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        early = SynOnly(pkt.src, pkt.sport, pkt.dst, pkt.dport, frame, ts, pkt.seq)
        self._syn_only[key] = early
        self._active += 1
        self._charged += SYN_ONLY_COST
        self._schedule(early, ts + self.tcp_idle)

    def _grown(self, src: bytes, sport: int, dst: bytes, dport: int) -> Flow | None:
        """The SYN-only flow of a packet ``src:sport -> dst:dport`` (either direction) as a
        :class:`Flow` in the table, in its place in the schedule; None if there is none."""
        early = self._syn_only.pop((src, sport, dst, dport), None)
        if early is None:
            early = self._syn_only.pop((dst, dport, src, sport), None)
            if early is None:
                return None
        early._ended = True  # its schedule entry is now the flow's
        flow = _flow_of(early)
        table = self._tcp
        table[(flow.client, flow.cport, flow.server, flow.sport)] = flow
        table[(flow.server, flow.sport, flow.client, flow.cport)] = flow
        self._charged += FLOW_COST - SYN_ONLY_COST
        self._counter += 1
        heapq.heappush(self._heap, (flow._due, flow.first_frame, self._counter, flow))
        return flow

    def _udp_idle_for(self, port_a: int, port_b: int) -> float:
        if port_a in _DNS_PORTS or port_b in _DNS_PORTS:
            return self.dns_udp_idle
        return self.udp_idle

    def _schedule(self, flow: Scheduled, due: float) -> None:
        flow._due = due
        self._counter += 1
        heapq.heappush(self._heap, (due, flow.first_frame, self._counter, flow))

    def _idle_due(self, flow: Scheduled) -> float:
        """When the flow ends unless it sees another packet."""
        if flow.proto == TCP:
            due = flow.end + self.tcp_idle
        elif flow.cport in _DNS_PORTS or flow.sport in _DNS_PORTS:
            due = flow.end + self.dns_udp_idle
        else:
            due = flow.end + self.udp_idle
        closed_at = flow._closed_at
        if closed_at is not None:
            return min(due, closed_at + self.close_linger)
        return due

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + _SWEEP_INTERVAL
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, _, flow = heapq.heappop(heap)
            if flow._ended or due != flow._due:
                continue  # superseded by a later schedule entry
            closed_at = flow._closed_at
            if closed_at is not None and closed_at + self.close_linger <= now:
                self._end(flow, "close")
                continue
            if flow.proto == TCP:
                idle_due = flow.end + self.tcp_idle
            elif flow.cport in _DNS_PORTS or flow.sport in _DNS_PORTS:
                idle_due = flow.end + self.dns_udp_idle
            else:
                idle_due = flow.end + self.udp_idle
            if idle_due <= now:
                if type(flow) is Flow and flow.bypassed and not flow._probe and closed_at is None:
                    # Idle only as far as the packets read show: read its next packet.
                    flow._probe = True
                    if self.bypass_listener is not None:
                        self.bypass_listener.released(flow)
                    self._schedule(flow, now + (idle_due - flow.end))
                    continue
                self._end(flow, "idle_timeout")
            elif closed_at is None:
                self._schedule(flow, idle_due)
            else:
                self._schedule(flow, min(idle_due, closed_at + self.close_linger))
        self._compact_schedule()

    def _compact_schedule(self) -> None:
        """Drop the schedule's superseded entries once they outnumber the live ones: they
        hold ended flows, SYN-only ones included, in memory."""
        heap = self._heap
        if len(heap) > 2 * self._active + 1024:
            self._heap = [e for e in heap if not e[3]._ended and e[0] == e[3]._due]
            heapq.heapify(self._heap)

    def _evict_one(self, frame: int, ts: float) -> None:
        """Make room for one flow under ``max_flows``."""
        if self._evict_next():
            self._table_full += 1
            if self._table_full % _FULL_REPORT_EVERY == 1:
                detail = f"{self._table_full} flows evicted so far (max_flows={self.max_flows})"
                self.sink(Anomaly("flow_table_full", frame, ts, detail))

    def _emergency(self, frame: int, ts: float) -> None:
        """Over the memory cap: evict until the table is back under the recovery mark, SYN-only
        flows first (least recently seen first), then the flows closest to their idle end."""
        target = int(self.memcap * EMERGENCY_RECOVERY)
        evicted, syn_only = self._evicted, self._evicted_syn_only
        held = self.charged_bytes
        # SYN-only flows in batches, taken in one walk from the front of their table: one
        # at a time, each walk would step over every entry deleted before it.
        while self._syn_only and self.charged_bytes > target:
            wanted = (self.charged_bytes - target) // SYN_ONLY_COST + 1
            for early in list(itertools.islice(self._syn_only.values(), wanted)):
                self._evicted += 1
                self._evicted_syn_only += 1
                self._end(early, "evicted")
        while self.charged_bytes > target and self._evict_next():
            pass
        self._compact_schedule()
        self._emergencies += 1
        evicted = self._evicted - evicted
        syn_only = self._evicted_syn_only - syn_only
        mib = 1024 * 1024
        detail = (
            f"flow table over its memory cap ({held / mib:.1f} of {self.memcap / mib:.0f} MiB, "
            f"{self._active + evicted} flows): evicted {evicted} ({syn_only} SYN-only), "
            f"{self._evicted} so far in {self._emergencies} emergencies"
        )
        self.sink(Anomaly("flow_memcap", frame, ts, detail))

    def _evict_next(self) -> bool:
        """End the flow whose idle end is nearest before its time; False when there is none."""
        heap = self._heap
        while heap:
            due, _, _, flow = heap[0]
            if flow._ended or due != flow._due:
                heapq.heappop(heap)
                continue
            idle_due = self._idle_due(flow)
            if idle_due > due:  # it saw packets since it was scheduled: not that old
                heapq.heappop(heap)
                self._schedule(flow, idle_due)
                continue
            heapq.heappop(heap)
            self._evicted += 1
            if isinstance(flow, SynOnly):
                self._evicted_syn_only += 1
            self._end(flow, "evicted")
            return True
        return False

    def _end(self, flow: Scheduled, ended_by: str) -> None:
        if flow._ended:
            return
        flow._ended = True
        if isinstance(flow, SynOnly):
            self._end_syn_only(flow, ended_by)
            return
        if flow.bypassed and self.bypass_listener is not None:
            self.bypass_listener.released(flow)
        # One of these per flow, most of them one-transaction UDP DNS flows: no loops
        # over tuples built for the purpose, no call for a UDP flow's outcome.
        cost = FLOW_COST
        if flow.c2s is not None:
            flow.c2s.close(flow.last_frame, flow.end)
            flow.c2s = None
            cost += STREAM_COST
        if flow.s2c is not None:
            flow.s2c.close(flow.last_frame, flow.end)
            flow.s2c = None
            cost += STREAM_COST
        flow.ended_by = ended_by
        if flow.proto == UDP:
            flow.outcome = "icmp_rejected" if flow.icmp is not None else "udp"
            table = self._udp
            cost += UDP_FLOW_COST - FLOW_COST
        else:
            _settle_outcome(flow)
            table = self._tcp
        client, cport, server, sport = flow.client, flow.cport, flow.server, flow.sport
        key = (client, cport, server, sport)
        if table.get(key) is flow:
            del table[key]
        key = (server, sport, client, cport)
        if table.get(key) is flow:
            del table[key]
        tunnel = flow.tunnel
        if tunnel is not None:
            for key5 in (
                (client, cport, server, sport, tunnel.key),
                (server, sport, client, cport, tunnel.key),
            ):
                if table.get(key5) is flow:
                    del table[key5]
        self._active -= 1
        self._charged -= cost
        self.consumer.on_flow_end(flow)

    def _end_syn_only(self, early: SynOnly, ended_by: str) -> None:
        key = (early.client, early.cport, early.server, early.sport)
        if self._syn_only.get(key) is early:
            del self._syn_only[key]
        self._active -= 1
        self._charged -= SYN_ONLY_COST
        flow = _flow_of(early)  # what the consumer reads, never entered in the table
        flow._ended = True
        flow.ended_by = ended_by
        _settle_outcome(flow)
        self.consumer.on_flow_end(flow)

    # --- bypass ----------------------------------------------------------------------

    def bypass(self, flow: Flow) -> None:
        """The consumer has learnt all it reports about ``flow``: from now on only its
        SYN, FIN and RST segments are read (they still decide how it ends), plus one
        packet whenever it looks idle, to learn whether it is still alive. Its counters,
        ``end`` and ``last_frame`` then describe only what was read.

        Never bypassed: flows on UDP tunnel ports (they carry other flows, so tunnelled
        traffic is never hidden), and flows seen inside a tunnel (an engine that skips
        packets before they are read matches outer headers only; their inner 5-tuple in
        its filter would skip a plain flow that happens to share it)."""
        if flow.bypassed or flow._ended or flow.tunnel is not None:
            return
        if flow.proto == UDP and (flow.sport in UDP_TUNNEL_PORTS or flow.cport in UDP_TUNNEL_PORTS):
            return
        if flow.server_ttl is None:
            flow._bypass_wanted = True
            return
        flow._bypass_wanted = False
        flow.bypassed = True
        flow.bypassed_after = flow.last_frame
        flow.ignore_payload = True
        if self.bypass_listener is not None:
            self.bypass_listener.bypassed(flow)

    def _probe_seen(self, flow: Flow, from_client: bool, frame: int, ts: float, n: int) -> None:
        """A packet of a bypassed flow that was being probed: counted, and the flow is
        alive, so it is bypassed again."""
        flow._probe = False
        flow.last_frame = frame
        if ts >= flow.end:
            flow.end = ts
        if from_client:
            flow.packets_fwd += 1
            flow.bytes_fwd += n
        else:
            flow.packets_rev += 1
            flow.bytes_rev += n
        if self.bypass_listener is not None:
            self.bypass_listener.bypassed(flow)

    def tick(self, ts: float) -> None:
        """Time passes as a packet of a bypassed flow that was never read would tell it:
        the same expiry sweep runs as if the packet had been read (and ignored)."""
        if ts >= self._next_sweep:
            self._sweep(ts)

    # --- anomalies -------------------------------------------------------------------

    def _ts_backwards(self, flow: Flow, pkt: Packet) -> None:
        if flow._ts_back:
            return
        flow._ts_back = True
        detail = f"{flow.end - pkt.ts:.6f}s before an earlier packet of this flow"
        self._flow_anomaly(flow, "ts_backwards", pkt.frame, pkt.ts, detail)

    def _flow_anomaly(self, flow: Flow, what: str, frame: int, ts: float, detail: str) -> None:
        tunnel = flow.tunnel
        self.sink(
            Anomaly(
                what,
                frame,
                ts,
                detail,
                flow.client,
                flow.cport,
                flow.server,
                flow.sport,
                flow.proto,
                None if tunnel is None else tunnel.text,
            )
        )


def _flow_of(early: SynOnly) -> Flow:
    """The :class:`Flow` a SYN-only flow stands for: as if it had been one from its SYN."""
    flow = Flow(TCP, early.client, early.cport, early.server, early.sport, early.first_frame,
                early.start)  # fmt: skip
    flow.last_frame = early.last_frame
    flow.end = early.end
    flow.packets_fwd = flow._syns = early.syns
    flow.syn_retransmits = early.syns - 1
    flow._isn = early.isn
    flow._settled = True
    flow._due = early._due
    return flow


def _syn_starts_new_flow(flow: Flow, isn: int) -> bool:
    """A bare SYN on a known 5-tuple: retransmission, or a new connection reusing it?"""
    if flow._closed_at is not None:
        return True
    if flow._isn == isn:
        return False
    return bool(flow._fin or flow._close or flow.handshake_seen or flow.mid_stream)


def _settle_outcome(flow: Flow) -> None:
    if flow.proto == UDP:
        flow.outcome = "icmp_rejected" if flow.icmp is not None else "udp"
        return
    if flow._icmp_early:
        flow.outcome = "icmp_rejected"
    elif flow._refused:
        flow.outcome = "refused"
        flow.closed_by = "server"
    elif flow._close == "rst":
        flow.outcome = "closed_rst"
        flow.closed_by = flow._rst_by
    elif flow._fin:
        flow.outcome = "closed_fin"
        flow.closed_by = flow._fin_by
    elif flow._syns and not flow.packets_rev:
        flow.outcome = "syn_unanswered"
    else:
        flow.outcome = "established"
