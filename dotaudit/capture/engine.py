"""Opening a capture for a pass: through libpcap with a bypass filter when it can take
the file, else through the pure-Python reader.

Both give the same frames to the same decoder; the libpcap engine skips, in C, packets
the flow table would ignore anyway (non-control packets of bypassed flows), so the two
produce identical events. See :mod:`dotaudit.capture.pcapfile`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

from dotaudit.capture.flows import FlowTable
from dotaudit.capture.reader import CaptureReader, FrameSink


class CaptureSource(Protocol):
    """What a pass reads a capture through (``CaptureReader``'s reading interface)."""

    engine: str
    format: str
    frames: int
    first_ts: float | None
    last_ts: float | None
    truncated_at: int | None
    warnings: list[str]
    anomalies: dict[str, int]
    bytes_read: int

    @property
    def records(self) -> int:
        """Records met in the file (delivered or not: see ``undelivered``)."""

    @property
    def undelivered(self) -> dict[str, int]:
        """Records met but not delivered as frames, by reason."""

    @property
    def stopped_at(self) -> int | None:
        """Byte offset where reading stopped before the end of the file, or None."""

    @property
    def stop_reason(self) -> str | None: ...

    def attach(self, table: FlowTable) -> None:
        """The flow table of this pass (an engine that skips packets keeps in step)."""

    def scan(self, take: FrameSink) -> Iterator[int]: ...

    def close(self) -> None: ...


def open_capture(path: str | os.PathLike[str], *, prefilter: bool = True) -> CaptureSource:
    """A source for one pass over ``path``. With ``prefilter``, a plain pcap file whose
    link type the bypass filter knows is read through libpcap (when it is installed);
    everything else through the Python reader."""
    if prefilter:
        from dotaudit.capture.pcapfile import LibpcapCapture

        engine = LibpcapCapture.open(path)
        if engine is not None:
            return engine
    return CaptureReader(path)
