"""Bulk probing against the lab: 200 targets mixing good resolvers, bad certificates,
an interceptor and closed addresses finish within the budget with one result per
target; a run killed mid-way (SIGKILL, SIGINT) keeps every finished result in its
JSONL stream. Oracle: the lab's construction says which targets are which.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.lab.lab import Lab

pytestmark = pytest.mark.lab

GOOD = ("padded", "unpadded", "no_keepalive", "short_timeout", "tls12")
BAD = ("expired", "wrong_host", "self_signed", "untrusted", "intercept")
PER_ADDRESS = 12
CLOSED = 200 - PER_ADDRESS * (len(GOOD) + len(BAD))
BUDGET_S = 90.0
FAST = ["--timeout", "1", "--max-idle-wait", "1", "--fail-on", "none", "-q"]


def write_targets(lab: Lab, path: Path) -> dict[str, str]:
    """The targets file; returns target text -> expected class (good, bad, closed)."""
    expected: dict[str, str] = {}
    lines = []
    for kind, variants in (("good", GOOD), ("bad", BAD)):
        for variant in variants:
            for i in range(PER_ADDRESS):
                # Same address, another line: a pinned line, or a target named by port.
                text = f"dns.test@{lab[variant].address}:853" if i % 2 else lab[variant].address
                lines.append(f"{text} dns.test  # {variant} {i}" if i % 2 == 0 else text)
                expected.setdefault(text, kind)
    for i in range(CLOSED):
        text = f"127.54.{i // 200}.{i % 200 + 1}"
        lines.append(text)
        expected[text] = "closed"
    path.write_text("\n".join(lines) + "\n")
    assert len(lines) == 200
    return expected


def command(lab: Lab, targets: Path, stream: Path, report: Path) -> list[str]:
    return [sys.executable, "-m", "dotaudit", "probe", "--targets", str(targets),
            "--ca", str(lab.ca), "--qname", "www.lab.test", "--concurrency", "50",
            "--stream", str(stream), "-o", str(report), *FAST]  # fmt: skip


def read_stream(path: Path) -> list[dict[str, object]]:
    """Every line of a finished stream (each must parse: nothing half-written)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def lines_so_far(path: Path) -> int:
    """Complete lines of a stream still being written: a reader can see the part of a
    line that one ``write`` has copied so far, so the unterminated tail is not counted."""
    if not path.exists():
        return 0
    return path.read_text().count("\n")


def test_two_hundred_targets(lab: Lab, tmp_path: Path) -> None:
    expected = write_targets(lab, tmp_path / "targets.txt")
    stream, report = tmp_path / "run.jsonl", tmp_path / "report.json"
    # Its speed is measured by bench/probe_bulk.py; the timeout only stops a hang.
    done = subprocess.run(command(lab, tmp_path / "targets.txt", stream, report),
                          capture_output=True, text=True, timeout=BUDGET_S * 2)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_stream(stream)
    assert len(rows) == 200
    data = json.loads(report.read_text())
    assert len(data["targets"]) == 200
    assert data["bulk"]["aggregate"]["targets"] == 200
    seen = Counter()
    for row in data["targets"]:
        kind = expected[row["target"]]
        seen[kind] += 1
        reach = next(c for c in row["checks"] if c["id"] == "reach.853")
        if kind == "closed":
            assert reach["evidence"]["class"] == "refused"
        else:
            assert reach["evidence"]["class"] == "open"
        if kind == "good":
            assert row["verdict"]["strict"] == "accept", row["verdict"]
        if kind == "bad":
            assert row["verdict"]["strict"] == "refuse" or row["verdict"]["opportunistic"] == (
                "intercepted"
            )
    assert seen == {"good": 60, "bad": 60, "closed": CLOSED}
    aggregate = data["bulk"]["aggregate"]
    # Strict accepts exactly the good ones; the 468 block only padded Unbound and friends.
    assert aggregate["strict_accept"] == 60
    assert aggregate["padding_468"] == PER_ADDRESS * (len(GOOD) - 1 + len(BAD) - 1)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_keeps_finished_results(lab: Lab, tmp_path: Path, sig: int) -> None:
    write_targets(lab, tmp_path / "targets.txt")
    stream, report = tmp_path / "run.jsonl", tmp_path / "report.json"
    argv = command(lab, tmp_path / "targets.txt", stream, report)
    argv[argv.index("50")] = "4"  # slow enough to be caught mid-way
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while lines_so_far(stream) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = lines_so_far(stream)
    assert before >= 8
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=60)
    rows = read_stream(stream)  # every line must parse: nothing half-written
    assert before <= len(rows) < 200
    assert len({r["target"] for r in rows}) >= 1
    if sig == signal.SIGINT:
        assert code == 130
        data = json.loads(report.read_text())
        assert data["bulk"]["interrupted"] is True
        assert len(data["targets"]) == len(rows)
    else:
        assert code == -signal.SIGKILL
