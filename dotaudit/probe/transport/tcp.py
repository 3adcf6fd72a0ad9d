"""Plain TCP: connect (and classify how a connect ends), send and listen."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from dotaudit.model.endpoint import host_port
from dotaudit.probe.transport._sockets import family, ms, recv_some, sendall
from dotaudit.probe.transport.base import MAX_READ, Count, Deadline, ProbeError, classify_oserror


@dataclass(frozen=True, slots=True)
class TcpResult:
    """How a TCP connect ended: ``klass`` is open, refused, filtered, icmp or error."""

    klass: str
    connect_ms: float | None
    errno_name: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.klass,
            "connect_ms": self.connect_ms,
            "errno": self.errno_name,
            "reason": self.reason,
        }


CONNECT_CLASS = {"timeout": "filtered", "refused": "refused", "icmp": "icmp"}


def open_tcp(
    count: Count, address: str, port: int, deadline: Deadline
) -> tuple[socket.socket, float]:
    """A connected non-blocking socket and the connect time in ms."""
    count("tcp_connects")
    what = f"TCP connect to {host_port(address, port)}"
    sock = socket.socket(family(address), socket.SOCK_STREAM)
    start = time.monotonic()
    try:
        sock.settimeout(max(deadline.remaining(), 0.001))
        sock.connect((address, port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, TimeoutError):
            raise ProbeError(
                "timeout",
                f"{what}: no answer to the SYN within {time.monotonic() - start:.1f} s",
            ) from None
        raise classify_oserror(exc, what) from None
    sock.setblocking(False)
    return sock, ms(time.monotonic() - start)


def tcp_connect(count: Count, address: str, port: int, deadline: Deadline) -> TcpResult:
    """Connect and close at once; classify how the connect ended."""
    try:
        sock, connect_ms = open_tcp(count, address, port, deadline)
    except ProbeError as exc:
        klass = CONNECT_CLASS.get(exc.kind, "error")
        return TcpResult(klass, None, exc.errno_name, str(exc))
    sock.close()
    return TcpResult("open", connect_ms)


def tcp_exchange(
    count: Count,
    address: str,
    port: int,
    payloads: list[bytes],
    deadline: Deadline,
    listen_s: float,
) -> tuple[bytes, str, dict[str, float | None]]:
    """Send ``payloads`` (one write each) on a fresh TCP connection, then collect
    what comes back for ``listen_s``. Returns (bytes, end, timings) where ``end`` is
    closed, reset, silent or full."""
    sock, connect_ms = open_tcp(count, address, port, deadline)
    try:
        for data in payloads:
            sendall(sock, data, deadline, "sending")
        listen = deadline.sub(listen_s)
        received = bytearray()
        end = "silent"
        while len(received) < MAX_READ:
            try:
                chunk = recv_some(sock, MAX_READ - len(received), listen, "listening")
            except ProbeError as exc:
                end = "silent" if exc.kind == "timeout" else exc.kind
                break
            if not chunk:
                end = "closed"
                break
            received += chunk
        else:
            end = "full"
        return bytes(received), end, {"connect_ms": connect_ms}
    except ProbeError as exc:
        if exc.kind in ("reset", "closed"):
            return b"", exc.kind, {"connect_ms": connect_ms}
        raise
    finally:
        sock.close()
