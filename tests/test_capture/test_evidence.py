"""Evidence pcaps (dotaudit/capture/evidence.py): the planned frames copied byte for byte.

Oracle: the original capture read with CaptureReader; each written file read back the
same way must hold exactly the planned frames, in capture order. Timestamps: tshark's
reading of the written file (and the reader where tshark cannot show the value).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from dotaudit.capture.evidence import prepare_evidence_directory, write_evidence, write_pcap
from dotaudit.capture.reader import CaptureReader
from dotaudit.errors import OutputError
from dotaudit.model.evidence import EVIDENCE_MARKER, EvidencePlan
from tests import pcapgen
from tests.conftest import IN_CI
from tests.test_cli.command import dotaudit


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
    # No temporary file; the marker that keeps directory scans out.
    assert sorted(p.name for p in out.iterdir()) == [
        ".dotaudit-evidence",
        "001-A.pcap",
        "002-B.pcap",
    ]


def test_a_plan_whose_frames_are_absent_writes_nothing(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "c.pcap", ["a.example"])
    plan = EvidencePlan(names=["001-A.pcap"], frames={str(capture): {99: ["001-A.pcap"]}})
    assert write_evidence(plan, tmp_path / "evidence") == 0
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [".dotaudit-evidence"]


# -- every timestamp the reader accepts ---------------------------------------------------

FRAME = bytes.fromhex("020000000002020000000001080045000014000000004006") + bytes(36)


def tshark_times(path: Path) -> list[Decimal]:
    """Oracle: tshark's reading of each frame's time (epoch seconds, 9 decimals)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        reason = "tshark not installed (Debian package 'tshark'; `make test` installs it)"
        if IN_CI:
            pytest.fail(reason + " (CI=true)")
        pytest.skip(reason)
    out = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [Decimal(line) for line in out.split()]


def nanoseconds(ts: float) -> Decimal:
    """The float's own value to the nanosecond, as a pcapng of nanosecond ticks holds it."""
    return Decimal(round(Fraction(ts) * 10**9)) / 10**9


@pytest.mark.parametrize(
    ("stamps", "classic"),
    [
        ([1_700_000_000.25, 1_700_000_001.5], True),
        ([2.0**32 - 1 + 0.999999], True),  # the last microsecond a pcap record can hold
        ([2.0**32], False),  # ts_sec 0xFFFFFFFF with ts_usec 1000000, read as carried
        ([2.0**32 - 1, 2.0**32 + 5], False),  # one frame past 2106 makes the file pcapng
        ([5_000_000_000.123456789, 5_000_000_100.5], False),  # the year 2128, nanoseconds
        ([2.0**40 + 0.25], False),  # the year 36812
    ],
)
def test_evidence_holds_every_time_tshark_reads_back(
    tmp_path: Path, stamps: list[float], classic: bool
) -> None:
    target = tmp_path / "001-X.pcap"
    write_pcap(target, [(ts, 1, FRAME, len(FRAME)) for ts in stamps])
    magic = target.read_bytes()[:4]
    assert magic == (b"\xd4\xc3\xb2\xa1" if classic else b"\x0a\x0d\x0d\x0a")
    if classic:
        expected = [Decimal(round(Fraction(ts) * 10**6)) / 10**6 for ts in stamps]
    else:
        expected = [nanoseconds(ts) for ts in stamps]
    assert tshark_times(target) == expected
    assert [ts for _, ts, _, _, _ in CaptureReader(target)] == stamps
    assert [p.name for p in tmp_path.iterdir()] == ["001-X.pcap"]  # no temporary file


@pytest.mark.parametrize("ts", [-1.5, -(2.0**40), 1e19, 2.7e19])
def test_times_tshark_cannot_show_are_still_written_as_read(tmp_path: Path, ts: float) -> None:
    """Before 1970 (tshark prints -1.5 s as "-2.5") and past 2**63 s (past time_t): the
    oracle is the reader, which reads the interface offset and ticks independently."""
    target = tmp_path / "e.pcap"
    write_pcap(target, [(ts, 1, FRAME, 60), (ts + 1000.0, 1, FRAME, 60)])
    assert target.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert [t for _, t, _, _, _ in CaptureReader(target)] == [ts, ts + 1000.0]


def test_a_microsecond_field_never_reaches_a_second(tmp_path: Path) -> None:
    target = tmp_path / "r.pcap"
    write_pcap(target, [(1.9999996, 1, FRAME, 60), (3.0000004, 1, FRAME, 60)])
    records = target.read_bytes()[24:]
    fields = [struct.unpack_from("<II", records, 0), struct.unpack_from("<II", records, 76)]
    assert fields == [(2, 0), (3, 0)]  # rounded to the microsecond, carried into the second


def test_evidence_of_a_capture_dated_after_2106(tmp_path: Path) -> None:
    """The record of the issue: ts_sec 0xFFFFFFFF with ts_usec 1000000 (one second past
    what classic pcap holds), through the real ``analyze --evidence``."""
    capture = pcapgen.plaintext_capture(tmp_path / "late.pcap", ["late.example"])
    data = bytearray(capture.read_bytes())
    struct.pack_into("<II", data, 24, 0xFFFFFFFF, 1_000_000)
    capture.write_bytes(bytes(data))
    evidence = tmp_path / "evidence"
    result = dotaudit(
        "analyze", str(capture), "--evidence", str(evidence), "-q", "-o", str(tmp_path / "r.json")
    )
    assert result.returncode == 1, result.stderr  # the plaintext leak; no crash
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["findings"][0]["id"] == "DA-LEAK-001"
    written = evidence / "001-DA-LEAK-001.pcap"
    assert tshark_times(written) == [Decimal(2**32), Decimal("10.01")]
    assert sorted(p.name for p in evidence.iterdir()) == [".dotaudit-evidence", written.name]


# -- the evidence directory ----------------------------------------------------------------


def test_the_evidence_directory_is_marked_and_never_holds_other_files(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    prepare_evidence_directory(fresh)
    assert (fresh / EVIDENCE_MARKER).is_file()
    (fresh / "001-DA-LEAK-001.pcap").write_bytes(b"")
    prepare_evidence_directory(fresh)  # dotaudit's own: used again
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "office.pcap").write_bytes(b"")
    with pytest.raises(OutputError, match=r"captures: holds files that are not dotaudit evidence"):
        prepare_evidence_directory(captures)
    assert not (captures / EVIDENCE_MARKER).exists(), "a capture directory is never marked"
    with pytest.raises(OutputError, match=r"does not exist \(output directories are not created\)"):
        prepare_evidence_directory(tmp_path / "missing" / "evidence")
    with pytest.raises(OutputError, match=r"cannot write"):
        prepare_evidence_directory(Path("/proc/dotaudit-evidence"))
