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
import multiprocessing
import os
from collections.abc import Iterator
from itertools import chain
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from operator import itemgetter
from pathlib import Path

from dotaudit.capture.decode import Decoder
from dotaudit.capture.flow_shard import DECODER, END_FRAME, EventKey, ShardFlowTable
from dotaudit.capture.packet import Anomaly
from dotaudit.capture.reader import CaptureReader
from dotaudit.dissect.dispatch import Dispatcher
from dotaudit.dissect.host_identity import HostIdentityTracker
from dotaudit.errors import InputError
from dotaudit.model.events import Event, event_json_line
from dotaudit.model.report import InputSummary
from dotaudit.pipeline import Progress, memory_reserve, out_of_memory, summarise

Batch = list[tuple[EventKey, str]]

MIN_SHARDED_BYTES = 8 << 20
"""Below this a capture is read by one process: forking would cost more than it saves."""
MAX_AUTO_SHARDS = 4
"""Every shard reads and decodes every packet; beyond a few, that repeated part dominates."""


def auto_shards(path: Path) -> int:
    """How many processes ``--workers auto`` uses for one capture."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        size = path.stat().st_size
    except OSError:
        return 1
    return max(1, min(cores, MAX_AUTO_SHARDS)) if size >= MIN_SHARDED_BYTES else 1


class ShardPass:
    """One shard's pass over a capture: batches of keyed JSON lines."""

    def __init__(
        self,
        path: Path,
        shard: int,
        shards: int,
        types: frozenset[str] | None,
        progress: Progress | None = None,
        prefilter: bool = True,
    ) -> None:
        self.path = path
        self.shard = shard
        self.shards = shards
        self.types = types
        self.prefilter = prefilter  # bypass flows, as the serial pass does
        self.summary = InputSummary(path=str(path))
        self._progress = progress

    def batches(self) -> Iterator[tuple[int, Batch]]:
        """``(frame reached, lines)`` at every reader pause, then ``(END_FRAME, lines)``."""
        reader = CaptureReader(self.path)
        summary = self.summary
        summary.format = reader.format
        types = self.types
        out: Batch = []

        def emit(event: Event) -> None:
            if types is None or event.type in types:
                out.append((table.key(), event_json_line(event)))

        def decoder_fact(event: Event) -> None:
            # ARP and NDP reach no flow table: shard 0 alone tells them, after the previous
            # frame's events, where a single pass tells them.
            phase = table.phase
            table.phase = DECODER
            try:
                emit(event)
            finally:
                table.phase = phase

        # Flow starts and DHCP are the facts of the shard that owns the flow; each shard
        # tells the first of its own, and ShardedRun keeps the first of them all.
        links = HostIdentityTracker(
            str(self.path), emit, link_messages=not self.shard, emit_link=decoder_fact
        )
        dispatcher = Dispatcher(str(self.path), emit, links=links)

        def flow_anomaly(anomaly: Anomaly) -> None:
            summary.anomalies += 1
            dispatcher.on_anomaly(anomaly)

        def decoder_anomaly(anomaly: Anomaly) -> None:
            # Every shard decodes every packet; shard 0 alone reports what decoding found.
            if self.shard:
                return
            summary.anomalies += 1
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
        size = self.path.stat().st_size if progress is not None else 0
        reserve: bytearray | None = memory_reserve()
        try:
            for frame in reader.scan(decoder.take):
                yield frame, out
                out = []
                if progress is not None:
                    progress(reader.bytes_read, size)
            table.at_frame = END_FRAME
            decoder.finish()
            table.finish()
        except MemoryError:
            reserve = None  # first: what follows needs a little memory
            out = []
            raise out_of_memory(self.path, reader.frames) from None
        del reserve
        yield END_FRAME, out
        # Every shard reads every record; shard 0 alone counts what the reader found.
        summarise(summary, reader, decoder, reader_anomalies=not self.shard)


class ShardedRun:
    """The ``dotaudit events`` lines of one capture, computed by ``shards`` processes,
    identical to a single pass's output. Iterate ``lines()``; read ``summary`` afterwards.
    """

    def __init__(
        self,
        path: Path,
        shards: int,
        types: frozenset[str] | None,
        *,
        progress: Progress | None = None,
        prefilter: bool = True,
    ) -> None:
        self._own = ShardPass(path, 0, shards, types, progress, prefilter)
        self.summary = self._own.summary

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
                    args=(path, shard, own.shards, own.types, send, own.prefilter),
                    daemon=True,
                )
                child.start()
                send.close()
                children.append((child, receive))
            by_key = itemgetter(0)
            told = _FirstSources()
            for frame, batch in chain([first], batches):
                for _, receive in children:
                    their_frame, theirs = _receive(receive, path)
                    if their_frame != frame:
                        raise RuntimeError(f"{path}: shards out of step at frame {frame}")
                    batch += theirs
                if children:
                    batch.sort(key=by_key)
                    batch = [item for item in batch if told.first(item[1])]
                if batch:
                    yield "".join([line for _, line in batch])
            for process, receive in children:
                done, anomalies = _receive(receive, path)
                if done != _DONE:
                    raise RuntimeError(f"{path}: a shard kept going after the capture ended")
                self.summary.anomalies += anomalies  # type: ignore[operator]
                process.join()
        finally:
            for process, receive in children:
                receive.close()
                if process.is_alive():
                    process.terminate()
                    process.join()


_DONE = -1

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


def _receive(receive: Connection, path: Path) -> tuple[int, Batch]:
    try:
        message: tuple[int, Batch] | tuple[str, str] = receive.recv()
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
    path: Path,
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
        run = ShardPass(path, shard, shards, types, prefilter=prefilter)
        for frame, batch in run.batches():
            send.send((frame, batch))
        send.send((_DONE, run.summary.anomalies))
    except InputError as exc:
        send.send(("input-error", str(exc)))
    except MemoryError:
        send.send(("input-error", str(out_of_memory(path))))
    except Exception as exc:  # reported by the parent, which owns the exit status
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    except KeyboardInterrupt:
        pass  # Ctrl-C reached the whole process group; the parent reports it once
    finally:
        send.close()
