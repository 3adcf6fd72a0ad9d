"""Keeping the packets a live capture read: one pcap or pcapng file, or a ring of them.

The batches come from :class:`~dotaudit.capture.live.LiveCapture` as pcap records in the
host's byte order, so a pcap file is its header and those bytes as they are; a pcapng
file (chosen by the ``.pcapng`` extension) gets one Enhanced Packet Block per record.
Frame numbers of the live run are the record numbers of the files taken in order, so a
finding's evidence can be opened later and ``analyze`` on what was kept sees the packets
the live run saw.

A ring (``files`` > 1 or a ``file_size``) writes ``NAME_00001_YYYYmmddHHMMSS.EXT``,
``NAME_00002_...`` like dumpcap, starts the next file when the current one would pass
``file_size`` bytes, and deletes the oldest beyond ``files``. A batch is never split, so a
file may pass the size by at most one batch.
"""

from __future__ import annotations

import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dotaudit.errors import InputError

_HOST_RECORD = struct.Struct("=IIII").unpack_from
_EPB = struct.Struct("<IIIIIII")
_END = struct.Struct("<I")


@dataclass
class WrittenFile:
    path: str
    first_frame: int
    packets: int = 0
    bytes: int = 0
    removed: bool = False
    """Deleted to keep the ring at its number of files."""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.path,
            "first_frame": self.first_frame,
            "packets": self.packets,
        }
        if self.removed:
            out["removed"] = True
        return out


class CaptureWriter:
    """Writes batches of host-order pcap records to ``path`` (or a ring named after it)."""

    def __init__(
        self,
        path: str,
        linktype: int,
        snaplen: int,
        *,
        files: int = 1,
        file_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.pcapng = self.path.suffix == ".pcapng"
        self.linktype = linktype
        self.snaplen = snaplen
        self.ring = files > 1 or file_size is not None
        self.files_kept = max(files, 1)
        self.file_size = file_size
        self.written: list[WrittenFile] = []
        self._handle: BinaryIO | None = None
        self._next_frame = 1
        if self.path.is_dir():
            raise InputError(f"{path}: is a directory (--write takes a file name)")
        self._open()

    def _name(self) -> Path:
        if not self.ring:
            return self.path
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime())
        number = len(self.written) + 1
        return self.path.with_name(f"{self.path.stem}_{number:05d}_{stamp}{self.path.suffix}")

    def _open(self) -> None:
        name = self._name()
        try:
            name.parent.mkdir(parents=True, exist_ok=True)
            handle = name.open("wb")
            handle.write(self._header())
        except OSError as exc:
            raise InputError(f"{name}: {exc.strerror or exc}") from None
        self._handle = handle
        self.written.append(WrittenFile(str(name), self._next_frame, 0, handle.tell()))
        live = [w for w in self.written if not w.removed]
        for old in live[: max(len(live) - self.files_kept, 0)]:
            Path(old.path).unlink(missing_ok=True)
            old.removed = True

    def _header(self) -> bytes:
        if not self.pcapng:
            order = "<" if sys.byteorder == "little" else ">"
            # The records arrive in the host's order: so is the header.
            return struct.pack(
                order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, self.linktype
            )
        shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        shb = struct.pack("<II", 0x0A0D0D0A, 12 + len(shb_body)) + shb_body
        shb += _END.pack(12 + len(shb_body))
        idb_body = struct.pack("<HHI", self.linktype, 0, self.snaplen)  # microseconds
        idb = struct.pack("<II", 1, 12 + len(idb_body)) + idb_body + _END.pack(12 + len(idb_body))
        return shb + idb

    def write(self, batch: bytes, packets: int) -> None:
        """One batch of ``packets`` records, as :meth:`LiveCapture.dispatch` gives it."""
        handle = self._handle
        if handle is None or not packets:
            return
        current = self.written[-1]
        if (
            self.ring
            and self.file_size is not None
            and current.packets
            and current.bytes + len(batch) > self.file_size
        ):
            self._rotate()
            handle = self._handle
            current = self.written[-1]
            assert handle is not None
        data = self._pcapng(batch) if self.pcapng else batch
        try:
            handle.write(data)
        except OSError as exc:
            raise InputError(f"{current.path}: {exc.strerror or exc}") from None
        current.packets += packets
        current.bytes += len(data)
        self._next_frame += packets

    def _rotate(self) -> None:
        self._close_current()
        self._open()

    @staticmethod
    def _pcapng(batch: bytes) -> bytes:
        out: list[bytes] = []
        pos = 0
        size = len(batch)
        pack = _EPB.pack
        while pos + 16 <= size:
            sec, usec, caplen, orig = _HOST_RECORD(batch, pos)
            start = pos + 16
            pos = start + caplen
            pad = -caplen % 4
            total = 32 + caplen + pad
            units = sec * 1_000_000 + usec
            out.append(pack(6, total, 0, units >> 32, units & 0xFFFFFFFF, caplen, orig))
            out.append(batch[start:pos])
            out.append(b"\0" * pad + _END.pack(total))
        return b"".join(out)

    def flush(self) -> None:
        if self._handle is not None:
            try:
                self._handle.flush()
            except OSError as exc:
                raise InputError(f"{self.written[-1].path}: {exc.strerror or exc}") from None

    def _close_current(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:
                raise InputError(f"{self.written[-1].path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._close_current()
