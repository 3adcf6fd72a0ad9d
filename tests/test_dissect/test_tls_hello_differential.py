"""The offset-based ClientHello/ServerHello parsers against reference parsers.

Oracle: ``reference_parse`` and ``reference_server_parse`` below, straightforward
field-by-field parsers over their own bounds-checked ``Cursor``, written from RFC 8446
§4.1.2-4.1.3 (hellos), RFC 6066 §3 (server_name: the first host_name entry; other
name types are skipped) and RFC 7301 §3.1 (ALPN); they share no parsing code with
dotaudit. On any input, product and reference must return equal hellos or raise
MalformedError with the same message (the messages are the product's documented ones).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.dissect.tls import (
    EXT_ALPN,
    EXT_EC_POINT_FORMATS,
    EXT_ECH,
    EXT_ESNI,
    EXT_GROUPS,
    EXT_SIGNATURE_ALGORITHMS,
    EXT_SNI,
    EXT_SUPPORTED_VERSIONS,
    ClientHello,
    ServerHello,
    parse_client_hello,
    parse_server_hello,
)
from dotaudit.errors import MalformedError
from tests.fuzzing import examples
from tests.test_dissect.test_tls import (
    alpn_ext,
    client_hello_body,
    ext,
    server_hello_body,
    sni_ext,
    u16s,
    vec8,
    vec16,
)

TRUNCATED = "truncated TLS field"
PAST = "TLS length runs past its container"
ODD = "odd length for a list of 16-bit values"
HOST_NAME = 0
"""RFC 6066 §3: the only server_name type defined."""
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
"""RFC 8446 §4.1.3: the ServerHello.random of a HelloRetryRequest."""


class Cursor:
    """The references' own reader: every overrun is a MalformedError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def remaining(self) -> int:
        return len(self.data) - self.at

    def u8(self) -> int:
        if self.remaining() < 1:
            raise MalformedError(TRUNCATED)
        self.at += 1
        return self.data[self.at - 1]

    def u16(self) -> int:
        if self.remaining() < 2:
            raise MalformedError(TRUNCATED)
        self.at += 2
        return int.from_bytes(self.data[self.at - 2 : self.at], "big")

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise MalformedError(PAST)
        self.at += n
        return self.data[self.at - n : self.at]

    def sub(self, n: int) -> Cursor:
        return Cursor(self.take(n))

    def u16_list(self, nbytes: int) -> tuple[int, ...]:
        if nbytes % 2:
            raise MalformedError(ODD)
        data = self.take(nbytes)
        return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, nbytes, 2))


def reference_text(raw: bytes) -> str:
    """docs/events.md: wire text is printable ASCII, other bytes as \\xNN; the backslash
    is escaped too, so that the text stays unambiguous."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def reference_sni(data: Cursor) -> str | None:
    if not data.remaining():
        return None  # an empty extension: what a server echoes; no name
    names = data.sub(data.u16())
    first: str | None = None
    while names.remaining():
        name_type = names.u8()
        name = names.take(names.u16())
        if name_type == HOST_NAME and first is None:
            first = reference_text(name)
    return first


def reference_alpn(data: Cursor) -> tuple[str, ...]:
    protocols = data.sub(data.u16())
    out: list[str] = []
    while protocols.remaining():
        out.append(reference_text(protocols.take(protocols.u8())))
    return tuple(out)


def reference_parse(body: bytes) -> ClientHello:
    r = Cursor(body)
    legacy_version = r.u16()
    r.take(32)
    sid_len = r.u8()
    if sid_len > 32:
        raise MalformedError("ClientHello session_id longer than 32 bytes")
    r.take(sid_len)
    cs_len = r.u16()
    if cs_len == 0:
        raise MalformedError("ClientHello offers no cipher suites")
    ciphers = r.u16_list(cs_len)
    comp_len = r.u8()
    if comp_len == 0:
        raise MalformedError("ClientHello offers no compression method")
    r.take(comp_len)
    types: list[int] = []
    found: dict[str, object] = {}
    if r.remaining():
        exts = r.sub(r.u16())
        while exts.remaining():
            etype = exts.u16()
            data = exts.sub(exts.u16())
            types.append(etype)
            if etype == EXT_SNI:
                found["sni"] = reference_sni(data)
            elif etype == EXT_ALPN:
                found["alpn"] = reference_alpn(data)
            elif etype == EXT_SUPPORTED_VERSIONS:
                found["supported_versions"] = data.u16_list(data.u8())
            elif etype == EXT_SIGNATURE_ALGORITHMS:
                found["signature_algorithms"] = data.u16_list(data.u16())
            elif etype == EXT_GROUPS:
                found["groups"] = data.u16_list(data.u16())
            elif etype == EXT_EC_POINT_FORMATS:
                found["ec_point_formats"] = tuple(data.take(data.u8()))
    return ClientHello(
        legacy_version=legacy_version,
        record_version=None,
        ciphers=ciphers,
        extensions=tuple(types),
        sni=found.get("sni"),  # type: ignore[arg-type]
        alpn=found.get("alpn", ()),  # type: ignore[arg-type]
        supported_versions=found.get("supported_versions", ()),  # type: ignore[arg-type]
        signature_algorithms=found.get("signature_algorithms", ()),  # type: ignore[arg-type]
        groups=found.get("groups", ()),  # type: ignore[arg-type]
        ec_point_formats=found.get("ec_point_formats", ()),  # type: ignore[arg-type]
        ech=EXT_ECH in types,
        esni=EXT_ESNI in types,
    )


def outcome(parse: object, body: bytes) -> object:
    try:
        return parse(body)  # type: ignore[operator]
    except MalformedError as exc:
        return ("malformed", str(exc))


FULL = client_hello_body(
    ciphers=[0x0A0A, 0x1301, 0xC02F],
    session_id=bytes(32),
    extensions=[
        sni_ext(b"dns.example"),
        alpn_ext([b"h2", b"dot"]),
        ext(EXT_SUPPORTED_VERSIONS, vec8(u16s([0x0304, 0x0303]))),
        ext(EXT_SIGNATURE_ALGORITHMS, vec16(u16s([0x0403, 0x0804]))),
        ext(EXT_GROUPS, vec16(u16s([0x001D, 0x0017]))),
        ext(EXT_EC_POINT_FORMATS, vec8(b"\x00")),
        ext(EXT_ECH, b"\x01\x02"),
        ext(0x0017, b""),
    ],
)
EXT_TYPES = [
    EXT_SNI,
    EXT_ALPN,
    EXT_SUPPORTED_VERSIONS,
    EXT_SIGNATURE_ALGORITHMS,
    EXT_GROUPS,
    EXT_EC_POINT_FORMATS,
    EXT_ECH,
    0x0017,
]
FUZZ = settings(
    max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_full_hello_and_every_truncation_agree() -> None:
    assert parse_client_hello(FULL) == reference_parse(FULL)
    assert parse_client_hello(FULL).sni == "dns.example"
    for cut in range(len(FULL)):
        assert outcome(parse_client_hello, FULL[:cut]) == outcome(reference_parse, FULL[:cut])


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_agree(body: bytes) -> None:
    assert outcome(parse_client_hello, body) == outcome(reference_parse, body)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(EXT_TYPES), st.binary(max_size=12)), max_size=6),
    st.binary(max_size=3),
)
def test_hostile_extension_bodies_agree(exts: list[tuple[int, bytes]], tail: bytes) -> None:
    body = client_hello_body(extensions=[ext(t, d) for t, d in exts]) + tail
    assert outcome(parse_client_hello, body) == outcome(reference_parse, body)


@FUZZ
@given(st.integers(0, len(FULL) - 1), st.integers(0, 255))
def test_single_byte_mutations_agree(index: int, value: int) -> None:
    body = bytearray(FULL)
    body[index] = value
    assert outcome(parse_client_hello, bytes(body)) == outcome(reference_parse, bytes(body))


def reference_server_parse(body: bytes) -> ServerHello:
    r = Cursor(body)
    version = r.u16()
    is_hrr = r.take(32) == HRR_RANDOM
    sid_len = r.u8()
    if sid_len > 32:
        raise MalformedError("ServerHello session_id longer than 32 bytes")
    r.take(sid_len)
    cipher = r.u16()
    r.u8()
    types: list[int] = []
    alpn: str | None = None
    if r.remaining():
        exts = r.sub(r.u16())
        while exts.remaining():
            etype = exts.u16()
            data = exts.sub(exts.u16())
            types.append(etype)
            if etype == EXT_SUPPORTED_VERSIONS:
                version = data.u16()
            elif etype == EXT_ALPN:
                names = reference_alpn(data)
                if len(names) != 1:
                    raise MalformedError("server ALPN must name exactly one protocol")
                alpn = names[0]
    return ServerHello(
        version=version, cipher=cipher, alpn=alpn, extensions=tuple(types), is_hello_retry=is_hrr
    )


FULL_SERVER = (
    struct.pack("!H", 0x0303)
    + HRR_RANDOM
    + vec8(bytes(32))
    + struct.pack("!HB", 0x1301, 0)
    + vec16(
        ext(EXT_SUPPORTED_VERSIONS, u16s([0x0304])) + alpn_ext([b"dot"]) + ext(0x0033, b"\x00\x1d")
    )
)
SERVER_EXT_TYPES = [EXT_SUPPORTED_VERSIONS, EXT_ALPN, 0x0033]


def test_server_hello_and_every_truncation_agree() -> None:
    hello = parse_server_hello(FULL_SERVER)
    assert hello == reference_server_parse(FULL_SERVER)
    assert (hello.version, hello.alpn, hello.is_hello_retry) == (0x0304, "dot", True)
    for cut in range(len(FULL_SERVER)):
        cut_body = FULL_SERVER[:cut]
        assert outcome(parse_server_hello, cut_body) == outcome(reference_server_parse, cut_body)


@FUZZ
@given(st.binary(max_size=120))
def test_server_random_bytes_agree(body: bytes) -> None:
    assert outcome(parse_server_hello, body) == outcome(reference_server_parse, body)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(SERVER_EXT_TYPES), st.binary(max_size=8)), max_size=5),
    st.binary(max_size=3),
)
def test_server_hostile_extensions_agree(exts: list[tuple[int, bytes]], tail: bytes) -> None:
    body = server_hello_body(extensions=[ext(t, d) for t, d in exts]) + tail
    assert outcome(parse_server_hello, body) == outcome(reference_server_parse, body)


def server_name_entry(name_type: int, name: bytes) -> bytes:
    return bytes([name_type]) + vec16(name)


def server_name_ext(entries: list[tuple[int, bytes]]) -> bytes:
    return ext(EXT_SNI, vec16(b"".join(server_name_entry(t, n) for t, n in entries)))


@pytest.mark.parametrize(
    ("entries", "sni"),
    [
        ([(0, b"first.example"), (0, b"second.example")], "first.example"),
        ([(1, b"not-a-host.example"), (0, b"real.example")], "real.example"),
        ([(5, b"only.example")], None),
        ([(0, b"a.example"), (255, b"b.example")], "a.example"),
        ([(0, b"one.example"), (7, b"x"), (0, b"three.example")], "one.example"),
        ([(0, b"bad\\name\x00")], "bad\\x5cname\\x00"),
    ],
)
def test_sni_is_the_first_host_name_entry(entries: list[tuple[int, bytes]], sni: str) -> None:
    body = client_hello_body(extensions=[server_name_ext(entries), alpn_ext([b"dot"])])
    assert parse_client_hello(body).sni == sni
    assert reference_parse(body).sni == sni


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 0, 1, 2, 255]), st.binary(min_size=0, max_size=10)),
        max_size=5,
    ),
    st.lists(st.binary(max_size=6), max_size=4),
)
def test_server_name_and_alpn_lists_agree(
    entries: list[tuple[int, bytes]], protocols: list[bytes]
) -> None:
    body = client_hello_body(extensions=[server_name_ext(entries), alpn_ext(protocols)])
    assert outcome(parse_client_hello, body) == outcome(reference_parse, body)
    hosts = [name for name_type, name in entries if name_type == 0]
    hello = parse_client_hello(body)
    assert hello.sni == (reference_text(hosts[0]) if hosts else None)
    assert hello.alpn == tuple(reference_text(p) for p in protocols)
