"""Event batches as compact bytes, for moving facts between processes and machines.

Pickling the frozen records themselves costs about 20 µs an event and repeats every
class and field name; a distributed run moves every event once, so that overhead would
be most of its shuffle. A batch is instead pickled as plain tuples, one per record:
``(class number, value, value, ...)`` in field order, with nested records (``Edns``,
``TlsRecord``) as tuples of their own, and a table naming the classes by their import
path, so the decoding process needs nothing but the same dotaudit version.
"""

from __future__ import annotations

import dataclasses
import importlib
import operator
import pickle
import types
import typing
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from dotaudit.model.events import Event

CODEC_VERSION = 1

# A field is one of: a plain value (scalars, None, tuples of scalars), a nested record
# (or None), or a tuple of nested records.
_PLAIN, _RECORD, _RECORDS = 0, 1, 2


class _Shape:
    """How one record class is taken apart and put back together."""

    __slots__ = ("cls", "get", "names", "nested")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.names = tuple(f.name for f in dataclasses.fields(cls))
        hints = typing.get_type_hints(cls)
        self.get: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*self.names)
        if len(self.names) == 1:
            single = self.get
            self.get = lambda record: (single(record),)
        self.nested: list[tuple[int, int, type]] = []
        """(position, kind, class) of the fields that hold records: the rest are plain."""
        for position, name in enumerate(self.names):
            kind, nested = _kind(hints[name])
            if nested is not None:
                self.nested.append((position, kind, nested))


def _kind(hint: Any) -> tuple[int, type | None]:
    members = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    for member in members:
        if isinstance(member, type) and dataclasses.is_dataclass(member):
            return _RECORD, member
        if typing.get_origin(member) is tuple:
            args = [a for a in typing.get_args(member) if a is not Ellipsis]
            if args and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
                return _RECORDS, args[0]
    return _PLAIN, None


_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = _Shape(cls)
    return shape


def _flat(record: Any) -> tuple[Any, ...]:
    shape = _shape(type(record))
    values = shape.get(record)
    if not shape.nested:
        return values
    out = list(values)
    for position, kind, _ in shape.nested:
        value = out[position]
        if value is None:
            continue
        out[position] = _flat(value) if kind == _RECORD else tuple(_flat(v) for v in value)
    return tuple(out)


def _build(cls: type, values: tuple[Any, ...]) -> Any:
    shape = _shape(cls)
    if shape.nested:
        out = list(values)
        for position, kind, nested in shape.nested:
            value = out[position]
            if value is None:
                continue
            out[position] = (
                _build(nested, value)
                if kind == _RECORD
                else tuple(_build(nested, v) for v in value)
            )
        values = tuple(out)
    return cls(**dict(zip(shape.names, values, strict=True)))


def encode_events(events: Iterable[Event], *, compress: bool = True) -> bytes:
    """``events`` as one batch of bytes (order kept); :func:`decode_events` reverses it."""
    numbers: dict[type, int] = {}
    rows: list[tuple[Any, ...]] = []
    for event in events:
        cls = type(event)
        number = numbers.get(cls)
        if number is None:
            number = numbers[cls] = len(numbers)
        rows.append((number, *_flat(event)))
    names = [f"{cls.__module__}:{cls.__qualname__}" for cls in numbers]
    data = pickle.dumps((CODEC_VERSION, names, rows), protocol=5)
    return b"z" + zlib.compress(data, 1) if compress else b"p" + data


def decode_events(batch: bytes) -> list[Event]:
    """The events of one :func:`encode_events` batch, equal to those encoded."""
    kind, data = batch[:1], batch[1:]
    if kind == b"z":
        data = zlib.decompress(data)
    elif kind != b"p":
        raise ValueError("not an event batch")
    version, names, rows = pickle.loads(data)  # batches come from our own workers only
    if version != CODEC_VERSION:
        raise ValueError(f"event batch version {version}, expected {CODEC_VERSION}")
    classes = [_import_class(name) for name in names]
    return [_build(classes[row[0]], row[1:]) for row in rows]


def _import_class(name: str) -> type:
    module, _, qualname = name.partition(":")
    if not module.startswith("dotaudit."):
        raise ValueError(f"event batch names a class outside dotaudit: {name}")
    cls = getattr(importlib.import_module(module), qualname)
    if not (isinstance(cls, type) and issubclass(cls, Event)):
        raise ValueError(f"event batch names a class that is not an event: {name}")
    return cls
