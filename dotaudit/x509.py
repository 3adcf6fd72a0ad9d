"""X.509 certificates, for the capture analysis and the prober alike.

Both layers judge the same certificates: ``dissect`` reads them from cleartext TLS
handshakes in a capture (:func:`parse_certificate` gives the facts of an event), the
probe reads them from its own handshakes (the ``cert.*`` and interception checks use
:func:`load_certificate` and the accessors below). Keeping one module means one answer
to "is this self-signed?", one SPKI pin and one name matcher for both. It sits at the
top of the package, beside ``errors``, so that both may import it and it imports neither.

Certificates come from the network and are hostile: anything ``cryptography`` refuses
becomes :class:`MalformedError` (capture facts) or :class:`BadCertificate` (probe); the
accessors the probe uses tolerate missing or malformed extensions and return plain data.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from dotaudit.errors import MalformedError

# --- text and DER ----------------------------------------------------------------------


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


# --- SPKI pins (RFC 7858 §4.2) -----------------------------------------------------------


def spki_der(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo element of a certificate, as its exact DER bytes.

    Found by walking the TBSCertificate rather than re-encoding the loaded key, so that
    the pin is over the octets the certificate carries and exists for key types
    ``cryptography`` cannot load.
    """
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


def _pin_of_spki(spki: bytes) -> str:
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def spki_pin(cert: x509.Certificate) -> str:
    """The RFC 7858 §4.2 pin of a loaded certificate: base64(SHA-256(DER SPKI))."""
    return _pin_of_spki(spki_der(cert.public_bytes(Encoding.DER)))


_WRAPPED_PIN = re.compile(r'^pin-sha256="?([^"]*)"?$')


def normalise_pin(text: str) -> str:
    """Accept ``BASE64`` or getdns-style ``pin-sha256="BASE64"``; raise ValueError."""
    text = text.strip()
    wrapped = _WRAPPED_PIN.match(text)
    if wrapped:
        text = wrapped.group(1)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{text[:60]!r} is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"{text[:60]!r} is {len(raw)} bytes, a SHA-256 pin is 32")
    return base64.b64encode(raw).decode("ascii")


# --- judgements shared by both layers ----------------------------------------------------


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject *and* the signature verifies with the certificate's own key.

    RFC 5280 §3.2 defines a self-signed certificate as a self-issued one "where the
    digital signature may be verified by the public key bound into the certificate";
    matching names alone only make it self-issued, which a CA also uses for key rollover
    (§6.1). So when the signature cannot be checked (an algorithm ``cryptography`` does
    not verify, such as SHA-1 or MD5, or a key that cannot sign) the answer is False, as
    it is for a signature that does not verify: not provably self-signed. The answer
    must not depend on which exception a ``cryptography`` release raises for that.
    """
    try:
        if cert.issuer != cert.subject:
            return False
    except ValueError:  # a name ``cryptography`` cannot build cannot be shown to match
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, or an algorithm or key it cannot verify
        return False
    return True


@dataclass(frozen=True, slots=True)
class KeyInfo:
    family: str
    """"RSA", "EC", "Ed25519", "Ed448", "DSA", "unknown", or the key's class name."""
    bits: int | None
    curve: str | None = None
    problem: str | None = None
    """Why the key is too weak for TLS, or None."""

    @property
    def kind(self) -> str:
        """The family, with the curve for EC keys ("EC secp256r1")."""
        return f"{self.family} {self.curve}" if self.curve else self.family


def key_info(cert: x509.Certificate) -> KeyInfo:
    """Key type and size, and why it is too weak (RFC 9325 §4.3: RSA ≥ 2048)."""
    try:
        key = cert.public_key()
    except Exception as exc:  # unsupported or broken key: the certificate is still reported
        return KeyInfo("unknown", None, problem=f"public key not usable: {exc}")
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        weak = None if bits >= 2048 else f"RSA key of {bits} bits (< 2048)"
        return KeyInfo("RSA", bits, problem=weak)
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.curve.key_size
        weak = None if bits >= 256 else f"EC {key.curve.name} is weaker than P-256"
        return KeyInfo("EC", bits, key.curve.name, weak)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyInfo("Ed25519", 256)
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyInfo("Ed448", 456)
    if isinstance(key, dsa.DSAPublicKey):
        weak = "DSA keys are not allowed in TLS 1.3 (RFC 8446)"
        return KeyInfo("DSA", key.key_size, problem=weak)
    return KeyInfo(type(key).__name__, None)


# --- facts of a certificate seen in a capture ---------------------------------------------


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
    """:func:`is_self_signed`."""
    signature_algorithm: str | None
    key_type: str
    key_bits: int | None


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


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _san_entries(cert: x509.Certificate) -> tuple[str, ...]:
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
    # Strict, unlike the probe's accessors: a capture's certificate whose names or
    # extensions do not parse is reported as malformed (an anomaly), not half-described.
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = safe_text(cert.subject.rfc4514_string())
        issuer = safe_text(cert.issuer.rfc4514_string())
        san = _san_entries(cert)
        not_before = _iso(cert.not_valid_before_utc)
        not_after = _iso(cert.not_valid_after_utc)
        oid = cert.signature_algorithm_oid.dotted_string
    except MalformedError:
        raise
    except Exception as exc:  # cryptography raises ValueError and friends on bad input
        raise MalformedError(f"unparseable certificate: {type(exc).__name__}") from None
    key = key_info(cert)
    return CertInfo(
        subject=subject,
        issuer=issuer,
        san=san,
        not_before=not_before,
        not_after=not_after,
        spki_sha256=_pin_of_spki(spki_der(der)),
        self_signed=is_self_signed(cert),
        signature_algorithm=_SIGNATURE_NAMES.get(oid, oid),
        key_type=key.family,
        key_bits=key.bits,
    )


# --- the probe's view of a certificate its own handshake received -------------------------

MAX_NAMES = 100
"""SAN entries kept in the probe's evidence; the count of all of them is reported too."""


class BadCertificate(ValueError):
    """The server's certificate is missing or does not parse."""


def load_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise BadCertificate(f"the server's certificate does not parse: {exc}") from None


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> Any:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _name_text(cert: x509.Certificate, part: Literal["subject", "issuer"]) -> str:
    # ``cryptography`` builds a Name when it is read, not when the certificate loads: an
    # RDN that repeats an attribute raises ValueError there, so the read is inside the try.
    try:
        name: x509.Name = getattr(cert, part)
        return name.rfc4514_string()
    except ValueError:
        return "<unparseable name>"


@dataclass(frozen=True, slots=True)
class SanNames:
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    total: int


def san_names(cert: x509.Certificate) -> SanNames:
    san = _extension(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
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


WEAK_HASHES = {"md5", "sha1", "md2", "md4"}


def signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # unknown OIDs raise UnsupportedAlgorithm
        return None
    return algorithm.name if algorithm is not None else None


def aia_issuer_urls(cert: x509.Certificate) -> list[str]:
    aia = _extension(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
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
        "subject": _name_text(cert, "subject"),
        "issuer": _name_text(cert, "issuer"),
        "serial": format(cert.serial_number, "x")[:64],
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "spki_pin": spki_pin(cert),
    }


def issuer_text(cert: x509.Certificate) -> str:
    return _name_text(cert, "issuer")
