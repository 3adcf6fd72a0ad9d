"""``dotaudit events --format parquet``: the fact stream as a Hive-partitioned Parquet
dataset that DuckDB, Spark or Trino query in place (layout and schema: docs/events.md).

``DIR/type=<record type>/date=<UTC date of ts>/part-NNNNN.parquet``. One Arrow schema per
record type, derived from its record class in :mod:`dotaudit.model.events`, so the
columns are the JSON fields under the same names. ``type`` and ``date`` live in the
directory names only, as Hive partition columns do.

Memory stays bounded whatever the capture: rows wait in one buffer per partition, a
buffer that reaches ``row_group_rows`` is written as one row group, and when all buffers
together hold ``buffered_items`` items (a row, and each TLS record nested in it) the
biggest is written early. At most ``open_files`` part files are open; opening one more
closes the least recently used, and that partition's next rows start a new part file.

pyarrow is an optional dependency (``pip install 'dotaudit[parquet]'``): only this
module imports it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dotaudit.model.events import EVENT_CLASSES, EVENTS_SCHEMA, Event

Row = Sequence[Any]
"""One event's field values in its class's field order; nested records as tuples."""

ROW_GROUP_ROWS = 65_536
BUFFERED_ITEMS = 16_384
OPEN_FILES = 32
COMPRESSION = "zstd"

TIME_COLUMN = "time"
"""Added after ``ts``: the same instant as a ``timestamp[us, UTC]``, for engines' date and
time functions. ``ts`` stays the exact float of the JSON stream."""
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""Hive's name for a null partition value: the date of a ``ts`` that has none (not
finite, or outside the years 1-9999)."""
_MAX_MICROSECONDS = float(2**63 - 1)
_FIRST_DAY = (date.min - date(1970, 1, 1)).days
_LAST_DAY = (date.max - date(1970, 1, 1)).days


# -- schema ----------------------------------------------------------------------------


def _members(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _arrow_field(name: str, hint: Any) -> pa.Field:
    members = _members(hint)
    present = [m for m in members if m is not type(None)]
    if len(present) != 1:
        raise TypeError(f"{name}: no Parquet column type for {hint!r}")
    return pa.field(name, _arrow_type(name, present[0]), nullable=len(present) < len(members))


def _arrow_type(name: str, hint: Any) -> pa.DataType:
    if hint is bool:
        return pa.bool_()
    if hint is int:
        return pa.int64()
    if hint is float:
        return pa.float64()
    if hint is str:
        return pa.string()
    if typing.get_origin(hint) is tuple:
        item, *rest = typing.get_args(hint)
        if rest == [Ellipsis]:
            return pa.list_(pa.field("element", _arrow_type(name, item), nullable=False))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        return pa.struct([_arrow_field(f.name, hints[f.name]) for f in dataclasses.fields(hint)])
    raise TypeError(f"{name}: no Parquet column type for {hint!r}")


def _nested_class(hint: Any) -> type | None:
    """The record class inside ``hint`` (``Edns | None``, ``tuple[TlsRecord, ...]``)."""
    for member in _members(hint):
        if dataclasses.is_dataclass(member) and isinstance(member, type):
            return member
        for arg in typing.get_args(member):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                return arg
    return None


@dataclasses.dataclass(frozen=True)
class RecordLayout:
    """How one record type becomes rows and columns."""

    type: str
    fields: tuple[pa.Field, ...]
    """The event's fields, in class order: the row order."""
    schema: pa.Schema
    """The file schema: the fields with ``time`` after ``ts``."""
    encode: Callable[[Event], Row]
    nested_lists: tuple[int, ...]
    """Row positions holding lists of records: their length counts against the budget."""


def _layout(cls: type[Event]) -> RecordLayout:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    fields = tuple(_arrow_field(name, hints[name]) for name in names)
    columns = list(fields)
    columns.insert(names.index("ts") + 1, pa.field(TIME_COLUMN, pa.timestamp("us", tz="UTC")))
    metadata = {"dotaudit.schema": EVENTS_SCHEMA, "dotaudit.type": cls.type}
    nested: list[tuple[int, Callable[[Any], Any]]] = []
    nested_lists: list[int] = []
    for index, name in enumerate(names):
        inner = _nested_class(hints[name])
        if inner is None:
            continue
        as_tuple = attrgetter(*(f.name for f in dataclasses.fields(inner)))
        if typing.get_origin(_members(hints[name])[0]) is tuple:
            nested.append((index, _each(as_tuple)))
            nested_lists.append(index)
        else:
            nested.append((index, _unless_none(as_tuple)))
    return RecordLayout(
        type=cls.type,
        fields=fields,
        schema=pa.schema(columns, metadata=metadata),
        encode=_row_encoder(attrgetter(*names), tuple(nested)),
        nested_lists=tuple(nested_lists),
    )


def _each(convert: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    return lambda items: [convert(item) for item in items]


def _unless_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _row_encoder(
    get: Callable[[Any], tuple[Any, ...]], nested: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> Callable[[Event], Row]:
    if not nested:
        return get

    def encode(event: Event) -> Row:
        row = list(get(event))
        for index, convert in nested:
            row[index] = convert(row[index])
        return row

    return encode


LAYOUTS: dict[str, RecordLayout] = {cls.type: _layout(cls) for cls in EVENT_CLASSES}
_ENCODERS: dict[type, tuple[str, Callable[[Event], Row]]] = {
    cls: (cls.type, LAYOUTS[cls.type].encode) for cls in EVENT_CLASSES
}


def encode_event(event: Event) -> tuple[str, Row]:
    """``(record type, row)``: what :class:`ParquetEventWriter` takes, made of plain
    values (cheap to send between processes)."""
    type_name, encode = _ENCODERS[type(event)]
    return type_name, encode(event)


def parquet_schema(record_type: str) -> pa.Schema:
    return LAYOUTS[record_type].schema


# -- writing ---------------------------------------------------------------------------


class _Buffer:
    __slots__ = ("items", "rows")

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.items = 0


Partition = tuple[str, int | None]
"""(record type, days since the epoch of the UTC date, or None for no date)."""


class ParquetEventWriter:
    """Writes ``(record type, row)`` pairs into a dataset directory (which must exist).

    ``close()`` writes what is buffered and closes every file; ``abort()`` closes the files
    without writing more (the caller discards the directory).
    """

    def __init__(
        self,
        directory: Path,
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
        buffered_items: int = BUFFERED_ITEMS,
        open_files: int = OPEN_FILES,
        compression: str = COMPRESSION,
    ) -> None:
        if row_group_rows < 1 or buffered_items < 1 or open_files < 1:
            raise ValueError("row_group_rows, buffered_items and open_files must be positive")
        self.directory = directory
        self.row_group_rows = row_group_rows
        self.buffered_items = buffered_items
        self.open_files = open_files
        self.compression = compression
        self._buffers: dict[Partition, _Buffer] = {}
        self._buffered = 0
        self._writers: OrderedDict[Partition, pq.ParquetWriter] = OrderedDict()
        self._parts: dict[Partition, int] = {}
        self.rows: dict[str, int] = {}
        """Rows written (or buffered) per record type."""
        self.files: list[Path] = []
        """Every part file begun, in order."""
        self.row_groups = 0

    def write(self, records: Iterable[tuple[str, Row]]) -> None:
        buffers = self._buffers
        cap = self.row_group_rows
        rows = self.rows
        for type_name, row in records:
            ts = row[2]  # every record's third field (Event: file, frame, ts, ...)
            day: int | None
            try:
                number = int(ts // 86400.0)
            except (TypeError, ValueError, OverflowError):  # NaN, inf
                day = None
            else:
                # Days without a date share one key: they share the null partition's files.
                day = number if _FIRST_DAY <= number <= _LAST_DAY else None
            key = (type_name, day)
            buffer = buffers.get(key)
            if buffer is None:
                buffer = buffers[key] = _Buffer()
            buffer.rows.append(row)
            items = 1
            nested = LAYOUTS[type_name].nested_lists
            if nested:
                items += sum(len(row[index]) for index in nested)
            buffer.items += items
            self._buffered += items
            rows[type_name] = rows.get(type_name, 0) + 1
            if len(buffer.rows) >= cap:
                self._flush(key)
            elif self._buffered >= self.buffered_items:
                self._flush(max(buffers, key=lambda k: buffers[k].items))

    def close(self) -> None:
        for key in sorted(self._buffers, key=_partition_order):
            self._flush(key)
        while self._writers:
            _, writer = self._writers.popitem(last=False)
            writer.close()

    def abort(self) -> None:
        """Close the files, writing nothing more; errors are dropped (the dataset is being
        discarded, and the error that got us here is the one to report)."""
        self._buffers.clear()
        self._buffered = 0
        writers, self._writers = self._writers, OrderedDict()
        for writer in writers.values():
            try:
                writer.close()
            except Exception:  # closing the others matters more
                continue

    def _flush(self, key: Partition) -> None:
        buffer = self._buffers.pop(key, None)
        if buffer is None or not buffer.rows:
            return
        self._buffered -= buffer.items
        layout = LAYOUTS[key[0]]
        table = _table(layout, buffer.rows)
        self._writer(key, layout).write_table(table, row_group_size=len(buffer.rows))
        self.row_groups += 1

    def _writer(self, key: Partition, layout: RecordLayout) -> pq.ParquetWriter:
        writer = self._writers.get(key)
        if writer is not None:
            self._writers.move_to_end(key)
            return writer
        while len(self._writers) >= self.open_files:
            _, oldest = self._writers.popitem(last=False)
            oldest.close()
        part = self._parts.get(key, 0)
        self._parts[key] = part + 1
        folder = self.directory / f"type={key[0]}" / f"date={partition_date(key[1])}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{part:05d}.parquet"
        writer = pq.ParquetWriter(path, layout.schema, compression=self.compression)
        self._writers[key] = writer
        self.files.append(path)
        return writer


def partition_date(day: int | None) -> str:
    """The ``date=`` directory value of a day number (days since 1970-01-01, UTC)."""
    if day is None or not _FIRST_DAY <= day <= _LAST_DAY:
        return NULL_PARTITION
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


def _partition_order(key: Partition) -> tuple[str, bool, int]:
    return (key[0], key[1] is None, key[1] or 0)


def _table(layout: RecordLayout, rows: list[Row]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays: list[pa.Array] = []
    for field, values in zip(layout.fields, columns, strict=True):
        arrays.append(pa.array(values, type=field.type))
        if field.name == "ts":
            arrays.append(_timestamps(arrays[-1]))
    return pa.Table.from_arrays(arrays, schema=layout.schema)


def _timestamps(ts: pa.Array) -> pa.Array:
    """``ts`` (epoch seconds) as microseconds, rounded; null where it is no instant."""
    micros = pc.round(pc.multiply(ts, 1e6))
    representable = pc.less(pc.abs(micros), _MAX_MICROSECONDS)  # NaN: false
    whole = pc.if_else(representable, micros, pa.scalar(None, pa.float64()))
    return pc.cast(pc.cast(whole, pa.int64()), pa.timestamp("us", tz="UTC"))
