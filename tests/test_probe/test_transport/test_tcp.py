"""TCP connects and send-and-listen exchanges on loopback: how a connect ends and how a
listen ends (closed, silent), each counted. The filtered and ICMP classes need a
firewall: tests/test_probe/test_firewall.py runs them in the lab's namespaces."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from dotaudit.probe.transport import Deadline, Transport
from tests.test_probe.test_runner import closed_port


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def serve_once(server: socket.socket, reply: bytes, close: bool) -> threading.Thread:
    """Accept one connection, read what the client sends, send ``reply``, then close it or
    stay silent for a while. (Closing with unread data would make the kernel reset.)"""

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(reply)
            if not close:
                time.sleep(1.0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_connect_to_a_closed_port_is_refused() -> None:
    net = Transport()
    result = net.tcp_connect("127.0.0.1", closed_port(), Deadline(2.0))
    assert (result.klass, result.errno_name, result.connect_ms) == ("refused", "ECONNREFUSED", None)
    assert "connection refused (TCP RST)" in (result.reason or "")
    assert net.stats.tcp_connects == 1


def test_connect_to_a_listener_is_open(listener: socket.socket) -> None:
    net = Transport()
    result = net.tcp_connect("127.0.0.1", listener.getsockname()[1], Deadline(2.0))
    assert result.klass == "open" and result.connect_ms is not None and result.connect_ms >= 0
    assert result.to_dict()["class"] == "open"


def test_exchange_collects_until_the_server_closes(listener: socket.socket) -> None:
    serve_once(listener, b"not dns", close=True)
    data, end, timings = Transport().tcp_exchange(
        "127.0.0.1", listener.getsockname()[1], [b"\x00\x01x"], Deadline(2.0), 1.0
    )
    assert (data, end) == (b"not dns", "closed")
    assert timings["connect_ms"] is not None


def test_exchange_with_a_silent_server_ends_at_the_listen_time(listener: socket.socket) -> None:
    serve_once(listener, b"", close=False)
    start = time.monotonic()
    data, end, _ = Transport().tcp_exchange(
        "127.0.0.1", listener.getsockname()[1], [b"hello"], Deadline(20.0), 0.3
    )
    assert (data, end) == (b"", "silent")
    # It listened for its 0.3 s and stopped there, long before the 20 s deadline: the
    # upper bound is half the deadline, room for a loaded machine, not a speed test.
    assert 0.25 < time.monotonic() - start < 10.0
