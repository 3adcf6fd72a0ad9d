"""cert.chain against a loopback TLS server. Oracle: the chain each test built and the
trust store it gave (RFC 5280 §6 path validation is OpenSSL's)."""

from __future__ import annotations

import datetime as dt

from dotaudit.probe import certs
from dotaudit.probe.base import CheckStatus
from tests.test_probe.certgen import NOW, Issued, ca, issue
from tests.test_probe.test_checks.conftest import Probe


def test_chain_to_the_trusted_root_passes(probe: Probe, intermediate: Issued) -> None:
    leaf = issue(issuer=intermediate)
    attempt = probe(leaf, intermediate)["cert.chain"]
    assert attempt.status is CheckStatus.PASS and attempt.error_reason is None
    assert attempt.evidence["sent"] == [
        certs.describe(leaf.cert),
        certs.describe(intermediate.cert),
    ]
    assert attempt.evidence["verified_length"] == 3
    assert attempt.evidence["trust_store"].endswith("trust.pem")
    assert "openssl" not in attempt.evidence


def test_self_signed_leaf_fails_as_self_signed(probe: Probe) -> None:
    attempt = probe(issue())["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason is not None
    assert attempt.error_reason.startswith("the certificate is self-signed (")
    assert attempt.evidence["verified_length"] == 0
    assert attempt.evidence["openssl"] in attempt.error_reason


def test_expired_leaf_fails_as_expired(probe: Probe, root: Issued) -> None:
    leaf = issue(
        issuer=root,
        not_before=NOW - dt.timedelta(days=60),
        not_after=NOW - dt.timedelta(days=1),
    )
    attempt = probe(leaf)["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert (attempt.error_reason or "").startswith("the certificate has expired (")


def test_untrusted_issuer_without_intermediate_says_so(probe: Probe) -> None:
    rogue = ca("Rogue CA")
    attempt = probe(issue(issuer=rogue))["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert (attempt.error_reason or "").startswith(
        "its issuer 'CN=Rogue CA' is not a trusted CA and the server sent no intermediate ("
    )


def test_untrusted_root_behind_an_intermediate_names_the_last_issuer(probe: Probe) -> None:
    rogue = ca("Rogue Root")
    rogue_intermediate = ca("Rogue Intermediate", issuer=rogue)
    attempt = probe(issue(issuer=rogue_intermediate), rogue_intermediate)["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    reason = attempt.error_reason or ""
    assert reason.startswith("its issuer 'CN=Rogue Root' is not a trusted CA (")
    assert "no intermediate" not in reason


def test_other_verification_errors_are_named_by_openssl(probe: Probe, root: Issued) -> None:
    leaf = issue(issuer=root, not_before=NOW + dt.timedelta(days=2))
    attempt = probe(leaf)["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert (attempt.error_reason or "").startswith("OpenSSL rejected the chain (")


def test_without_ca_the_system_store_is_the_trust_store(probe: Probe, root: Issued) -> None:
    attempt = probe(issue(issuer=root), system_store=True)["cert.chain"]
    assert attempt.evidence["trust_store"] == "system"
    assert attempt.status is CheckStatus.FAIL  # the test root is in no system store
