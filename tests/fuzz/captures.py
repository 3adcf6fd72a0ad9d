"""Seed captures and a loose structural view of them that mutations can edit.

The view is deliberately forgiving: whatever does not parse as records or blocks is kept
as an opaque tail, so that re-serialising an unmutated view gives the original bytes.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
CORPUS = ROOT.parent / "shared" / "corpus" / "public"
MAX_SEED_BYTES = 1 << 20
"""Larger seeds only slow every execution down; the corpus' largest capture is ~1 MB."""
SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}
SHB = 0x0A0D0D0A
BOMS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
IDB, PB, SPB, EPB = 1, 2, 3, 6


class CorpusMissing(Exception):
    """The public corpus is required (CI) but absent."""


def seed_paths(*, require_corpus: bool) -> list[Path]:
    """The bundled sample captures and the public corpus' captures, sorted."""
    paths = sorted(PCAPS.glob("*.pcap"))
    if CORPUS.is_dir():
        paths += sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    elif require_corpus:
        raise CorpusMissing(f"public corpus not found at {CORPUS}")
    return [p for p in paths if p.stat().st_size <= MAX_SEED_BYTES]


def load_seed(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


@dataclass
class Pcap:
    """A classic pcap: the 24-byte file header and (record header, packet bytes) pairs."""

    order: str
    header: bytearray
    records: list[tuple[bytearray, bytearray]]
    tail: bytes = b""

    @property
    def linktype(self) -> int:
        value: int = struct.unpack_from(self.order + "I", self.header, 20)[0]
        return value & 0xFFFF

    def to_bytes(self) -> bytes:
        parts = [bytes(self.header)]
        for head, data in self.records:
            parts.append(bytes(head))
            parts.append(bytes(data))
        parts.append(self.tail)
        return b"".join(parts)


@dataclass
class Pcapng:
    """A pcapng file as whole raw blocks (type, length, body, trailing length)."""

    blocks: list[bytearray]
    tail: bytes = b""
    orders: list[str] = field(default_factory=list)
    """Byte order of each block (its section's)."""

    def to_bytes(self) -> bytes:
        return b"".join(bytes(b) for b in self.blocks) + self.tail


def parse(data: bytes) -> Pcap | Pcapng | None:
    """The structural view of a capture, or None when the file header is not one."""
    if data[:4] in PCAP_MAGICS and len(data) >= 24:
        order = PCAP_MAGICS[data[:4]]
        records: list[tuple[bytearray, bytearray]] = []
        pos = 24
        while pos + 16 <= len(data):
            incl = struct.unpack_from(order + "I", data, pos + 8)[0]
            if pos + 16 + incl > len(data):
                break
            records.append(
                (bytearray(data[pos : pos + 16]), bytearray(data[pos + 16 : pos + 16 + incl]))
            )
            pos += 16 + incl
        return Pcap(order, bytearray(data[:24]), records, data[pos:])
    if data[:4] == b"\x0a\x0d\x0d\x0a" and data[8:12] in BOMS:
        blocks: list[bytearray] = []
        orders: list[str] = []
        order = BOMS[data[8:12]]
        pos = 0
        while pos + 12 <= len(data):
            if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a" and data[pos + 8 : pos + 12] in BOMS:
                order = BOMS[data[pos + 8 : pos + 12]]
            length = struct.unpack_from(order + "I", data, pos + 4)[0]
            if length < 12 or length % 4 or pos + length > len(data):
                break
            blocks.append(bytearray(data[pos : pos + length]))
            orders.append(order)
            pos += length
        return Pcapng(blocks, data[pos:], orders)
    return None


def epb_parts(block: bytes, order: str) -> tuple[bytes, bytes, bytes] | None:
    """An EPB split into (the 28 bytes up to the packet, packet bytes, options + trailer)."""
    if len(block) < 32:
        return None
    caplen = struct.unpack_from(order + "I", block, 20)[0]
    if 28 + caplen > len(block) - 4:
        return None
    padded = 28 + caplen + (-caplen % 4)
    return bytes(block[:28]), bytes(block[28 : 28 + caplen]), bytes(block[padded:])


def make_epb(head: bytes, packet: bytes, rest: bytes, order: str) -> bytearray:
    """An EPB from its parts with caplen and both lengths made consistent again."""
    body = bytearray(head)
    struct.pack_into(order + "I", body, 20, len(packet))
    body += packet + b"\0" * (-len(packet) % 4)
    options = rest[:-4] if len(rest) >= 4 else b""
    body += options
    length = len(body) + 4
    struct.pack_into(order + "I", body, 4, length)
    body += struct.pack(order + "I", length)
    return body


def pcapng_block(btype: int, body: bytes, order: str) -> bytearray:
    body = body + b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return bytearray(
        struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)
    )


def interface_linktypes(capture: Pcapng) -> list[int]:
    """Link type of each interface of the first section (for packet-aware mutations)."""
    types: list[int] = []
    for block, order in zip(capture.blocks, capture.orders, strict=True):
        if struct.unpack_from(order + "I", block, 0)[0] == IDB and len(block) >= 20:
            types.append(struct.unpack_from(order + "H", block, 8)[0])
    return types
