"""Certificate facts: certificates generated here with ``cryptography``, plus the corpus
(nDPI .out Subject/Issuer/Validity/ServerNames for dns.google; Zeek ssl.log CN=Bro)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from dotaudit.dissect.tls import CertificateItem
from dotaudit.dissect.x509 import parse_certificate, safe_text, spki_der
from dotaudit.errors import MalformedError
from tests.test_dissect.test_tls import corpus_flows

NOT_BEFORE = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2025, 6, 7, 8, 9, 10, tzinfo=dt.UTC)

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def make_cert(
    subject_cn: str,
    key: Key,
    *,
    issuer_cn: str | None = None,
    issuer_key: Key | None = None,
    san: list[x509.GeneralName] | None = None,
) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or subject_cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(1234)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    signer = issuer_key or key
    algo = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(signer, algo)
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pin_of(key: Key) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_self_signed_rsa(rsa_key: rsa.RSAPrivateKey) -> None:
    der = make_cert(
        "dns.example",
        rsa_key,
        san=[x509.DNSName("dns.example"), x509.IPAddress(ipaddress.ip_address("192.0.2.1"))],
    )
    info = parse_certificate(der)
    assert info.subject == "CN=dns.example" and info.issuer == "CN=dns.example"
    assert info.san == ("DNS:dns.example", "IP:192.0.2.1")
    assert info.not_before == "2024-01-02T03:04:05Z"
    assert info.not_after == "2025-06-07T08:09:10Z"
    assert info.spki_sha256 == pin_of(rsa_key)  # RFC 7858 §4.2 SPKI pin
    assert info.self_signed
    assert info.signature_algorithm == "sha256WithRSAEncryption"
    assert (info.key_type, info.key_bits) == ("RSA", 2048)


def test_issued_leaf_is_not_self_signed(rsa_key: rsa.RSAPrivateKey) -> None:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    der = make_cert("leaf.example", leaf_key, issuer_cn="Test CA", issuer_key=rsa_key)
    info = parse_certificate(der)
    assert not info.self_signed
    assert info.issuer == "CN=Test CA"
    assert (info.key_type, info.key_bits) == ("EC", 256)
    assert info.spki_sha256 == pin_of(leaf_key)
    assert info.san == ()


def test_same_name_but_foreign_signature_is_not_self_signed(rsa_key: rsa.RSAPrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    der = make_cert("Same", other, issuer_cn="Same", issuer_key=rsa_key)
    assert not parse_certificate(der).self_signed


def test_ed25519() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    info = parse_certificate(make_cert("ed.example", key))
    assert info.key_type == "Ed25519" and info.signature_algorithm == "ed25519"
    assert info.self_signed


def test_hostile_subject_is_escaped(rsa_key: rsa.RSAPrivateKey) -> None:
    der = make_cert("evil\n\u202egro.elgoog\x00", rsa_key, san=[x509.DNSName("a\x07.example")])
    info = parse_certificate(der)
    for text in (info.subject, info.issuer, *info.san):
        assert text.isprintable(), text
    assert "\\u202e" in info.subject and "\\x0a" in info.subject
    assert info.san == ("DNS:a\\x07.example",)


def test_safe_text() -> None:
    assert safe_text("CN=ok") == "CN=ok"
    assert safe_text("a\tb\U000e0001") == "a\\x09b\\U000e0001"


def test_spki_der_matches_cryptography(rsa_key: rsa.RSAPrivateKey) -> None:
    der = make_cert("x", rsa_key)
    expected = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki_der(der) == expected


@pytest.mark.parametrize(
    "der", [b"", b"\x30", b"not a certificate", b"\x30\x82\xff\xff" + bytes(10), bytes(500)]
)
def test_garbage_is_malformed(der: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_certificate(der)


def test_truncations_are_malformed(rsa_key: rsa.RSAPrivateKey) -> None:
    der = make_cert("t.example", rsa_key)
    for cut in range(0, len(der), 37):
        with pytest.raises(MalformedError):
            parse_certificate(der[:cut])


# --- corpus -------------------------------------------------------------------------


def server_certs(relative: str, **kw: int) -> list[tuple[bytes, ...]]:
    return [
        i.certs
        for f in corpus_flows(relative, **kw)
        if not f.from_client
        for i in f.items
        if isinstance(i, CertificateItem)
    ]


@pytest.mark.corpus
def test_dot_google_certificate_matches_ndpi() -> None:
    """nDPI dns_dot.pcap.out: Subject C=US, ST=California, L=Mountain View, O=Google LLC,
    CN=dns.google; Issuer C=US, O=Google Trust Services, CN=GTS CA 1O1; Validity
    2019-10-10 20:58:42 - 2020-01-02 20:58:42; ServerNames dns.google, ..., 8.8.8.8."""
    (chain,) = server_certs("ndpi/dot-google-no-sni/dns_dot.pcap")
    leaf = parse_certificate(chain[0])
    assert leaf.subject == "CN=dns.google,O=Google LLC,L=Mountain View,ST=California,C=US"
    assert leaf.issuer == "CN=GTS CA 1O1,O=Google Trust Services,C=US"
    assert (leaf.not_before, leaf.not_after) == ("2019-10-10T20:58:42Z", "2020-01-02T20:58:42Z")
    ndpi_names = [
        "dns.google",
        "*.dns.google.com",
        "8888.google",
        "dns.google.com",
        "dns64.dns.google",
        "2001:4860:4860::64",
        "2001:4860:4860::6464",
        "2001:4860:4860::8844",
        "2001:4860:4860::8888",
        "8.8.4.4",
        "8.8.8.8",
    ]
    assert [s.split(":", 1)[1] for s in leaf.san] == ndpi_names
    assert leaf.san[0] == "DNS:dns.google" and leaf.san[-1] == "IP:8.8.8.8"
    assert not leaf.self_signed
    intermediate = parse_certificate(chain[1])
    assert intermediate.subject == leaf.issuer
    assert not intermediate.self_signed


@pytest.mark.corpus
def test_android_dot_certificate_validity_matches_ndpi() -> None:
    """nDPI googledns_android10.pcap.out: Validity 2020-05-26 15:20:02 - 2020-08-18 15:20:02."""
    chains = server_certs("ndpi/dot-android10-private-dns/googledns_android10.pcap")
    assert len(chains) == 4  # nDPI lists ServerNames for 4 of the 5 sessions (1 resumed)
    for chain in chains:
        leaf = parse_certificate(chain[0])
        assert leaf.not_before == "2020-05-26T15:20:02Z"
        assert "DNS:dns.google" in leaf.san


@pytest.mark.corpus
def test_zeek_bro_certificate_with_10000_sans() -> None:
    """Zeek ssl.log subject/issuer CN=Bro for the fragmented-handshake trace."""
    (chain,) = server_certs(
        "zeek/tls12-fragmented-handshake/tls-fragmented-handshake.pcap.gz", max_handshake=1 << 20
    )
    info = parse_certificate(chain[0])
    assert info.subject == "CN=Bro" and info.issuer == "CN=Bro"
    assert len(info.san) >= 10_000
