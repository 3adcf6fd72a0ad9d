"""Port checks and readiness waits: connect loops with deadlines, never blind sleeps.

``netns`` names a namespace made by the lab; sockets for it are created by a helper
thread that has joined that namespace (a socket stays in the namespace it was born in).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable

from tests.lab.procs import LabError

CLONE_NEWNET = 0x40000000


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def netns_socket(
    netns: str | None, family: socket.AddressFamily, kind: socket.SocketKind
) -> socket.socket:
    """A socket created inside ``netns`` (or here when None)."""
    if netns is None:
        return socket.socket(family, kind)
    result: list[socket.socket | BaseException] = []

    def worker() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            result.append(socket.socket(family, kind))
        except BaseException as exc:  # handed to the caller's thread
            result.append(exc)

    # The thread ends right after, so its namespace switch dies with it.
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def port_in_use(host: str, port: int, udp: bool = False, netns: str | None = None) -> bool:
    """True when something is bound to host:port (TIME_WAIT leftovers do not count)."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with netns_socket(netns, _family(host), kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def require_free(ports: list[tuple[str, int, bool]], netns: str | None = None) -> None:
    taken = [f"{h}:{p}/{'udp' if u else 'tcp'}" for h, p, u in ports if port_in_use(h, p, u, netns)]
    if taken:
        raise LabError("lab refuses to start, ports already taken: " + ", ".join(taken))


def wait_tcp(
    host: str,
    port: int,
    timeout: float = 10.0,
    alive: Callable[[], bool] | None = None,
    netns: str | None = None,
) -> None:
    """Connect until it works or ``timeout`` passes; stop early if ``alive`` says the
    daemon died."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise LabError(f"daemon for {host}:{port} exited before listening")
        with netns_socket(netns, _family(host), socket.SOCK_STREAM) as sock:
            sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                sock.connect((host, port))
                return
            except OSError as exc:
                last = exc
        # Refused comes back at once; a short pause keeps this from spinning a core.
        time.sleep(0.02)
    raise LabError(f"{host}:{port} not listening after {timeout}s ({last})")


def wait_line(pipe: int, marker: bytes, timeout: float = 10.0) -> bytes:
    """Read a child's stdout until a line containing ``marker`` arrives."""
    deadline = time.monotonic() + timeout
    buf = b""
    while marker not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LabError(f"no {marker!r} within {timeout}s; got {buf[-300:]!r}")
        ready, _, _ = select.select([pipe], [], [], left)
        if ready:
            chunk = os.read(pipe, 4096)
            if not chunk:
                raise LabError(f"child closed stdout before {marker!r}; got {buf[-300:]!r}")
            buf = (buf + chunk)[-8192:]
    return buf


def free_loopback_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
