"""DNS over QUIC (RFC 9250) through dnspython's aioquic client, and the Version
Negotiation probe that tells whether anything speaks QUIC on a UDP port."""

from __future__ import annotations

import secrets
import socket
import struct
import time
from typing import Any

import dns.exception

from dotaudit.model.endpoint import host_port
from dotaudit.probe.transport._sockets import family, ms, retry
from dotaudit.probe.transport.base import (
    MAX_READ,
    Count,
    Deadline,
    ProbeError,
    SecureExchange,
    classify_oserror,
)
from dotaudit.probe.transport.plain_dns import MAX_MESSAGES_PER_EXCHANGE


def doq_exchange(
    count: Count,
    address: str,
    port: int,
    wire: bytes,
    deadline: Deadline,
    server_name: str | None,
    verify: bool | str,
) -> SecureExchange:
    """One query on its own QUIC stream (RFC 9250 §4.2) over a new DoQ connection.

    ``verify`` is False, True (system store) or a CA file; a certificate the client
    refuses surfaces as a ProbeError of kind "alert", or "protocol" when aioquic only
    sees the connection end (dnspython 2.9 with aioquic 1.7: "UnexpectedEOF").
    """
    try:
        import dns.quic as quic
    except ImportError:  # pragma: no cover - aioquic missing
        raise ProbeError("unsupported", "DoQ needs aioquic, which is not installed") from None
    if not quic.have_quic:
        raise ProbeError("unsupported", "DoQ needs aioquic, which is not installed")
    count("quic_handshakes")
    what = f"DoQ to {host_port(address, port)}"
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
                raise ProbeError("alert", f"{what}: the QUIC handshake failed ({exc})") from None
            handshake_ms = ms(time.monotonic() - start)
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
            return SecureExchange(reply[: 0xFFFF], ms(time.monotonic() - sent), handshake_ms,
                                  alpn, chain, "TLSv1.3")  # fmt: skip
    except ProbeError:
        raise
    except OSError as exc:
        raise classify_oserror(exc, what, udp=True) from None
    except Exception as exc:  # aioquic raises its own types on hostile peers
        raise ProbeError("protocol", f"{what}: {type(exc).__name__}: {exc}") from None


def _quic_chain(tls: Any) -> list[bytes]:
    # aioquic keeps the peer's certificates on its TLS context (no public accessor).
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf = getattr(tls, "_peer_certificate", None)
    rest = getattr(tls, "_peer_certificate_chain", None) or []
    certs = ([leaf] if leaf is not None else []) + list(rest)[:9]
    return [c.public_bytes(Encoding.DER) for c in certs]


def udp_quic_version_probe(count: Count, address: str, port: int, deadline: Deadline) -> list[int]:
    """Send a QUIC Initial with a reserved version: a QUIC server must answer with
    Version Negotiation (RFC 9000 §6), listing the versions it speaks."""
    count("udp_exchanges")
    what = f"QUIC probe to {host_port(address, port)}"
    packet = _quic_vn_trigger()
    with socket.socket(family(address), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.connect((address, port))
            sock.send(packet)
            for _ in range(MAX_MESSAGES_PER_EXCHANGE):
                data: bytes = retry(sock, deadline, "waiting for Version Negotiation",
                                     lambda: sock.recv(MAX_READ))  # fmt: skip
                versions = _parse_version_negotiation(data, packet)
                if versions is not None:
                    return versions
        except ProbeError:
            raise
        except OSError as exc:
            raise classify_oserror(exc, what, udp=True) from None
    raise ProbeError("protocol", f"{what}: datagrams came back but none was QUIC")


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
