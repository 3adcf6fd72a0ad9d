"""DNS over TLS connections: the handshake, and one established connection's exchanges."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import dns.message

from dotaudit.probe.transport._sockets import ms, recv_some, retry, sendall, ssl_reason
from dotaudit.probe.transport.base import (
    MAX_READ,
    Count,
    Deadline,
    ProbeError,
    classify_oserror,
)
from dotaudit.probe.transport.plain_dns import (
    MAX_MESSAGES_PER_EXCHANGE,
    frame,
    framed_exchange,
    read_framed,
)
from dotaudit.probe.transport.tcp import open_tcp


def tls_connect(
    count: Count,
    address: str,
    port: int,
    context: ssl.SSLContext,
    server_name: str | None,
    deadline: Deadline,
    session: ssl.SSLSession | None = None,
) -> TlsConnection:
    """TCP connect plus a TLS handshake, each phase timed; a ProbeError's ``phase`` says
    which of the two failed."""
    try:
        sock, connect_ms = open_tcp(count, address, port, deadline)
    except ProbeError as exc:
        exc.phase = "connect"
        raise
    try:
        return _handshake(count, sock, connect_ms, address, port, context, server_name,
                          deadline, session)  # fmt: skip
    except ProbeError as exc:
        exc.phase = "handshake"
        raise


def _handshake(
    count: Count,
    sock: socket.socket,
    connect_ms: float,
    address: str,
    port: int,
    context: ssl.SSLContext,
    server_name: str | None,
    deadline: Deadline,
    session: ssl.SSLSession | None,
) -> TlsConnection:
    count("tls_handshakes")
    start = time.monotonic()
    try:
        ssock = context.wrap_socket(
            sock,
            server_hostname=server_name,
            do_handshake_on_connect=False,
            session=session,
        )
    except (ssl.SSLError, ValueError, OSError) as exc:
        sock.close()
        raise ProbeError("protocol", f"TLS setup failed: {exc}") from None
    try:
        retry(ssock, deadline, "during the TLS handshake", ssock.do_handshake)
    except ProbeError:
        ssock.close()
        raise
    except ssl.SSLCertVerificationError as exc:
        ssock.close()
        raise ProbeError(
            "verify", f"certificate verification failed: {exc.verify_message}"
        ) from None
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        ssock.close()
        raise ProbeError(
            "closed", "the server closed the connection during the TLS handshake"
        ) from None
    except ssl.SSLError as exc:
        ssock.close()
        raise ProbeError("alert", f"TLS handshake failed: {ssl_reason(exc)}") from None
    except OSError as exc:
        ssock.close()
        err = classify_oserror(exc, "during the TLS handshake")
        if err.kind == "refused":  # a RST after the SYN-ACK is a reset, not a refusal
            err.kind = "reset"
        raise err from None
    return TlsConnection(
        ssock,
        address,
        port,
        {"connect_ms": connect_ms, "handshake_ms": ms(time.monotonic() - start)},
    )


@dataclass
class TlsConnection:
    """An established TLS connection; closed by whoever opened it (the context cache)."""

    sock: ssl.SSLSocket
    address: str
    port: int
    timings: dict[str, float | None]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str | None:
        return self.sock.version()

    @property
    def cipher(self) -> str | None:
        info = self.sock.cipher()
        return info[0] if info else None

    @property
    def alpn(self) -> str | None:
        return self.sock.selected_alpn_protocol()

    @property
    def session_reused(self) -> bool:
        return bool(self.sock.session_reused)

    def chain(self) -> list[bytes]:
        """DER certificates as the server sent them (leaf first)."""
        return peer_chain(self.sock, "get_unverified_chain")

    def verified_chain(self) -> list[bytes]:
        """DER certificates of the path OpenSSL built (leaf to trust anchor)."""
        return peer_chain(self.sock, "get_verified_chain")

    def query(
        self, query: dns.message.Message, deadline: Deadline
    ) -> tuple[dns.message.Message, float]:
        """One DNS exchange on this connection; returns the response and its time in ms."""
        start = time.monotonic()
        reply = framed_exchange(self.sock, query, deadline)
        return reply, ms(time.monotonic() - start)

    def send(self, data: bytes, deadline: Deadline) -> None:
        sendall(self.sock, data, deadline, "sending")

    def read_message(self, deadline: Deadline) -> bytes:
        return read_framed(self.sock, deadline)

    def send_framed(self, wires: list[bytes], deadline: Deadline) -> None:
        """Several DNS messages, each with its length prefix, in one write (pipelining)."""
        sendall(self.sock, b"".join(frame(w) for w in wires), deadline, "sending DNS queries")

    def exchange_wire(self, wire: bytes, query_id: int, deadline: Deadline) -> tuple[bytes, float]:
        """Send one DNS message as given (its exact octets matter: padding) and return the
        raw response with ``query_id``, unparsed, and the time in ms."""
        start = time.monotonic()
        self.send_framed([wire], deadline)
        for _ in range(MAX_MESSAGES_PER_EXCHANGE):
            data = read_framed(self.sock, deadline)
            if len(data) >= 12 and struct.unpack_from("!H", data)[0] == query_id and data[2] & 0x80:
                return data, ms(time.monotonic() - start)
        raise ProbeError("protocol", "no response with the query's ID came back")

    def is_open(self) -> bool:
        """False once the server has closed or reset the connection (checked without
        waiting); stray bytes on an idle connection are dropped."""
        try:
            ready = select.select([self.sock], [], [], 0)[0]
        except (OSError, ValueError):
            return False
        if not ready and not self.sock.pending():
            return True
        try:
            return bool(self.sock.recv(MAX_READ))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True
        except (ssl.SSLError, OSError, ValueError):
            return False

    def wait_closed(self, deadline: Deadline) -> tuple[str, float]:
        """Stay idle until the server ends the connection or ``deadline`` passes.

        Returns (how it ended: "closed", "reset" or "open", seconds waited). Anything the
        server sends meanwhile is read and dropped, at most ``MAX_READ`` octets.
        """
        start = time.monotonic()
        dropped = 0
        while dropped <= MAX_READ:
            try:
                chunk = recv_some(self.sock, MAX_READ, deadline, "waiting for the idle close")
            except ProbeError as exc:
                if exc.kind == "timeout":
                    return "open", time.monotonic() - start
                if exc.kind in ("reset", "closed", "alert"):
                    return "reset", time.monotonic() - start
                raise
            if not chunk:
                return "closed", time.monotonic() - start
            dropped += len(chunk)
        raise ProbeError("protocol", "the server kept sending on an idle connection")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def peer_chain(sock: ssl.SSLSocket, method: str) -> list[bytes]:
    # Python 3.11 has these only on the private _sslobj (public from 3.13).
    sslobj = getattr(sock, "_sslobj", None)
    getter = getattr(sslobj, method, None)
    if getter is None:
        leaf = sock.getpeercert(binary_form=True)
        return [leaf] if leaf else []
    certs = getter() or []
    out: list[bytes] = []
    for cert in certs:
        if isinstance(cert, bytes):
            out.append(cert)
        else:
            out.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    return out
