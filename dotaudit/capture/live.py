"""Live capture through libpcap, with a kernel filter: the engine ``watch`` reads.

Unlike a file, a live interface cannot be read twice, so the kernel is given the
prefilter expression (:func:`dotaudit.capture.bpf.prefilter_expression`) unless another
filter is asked for: only packets that can carry a fact reach userland, and flows outside
the filter are seen through their control packets only. Packets come out in batches,
written by libpcap's own ``pcap_dump`` into memory (no Python call per packet from C); the
batch is a run of pcap records in the host's byte order, which :meth:`LiveCapture.dispatch`
hands to the decoder by offset (no copy per packet) and, unchanged, to a capture writer.
"""

from __future__ import annotations

import ctypes
import select
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dotaudit.capture import libpcap
from dotaudit.capture.bpf import prefilter_expression
from dotaudit.capture.reader import FrameSink
from dotaudit.errors import InputError

LivePacket = tuple[float, int, bytes, int]
"""(timestamp, link type, captured bytes, wire length)."""

BatchSink = Callable[[bytes, int], None]
"""Takes a batch of pcap records (host byte order, microseconds) as captured, and how
many records it holds."""

_RECORD = struct.Struct("=IIII")
_RECORD_AT = _RECORD.unpack_from
BUFFER_SIZE = 32 * 1024 * 1024
"""Kernel ring for the capture: about 0.6 s of a 50,000 packet/s stream of full-size
frames, room for the pauses of a report written between batches."""

NEEDS_PRIVILEGE = (
    "capturing needs the CAP_NET_RAW capability (and CAP_NET_ADMIN for a large kernel "
    "buffer): run dotaudit as root (sudo), or grant them to the Python interpreter that "
    "runs it: sudo setcap cap_net_raw,cap_net_admin=eip $(readlink -f $(command -v python3))"
)


def _pcap_time(sec: int, usec: int) -> float:
    return sec + usec * 1e-6


_HI_SCALE = (1 << 32) / 1_000_000
_LO_SCALE = 1 / 1_000_000


def _pcapng_time(sec: int, usec: int) -> float:
    units = sec * 1_000_000 + usec
    return 0 + (units >> 32) * _HI_SCALE + (units & 0xFFFFFFFF) * _LO_SCALE


@dataclass(frozen=True)
class CaptureStats:
    """libpcap's counters since the capture started."""

    received: int
    """Packets the kernel passed through the filter to this capture."""
    kernel_dropped: int
    """Of those, packets dropped because the capture's buffer was full (read too slowly)."""
    interface_dropped: int
    """Packets the interface or its driver dropped before any filter saw them."""

    def drop_rate(self) -> float:
        return self.kernel_dropped / self.received if self.received else 0.0


class LiveCapture:
    """An activated capture on ``device``: :meth:`dispatch` (or iterate :meth:`batches`),
    then :meth:`close`."""

    def __init__(
        self,
        device: str,
        *,
        filter_text: str | None = None,
        snaplen: int = 262144,
        timeout_ms: int = 100,
        promiscuous: bool = False,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        self._handle = 0
        self._out: libpcap.MemoryStream | None = None
        pcap = libpcap.load()
        if pcap is None:
            raise InputError(
                f"{device}: live capture needs libpcap ({libpcap.unavailable_reason()}; "
                "Debian: apt install libpcap0.8)"
            )
        self._pcap = pcap
        self.device = device
        self.frames = 0
        """Packets handed on so far (their frame numbers are 1 to ``frames``)."""
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.pcapng_times = False
        """Make each timestamp's float as the pcapng reader makes it from a microsecond
        count (``hi * 2**32/10**6 + lo * 10**-6``) instead of as the pcap reader does
        (``sec + usec * 10**-6``): the two differ in the last bits, and a run that keeps
        its packets as pcapng must judge with the times ``analyze`` will read there."""
        lib = pcap.lib
        err = ctypes.create_string_buffer(libpcap.ERRBUF_SIZE)
        handle = lib.pcap_create(device.encode(), err)
        if not handle:
            raise InputError(f"{device}: {err.value.decode(errors='replace')}")
        self._handle = handle
        lib.pcap_set_snaplen(handle, snaplen)
        lib.pcap_set_promisc(handle, int(promiscuous))
        lib.pcap_set_timeout(handle, timeout_ms)
        # Not immediate mode: libpcap then keeps TPACKET_V3, whose ring holds packets by
        # their size; immediate mode's ring has one snapshot-length slot per packet, about
        # a hundred 256 KiB slots in the buffer, and dropped packets at 5,000/s. The cost is
        # latency: a block is handed over when full or after the read timeout.
        lib.pcap_set_immediate_mode(handle, 0)
        lib.pcap_set_buffer_size(handle, buffer_size)
        status = lib.pcap_activate(handle)
        if status < 0:
            reason = pcap.error(handle) or (lib.pcap_statustostr(status) or b"").decode()
            self.close()
            if status == libpcap.ERROR_PERM_DENIED:
                raise InputError(f"{device}: {NEEDS_PRIVILEGE}")
            if status == libpcap.ERROR_NO_SUCH_DEVICE:
                raise InputError(f"{device}: no such interface")
            raise InputError(f"{device}: cannot capture: {reason}")
        # Waits are ours (poll on the capture's descriptor, at most the read timeout):
        # libpcap's own blocking read may wait forever on a quiet interface and resumes
        # after a signal, so --duration and Ctrl-C would never be seen.
        fd = lib.pcap_get_selectable_fd(handle)
        if fd < 0 or lib.pcap_setnonblock(handle, 1, err):
            reason = pcap.error(handle) or err.value.decode(errors="replace")
            self.close()
            raise InputError(f"{device}: cannot capture: {reason}")
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._timeout_ms = timeout_ms
        self.linktype: int = lib.pcap_datalink(handle)
        self.filter_text = (
            prefilter_expression(self.linktype) if filter_text is None else filter_text
        )
        program = libpcap.BpfProgram()
        if lib.pcap_compile(
            handle, ctypes.byref(program), self.filter_text.encode(), 1, 0xFFFFFFFF
        ):
            reason = pcap.error(handle)
            self.close()
            raise InputError(f"{device}: filter does not compile: {reason}")
        failed = lib.pcap_setfilter(handle, ctypes.byref(program))
        lib.pcap_freecode(ctypes.byref(program))
        if failed:
            reason = pcap.error(handle)
            self.close()
            raise InputError(f"{device}: filter refused: {reason}")
        self._out = libpcap.MemoryStream(pcap)

    def dispatch(self, take: FrameSink, keep: BatchSink | None = None, limit: int = -1) -> int:
        """Wait (up to the read timeout) for packets and hand each to ``take`` with its
        frame number; then the batch as captured goes to ``keep``. Returns how many
        packets there were (0 when the wait ended with none), or -1 once
        :meth:`breakloop` ended the wait."""
        if not self._handle or self._out is None:
            return -1
        self._poll.poll(self._timeout_ms)  # a signal's handler runs here, within the wait
        if not self._handle:
            return -1
        lib = self._pcap.lib
        got: int = lib.pcap_dispatch(self._handle, limit, self._pcap.dump, self._out.file)
        dump = self._out.take()
        if got == libpcap.ERROR_BREAK:
            got = -1
        elif got < 0:
            raise InputError(f"{self.device}: capture failed: {self._pcap.error(self._handle)}")
        if not dump:
            return got
        linktype = self.linktype
        frame = self.frames
        clock = _pcapng_time if self.pcapng_times else _pcap_time
        if self.first_ts is None:
            sec, usec = _RECORD_AT(dump, 0)[:2]
            self.first_ts = clock(sec, usec)
        pos = 0
        size = len(dump)
        unpack = _RECORD_AT
        ts = 0.0
        if clock is _pcap_time:  # written out: one of these per packet
            while pos + 16 <= size:
                sec, usec, caplen, orig = unpack(dump, pos)
                frame += 1
                start = pos + 16
                pos = start + caplen
                ts = sec + usec * 1e-6
                take(frame, ts, linktype, dump, start, pos, orig)
        else:
            while pos + 16 <= size:
                sec, usec, caplen, orig = unpack(dump, pos)
                frame += 1
                start = pos + 16
                pos = start + caplen
                ts = clock(sec, usec)
                take(frame, ts, linktype, dump, start, pos, orig)
        self.last_ts = ts
        if keep is not None:
            keep(dump, frame - self.frames)
        self.frames = frame
        return got

    def batches(self, limit: int = 1024) -> Iterator[list[LivePacket]]:
        """Packets as they arrive, up to ``limit`` per batch; an empty batch when the
        read timeout passed with none."""
        batch: list[LivePacket] = []

        def take(_f: int, ts: float, lt: int, buf: bytes, start: int, end: int, orig: int) -> None:
            batch.append((ts, lt, buf[start:end], orig))

        while self._handle:
            if self.dispatch(take, limit=limit) < 0:
                return
            yield list(batch)
            batch.clear()

    def stats(self) -> CaptureStats:
        """The kernel's and the interface's counters (zero once closed)."""
        if not self._handle:
            return CaptureStats(0, 0, 0)
        counters = libpcap.PcapStat()
        if self._pcap.lib.pcap_stats(self._handle, ctypes.byref(counters)):
            raise InputError(f"{self.device}: no statistics: {self._pcap.error(self._handle)}")
        return CaptureStats(counters.ps_recv, counters.ps_drop, counters.ps_ifdrop)

    def breakloop(self) -> None:
        """End a wait in :meth:`dispatch` soon (safe from a signal handler)."""
        if self._handle:
            self._pcap.lib.pcap_breakloop(self._handle)

    def close(self) -> None:
        if self._handle:
            self._pcap.lib.pcap_close(self._handle)
            self._handle = 0
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
