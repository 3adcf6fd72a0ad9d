"""cert.quality against a loopback TLS server. Oracles: RFC 9325 §4.2-4.3 (RSA at least
2048 bits, no SHA-1 signatures), RFC 8446 §4.4.2 (the server sends its intermediates)."""

from __future__ import annotations

from pathlib import Path

from dotaudit.probe.base import CheckStatus
from tests.test_probe.certgen import Issued, issue, rsa_key, sha1_leaf
from tests.test_probe.test_checks.conftest import Probe


def test_strong_chain_passes_with_its_evidence(probe: Probe, intermediate: Issued) -> None:
    attempt = probe(issue(issuer=intermediate), intermediate)["cert.quality"]
    assert attempt.status is CheckStatus.PASS
    assert attempt.evidence == {
        "key_type": "EC secp256r1",
        "key_bits": 256,
        "signature_hashes": ["sha256", "sha256"],
        "sent_length": 2,
        "verified_length": 3,
    }


def test_weak_rsa_key_fails(probe: Probe, root: Issued) -> None:
    attempt = probe(issue(issuer=root, key=rsa_key(1024)), weak=True)["cert.quality"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "RSA key of 1024 bits (< 2048)"


def test_sha1_signature_fails(probe: Probe, root: Issued, tmp_path: Path) -> None:
    attempt = probe(sha1_leaf(tmp_path, root), weak=True)["cert.quality"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "signed with SHA1"
    assert attempt.evidence["signature_hashes"] == ["sha1"]


def test_self_signed_signature_is_not_judged(probe: Probe, tmp_path: Path) -> None:
    # A self-signed leaf's own signature proves nothing either way: only issued ones count.
    attempt = probe(issue())["cert.quality"]
    assert attempt.evidence["signature_hashes"] == []
    assert attempt.status is CheckStatus.PASS


def test_missing_intermediate_warns(probe: Probe, root: Issued, intermediate: Issued) -> None:
    # The client holds the intermediate, so the chain validates; the server omits it.
    leaf = issue(issuer=intermediate)
    attempt = probe(leaf, trust=(root, intermediate))["cert.quality"]
    assert attempt.status is CheckStatus.WARN
    assert attempt.error_reason == (
        "the server omits 1 intermediate certificate(s); only clients that already hold "
        "them can validate"
    )
    assert attempt.evidence["missing_intermediates"] == 1


def test_unverified_lone_leaf_with_aia_warns(probe: Probe, intermediate: Issued) -> None:
    leaf = issue(issuer=intermediate, aia=("http://ca.test/intermediate.crt",))
    attempt = probe(leaf)["cert.quality"]
    assert attempt.status is CheckStatus.WARN
    assert attempt.error_reason == (
        "the chain does not validate and the server sent only its leaf, whose AIA points to "
        "an issuer certificate: a missing intermediate"
    )
    assert attempt.evidence["aia_ca_issuers"] == ["http://ca.test/intermediate.crt"]
    # Without AIA, or with the intermediate sent, there is nothing to warn about.
    assert probe(issue(issuer=intermediate))["cert.quality"].status is CheckStatus.PASS


def test_every_problem_is_named(probe: Probe, root: Issued, tmp_path: Path) -> None:
    leaf = sha1_leaf(tmp_path, root, rsa_bits=1024)
    attempt = probe(leaf, weak=True)["cert.quality"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "RSA key of 1024 bits (< 2048); signed with SHA1"
