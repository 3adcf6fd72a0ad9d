"""cert.chain on the lab's leaves: OpenSSL validates against the lab CA; each refusal
gets its own reason, and the evidence describes what the server sent.

Oracle: the lab PKI (tests/lab/pki.py: the valid leaf is signed by the lab CA, the
self_signed leaf by its own key, the untrusted one by the rogue CA, the expired one by
the lab CA but out of date; pins and CA checked against OpenSSL in test_pki.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import attempt

pytestmark = pytest.mark.lab

Probe = Callable[..., TargetResult]


def test_valid_chain_passes_and_is_described(lab: Lab, padded_audit: TargetResult) -> None:
    found = attempt(padded_audit, "cert.chain")
    assert found.status is CheckStatus.PASS
    assert found.evidence["trust_store"] == str(lab.ca)
    (leaf,) = found.evidence["sent"]  # the lab's Unbound sends its leaf alone
    assert leaf["spki_pin"] == lab["padded"].pin and "CN=dns.test" in leaf["subject"]
    assert found.evidence["verified_length"] == 2  # leaf and lab CA


@pytest.mark.parametrize(
    ("variant", "why"),
    [
        ("self_signed", "the certificate is self-signed"),
        ("untrusted", "is not a trusted CA and the server sent no intermediate"),
        ("expired", "the certificate has expired"),
    ],
)
def test_refused_chains_say_why(lab: Lab, probe_lab: Probe, variant: str, why: str) -> None:
    found = attempt(probe_lab(variant), "cert.chain")
    assert found.status is CheckStatus.FAIL
    assert why in (found.error_reason or "")
    assert found.evidence["openssl"] and found.evidence["verified_length"] == 0
    assert found.evidence["sent"][0]["spki_pin"] == lab[variant].pin
