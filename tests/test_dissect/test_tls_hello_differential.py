"""The offset-based ClientHello parser against the earlier _Reader-based one.

Oracle: ``reference_parse`` below, the straightforward field-by-field parser that the fast
one replaced (itself checked against tshark and nDPI in test_tls.py). On any input, both
must return equal hellos or raise MalformedError with the same message.
"""

from __future__ import annotations

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
    parse_client_hello,
)
from dotaudit.errors import MalformedError
from tests.test_dissect.test_tls import alpn_ext, client_hello_body, ext, sni_ext, u16s, vec8, vec16


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
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
