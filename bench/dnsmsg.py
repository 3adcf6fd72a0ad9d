"""DNS wire messages for the benchmark capture (RFC 1035, EDNS RFC 6891, padding RFC 7830)."""

from __future__ import annotations

import random
import struct

A, NS, CNAME, PTR, MX, TXT, AAAA, SRV, OPT, HTTPS = 1, 2, 5, 12, 15, 16, 28, 33, 41, 65


def encode_name(name: str) -> bytes:
    if name in ("", "."):
        return b"\x00"
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        out.append(len(raw))
        out += raw
    return bytes(out) + b"\x00"


def opt_record(udp_size: int = 1232, do: bool = False, options: bytes = b"") -> bytes:
    ttl = 0x8000 if do else 0
    return b"\x00" + struct.pack("!HHIH", OPT, udp_size, ttl, len(options)) + options


def padding_option(length: int) -> bytes:
    return struct.pack("!HH", 12, length) + bytes(length)


def query(
    msg_id: int,
    name: str,
    qtype: int,
    edns: bool = True,
    pad_block: int | None = None,
    rd: bool = True,
    qclass: int = 1,
) -> bytes:
    """A query; with ``pad_block`` it is padded to a multiple of that size (RFC 8467)."""
    flags = 0x0100 if rd else 0
    question = encode_name(name) + struct.pack("!HH", qtype, qclass)
    head = struct.pack("!HHHHHH", msg_id, flags, 1, 0, 0, 1 if edns else 0)
    msg = head + question
    if not edns:
        return msg
    if pad_block is None:
        return msg + opt_record()
    bare = len(msg) + 11 + 4
    pad = (-bare) % pad_block
    return msg + opt_record(options=padding_option(pad))


def _rdata(rng: random.Random, qtype: int, name: str) -> tuple[int, bytes]:
    if qtype == AAAA:
        return AAAA, b"\x26\x06\x47\x00" + rng.randbytes(12)
    if qtype == HTTPS:
        params = struct.pack("!HH", 1, 3) + b"\x02h2"  # alpn=h2
        return HTTPS, struct.pack("!H", 1) + b"\x00" + params
    if qtype == PTR:
        return PTR, encode_name("host-" + str(rng.randrange(1, 254)) + ".example.net")
    if qtype == MX:
        return MX, struct.pack("!H", 10) + encode_name("mx1." + name.split(".", 1)[-1])
    if qtype == TXT:
        text = b"v=spf1 include:_spf." + name.encode()[:40] + b" ~all"
        return TXT, bytes([len(text)]) + text
    if qtype == SRV:
        return SRV, struct.pack("!HHH", 0, 5, 443) + encode_name("srv." + name)
    return A, bytes([rng.choice((104, 142, 151, 172, 185)), rng.randrange(256)]) + rng.randbytes(2)


def response(
    rng: random.Random,
    msg_id: int,
    name: str,
    qtype: int,
    edns: bool = True,
    pad_block: int | None = None,
    nxdomain: bool = False,
    answers: int = 1,
    cname: str | None = None,
) -> bytes:
    """A recursive resolver's answer to :func:`query`; optional CNAME in front."""
    rcode = 3 if nxdomain else 0
    question = encode_name(name) + struct.pack("!HH", qtype, 1)
    body = b""
    count = 0
    if not nxdomain:
        owner = b"\xc0\x0c"
        if cname:
            target = encode_name(cname)
            body += owner + struct.pack("!HHIH", CNAME, 1, 300, len(target)) + target
            owner = struct.pack("!H", 0xC000 | (12 + len(question) + 12))
            count += 1
        for _ in range(answers):
            rtype, rdata = _rdata(rng, qtype, name)
            ttl = rng.choice((60, 300, 3600))
            body += owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
            count += 1
    else:
        soa = encode_name("ns1." + name.split(".", 1)[-1]) + encode_name("hostmaster.invalid")
        soa += struct.pack("!IIIII", 2024050101, 7200, 3600, 1209600, 300)
        body += b"\xc0\x0c" + struct.pack("!HHIH", 6, 1, 900, len(soa)) + soa
    head = struct.pack(
        "!HHHHHH", msg_id, 0x8180 | rcode, 1, count, 1 if nxdomain else 0, 1 if edns else 0
    )
    msg = head + question + body
    if not edns:
        return msg
    if pad_block is None:
        return msg + opt_record()
    bare = len(msg) + 11 + 4
    return msg + opt_record(options=padding_option((-bare) % pad_block))


def mdns_query(names: list[tuple[str, int]], unicast: bool = False) -> bytes:
    qclass = 0x8001 if unicast else 1
    out = struct.pack("!HHHHHH", 0, 0, len(names), 0, 0, 0)
    for name, qtype in names:
        out += encode_name(name) + struct.pack("!HH", qtype, qclass)
    return out


def mdns_announce(rng: random.Random, service: str, instance: str, host: str) -> bytes:
    """An unsolicited response: PTR, SRV, TXT and A records, no question section."""
    inst = instance + "." + service
    srv = struct.pack("!HHH", 0, 0, 8009) + encode_name(host)
    txt = b"\x09id=" + rng.randbytes(3).hex().encode()
    addr = b"\xc0\xa8\x01" + bytes([rng.randrange(2, 250)])
    recs = [
        encode_name(service) + struct.pack("!HHI", PTR, 1, 4500) + _len(encode_name(inst)),
        encode_name(inst) + struct.pack("!HHI", SRV, 0x8001, 120) + _len(srv),
        encode_name(inst) + struct.pack("!HHI", TXT, 0x8001, 4500) + _len(txt),
        encode_name(host) + struct.pack("!HHI", A, 0x8001, 120) + _len(addr),
    ]
    return struct.pack("!HHHHHH", 0, 0x8400, 0, len(recs), 0, 0) + b"".join(recs)


def _len(rdata: bytes) -> bytes:
    return struct.pack("!H", len(rdata)) + rdata
