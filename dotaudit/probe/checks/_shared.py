"""Helpers several checks share: the presented certificates of the shared handshake."""

from __future__ import annotations

from cryptography import x509

from dotaudit.probe.base import CheckContext, Handshake
from dotaudit.x509 import BadCertificate, load_certificate


def presented(ctx: CheckContext) -> tuple[Handshake, list[x509.Certificate]]:
    """The shared handshake and the certificates the server sent, leaf first.

    Raises ProbeError when no TLS session could be set up (an error attempt), and
    BadCertificate when the server sent nothing parseable.
    """
    info = ctx.handshake()
    info.require()
    if not info.chain:
        raise BadCertificate("the server sent no certificate")
    return info, [load_certificate(der) for der in info.chain[:10]]
