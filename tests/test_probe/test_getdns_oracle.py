"""getdns_server_mon (Debian getdns-utils) as an oracle for the overlapping checks.

Its ``tls-auth`` (exit 0 OK, 2 CRITICAL) must agree with our strict verdict (chain and
name), and ``tls-cert-valid`` (0/1/2 at its default 14,7 day thresholds) with
``cert.expiry``, on every lab DoT variant. Upstream syntax ``@IP#PORT~name``; the CA
goes in SSL_CERT_FILE; ``-v`` makes it say why instead of "Generic error".
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest

from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.conftest import QNAME

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        shutil.which("getdns_server_mon") is None,
        reason="getdns_server_mon not installed (getdns-utils)",
    ),
]

VARIANTS = ("padded", "expired", "expiring", "wrong_host", "self_signed", "untrusted", "tls12",
            "intercept")  # fmt: skip
EXIT_STATUS = {0: "pass", 1: "warn", 2: "fail"}


def getdns_server_mon(lab: Lab, variant: str, test: str) -> subprocess.CompletedProcess[str]:
    resolver = lab[variant]
    upstream = f"@{resolver.address}#{resolver.tls_port}~{resolver.hostname}"
    return subprocess.run(
        ["getdns_server_mon", "-M", "-v", "-T", upstream, test, QNAME],
        capture_output=True, text=True, timeout=60,
        env={"SSL_CERT_FILE": str(lab.ca), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
def test_tls_auth_agrees(lab: Lab, probe_lab: Callable[..., TargetResult], variant: str) -> None:
    oracle = getdns_server_mon(lab, variant, "tls-auth")
    assert oracle.returncode in (0, 2), oracle.stdout + oracle.stderr
    ours = probe_lab(variant)
    assert (ours.verdict.strict == "accept") == (oracle.returncode == 0), (
        oracle.stdout,
        ours.verdict.reasons,
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_tls_cert_valid_agrees(
    lab: Lab, probe_lab: Callable[..., TargetResult], variant: str
) -> None:
    oracle = getdns_server_mon(lab, variant, "tls-cert-valid")
    assert oracle.returncode in EXIT_STATUS, oracle.stdout + oracle.stderr
    expiry = probe_lab(variant).attempt("cert.expiry")
    assert expiry is not None
    assert expiry.status.value == EXIT_STATUS[oracle.returncode], (oracle.stdout, expiry)
