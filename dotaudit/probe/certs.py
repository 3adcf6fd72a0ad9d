"""Pure certificate facts for the cert.* checks: names (RFC 6125), dates, keys, pins.

Certificates come from the server, so every accessor tolerates missing or malformed
extensions and returns plain data; nothing here raises on a hostile certificate except
:class:`BadCertificate` from :func:`load`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID

from dotaudit.probe.pins import spki_pin

MAX_NAMES = 100
"""SAN entries kept in the evidence; the count of all of them is reported too."""


class BadCertificate(ValueError):
    pass


def load(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise BadCertificate(f"the server's certificate does not parse: {exc}") from None


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> Any:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _name_text(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:
        return "<unparseable name>"


@dataclass(frozen=True, slots=True)
class SanNames:
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    total: int


def san_names(cert: x509.Certificate) -> SanNames:
    san = _ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if san is None:
        return SanNames((), (), 0)
    dns_names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return SanNames(tuple(dns_names[:MAX_NAMES]), tuple(ips[:MAX_NAMES]), len(dns_names) + len(ips))


def dns_name_matches(pattern: str, name: str) -> bool:
    """RFC 6125 §6.4: case-insensitive; a wildcard only as the whole left-most label,
    matching exactly one label, never in a public-suffix-like two-label pattern."""
    pattern = pattern.rstrip(".").lower()
    name = name.rstrip(".").lower()
    if not pattern or not name:
        return False
    if pattern == name:
        return True
    p_labels, n_labels = pattern.split("."), name.split(".")
    if p_labels[0] != "*" or len(p_labels) < 3 or len(p_labels) != len(n_labels):
        return False
    return p_labels[1:] == n_labels[1:] and bool(n_labels[0])


def matches_name(sans: SanNames, name: str) -> bool:
    return any(dns_name_matches(p, name) for p in sans.dns)


def matches_ip(sans: SanNames, address: str) -> bool:
    try:
        wanted = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ipaddress.ip_address(ip) == wanted for ip in sans.ips)


def days_left(cert: x509.Certificate, now: dt.datetime) -> float:
    return (cert.not_valid_after_utc - now).total_seconds() / 86400.0


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    except Exception:  # unsupported key types: the names alone decide
        return True
    return True


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kind: str
    bits: int | None
    problem: str | None


def key_info(cert: x509.Certificate) -> KeyInfo:
    """Key type and size, and why it is too weak (RFC 9325 §4.3: RSA ≥ 2048)."""
    try:
        key = cert.public_key()
    except (ValueError, TypeError) as exc:
        return KeyInfo("unknown", None, f"public key not usable: {exc}")
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        return KeyInfo("RSA", bits, None if bits >= 2048 else f"RSA key of {bits} bits (< 2048)")
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.curve.key_size
        name = f"EC {key.curve.name}"
        return KeyInfo(name, bits, None if bits >= 256 else f"{name} is weaker than P-256")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyInfo("Ed25519", 256, None)
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyInfo("Ed448", 456, None)
    if isinstance(key, dsa.DSAPublicKey):
        return KeyInfo("DSA", key.key_size, "DSA keys are not allowed in TLS 1.3 (RFC 8446)")
    return KeyInfo(type(key).__name__, None, None)


WEAK_HASHES = {"md5", "sha1", "md2", "md4"}


def signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # unknown OIDs raise UnsupportedAlgorithm
        return None
    return algorithm.name if algorithm is not None else None


def aia_issuer_urls(cert: x509.Certificate) -> list[str]:
    aia = _ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    if aia is None:
        return []
    urls: list[str] = []
    for desc in aia:
        if desc.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS and isinstance(
            desc.access_location, x509.UniformResourceIdentifier
        ):
            urls.append(desc.access_location.value[:200])
    return urls[:5]


def describe(cert: x509.Certificate) -> dict[str, Any]:
    """The facts about one certificate that every cert.* check's evidence shows."""
    return {
        "subject": _name_text(cert.subject),
        "issuer": _name_text(cert.issuer),
        "serial": format(cert.serial_number, "x")[:64],
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "spki_pin": spki_pin(cert),
    }


def issuer_text(cert: x509.Certificate) -> str:
    return _name_text(cert.issuer)
