"""cert.name against a loopback TLS server. Oracle: RFC 6125 §6.4 (DNS-ID against dNSName
SANs) and RFC 8310 §8.1; without a name, the address against iPAddress SANs."""

from __future__ import annotations

from dotaudit.probe.base import CheckStatus
from tests.test_probe.certgen import Issued, issue
from tests.test_probe.test_checks.conftest import Probe


def test_matching_name_passes_with_its_evidence(probe: Probe, root: Issued) -> None:
    attempt = probe(issue(issuer=root, dns=("dns.test", "alt.test"), ips=("127.0.0.1",)))[
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


def test_wrong_name_fails_listing_the_first_sans(probe: Probe, root: Issued) -> None:
    names = tuple(f"n{i}.test" for i in range(7))
    attempt = probe(issue(issuer=root, dns=names))["cert.name"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == (
        "the certificate is not for dns.test (SAN: n0.test, n1.test, n2.test, n3.test, n4.test)"
    )


def test_no_dns_san_is_named_in_the_reason(probe: Probe, root: Issued) -> None:
    attempt = probe(issue(issuer=root, dns=(), ips=("192.0.2.1",)))["cert.name"]
    assert attempt.error_reason == "the certificate is not for dns.test (SAN: no dNSName)"


def test_address_only_target_matches_an_ip_san(probe: Probe, root: Issued) -> None:
    attempt = probe(issue(issuer=root, ips=("127.0.0.1",)), name=None)["cert.name"]
    assert attempt.status is CheckStatus.PASS
    assert attempt.error_reason == "no --name given: matched the address (SAN iPAddress)"
    assert attempt.evidence["reference"] == "IP-ID 127.0.0.1"
    assert attempt.evidence["name"] is None


def test_address_only_target_without_its_ip_san_fails(probe: Probe, root: Issued) -> None:
    attempt = probe(issue(issuer=root, ips=("127.0.0.2",)), name=None)["cert.name"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == (
        "no --name given and the certificate does not list 127.0.0.1 as an iPAddress SAN"
    )


def test_name_failures_carry_the_sans(probe: Probe, root: Issued) -> None:
    wrong = probe(issue(issuer=root, dns=("other.test",)))["cert.name"]
    assert wrong.evidence["san_dns"] == ["other.test"]
    assert wrong.evidence["reference"] == "DNS-ID dns.test"
    no_ip = probe(issue(issuer=root, ips=("127.0.0.2",)), name=None)["cert.name"]
    assert no_ip.evidence["san_ip"] == ["127.0.0.2"]
    assert no_ip.evidence["reference"] == "IP-ID 127.0.0.1"
