"""SPKI pins (RFC 7858 §4.2): base64 of the SHA-256 of the DER SubjectPublicKeyInfo."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

_WRAPPED = re.compile(r'^pin-sha256="?([^"]*)"?$')


def normalise_pin(text: str) -> str:
    """Accept ``BASE64`` or getdns-style ``pin-sha256="BASE64"``; raise ValueError."""
    text = text.strip()
    wrapped = _WRAPPED.match(text)
    if wrapped:
        text = wrapped.group(1)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{text[:60]!r} is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"{text[:60]!r} is {len(raw)} bytes, a SHA-256 pin is 32")
    return base64.b64encode(raw).decode("ascii")


def spki_pin(cert: x509.Certificate) -> str:
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")
