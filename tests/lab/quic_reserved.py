"""A real QUIC client opening with a reserved version (RFC 9000 §15, ``0x?a?a?a?a``):
aioquic offers 0x1a2a3a4a first, so its first Initial (a full ClientHello, protected with
the v1 keys) draws a Version Negotiation from the server, and the client starts over
with v1 on the same socket."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import dns.message

from tests.lab.pki import HOSTNAME

RESERVED_VERSION = 0x1A2A3A4A


def reserved_version_query(address: str, port: int, ca: Path, qname: str) -> dns.message.Message:
    """One DNS-over-QUIC query (ALPN doq) from a client whose first Initial is of
    :data:`RESERVED_VERSION`; returns the answer."""
    from aioquic.asyncio.client import connect
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.packet import QuicProtocolVersion

    async def ask() -> dns.message.Message:
        cfg = QuicConfiguration(
            is_client=True,
            alpn_protocols=["doq"],
            server_name=HOSTNAME,
            supported_versions=[RESERVED_VERSION, QuicProtocolVersion.VERSION_1],
        )
        cfg.load_verify_locations(str(ca))
        async with connect(address, port, configuration=cfg) as client:
            reader, writer = await client.create_stream()
            wire = dns.message.make_query(qname, "A", use_edns=0, id=0).to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            writer.write_eof()
            data = await asyncio.wait_for(reader.read(), 5)
            return dns.message.from_wire(data[2:])

    return asyncio.run(ask())
