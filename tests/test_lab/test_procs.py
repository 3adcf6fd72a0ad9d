"""The process manager and port helpers: no root needed (plain `sleep` children and
high loopback ports)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.ports import free_loopback_port, port_in_use, require_free, wait_tcp
from tests.lab.procs import LabError, ProcessManager, cleanup_stale, start_ticks


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_start_records_pid_and_start_time(tmp_path: Path) -> None:
    pm = ProcessManager(log_dir=tmp_path / "logs", state_dir=tmp_path / "state")
    proc = pm.start("sleeper", ["sleep", "30"])
    state = json.loads((tmp_path / "state" / f"owner-{os.getpid()}.json").read_text())
    assert state["procs"] == [{"name": "sleeper", "pid": proc.pid, "ticks": start_ticks(proc.pid)}]
    pm.close()
    assert proc.popen.returncode is not None
    assert not list((tmp_path / "state").glob("owner-*.json"))


def test_cleanup_kills_what_a_dead_owner_left(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    orphan = subprocess.Popen(["sleep", "30"], start_new_session=True)
    recycled = subprocess.Popen(["sleep", "30"], start_new_session=True)
    ticks = start_ticks(orphan.pid)
    record = {
        "owner": _dead_pid(),
        "owner_ticks": 1,
        "procs": [
            {"name": "orphan", "pid": orphan.pid, "ticks": ticks},
            # Same PID but another start time: a recycled PID that must be left alone.
            {"name": "recycled", "pid": recycled.pid, "ticks": (ticks or 0) + 999_999},
        ],
        "netns": [],
    }
    (state / "owner-1.json").write_text(json.dumps(record))
    try:
        done = cleanup_stale(state)
        assert done == [f"killed orphan pid {orphan.pid}"]
        assert orphan.wait(5) is not None
        assert recycled.poll() is None
        assert not (state / "owner-1.json").exists()
    finally:
        for child in (orphan, recycled):
            child.kill()
            child.wait()


def test_cleanup_leaves_a_live_owner_alone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    child = subprocess.Popen(["sleep", "30"])
    record = {
        "owner": os.getpid(),
        "owner_ticks": start_ticks(os.getpid()),
        "procs": [{"name": "mine", "pid": child.pid, "ticks": start_ticks(child.pid)}],
    }
    (state / "owner-x.json").write_text(json.dumps(record))
    try:
        assert cleanup_stale(state) == []
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_refuses_taken_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        with pytest.raises(LabError, match=f"127.0.0.1:{port}/tcp"):
            require_free([("127.0.0.1", port, False)])
    assert not port_in_use("127.0.0.1", port)


def test_wait_tcp_returns_once_listening() -> None:
    port = free_loopback_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        start = time.monotonic()
        wait_tcp("127.0.0.1", port, timeout=5)
        assert time.monotonic() - start < 1


def test_wait_tcp_fails_fast_when_daemon_died() -> None:
    port = free_loopback_port()
    start = time.monotonic()
    with pytest.raises(LabError, match="exited before listening"):
        wait_tcp("127.0.0.1", port, timeout=10, alive=lambda: False)
    assert time.monotonic() - start < 1


def test_wait_tcp_deadline() -> None:
    port = free_loopback_port()
    start = time.monotonic()
    with pytest.raises(LabError, match="not listening"):
        wait_tcp("127.0.0.1", port, timeout=0.3)
    assert 0.25 < time.monotonic() - start < 2
