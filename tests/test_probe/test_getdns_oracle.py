"""getdns_server_mon (Debian getdns-utils) as the oracle for the strict verdict: its
``tls-auth`` (exit 0 OK, 2 CRITICAL) must agree with ours (chain and name) on every lab
DoT variant. Upstream syntax ``@IP#PORT~name``; the CA goes in SSL_CERT_FILE; ``-v``
makes it say why instead of "Generic error". The per-check agreements (tls-cert-valid,
tls-padding, keepalive, OOOR) are in tests/test_probe/test_checks/."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import HAVE_GETDNS, QNAME, getdns

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not HAVE_GETDNS, reason="getdns_server_mon not installed (getdns-utils)"),
]

VARIANTS = ("padded", "expired", "expiring", "wrong_host", "self_signed", "untrusted", "tls12",
            "intercept")  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
def test_tls_auth_agrees(lab: Lab, probe_lab: Callable[..., TargetResult], variant: str) -> None:
    oracle = getdns(lab, lab[variant].address, "tls-auth", QNAME)
    assert oracle.returncode in (0, 2), oracle.stdout + oracle.stderr
    ours = probe_lab(variant)
    assert (ours.verdict.strict == "accept") == (oracle.returncode == 0), (
        oracle.stdout,
        ours.verdict.reasons,
    )
