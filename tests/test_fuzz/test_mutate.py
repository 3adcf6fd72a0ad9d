"""The fuzzer's mutants: reproducible, varied, and aimed at every layer they claim to."""

from __future__ import annotations

import gzip
import random
import struct

import pytest

from tests.fuzz.captures import PCAPS, Pcap, Pcapng, load_seed, parse, seed_paths
from tests.fuzz.mutate import Mutator, to_pcapng
from tests.fuzz.packets import layers, mutate_packet
from tests.test_capture import capwrite

SEEDS = [load_seed(p) for p in sorted(PCAPS.glob("*.pcap"))]


def mutants(seed: int, count: int) -> list[tuple[bytes, list[str]]]:
    mutator = Mutator(SEEDS, random.Random(seed))
    return [mutator.mutant() for _ in range(count)]


def test_a_seed_reproduces_its_mutants() -> None:
    assert mutants(5, 40) == mutants(5, 40)
    assert mutants(5, 40) != mutants(6, 40)


def test_seed_views_serialise_back_to_the_seed() -> None:
    for data in SEEDS:
        view = parse(data)
        assert view is not None
        assert view.to_bytes() == data


def test_corpus_seeds_serialise_back(corpus: object) -> None:
    paths = [p for p in seed_paths(require_corpus=True) if PCAPS not in p.parents]
    assert len(paths) >= 30
    kinds = set()
    for path in paths:
        data = load_seed(path)
        view = parse(data)
        assert view is not None, path
        kinds.add(type(view))
        assert view.to_bytes() == data, path
    assert kinds == {Pcap, Pcapng}


def test_mutations_reach_every_layer() -> None:
    logs = " | ".join("; ".join(log) for _, log in mutants(11, 600))
    for marker in (
        "pcap linktype",
        "pcap magic",
        "ts_frac",
        "incl_len",
        "records splice",
        "as pcapng",
        "IDB",
        "EPB",
        "block",
        "tcp.",
        "udp.",
        "ip.",
        "bit flips",
        "raw truncate",
        "gzip",
    ):
        assert marker in logs, marker


def test_mutants_differ_from_their_seeds() -> None:
    changed = sum(data not in SEEDS for data, _ in mutants(3, 200))
    assert changed >= 190


def test_gzip_mutants_are_gzip() -> None:
    wrapped = [data for data, log in mutants(4, 600) if any(s.startswith("gzip") for s in log)]
    assert wrapped and all(data[:2] == b"\x1f\x8b" for data in wrapped)
    whole = [d for d, log in mutants(4, 600) if log[-1] == "gzip"]
    assert all(gzip.decompress(d) for d in whole)


def test_pcap_to_pcapng_keeps_packets_and_times() -> None:
    data = capwrite.pcap([(1.5, b"\x45" + bytes(39)), (2.25, b"\x60" + bytes(39))], linktype=101)
    view = parse(data)
    assert isinstance(view, Pcap)
    from dotaudit.capture.reader import CaptureReader

    for attempt in range(4):
        ng = to_pcapng(view, random.Random(attempt)).to_bytes()
        path = PCAPS.parent / ".fuzz-test-roundtrip.pcapng"
        try:
            path.write_bytes(ng)
            frames = list(CaptureReader(path))
        finally:
            path.unlink(missing_ok=True)
        assert [(f[1], f[2], f[3]) for f in frames] == [
            (1.5, 101, b"\x45" + bytes(39)),
            (2.25, 101, b"\x60" + bytes(39)),
        ]


@pytest.mark.parametrize(
    ("linktype", "prefix"),
    [
        (1, b"\0" * 12 + b"\x08\x00"),
        (1, b"\0" * 12 + b"\x81\x00\0\0\x08\x00"),
        (101, b""),
        (113, bytes(16)),
    ],
)
def test_layers_are_found_behind_each_link(linktype: int, prefix: bytes) -> None:
    ip = bytes([0x45, 0, 0, 48, 0, 0, 0, 0, 64, 17, 0, 0]) + bytes(8)
    udp = struct.pack(">HHHH", 5353, 53, 28, 0)
    found = layers(prefix + ip + udp + b"payload", linktype)
    assert (found.ip, found.l4, found.protocol) == (len(prefix), len(prefix) + 20, 17)
    assert found.payload == len(prefix) + 28


def test_header_mutations_land_on_the_named_field() -> None:
    packet = bytes([0x45, 0, 0, 48, 0, 0, 0, 0, 64, 6, 0, 0]) + bytes(8)
    packet += struct.pack(">HHIIBBH", 40000, 853, 1, 0, 0x50, 0x02, 1024) + bytes(4)
    rng = random.Random(0)
    for _ in range(300):
        mutated, what = mutate_packet(rng, packet, 101, b"")
        if what.startswith("tcp.dport="):
            assert mutated[22:24] == int(what.split("=")[1], 16).to_bytes(2, "big")
            assert mutated[:22] == packet[:22] and mutated[24:] == packet[24:]
            return
    pytest.fail("no tcp.dport mutation in 300 tries")
