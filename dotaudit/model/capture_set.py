"""Frame numbers of a capture set: several files read as one timeline.

While a set of files is analysed, every frame is named by one integer, its *frame code*:
its position in the merged timeline, the file it came from (the member) and its frame
number in that file, packed so that codes sort in timeline order::

    code = position << 64 | member << 40 | frame

Flows, sessions and detectors hold codes as they would hold frame numbers; nothing does
arithmetic on them. What leaves the pipeline (``events`` lines, findings, report sections,
anomaly samples) is *localized*: every frame number is turned back into the number of that
frame in its own file, and every record says which file that is:

- a record's ``file`` is the file of its frame (``frame``), or of its first frame
  (``frames``), and a record that names frames but had no ``file`` gets one;
- a single frame field (``last_frame``, ``icmp_frame``, ...) in another file than the
  record's is named in ``frame_files``: ``{"last_frame": "cap.pcap1"}``;
- a frame list (``frames``, ``cert_frames``, ...) that spans files keeps the record's
  file's frames and is given whole, in timeline order, as ``<list>_by_file``:
  ``[{"file": "cap.pcap", "frames": [7, 8]}, {"file": "cap.pcap1", "frames": [1]}]``.

Records of a single file never hold a code (its frames are plain numbers, below 2**40), so
they are never touched: the output of one file is what it always was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeGuard

from dotaudit.model import events
from dotaudit.model.events import EVENTS_SCHEMA, Event, compact_json, event_json_line
from dotaudit.model.findings import Finding

FRAME_BITS = 40
"""A file's own frame numbers stay below 2**40 (a million million frames)."""
MEMBER_BITS = 24
POSITION_SHIFT = FRAME_BITS + MEMBER_BITS
MAX_MEMBERS = 1 << MEMBER_BITS
"""Files one set can hold."""
_FRAME_MASK = (1 << FRAME_BITS) - 1
_MEMBER_MASK = MAX_MEMBERS - 1
_FIRST_CODE = 1 << POSITION_SHIFT
"""The smallest code (position 1): every code is at least this, every plain frame less."""


def frame_code(position: int, member: int, frame: int) -> int:
    """The code of the ``position``-th frame of the timeline (from 1), which is frame
    ``frame`` of member ``member`` (from 0)."""
    return position << POSITION_SHIFT | member << FRAME_BITS | frame


def is_code(value: object) -> TypeGuard[int]:
    return type(value) is int and value >= _FIRST_CODE


def member_of(code: int) -> int:
    return (code >> FRAME_BITS) & _MEMBER_MASK


def frame_in_file(code: int) -> int:
    return code & _FRAME_MASK


_OTHER_FRAME_KEYS = frozenset({"bypassed_after"})
"""Fields holding a frame number whose name does not say so (docs/events.md)."""


def _is_frame_key(key: str) -> bool:
    return key == "frame" or key.endswith("_frame") or key in _OTHER_FRAME_KEYS


def _is_frames_key(key: str) -> bool:
    return key == "frames" or key.endswith("_frames")


class SetFrames:
    """Turns one set's frame codes into (file, frame) in findings, rows and events.

    ``label`` is the ``file`` every event of the set carries while it is analysed (its
    first member's path); ``files`` are the members' paths by member number, a list that
    may still grow while the set is read.
    """

    def __init__(self, label: str, files: Sequence[str]) -> None:
        self.label = label
        self.files = files

    def finding(self, finding: Finding) -> Finding:
        """The finding with its frames in their files: ``file`` and ``frames`` name the
        file of its first frame, ``frames_by_file`` every file when there are several."""
        codes = [f for f in finding.frames if is_code(f)]
        if not codes:
            if not any(is_code(v) for v in _walk(finding.evidence)):
                return finding
            own = 0
            groups: list[tuple[int, list[int]]] = []
        else:
            groups = _grouped(codes)
            own = groups[0][0]
        evidence = self._record(finding.evidence, own, top=False)
        by_file = tuple((self.files[m], tuple(frames)) for m, frames in groups)
        return replace(
            finding,
            file=self.files[own] if finding.file == self.label else finding.file,
            frames=by_file[0][1] if by_file else finding.frames,
            frames_by_file=by_file if len(by_file) > 1 else (),
            evidence=evidence,
        )

    def event_line(self, event: Event) -> str:
        """The ``dotaudit events`` line of one of the set's events."""
        code = event.frame
        if is_code(code) and event.file == self.label and _names_one_frame(type(event)):
            # Most events name one frame: the event in its file goes through the fast
            # encoder.
            return event_json_line(
                replace(event, file=self.files[member_of(code)], frame=frame_in_file(code))
            )
        record = self.record(event.to_dict())
        record["schema"] = EVENTS_SCHEMA
        return compact_json(record) + "\n"

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Report rows (sections, anomaly samples), each a record of its own."""
        return [self.record(row) for row in rows]

    def record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """One top-level record (an event's ``to_dict``, a section row)."""
        if not is_code(record.get("frame")) and not any(is_code(v) for v in _walk(record)):
            return dict(record)
        return self._record(record, None, top=True)

    def _record(self, record: Mapping[str, Any], own: int | None, top: bool) -> dict[str, Any]:
        if top or "file" in record:
            own = self._own(record, own)
        if own is None:  # names no frame of the set: nothing to say about files
            return dict(record)
        out: dict[str, Any] = {}
        elsewhere: dict[str, str] = {}
        for key, value in record.items():
            if key == "file" and value == self.label:
                out[key] = self.files[own]
            elif _is_frame_key(key) and is_code(value):
                out[key] = frame_in_file(value)
                if member_of(value) != own:
                    elsewhere[key] = self.files[member_of(value)]
            elif _is_frames_key(key) and isinstance(value, list | tuple) and value:
                codes = [v for v in value if is_code(v)]
                if len(codes) != len(value):
                    out[key] = value
                    continue
                groups = _grouped(codes)
                out[key] = next((frames for m, frames in groups if m == own), [])
                if len(groups) > 1 or groups[0][0] != own:
                    out[f"{key}_by_file"] = [
                        {"file": self.files[m], "frames": frames} for m, frames in groups
                    ]
            elif isinstance(value, dict):
                out[key] = self._record(value, own, top=False)
            elif isinstance(value, list | tuple):
                out[key] = [
                    self._record(v, own, top=False) if isinstance(v, dict) else v for v in value
                ]
            else:
                out[key] = value
        if top and "file" not in out:
            out["file"] = self.files[own]
        if elsewhere:
            out["frame_files"] = elsewhere
        return out

    def _own(self, record: Mapping[str, Any], inherited: int | None) -> int | None:
        """The member a record belongs to: that of its frame, else its first frame, else
        the first frame it names anywhere, else its enclosing record's."""
        frame = record.get("frame")
        if is_code(frame):
            return member_of(frame)
        frames = record.get("frames")
        if isinstance(frames, list | tuple):
            codes = [f for f in frames if is_code(f)]
            if codes:
                return member_of(min(codes))
        if inherited is not None:
            return inherited
        codes = [v for v in _walk(record) if is_code(v)]
        return member_of(min(codes)) if codes else None


def _names_one_frame(cls: type[Event]) -> bool:
    """Whether an event class names no frame but its ``frame``: no other frame field, and
    no field holding records that name frames (``TlsRecord``)."""
    known = _ONE_FRAME.get(cls)
    if known is None:
        known = _ONE_FRAME[cls] = _class_names_one_frame(cls)
    return known


_ONE_FRAME: dict[type, bool] = {}


def _class_names_one_frame(cls: type[Event]) -> bool:
    holders = [
        name
        for name, kind in vars(events).items()
        if isinstance(kind, type)
        and is_dataclass(kind)
        and not issubclass(kind, Event)
        and any(_is_frame_key(f.name) or _is_frames_key(f.name) for f in fields(kind))
    ]
    for field in fields(cls):
        if field.name != "frame" and (_is_frame_key(field.name) or _is_frames_key(field.name)):
            return False
        if any(holder in str(field.type) for holder in holders):
            return False
    return True


def _grouped(codes: Sequence[int]) -> list[tuple[int, list[int]]]:
    """Codes in timeline order, as (member, its frames) in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for code in sorted(set(codes)):
        groups.setdefault(member_of(code), []).append(frame_in_file(code))
    return list(groups.items())


def _walk(value: object) -> list[object]:
    """Every scalar inside nested dicts and lists (records are plain JSON-ready data; a
    concrete type test is several times faster than one against the ``Mapping`` ABC)."""
    out: list[object] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            out.append(item)
    return out
