"""h2c and HPACK. Oracles: RFC 7541 Appendix C examples, RFC 8484 §4.1 (the ``dns``
parameter, its example query), tshark's HPACK decoder (Wireshark via nghttp2) for every
Huffman code, and the corpus capture suricata-verify/doh-h2c-port80 (Suricata's doh2
events and tshark's 4 decoded responses, see MANIFEST.md)."""

from __future__ import annotations

import base64
import contextlib
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import dns.edns
import dns.message
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, Ether, wrpcap

from dotaudit.dissect.hpack import (
    MAX_TABLE_SIZE,
    HpackDecoder,
    huffman_code,
    huffman_decode,
)
from dotaudit.dissect.http2 import (
    MAX_BODY_BYTES,
    MAX_FRAME_BUFFER,
    MAX_HEADER_BLOCK,
    MAX_STREAMS,
    PREFACE,
    H2Body,
    H2cConnection,
    H2Item,
    H2Request,
    dns_param,
    looks_like_h2c,
)
from dotaudit.errors import MalformedError
from dotaudit.pipeline import CaptureRun
from tests.conftest import corpus_path
from tests.fuzzing import examples

DATA, HEADERS, SETTINGS, PUSH_PROMISE, PING, WINDOW_UPDATE, CONTINUATION = 0, 1, 4, 5, 6, 8, 9
RST_STREAM = 3
# Explicit MACs: scapy must never resolve link addresses on the host network.
MAC_C, MAC_S = "02:00:00:00:00:01", "02:00:00:00:00:02"
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20

# -- builders ---------------------------------------------------------------------------


def frame_header(ftype: int, flags: int, stream: int, length: int) -> bytes:
    return struct.pack("!I", length)[1:] + bytes([ftype, flags]) + struct.pack("!I", stream)


def frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return frame_header(ftype, flags, stream, len(payload)) + payload


def huffman_encode(data: bytes) -> bytes:
    bits = 0
    nbits = 0
    for byte in data:
        code, length = huffman_code(byte)
        bits = (bits << length) | code
        nbits += length
    pad = -nbits % 8
    bits = (bits << pad) | ((1 << pad) - 1)
    return (bits).to_bytes((nbits + pad) // 8, "big")


def hpack_int(value: int, prefix: int, first: int) -> bytes:
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes([first | value])
    out = bytearray([first | mask])
    value -= mask
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(value: bytes, huffman: bool = False) -> bytes:
    if huffman:
        encoded = huffman_encode(value)
        return hpack_int(len(encoded), 7, 0x80) + encoded
    return hpack_int(len(value), 7, 0) + value


def literal(name: bytes, value: bytes, *, index: bool = False, huffman: bool = False) -> bytes:
    """Literal header with a literal name, with (0x40) or without (0x00) indexing."""
    return bytes([0x40 if index else 0x00]) + hpack_str(name, huffman) + hpack_str(value, huffman)


def block(headers: list[tuple[bytes, bytes]], **kw: bool) -> bytes:
    return b"".join(literal(n, v, **kw) for n, v in headers)


def dns_query(name: str, *, pad: int | None = None, qid: int = 0) -> bytes:
    options: list[dns.edns.Option] = (
        [dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"\0" * pad)] if pad else []
    )
    msg = dns.message.make_query(name, "A", use_edns=0 if pad else None, options=options)
    msg.id = qid
    return msg.to_wire()


def dns_response(query: bytes) -> bytes:
    return dns.message.make_response(dns.message.from_wire(query)).to_wire()


def get_request(stream: int, query: bytes, *, authority: bytes = b"doh.example") -> bytes:
    param = base64.urlsafe_b64encode(query).rstrip(b"=")
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", authority),
        (b":path", b"/dns-query?dns=" + param),
        (b"accept", b"application/dns-message"),
    ]
    return frame(HEADERS, END_HEADERS | END_STREAM, stream, block(headers, index=True))


def post_request(stream: int, query: bytes, *, padded: int = 0) -> bytes:
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":authority", b"doh.example"),
        (b":path", b"/dns-query"),
        (b"content-type", b"application/dns-message"),
    ]
    out = frame(HEADERS, END_HEADERS, stream, block(headers))
    if padded:
        payload = bytes([padded]) + query + b"\0" * padded
        return out + frame(DATA, END_STREAM | PADDED, stream, payload)
    return out + frame(DATA, END_STREAM, stream, query)


def response(
    stream: int, body: bytes, *, content_type: bytes = b"application/dns-message"
) -> bytes:
    headers = [(b":status", b"200"), (b"content-type", content_type)]
    return frame(HEADERS, END_HEADERS, stream, block(headers)) + frame(
        DATA, END_STREAM, stream, body
    )


def run(
    conn: H2cConnection, chunks: list[tuple[bool, bytes]], *, step: int | None = None
) -> list[H2Item]:
    out: list[H2Item] = []
    for n, (from_client, data) in enumerate(chunks):
        pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
        for piece in pieces:
            conn.feed(from_client, piece, n + 1, float(n), out)
    return out


SETTINGS_EMPTY = frame(SETTINGS, 0, 0, b"")


# -- HPACK: RFC 7541 Appendix C ---------------------------------------------------------


def test_rfc7541_c3_requests_without_huffman() -> None:
    decoder = HpackDecoder()
    first = decoder.decode(bytes.fromhex("828684410f7777772e6578616d706c652e636f6d"))
    assert first == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
    ]
    assert decoder.table_size == 57
    second = decoder.decode(bytes.fromhex("828684be58086e6f2d6361636865"))
    assert second[-1] == (b"cache-control", b"no-cache")
    assert decoder.table_size == 110
    third = decoder.decode(
        bytes.fromhex("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565")
    )
    assert third[1:] == [
        (b":scheme", b"https"),
        (b":path", b"/index.html"),
        (b":authority", b"www.example.com"),
        (b"custom-key", b"custom-value"),
    ]
    assert decoder.table == (
        (b"custom-key", b"custom-value"),
        (b"cache-control", b"no-cache"),
        (b":authority", b"www.example.com"),
    )
    assert decoder.table_size == 164


def test_rfc7541_c4_requests_with_huffman() -> None:
    decoder = HpackDecoder()
    decoder.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
    decoder.decode(bytes.fromhex("828684be5886a8eb10649cbf"))
    third = decoder.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
    assert third[-1] == (b"custom-key", b"custom-value")
    assert decoder.table_size == 164


def test_rfc7541_c6_responses_with_huffman_and_eviction() -> None:
    decoder = HpackDecoder(max_size=256)
    first = decoder.decode(
        bytes.fromhex(
            "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff"
            "6e919d29ad171863c78f0b97c8e9ae82ae43d3"
        )
    )
    assert first == [
        (b":status", b"302"),
        (b"cache-control", b"private"),
        (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
        (b"location", b"https://www.example.com"),
    ]
    assert decoder.table_size == 222
    second = decoder.decode(bytes.fromhex("4883640effc1c0bf"))
    assert second[0] == (b":status", b"307")
    assert second[1:] == first[1:]
    # ":status: 302" was evicted to make room for ":status: 307".
    assert decoder.table[0] == (b":status", b"307")
    assert (b":status", b"302") not in decoder.table
    assert decoder.table_size == 222


def test_huffman_rfc_examples() -> None:
    assert huffman_decode(bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")) == b"www.example.com"
    assert huffman_decode(bytes.fromhex("a8eb10649cbf")) == b"no-cache"
    assert huffman_decode(bytes.fromhex("6402")) == b"302"


@pytest.mark.parametrize(
    ("encoded", "why"),
    [
        (b"\x00", "padding"),  # '0' + 3 zero bits of padding
        (b"\xff\xff\xff\xff", "EOS"),  # 30 ones: EOS inside the string
        (b"\xff", "padding"),  # 8 bits of padding
    ],
)
def test_huffman_rejects_bad_padding_and_eos(encoded: bytes, why: str) -> None:
    with pytest.raises(MalformedError, match=why):
        huffman_decode(encoded)


@pytest.mark.parametrize(
    "block_hex",
    [
        "80",  # index 0
        "be",  # dynamic index 62 on an empty table
        "ff",  # integer prefix full, continuation missing
        "ff" + "ff" * 6 + "01",  # integer longer than 5 continuation bytes
        "4005",  # literal name length 5 with no bytes
        "3fe2ff03",  # table size update to 65537, above the cap
    ],
)
def test_hpack_rejects_bad_blocks(block_hex: str) -> None:
    with pytest.raises(MalformedError):
        HpackDecoder().decode(bytes.fromhex(block_hex))


def test_hpack_table_size_update_evicts_and_large_entry_empties() -> None:
    decoder = HpackDecoder()
    decoder.decode(literal(b"a", b"b", index=True) + literal(b"c", b"d", index=True))
    assert decoder.table_size == 2 * 34
    decoder.decode(hpack_int(40, 5, 0x20))  # shrink: only the newest entry fits
    assert decoder.table == ((b"c", b"d"),)
    decoder.decode(literal(b"x", b"y" * 100, index=True))  # larger than the table
    assert len(decoder.table) == 0 and decoder.table_size == 0
    with pytest.raises(MalformedError, match="table size"):
        decoder.decode(hpack_int(MAX_TABLE_SIZE + 1, 5, 0x20))


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is the oracle here")
def test_every_huffman_code_matches_tshark(tmp_path: Path) -> None:
    """Oracle: tshark's HPACK decoder on one header per byte value, Huffman-coded."""
    body = b"".join(literal(b"x", bytes([b]), huffman=True) for b in range(256))
    # tshark shows 200 headers per block at most: one stream per 64 byte values.
    chunks = []
    for stream, start in enumerate(range(0, 256, 64)):
        headers = b"\x82\x86\x84" + b"".join(
            literal(b"x", bytes([b]), huffman=True) for b in range(start, start + 64)
        )
        chunks.append(frame(HEADERS, END_HEADERS | END_STREAM, 2 * stream + 1, headers))
    payload = PREFACE + SETTINGS_EMPTY + b"".join(chunks)
    packet = Ether(src=MAC_C, dst=MAC_S) / IP(src="192.0.2.1", dst="192.0.2.2")
    packet = packet / TCP(sport=40000, dport=80, flags="PA", seq=1) / payload
    pcap = tmp_path / "huffman.pcap"
    wrpcap(str(pcap), [packet])
    pdml = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-d", "tcp.port==80,http2", "-T", "pdml"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    values = [
        bytes.fromhex(f.get("value") or "")
        for f in ET.fromstring(pdml).iter("field")
        if f.get("name") == "http2.header.value"
    ]
    theirs = [v for i, v in enumerate(values) if i % 67 >= 3]  # skip the 3 pseudo-headers
    assert len(theirs) == 256
    ours = [huffman_decode(huffman_encode(bytes([b]))) for b in range(256)]
    assert theirs == ours == [bytes([b]) for b in range(256)]
    decoded = HpackDecoder().decode(body)
    assert [v for _, v in decoded] == ours


# -- recognising h2c and the dns parameter -----------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PREFACE + SETTINGS_EMPTY, True),
        (PREFACE[:10], True),  # the preface split across segments
        (b"PRI * HTTP/1.1\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQ\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nhost: a\r\nUPGRADE: websocket, H2C\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nUpgrade: h2c\r\n", False),  # in the body
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Upgrade: h2c\r\n\r\n", False),
        (b"\x16\x03\x01\x02\x00\x01", False),
        (b"", False),
    ],
)
def test_looks_like_h2c(data: bytes, expected: bool) -> None:
    assert looks_like_h2c(data) is expected


def test_dns_param_rfc8484_example() -> None:
    # RFC 8484 §4.1.1: the GET example for www.example.com IN A.
    path = b"/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"
    message = dns_param(path)
    assert message is not None
    parsed = dns.message.from_wire(message)
    assert str(parsed.question[0].name) == "www.example.com."
    assert dns_param(b"/dns-query?ct&dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB") == message
    assert dns_param(b"/dns-query") is None
    assert dns_param(b"/q?name=example.com&type=A") is None
    with pytest.raises(MalformedError):
        dns_param(b"/dns-query?dns=AA*B")
    with pytest.raises(MalformedError):
        dns_param(b"/dns-query?dns=A")  # one base64 character cannot be a byte


# -- the connection parser ---------------------------------------------------------------


def test_get_and_post_and_responses_byte_by_byte() -> None:
    q1 = dns_query("get.example", pad=40)
    q2 = dns_query("post.example", qid=7)
    chunks = [
        (True, PREFACE + SETTINGS_EMPTY + get_request(1, q1)),
        (False, SETTINGS_EMPTY + frame(WINDOW_UPDATE, 0, 0, b"\0\0\1\0")),
        (True, post_request(3, q2, padded=9) + frame(PING, 0, 0, b"\0" * 8)),
        (False, response(1, dns_response(q1)) + response(3, dns_response(q2))),
    ]
    for step in (None, 1, 7):
        items = run(H2cConnection(), chunks, step=step)
        requests = [i for i in items if isinstance(i, H2Request)]
        bodies = [i for i in items if isinstance(i, H2Body)]
        assert [(r.method, r.stream, r.authority) for r in requests] == [
            ("GET", 1, "doh.example"),
            ("POST", 3, "doh.example"),
        ]
        assert requests[0].dns_query == q1 and requests[1].dns_query is None
        assert requests[1].content_type == "application/dns-message"
        assert [(b.stream, b.from_client, b.body, b.frame) for b in bodies] == [
            (3, True, q2, 3),
            (1, False, dns_response(q1), 4),
            (3, False, dns_response(q2), 4),
        ]


def test_continuation_and_dynamic_table_across_requests() -> None:
    headers = block(
        [(b":method", b"GET"), (b":authority", b"doh.example"), (b":path", b"/x")], index=True
    )
    first = frame(HEADERS, PRIORITY, 1, b"\0\0\0\0\x10" + headers[:5])
    first += frame(CONTINUATION, 0, 1, headers[5:9]) + frame(
        CONTINUATION, END_HEADERS, 1, headers[9:]
    )
    # The second request refers to the dynamic table only: indexes 62..64.
    second = frame(HEADERS, END_HEADERS | END_STREAM, 3, bytes([0xC0, 0xBF, 0xBE]))
    items = run(H2cConnection(), [(True, PREFACE + first + second)])
    assert [(i.method, i.authority, i.path) for i in items if isinstance(i, H2Request)] == [
        ("GET", "doh.example", "/x"),
        ("GET", "doh.example", "/x"),
    ]


def test_push_promise_keeps_the_server_table_in_step() -> None:
    promised = block([(b":method", b"GET"), (b":path", b"/pushed")], index=True)
    server = frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack("!I", 2) + promised)
    head = block([(b"content-type", b"application/dns-message")], index=True)
    server += frame(HEADERS, END_HEADERS, 1, b"\x88" + head)
    answer = dns_response(dns_query("a.example"))
    server += frame(DATA, END_STREAM, 1, answer)
    # 62 is content-type; 63 exists only because the promise's block was decoded.
    server += frame(HEADERS, END_HEADERS, 5, b"\x88\xbe\xbf")
    server += frame(DATA, END_STREAM, 5, answer)
    client = PREFACE + get_request(1, dns_query("a.example")) + get_request(5, b"\0" * 12)
    items = run(H2cConnection(), [(True, client), (False, server)])
    assert [(i.stream, i.body) for i in items if isinstance(i, H2Body)] == [
        (1, answer),
        (5, answer),
    ]


def test_other_content_types_and_bulk_data_are_skipped_not_buffered() -> None:
    conn = H2cConnection()
    client = PREFACE + get_request(1, dns_query("a.example"))
    page = b"x" * 16_000
    server = frame(
        HEADERS, END_HEADERS, 1, block([(b":status", b"200"), (b"content-type", b"text/html")])
    )
    out: list[H2Item] = []
    conn.feed(True, client, 1, 0.0, out)
    conn.feed(False, server, 2, 0.0, out)
    # 4 MiB of DATA in frames up to 1 MiB, fed in 1000-byte pieces.
    for _ in range(4):
        conn.feed(False, frame_header(DATA, 0, 1, 1 << 20), 3, 0.0, out)
        for _ in range((1 << 20) // len(page)):
            conn.feed(False, page, 3, 0.0, out)
            assert conn.buffered() < 32_000
        conn.feed(False, page[: (1 << 20) % len(page)], 3, 0.0, out)
    conn.feed(False, frame(DATA, END_STREAM, 1, b"end"), 4, 0.0, out)
    assert [i for i in out if isinstance(i, H2Body)] == []
    assert len([i for i in out if isinstance(i, H2Request)]) == 1


def test_oversized_dns_body_is_reported_truncated() -> None:
    client = PREFACE + frame(
        HEADERS,
        END_HEADERS,
        1,
        block(
            [
                (b":method", b"POST"),
                (b":path", b"/dns-query"),
                (b"content-type", b"application/dns-message"),
            ]
        ),
    )
    client += frame(DATA, 0, 1, b"\0" * 40_000) + frame(DATA, END_STREAM, 1, b"\0" * 40_000)
    items = run(H2cConnection(), [(True, client)])
    (body,) = [i for i in items if isinstance(i, H2Body)]
    assert body.truncated and body.body == b""


def test_stream_table_and_body_bytes_stay_bounded() -> None:
    conn = H2cConnection()
    out: list[H2Item] = []
    conn.feed(True, PREFACE, 1, 0.0, out)
    head = block(
        [(b":method", b"POST"), (b":path", b"/q"), (b"content-type", b"application/dns-message")]
    )
    for stream in range(1, 2 * (MAX_STREAMS + 200), 2):  # never-ended bodies
        conn.feed(True, frame(HEADERS, END_HEADERS, stream, head), 2, 0.0, out)
        conn.feed(True, frame(DATA, 0, stream, b"\0" * 30_000), 2, 0.0, out)
        assert conn.buffered() <= MAX_BODY_BYTES + MAX_FRAME_BUFFER + MAX_HEADER_BLOCK
    assert conn.evicted_streams == 200
    assert conn.open_streams == MAX_STREAMS
    assert len([i for i in out if isinstance(i, H2Request)]) == MAX_STREAMS + 200


@pytest.mark.parametrize(
    ("client", "match"),
    [
        (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "preface"),
        (PREFACE + frame(HEADERS, 0, 1, b"\x82") + SETTINGS_EMPTY, "interrupted"),
        (PREFACE + frame(CONTINUATION, END_HEADERS, 1, b"\x82"), "CONTINUATION"),
        (PREFACE + frame(HEADERS, END_HEADERS | PADDED, 1, b"\x05\x82"), "padding"),
        (PREFACE + frame(HEADERS, END_HEADERS, 0, b"\x82"), "stream 0"),
        (PREFACE + frame(HEADERS, END_HEADERS, 1, b"\x80"), "index 0"),
        (PREFACE + frame_header(HEADERS, 0, 1, MAX_HEADER_BLOCK + 1), "header block"),
    ],
)
def test_malformed_connections(client: bytes, match: str) -> None:
    conn = H2cConnection()
    with pytest.raises(MalformedError, match=match):
        run(conn, [(True, client)])
    # The direction is given up: later bytes are ignored, not re-parsed.
    assert run(conn, [(True, get_request(3, dns_query("a.example")))]) == []


def test_gap_stops_one_direction() -> None:
    conn = H2cConnection()
    out: list[H2Item] = []
    conn.feed(True, PREFACE + get_request(1, dns_query("a.example")), 1, 0.0, out)
    conn.gap(True)
    conn.feed(True, get_request(3, dns_query("b.example")), 2, 0.0, out)
    conn.feed(False, response(1, dns_response(dns_query("a.example"))), 3, 0.0, out)
    assert [type(i).__name__ for i in out] == ["H2Request", "H2Body"]
    assert not conn.done


def test_upgrade_from_http1() -> None:
    query = dns_query("up.example")
    param = base64.urlsafe_b64encode(query).rstrip(b"=")
    request = (
        b"GET /dns-query?dns=" + param + b" HTTP/1.1\r\nHost: doh.example:8080\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQ\r\n\r\n"
    )
    switching = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    answer = dns_response(query)
    chunks = [
        (True, request),
        (False, switching + SETTINGS_EMPTY + response(1, answer)),
        (True, PREFACE + SETTINGS_EMPTY + get_request(3, query)),
    ]
    items = run(H2cConnection(upgrade=True), chunks, step=5)
    requests = [i for i in items if isinstance(i, H2Request)]
    assert [(r.stream, r.upgrade, r.authority, r.dns_query) for r in requests] == [
        (1, True, "doh.example:8080", query),
        (3, False, "doh.example", query),
    ]
    assert [(b.stream, b.body) for b in items if isinstance(b, H2Body)] == [(1, answer)]


def test_upgrade_with_post_body_and_declined_upgrade() -> None:
    query = dns_query("body.example")
    request = (
        b"POST /dns-query HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n"
        b"Content-Type: application/dns-message\r\nContent-Length: "
        + str(len(query)).encode()
        + b"\r\n\r\n"
        + query
    )
    items = run(H2cConnection(upgrade=True), [(True, request)], step=3)
    assert [(type(i).__name__, getattr(i, "body", None)) for i in items] == [
        ("H2Request", None),
        ("H2Body", query),
    ]
    conn = H2cConnection(upgrade=True)
    run(conn, [(True, request), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
    assert conn.done


# -- fuzz: hostile bytes raise MalformedError or nothing, and memory stays bounded -------

_VALID = (
    PREFACE
    + SETTINGS_EMPTY
    + get_request(1, dns_query("f.example", pad=20))
    + post_request(3, dns_query("g.example"), padded=3)
)
_SERVER = (
    SETTINGS_EMPTY
    + response(1, dns_response(dns_query("f.example")))
    + response(3, dns_response(dns_query("g.example")))
)
_BOUND = MAX_BODY_BYTES + 2 * (MAX_FRAME_BUFFER + 4096 + MAX_HEADER_BLOCK + MAX_TABLE_SIZE)


def _feed_all(conn: H2cConnection, chunks: list[tuple[bool, bytes]]) -> None:
    for from_client, data in chunks:
        out: list[H2Item] = []
        with contextlib.suppress(MalformedError):
            conn.feed(from_client, data, 1, 0.0, out)
        assert conn.buffered() <= _BOUND


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_fuzz_random_frames(client: bytes, server: bytes) -> None:
    _feed_all(H2cConnection(), [(True, PREFACE + client), (False, server)])


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=8),
    st.lists(st.tuples(st.integers(0, len(_SERVER) - 1), st.integers(0, 255)), max_size=8),
    st.integers(1, 64),
)
def test_fuzz_mutated_connection(
    client_flips: list[tuple[int, int]], server_flips: list[tuple[int, int]], step: int
) -> None:
    client = bytearray(_VALID)
    for pos, value in client_flips:
        client[pos] = value
    server = bytearray(_SERVER)
    for pos, value in server_flips:
        server[pos] = value
    chunks: list[tuple[bool, bytes]] = []
    for i in range(0, max(len(client), len(server)), step):
        chunks.append((True, bytes(client[i : i + step])))
        chunks.append((False, bytes(server[i : i + step])))
    _feed_all(H2cConnection(), chunks)


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_fuzz_upgrade_heads(data: bytes, with_head: bool) -> None:
    head = b"GET /?dns=AAAB HTTP/1.1\r\nUpgrade: h2c\r\n" if with_head else b""
    _feed_all(H2cConnection(upgrade=True), [(True, head + data), (False, data)])


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_hpack(data: bytes) -> None:
    decoder = HpackDecoder()
    with contextlib.suppress(MalformedError):
        decoder.decode(data)
    assert decoder.table_size <= MAX_TABLE_SIZE


# -- end to end: a capture through the pipeline ------------------------------------------


def _tcp_capture(path: Path, turns: list[tuple[bool, bytes]], dport: int = 80) -> Path:
    client, server, sport = "192.0.2.10", "198.51.100.80", 41000
    seq = {True: 1000, False: 5000}
    ts = 1700000000.0
    packets: list[Any] = []

    def add(from_client: bool, flags: str, payload: bytes = b"") -> None:
        nonlocal ts
        ts += 0.001
        src, dst, sp, dp = (
            (client, server, sport, dport) if from_client else (server, client, dport, sport)
        )
        pkt = (
            Ether(src=MAC_C if from_client else MAC_S, dst=MAC_S if from_client else MAC_C)
            / IP(src=src, dst=dst)
            / TCP(sport=sp, dport=dp, flags=flags, seq=seq[from_client], ack=seq[not from_client])
        )
        if payload:
            pkt = pkt / payload
        pkt.time = ts
        packets.append(pkt)
        seq[from_client] += len(payload) + (1 if "S" in flags or "F" in flags else 0)

    add(True, "S")
    add(False, "SA")
    add(True, "A")
    for from_client, data in turns:
        for i in range(0, len(data), 1000):
            add(from_client, "PA", data[i : i + 1000])
    add(True, "FA")
    add(False, "FA")
    add(True, "A")
    wrpcap(str(path), packets)
    return path


def test_pipeline_emits_doh_dns_and_http_requests(tmp_path: Path) -> None:
    q1 = dns_query("one.example", pad=60)
    q2 = dns_query("two.example", qid=9)
    turns = [
        (True, PREFACE + SETTINGS_EMPTY + get_request(1, q1) + post_request(3, q2)),
        (False, SETTINGS_EMPTY + response(1, dns_response(q1)) + response(3, dns_response(q2))),
    ]
    events = [e.to_dict() for e in CaptureRun(_tcp_capture(tmp_path / "h2c.pcap", turns)).events()]
    requests = [e for e in events if e["type"] == "http_request"]
    assert [(r["method"], r["authority"], r["stream"], r["h2c"]) for r in requests] == [
        ("GET", "doh.example", 1, True),
        ("POST", "doh.example", 3, True),
    ]
    dns_events = [e for e in events if e["type"] == "dns"]
    assert [(e["qr"], e["qname"], e["service"], e["src"]) for e in dns_events] == [
        ("query", "one.example", "doh", "192.0.2.10"),
        ("query", "two.example", "doh", "192.0.2.10"),
        ("response", "one.example", "doh", "198.51.100.80"),
        ("response", "two.example", "doh", "198.51.100.80"),
    ]
    assert dns_events[0]["edns"]["padding"] == 60
    assert not [e for e in events if e["type"] == "anomaly"]


def test_plain_http_is_not_parsed(tmp_path: Path) -> None:
    request = (
        b"GET /dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB HTTP/1.1\r\n"
        b"Host: a\r\n\r\n"
    )
    turns = [(True, request), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")]
    events = list(CaptureRun(_tcp_capture(tmp_path / "h1.pcap", turns)).events())
    # host_identity: which Ethernet address sent the flow, not a reading of its payload
    assert [e.type for e in events if e.type != "host_identity"] == ["connection"]


def test_malformed_h2c_becomes_an_anomaly(tmp_path: Path) -> None:
    turns = [(True, PREFACE + frame(HEADERS, END_HEADERS, 1, b"\x80"))]
    events = [e.to_dict() for e in CaptureRun(_tcp_capture(tmp_path / "bad.pcap", turns)).events()]
    assert [e["what"] for e in events if e["type"] == "anomaly"] == ["http2_malformed"]


# -- corpus ------------------------------------------------------------------------------


def test_corpus_doh_h2c_port80() -> None:
    """Oracle: Suricata doh2 (2 dns events per name, http.host dns.google) and tshark's
    4 decoded responses, all with EDNS padding (MANIFEST.md, transcript sections a2, e)."""
    path = corpus_path("suricata-verify/doh-h2c-port80/dns_over_https.pcap")
    events = [e.to_dict() for e in CaptureRun(path).events()]
    requests = [e for e in events if e["type"] == "http_request"]
    assert {r["authority"] for r in requests} == {"dns.google"}
    assert {r["method"] for r in requests} == {"GET"}
    dns_events = [e for e in events if e["type"] == "dns"]
    assert all(e["service"] == "doh" for e in dns_events)
    responses = [e for e in dns_events if e["qr"] == "response"]
    queries = [e for e in dns_events if e["qr"] == "query"]
    # tshark (a2): frames 9, 11, 17, 22, each one response.
    assert [(e["frame"], e["qname"]) for e in responses] == [
        (9, "www.gstatic.com"),
        (11, "www.gstatic.com"),
        (17, "nav-edge.smartscreen.microsoft.com"),
        (22, "nav-edge.smartscreen.microsoft.com"),
    ]
    assert all(e["edns"]["padding"] is not None for e in responses)  # tshark (e): 4
    # Suricata: 2 queries per name, decoded here from the GET dns= parameter.
    assert sorted(e["qname"] for e in queries) == sorted(
        ["www.gstatic.com"] * 2 + ["nav-edge.smartscreen.microsoft.com"] * 2
    )
    assert len(requests) == len(queries) == 4
    assert not [e for e in events if e["type"] == "anomaly"]
