"""Certificate names for cert.name, on real certificates from the lab's test PKI.

Oracle: RFC 6125 §6.4 (a DNS-ID is matched against dNSName SANs only) and §6.2.1 (an
IP-ID against iPAddress SANs only, compared as addresses, not as text); the certificates
are built by tests/lab/pki.py with `cryptography`, checked against OpenSSL in
tests/test_lab/test_pki.py. The lab tests (test_lab_variants.py) run cert.name itself
against real Unbound servers presenting these leaves.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import dotaudit.x509 as certificates
from tests.lab.pki import HOSTNAME, WRONG_HOSTNAME, Pki, make_pki

IPS = ["127.53.0.1", "2001:db8:53::53"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), IPS)


def sans_of(pki: Pki, leaf: str) -> certificates.SanNames:
    pem = pki.leaf(leaf).cert.read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return certificates.san_names(certificates.load_certificate(der))


def test_sans_read_from_a_real_leaf(pki: Pki) -> None:
    sans = sans_of(pki, "valid")
    assert sans.dns == (HOSTNAME,)
    assert sans.ips == tuple(IPS)
    assert sans.total == 1 + len(IPS)


def test_wrong_name_leaf_with_the_target_ip_does_not_match_the_name(pki: Pki) -> None:
    # The "valid" leaf is for dns.test and lists 127.53.0.1: for other.test it is wrong
    # however well its iPAddress SANs fit the address.
    sans = sans_of(pki, "valid")
    assert certificates.matches_ip(sans, "127.53.0.1")
    assert not certificates.matches_name(sans, WRONG_HOSTNAME)
    assert certificates.matches_name(sans, HOSTNAME)


def test_a_name_never_matches_an_ip_san(pki: Pki) -> None:
    assert not certificates.matches_name(sans_of(pki, "valid"), "127.53.0.1")


@pytest.mark.parametrize(
    ("address", "listed"),
    [
        ("127.53.0.1", True),
        ("127.53.0.2", False),  # a neighbour of a listed address
        ("2001:db8:53::53", True),
        ("2001:0db8:0053:0000:0000:0000:0000:0053", True),  # the same address, spelled out
        ("2001:db8:53::54", False),
        ("::ffff:127.53.0.1", False),  # an IPv4-mapped IPv6 address is another address
        ("dns.test", False),  # not an address at all
    ],
)
def test_ip_id_matches_only_a_listed_address(pki: Pki, address: str, listed: bool) -> None:
    assert certificates.matches_ip(sans_of(pki, "valid"), address) is listed


def test_leaf_without_ip_sans_matches_no_address(pki: Pki) -> None:
    sans = sans_of(pki, "wrong_host")
    assert sans.ips == ()
    assert sans.dns == (WRONG_HOSTNAME,)
    assert not any(certificates.matches_ip(sans, ip) for ip in IPS)
