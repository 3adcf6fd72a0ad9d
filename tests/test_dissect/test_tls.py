"""TLS record stream and hello parsing: synthetic unit cases and corpus conformance.

Corpus oracles: tshark 4.0.17 transcripts (section b: SNI, ALPN; b3: ECH/ESNI), Zeek
ssl.log baselines (negotiated version, cipher, certificate sha256 fingerprints) and the
MANIFEST facts. TCP payloads are reassembled here with a deliberately simple in-test
sorter (by sequence number, duplicates dropped); the project reassembler is tested
elsewhere.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dotaudit.dissect.tls import (
    ALERT_DESCRIPTIONS,
    MAX_RECORD,
    AlertItem,
    CertificateItem,
    ClientHelloItem,
    RecordItem,
    ServerHelloItem,
    TlsItem,
    TlsStream,
    cipher_name,
    escape_text,
    looks_like_tls,
    parse_certificate_list,
    parse_client_hello,
    parse_server_hello,
    version_name,
)
from dotaudit.errors import MalformedError
from tests.conftest import corpus_path

# ---------------------------------------------------------------------------
# Builders for synthetic handshakes (RFC 8446 §4 layouts).


def ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


def vec8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def vec16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def u16s(values: list[int]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def sni_ext(name: bytes) -> bytes:
    return ext(0, vec16(b"\x00" + vec16(name)))


def alpn_ext(names: list[bytes]) -> bytes:
    return ext(16, vec16(b"".join(vec8(n) for n in names)))


def client_hello_body(
    *,
    version: int = 0x0303,
    ciphers: list[int] | None = None,
    extensions: list[bytes] | None = None,
    session_id: bytes = b"",
) -> bytes:
    ciphers = [0x1301, 0xC02F] if ciphers is None else ciphers
    body = struct.pack("!H", version) + bytes(32) + vec8(session_id)
    body += vec16(u16s(ciphers)) + vec8(b"\x00")
    if extensions is not None:
        body += vec16(b"".join(extensions))
    return body


def server_hello_body(
    *, version: int = 0x0303, cipher: int = 0xC02F, extensions: list[bytes] | None = None
) -> bytes:
    body = struct.pack("!H", version) + bytes(range(32)) + vec8(b"") + struct.pack("!HB", cipher, 0)
    if extensions is not None:
        body += vec16(b"".join(extensions))
    return body


def handshake(mtype: int, body: bytes) -> bytes:
    return bytes([mtype]) + len(body).to_bytes(3, "big") + body


def record(ctype: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", ctype, version, len(payload)) + payload


def tls13_client_hello() -> bytes:
    return handshake(
        1,
        client_hello_body(
            extensions=[
                sni_ext(b"dns.example"),
                alpn_ext([b"dot"]),
                ext(43, vec8(u16s([0x0304, 0x0303]))),
                ext(13, vec16(u16s([0x0403, 0x0804]))),
                ext(10, vec16(u16s([0x001D]))),
            ]
        ),
    )


def feed_all(stream: TlsStream, chunks: list[bytes], frame: int = 1) -> list[TlsItem]:
    out: list[TlsItem] = []
    for chunk in chunks:
        out.extend(stream.feed(chunk, frame, 1.0))
    return out


# ---------------------------------------------------------------------------
# Hello parsing


def test_client_hello_fields() -> None:
    body = client_hello_body(
        ciphers=[0x0A0A, 0x1301],
        extensions=[
            ext(0x1A1A, b""),
            sni_ext(b"dns.example"),
            alpn_ext([b"h2", b"http/1.1"]),
            ext(43, vec8(u16s([0x2A2A, 0x0304, 0x0303]))),
            ext(13, vec16(u16s([0x0403]))),
            ext(10, vec16(u16s([0x001D, 0x0017]))),
            ext(11, vec8(b"\x00")),
            ext(0xFE0D, b"\x00"),
        ],
    )
    ch = parse_client_hello(body, record_version=0x0301)
    assert ch.legacy_version == 0x0303 and ch.record_version == 0x0301
    assert ch.ciphers == (0x0A0A, 0x1301)
    assert ch.extensions == (0x1A1A, 0, 16, 43, 13, 10, 11, 0xFE0D)
    assert ch.sni == "dns.example" and not ch.sni_is_ip_literal
    assert ch.alpn == ("h2", "http/1.1")
    assert ch.supported_versions == (0x2A2A, 0x0304, 0x0303)
    assert ch.signature_algorithms == (0x0403,)
    assert ch.groups == (0x001D, 0x0017)
    assert ch.ec_point_formats == (0,)
    assert ch.ech and not ch.esni


def test_client_hello_without_extensions() -> None:
    ch = parse_client_hello(client_hello_body(extensions=None))
    assert ch.extensions == () and ch.sni is None and ch.alpn == ()


def test_hostile_sni_and_alpn_are_escaped() -> None:
    body = client_hello_body(
        extensions=[sni_ext(b"a\x00b\n\xff\\.example"), alpn_ext([b"\x1b[31m"])]
    )
    ch = parse_client_hello(body)
    assert ch.sni == "a\\x00b\\x0a\\xff\\x5c.example"
    assert ch.alpn == ("\\x1b[31m",)
    assert all(0x20 <= ord(c) < 0x7F for c in (ch.sni or "") + ch.alpn[0])


def test_escape_text_keeps_plain_ascii() -> None:
    assert escape_text(b"dns.google") == "dns.google"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x03\x03",
        client_hello_body()[:-1],  # compression vector cut
        client_hello_body(ciphers=[]),  # no cipher suites
        client_hello_body(session_id=bytes(33)),
        client_hello_body(extensions=[ext(0, b"\x00\x05\x00")]),  # SNI list overruns
        client_hello_body(extensions=[])[:-1] + b"\x05",  # extensions length overruns
        client_hello_body(extensions=[ext(13, b"\x00\x03\x04\x03\x08")]),  # odd u16 list
    ],
)
def test_malformed_client_hello(body: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_client_hello(body)


def test_server_hello_tls13_and_hrr() -> None:
    sh = parse_server_hello(
        server_hello_body(version=0x0303, cipher=0x1301, extensions=[ext(43, u16s([0x0304]))])
    )
    assert sh.version == 0x0304 and sh.cipher == 0x1301 and not sh.is_hello_retry
    assert sh.extensions == (43,)
    hrr_random = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    body = struct.pack("!H", 0x0303) + hrr_random + b"\x00" + struct.pack("!HB", 0x1301, 0)
    body += vec16(ext(43, u16s([0x0304])))
    assert parse_server_hello(body).is_hello_retry


def test_server_hello_alpn_and_legacy_version() -> None:
    sh = parse_server_hello(server_hello_body(version=0x0302, extensions=[alpn_ext([b"h2"])]))
    assert sh.version == 0x0302 and sh.alpn == "h2"
    with pytest.raises(MalformedError):
        parse_server_hello(server_hello_body(extensions=[alpn_ext([b"h2", b"h3"])]))


def test_names() -> None:
    assert [version_name(v) for v in (0x0304, 0x0303, 0x0302, 0x0301, 0x0300)] == [
        "TLSv1.3",
        "TLSv1.2",
        "TLSv1.1",
        "TLSv1.0",
        "SSLv3",
    ]
    assert version_name(0x7F1C) == "0x7f1c"
    assert cipher_name(0x0004) == "TLS_RSA_WITH_RC4_128_MD5"
    assert cipher_name(0x1301) == "TLS_AES_128_GCM_SHA256"
    assert cipher_name(0xCCA8) == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    assert cipher_name(0x1337) == "0x1337"
    # RFC 8446 §6 numbering
    assert ALERT_DESCRIPTIONS[0] == "close_notify"
    assert ALERT_DESCRIPTIONS[40] == "handshake_failure"
    assert ALERT_DESCRIPTIONS[48] == "unknown_ca"
    assert ALERT_DESCRIPTIONS[86] == "inappropriate_fallback"
    assert ALERT_DESCRIPTIONS[112] == "unrecognized_name"
    assert ALERT_DESCRIPTIONS[120] == "no_application_protocol"


def test_looks_like_tls() -> None:
    assert looks_like_tls(record(22, b"\x01\x00\x00\x00", version=0x0301))
    assert looks_like_tls(b"\x16\x03\x01")
    assert not looks_like_tls(b"\x16\x03")
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n")
    assert not looks_like_tls(b"\x00\x1d\x12\x34\x01\x00")  # DNS over TCP length prefix
    assert not looks_like_tls(b"\x16\x03\x01\x00\x00")  # empty first record
    assert not looks_like_tls(b"\x16\x03\x01\xff\xff")  # longer than any record
    assert not looks_like_tls(b"\x16\x02\x00\x00\x10")


# ---------------------------------------------------------------------------
# Record stream: framing


def tls12_client_stream() -> bytes:
    """ClientHello split over two records, a coalesced CCS, and encrypted records."""
    ch = tls13_client_hello()
    return (
        record(22, ch[:40], version=0x0301)
        + record(22, ch[40:])
        + record(20, b"\x01")
        + record(22, bytes(40))  # encrypted Finished
        + record(23, bytes(100))
        + record(21, bytes(26))  # encrypted alert
    )


def test_stream_items_and_record_lengths() -> None:
    items = TlsStream(from_client=True).feed(tls12_client_stream(), 7, 2.5)
    kinds = [type(i).__name__ for i in items]
    assert kinds == [
        "RecordItem",
        "ClientHelloItem",
        "RecordItem",
        "RecordItem",
        "RecordItem",
        "RecordItem",
        "AlertItem",
        "RecordItem",
    ]
    records = [(i.content_type, i.length) for i in items if isinstance(i, RecordItem)]
    ch_len = len(tls13_client_hello())
    assert records == [(22, 40), (22, ch_len - 40), (20, 1), (22, 40), (23, 100), (21, 26)]
    hello = next(i for i in items if isinstance(i, ClientHelloItem))
    assert hello.hello.sni == "dns.example" and hello.hello.record_version == 0x0301
    assert (hello.frame, hello.ts) == (7, 2.5)
    alert = next(i for i in items if isinstance(i, AlertItem))
    assert (alert.level, alert.description, alert.encrypted) == (-1, -1, True)


def test_every_split_point_gives_identical_items() -> None:
    data = tls12_client_stream()
    whole = TlsStream(True).feed(data, 1, 1.0)
    for cut in range(1, len(data)):
        assert feed_all(TlsStream(True), [data[:cut], data[cut:]]) == whole, cut


def test_byte_at_a_time_gives_identical_items() -> None:
    data = tls12_client_stream()
    whole = TlsStream(True).feed(data, 1, 1.0)
    assert feed_all(TlsStream(True), [data[i : i + 1] for i in range(len(data))]) == whole


def test_items_carry_the_completing_segment() -> None:
    ch = tls13_client_hello()
    data = record(22, ch)
    stream = TlsStream(True)
    assert stream.feed(data[:50], 10, 1.0) == []
    items = stream.feed(data[50:], 11, 2.0)
    assert {(i.frame, i.ts) for i in items} == {(11, 2.0)}


def test_several_handshake_messages_in_one_record() -> None:
    sh = handshake(2, server_hello_body())
    cert = handshake(11, (6).to_bytes(3, "big") + (3).to_bytes(3, "big") + b"abc")
    done = handshake(14, b"")
    items = TlsStream(False).feed(record(22, sh + cert + done), 1, 1.0)
    assert isinstance(items[0], ServerHelloItem) and items[0].hello.cipher == 0xC02F
    assert isinstance(items[1], CertificateItem) and items[1].certs == (b"abc",)
    assert isinstance(items[2], RecordItem)


def test_cleartext_alerts() -> None:
    data = record(21, b"\x02\x28") + record(21, b"\x01\x00")
    items = TlsStream(False).feed(data, 3, 1.0)
    alerts = [(i.level, i.description, i.encrypted) for i in items if isinstance(i, AlertItem)]
    assert alerts == [(2, 40, False), (1, 0, False)]
    assert ALERT_DESCRIPTIONS[alerts[0][1]] == "handshake_failure"


def test_alert_split_across_segments() -> None:
    data = record(21, b"\x02\x46")
    items = feed_all(TlsStream(False), [data[:6], data[6:]])
    assert [(i.level, i.description) for i in items if isinstance(i, AlertItem)] == [(2, 70)]


def test_tls13_server_flow_becomes_opaque_after_server_hello() -> None:
    sh = handshake(2, server_hello_body(cipher=0x1301, extensions=[ext(43, u16s([0x0304]))]))
    fake_hello = handshake(1, b"junk that is not a hello")
    data = (
        record(22, sh)
        + record(20, b"\x01")
        + record(23, bytes(2000))
        + record(22, fake_hello)  # would be malformed if it were parsed
        + record(23, bytes(53))
    )
    stream = TlsStream(False)
    items = stream.feed(data, 1, 1.0)
    assert stream.encrypted
    assert [i.length for i in items if isinstance(i, RecordItem)] == [
        len(sh),
        1,
        2000,
        len(fake_hello),
        53,
    ]
    assert sum(isinstance(i, ServerHelloItem) for i in items) == 1


def test_tls13_client_after_set_tls13() -> None:
    stream = TlsStream(True)
    stream.feed(record(22, tls13_client_hello(), version=0x0301), 1, 1.0)
    stream.set_tls13()
    items = stream.feed(record(22, b"\x01\x00\x00\x05garbage") + record(21, bytes(19)), 2, 1.0)
    assert [type(i).__name__ for i in items] == ["RecordItem", "AlertItem", "RecordItem"]


def test_hello_retry_keeps_second_client_hello_visible() -> None:
    stream = TlsStream(True)
    first = stream.feed(record(22, tls13_client_hello(), version=0x0301), 1, 1.0)
    stream.hello_retry()
    second = stream.feed(record(20, b"\x01") + record(22, tls13_client_hello()), 2, 1.0)
    assert sum(isinstance(i, ClientHelloItem) for i in first + second) == 2
    assert not stream.encrypted


def test_server_hrr_then_ccs_then_real_server_hello() -> None:
    hrr_random = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    hrr = struct.pack("!H", 0x0303) + hrr_random + b"\x00" + struct.pack("!HB", 0x1301, 0)
    hrr += vec16(ext(43, u16s([0x0304])))
    real = server_hello_body(cipher=0x1301, extensions=[ext(43, u16s([0x0304]))])
    data = record(22, handshake(2, hrr)) + record(20, b"\x01") + record(22, handshake(2, real))
    stream = TlsStream(False)
    hellos = [i.hello for i in stream.feed(data, 1, 1.0) if isinstance(i, ServerHelloItem)]
    assert [h.is_hello_retry for h in hellos] == [True, False]
    assert stream.encrypted


def test_not_tls_raises_and_the_stream_stays_dead() -> None:
    stream = TlsStream(True)
    with pytest.raises(MalformedError):
        stream.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, 1.0)
    assert stream.feed(record(23, b"abc"), 2, 1.0) == []


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00", b"\x00\x00\x01\x00"],
    ids=["empty", "list-length-cut", "certificate-length-cut"],
)
def test_truncated_certificate_list_names_the_truncated_field(body: bytes) -> None:
    """A length field cut short (the 24-bit lengths start with one octet) is said as
    such, as the reference parser of the hello differential test says it."""
    with pytest.raises(MalformedError) as caught:
        parse_certificate_list(body)
    assert str(caught.value) == "truncated TLS field"


def test_bad_header_mid_stream_raises() -> None:
    stream = TlsStream(True)
    stream.feed(record(23, b"abc"), 1, 1.0)
    with pytest.raises(MalformedError):
        stream.feed(b"\x17\x03\x03\xff\xff", 2, 1.0)


def test_malformed_client_hello_in_stream_raises() -> None:
    with pytest.raises(MalformedError):
        TlsStream(True).feed(record(22, handshake(1, b"\x03\x03short")), 1, 1.0)


def test_gap_resyncs_on_a_segment_that_starts_with_a_record() -> None:
    stream = TlsStream(False)
    stream.feed(record(22, handshake(2, server_hello_body())) + record(23, bytes(10))[:8], 1, 1.0)
    stream.gap()
    assert stream.feed(b"\x99" * 300, 2, 1.0) == []  # middle of an unknown record: dropped
    items = stream.feed(record(23, bytes(30)) + record(21, b"\x01\x00"), 3, 1.0)
    assert [(i.content_type, i.length) for i in items if isinstance(i, RecordItem)] == [
        (23, 30),
        (21, 2),
    ]
    # a bad header after a gap means we synchronised on noise: resync, never raise
    assert stream.feed(b"\x17\x03\x03\x00\x02ab\xff\xff\xff\xff\xff", 4, 1.0) != []
    assert stream.feed(record(23, b"x"), 5, 1.0)[0] == RecordItem(23, 1, 5, 1.0)


def test_gap_turns_handshake_parsing_off() -> None:
    stream = TlsStream(True)
    stream.gap()
    items = stream.feed(record(22, tls13_client_hello()), 1, 1.0)
    assert [type(i) for i in items] == [RecordItem]


def test_max_records_truncates() -> None:
    stream = TlsStream(False, max_records=3)
    items = stream.feed(record(23, b"a") * 5, 1, 1.0)
    assert len(items) == 3 and stream.records_truncated


def test_handshake_cap() -> None:
    cert = handshake(11, (10_003).to_bytes(3, "big") + (10_000).to_bytes(3, "big") + bytes(10_000))
    data = b"".join(record(22, cert[i : i + 4000]) for i in range(0, len(cert), 4000))
    stream = TlsStream(False, max_handshake=5000)
    items = stream.feed(data, 1, 1.0)
    assert stream.handshake_truncated
    assert not any(isinstance(i, CertificateItem) for i in items)
    assert sum(isinstance(i, RecordItem) for i in items) == 3
    items = TlsStream(False, max_handshake=20_000).feed(data, 1, 1.0)
    assert [len(i.certs[0]) for i in items if isinstance(i, CertificateItem)] == [10_000]


# ---------------------------------------------------------------------------
# Bulk application data: the skip path


def test_bulk_record_over_many_segments_costs_no_buffering() -> None:
    stream = TlsStream(False)
    stream.set_tls13()
    body = bytes(MAX_RECORD - 2048)
    data = record(23, body) * 3
    segments = [data[i : i + 1400] for i in range(0, len(data), 1400)]
    items: list[TlsItem] = []
    for n, seg in enumerate(segments):
        items.extend(stream.feed(seg, n, float(n)))
        assert len(stream._hs) == 0  # nothing of the bodies is kept
    assert [(i.length, i.frame) for i in items if isinstance(i, RecordItem)] == [
        (16384, (16389 - 1) // 1400),
        (16384, (2 * 16389 - 1) // 1400),
        (16384, (3 * 16389 - 1) // 1400),
    ]


SEGMENT = bytes(1400)


@pytest.mark.parametrize(
    ("left", "segment", "records", "left_after"),
    [
        (1401, SEGMENT, [], 1),
        (1400, SEGMENT, [1500], 0),
        (1399, bytes(1399) + b"\x17\x03\x03\x00\x01\x00", [1499, 1], 0),
    ],
    ids=["body-goes-on", "body-ends-with-the-segment", "next-record-in-the-segment"],
)
def test_bulk_skip_counts_the_body_and_ends_it_exactly(
    left: int, segment: bytes, records: list[int], left_after: int
) -> None:
    """A segment wholly inside a record body is only counted (the fast path; its speed is
    measured in bench/, not here); a segment that reaches the body's end closes the
    record, and a header after it in the same segment starts the next."""
    stream = TlsStream(False)
    stream.set_tls13()
    length = 100 + left  # the first segment carries the header and 100 octets of body
    assert stream.feed(b"\x17\x03\x03" + length.to_bytes(2, "big") + bytes(100), 1, 0.0) == []
    items = stream.feed(segment, 2, 1.0)
    assert [(i.length, i.frame) for i in items if isinstance(i, RecordItem)] == [
        (n, 2) for n in records
    ]
    assert stream._body_left == left_after
    assert len(stream._hs) == 0 and stream._hdr == b""


# ---------------------------------------------------------------------------
# Corpus


@dataclass
class Flow:
    key: tuple[str, int, str, int]
    from_client: bool
    items: list[TlsItem] = field(default_factory=list)
    stream: TlsStream | None = None
    payload_bytes: int = 0
    error: str | None = None


def _tcp_payload(ip: Any, tcp: Any) -> bytes:
    """The TCP payload bytes, from the IP length (not scapy's layers: once any test has
    imported scapy.layers.tls, scapy dissects port-443 payloads as TLS, not Raw)."""
    data = bytes(tcp)[int(tcp.dataofs) * 4 :]
    if ip.version == 4:
        length = int(ip.len) - int(ip.ihl) * 4 - int(tcp.dataofs) * 4
    else:
        length = int(ip.plen) - (len(bytes(ip.payload)) - len(bytes(tcp))) - int(tcp.dataofs) * 4
    return data[: max(length, 0)]  # drops Ethernet padding


def _tcp_segments(path: Path) -> tuple[dict[tuple[str, int, str, int], list], set]:
    from scapy.all import IP, TCP, IPv6, rdpcap  # type: ignore[attr-defined]

    flows: dict[tuple[str, int, str, int], list] = {}
    syn_senders: set[tuple[str, int, str, int]] = set()
    for frame, pkt in enumerate(rdpcap(str(path)), start=1):
        if TCP not in pkt:
            continue
        ip = pkt[IP] if IP in pkt else pkt[IPv6]
        tcp = pkt[TCP]
        key = (str(ip.src), int(tcp.sport), str(ip.dst), int(tcp.dport))
        if tcp.flags & 0x02 and not tcp.flags & 0x10:
            syn_senders.add(key)
        payload = _tcp_payload(ip, tcp)
        if payload:
            flows.setdefault(key, []).append((int(tcp.seq), frame, float(pkt.time), payload))
    return flows, syn_senders


def corpus_flows(relative: str, **stream_kw: int) -> list[Flow]:
    """Every TCP flow of a capture run through TlsStream (in-order, gaps reported)."""
    segments, syn_senders = _tcp_segments(corpus_path(relative))
    out = []
    for key, segs in segments.items():
        segs.sort(key=lambda s: (s[0], s[1]))
        reverse = (key[2], key[3], key[0], key[1])
        if key in syn_senders or reverse in syn_senders:
            from_client = key in syn_senders
        else:
            from_client = key[3] < key[1]
        flow = Flow(key, from_client)
        if not looks_like_tls(segs[0][3]):
            continue
        stream = flow.stream = TlsStream(from_client, **stream_kw)
        next_seq = segs[0][0]
        for seq, frame, ts, payload in segs:
            if seq + len(payload) <= next_seq:
                continue  # retransmission
            if seq > next_seq:
                stream.gap()
            payload = payload[max(0, next_seq - seq) :]
            next_seq = max(next_seq, seq) + len(payload)
            flow.payload_bytes += len(payload)
            try:
                flow.items.extend(stream.feed(payload, frame, ts))
            except MalformedError as exc:
                flow.error = str(exc)
                break
        out.append(flow)
    return out


def client_hellos(relative: str) -> list[ClientHelloItem]:
    return [
        i
        for f in corpus_flows(relative)
        if f.from_client
        for i in f.items
        if isinstance(i, ClientHelloItem)
    ]


TCP_HELLO_CAPTURES = [
    "zeek/tls13-ech/tls13-ech.pcap",
    "zeek/tls13-chrome-kyber/chrome-1250-tls-x25519-kyber.pcap",
    "zeek/tls12-fragmented-handshake/tls-fragmented-handshake.pcap.gz",
    "zeek/tls12-no-sni/tls1.2.pcap",
    "suricata-verify/tls-client-hello-frag-mtu300/dump_mtu300.pcap",
    "suricata-verify/ja4-tls/input.pcap",
    "suricata-verify/ja4-tls-quic/input.pcap",
    "ndpi/dot-google-no-sni/dns_dot.pcap",
    "ndpi/dot-android10-private-dns/googledns_android10.pcap",
    "ndpi/doh-cloudflare-sni/dns_doh.pcap",
    "ndpi/doh-1.1.1.1-no-sni/doh.pcapng",
    "ndpi/tls-ech/tls_ech.pcapng",
    "ndpi/tls-esni/encrypted_sni.pcap",
    "ndpi/tls-esni-and-sni/tls_esni_sni_both.pcap",
    "ndpi/tls13-reassembly/tls_2_reasms.pcapng",
]


@dataclass(frozen=True)
class TsharkHello:
    frame: int
    sni: str | None
    alpn: tuple[str, ...]
    ja3: str


def tshark_tcp_hellos(relative: str) -> list[TsharkHello]:
    """Section (b) of the transcript: the TCP ClientHellos tshark 4.0.17 found."""
    text = corpus_path(relative + ".tshark.txt").read_text()
    section = text.split("## (b) ", 1)[1].split("\n## ", 1)[0]
    out = []
    for line in section.splitlines()[1:]:  # [0] is the rest of the heading
        if not line or line[0] in "#$(":
            continue
        cols = line.split("\t")
        # frame ip.src ipv6.src ip.dst ipv6.dst tcp.dstport udp.dstport quic.version
        # server_name alpn ja3 legacy_version supported_versions
        if not cols[5]:
            continue
        alpn = tuple(cols[9].split("|")) if cols[9] else ()
        out.append(TsharkHello(int(cols[0]), cols[8] or None, alpn, cols[10]))
    return out


def tshark_ech_esni_count(relative: str) -> int:
    text = corpus_path(relative + ".tshark.txt").read_text()
    section = text.split("## (b3) ", 1)[1].split("\n## ", 1)[0]
    return sum(1 for line in section.splitlines()[2:] if line and line[0].isdigit())


@pytest.mark.corpus
@pytest.mark.parametrize("relative", TCP_HELLO_CAPTURES)
def test_sni_and_alpn_match_tshark(relative: str) -> None:
    expected = sorted((h.frame, h.sni, h.alpn) for h in tshark_tcp_hellos(relative))
    got = sorted((i.frame, i.hello.sni, i.hello.alpn) for i in client_hellos(relative))
    assert expected, "the transcript lists TCP ClientHellos for this capture"
    assert got == expected


@pytest.mark.corpus
@pytest.mark.parametrize("relative", TCP_HELLO_CAPTURES)
def test_no_flow_fails_and_records_cover_the_stream(relative: str) -> None:
    for flow in corpus_flows(relative, max_handshake=1 << 20):
        assert flow.error is None, (flow.key, flow.error)
        records = [i for i in flow.items if isinstance(i, RecordItem)]
        stream = flow.stream
        assert stream is not None
        # Each complete record is 5 header bytes plus its length; at most one record is
        # still open at the end of the capture.
        covered = sum(5 + r.length for r in records)
        open_bytes = len(stream._hdr) + (
            stream._length - stream._body_left if stream._body_left else 0
        )
        assert covered + open_bytes + (5 if stream._body_left else 0) == flow.payload_bytes


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("relative", "ech", "esni"),
    [
        ("zeek/tls13-ech/tls13-ech.pcap", 2, 0),
        ("ndpi/tls-ech/tls_ech.pcapng", 1, 0),
        ("ndpi/tls-esni/encrypted_sni.pcap", 0, 3),
        ("ndpi/tls-esni-and-sni/tls_esni_sni_both.pcap", 0, 2),
        ("zeek/tls12-no-sni/tls1.2.pcap", 0, 0),
    ],
)
def test_ech_and_esni_flags(relative: str, ech: int, esni: int) -> None:
    """Oracle: tshark section (b3) counts, split by extension per the MANIFEST."""
    hellos = [i.hello for i in client_hellos(relative)]
    assert sum(h.ech for h in hellos) == ech
    assert sum(h.esni for h in hellos) == esni
    assert ech + esni == tshark_ech_esni_count(relative)


@pytest.mark.corpus
def test_client_hello_over_three_segments() -> None:
    """suricata-verify tls-client-hello-frag-mtu300: tls.sni www.google.com (test.yaml)."""
    flows = corpus_flows("suricata-verify/tls-client-hello-frag-mtu300/dump_mtu300.pcap")
    client = next(f for f in flows if f.from_client)
    hello = next(i for i in client.items if isinstance(i, ClientHelloItem))
    assert hello.hello.sni == "www.google.com"
    first_record = next(i for i in client.items if isinstance(i, RecordItem))
    assert first_record.length > 300  # one record, three segments


@pytest.mark.corpus
def test_dot_android_five_hellos_for_dns_google() -> None:
    hellos = client_hellos("ndpi/dot-android10-private-dns/googledns_android10.pcap")
    assert [h.hello.sni for h in hellos] == ["dns.google"] * 5
    assert all(h.hello.alpn == () for h in hellos)


@pytest.mark.corpus
def test_ip_literal_sni_is_reported_and_flagged() -> None:
    """Zeek ssl.log server_name 104.236.167.107; RFC 6066 §3 forbids IP literals."""
    (hello,) = client_hellos("zeek/tls12-fragmented-handshake/tls-fragmented-handshake.pcap.gz")
    assert hello.hello.sni == "104.236.167.107"
    assert hello.hello.sni_is_ip_literal
    assert hello.hello.record_version == 0x0301


def zeek_ssl_rows(relative: str) -> list[dict[str, str]]:
    text = corpus_path(relative).read_text()
    fields: list[str] = []
    rows = []
    for line in text.splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"), strict=True)))
    return rows


def server_hellos(flows: list[Flow]) -> dict[tuple[str, int], ServerHelloItem]:
    """ServerHello per client endpoint."""
    return {
        (f.key[2], f.key[3]): i
        for f in flows
        if not f.from_client
        for i in f.items
        if isinstance(i, ServerHelloItem)
    }


ZEEK_SSL = [
    (
        "zeek/tls12-no-sni/tls1.2.pcap",
        "zeek/tls12-no-sni/expected/scripts.base.protocols.ssl.tls-1.2/ssl.log",
    ),
    (
        "zeek/tls13-ech/tls13-ech.pcap",
        "zeek/tls13-ech/expected/scripts.base.protocols.ssl.tls13-encrypted-client-hello/ssl.log",
    ),
    (
        "zeek/tls12-fragmented-handshake/tls-fragmented-handshake.pcap.gz",
        "zeek/tls12-fragmented-handshake/expected/scripts.base.protocols.ssl.fragment/ssl.log",
    ),
]


@pytest.mark.corpus
@pytest.mark.parametrize(("capture", "log"), ZEEK_SSL)
def test_server_hello_matches_zeek_ssl_log(capture: str, log: str) -> None:
    by_client = server_hellos(corpus_flows(capture))
    rows = zeek_ssl_rows(log)
    assert rows
    for row in rows:
        sh = by_client[(row["id.orig_h"], int(row["id.orig_p"]))].hello
        assert version_name(sh.version).replace(".", "") == row["version"]
        assert cipher_name(sh.cipher) == row["cipher"]


@pytest.mark.corpus
def test_certificate_chain_matches_zeek_fingerprints() -> None:
    """Zeek ssl.log cert_chain_fps are sha256 over each DER certificate."""
    flows = corpus_flows("zeek/tls12-no-sni/tls1.2.pcap")
    (row,) = zeek_ssl_rows("zeek/tls12-no-sni/expected/scripts.base.protocols.ssl.tls-1.2/ssl.log")
    certs = [i for f in flows for i in f.items if isinstance(i, CertificateItem)]
    assert len(certs) == 1
    assert [hashlib.sha256(c).hexdigest() for c in certs[0].certs] == row["cert_chain_fps"].split(
        ","
    )


@pytest.mark.corpus
def test_huge_certificate_is_capped_then_parsed_with_a_larger_cap() -> None:
    """Zeek fragment test: a 10,000-SAN certificate over ~340 KB of handshake records."""
    capture = "zeek/tls12-fragmented-handshake/tls-fragmented-handshake.pcap.gz"
    server = next(f for f in corpus_flows(capture) if not f.from_client)
    assert server.stream is not None and server.stream.handshake_truncated
    assert any(isinstance(i, ServerHelloItem) for i in server.items)
    assert not any(isinstance(i, CertificateItem) for i in server.items)
    server = next(f for f in corpus_flows(capture, max_handshake=1 << 20) if not f.from_client)
    (certs,) = [i for i in server.items if isinstance(i, CertificateItem)]
    (row,) = zeek_ssl_rows(ZEEK_SSL[2][1])
    assert hashlib.sha256(certs.certs[0]).hexdigest() == row["cert_chain_fps"]


@pytest.mark.corpus
def test_dot_google_server_certificate_and_cipher() -> None:
    """nDPI dns_dot.pcap.out: cipher TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    Certificate SHA-1 BE:73:46:2A:..."""
    flows = corpus_flows("ndpi/dot-google-no-sni/dns_dot.pcap")
    server = next(f for f in flows if not f.from_client)
    sh = next(i for i in server.items if isinstance(i, ServerHelloItem))
    assert cipher_name(sh.hello.cipher) == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    assert version_name(sh.hello.version) == "TLSv1.2"
    (certs,) = [i for i in server.items if isinstance(i, CertificateItem)]
    sha1 = hashlib.sha1(certs.certs[0]).hexdigest().upper()
    assert sha1 == "BE73462A2EFBA9E942D071101B8CBF446A5DAD53"
    assert server.stream is not None and server.stream.encrypted


@pytest.mark.corpus
def test_tls13_flow_records_after_server_hello_are_app_data() -> None:
    """doh-cloudflare-sni: TLS 1.3 (nDPI), so after the ServerHello record only
    app-data (23) and the compat CCS (20) appear."""
    flows = corpus_flows("ndpi/doh-cloudflare-sni/dns_doh.pcap")
    server = next(f for f in flows if not f.from_client)
    records = [i for i in server.items if isinstance(i, RecordItem)]
    assert records[0].content_type == 22
    assert {r.content_type for r in records[1:]} <= {20, 23}
    assert len(records) > 10
    assert all(0 < r.length <= MAX_RECORD for r in records)
    sh = next(i for i in server.items if isinstance(i, ServerHelloItem))
    assert version_name(sh.hello.version) == "TLSv1.3"


@pytest.mark.corpus
def test_mid_stream_flows_without_handshake() -> None:
    """dot-android10: the 2 mid-stream 853 flows carry no hello (MANIFEST note)."""
    flows = corpus_flows("ndpi/dot-android10-private-dns/googledns_android10.pcap")
    hellos = [i for f in flows for i in f.items if isinstance(i, ClientHelloItem)]
    assert len(hellos) == 5


# -- server_name lists with several entries, end to end, tshark as the oracle ------------

SERVER_NAME_LISTS: list[list[tuple[int, bytes]]] = [
    [(0, b"first.example"), (0, b"second.example")],
    [(1, b"not-a-host.example"), (0, b"real.example")],
    [(5, b"only.example")],
    [(0, b"a.example"), (255, b"b.example"), (0, b"c.example")],
]


def _server_name_hello(entries: list[tuple[int, bytes]]) -> bytes:
    names = b"".join(bytes([t]) + vec16(n) for t, n in entries)
    body = client_hello_body(extensions=[ext(0, vec16(names)), alpn_ext([b"dot"])])
    return record(22, handshake(1, body), 0x0301)


def test_sni_is_the_first_host_name_as_tshark_lists_them(tmp_path: Path) -> None:
    """Oracle: tshark 4.0's server_name entries (type and name, in wire order): RFC 6066 §3
    defines only host_name (0); the ClientHello's SNI is the first such entry."""
    import shutil
    import subprocess

    from scapy.all import IP, TCP, Ether, wrpcap

    from dotaudit.model.events import TlsClientHelloSeen
    from dotaudit.pipeline import CaptureRun

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    packets = []
    client, server = "192.0.2.10", "198.51.100.53"
    for i, entries in enumerate(SERVER_NAME_LISTS):
        sport = 41000 + i
        flow = [
            Ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=853, flags="S", seq=9),
            Ether() / IP(src=server, dst=client)
            / TCP(sport=853, dport=sport, flags="SA", seq=99, ack=10),
            Ether() / IP(src=client, dst=server)
            / TCP(sport=sport, dport=853, flags="PA", seq=10, ack=100)
            / _server_name_hello(entries),
        ]  # fmt: skip
        for j, packet in enumerate(flow):
            packet.time = 10.0 + i + j * 0.001
        packets += flow
    pcap = tmp_path / "server-names.pcap"
    wrpcap(str(pcap), packets)
    argv = ["tshark", "-n", "-r", str(pcap), "-d", "tcp.port==853,tls", "-Y",
            "tls.handshake.type == 1", "-T", "fields", "-e", "frame.number",
            "-e", "tls.handshake.extensions_server_name_type",
            "-e", "tls.handshake.extensions_server_name",
            "-E", "occurrence=a", "-E", "aggregator=|"]  # fmt: skip
    lines = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    expected: dict[int, str | None] = {}
    for line in lines:
        frame, types, names = line.split("\t")
        hosts = [n for t, n in zip(types.split("|"), names.split("|"), strict=True) if t == "0"]
        expected[int(frame)] = hosts[0] if hosts else None
    assert len(expected) == len(SERVER_NAME_LISTS)
    got = {e.frame: e.sni for e in CaptureRun(pcap).events() if isinstance(e, TlsClientHelloSeen)}
    assert got == expected
    assert sorted(v for v in got.values() if v) == ["a.example", "first.example", "real.example"]


def test_escape_text_keeps_printable_ascii_and_escapes_the_rest() -> None:
    from dotaudit.dissect.tls import escape_text

    # The slow path (a byte needing escape is present) keeps space and "~" as they are,
    # and escapes DEL, the backslash and anything outside 0x20..0x7e.
    assert escape_text(b" a~\x7f") == " a~\\x7f"
    assert escape_text(b"\x1f \\") == "\\x1f \\x5c"
    assert escape_text(b"\x80!") == "\\x80!"
    assert escape_text(b"plain name") == "plain name"


def test_reader_reads_up_to_its_end_and_never_past() -> None:
    from dotaudit.dissect.tls import _Reader

    whole = _Reader(b"\x01\x02\x03")
    assert (whole.pos, whole.end, whole.remaining()) == (0, 3, 3)
    # A window of bytes 1..3 of a longer buffer: the byte after it is never read.
    r = _Reader(b"\x01\x02\x03\x04\x05", 1, 4)
    assert r.remaining() == 3
    assert r.u16() == 0x0203 and r.remaining() == 1
    assert r.u8() == 0x04 and r.remaining() == 0
    with pytest.raises(MalformedError, match=r"^truncated TLS field$"):
        r.u8()
    one_left = _Reader(b"\x01\x02\x03", 0, 2)
    assert one_left.u8() == 0x01
    with pytest.raises(MalformedError, match=r"^truncated TLS field$"):
        one_left.u16()
    assert one_left.u8() == 0x02  # the failed read moved nothing


def test_reader_take_and_sub_stop_at_the_container() -> None:
    from dotaudit.dissect.tls import _Reader

    r = _Reader(b"abcdefg", 1, 5)
    assert r.take(0) == b"" and r.pos == 1
    inner = r.sub(2)
    assert (inner.pos, inner.end, r.pos) == (1, 3, 3)
    assert inner.take(2) == b"bc" and inner.remaining() == 0
    with pytest.raises(MalformedError, match=r"^TLS length runs past its container$"):
        inner.take(1)
    with pytest.raises(MalformedError, match=r"^TLS length runs past its container$"):
        r.sub(3)
    with pytest.raises(MalformedError, match=r"^TLS length runs past its container$"):
        r.take(3)
    assert r.take(2) == b"de" and r.remaining() == 0


def _sni_body(*entries: tuple[int, bytes]) -> bytes:
    listed = b"".join(bytes([kind]) + len(n).to_bytes(2, "big") + n for kind, n in entries)
    return len(listed).to_bytes(2, "big") + listed


def test_sni_is_the_first_host_name_entry() -> None:
    # RFC 6066 §3: a list of (name_type, name); only host_name (0) is defined.
    from dotaudit.dissect.tls import _parse_sni, _Reader

    body = _sni_body((1, b"other.test"), (0, b"first.test"), (0, b"second.test"))
    assert _parse_sni(_Reader(body)) == "first.test"
    assert _parse_sni(_Reader(_sni_body((0, b"bad\\name\x00")))) == "bad\\x5cname\\x00"
    assert _parse_sni(_Reader(_sni_body((1, b"other.test")))) is None
    assert _parse_sni(_Reader(_sni_body())) is None
    assert _parse_sni(_Reader(b"")) is None  # a server's empty acknowledgement
    with pytest.raises(MalformedError):
        _parse_sni(_Reader(_sni_body((0, b"dns.test"))[:-1]))


def test_alpn_lists_every_protocol_in_order() -> None:
    from dotaudit.dissect.tls import _parse_alpn, _Reader

    protos = b"\x03dot\x02h2\x00\x08http/1.1"
    assert _parse_alpn(_Reader(len(protos).to_bytes(2, "big") + protos)) == (
        "dot", "h2", "", "http/1.1")  # fmt: skip
    assert _parse_alpn(_Reader(b"\x00\x00")) == ()
    with pytest.raises(MalformedError):
        _parse_alpn(_Reader(b"\x00\x03\x03do"))
