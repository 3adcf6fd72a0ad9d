"""cert.name: the authentication name against the leaf's SANs (RFC 6125 §6.4; matching
itself is tested in tests/test_x509.py), or the address against its iPAddress SANs when
no name is given. Oracle: the lab PKI (tests/lab/pki.py: the valid leaf lists dns.test
and every lab address, the wrong_host leaf other.test and no address).

Without the lab: cert.name against a loopback TLS server. Oracle: RFC 6125 §6.4 (DNS-ID
against dNSName SANs) and RFC 8310 §8.1; without a name, the address against iPAddress SANs.
"""

from __future__ import annotations

import pytest

from dotaudit.probe.base import CheckStatus, ProbeConfig
from dotaudit.probe.registry import with_dependencies
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.certgen import Issued, issue
from tests.lab.lab import Lab
from tests.lab.pki import HOSTNAME, WRONG_HOSTNAME
from tests.test_probe.lab_probe import attempt
from tests.test_probe.test_checks.conftest import ServerProbe


def name_only(lab: Lab, target: str) -> TargetResult:
    config = ProbeConfig(ca_file=str(lab.ca), timeout=2.0)
    return run_target(parse_target(target), config, checks=with_dependencies({"cert.name"}))


@pytest.mark.lab
def test_name_in_the_san_passes(padded_audit: TargetResult) -> None:
    found = attempt(padded_audit, "cert.name")
    assert found.status is CheckStatus.PASS
    assert found.evidence["reference"] == f"DNS-ID {HOSTNAME}"
    assert HOSTNAME in found.evidence["san_dns"]


@pytest.mark.lab
def test_other_name_fails_and_shows_the_san(lab: Lab) -> None:
    wrong = lab["wrong_host"]
    found = attempt(name_only(lab, f"{HOSTNAME}@{wrong.address}"), "cert.name")
    assert found.status is CheckStatus.FAIL
    assert found.error_reason == f"the certificate is not for {HOSTNAME} (SAN: {WRONG_HOSTNAME})"


@pytest.mark.lab
@pytest.mark.parametrize(("variant", "status"), [("padded", "pass"), ("wrong_host", "fail")])
def test_without_a_name_the_address_must_be_an_ip_san(lab: Lab, variant: str, status: str) -> None:
    address = lab[variant].address
    found = attempt(name_only(lab, address), "cert.name")
    assert found.status.value == status
    assert found.evidence["reference"] == f"IP-ID {address}"


def test_matching_name_passes_with_its_evidence(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(issue(issuer=root, dns=("dns.test", "alt.test"), ips=("127.0.0.1",)))[
        "cert.name"
    ]
    assert attempt.status is CheckStatus.PASS
    assert attempt.evidence == {
        "name": "dns.test",
        "address": "127.0.0.1",
        "san_dns": ["dns.test", "alt.test"],
        "san_ip": ["127.0.0.1"],
        "san_count": 3,
        "reference": "DNS-ID dns.test",
    }


def test_wrong_name_fails_listing_the_first_sans(probe_server: ServerProbe, root: Issued) -> None:
    names = tuple(f"n{i}.test" for i in range(7))
    attempt = probe_server(issue(issuer=root, dns=names))["cert.name"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == (
        "the certificate is not for dns.test (SAN: n0.test, n1.test, n2.test, n3.test, n4.test)"
    )


def test_no_dns_san_is_named_in_the_reason(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(issue(issuer=root, dns=(), ips=("192.0.2.1",)))["cert.name"]
    assert attempt.error_reason == "the certificate is not for dns.test (SAN: no dNSName)"


def test_address_only_target_matches_an_ip_san(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(issue(issuer=root, ips=("127.0.0.1",)), name=None)["cert.name"]
    assert attempt.status is CheckStatus.PASS
    assert attempt.error_reason == "no --name given: matched the address (SAN iPAddress)"
    assert attempt.evidence["reference"] == "IP-ID 127.0.0.1"
    assert attempt.evidence["name"] is None


def test_address_only_target_without_its_ip_san_fails(
    probe_server: ServerProbe, root: Issued
) -> None:
    attempt = probe_server(issue(issuer=root, ips=("127.0.0.2",)), name=None)["cert.name"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == (
        "no --name given and the certificate does not list 127.0.0.1 as an iPAddress SAN"
    )


def test_name_failures_carry_the_sans(probe_server: ServerProbe, root: Issued) -> None:
    wrong = probe_server(issue(issuer=root, dns=("other.test",)))["cert.name"]
    assert wrong.evidence["san_dns"] == ["other.test"]
    assert wrong.evidence["reference"] == "DNS-ID dns.test"
    no_ip = probe_server(issue(issuer=root, ips=("127.0.0.2",)), name=None)["cert.name"]
    assert no_ip.evidence["san_ip"] == ["127.0.0.2"]
    assert no_ip.evidence["reference"] == "IP-ID 127.0.0.1"
