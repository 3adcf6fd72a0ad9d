"""Wires the layers: capture file -> packets -> flows -> dissectors -> events.

This is the only module that knows every layer; the CLI calls it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotaudit.capture.decode import Decoder
from dotaudit.capture.flows import FlowTable
from dotaudit.capture.reader import CaptureReader
from dotaudit.dissect.dispatch import Dispatcher
from dotaudit.errors import InputError
from dotaudit.files import distinct_files, is_regular_file, sha256_file
from dotaudit.model.events import AnomalySeen, Event, event_json_line
from dotaudit.model.evidence import EVIDENCE_MARKER
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
CAPTURE_EXTENSIONS = (".pcap", ".pcapng", ".cap", ".gz")
"""Names a directory scan takes for captures: such a file that is not one is listed in
the report as skipped. Other files are read when their magic bytes say capture, and
otherwise ignored without a word (a README beside the captures)."""

Progress = Callable[[int, int], None]
"""Called now and then with (bytes read so far, file size)."""


def _hash_in_background(path: Path) -> Future[str] | None:
    # Imported here: `events` does not hash, and concurrent.futures costs start-up time.
    from concurrent.futures import ThreadPoolExecutor

    if not is_regular_file(path):
        return None  # a pipe can be read once, by the reader
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        digest = pool.submit(sha256_file, path)
    except RuntimeError:  # no thread to be had (a memory limit): hash after reading
        return None
    pool.shutdown(wait=False)  # the thread ends with the hash; nothing else is queued
    return digest


def is_capture_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in CAPTURE_MAGICS)


def has_capture_name(path: Path) -> bool:
    return path.name.lower().endswith(CAPTURE_EXTENSIONS)


@dataclass
class InputSelection:
    """The files a run reads, and those it lists without reading."""

    paths: list[Path]
    """To read, in order: as given, directories expanded (sorted), duplicates left out."""
    skipped: list[InputSummary]
    """Listed in the report's inputs with the reason: duplicates, evidence directories,
    capture-named files that are no captures."""
    named: list[Path]
    """Every file named or found, skipped or not (``-o`` must be none of them)."""

    def warnings(self) -> list[str]:
        return [f"{item.path}: skipped: {item.skipped}" for item in self.skipped]

    def nothing_to_read(self, arguments: Sequence[str]) -> InputError:
        """The error when every file was skipped (or none found), naming the first few."""
        shown = "; ".join(f"{item.path} ({item.skipped})" for item in self.skipped[:3])
        more = f"; {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
        return InputError(
            "no capture files found in "
            + ", ".join(arguments)
            + (f"; skipped: {shown}{more}" if shown else "")
        )


def select_inputs(arguments: Iterable[str]) -> InputSelection:
    """Files as given, and the captures found under directories (by magic bytes, or by
    name: see :data:`CAPTURE_EXTENSIONS`), each file read once: a file given twice, a
    file and its directory, a link or an identical copy is read the first time only.
    Directories that ``analyze --evidence`` wrote are not scanned."""
    found: list[tuple[Path, bool]] = []  # (path, found by a directory scan)
    skipped: list[InputSummary] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files, evidence = _scan(path)
            found.extend((file, True) for file in files)
            skipped.extend(
                InputSummary(
                    path=str(folder),
                    skipped=f"an evidence directory written by dotaudit ({EVIDENCE_MARKER})",
                )
                for folder in evidence
            )
        elif path.exists():
            found.append((path, False))
        else:
            raise InputError(f"{argument}: no such file or directory")
    captures: list[Path] = []
    for path, scanned in found:
        problem = _not_a_capture(path) if scanned else None
        if problem is None:
            captures.append(path)
        else:
            skipped.append(InputSummary(path=str(path), skipped=problem))
    paths, duplicates = distinct_files(captures)
    skipped.extend(
        InputSummary(path=str(d.path), sha256=d.sha256, skipped=d.reason) for d in duplicates
    )
    return InputSelection(paths, skipped, [path for path, _ in found])


def _scan(folder: Path) -> tuple[list[Path], list[Path]]:
    """The capture candidates under ``folder`` (sorted), and the evidence directories
    that were not entered."""
    files: list[Path] = []
    evidence: list[Path] = []
    for top, dirs, names in os.walk(folder):
        here = Path(top)
        if EVIDENCE_MARKER in names and here != folder:
            evidence.append(here)
            dirs.clear()
            continue
        dirs.sort()
        for name in names:
            path = here / name
            if is_regular_file(path) and (has_capture_name(path) or is_capture_file(path)):
                files.append(path)
    return sorted(files), sorted(evidence)


def _not_a_capture(path: Path) -> str | None:
    """Why a file a directory scan found cannot be read as a capture, or None."""
    try:
        CaptureReader(path).close()
    except InputError as exc:
        text = str(exc)
        prefix = f"{path}: "
        return text[len(prefix) :] if text.startswith(prefix) else text
    return None


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
        self._reader: CaptureReader | None = None
        self.memory_reserve: bytearray | None = None
        """Given back when memory runs out, so that there is room to stop cleanly."""
        self.reader_anomalies: dict[str, int] = {}
        """What the reader counted (records it read, but not as written), by reason."""

    @property
    def packets_read(self) -> int:
        """Packets read so far (also during the run)."""
        return self._reader.frames if self._reader is not None else self.summary.packets

    def events(self) -> Generator[Event, None, None]:
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
        reader = self._reader = CaptureReader(self.path)
        self.memory_reserve = memory_reserve()
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
            elif self._hash_input and is_regular_file(self.path):
                summary.sha256 = sha256_file(self.path)
        except MemoryError:
            self.memory_reserve = None  # first: what follows needs a little memory
            out.clear()
            raise out_of_memory(self.path, reader.frames) from None
        finally:
            if digest is not None:
                digest.cancel()
        summarise(summary, reader, decoder)
        self.reader_anomalies = dict(reader.anomalies)


def summarise(
    summary: InputSummary,
    reader: CaptureReader,
    decoder: Decoder,
    *,
    reader_anomalies: bool = True,
) -> None:
    """What the reader and the decoder found, into the input's summary: the one place
    every way of reading a capture reports through, so that
    :meth:`InputSummary.completeness` judges each the same way."""
    summary.packets = reader.frames
    summary.count_traffic(decoder.encapsulations, decoder.not_ip, decoder.other_ip)
    summary.count_packets(
        records=reader.records, undelivered=reader.undelivered, undecoded=decoder.undecoded
    )
    summary.first_ts = reader.first_ts
    summary.last_ts = reader.last_ts
    summary.truncated_at = reader.truncated_at
    summary.stopped_at = reader.stopped_at
    summary.stop_reason = reader.stop_reason
    summary.warnings.extend(reader.warnings)
    if reader_anomalies:
        summary.anomalies += sum(reader.anomalies.values())


MEMORY_RESERVE = 16 << 20
"""Address space held during a run and given back first when memory runs out: under a
memory limit (``ulimit -v``) nothing is left once a ``MemoryError`` is raised, and
CPython then needs some to unwind, close the capture and print the one line (without
it, 3.11 can spin forever retrying the allocation of an exception handler's state)."""


def memory_reserve() -> bytearray:
    """:data:`MEMORY_RESERVE` bytes of address space (untouched pages: no resident memory)."""
    return bytearray(MEMORY_RESERVE)


def out_of_memory(path: Path, packets: int | None = None) -> InputError:
    """The one-line error for a capture that exhausted memory (``MemoryError``)."""
    after = f" after {packets} packets" if packets else ""
    return InputError(f"{path}: out of memory{after}")


# -- analyze -------------------------------------------------------------------------


@dataclass
class FileAnalysis:
    """Everything ``analyze`` learned from one file; merged in input order."""

    summary: InputSummary
    findings: list[Finding]
    sections: dict[str, list[dict[str, Any]]]
    anomalies: dict[str, int]
    anomaly_samples: list[dict[str, Any]]


def analyze_file(
    path: Path, context: Context, progress: Progress | None = None, name: str | None = None
) -> FileAnalysis:
    """One capture through every layer and the detectors; ``name`` is what the report
    calls it (its path by default)."""
    from dotaudit.detect.runner import DetectorRunner

    # The session stage, every detector, and the policy's severity overrides, once.
    detection = DetectorRunner(context)
    feed = detection.feed
    anomalies: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
    run = CaptureRun(path, progress=progress, name=name)
    events = run.events()
    reserve: bytearray | None = memory_reserve()
    try:
        for event in events:
            if isinstance(event, AnomalySeen):
                anomalies[event.what] = anomalies.get(event.what, 0) + 1
                if len(samples) < ANOMALY_SAMPLES:
                    samples.append(event.to_dict())
            feed(event)
        result = detection.finish()
    except MemoryError:
        reserve = run.memory_reserve = None  # first: what follows needs a little memory
    if reserve is None:
        # Out of the handler, the frames its traceback held are gone; the detectors'
        # state goes next, then the capture's.
        del detection, feed
        samples.clear()
        with suppress(MemoryError):
            events.close()
        raise out_of_memory(path, run.packets_read)
    del reserve
    for what, count in run.reader_anomalies.items():
        anomalies[what] = anomalies.get(what, 0) + count
    for what, count in result.caps.items():  # caps that bit are counted like anomalies
        anomalies[what] = anomalies.get(what, 0) + count
    return FileAnalysis(run.summary, result.findings, result.sections, anomalies, samples)


def _analyze_in_worker(path: Path, context: Context) -> FileAnalysis:
    return analyze_file(path, context)


def _worker_signals() -> None:
    """In a worker process: Ctrl-C reaches the whole process group, but only the parent
    answers it (it stops the workers and prints the one line); SIGTERM, which the parent
    stops workers with, ends a worker at once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _analyze_in_parallel(paths: list[Path], context: Context, workers: int) -> list[FileAnalysis]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_signals)
    try:
        futures = [pool.submit(_analyze_in_worker, path, context) for path in paths]
        results = []
        for path, future in zip(paths, futures, strict=True):
            try:
                results.append(future.result())
            except BrokenProcessPool:
                raise InputError(
                    f"{path}: the process analysing it ended abruptly (out of memory?)"
                ) from None
    except BaseException:
        # Interrupted, or failed: the workers still running are stopped, not awaited
        # (ProcessPoolExecutor has no public way to do so before Python 3.14).
        for process in list(pool._processes.values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def analyze(
    paths: list[Path],
    context: Context,
    *,
    workers: int = 1,
    progress_for: Callable[[Path], Progress | None] | None = None,
    generated_at: str = "",
    skipped: Sequence[InputSummary] = (),
) -> AuditReport:
    """Analyze files (in parallel when ``workers`` > 1) into one report; ``skipped``
    inputs are listed after them.

    Results are merged in input order, so a parallel run equals a serial one.
    """
    results: list[FileAnalysis]
    if workers > 1 and len(paths) > 1:
        results = _analyze_in_parallel(paths, context, min(workers, len(paths)))
    else:
        results = []
        for path in paths:
            try:
                results.append(
                    analyze_file(path, context, progress_for(path) if progress_for else None)
                )
            except MemoryError:  # before the file's own handler was in place
                raise out_of_memory(path) from None
    policy = context.policy.to_dict()
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
    if not per_file:
        per_file = [AuditReport(kind="analyze", generated_at=generated_at, policy=policy)]
    report = merge_reports(per_file, generated_at)
    report.inputs.extend(item.to_dict() for item in skipped)
    return report
