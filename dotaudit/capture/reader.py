"""Streaming capture readers: pcap and pcapng files (optionally gzip-wrapped) -> frames.

The format is told from the magic bytes only. Files are read in chunks into one bytes
buffer (never mmap: a mapping counts fully in RSS), so memory stays flat however long
the capture is. A damaged file yields every complete record before the damage, then
stops with a warning naming the byte offset (in the uncompressed stream); only an
unusable header at offset 0 raises :class:`~dotaudit.errors.InputError`.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from dotaudit.errors import InputError

Frame = tuple[int, float, int, bytes, int]
"""(frame number from 1, epoch seconds, link type, captured bytes, original length)."""

FrameSink = Callable[[int, float, int, bytes, int, int, int], object]
"""``take(frame, ts, linktype, buf, start, end, orig_len)``: the captured bytes are
``buf[start:end]`` (``buf`` is the reader's buffer: slice it, never keep it)."""

MAX_CAPLEN = 256 * 1024
"""A record claiming more captured bytes than this is corrupt (libpcap's own cap)."""
MAX_BLOCK = 64 << 20
"""pcapng blocks longer than this are corrupt."""
MAX_BUFFERED_BLOCK = 1 << 20
"""Blocks we must parse stay below this; longer skippable blocks are streamed past."""
MAX_WARNINGS = 100
CHUNK_SIZE = 1 << 16
"""Bytes read per step. Kept below glibc's mmap threshold (128 KiB): larger buffers are
mapped and unmapped per chunk, and the fresh pages cost more (page faults, kernel time)
than the Python work on the records in them; 1 MiB chunks spent ~0.4 s of kernel time
per 1M packets on that alone."""
SCAN_STEP = 256 * 1024
""":meth:`CaptureReader.scan` yields at least every this many bytes of pcap records, so
whatever a caller collects between two yields stays small."""
MAX_INTERFACES = 4096

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_SHB = 0x0A0D0D0A
_SHB_BYTES = b"\x0a\x0d\x0d\x0a"
_BOM = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_IDB, _PB, _SPB, _EPB = 1, 2, 3, 6
# Known pcapng blocks that carry no packets: NRB, ISB, systemd journal, DSB, custom.
_PACKET_BLOCKS = frozenset({_PB, _SPB, _EPB})
_QUIET_SKIP = frozenset({4, 5, 9, 10, 0x00000BAD, 0x40000BAD})
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_READ = 1 << 16


class _Source:
    """Chunked byte source over a plain or gzip file; a damaged gzip stream just ends.

    zlib is driven directly (not GzipFile) so that the bytes decompressed before a
    damaged or cut point are still delivered, and multi-member files keep going.
    """

    def __init__(self, raw: BinaryIO, compressed: bool, raw_prefix: bytes = b"") -> None:
        self._raw = raw
        self._raw_prefix = raw_prefix  # bytes already taken from ``raw`` to sniff the format
        self._compressed = compressed
        self._inflate = zlib.decompressobj(31)
        self._done = False
        self._pushback = b""
        self.error: str | None = None

    def unread(self, data: bytes) -> None:
        self._pushback = data + self._pushback

    def read(self, n: int) -> bytes:
        if self._pushback:
            data = self._pushback[:n]
            self._pushback = self._pushback[n:]
            if len(data) < n:
                data += self._read(n - len(data))
            return data
        return self._read(n)

    def _read_raw(self, n: int) -> bytes:
        if self._raw_prefix:
            data = self._raw_prefix
            self._raw_prefix = b""
            return data + self._raw.read(max(0, n - len(data)))
        return self._raw.read(n)

    def _read(self, n: int) -> bytes:
        if not self._compressed:
            return self._read_raw(n)
        out: list[bytes] = []
        got = 0
        while got < n and not self._done:
            try:
                # Small steps: a zlib error loses the output of the call that hit it.
                data = self._inflate_some(min(n - got, _GZIP_READ))
            except zlib.error as exc:
                self.error = f"gzip stream damaged: {exc}"
                self._done = True
                break
            if data:
                out.append(data)
                got += len(data)
        return b"".join(out)

    def _inflate_some(self, limit: int) -> bytes:
        inflate = self._inflate
        # At the end of a member the input left over is in unused_data; unconsumed_tail
        # may still hold a copy, which decompress() would never consume.
        if inflate.unconsumed_tail and not inflate.eof:
            return inflate.decompress(inflate.unconsumed_tail, limit)
        if inflate.eof:
            rest = inflate.unused_data
            if len(rest) < 2:
                rest += self._read_raw(_GZIP_READ)
            if not rest.strip(b"\0"):
                self._done = True  # clean end (zero padding after the last member is common)
                return b""
            if rest[:2] != _GZIP_MAGIC:
                self.error = "gzip stream followed by non-gzip data"
                self._done = True
                return b""
            self._inflate = inflate = zlib.decompressobj(31)
            return inflate.decompress(rest, limit)
        packed = self._read_raw(_GZIP_READ)
        if not packed:
            self.error = "gzip stream cut short"
            self._done = True
            return b""
        return inflate.decompress(packed, limit)

    def close(self) -> None:
        self._raw.close()


class CaptureReader:
    """Iterate the frames of a pcap/pcapng(.gz) file: ``for frame, ts, linktype, data, orig_len``.

    After (or during) iteration: ``truncated_at`` is the offset of the record that was cut
    off (None for a complete file), ``warnings`` holds one-line problems and ``bytes_read``
    counts the uncompressed bytes read so far.
    """

    def __init__(self, path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> None:
        self.path = os.fspath(path)
        self.chunk_size = max(64, chunk_size)
        self.truncated_at: int | None = None
        self.frames = 0
        """Frames read so far."""
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.warnings: list[str] = []
        self.anomalies: dict[str, int] = {}
        """Records read but not as written, by reason (counted, never silently mended)."""
        self.records = 0
        """Packet records met, delivered or not (``frames`` is the last delivered one)."""
        self.undelivered: dict[str, int] = {}
        """Packet records met but not delivered, by reason."""
        self.stopped_at: int | None = None
        """Byte offset where reading stopped before the end of the file (a cut or a
        corrupt record), or None when it read to the end."""
        self.stop_reason: str | None = None
        """Why it stopped there: "cut short (...)" or "corrupt record (...)"."""
        self.bytes_read = 0
        self._warned: set[str] = set()
        # The file stays open from here to the end of iteration and is read once, front to
        # back, so a pipe (/dev/stdin, process substitution) works like a regular file.
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 (closed by __iter__ or close())
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        try:
            sniff = raw.read(2)
            self._compressed = sniff == _GZIP_MAGIC
            src = _Source(raw, self._compressed, sniff)
            head = src.read(24)
            while len(head) < 24 and src.error is None:
                more = src.read(24 - len(head))
                if not more:
                    break
                head += more
        except OSError as exc:
            raw.close()
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        src.unread(head)
        self._src: _Source | None = src
        try:
            self.format = self._detect(head)
        except InputError:
            self.close()
            raise

    def _detect(self, head: bytes) -> str:
        magic = head[:4]
        if magic in _PCAP_MAGICS:
            kind = "pcap"
            if len(head) < 24:
                raise InputError(f"{self.path}: truncated pcap file header")
        elif magic == _SHB_BYTES and head[8:12] in _BOM:
            kind = "pcapng"
        else:
            raise InputError(f"{self.path}: not a pcap or pcapng file")
        return kind + ".gz" if self._compressed else kind

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bookkeeping -------------------------------------------------------------------

    def _warn(self, text: str, once: str | None = None) -> None:
        if once is not None:
            if once in self._warned:
                return
            self._warned.add(once)
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(f"{self.path}: {text}")

    def _count(self, what: str) -> None:
        self.anomalies[what] = self.anomalies.get(what, 0) + 1

    def _undelivered(self, what: str) -> None:
        self.undelivered[what] = self.undelivered.get(what, 0) + 1

    def _cut(self, offset: int, what: str, src: _Source) -> None:
        self.truncated_at = offset
        reason = f"; {src.error}" if src.error else ""
        self.stopped_at = offset
        self.stop_reason = f"cut short ({what}{reason})"
        self._warn(f"truncated at byte offset {offset} ({what}){reason}")

    def _stop(self, offset: int, what: str) -> None:
        self.stopped_at = offset
        self.stop_reason = f"corrupt record ({what})"
        self._warn(f"corrupt record at byte offset {offset}: {what}; stopped reading")

    # -- iteration -------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        """Frames in file order; the capture can be iterated once."""
        batch: list[Frame] = []

        def take(frame: int, ts: float, linktype: int, buf: bytes, a: int, b: int, o: int) -> None:
            batch.append((frame, ts, linktype, buf[a:b], o))

        for _ in self.scan(take):
            yield from batch
            batch.clear()
        yield from batch  # frames before damage that ended the scan between two yields

    def scan(self, take: FrameSink) -> Iterator[int]:
        """Hand every frame to ``take`` without copying it; yields the frame count after
        each chunk read (about ``chunk_size`` bytes), so a caller can interleave work.

        The fast way through a capture (no tuple and no slice per frame). Afterwards
        ``frames``, ``first_ts`` and ``last_ts`` describe what was read.
        """
        src, self._src = self._src, None
        if src is None:
            return
        try:
            if self.format.startswith("pcapng"):
                yield from self._pcapng(src, take)
                yield self.frames  # frames after the last chunk read
            else:
                yield from self._pcap(src, take)
        finally:
            src.close()
            if not self.format.startswith("pcapng"):
                self.records = self.frames  # a pcap delivers every record it meets
            overflows = self.anomalies.get("timestamp_fraction_overflow")
            if overflows:
                self._warn(
                    f"a sub-second timestamp field of a whole second or more in {overflows} "
                    "records; read with the excess carried into the seconds"
                )

    def _pcap(self, src: _Source, take: FrameSink) -> Iterator[int]:
        chunk = self.chunk_size
        buf = src.read(max(chunk, 24))
        if len(buf) < 24 or buf[:4] not in _PCAP_MAGICS:  # the file changed since we opened it
            self._cut(0, "file header cut", src)
            return
        order, scale = _PCAP_MAGICS[buf[:4]]
        second_ticks = round(1 / scale)  # a valid sub-second field stays below this
        # The header's snaplen is advisory (writers get it wrong); MAX_CAPLEN is the hard cap.
        linktype = struct.unpack_from(order + "I", buf, 20)[0]
        linktype &= 0xFFFF  # the upper bits carry FCS-length flags, not the link type
        cap = MAX_CAPLEN
        unpack = struct.Struct(order + "IIII").unpack_from
        base = 0  # stream offset of buf[0]
        pos = 24  # start of the next record
        end = len(buf)
        frame = 0
        ts = 0.0
        # The seconds field as a float, converted once per new second: adding two floats
        # is far cheaper than adding a two-digit int to a float (the same exact result,
        # as any 32-bit integer is exact in a double).
        second = -1
        whole = 0.0
        self.bytes_read = end
        while True:
            data = pos + 16  # start of the record's packet bytes
            incl = 0
            first = pos  # where frame 1 starts, while it has not been seen
            lim = min(end, pos + SCAN_STEP)
            while data <= lim:
                sec, frac, incl, orig = unpack(buf, pos)
                stop = data + incl
                if stop > end or incl > cap:
                    break
                frame += 1
                if sec != second:
                    second = sec
                    whole = float(sec)
                ts = whole + frac * scale
                if frac >= second_ticks:
                    self._count("timestamp_fraction_overflow")
                take(frame, ts, linktype, buf, data, stop, orig)
                pos = stop
                data = stop + 16
            if frame:
                if self.first_ts is None:
                    sec, frac, _, _ = unpack(buf, first)
                    self.first_ts = sec + frac * scale
                self.frames = frame
                self.last_ts = ts
            if incl > cap:
                self._stop(base + pos, f"captured length {incl} exceeds {cap}")
                return
            yield frame
            if data <= end:
                incl = unpack(buf, pos)[2]
                if incl > cap or data + incl <= end:
                    continue  # stopped at SCAN_STEP with the next record buffered (or corrupt)
            # A record longer than a chunk is completed by one read, not chunk by chunk
            # (each step would copy everything buffered so far again).
            need = max(chunk, data + incl - end) if data <= end else chunk
            cut = "record header cut" if data > end else "record data cut"
            rest = self._refill(src, buf, pos, base, need, cut, "at a record boundary")
            if rest is None:
                return
            buf = rest
            base += pos
            pos = 0
            end = len(buf)
            self.bytes_read = base + end

    def _pcapng(self, src: _Source, take: FrameSink) -> Iterator[int]:
        chunk = self.chunk_size
        buf = b""
        base = 0  # stream offset of buf[0]
        pos = 0
        end = 0
        frame = 0  # number of the last packet block, delivered or not
        # Bookkeeping kept in locals (published at each yield) to spare the per-frame path:
        first: float | None = None  # timestamp of the first frame delivered
        ts = 0.0  # ... and of the last one
        skipped = 0  # number of the last packet block that delivered nothing
        before = 0  # number of the last frame delivered before that one
        sec = _Section("<")
        fast = sec.epb_head
        u32 = sec.u32
        ifaces = sec.ifaces
        try:
            while True:
                # Fast path: a well-formed EPB for a known interface, entirely in the buffer.
                if end - pos >= 28:
                    btype, blen, ifid, hi, lo, caplen, orig = fast(buf, pos)
                    nxt = pos + blen
                    if (
                        btype == _EPB
                        and nxt <= end
                        and caplen <= blen - 32
                        and caplen <= MAX_CAPLEN
                        and not blen & 3
                        and ifid < len(ifaces)
                        and u32(buf, nxt - 4)[0] == blen
                    ):
                        frame += 1
                        linktype, hi_scale, lo_scale, offset = ifaces[ifid]
                        sec.last_ts = ts = offset + hi * hi_scale + lo * lo_scale
                        if first is None:
                            first = ts
                        take(frame, ts, linktype, buf, pos + 28, pos + 28 + caplen, orig)
                        pos = nxt
                        continue
                if end - pos >= 12:
                    btype = sec.u32(buf, pos)[0]
                    if btype == _SHB:
                        bom = buf[pos + 8 : pos + 12]
                        if bom not in _BOM:
                            self._stop(base + pos, "section header with an unknown byte-order mark")
                            return
                        sec = _Section(_BOM[bom])
                        fast, u32, ifaces = sec.epb_head, sec.u32, sec.ifaces
                    blen = u32(buf, pos + 4)[0]
                    if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                        self._stop(base + pos, f"block type {btype:#x} has bad length {blen}")
                        return
                    if pos + blen <= end:
                        if u32(buf, pos + blen - 4)[0] != blen:
                            self._stop(
                                base + pos, f"block type {btype:#x} trailing length mismatch"
                            )
                            return
                        if btype in _PACKET_BLOCKS:
                            frame += 1
                            if not self._packet_block(sec, buf, pos, blen, btype, base):
                                frame -= 1  # not delivered, and the last one looked at
                                return
                            if sec.frame is not None:
                                ts, linktype, data, orig = sec.frame
                                if first is None:
                                    first = ts
                                take(frame, ts, linktype, data, 0, len(data), orig)
                            else:
                                if skipped != frame - 1:
                                    before = frame - 1
                                skipped = frame
                        elif btype == _IDB:
                            if len(ifaces) >= MAX_INTERFACES:
                                self._warn("too many interfaces; later ones ignored", once="ifmax")
                            elif not sec.add_interface(buf, pos, blen):
                                self._warn(f"bad interface block at byte offset {base + pos}")
                        elif btype != _SHB and btype not in _QUIET_SKIP:
                            self._unknown_block(btype, base + pos)
                        pos += blen
                        continue
                    if blen > MAX_BUFFERED_BLOCK:
                        if btype in _PACKET_BLOCKS or btype in (_SHB, _IDB):
                            self._stop(base + pos, f"block type {btype:#x} too long ({blen})")
                            return
                        if btype not in _QUIET_SKIP:
                            self._unknown_block(btype, base + pos)
                        trailer = self._skip(src, buf[pos:end], blen, sec.order)
                        if trailer is None:
                            self._cut(base + pos, "block data cut", src)
                            return
                        if trailer != blen:
                            self._stop(
                                base + pos, f"block type {btype:#x} trailing length mismatch"
                            )
                            return
                        base += pos + blen
                        buf = b""
                        pos = end = 0
                        continue
                got = before if skipped == frame else frame
                self._publish(first, ts, got)
                yield got
                # A block longer than a chunk is completed by one read (see _pcap).
                need = max(chunk, pos + blen - end) if end - pos >= 12 else chunk
                cut = "block header cut" if end - pos < 12 else "block data cut"
                rest = self._refill(src, buf, pos, base, need, cut, "at a block boundary")
                if rest is None:
                    return
                buf = rest
                base += pos
                pos = 0
                end = len(buf)
                self.bytes_read = base + end
        finally:
            self._publish(first, ts, before if skipped == frame else frame)
            self.records = frame

    def _refill(
        self, src: _Source, buf: bytes, pos: int, base: int, need: int, cut: str, boundary: str
    ) -> bytes | None:
        """``buf[pos:]`` followed by the next read of up to ``need`` bytes, or None at the
        end of the stream, having reported a cut (``cut`` inside a record or block,
        ``boundary`` when a read error stopped it between two)."""
        more = src.read(need)
        if more:
            return buf[pos:] + more
        if pos < len(buf):
            self._cut(base + pos, cut, src)
        elif src.error:
            self._cut(base + pos, boundary, src)
        return None

    def _publish(self, first: float | None, last: float, frames: int) -> None:
        """Record what has been delivered: the first and last timestamps and the number
        of the last frame."""
        if first is not None:
            self.first_ts = first
            self.last_ts = last
        self.frames = frames

    def _packet_block(
        self, sec: _Section, buf: bytes, pos: int, blen: int, btype: int, base: int
    ) -> bool:
        """Decode an EPB, SPB or obsolete PB into ``sec.frame``; False means stop reading."""
        sec.frame = None
        if btype == _SPB:
            if not sec.ifaces:
                self._undelivered("packet_before_interface")
                self._warn(f"packet block at byte offset {base + pos} before any interface")
                return True
            orig = sec.u32(buf, pos + 8)[0]
            linktype = sec.ifaces[0][0]
            caplen = min(orig, blen - 16, sec.snaplen0 or MAX_CAPLEN)
            # An SPB has no timestamp: it inherits the previous packet's.
            sec.frame = (sec.last_ts, linktype, buf[pos + 12 : pos + 12 + caplen], orig)
            return True
        if blen < 32:
            self._undelivered("packet_block_too_short")
            self._warn(f"packet block at byte offset {base + pos} is too short")
            return True
        if btype == _EPB:
            ifid, hi, lo, caplen, orig = sec.epb_body(buf, pos + 8)
        else:
            ifid, _drops, hi, lo, caplen, orig = sec.pb_body(buf, pos + 8)
        if caplen > MAX_CAPLEN:
            self._stop(base + pos, f"captured length {caplen} exceeds {MAX_CAPLEN}")
            return False
        if 32 + caplen > blen:
            self._undelivered("packet_block_overrun")
            self._warn(f"packet block at byte offset {base + pos} overruns itself")
        elif ifid >= len(sec.ifaces):
            self._undelivered("packet_unknown_interface")
            self._warn(
                f"packet block at byte offset {base + pos} names unknown interface {ifid}",
                once=f"ifid{ifid}",
            )
        else:
            linktype, hi_scale, lo_scale, offset = sec.ifaces[ifid]
            sec.last_ts = offset + hi * hi_scale + lo * lo_scale
            sec.frame = (sec.last_ts, linktype, buf[pos + 28 : pos + 28 + caplen], orig)
        return True

    def _unknown_block(self, btype: int, offset: int) -> None:
        self._warn(
            f"skipped unknown block type {btype:#x} (first at byte offset {offset})",
            once=f"type{btype}",
        )

    def _skip(self, src: _Source, have: bytes, blen: int, order: str) -> int | None:
        """Read to the end of a long block without buffering it; return its trailing length."""
        need = blen - len(have)
        tail = have[-4:]
        while need > 0:
            more = src.read(min(self.chunk_size, need))
            if not more:
                return None
            need -= len(more)
            tail = (tail + more)[-4:]
            self.bytes_read += len(more)
        value: int = struct.unpack(order + "I", tail)[0]
        return value


class _Section:
    """Byte order and interfaces of one pcapng section (a new SHB starts afresh)."""

    def __init__(self, order: str) -> None:
        self.order = order
        self.u32 = struct.Struct(order + "I").unpack_from
        self.epb_head = struct.Struct(order + "7I").unpack_from
        self.epb_body = struct.Struct(order + "5I").unpack_from
        self.pb_body = struct.Struct(order + "HH4I").unpack_from
        self.ifaces: list[tuple[int, float, float, int]] = []
        """Per interface: link type, seconds per 2**32 ticks, seconds per tick, offset."""
        self.snaplen0 = 0
        self.last_ts = 0.0
        self.frame: tuple[float, int, bytes, int] | None = None

    def add_interface(self, buf: bytes, pos: int, blen: int) -> bool:
        """Parse an IDB; a bad one still takes its interface number (as an unknown link)."""
        if blen < 20:
            self.ifaces.append((0xFFFF, 0.0, 1e-6, 0))
            return False
        linktype, _reserved, snaplen = struct.unpack_from(self.order + "HHI", buf, pos + 8)
        units = 1_000_000
        offset = 0
        opt = pos + 16
        stop = pos + blen - 4
        while opt + 4 <= stop:
            code, length = struct.unpack_from(self.order + "HH", buf, opt)
            value = opt + 4
            if code == 0 or value + length > stop:
                break
            if code == 9 and length >= 1:
                res = buf[value]
                units = 2 ** (res & 0x7F) if res & 0x80 else 10**res
            elif code == 14 and length >= 8:
                offset = struct.unpack_from(self.order + "q", buf, value)[0]
            opt = value + ((length + 3) & ~3)
        if not self.ifaces:
            self.snaplen0 = snaplen
        self.ifaces.append((linktype, (1 << 32) / units, 1 / units, offset))
        return True
