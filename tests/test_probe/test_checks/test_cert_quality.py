"""cert.quality on the lab's leaves: key type and size, and the signature hashes that
count. Oracle: the lab PKI (tests/lab/pki.py: ECDSA P-256 keys, SHA-256 signatures) and
RFC 8446 §4.2.3 (the signature of a self-signed certificate begins a path and is not
validated, so its hash is not judged: dotaudit.x509.is_self_signed decides which)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.test_probe.lab_probe import attempt

pytestmark = pytest.mark.lab


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
