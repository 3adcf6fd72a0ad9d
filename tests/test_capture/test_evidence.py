"""Evidence pcaps (dotaudit/capture/evidence.py): the planned frames copied byte for byte.

Oracle: the original capture read with CaptureReader; each written file read back the
same way must hold exactly the planned frames, in capture order.
"""

from __future__ import annotations

from pathlib import Path

from dotaudit.capture.evidence import write_evidence
from dotaudit.capture.reader import CaptureReader
from dotaudit.model.evidence import EvidencePlan
from tests import pcapgen


def frames_of(path: Path) -> list[tuple[float, bytes]]:
    return [(ts, data) for _, ts, _, data, _ in CaptureReader(path)]


def test_planned_frames_are_copied_exactly(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "c.pcap", ["a.example", "b.example"])
    original = frames_of(capture)
    assert len(original) == 4
    plan = EvidencePlan(
        names=["001-A.pcap", "002-B.pcap"],
        frames={
            str(capture): {1: ["001-A.pcap"], 2: ["001-A.pcap", "002-B.pcap"], 4: ["002-B.pcap"]}
        },
    )
    out = tmp_path / "evidence"
    assert write_evidence(plan, out) == 2
    assert frames_of(out / "001-A.pcap") == [original[0], original[1]]
    assert frames_of(out / "002-B.pcap") == [original[1], original[3]]
    assert sorted(p.name for p in out.iterdir()) == ["001-A.pcap", "002-B.pcap"]  # no temp file


def test_a_plan_whose_frames_are_absent_writes_nothing(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "c.pcap", ["a.example"])
    plan = EvidencePlan(names=["001-A.pcap"], frames={str(capture): {99: ["001-A.pcap"]}})
    assert write_evidence(plan, tmp_path / "evidence") == 0
    assert list((tmp_path / "evidence").iterdir()) == []
