"""Wires the layers: capture file -> packets -> flows -> dissectors -> events.

This is the only module that knows every layer; the CLI calls it. An input is a file,
standard input (``-``) or a capture set (several files read as one timeline,
``capture/sets.py``); :func:`capture_runs` makes the :class:`CaptureRun` of each.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dotaudit.capture.decode import Decoder
from dotaudit.capture.engine import CaptureSource, open_capture
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
from dotaudit.dissect.dispatch import Dispatcher, KeepWhole
from dotaudit.dissect.host_identity import HostIdentityTracker
from dotaudit.errors import InputError
from dotaudit.files import distinct_files, is_regular_file, sha256_file
from dotaudit.model.capture_set import SetFrames, is_code, member_of
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

_R = TypeVar("_R")

Progress = Callable[[int, int], None]
"""Called now and then with (bytes read so far, total bytes; 0 when unknown)."""


def _hash_in_background(paths: Sequence[str | Path]) -> dict[str, Future[str]]:
    """The regular files' hashes, computed one after the other by a thread of their own
    (a pipe can be read once, by the reader; with no thread to be had, under a memory
    limit, none: they are hashed after reading)."""
    # Imported here: `events` does not hash, and concurrent.futures costs start-up time.
    from concurrent.futures import ThreadPoolExecutor

    regular = [Path(path) for path in paths if is_regular_file(Path(path))]
    if not regular:
        return {}
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        digests = {str(path): pool.submit(sha256_file, path) for path in regular}
    except RuntimeError:
        return {}
    pool.shutdown(wait=False)  # the thread ends with the last hash; nothing else is queued
    return digests


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
    Directories that ``analyze --evidence`` wrote are not scanned. ``-`` (standard input)
    is taken once at most, in its place."""
    found: list[tuple[Path, bool]] = []  # (path, found by a directory scan)
    skipped: list[InputSummary] = []
    stdin_at: int | None = None
    for argument in arguments:
        path = Path(argument)
        if argument == STDIN_ARGUMENT:
            if stdin_at is not None:
                raise InputError("-: standard input given twice")
            stdin_at = len(found)
        elif path.is_dir():
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
    if stdin_at is not None:  # never a file's duplicate: it is no file
        before = {path for path, _ in found[:stdin_at]}
        paths.insert(sum(path in before for path in paths), Path(STDIN_ARGUMENT))
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
        prefilter: bool = True,
        keep_whole: KeepWhole | None = None,
        name: str | None = None,
    ) -> None:
        override = name
        self.capture_set = source if isinstance(source, CaptureSet) else None
        name = source.label if isinstance(source, CaptureSet) else str(source)
        self.path = Path(name)
        self.stdin = self.capture_set is None and name == STDIN_ARGUMENT
        if override is not None:
            name = override
        self.name = STDIN_NAME if self.stdin else name
        """The ``file`` of the events (``name`` when given: a URL read from a local copy)."""
        self.summary = InputSummary(path=self.name)
        self.summaries = [self.summary]
        self.set_frames = (
            SetFrames(self.capture_set.label, self.capture_set.files)
            if self.capture_set is not None
            else None
        )
        """How the run's frame codes name files (capture sets only)."""
        self.caps: dict[str, int] = {}
        """What the flow table's caps cut (``FlowTable.caps``), once the events ended."""
        self._progress = progress
        self._hash_input = hash_input  # reports name their inputs' sha256; `events` does not
        self._digests = digests
        self._reader: CaptureSource | None = None
        self.memory_reserve: mmap.mmap | None = None
        """Given back when memory runs out, so that there is room to stop cleanly."""
        # Prefilter: flows the dissectors are done with are bypassed (only their control
        # packets are read, in C through libpcap when it can take the file); without it
        # every packet of every flow is read.
        self.prefilter = prefilter
        self._keep_whole = keep_whole
        self.engine = ""
        """How the capture was read: "libpcap" or "python" (after the run)."""
        self.source: object = None
        """What read the capture (a ``CaptureSource``), for measurements."""
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

    def records(
        self, encode: Callable[[Event], _R], types: frozenset[str] | None = None
    ) -> Iterator[list[_R]]:
        """Every event as ``encode`` makes it, in batches at every reader pause (as
        ``lines``). A batch list is reused: consume it before asking for the next."""

        def encoder(out: list[_R]) -> Callable[[Event], None]:
            append = out.append
            if types is None:
                return lambda event: append(encode(event))
            return lambda event: append(encode(event)) if event.type in types else None

        yield from self._batches(encoder)

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
        reader: CaptureSource
        if self.stdin:  # a pipe: the Python reader, which never seeks
            reader, stream = stdin_reader()
        else:
            reader = open_capture(self.path, prefilter=self.prefilter)
        self._reader = reader
        self.engine = reader.engine
        self.source = reader
        self.memory_reserve = memory_reserve()
        summary = self.summary
        summary.format = reader.format
        out: list[Any] = []
        links = HostIdentityTracker(self.name, emitter(out))
        dispatcher = Dispatcher(self.name, emitter(out), self._keep_whole, links)

        def on_anomaly_counted(anomaly: object) -> None:
            summary.anomalies += 1
            dispatcher.on_anomaly(anomaly)  # type: ignore[arg-type]

        table = FlowTable(dispatcher, on_anomaly_counted, bypass=self.prefilter)
        decoder = Decoder(on_anomaly_counted, flows=table, links=links)
        reader.attach(table)
        progress = self._progress
        size = self.path.stat().st_size if progress is not None and stream is None else 0
        # The hash runs on the other core while this thread parses; standard input is
        # hashed as it is read.
        digest = (
            _hash_in_background([self.path]).get(str(self.path))
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
            for _ in table.finish_steps():  # a full table ends many flows at once
                if out:
                    yield out
                    out.clear()
            if out:
                yield out
                out.clear()
            self.caps = table.caps()
            if digest is not None:
                summary.sha256 = digest.result()
            elif stream is not None and self._hash_input:
                summary.sha256 = stream.hexdigest()
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

    def _set_batches(
        self, capture_set: CaptureSet, emitter: Callable[[list[Any]], Callable[[Event], None]]
    ) -> Iterator[list[Any]]:
        out: list[Any] = []
        links = HostIdentityTracker(capture_set.label, emitter(out))
        dispatcher = Dispatcher(capture_set.label, emitter(out), self._keep_whole, links)
        anomalies: dict[int, int] = {}

        def on_anomaly_counted(anomaly: Anomaly) -> None:
            member = member_of(anomaly.frame) if is_code(anomaly.frame) else 0
            anomalies[member] = anomalies.get(member, 0) + 1
            dispatcher.on_anomaly(anomaly)

        def on_duplicate(code: int, ts: float, detail: str) -> None:
            on_anomaly_counted(Anomaly(DUPLICATE_FRAME, code, ts, detail))

        # Bypassed flows as in a file's pass (through the Python reader: the merge pulls
        # every file's records in turn, which the libpcap engine does not offer).
        table = FlowTable(dispatcher, on_anomaly_counted, bypass=self.prefilter)
        decoder = Decoder(on_anomaly_counted, flows=table, links=links)
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


def summarise(
    summary: InputSummary,
    reader: CaptureSource,
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


DUPLICATE_FRAME = "duplicate_frame"
"""The anomaly of a frame of a set skipped as a repeat of another file's frame."""


class MemberTallies:
    """The decoder's tallies (encapsulations, non-IP, other IP, undecoded) split by the file of the
    frame being decoded: the difference since the last switch of files goes to the file
    read until then."""

    def __init__(self, decoder: Decoder) -> None:
        self._decoder = decoder
        self._current = -1
        self._seen: tuple[dict[str, int], ...] = ({}, {}, {}, {})
        self.by_member: dict[int, tuple[dict[str, int], ...]] = {}

    def switch(self, member: int) -> None:
        decoder = self._decoder
        tallies = (decoder.encapsulations, decoder.not_ip, decoder.other_ip, decoder.undecoded)
        if self._current >= 0 and any(tallies):
            now = tuple(dict(tally) for tally in tallies)
            mine = self.by_member.setdefault(self._current, ({}, {}, {}, {}))
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
        encapsulations, not_ip, other_ip, undecoded = tallies.by_member.get(
            member.index, ({}, {}, {}, {})
        )
        summary.count_traffic(encapsulations, not_ip, other_ip)
        summary.count_packets(
            records=source.records, undelivered=source.undelivered, undecoded=undecoded
        )
        summary.first_ts = source.first_ts
        summary.last_ts = source.last_ts
        summary.truncated_at = source.truncated_at
        summary.stopped_at = source.stopped_at
        summary.stop_reason = source.stop_reason
        summary.warnings.extend(source.warnings)
        if member.duplicates:
            summary.warnings.append(
                f"{member.path}: {member.duplicates} frames repeat frames of another file "
                "of the set (same bytes, same time); each was counted once"
            )
        summary.anomalies = anomalies.get(member.index, 0) + sum(source.anomalies.values())
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
    group: InputGroup,
    *,
    progress: Progress | None = None,
    hash_input: bool = True,
    prefilter: bool = True,
) -> Iterator[CaptureRun]:
    """The runs of one input group: one for a file or standard input, one per set for a
    group of files (each made once the one before has been read to its end)."""
    if not group.is_set:
        yield CaptureRun(
            group.files[0], progress=progress, hash_input=hash_input, prefilter=prefilter
        )
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

        yield CaptureRun(
            capture_set,
            progress=step,
            hash_input=hash_input,
            digests=digests,
            prefilter=prefilter,
        )
        done += capture_set.bytes_read


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:  # read as if empty: reading it says why
        return 0


def input_groups(paths: Sequence[Path | str], grouping: Grouping) -> list[InputGroup]:
    """The inputs grouped into what is read together (``capture/sets.py``)."""
    return group_inputs([str(p) for p in paths], grouping)


MEMORY_RESERVE = 16 << 20
"""Address space held during a run and given back first when memory runs out: under a
memory limit (``ulimit -v``) nothing is left once a ``MemoryError`` is raised, and
CPython then needs some to unwind, close the capture and print the one line (without
it, 3.11 can spin forever retrying the allocation of an exception handler's state)."""


def memory_reserve() -> mmap.mmap:
    """:data:`MEMORY_RESERVE` bytes of address space (untouched pages: no resident memory).

    An anonymous mapping, not a ``bytearray``: a bytearray zero-fills its buffer, which
    makes every page resident (16 MiB of RSS per reserve); dropping the mapping unmaps it."""
    try:
        return mmap.mmap(-1, MEMORY_RESERVE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except OSError:  # ENOMEM: no address space left, as a bytearray would have said
        raise MemoryError from None


def out_of_memory(path: Path, packets: int | None = None) -> InputError:
    """The one-line error for a capture that exhausted memory (``MemoryError``)."""
    after = f" after {packets} packets" if packets else ""
    return InputError(f"{path}: out of memory{after}")


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
    run._keep_whole = detection.keeps_flow  # flows a detector wants whole stay whole
    events = run.events()
    reserve: mmap.mmap | None = memory_reserve()
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
        raise out_of_memory(run.path, run.packets_read)
    del reserve
    for what, count in run.reader_anomalies.items():
        anomalies[what] = anomalies.get(what, 0) + count
    for what, count in (*run.caps.items(), *result.caps.items()):
        anomalies[what] = anomalies.get(what, 0) + count  # caps that bit count as anomalies
    findings, sections = result.findings, result.sections
    frames = run.set_frames
    if frames is not None:  # name every frame in its own file
        findings = [frames.finding(f) for f in findings]
        sections = {name: frames.rows(rows) for name, rows in sections.items()}
        samples = frames.rows(samples)
    return FileAnalysis(run.summaries, findings, sections, anomalies, samples)


def analyze_file(
    path: Path, context: Context, progress: Progress | None = None, *, prefilter: bool = True
) -> FileAnalysis:
    return analyze_run(CaptureRun(path, progress=progress, prefilter=prefilter), context)


def analyze_group(
    group: InputGroup,
    context: Context,
    progress: Progress | None = None,
    *,
    prefilter: bool = True,
) -> list[FileAnalysis]:
    return [
        analyze_run(run, context)
        for run in capture_runs(group, progress=progress, prefilter=prefilter)
    ]


def _analyze_in_worker(group: InputGroup, context: Context, prefilter: bool) -> list[FileAnalysis]:
    return analyze_group(group, context, prefilter=prefilter)


def _worker_signals() -> None:
    """In a worker process: Ctrl-C reaches the whole process group, but only the parent
    answers it (it stops the workers and prints the one line); SIGTERM, which the parent
    stops workers with, ends a worker at once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _analyze_in_parallel(
    groups: list[InputGroup], context: Context, workers: int, prefilter: bool
) -> list[list[FileAnalysis]]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_signals)
    try:
        futures = [pool.submit(_analyze_in_worker, group, context, prefilter) for group in groups]
        results = []
        for group, future in zip(groups, futures, strict=True):
            try:
                results.append(future.result())
            except BrokenProcessPool:
                raise InputError(
                    f"{group_label(group)}: the process analysing it ended abruptly "
                    "(out of memory?)"
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
    paths: Sequence[Path | str],
    context: Context,
    *,
    workers: int = 1,
    progress_for: Callable[[str], Progress | None] | None = None,
    generated_at: str = "",
    grouping: Grouping = Grouping.AUTO,
    skipped: Sequence[InputSummary] = (),
    prefilter: bool = True,
) -> AuditReport:
    """Analyze captures (files, standard input, capture sets; each file or set in
    parallel when ``workers`` > 1) into one report; ``skipped`` inputs are listed after
    them.

    Results are merged in input order, so a parallel run equals a serial one. A single
    set is read by one process, as a single file is.
    """
    groups = input_groups(paths, grouping)
    per_group: list[list[FileAnalysis]]
    if workers > 1 and len(groups) > 1:
        per_group = _analyze_in_parallel(groups, context, min(workers, len(groups)), prefilter)
    else:
        per_group = []
        for group in groups:
            label = group_label(group)
            try:
                per_group.append(
                    analyze_group(
                        group,
                        context,
                        progress_for(label) if progress_for else None,
                        prefilter=prefilter,
                    )
                )
            except MemoryError:  # before the file's own handler was in place
                raise out_of_memory(Path(label)) from None
    results = [result for group_results in per_group for result in group_results]
    policy = context.policy.to_dict()
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
    if not per_file:
        per_file = [AuditReport(kind="analyze", generated_at=generated_at, policy=policy)]
    report = merge_reports(per_file, generated_at)
    report.inputs.extend(item.to_dict() for item in skipped)
    return report


def group_label(group: InputGroup) -> str:
    """How a group is named on a progress line."""
    if group.is_stdin:
        return STDIN_NAME
    if group.is_set:
        return f"{group.files[0]} (+{len(group.files) - 1})"
    return group.files[0]
