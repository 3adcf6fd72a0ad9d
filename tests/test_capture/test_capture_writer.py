"""What ``watch --write`` keeps (dotaudit/capture/capture_writer.py): batches of
host-order pcap records, as libpcap's ``pcap_dump`` gives them, written as pcap or pcapng
and read back by the Python reader (the oracle: the frames and times that went in), and
the ring's naming, rotation and deletion."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from dotaudit.capture.capture_writer import CaptureWriter
from dotaudit.capture.live import _pcap_time, _pcapng_time
from dotaudit.capture.reader import CaptureReader

FRAMES = [bytes([i]) * (60 + 7 * i) for i in range(12)]
STAMPS = [(1_700_000_000 + i // 3, (i * 123_457) % 1_000_000) for i in range(12)]


def batch(indices: range) -> bytes:
    """Records in the host's byte order, as pcap_dump writes them into memory."""
    return b"".join(
        struct.pack("=IIII", *STAMPS[i], len(FRAMES[i]), len(FRAMES[i]) + 4) + FRAMES[i]
        for i in indices
    )


def read(path: Path) -> list[tuple[int, float, int, bytes, int]]:
    return list(CaptureReader(path))


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_the_kept_file_reads_back_as_captured(tmp_path: Path, suffix: str) -> None:
    writer = CaptureWriter(str(tmp_path / f"kept{suffix}"), 1, 262144)
    writer.write(batch(range(0, 5)), 5)
    writer.write(batch(range(5, 12)), 7)
    writer.close()
    frames = read(tmp_path / f"kept{suffix}")
    assert [f[0] for f in frames] == list(range(1, 13))
    assert [f[3] for f in frames] == FRAMES
    assert [f[4] for f in frames] == [len(f) + 4 for f in FRAMES]
    assert {f[2] for f in frames} == {1}
    # The live run's clock for this format gives the reader's floats exactly.
    clock = _pcapng_time if suffix == ".pcapng" else _pcap_time
    assert [f[1] for f in frames] == [clock(*s) for s in STAMPS]
    assert writer.written[0].to_dict() == {
        "path": str(tmp_path / f"kept{suffix}"),
        "first_frame": 1,
        "packets": 12,
    }


def test_the_two_clocks_differ_where_it_matters() -> None:
    """Why the live run needs to know the kept format: the floats are not the same."""
    assert any(_pcap_time(*s) != _pcapng_time(*s) for s in STAMPS)


def test_a_ring_rotates_before_a_batch_would_pass_the_size_and_keeps_n_files(
    tmp_path: Path,
) -> None:
    one = len(batch(range(0, 2)))
    writer = CaptureWriter(str(tmp_path / "ring.pcap"), 1, 262144, files=2, file_size=24 + one)
    for start in range(0, 12, 2):
        writer.write(batch(range(start, start + 2)), 2)
    writer.close()
    written = writer.written
    assert len(written) == 6  # every later batch is larger: each file holds one batch
    assert [w.first_frame for w in written] == [1, 3, 5, 7, 9, 11]
    assert [w.removed for w in written] == [True] * 4 + [False] * 2
    kept = sorted(tmp_path.glob("ring_*.pcap"))
    assert [p.name for p in kept] == sorted(Path(w.path).name for w in written[-2:])
    assert [p.name[:10] for p in kept] == ["ring_00005", "ring_00006"]
    assert [f[3] for p in kept for f in read(p)] == FRAMES[8:]
    assert all(w.packets == 2 for w in written)


def test_a_batch_larger_than_the_ring_size_still_goes_whole_into_one_file(
    tmp_path: Path,
) -> None:
    writer = CaptureWriter(str(tmp_path / "r.pcap"), 1, 262144, files=3, file_size=100)
    writer.write(batch(range(0, 6)), 6)
    writer.write(batch(range(6, 12)), 6)
    writer.close()
    assert [w.packets for w in writer.written] == [6, 6]
    assert [f[3] for w in writer.written for f in read(Path(w.path))] == FRAMES


def test_a_directory_is_refused(tmp_path: Path) -> None:
    from dotaudit.errors import InputError

    with pytest.raises(InputError, match="is a directory"):
        CaptureWriter(str(tmp_path), 1, 262144)
