"""Reading a pcap file through libpcap, with bypassed flows skipped in C.

Two libpcap handles read the file batch by batch (``BATCH`` records):

- the **index** handle has no filter; the file header it reads says the snapshot length
  is 4, so ``pcap_dump`` writes a fixed 20-byte entry per record (timestamp, wire
  length, first bytes) into memory. Its count and entries give every record's frame
  number and time, and (each record holding min(wire length, snapshot length) bytes,
  checked against where libpcap stopped) its offset;
- the **filter** handle runs the bypass program (:mod:`dotaudit.capture.bpf`) and dumps
  only the records it admits, up to the batch's last byte.

Python then finds each admitted record among the index entries (confirmed byte for byte
against the file: the program is a function of the bytes, so the first identical record
is the one it admitted), hands it to the decoder with its exact frame number, and lets
the flow table's clock run over the skipped ones (:meth:`FlowTable.tick`), so that idle
flows expire exactly when reading every packet would have expired them. Between batches
the program learns the flows that were bypassed or released; a flow released in the
middle of a batch (ended, or probed after looking idle) makes the rest of that batch be
read in full. Anything unexpected (a libpcap error, a record whose size is not what the
index predicts, a damaged file) hands the rest of the file, from the start of the batch,
to the Python reader, which reports damage with its byte offset as always.

The result is the same sequence of frames reaching the flow table, minus packets the
table would have ignored: events are identical to a pass through the Python reader.
"""

from __future__ import annotations

import ctypes
import os
import stat
import struct
import sys
from collections.abc import Iterator
from itertools import accumulate, repeat
from operator import add

from dotaudit.capture import libpcap
from dotaudit.capture.bpf import LINK_TYPES, BypassProgram, FlowKey
from dotaudit.capture.flows import Flow, FlowTable
from dotaudit.capture.reader import (
    MAX_WARNINGS,
    CaptureReader,
    FrameSink,
    Resume,
    fraction_overflow_warning,
)

BATCH = 1024
"""Records per batch: a bypass decision takes effect from the next batch on."""
HORIZON = 3.0
"""Seconds of capture time: a bypassed flow whose idle probe is due this soon is read
again from the next batch on, so that the probe finds its next packet read."""
REVIEW_EVERY = 1.0
"""Seconds of capture time between reviews of the flows in the program: less than the
flow table's close linger (2 s), so a flow that closed is read again before it ends."""
MIN_SNAPLEN = 128
"""Files cut shorter than this are read by the Python reader: the program looks up to
72 bytes into a frame and cannot see how much of it was captured."""
_ENTRY = 20
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6, libpcap.TSTAMP_PRECISION_MICRO),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6, libpcap.TSTAMP_PRECISION_MICRO),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9, libpcap.TSTAMP_PRECISION_NANO),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9, libpcap.TSTAMP_PRECISION_NANO),
}
_MAX_CAPLEN = 262144
_FOUR = struct.pack("=I", 4)
_HOST = struct.Struct("=IIII").unpack_from
_U32 = struct.Struct("=I").unpack_from


class _Handover(Exception):
    """The rest of the file goes to the Python reader, from the start of this batch."""


class LibpcapCapture:
    """A :class:`~dotaudit.capture.engine.CaptureSource` over a plain pcap file."""

    engine = "libpcap"
    format = "pcap"

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LibpcapCapture | None:
        """The engine for ``path``, or None when the Python reader should read it
        (libpcap missing, not a regular pcap file, unusual header or link type)."""
        pcap = libpcap.load()
        if pcap is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None  # the Python reader reports it
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _Unsuitable
            head = os.pread(fd, 24, 0)
            if len(head) < 24 or head[:4] not in _PCAP_MAGICS:
                raise _Unsuitable
            order, _, _ = _PCAP_MAGICS[head[:4]]
            major, minor, _, _, snaplen, linktype = struct.unpack(order + "HHiIII", head[4:])
            if (major, minor) != (2, 4) or linktype not in LINK_TYPES:
                raise _Unsuitable
            if snaplen == 0 or snaplen > _MAX_CAPLEN:
                snaplen = _MAX_CAPLEN  # as libpcap reads it
            if snaplen < MIN_SNAPLEN:
                raise _Unsuitable
        except (_Unsuitable, OSError):
            os.close(fd)
            return None
        try:
            return cls(os.fspath(path), pcap, fd, head, linktype, snaplen)
        except _Unsuitable:  # the instance closed what it had opened
            return None

    def __init__(
        self,
        path: str,
        pcap: libpcap.Libpcap,
        fd: int,
        head: bytes,
        linktype: int,
        snaplen: int,
    ) -> None:
        self.path = path
        self.frames = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.truncated_at: int | None = None
        self.warnings: list[str] = []
        self.anomalies: dict[str, int] = {}
        """Records read but not as written, by reason (as the Python reader counts them)."""
        self.bytes_read = 0
        self.skipped = 0
        """Records libpcap skipped (never handed to Python)."""
        self._pcap = pcap
        self._fd = fd
        order, scale, precision = _PCAP_MAGICS[head[:4]]
        self._record = struct.Struct(order + "IIII").unpack_from
        self._native = (order == "<") == (sys.byteorder == "little")
        self._scale = scale
        self._second_ticks = round(1 / scale)  # a valid sub-second field stays below this
        self._linktype = linktype
        self._snaplen = snaplen
        self._table: FlowTable | None = None
        self._program = BypassProgram(linktype, snaplen)
        self._installed: dict[FlowKey, Flow] = {}
        self._pending: dict[FlowKey, Flow] = {}
        self._changed = False
        self._stale = False
        self._next_review = float("-inf")
        self._handles: list[int] = []
        self._streams: list[libpcap.MemoryStream] = []
        self._python: CaptureReader | None = None
        libpcap.close_at_exit(self.close)
        small = bytearray(head)
        small[16:20] = struct.pack(order + "I", 4)
        self._index_src = libpcap.CookieFile(pcap, fd, {0: bytes(small)})
        self._filter_src = libpcap.CookieFile(pcap, fd, limit=24)  # each batch moves it
        self._index = self._open_handle(self._index_src, precision)
        self._filter = self._open_handle(self._filter_src, precision)
        self._index_out = self._stream()
        self._filter_out = self._stream()
        if self._set_program():
            self.close()
            raise _Unsuitable

    def _open_handle(self, source: libpcap.CookieFile, precision: int) -> int:
        err = ctypes.create_string_buffer(libpcap.ERRBUF_SIZE)
        handle: int | None = self._pcap.lib.pcap_fopen_offline_with_tstamp_precision(
            source.file, precision, err
        )
        if not handle:
            failure = source.failure
            self.close()
            if failure is not None and not isinstance(failure, OSError):
                raise failure  # an interrupt while libpcap read the header
            raise _Unsuitable
        self._handles.append(handle)
        source.owned = True  # pcap_close closes it
        return handle

    def _stream(self) -> libpcap.MemoryStream:
        stream = libpcap.MemoryStream(self._pcap)
        self._streams.append(stream)
        return stream

    def close(self) -> None:
        self._close_libpcap()
        libpcap.forget_closer(self.close)
        for stream in self._streams:
            stream.close()
        self._streams.clear()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._python is not None:
            self._python.close()

    # -- the flow table's side ---------------------------------------------------------

    def attach(self, table: FlowTable) -> None:
        self._table = table
        table.bypass_listener = self

    def bypassed(self, flow: Flow) -> None:
        self._pending[_key(flow)] = flow
        self._changed = True

    def released(self, flow: Flow) -> None:
        key = _key(flow)
        self._pending.pop(key, None)
        if key in self._installed:
            # Its packets later in this batch may have been skipped: read the rest.
            self._stale = True
            self._changed = True

    def _install(self) -> None:
        """Bring the program's flows in line with the table before a batch."""
        now = self.last_ts or 0.0
        soon = now + HORIZON
        program = self._program
        changed = False
        if now >= self._next_review or self._stale:
            self._next_review = now + REVIEW_EVERY
            for key, flow in list(self._installed.items()):
                if (
                    not flow.bypassed
                    or flow._probe
                    or flow._ended
                    or flow._closed_at is not None
                    or flow._due <= soon
                ):
                    program.remove(key)
                    del self._installed[key]
                    changed = True
        installed = self._installed
        for key, flow in self._pending.items():
            if (
                flow.bypassed
                and not flow._probe
                and not flow._ended
                and flow._closed_at is None
                and flow._due > soon
                and key not in installed
            ):
                evicted = program.add(key)
                if evicted is not None:
                    del installed[evicted]
                installed[key] = flow
                changed = True
        self._pending.clear()
        self._changed = False
        if changed and self._set_program():
            raise _Handover

    def _set_program(self) -> bool:
        """Install the program as it stands; True when libpcap refused it."""
        program = self._program.program
        return bool(self._pcap.lib.pcap_setfilter(self._filter, ctypes.byref(program)))

    # -- reading -----------------------------------------------------------------------

    # Where reading stopped and what was not delivered is the Python reader's to say: a
    # file libpcap cannot read to its end is handed over to it (see ``scan``).

    @property
    def records(self) -> int:
        return self._python.records if self._python is not None else self.frames

    @property
    def undelivered(self) -> dict[str, int]:
        return self._python.undelivered if self._python is not None else {}

    @property
    def stopped_at(self) -> int | None:
        return self._python.stopped_at if self._python is not None else None

    @property
    def stop_reason(self) -> str | None:
        return self._python.stop_reason if self._python is not None else None

    def scan(self, take: FrameSink) -> Iterator[int]:
        """Hand every record the flow table would not ignore to ``take``; yields after
        each batch."""
        base = 24
        try:
            while True:
                try:
                    done = self._batch(take, base)
                except _Handover:
                    break
                if done is None:
                    overflows = self.anomalies.get("timestamp_fraction_overflow")
                    if overflows and len(self.warnings) < MAX_WARNINGS:
                        self.warnings.append(f"{self.path}: {fraction_overflow_warning(overflows)}")
                    self.close()
                    return
                base = done
                self.bytes_read = base
                yield self.frames
        except BaseException:
            self.close()
            raise
        # The Python reader takes over from the start of the batch that went wrong.
        self._close_libpcap()
        resume = Resume(base, self.frames, self.first_ts, self.last_ts, self.anomalies)
        reader = CaptureReader(self.path, resume=resume)
        self._python = reader
        try:
            for frames in reader.scan(take):
                self.frames = reader.frames
                self.bytes_read = reader.bytes_read
                yield frames
        finally:
            self.frames = reader.frames
            self.first_ts = reader.first_ts
            self.last_ts = reader.last_ts
            self.truncated_at = reader.truncated_at
            self.warnings.extend(reader.warnings)
            self.anomalies = reader.anomalies
            self.close()

    def _close_libpcap(self) -> None:
        for handle in self._handles:
            self._pcap.lib.pcap_close(handle)  # closes its cookie stream too
        self._handles.clear()
        for source in (self._index_src, self._filter_src):
            source.close()

    def _batch(self, take: FrameSink, base: int) -> int | None:
        """One batch from file offset ``base``: the offset after it, None at the end."""
        pcap = self._pcap
        lib = pcap.lib
        if self._changed or self._stale or (self.last_ts or 0.0) >= self._next_review:
            self._install()
            self._stale = False
        count = lib.pcap_dispatch(self._index, BATCH, pcap.dump, self._index_out.file)
        _reraise(self._index_src)
        index = self._index_out.take()
        if count < 0:
            raise _Handover
        if count == 0:
            return None
        if len(index) != _ENTRY * count:
            raise _Handover  # a record shorter than 4 bytes: not worth a special case
        entries = memoryview(index).cast("I")
        lens = entries[3::5]
        snaplen = self._snaplen
        # Offsets of the records within the batch; a record holds min(wire length,
        # snapshot length) bytes (checked below against where libpcap stopped).
        sizes = map(min, lens, repeat(snaplen)) if snaplen < _MAX_CAPLEN else lens
        offsets = list(accumulate(map(add, sizes, repeat(16)), initial=0))
        end: int = base + offsets[-1]
        if self._index_src.tell() != end:
            raise _Handover  # captured lengths are not what the index predicts
        source = self._filter_src
        source.limit = end
        source.resume()
        admitted = lib.pcap_dispatch(self._filter, -1, pcap.dump, self._filter_out.file)
        _reraise(source)
        dump = self._filter_out.take()
        if admitted < 0 or source.tell() != end:
            raise _Handover
        try:
            data = os.pread(self._fd, end - base, base)
        except OSError:
            raise _Handover from None
        if len(data) != end - base:
            raise _Handover
        positions = self._align(index, dump, data, offsets)
        if self.first_ts is None:
            self.first_ts = float(entries[0] + entries[1] * self._scale)
        self._deliver(take, positions, entries, offsets, data, count)
        self.frames += count
        self.last_ts = float(entries[5 * count - 5] + entries[5 * count - 4] * self._scale)
        fracs = entries[1::5]
        ticks = self._second_ticks
        if max(fracs) >= ticks:  # counted once the batch is read: a handover re-reads it
            overflows = sum(1 for frac in fracs if frac >= ticks)
            self.anomalies["timestamp_fraction_overflow"] = (
                self.anomalies.get("timestamp_fraction_overflow", 0) + overflows
            )
        self.skipped += count - len(positions)
        return end

    def _align(self, index: bytes, dump: bytes, data: bytes, offsets: list[int]) -> list[int]:
        """The batch record number of each admitted record, in order."""
        out: list[int] = []
        find = index.find
        u32 = _U32
        native = self._native
        q = 0
        done = len(dump)
        at = 0  # index byte offset to search from
        while q < done:
            stop = q + 16 + u32(dump, q + 8)[0]
            key = dump[q : q + 8] + _FOUR + dump[q + 12 : q + 20]
            pos = find(key, at)
            while True:
                if pos < 0:
                    raise _Handover
                if pos % _ENTRY:
                    pos = find(key, pos + 1)
                    continue
                j = pos // _ENTRY
                o = offsets[j]
                if offsets[j + 1] - o == stop - q and (
                    data[o : o + stop - q] == dump[q:stop]
                    if native
                    else self._same_record(data, o, dump, q, stop)
                ):
                    break
                # An identical-looking record the program skipped: look further.
                pos = find(key, pos + _ENTRY)
            out.append(j)
            at = pos + _ENTRY
            q = stop
        return out

    def _same_record(self, data: bytes, o: int, dump: bytes, q: int, stop: int) -> bool:
        """Record ``data[o:]`` of a file in the other byte order equals ``dump[q:stop]``."""
        sec, frac, incl, orig = self._record(data, o)
        return (sec, frac, incl, orig) == _HOST(dump, q) and data[o + 16 : o + 16 + incl] == dump[
            q + 16 : stop
        ]

    def _deliver(
        self,
        take: FrameSink,
        positions: list[int],
        entries: memoryview,
        offsets: list[int],
        data: bytes,
        count: int,
    ) -> None:
        table = self._table
        record = self._record
        scale = self._scale
        linktype = self._linktype
        first = self.frames + 1
        secs = entries[0::5]
        fracs = entries[1::5]
        # The skipped records need the table's clock only if one of them is as late as
        # its next sweep (sweeps only move that moment later).
        ticking = table is not None and max(secs) + 1 > table._next_sweep
        second = -1
        whole = 0.0
        nxt = 0
        for j in positions:
            if ticking and j > nxt:
                stop = self._tick(table, secs, fracs, nxt, j)  # type: ignore[arg-type]
                if stop is not None:
                    self._read_rest(take, stop + 1, offsets, data, count)
                    return
            o = offsets[j]
            sec, frac, incl, orig = record(data, o)
            if sec != second:
                second = sec
                whole = float(sec)
            take(first + j, whole + frac * scale, linktype, data, o + 16, o + 16 + incl, orig)
            nxt = j + 1
            if self._stale:
                self._read_rest(take, nxt, offsets, data, count)
                return
        if ticking and count > nxt:
            stop = self._tick(table, secs, fracs, nxt, count)  # type: ignore[arg-type]
            if stop is not None:
                self._read_rest(take, stop + 1, offsets, data, count)

    def _tick(
        self, table: FlowTable, secs: memoryview, fracs: memoryview, a: int, b: int
    ) -> int | None:
        """Let the table's clock see the skipped records ``a`` to ``b - 1``; the record
        at which a bypassed flow was released (the rest must be read), else None."""
        if max(secs[a:b]) + 1 <= table._next_sweep:
            return None  # every one of them is earlier than the next sweep
        scale = self._scale
        for j in range(a, b):
            ts = float(secs[j]) + fracs[j] * scale
            if ts >= table._next_sweep:
                table.tick(ts)
                if self._stale:
                    return j
        return None

    def _read_rest(
        self, take: FrameSink, start: int, offsets: list[int], data: bytes, count: int
    ) -> None:
        """Hand records ``start`` to the end of the batch over, every one of them."""
        record = self._record
        scale = self._scale
        linktype = self._linktype
        first = self.frames + 1
        for j in range(start, count):
            o = offsets[j]
            sec, frac, incl, orig = record(data, o)
            ts = float(sec) + frac * scale
            take(first + j, ts, linktype, data, o + 16, o + 16 + incl, orig)
        self._stale = True  # the program is brought up to date before the next batch


def _reraise(source: libpcap.CookieFile) -> None:
    """What went wrong inside a read callback: an interrupt goes on up; a read error
    hands the file to the Python reader, which reports it where it happens."""
    failure = source.failure
    if failure is not None:
        source.failure = None
        if isinstance(failure, OSError):
            raise _Handover from failure
        raise failure


def _key(flow: Flow) -> FlowKey:
    return FlowKey(flow.proto, flow.client, flow.cport, flow.server, flow.sport)


class _Unsuitable(Exception):
    pass
