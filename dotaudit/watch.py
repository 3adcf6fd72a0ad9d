"""Live capture, judged as it comes: the layers of ``analyze`` over a live interface.

Packets go libpcap (kernel filter) -> decoder -> flow table -> dissectors -> the detector
runner exactly as a file's do (``pipeline.analyze_file``), with frame numbers counted from
the first packet captured, so that ``analyze`` on what ``--write`` kept judges the same
packets the same way. Time is the packets' time throughout: a flow ends when later
packets, or the end of the run, say so, never by the wall clock.

Detectors judge when their events are complete, which for most of them is at the end.
So at every interval the runner is copied and the copy finished: its findings are the
findings judged so far, the new ones are announced once each (by ID and ``dedup_key``),
and the interval's report is built from them. The run itself goes on untouched; the final
report comes from finishing it for real.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dotaudit.capture.capture_writer import CaptureWriter
from dotaudit.capture.decode import Decoder
from dotaudit.capture.flows import FlowTable
from dotaudit.capture.live import BUFFER_SIZE, CaptureStats, LiveCapture
from dotaudit.detect.base import Context
from dotaudit.detect.runner import Detection, DetectorRunner
from dotaudit.dissect.dispatch import Dispatcher
from dotaudit.dissect.host_identity import HostIdentityTracker
from dotaudit.model.events import AnomalySeen, Event
from dotaudit.model.findings import Finding
from dotaudit.model.report import ANOMALY_SAMPLES, AuditReport, InputSummary

SNAPLEN = 262144


@dataclass(frozen=True)
class WatchSettings:
    interface: str
    filter_text: str | None = None
    """A libpcap expression; None: the prefilter (what the detectors need)."""
    duration: float | None = None
    """Seconds to capture; None: until :meth:`Watch.stop`."""
    report_every: float = 10.0
    write: str | None = None
    ring_files: int = 1
    ring_size: int | None = None
    """Bytes per ring file; with ``ring_files`` > 1 or this, ``write`` names a ring."""
    buffer_size: int = BUFFER_SIZE


@dataclass(frozen=True)
class Interval:
    """What one interval line says."""

    elapsed: float
    packets: int
    new_packets: int
    seconds: float
    """Length of this interval."""
    stats: CaptureStats
    flows: int
    findings: int
    new_findings: int

    def line(self, interface: str) -> str:
        rate = self.new_packets / self.seconds if self.seconds > 0 else 0.0
        stats = self.stats
        return (
            f"watch {interface}: {self.elapsed:.1f} s, {self.packets} packets "
            f"(+{self.new_packets}, {rate:.0f}/s), kernel drops {stats.kernel_dropped} of "
            f"{stats.received} ({100 * stats.drop_rate():.3f}%), interface drops "
            f"{stats.interface_dropped}, {self.flows} flows open, {self.findings} findings "
            f"(+{self.new_findings})"
        )


@dataclass
class _Tally:
    anomalies: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)


class Watch:
    """One live run: construct (opens the capture: privileges and filter are checked
    here), then :meth:`run`; :meth:`stop` may be called from a signal handler."""

    def __init__(
        self,
        settings: WatchSettings,
        context: Context,
        *,
        on_finding: Callable[[Finding], None] | None = None,
        on_interval: Callable[[Interval, AuditReport], None] | None = None,
        generated_at: Callable[[], str] = lambda: "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.context = context
        self._on_finding = on_finding
        self._on_interval = on_interval
        self._generated_at = generated_at
        self._clock = clock
        self._stopped = False
        self.ended_by = ""
        """"duration", "stopped" (a signal), or "" while running."""
        self.capture = LiveCapture(
            settings.interface,
            filter_text=settings.filter_text,
            snaplen=SNAPLEN,
            buffer_size=settings.buffer_size,
        )
        self.writer: CaptureWriter | None = None
        try:
            if settings.write is not None:
                self.writer = CaptureWriter(
                    settings.write,
                    self.capture.linktype,
                    SNAPLEN,
                    files=settings.ring_files,
                    file_size=settings.ring_size,
                )
        except BaseException:
            self.capture.close()
            raise
        if self.writer is not None:
            self.capture.pcapng_times = self.writer.pcapng
        # Findings name the file their frames can be read from again, when there is one.
        one_file = self.writer is not None and not self.writer.ring
        self.label = settings.write if one_file and settings.write else settings.interface
        self._runner = DetectorRunner(context)
        self._tally = _Tally()
        self._announced: set[tuple[str, str]] = set()
        self._findings_judged = 0
        self.summary = InputSummary(path=self.label, format="live")
        feed = self._runner.feed
        tally = self._tally
        summary = self.summary

        def emit(event: Event) -> None:
            if type(event) is AnomalySeen:
                tally.anomalies[event.what] = tally.anomalies.get(event.what, 0) + 1
                if len(tally.samples) < ANOMALY_SAMPLES:
                    tally.samples.append(event.to_dict())
            feed(event)

        # The machines behind addresses, as analyze of the --write capture finds them.
        links = HostIdentityTracker(self.label, emit)
        dispatcher = Dispatcher(self.label, emit, self._runner.keeps_flow, links)

        def on_anomaly_counted(anomaly: object) -> None:
            summary.anomalies += 1
            dispatcher.on_anomaly(anomaly)  # type: ignore[arg-type]

        self._table = FlowTable(dispatcher, on_anomaly_counted, bypass=True)
        self._decoder = Decoder(on_anomaly_counted, flows=self._table, links=links)
        self._started = 0.0
        self._last_stats = CaptureStats(0, 0, 0)
        self._findings_before = 0
        self.last_interval: Interval | None = None
        """The last interval, from the last report to the end (after :meth:`run`)."""

    def stop(self) -> None:
        """End the run after the current batch (signal-safe: sets a flag, breaks the wait)."""
        self._stopped = True
        self.capture.breakloop()

    def run(self) -> AuditReport:
        """Capture until the duration passes or :meth:`stop`; the final report."""
        settings = self.settings
        capture = self.capture
        take = self._decoder.take
        keep = self.writer.write if self.writer is not None else None
        clock = self._clock
        try:
            self._started = now = clock()
            deadline = now + settings.duration if settings.duration is not None else None
            next_report = now + settings.report_every
            last_report, last_packets = now, 0
            while not self._stopped:
                if capture.dispatch(take, keep) < 0:
                    break
                now = clock()
                if deadline is not None and now >= deadline:
                    self.ended_by = "duration"
                    break
                if now >= next_report:
                    interval = self._interval(now, now - last_report, last_packets)
                    last_report, last_packets = now, interval.packets
                    next_report = now + settings.report_every
            if not self.ended_by:
                self.ended_by = "stopped"
            now = clock()
            self._decoder.finish()
            self._table.finish()
            detection = self._runner.finish()
            self._announce(detection.findings)
            report = self._report(detection, now)
            self.last_interval = self._interval_of(now, now - last_report, last_packets)
            return report
        finally:
            self.close()

    def close(self) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
        finally:
            self.capture.close()

    # -- intervals --------------------------------------------------------------------

    def _interval(self, now: float, seconds: float, last_packets: int) -> Interval:
        # The copy is finished, not the run: what is judged so far, the run untouched.
        detection = copy.deepcopy(self._runner).finish()
        self._announce(detection.findings)
        if self.writer is not None:
            self.writer.flush()
        report = self._report(detection, now)
        interval = self._interval_of(now, seconds, last_packets)
        if self._on_interval is not None:
            self._on_interval(interval, report)
        return interval

    def _interval_of(self, now: float, seconds: float, last_packets: int) -> Interval:
        packets = self.capture.frames
        new = self._findings_judged - self._findings_before
        self._findings_before = self._findings_judged
        return Interval(
            elapsed=now - self._started,
            packets=packets,
            new_packets=packets - last_packets,
            seconds=seconds,
            stats=self._last_stats,
            flows=self._table.active_flows,
            findings=self._findings_judged,
            new_findings=new,
        )

    def _announce(self, findings: list[Finding]) -> None:
        self._findings_judged = len(findings)
        for finding in findings:
            key = (finding.id, finding.dedup_key)
            if key in self._announced:
                continue
            self._announced.add(key)
            if self._on_finding is not None:
                self._on_finding(finding)

    def _report(self, detection: Detection, now: float) -> AuditReport:
        capture = self.capture
        self._last_stats = stats = capture.stats()
        summary = self.summary
        summary.packets = capture.frames
        summary.first_ts = capture.first_ts
        summary.last_ts = capture.last_ts
        decoder = self._decoder
        summary.count_traffic(decoder.encapsulations, decoder.not_ip, decoder.other_ip)
        # A live capture delivers every packet it reads: a run that read none, or none
        # it could decode, is judged as such (exit status 2), as a file would be.
        summary.count_packets(records=capture.frames, undelivered={}, undecoded=decoder.undecoded)
        entry = summary.to_dict()
        live: dict[str, Any] = {
            "interface": self.settings.interface,
            # The default is long and fixed (capture/bpf.py): named, not repeated.
            "filter": "default" if self.settings.filter_text is None else capture.filter_text,
            "seconds": round(now - self._started, 3),
            "received": stats.received,
            "kernel_dropped": stats.kernel_dropped,
            "interface_dropped": stats.interface_dropped,
            "ended_by": self.ended_by or "running",
        }
        if self.writer is not None:
            live["written"] = [w.to_dict() for w in self.writer.written]
        entry["live"] = live
        anomalies = dict(self._tally.anomalies)
        for what, count in detection.caps.items():
            anomalies[what] = anomalies.get(what, 0) + count
        return AuditReport(
            kind="analyze",
            generated_at=self._generated_at(),
            inputs=[entry],
            findings=list(detection.findings),
            anomalies=anomalies,
            anomaly_samples=list(self._tally.samples),
            sections=detection.sections,
            policy=self.context.policy.to_dict(),
        )
