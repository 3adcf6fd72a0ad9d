"""The Parquet dataset of ``dotaudit events`` (dotaudit/render/parquet.py), read back with
DuckDB, a reader that shares no code with pyarrow's writer. Oracle: the JSONL stream of
the same captures (``event_json_line``), record for record."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from dotaudit.model.events import (
    EVENT_CLASSES,
    EVENTS_SCHEMA,
    OMITTED_WHEN_NONE,
    Event,
    event_json_line,
)
from dotaudit.pipeline import CaptureRun
from dotaudit.render.parquet import (
    LAYOUTS,
    NULL_PARTITION,
    ParquetEventWriter,
    encode_event,
    partition_date,
)
from tests import factories
from tests.conftest import ROOT

PCAPS = sorted((ROOT / "pcaps").glob("*.pcap"))
PART = re.compile(r"type=([a-z_]+)/date=(\d{4}-\d{2}-\d{2}|__HIVE_DEFAULT_PARTITION__)/"
                  r"part-\d{5}\.parquet")  # fmt: skip


def write_dataset(paths: list[Path], out: Path, **caps: int) -> ParquetEventWriter:
    out.mkdir()
    writer = ParquetEventWriter(out, **caps)
    for path in paths:
        for batch in CaptureRun(path, hash_input=False).records(encode_event):
            writer.write(batch)
    writer.close()
    return writer


def write_events(events: list[Event], out: Path) -> None:
    out.mkdir()
    writer = ParquetEventWriter(out)
    writer.write(encode_event(event) for event in events)
    writer.close()


def jsonl_records(paths: list[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        for event in CaptureRun(path, hash_input=False).events():
            records.append(json.loads(event_json_line(event)))
    return records


def parquet_records(out: Path, record_type: str) -> list[dict[str, Any]]:
    """One type's rows as DuckDB reads them (the partition columns included)."""
    query = duckdb.sql(
        f"SELECT * FROM read_parquet('{out}/type={record_type}/*/*.parquet', "
        "hive_partitioning = true)"
    )
    names = [column[0] for column in query.description]
    return [dict(zip(names, row, strict=True)) for row in query.fetchall()]


def as_jsonl(row: dict[str, Any]) -> dict[str, Any]:
    """A DuckDB row in the JSONL record's shape: the partition columns and ``time`` out,
    ``schema`` in, ``tunnel`` and the like absent when null (as the JSON leaves them out)."""
    record = {k: v for k, v in row.items() if k not in ("date", "time")}
    record["schema"] = EVENTS_SCHEMA
    for name in OMITTED_WHEN_NONE:
        if record.get(name) is None:
            record.pop(name, None)
    return record


def canonical(records: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(record, sort_keys=True) for record in records)


def type_counts(out: Path) -> Counter[str]:
    rows = duckdb.sql(
        f"SELECT type, count(*) FROM read_parquet('{out}/**/*.parquet', "
        "hive_partitioning = true, union_by_name = true) GROUP BY type"
    ).fetchall()
    return Counter({name: count for name, count in rows})


def assert_same_records(paths: list[Path], out: Path) -> Counter[str]:
    expected = jsonl_records(paths)
    counts = Counter(record["type"] for record in expected)
    assert type_counts(out) == counts
    for record_type in counts:
        rows = parquet_records(out, record_type)
        mine = [r for r in expected if r["type"] == record_type]
        assert canonical([as_jsonl(row) for row in rows]) == canonical(mine), record_type
    return counts


def test_sample_captures_read_back_equal_the_jsonl_stream(tmp_path: Path) -> None:
    out = tmp_path / "events"
    write_dataset(PCAPS, out)
    counts = assert_same_records(PCAPS, out)
    assert counts["dns"] and counts["connection"] and counts["tls_certificate"]


def test_mixed_capture_reads_back_equal_with_small_row_groups_and_one_open_file(
    mixed_capture: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events"
    writer = write_dataset([mixed_capture], out, row_group_rows=500, open_files=1)
    counts = assert_same_records([mixed_capture], out)
    assert counts["connection"] > 1000 and counts["dns"] > 1000  # the test means something
    groups = [pq.ParquetFile(path).metadata for path in writer.files]
    assert max(g.row_group(i).num_rows for g in groups for i in range(g.num_row_groups)) <= 500
    assert sum(g.num_row_groups for g in groups) >= counts.total() // 500
    # One open file while dns and connection rows alternate: a closed file is never
    # reopened, the partition's next rows begin a new part.
    assert len(writer.files) > len({path.parent for path in writer.files})
    assert all(path.stat().st_size > 0 for path in writer.files)


def test_the_buffer_budget_writes_the_biggest_buffer_early(
    mixed_capture: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events"
    budget = 300
    writer = write_dataset([mixed_capture], out, buffered_items=budget)
    assert_same_records([mixed_capture], out)
    rows = [
        pq.ParquetFile(path).metadata.row_group(i).num_rows
        for path in writer.files
        for i in range(pq.ParquetFile(path).metadata.num_row_groups)
    ]
    assert max(rows) <= budget  # no buffer outgrew the budget
    assert writer.row_groups == len(rows) > 1


def test_every_dns_row_names_its_file_frame_and_question(tmp_path: Path) -> None:
    out = tmp_path / "events"
    write_dataset(PCAPS, out)
    expected = [r for r in jsonl_records(PCAPS) if r["type"] == "dns"]
    got = duckdb.sql(
        f"SELECT file, frame, qname, qtype, qr FROM read_parquet('{out}/type=dns/*/*.parquet')"
    ).fetchall()
    assert sorted(got, key=repr) == sorted(
        ((r["file"], r["frame"], r["qname"], r["qtype"], r["qr"]) for r in expected), key=repr
    )


def test_nested_records_and_optional_fields_survive(tmp_path: Path) -> None:
    edns = factories.edns(padding=128, keepalive=-1, ecs="192.0.2.0/24", nsid="", options=(8, 12))
    events: list[Event] = [
        factories.dns_query(edns=edns, tunnel="vxlan:vni=42@192.0.2.1-192.0.2.2"),
        factories.dns_query(qname=None, qtype=None, edns=None),
        factories.connection(records_fwd=[100, 200], records_rev=[300]),
        factories.connection(icmp="admin-prohibited", icmp_frame=7, app=None),
        factories.anomaly(what="tcp_gap", detail="a \\x00 b"),
    ]
    out = tmp_path / "events"
    write_events(events, out)
    dns = parquet_records(out, "dns")
    assert dns[0]["edns"] == {
        "udp_size": 1232, "do": False, "version": 0, "padding": 128, "keepalive": -1,
        "ecs": "192.0.2.0/24", "nsid": "", "options": [8, 12],
    }  # fmt: skip
    assert dns[0]["tunnel"] == "vxlan:vni=42@192.0.2.1-192.0.2.2"
    assert (dns[1]["edns"], dns[1]["qname"], dns[1]["qtype"], dns[1]["tunnel"]) == (None,) * 4
    connections = parquet_records(out, "connection")
    assert [r["length"] for r in connections[0]["tls_records_fwd"]] == [100, 200]
    assert connections[0]["tls_records_rev"][0] == {
        "ts": events[2].tls_records_rev[0].ts,  # type: ignore[attr-defined]
        "frame": events[2].tls_records_rev[0].frame,  # type: ignore[attr-defined]
        "length": 300,
        "content_type": factories.APPLICATION_DATA,
    }
    assert connections[1]["tls_records_fwd"] == [] and connections[1]["icmp_frame"] == 7
    for row, event in zip(dns + connections, events[:4], strict=True):
        assert as_jsonl(row) == json.loads(event_json_line(event))
    assert as_jsonl(parquet_records(out, "anomaly")[0]) == json.loads(event_json_line(events[4]))


def test_columns_follow_the_record_classes(tmp_path: Path) -> None:
    assert [layout.type for layout in LAYOUTS.values()] == [c.type for c in EVENT_CLASSES]
    events = [factories.dns_query()]
    out = tmp_path / "events"
    write_events(events, out)
    (path,) = out.rglob("*.parquet")
    schema = pq.read_schema(path)
    record = json.loads(event_json_line(events[0]))
    names = [name for name in record if name not in ("type", "schema")]
    assert [n for n in schema.names if n != "time"] == [*names[:8], "tunnel", *names[8:]]
    assert schema.metadata[b"dotaudit.schema"] == EVENTS_SCHEMA.encode()
    # Optional fields are nullable, the others not.
    assert schema.field("qname").nullable and schema.field("edns").nullable
    assert not schema.field("frame").nullable and not schema.field("flags").nullable
    column_types = dict(
        duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()[i][:2]
        for i in range(len(schema.names))
    )
    assert column_types["ts"] == "DOUBLE" and column_types["time"] == "TIMESTAMP WITH TIME ZONE"
    assert column_types["frame"] == "BIGINT" and column_types["flags"] == "VARCHAR[]"
    assert column_types["malformed"] == "BOOLEAN"


def test_partitions_are_type_and_utc_date_of_ts(tmp_path: Path) -> None:
    midnight = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    stamps = [midnight - 0.000001, midnight, midnight + 86399.999999, midnight + 86400]
    events: list[Event] = [factories.dns_query(ts=ts) for ts in stamps]
    events.append(factories.anomaly(ts=midnight))
    out = tmp_path / "events"
    write_events(events, out)
    parts = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    assert parts == [
        "type=anomaly/date=2026-12-01/part-00000.parquet",
        "type=dns/date=2026-11-30/part-00000.parquet",
        "type=dns/date=2026-12-01/part-00000.parquet",
        "type=dns/date=2026-12-02/part-00000.parquet",
    ]
    rows = parquet_records(out, "dns")
    for row in rows:
        assert row["date"] == datetime.fromtimestamp(row["ts"], UTC).date()
        assert row["time"] == datetime.fromtimestamp(row["ts"], UTC)
    assert Counter(row["date"] for row in rows)[date(2026, 12, 1)] == 2


def test_a_ts_without_a_date_goes_to_the_null_partition(tmp_path: Path) -> None:
    last_day = (date(9999, 12, 31) - date(1970, 1, 1)).days
    assert partition_date(last_day) == "9999-12-31"
    assert partition_date(last_day + 1) == NULL_PARTITION
    assert partition_date(-1) == "1969-12-31"
    assert partition_date(None) == NULL_PARTITION
    events: list[Event] = [
        factories.dns_query(ts=math.nan),
        factories.dns_query(ts=1e300),
        factories.dns_query(ts=(last_day + 1) * 86400.0),
        factories.dns_query(ts=1000.25),
    ]
    out = tmp_path / "events"
    write_events(events, out)
    assert {p.parent.name for p in out.rglob("*.parquet")} == {
        f"date={NULL_PARTITION}",
        "date=1970-01-01",
    }
    rows = parquet_records(out, "dns")
    undated = [row for row in rows if row["date"] is None]
    assert [row["frame"] for row in undated] == [events[i].frame for i in range(3)]
    # Year 10000 has no date partition, but it is an instant a timestamp[us] holds.
    assert [row["time"] is None for row in undated] == [True, True, False]
    (dated,) = [row for row in rows if row["date"] is not None]
    assert dated["time"] == datetime.fromtimestamp(1000.25, UTC)


def test_paths_match_the_documented_layout(tmp_path: Path) -> None:
    out = tmp_path / "events"
    writer = write_dataset(PCAPS, out)
    assert writer.files
    for path in out.rglob("*"):
        if path.is_file():
            assert PART.fullmatch(str(path.relative_to(out))), path
    documented = (ROOT / "docs" / "events.md").read_text()
    assert "type=dns/date=" in documented and "part-00000.parquet" in documented


@pytest.mark.parametrize("bad", [{"row_group_rows": 0}, {"open_files": 0}, {"buffered_items": 0}])
def test_caps_must_be_positive(tmp_path: Path, bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ParquetEventWriter(tmp_path, **bad)
