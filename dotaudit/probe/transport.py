"""All network I/O of the prober: TCP/UDP/TLS sockets, DNS exchanges and raw SYNs.

Every call is bounded by a :class:`Deadline`; sockets run non-blocking and every wait
goes through ``select`` with the time left, so a server that dribbles one byte at a
time cannot stretch a check past its budget. Failures raise :class:`ProbeError` whose
``kind`` classifies what the network did (timeout, refused, icmp, reset, ...) and whose
message is fit for an admin. Reads are capped: DNS messages by their 16-bit length,
anything else by ``MAX_READ``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import os
import secrets
import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.message

MAX_READ = 64 * 1024
MAX_MESSAGES_PER_EXCHANGE = 16
"""Unrelated responses skipped while waiting for ours before giving up."""

ICMP_ERRNOS = {
    errno.EHOSTUNREACH: "host unreachable (ICMP host or admin prohibited)",
    errno.ENETUNREACH: "network unreachable (ICMP net unreachable or prohibited)",
    errno.EACCES: "permission denied (ICMP admin prohibited or local firewall)",
    errno.EPERM: "operation not permitted (local firewall)",
}


class ProbeError(Exception):
    """A network step that did not succeed; ``str(exc)`` is the reason shown to users.

    ``kind`` is one of: timeout, refused, icmp, reset, closed, alert, verify, protocol,
    malformed, resolve, oserror.
    """

    def __init__(self, kind: str, message: str, *, errno_name: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.errno_name = errno_name


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


@dataclass
class TransportStats:
    """Connections opened, so that tests can hold a full audit to its connection budget."""

    tcp_connects: int = 0
    tls_handshakes: int = 0
    udp_exchanges: int = 0
    raw_probes: int = 0
    quic_handshakes: int = 0
    https_requests: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "tcp_connects": self.tcp_connects,
            "tls_handshakes": self.tls_handshakes,
            "udp_exchanges": self.udp_exchanges,
            "raw_probes": self.raw_probes,
            "quic_handshakes": self.quic_handshakes,
            "https_requests": self.https_requests,
        }


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _errno_name(code: int | None) -> str | None:
    return errno.errorcode.get(code) if code is not None else None


def classify_oserror(exc: OSError, what: str) -> ProbeError:
    """Map a socket error to a ProbeError kind; the errno name stays in the evidence."""
    code = exc.errno
    name = _errno_name(code)
    if isinstance(exc, TimeoutError) or code == errno.ETIMEDOUT:
        return ProbeError("timeout", f"{what}: timed out", errno_name=name)
    if code == errno.ECONNREFUSED:
        return ProbeError("refused", f"{what}: connection refused (TCP RST)", errno_name=name)
    if code in ICMP_ERRNOS:
        return ProbeError("icmp", f"{what}: {ICMP_ERRNOS[code]}", errno_name=name)
    if code in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return ProbeError("reset", f"{what}: connection reset by peer", errno_name=name)
    return ProbeError("oserror", f"{what}: {exc.strerror or exc}", errno_name=name)


def _wait(sock: socket.socket, readable: bool, deadline: Deadline, what: str) -> None:
    left = deadline.remaining()
    if left > 0:
        rlist, wlist = ([sock], []) if readable else ([], [sock])
        ready = select.select(rlist, wlist, [], left)
        if ready[0] or ready[1]:
            return
    raise ProbeError("timeout", f"timeout after {deadline.elapsed():.1f} s {what}")


def _retry(sock: socket.socket, deadline: Deadline, what: str, op: Any) -> Any:
    """Run a non-blocking socket or SSL operation until it completes or time runs out."""
    while True:
        try:
            return op()
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            _wait(sock, True, deadline, what)
        except ssl.SSLWantWriteError:
            _wait(sock, False, deadline, what)


def _sendall(sock: socket.socket, data: bytes, deadline: Deadline, what: str) -> None:
    view = memoryview(data)
    while view:
        chunk = view
        try:
            sent = _retry(sock, deadline, what, functools.partial(sock.send, chunk))
        except ssl.SSLError as exc:
            raise ProbeError("alert", f"{what}: TLS error ({_ssl_reason(exc)})") from None
        except OSError as exc:
            raise classify_oserror(exc, what) from None
        view = view[sent:]


def _recv_some(sock: socket.socket, limit: int, deadline: Deadline, what: str) -> bytes:
    """Up to ``limit`` bytes; b"" on orderly close."""
    try:
        data: bytes = _retry(sock, deadline, what, lambda: sock.recv(limit))
    except ssl.SSLZeroReturnError:
        return b""
    except ssl.SSLEOFError:
        return b""
    except ssl.SSLError as exc:
        raise ProbeError("alert", f"{what}: TLS error ({_ssl_reason(exc)})") from None
    except ProbeError:
        raise
    except OSError as exc:
        raise classify_oserror(exc, what) from None
    return data


def _recv_exact(sock: socket.socket, size: int, deadline: Deadline, what: str) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = _recv_some(sock, size - got, deadline, what)
        if not chunk:
            raise ProbeError("closed", f"{what}: connection closed by the server")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


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


class Transport:
    """The prober's network: one per target run, counting what it opens."""

    def __init__(self) -> None:
        self.stats = TransportStats()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    # --- TCP -----------------------------------------------------------------------

    def open_tcp(self, address: str, port: int, deadline: Deadline) -> tuple[socket.socket, float]:
        """A connected non-blocking socket and the connect time in ms."""
        self._count("tcp_connects")
        what = f"TCP connect to {_hostport(address, port)}"
        sock = socket.socket(_family(address), socket.SOCK_STREAM)
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
        return sock, _ms(time.monotonic() - start)

    def tcp_connect(self, address: str, port: int, deadline: Deadline) -> TcpResult:
        """Connect and close at once; classify how the connect ended."""
        try:
            sock, connect_ms = self.open_tcp(address, port, deadline)
        except ProbeError as exc:
            klass = CONNECT_CLASS.get(exc.kind, "error")
            return TcpResult(klass, None, exc.errno_name, str(exc))
        sock.close()
        return TcpResult("open", connect_ms)

    def tcp_exchange(
        self,
        address: str,
        port: int,
        payloads: list[bytes],
        deadline: Deadline,
        listen_s: float,
    ) -> tuple[bytes, str, dict[str, float | None]]:
        """Send ``payloads`` (one write each) on a fresh TCP connection, then collect
        what comes back for ``listen_s``. Returns (bytes, end, timings) where ``end`` is
        closed, reset, silent or full."""
        sock, connect_ms = self.open_tcp(address, port, deadline)
        try:
            for data in payloads:
                _sendall(sock, data, deadline, "sending")
            listen = deadline.sub(listen_s)
            received = bytearray()
            end = "silent"
            while len(received) < MAX_READ:
                try:
                    chunk = _recv_some(sock, MAX_READ - len(received), listen, "listening")
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

    def tcp_dns(
        self, address: str, port: int, query: dns.message.Message, deadline: Deadline
    ) -> tuple[dns.message.Message, dict[str, float | None]]:
        """A plaintext DNS exchange over TCP (RFC 7766 framing)."""
        sock, connect_ms = self.open_tcp(address, port, deadline)
        try:
            start = time.monotonic()
            reply = _framed_exchange(sock, query, deadline)
            return reply, {"connect_ms": connect_ms, "query_ms": _ms(time.monotonic() - start)}
        finally:
            sock.close()

    # --- UDP -----------------------------------------------------------------------

    def udp_dns(
        self, address: str, port: int, query: dns.message.Message, deadline: Deadline
    ) -> tuple[dns.message.Message, float]:
        """A plaintext DNS exchange over UDP; ICMP port unreachable surfaces as refused."""
        self._count("udp_exchanges")
        what = f"UDP DNS to {_hostport(address, port)}"
        wire = query.to_wire()
        with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            start = time.monotonic()
            try:
                sock.connect((address, port))
                sock.send(wire)
                for _ in range(MAX_MESSAGES_PER_EXCHANGE):
                    data: bytes = _retry(sock, deadline, "waiting for a UDP answer",
                                         lambda: sock.recv(MAX_READ))  # fmt: skip
                    reply = _parse_reply(data, query)
                    if reply is not None:
                        return reply, _ms(time.monotonic() - start)
            except ProbeError:
                raise
            except OSError as exc:
                raise classify_oserror(exc, what) from None
        raise ProbeError("protocol", f"{what}: only unrelated datagrams came back")

    def udp_quic_version_probe(self, address: str, port: int, deadline: Deadline) -> list[int]:
        """Send a QUIC Initial with a reserved version: a QUIC server must answer with
        Version Negotiation (RFC 9000 §6), listing the versions it speaks."""
        self._count("udp_exchanges")
        what = f"QUIC probe to {_hostport(address, port)}"
        packet = _quic_vn_trigger()
        with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                sock.connect((address, port))
                sock.send(packet)
                for _ in range(MAX_MESSAGES_PER_EXCHANGE):
                    data: bytes = _retry(sock, deadline, "waiting for Version Negotiation",
                                         lambda: sock.recv(MAX_READ))  # fmt: skip
                    versions = _parse_version_negotiation(data, packet)
                    if versions is not None:
                        return versions
            except ProbeError:
                raise
            except OSError as exc:
                raise classify_oserror(exc, what) from None
        raise ProbeError("protocol", f"{what}: datagrams came back but none was QUIC")

    # --- TLS -----------------------------------------------------------------------

    def tls_connect(
        self,
        address: str,
        port: int,
        context: ssl.SSLContext,
        server_name: str | None,
        deadline: Deadline,
        session: ssl.SSLSession | None = None,
    ) -> TlsConnection:
        """TCP connect plus a TLS handshake, each phase timed."""
        sock, connect_ms = self.open_tcp(address, port, deadline)
        self._count("tls_handshakes")
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
            _retry(ssock, deadline, "during the TLS handshake", ssock.do_handshake)
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
            raise ProbeError("alert", f"TLS handshake failed: {_ssl_reason(exc)}") from None
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
            {"connect_ms": connect_ms, "handshake_ms": _ms(time.monotonic() - start)},
        )

    # --- DoQ and DoH ------------------------------------------------------------------

    def doq_exchange(
        self,
        address: str,
        port: int,
        wire: bytes,
        deadline: Deadline,
        server_name: str | None,
        verify: bool | str,
    ) -> SecureExchange:
        """One query on its own QUIC stream (RFC 9250 §4.2) over a new DoQ connection.

        ``verify`` is False, True (system store) or a CA file; a certificate the client
        refuses surfaces as a ProbeError of kind "verify" or "alert".
        """
        try:
            import dns.quic as quic
        except ImportError:  # pragma: no cover - aioquic missing
            raise ProbeError("unsupported", "DoQ needs aioquic, which is not installed") from None
        if not quic.have_quic:
            raise ProbeError("unsupported", "DoQ needs aioquic, which is not installed")
        self._count("quic_handshakes")
        what = f"DoQ to {_hostport(address, port)}"
        factory: Any = quic.SyncQuicManager
        manager: Any = factory(verify_mode=verify, server_name=server_name)
        try:
            with manager:
                start = time.monotonic()
                connection: Any = manager.connect(address, port)
                try:
                    stream: Any = connection.make_stream(max(deadline.remaining(), 0.001))
                except dns.exception.Timeout:
                    raise ProbeError("timeout", f"{what}: no QUIC handshake within "
                                     f"{deadline.elapsed():.1f} s") from None  # fmt: skip
                except dns.exception.DNSException as exc:
                    raise ProbeError(
                        "alert", f"{what}: the QUIC handshake failed ({exc})"
                    ) from None
                handshake_ms = _ms(time.monotonic() - start)
                tls = getattr(getattr(connection, "_connection", None), "tls", None)
                chain = _quic_chain(tls)
                alpn = getattr(tls, "alpn_negotiated", None)
                sent = time.monotonic()
                with stream:
                    stream.send(wire, True)
                    try:
                        reply: bytes = stream.receive(max(deadline.remaining(), 0.001))
                    except dns.exception.Timeout:
                        raise ProbeError("timeout", f"{what}: no answer on the stream") from None
                    except dns.exception.DNSException as exc:
                        raise ProbeError("closed", f"{what}: the stream ended ({exc})") from None
                return SecureExchange(reply[: 0xFFFF], _ms(time.monotonic() - sent), handshake_ms,
                                      alpn, chain, "TLSv1.3")  # fmt: skip
        except ProbeError:
            raise
        except OSError as exc:
            raise classify_oserror(exc, what) from None
        except Exception as exc:  # aioquic raises its own types on hostile peers
            raise ProbeError("protocol", f"{what}: {type(exc).__name__}: {exc}") from None

    def doh_exchange(
        self,
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
        self._count("https_requests")
        host = f"[{address}]" if ":" in address else address
        url = f"https://{host}:{port}{path}"
        headers = {
            "content-type": "application/dns-message",
            "accept": "application/dns-message",
            "accept-encoding": "identity",  # the body cap must hold on the octets received
        }
        if server_name:
            headers["host"] = server_name
        what = f"DoH to {_hostport(address, port)}"
        watch = _DohWatch(self._count, deadline)
        extensions: dict[str, Any] = {"trace": watch.trace}
        if server_name:
            extensions["sni_hostname"] = server_name
        try:
            timeout = httpx.Timeout(max(deadline.remaining(), 0.001))
            with (
                httpx.Client(
                    http2=True, verify=context, timeout=timeout, trust_env=False
                ) as client,
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
                    bytes(body), _ms(done - (watch.ready_at or done)), watch.handshake_ms,
                    watch.alpn,
                    _chain(tls, "get_unverified_chain") if tls is not None else [],
                    tls.version() if tls is not None else None,
                    response.status_code, str(response.http_version),
                    str(response.headers.get("content-type", "")),
                )  # fmt: skip
        except ProbeError:
            raise
        except Exception as exc:  # httpx wraps network failures in its own exceptions
            if watch.fired:
                raise ProbeError("timeout", f"{what}: {watch.progress()}, no complete HTTP "
                                 f"answer within {deadline.seconds:.1f} s") from None  # fmt: skip
            raise _doh_error(exc, what, watch.in_handshake()) from None
        finally:
            watch.cancel()

    # --- raw -----------------------------------------------------------------------

    def raw_syn(self, address: str, port: int, timeout: float) -> RawReply:
        """Send one SYN with scapy and describe the first answer (root only)."""
        self._count("raw_probes")
        return _raw_syn(address, port, timeout)

    # --- names ---------------------------------------------------------------------

    def resolve(self, hostname: str, deadline: Deadline) -> list[str]:
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
            raise ProbeError(
                "timeout", f"resolving {hostname}: no answer in {deadline.seconds:.1f} s"
            )
        if failure or not found:
            raise ProbeError(
                "resolve", f"resolving {hostname}: {failure[0] if failure else 'no address'}"
            )
        return found


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _ssl_reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.args[-1] if exc.args else exc).lower().replace("_", " ")


def _parse_reply(data: bytes, query: dns.message.Message) -> dns.message.Message | None:
    """The response if ``data`` answers ``query``; None for an unrelated message."""
    try:
        reply = dns.message.from_wire(data, ignore_trailing=True)
    except (dns.exception.DNSException, ValueError, IndexError, struct.error) as exc:
        raise ProbeError("malformed", f"the answer is not a DNS message ({exc})") from None
    if reply.id != query.id or not (reply.flags & 0x8000):
        return None
    return reply


def _framed_exchange(
    sock: socket.socket, query: dns.message.Message, deadline: Deadline
) -> dns.message.Message:
    wire = query.to_wire()
    _sendall(sock, struct.pack("!H", len(wire)) + wire, deadline, "sending the DNS query")
    for _ in range(MAX_MESSAGES_PER_EXCHANGE):
        reply = _parse_reply(read_framed(sock, deadline), query)
        if reply is not None:
            return reply
    raise ProbeError("protocol", "no response with the query's ID came back")


def read_framed(sock: socket.socket, deadline: Deadline) -> bytes:
    """One 2-octet-length-prefixed DNS message (RFC 7766 §8)."""
    (size,) = struct.unpack("!H", _recv_exact(sock, 2, deadline, "waiting for a DNS response"))
    return _recv_exact(sock, size, deadline, "reading a DNS response")


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
        return _chain(self.sock, "get_unverified_chain")

    def verified_chain(self) -> list[bytes]:
        """DER certificates of the path OpenSSL built (leaf to trust anchor)."""
        return _chain(self.sock, "get_verified_chain")

    def query(
        self, query: dns.message.Message, deadline: Deadline
    ) -> tuple[dns.message.Message, float]:
        """One DNS exchange on this connection; returns the response and its time in ms."""
        start = time.monotonic()
        reply = _framed_exchange(self.sock, query, deadline)
        return reply, _ms(time.monotonic() - start)

    def send(self, data: bytes, deadline: Deadline) -> None:
        _sendall(self.sock, data, deadline, "sending")

    def read_message(self, deadline: Deadline) -> bytes:
        return read_framed(self.sock, deadline)

    def send_framed(self, wires: list[bytes], deadline: Deadline) -> None:
        """Several DNS messages, each with its length prefix, in one write (pipelining)."""
        _sendall(self.sock, b"".join(frame(w) for w in wires), deadline, "sending DNS queries")

    def exchange_wire(self, wire: bytes, query_id: int, deadline: Deadline) -> tuple[bytes, float]:
        """Send one DNS message as given (its exact octets matter: padding) and return the
        raw response with ``query_id``, unparsed, and the time in ms."""
        start = time.monotonic()
        self.send_framed([wire], deadline)
        for _ in range(MAX_MESSAGES_PER_EXCHANGE):
            data = read_framed(self.sock, deadline)
            if len(data) >= 12 and struct.unpack_from("!H", data)[0] == query_id and data[2] & 0x80:
                return data, _ms(time.monotonic() - start)
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
                chunk = _recv_some(self.sock, MAX_READ, deadline, "waiting for the idle close")
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


def frame(wire: bytes) -> bytes:
    """The 2-octet length prefix of DNS over TCP and TLS (RFC 7766 §8, RFC 7858 §3.3)."""
    if len(wire) > 0xFFFF:
        raise ProbeError("protocol", "a DNS message is limited to 65535 octets")
    return struct.pack("!H", len(wire)) + wire


def _chain(sock: ssl.SSLSocket, method: str) -> list[bytes]:
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


def _quic_vn_trigger() -> bytes:
    # 0x?a?a?a?a versions are reserved to force Version Negotiation (RFC 9000 §15).
    version = 0x1A2A3A4A
    dcid, scid = secrets.token_bytes(8), secrets.token_bytes(8)
    head = bytes([0xC0]) + struct.pack("!I", version) + bytes([8]) + dcid + bytes([8]) + scid
    return head + bytes(1200 - len(head))  # Initial datagrams must be >= 1200 octets


def _parse_version_negotiation(data: bytes, sent: bytes) -> list[int] | None:
    if len(data) < 7 or not data[0] & 0x80 or data[1:5] != b"\0\0\0\0":
        return None
    pos = 5
    dcid_len = data[pos]
    pos += 1 + dcid_len
    if pos >= len(data):
        return None
    scid_len = data[pos]
    pos += 1 + scid_len
    body = data[pos:]
    return [struct.unpack("!I", body[i : i + 4])[0] for i in range(0, len(body) - 3, 4)]


@dataclass(frozen=True, slots=True)
class RawReply:
    """What answered a raw SYN: syn-ack, rst, icmp or none."""

    kind: str
    ttl: int | None = None
    ip_id: int | None = None
    icmp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ttl": self.ttl, "ip_id": self.ip_id, "icmp": self.icmp}


def can_send_raw() -> bool:
    return os.geteuid() == 0


def _raw_syn(address: str, port: int, timeout: float) -> RawReply:
    # scapy is imported here only: it is slow to load and needs root to send.
    from scapy.config import conf
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.sendrecv import sr1
    from scapy.supersocket import L3RawSocket

    conf.verb = 0
    sport = 20000 + secrets.randbelow(40000)
    syn = TCP(sport=sport, dport=port, flags="S", seq=secrets.randbelow(2**32))
    packet: Any = IPv6(dst=address) / syn if ":" in address else IP(dst=address) / syn
    loopback = address.startswith("127.") or address == "::1"
    saved = conf.L3socket
    try:
        if loopback:
            conf.L3socket = L3RawSocket  # the default L3 socket cannot see replies on lo
        answer = sr1(packet, timeout=max(timeout, 0.05), verbose=0)
    except OSError as exc:
        raise classify_oserror(exc, f"raw SYN to {_hostport(address, port)}") from None
    finally:
        conf.L3socket = saved
    if answer is None:
        return RawReply("none")
    ip_id = int(answer.id) if IP in answer else None
    ttl = int(answer.ttl) if IP in answer else int(answer.hlim)
    if TCP in answer and answer[TCP].sport == port:
        flags = str(answer[TCP].flags)
        kind = "syn-ack" if "S" in flags and "A" in flags else ("rst" if "R" in flags else flags)
        return RawReply(kind, ttl, ip_id)
    if ICMP in answer:
        return RawReply("icmp", ttl, ip_id, f"type {answer[ICMP].type} code {answer[ICMP].code}")
    return RawReply("other", ttl, ip_id, answer.summary())


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


def _quic_chain(tls: Any) -> list[bytes]:
    # aioquic keeps the peer's certificates on its TLS context (no public accessor).
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf = getattr(tls, "_peer_certificate", None)
    rest = getattr(tls, "_peer_certificate_chain", None) or []
    certs = ([leaf] if leaf is not None else []) + list(rest)[:9]
    return [c.public_bytes(Encoding.DER) for c in certs]


class _DohWatch:
    """httpcore's trace hook for one DoH request: counts the TCP connects and TLS
    handshakes it makes, times the handshake, keeps the TLS socket for its certificates
    and ALPN, and shuts the socket down when the deadline passes."""

    def __init__(self, count: Any, deadline: Deadline) -> None:
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
                self.handshake_ms = _ms(self.ready_at - (self.tls_started or self.ready_at))
            elif isinstance(sock, socket.socket):
                self._adopt(sock)

    def in_handshake(self) -> bool:
        return self.tls_started is not None and self.ready_at is None

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
        return ProbeError(kind, f"{what}: TLS failed {phase}: {_ssl_reason(root)}")
    if isinstance(root, OSError):
        return classify_oserror(root, what)
    name = type(exc).__name__
    if "Timeout" in name:
        return ProbeError("timeout", f"{what}: {name} ({exc})")
    return ProbeError("protocol", f"{what}: {name}: {exc}")
