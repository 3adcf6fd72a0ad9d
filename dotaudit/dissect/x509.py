"""Facts from one DER X.509 certificate seen in a cleartext TLS handshake.

Certificates on the wire are hostile: anything ``cryptography`` refuses becomes a
:class:`MalformedError`, and every text field is escaped so that it holds no control or
invisible formatting characters (a subject could carry newlines or bidi overrides).
The SPKI pin is computed over the exact DER bytes of the SubjectPublicKeyInfo, found by
walking the TBSCertificate, so that it also works for key types we cannot load.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from dotaudit.errors import MalformedError


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str
    issuer: str
    san: tuple[str, ...]
    """"DNS:name", "IP:addr", "URI:...", "email:..."."""
    not_before: str
    not_after: str
    """ISO 8601 UTC, e.g. "2024-01-02T03:04:05Z"."""
    spki_sha256: str
    """base64(sha256(DER SubjectPublicKeyInfo)): the RFC 7858 §4.2 SPKI pin."""
    self_signed: bool
    """Issuer equals subject and the signature verifies with the certificate's own key."""
    signature_algorithm: str | None
    key_type: str
    key_bits: int | None


def safe_text(text: str) -> str:
    r"""``text`` with every non-printable character (controls, bidi, ...) as ``\xNN``/``\uNNNN``."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at ``pos``."""
    if pos + 2 > len(der):
        raise MalformedError("truncated DER element")
    tag = der[pos]
    first = der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise MalformedError("bad DER length")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise MalformedError("DER element runs past its container")
    return tag, pos, pos + length


def spki_der(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo element of a certificate, as its exact DER bytes."""
    _, cert_start, _ = _tlv(der, 0)
    _, pos, _ = _tlv(der, cert_start)  # tbsCertificate contents
    tag, _, end = _tlv(der, pos)
    if tag == 0xA0:  # explicit [0] version
        pos = end
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        _, _, pos = _tlv(der, pos)
    tag, _, end = _tlv(der, pos)
    if tag != 0x30:
        raise MalformedError("SubjectPublicKeyInfo is not a SEQUENCE")
    return der[pos:end]


_SIGNATURE_NAMES = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassa-pss",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ed25519",
    "1.3.101.113": "ed448",
    "1.2.840.10040.4.3": "dsa-with-sha1",
}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _san(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    out: list[str] = []
    for name in ext.value:
        if isinstance(name, x509.DNSName):
            out.append("DNS:" + safe_text(name.value))
        elif isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append("URI:" + safe_text(name.value))
        elif isinstance(name, x509.RFC822Name):
            out.append("email:" + safe_text(name.value))
    return tuple(out)


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except Exception:  # unsupported or broken key: the cert is still worth reporting
        return "unknown", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, None


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # bad signature, unsupported algorithm, ...: not provably self-signed
        return False
    return True


MAX_CACHED = 1024
"""Distinct certificates remembered; the oldest is dropped beyond this."""

_CACHE: dict[bytes, CertInfo | str] = {}
"""sha256(DER) -> facts, or the MalformedError message the DER produced."""


def parse_certificate(der: bytes) -> CertInfo:
    """Facts of one DER certificate; MalformedError when ``cryptography`` refuses it."""
    # Servers send the same chain on every connection, and x509 loading plus the
    # self-signature check dominate the cost: remember results by the DER's digest.
    key = hashlib.sha256(der).digest()
    hit = _CACHE.get(key)
    if hit is None:
        try:
            hit = _parse_certificate(der)
        except MalformedError as exc:
            hit = str(exc)
        if len(_CACHE) >= MAX_CACHED:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = hit
    if isinstance(hit, str):
        raise MalformedError(hit)
    return hit


def _parse_certificate(der: bytes) -> CertInfo:
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = safe_text(cert.subject.rfc4514_string())
        issuer = safe_text(cert.issuer.rfc4514_string())
        san = _san(cert)
        not_before = _iso(cert.not_valid_before_utc)
        not_after = _iso(cert.not_valid_after_utc)
        oid = cert.signature_algorithm_oid.dotted_string
    except MalformedError:
        raise
    except Exception as exc:  # cryptography raises ValueError and friends on bad input
        raise MalformedError(f"unparseable certificate: {type(exc).__name__}") from None
    key_type, key_bits = _key(cert)
    pin = base64.b64encode(hashlib.sha256(spki_der(der)).digest()).decode("ascii")
    return CertInfo(
        subject=subject,
        issuer=issuer,
        san=san,
        not_before=not_before,
        not_after=not_after,
        spki_sha256=pin,
        self_signed=_self_signed(cert),
        signature_algorithm=_SIGNATURE_NAMES.get(oid, oid),
        key_type=key_type,
        key_bits=key_bits,
    )
