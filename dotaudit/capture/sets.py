"""Capture sets: files that are one capture's timeline, read as one merged stream.

Sensors rotate their captures (``tcpdump -C``/``-W``/``-G``, dumpcap's ring buffer), and a
connection, a DoT attempt or its fallback may straddle two files. The files of one set are
merged by timestamp, streaming (one open reader per file whose time has come, a k-way
merge, as mergecap would but without writing a file), so that flows, reassembly, sessions
and detectors see one capture. Which inputs form a set (:func:`group_inputs`):

- ``Grouping.SEPARATE`` (``--separate``): every file is read on its own.
- ``Grouping.AS_ONE`` (``--as-one``): all inputs are one set, whatever their names.
- ``Grouping.AUTO`` (the default): files of one directory form a set when
  1. their names have one rotation shape (:func:`rotation_shape`: every run of digits
     stands for any number, and a number the name ends with, before a ``.gz``, is the
     rotation counter ``tcpdump -C`` appends): ``cap.pcap``, ``cap.pcap1``, ``cap.pcap2``
     (``-C``/``-W``); ``cap-1764590400.pcap`` or ``cap-2026-12-01_12:00:00.pcap`` (``-G``
     with numeric strftime fields); ``ring_00001_20261201120000.pcapng`` (dumpcap);
     and their first packets follow the order of their names' numbers
     (:func:`follows_rotation_order`; one wrap-around allowed, as ``tcpdump -W`` reuses
     its names): files side by side, starting together or out of turn, are no rotation;
  2. they record the same interfaces: the same link type, and for pcapng the same link
     types and interface names, in the same order (a capture of another interface or
     another link layer is another capture);
  3. their time ranges overlap or follow on: sorted by first packet, a file joins the set
     when it starts before the set's last packet so far, or at most ``MAX_SET_GAP``
     seconds after it. A longer silence starts a new set.
  A file without packets, standard input and a file no other matches are read on their own.

The merge orders frames by timestamp; on equal timestamps the file that joined the set
first goes first, and a file's own frames never change order (a file whose clock steps
back is merged as it was written). A frame is named by a code (``model/capture_set.py``):
its position in the timeline, its file and its frame number there.

Duplicates: overlapping files from one sensor repeat packets. A frame with the same
captured bytes, link type, length and timestamp as a frame of *another* file of the set
is skipped and counted (``duplicate_frame``). Only frames that can have a twin are hashed:
those read while two files are open, those at the timestamp where the next file starts,
and those no later than the latest frame hashed so far; the recent ones are remembered,
``DUPLICATE_WINDOW`` at most (about 200 bytes each), so a twin further away than that in
the timeline is not recognised. Repeats within one file are the file's own business and
stay, as they do when it is read alone.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import pairwise
from typing import Protocol

from dotaudit.capture.reader import CaptureReader, Frame, FrameSink
from dotaudit.errors import InputError
from dotaudit.model.capture_set import (
    FRAME_BITS,
    MAX_MEMBERS,
    POSITION_SHIFT,
    frame_in_file,
    member_of,
)

STDIN_ARGUMENT = "-"
"""The input argument that means standard input."""

MAX_SET_GAP = 3600.0
"""Seconds of silence between the end of one file and the start of the next after which
they are separate captures. Longer than every idle timeout of the flow table and every
window of the detectors (minutes at most), so no state a set could carry over survives a
gap this long; shorter than the break between two capture sessions on different days."""
DUPLICATE_WINDOW = 8192
"""Frames remembered to recognise a duplicate: 16-byte BLAKE2b digests with their
timestamp, about 200 bytes each (under 2 MiB)."""
MERGE_STEP = 4096
"""Frames merged between two pauses of :meth:`CaptureSet.scan`."""


class Grouping(Enum):
    """Which inputs form a capture set (see the module's description)."""

    AUTO = "auto"
    SEPARATE = "separate"
    AS_ONE = "as-one"


class RecordSource(Protocol):
    """One file's frames in file order, and what was read (a :class:`CaptureReader`; any
    other reader with these attributes can join a merge)."""

    format: str
    frames: int
    first_ts: float | None
    last_ts: float | None
    truncated_at: int | None
    stopped_at: int | None
    stop_reason: str | None
    records: int
    undelivered: dict[str, int]
    warnings: list[str]
    anomalies: dict[str, int]
    bytes_read: int
    interfaces: list[tuple[int, str | None]]

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


OpenSource = Callable[[str], RecordSource]
DuplicateSink = Callable[[int, float, str], object]
"""``duplicate(code, ts, detail)``: the frame ``code`` was skipped as a duplicate."""

_DIGITS = re.compile(r"\d+")
_COMPRESSED = ".gz"
_ENDS_WITH_COUNTER = re.compile(r"\d(\.gz)?$")


def rotation_shape(name: str) -> str:
    """A file name with its numbers wildcarded (``#``): the files a rotation writes share
    it. A number at the very end (before ``.gz``) is dropped with its ``#``: tcpdump -C
    writes ``cap.pcap`` first, then ``cap.pcap1``, ``cap.pcap2``."""
    if name.endswith(_COMPRESSED):
        name = name[: -len(_COMPRESSED)]
    shape = _DIGITS.sub("#", name)
    return shape[:-1] if shape.endswith("#") else shape


def rotation_key(path: str) -> tuple[int, ...]:
    """The numbers of a file name, in order: the order a rotation wrote its files in."""
    return tuple(int(number) for number in _DIGITS.findall(os.path.basename(path)))


def follows_rotation_order(files: Sequence[tuple[str, float]]) -> bool:
    """Whether files (path, first timestamp) started one after the other in the order of
    their names' numbers, allowing one wrap-around (``tcpdump -W`` reuses its names).
    Files of one rotation never start together or out of turn; captures made side by
    side (``erspan1.pcap``, ``erspan2.pcap`` of the same traffic) do."""
    ordered = [ts for _, ts in sorted(files, key=lambda f: rotation_key(f[0]))]
    steps_back = sum(later <= earlier for earlier, later in pairwise(ordered))
    if steps_back == 0:
        return True
    # A ring of names (cap.pcap0 ... cap.pcap9, the counter at the end) may have wrapped
    # once: the newest files then carry the lowest numbers.
    ring = all(_ENDS_WITH_COUNTER.search(path) for path, _ in files)
    return ring and steps_back == 1 and ordered[0] > ordered[-1]


@dataclass(frozen=True)
class Peek:
    """A file's first frame: when it starts, and what it records."""

    path: str
    first_ts: float
    interfaces: tuple[tuple[int, str | None], ...]


def peek(path: str, open_source: OpenSource = CaptureReader) -> Peek | None:
    """The start of a capture file, or None when it holds no frame. An unreadable file
    raises :class:`InputError`, as reading it would."""
    source = open_source(path)
    records = iter(source)
    try:
        first = next(records, None)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
        source.close()
    if first is None:
        return None
    return Peek(path, first[1], tuple(source.interfaces) or ((first[2], None),))


@dataclass(frozen=True)
class InputGroup:
    """Inputs read together: one file (or standard input), or the files that may form one
    or more capture sets, with why they were grouped."""

    files: tuple[str, ...]
    """In the order given."""
    grouped_by: str | None = None
    """Why these files are one timeline; None for a single input."""
    split_gaps: bool = False
    """A silence longer than ``MAX_SET_GAP`` starts a new set."""
    starts: tuple[Peek, ...] = ()
    """Each file's first frame, in timeline order (sets only)."""

    @property
    def is_set(self) -> bool:
        return self.grouped_by is not None

    @property
    def is_stdin(self) -> bool:
        return self.files == (STDIN_ARGUMENT,)


def group_inputs(
    paths: Sequence[str], grouping: Grouping, open_source: OpenSource = CaptureReader
) -> list[InputGroup]:
    """The inputs as groups, in the order of each group's first input."""
    if grouping is Grouping.SEPARATE or len(paths) < 2:
        return [InputGroup((path,)) for path in paths]
    if grouping is Grouping.AS_ONE:
        if STDIN_ARGUMENT in paths:
            raise InputError(
                "-: standard input cannot join a capture set (--as-one); save it to a file"
            )
        starts, empty = _starts(paths, open_source)
        timeline = [*starts, *(Peek(path, math.inf, ()) for path in empty)]
        return [InputGroup(tuple(paths), "--as-one", False, tuple(timeline))]
    return _rotations(paths, open_source)


def _starts(paths: Sequence[str], open_source: OpenSource) -> tuple[list[Peek], list[str]]:
    """The files' starts in timeline order (ties: the order given), and those without
    frames."""
    starts: list[tuple[float, int, Peek]] = []
    empty: list[str] = []
    for index, path in enumerate(paths):
        start = peek(path, open_source)
        if start is None:
            empty.append(path)
        else:
            starts.append((start.first_ts, index, start))
    return [start for _, _, start in sorted(starts, key=lambda s: (s[0], s[1]))], empty


def _rotations(paths: Sequence[str], open_source: OpenSource) -> list[InputGroup]:
    families: dict[tuple[str, str], list[int]] = {}
    seen: set[str] = set()
    for index, path in enumerate(paths):
        real = os.path.realpath(path)
        if path == STDIN_ARGUMENT or real in seen:
            continue  # a file given twice is read twice, never merged with itself
        seen.add(real)
        directory, name = os.path.split(os.path.abspath(path))
        families.setdefault((directory, rotation_shape(name)), []).append(index)
    first_of: dict[int, InputGroup] = {}
    grouped: set[int] = set()
    for (_, shape), indexes in families.items():
        if len(indexes) < 2:
            continue
        by_interfaces: dict[tuple[tuple[int, str | None], ...], list[int]] = {}
        starts: dict[int, Peek] = {}
        for index in indexes:
            start = peek(paths[index], open_source)
            if start is not None:
                starts[index] = start
                by_interfaces.setdefault(start.interfaces, []).append(index)
        for members in by_interfaces.values():
            if len(members) < 2 or not follows_rotation_order(
                [(paths[i], starts[i].first_ts) for i in members]
            ):
                continue
            timeline = sorted(members, key=lambda i: (starts[i].first_ts, i))
            first_of[members[0]] = InputGroup(
                tuple(paths[i] for i in members),
                f"rotation {shape}",
                True,
                tuple(starts[i] for i in timeline),
            )
            grouped.update(members)
    groups: list[InputGroup] = []
    for index, path in enumerate(paths):
        if index in first_of:
            groups.append(first_of[index])
        elif index not in grouped:
            groups.append(InputGroup((path,)))
    return groups


@dataclass
class Member:
    """One file of a set, with what its reader read."""

    path: str
    index: int
    source: RecordSource
    duplicates: int = 0
    """Its frames skipped as duplicates of another file's."""


class CaptureSet:
    """One capture set: the frames of its files merged into one timeline.

    Files join while :meth:`scan` runs, when the timeline reaches their first frame;
    ``members`` (and ``files``, their paths by member number) are complete once it ends.
    """

    def __init__(
        self,
        starts: deque[Peek],
        grouped_by: str,
        *,
        split_gaps: bool,
        open_source: OpenSource = CaptureReader,
    ) -> None:
        self._pending = starts
        self.label = starts[0].path
        """Its first file's path: the ``file`` its events carry while it is analysed."""
        self.grouped_by = grouped_by
        self._split_gaps = split_gaps
        self._open = open_source
        self.members: list[Member] = []
        self.files: list[str] = []
        self.finished = False
        self._closed_bytes = 0
        self._open_members: list[Member] = []

    @property
    def bytes_read(self) -> int:
        return self._closed_bytes + sum(m.source.bytes_read for m in self._open_members)

    def scan(
        self,
        take: FrameSink,
        duplicate: DuplicateSink | None = None,
        switch: Callable[[int], object] | None = None,
    ) -> Iterator[int]:
        """Hand every frame of the timeline to ``take`` (as a reader's scan does, with
        the frame's code for its number); yields the timeline position now and then.
        ``switch(member)`` is called whenever the next frame comes from another file than
        the last; ``duplicate`` gets each frame skipped as a duplicate."""
        if self.finished:
            return
        pending = self._pending
        members = self.members
        heap: list[tuple[float, int, Frame, Iterator[Frame]]] = []
        window = _DuplicateWindow(DUPLICATE_WINDOW)
        inf = math.inf
        position = 0
        since_pause = 0
        current = -1
        end_ts = -inf  # the last frame of every file done so far
        try:
            while True:
                start = pending[0].first_ts if pending else inf
                if heap and heap[0][0] <= start:  # on a tie, files already open go first
                    _, index, record, records = heapq.heappop(heap)
                    member = members[index]
                    # The next frame of any other file: this one's frames come before it.
                    if heap and heap[0][0] <= start:
                        limit, limit_index = heap[0][0], heap[0][1]
                    else:
                        limit, limit_index = start, len(members)
                    if index != current:
                        current = index
                        if switch is not None:
                            switch(index)
                    while True:
                        position += 1
                        frame, ts, linktype, data, orig_len = record
                        code = position << POSITION_SHIFT | index << FRAME_BITS | frame
                        if heap or ts >= start or ts <= window.horizon:
                            twin = window.check(ts, linktype, data, orig_len, index, code)
                            if twin is not None:
                                member.duplicates += 1
                                if duplicate is not None:
                                    duplicate(code, ts, self._twin_text(twin))
                            else:
                                take(code, ts, linktype, data, 0, len(data), orig_len)
                        else:
                            take(code, ts, linktype, data, 0, len(data), orig_len)
                        since_pause += 1
                        if since_pause >= MERGE_STEP:
                            since_pause = 0
                            yield position
                        following = next(records, None)
                        if following is None:
                            end_ts = max(end_ts, self._done(member))
                            break
                        record = following
                        ts = record[1]
                        if ts < limit or (ts == limit and index < limit_index):
                            continue
                        heapq.heappush(heap, (ts, index, record, records))
                        break
                    continue
                if not pending:
                    break
                if not heap and members and self._split_gaps and start - end_ts > MAX_SET_GAP:
                    break  # a long silence: the rest is another capture
                joining = pending.popleft()
                if len(members) >= MAX_MEMBERS:
                    raise InputError(f"{joining.path}: more than {MAX_MEMBERS} files in one set")
                member = Member(joining.path, len(members), self._open(joining.path))
                members.append(member)
                self.files.append(member.path)
                self._open_members.append(member)
                records = iter(member.source)
                first = next(records, None)
                if first is None:  # emptied since it was looked at
                    end_ts = max(end_ts, self._done(member))
                    continue
                heapq.heappush(heap, (first[1], member.index, first, records))
            yield position
            self.finished = True
        finally:
            for _, _, _, records in heap:
                close = getattr(records, "close", None)
                if close is not None:
                    close()
            for member in self._open_members:
                member.source.close()

    def _done(self, member: Member) -> float:
        """A file read to its end: its last timestamp."""
        member.source.close()
        self._open_members.remove(member)
        self._closed_bytes += member.source.bytes_read
        last = member.source.last_ts
        return -math.inf if last is None else last

    def _twin_text(self, twin: int) -> str:
        return (
            f"the same bytes at the same time as frame {frame_in_file(twin)} of "
            f"{self.files[member_of(twin)]}; counted once"
        )


def capture_sets(
    group: InputGroup, open_source: OpenSource = CaptureReader
) -> Iterator[CaptureSet]:
    """The sets of a group, one after the other: each is made when the one before has been
    scanned to its end (where a long silence ended it, the next begins)."""
    if not group.is_set:
        raise ValueError("capture_sets() takes a group of several files")
    pending = deque(group.starts)
    while pending:
        capture_set = CaptureSet(
            pending, group.grouped_by or "", split_gaps=group.split_gaps, open_source=open_source
        )
        yield capture_set
        if not capture_set.finished:
            raise RuntimeError(f"{capture_set.label}: capture set left before its end")


@dataclass
class _DuplicateWindow:
    """The most recent frames that may have a twin, by (timestamp, link type, original
    length, digest of the captured bytes)."""

    size: int
    horizon: float = -math.inf
    """The latest timestamp remembered: a later frame of a lone file has no twin yet."""
    _seen: dict[tuple[float, int, int, bytes], tuple[int, int]] = field(default_factory=dict)
    _order: deque[tuple[float, int, int, bytes]] = field(default_factory=deque)

    def check(
        self, ts: float, linktype: int, data: bytes, orig_len: int, member: int, code: int
    ) -> int | None:
        """The code of an earlier frame of another file this one repeats, else None (and
        this one is remembered)."""
        key = (ts, linktype, orig_len, hashlib.blake2b(data, digest_size=16).digest())
        if ts > self.horizon:
            self.horizon = ts
        seen = self._seen.get(key)
        if seen is not None:
            return seen[1] if seen[0] != member else None
        self._seen[key] = (member, code)
        order = self._order
        order.append(key)
        if len(order) > self.size:
            del self._seen[order.popleft()]
        return None
