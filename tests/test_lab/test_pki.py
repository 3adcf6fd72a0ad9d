"""The lab PKI, checked against OpenSSL's command line (the oracle for chains and pins)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.lab.pki import HOSTNAME, LEAF_NAMES, Pki, make_pki

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["127.53.0.1", "::1"], now=NOW)


def _verify(ca: Path, leaf: Path, at: dt.datetime = NOW) -> str:
    done = subprocess.run(
        ["openssl", "verify", "-attime", str(int(at.timestamp())), "-CAfile", str(ca), str(leaf)],
        capture_output=True,
        text=True,
    )
    return done.stdout + done.stderr


def test_every_leaf_is_made(pki: Pki) -> None:
    assert set(pki.leaves) == set(LEAF_NAMES)
    assert len({leaf.pin for leaf in pki.leaves.values()}) == len(LEAF_NAMES)


@pytest.mark.parametrize("name", LEAF_NAMES)
def test_pin_matches_openssl(pki: Pki, name: str) -> None:
    leaf = pki.leaf(name)
    pubkey = subprocess.run(
        ["openssl", "x509", "-in", str(leaf.cert), "-pubkey", "-noout"],
        capture_output=True,
        check=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"], input=pubkey, capture_output=True
    ).stdout
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True
    ).stdout
    b64 = subprocess.run(["base64"], input=digest, capture_output=True).stdout
    assert leaf.pin == b64.decode().strip()


@pytest.mark.parametrize(
    ("name", "ca_attr", "expect"),
    [
        ("valid", "ca_cert", ": OK"),
        ("expiring", "ca_cert", ": OK"),
        ("wrong_host", "ca_cert", ": OK"),
        ("expired", "ca_cert", "certificate has expired"),
        ("untrusted", "ca_cert", "unable to get local issuer"),
        ("untrusted", "rogue_ca_cert", ": OK"),
        ("intercept", "rogue_ca_cert", ": OK"),
        ("self_signed", "ca_cert", "self-signed certificate"),
    ],
)
def test_chain_as_openssl_sees_it(pki: Pki, name: str, ca_attr: str, expect: str) -> None:
    assert expect in _verify(getattr(pki, ca_attr), pki.leaf(name).cert)


def test_expiring_leaf_expires_in_three_days(pki: Pki) -> None:
    leaf = pki.leaf("expiring")
    assert leaf.not_after - NOW == dt.timedelta(days=3)
    assert "certificate has expired" in _verify(pki.ca_cert, leaf.cert, NOW + dt.timedelta(4))


def test_names_and_ip_sans(pki: Pki) -> None:
    def sans(name: str) -> x509.SubjectAlternativeName:
        cert = x509.load_pem_x509_certificate(pki.leaf(name).cert.read_bytes())
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    valid = sans("valid")
    assert valid.get_values_for_type(x509.DNSName) == [HOSTNAME]
    assert {str(ip) for ip in valid.get_values_for_type(x509.IPAddress)} == {"127.53.0.1", "::1"}
    wrong = sans("wrong_host")
    assert HOSTNAME not in wrong.get_values_for_type(x509.DNSName)
    assert wrong.get_values_for_type(x509.IPAddress) == []
