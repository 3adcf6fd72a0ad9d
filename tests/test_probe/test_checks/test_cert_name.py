"""cert.name: the authentication name against the leaf's SANs (RFC 6125 §6.4; matching
itself is tested in tests/test_x509.py), or the address against its iPAddress SANs when
no name is given. Oracle: the lab PKI (tests/lab/pki.py: the valid leaf lists dns.test
and every lab address, the wrong_host leaf other.test and no address)."""

from __future__ import annotations

import pytest

from dotaudit.probe.base import CheckStatus, ProbeConfig
from dotaudit.probe.registry import with_dependencies
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab
from tests.lab.pki import HOSTNAME, WRONG_HOSTNAME
from tests.test_probe.lab_probe import attempt

pytestmark = pytest.mark.lab


def name_only(lab: Lab, target: str) -> TargetResult:
    config = ProbeConfig(ca_file=str(lab.ca), timeout=2.0)
    return run_target(parse_target(target), config, checks=with_dependencies({"cert.name"}))


def test_name_in_the_san_passes(padded_audit: TargetResult) -> None:
    found = attempt(padded_audit, "cert.name")
    assert found.status is CheckStatus.PASS
    assert found.evidence["reference"] == f"DNS-ID {HOSTNAME}"
    assert HOSTNAME in found.evidence["san_dns"]


def test_other_name_fails_and_shows_the_san(lab: Lab) -> None:
    wrong = lab["wrong_host"]
    found = attempt(name_only(lab, f"{HOSTNAME}@{wrong.address}"), "cert.name")
    assert found.status is CheckStatus.FAIL
    assert found.error_reason == f"the certificate is not for {HOSTNAME} (SAN: {WRONG_HOSTNAME})"


@pytest.mark.parametrize(("variant", "status"), [("padded", "pass"), ("wrong_host", "fail")])
def test_without_a_name_the_address_must_be_an_ip_san(lab: Lab, variant: str, status: str) -> None:
    address = lab[variant].address
    found = attempt(name_only(lab, address), "cert.name")
    assert found.status.value == status
    assert found.evidence["reference"] == f"IP-ID {address}"
