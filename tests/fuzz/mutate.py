"""Mutants of seed captures: file headers, record and block framing, link types, pcapng
blocks and options, packet headers and payloads, raw bytes, and gzip wrapping.

Every mutant is a pure function of the seed list and the ``random.Random`` handed in, so
a campaign's seed reproduces its mutants exactly.
"""

from __future__ import annotations

import gzip
import random
import struct
from collections.abc import Callable
from typing import TypeVar

from tests.fuzz.captures import (
    EPB,
    IDB,
    PB,
    PCAP_MAGICS,
    SHB,
    SPB,
    Pcap,
    Pcapng,
    epb_parts,
    interface_linktypes,
    make_epb,
    parse,
    pcapng_block,
)
from tests.fuzz.packets import INTERESTING_32, mutate_bytes, mutate_packet

LINKTYPES = (0, 1, 9, 12, 14, 101, 105, 108, 113, 127, 147, 228, 229, 276, 0xFFFF)
TS_SECONDS = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
TS_FRACTIONS = (0, 999_999, 1_000_000, 999_999_999, 1_000_000_000, 0xFFFFFFFF)
CAPLENS = (0, 1, 13, 14, 19, 20, 39, 40, 65535, 262144, 262145, 0x7FFFFFFF, 0xFFFFFFFF)
BLOCK_TYPES = (SHB, IDB, PB, SPB, 4, 5, EPB, 9, 10, 0xBAD, 0x40000BAD, 0, 7, 0xFFFFFFFF)
TSRESOL = (0, 3, 6, 9, 12, 19, 20, 0x7F, 0x80, 0x8A, 0x9E, 0xBF, 0xFF)
TSOFFSET = (0, 1, -1, 2**31, -(2**31), 2**62, 2**63 - 1, -(2**63))
MAX_MUTANT_BYTES = 2 << 20

_T = TypeVar("_T")


class Mutator:
    """``mutant()`` returns (bytes, what was done)."""

    def __init__(self, seeds: list[bytes], rng: random.Random) -> None:
        if not seeds:
            raise ValueError("no seeds")
        self.seeds = seeds
        self.rng = rng
        self.views = [parse(s) for s in seeds]
        self.pcaps = [i for i, v in enumerate(self.views) if isinstance(v, Pcap)]
        self.pcapngs = [i for i, v in enumerate(self.views) if isinstance(v, Pcapng)]

    def mutant(self) -> tuple[bytes, list[str]]:
        rng = self.rng
        index = rng.randrange(len(self.seeds))
        log = [f"seed {index}"]
        view = parse(self.seeds[index])
        if isinstance(view, Pcap) and rng.random() < 0.15:
            view = to_pcapng(view, rng)
            log.append("as pcapng")
        data: bytes
        structural = view is not None and rng.random() < 0.85
        if structural and view is not None:
            for _ in range(_count(rng)):
                log.append(self._structural(view))
            data = view.to_bytes()
        else:
            data = self.seeds[index]
        if not structural or rng.random() < 0.25:
            for _ in range(_count(rng)):
                data, what = self._raw(data)
                log.append(what)
        data = data[:MAX_MUTANT_BYTES]
        if rng.random() < 0.1:
            data, what = self._gzip(data)
            log.append(what)
        return data, log

    # -- structure ---------------------------------------------------------------------

    def _structural(self, view: Pcap | Pcapng) -> str:
        if isinstance(view, Pcap):
            ops: list[tuple[float, Callable[[Pcap], str]]] = [
                (1, self._pcap_header),
                (3, self._pcap_record_header),
                (2, self._pcap_records),
                (6, self._pcap_packet),
            ]
            return _weighted(self.rng, ops)(view)
        ng_ops: list[tuple[float, Callable[[Pcapng], str]]] = [
            (2, self._block_framing),
            (1, self._shb),
            (2, self._idb),
            (2, self._epb_fields),
            (5, self._epb_packet),
            (2, self._blocks),
        ]
        return _weighted(self.rng, ng_ops)(view)

    def _pcap_header(self, view: Pcap) -> str:
        rng, order = self.rng, view.order
        field = rng.choice(("magic", "version", "thiszone", "snaplen", "linktype", "fcs"))
        if field == "magic":
            magic = rng.choice(list(PCAP_MAGICS))
            view.header[0:4] = magic
            return f"pcap magic {magic.hex()}"
        if field == "version":
            struct.pack_into(
                order + "HH", view.header, 4, rng.choice((0, 1, 2, 0xFFFF)), rng.randint(0, 5)
            )
            return "pcap version"
        if field == "thiszone":
            struct.pack_into(
                order + "i", view.header, 8, rng.choice((-(2**31), -1, 3600, 2**31 - 1))
            )
            return "pcap thiszone"
        if field == "snaplen":
            snaplen = rng.choice(CAPLENS)
            struct.pack_into(order + "I", view.header, 16, snaplen)
            return f"pcap snaplen {snaplen}"
        current = view.linktype
        if field == "fcs":
            value = current | rng.choice((0x10000000, 0x04000000, 0xF0000000))
        else:
            value = rng.choice(LINKTYPES) if rng.random() < 0.8 else rng.getrandbits(16)
        struct.pack_into(order + "I", view.header, 20, value)
        return f"pcap linktype {value:#x}"

    def _pcap_record_header(self, view: Pcap) -> str:
        if not view.records:
            return self._pcap_header(view)
        rng, order = self.rng, view.order
        i = rng.randrange(len(view.records))
        head, data = view.records[i]
        field = rng.choice(("ts_sec", "ts_frac", "time", "incl_len", "orig_len", "orig_len"))
        if field in ("ts_sec", "time"):
            struct.pack_into(order + "I", head, 0, rng.choice(TS_SECONDS))
        if field in ("ts_frac", "time"):
            struct.pack_into(order + "I", head, 4, rng.choice(TS_FRACTIONS))
        if field == "incl_len":
            value = rng.choice((*CAPLENS, len(data) + 1, max(0, len(data) - 1)))
            struct.pack_into(order + "I", head, 8, value & 0xFFFFFFFF)
        if field == "orig_len":
            value = rng.choice((0, 1, max(0, len(data) - 1), len(data) + 1, 0xFFFFFFFF))
            struct.pack_into(order + "I", head, 12, value)
        return f"record {i} {field} -> {bytes(head).hex()}"

    def _pcap_records(self, view: Pcap) -> str:
        rng, records = self.rng, view.records
        op = rng.choice(("delete", "duplicate", "swap", "splice", "cut"))
        if not records:
            op = "splice"
        if op == "delete":
            del records[rng.randrange(len(records))]
        elif op == "duplicate":
            head, data = records[rng.randrange(len(records))]
            for _ in range(rng.choice((1, 1, 2, 50))):
                records.insert(rng.randint(0, len(records)), (bytearray(head), bytearray(data)))
        elif op == "swap":
            i, j = rng.randrange(len(records)), rng.randrange(len(records))
            records[i], records[j] = records[j], records[i]
        elif op == "cut":
            del records[rng.randint(0, len(records)) :]
        else:
            donor = self.views[rng.choice(self.pcaps)] if self.pcaps else None
            if isinstance(donor, Pcap) and donor.records:
                start = rng.randrange(len(donor.records))
                taken = donor.records[start : start + rng.randint(1, 20)]
                at = rng.randint(0, len(records))
                for head, data in reversed(taken):
                    if donor.order != view.order:
                        head = bytearray(
                            struct.pack(
                                view.order + "IIII", *struct.unpack(donor.order + "IIII", head)
                            )
                        )
                    records.insert(at, (bytearray(head), bytearray(data)))
        return f"records {op}"

    def _pcap_packet(self, view: Pcap) -> str:
        if not view.records:
            return self._pcap_header(view)
        rng = self.rng
        i = rng.randrange(len(view.records))
        head, data = view.records[i]
        packet, what = mutate_packet(rng, bytes(data), view.linktype, self._donor_packet())
        _incl, orig = struct.unpack_from(view.order + "II", head, 8)
        struct.pack_into(view.order + "II", head, 8, len(packet), max(orig, len(packet)))
        view.records[i] = (head, bytearray(packet))
        return f"record {i} packet: {what}"

    def _donor_packet(self) -> bytes:
        if not self.pcaps:
            return b""
        donor = self.views[self.rng.choice(self.pcaps)]
        if isinstance(donor, Pcap) and donor.records:
            return bytes(self.rng.choice(donor.records)[1])
        return b""

    # -- pcapng ------------------------------------------------------------------------

    def _pick_block(self, view: Pcapng, btypes: tuple[int, ...] | None = None) -> int | None:
        candidates = [
            i
            for i, (block, order) in enumerate(zip(view.blocks, view.orders, strict=True))
            if btypes is None or struct.unpack_from(order + "I", block, 0)[0] in btypes
        ]
        return self.rng.choice(candidates) if candidates else None

    def _block_framing(self, view: Pcapng) -> str:
        i = self._pick_block(view)
        if i is None:
            return self._blocks(view)
        rng, block, order = self.rng, view.blocks[i], view.orders[i]
        field = rng.choice(("type", "length", "trailer", "both"))
        if field == "type":
            btype = rng.choice(BLOCK_TYPES)
            struct.pack_into(order + "I", block, 0, btype)
            return f"block {i} type {btype:#x}"
        length = len(block)
        value = rng.choice(
            (
                0,
                4,
                8,
                12,
                13,
                length - 4,
                length + 1,
                length + 4,
                0x7FFFFFFC,
                0xFFFFFFFC,
                64 << 20,
                (1 << 20) + 4,
            )
        )
        value &= 0xFFFFFFFF
        if field in ("length", "both"):
            struct.pack_into(order + "I", block, 4, value)
        if field in ("trailer", "both"):
            struct.pack_into(order + "I", block, length - 4, value)
        return f"block {i} {field} length {value}"

    def _shb(self, view: Pcapng) -> str:
        i = self._pick_block(view, (SHB,))
        if i is None or len(view.blocks[i]) < 28:
            return self._blocks(view)
        rng, block, order = self.rng, view.blocks[i], view.orders[i]
        field = rng.choice(("bom", "version", "section_length"))
        if field == "bom":
            block[8:12] = block[8:12][::-1]
        elif field == "version":
            struct.pack_into(order + "HH", block, 12, rng.choice((0, 1, 2)), rng.randint(0, 3))
        else:
            struct.pack_into(order + "q", block, 16, rng.choice(TSOFFSET))
        return f"SHB {i} {field}"

    def _idb(self, view: Pcapng) -> str:
        i = self._pick_block(view, (IDB,))
        if i is None or len(view.blocks[i]) < 20:
            return self._blocks(view)
        rng, order = self.rng, view.orders[i]
        block = view.blocks[i]
        field = rng.choice(("linktype", "snaplen", "tsresol", "tsoffset", "bad_option"))
        if field == "linktype":
            struct.pack_into(order + "H", block, 8, rng.choice(LINKTYPES))
            return f"IDB {i} linktype"
        if field == "snaplen":
            struct.pack_into(order + "I", block, 12, rng.choice(CAPLENS))
            return f"IDB {i} snaplen"
        head = bytes(block[8:16])
        if field == "tsresol":
            value = rng.choice(TSRESOL) if rng.random() < 0.8 else rng.getrandbits(8)
            option = struct.pack(order + "HH", 9, 1) + bytes([value]) + b"\0\0\0"
            what = f"tsresol {value:#x}"
        elif field == "tsoffset":
            value = rng.choice(TSOFFSET)
            option = struct.pack(order + "HHq", 14, 8, value)
            what = f"tsoffset {value}"
        else:
            code = rng.choice((0, 2, 9, 14, 0xFFFF))
            claimed = rng.choice((0, 1, 7, 8, 0xFFFF))
            option = struct.pack(order + "HH", code, claimed) + rng.randbytes(rng.choice((0, 4, 8)))
            what = f"option {code} claiming {claimed}"
        # New options first: the reader's option loop stops at the first end-of-options.
        view.blocks[i] = pcapng_block(IDB, head + option + bytes(block[16:-4]), order)
        return f"IDB {i} {what}"

    def _epb_fields(self, view: Pcapng) -> str:
        i = self._pick_block(view, (EPB, PB))
        if i is None or len(view.blocks[i]) < 32:
            return self._blocks(view)
        rng, block, order = self.rng, view.blocks[i], view.orders[i]
        field = rng.choice(("interface", "ts_high", "ts_low", "caplen", "orig_len"))
        offset = {"interface": 8, "ts_high": 12, "ts_low": 16, "caplen": 20, "orig_len": 24}[field]
        if field == "interface":
            value = rng.choice((0, 1, 2, 255, 4096, 0xFFFFFFFF))
        elif field == "caplen":
            value = rng.choice((*CAPLENS, len(block) - 32, len(block) - 31))
        else:
            value = rng.choice(INTERESTING_32) if rng.random() < 0.7 else rng.getrandbits(32)
        struct.pack_into(order + "I", block, offset, value & 0xFFFFFFFF)
        return f"EPB {i} {field} {value}"

    def _epb_packet(self, view: Pcapng) -> str:
        i = self._pick_block(view, (EPB,))
        parts = epb_parts(view.blocks[i], view.orders[i]) if i is not None else None
        if i is None or parts is None:
            return self._blocks(view)
        order = view.orders[i]
        head, packet, rest = parts
        interfaces = interface_linktypes(view)
        ifid = struct.unpack_from(order + "I", head, 8)[0]
        linktype = interfaces[ifid] if ifid < len(interfaces) else 1
        packet, what = mutate_packet(self.rng, packet, linktype, self._donor_packet())
        view.blocks[i] = make_epb(head, packet, rest, order)
        return f"EPB {i} packet: {what}"

    def _blocks(self, view: Pcapng) -> str:
        rng, blocks, orders = self.rng, view.blocks, view.orders
        op = rng.choice(("delete", "duplicate", "swap", "insert", "insert", "splice"))
        if not blocks:
            op = "insert"
        if op == "delete":
            i = rng.randrange(len(blocks))
            del blocks[i], orders[i]
        elif op == "duplicate":
            i = rng.randrange(len(blocks))
            at = rng.randint(0, len(blocks))
            for _ in range(rng.choice((1, 1, 2, 50))):
                blocks.insert(at, bytearray(blocks[i]))
                orders.insert(at, orders[i])
        elif op == "swap":
            i, j = rng.randrange(len(blocks)), rng.randrange(len(blocks))
            blocks[i], blocks[j] = blocks[j], blocks[i]
            orders[i], orders[j] = orders[j], orders[i]
        elif op == "splice" and self.pcapngs:
            donor = self.views[rng.choice(self.pcapngs)]
            assert isinstance(donor, Pcapng)
            start = rng.randrange(len(donor.blocks)) if donor.blocks else 0
            taken = donor.blocks[start : start + rng.randint(1, 10)]
            at = rng.randint(0, len(blocks))
            blocks[at:at] = [bytearray(b) for b in taken]
            orders[at:at] = donor.orders[start : start + len(taken)]
        else:
            at = rng.randint(0, len(blocks))
            order = orders[at - 1] if at and orders else "<"
            block, what = self._new_block(order)
            blocks.insert(at, block)
            orders.insert(at, order)
            return f"blocks insert {what} at {at}"
        return f"blocks {op}"

    def _new_block(self, order: str) -> tuple[bytearray, str]:
        rng = self.rng
        kind = rng.choice(("SPB", "PB", "IDB", "SHB", "NRB", "ISB", "DSB", "custom", "unknown"))
        packet = self._donor_packet()
        if kind == "SPB":
            orig = rng.choice((len(packet), 0, 0xFFFFFFFF, len(packet) + 100))
            body = struct.pack(order + "I", orig) + packet
            return pcapng_block(SPB, body, order), kind
        if kind == "PB":
            body = struct.pack(order + "HHIIII", 0, 0, 0, 0, len(packet), len(packet)) + packet
            return pcapng_block(PB, body, order), kind
        if kind == "IDB":
            body = struct.pack(order + "HHI", rng.choice(LINKTYPES), 0, rng.choice(CAPLENS))
            return pcapng_block(IDB, body, order), kind
        if kind == "SHB":
            new_order = rng.choice(("<", ">"))
            body = struct.pack(new_order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
            return pcapng_block(SHB, body, new_order), f"SHB {new_order}"
        btype = {"NRB": 4, "ISB": 5, "DSB": 10, "custom": 0xBAD}.get(kind, rng.getrandbits(32))
        return pcapng_block(btype, rng.randbytes(rng.choice((0, 4, 16, 64))), order), kind

    # -- raw bytes and gzip ------------------------------------------------------------

    def _raw(self, data: bytes) -> tuple[bytes, str]:
        rng = self.rng
        if not data:
            return rng.randbytes(rng.randint(1, 64)), "random bytes"
        op = rng.choice(
            ("bytes", "bytes", "bytes", "truncate", "duplicate", "delete", "splice", "insert")
        )
        if op == "bytes":
            buf = bytearray(data)
            if rng.random() < 0.25:  # headers decide the most: aim at the first bytes
                head = buf[:64]
                what = mutate_bytes(rng, head)
                buf[:64] = head
            else:
                what = mutate_bytes(rng, buf)
            return bytes(buf), f"raw {what}"
        at = rng.randint(0, len(data))
        if op == "truncate":
            cut = (
                rng.randint(0, len(data) - 1)
                if rng.random() < 0.5
                else max(0, len(data) - rng.randint(1, 64))
            )
            return data[:cut], f"raw truncate at {cut}"
        if op == "duplicate":
            size = rng.randint(1, min(len(data), 4096))
            start = rng.randint(0, len(data) - size)
            return data[:at] + data[start : start + size] + data[at:], f"raw duplicate {size} bytes"
        if op == "delete":
            size = rng.randint(1, min(len(data), 4096))
            return data[:at] + data[at + size :], f"raw delete {size} bytes at {at}"
        if op == "splice":
            other = rng.choice(self.seeds)
            cut = rng.randint(0, len(other))
            return data[:at] + other[cut:], f"raw splice at {at}"
        size = rng.randint(1, 64)
        return data[:at] + rng.randbytes(size) + data[at:], f"raw insert {size} bytes at {at}"

    def _gzip(self, data: bytes) -> tuple[bytes, str]:
        rng = self.rng
        op = rng.choice(("plain", "plain", "truncated", "flipped", "members", "trailing"))
        if op == "members" and len(data) > 1:
            at = rng.randint(1, len(data) - 1)
            return gzip.compress(data[:at], mtime=0) + gzip.compress(
                data[at:], mtime=0
            ), "gzip two members"
        packed = bytearray(gzip.compress(data, mtime=0))
        if op == "truncated":
            cut = rng.randint(10, max(10, len(packed) - 1))
            return bytes(packed[:cut]), f"gzip truncated at {cut}"
        if op == "flipped" and len(packed) > 18:
            at = rng.randint(10, len(packed) - 9)
            packed[at] ^= 1 << rng.randint(0, 7)
            return bytes(packed), f"gzip flipped byte {at}"
        if op == "trailing":
            junk = rng.choice((b"\0" * 16, b"junk", b"\x1f\x8b\x08"))
            return bytes(packed) + junk, f"gzip trailing {junk!r}"
        return bytes(packed), "gzip"


def to_pcapng(view: Pcap, rng: random.Random) -> Pcapng:
    """The same records as a pcapng section (either byte order, µs or ns resolution)."""
    order = rng.choice(("<", ">"))
    nanos = rng.random() < 0.5
    shb = pcapng_block(SHB, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)
    options = struct.pack(order + "HH", 9, 1) + b"\x09\0\0\0" if nanos else b""
    idb = pcapng_block(IDB, struct.pack(order + "HHI", view.linktype, 0, 262144) + options, order)
    nano_magics = (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    fraction = 10**9 if bytes(view.header[:4]) in nano_magics else 10**6
    unit = 10**9 if nanos else 10**6
    blocks = [shb, idb]
    for head, data in view.records:
        sec, frac, _incl, orig = struct.unpack(view.order + "IIII", head)
        ticks = (sec * unit + frac * unit // fraction) & ((1 << 64) - 1)
        body = struct.pack(
            order + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig
        ) + bytes(data)
        blocks.append(pcapng_block(EPB, body, order))
    return Pcapng(blocks, b"", [order] * len(blocks))


def _count(rng: random.Random) -> int:
    """How many mutations to stack: mostly one or two, now and then many."""
    count = 1
    while count < 8 and rng.random() < 0.45:
        count += 1
    return count


def _weighted(rng: random.Random, options: list[tuple[float, _T]]) -> _T:
    total = sum(weight for weight, _ in options)
    roll = rng.random() * total
    for weight, option in options:
        roll -= weight
        if roll <= 0:
            return option
    return options[-1][1]
