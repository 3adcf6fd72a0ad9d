"""Non-blocking socket steps bounded by a :class:`Deadline`, shared by the transport
modules: every wait goes through ``select`` with the time left, so a server that
dribbles one byte at a time cannot stretch a step past its deadline."""

from __future__ import annotations

import functools
import select
import socket
import ssl
from typing import Any

from dotaudit.probe.transport.base import Deadline, ProbeError, classify_oserror


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def ssl_reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.args[-1] if exc.args else exc).lower().replace("_", " ")


def wait(sock: socket.socket, readable: bool, deadline: Deadline, what: str) -> None:
    left = deadline.remaining()
    if left > 0:
        rlist, wlist = ([sock], []) if readable else ([], [sock])
        ready = select.select(rlist, wlist, [], left)
        if ready[0] or ready[1]:
            return
    raise ProbeError("timeout", f"timeout after {deadline.elapsed():.1f} s {what}")


def retry(sock: socket.socket, deadline: Deadline, what: str, op: Any) -> Any:
    """Run a non-blocking socket or SSL operation until it completes or time runs out."""
    while True:
        try:
            return op()
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            wait(sock, True, deadline, what)
        except ssl.SSLWantWriteError:
            wait(sock, False, deadline, what)


def sendall(sock: socket.socket, data: bytes, deadline: Deadline, what: str) -> None:
    view = memoryview(data)
    while view:
        chunk = view
        try:
            sent = retry(sock, deadline, what, functools.partial(sock.send, chunk))
        except ssl.SSLError as exc:
            raise ProbeError("alert", f"{what}: TLS error ({ssl_reason(exc)})") from None
        except OSError as exc:
            raise classify_oserror(exc, what) from None
        view = view[sent:]


def recv_some(sock: socket.socket, limit: int, deadline: Deadline, what: str) -> bytes:
    """Up to ``limit`` bytes; b"" on orderly close."""
    try:
        data: bytes = retry(sock, deadline, what, lambda: sock.recv(limit))
    except ssl.SSLZeroReturnError:
        return b""
    except ssl.SSLEOFError:
        return b""
    except ssl.SSLError as exc:
        raise ProbeError("alert", f"{what}: TLS error ({ssl_reason(exc)})") from None
    except ProbeError:
        raise
    except OSError as exc:
        raise classify_oserror(exc, what) from None
    return data


def recv_exact(sock: socket.socket, size: int, deadline: Deadline, what: str) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = recv_some(sock, size - got, deadline, what)
        if not chunk:
            raise ProbeError("closed", f"{what}: connection closed by the server")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
