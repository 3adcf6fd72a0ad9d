"""Wires the layers: capture file -> packets -> flows -> dissectors -> events.

This is the only module that knows every layer; the CLI calls it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotaudit.capture.decode import Decoder
from dotaudit.capture.engine import open_capture
from dotaudit.capture.flows import FlowTable
from dotaudit.dissect.dispatch import Dispatcher, KeepWhole
from dotaudit.errors import InputError
from dotaudit.model.events import AnomalySeen, Event, event_json_line
from dotaudit.model.findings import Finding
from dotaudit.model.report import AuditReport

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


@dataclass
class InputSummary:
    """What one capture file was: the `inputs[]` entry of a report."""

    path: str
    sha256: str = ""
    format: str = ""
    packets: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    truncated_at: int | None = None
    warnings: list[str] = field(default_factory=list)
    anomalies: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "format": self.format,
            "packets": self.packets,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "span_s": (
                round(self.last_ts - self.first_ts, 6)
                if self.first_ts is not None and self.last_ts is not None
                else None
            ),
            "truncated_at": self.truncated_at,
            "warnings": list(self.warnings),
            "anomalies": self.anomalies,
        }


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
        prefilter: bool = True,
        keep_whole: KeepWhole | None = None,
    ) -> None:
        self.path = Path(path)
        self.summary = InputSummary(path=str(path))
        self._progress = progress
        self._hash_input = hash_input  # reports name their inputs' sha256; `events` does not
        # Prefilter: flows the dissectors are done with are bypassed (only their control
        # packets are read, in C through libpcap when it can take the file); without it
        # every packet of every flow is read.
        self.prefilter = prefilter
        self._keep_whole = keep_whole
        self.engine = ""
        """How the capture was read: "libpcap" or "python" (after the run)."""
        self.source: object = None
        """What read the capture (a ``CaptureSource``), for measurements."""

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
        reader = open_capture(self.path, prefilter=self.prefilter)
        self.engine = reader.engine
        self.source = reader
        summary = self.summary
        summary.format = reader.format
        out: list[Any] = []
        dispatcher = Dispatcher(str(self.path), emitter(out), self._keep_whole)

        def on_anomaly_counted(anomaly: object) -> None:
            summary.anomalies += 1
            dispatcher.on_anomaly(anomaly)  # type: ignore[arg-type]

        table = FlowTable(dispatcher, on_anomaly_counted, bypass=self.prefilter)
        decoder = Decoder(on_anomaly_counted, flows=table)
        reader.attach(table)
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
        summary.first_ts = reader.first_ts
        summary.last_ts = reader.last_ts
        summary.truncated_at = reader.truncated_at
        summary.warnings.extend(reader.warnings)


def atomic_writer(target: str) -> tuple[object, Callable[[bool], None]]:
    """Open ``target`` for text writing so that it appears whole or not at all.

    Returns the handle and a ``finish(ok)`` callable that renames into place on
    success and removes the temporary file on failure. Non-regular targets
    (``/dev/null``, a FIFO) are written directly.
    """
    path = Path(target)
    if path.exists() and not path.is_file():
        handle = path.open("w", encoding="utf-8")

        def finish_direct(ok: bool) -> None:
            if not ok:
                # An interrupted or failed run: a FIFO or pipe whose reader stopped would
                # block the flush of what is still buffered forever; drop it instead.
                with suppress(OSError):
                    os.close(handle.fileno())
            with suppress(OSError, ValueError):
                handle.close()

        return handle, finish_direct
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    handle = temporary.open("w", encoding="utf-8")

    def finish(ok: bool) -> None:
        handle.close()
        if ok:
            os.replace(temporary, path)
        else:
            temporary.unlink(missing_ok=True)

    return handle, finish


# -- analyze -------------------------------------------------------------------------

ANOMALY_SAMPLES = 50


@dataclass
class FileAnalysis:
    """Everything ``analyze`` learned from one file; merged in input order."""

    summary: InputSummary
    findings: list[Finding]
    sections: dict[str, list[dict[str, Any]]]
    anomalies: dict[str, int]
    anomaly_samples: list[dict[str, Any]]


def analyze_file(
    path: Path, context: Context, progress: Progress | None = None, *, prefilter: bool = True
) -> FileAnalysis:
    from dotaudit.detect.base import Detector
    from dotaudit.detect.registry import DETECTORS

    detectors = [cls(context) for cls in DETECTORS]
    keepers = [d.keeps_flow for d in detectors if type(d).keeps_flow is not Detector.keeps_flow]
    # Each event type goes only to the detectors that use it.
    routes: dict[type[Event], list[Callable[[Event], None]]] = {}
    for detector in detectors:
        for event_type in detector.event_types:
            routes.setdefault(event_type, []).append(detector.on_event)
    anomalies: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
    run = CaptureRun(
        path,
        progress=progress,
        prefilter=prefilter,
        keep_whole=lambda hello: any(keeps(hello) for keeps in keepers),
    )
    for event in run.events():
        if isinstance(event, AnomalySeen):
            anomalies[event.what] = anomalies.get(event.what, 0) + 1
            if len(samples) < ANOMALY_SAMPLES:
                samples.append(event.to_dict())
        for handle in routes.get(type(event), ()):
            handle(event)
    findings: list[Finding] = []
    sections: dict[str, list[dict[str, Any]]] = {}
    for detector in detectors:
        findings.extend(detector.finish())
        for name, rows in detector.sections().items():
            sections.setdefault(name, []).extend(rows)
    return FileAnalysis(run.summary, findings, sections, anomalies, samples)


def _analyze_in_worker(path: Path, context: Context, prefilter: bool) -> FileAnalysis:
    return analyze_file(path, context, prefilter=prefilter)


def analyze(
    paths: list[Path],
    context: Context,
    *,
    workers: int = 1,
    progress_for: Callable[[Path], Progress | None] | None = None,
    generated_at: str = "",
    prefilter: bool = True,
) -> AuditReport:
    """Analyze files (in parallel when ``workers`` > 1) into one report.

    Results are merged in input order, so a parallel run equals a serial one.
    """
    results: list[FileAnalysis]
    if workers > 1 and len(paths) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(paths))) as pool:
            results = list(
                pool.map(
                    _analyze_in_worker, paths, [context] * len(paths), [prefilter] * len(paths)
                )
            )
    else:
        results = [
            analyze_file(p, context, progress_for(p) if progress_for else None, prefilter=prefilter)
            for p in paths
        ]
    report = AuditReport(kind="analyze", generated_at=generated_at)
    report.policy = context.policy.to_dict()
    for result in results:
        report.inputs.append(result.summary.to_dict())
        report.findings.extend(result.findings)
        for name, rows in result.sections.items():
            report.sections.setdefault(name, []).extend(rows)
        for what, count in result.anomalies.items():
            report.anomalies[what] = report.anomalies.get(what, 0) + count
        room = ANOMALY_SAMPLES - len(report.anomaly_samples)
        report.anomaly_samples.extend(result.anomaly_samples[: max(room, 0)])
    return report
