"""Wires the layers: capture file -> packets -> flows -> dissectors -> events.

This is the only module that knows every layer; the CLI calls it. An input is a file,
standard input (``-``) or a capture set (several files read as one timeline,
``capture/sets.py``); :func:`capture_runs` makes the :class:`CaptureRun` of each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotaudit.capture.decode import Decoder
from dotaudit.capture.flows import FlowTable
from dotaudit.capture.packet import Anomaly
from dotaudit.capture.reader import STDIN_NAME, CaptureReader, stdin_reader
from dotaudit.capture.sets import (
    STDIN_ARGUMENT,
    CaptureSet,
    Grouping,
    InputGroup,
    capture_sets,
    group_inputs,
)
from dotaudit.dissect.dispatch import Dispatcher
from dotaudit.errors import InputError
from dotaudit.model.capture_set import SetFrames, is_code, member_of
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
"""Called now and then with (bytes read so far, total bytes; 0 when unknown)."""


def _hash_in_background(paths: Sequence[str | Path]) -> dict[str, Future[str]]:
    """The files' hashes, computed one after the other by a thread of their own."""
    # Imported here: `events` does not hash, and concurrent.futures costs start-up time.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    digests = {str(path): pool.submit(sha256_file, Path(path)) for path in paths}
    pool.shutdown(wait=False)  # the thread ends with the last hash; nothing else is queued
    return digests


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
    """Files as given, capture files (by magic bytes) found under directories, and ``-``
    (standard input) once at most."""
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if argument == STDIN_ARGUMENT:
            if path in paths:
                raise InputError("-: standard input given twice")
            paths.append(path)
        elif path.is_dir():
            paths.extend(p for p in sorted(path.rglob("*")) if p.is_file() and is_capture_file(p))
        elif path.exists():
            paths.append(path)
        else:
            raise InputError(f"{argument}: no such file or directory")
    return paths


class CaptureRun:
    """One pass over one capture: a file, standard input (``-``) or a capture set.
    Iterate ``events()`` or ``lines()``; read ``summaries`` (one per file; ``summary`` is
    the first) afterwards."""

    def __init__(
        self,
        source: Path | str | CaptureSet,
        *,
        progress: Progress | None = None,
        hash_input: bool = True,
        digests: Mapping[str, Future[str]] | None = None,
    ) -> None:
        self.capture_set = source if isinstance(source, CaptureSet) else None
        name = source.label if isinstance(source, CaptureSet) else str(source)
        self.path = Path(name)
        self.stdin = self.capture_set is None and name == STDIN_ARGUMENT
        self.name = STDIN_NAME if self.stdin else name
        """The ``file`` of the events."""
        self.summary = InputSummary(path=self.name)
        self.summaries = [self.summary]
        self.set_frames = (
            SetFrames(self.capture_set.label, self.capture_set.files)
            if self.capture_set is not None
            else None
        )
        """How the run's frame codes name files (capture sets only)."""
        self._progress = progress
        self._hash_input = hash_input  # reports name their inputs' sha256; `events` does not
        self._digests = digests
        self.reader_anomalies: dict[str, int] = {}
        """What the reader counted (records it read, but not as written), by reason."""

    def events(self) -> Iterator[Event]:
        """Every event of the capture, in capture order (frames of a set are codes)."""
        for batch in self._batches(lambda out: out.append):
            yield from batch

    def lines(self, types: frozenset[str] | None = None) -> Iterator[str]:
        """The ``dotaudit events`` output, a joined batch of JSON lines at every reader
        pause. Events are encoded as the dissectors make them, with no generator hop per
        event; ``types`` keeps only those record types. A set's lines name each frame in
        its own file."""
        encode = event_json_line if self.set_frames is None else self.set_frames.event_line

        def encoder(out: list[str]) -> Callable[[Event], None]:
            append = out.append
            if types is None:
                return lambda event: append(encode(event))
            return lambda event: append(encode(event)) if event.type in types else None

        for batch in self._batches(encoder):
            yield "".join(batch)

    def _batches(
        self, emitter: Callable[[list[Any]], Callable[[Event], None]]
    ) -> Iterator[list[Any]]:
        """Run the capture through every layer; ``emitter(out)`` makes the function the
        dissectors call with each event, which is to fill ``out``. ``out`` is yielded (and
        then emptied) whenever the reader pauses, and once at the end."""
        if self.capture_set is not None:
            yield from self._set_batches(self.capture_set, emitter)
            return
        stream = None
        if self.stdin:
            reader, stream = stdin_reader()
        else:
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
        size = self.path.stat().st_size if progress is not None and stream is None else 0
        # The hash runs on the other core while this thread parses; standard input is
        # hashed as it is read.
        digest = (
            _hash_in_background([self.path])[str(self.path)]
            if self._hash_input and stream is None
            else None
        )
        try:
            # Frames go reader -> decoder -> flow table -> dispatcher by plain calls; what
            # they made is passed on whenever the reader pauses (every chunk).
            for _ in reader.scan(decoder.take):
                if out:
                    yield out
                    out.clear()
                if progress is not None:
                    progress(reader.bytes_read if stream is None else stream.bytes_read, size)
            decoder.finish()
            table.finish()
            if out:
                yield out
                out.clear()
            if digest is not None:
                summary.sha256 = digest.result()
            elif stream is not None and self._hash_input:
                summary.sha256 = stream.hexdigest()
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

    def _set_batches(
        self, capture_set: CaptureSet, emitter: Callable[[list[Any]], Callable[[Event], None]]
    ) -> Iterator[list[Any]]:
        out: list[Any] = []
        dispatcher = Dispatcher(capture_set.label, emitter(out))
        anomalies: dict[int, int] = {}

        def on_anomaly_counted(anomaly: Anomaly) -> None:
            member = member_of(anomaly.frame) if is_code(anomaly.frame) else 0
            anomalies[member] = anomalies.get(member, 0) + 1
            dispatcher.on_anomaly(anomaly)

        def on_duplicate(code: int, ts: float, detail: str) -> None:
            on_anomaly_counted(Anomaly(DUPLICATE_FRAME, code, ts, detail))

        table = FlowTable(dispatcher, on_anomaly_counted)
        decoder = Decoder(on_anomaly_counted, flows=table)
        tallies = MemberTallies(decoder)
        progress = self._progress
        for _ in capture_set.scan(decoder.take, on_duplicate, tallies.switch):
            if out:
                yield out
                out.clear()
            if progress is not None:
                progress(capture_set.bytes_read, 0)
        decoder.finish()
        table.finish()
        tallies.switch(-1)
        if out:
            yield out
            out.clear()
        self.summaries = member_summaries(capture_set, anomalies, tallies, self._digests)
        self.summary = self.summaries[0]
        for member in capture_set.members:
            for what, count in member.source.anomalies.items():
                self.reader_anomalies[what] = self.reader_anomalies.get(what, 0) + count


DUPLICATE_FRAME = "duplicate_frame"
"""The anomaly of a frame of a set skipped as a repeat of another file's frame."""


class MemberTallies:
    """The decoder's tallies (encapsulations, non-IP, other IP) split by the file of the
    frame being decoded: the difference since the last switch of files goes to the file
    read until then."""

    def __init__(self, decoder: Decoder) -> None:
        self._decoder = decoder
        self._current = -1
        self._seen: tuple[dict[str, int], ...] = ({}, {}, {})
        self.by_member: dict[int, tuple[dict[str, int], ...]] = {}

    def switch(self, member: int) -> None:
        decoder = self._decoder
        tallies = (decoder.encapsulations, decoder.not_ip, decoder.other_ip)
        if self._current >= 0 and any(tallies):
            now = tuple(dict(tally) for tally in tallies)
            mine = self.by_member.setdefault(self._current, ({}, {}, {}))
            for total, before, own in zip(now, self._seen, mine, strict=True):
                for name, count in total.items():
                    grown = count - before.get(name, 0)
                    if grown:
                        own[name] = own.get(name, 0) + grown
            self._seen = now
        self._current = member


def member_summaries(
    capture_set: CaptureSet,
    anomalies: Mapping[int, int],
    tallies: MemberTallies,
    digests: Mapping[str, Future[str]] | None,
) -> list[InputSummary]:
    """The ``inputs[]`` entries of a set's files, in timeline order."""
    summaries = []
    count = len(capture_set.members)
    for member in capture_set.members:
        source = member.source
        summary = InputSummary(path=member.path)
        summary.format = source.format
        summary.packets = source.frames
        summary.first_ts = source.first_ts
        summary.last_ts = source.last_ts
        summary.truncated_at = source.truncated_at
        summary.warnings.extend(source.warnings)
        if member.duplicates:
            summary.warnings.append(
                f"{member.path}: {member.duplicates} frames repeat frames of another file "
                "of the set (same bytes, same time); each was counted once"
            )
        summary.anomalies = anomalies.get(member.index, 0) + sum(source.anomalies.values())
        summary.count_traffic(*tallies.by_member.get(member.index, ({}, {}, {})))
        if digests is not None and member.path in digests:
            summary.sha256 = digests[member.path].result()
        if count == 1:  # a long silence cut it off from the rest: a file read alone
            summaries.append(summary)
            continue
        summary.capture_set = {
            "name": capture_set.label,
            "member": member.index + 1,
            "members": count,
            "grouped_by": capture_set.grouped_by,
            "duplicate_frames": member.duplicates,
        }
        summaries.append(summary)
    return summaries


def capture_runs(
    group: InputGroup, *, progress: Progress | None = None, hash_input: bool = True
) -> Iterator[CaptureRun]:
    """The runs of one input group: one for a file or standard input, one per set for a
    group of files (each made once the one before has been read to its end)."""
    if not group.is_set:
        yield CaptureRun(group.files[0], progress=progress, hash_input=hash_input)
        return
    digests = _hash_in_background(group.files) if hash_input else None
    total = sum(_size(path) for path in group.files)
    done = 0
    for capture_set in capture_sets(group):
        step = None
        if progress is not None:
            report = progress
            base = done

            def step(read: int, _total: int, report: Progress = report, base: int = base) -> None:
                report(base + read, total)

        yield CaptureRun(capture_set, progress=step, hash_input=hash_input, digests=digests)
        done += capture_set.bytes_read


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:  # read as if empty: reading it says why
        return 0


def input_groups(paths: Sequence[Path | str], grouping: Grouping) -> list[InputGroup]:
    """The inputs grouped into what is read together (``capture/sets.py``)."""
    return group_inputs([str(p) for p in paths], grouping)


# -- analyze -------------------------------------------------------------------------


@dataclass
class FileAnalysis:
    """Everything ``analyze`` learned from one capture (a file, standard input or a
    set); merged in input order."""

    summaries: list[InputSummary]
    findings: list[Finding]
    sections: dict[str, list[dict[str, Any]]]
    anomalies: dict[str, int]
    anomaly_samples: list[dict[str, Any]]

    @property
    def summary(self) -> InputSummary:
        return self.summaries[0]


def analyze_run(run: CaptureRun, context: Context) -> FileAnalysis:
    from dotaudit.detect.runner import DetectorRunner

    # The session stage, every detector, and the policy's severity overrides, once.
    detection = DetectorRunner(context)
    feed = detection.feed
    anomalies: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
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
    findings, sections = result.findings, result.sections
    frames = run.set_frames
    if frames is not None:  # name every frame in its own file
        findings = [frames.finding(f) for f in findings]
        sections = {name: frames.rows(rows) for name, rows in sections.items()}
        samples = frames.rows(samples)
    return FileAnalysis(run.summaries, findings, sections, anomalies, samples)


def analyze_file(path: Path, context: Context, progress: Progress | None = None) -> FileAnalysis:
    return analyze_run(CaptureRun(path, progress=progress), context)


def analyze_group(
    group: InputGroup, context: Context, progress: Progress | None = None
) -> list[FileAnalysis]:
    return [analyze_run(run, context) for run in capture_runs(group, progress=progress)]


def _analyze_in_worker(group: InputGroup, context: Context) -> list[FileAnalysis]:
    return analyze_group(group, context)


def analyze(
    paths: Sequence[Path | str],
    context: Context,
    *,
    workers: int = 1,
    progress_for: Callable[[str], Progress | None] | None = None,
    generated_at: str = "",
    grouping: Grouping = Grouping.AUTO,
) -> AuditReport:
    """Analyze captures (files, standard input, capture sets; each set in parallel when
    ``workers`` > 1) into one report.

    Results are merged in input order, so a parallel run equals a serial one. A single
    set is read by one process, as a single file is.
    """
    groups = input_groups(paths, grouping)
    per_group: list[list[FileAnalysis]]
    if workers > 1 and len(groups) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(groups))) as pool:
            per_group = list(pool.map(_analyze_in_worker, groups, [context] * len(groups)))
    else:
        per_group = [
            analyze_group(g, context, progress_for(group_label(g)) if progress_for else None)
            for g in groups
        ]
    results = [result for group_results in per_group for result in group_results]
    policy = context.policy.to_dict()
    if not results:
        return AuditReport(kind="analyze", generated_at=generated_at, policy=policy)
    per_file = [
        AuditReport(
            kind="analyze",
            generated_at=generated_at,
            inputs=[summary.to_dict() for summary in result.summaries],
            findings=result.findings,
            anomalies=result.anomalies,
            anomaly_samples=result.anomaly_samples,
            sections=result.sections,
            policy=policy,
        )
        for result in results
    ]
    return merge_reports(per_file, generated_at)


def group_label(group: InputGroup) -> str:
    """How a group is named on a progress line."""
    if group.is_stdin:
        return STDIN_NAME
    if group.is_set:
        return f"{group.files[0]} (+{len(group.files) - 1})"
    return group.files[0]
