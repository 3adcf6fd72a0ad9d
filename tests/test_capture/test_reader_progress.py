"""CaptureReader's summary of what it delivered: ``frames``, ``first_ts``, ``last_ts``.

These are kept aside from the per-frame path (published when the reader pauses), so
they are checked here against what the test itself wrote and what ``scan`` handed over:
the number of the last frame delivered and the timestamps of the first and last ones,
whichever way the capture ends and whatever the chunk size.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, UDP, Ether, raw

from dotaudit.capture.reader import MAX_CAPLEN, CaptureReader
from tests.test_capture import capwrite
from tests.test_capture.capwrite import MACS

FRAME = raw(Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP() / b"payload")
# Packet blocks the reader skips with a warning: the frame number is used up, nothing
# is delivered.
UNKNOWN_IFACE = capwrite.epb(7, 5, FRAME)
OVERRUN = capwrite.block(6, b"\0" * 12 + (500).to_bytes(4, "little") + b"\0" * 8)


def _scan(path: Path, chunk: int) -> tuple[CaptureReader, list[tuple[int, float]], list[int]]:
    got: list[tuple[int, float]] = []
    reader = CaptureReader(path, chunk_size=chunk)

    def take(frame: int, ts: float, linktype: int, buf: bytes, a: int, b: int, o: int) -> None:
        got.append((frame, ts))

    counts = list(reader.scan(take))
    return reader, got, counts


def _check(path: Path, want: list[tuple[int, float]]) -> None:
    for chunk in (64, 100, 4096, 1 << 16):
        reader, got, counts = _scan(path, chunk)
        assert [f for f, _ in got] == [f for f, _ in want]
        assert [ts for _, ts in got] == pytest.approx([ts for _, ts in want], abs=1e-6)
        # The summary names exactly the delivered frames (same float, not just close).
        assert reader.frames == (got[-1][0] if got else 0)
        assert reader.first_ts == (got[0][1] if got else None)
        assert reader.last_ts == (got[-1][1] if got else None)
        assert counts == sorted(counts) and counts[-1] == reader.frames


def _pcapng(tmp_path: Path, blocks: list[bytes]) -> Path:
    path = tmp_path / "t.pcapng"
    path.write_bytes(capwrite.shb() + capwrite.idb(1) + b"".join(blocks))
    return path


def test_pcapng_skipped_blocks_at_start_middle_and_end(tmp_path: Path) -> None:
    blocks = [UNKNOWN_IFACE, OVERRUN]
    blocks += [capwrite.epb(0, 1_000_000 * (i + 1), FRAME) for i in range(40)]
    blocks += [UNKNOWN_IFACE, capwrite.spb(FRAME), OVERRUN]
    blocks += [capwrite.epb(0, 99_000_000, FRAME), UNKNOWN_IFACE, UNKNOWN_IFACE]
    # Frames 1-2 skipped, 3-42 at 1..40 s, 43 skipped, 44 an SPB (inherits 40 s),
    # 45 skipped, 46 at 99 s, 47-48 skipped.
    want = [(i + 3, float(i + 1)) for i in range(40)] + [(44, 40.0), (46, 99.0)]
    _check(_pcapng(tmp_path, blocks), want)


def test_pcapng_only_skipped_blocks(tmp_path: Path) -> None:
    _check(_pcapng(tmp_path, [UNKNOWN_IFACE, OVERRUN, UNKNOWN_IFACE]), [])


def test_pcapng_stopped_by_a_corrupt_block(tmp_path: Path) -> None:
    # A captured length over MAX_CAPLEN stops reading; it counts as a frame not delivered.
    huge = capwrite.block(6, b"\0" * 12 + (MAX_CAPLEN + 1).to_bytes(4, "little") + b"\0" * 4)
    blocks = [capwrite.epb(0, 2_000_000, FRAME), UNKNOWN_IFACE, huge]
    blocks.append(capwrite.epb(0, 3_000_000, FRAME))
    path = _pcapng(tmp_path, blocks)
    _check(path, [(1, 2.0)])
    reader, _, _ = _scan(path, 1 << 16)
    assert any("exceeds" in w for w in reader.warnings)


def test_pcap_and_pcapng_agree(tmp_path: Path) -> None:
    """The same packets written both ways read the same (the pcap reader as oracle)."""
    times = [1_700_000_000 + i / 8 for i in range(300)]
    frames = [FRAME[: 20 + i % 40] for i in range(300)]
    pcap = tmp_path / "t.pcap"
    pcap.write_bytes(capwrite.pcap(list(zip(times, frames, strict=True))))
    ng = _pcapng(
        tmp_path, [capwrite.epb(0, round(t * 1e6), f) for t, f in zip(times, frames, strict=True)]
    )
    for chunk in (64, 1 << 16):
        from_pcap = list(CaptureReader(pcap, chunk_size=chunk))
        from_ng = list(CaptureReader(ng, chunk_size=chunk))
        assert [(f, lt, d, o) for f, _, lt, d, o in from_ng] == [
            (f, lt, d, o) for f, _, lt, d, o in from_pcap
        ]
        assert [r[1] for r in from_ng] == pytest.approx([r[1] for r in from_pcap], abs=1e-6)
        assert len(from_ng) == 300
    _check(ng, [(i + 1, t) for i, t in enumerate(times)])
    _check(pcap, [(i + 1, t) for i, t in enumerate(times)])


@pytest.mark.parametrize("cut", [1, 13, 40])
def test_pcapng_cut_short(tmp_path: Path, cut: int) -> None:
    blocks = [capwrite.epb(0, 1_000_000 * (i + 1), FRAME) for i in range(5)]
    path = _pcapng(tmp_path, blocks)
    path.write_bytes(path.read_bytes()[:-cut])
    _check(path, [(i + 1, float(i + 1)) for i in range(4)])


def test_records_longer_than_a_chunk(tmp_path: Path) -> None:
    """Records and blocks many chunks long arrive whole, with any chunk size."""
    big = [bytes([i]) * size for i, size in enumerate((MAX_CAPLEN, 70_000, 60, MAX_CAPLEN - 1))]
    times = [float(t) for t in range(1, len(big) + 1)]
    pcap = tmp_path / "big.pcap"
    pcap.write_bytes(capwrite.pcap(list(zip(times, big, strict=True))))
    # A long block the reader must buffer to parse (an IDB with a long option) and one
    # it may skip (a 900 kB custom block), between packets.
    long_idb = capwrite.block(1, (1).to_bytes(2, "little") + b"\0" * 6 + b"\xff\xff" * 200_000)
    ng = _pcapng(
        tmp_path,
        [capwrite.epb(0, 1_000_000, big[0]), capwrite.block(0xBAD, b"c" * 900_000), long_idb]
        + [capwrite.epb(0, round(t * 1e6), d) for t, d in zip(times[1:], big[1:], strict=True)],
    )
    for chunk in (64, 5000, 1 << 16):
        for path in (pcap, ng):
            got = [(f, bytes(d)) for f, _, _, d, _ in CaptureReader(path, chunk_size=chunk)]
            assert got == list(enumerate(big, start=1)), (path.name, chunk)
