"""Test PKI made fresh for every lab run: a trusted CA, a rogue CA and the leaves.

Keys are ECDSA P-256: generation is instant and the certificates stay small, which
keeps the committed captures small too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTNAME = "dns.test"
WRONG_HOSTNAME = "other.test"
LEAF_NAMES = (
    "valid",
    "expired",
    "expiring",
    "wrong_host",
    "self_signed",
    "untrusted",
    "intercept",
)


@dataclass(frozen=True, slots=True)
class Leaf:
    name: str
    cert: Path
    """PEM certificate (the leaf only; clients hold the CA)."""
    key: Path
    pin: str
    """RFC 7858 §4.2 SPKI pin: base64 of SHA-256 over the DER SubjectPublicKeyInfo."""
    not_after: dt.datetime


@dataclass(frozen=True, slots=True)
class Pki:
    directory: Path
    ca_cert: Path
    """The trusted test CA: what strict clients are given."""
    rogue_ca_cert: Path
    """The untrusted CA: signs the "untrusted" and "intercept" leaves."""
    leaves: dict[str, Leaf]

    def leaf(self, name: str) -> Leaf:
        return self.leaves[name]


def spki_pin(cert: x509.Certificate) -> str:
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dotaudit lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ca(cn: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf_cert(
    hostname: str,
    ips: Iterable[str],
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    subject = _name(hostname)
    sans: list[x509.GeneralName] = [x509.DNSName(hostname)]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    issuer_name = issuer[0].subject if issuer else subject
    signing_key = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


def _write_pem(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_pki(directory: Path, ips: Iterable[str], now: dt.datetime | None = None) -> Pki:
    """Write the CAs and every leaf under ``directory``; ``ips`` become IP SANs."""
    directory.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    ip_list = list(ips)
    ca = _ca("dotaudit lab test CA", now)
    rogue = _ca("dotaudit lab rogue CA", now)
    _write_pem(directory / "ca.pem", ca[0])
    _write_pem(directory / "rogue-ca.pem", rogue[0])
    day = dt.timedelta(days=1)
    Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None
    plans: dict[str, tuple[str, Issuer, dt.datetime, dt.datetime]] = {
        "valid": (HOSTNAME, ca, now - day, now + 365 * day),
        "expired": (HOSTNAME, ca, now - 60 * day, now - 2 * day),
        "expiring": (HOSTNAME, ca, now - 30 * day, now + 3 * day),
        "wrong_host": (WRONG_HOSTNAME, ca, now - day, now + 365 * day),
        "self_signed": (HOSTNAME, None, now - day, now + 365 * day),
        "untrusted": (HOSTNAME, rogue, now - day, now + 365 * day),
        "intercept": (HOSTNAME, rogue, now - day, now + 365 * day),
    }
    leaves: dict[str, Leaf] = {}
    for name, (host, issuer, start, end) in plans.items():
        key = _key()
        # The wrong-host leaf must fail on the name alone, so it carries no lab IPs either.
        sans = [] if name == "wrong_host" else ip_list
        cert = _leaf_cert(host, sans, key, issuer, start, end)
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        _write_pem(cert_path, cert)
        _write_key(key_path, key)
        leaves[name] = Leaf(name, cert_path, key_path, spki_pin(cert), end)
    return Pki(directory, directory / "ca.pem", directory / "rogue-ca.pem", leaves)
