"""DNS over HTTPS (RFC 8484): one POST over HTTP/2 with httpx, under a watchdog."""

from __future__ import annotations

import contextlib
import importlib
import socket
import ssl
import threading
import time
from typing import Any

from dotaudit.model.endpoint import host_port
from dotaudit.probe.transport._sockets import ms, ssl_reason
from dotaudit.probe.transport.base import (
    Count,
    Deadline,
    ProbeError,
    SecureExchange,
    classify_oserror,
)
from dotaudit.probe.transport.tls import peer_chain


def doh_exchange(
    count: Count,
    address: str,
    port: int,
    wire: bytes,
    deadline: Deadline,
    server_name: str | None,
    context: ssl.SSLContext,
    path: str = "/dns-query",
) -> SecureExchange:
    """One RFC 8484 POST over HTTP/2 (httpx), to the address, with SNI and Host set
    to ``server_name``. httpx's timeouts bound each read, not the exchange, so a
    watchdog shuts the socket down at the deadline; connections are counted as
    httpcore really makes them."""
    try:
        httpx: Any = importlib.import_module("httpx")
        importlib.import_module("h2")
    except ImportError:
        raise ProbeError(
            "unsupported", "DoH needs httpx with HTTP/2 (httpx[http2]), which is not installed"
        ) from None
    count("https_requests")
    host = f"[{address}]" if ":" in address else address
    url = f"https://{host}:{port}{path}"
    headers = {
        "content-type": "application/dns-message",
        "accept": "application/dns-message",
        "accept-encoding": "identity",  # the body cap must hold on the octets received
    }
    if server_name:
        headers["host"] = server_name
    what = f"DoH to {host_port(address, port)}"
    watch = _DohWatch(count, deadline)
    extensions: dict[str, Any] = {"trace": watch.trace}
    if server_name:
        extensions["sni_hostname"] = server_name
    try:
        timeout = httpx.Timeout(max(deadline.remaining(), 0.001))
        with (
            httpx.Client(http2=True, verify=context, timeout=timeout, trust_env=False) as client,
            client.stream(
                "POST", url, content=wire, headers=headers, extensions=extensions
            ) as response,  # fmt: skip
        ):
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > 0xFFFF:
                    raise ProbeError("protocol", f"{what}: the body exceeds 65535 octets")
            done = time.monotonic()
            tls = watch.tls
            return SecureExchange(
                bytes(body), ms(done - (watch.ready_at or done)), watch.handshake_ms,
                watch.alpn,
                peer_chain(tls, "get_unverified_chain") if tls is not None else [],
                tls.version() if tls is not None else None,
                response.status_code, str(response.http_version),
                str(response.headers.get("content-type", "")),
            )  # fmt: skip
    except ProbeError as exc:
        exc.phase = exc.phase or watch.phase()
        raise
    except Exception as exc:  # httpx wraps network failures in its own exceptions
        if watch.fired:
            raise ProbeError("timeout", f"{what}: {watch.progress()}, no complete HTTP "
                             f"answer within {deadline.seconds:.1f} s",
                             phase=watch.phase()) from None  # fmt: skip
        error = _doh_error(exc, what, watch.in_handshake())
        error.phase = watch.phase()
        raise error from None
    finally:
        watch.cancel()


class _DohWatch:
    """httpcore's trace hook for one DoH request: counts the TCP connects and TLS
    handshakes it makes, times the handshake, keeps the TLS socket for its certificates
    and ALPN, and shuts the socket down when the deadline passes."""

    def __init__(self, count: Count, deadline: Deadline) -> None:
        self._count = count
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.tls: ssl.SSLSocket | None = None
        self.alpn: str | None = None
        self.fired = False
        self.tls_started: float | None = None
        self.handshake_ms: float | None = None
        self.ready_at: float | None = None
        self._timer = threading.Timer(deadline.remaining(), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.started":
            self._count("tcp_connects")
        elif event == "connection.start_tls.started":
            self._count("tls_handshakes")
            self.tls_started = time.monotonic()
        elif event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, ssl.SSLSocket):
                self.tls = sock
                self.alpn = sock.selected_alpn_protocol()
                self.ready_at = time.monotonic()
                self.handshake_ms = ms(self.ready_at - (self.tls_started or self.ready_at))
            elif isinstance(sock, socket.socket):
                self._adopt(sock)

    def in_handshake(self) -> bool:
        return self.tls_started is not None and self.ready_at is None

    def phase(self) -> str:
        """How far the exchange got, as :attr:`ProbeError.phase` names it."""
        if self.ready_at is not None:
            return "exchange"
        return "handshake" if self.tls_started is not None else "connect"

    def progress(self) -> str:
        """How far the exchange got, for a timeout's reason."""
        if self.ready_at is not None:
            return f"TLS up (ALPN {self.alpn or 'none'})"
        if self.tls_started is not None:
            return "TCP connected, TLS handshake unfinished"
        return "no TCP connection"

    def _adopt(self, sock: socket.socket) -> None:
        # A duplicate descriptor of our own: it survives the TLS wrap (which detaches the
        # plain socket object) and can never name another connection's socket later.
        with self._lock:
            if self._sock is not None:
                self._sock.close()
            self._sock = sock.dup()
            if self.fired:
                self._shutdown()

    def _expire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        # Shutting the connection down wakes the read blocked in the requesting thread.
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _doh_error(exc: BaseException, what: str, in_handshake: bool) -> ProbeError:
    """Classify what httpx raised by the OS or TLS error at the bottom of its chain
    (httpx wraps httpcore's exception, which wraps the socket's)."""
    root: BaseException | None = exc
    for _ in range(8):
        if root is None or isinstance(root, OSError):
            break
        root = root.__cause__ or root.__context__
    if isinstance(root, ssl.SSLCertVerificationError):
        return ProbeError("verify", f"{what}: certificate verification failed: "
                          f"{root.verify_message}")  # fmt: skip
    phase = "during the TLS handshake" if in_handshake else "after the TLS handshake"
    if isinstance(root, (ssl.SSLZeroReturnError, ssl.SSLEOFError)):
        return ProbeError("closed", f"{what}: the server closed the connection {phase}")
    if isinstance(root, ssl.SSLError):
        kind = "alert" if in_handshake else "protocol"
        return ProbeError(kind, f"{what}: TLS failed {phase}: {ssl_reason(root)}")
    if isinstance(root, OSError):
        return classify_oserror(root, what)
    name = type(exc).__name__
    if "Timeout" in name:
        return ProbeError("timeout", f"{what}: {name} ({exc})")
    return ProbeError("protocol", f"{what}: {name}: {exc}")
