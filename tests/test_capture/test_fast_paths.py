"""The capture layer's fast paths against its plain ones, on real mixed traffic.

``FlowTable.tcp_fast``/``udp_fast`` take segments as plain values and skip the Packet;
``CaptureReader.scan`` hands frames over without copying them. Each must be exactly
equivalent to the slower path it mirrors (``process(Packet)`` through the TCP state
machine, and iteration over ``(frame, ts, linktype, data, orig_len)`` tuples). The oracle
is that slower path, run on the same capture: the consumer must see the same calls with
the same arguments, and every flow must end with the same fields.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dotaudit.capture.decode import Decoder
from dotaudit.capture.flows import Flow, FlowTable
from dotaudit.capture.packet import Anomaly, Packet
from dotaudit.capture.reader import CaptureReader
from dotaudit.dissect.dispatch import Dispatcher
from dotaudit.model.events import Event, event_json_line

ROOT = Path(__file__).resolve().parents[2]
PCAPS = sorted((ROOT / "pcaps").glob("*.pcap"))
FLOW_FIELDS = (
    "client", "cport", "server", "sport", "proto", "first_frame", "last_frame", "start",
    "end", "packets_fwd", "packets_rev", "bytes_fwd", "bytes_rev", "outcome", "ended_by",
    "closed_by", "server_ttl", "rst_ttl", "handshake_seen", "mid_stream", "syn_retransmits",
    "ignore_payload", "icmp", "icmp_frame",
)  # fmt: skip


@pytest.fixture(scope="module")
def mixed_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20k frames of the benchmark's traffic mix: DNS, DoT, TLS bulk, QUIC, mid-stream."""
    out = tmp_path_factory.mktemp("fast") / "mixed.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_capture.py"), "--packets", "20000",
         "-o", str(out)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


class Recording:
    """Wraps the real Dispatcher (so skips and ignore_payload decisions are real) and logs
    every call the flow table makes, with its arguments, in order."""

    def __init__(self, file: str) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.lines: list[str] = []
        self.ids: dict[int, int] = {}
        self.inner = Dispatcher(file, self._emit)

    def _emit(self, event: Event) -> None:
        self.lines.append(event_json_line(event))

    def _flow(self, flow: Flow) -> int:
        return self.ids.setdefault(id(flow), len(self.ids))

    def on_stream_data(
        self, flow: Flow, from_client: bool, data: bytes, frame: int, ts: float
    ) -> int:
        skip = self.inner.on_stream_data(flow, from_client, data, frame, ts)
        self.log.append(("data", self._flow(flow), from_client, bytes(data), frame, ts, skip))
        return skip

    def on_stream_gap(
        self, flow: Flow, from_client: bool, missing: int, frame: int, ts: float
    ) -> None:
        self.log.append(("gap", self._flow(flow), from_client, missing, frame, ts))
        self.inner.on_stream_gap(flow, from_client, missing, frame, ts)

    def on_datagram(self, flow: Flow, from_client: bool, pkt: Packet) -> None:
        self.log.append(("datagram", self._flow(flow), from_client, pkt.payload, pkt.frame))
        self.inner.on_datagram(flow, from_client, pkt)

    def on_flow_end(self, flow: Flow) -> None:
        fields = tuple(getattr(flow, name) for name in FLOW_FIELDS)
        self.log.append(("end", self._flow(flow), fields))
        self.inner.on_flow_end(flow)

    def on_anomaly(self, anomaly: Anomaly) -> None:
        self.log.append(("anomaly", anomaly))
        self.inner.on_anomaly(anomaly)


class PacketOnlyTable(FlowTable):
    """A flow table whose TCP fast path always declines: every segment is a Packet."""

    def tcp_fast(self, *segment: Any) -> bool:
        return False


def _run_fast(path: Path) -> Recording:
    """The production path: scan -> Decoder.take -> tcp_fast/udp_fast."""
    rec = Recording(str(path))
    table = FlowTable(rec, rec.on_anomaly)
    decoder = Decoder(rec.on_anomaly, flows=table)
    with CaptureReader(path) as reader:
        for _ in reader.scan(decoder.take):
            pass
    decoder.finish()
    table.finish()
    return rec


def _run_packets(path: Path) -> Recording:
    """The plain path: iterate frames, decode each into a Packet, FlowTable.process."""
    rec = Recording(str(path))
    table = PacketOnlyTable(rec, rec.on_anomaly)
    decoder = Decoder(rec.on_anomaly)
    with CaptureReader(path) as reader:
        for frame, ts, linktype, data, orig_len in reader:
            pkt = decoder.decode(frame, ts, linktype, data, orig_len)
            if pkt is not None:
                table.process(pkt)
    decoder.finish()
    table.finish()
    return rec


def _assert_same(path: Path) -> Recording:
    fast = _run_fast(path)
    plain = _run_packets(path)
    assert len(fast.log) == len(plain.log)
    for index, (got, want) in enumerate(zip(fast.log, plain.log, strict=True)):
        assert got == want, f"{path.name}: call {index} differs"
    assert fast.lines == plain.lines
    return fast


def test_fast_paths_match_packet_path_on_mixed_traffic(mixed_capture: Path) -> None:
    rec = _assert_same(mixed_capture)
    kinds = {entry[0] for entry in rec.log}
    # The comparison only means something if the mix exercised every kind of call.
    assert {"data", "datagram", "end"} <= kinds
    skipped = sum(1 for entry in rec.log if entry[0] == "data" and entry[6])
    assert skipped > 0, "no TLS record body was skipped: the skip fast path went untested"


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_fast_paths_match_packet_path_on_sample_captures(path: Path) -> None:
    rec = _assert_same(path)
    assert any(entry[0] == "end" for entry in rec.log)


def _frames_by_iteration(path: Path) -> list[tuple[int, float, int, bytes, int]]:
    with CaptureReader(path) as reader:
        return [(f, ts, link, bytes(data), orig) for f, ts, link, data, orig in reader]


def _frames_by_scan(path: Path) -> tuple[list[tuple[int, float, int, bytes, int]], list[int]]:
    frames: list[tuple[int, float, int, bytes, int]] = []
    counts: list[int] = []

    def take(frame: int, ts: float, linktype: int, buf: bytes, a: int, b: int, o: int) -> None:
        frames.append((frame, ts, linktype, bytes(buf[a:b]), o))

    with CaptureReader(path, chunk_size=4096) as reader:
        counts.extend(reader.scan(take))
    return frames, counts


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_scan_gives_the_frames_iteration_gives(path: Path) -> None:
    expected = _frames_by_iteration(path)
    frames, counts = _frames_by_scan(path)
    assert frames == expected
    assert expected, "an empty capture proves nothing"
    # The progress counts are non-decreasing and end at the frame count.
    assert counts == sorted(counts)
    assert counts[-1] == len(expected)


def test_scan_matches_iteration_on_mixed_traffic(mixed_capture: Path) -> None:
    frames, counts = _frames_by_scan(mixed_capture)
    assert frames == _frames_by_iteration(mixed_capture)
    assert len(frames) == 20000
    assert len(counts) > 1  # small chunks: the scan paused between them
