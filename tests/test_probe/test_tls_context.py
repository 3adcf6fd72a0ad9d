"""The TLS settings of a probe connection. Oracle: Python's ssl module reading the
settings back, and OpenSSL 3's security levels (the SHA-1 suites TLS 1.0 and 1.1 need
exist only at level 0; Python's default cipher string drops them)."""

from __future__ import annotations

import ssl

from dotaudit.probe.tls_context import client_context
from tests.lab.pki import Pki


def test_strict_context_verifies_the_chain_but_leaves_names_to_cert_name(
    local_pki: Pki,
) -> None:
    context = client_context(verify=True, ca_file=str(local_pki.ca_cert))
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is False  # cert.name gives a name its own reason
    assert context.cert_store_stats()["x509_ca"] == 1  # the given CA, not the system store


def test_loose_context_verifies_nothing() -> None:
    context = client_context(verify=False)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    assert context.cert_store_stats()["x509_ca"] == 0


def test_version_bounds_and_legacy_versions() -> None:
    modern = client_context(verify=False, min_version="TLSv1.2", max_version="TLSv1.3")
    assert (modern.minimum_version, modern.maximum_version) == (
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_3,
    )
    legacy = client_context(verify=False, min_version="TLSv1", max_version="TLSv1")
    assert legacy.maximum_version is ssl.TLSVersion.TLSv1
    # Only at security level 0 does OpenSSL 3 keep the SHA-1 suites TLS 1.0 needs.
    legacy_suites = {c["name"] for c in legacy.get_ciphers()}
    modern_suites = {c["name"] for c in modern.get_ciphers()}
    assert "ECDHE-RSA-AES128-SHA" in legacy_suites
    assert "ECDHE-RSA-AES128-SHA" not in modern_suites
