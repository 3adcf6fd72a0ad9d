"""Per-direction TCP reassembly: in-order delivery, a bounded out-of-order buffer, gaps.

One :class:`Reassembler` per TCP direction. Sequence numbers are 32-bit and wrap, so
every comparison goes through :func:`seq_diff`; buffered segments are keyed by an
unwrapped stream offset (``pos``) so ordering survives the wrap. Bytes the capture never
saw are reported as a gap (``on_stream_gap``) and are never invented.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dotaudit.capture.flows import Flow

SEQ_MASK = 0xFFFFFFFF
_HALF = 1 << 31
MAX_AHEAD = 1 << 30
"""A segment further ahead than this is beyond any real TCP window: dropped, never buffered."""
SEGMENT_COST = 64
"""Bookkeeping charged per buffered segment, so floods of tiny segments still hit the caps."""

AnomalyReport = Callable[["Flow", str, int, float, str], None]


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in 32-bit sequence space (RFC 1982 style)."""
    return ((a - b + _HALF) & SEQ_MASK) - _HALF


class StreamConsumer(Protocol):
    def on_stream_data(
        self, flow: Flow, from_client: bool, data: bytes, frame: int, ts: float
    ) -> int | None:
        """Take in-order bytes; may return how many of the next in-order bytes it does not
        need (they are then dropped unseen, e.g. the rest of a TLS record body)."""
        ...

    def on_stream_gap(
        self, flow: Flow, from_client: bool, missing: int, frame: int, ts: float
    ) -> None: ...


class StreamContext:
    """What all streams of one flow table share: the consumer, caps and the total budget."""

    __slots__ = ("buffered_total", "consumer", "max_stream_buffer", "max_total_buffer", "report")

    def __init__(
        self,
        consumer: StreamConsumer,
        report: AnomalyReport,
        max_stream_buffer: int,
        max_total_buffer: int,
    ) -> None:
        self.consumer = consumer
        self.report = report
        self.max_stream_buffer = max_stream_buffer
        self.max_total_buffer = max_total_buffer
        self.buffered_total = 0
        """Charged cost (payload + SEGMENT_COST per segment) of every stream's buffer."""


class Reassembler:
    __slots__ = (
        "buffered",
        "consumer",
        "cost",
        "ctx",
        "flow",
        "from_client",
        "nxt",
        "pos",
        "reported",
        "segs",
        "skip",
        "starts",
    )

    def __init__(self, ctx: StreamContext, flow: Flow, from_client: bool) -> None:
        self.ctx = ctx
        self.consumer = ctx.consumer
        self.flow = flow
        self.from_client = from_client
        self.nxt = -1
        """Next expected 32-bit sequence number; -1 until the SYN or first data segment."""
        self.pos = 0
        """Unwrapped stream offset of ``nxt`` (bytes delivered plus bytes skipped)."""
        self.starts: list[int] = []
        """Sorted stream offsets of buffered, non-overlapping out-of-order segments."""
        self.segs: dict[int, bytes] = {}
        self.buffered = 0
        """Payload bytes held out of order."""
        self.cost = 0
        self.reported = False
        """An overlap mismatch was already reported (once per stream is enough)."""
        self.skip = 0
        """In-order bytes the consumer said it does not need: counted, never delivered."""

    def start(self, seq: int) -> None:
        """Expect data at ``seq`` (ISN + 1 after a SYN) unless the stream already started."""
        if self.nxt < 0:
            self.nxt = seq & SEQ_MASK

    def segment(self, seq: int, data: bytes, frame: int, ts: float) -> None:
        if seq == self.nxt and not self.starts:
            n = len(data)
            self.nxt = (seq + n) & SEQ_MASK
            self.pos += n
            skip = self.skip
            if skip:
                if n <= skip:
                    self.skip = skip - n
                    return
                self.skip = 0
                data = data[skip:]
            self.skip = (
                self.consumer.on_stream_data(self.flow, self.from_client, data, frame, ts) or 0
            )
            return
        self._segment_slow(seq, data, frame, ts)

    def _segment_slow(self, seq: int, data: bytes, frame: int, ts: float) -> None:
        if self.nxt < 0:
            self.nxt = seq & SEQ_MASK
        d = seq_diff(seq, self.nxt)
        if d < 0:
            if d + len(data) <= 0:
                return  # pure retransmission of delivered bytes
            data = data[-d:]
            d = 0
        elif d >= MAX_AHEAD:
            return
        if d == 0 and not self.starts:
            self._deliver(data, frame, ts)
            return
        self._insert(self.pos + d, data, frame, ts)
        self._drain(frame, ts)
        ctx = self.ctx
        while self.starts and (
            self.cost > ctx.max_stream_buffer or ctx.buffered_total > ctx.max_total_buffer
        ):
            self._skip_to(self.starts[0], frame, ts, "buffer cap reached")
            self._drain(frame, ts)

    def peer_ack(self, ack: int, frame: int, ts: float) -> None:
        """The peer acknowledged ``ack``: bytes before it that we lack were never captured."""
        if not self.starts:
            return
        d = seq_diff(ack, self.nxt)
        if d <= 0 or d >= MAX_AHEAD:
            return
        self._skip_to(min(self.pos + d, self.starts[0]), frame, ts, "acknowledged by peer")
        self._drain(frame, ts)

    def close(self, frame: int, ts: float) -> None:
        """Stream end: deliver what is buffered, reporting each hole as a gap."""
        while self.starts:
            if self.flow.ignore_payload:
                self._release()
                return
            self._skip_to(self.starts[0], frame, ts, "stream ended")
            self._drain(frame, ts)

    def _release(self) -> None:
        self.ctx.buffered_total -= self.cost
        self.cost = 0
        self.buffered = 0
        self.starts.clear()
        self.segs.clear()

    def _deliver(self, data: bytes, frame: int, ts: float) -> None:
        n = len(data)
        self.nxt = (self.nxt + n) & SEQ_MASK
        self.pos += n
        skip = self.skip
        if skip:
            if n <= skip:
                self.skip = skip - n
                return
            self.skip = 0
            data = data[skip:]
        self.skip = self.consumer.on_stream_data(self.flow, self.from_client, data, frame, ts) or 0

    def _skip_to(self, target: int, frame: int, ts: float, why: str) -> None:
        missing = target - self.pos
        if missing <= 0:
            return
        self.pos = target
        self.nxt = (self.nxt + missing) & SEQ_MASK
        self.skip = 0  # the consumer starts afresh after a gap
        self.consumer.on_stream_gap(self.flow, self.from_client, missing, frame, ts)
        side = "client->server" if self.from_client else "server->client"
        self.ctx.report(self.flow, "tcp_gap", frame, ts, f"{missing} bytes {side} missing: {why}")

    def _drain(self, frame: int, ts: float) -> None:
        starts = self.starts
        segs = self.segs
        while starts and starts[0] <= self.pos:
            if self.flow.ignore_payload:
                self._release()
                return
            start = starts.pop(0)
            data = segs.pop(start)
            n = len(data)
            self.buffered -= n
            self.cost -= n + SEGMENT_COST
            self.ctx.buffered_total -= n + SEGMENT_COST
            skip = self.pos - start
            if skip < n:
                self._deliver(data[skip:] if skip else data, frame, ts)

    def _insert(self, start: int, data: bytes, frame: int, ts: float) -> None:
        """Buffer ``data`` at ``start``; bytes already buffered win (first seen is kept)."""
        end = start + len(data)
        starts = self.starts
        segs = self.segs
        i = bisect_right(starts, start)
        if i and starts[i - 1] + len(segs[starts[i - 1]]) > start:
            i -= 1
        cur = start
        pieces: list[tuple[int, bytes]] = []
        mismatch = False
        while i < len(starts) and cur < end:
            a = starts[i]
            if a >= end:
                break
            seg = segs[a]
            b = a + len(seg)
            if a > cur:
                pieces.append((cur, data[cur - start : a - start]))
                cur = a
            hi = min(b, end)
            if hi > cur and data[cur - start : hi - start] != seg[cur - a : hi - a]:
                mismatch = True
            cur = max(cur, b)
            i += 1
        if cur < end:
            pieces.append((cur, data[cur - start :]))
        for piece_start, piece in pieces:
            insort(starts, piece_start)
            segs[piece_start] = piece
            n = len(piece)
            self.buffered += n
            self.cost += n + SEGMENT_COST
            self.ctx.buffered_total += n + SEGMENT_COST
        if mismatch and not self.reported:
            self.reported = True
            side = "client->server" if self.from_client else "server->client"
            self.ctx.report(
                self.flow,
                "tcp_overlap_mismatch",
                frame,
                ts,
                f"{side} retransmission differs from the bytes first seen; first seen kept",
            )
