"""``dotaudit events`` for one capture, split over several processes by flow.

Each process (this one is shard 0, the others are forked children) reads the whole file
but dissects only its share of the flows, turns its events into JSON lines, and tags each
line with the key that says where a single pass would have written it
(:mod:`dotaudit.capture.flow_shard`). The readers of all shards pause at the same frames, so
each pause gives one batch per shard; merging a batch's lines by key writes exactly what
the serial pass writes, and memory stays bounded by one batch per shard.
"""

from __future__ import annotations

import json
import mmap
import multiprocessing
import os
from collections.abc import Callable, Iterator
from itertools import chain
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from operator import itemgetter
from pathlib import Path

from dotaudit.capture.decode import Decoder
from dotaudit.capture.flow_shard import DECODER, END_FRAME, PACKET, EventKey, ShardFlowTable
from dotaudit.capture.packet import Anomaly
from dotaudit.capture.reader import CaptureReader
from dotaudit.capture.sets import CaptureSet, InputGroup, capture_sets
from dotaudit.dissect.dispatch import Dispatcher
from dotaudit.dissect.host_identity import HostIdentityTracker
from dotaudit.errors import InputError
from dotaudit.model.capture_set import SetFrames, is_code, member_of
from dotaudit.model.events import Event, event_json_line
from dotaudit.model.report import InputSummary
from dotaudit.pipeline import (
    DUPLICATE_FRAME,
    MemberTallies,
    Progress,
    member_summaries,
    memory_reserve,
    out_of_memory,
    summarise,
)

Batch = list[tuple[EventKey, str]]
Pause = tuple[int, int]
"""Where the readers of every shard paused: (set number, frame or timeline position)."""

MIN_SHARDED_BYTES = 8 << 20
"""Below this a capture is read by one process: forking would cost more than it saves."""
MAX_AUTO_SHARDS = 4
"""Every shard reads and decodes every packet; beyond a few, that repeated part dominates."""


def auto_shards(source: Path | InputGroup) -> int:
    """How many processes ``--workers auto`` uses for one capture (file or set)."""
    group = _as_group(source)
    if group.is_stdin:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        size = sum(Path(path).stat().st_size for path in group.files)
    except OSError:
        return 1
    return max(1, min(cores, MAX_AUTO_SHARDS)) if size >= MIN_SHARDED_BYTES else 1


def _as_group(source: Path | str | InputGroup) -> InputGroup:
    return source if isinstance(source, InputGroup) else InputGroup((str(source),))


class ShardPass:
    """One shard's pass over a capture (a file, or the sets of a group of files): batches
    of keyed JSON lines."""

    def __init__(
        self,
        source: Path | str | InputGroup,
        shard: int,
        shards: int,
        types: frozenset[str] | None,
        progress: Progress | None = None,
        prefilter: bool = True,
    ) -> None:
        self.group = _as_group(source)
        self.path = Path(self.group.files[0])
        self.shard = shard
        self.shards = shards
        self.types = types
        self.prefilter = prefilter  # bypass flows, as the serial pass does
        self.summaries: list[InputSummary] = []
        self.counted: list[int] = []
        """Anomalies this shard's pipeline counted, per summary (the reader's are shard
        0's alone, already in its summaries)."""
        self._progress = progress

    @property
    def summary(self) -> InputSummary:
        return self.summaries[0]

    def batches(self) -> Iterator[tuple[Pause, Batch]]:
        """``(pause, lines)`` at every reader pause, then ``((set, END_FRAME), lines)``."""
        if not self.group.is_set:
            yield from self._file_batches(self.path)
            return
        total = sum(Path(path).stat().st_size for path in self.group.files) if self._progress else 0
        done = 0
        for number, capture_set in enumerate(capture_sets(self.group)):
            yield from self._set_batches(number, capture_set, done, total)
            done += capture_set.bytes_read

    def _links(
        self, label: str, emit: Callable[[Event], None], table: Callable[[], ShardFlowTable]
    ) -> HostIdentityTracker:
        """This shard's host identity tracker. Flow starts and DHCP are the facts of the
        shard that owns the flow; each shard tells the first of its own, and ShardedRun
        keeps the first of them all. ARP and NDP reach no flow table: shard 0 alone tells
        them, after the previous frame's events, where a single pass tells them."""

        def decoder_fact(event: Event) -> None:
            flows = table()
            phase = flows.phase
            flows.phase = DECODER
            try:
                emit(event)
            finally:
                flows.phase = phase

        return HostIdentityTracker(
            label, emit, link_messages=not self.shard, emit_link=decoder_fact
        )

    def _file_batches(self, path: Path) -> Iterator[tuple[Pause, Batch]]:
        reader = CaptureReader(path)
        summary = InputSummary(path=str(path))
        self.summaries.append(summary)
        self.counted.append(0)
        summary.format = reader.format
        types = self.types
        out: Batch = []

        def emit(event: Event) -> None:
            if types is None or event.type in types:
                out.append((table.key(), event_json_line(event)))

        links = self._links(str(path), emit, lambda: table)
        dispatcher = Dispatcher(str(path), emit, links=links)

        def flow_anomaly(anomaly: Anomaly) -> None:
            self.counted[0] += 1
            dispatcher.on_anomaly(anomaly)

        def decoder_anomaly(anomaly: Anomaly) -> None:
            # Every shard decodes every packet; shard 0 alone reports what decoding found.
            if self.shard:
                return
            self.counted[0] += 1
            phase = table.phase
            table.phase = DECODER
            try:
                dispatcher.on_anomaly(anomaly)
            finally:
                table.phase = phase

        table = ShardFlowTable(
            dispatcher, flow_anomaly, shard=self.shard, shards=self.shards, bypass=self.prefilter
        )
        decoder = Decoder(decoder_anomaly, flows=table, links=links)
        progress = self._progress
        size = path.stat().st_size if progress is not None else 0
        reserve: mmap.mmap | None = memory_reserve()
        try:
            for frame in reader.scan(decoder.take):
                yield (0, frame), out
                out = []
                if progress is not None:
                    progress(reader.bytes_read, size)
            table.at_frame = END_FRAME
            decoder.finish()
            table.finish()
        except MemoryError:
            reserve = None  # first: what follows needs a little memory
            out = []
            raise out_of_memory(path, reader.frames) from None
        del reserve
        yield (0, END_FRAME), out
        # Every shard reads every record; shard 0 alone counts what the reader found.
        summarise(summary, reader, decoder, reader_anomalies=not self.shard)
        summary.anomalies += self.counted[0]

    def _set_batches(
        self, number: int, capture_set: CaptureSet, done: int, total: int
    ) -> Iterator[tuple[Pause, Batch]]:
        types = self.types
        encode = SetFrames(capture_set.label, capture_set.files).event_line
        out: Batch = []
        anomalies: dict[int, int] = {}

        def emit(event: Event) -> None:
            if types is None or event.type in types:
                out.append((table.key(), encode(event)))

        links = self._links(capture_set.label, emit, lambda: table)
        dispatcher = Dispatcher(capture_set.label, emit, links=links)

        def count(anomaly: Anomaly) -> None:
            member = member_of(anomaly.frame) if is_code(anomaly.frame) else 0
            anomalies[member] = anomalies.get(member, 0) + 1

        def flow_anomaly(anomaly: Anomaly) -> None:
            count(anomaly)
            dispatcher.on_anomaly(anomaly)

        def reported_by_one(anomaly: Anomaly, frame: int | None, phase: int) -> None:
            # Every shard decodes (and merges) every packet; shard 0 alone reports what
            # decoding and merging found.
            if self.shard:
                return
            count(anomaly)
            before = table.phase
            table.phase = phase
            if frame is not None:
                table.at_frame = frame
            try:
                dispatcher.on_anomaly(anomaly)
            finally:
                table.phase = before

        def decoder_anomaly(anomaly: Anomaly) -> None:
            reported_by_one(anomaly, None, DECODER)

        def duplicate(code: int, ts: float, detail: str) -> None:
            # In place of the frame it repeats: after the frame before, as in one pass.
            reported_by_one(Anomaly(DUPLICATE_FRAME, code, ts, detail), code, PACKET)

        table = ShardFlowTable(
            dispatcher, flow_anomaly, shard=self.shard, shards=self.shards, bypass=self.prefilter
        )
        decoder = Decoder(decoder_anomaly, flows=table, links=links)
        tallies = MemberTallies(decoder)
        progress: Callable[[int, int], None] | None = self._progress
        for position in capture_set.scan(decoder.take, duplicate, tallies.switch):
            yield (number, position), out
            out = []
            if progress is not None:
                progress(done + capture_set.bytes_read, total)
        table.at_frame = END_FRAME
        decoder.finish()
        table.finish()
        tallies.switch(-1)
        yield (number, END_FRAME), out
        summaries = member_summaries(capture_set, anomalies, tallies, None)
        for member, summary in zip(capture_set.members, summaries, strict=True):
            if self.shard:  # the reader's counts are shard 0's to report
                summary.anomalies -= sum(member.source.anomalies.values())
            self.summaries.append(summary)
            self.counted.append(anomalies.get(member.index, 0))


class ShardedRun:
    """The ``dotaudit events`` lines of one capture, computed by ``shards`` processes,
    identical to a single pass's output. Iterate ``lines()``; read ``summaries`` (one per
    file) afterwards.
    """

    def __init__(
        self,
        source: Path | InputGroup,
        shards: int,
        types: frozenset[str] | None,
        *,
        progress: Progress | None = None,
        prefilter: bool = True,
    ) -> None:
        self._own = ShardPass(source, 0, shards, types, progress, prefilter)

    @property
    def summaries(self) -> list[InputSummary]:
        return self._own.summaries

    @property
    def summary(self) -> InputSummary:
        return self._own.summary

    def lines(self) -> Iterator[str]:
        """Batches of joined JSON lines. Flush buffered output first: children are forked."""
        own = self._own
        path = own.path
        batches = own.batches()
        first = next(batches)  # opens the file, failing on a bad one, before any fork
        context = multiprocessing.get_context("fork")
        children: list[tuple[BaseProcess, Connection]] = []
        try:
            for shard in range(1, own.shards):
                receive, send = context.Pipe(duplex=False)
                child = context.Process(
                    target=_child,
                    args=(own.group, shard, own.shards, own.types, send, own.prefilter),
                    daemon=True,
                )
                child.start()
                send.close()
                children.append((child, receive))
            by_key = itemgetter(0)
            told = _FirstSources()
            for pause, batch in chain([first], batches):
                for _, receive in children:
                    their_pause, theirs = _receive(receive, path)
                    if their_pause != pause:
                        raise RuntimeError(f"{path}: shards out of step at {pause}")
                    batch += theirs
                if children:
                    batch.sort(key=by_key)
                    batch = [item for item in batch if told.first(item[1])]
                if batch:
                    yield "".join([line for _, line in batch])
            for process, receive in children:
                done, counted = _receive(receive, path)
                if done != _DONE:
                    raise RuntimeError(f"{path}: a shard kept going after the capture ended")
                for summary, extra in zip(self.summaries, counted, strict=True):
                    summary.anomalies += extra  # type: ignore[operator]
                process.join()
        finally:
            for process, receive in children:
                receive.close()
                if process.is_alive():
                    process.terminate()
                    process.join()


_DONE = (-1, -1)

_HOST_IDENTITY = '{"type":"host_identity",'
_BINDING = ("mac", "address", "source", "hostname", "client_id", "prefix", "router")


class _FirstSources:
    """The ``host_identity`` lines of flow facts (``source`` ``frame`` or ``dhcp``) already
    written: each shard tells the first of a binding among its own flows, a single pass
    the first of all, which is the first of the shards' in key order."""

    def __init__(self) -> None:
        self.seen: set[tuple[object, ...]] = set()

    def first(self, line: str) -> bool:
        if not line.startswith(_HOST_IDENTITY):
            return True
        record = json.loads(line)
        if record.get("source") not in ("frame", "dhcp"):
            return True
        key = tuple(record.get(k) for k in _BINDING)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _receive(receive: Connection, path: Path) -> tuple[Pause, Batch]:
    try:
        message: tuple[Pause, Batch] | tuple[str, str] = receive.recv()
    except EOFError:
        raise InputError(
            f"{path}: a process reading it ended abruptly (killed, or out of memory?)"
        ) from None
    if message[0] == "input-error":  # e.g. the file changed under the children
        raise InputError(str(message[1]))
    if message[0] == "error":
        raise RuntimeError(f"{path}: shard failed: {message[1]}")
    return message  # type: ignore[return-value]


def _child(
    group: InputGroup,
    shard: int,
    shards: int,
    types: frozenset[str] | None,
    send: Connection,
    prefilter: bool,
) -> None:
    import signal

    # Ctrl-C reaches the whole process group: the parent alone answers it, and stops
    # this child with SIGTERM, which must end it at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        run = ShardPass(group, shard, shards, types, prefilter=prefilter)
        for pause, batch in run.batches():
            send.send((pause, batch))
        send.send((_DONE, run.counted))
    except InputError as exc:
        send.send(("input-error", str(exc)))
    except MemoryError:
        send.send(("input-error", str(out_of_memory(Path(group.files[0])))))
    except Exception as exc:  # reported by the parent, which owns the exit status
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    except KeyboardInterrupt:
        pass  # Ctrl-C reached the whole process group; the parent reports it once
    finally:
        send.close()
