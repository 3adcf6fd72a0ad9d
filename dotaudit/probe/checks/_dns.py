"""Helpers the DNS-level checks share: one live DoT connection, exact-octet exchanges
and the EDNS(0) options they look at (RFC 6891 §6.1.2).

The DNS checks reuse the shared strict-mode handshake's connection. A server may have
closed it while the TLS checks ran (a short idle timeout), so :func:`live` reopens it
once with the same TLS settings; that keeps a full audit within its connection budget.
"""

from __future__ import annotations

import statistics
import struct
from typing import Any

import dns.edns
import dns.exception
import dns.message
import dns.rcode

from dotaudit.probe.base import CheckContext
from dotaudit.probe.transport import ProbeError, TlsConnection

NSID = dns.edns.OptionType.NSID
KEEPALIVE = dns.edns.OptionType.KEEPALIVE
PADDING = dns.edns.OptionType.PADDING
QUERY_BLOCK = 128
"""RFC 8467 §4.1: clients SHOULD pad queries to a multiple of 128 octets."""
RESPONSE_BLOCK = 468
"""RFC 8467 §4.1: servers SHOULD pad responses to a multiple of 468 octets."""


def option(ctx: CheckContext, name: str, default: Any) -> Any:
    """A check option (``--max-idle-wait`` ...) from the run's configuration."""
    value = ctx.config.options.get(name)
    return default if value is None else value


def live(ctx: CheckContext) -> TlsConnection:
    """An open DoT connection for DNS queries: the shared one, or a fresh one made with
    the shared handshake's TLS settings when the server has closed it."""
    cached = ctx.cache.get("conn:dns")
    if isinstance(cached, TlsConnection) and cached.is_open():
        return cached
    info = ctx.handshake()
    shared = info.require()
    if cached is None and shared.is_open():
        ctx.cache["conn:dns"] = shared
        return shared
    if info.context is None:
        raise ProbeError("protocol", "no TLS settings to reconnect with")
    conn = ctx.adopt(ctx.net.tls_connect(ctx.address, ctx.port, info.context, ctx.sni, ctx.op()))
    ctx.cache["conn:dns"] = conn
    ctx.cache["dns_reconnects"] = int(ctx.cache.get("dns_reconnects", 0)) + 1
    return conn


def parse(raw: bytes) -> dns.message.Message:
    try:
        return dns.message.from_wire(raw, ignore_trailing=True)
    except (dns.exception.DNSException, ValueError, IndexError, struct.error) as exc:
        raise ProbeError("malformed", f"the answer is not a DNS message ({exc})") from None


def exchange(
    ctx: CheckContext, conn: TlsConnection, query: dns.message.Message, wire: bytes | None = None
) -> tuple[bytes, dns.message.Message, float]:
    """(raw response, parsed response, ms) for ``query`` sent as ``wire`` (exact octets)."""
    raw, ms = conn.exchange_wire(wire or query.to_wire(), query.id, ctx.op())
    return raw, parse(raw), ms


def options(message: dns.message.Message) -> dict[int, bytes]:
    """EDNS option code -> data (the first of each code)."""
    found: dict[int, bytes] = {}
    for opt in message.options:
        found.setdefault(int(opt.otype), opt.to_wire() or b"")
    return found


def keepalive_units(message: dns.message.Message) -> int | None:
    """The advertised idle timeout in units of 100 ms (RFC 7828 §3.1), None if absent;
    -1 when the option is present with a length other than 2 (a server must send one)."""
    data = options(message).get(KEEPALIVE)
    if data is None:
        return None
    return struct.unpack("!H", data)[0] if len(data) == 2 else -1


def rcode(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


def answers(message: dns.message.Message) -> list[str]:
    """The answer section as sorted ``TYPE rdata`` strings (TTLs left out to compare)."""
    out = []
    for rrset in message.answer:
        out += [f"{dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text()}" for rd in rrset]
    return sorted(out)[:50]


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def keepalive_query(ctx: CheckContext, qname: str | None = None) -> dns.message.Message:
    """A query carrying edns-tcp-keepalive with no data (RFC 7828 §3.2.1)."""
    query = ctx.make_query(qname, pad=QUERY_BLOCK)
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(KEEPALIVE, b"")],
                   pad=QUERY_BLOCK)  # fmt: skip
    return query
