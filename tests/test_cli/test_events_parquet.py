"""``dotaudit events --format parquet -o DIR`` as a user drives it (dotaudit/cli/events.py):
subprocess runs, exit codes, the dataset directory appearing whole or not at all. The
rows themselves are checked against JSONL in tests/test_render/test_parquet.py; here the
oracle is the JSONL output of the same command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dotaudit.model.events import EVENTS_SCHEMA, OMITTED_WHEN_NONE
from tests.conftest import ROOT
from tests.fifos import feed_fifos, wait_for
from tests.test_cli.command import dotaudit, jsonl

PCAPS = ROOT / "pcaps"
MISSING = "dotaudit: --format parquet needs pyarrow: pip install 'dotaudit[parquet]'\n"


def leftovers(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


def dataset_rows(out: Path) -> list[dict[str, Any]]:
    """Every row, as DuckDB reads it, in the JSONL record's shape."""
    records = []
    for folder in sorted(out.glob("type=*")):
        query = duckdb.sql(f"SELECT * FROM read_parquet('{folder}/*/*.parquet')")
        names = [column[0] for column in query.description]
        for row in query.fetchall():
            record = dict(zip(names, row, strict=True))
            del record["time"], record["date"]
            for name in OMITTED_WHEN_NONE:
                if name in record and record[name] is None:
                    del record[name]
            record["schema"] = EVENTS_SCHEMA
            records.append(record)
    return records


def canonical(records: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(record, sort_keys=True) for record in records)


def test_sample_captures_give_the_jsonl_counts_per_type(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    result = dotaudit("events", str(PCAPS), "--format", "parquet", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    expected = jsonl(dotaudit("events", str(PCAPS)).stdout)
    counts = Counter(str(record["type"]) for record in expected)
    got = duckdb.sql(
        f"SELECT type, count(*) FROM read_parquet('{out}/**/*.parquet', "
        "hive_partitioning = true, union_by_name = true) GROUP BY type"
    ).fetchall()
    assert dict(got) == counts and len(counts) >= 5
    assert canonical(dataset_rows(out)) == canonical(expected)  # type: ignore[arg-type]
    assert not leftovers(out), "no temporary directory left behind"


@pytest.mark.parametrize("options", [[], ["--type", "dns,tls"]])
def test_type_gives_the_jsonl_records(
    mixed_capture: Path, tmp_path: Path, options: list[str]
) -> None:
    out = tmp_path / "lake"
    result = dotaudit("events", str(mixed_capture), *options, "--format", "parquet", "-o", str(out))
    assert result.returncode == 0, result.stderr
    expected = jsonl(dotaudit("events", str(mixed_capture), *options).stdout)
    assert len(expected) > 1000
    assert canonical(dataset_rows(out)) == canonical(expected)  # type: ignore[arg-type]
    types = {folder.name for folder in out.iterdir()}
    assert types == {f"type={record['type']}" for record in expected}


@pytest.mark.parametrize(
    "options", [["--workers", "2"], ["--as-one"], []], ids=["workers", "as-one", "stdin"]
)
def test_what_parquet_does_not_take_is_one_line(
    mixed_capture: Path, tmp_path: Path, options: list[str]
) -> None:
    source = "-" if not options else str(mixed_capture)
    out = tmp_path / "lake"
    result = dotaudit("events", source, *options, "--format", "parquet", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith("dotaudit: --format parquet ")
    assert result.stderr.count("\n") == 1
    assert not out.exists() and not leftovers(out)


def test_an_empty_directory_is_filled(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    out.mkdir()
    capture = PCAPS / "03-plaintext-leaks.pcap"
    result = dotaudit(
        "events", str(capture), "--type", "dns", "--format", "parquet", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out.iterdir()] == ["type=dns"]
    assert not leftovers(out)


def test_a_non_empty_directory_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = dotaudit("events", str(PCAPS), "--format", "parquet", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr == f"dotaudit: {out}: directory is not empty (give a new or empty one)\n"
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not leftovers(out)


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    out.write_text("mine")
    result = dotaudit("events", str(PCAPS), "--format", "parquet", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr == f"dotaudit: {out}: exists and is not a directory\n"
    assert out.read_text() == "mine"


@pytest.mark.parametrize("output", [[], ["-o", "-"]])
def test_parquet_needs_a_directory(output: list[str]) -> None:
    result = dotaudit("events", str(PCAPS), "--format", "parquet", *output)
    assert result.returncode == 2
    assert result.stderr == "dotaudit: --format parquet needs -o DIR (a directory to create)\n"
    assert result.stdout == ""


def test_a_failed_input_leaves_no_dataset_and_no_temporary_directory(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pcap"
    bogus.write_text("not a capture")
    out = tmp_path / "lake"
    good = PCAPS / "09-office.pcap"  # written first, then the run fails on the second input
    result = dotaudit("events", str(good), str(bogus), "--format", "parquet", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.endswith(f"{bogus}: not a pcap or pcapng file\n")
    assert len(result.stderr.splitlines()) == 1
    assert not out.exists()
    assert not leftovers(out)


def test_ctrl_c_leaves_no_dataset_and_no_temporary_directory(
    mixed_capture: Path, tmp_path: Path
) -> None:
    # A FIFO that is fed far longer than the test waits: the run is still reading when the
    # signal lands, however fast the machine (a file on disk could be read to its end first).
    fifo = tmp_path / "in.pcap"
    os.mkfifo(fifo)
    out = tmp_path / "lake"
    process = subprocess.Popen(
        [sys.executable, "-m", "dotaudit", "events", str(fifo), "--format", "parquet",
         "-o", str(out)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    feed_fifos([fifo], mixed_capture.read_bytes(), repeat=100)
    try:
        wait_for(
            lambda: bool(list(tmp_path.glob(".lake.*.tmp/type=*"))) or process.poll() is not None,
            "the first rows in the temporary directory",
        )
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert leftovers(out), "the run writes into a temporary directory"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stderr == "dotaudit: interrupted\n"
    assert not out.exists()
    assert not leftovers(out)


def test_without_pyarrow_one_clear_line(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    hide = (
        "import sys; sys.modules['pyarrow'] = None; from dotaudit.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    args = ["events", str(PCAPS), "--format", "parquet", "-o", str(out)]
    result = subprocess.run(
        [sys.executable, "-c", hide, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == MISSING
    assert not out.exists() and not leftovers(out)
    # The JSONL path does not need it.
    plain = subprocess.run(
        [sys.executable, "-c", hide, "events", str(PCAPS / "03-plaintext-leaks.pcap")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 0 and plain.stdout
