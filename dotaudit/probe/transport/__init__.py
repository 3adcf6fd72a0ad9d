"""All network I/O of the prober, one module per protocol.

===============  ==============================================================
``tcp``          TCP connects (and how they end), send-and-listen exchanges
``plain_dns``    DNS over UDP and TCP; the 2-octet framing TCP and TLS share
``tls``          DNS over TLS: the handshake, then queries on the connection
``doh``          DNS over HTTPS (RFC 8484) with httpx over HTTP/2
``doq``          DNS over QUIC (RFC 9250), and the QUIC Version Negotiation probe
``raw``          raw SYNs with scapy (root only); the probe's only scapy import
``names``        host names to addresses (the system resolver)
``base``         :class:`Deadline`, :class:`ProbeError`, :class:`SecureExchange`
===============  ==============================================================

Every call is bounded by a :class:`Deadline`; sockets run non-blocking and every wait
goes through ``select`` with the time left, so a server that dribbles one byte at a
time cannot stretch a check past its budget. Failures raise :class:`ProbeError` whose
``kind`` classifies what the network did (timeout, refused, icmp, reset, ...) and whose
message is fit for an admin. Reads are capped: DNS messages by their 16-bit length,
anything else by ``MAX_READ``.

Checks reach the network only through the :class:`Transport` of their context, which
counts every connection it opens (a full audit is held to a connection budget).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
from dataclasses import dataclass

import dns.message

from dotaudit.probe.transport import doh, doq, names, plain_dns, raw, tcp, tls
from dotaudit.probe.transport.base import Deadline, ProbeError, SecureExchange
from dotaudit.probe.transport.raw import RawReply, can_send_raw
from dotaudit.probe.transport.tcp import TcpResult
from dotaudit.probe.transport.tls import TlsConnection

ALLOWED_NETWORKS_VARIABLE = "DOTAUDIT_ALLOWED_NETWORKS"
"""When set (comma-separated prefixes), the transport contacts no address outside them:
a lab or an audit confined to known networks can never reach anything else."""

__all__ = [
    "ALLOWED_NETWORKS_VARIABLE",
    "Deadline",
    "ProbeError",
    "RawReply",
    "SecureExchange",
    "TcpResult",
    "TlsConnection",
    "Transport",
    "TransportStats",
    "allowed_networks",
    "can_send_raw",
]


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


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(text: str | None) -> tuple[IpNetwork, ...] | None:
    """The prefixes of :data:`ALLOWED_NETWORKS_VARIABLE`; None when it is unset. A prefix
    that does not parse allows nothing rather than everything."""
    if text is None:
        return None
    found: list[IpNetwork] = []
    for part in text.split(","):
        try:
            found.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            continue
    return tuple(found)


class Transport:
    """The prober's network: one per target run, counting what it opens. Each method is
    its protocol module's function, given this transport's counter."""

    def __init__(self) -> None:
        self.stats = TransportStats()
        self._lock = threading.Lock()
        self._allowed = allowed_networks(os.environ.get(ALLOWED_NETWORKS_VARIABLE))

    def _permit(self, address: str) -> None:
        """Refuse an address outside ``DOTAUDIT_ALLOWED_NETWORKS`` before any packet."""
        if self._allowed is None:
            return
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise ProbeError("policy", f"{address!r} is not an IP address") from None
        if not any(ip.version == net.version and ip in net for net in self._allowed):
            raise ProbeError(
                "policy", f"{address} is outside {ALLOWED_NETWORKS_VARIABLE}: not contacted"
            )

    def _count(self, name: str) -> None:
        # DoH's trace hook counts from httpx's thread.
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def open_tcp(self, address: str, port: int, deadline: Deadline) -> tuple[socket.socket, float]:
        self._permit(address)
        return tcp.open_tcp(self._count, address, port, deadline)

    def tcp_connect(self, address: str, port: int, deadline: Deadline) -> TcpResult:
        self._permit(address)
        return tcp.tcp_connect(self._count, address, port, deadline)

    def tcp_exchange(
        self, address: str, port: int, payloads: list[bytes], deadline: Deadline, listen_s: float
    ) -> tuple[bytes, str, dict[str, float | None]]:
        self._permit(address)
        return tcp.tcp_exchange(self._count, address, port, payloads, deadline, listen_s)

    def tcp_dns(
        self, address: str, port: int, query: dns.message.Message, deadline: Deadline
    ) -> tuple[dns.message.Message, dict[str, float | None]]:
        self._permit(address)
        return plain_dns.tcp_dns(self._count, address, port, query, deadline)

    def udp_dns(
        self, address: str, port: int, query: dns.message.Message, deadline: Deadline
    ) -> tuple[dns.message.Message, float]:
        self._permit(address)
        return plain_dns.udp_dns(self._count, address, port, query, deadline)

    def udp_quic_version_probe(self, address: str, port: int, deadline: Deadline) -> list[int]:
        self._permit(address)
        return doq.udp_quic_version_probe(self._count, address, port, deadline)

    def tls_connect(
        self,
        address: str,
        port: int,
        context: ssl.SSLContext,
        server_name: str | None,
        deadline: Deadline,
        session: ssl.SSLSession | None = None,
    ) -> TlsConnection:
        self._permit(address)
        return tls.tls_connect(self._count, address, port, context, server_name, deadline, session)

    def doq_exchange(
        self,
        address: str,
        port: int,
        wire: bytes,
        deadline: Deadline,
        server_name: str | None,
        verify: bool | str,
    ) -> SecureExchange:
        self._permit(address)
        return doq.doq_exchange(self._count, address, port, wire, deadline, server_name, verify)

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
        self._permit(address)
        return doh.doh_exchange(
            self._count, address, port, wire, deadline, server_name, context, path
        )

    def udp_dns_wire(
        self, address: str, port: int, wire: bytes, deadline: Deadline
    ) -> tuple[bytes, float]:
        self._permit(address)
        return plain_dns.udp_dns_wire(self._count, address, port, wire, deadline)

    def tcp_dns_wire(
        self, address: str, port: int, wire: bytes, deadline: Deadline
    ) -> tuple[bytes, float]:
        self._permit(address)
        return plain_dns.tcp_dns_wire(self._count, address, port, wire, deadline)

    def raw_syn(self, address: str, port: int, timeout: float) -> RawReply:
        self._permit(address)
        return raw.raw_syn(self._count, address, port, timeout)

    def resolve(self, hostname: str, deadline: Deadline) -> list[str]:
        return names.resolve(hostname, deadline)
