"""Host names to addresses through the system resolver, bounded by a deadline."""

from __future__ import annotations

import socket
import threading

from dotaudit.probe.transport.base import Deadline, ProbeError


def resolve(hostname: str, deadline: Deadline) -> list[str]:
    """Addresses for ``hostname`` from the system resolver, bounded by ``deadline``."""
    found: list[str] = []
    failure: list[str] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            failure.append(str(exc))
            return
        for info in infos:
            addr = str(info[4][0])
            if addr not in found:
                found.append(addr)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive():
        raise ProbeError("timeout", f"resolving {hostname}: no answer in {deadline.seconds:.1f} s")
    if failure or not found:
        raise ProbeError(
            "resolve", f"resolving {hostname}: {failure[0] if failure else 'no address'}"
        )
    return found
