"""Streaming capture readers: pcap and pcapng files (optionally gzip-wrapped) -> frames.

The format is told from the magic bytes only. Files are read in chunks into one bytes
buffer (never mmap: a mapping counts fully in RSS), so memory stays flat however long
the capture is. A damaged file yields every complete record before the damage, then
stops with a warning naming the byte offset (in the uncompressed stream); only an
unusable header at offset 0 raises :class:`~dotaudit.errors.InputError`.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from dotaudit.errors import InputError

Frame = tuple[int, float, int, bytes, int]
"""(frame number from 1, epoch seconds, link type, captured bytes, original length)."""

MAX_CAPLEN = 256 * 1024
"""A record claiming more captured bytes than this is corrupt (libpcap's own cap)."""
MAX_BLOCK = 64 << 20
"""pcapng blocks longer than this are corrupt."""
MAX_BUFFERED_BLOCK = 1 << 20
"""Blocks we must parse stay below this; longer skippable blocks are streamed past."""
MAX_WARNINGS = 100

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
_QUIET_SKIP = frozenset({4, 5, 9, 10, 0x00000BAD, 0x40000BAD})
_GZIP_MAGIC = b"\x1f\x8b"


class _Source:
    """Chunked byte source over a plain or gzip file; a damaged gzip stream just ends."""

    def __init__(self, raw: BinaryIO, compressed: bool) -> None:
        self._raw = raw
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else None
        self.error: str | None = None

    def read(self, n: int) -> bytes:
        if self._gz is None:
            return self._raw.read(n)
        if self.error is not None:
            return b""
        try:
            return self._gz.read(n)
        except (EOFError, OSError, zlib.error) as exc:
            self.error = f"gzip stream damaged: {exc}"
            return b""

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
        self._raw.close()


class CaptureReader:
    """Iterate the frames of a pcap/pcapng(.gz) file: ``for frame, ts, linktype, data, orig_len``.

    After (or during) iteration: ``truncated_at`` is the offset of the record that was cut
    off (None for a complete file), ``warnings`` holds one-line problems and ``bytes_read``
    counts the uncompressed bytes read so far.
    """

    def __init__(self, path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> None:
        self.path = os.fspath(path)
        self.chunk_size = max(64, chunk_size)
        self.truncated_at: int | None = None
        self.warnings: list[str] = []
        self.bytes_read = 0
        self._warned: set[str] = set()
        self._compressed = False
        try:
            with open(self.path, "rb") as raw:
                self._compressed = raw.read(2) == _GZIP_MAGIC
                raw.seek(0)
                src = _Source(raw, self._compressed)
                head = src.read(24)
                while len(head) < 24 and src.error is None:
                    more = src.read(24 - len(head))
                    if not more:
                        break
                    head += more
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        magic = head[:4]
        if magic in _PCAP_MAGICS:
            kind = "pcap"
            if len(head) < 24:
                raise InputError(f"{self.path}: truncated pcap file header")
        elif magic == _SHB_BYTES and head[8:12] in _BOM:
            kind = "pcapng"
        else:
            raise InputError(f"{self.path}: not a pcap or pcapng file")
        self.format = kind + ".gz" if self._compressed else kind

    # -- bookkeeping -------------------------------------------------------------------

    def _warn(self, text: str, once: str | None = None) -> None:
        if once is not None:
            if once in self._warned:
                return
            self._warned.add(once)
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(f"{self.path}: {text}")

    def _cut(self, offset: int, what: str, src: _Source) -> None:
        self.truncated_at = offset
        reason = f"; {src.error}" if src.error else ""
        self._warn(f"truncated at byte offset {offset} ({what}){reason}")

    def _stop(self, offset: int, what: str) -> None:
        self._warn(f"corrupt record at byte offset {offset}: {what}; stopped reading")

    # -- iteration -------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        with open(self.path, "rb") as raw:
            src = _Source(raw, self._compressed)
            try:
                if self.format.startswith("pcapng"):
                    yield from self._pcapng(src)
                else:
                    yield from self._pcap(src)
            finally:
                src.close()

    def _pcap(self, src: _Source) -> Iterator[Frame]:
        chunk = self.chunk_size
        buf = src.read(max(chunk, 24))
        order, scale = _PCAP_MAGICS[buf[:4]]
        if len(buf) < 24:
            self._cut(0, "file header cut", src)
            return
        # The header's snaplen is advisory (writers get it wrong); MAX_CAPLEN is the hard cap.
        linktype = struct.unpack_from(order + "I", buf, 20)[0]
        linktype &= 0xFFFF  # the upper bits carry FCS-length flags, not the link type
        cap = MAX_CAPLEN
        unpack = struct.Struct(order + "IIII").unpack_from
        base = 0  # stream offset of buf[0]
        pos = 24
        end = len(buf)
        frame = 0
        self.bytes_read = end
        while True:
            if pos + 16 <= end:
                sec, frac, incl, orig = unpack(buf, pos)
                nxt = pos + 16 + incl
                if nxt <= end and incl <= cap:
                    frame += 1
                    yield frame, sec + frac * scale, linktype, buf[pos + 16 : nxt], orig
                    pos = nxt
                    continue
                if incl > cap:
                    self._stop(base + pos, f"captured length {incl} exceeds {cap}")
                    return
            more = src.read(chunk)
            if not more:
                if pos < end:
                    what = "record header cut" if pos + 16 > end else "record data cut"
                    self._cut(base + pos, what, src)
                elif src.error:
                    self._cut(base + pos, "at a record boundary", src)
                return
            buf = buf[pos:] + more
            base += pos
            pos = 0
            end = len(buf)
            self.bytes_read = base + end

    def _pcapng(self, src: _Source) -> Iterator[Frame]:
        chunk = self.chunk_size
        buf = b""
        base = 0
        pos = 0
        end = 0
        frame = 0
        order = "<"
        head = struct.Struct("<II").unpack_from
        u32 = struct.Struct("<I").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        pb = struct.Struct("<HHIIII").unpack_from
        # per interface: (link type, snaplen, ticks per second, offset seconds)
        ifaces: list[tuple[int, int, int, int]] = []
        last_ts = 0.0
        while True:
            if end - pos >= 12:
                btype, blen = head(buf, pos)
                if btype == _SHB:
                    bom = buf[pos + 8 : pos + 12]
                    if bom not in _BOM:
                        self._stop(base + pos, "section header with an unknown byte-order mark")
                        return
                    order = _BOM[bom]
                    head = struct.Struct(order + "II").unpack_from
                    u32 = struct.Struct(order + "I").unpack_from
                    epb = struct.Struct(order + "IIIII").unpack_from
                    pb = struct.Struct(order + "HHIIII").unpack_from
                    btype, blen = head(buf, pos)
                    ifaces = []
                if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                    self._stop(base + pos, f"block type {btype:#x} has bad length {blen}")
                    return
                if pos + blen <= end:
                    if u32(buf, pos + blen - 4)[0] != blen:
                        self._stop(base + pos, f"block type {btype:#x} trailing length mismatch")
                        return
                    if btype in (_EPB, _PB):
                        frame += 1
                        if btype == _EPB:
                            ifid, hi, lo, caplen, orig = epb(buf, pos + 8)
                        else:
                            ifid, _drops, hi, lo, caplen, orig = pb(buf, pos + 8)
                        if caplen > MAX_CAPLEN:
                            self._stop(base + pos, f"captured length {caplen} exceeds {MAX_CAPLEN}")
                            return
                        if 32 + caplen > blen:
                            self._warn(f"packet block at byte offset {base + pos} overruns itself")
                        elif ifid >= len(ifaces):
                            self._warn(
                                f"packet block at byte offset {base + pos} names unknown "
                                f"interface {ifid}",
                                once=f"ifid{ifid}",
                            )
                        else:
                            linktype, _snap, units, tsoff = ifaces[ifid]
                            last_ts = tsoff + ((hi << 32) | lo) / units
                            yield frame, last_ts, linktype, buf[pos + 28 : pos + 28 + caplen], orig
                    elif btype == _SPB:
                        frame += 1
                        if not ifaces:
                            self._warn(
                                f"simple packet block at byte offset {base + pos} "
                                "before any interface",
                                once="spb-noif",
                            )
                        else:
                            orig = head(buf, pos + 4)[1]
                            linktype, snap, _units, _off = ifaces[0]
                            caplen = min(orig, blen - 16, snap or MAX_CAPLEN)
                            # An SPB has no timestamp: it inherits the previous packet's.
                            yield frame, last_ts, linktype, buf[pos + 12 : pos + 12 + caplen], orig
                    elif btype == _IDB:
                        iface = self._interface(buf, pos, blen, order)
                        if iface is None:
                            self._warn(f"bad interface block at byte offset {base + pos}")
                            iface = (0xFFFF, 0, 1_000_000, 0)
                        ifaces.append(iface)
                    elif btype != _SHB and btype not in _QUIET_SKIP:
                        self._warn(
                            f"skipped unknown block type {btype:#x} (first at byte offset "
                            f"{base + pos})",
                            once=f"type{btype}",
                        )
                    pos += blen
                    continue
                if blen > MAX_BUFFERED_BLOCK:
                    if btype in (_SHB, _IDB, _PB, _SPB, _EPB):
                        self._stop(base + pos, f"block type {btype:#x} too long ({blen})")
                        return
                    if btype not in _QUIET_SKIP:
                        self._warn(
                            f"skipped unknown block type {btype:#x} (first at byte offset "
                            f"{base + pos})",
                            once=f"type{btype}",
                        )
                    trailer = self._skip(src, buf[pos:end], blen, order)
                    if trailer is None:
                        self._cut(base + pos, "block data cut", src)
                        return
                    if trailer != blen:
                        self._stop(base + pos, f"block type {btype:#x} trailing length mismatch")
                        return
                    base += pos + blen
                    buf = b""
                    pos = 0
                    end = len(buf)
                    self.bytes_read = base + end
                    continue
            more = src.read(chunk)
            if not more:
                if pos < end:
                    what = "block header cut" if end - pos < 12 else "block data cut"
                    self._cut(base + pos, what, src)
                elif src.error:
                    self._cut(base + pos, "at a block boundary", src)
                return
            buf = buf[pos:] + more
            base += pos
            pos = 0
            end = len(buf)
            self.bytes_read = base + end

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

    @staticmethod
    def _interface(buf: bytes, pos: int, blen: int, order: str) -> tuple[int, int, int, int] | None:
        if blen < 20:
            return None
        linktype, _res, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        units = 1_000_000
        tsoff = 0
        opt = pos + 16
        stop = pos + blen - 4
        while opt + 4 <= stop:
            code, length = struct.unpack_from(order + "HH", buf, opt)
            value = opt + 4
            if code == 0 or value + length > stop:
                break
            if code == 9 and length >= 1:
                res = buf[value]
                units = 2 ** (res & 0x7F) if res & 0x80 else 10**res
            elif code == 14 and length >= 8:
                tsoff = struct.unpack_from(order + "q", buf, value)[0]
            opt = value + ((length + 3) & ~3)
        return linktype, snaplen, units, tsoff
