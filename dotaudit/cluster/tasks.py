"""The work a distributed ``analyze`` runs on its workers, as plain functions.

Nothing here knows Dask: every function takes and returns picklable values, does the
same thing however often it is retried, and can be called in one process (the tests do,
beside the cluster itself). ``engine.py`` wires them into a task graph:

1. ``map_capture`` reads one input (from wherever its URL points, on the worker) and
   dissects it into events, cut into shares by client (``client_share``), each share
   an encoded batch (``model/event_codec.py``).
2. ``detect_share`` feeds one share of one timeline, every file's batch for it in
   capture order, to a ``DetectorRunner``; ``share_facts`` takes from it what its
   detectors know about servers (``Detector.shared_facts``).
3. ``finish_share`` finishes the runner with the timeline's facts merged from every
   share, so each judges as one run over every client would.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotaudit.capture.sets import InputGroup
from dotaudit.detect.base import Context
from dotaudit.detect.partition import SHARED_EVENT_TYPES, client_of
from dotaudit.detect.runner import Detection, DetectorRunner
from dotaudit.errors import InputError
from dotaudit.model.event_codec import decode_events, encode_events
from dotaudit.model.events import AnomalySeen, Event
from dotaudit.model.findings import Finding
from dotaudit.model.report import ANOMALY_SAMPLES, combined_sections
from dotaudit.pipeline import CaptureRun, analyze_group, analyze_run

COPY_CHUNK = 1 << 20


def client_share(client: str, shares: int) -> int:
    """The share a client's events go to: the same in every process and every run
    (Python's own ``hash`` of a string changes from process to process)."""
    return zlib.crc32(client.encode("utf-8", "surrogateescape")) % shares


@dataclass
class MappedCapture:
    """What reading one input gave: its summary, its anomalies, and its events by share."""

    summary: dict[str, Any]
    anomalies: dict[str, int]
    anomaly_samples: list[dict[str, Any]]
    shares: dict[int, bytes] = field(default_factory=dict)
    """Encoded event batches by share number; shares with no events are absent."""
    events: int = 0
    """Events shipped (those some detector reads)."""
    error: str | None = None
    """Why the input could not be read (the one line ``analyze`` prints), else None: a
    failure is data here, so that it reaches the client as it was worded."""

    shuffled_bytes: int = 0
    """The size of every share's batch: what the shuffle moves for this input."""

    def without_shares(self) -> MappedCapture:
        """What the client needs to know of a map result: all but the events."""
        return dataclasses.replace(self, shares={})


def is_local(url: str) -> bool:
    """A plain path or ``file://`` URL: read in place rather than copied."""
    scheme, sep, _ = url.partition("://")
    return not sep or scheme == "file"


def local_path(url: str) -> Path:
    return Path(url.removeprefix("file://")) if url.startswith("file://") else Path(url)


@contextmanager
def opened_locally(url: str) -> Iterator[Path]:
    """A local file with ``url``'s bytes, for the readers (which seek and mmap).

    A remote object is streamed to the worker's temporary directory through fsspec,
    with the credentials fsspec finds in the worker's environment and configuration,
    and removed afterwards, whatever happens.
    """
    if is_local(url):
        yield local_path(url)
        return
    import fsspec  # optional: only remote inputs need it

    handle, name = tempfile.mkstemp(prefix="dotaudit-input-", suffix=".capture")
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with fsspec.open(url, "rb") as remote:
                    shutil.copyfileobj(remote, out, COPY_CHUNK)
            except FileNotFoundError:
                raise InputError(f"{url}: cannot read: no such object") from None
            except (OSError, ValueError) as exc:  # fsspec maps remote errors to these
                raise InputError(f"{url}: cannot read: {exc}") from None
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def map_capture(
    url: str, shares: int, name: str | None = None, context: Context | None = None
) -> MappedCapture:
    """Read and dissect one input; its events that detectors read, cut into shares.
    ``name`` is what events and the report call it (``url`` by default). An input that
    cannot be read gives a ``MappedCapture`` whose ``error`` says why."""
    name = name if name is not None else url
    try:
        return _map_capture(url, shares, name, context or Context())
    except InputError as exc:
        return MappedCapture({"path": name}, {}, [], error=str(exc))


def _map_capture(url: str, shares: int, name: str, context: Context) -> MappedCapture:
    by_share: dict[int, list[Event]] = {}
    anomalies: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
    events = 0
    with opened_locally(url) as path:
        # Flows a detector counts whole are read whole, as analyze reads them (the
        # detectors judge in the reduce; which flows they keep is known from the hello).
        run = CaptureRun(path, name=name, keep_whole=DetectorRunner(context).keeps_flow)
        try:
            for event in run.events():
                if type(event) is AnomalySeen:
                    anomalies[event.what] = anomalies.get(event.what, 0) + 1
                    if len(samples) < ANOMALY_SAMPLES:
                        samples.append(event.to_dict())
                    continue
                if type(event) not in SHARED_EVENT_TYPES:
                    continue
                share = client_share(client_of(event), shares)
                batch = by_share.get(share)
                if batch is None:
                    batch = by_share[share] = []
                batch.append(event)
                events += 1
        except InputError as exc:
            # The reader names the local copy; the report names what was asked for.
            raise InputError(str(exc).replace(str(path), name)) from None
    for what, count in run.reader_anomalies.items():
        anomalies[what] = anomalies.get(what, 0) + count
    summary = run.summary
    summary.warnings = [w.replace(str(path), name) for w in summary.warnings]
    batches = {share: encode_events(batch) for share, batch in sorted(by_share.items())}
    return MappedCapture(
        summary.to_dict(),
        anomalies,
        samples,
        batches,
        events,
        shuffled_bytes=sum(len(batch) for batch in batches.values()),
    )


def analyze_input(url: str, name: str, context: Context) -> tuple[MappedCapture, Detection]:
    """A timeline of one input, read and judged in one task, as ``analyze`` does locally:
    with nothing to correlate across inputs there is nothing to shuffle."""
    try:
        with opened_locally(url) as path:
            try:
                result = analyze_run(CaptureRun(path, name=name), context)
            except InputError as exc:
                raise InputError(str(exc).replace(str(path), name)) from None
    except InputError as exc:
        return MappedCapture({"path": name}, {}, [], error=str(exc)), Detection([], {})
    summaries = [summary.to_dict() for summary in result.summaries]
    for summary in summaries:
        warnings = summary.get("warnings")
        if isinstance(warnings, list):
            summary["warnings"] = [str(w).replace(str(path), name) for w in warnings]
    mapped = MappedCapture(summaries[0], result.anomalies, result.anomaly_samples)
    # The caps that bit are already among the anomalies, as analyze_run counts them.
    return mapped, Detection(result.findings, result.sections)


def analyze_capture_set(
    group: InputGroup, names: list[str], context: Context
) -> tuple[list[MappedCapture], Detection]:
    """Local files that a local ``analyze`` reads as one timeline (``group``, as
    ``pipeline.input_groups`` made it from their absolute paths), read and judged in one
    task as it does: their flows, reassembly and sessions cross the files, which reading
    them apart would cut. Files are named as given (``names``)."""
    renames = dict(zip(group.files, names, strict=True))
    try:
        results = analyze_group(group, context)
    except InputError as exc:
        text = str(exc)
        for path, name in renames.items():
            text = text.replace(path, name)
        return [MappedCapture({"path": names[0]}, {}, [], error=text)], Detection([], {})
    mapped: list[MappedCapture] = []
    findings: list[Finding] = []
    for result in results:
        for number, summary in enumerate(result.summaries):
            data = _renamed(summary.to_dict(), renames)
            first = number == 0
            mapped.append(
                MappedCapture(
                    data,
                    result.anomalies if first else {},
                    _renamed(result.anomaly_samples, renames) if first else [],
                )
            )
        findings.extend(result.findings)
    detection = Detection(findings, combined_sections(result.sections for result in results))
    return mapped, _renamed_detection(detection, renames)


def _renamed(value: Any, renames: dict[str, str]) -> Any:
    """``value`` (plain data) with every absolute path of the run replaced by its name."""
    if isinstance(value, str):
        # Longest first: a rotated file's path often starts with its set's first file's.
        for path, name in sorted(renames.items(), key=lambda item: -len(item[0])):
            if path in value:
                value = value.replace(path, name)
        return value
    if isinstance(value, list):
        return [_renamed(v, renames) for v in value]
    if isinstance(value, tuple):
        return tuple(_renamed(v, renames) for v in value)
    if isinstance(value, dict):
        return {k: _renamed(v, renames) for k, v in value.items()}
    return value


def _renamed_detection(detection: Detection, renames: dict[str, str]) -> Detection:
    findings = [
        Finding.from_dict(_renamed(finding.to_dict(), renames)) for finding in detection.findings
    ]
    return Detection(findings, _renamed(detection.sections, renames))


def summary_of_analysis(analysis: tuple[MappedCapture, Detection]) -> MappedCapture:
    return analysis[0]


def detection_of_analysis(analysis: tuple[MappedCapture, Detection]) -> Detection:
    return analysis[1]


def map_summary(mapped: MappedCapture) -> MappedCapture:
    return mapped.without_shares()


def share_of(mapped: MappedCapture, share: int) -> bytes:
    """One share's batch of one input (empty bytes when it has none)."""
    return mapped.shares.get(share, b"")


def detect_share(context: Context, batches: Sequence[bytes]) -> DetectorRunner:
    """Run the detectors over one share of one timeline: ``batches`` are its files' in
    input order, merged by capture time (ties keep input order, as a merge of the
    files into one capture would)."""
    runner = DetectorRunner(context)
    feed = runner.feed
    streams = [decode_events(batch) for batch in batches if batch]
    if len(streams) == 1:
        for event in streams[0]:
            feed(event)
    else:
        for _, _, event in heapq.merge(
            *(((e.ts, n, e) for e in stream) for n, stream in enumerate(streams)),
            key=lambda item: (item[0], item[1]),
        ):
            feed(event)
    return runner


def share_facts(runner: DetectorRunner) -> dict[str, Any]:
    return runner.shared_facts()


def finish_share(runner: DetectorRunner, facts: dict[str, Any]) -> Detection:
    return runner.finish(facts)
