"""Plaintext DNS over UDP and TCP, and the 2-octet framing that DNS over TCP and TLS
share (RFC 7766 §8, RFC 7858 §3.3)."""

from __future__ import annotations

import socket
import struct
import time

import dns.exception
import dns.message

from dotaudit.model.endpoint import host_port
from dotaudit.probe.transport._sockets import family, ms, recv_exact, retry, sendall
from dotaudit.probe.transport.base import MAX_READ, Count, Deadline, ProbeError, classify_oserror
from dotaudit.probe.transport.tcp import open_tcp

MAX_MESSAGES_PER_EXCHANGE = 16
"""Unrelated responses skipped while waiting for ours before giving up."""


def frame(wire: bytes) -> bytes:
    """The 2-octet length prefix of DNS over TCP and TLS (RFC 7766 §8, RFC 7858 §3.3)."""
    if len(wire) > 0xFFFF:
        raise ProbeError("protocol", "a DNS message is limited to 65535 octets")
    return struct.pack("!H", len(wire)) + wire


def parse_reply(data: bytes, query: dns.message.Message) -> dns.message.Message | None:
    """The response if ``data`` answers ``query``; None for an unrelated message."""
    try:
        reply = dns.message.from_wire(data, ignore_trailing=True)
    except (dns.exception.DNSException, ValueError, IndexError, struct.error) as exc:
        raise ProbeError("malformed", f"the answer is not a DNS message ({exc})") from None
    if reply.id != query.id or not (reply.flags & 0x8000):
        return None
    return reply


def framed_exchange(
    sock: socket.socket, query: dns.message.Message, deadline: Deadline
) -> dns.message.Message:
    wire = query.to_wire()
    sendall(sock, struct.pack("!H", len(wire)) + wire, deadline, "sending the DNS query")
    for _ in range(MAX_MESSAGES_PER_EXCHANGE):
        reply = parse_reply(read_framed(sock, deadline), query)
        if reply is not None:
            return reply
    raise ProbeError("protocol", "no response with the query's ID came back")


def read_framed(sock: socket.socket, deadline: Deadline) -> bytes:
    """One 2-octet-length-prefixed DNS message (RFC 7766 §8)."""
    (size,) = struct.unpack("!H", recv_exact(sock, 2, deadline, "waiting for a DNS response"))
    return recv_exact(sock, size, deadline, "reading a DNS response")


def udp_dns(
    count: Count, address: str, port: int, query: dns.message.Message, deadline: Deadline
) -> tuple[dns.message.Message, float]:
    """A plaintext DNS exchange over UDP; ICMP port unreachable surfaces as refused."""
    count("udp_exchanges")
    what = f"UDP DNS to {host_port(address, port)}"
    wire = query.to_wire()
    with socket.socket(family(address), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        start = time.monotonic()
        try:
            sock.connect((address, port))
            sock.send(wire)
            for _ in range(MAX_MESSAGES_PER_EXCHANGE):
                data: bytes = retry(sock, deadline, "waiting for a UDP answer",
                                     lambda: sock.recv(MAX_READ))  # fmt: skip
                reply = parse_reply(data, query)
                if reply is not None:
                    return reply, ms(time.monotonic() - start)
        except ProbeError:
            raise
        except OSError as exc:
            raise classify_oserror(exc, what, udp=True) from None
    raise ProbeError("protocol", f"{what}: only unrelated datagrams came back")


def tcp_dns(
    count: Count, address: str, port: int, query: dns.message.Message, deadline: Deadline
) -> tuple[dns.message.Message, dict[str, float | None]]:
    """A plaintext DNS exchange over TCP (RFC 7766 framing)."""
    sock, connect_ms = open_tcp(count, address, port, deadline)
    try:
        start = time.monotonic()
        reply = framed_exchange(sock, query, deadline)
        return reply, {"connect_ms": connect_ms, "query_ms": ms(time.monotonic() - start)}
    finally:
        sock.close()


def _answers(data: bytes, query_id: int) -> bool:
    """``data`` is a DNS response (QR set) to the query with ``query_id``; nothing else
    of it is read, so a response whose records do not parse still comes back whole."""
    if len(data) < 12:
        return False
    return struct.unpack_from("!H", data)[0] == query_id and bool(data[2] & 0x80)


def udp_dns_wire(
    count: Count, address: str, port: int, wire: bytes, deadline: Deadline
) -> tuple[bytes, float]:
    """Send one DNS query as given and return the raw response with its ID, unparsed
    (records a parser refuses are the caller's to judge), and the time in ms."""
    if len(wire) < 12:
        raise ProbeError("protocol", "a DNS query has a 12-octet header")
    count("udp_exchanges")
    what = f"UDP DNS to {host_port(address, port)}"
    query_id = struct.unpack_from("!H", wire)[0]
    with socket.socket(family(address), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        start = time.monotonic()
        try:
            sock.connect((address, port))
            sock.send(wire)
            for _ in range(MAX_MESSAGES_PER_EXCHANGE):
                data: bytes = retry(sock, deadline, "waiting for a UDP answer",
                                     lambda: sock.recv(MAX_READ))  # fmt: skip
                if _answers(data, query_id):
                    return data, ms(time.monotonic() - start)
        except ProbeError:
            raise
        except OSError as exc:
            raise classify_oserror(exc, what) from None
    raise ProbeError("protocol", f"{what}: only unrelated datagrams came back")


def tcp_dns_wire(
    count: Count, address: str, port: int, wire: bytes, deadline: Deadline
) -> tuple[bytes, float]:
    """As :func:`udp_dns_wire` over TCP (RFC 7766 framing): for answers that came back
    truncated over UDP."""
    if len(wire) < 12:
        raise ProbeError("protocol", "a DNS query has a 12-octet header")
    query_id = struct.unpack_from("!H", wire)[0]
    sock, _ = open_tcp(count, address, port, deadline)
    try:
        start = time.monotonic()
        sendall(sock, frame(wire), deadline, "sending the DNS query")
        for _ in range(MAX_MESSAGES_PER_EXCHANGE):
            data = read_framed(sock, deadline)
            if _answers(data, query_id):
                return data, ms(time.monotonic() - start)
        raise ProbeError("protocol", "no response with the query's ID came back")
    finally:
        sock.close()
