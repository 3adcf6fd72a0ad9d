"""Evidence captures: copy the frames an evidence plan names into one small pcap each.

An admin opens ``001-DA-LEAK-001.pcap`` in Wireshark and sees the packets behind the
verdict. Frames are copied byte for byte from the original capture (one pass per file);
which frames go where is the model's :class:`~dotaudit.model.evidence.EvidencePlan`.

A file is a classic pcap (microsecond timestamps) when every timestamp fits one: seconds
from 1970 to 2106. Otherwise (a capture whose clock says 2200, or 1960) it is a pcapng
under the same name, with nanosecond timestamps counted from the whole second of an
interface block's ``if_tsoffset`` (another block where a frame lies more than 584 years
from the first), so every timestamp the reader accepts is written as read. Wireshark, tshark and
tcpdump tell the two apart by their first bytes, not by the name.

The directory is marked with :data:`~dotaudit.model.evidence.EVIDENCE_MARKER`, so that a
later directory scan does not read the evidence back as captures.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from dotaudit.capture.reader import CaptureReader
from dotaudit.errors import OutputError
from dotaudit.model.evidence import EVIDENCE_FILE, EVIDENCE_MARKER, EvidencePlan

Frame = tuple[float, int, bytes, int]
"""(timestamp, link type, bytes, original length) of one copied frame."""

FrameRewrite = Callable[[int, bytes], bytes]
"""(link type, frame bytes) -> the bytes to write, same length (a redaction)."""

MARKER_TEXT = (
    "Evidence captures written by `dotaudit analyze --evidence`.\n"
    "Directory scans (`dotaudit analyze DIR`, `dotaudit events DIR`) skip this directory,\n"
    "so that evidence is never read back as a capture.\n"
)

_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_PCAP_MAX_SECONDS = 0xFFFFFFFF

_LEFT_BY_A_KILLED_RUN = re.compile(r"\.\d{3,}-[A-Za-z0-9._-]+\.pcap\.\d+\.tmp")
"""A temporary evidence file a run killed with SIGKILL could not remove."""
_I64 = (-(1 << 63), (1 << 63) - 1)
_U64 = 1 << 64


def collect_frames(
    plan: EvidencePlan, rewrite: FrameRewrite | None = None
) -> dict[str, list[Frame]]:
    """The frames of every planned file, in capture order, read in one pass per capture;
    with ``rewrite`` each frame is passed through it first (redacted evidence: see
    ``dotaudit.capture.redact_frames.FrameRewriter.rewrite``)."""
    collected: dict[str, list[Frame]] = {}
    for capture, by_frame in plan.frames.items():
        last = max(by_frame)
        for frame, ts, linktype, data, orig_len in CaptureReader(capture):
            owners = by_frame.get(frame)
            if owners:
                if rewrite is not None:
                    data = rewrite(linktype, data)
                for name in owners:
                    collected.setdefault(name, []).append((ts, linktype, data, orig_len))
            if frame >= last:
                break
    return collected


def _microseconds(ts: float) -> tuple[int, int] | None:
    """(seconds, microseconds) of ``ts`` for a classic pcap record, or None when the
    seconds do not fit its unsigned 32-bit field. Exact: the float's own value rounded
    to the microsecond, carried into the seconds (never a microsecond field of 10**6)."""
    seconds, micros = divmod(round(Fraction(ts) * 1_000_000), 1_000_000)
    if not 0 <= seconds <= _PCAP_MAX_SECONDS:
        return None
    return seconds, micros


def fits_classic_pcap(frames: Sequence[Frame]) -> bool:
    return all(_microseconds(ts) is not None for ts, _, _, _ in frames)


def _pcap_bytes(frames: Sequence[Frame], linktype: int) -> Iterator[bytes]:
    yield _PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 0x40000, linktype)
    for ts, frame_linktype, data, orig_len in frames:
        if frame_linktype != linktype:
            continue  # pcap holds one link type; the finding's frames share one
        stamp = _microseconds(ts)
        assert stamp is not None  # checked by fits_classic_pcap
        yield _PCAP_RECORD.pack(stamp[0], stamp[1], len(data), orig_len) + data


def _interface_for(ts: float) -> tuple[int, int]:
    """(if_tsresol, if_tsoffset) of a new pcapng interface for ``ts``: nanoseconds from
    its whole second (small tick counts keep the reader's sums exact), or, beyond the
    signed 64-bit offset, whole seconds from the end of that range."""
    second = math.floor(ts)
    if _I64[0] <= second <= _I64[1]:
        return 9, second
    return 0, _I64[1]


def _ticks(ts: float, resolution: int, offset: int) -> int | None:
    """``ts`` in ticks of the interface, or None when it cannot hold it."""
    ticks: int = round((Fraction(ts) - offset) * 10**resolution)
    return ticks if 0 <= ticks < _U64 else None


def _on_an_interface(interfaces: list[tuple[int, int]], ts: float) -> tuple[int, int] | None:
    """(interface number, ticks) of the first interface that can hold ``ts``, or None."""
    for number, (resolution, offset) in enumerate(interfaces):
        ticks = _ticks(ts, resolution, offset)
        if ticks is not None:
            return number, ticks
    return None


def _block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _pcapng_bytes(frames: Sequence[Frame], linktype: int) -> Iterator[bytes]:
    """SHB; IDBs (``linktype``, ``if_tsresol``, ``if_tsoffset``) as the timestamps need
    them, each written before its first frame; one EPB per frame."""
    yield _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    interfaces: list[tuple[int, int]] = []
    for ts, frame_linktype, data, orig_len in frames:
        if frame_linktype != linktype:
            continue
        found = _on_an_interface(interfaces, ts)
        if found is None:
            resolution, offset = _interface_for(ts)
            interfaces.append((resolution, offset))
            options = (
                _option(9, bytes([resolution]))
                + _option(14, struct.pack("<q", offset))
                + _option(0, b"")
            )
            yield _block(1, struct.pack("<HHI", linktype, 0, 0) + options)
            found = len(interfaces) - 1, _ticks(ts, resolution, offset) or 0
        number, ticks = found
        head = struct.pack("<IIIII", number, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig_len)
        yield _block(6, head + data)


@contextmanager
def _written_whole(target: Path) -> Iterator[BinaryIO]:
    """A binary handle whose file appears as ``target`` only when the block ends
    normally; the temporary file is removed on any error or interruption."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        handle = temporary.open("wb")
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    try:
        with handle:
            yield handle
        temporary.replace(target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_pcap(target: Path, frames: list[Frame]) -> None:
    """One capture of ``frames`` (with the first frame's link type), written whole or not
    at all: a classic pcap, or a pcapng when a timestamp does not fit one."""
    linktype = frames[0][1]
    blocks = (
        _pcap_bytes(frames, linktype)
        if fits_classic_pcap(frames)
        else _pcapng_bytes(frames, linktype)
    )
    with _written_whole(target) as handle:
        for block in blocks:
            handle.write(block)


def prepare_evidence_directory(directory: Path) -> None:
    """Make ``directory`` ready for evidence, before any work: created if missing (its
    parent must exist), refused if it holds files that are not evidence, and marked.
    Raises OutputError naming what cannot be written."""
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory}: not a directory")
    if not directory.parent.is_dir():
        raise OutputError(
            f"{directory}: {directory.parent} does not exist (output directories are not created)"
        )
    try:
        directory.mkdir(exist_ok=True)
        foreign = sorted(
            entry.name
            for entry in directory.iterdir()
            if entry.name != EVIDENCE_MARKER
            and not EVIDENCE_FILE.fullmatch(entry.name)
            and not _LEFT_BY_A_KILLED_RUN.fullmatch(entry.name)
        )
    except OSError as exc:
        raise OutputError(f"{directory}: cannot write: {exc.strerror or exc}") from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(
            f"{directory}: holds files that are not dotaudit evidence ({shown}); give "
            "--evidence a new or empty directory"
        )
    marker = directory / EVIDENCE_MARKER
    try:
        if not marker.exists():
            marker.write_text(MARKER_TEXT, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{marker}: cannot write: {exc.strerror or exc}") from None


def write_evidence(plan: EvidencePlan, directory: Path, rewrite: FrameRewrite | None = None) -> int:
    """Write the planned pcaps that found frames; returns how many files were written.
    Plan from the report that is rendered (the redacted one, when redacting) so that the
    HTML links match the file names."""
    prepare_evidence_directory(directory)
    collected = collect_frames(plan, rewrite)
    written = 0
    for name in plan.names:
        frames = collected.get(name)
        if frames:
            write_pcap(directory / name, frames)
            written += 1
    return written
