"""The offset-based ClientHello/ServerHello parsers against the earlier _Reader-based ones.

Oracle: ``reference_parse`` and ``reference_server_parse`` below, the straightforward
field-by-field parsers that the fast ones replaced (themselves checked against tshark and
nDPI in test_tls.py). On any input, old and new must return equal hellos or raise
MalformedError with the same message.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.dissect import tls
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


def reference_parse(body: bytes) -> ClientHello:
    r = tls._Reader(body)
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
                found["sni"] = tls._parse_sni(data)
            elif etype == EXT_ALPN:
                found["alpn"] = tls._parse_alpn(data)
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
    r = tls._Reader(body)
    version = r.u16()
    is_hrr = r.take(32) == tls.HRR_RANDOM
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
                names = tls._parse_alpn(data)
                if len(names) != 1:
                    raise MalformedError("server ALPN must name exactly one protocol")
                alpn = names[0]
    return ServerHello(
        version=version, cipher=cipher, alpn=alpn, extensions=tuple(types), is_hello_retry=is_hrr
    )


FULL_SERVER = (
    struct.pack("!H", 0x0303)
    + tls.HRR_RANDOM
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
