"""Write pcap / pcapng bytes with struct, including block types scapy cannot make."""

from __future__ import annotations

import struct
from collections.abc import Iterable

Record = tuple[float, bytes] | tuple[float, bytes, int]
"""(timestamp, captured bytes[, original length])."""


def pcap(
    records: Iterable[Record],
    linktype: int = 1,
    *,
    nanos: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
) -> bytes:
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    units = 1_000_000_000 if nanos else 1_000_000
    for rec in records:
        ts, data = rec[0], rec[1]
        orig = rec[2] if len(rec) == 3 else len(data)
        sec = int(ts)
        frac = round((ts - sec) * units)
        out.append(struct.pack(e + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def block(btype: int, body: bytes, *, big_endian: bool = False) -> bytes:
    e = ">" if big_endian else "<"
    body = _pad(body)
    length = 12 + len(body)
    return struct.pack(e + "II", btype, length) + body + struct.pack(e + "I", length)


def option(code: int, value: bytes, *, big_endian: bool = False) -> bytes:
    e = ">" if big_endian else "<"
    return struct.pack(e + "HH", code, len(value)) + _pad(value)


def end_of_options(*, big_endian: bool = False) -> bytes:
    return option(0, b"", big_endian=big_endian)


def shb(*, big_endian: bool = False, options: bytes = b"") -> bytes:
    e = ">" if big_endian else "<"
    body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
    return block(0x0A0D0D0A, body, big_endian=big_endian)


def idb(
    linktype: int = 1,
    snaplen: int = 0,
    *,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    big_endian: bool = False,
) -> bytes:
    e = ">" if big_endian else "<"
    body = struct.pack(e + "HHI", linktype, 0, snaplen)
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), big_endian=big_endian)
    if tsoffset is not None:
        opts += option(14, struct.pack(e + "q", tsoffset), big_endian=big_endian)
    if opts:
        opts += end_of_options(big_endian=big_endian)
    return block(1, body + opts, big_endian=big_endian)


def epb(
    ifid: int, ticks: int, data: bytes, orig: int | None = None, *, big_endian: bool = False
) -> bytes:
    e = ">" if big_endian else "<"
    orig = len(data) if orig is None else orig
    head = struct.pack(e + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig)
    return block(6, head + data, big_endian=big_endian)


def obsolete_pb(
    ifid: int, ticks: int, data: bytes, orig: int | None = None, *, big_endian: bool = False
) -> bytes:
    e = ">" if big_endian else "<"
    orig = len(data) if orig is None else orig
    head = struct.pack(e + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig)
    return block(2, head + data, big_endian=big_endian)


def spb(data: bytes, orig: int | None = None, *, big_endian: bool = False) -> bytes:
    e = ">" if big_endian else "<"
    orig = len(data) if orig is None else orig
    return block(3, struct.pack(e + "I", orig) + data, big_endian=big_endian)


def dsb(secrets: bytes, *, big_endian: bool = False) -> bytes:
    """Decryption Secrets Block carrying a TLS key log."""
    e = ">" if big_endian else "<"
    body = struct.pack(e + "II", 0x544C534B, len(secrets)) + secrets
    return block(10, body, big_endian=big_endian)


MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
"""Explicit MACs for scapy's Ether(): without them scapy ARPs for the gateway."""
