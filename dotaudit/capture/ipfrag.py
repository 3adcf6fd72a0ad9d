"""IPv4/IPv6 fragment reassembly with bounded memory and capture-time timeouts.

Overlaps are resolved the same way every time: bytes that arrived first win, and the
datagram gets one "ip_frag_overlap" anomaly (an exact duplicate fragment is silently
ignored, retransmissions are normal). Datagrams that time out, are evicted to respect
the memory budget, or are still open at capture end become "ip_frag_incomplete".
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from dotaudit.capture.packet import Anomaly, AnomalySink

MAX_DATAGRAM = 65535
MAX_PIECES = 256
"""Real datagrams need ~50 fragments at 1280-byte MTU; more is a flood."""
DATAGRAM_OVERHEAD = 256
"""Bytes charged per pending datagram so that empty fragments still cost memory."""

FragKey = tuple[int, bytes, bytes, int, int]
"""(IP version, source, destination, protocol (0 for IPv6), identification)."""


class _Datagram:
    __slots__ = (
        "charge",
        "covered",
        "first_ts",
        "frame",
        "overlap",
        "pieces",
        "proto",
        "starts",
        "total",
        "ts",
    )

    def __init__(self, frame: int, ts: float) -> None:
        self.first_ts = ts
        self.frame = frame
        self.ts = ts
        self.starts: list[int] = []
        self.pieces: list[bytes] = []
        self.covered = 0
        self.total: int | None = None
        self.proto: int | None = None
        self.overlap = False
        self.charge = DATAGRAM_OVERHEAD


class FragmentReassembler:
    """Collects fragments per key; :meth:`add` returns ``(payload, proto)`` once complete."""

    def __init__(self, sink: AnomalySink, max_bytes: int = 4 << 20, timeout: float = 30.0) -> None:
        self._sink = sink
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.held_bytes = 0
        self._pending: dict[FragKey, _Datagram] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        key: FragKey,
        offset: int,
        more: bool,
        data: bytes,
        proto: int,
        frame: int,
        ts: float,
    ) -> tuple[bytes, int] | None:
        """Add one fragment's payload; ``proto`` counts only from the offset-0 fragment."""
        self.expire(ts)
        end = offset + len(data)
        dgram = self._pending.get(key)
        if end > MAX_DATAGRAM:
            self._report("ip_frag_oversize", key, frame, ts, f"fragment ends at byte {end}")
            if dgram is not None:
                self._drop(key, dgram)
            return None
        if dgram is None:
            dgram = _Datagram(frame, ts)
            self._pending[key] = dgram
            self.held_bytes += dgram.charge
        dgram.frame = frame
        dgram.ts = ts
        if not more:
            if dgram.total is not None and dgram.total != end:
                self._report("ip_frag_malformed", key, frame, ts, "conflicting last fragments")
                return None
            if dgram.starts and dgram.starts[-1] + len(dgram.pieces[-1]) > end:
                self._report("ip_frag_malformed", key, frame, ts, "data beyond the last fragment")
                return None
            dgram.total = end
        elif dgram.total is not None and end > dgram.total:
            self._report("ip_frag_malformed", key, frame, ts, "data beyond the last fragment")
            return None
        if offset == 0 and dgram.proto is None:
            dgram.proto = proto
        if not self._insert(dgram, key, offset, end, data, frame, ts):
            return None
        if self.held_bytes > self.max_bytes:
            self._evict(frame, ts)
            if key not in self._pending:
                return None
        if dgram.total is not None and dgram.covered == dgram.total and dgram.proto is not None:
            self._drop(key, dgram)
            return b"".join(dgram.pieces), dgram.proto
        return None

    def _insert(
        self,
        dgram: _Datagram,
        key: FragKey,
        offset: int,
        end: int,
        data: bytes,
        frame: int,
        ts: float,
    ) -> bool:
        """Fill only the gaps [offset, end) leaves; False when the datagram was dropped."""
        starts, pieces = dgram.starts, dgram.pieces
        j = bisect_left(starts, offset)
        if j < len(starts) and starts[j] == offset and pieces[j] == data:
            return True  # exact duplicate
        new: list[tuple[int, bytes]] = []
        cur = offset
        i = bisect_right(starts, offset)
        if i > 0 and starts[i - 1] + len(pieces[i - 1]) > offset:
            cur = starts[i - 1] + len(pieces[i - 1])
        while cur < end:
            if i < len(starts) and starts[i] < end:
                if starts[i] > cur:
                    new.append((cur, data[cur - offset : starts[i] - offset]))
                cur = max(cur, starts[i] + len(pieces[i]))
                i += 1
            else:
                new.append((cur, data[cur - offset : end - offset]))
                cur = end
        added = sum(len(piece) for _, piece in new)
        if added < end - offset and not dgram.overlap:
            dgram.overlap = True
            self._report("ip_frag_overlap", key, frame, ts, f"fragment at offset {offset}")
        if len(starts) + len(new) > MAX_PIECES:
            self._report("ip_frag_incomplete", key, frame, ts, "too many fragments")
            self._drop(key, dgram)
            return False
        for start, piece in new:
            k = bisect_left(starts, start)
            starts.insert(k, start)
            pieces.insert(k, piece)
        dgram.covered += added
        dgram.charge += added
        self.held_bytes += added
        return True

    def expire(self, now: float) -> None:
        """Drop datagrams whose first fragment is older than the timeout (capture time)."""
        limit = now - self.timeout
        while self._pending:
            key, dgram = next(iter(self._pending.items()))
            if dgram.first_ts >= limit:
                return
            self._report("ip_frag_incomplete", key, dgram.frame, dgram.ts, "timed out")
            self._drop(key, dgram)

    def flush(self) -> None:
        """Report every datagram still incomplete (call at capture end)."""
        for key, dgram in list(self._pending.items()):
            self._report("ip_frag_incomplete", key, dgram.frame, dgram.ts, "capture ended")
            self._drop(key, dgram)

    def _evict(self, frame: int, ts: float) -> None:
        while self.held_bytes > self.max_bytes and self._pending:
            key, dgram = next(iter(self._pending.items()))
            self._report("ip_frag_incomplete", key, frame, ts, "evicted: memory budget")
            self._drop(key, dgram)

    def _drop(self, key: FragKey, dgram: _Datagram) -> None:
        del self._pending[key]
        self.held_bytes -= dgram.charge

    def _report(self, what: str, key: FragKey, frame: int, ts: float, detail: str) -> None:
        version, src, dst, proto, ident = key
        self._sink(
            Anomaly(
                what=what,
                frame=frame,
                ts=ts,
                detail=f"IPv{version} id {ident:#x}: {detail}",
                src=src,
                dst=dst,
                proto=proto,
            )
        )
