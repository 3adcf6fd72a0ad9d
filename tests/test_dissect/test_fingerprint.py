"""JA3/JA4 conformance.

Oracles: FoxIO technical_details/JA4.md worked examples; suricata-verify ja4-tls and
ja4-tls-quic test.yaml (FoxIO reference output); nDPI ndpiReader .out JA4/JA3C; tshark
4.0.17 ``tls.handshake.ja3`` in every transcript's section (b).
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from dotaudit.dissect.fingerprint import ja3, ja3_string, ja4, ja4_alpn, ja4_version
from dotaudit.dissect.tls import ClientHello, escape_text, parse_client_hello
from tests.test_dissect.test_tls import (
    TCP_HELLO_CAPTURES,
    alpn_ext,
    client_hello_body,
    client_hellos,
    ext,
    sni_ext,
    tshark_tcp_hellos,
    u16s,
    vec8,
    vec16,
)

GREASE = [0x0A0A + 0x1010 * i for i in range(16)]

# The example hello of JA4.md ("JA4 = t13d1516h2_8daaf6152771_e5627efa2ab1").
SPEC_CIPHERS = [
    0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9,
    0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035,
]  # fmt: skip
SPEC_EXTS = [
    0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D,
    0x0005, 0x0023, 0x0012, 0x002B, 0xFF01, 0x000B, 0x000A, 0x0015,
]  # fmt: skip
SPEC_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def spec_hello(**changes: object) -> ClientHello:
    base = ClientHello(
        legacy_version=0x0303,
        record_version=0x0301,
        ciphers=tuple(SPEC_CIPHERS),
        extensions=tuple(SPEC_EXTS),
        sni="example.com",
        alpn=("h2", "http/1.1"),
        supported_versions=(0x0304, 0x0303),
        signature_algorithms=tuple(SPEC_SIGALGS),
        groups=(0x001D, 0x0017),
        ec_point_formats=(0,),
        ech=False,
        esni=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_ja4_spec_example() -> None:
    assert ja4(spec_hello()) == "t13d1516h2_8daaf6152771_e5627efa2ab1"


def test_ja4_spec_example_without_signature_algorithms() -> None:
    """JA4.md: "...,4469,ff01 = 6d807ffa2a79" when the hello has no signature algorithms."""
    assert ja4(spec_hello(signature_algorithms=())).endswith("_6d807ffa2a79")


def test_ja4_ignores_grease_everywhere() -> None:
    greasy = spec_hello(
        ciphers=(GREASE[0], *SPEC_CIPHERS),
        extensions=(GREASE[3], *SPEC_EXTS, GREASE[7]),
        supported_versions=(GREASE[2], 0x0304, 0x0303),
        signature_algorithms=tuple(SPEC_SIGALGS),
        groups=(GREASE[5], 0x001D),
    )
    assert ja4(greasy) == ja4(spec_hello())
    assert ja3(greasy) == ja3(spec_hello(groups=(0x001D,)))


def test_ja4_quic_prefix_and_no_sni() -> None:
    exts = tuple(e for e in SPEC_EXTS if e != 0)
    fp = ja4(spec_hello(extensions=exts, sni=None), quic=True)
    assert fp.startswith("q13i1515h2_8daaf6152771_")
    # SNI and ALPN are not part of the extension hash
    assert fp.split("_")[2] == "e5627efa2ab1"


@pytest.mark.parametrize(
    ("versions", "legacy", "expected"),
    [
        ((0x0304, 0x0303), 0x0303, "13"),
        ((), 0x0303, "12"),
        ((), 0x0302, "11"),
        ((), 0x0301, "10"),
        ((), 0x0300, "s3"),
        ((0x7F1C, 0x0304), 0x0303, "00"),  # a TLS 1.3 draft is numerically highest
        ((0x1A1A,), 0x0303, "12"),  # only GREASE: fall back to the legacy version
        ((), 0x1234, "00"),
    ],
)
def test_ja4_version(versions: tuple[int, ...], legacy: int, expected: str) -> None:
    assert ja4_version(spec_hello(supported_versions=versions, legacy_version=legacy)) == expected


@pytest.mark.parametrize(
    ("first_alpn", "expected"),
    [
        (b"h2", "h2"),
        (b"http/1.1", "h1"),
        (b"x", "xx"),
        (b"", "00"),
        # JA4.md hex-rule examples
        (b"\xab", "ab"),
        (b"\xab\xcd", "ad"),
        (b"\x30\xab", "3b"),
        (b"\x30\x31\xab\xcd", "3d"),
        (b"\x30\xab\xcd\x31", "01"),
        (b"\\", "5c"),  # the escape character itself survives the round trip
    ],
)
def test_ja4_alpn(first_alpn: bytes, expected: str) -> None:
    ch = parse_client_hello(client_hello_body(extensions=[alpn_ext([first_alpn, b"h3"])]))
    assert ch.alpn[0] == escape_text(first_alpn)
    assert ja4_alpn(ch) == expected


def test_ja4_no_alpn_and_empty_lists() -> None:
    ch = spec_hello(alpn=(), ciphers=(), extensions=(), signature_algorithms=())
    assert ja4(ch) == "t13i000000_000000000000_000000000000"


def test_ja4_counts_cap_at_99() -> None:
    ch = spec_hello(ciphers=tuple(range(1, 150)), extensions=tuple(range(0x100, 0x100 + 120)))
    assert ja4(ch).startswith("t13i9999h2_")


def test_ja3_string_layout() -> None:
    body = client_hello_body(
        version=0x0303,
        ciphers=[GREASE[1], 0xC02B, 0x002F],
        extensions=[
            ext(GREASE[2], b""),
            sni_ext(b"a.example"),
            ext(10, vec16(u16s([GREASE[4], 29, 23]))),
            ext(11, vec8(b"\x00\x01")),
        ],
    )
    ch = parse_client_hello(body)
    assert ja3_string(ch) == "771,49195-47,0-10-11,29-23,0-1"
    assert ja3(ch) == hashlib.md5(b"771,49195-47,0-10-11,29-23,0-1").hexdigest()


# --- corpus -----------------------------------------------------------------------

JA4_ORACLES = [
    # (capture, expected, oracle)
    ("suricata-verify/ja4-tls/input.pcap", "t12i1810s1_27d4652c4487_06a4338d0495", "suricata"),
    (
        "suricata-verify/ja4-tls-quic/input.pcap",
        "t13d1516h2_8daaf6152771_e5627efa2ab1",
        "suricata",
    ),
    ("ndpi/tls-ech/tls_ech.pcapng", "t13d1516h2_8daaf6152771_02713d6af862", "nDPI"),
    ("ndpi/doh-cloudflare-sni/dns_doh.pcap", "t13d1814h2_29a2cd9e9f10_d267a5f792d4", "nDPI"),
]


@pytest.mark.corpus
@pytest.mark.parametrize(("relative", "expected", "oracle"), JA4_ORACLES)
def test_ja4_matches_peer(relative: str, expected: str, oracle: str) -> None:
    (hello,) = client_hellos(relative)
    assert ja4(hello.hello) == expected, oracle


@pytest.mark.corpus
def test_ja4_android_dot_matches_ndpi() -> None:
    """nDPI googledns_android10.pcap.out: four hellos t12d150700_..., one t12d150800_..."""
    prints = sorted(
        ja4(h.hello)
        for h in client_hellos("ndpi/dot-android10-private-dns/googledns_android10.pcap")
    )
    assert prints == ["t12d150700_0707305c9f76_0f3b2bcde21d"] * 4 + [
        "t12d150800_0707305c9f76_120e542614af"
    ]


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("relative", "ndpi_ja4"),
    [
        ("ndpi/dot-google-no-sni/dns_dot.pcap", "t12d250900_7415a186c913_cdf51c020b42"),
        ("ndpi/doh-1.1.1.1-no-sni/doh.pcapng", "t13d1909h2_9dc949149365_97f8aa674fd9"),
    ],
)
def test_ja4_without_sni_says_i_where_ndpi_says_d(relative: str, ndpi_ja4: str) -> None:
    """nDPI prints ``d`` although it also reports "Missing SNI TLS Extn" and tshark finds no
    server_name; JA4.md says ``i`` when the SNI extension is absent. Everything else must
    match nDPI."""
    (hello,) = client_hellos(relative)
    assert hello.hello.sni is None and 0 not in hello.hello.extensions
    ours = ja4(hello.hello)
    assert ours[3] == "i"
    assert ours == ndpi_ja4[:3] + "i" + ndpi_ja4[4:]


@pytest.mark.corpus
def test_ja3_dot_google_matches_ndpi() -> None:
    """nDPI dns_dot.pcap.out JA3C 4fa5e77b91a47e7cdcf5a5e6d25f8449."""
    (hello,) = client_hellos("ndpi/dot-google-no-sni/dns_dot.pcap")
    assert ja3(hello.hello) == "4fa5e77b91a47e7cdcf5a5e6d25f8449"


@pytest.mark.corpus
@pytest.mark.parametrize("relative", TCP_HELLO_CAPTURES)
def test_ja3_matches_tshark(relative: str) -> None:
    expected = sorted((h.frame, h.ja3) for h in tshark_tcp_hellos(relative))
    got = sorted((h.frame, ja3(h.hello)) for h in client_hellos(relative))
    assert expected and got == expected
