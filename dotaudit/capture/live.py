"""Live capture through libpcap, with a kernel filter: the engine a watch mode reads.

Unlike a file, a live interface cannot be read twice, so the kernel is given the
prefilter expression (:func:`dotaudit.capture.bpf.prefilter_expression`): only packets
that can carry a fact reach userland, and flows outside the filter are seen through
their control packets only. Packets come out in batches, written by libpcap's own
``pcap_dump`` into memory (no Python call per packet).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterator

from dotaudit.capture import libpcap
from dotaudit.capture.bpf import prefilter_expression
from dotaudit.errors import InputError

LivePacket = tuple[float, int, bytes, int]
"""(timestamp, link type, captured bytes, wire length)."""

_RECORD = struct.Struct("=IIII")


class LiveCapture:
    """An activated capture on ``device``; iterate :meth:`batches`, then :meth:`close`."""

    def __init__(
        self,
        device: str,
        *,
        filter_text: str | None = None,
        snaplen: int = 262144,
        timeout_ms: int = 100,
        promiscuous: bool = False,
    ) -> None:
        pcap = libpcap.load()
        if pcap is None:
            raise InputError(
                f"{device}: live capture needs libpcap ({libpcap.unavailable_reason()})"
            )
        self._pcap = pcap
        lib = pcap.lib
        err = ctypes.create_string_buffer(libpcap.ERRBUF_SIZE)
        handle = lib.pcap_create(device.encode(), err)
        if not handle:
            raise InputError(f"{device}: {err.value.decode(errors='replace')}")
        self._handle: int = handle
        lib.pcap_set_snaplen(handle, snaplen)
        lib.pcap_set_promisc(handle, int(promiscuous))
        lib.pcap_set_timeout(handle, timeout_ms)
        lib.pcap_set_immediate_mode(handle, 1)
        status = lib.pcap_activate(handle)
        if status < 0:
            reason = pcap.error(handle) or (lib.pcap_statustostr(status) or b"").decode()
            self.close()
            raise InputError(f"{device}: cannot capture: {reason}")
        self.linktype: int = lib.pcap_datalink(handle)
        text = prefilter_expression(self.linktype) if filter_text is None else filter_text
        program = libpcap.BpfProgram()
        if lib.pcap_compile(handle, ctypes.byref(program), text.encode(), 1, 0xFFFFFFFF):
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

    def batches(self, limit: int = 1024) -> Iterator[list[LivePacket]]:
        """Packets as they arrive, up to ``limit`` per batch; an empty batch when the
        read timeout passed with none."""
        lib = self._pcap.lib
        while self._handle:
            got = lib.pcap_dispatch(self._handle, limit, self._pcap.dump, self._out.file)
            if got < 0:
                if got == -2:  # pcap_breakloop
                    return
                raise InputError(f"capture failed: {self._pcap.error(self._handle)}")
            yield list(self._parse(self._out.take()))

    def _parse(self, dump: bytes) -> Iterator[LivePacket]:
        linktype = self.linktype
        pos = 0
        while pos + 16 <= len(dump):
            sec, usec, caplen, orig = _RECORD.unpack_from(dump, pos)
            yield sec + usec * 1e-6, linktype, dump[pos + 16 : pos + 16 + caplen], orig
            pos += 16 + caplen

    def close(self) -> None:
        if self._handle:
            self._pcap.lib.pcap_close(self._handle)
            self._handle = 0
        out = getattr(self, "_out", None)
        if out is not None:
            out.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
