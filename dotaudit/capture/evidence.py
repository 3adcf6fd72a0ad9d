"""Evidence captures: for each finding, a small pcap holding exactly its frames.

An admin opens ``DA-LEAK-001-<n>.pcap`` in Wireshark and sees the packets behind the
verdict. Frames are copied byte for byte from the original capture (one pass per file).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from dotaudit.capture.reader import CaptureReader
from dotaudit.model.report import AuditReport

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def evidence_name(index: int, finding_id: str) -> str:
    return f"{index:03d}-{_UNSAFE.sub('_', finding_id)}.pcap"


FrameRewrite = Callable[[int, bytes], bytes]
"""(link type, frame bytes) -> the bytes to write, same length (a redaction)."""


def write_evidence(
    report: AuditReport, directory: Path, rewrite: FrameRewrite | None = None
) -> int:
    """Write one pcap per finding with frames; returns how many files were written.

    With ``rewrite`` every frame is passed through it first (redacted evidence: see
    ``dotaudit.capture.redact_frames.FrameRewriter.rewrite``). Files are named after the
    finding's position in ``report.sorted_findings()``, so pass the report that is
    rendered (the redacted one) for the HTML links to match.
    """
    from scapy.utils import RawPcapWriter  # scapy is slow to import: only when asked

    directory.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, dict[int, list[int]]] = {}
    findings = report.sorted_findings()
    for index, finding in enumerate(findings, 1):
        if finding.file and finding.frames:
            by_frame = wanted.setdefault(finding.file, {})
            for frame in finding.frames:
                by_frame.setdefault(frame, []).append(index)
    packets: dict[int, list[tuple[float, int, bytes, int]]] = {}
    for file, by_frame in wanted.items():
        last = max(by_frame)
        for frame, ts, linktype, data, orig_len in CaptureReader(file):
            owners = by_frame.get(frame)
            if owners:
                if rewrite is not None:
                    data = rewrite(linktype, data)
                for owner in owners:
                    packets.setdefault(owner, []).append((ts, linktype, data, orig_len))
            if frame >= last:
                break
    written = 0
    for index, finding in enumerate(findings, 1):
        frames = packets.get(index)
        if not frames:
            continue
        linktype = frames[0][1]
        target = directory / evidence_name(index, finding.id)
        temporary = target.with_suffix(".pcap.tmp")
        writer = RawPcapWriter(str(temporary), linktype=linktype, sync=True)
        try:
            writer.write_header(None)
            for ts, frame_linktype, data, orig_len in frames:
                if frame_linktype != linktype:
                    continue  # pcap holds one link type; the finding's frames share one
                seconds = int(ts)
                writer.write_packet(
                    data, sec=seconds, usec=round((ts - seconds) * 1e6), wirelen=orig_len
                )
        finally:
            writer.close()
        temporary.replace(target)
        written += 1
    return written
