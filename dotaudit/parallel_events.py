"""``dotaudit events`` for one capture, split over several processes by flow.

Each process (this one is shard 0, the others are forked children) reads the whole file
but dissects only its share of the flows, turns its events into JSON lines, and tags each
line with the key that says where a single pass would have written it
(:mod:`dotaudit.capture.flow_shard`). The readers of all shards pause at the same frames, so
each pause gives one batch per shard; merging a batch's lines by key writes exactly what
the serial pass writes, and memory stays bounded by one batch per shard.
"""

from __future__ import annotations

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
    ) -> None:
        self.path = path
        self.shard = shard
        self.shards = shards
        self.types = types
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

        dispatcher = Dispatcher(str(self.path), emit)

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

        table = ShardFlowTable(dispatcher, flow_anomaly, shard=self.shard, shards=self.shards)
        decoder = Decoder(decoder_anomaly, flows=table)
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
    ) -> None:
        self._own = ShardPass(path, 0, shards, types, progress)
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
                    target=_child, args=(path, shard, own.shards, own.types, send), daemon=True
                )
                child.start()
                send.close()
                children.append((child, receive))
            by_key = itemgetter(0)
            for frame, batch in chain([first], batches):
                for _, receive in children:
                    their_frame, theirs = _receive(receive, path)
                    if their_frame != frame:
                        raise RuntimeError(f"{path}: shards out of step at frame {frame}")
                    batch += theirs
                if children:
                    batch.sort(key=by_key)
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
    path: Path, shard: int, shards: int, types: frozenset[str] | None, send: Connection
) -> None:
    import signal

    # Ctrl-C reaches the whole process group: the parent alone answers it, and stops
    # this child with SIGTERM, which must end it at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        run = ShardPass(path, shard, shards, types)
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
