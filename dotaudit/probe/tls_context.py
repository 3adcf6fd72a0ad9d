"""The TLS client settings a probe connection uses (settings only: the I/O is in transport/)."""

from __future__ import annotations

import ssl
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    VERSIONS = {
        "TLSv1": ssl.TLSVersion.TLSv1,
        "TLSv1.1": ssl.TLSVersion.TLSv1_1,
        "TLSv1.2": ssl.TLSVersion.TLSv1_2,
        "TLSv1.3": ssl.TLSVersion.TLSv1_3,
    }
DOT_ALPN = "dot"
"""RFC 7858 has no ALPN; "dot" is registered by RFC 9103 §7.1 and sent by most clients."""


def check_ca_file(path: str) -> None:
    """Raise ValueError saying why the CA bundle at ``path`` cannot be used (``--ca``):
    it must be PEM and hold at least one certificate."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc).lower().replace("_", " ")
        raise ValueError(f"not a PEM certificate bundle ({reason})") from None
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    if probe.cert_store_stats().get("x509", 0) == 0:
        raise ValueError("not a PEM certificate bundle (it holds no certificate)")


def client_context(
    *,
    verify: bool,
    ca_file: str | None = None,
    min_version: str | None = None,
    max_version: str | None = None,
    alpn: tuple[str, ...] = (DOT_ALPN,),
) -> ssl.SSLContext:
    """A client context. ``verify`` checks the chain only: names are matched by
    ``cert.name`` so that a bad name and a bad chain get separate reasons."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            ctx.set_default_verify_paths()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    legacy = min_version in ("TLSv1", "TLSv1.1")
    if legacy:
        # OpenSSL 3 refuses TLS < 1.2 at security level 1 and above; the probe must be
        # able to offer them to learn whether the server would accept them.
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; offering them is how the probe finds servers
        # that still accept them.
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version:
            ctx.minimum_version = VERSIONS[min_version]
        if max_version:
            ctx.maximum_version = VERSIONS[max_version]
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx
