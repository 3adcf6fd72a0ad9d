"""``dotaudit events`` as a user drives it (dotaudit/cli/events.py): subprocess runs,
exit codes, stdout vs stderr, the output file."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pcapgen
from tests.test_cli.command import dotaudit, jsonl


def test_not_a_capture_exits_2_naming_the_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pcap"
    bogus.write_text("hello, this is not a capture\n")
    result = dotaudit("events", str(bogus))
    assert result.returncode == 2
    assert f"{bogus}: not a pcap or pcapng file" in result.stderr
    assert result.stdout == ""


def test_events_jsonl_carries_the_common_fields(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example", "b.example"])
    result = dotaudit("events", str(capture))
    assert result.returncode == 0, result.stderr
    records = jsonl(result.stdout)
    dns = [r for r in records if r["type"] == "dns"]
    assert [r["qname"] for r in dns if r["qr"] == "query"] == ["a.example", "b.example"]
    for record in records:
        for key in ("schema", "type", "file", "frame", "ts", "src", "sport", "dst", "dport"):
            assert key in record, (key, record)
        assert record["schema"] == "dotaudit.events/1"
    frames = [r["frame"] for r in dns]
    assert frames == sorted(frames), "records must come in capture order"


def test_events_type_filter_and_output_file(tmp_path: Path) -> None:
    capture = pcapgen.fallback_capture(tmp_path / "f.pcap", "reset")
    out = tmp_path / "out" / "events.jsonl"
    out.parent.mkdir()
    result = dotaudit("events", str(capture), "--type", "connection", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    records = jsonl(out.read_text())
    assert records and {r["type"] for r in records} == {"connection"}
    outcomes = {r["dport"]: r["outcome"] for r in records}
    assert outcomes[853] == "refused"
    assert not list(out.parent.glob(".*tmp")), "no temporary file left behind"


def test_unknown_type_is_a_usage_error(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    result = dotaudit("events", str(capture), "--type", "dns,bogus")
    assert result.returncode == 2
    assert "bogus" in result.stderr


def test_truncated_capture_warns_with_offset_and_strict_fails(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example", "b.example"])
    data = capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 10])
    result = dotaudit("events", str(cut))
    assert result.returncode == 0
    assert "offset" in result.stderr and str(cut) in result.stderr
    names = [r["qname"] for r in jsonl(result.stdout) if r["type"] == "dns"]
    assert "a.example" in names  # facts before the cut survive
    strict = dotaudit("events", "--strict", str(cut))
    assert strict.returncode == 2


def test_gzip_and_directory_inputs_are_found_by_magic(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["gz.example"])
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "capture.bin").write_bytes(gzip.compress(capture.read_bytes()))
    (folder / "README.md").write_text("not a capture")
    result = dotaudit("events", str(folder), "--type", "dns")
    assert result.returncode == 0, result.stderr
    assert {r["qname"] for r in jsonl(result.stdout)} == {"gz.example"}


def test_quiet_gc_still_bounds_garbage_cycles() -> None:
    """events/analyze raise the GC threshold; cyclic garbage must still be collected."""
    import gc

    from dotaudit.cli.events import quiet_gc

    saved = gc.get_threshold()
    # An in-process run of `dotaudit.cli.main` earlier in the session may have raised it.
    gc.set_threshold(700, 10, 10)
    try:
        quiet_gc()
        assert gc.get_threshold()[0] > 700
        gc.collect()
        baseline = len(gc.get_objects())
        peak = 0
        for _ in range(300_000):
            cycle: list[object] = []
            cycle.append(cycle)
            del cycle
            peak = max(peak, gc.get_count()[0])
        assert len(gc.get_objects()) < baseline + 60_000
        assert peak <= 50_001
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def test_cli_workers_option(mixed_capture: Path, tmp_path: Path) -> None:
    outputs = []
    for workers in ("1", "2", "auto"):
        out = tmp_path / f"w{workers}.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "dotaudit", "events", "--workers", workers,
             str(mixed_capture), "-o", str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    bad = subprocess.run(
        [sys.executable, "-m", "dotaudit", "events", "--workers", "0", str(mixed_capture)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--workers" in bad.stderr


def test_cli_sharded_output_to_stdout_is_written_once(mixed_capture: Path, tmp_path: Path) -> None:
    # Forked children must not flush the parent's buffered stdout a second time: the
    # first capture's lines are still buffered when the second one's shards are forked.
    small = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["second.example"])
    singles = [
        subprocess.run(
            [sys.executable, "-m", "dotaudit", "events", "--workers", "1", str(capture)],
            capture_output=True,
            timeout=300,
        )
        for capture in (mixed_capture, small)
    ]
    two = subprocess.run(
        [sys.executable, "-m", "dotaudit", "events", "--workers", "2",
         str(mixed_capture), str(small)],
        capture_output=True, timeout=300,
    )  # fmt: skip
    assert [r.returncode for r in singles] == [0, 0] and two.returncode == 0
    assert two.stdout == singles[0].stdout + singles[1].stdout


def test_ctrl_c_stops_every_shard_quietly(mixed_capture: Path, tmp_path: Path) -> None:
    """SIGINT reaches the whole process group: one 'interrupted' line, exit 130, no
    traceback from a child, no process left behind."""
    import signal
    import time

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read: writes block
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dotaudit", "events", "--workers", "2",
             str(mixed_capture), "-o", str(fifo)],
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_children(proc.pid)) < 1:
            time.sleep(0.05)
        assert _children(proc.pid), "no shard process was started"
        time.sleep(0.5)  # let the pipe to the reader fill up
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        os.close(reader)
    assert proc.returncode == 130
    assert stderr == "dotaudit: interrupted\n"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(child) for child in f.read().split())
    except OSError:
        pass
    return found


# -- every input judged -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("link-105", "none of its 4 packets could be decoded (unknown_linktype 4)"),
        ("corrupt-first", "no packet read: corrupt record (captured length 10000000 exceeds "
                          "262144) at byte offset 24"),
        ("empty", "the capture holds no packets"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_unreadable_input_exits_2_without_strict(
    tmp_path: Path, damage: str, reason: str, workers: str
) -> None:
    good = pcapgen.plaintext_capture(tmp_path / "good.pcap", ["a.example"])
    bad = pcapgen.damaged_capture(tmp_path / "bad.pcap", damage)
    result = dotaudit("events", str(good), str(bad), "--workers", workers)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"dotaudit: {bad}: unreadable: {reason}"
    assert "Traceback" not in result.stderr
    facts = [r for r in jsonl(result.stdout) if r["type"] != "anomaly"]
    assert {r["file"] for r in facts} == {str(good)}  # the other input's are still written


def test_strict_covers_a_corrupt_record_as_it_covers_a_cut(tmp_path: Path) -> None:
    damaged = pcapgen.damaged_capture(tmp_path / "k.pcap", "corrupt-later")
    relaxed = dotaudit("events", str(damaged))
    assert relaxed.returncode == 0, relaxed.stderr
    assert "corrupt record at byte offset 202" in relaxed.stderr
    strict = dotaudit("events", "--strict", str(damaged))
    assert strict.returncode == 2
    assert strict.stderr.splitlines()[-1] == (
        f"dotaudit: {damaged}: partial: corrupt record (captured length 10000000 exceeds "
        "262144) at byte offset 202; 2 packets read before (--strict)"
    )
    assert strict.stdout == relaxed.stdout


def test_events_read_each_capture_once_and_never_overwrite_one(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    once = dotaudit("events", str(capture))
    twice = dotaudit("events", str(capture), str(tmp_path))
    assert twice.returncode == 0
    assert twice.stdout == once.stdout
    assert twice.stderr == f"warning: {capture}: skipped: given twice\n"
    before = capture.read_bytes()
    refused = dotaudit("events", str(tmp_path), "-o", str(capture))
    assert refused.returncode == 2
    assert refused.stderr == f"dotaudit: {capture}: is an input; refusing to overwrite it\n"
    assert capture.read_bytes() == before
