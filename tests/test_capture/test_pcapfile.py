"""The libpcap engine: libpcap skips, in C, the packets of bypassed flows, yet the events
must be byte for byte those of the Python reader under the same bypass rules (oracle: the
Python reader, which reads every record), and the findings those of the full path.

Captures: the bundled samples, the public corpus, the benchmark's mix (bulk TLS and QUIC,
DNS, DoT, IPv6, 802.1Q) in every byte order, time resolution and link type the engine
takes, and damaged files.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dotaudit.capture import libpcap
from dotaudit.capture.pcapfile import BATCH, LibpcapCapture
from dotaudit.model.events import event_json_line
from dotaudit.pipeline import CaptureRun
from tests.bypass_oracle import differences, parse
from tests.conftest import CORPUS, ROOT, corpus_path
from tests.test_capture.capwrite import pcap

PCAPS = sorted((ROOT / "pcaps").glob("*.pcap*"))
TUNNEL_CAPTURES = sorted((ROOT / "tests" / "data" / "tunnels").glob("*.pcap"))


def run_text(path: Path, *, engine: bool, prefilter: bool = True) -> tuple[str, CaptureRun]:
    """Events of ``path``; ``engine=False`` makes the Python reader read it."""
    original = LibpcapCapture.open
    if not engine:
        LibpcapCapture.open = classmethod(lambda cls, p: None)  # type: ignore[assignment, method-assign]
    try:
        run = CaptureRun(path, hash_input=False, prefilter=prefilter)
        text = "".join(event_json_line(e) for e in run.events())
    finally:
        LibpcapCapture.open = original  # type: ignore[method-assign]
    return text, run


def assert_same_as_python(path: Path, *, engine_expected: bool = True) -> CaptureRun:
    text, run = run_text(path, engine=True)
    oracle, reference = run_text(path, engine=False)
    if engine_expected:
        assert run.engine == "libpcap"
    assert text == oracle
    assert run.summary.to_dict() == reference.summary.to_dict()
    return run


def corpus_captures() -> Iterator[Path]:
    corpus_path("MANIFEST.md")
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix in (".pcap", ".pcapng", ".cap", ".trace", ".gz") and path.is_file():
            yield path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mixed") / "mixed.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_capture.py"), "--packets", "40000",
         "-o", str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


def records(path: Path) -> list[tuple[int, int, bytes]]:
    """(seconds, microseconds, frame) of a little-endian microsecond Ethernet pcap."""
    data = path.read_bytes()
    out, off = [], 24
    while off < len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, off)
        out.append((sec, usec, data[off + 16 : off + 16 + caplen]))
        off += 16 + caplen
    return out


def rewrite(path: Path, out: Path, linktype: int, frame_of: object, **opts: bool) -> Path:
    convert = frame_of  # (frame) -> bytes | None
    recs = []
    for sec, usec, frame in records(path):
        new = convert(frame)  # type: ignore[operator]
        if new is not None:
            recs.append((sec + usec / 1e6, new))
    out.write_bytes(pcap(recs, linktype, **opts))
    return out


def strip_ethernet(frame: bytes) -> tuple[int, bytes] | None:
    """(ethertype, IP packet) of an untagged or 802.1Q-tagged Ethernet frame."""
    etype, off = struct.unpack_from("!H", frame, 12)[0], 14
    if etype == 0x8100:
        etype, off = struct.unpack_from("!H", frame, 16)[0], 18
    if etype not in (0x0800, 0x86DD):
        return None
    return etype, frame[off:]


# -- equality with the Python reader -----------------------------------------------------


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_sample_captures(path: Path) -> None:
    assert_same_as_python(path)


@pytest.mark.parametrize("path", TUNNEL_CAPTURES, ids=lambda p: p.name)
def test_tunnel_captures(path: Path) -> None:
    """Tunnels reach the decoder through the engine: the same events as the Python
    reader, and (inner flows are never bypassed) every tunnelled record exactly as the
    full path writes it."""
    assert_same_as_python(path)
    bypassed = parse(run_text(path, engine=True)[0])
    full = parse(run_text(path, engine=False, prefilter=False)[0])
    tunnelled = [r for r in bypassed if "tunnel" in r]
    assert tunnelled, "the capture's inner traffic is seen"
    assert tunnelled == [r for r in full if "tunnel" in r]
    assert not any("bypassed_after" in r for r in tunnelled)
    assert differences(full, bypassed) == []


@pytest.mark.parametrize(("nanos", "fraction"), [(False, 999_999), (False, 10**6), (True, 10**9)])
def test_sub_second_overflow_is_counted_as_the_python_reader_counts_it(
    tmp_path: Path, nanos: bool, fraction: int
) -> None:
    """Oracle: the Python reader (tests/test_capture/test_reader.py holds it to the
    format); checked at a sub-second field one below a whole second and at it."""
    frames = [frame for _, _, frame in records(PCAPS[0])][:50]
    data = bytearray(pcap([(1700000000.0 + i, f) for i, f in enumerate(frames)], nanos=nanos))
    struct.pack_into("<II", data, 24, 0xFFFFFFFE, fraction)
    path = tmp_path / "overflow.pcap"
    path.write_bytes(bytes(data))
    run = assert_same_as_python(path)
    source = run.source
    assert isinstance(source, LibpcapCapture)
    expected = {"timestamp_fraction_overflow": 1} if fraction >= (10**9 if nanos else 10**6) else {}
    assert source.anomalies == expected
    assert run.reader_anomalies == expected
    assert sum("sub-second timestamp field" in w for w in run.summary.warnings) == len(expected)


def test_corpus_captures() -> None:
    seen = 0
    for path in corpus_captures():
        plain = path.suffix in (".pcap", ".cap", ".trace") and path.read_bytes()[:4] in (
            b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
        )  # fmt: skip
        assert_same_as_python(path, engine_expected=False)
        run = run_text(path, engine=True)[1]
        if plain and run.engine != "libpcap":
            # Only unusual headers or link types go to the Python reader.
            head = path.read_bytes()[:24]
            order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
            linktype = struct.unpack(order + "I", head[20:24])[0]
            assert linktype not in (1, 101, 113, 276, 0, 108, 228, 229), path
        seen += 1
    assert seen >= 30


def test_benchmark_mix_is_skipped_in_c_with_identical_events(mixed: Path) -> None:
    run = assert_same_as_python(mixed)
    source = run.source
    assert isinstance(source, LibpcapCapture)
    assert source.skipped > 0.4 * source.frames  # bulk TLS and QUIC never reach Python
    assert source.frames == 40000


@pytest.mark.parametrize(
    "opts", [{"big_endian": True}, {"nanos": True}, {"big_endian": True, "nanos": True}]
)
def test_byte_orders_and_time_resolutions(
    mixed: Path, tmp_path: Path, opts: dict[str, bool]
) -> None:
    out = rewrite(mixed, tmp_path / "variant.pcap", 1, lambda f: f, **opts)
    run = assert_same_as_python(out)
    assert run.source.skipped > 0  # type: ignore[attr-defined]


def _raw(frame: bytes) -> bytes | None:
    found = strip_ethernet(frame)
    return found[1] if found else None


def _sll(frame: bytes) -> bytes | None:
    found = strip_ethernet(frame)
    if found is None:
        return None
    return struct.pack("!HHH8sH", 0, 1, 6, frame[6:12] + b"\0\0", found[0]) + found[1]


def _sll2(frame: bytes) -> bytes | None:
    found = strip_ethernet(frame)
    if found is None:
        return None
    return struct.pack("!HHIHBB8s", found[0], 0, 2, 1, 0, 6, frame[6:12] + b"\0\0") + found[1]


def _null(frame: bytes) -> bytes | None:
    found = strip_ethernet(frame)
    if found is None:
        return None
    return struct.pack("<I", 2 if found[0] == 0x0800 else 30) + found[1]


def _loop(frame: bytes) -> bytes | None:
    found = strip_ethernet(frame)
    if found is None:
        return None
    return struct.pack(">I", 2 if found[0] == 0x0800 else 24) + found[1]


@pytest.mark.parametrize(
    ("linktype", "convert"),
    [(101, _raw), (113, _sll), (276, _sll2), (0, _null), (108, _loop)],
    ids=["raw", "sll", "sll2", "null", "loop"],
)
def test_link_types(mixed: Path, tmp_path: Path, linktype: int, convert: object) -> None:
    out = rewrite(mixed, tmp_path / "linked.pcap", linktype, convert)
    run = assert_same_as_python(out)
    assert run.source.skipped > 0.3 * run.summary.packets  # type: ignore[attr-defined]


# -- damage: the Python reader takes over and reports it -----------------------------------


def test_truncated_file_reports_the_cut_at_its_offset(mixed: Path, tmp_path: Path) -> None:
    data = mixed.read_bytes()
    for cut in (len(data) - 700, len(data) // 2 + 3, 24 + 16 + 10):
        out = tmp_path / f"cut{cut}.pcap"
        out.write_bytes(data[:cut])
        run = assert_same_as_python(out)
        assert run.summary.truncated_at is not None
        assert any("truncated at byte offset" in w for w in run.summary.warnings)


def test_corrupt_record_length_stops_where_the_python_reader_stops(
    mixed: Path, tmp_path: Path
) -> None:
    data = bytearray(mixed.read_bytes())
    off, n = 24, 0
    while n < 3 * BATCH + 17:  # a few batches in, inside bypassed traffic
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
        n += 1
    struct.pack_into("<I", data, off + 8, 300_000)  # more than any record may hold
    out = tmp_path / "corrupt.pcap"
    out.write_bytes(bytes(data))
    run = assert_same_as_python(out)
    assert run.summary.packets == n
    assert any(f"corrupt record at byte offset {off}" in w for w in run.summary.warnings)


def test_records_cut_by_the_snapshot_length_are_read(mixed: Path, tmp_path: Path) -> None:
    """Frames captured short of their wire length: the program cannot see how much was
    captured, so it admits them, and the decoder reports every cut."""
    recs = [(s + u / 1e6, f[:160], len(f)) for s, u, f in records(mixed)]
    out = tmp_path / "snap.pcap"
    out.write_bytes(pcap(recs, snaplen=160))
    text, run = run_text(out, engine=True)
    assert run.engine == "libpcap"
    assert text == run_text(out, engine=False)[0]
    assert text.count("snaplen_truncated") > 1000


def test_a_tiny_snapshot_length_goes_to_the_python_reader(mixed: Path, tmp_path: Path) -> None:
    recs = [(s + u / 1e6, f[:64], len(f)) for s, u, f in records(mixed)[:500]]
    out = tmp_path / "tiny.pcap"
    out.write_bytes(pcap(recs, snaplen=64))
    _, run = run_text(out, engine=True)
    assert run.engine == "python"


def test_flow_reused_within_a_batch_is_read_again(tmp_path: Path) -> None:
    """A bypassed flow whose 5-tuple starts a new connection right after it ended: the
    records of the new one that the batch's program would skip are read."""
    sys.path.insert(0, str(ROOT / "bench"))
    from wire import ACK, FIN, PSH, Link, Tcp  # the benchmark's frame builder

    link = Link(
        b"\x02\0\0\0\0\1", b"\x02\0\0\0\0\2", b"\xc0\x00\x02\x0a", b"\xc6\x33\x64\x35",
        40000, 4444,
    )  # fmt: skip
    frames: list[bytes] = []
    for isn in (1000, 90000):
        tcp = Tcp(link, isn, isn + 7, 0, 0)
        frames += [tcp.syn(1460), tcp.syn_ack(1460), tcp.seg(True)]
        frames.append(tcp.seg(True, b"HELLO not tls, not dns " * 3, ACK | PSH))
        # Longer than a batch: the flow is in the program when its successor starts.
        frames += [tcp.seg(False, b"x" * 1000, ACK) for _ in range(BATCH + 200)]
        frames += [tcp.seg(True, flags=FIN | ACK), tcp.seg(False, flags=FIN | ACK)]
        frames.append(tcp.seg(True))
    recs = [(1_700_000_000 + i * 0.1, f) for i, f in enumerate(frames)]
    out = tmp_path / "reuse.pcap"
    out.write_bytes(pcap(recs))
    run = assert_same_as_python(out)
    assert run.summary.packets == len(frames)
    assert run_text(out, engine=True)[0].count('"type":"connection"') == 2


# -- the full path is the oracle of the findings and of everything but bypassed flows ----


def test_benchmark_mix_differs_from_the_full_path_only_where_documented(mixed: Path) -> None:
    full = parse(run_text(mixed, engine=False, prefilter=False)[0])
    bypassed = parse(run_text(mixed, engine=True)[0])
    assert sum(1 for r in bypassed if "bypassed_after" in r) > 100
    assert differences(full, bypassed) == []


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_samples_differ_from_the_full_path_only_where_documented(path: Path) -> None:
    full = parse(run_text(path, engine=False, prefilter=False)[0])
    assert differences(full, parse(run_text(path, engine=True)[0])) == []


def test_corpus_differs_from_the_full_path_only_where_documented() -> None:
    for path in corpus_captures():
        full = parse(run_text(path, engine=False, prefilter=False)[0])
        assert differences(full, parse(run_text(path, engine=True)[0])) == [], path


# -- libpcap missing ---------------------------------------------------------------------


def test_without_libpcap_the_python_reader_gives_the_same_events(
    mixed: Path, tmp_path: Path
) -> None:
    env = {"DOTAUDIT_LIBPCAP": "none", "PATH": "/usr/bin:/bin"}
    out = tmp_path / "without.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "dotaudit", "events", str(mixed), "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert "libpcap not usable" in done.stderr and "same results" in done.stderr
    assert out.read_text() == run_text(mixed, engine=True)[0]


def test_a_library_that_does_not_load_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTAUDIT_LIBPCAP", "/nonexistent/libpcap.so")
    libpcap.reset_for_tests()
    try:
        assert libpcap.load() is None
        assert "/nonexistent/libpcap.so" in libpcap.unavailable_reason()
        assert LibpcapCapture.open(PCAPS[0]) is None
    finally:
        monkeypatch.delenv("DOTAUDIT_LIBPCAP")
        libpcap.reset_for_tests()
    assert libpcap.load() is not None


def test_read_error_inside_libpcap_hands_over_to_the_python_reader(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read error under libpcap (here: the third read of the file fails) hands the rest
    of the file to the Python reader, which reads it again: the same events."""
    real = libpcap.os.preadv
    calls = [0]

    def flaky(fd: int, buffers: list[memoryview], offset: int) -> int:
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(5, "Input/output error")
        return real(fd, buffers, offset)

    monkeypatch.setattr(libpcap.os, "preadv", flaky)
    text, run = run_text(mixed, engine=True)
    monkeypatch.setattr(libpcap.os, "preadv", real)
    assert calls[0] >= 3 and run.source._python is not None  # type: ignore[attr-defined]
    assert text == run_text(mixed, engine=False)[0]


def test_an_interrupt_inside_libpcap_reaches_the_caller(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int, buffers: list[memoryview], offset: int) -> int:
        raise KeyboardInterrupt

    source = LibpcapCapture.open(mixed)
    assert source is not None
    monkeypatch.setattr(libpcap.os, "preadv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        for _ in source.scan(lambda *frame: None):
            pass
    assert source._fd == -1  # type: ignore[attr-defined]  # closed
    with pytest.raises(KeyboardInterrupt):
        LibpcapCapture.open(mixed)  # while libpcap reads the file header
