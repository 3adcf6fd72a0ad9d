"""Certificates for both layers: facts (dissect), the self-signed decision, SPKI pins and
RFC 6125 name matching (probe). Certificates are generated here with ``cryptography``,
plus the corpus (nDPI .out Subject/Issuer/Validity/ServerNames for dns.google; Zeek
ssl.log CN=Bro)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x25519
from cryptography.x509.oid import NameOID

import dotaudit.x509 as certificates
from dotaudit.dissect.tls import CertificateItem
from dotaudit.errors import MalformedError
from dotaudit.x509 import (
    dns_name_matches,
    is_self_signed,
    load_certificate,
    normalise_pin,
    parse_certificate,
    safe_text,
    spki_der,
    spki_pin,
)
from tests import certgen
from tests.lab.pki import spki_pin as lab_spki_pin
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


# --- self-signed: one decision for both layers ---------------------------------------
#
# Oracle: RFC 5280 §3.2, "Self-signed certificates are self-issued certificates where the
# digital signature may be verified by the public key bound into the certificate"; a
# self-issued certificate (§6.1: same issuer and subject) is not enough, a CA issues
# itself one for key rollover. When the signature cannot be checked, dotaudit answers
# False (dotaudit/x509.py, is_self_signed).

SHA256_RSA = "1.2.840.113549.1.1.11"
SHA1_RSA = "1.2.840.113549.1.1.5"
UNASSIGNED_RSA = "1.2.840.113549.1.1.99"
"""An OID under pkcs-1 that names no signature algorithm."""


def _der_tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray([40 * first + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return _der_tlv(0x06, bytes(body))


def resigned(der: bytes, key: rsa.RSAPrivateKey, oid: str, digest: hashes.HashAlgorithm) -> bytes:
    """``der`` (signed with sha256WithRSAEncryption) signed again by ``key`` with ``digest``
    under the algorithm ``oid``: what ``cryptography``'s builder refuses to make (SHA-1)."""
    cert = x509.load_der_x509_certificate(der)
    old = _oid(SHA256_RSA)
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(old) == 1
    tbs = tbs.replace(old, _oid(oid))
    signature = key.sign(tbs, padding.PKCS1v15(), digest)
    algorithm = _der_tlv(0x30, _oid(oid) + b"\x05\x00")
    return _der_tlv(0x30, tbs + algorithm + _der_tlv(0x03, b"\x00" + signature))


def cannot_sign_key_cert() -> bytes:
    """Same names, an X25519 key (which cannot sign), signed by some Ed25519 key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x.example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(x25519.X25519PrivateKey.generate().public_key())
        .serial_number(7)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .sign(ed25519.Ed25519PrivateKey.generate(), None)
    )
    return cert.public_bytes(serialization.Encoding.DER)


def self_signed_cases(rsa_key: rsa.RSAPrivateKey) -> dict[str, tuple[bytes, bool]]:
    """name -> (certificate, self-signed?) for every side of the decision."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    own = make_cert("dns.example", rsa_key)
    return {
        "names match, own signature verifies": (own, True),
        "names match, ed25519 own signature": (
            make_cert("ed.example", ed25519.Ed25519PrivateKey.generate()), True),
        # A key-rollover certificate: self-issued, signed by the previous key (§6.1).
        "names match, signed by another key": (
            make_cert("dns.example", rsa_key, issuer_key=other), False),
        "names match, SHA-1 own signature (not verifiable here)": (
            resigned(own, rsa_key, SHA1_RSA, hashes.SHA1()), False),
        "names match, unassigned signature algorithm": (
            resigned(own, rsa_key, UNASSIGNED_RSA, hashes.SHA256()), False),
        "names match, key that cannot sign": (cannot_sign_key_cert(), False),
        "names differ, own signature verifies": (
            make_cert("leaf.example", rsa_key, issuer_cn="Test CA", issuer_key=rsa_key), False),
    }  # fmt: skip


def test_resigned_sha1_certificate_is_genuinely_self_signed(rsa_key: rsa.RSAPrivateKey) -> None:
    """The SHA-1 case is a real self-signature that dotaudit cannot check, not a broken
    one: the key verifies it directly, and ``cryptography`` refuses the algorithm."""
    der = resigned(make_cert("dns.example", rsa_key), rsa_key, SHA1_RSA, hashes.SHA1())
    cert = x509.load_der_x509_certificate(der)
    rsa_key.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1()
    )
    assert cert.issuer == cert.subject
    assert parse_certificate(der).signature_algorithm == "sha1WithRSAEncryption"


def test_self_signed_decided_once_for_both_layers(rsa_key: rsa.RSAPrivateKey) -> None:
    for case, (der, expected) in self_signed_cases(rsa_key).items():
        captured = parse_certificate(der).self_signed  # what a capture's event says
        probed = is_self_signed(load_certificate(der))  # what the probe's checks see
        assert (captured, probed) == (expected, expected), case


# --- SPKI pins (RFC 7858 §4.2) and RFC 6125 names ---------------------------------------


def test_pin_is_the_same_for_both_layers(rsa_key: rsa.RSAPrivateKey) -> None:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    der = make_cert("leaf.example", leaf_key, issuer_cn="Test CA", issuer_key=rsa_key)
    # Oracle: the pin over cryptography's own SPKI encoding of the key.
    assert spki_pin(load_certificate(der)) == parse_certificate(der).spki_sha256 == pin_of(leaf_key)


def test_pin_of_a_key_cryptography_cannot_sign_with() -> None:
    der = cannot_sign_key_cert()
    cert = load_certificate(der)
    expected = base64.b64encode(hashlib.sha256(spki_der(der)).digest()).decode()
    assert spki_pin(cert) == expected == parse_certificate(der).spki_sha256


def test_pins_normalised_and_checked() -> None:
    pin = "wcHuZKztoI+U1vi8k6gVhVwfJ1QjZu6hvgI3b0M5tCo="
    assert normalise_pin(pin) == pin
    assert normalise_pin(f'pin-sha256="{pin}"') == pin  # getdns's form
    with pytest.raises(ValueError, match="is 3 bytes"):
        normalise_pin("AAAA")
    with pytest.raises(ValueError, match="not base64"):
        normalise_pin("not base64!")


@pytest.mark.parametrize(
    ("pattern", "name", "ok"),
    [
        ("dns.test", "DNS.TEST.", True),
        ("*.example.com", "dns.example.com", True),
        ("*.example.com", "a.b.example.com", False),  # RFC 6125 §6.4.3: one label only
        ("*.example.com", "example.com", False),
        ("*.com", "example.com", False),
        ("d*.example.com", "dns.example.com", False),  # partial wildcards not honoured
        ("other.test", "dns.test", False),
    ],
)
def test_rfc6125_name_matching(pattern: str, name: str, ok: bool) -> None:
    assert dns_name_matches(pattern, name) is ok


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


# --- the probe's certificate facts, on certificates the tests build -----------------------
# Oracles: RFC 6125 §6.4 (name matching), RFC 5280 (SAN types, AIA caIssuers, validity),
# RFC 9325 §4.3 (RSA below 2048 bits and EC below P-256 are weak) and the key and hash
# each certificate was made with (tests/certgen.py).


def test_san_names_lists_dns_and_ip_entries_and_counts_all() -> None:
    cert = certgen.issue(dns=("a.test", "b.test"), ips=("192.0.2.1", "2001:db8::1")).cert
    assert certificates.san_names(cert) == certificates.SanNames(
        ("a.test", "b.test"), ("192.0.2.1", "2001:db8::1"), 4
    )


def test_san_names_keeps_a_sample_and_the_full_count() -> None:
    many = tuple(f"n{i}.test" for i in range(certificates.MAX_NAMES + 5))
    sans = certificates.san_names(certgen.issue(dns=many, ips=("192.0.2.1",)).cert)
    assert sans.dns == many[: certificates.MAX_NAMES]
    assert sans.ips == ("192.0.2.1",)
    assert sans.total == certificates.MAX_NAMES + 6


def test_san_names_without_the_extension_is_empty() -> None:
    assert certificates.san_names(certgen.issue(san=False).cert) == certificates.SanNames((), (), 0)


def test_matches_name_against_any_dns_san() -> None:
    sans = certificates.san_names(certgen.issue(dns=("other.test", "*.dns.test")).cert)
    assert certificates.matches_name(sans, "a.dns.test")
    assert not certificates.matches_name(sans, "dns.test")
    assert not certificates.matches_name(certificates.SanNames((), (), 0), "dns.test")


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("", "dns.test", False),
        ("dns.test", "", False),
        (".", ".", False),
        ("*.a.test", "x.a.test", True),
        ("*.a.test", ".a.test", False),  # the wildcard must match a non-empty label
        ("x.*.test", "x.a.test", False),
        ("*.a.test", "x.b.test", False),
        ("*.a.b.test", "x.a.b.test", True),
    ],
)
def test_dns_name_matches_edges(pattern: str, host: str, ok: bool) -> None:
    assert certificates.dns_name_matches(pattern, host) is ok


def test_matches_ip_compares_addresses_not_text() -> None:
    sans = certificates.san_names(certgen.issue(ips=("2001:db8::1", "192.0.2.7")).cert)
    assert certificates.matches_ip(sans, "2001:0db8:0:0::1")
    assert certificates.matches_ip(sans, "192.0.2.7")
    assert not certificates.matches_ip(sans, "192.0.2.8")
    assert not certificates.matches_ip(sans, "dns.test")


def test_days_left_from_the_given_clock() -> None:
    cert = certgen.issue(not_after=certgen.NOW + dt.timedelta(days=10, hours=12)).cert
    assert certificates.days_left(cert, certgen.NOW) == 10.5
    assert certificates.days_left(cert, certgen.NOW + dt.timedelta(days=11)) == -0.5


@pytest.mark.parametrize(
    ("make_key", "kind", "bits", "weak"),
    [
        (lambda: certgen.rsa_key(2048), "RSA", 2048, False),
        (lambda: certgen.rsa_key(1024), "RSA", 1024, True),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "EC secp256r1", 256, False),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "EC secp384r1", 384, False),
        (lambda: ec.generate_private_key(ec.SECP224R1()), "EC secp224r1", 224, True),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519", 256, False),
        (ed448.Ed448PrivateKey.generate, "Ed448", 456, False),
    ],
)
def test_key_info_by_type_and_size(make_key: object, kind: str, bits: int, weak: bool) -> None:
    key = make_key()  # type: ignore[operator]
    info = certificates.key_info(certgen.issue(key=key).cert)
    assert (info.kind, info.bits) == (kind, bits)
    assert (info.problem is not None) is weak


def test_key_info_problem_texts() -> None:
    assert (
        certificates.key_info(certgen.issue(key=certgen.rsa_key(1024)).cert).problem
        == "RSA key of 1024 bits (< 2048)"
    )
    weak_ec = certificates.key_info(certgen.issue(key=ec.generate_private_key(ec.SECP224R1())).cert)
    assert weak_ec.problem == "EC secp224r1 is weaker than P-256"


def test_key_info_dsa_is_a_problem() -> None:
    root = certgen.ca()
    key = dsa.generate_private_key(key_size=2048)
    info = certificates.key_info(certgen.issue(key=key, issuer=root).cert)
    assert (info.kind, info.bits) == ("DSA", 2048)
    assert info.problem == "DSA keys are not allowed in TLS 1.3 (RFC 8446)"


def test_signature_hash_names_the_signing_hash(tmp_path: Path) -> None:
    assert certificates.signature_hash(certgen.issue().cert) == "sha256"
    root = certgen.ca()
    assert certificates.signature_hash(
        certgen.issue(issuer=root, hash_algorithm=hashes.SHA384()).cert
    ) == ("sha384")
    assert certificates.signature_hash(certgen.sha1_signed(tmp_path).cert) == "sha1"
    assert (
        certificates.signature_hash(certgen.issue(key=ed25519.Ed25519PrivateKey.generate()).cert)
        is None
    )
    assert "sha1" in certificates.WEAK_HASHES and "md5" in certificates.WEAK_HASHES
    assert "sha256" not in certificates.WEAK_HASHES


def test_aia_issuer_urls_are_the_ca_issuers_entries() -> None:
    urls = ("http://ca.test/issuer.crt", "http://backup.test/issuer.crt")
    assert certificates.aia_issuer_urls(certgen.issue(aia=urls).cert) == list(urls)
    assert certificates.aia_issuer_urls(certgen.issue().cert) == []
    many = tuple(f"http://ca{i}.test/{'x' * 300}" for i in range(7))
    got = certificates.aia_issuer_urls(certgen.issue(aia=many).cert)
    assert got == [url[:200] for url in many[:5]]


def test_describe_and_issuer_text() -> None:
    root = certgen.ca("Root", issuer=None)
    leaf = certgen.issue(issuer=root, subject=certgen.name("dns.test", "Org"))
    described = certificates.describe(leaf.cert)
    assert described == {
        "subject": "O=Org,CN=dns.test",
        "issuer": "CN=Root",
        "serial": format(leaf.cert.serial_number, "x")[:64],
        "not_before": (certgen.NOW - dt.timedelta(days=30)).isoformat(),
        "not_after": (certgen.NOW + dt.timedelta(days=90)).isoformat(),
        "spki_pin": lab_spki_pin(leaf.cert),  # the lab PKI's own pin function
    }
    assert certificates.issuer_text(leaf.cert) == "CN=Root"


def test_load_parses_der_and_names_a_bad_certificate() -> None:
    leaf = certgen.issue()
    assert certificates.load_certificate(leaf.der) == leaf.cert
    with pytest.raises(
        certificates.BadCertificate, match=r"^the server's certificate does not parse: "
    ):
        certificates.load_certificate(b"\x30\x03\x02\x01\x00")


def test_key_info_of_other_key_types_names_the_type_without_judging() -> None:
    info = certificates.key_info(
        certgen.issue(key=x25519.X25519PrivateKey.generate(), issuer=certgen.ca()).cert
    )
    assert info == certificates.KeyInfo("X25519PublicKey", None)


def test_aia_issuer_urls_skip_ocsp_entries() -> None:
    cert = certgen.issue(ocsp=("http://ocsp.test/",), aia=("http://ca.test/issuer.crt",)).cert
    assert certificates.aia_issuer_urls(cert) == ["http://ca.test/issuer.crt"]


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("DNS.test.", "dns.test", True),  # a trailing dot on either side is the same name
        ("a.teX", "a.te", False),  # only dots are stripped, nothing else
        ("a.te", "a.teX", False),
    ],
)
def test_dns_name_matches_strips_only_trailing_dots(pattern: str, host: str, ok: bool) -> None:
    assert certificates.dns_name_matches(pattern, host) is ok


def _repeated_attribute_name() -> x509.Name:
    """One RDN of two CN attributes that differ until :func:`_repeat_attribute` rewrites
    the DER: ``cryptography`` loads such a certificate but cannot build its Name."""
    return x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "dup1"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "dup2"),
                ]
            )
        ]
    )


def _repeat_attribute(der: bytes) -> x509.Certificate:
    assert b"dup2" in der
    return x509.load_der_x509_certificate(der.replace(b"dup2", b"dup1"))


def test_a_name_cryptography_cannot_build_is_described_not_raised() -> None:
    root = certgen.ca()
    leaf = _repeat_attribute(certgen.issue(issuer=root, subject=_repeated_attribute_name()).der)
    with pytest.raises(ValueError, match="duplicate attributes"):
        leaf.subject  # noqa: B018 - the oracle: cryptography itself refuses this name
    described = certificates.describe(leaf)
    assert (described["subject"], described["issuer"]) == ("<unparseable name>", "CN=Test Root CA")
    assert certificates.issuer_text(leaf) == "CN=Test Root CA"
    assert not certificates.is_self_signed(leaf)
    # Self-issued: the issuer is the same unbuildable name.
    alone = _repeat_attribute(certgen.issue(subject=_repeated_attribute_name()).der)
    assert certificates.issuer_text(alone) == "<unparseable name>"
    assert certificates.describe(alone)["issuer"] == "<unparseable name>"
    assert not certificates.is_self_signed(alone)


def test_key_info_of_a_key_cryptography_cannot_load_is_reported() -> None:
    # The leaf's SPKI algorithm rewritten from id-ecPublicKey (1.2.840.10045.2.1) to an
    # unassigned arc of the same length: the certificate loads, its key does not.
    der = certgen.issue().der
    assert der.count(_oid("1.2.840.10045.2.1")) == 1
    cert = x509.load_der_x509_certificate(
        der.replace(_oid("1.2.840.10045.2.1"), _oid("1.2.840.10045.2.9"))
    )
    info = certificates.key_info(cert)
    assert (info.family, info.bits, info.kind) == ("unknown", None, "unknown")
    assert info.problem is not None
    assert info.problem.startswith("public key not usable: ")
    assert "1.2.840.10045.2.9" in info.problem


def _with_serial(issued: certgen.Issued, serial: bytes) -> x509.Certificate:
    """``issued`` (self-signed, EC) re-signed with the DER INTEGER contents ``serial``,
    longer than ``cryptography``'s builder allows (RFC 5280 §4.1.2.2: at most 20 octets)."""
    der = issued.der
    _, cert_start, cert_end = certificates._tlv(der, 0)
    _, tbs_start, tbs_end = certificates._tlv(der, cert_start)
    tbs = der[tbs_start:tbs_end]
    _, _, version_end = certificates._tlv(tbs, 0)
    _, _, serial_end = certificates._tlv(tbs, version_end)
    new_tbs = _der_tlv(0x30, tbs[:version_end] + _der_tlv(0x02, serial) + tbs[serial_end:])
    signature = issued.key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    rest = der[tbs_end:cert_end]
    _, _, algorithm_end = certificates._tlv(rest, 0)
    return x509.load_der_x509_certificate(
        _der_tlv(0x30, new_tbs + rest[:algorithm_end] + _der_tlv(0x03, b"\x00" + signature))
    )


def test_describe_caps_a_hostile_serial_at_64_hex_digits() -> None:
    cert = _with_serial(certgen.issue(), b"\x7f" + b"\xab" * 40)
    assert format(cert.serial_number, "x") == "7f" + "ab" * 40  # cryptography read it all
    assert certificates.describe(cert)["serial"] == "7f" + "ab" * 31
    # At the cap nothing is cut.
    exact = _with_serial(certgen.issue(), b"\x7f" + b"\xab" * 31)
    assert certificates.describe(exact)["serial"] == "7f" + "ab" * 31
