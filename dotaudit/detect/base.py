"""The detector interface: events in, findings (and report sections) out.

Detectors see events, never packets, and take time only from event timestamps.
Each keeps bounded state (aggregates, capped samples) so memory stays flat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from sys import intern
from typing import Any, ClassVar, TypeVar

from dotaudit.model.events import Event
from dotaudit.model.findings import Finding
from dotaudit.model.policy import Policy
from dotaudit.model.resolvers import ResolverDirectory, known_resolvers

Section = list[dict[str, Any]]
K = TypeVar("K")
V = TypeVar("V")


TRACK_BUDGET = 100_000
"""Distinct values (names, servers, subnets) the detectors of one run remember together,
over all their groups: one budget for all of them, so that a capture that fills every
detector's samples at once costs no more than one that fills one."""


NAME_POOL = 16_384
"""Distinct names a ``NamePool`` shares one string for."""


class NamePool:
    """One string for each of the first ``limit`` distinct names it is shown.

    A capture's names repeat across clients, queries and servers far more than they
    differ, so what keeps many of them (samples, the plaintext window) keeps one copy of
    each. ``sys.intern`` would share every name, but the interpreter's table of interned
    strings keeps a slot for each one alive, about 50 bytes, and never shrinks: a capture
    of distinct names (20,000 clients asking for their own) paid 19 MB for sharing nothing.
    Past ``limit`` a name is kept as the string it came in; the names a network repeats
    are among the first it shows.
    """

    __slots__ = ("_names", "limit")

    def __init__(self, limit: int = NAME_POOL) -> None:
        self.limit = limit
        self._names: dict[str, str] = {}

    def share(self, name: str) -> str:
        names = self._names
        shared = names.get(name)
        if shared is not None:
            return shared
        if len(names) < self.limit:
            names[name] = name
        return name

    def __len__(self) -> int:
        return len(self._names)


class TrackBudget:
    """What is left of a run's ``TRACK_BUDGET``; each detector draws on it through a
    ``TrackShare`` of its own, which counts what it was refused. The run's samples share
    their names through ``names``."""

    __slots__ = ("left", "names")

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.names = NamePool()


def _new_track_budget() -> TrackBudget:
    return TrackBudget(TRACK_BUDGET)


@dataclass(frozen=True)
class Context:
    policy: Policy = field(default_factory=Policy)
    resolvers: ResolverDirectory = field(default_factory=known_resolvers)
    track: TrackBudget = field(default_factory=_new_track_budget, compare=False)
    """The run's budget of remembered values (``DetectorRunner`` gives each run a new one)."""

    def for_one_run(self) -> Context:
        """This context with a budget of remembered values of its own."""
        return replace(self, track=_new_track_budget())


class Detector(ABC):
    """A detector reads events and returns findings with their natural severity: policy
    overrides are applied once, after every detector finished (``detect/runner.py``)."""

    name: ClassVar[str]
    event_types: ClassVar[frozenset[type[Event]]]
    """The event types ``on_event`` uses; the pipeline routes only these to it. Derived
    events such as ``DotSessionAssembled`` (``detect/session_assembly.py``) are routed the
    same way."""

    def __init__(self, context: Context) -> None:
        self.context = context

    @abstractmethod
    def on_event(self, event: Event) -> None: ...

    @abstractmethod
    def finish(self) -> list[Finding]: ...

    def sections(self) -> dict[str, Section]:
        """Report sections this detector fills (e.g. ``plaintext_dns``); call after finish."""
        return {}

    def keeps_flow(self, hello: Event) -> bool:
        """Asked with each ClientHello and QUIC Initial event: does this detector use
        every packet of that flow (counts them, say)? A flow nobody keeps may be
        bypassed once the dissectors are done with it: its later packets are not read."""
        return False

    def caps(self) -> dict[str, int]:
        """What this detector's caps cut, by name, where they bit (counted in the report's
        anomalies like the session stage's). Names say what was cut; zeros are left out."""
        return {}

    # A distributed run (``dotaudit/cluster/``) feeds each detector one share of the
    # clients. A detector that also judges by what *servers* did across every client
    # hands those facts over before ``finish``; the shares' facts are merged and given
    # back to every share, so each judges as a single run over all clients would.

    def shared_facts(self) -> Any:
        """Facts about servers gathered from this run's clients, or None if it keeps none."""
        return None

    @classmethod
    def merge_shared_facts(cls, shares: list[Any]) -> Any:
        """One value from several ``shared_facts``, as one run over all of them would keep."""
        raise NotImplementedError(f"{cls.__name__} keeps no shared facts")

    def adopt_shared_facts(self, facts: Any) -> None:
        """Judge from ``facts`` (every share's, merged) instead of this run's own."""
        raise NotImplementedError(f"{type(self).__name__} keeps no shared facts")


def bitten(counts: dict[str, int]) -> dict[str, int]:
    """The caps of ``counts`` that cut something."""
    return {name: count for name, count in counts.items() if count}


class TrackShare:
    """One detector's draw on its run's ``TrackBudget``; ``refused`` counts the values it
    saw once the budget was spent (their samples' counts are then lower bounds)."""

    __slots__ = ("pool", "refused")

    def __init__(self, pool: TrackBudget) -> None:
        self.pool = pool
        self.refused = 0


class CappedSample:
    """Keeps the first ``limit`` distinct values in arrival order, and counts them all
    (remembering at most ``track`` of them, and only while ``budget`` lasts)."""

    __slots__ = ("_budget", "_hashes", "_last", "_track", "limit", "overflow", "values")

    def __init__(
        self, limit: int = 20, track: int = 10_000, budget: TrackShare | None = None
    ) -> None:
        self.limit = limit
        self.values: list[str] = []
        self._hashes = array("q")
        """The ``hash()`` of each remembered value, sorted. A run remembers up to
        ``TRACK_BUDGET`` values; as a set of strings each cost about 90 bytes (a set keeps
        its table two to eight times as large as what it holds), as a hash 8. Two values
        with one 64-bit hash would count once: for a run's 100,000 values a chance of
        about one in a billion, and the hash's key is secret to the process, so a capture
        cannot aim for it."""
        self._last: str | None = None
        """The remembered value added last: a response repeats its query's name, most
        often next."""
        self.overflow = False
        """Some distinct value was not remembered: ``count`` is a lower bound."""
        self._track = track
        self._budget = budget

    def add(self, value: str) -> None:
        if value == self._last:
            return
        hashes = self._hashes
        key = hash(value)
        at = bisect_left(hashes, key)
        if at < len(hashes) and hashes[at] == key:
            self._last = value
            return
        share = self._budget
        if len(hashes) < self._track and (share is None or share.pool.left > 0):
            hashes.insert(at, key)
            self._last = value
            if share is not None:
                share.pool.left -= 1
        else:
            if share is not None and share.pool.left <= 0:
                share.refused += 1
            self.overflow = True
            if value in self.values:  # not remembered, but already in the sample
                return
        if len(self.values) < self.limit:
            self.values.append(intern(value) if share is None else share.pool.names.share(value))

    @property
    def count(self) -> int:
        """Distinct values seen (exact up to the tracking cap; see ``overflow``)."""
        return len(self._hashes)

    def __contains__(self, value: str) -> bool:
        hashes = self._hashes
        key = hash(value)
        at = bisect_left(hashes, key)
        return at < len(hashes) and hashes[at] == key


class CappedGroups(dict[K, V]):
    """Groups by key, at most ``limit`` of them; ``dropped`` counts what found no room.

    Read it as the dict it is; make new groups only through ``add``, which keeps the cap.
    """

    __slots__ = ("dropped", "limit")

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def add(self, key: K, group: V) -> V | None:
        """Store ``group`` under the new ``key`` and return it; None when full (counted)."""
        if len(self) >= self.limit:
            self.dropped += 1
            return None
        self[key] = group
        return group


def _frame_column() -> array[int] | list[int]:
    return array("Q")


class FrameSample:
    """The first ``limit`` frame numbers added: the frames a finding points at.

    A busy network fills thousands of groups, each with a full sample; in a list a frame
    costs about 40 bytes (the list's slot and an int object), in a 64-bit column 8. A
    capture set's frame numbers carry the file's place in the set above 64 bits: the
    column then becomes a list, which holds any number.
    """

    __slots__ = ("_frames", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._frames = _frame_column()

    def add(self, frame: int) -> None:
        """Keep ``frame`` while fewer than ``limit`` are kept (repeats are kept again)."""
        frames = self._frames
        if len(frames) >= self.limit:
            return
        try:
            frames.append(frame)
        except OverflowError:
            self._frames = [*frames, frame]

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[int]:
        # Read when a finding or a row is made of the sample, often twice (the row and
        # the finding): the frames become one list of ints then, which both share, rather
        # than new ints for each reading.
        frames = self._frames
        if isinstance(frames, array):
            frames = self._frames = frames.tolist()
        return iter(frames)

    def __contains__(self, frame: object) -> bool:
        return frame in self._frames


class LowestFrames:
    """The ``limit`` lowest distinct frame numbers seen: what a finding lists of them
    (``make_finding`` keeps the lowest ``MAX_FRAMES``), without keeping every frame.
    In a 64-bit column while they fit, as ``FrameSample`` keeps its frames."""

    __slots__ = ("frames", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.frames = _frame_column()

    def add(self, frame: int) -> None:
        frames = self.frames
        if len(frames) >= self.limit and frame >= frames[-1]:
            return
        i = bisect_left(frames, frame)
        if i < len(frames) and frames[i] == frame:
            return
        try:
            frames.insert(i, frame)
        except OverflowError:
            frames = self.frames = list(frames)
            frames.insert(i, frame)
        if len(frames) > self.limit:
            frames.pop()
