"""Cut a capture into the files a rotating sensor would have written, with editcap
(Wireshark's, independent of dotaudit's reader), under the names tcpdump and dumpcap give
them."""

from __future__ import annotations

import struct
import subprocess
import time
from pathlib import Path


def cut(source: Path, out: Path, first: int, last: int) -> Path:
    """Frames ``first``..``last`` (from 1, inclusive) of ``source``, as a pcap."""
    subprocess.run(
        ["editcap", "-F", "pcap", "-r", str(source), str(out), f"{first}-{last}"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def first_second(path: Path) -> int:
    """The seconds field of a pcap's first record (little-endian, as editcap writes)."""
    return int(struct.unpack_from("<I", path.read_bytes(), 24)[0])


def pieces(source: Path, directory: Path, sizes: list[int]) -> list[Path]:
    """``source`` cut in consecutive pieces of ``sizes`` frames, as ``piece-N.pcap``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    first = 1
    for number, size in enumerate(sizes):
        out.append(cut(source, directory / f"piece-{number}.pcap", first, first + size - 1))
        first += size
    return out


def tcpdump_size_names(files: list[Path], stem: str = "cap.pcap") -> list[Path]:
    """``tcpdump -C N -w cap.pcap``: cap.pcap, cap.pcap1, cap.pcap2 ..."""
    return [f.rename(f.with_name(stem + (str(i) if i else ""))) for i, f in enumerate(files)]


def tcpdump_time_names(files: list[Path]) -> list[Path]:
    """``tcpdump -G N -w cap-%s.pcap``: each file named by the second it was opened."""
    return [f.rename(f.with_name(f"cap-{first_second(f)}.pcap")) for f in files]


def dumpcap_ring_names(files: list[Path], stem: str = "ring") -> list[Path]:
    """``dumpcap -b filesize:N -w ring.pcap``: ring_00001_20261201120000.pcap ..."""
    return [
        f.rename(
            f.with_name(
                f"{stem}_{i:05d}_{time.strftime('%Y%m%d%H%M%S', time.gmtime(first_second(f)))}.pcap"
            )
        )
        for i, f in enumerate(files, 1)
    ]
