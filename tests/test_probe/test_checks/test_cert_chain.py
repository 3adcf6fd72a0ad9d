"""cert.chain on the lab's leaves: OpenSSL validates against the lab CA; each refusal
gets its own reason, and the evidence describes what the server sent.

Oracle: the lab PKI (tests/lab/pki.py: the valid leaf is signed by the lab CA, the
self_signed leaf by its own key, the untrusted one by the rogue CA, the expired one by
the lab CA but out of date; pins and CA checked against OpenSSL in test_pki.py).

Without the lab: cert.chain against a loopback TLS server. Oracle: the chain each test built
and the trust store it gave (RFC 5280 §6 path validation is OpenSSL's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography.x509 import (
    Name,
    NameAttribute,
    RelativeDistinguishedName,
    load_der_x509_certificate,
)
from cryptography.x509.oid import NameOID

from dotaudit import x509
from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.certgen import NOW, Issued, ca, issue
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import attempt
from tests.test_probe.test_checks.conftest import ServerProbe

LabProbe = Callable[..., TargetResult]


@pytest.mark.lab
def test_valid_chain_passes_and_is_described(lab: Lab, padded_audit: TargetResult) -> None:
    found = attempt(padded_audit, "cert.chain")
    assert found.status is CheckStatus.PASS
    assert found.evidence["trust_store"] == str(lab.ca)
    (leaf,) = found.evidence["sent"]  # the lab's Unbound sends its leaf alone
    assert leaf["spki_pin"] == lab["padded"].pin and "CN=dns.test" in leaf["subject"]
    assert found.evidence["verified_length"] == 2  # leaf and lab CA


@pytest.mark.lab
@pytest.mark.parametrize(
    ("variant", "why"),
    [
        ("self_signed", "the certificate is self-signed"),
        ("untrusted", "is not a trusted CA and the server sent no intermediate"),
        ("expired", "the certificate has expired"),
    ],
)
def test_refused_chains_say_why(lab: Lab, probe_lab: LabProbe, variant: str, why: str) -> None:
    found = attempt(probe_lab(variant), "cert.chain")
    assert found.status is CheckStatus.FAIL
    assert why in (found.error_reason or "")
    assert found.evidence["openssl"] and found.evidence["verified_length"] == 0
    assert found.evidence["sent"][0]["spki_pin"] == lab[variant].pin


def test_chain_to_the_trusted_root_passes(probe_server: ServerProbe, intermediate: Issued) -> None:
    leaf = issue(issuer=intermediate)
    attempt = probe_server(leaf, intermediate)["cert.chain"]
    assert attempt.status is CheckStatus.PASS and attempt.error_reason is None
    assert attempt.evidence["sent"] == [
        x509.describe(leaf.cert),
        x509.describe(intermediate.cert),
    ]
    assert attempt.evidence["verified_length"] == 3
    assert attempt.evidence["trust_store"].endswith("trust.pem")
    assert "openssl" not in attempt.evidence


def test_self_signed_leaf_fails_as_self_signed(probe_server: ServerProbe) -> None:
    attempt = probe_server(issue())["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason is not None
    assert attempt.error_reason.startswith("the certificate is self-signed (")
    assert attempt.evidence["verified_length"] == 0
    assert attempt.evidence["openssl"] in attempt.error_reason


def test_expired_leaf_fails_as_expired(probe_server: ServerProbe, root: Issued) -> None:
    leaf = issue(
        issuer=root,
        not_before=NOW - dt.timedelta(days=60),
        not_after=NOW - dt.timedelta(days=1),
    )
    attempt = probe_server(leaf)["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert (attempt.error_reason or "").startswith("the certificate has expired (")


def test_untrusted_issuer_without_intermediate_says_so(probe_server: ServerProbe) -> None:
    rogue = ca("Rogue CA")
    attempt = probe_server(issue(issuer=rogue))["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert (attempt.error_reason or "").startswith(
        "its issuer 'CN=Rogue CA' is not a trusted CA and the server sent no intermediate ("
    )


def test_untrusted_root_behind_an_intermediate_names_the_last_issuer(
    probe_server: ServerProbe,
) -> None:
    rogue = ca("Rogue Root")
    rogue_intermediate = ca("Rogue Intermediate", issuer=rogue)
    attempt = probe_server(issue(issuer=rogue_intermediate), rogue_intermediate)["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    reason = attempt.error_reason or ""
    assert reason.startswith("its issuer 'CN=Rogue Root' is not a trusted CA (")
    assert "no intermediate" not in reason


def test_other_verification_errors_are_named_by_openssl(
    probe_server: ServerProbe, root: Issued
) -> None:
    leaf = issue(issuer=root, not_before=NOW + dt.timedelta(days=2))
    attempt = probe_server(leaf)["cert.chain"]
    assert attempt.status is CheckStatus.FAIL
    assert (attempt.error_reason or "").startswith("OpenSSL rejected the chain (")


def test_without_ca_the_system_store_is_the_trust_store(
    probe_server: ServerProbe, root: Issued
) -> None:
    attempt = probe_server(issue(issuer=root), system_store=True)["cert.chain"]
    assert attempt.evidence["trust_store"] == "system"
    assert attempt.status is CheckStatus.FAIL  # the test root is in no system store


def test_a_subject_cryptography_cannot_build_is_judged_not_an_internal_error(
    probe_server: ServerProbe, root: Issued
) -> None:
    # One RDN of two CN attributes made equal after signing: the certificate loads but
    # cryptography refuses to build its subject (and the signature no longer verifies).
    subject = issue(issuer=root, subject=x509_name_with_rdn("dup1", "dup2"))
    der = subject.der.replace(b"dup2", b"dup1")
    leaf = Issued(load_der_x509_certificate(der), subject.key)
    attempts = probe_server(leaf)
    chain, quality = attempts["cert.chain"], attempts["cert.quality"]
    assert chain.status is CheckStatus.FAIL, chain
    (sent,) = chain.evidence["sent"]
    assert (sent["subject"], sent["issuer"]) == ("<unparseable name>", "CN=Test Root CA")
    assert quality.status is CheckStatus.PASS, quality
    assert quality.evidence["signature_hashes"] == ["sha256"]


def x509_name_with_rdn(*common_names: str) -> Name:
    return Name(
        [RelativeDistinguishedName([NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names])]
    )
