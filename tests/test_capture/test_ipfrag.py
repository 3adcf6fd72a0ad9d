"""IPv4/IPv6 fragment reassembly through the Decoder, and the reassembler's limits."""

from __future__ import annotations

import random
import re

import pytest
from scapy.all import IP, UDP, Ether, IPv6, IPv6ExtHdrFragment, fragment, fragment6, raw

from dotaudit.capture.decode import Decoder
from dotaudit.capture.ipfrag import FragmentReassembler
from dotaudit.capture.packet import Anomaly, Packet
from dotaudit.capture.reader import CaptureReader
from tests.conftest import corpus_path
from tests.test_capture.capwrite import MACS

BODY = bytes(range(256)) * 12  # 3072 bytes
DGRAM4 = IP(src="192.0.2.1", dst="192.0.2.2", id=777) / UDP(sport=53, dport=5555) / BODY
DGRAM6 = (
    IPv6(src="2001:db8::53", dst="2001:db8::1")
    / IPv6ExtHdrFragment(id=0xABCD)
    / UDP(sport=53, dport=5556)
    / BODY
)


def frags4(size: int = 1000) -> list[bytes]:
    return [raw(Ether(**MACS) / f) for f in fragment(DGRAM4, fragsize=size)]


def frags6() -> list[bytes]:
    return [raw(Ether(**MACS) / f) for f in fragment6(DGRAM6, 1280)]


def feed(frames: list[bytes], dec: Decoder, t0: float = 10.0) -> list[Packet]:
    out = []
    for i, data in enumerate(frames, 1):
        pkt = dec.decode(i, t0 + i, 1, data, len(data))
        if pkt is not None:
            out.append(pkt)
    return out


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
def test_reassembly(version: int, order: str):
    pieces = frags4() if version == 4 else frags6()
    assert len(pieces) >= 3
    if order == "reversed":
        pieces.reverse()
    elif order == "shuffled":
        random.Random(5).shuffle(pieces)
    sink: list[Anomaly] = []
    dec = Decoder(sink.append)
    (pkt,) = feed(pieces, dec)
    assert pkt.payload == BODY
    assert (pkt.ip_version, pkt.proto, pkt.sport) == (version, 17, 53)
    assert pkt.frame == len(pieces) and pkt.ts == 10.0 + len(pieces)  # the completing fragment
    assert sink == [] and dec.frags.held_bytes == 0 and len(dec.frags) == 0


def test_duplicate_fragment_is_silent():
    pieces = frags4()
    sink: list[Anomaly] = []
    (pkt,) = feed([pieces[0], pieces[0], *pieces[1:]], Decoder(sink.append))
    assert pkt.payload == BODY and sink == []


def test_overlap_first_bytes_win_and_is_reported():
    sink: list[Anomaly] = []
    frags = FragmentReassembler(sink.append)
    key = (4, b"\x01" * 4, b"\x02" * 4, 17, 9)
    assert frags.add(key, 0, True, b"A" * 16, 17, 1, 1.0) is None
    assert frags.add(key, 8, True, b"B" * 16, 17, 2, 2.0) is None  # overlaps bytes 8..16
    done = frags.add(key, 24, False, b"C" * 8, 17, 3, 3.0)
    assert done == (b"A" * 16 + b"B" * 8 + b"C" * 8, 17)
    assert [(a.what, a.frame) for a in sink] == [("ip_frag_overlap", 2)]


def test_overlap_later_fragment_covering_gap():
    sink: list[Anomaly] = []
    frags = FragmentReassembler(sink.append)
    key = (6, b"\x01" * 16, b"\x02" * 16, 0, 1)
    frags.add(key, 8, True, b"b" * 8, 17, 1, 1.0)
    frags.add(key, 24, False, b"d" * 8, 17, 2, 1.0)
    done = frags.add(key, 0, True, b"X" * 32, 17, 3, 1.0)  # overlaps both, fills the gaps
    assert done == (b"X" * 8 + b"b" * 8 + b"X" * 8 + b"d" * 8, 17)
    assert [a.what for a in sink] == ["ip_frag_overlap"]


def test_timeout_by_capture_time():
    pieces = frags4()
    sink: list[Anomaly] = []
    dec = Decoder(sink.append, frag_timeout=30.0)
    dec.decode(1, 100.0, 1, pieces[0], len(pieces[0]))
    later = [dec.decode(i, 131.0, 1, p, len(p)) for i, p in enumerate(pieces[1:], 2)]
    assert later == [None] * len(later)
    assert [a.what for a in sink] == ["ip_frag_incomplete"]
    assert "timed out" in sink[0].detail


def test_finish_reports_incomplete():
    sink: list[Anomaly] = []
    dec = Decoder(sink.append)
    feed(frags6()[:-1], dec)
    assert sink == []
    dec.finish()
    assert [a.what for a in sink] == ["ip_frag_incomplete"]
    assert dec.frags.held_bytes == 0


def test_flood_of_incomplete_fragments_stays_bounded():
    sink: list[Anomaly] = []
    budget = 64 * 1024
    dec = Decoder(sink.append, max_frag_bytes=budget)
    first = IP(src="203.0.113.5", dst="192.0.2.2", flags="MF", frag=0, proto=17)
    peak = 0
    for i in range(3000):
        data = raw(Ether(**MACS) / first.copy() / (b"z" * 1000))
        data = data[:18] + i.to_bytes(2, "big") + data[20:]  # distinct IP id per datagram
        assert dec.decode(i + 1, 1.0, 1, data, len(data)) is None
        peak = max(peak, dec.frags.held_bytes)
    assert peak <= budget
    assert len(dec.frags) < 100
    assert sink and {a.what for a in sink} == {"ip_frag_incomplete"}
    assert len(sink) > 2900
    # A real datagram still gets through afterwards.
    (pkt,) = feed(frags4(), dec, t0=2.0)
    assert pkt.payload == BODY


def test_too_many_fragments_dropped():
    sink: list[Anomaly] = []
    frags = FragmentReassembler(sink.append)
    key = (4, b"a" * 4, b"b" * 4, 17, 1)
    for n in range(300):
        frags.add(key, 8 + n * 16, True, b"q" * 8, 17, n, 1.0)  # gaps everywhere
    assert "ip_frag_incomplete" in [a.what for a in sink]
    assert frags.held_bytes < 300 * 8


def test_oversized_datagram():
    sink: list[Anomaly] = []
    frags = FragmentReassembler(sink.append)
    key = (4, b"a" * 4, b"b" * 4, 17, 1)
    assert frags.add(key, 65528, False, b"x" * 100, 17, 1, 1.0) is None
    assert [a.what for a in sink] == ["ip_frag_oversize"]


def test_snaplen_cut_fragment_is_not_joined():
    pieces = frags4()
    sink: list[Anomaly] = []
    dec = Decoder(sink.append)
    cut = pieces[1][:100]
    assert dec.decode(1, 1.0, 1, cut, len(pieces[1])) is None
    assert [a.what for a in sink] == ["snaplen_truncated"]
    assert len(dec.frags) == 0


# -- corpus ------------------------------------------------------------------------


def corpus_udp_lengths(name: str) -> tuple[list[tuple[int, int]], list[Anomaly]]:
    sink: list[Anomaly] = []
    dec = Decoder(sink.append)
    out = []
    for frame in CaptureReader(corpus_path(name)):
        pkt = dec.decode(*frame)
        if pkt is not None and pkt.proto == 17:
            out.append((pkt.frame, len(pkt.payload) + 8))
    return out, sink


@pytest.mark.corpus
def test_zeek_ipv6_fragmented_dns():
    """Oracle: Zeek baseline expected/core.ipv6-frag/output (UDP lengths after reassembly)."""
    lengths, sink = corpus_udp_lengths("zeek/dns-ipv6-fragmented/ipv6-fragmented-dns.pcap")
    base = corpus_path("zeek/dns-ipv6-fragmented/expected/core.ipv6-frag/output").read_text()
    zeek = [int(x) for x in re.findall(r"ulen=(\d+)", base)]
    assert zeek == [81, 331, 82, 82, 3238]
    assert [n for _, n in lengths] == zeek
    assert sink == []


@pytest.mark.corpus
def test_ndpi_dns_fragmented_frames_match_tshark():
    """Oracle: the tshark transcript's section (a): frames carrying UDP DNS messages,
    fragmented ones listed at the frame that completes reassembly."""
    name = "ndpi/dns-fragmented-tcp-udp/dns_fragmented.pcap"
    transcript = corpus_path(name + ".tshark.txt").read_text()
    section = transcript.split("## (a) ")[1].split("\n## ")[0]
    tshark_udp = {
        int(cols[0])
        for line in section.splitlines()
        if line[:1].isdigit() and (cols := line.split("\t"))[5]
    }
    lengths, sink = corpus_udp_lengths(name)
    assert {frame for frame, _ in lengths} == tshark_udp
    assert max(n for _, n in lengths) > 1500  # some datagrams really were reassembled
    assert sink == []


@pytest.mark.parametrize(("length", "oversize"), [(7, False), (8, True)])
def test_datagram_may_end_at_byte_65535_but_not_beyond(length: int, oversize: bool):
    # RFC 791/8200: the reassembled datagram's payload ends at most at offset 65535.
    sink: list[Anomaly] = []
    frags = FragmentReassembler(sink.append)
    key = (4, b"a" * 4, b"b" * 4, 17, 1)
    assert frags.add(key, 65528, False, b"x" * length, 17, 1, 1.0) is None
    assert [a.what for a in sink] == (["ip_frag_oversize"] if oversize else [])
    assert (frags.held_bytes > 0) is not oversize


@pytest.mark.parametrize(("pieces", "dropped"), [(256, False), (257, True)])
def test_a_datagram_holds_at_most_256_pieces(pieces: int, dropped: bool):
    sink: list[Anomaly] = []
    frags = FragmentReassembler(sink.append)
    key = (4, b"a" * 4, b"b" * 4, 17, 1)
    for n in range(pieces):  # 8-byte pieces with 8-byte holes between them: none join
        frags.add(key, 16 + n * 16, True, b"q" * 8, 17, n + 1, 1.0)
    assert [a.detail for a in sink] == (["IPv4 id 0x1: too many fragments"] if dropped else [])
    assert (frags.held_bytes == 0) is dropped


@pytest.mark.parametrize(("budget_over", "evicted"), [(0, False), (1, True)])
def test_fragment_memory_budget_bites_one_byte_past_it(budget_over: int, evicted: bool):
    sink: list[Anomaly] = []
    probe = FragmentReassembler(lambda _a: None)
    key = (4, b"a" * 4, b"b" * 4, 17, 1)
    probe.add(key, 0, True, b"q" * 800, 17, 1, 1.0)
    held = probe.held_bytes  # what one pending 800-byte fragment costs
    frags = FragmentReassembler(sink.append, max_bytes=held - budget_over)
    frags.add(key, 0, True, b"q" * 800, 17, 1, 1.0)
    assert [a.detail for a in sink] == (["IPv4 id 0x1: evicted: memory budget"] if evicted else [])
    assert frags.held_bytes == (0 if evicted else held)
