"""Instructions per admitted packet, layer by layer, under cachegrind (stable, unlike
wall time on a shared machine).

    .venv/bin/python bench/layers.py bench/out/bench-100000.pcap

Each stage is one process run under ``valgrind --tool=cachegrind``; a stage adds one
layer to the one before, so the differences are the layers' costs:

- ``start``: interpreter and imports;
- ``read``: the libpcap engine reading every record (in C) and handing the admitted
  ones to a no-op, with the flows bypassed exactly when the real pass bypassed them
  (replayed from a first, untimed pass);
- ``decode``: plus the decoder (Ethernet/IP/TCP/UDP) into a flow sink that does nothing;
- ``flows``: plus the flow table and TCP reassembly, the dissectors replaced by a stub
  that bypasses flows at the same frames;
- ``dissect``: plus the dissectors (DNS, TLS, QUIC), events made but not written;
- ``events``: plus the JSON lines (``dotaudit events`` to /dev/null).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

STAGES = ("start", "read", "decode", "flows", "dissect", "events")


def record(path: str, out: str) -> None:
    """The untimed pass: which flows were bypassed after which frame, and the counts."""
    from dotaudit.capture.decode import Decoder
    from dotaudit.capture.engine import open_capture
    from dotaudit.capture.flows import FlowTable
    from dotaudit.dissect.dispatch import Dispatcher

    source = open_capture(path)
    dispatcher = Dispatcher(path, lambda event: None)
    table = FlowTable(dispatcher, lambda anomaly: None, bypass=True)
    decisions: dict[tuple[Any, ...], list[int]] = {}
    original = table.bypass

    def bypass(flow: Any) -> None:
        original(flow)
        if flow.bypassed and flow.bypassed_after == flow.last_frame:
            key = (flow.proto, flow.client, flow.cport, flow.server, flow.sport)
            decisions.setdefault(key, []).append(flow.last_frame)

    table.bypass = bypass  # type: ignore[method-assign]
    dispatcher.set_bypass(bypass)
    decoder = Decoder(lambda anomaly: None, flows=table)
    source.attach(table)
    for _ in source.scan(decoder.take):
        pass
    skipped = getattr(source, "skipped", 0)
    with open(out, "wb") as handle:
        pickle.dump({"decisions": decisions, "frames": source.frames, "skipped": skipped}, handle)


def stage(name: str, path: str, plan_file: str) -> None:
    """Run one stage (this is what cachegrind measures)."""
    if name == "start":
        import dotaudit.capture.pcapfile
        import dotaudit.pipeline  # noqa: F401

        return
    if name == "events":
        from dotaudit.pipeline import CaptureRun

        with open(os.devnull, "w") as sink:
            for text in CaptureRun(path, hash_input=False).lines():
                sink.write(text)
        return
    from dotaudit.capture.decode import Decoder
    from dotaudit.capture.engine import open_capture
    from dotaudit.capture.flows import FlowTable
    from dotaudit.dissect.dispatch import Dispatcher

    with open(plan_file, "rb") as handle:
        plan = pickle.load(handle)
    decisions: dict[tuple[Any, ...], list[int]] = plan["decisions"]
    source = open_capture(path)
    if name == "dissect":
        dispatcher = Dispatcher(path, lambda event: None)
        table = FlowTable(dispatcher, lambda anomaly: None, bypass=True)
        decoder = Decoder(lambda anomaly: None, flows=table)
        source.attach(table)
        for _ in source.scan(decoder.take):
            pass
        return
    if name == "flows":
        consumer = _Replaying(decisions)
        table = FlowTable(consumer, lambda anomaly: None, bypass=True)  # type: ignore[arg-type]
        decoder = Decoder(lambda anomaly: None, flows=table)
        source.attach(table)
        for _ in source.scan(decoder.take):
            pass
        return
    # read / decode: the table's bypass decisions replayed straight to the engine.
    clock = _Clock(decisions, source)
    source.attach(clock)  # type: ignore[arg-type]
    take = clock.take
    if name == "decode":
        decoder = Decoder(lambda anomaly: None, flows=_NullFlows())  # type: ignore[arg-type]

        def take(frame: int, *rest: Any) -> None:  # type: ignore[misc]
            clock.take(frame)
            decoder.take(frame, *rest)

    for _ in source.scan(take):
        pass


class _Flow:
    """What the engine reads of a flow."""

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.proto, self.client, self.cport, self.server, self.sport = key
        self.bypassed = True
        self._probe = False
        self._ended = False
        self._closed_at = None
        self._due = float("inf")


class _Clock:
    """Stands in for the flow table: bypasses flows at the recorded frames."""

    def __init__(self, decisions: dict[tuple[Any, ...], list[int]], source: Any) -> None:
        self._next_sweep = float("inf")
        self.bypass_listener: Any = None
        self._source = source
        self._due = sorted((frame, key) for key, frames in decisions.items() for frame in frames)
        self._at = 0

    def take(self, frame: int, *_: Any) -> None:
        due = self._due
        while self._at < len(due) and due[self._at][0] <= frame:
            self._source.bypassed(_Flow(due[self._at][1]))
            self._at += 1

    def tick(self, ts: float) -> None:
        pass


class _NullFlows:
    def process(self, pkt: Any) -> None:
        pass

    def tcp_fast(self, *segment: Any) -> bool:
        return True

    def udp_fast(self, *datagram: Any) -> None:
        pass


class _Replaying:
    """The dissectors' stand-in for the flow stage: bypasses flows at the same frames."""

    def __init__(self, decisions: dict[tuple[Any, ...], list[int]]) -> None:
        self._decisions = decisions
        self._bypass: Any = None

    def set_bypass(self, bypass: Any) -> None:
        self._bypass = bypass

    def _check(self, flow: Any, frame: int) -> None:
        frames = self._decisions.get((flow.proto, flow.client, flow.cport, flow.server, flow.sport))
        if frames and frame >= frames[0] and self._bypass is not None:
            self._bypass(flow)

    def on_stream_data(
        self, flow: Any, from_client: bool, data: bytes, frame: int, ts: float
    ) -> int:
        self._check(flow, frame)
        return 0

    def on_udp_payload(
        self, flow: Any, from_client: bool, data: bytes, frame: int, ts: float
    ) -> None:
        self._check(flow, frame)

    def on_datagram(self, flow: Any, from_client: bool, pkt: Any) -> None:
        self._check(flow, pkt.frame)

    def on_stream_gap(self, *gap: Any) -> None:
        pass

    def on_flow_end(self, flow: Any) -> None:
        pass


def measure(path: Path) -> dict[str, Any]:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {"skipped": "valgrind not installed"}
    here = Path(__file__).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        plan = os.path.join(tmp, "plan.pickle")
        subprocess.run([sys.executable, str(here), "--record", str(path), plan], check=True)
        with open(plan, "rb") as handle:
            counts = pickle.load(handle)
        refs: dict[str, int] = {}
        for name in STAGES:
            done = subprocess.run(
                [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                 sys.executable, str(here), "--stage", name, str(path), plan],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
            refs[name] = int(found.group(1).replace(",", "")) if found else 0
    frames, skipped = counts["frames"], counts["skipped"]
    admitted = frames - skipped
    layers = {
        later: (refs[later] - refs[earlier]) / max(admitted, 1)
        for earlier, later in itertools.pairwise(STAGES)
    }
    return {
        "capture": str(path),
        "frames": frames,
        "admitted": admitted,
        "admitted_share": admitted / frames if frames else 0.0,
        "instructions": refs,
        "per_admitted_packet": {name: round(value) for name, value in layers.items()},
        "per_packet_total": round((refs["events"] - refs["start"]) / max(frames, 1)),
    }


def report(result: dict[str, Any]) -> None:
    if "skipped" in result:
        print(f"  layers: skipped ({result['skipped']})")
        return
    per = result["per_admitted_packet"]
    print(
        f"  instructions per admitted packet ({result['admitted']:,} of {result['frames']:,}, "
        f"{100 * result['admitted_share']:.1f}%): "
        + ", ".join(f"{name} {value:,}" for name, value in per.items())
        + f"; start-up {result['instructions']['start'] / 1e6:,.0f} M; "
        f"{result['per_packet_total']:,} per packet overall"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("captures", nargs="*", type=Path)
    parser.add_argument("--record", nargs=2, metavar=("CAPTURE", "PLAN"))
    parser.add_argument("--stage", nargs=3, metavar=("NAME", "CAPTURE", "PLAN"))
    args = parser.parse_args()
    if args.record:
        record(*args.record)
        return 0
    if args.stage:
        stage(*args.stage)
        return 0
    for path in args.captures:
        result = measure(path)
        print(path)
        report(result)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
