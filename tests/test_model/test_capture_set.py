"""Frame codes of capture sets turned back into (file, frame) (dotaudit/model/capture_set.py)."""

from __future__ import annotations

from dotaudit.model.capture_set import SetFrames, frame_code, frame_in_file, is_code, member_of
from dotaudit.model.findings import Confidence, Finding, Severity

FILES = ["cap.pcap", "cap.pcap1", "cap.pcap2"]


def test_codes_sort_in_timeline_order_and_unpack() -> None:
    early = frame_code(5, 2, 1)
    late = frame_code(6, 0, 900)
    assert early < late
    assert (member_of(early), frame_in_file(early)) == (2, 1)
    assert is_code(early) and not is_code(900) and not is_code(True)


def finding(frames: tuple[int, ...], evidence: dict[str, object] | None = None) -> Finding:
    return Finding(
        id="DA-FALLBACK-001",
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        title="t",
        dedup_key="k",
        client="192.0.2.1",
        server="192.0.2.53",
        evidence=evidence or {},
        frames=frames,
        file="cap.pcap",
    )


def test_a_finding_across_files_names_every_file_in_timeline_order() -> None:
    frames = SetFrames("cap.pcap", FILES)
    codes = (frame_code(10, 1, 9), frame_code(11, 2, 1), frame_code(12, 2, 2))
    out = frames.finding(finding(codes, {"last_frame": codes[-1], "frames": list(codes)}))
    assert out.file == "cap.pcap1" and out.frames == (9,)
    assert out.frames_by_file == (("cap.pcap1", (9,)), ("cap.pcap2", (1, 2)))
    assert out.evidence["last_frame"] == 2
    assert out.evidence["frame_files"] == {"last_frame": "cap.pcap2"}
    assert out.evidence["frames_by_file"] == [
        {"file": "cap.pcap1", "frames": [9]},
        {"file": "cap.pcap2", "frames": [1, 2]},
    ]
    assert out.to_dict()["frames_by_file"][1] == {"file": "cap.pcap2", "frames": [1, 2]}
    assert Finding.from_dict(out.to_dict()).frames_by_file == out.frames_by_file


def test_a_finding_in_one_file_has_no_per_file_list() -> None:
    frames = SetFrames("cap.pcap", FILES)
    out = frames.finding(finding((frame_code(3, 2, 7), frame_code(4, 2, 8))))
    assert (out.file, out.frames, out.frames_by_file) == ("cap.pcap2", (7, 8), ())
    assert "frames_by_file" not in out.to_dict()


def test_records_of_a_plain_file_are_untouched() -> None:
    frames = SetFrames("cap.pcap", FILES)
    plain = finding((1, 2, 3), {"last_frame": 3})
    assert frames.finding(plain) is plain
    row = {"client": "192.0.2.1", "frames": [4, 5]}
    assert frames.rows([row]) == [row]


def test_rows_get_the_file_of_their_frame() -> None:
    frames = SetFrames("cap.pcap", FILES)
    (row,) = frames.rows([{"what": "duplicate_frame", "frame": frame_code(9, 1, 4)}])
    assert row == {"what": "duplicate_frame", "frame": 4, "file": "cap.pcap1"}
