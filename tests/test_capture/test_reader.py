"""CaptureReader: pcap/pcapng/gzip formats, damage handling, and the public corpus."""

from __future__ import annotations

import gzip
import os
import re
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, Ether, IPv6, raw

from dotaudit.capture.reader import MAX_CAPLEN, CaptureReader
from dotaudit.errors import InputError
from tests.conftest import corpus_path
from tests.fuzzing import examples
from tests.test_capture import capwrite
from tests.test_capture.capwrite import MACS


def eth(**fields: int) -> Ether:
    return Ether(**MACS, **fields)


P1 = raw(eth() / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1000, dport=853) / b"one")
P2 = raw(eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5000, dport=53) / b"2")
P3 = raw(IP(src="192.0.2.3", dst="192.0.2.4") / UDP(sport=1, dport=2) / b"three")
RECORDS = [(1700000000.25, P1), (1700000001.5, P2), (1700000002.75, P3)]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def frames(path: Path, **kw: int) -> list[tuple[int, float, int, bytes, int]]:
    return list(CaptureReader(path, **kw))


@pytest.mark.parametrize("nanos", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_pcap_both_byte_orders_and_resolutions(tmp_path: Path, nanos: bool, big_endian: bool):
    path = write(tmp_path, "x.pcap", capwrite.pcap(RECORDS, nanos=nanos, big_endian=big_endian))
    reader = CaptureReader(path)
    got = list(reader)
    assert reader.format == "pcap"
    assert [f[0] for f in got] == [1, 2, 3]
    assert [f[3] for f in got] == [P1, P2, P3]
    assert [f[2] for f in got] == [1, 1, 1]
    assert [f[1] for f in got] == pytest.approx([r[0] for r in RECORDS], abs=1e-6)
    assert reader.truncated_at is None and reader.warnings == []
    assert reader.bytes_read == path.stat().st_size


def test_pcap_nanosecond_precision(tmp_path: Path):
    data = capwrite.pcap([(0.0, P1)], nanos=True)
    # 123456789 ns after second 10: rewrite the record header fractional field by hand.
    data = data[:24] + (10).to_bytes(4, "little") + (123456789).to_bytes(4, "little") + data[32:]
    (f,) = frames(write(tmp_path, "ns.pcap", data))
    assert f[1] == pytest.approx(10.123456789, abs=1e-9)


def with_fraction(data: bytes, record_at: int, seconds: int, fraction: int) -> bytes:
    """``data`` with the record header at ``record_at`` stamped (little-endian pcap)."""
    stamp = seconds.to_bytes(4, "little") + fraction.to_bytes(4, "little")
    return data[:record_at] + stamp + data[record_at + 8 :]


@pytest.mark.parametrize(
    ("nanos", "fraction", "overflows"),
    [
        (False, 999_999, 0),
        (False, 1_000_000, 1),
        (False, 0xFFFFFFFF, 1),
        (True, 999_999_999, 0),
        (True, 1_000_000_000, 1),
    ],
)
def test_sub_second_field_of_a_second_or_more_is_counted(
    tmp_path: Path, nanos: bool, fraction: int, overflows: int
):
    data = with_fraction(capwrite.pcap(RECORDS, nanos=nanos), 24, 0xFFFFFFFF, fraction)
    reader = CaptureReader(write(tmp_path, "f.pcap", data))
    got = list(reader)
    assert [f[3] for f in got] == [P1, P2, P3]  # every record is still read
    units = 1e9 if nanos else 1e6
    assert got[0][1] == pytest.approx(0xFFFFFFFF + fraction / units, abs=1e-3)
    assert reader.anomalies == ({"timestamp_fraction_overflow": overflows} if overflows else {})
    flagged = [w for w in reader.warnings if "sub-second timestamp field" in w]
    assert len(flagged) == (1 if overflows else 0)


def test_original_length_reported(tmp_path: Path):
    path = write(tmp_path, "s.pcap", capwrite.pcap([(1.0, P1[:40], len(P1))], snaplen=40))
    ((_, _, _, data, orig),) = frames(path)
    assert data == P1[:40] and orig == len(P1)


def test_small_chunks_give_same_frames(tmp_path: Path):
    path = write(tmp_path, "c.pcap", capwrite.pcap(RECORDS * 50))
    assert frames(path, chunk_size=64) == frames(path)
    assert len(frames(path, chunk_size=64)) == 150


def ng_two_interfaces(big_endian: bool = False) -> bytes:
    be = big_endian
    return b"".join(
        [
            capwrite.shb(big_endian=be),
            capwrite.idb(1, tsresol=9, big_endian=be),  # ns, Ethernet
            capwrite.idb(101, tsresol=0x80 | 10, tsoffset=1000, big_endian=be),  # 2^-10 s, raw
            capwrite.idb(1, big_endian=be),  # default µs
            capwrite.epb(0, 1_700_000_000_123_456_789, P1, big_endian=be),
            capwrite.epb(1, 5 * 1024 + 512, P3, big_endian=be),
            capwrite.epb(2, 1_700_000_002_500_000, P2, big_endian=be),
        ]
    )


@pytest.mark.parametrize("big_endian", [False, True])
def test_pcapng_interfaces_resolutions_offsets(tmp_path: Path, big_endian: bool):
    reader = CaptureReader(write(tmp_path, "x.pcapng", ng_two_interfaces(big_endian)))
    got = list(reader)
    assert reader.format == "pcapng"
    assert [(f[0], f[2], f[3]) for f in got] == [(1, 1, P1), (2, 101, P3), (3, 1, P2)]
    assert got[0][1] == pytest.approx(1_700_000_000.123456789, abs=1e-6)
    assert got[1][1] == pytest.approx(1000 + 5.5)  # offset + 5632/1024
    assert got[2][1] == pytest.approx(1_700_000_002.5)
    assert reader.warnings == []


def test_pcapng_several_sections_reset_interfaces_and_byte_order(tmp_path: Path):
    data = (
        ng_two_interfaces(False)
        + capwrite.shb(big_endian=True)
        + capwrite.idb(229, big_endian=True)
        + capwrite.epb(0, 7_000_000, P2[14:], big_endian=True)
        + capwrite.epb(1, 8_000_000, P3, big_endian=True)  # interface 1 died with section 1
        + capwrite.epb(0, 9_000_000, P2[14:], big_endian=True)
    )
    reader = CaptureReader(write(tmp_path, "s.pcapng", data))
    got = list(reader)
    assert [(f[0], f[2]) for f in got] == [(1, 1), (2, 101), (3, 1), (4, 229), (6, 229)]
    assert got[3][1] == pytest.approx(7.0) and got[4][1] == pytest.approx(9.0)
    assert any("unknown interface 1" in w for w in reader.warnings)


def test_pcapng_simple_and_obsolete_packet_blocks(tmp_path: Path):
    data = b"".join(
        [
            capwrite.shb(),
            capwrite.idb(1, snaplen=40),
            capwrite.obsolete_pb(0, 3_000_000, P1[:40], len(P1)),
            capwrite.spb(P2[:40], len(P2)),
        ]
    )
    got = frames(write(tmp_path, "spb.pcapng", data))
    assert [(f[0], f[3], f[4]) for f in got] == [(1, P1[:40], len(P1)), (2, P2[:40], len(P2))]
    assert got[0][1] == pytest.approx(3.0)
    assert got[1][1] == got[0][1]  # an SPB has no timestamp of its own


def test_pcapng_other_blocks_skipped(tmp_path: Path):
    data = b"".join(
        [
            capwrite.shb(),
            capwrite.idb(1),
            capwrite.block(4, b"\x01\x00\x08\x00" + bytes(8) + b"\0" * 4),  # NRB
            capwrite.dsb(b"CLIENT_RANDOM 00 11\n"),
            capwrite.epb(0, 1, P1),
            capwrite.block(5, bytes(12)),  # ISB
            capwrite.block(0x00000BAD, bytes(8)),  # custom
            capwrite.block(0x1234, bytes(4)),  # unknown
            capwrite.block(0x1234, bytes(4)),
            capwrite.epb(0, 2, P2),
        ]
    )
    reader = CaptureReader(write(tmp_path, "o.pcapng", data))
    assert [f[3] for f in reader] == [P1, P2]
    assert len(reader.warnings) == 1 and "0x1234" in reader.warnings[0]


def test_pcapng_long_skippable_block_is_streamed(tmp_path: Path):
    big = capwrite.dsb(b"k" * (3 << 20))
    data = capwrite.shb() + capwrite.idb(1) + big + capwrite.epb(0, 1, P1)
    reader = CaptureReader(write(tmp_path, "big.pcapng", data), chunk_size=4096)
    assert [f[3] for f in reader] == [P1]
    assert reader.warnings == []


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b[:4] + (13).to_bytes(4, "little") + b[8:], "bad length"),
        (lambda b: b[:-4] + (999).to_bytes(4, "little"), "trailing length"),
        (lambda b: b[:4] + (8).to_bytes(4, "little") + b[8:], "bad length"),
    ],
)
def test_pcapng_bad_block_length_stops_with_offset(tmp_path: Path, mangle, reason):  # type: ignore[no-untyped-def]
    head = capwrite.shb() + capwrite.idb(1) + capwrite.epb(0, 1, P1)
    bad = mangle(capwrite.epb(0, 2, P2))
    reader = CaptureReader(write(tmp_path, "b.pcapng", head + bad + capwrite.epb(0, 3, P3)))
    assert [f[3] for f in reader] == [P1]
    assert len(reader.warnings) == 1
    assert f"byte offset {len(head)}" in reader.warnings[0] and reason in reader.warnings[0]


@pytest.mark.parametrize("inner", ["pcap", "pcapng"])
def test_gzip_wrapped(tmp_path: Path, inner: str):
    plain = capwrite.pcap(RECORDS) if inner == "pcap" else ng_two_interfaces()
    reader = CaptureReader(write(tmp_path, "capture.bin", gzip.compress(plain)))
    assert reader.format == inner + ".gz"
    assert [f[3] for f in reader] == [f[3] for f in CaptureReader(write(tmp_path, "p", plain))]
    assert reader.bytes_read == len(plain)


@pytest.mark.parametrize("trailer", [b"junk", b"\x1f\x8b\x08", b"\0" * 7])
def test_gzip_with_a_trailer_ends(tmp_path: Path, trailer: bytes):
    # The header is sniffed with a short read, so the member ends in a later call, with
    # the trailer both in unused_data and in unconsumed_tail: that once looped forever.
    path = write(tmp_path, "j.pcap.gz", gzip.compress(capwrite.pcap(RECORDS * 50)) + trailer)
    got: list[object] = []
    reader = CaptureReader(path)
    worker = threading.Thread(target=lambda: got.extend(reader), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the reader did not finish"
    assert len(got) == 150
    if trailer.strip(b"\0"):
        assert len(reader.warnings) == 1 and "gzip" in reader.warnings[0]
    else:
        assert reader.warnings == []


def test_truncated_gzip_is_a_warning(tmp_path: Path):
    plain = capwrite.pcap(RECORDS * 400)
    packed = gzip.compress(plain)
    reader = CaptureReader(write(tmp_path, "t.pcap.gz", packed[: len(packed) // 2]))
    got = list(reader)
    assert 0 < len(got) < 1200
    assert got == frames(write(tmp_path, "full.pcap", plain))[: len(got)]
    assert reader.truncated_at is not None
    assert f"byte offset {reader.truncated_at}" in reader.warnings[0]


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("a.pcap", ng_two_interfaces(), "pcapng"),
        ("b.pcapng", capwrite.pcap(RECORDS), "pcap"),
        ("c.txt", capwrite.pcap(RECORDS), "pcap"),
        ("d.pcapng", gzip.compress(capwrite.pcap(RECORDS)), "pcap.gz"),
    ],
)
def test_format_from_magic_not_extension(tmp_path: Path, name: str, content: bytes, fmt: str):
    with CaptureReader(write(tmp_path, name, content)) as reader:
        assert reader.format == fmt


@pytest.mark.parametrize("compress", [False, True])
def test_reads_from_a_pipe(tmp_path: Path, compress: bool):
    data = capwrite.pcap(RECORDS * 100)
    if compress:
        data = gzip.compress(data)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(data,))
    writer.start()
    try:
        got = frames(fifo, chunk_size=512)
    finally:
        writer.join(timeout=10)
    assert [f[3] for f in got] == [P1, P2, P3] * 100


@pytest.mark.parametrize(
    "content", [b"", b"hello world, not a capture\n", b"\x0a\x0d\x0d\x0a" + bytes(20), b"\x1f\x8b"]
)
def test_not_a_capture(tmp_path: Path, content: bytes):
    path = write(tmp_path, "x.pcap", content)
    with pytest.raises(InputError) as err:
        CaptureReader(path)
    assert str(err.value) == f"{path}: not a pcap or pcapng file"


def test_gzip_of_garbage_is_not_a_capture(tmp_path: Path):
    path = write(tmp_path, "g.pcap.gz", gzip.compress(b"plain text " * 10))
    with pytest.raises(InputError, match="not a pcap or pcapng file"):
        CaptureReader(path)


@pytest.mark.parametrize("cut_inside", [5, 20])  # in the record header, in the packet bytes
def test_truncated_pcap_yields_records_before_cut(tmp_path: Path, cut_inside: int):
    data = capwrite.pcap(RECORDS)
    third = 24 + 16 + len(P1) + 16 + len(P2)
    reader = CaptureReader(write(tmp_path, "t.pcap", data[: third + cut_inside]))
    assert [f[3] for f in reader] == [P1, P2]
    assert reader.truncated_at == third
    assert reader.warnings == [
        f"{reader.path}: truncated at byte offset {third} "
        f"({'record header cut' if cut_inside < 16 else 'record data cut'})"
    ]


def test_truncated_pcapng(tmp_path: Path):
    head = ng_two_interfaces()
    reader = CaptureReader(write(tmp_path, "t.pcapng", head + capwrite.epb(0, 1, P1)[:30]))
    assert len(list(reader)) == 3
    assert reader.truncated_at == len(head)
    assert f"byte offset {len(head)}" in reader.warnings[0]


def test_huge_captured_length_is_corrupt(tmp_path: Path):
    data = capwrite.pcap([(1.0, P1), (2.0, b"x" * (MAX_CAPLEN + 1)), (3.0, P2)])
    reader = CaptureReader(write(tmp_path, "h.pcap", data))
    assert [f[3] for f in reader] == [P1]
    assert f"byte offset {24 + 16 + len(P1)}" in reader.warnings[0]
    assert "corrupt" in reader.warnings[0]


# -- corpus ------------------------------------------------------------------------


def manifest_frame_counts() -> dict[str, int]:
    text = corpus_path("MANIFEST.md").read_text()
    counts: dict[str, int] = {}
    for name, body in re.findall(r"^### (\S+)\n(.*?)(?=^### |\Z)", text, re.S | re.M):
        match = re.search(r"; (\d+) frames", body)
        if match:
            counts[name] = int(match.group(1))
    return counts


@pytest.mark.corpus
def test_corpus_frame_counts_match_manifest():
    """Oracle: MANIFEST.md "N frames" (tshark's frame count) for every corpus capture."""
    counts = manifest_frame_counts()
    assert len(counts) >= 40
    for name, expected in counts.items():
        reader = CaptureReader(corpus_path(name))
        got = sum(1 for _ in reader)
        assert got == expected, name
        assert reader.truncated_at is None, name


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [
        ("zeek/dns-tcp-tkey/tkey.pcap", "pcap", 12),
        ("ndpi/doq-localhost-784/doq.pcapng", "pcapng", 20),  # has a Decryption Secrets Block
        ("ndpi/dns-fragmented-tcp-udp/dns_fragmented.pcap", "pcap", 66),
        ("zeek/tls12-fragmented-handshake/tls-fragmented-handshake.pcap.gz", "pcap.gz", 416),
    ],
)
def test_corpus_named_captures(name: str, fmt: str, count: int):
    reader = CaptureReader(corpus_path(name))
    assert sum(1 for _ in reader) == count
    assert reader.format == fmt
    assert reader.warnings == []


# -- hostile input -----------------------------------------------------------------

NO_FIXTURE_CHECK = [HealthCheck.function_scoped_fixture]
SEEDS = [capwrite.pcap(RECORDS), ng_two_interfaces(), gzip.compress(capwrite.pcap(RECORDS))]


def read_all_or_input_error(path: Path) -> None:
    try:
        reader = CaptureReader(path, chunk_size=64)
    except InputError:
        return
    for frame in reader:
        assert len(frame[3]) <= MAX_CAPLEN


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(tmp_path: Path, data: bytes):
    read_all_or_input_error(write(tmp_path, "r", data))


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_captures_never_crash(tmp_path: Path, seed: bytes, edits, cut: int):  # type: ignore[no-untyped-def]
    data = bytearray(seed)
    for where, value in edits:
        data[where % len(data)] = value
    read_all_or_input_error(write(tmp_path, "m", bytes(data[: max(cut, 1)])))


# -- where reading stopped, and what was met but not delivered ---------------------------


def test_a_cut_and_a_corrupt_record_say_where_reading_stopped(tmp_path: Path):
    """The facts InputSummary judges completeness from (model/report.judge_input)."""
    whole = CaptureReader(write(tmp_path, "w.pcap", capwrite.pcap(RECORDS)))
    list(whole)
    assert (whole.stopped_at, whole.stop_reason, whole.records) == (None, None, 3)
    data = capwrite.pcap(RECORDS)
    third = 24 + 16 + len(P1) + 16 + len(P2)
    cut = CaptureReader(write(tmp_path, "c.pcap", data[: third + 20]))
    list(cut)
    assert cut.stopped_at == third and cut.stop_reason == "cut short (record data cut)"
    assert cut.records == 2
    corrupt = capwrite.pcap([(1.0, P1), (2.0, b"x" * (MAX_CAPLEN + 1))])
    stopped = CaptureReader(write(tmp_path, "k.pcap", corrupt))
    list(stopped)
    assert stopped.stopped_at == 24 + 16 + len(P1)
    assert (
        stopped.stop_reason
        == f"corrupt record (captured length {MAX_CAPLEN + 1} exceeds {MAX_CAPLEN})"
    )
    assert stopped.truncated_at is None  # not a cut: nothing was missing, it was wrong


def test_a_corrupt_first_record_delivers_nothing(tmp_path: Path):
    data = capwrite.pcap([(1.0, b"x" * (MAX_CAPLEN + 1)), (2.0, P1)])
    reader = CaptureReader(write(tmp_path, "f.pcap", data))
    assert list(reader) == []
    assert (reader.frames, reader.records, reader.stopped_at) == (0, 0, 24)


def test_pcapng_packet_records_not_delivered_are_counted(tmp_path: Path):
    data = b"".join(
        [
            capwrite.shb(),
            capwrite.spb(P2),  # before any interface
            capwrite.idb(1),
            capwrite.epb(0, 1, P1),
            capwrite.epb(5, 2, P1),  # an interface never described
            capwrite.epb(5, 3, P1),
        ]
    )
    reader = CaptureReader(write(tmp_path, "u.pcapng", data))
    assert [f[0] for f in reader] == [2]
    assert reader.records == 4
    assert reader.undelivered == {"packet_before_interface": 1, "packet_unknown_interface": 2}
