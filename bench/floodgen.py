"""Flood captures for the memory benchmark (bench/floods.py), written frame by frame.

    .venv/bin/python bench/floodgen.py syn853 1000000 -o bench/out/flood-syn853-1000000.pcap

Each kind is what a hostile or broken network hands an auditor. Frames are built with
``struct`` and streamed to the file in chunks, so writing ten million of them takes no
more memory than writing ten.

- ``syn853``: COUNT SYNs to port 853, each from its own client address and port (spoofed
  sources, or a host retrying forever): COUNT unanswered DoT attempts.
- ``dns_clients``: COUNT UDP/53 queries, each from its own client address, never answered.
- ``busy_clients``: COUNT UDP/53 queries from ``BUSY_CLIENTS`` clients, each asking for
  names of its own (A, AAAA and HTTPS), every other client padding its queries: a large
  network rather than a hostile one, in which every group a detector keeps per client
  fills its samples (frames, names, query types) and the groups' caps are reached.
- ``dot_half_open``: COUNT DoT connections that complete the TCP handshake and send a
  ClientHello that the server acknowledges and never answers (5 frames each).

Clients send at ``RATE`` packets per second of capture time (default 50,000), so every
flow of a 1M flood is still within the flow table's idle timeouts when the flood ends.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from dnsmsg import query
from tlsmsg import client_hello, record
from wire import PCAP_HEADER, PCAP_RECORD, fold, ones_sum

KINDS = ("syn853", "dns_clients", "dot_half_open", "busy_clients")
START_S = 1_714_564_800  # 2024-05-01T12:00:00Z
DEFAULT_RATE = 50_000
RESOLVERS = tuple(
    bytes(a) for a in ((1, 1, 1, 1), (8, 8, 8, 8), (9, 9, 9, 9), (149, 112, 112, 112))
)
NAMES = ("example.com", "example.net", "example.org", "www.example.com")

_ETH_TO_SERVER = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
_ETH_TO_CLIENT = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIHHHH")
_UDP = struct.Struct("!HHHH")
TCP_PROTO = 6
UDP_PROTO = 17
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def client_address(index: int) -> bytes:
    """A distinct address per index (10.0.0.0/8 holds 16M of them)."""
    return (0x0A000000 + 1 + index % 0xFFFFFE).to_bytes(4, "big")


def client_port(index: int) -> int:
    return 1024 + (index * 7919) % 64000


def _ipv4(src: bytes, dst: bytes, proto: int, ident: int, l4: bytes, ttl: int) -> bytes:
    total = 20 + len(l4)
    csum = ~fold(0x4500 + 0x4000 + total + ident + (ttl << 8) + proto + ones_sum(src + dst))
    return _IPV4.pack(0x45, 0, total, ident, 0x4000, ttl, proto, csum & 0xFFFF, src, dst) + l4


def tcp_frame(
    src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int,
    payload: bytes = b"", *, to_server: bool = True,
) -> bytes:  # fmt: skip
    """Ethernet + IPv4 + a 20-byte TCP header (valid checksums) + ``payload``."""
    seg = _TCP.pack(sport, dport, seq, ack, (5 << 12) | flags, 64240, 0, 0) + payload
    csum = ~fold(ones_sum(src + dst) + TCP_PROTO + len(seg) + ones_sum(seg)) & 0xFFFF
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    eth = _ETH_TO_SERVER if to_server else _ETH_TO_CLIENT
    return eth + _ipv4(src, dst, TCP_PROTO, seq & 0xFFFF, seg, 64 if to_server else 57)


def udp_frame(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    csum = ~fold(ones_sum(src + dst) + UDP_PROTO + length + sport + dport + length
                 + ones_sum(payload)) & 0xFFFF  # fmt: skip
    l4 = _UDP.pack(sport, dport, length, csum or 0xFFFF) + payload
    return _ETH_TO_SERVER + _ipv4(src, dst, UDP_PROTO, sport, l4, 64)


def syn853(count: int) -> Iterator[bytes]:
    for i in range(count):
        yield tcp_frame(client_address(i), client_port(i), RESOLVERS[i % 4], 853, i * 1009, 0, SYN)


def dns_clients(count: int) -> Iterator[bytes]:
    for i in range(count):
        message = query(i & 0xFFFF, f"q{i % 1000}.{NAMES[i % 4]}", 1)
        yield udp_frame(client_address(i), client_port(i), RESOLVERS[i % 4], 53, message)


BUSY_CLIENTS = 20_000
_BUSY_QTYPES = (1, 28, 65)


def busy_clients(count: int) -> Iterator[bytes]:
    for i in range(count):
        client, turn = i % BUSY_CLIENTS, i // BUSY_CLIENTS
        name = f"h{turn}.c{client}.{NAMES[client % 4]}"
        pad = 128 if client % 2 else None
        message = query(i & 0xFFFF, name, _BUSY_QTYPES[turn % 3], True, pad)
        yield udp_frame(client_address(client), client_port(i), RESOLVERS[client % 4], 53, message)


def dot_half_open(count: int) -> Iterator[bytes]:
    """Five frames per connection: SYN, SYN/ACK, ACK, ClientHello, the server's ACK."""
    rng = random.Random(7)
    hellos = [
        record(22, client_hello(rng, sni, profile="openssl", alpn=("dot",)), 0x0301)
        for sni in ("one.one.one.one", "dns.google", "dns.quad9.net", None)
    ]
    for i in range(count):
        client, cport, server = client_address(i), client_port(i), RESOLVERS[i % 4]
        c_isn, s_isn = (i * 1009) & 0xFFFFFFFF, (i * 7717 + 13) & 0xFFFFFFFF
        hello = hellos[i % 4]
        yield tcp_frame(client, cport, server, 853, c_isn, 0, SYN)
        yield tcp_frame(server, 853, client, cport, s_isn, c_isn + 1, SYN | ACK, to_server=False)
        yield tcp_frame(client, cport, server, 853, c_isn + 1, s_isn + 1, ACK)
        yield tcp_frame(client, cport, server, 853, c_isn + 1, s_isn + 1, ACK | PSH, hello)
        yield tcp_frame(
            server, 853, client, cport, s_isn + 1, c_isn + 1 + len(hello), ACK, to_server=False
        )


def frames_of(kind: str, count: int) -> Iterator[bytes]:
    if kind == "syn853":
        return syn853(count)
    if kind == "dns_clients":
        return dns_clients(count)
    if kind == "dot_half_open":
        return dot_half_open(count)
    if kind == "busy_clients":
        return busy_clients(count)
    raise ValueError(f"unknown flood {kind!r}; kinds are {', '.join(KINDS)}")


def write(path: Path, kind: str, count: int, rate: int = DEFAULT_RATE) -> int:
    """Write the flood to ``path``; returns the number of frames."""
    pack = PCAP_RECORD.pack
    gap_us = max(1, 1_000_000 // rate)
    t_us = START_S * 1_000_000
    frames = 0
    buf: list[bytes] = []
    with path.open("wb") as out:
        out.write(PCAP_HEADER)
        for frame in frames_of(kind, count):
            n = len(frame)
            buf.append(pack(t_us // 1_000_000, t_us % 1_000_000, n, n))
            buf.append(frame)
            t_us += gap_us
            frames += 1
            if len(buf) >= 32768:
                out.write(b"".join(buf))
                buf.clear()
        out.write(b"".join(buf))
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("count", type=int, help="SYNs, queries or connections")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE, help="packets per second")
    args = parser.parse_args(argv)
    if args.count < 1 or args.rate < 1:
        parser.error("count and rate must be positive")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    frames = write(args.output, args.kind, args.count, args.rate)
    took = time.perf_counter() - started
    print(f"wrote {frames} frames to {args.output} in {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
