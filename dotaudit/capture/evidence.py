"""Evidence captures: copy the frames an evidence plan names into one small pcap each.

An admin opens ``001-DA-LEAK-001.pcap`` in Wireshark and sees the packets behind the
verdict. Frames are copied byte for byte from the original capture (one pass per file);
which frames go where is the model's :class:`~dotaudit.model.evidence.EvidencePlan`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dotaudit.capture.reader import CaptureReader
from dotaudit.model.evidence import EvidencePlan

Frame = tuple[float, int, bytes, int]
"""(timestamp, link type, bytes, original length) of one copied frame."""

FrameRewrite = Callable[[int, bytes], bytes]
"""(link type, frame bytes) -> the bytes to write, same length (a redaction)."""


def collect_frames(
    plan: EvidencePlan, rewrite: FrameRewrite | None = None
) -> dict[str, list[Frame]]:
    """The frames of every planned file, in capture order, read in one pass per capture;
    with ``rewrite`` each frame is passed through it first (redacted evidence: see
    ``dotaudit.capture.redact_frames.FrameRewriter.rewrite``). A file whose frames come
    from several captures (files of one capture set) has them in timestamp order, as the
    set's timeline had them."""
    collected: dict[str, list[Frame]] = {}
    captures_of: dict[str, set[str]] = {}
    for capture, by_frame in plan.frames.items():
        last = max(by_frame)
        for frame, ts, linktype, data, orig_len in CaptureReader(capture):
            owners = by_frame.get(frame)
            if owners:
                if rewrite is not None:
                    data = rewrite(linktype, data)
                for name in owners:
                    collected.setdefault(name, []).append((ts, linktype, data, orig_len))
                    captures_of.setdefault(name, set()).add(capture)
            if frame >= last:
                break
    for name, captures in captures_of.items():
        if len(captures) > 1:
            collected[name].sort(key=lambda f: f[0])  # stable: each file keeps its order
    return collected


def write_pcap(target: Path, frames: list[Frame]) -> None:
    """One pcap of ``frames`` (with the first frame's link type), written whole or not at
    all."""
    from scapy.utils import RawPcapWriter  # scapy is slow to import: only when asked

    linktype = frames[0][1]
    temporary = target.with_suffix(".pcap.tmp")
    writer = RawPcapWriter(str(temporary), linktype=linktype, sync=True)
    ok = False
    try:
        writer.write_header(None)
        for ts, frame_linktype, data, orig_len in frames:
            if frame_linktype != linktype:
                continue  # pcap holds one link type; the finding's frames share one
            seconds = int(ts)
            writer.write_packet(
                data, sec=seconds, usec=round((ts - seconds) * 1e6), wirelen=orig_len
            )
        ok = True
    finally:
        writer.close()
        if not ok:
            temporary.unlink(missing_ok=True)
    temporary.replace(target)


def write_evidence(plan: EvidencePlan, directory: Path, rewrite: FrameRewrite | None = None) -> int:
    """Write the planned pcaps that found frames; returns how many files were written.
    Plan from the report that is rendered (the redacted one, when redacting) so that the
    HTML links match the file names."""
    directory.mkdir(parents=True, exist_ok=True)
    collected = collect_frames(plan, rewrite)
    written = 0
    for name in plan.names:
        frames = collected.get(name)
        if frames:
            write_pcap(directory / name, frames)
            written += 1
    return written
