"""What every transport call shares: the deadline each wait is clipped to, the error
that says what the network did, and the result of a DoQ or DoH exchange."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_READ = 64 * 1024
"""Octets read at most where no DNS length bounds the read."""

Count = Callable[[str], None]
"""Counts one connection or exchange of the named kind (a :class:`TransportStats` field)."""

ICMP_ERRNOS = {
    errno.EHOSTUNREACH: "host unreachable (ICMP host or admin prohibited)",
    errno.ENETUNREACH: "network unreachable (ICMP net unreachable or prohibited)",
    errno.EACCES: "permission denied (ICMP admin prohibited or local firewall)",
    errno.EPERM: "operation not permitted (local firewall)",
}


class ProbeError(Exception):
    """A network step that did not succeed; ``str(exc)`` is the reason shown to users.

    ``kind`` is one of: timeout, refused, icmp, reset, closed, alert, verify, protocol,
    malformed, resolve, oserror, policy (an address outside ``DOTAUDIT_ALLOWED_NETWORKS``).
    """

    def __init__(
        self, kind: str, message: str, *, errno_name: str | None = None, phase: str = ""
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.errno_name = errno_name
        self.phase = phase
        """Where a TLS exchange ended: "connect" (TCP), "handshake" (after the ClientHello
        went out), "exchange" (after the handshake); empty where nobody said."""


class Deadline:
    """A point in monotonic time that every network wait is clipped to."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds)
        self.start = time.monotonic()
        self.end = self.start + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def clip(self, cap: float) -> float:
        return min(cap, self.remaining())

    def sub(self, cap: float) -> Deadline:
        """A shorter deadline inside this one."""
        return Deadline(self.clip(cap))

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return time.monotonic() >= self.end


def _errno_name(code: int | None) -> str | None:
    return errno.errorcode.get(code) if code is not None else None


def classify_oserror(exc: OSError, what: str, *, udp: bool = False) -> ProbeError:
    """Map a socket error to a ProbeError kind; the errno name stays in the evidence.

    ``udp``: the socket is a datagram one, where "refused" is what the kernel makes of an
    ICMP port unreachable, not of a TCP RST.
    """
    code = exc.errno
    name = _errno_name(code)
    if isinstance(exc, TimeoutError) or code == errno.ETIMEDOUT:
        return ProbeError("timeout", f"{what}: timed out", errno_name=name)
    if code == errno.ECONNREFUSED:
        how = "ICMP port unreachable: nothing listens on that UDP port" if udp else "TCP RST"
        return ProbeError("refused", f"{what}: connection refused ({how})", errno_name=name)
    if code in ICMP_ERRNOS:
        return ProbeError("icmp", f"{what}: {ICMP_ERRNOS[code]}", errno_name=name)
    if code in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return ProbeError("reset", f"{what}: connection reset by peer", errno_name=name)
    return ProbeError("oserror", f"{what}: {exc.strerror or exc}", errno_name=name)


@dataclass(frozen=True, slots=True)
class SecureExchange:
    """One DNS exchange over DoQ or DoH and what its TLS session showed."""

    wire: bytes
    """The DNS response as received, without DoQ's length prefix."""
    query_ms: float
    handshake_ms: float | None
    alpn: str | None
    chain: list[bytes]
    """DER certificates as the server sent them (leaf first)."""
    tls_version: str | None = None
    http_status: int | None = None
    http_version: str | None = None
    content_type: str | None = None
