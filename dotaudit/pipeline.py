"""Wires the layers: capture file -> packets -> flows -> dissectors -> events.

This is the only module that knows every layer; the CLI calls it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotaudit.capture.decode import Decoder
from dotaudit.capture.flows import FlowTable
from dotaudit.capture.reader import CaptureReader
from dotaudit.dissect.dispatch import Dispatcher
from dotaudit.errors import InputError
from dotaudit.model.events import AnomalySeen, Event, event_json_line
from dotaudit.model.findings import Finding
from dotaudit.model.report import ANOMALY_SAMPLES, AuditReport, InputSummary, merge_reports

if TYPE_CHECKING:  # the detectors are imported by analyze only: `events` starts faster
    from concurrent.futures import Future

    from dotaudit.detect.base import Context

CAPTURE_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
    b"\x1f\x8b",
)

Progress = Callable[[int, int], None]
"""Called now and then with (bytes read so far, file size)."""


def _hash_in_background(path: Path) -> Future[str]:
    # Imported here: `events` does not hash, and concurrent.futures costs start-up time.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    digest = pool.submit(sha256_file, path)
    pool.shutdown(wait=False)  # the thread ends with the hash; nothing else is queued
    return digest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_capture_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in CAPTURE_MAGICS)


def expand_inputs(arguments: Iterable[str]) -> list[Path]:
    """Files as given, and capture files (by magic bytes) found under directories."""
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            paths.extend(p for p in sorted(path.rglob("*")) if p.is_file() and is_capture_file(p))
        elif path.exists():
            paths.append(path)
        else:
            raise InputError(f"{argument}: no such file or directory")
    return paths


class CaptureRun:
    """One pass over one capture file. Iterate ``events()``; read ``summary`` afterwards."""

    def __init__(
        self,
        path: Path | str,
        *,
        progress: Progress | None = None,
        hash_input: bool = True,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name if name is not None else str(self.path)
        """What events and the report call the input (a URL read from a local copy)."""
        self.summary = InputSummary(path=name if name is not None else str(path))
        self._progress = progress
        self._hash_input = hash_input  # reports name their inputs' sha256; `events` does not
        self.reader_anomalies: dict[str, int] = {}
        """What the reader counted (records it read, but not as written), by reason."""

    def events(self) -> Iterator[Event]:
        """Every event of the capture, in capture order."""
        for batch in self._batches(lambda out: out.append):
            yield from batch

    def lines(self, types: frozenset[str] | None = None) -> Iterator[str]:
        """The ``dotaudit events`` output, a joined batch of JSON lines at every reader
        pause. Events are encoded as the dissectors make them, with no generator hop per
        event; ``types`` keeps only those record types."""

        def encoder(out: list[str]) -> Callable[[Event], None]:
            append = out.append
            if types is None:
                return lambda event: append(event_json_line(event))
            return lambda event: append(event_json_line(event)) if event.type in types else None

        for batch in self._batches(encoder):
            yield "".join(batch)

    def _batches(
        self, emitter: Callable[[list[Any]], Callable[[Event], None]]
    ) -> Iterator[list[Any]]:
        """Run the capture through every layer; ``emitter(out)`` makes the function the
        dissectors call with each event, which is to fill ``out``. ``out`` is yielded (and
        then emptied) whenever the reader pauses, and once at the end."""
        reader = CaptureReader(self.path)
        summary = self.summary
        summary.format = reader.format
        out: list[Any] = []
        dispatcher = Dispatcher(self.name, emitter(out))

        def on_anomaly_counted(anomaly: object) -> None:
            summary.anomalies += 1
            dispatcher.on_anomaly(anomaly)  # type: ignore[arg-type]

        table = FlowTable(dispatcher, on_anomaly_counted)
        decoder = Decoder(on_anomaly_counted, flows=table)
        progress = self._progress
        size = self.path.stat().st_size if progress is not None else 0
        # The hash runs on the other core while this thread parses.
        digest = _hash_in_background(self.path) if self._hash_input else None
        try:
            # Frames go reader -> decoder -> flow table -> dispatcher by plain calls; what
            # they made is passed on whenever the reader pauses (every chunk).
            for _ in reader.scan(decoder.take):
                if out:
                    yield out
                    out.clear()
                if progress is not None:
                    progress(reader.bytes_read, size)
            decoder.finish()
            table.finish()
            if out:
                yield out
                out.clear()
            if digest is not None:
                summary.sha256 = digest.result()
        finally:
            if digest is not None:
                digest.cancel()
        summary.packets = reader.frames
        summary.count_traffic(decoder.encapsulations, decoder.not_ip, decoder.other_ip)
        summary.first_ts = reader.first_ts
        summary.last_ts = reader.last_ts
        summary.truncated_at = reader.truncated_at
        summary.warnings.extend(reader.warnings)
        self.reader_anomalies = dict(reader.anomalies)
        summary.anomalies += sum(reader.anomalies.values())


# -- analyze -------------------------------------------------------------------------


@dataclass
class FileAnalysis:
    """Everything ``analyze`` learned from one file; merged in input order."""

    summary: InputSummary
    findings: list[Finding]
    sections: dict[str, list[dict[str, Any]]]
    anomalies: dict[str, int]
    anomaly_samples: list[dict[str, Any]]


def analyze_file(path: Path, context: Context, progress: Progress | None = None) -> FileAnalysis:
    from dotaudit.detect.runner import DetectorRunner

    # The session stage, every detector, and the policy's severity overrides, once.
    detection = DetectorRunner(context)
    feed = detection.feed
    anomalies: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
    run = CaptureRun(path, progress=progress)
    for event in run.events():
        if isinstance(event, AnomalySeen):
            anomalies[event.what] = anomalies.get(event.what, 0) + 1
            if len(samples) < ANOMALY_SAMPLES:
                samples.append(event.to_dict())
        feed(event)
    for what, count in run.reader_anomalies.items():
        anomalies[what] = anomalies.get(what, 0) + count
    result = detection.finish()
    for what, count in result.caps.items():  # caps that bit are counted like anomalies
        anomalies[what] = anomalies.get(what, 0) + count
    return FileAnalysis(run.summary, result.findings, result.sections, anomalies, samples)


def _analyze_in_worker(path: Path, context: Context) -> FileAnalysis:
    return analyze_file(path, context)


def analyze(
    paths: list[Path],
    context: Context,
    *,
    workers: int = 1,
    progress_for: Callable[[Path], Progress | None] | None = None,
    generated_at: str = "",
) -> AuditReport:
    """Analyze files (in parallel when ``workers`` > 1) into one report.

    Results are merged in input order, so a parallel run equals a serial one.
    """
    results: list[FileAnalysis]
    if workers > 1 and len(paths) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(paths))) as pool:
            results = list(pool.map(_analyze_in_worker, paths, [context] * len(paths)))
    else:
        results = [
            analyze_file(p, context, progress_for(p) if progress_for else None) for p in paths
        ]
    policy = context.policy.to_dict()
    if not results:
        return AuditReport(kind="analyze", generated_at=generated_at, policy=policy)
    per_file = [
        AuditReport(
            kind="analyze",
            generated_at=generated_at,
            inputs=[result.summary.to_dict()],
            findings=result.findings,
            anomalies=result.anomalies,
            anomaly_samples=result.anomaly_samples,
            sections=result.sections,
            policy=policy,
        )
        for result in results
    ]
    return merge_reports(per_file, generated_at)
