"""``dotaudit watch`` as a user drives it (dotaudit/cli/watch.py): usage errors, the
privilege error, SIGTERM and --duration ending with the report, --fail-on, the ring.

Traffic is kdig's, to a loopback address where no resolver listens: its plaintext queries are
leaks whatever answers them. The lab's resolvers are exercised in tests/test_watch.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.test_cli.command import SCHEMA, dotaudit

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")


def start(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotaudit", "watch", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("dotaudit: watching"), first + proc.stderr.read()
    return proc


HOST = "127.77.0.9"
"""Where kdig sends its queries: nothing listens there, and no other test talks to it
(other runs on this machine use 127.0.0.1 and the lab's 127.53/16)."""
ONLY_OURS = f"udp port 53 and host {HOST}"


def leak(*names: str) -> None:
    """One kdig per name, all at once (each waits a second for the answer that never
    comes)."""
    clients = [
        subprocess.Popen(
            ["kdig", f"@{HOST}", "-p", "53", "+time=1", "+retry=0", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in names
    ]
    for client in clients:
        client.wait(timeout=30)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["lo", "--ring", "3"], "--ring and --ring-size need --write"),
        (["lo", "--write", "x.pcap", "--ring-size", "1"], "--ring-size needs --ring"),
        (["lo", "--duration", "0"], "must be a positive number of seconds"),
        (["lo", "--report-every", "-1"], "must be a positive number of seconds"),
        (["lo", "--ring", "0", "--write", "x.pcap"], "must be at least 1"),
    ],
)
def test_usage_errors(args: list[str], says: str) -> None:
    result = dotaudit("watch", *args)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr


def test_without_cap_net_raw_one_line_says_how_to_run_it() -> None:
    """As user nobody (no capabilities): exit 2, one line naming the interface, the
    capability and both ways to get it."""
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "dotaudit", "watch", "lo", "--duration", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dotaudit: lo: capturing needs the CAP_NET_RAW capability")
    assert "root" in lines[0] and "setcap cap_net_raw" in lines[0]


@ROOT_ONLY
def test_unknown_interface_is_one_line() -> None:
    result = dotaudit("watch", "no-such-if0", "--duration", "1")
    assert result.returncode == 2
    assert result.stderr == "dotaudit: no-such-if0: no such interface\n"


@ROOT_ONLY
def test_a_filter_that_does_not_compile_is_one_line() -> None:
    result = dotaudit("watch", "lo", "--filter", "port banana", "--duration", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("dotaudit: lo: filter does not compile: ")
    assert result.stderr.count("\n") == 1


@ROOT_ONLY
@pytest.mark.parametrize("fail_on", ["info", "low"])
def test_sigterm_ends_with_the_final_report_and_the_exit_follows_fail_on(
    tmp_path: Path, fail_on: str
) -> None:
    report = tmp_path / "r.json"
    proc = start("lo", "--filter", ONLY_OURS, "-o", str(report),
                 "--fail-on", fail_on, "-q")  # fmt: skip
    leak("sigterm.leak.test")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert "ended by stopped" in stderr
    data = json.loads(report.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left
    jsonschema.validate(data, SCHEMA)
    assert data["inputs"][0]["live"]["ended_by"] == "stopped"
    assert data["inputs"][0]["live"]["filter"] == ONLY_OURS
    ids = [f["id"] for f in data["findings"]]
    assert "DA-LEAK-003" in ids  # a query to a stub on this host: info
    assert proc.returncode == (1 if fail_on == "info" else 0)


@ROOT_ONLY
def test_duration_ends_the_run_and_stream_to_stdout_leaves_the_report_to_stderr() -> None:
    proc = start("lo", "--filter", ONLY_OURS, "--duration", "2",
                 "--stream", "-", "--fail-on", "none")  # fmt: skip
    leak("duration.leak.test")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [f["id"] for f in lines] == ["DA-LEAK-003"]  # only the stream on stdout
    assert "ended by duration" in stderr and "DA-LEAK-003" in stderr  # the text report


@ROOT_ONLY
def test_the_ring_keeps_n_files_of_about_the_size_asked(tmp_path: Path) -> None:
    """--ring 2 --ring-size 0.001 (1 kB): a new file when the next batch would pass the
    size, only the two newest remain, and the report lists them all in frame order."""
    report = tmp_path / "r.json"
    proc = start("lo", "--filter", ONLY_OURS, "--write",
                 str(tmp_path / "ring.pcap"), "--ring", "2", "--ring-size", "0.001",
                 "-o", str(report), "--fail-on", "none", "-q")  # fmt: skip
    for group in range(10):  # three queries a second: batches far below the size
        leak(*(f"ring{group}-{i}.leak.test" for i in range(3)))
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    live = json.loads(report.read_text())["inputs"][0]["live"]
    written = live["written"]
    assert len(written) >= 3
    assert [w.get("removed", False) for w in written] == [True] * (len(written) - 2) + [
        False,
        False,
    ]
    on_disk = sorted(p.name for p in tmp_path.glob("ring_*.pcap"))
    assert on_disk == sorted(Path(w["path"]).name for w in written[-2:])
    frame = 1
    for entry in written:
        assert entry["first_frame"] == frame
        frame += entry["packets"]
    assert frame - 1 == json.loads(report.read_text())["inputs"][0]["packets"]
    for entry in written[-2:]:
        assert entry["packets"] > 0
        assert Path(entry["path"]).stat().st_size <= 1000
