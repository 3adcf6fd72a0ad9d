"""Certificate facts for the cert.* checks, on certificates the tests build.

Oracles: RFC 6125 §6.4 (name matching), RFC 5280 (SAN types, AIA caIssuers, validity),
RFC 9325 §4.3 (RSA below 2048 bits and EC below P-256 are weak) and the key and hash
each certificate was made with.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519

from dotaudit.probe import certs
from dotaudit.probe.pins import spki_pin
from tests.test_probe.certgen import NOW, ca, issue, name, rsa_key, sha1_signed


def test_san_names_lists_dns_and_ip_entries_and_counts_all() -> None:
    cert = issue(dns=("a.test", "b.test"), ips=("192.0.2.1", "2001:db8::1")).cert
    assert certs.san_names(cert) == certs.SanNames(
        ("a.test", "b.test"), ("192.0.2.1", "2001:db8::1"), 4
    )


def test_san_names_keeps_a_sample_and_the_full_count() -> None:
    many = tuple(f"n{i}.test" for i in range(certs.MAX_NAMES + 5))
    sans = certs.san_names(issue(dns=many, ips=("192.0.2.1",)).cert)
    assert sans.dns == many[: certs.MAX_NAMES]
    assert sans.ips == ("192.0.2.1",)
    assert sans.total == certs.MAX_NAMES + 6


def test_san_names_without_the_extension_is_empty() -> None:
    assert certs.san_names(issue(san=False).cert) == certs.SanNames((), (), 0)


def test_matches_name_against_any_dns_san() -> None:
    sans = certs.san_names(issue(dns=("other.test", "*.dns.test")).cert)
    assert certs.matches_name(sans, "a.dns.test")
    assert not certs.matches_name(sans, "dns.test")
    assert not certs.matches_name(certs.SanNames((), (), 0), "dns.test")


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
    assert certs.dns_name_matches(pattern, host) is ok


def test_matches_ip_compares_addresses_not_text() -> None:
    sans = certs.san_names(issue(ips=("2001:db8::1", "192.0.2.7")).cert)
    assert certs.matches_ip(sans, "2001:0db8:0:0::1")
    assert certs.matches_ip(sans, "192.0.2.7")
    assert not certs.matches_ip(sans, "192.0.2.8")
    assert not certs.matches_ip(sans, "dns.test")


def test_days_left_from_the_given_clock() -> None:
    cert = issue(not_after=NOW + dt.timedelta(days=10, hours=12)).cert
    assert certs.days_left(cert, NOW) == 10.5
    assert certs.days_left(cert, NOW + dt.timedelta(days=11)) == -0.5


def test_is_self_signed_needs_matching_names_and_signature() -> None:
    root = ca()
    assert certs.is_self_signed(root.cert)
    leaf = issue(issuer=root)
    assert not certs.is_self_signed(leaf.cert)
    # Same subject and issuer, but signed by another key: not self-signed.
    impostor = issue("Test Root CA", issuer=root, subject=root.cert.subject)
    assert impostor.cert.issuer == impostor.cert.subject
    assert not certs.is_self_signed(impostor.cert)


@pytest.mark.parametrize(
    ("make_key", "kind", "bits", "weak"),
    [
        (lambda: rsa_key(2048), "RSA", 2048, False),
        (lambda: rsa_key(1024), "RSA", 1024, True),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "EC secp256r1", 256, False),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "EC secp384r1", 384, False),
        (lambda: ec.generate_private_key(ec.SECP224R1()), "EC secp224r1", 224, True),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519", 256, False),
        (ed448.Ed448PrivateKey.generate, "Ed448", 456, False),
    ],
)
def test_key_info_by_type_and_size(make_key: object, kind: str, bits: int, weak: bool) -> None:
    key = make_key()  # type: ignore[operator]
    info = certs.key_info(issue(key=key).cert)
    assert (info.kind, info.bits) == (kind, bits)
    assert (info.problem is not None) is weak


def test_key_info_problem_texts() -> None:
    assert certs.key_info(issue(key=rsa_key(1024)).cert).problem == "RSA key of 1024 bits (< 2048)"
    weak_ec = certs.key_info(issue(key=ec.generate_private_key(ec.SECP224R1())).cert)
    assert weak_ec.problem == "EC secp224r1 is weaker than P-256"


def test_key_info_dsa_is_a_problem() -> None:
    root = ca()
    key = dsa.generate_private_key(key_size=2048)
    info = certs.key_info(issue(key=key, issuer=root).cert)
    assert (info.kind, info.bits) == ("DSA", 2048)
    assert info.problem == "DSA keys are not allowed in TLS 1.3 (RFC 8446)"


def test_signature_hash_names_the_signing_hash(tmp_path: Path) -> None:
    assert certs.signature_hash(issue().cert) == "sha256"
    root = ca()
    assert certs.signature_hash(issue(issuer=root, hash_algorithm=hashes.SHA384()).cert) == (
        "sha384"
    )
    assert certs.signature_hash(sha1_signed(tmp_path).cert) == "sha1"
    assert certs.signature_hash(issue(key=ed25519.Ed25519PrivateKey.generate()).cert) is None
    assert "sha1" in certs.WEAK_HASHES and "md5" in certs.WEAK_HASHES
    assert "sha256" not in certs.WEAK_HASHES


def test_aia_issuer_urls_are_the_ca_issuers_entries() -> None:
    urls = ("http://ca.test/issuer.crt", "http://backup.test/issuer.crt")
    assert certs.aia_issuer_urls(issue(aia=urls).cert) == list(urls)
    assert certs.aia_issuer_urls(issue().cert) == []
    many = tuple(f"http://ca{i}.test/{'x' * 300}" for i in range(7))
    got = certs.aia_issuer_urls(issue(aia=many).cert)
    assert got == [url[:200] for url in many[:5]]


def test_describe_and_issuer_text() -> None:
    root = ca("Root", issuer=None)
    leaf = issue(issuer=root, subject=name("dns.test", "Org"))
    described = certs.describe(leaf.cert)
    assert described == {
        "subject": "O=Org,CN=dns.test",
        "issuer": "CN=Root",
        "serial": format(leaf.cert.serial_number, "x")[:64],
        "not_before": (NOW - dt.timedelta(days=30)).isoformat(),
        "not_after": (NOW + dt.timedelta(days=90)).isoformat(),
        "spki_pin": spki_pin(leaf.cert),
    }
    assert certs.issuer_text(leaf.cert) == "CN=Root"


def test_load_parses_der_and_names_a_bad_certificate() -> None:
    leaf = issue()
    assert certs.load(leaf.der) == leaf.cert
    with pytest.raises(certs.BadCertificate, match=r"^the server's certificate does not parse: "):
        certs.load(b"\x30\x03\x02\x01\x00")


def test_key_info_of_other_key_types_names_the_type_without_judging() -> None:
    from cryptography.hazmat.primitives.asymmetric import x25519

    info = certs.key_info(issue(key=x25519.X25519PrivateKey.generate(), issuer=ca()).cert)
    assert info == certs.KeyInfo("X25519PublicKey", None, None)


def test_aia_issuer_urls_skip_ocsp_entries() -> None:
    cert = issue(ocsp=("http://ocsp.test/",), aia=("http://ca.test/issuer.crt",)).cert
    assert certs.aia_issuer_urls(cert) == ["http://ca.test/issuer.crt"]


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("DNS.test.", "dns.test", True),  # a trailing dot on either side is the same name
        ("a.teX", "a.te", False),  # only dots are stripped, nothing else
        ("a.te", "a.teX", False),
    ],
)
def test_dns_name_matches_strips_only_trailing_dots(pattern: str, host: str, ok: bool) -> None:
    assert certs.dns_name_matches(pattern, host) is ok
