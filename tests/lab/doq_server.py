"""A small DNS-over-QUIC server (RFC 9250) answering from the lab's local data.

ALPN "doq"; one query per client-initiated bidirectional stream, each message with a
2-byte length prefix; the response keeps message ID 0 and is padded with EDNS(0)
padding to 468-byte blocks (RFC 8467). Prints ``READY host port`` once bound.

Run: ``python -m tests.lab.doq_server --host 127.53.3.1 --port 853 --cert C --key K``
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived

from tests.lab.zone import zone_text

MAX_STREAM_BUFFER = 65537  # a 2-byte length prefix caps one message at 65535 bytes
PAD_BLOCK = 468


class Answerer:
    def __init__(self) -> None:
        self.zone = dns.zone.from_text(
            zone_text(), origin=".", relativize=False, check_origin=False
        )

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0] if query.question else None
        # A question is an empty RRset, so it is falsy: compare with None.
        node = self.zone.get_node(question.name) if question is not None else None
        rrset = None
        if node is not None and question is not None:
            rrset = node.get_rdataset(question.rdclass, question.rdtype)
        if question is not None:
            # The query log the sample captures' truth files are checked against.
            print(f"query {question.name} {dns.rdatatype.to_text(question.rdtype)}",
                  file=sys.stderr, flush=True)  # fmt: skip
        if question is None:
            response.set_rcode(dns.rcode.FORMERR)
        elif node is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif rrset is not None:
            response.answer.append(dns.rrset.from_rdata_list(question.name, rrset.ttl, list(rrset)))
        # RFC 9250 §5.4: DoQ responses should be padded whatever the query carried.
        response.use_edns(0, payload=1232, pad=PAD_BLOCK)
        response.id = 0
        out: bytes = response.to_wire()
        return out


class DoqProtocol(QuicConnectionProtocol):
    answerer: Answerer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffers: dict[int, bytes] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        if not isinstance(event, StreamDataReceived):
            return
        buf = self._buffers.get(event.stream_id, b"") + event.data
        if len(buf) > MAX_STREAM_BUFFER:
            self._quic.reset_stream(event.stream_id, 0x2)  # DOQ_PROTOCOL_ERROR
            self._buffers.pop(event.stream_id, None)
            return
        self._buffers[event.stream_id] = buf
        if not event.end_stream:
            return
        del self._buffers[event.stream_id]
        if len(buf) < 2 or struct.unpack("!H", buf[:2])[0] != len(buf) - 2:
            self._quic.reset_stream(event.stream_id, 0x2)
            return
        try:
            wire = self.answerer.answer(buf[2:])
        except Exception:  # a hostile query must not take the server down
            self._quic.reset_stream(event.stream_id, 0x2)
            self.transmit()
            return
        self._quic.send_stream_data(event.stream_id, struct.pack("!H", len(wire)) + wire, True)
        self.transmit()


async def run(host: str, port: int, cert: str, key: str) -> None:
    config = QuicConfiguration(is_client=False, alpn_protocols=["doq"])
    config.load_cert_chain(cert, key)
    DoqProtocol.answerer = Answerer()
    server = await serve(host, port, configuration=config, create_protocol=DoqProtocol)
    print(f"READY {host} {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=853)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    asyncio.run(run(args.host, args.port, args.cert, args.key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
