"""cert.quality on the lab's leaves: key type and size, and the signature hashes that
count. Oracle: the lab PKI (tests/lab/pki.py: ECDSA P-256 keys, SHA-256 signatures) and
RFC 8446 §4.2.3 (the signature of a self-signed certificate begins a path and is not
validated, so its hash is not judged: dotaudit.x509.is_self_signed decides which).

Without the lab: cert.quality against a loopback TLS server. Oracles: RFC 9325 §4.2-4.3 (RSA
at least 2048 bits, no SHA-1 signatures), RFC 8446 §4.4.2 (the server sends its
intermediates).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.certgen import Issued, issue, openssl_issued, rsa_key, sha1_leaf
from tests.test_probe.lab_probe import attempt
from tests.test_probe.test_checks.conftest import ServerProbe


@pytest.mark.lab
@pytest.mark.parametrize(("variant", "hashes"), [("padded", ["sha256"]), ("untrusted", ["sha256"]),
                                                 ("self_signed", [])])  # fmt: skip
def test_key_and_hashes(
    probe_lab: Callable[..., TargetResult], variant: str, hashes: list[str]
) -> None:
    found = attempt(probe_lab(variant), "cert.quality")
    assert found.status is CheckStatus.PASS, found
    assert (found.evidence["key_type"], found.evidence["key_bits"]) == ("EC secp256r1", 256)
    assert found.evidence["signature_hashes"] == hashes
    assert found.evidence["sent_length"] == 1


def test_strong_chain_passes_with_its_evidence(
    probe_server: ServerProbe, intermediate: Issued
) -> None:
    attempt = probe_server(issue(issuer=intermediate), intermediate)["cert.quality"]
    assert attempt.status is CheckStatus.PASS
    assert attempt.evidence == {
        "key_type": "EC secp256r1",
        "key_bits": 256,
        "signature_hashes": ["sha256", "sha256"],
        "sent_length": 2,
        "verified_length": 3,
    }


def test_weak_rsa_key_fails(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(issue(issuer=root, key=rsa_key(1024)), weak=True)["cert.quality"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "RSA key of 1024 bits (< 2048)"


def test_sha1_signature_fails(probe_server: ServerProbe, root: Issued, tmp_path: Path) -> None:
    attempt = probe_server(sha1_leaf(tmp_path, root), weak=True)["cert.quality"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "signed with SHA1"
    assert attempt.evidence["signature_hashes"] == ["sha1"]


def test_self_signed_signature_is_not_judged(probe_server: ServerProbe, tmp_path: Path) -> None:
    # A self-signed leaf's own signature proves nothing either way: only issued ones count.
    attempt = probe_server(issue())["cert.quality"]
    assert attempt.evidence["signature_hashes"] == []
    assert attempt.status is CheckStatus.PASS


def test_missing_intermediate_warns(
    probe_server: ServerProbe, root: Issued, intermediate: Issued
) -> None:
    # The client holds the intermediate, so the chain validates; the server omits it.
    leaf = issue(issuer=intermediate)
    attempt = probe_server(leaf, trust=(root, intermediate))["cert.quality"]
    assert attempt.status is CheckStatus.WARN
    assert attempt.error_reason == (
        "the server omits 1 intermediate certificate(s); only clients that already hold "
        "them can validate"
    )
    assert attempt.evidence["missing_intermediates"] == 1


def test_unverified_lone_leaf_with_aia_warns(
    probe_server: ServerProbe, intermediate: Issued
) -> None:
    leaf = issue(issuer=intermediate, aia=("http://ca.test/intermediate.crt",))
    attempt = probe_server(leaf)["cert.quality"]
    assert attempt.status is CheckStatus.WARN
    assert attempt.error_reason == (
        "the chain does not validate and the server sent only its leaf, whose AIA points to "
        "an issuer certificate: a missing intermediate"
    )
    assert attempt.evidence["aia_ca_issuers"] == ["http://ca.test/intermediate.crt"]
    # Without AIA, or with the intermediate sent, there is nothing to warn about.
    assert probe_server(issue(issuer=intermediate))["cert.quality"].status is CheckStatus.PASS


def test_every_problem_is_named(probe_server: ServerProbe, root: Issued, tmp_path: Path) -> None:
    leaf = sha1_leaf(tmp_path, root, rsa_bits=1024)
    attempt = probe_server(leaf, weak=True)["cert.quality"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "RSA key of 1024 bits (< 2048); signed with SHA1"


def test_every_weak_hash_of_the_chain_is_named(
    probe_server: ServerProbe, root: Issued, tmp_path: Path
) -> None:
    # The leaf is signed with MD5 (by an RSA key: ECDSA has no MD5), the intermediate with
    # SHA-1: both are named, sorted.
    weak_ca = openssl_issued(tmp_path, root, "Weak CA", digest="sha1", rsa_bits=2048, ca=True)
    leaf = openssl_issued(tmp_path, weak_ca, digest="md5")
    attempt = probe_server(leaf, weak_ca, weak=True)["cert.quality"]
    assert attempt.evidence["signature_hashes"] == ["md5", "sha1"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "signed with MD5, SHA1"
