"""Discovery of Designated Resolvers (RFC 9462) against the lab's DDR Unbounds.

Oracles: RFC 9462 §4 (a _dns.resolver.arpa record MUST NOT use '.' as TargetName; a
record with a mandatory key the client does not understand MUST NOT be used), §4.2
(verified: the chain reaches a trust anchor and the certificate lists the unencrypted
resolver's IP), §4.3 (opportunistic: same IP, private or local address); RFC 9460 §2.4.2
(AliasMode), §8 (mandatory keys). The cases are tests/lab/zone.py's DDR_CASES, served by
real Unbound; the certificates are tests/lab/pki.py's leaves.
"""

from __future__ import annotations

import pytest

from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.discovery.ddr import (
    DdrResult,
    Endpoint,
    _judge,
    discover_designations,
    local_kind,
)
from dotaudit.probe.transport import Transport
from tests.lab.lab import Lab
from tests.lab.zone import DDR_ADDRESS, DDR_ALIAS_ADDRESS
from tests.test_probe.lab_probe import QNAME


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.0", "a private address (RFC 1918)"),
        ("9.255.255.255", None),
        ("172.16.0.0", "a private address (RFC 1918)"),
        ("172.31.255.255", "a private address (RFC 1918)"),
        ("172.15.255.255", None),
        ("172.32.0.0", None),
        ("192.168.1.1", "a private address (RFC 1918)"),
        ("192.169.0.1", None),
        ("169.254.1.1", "a link-local address (RFC 3927)"),
        ("127.53.5.1", "a loopback address"),
        ("fd00::53", "a unique local address (RFC 4193)"),
        ("fe80::1%eth0", "a link-local address (RFC 4291)"),
        ("::1", "a loopback address"),
        ("198.51.100.1", None),  # documentation, not private in RFC 9462 §4.3's sense
        ("2001:db8::1", None),
        ("not an address", None),
    ],
)
def test_private_or_local_in_the_sense_of_opportunistic_discovery(
    address: str, kind: str | None
) -> None:
    assert local_kind(address) == kind


def endpoint(resolver: str, address: str, chain: bool, ip_in_san: bool) -> Endpoint:
    found = Endpoint(
        resolver,
        1,
        "dns.test.",
        "dot",
        "dot",
        853,
        "1 dns.test. alpn=dot",
        addresses=[address],
        address=address,
    )
    found.verification = {
        "chain_verified": chain,
        "chain_error": None if chain else "x",
        "ip_in_san": ip_in_san,
        "name_matches": True,
    }
    return found


@pytest.mark.parametrize(
    ("resolver", "address", "chain", "ip", "status"),
    [
        ("192.0.2.1", "192.0.2.53", True, True, "verified"),
        ("192.0.2.1", "192.0.2.53", False, True, "not verified"),
        ("192.0.2.1", "192.0.2.53", True, False, "not verified"),
        ("192.168.1.1", "192.168.1.1", True, False, "opportunistic"),  # same, private
        ("192.168.1.1", "192.168.1.2", True, False, "not verified"),  # another address
        ("192.0.2.1", "192.0.2.1", True, False, "not verified"),  # same, but public
    ],
)
def test_verified_opportunistic_or_neither(
    resolver: str, address: str, chain: bool, ip: bool, status: str
) -> None:
    found = endpoint(resolver, address, chain, ip)
    _judge(found)
    assert found.status == status
    assert found.opportunistic["applies"] == (status == "opportunistic")


def by_priority(result: DdrResult) -> dict[int, Endpoint]:
    return {e.priority: e for e in result.endpoints}


@pytest.fixture(scope="module")
def ddr(lab: Lab) -> DdrResult:
    config = ProbeConfig(ca_file=str(lab.ca), qname=QNAME, timeout=2.0)
    return discover_designations(Transport(), DDR_ADDRESS, config)


@pytest.mark.lab
def test_designations_in_priority_order(ddr: DdrResult) -> None:
    assert ddr.status == "designations"
    assert [(e.priority, e.protocol) for e in ddr.endpoints] == [
        (1, "dot"),
        (2, "doq"),
        (3, "doh"),
        (4, "dot"),
        (5, "dot"),
        (6, "dot"),
    ]


@pytest.mark.lab
def test_the_verified_designations(ddr: DdrResult) -> None:
    found = by_priority(ddr)
    for priority in (1, 2, 3):
        assert found[priority].status == "verified", found[priority].reasons
        assert found[priority].verification["ip_in_san"] is True
        assert found[priority].verification["chain_verified"] is True
        assert found[priority].exchange["answered"] is True
    assert found[1].address == DDR_ADDRESS and found[2].address == "127.53.3.1"
    assert found[3].port == 443 and found[3].dohpath == "/dns-query{?dns}"
    # Unbound 1.17 selects no ALPN on 853; the DoQ server and dnsdist's DoH do.
    assert [found[p].exchange["alpn"] for p in (1, 2, 3)] == [None, "doq", "h2"]


@pytest.mark.lab
def test_a_certificate_without_the_ip_is_not_verified(ddr: DdrResult) -> None:
    other = by_priority(ddr)[4]
    assert other.status == "not verified"
    assert other.verification["chain_verified"] is True
    assert other.verification["ip_in_san"] is False and other.verification["san_ips"] == []
    assert f"does not list {DDR_ADDRESS}" in " ".join(other.reasons)
    assert other.opportunistic["applies"] is False  # 127.53.1.3 is not 127.53.5.1


@pytest.mark.lab
def test_a_certificate_that_does_not_chain_is_not_verified(ddr: DdrResult) -> None:
    untrusted = by_priority(ddr)[5]
    assert untrusted.status == "not verified"
    assert untrusted.verification["chain_verified"] is False
    assert "rogue" in untrusted.verification["issuer"]


@pytest.mark.lab
def test_a_target_that_does_not_resolve_is_a_finding(ddr: DdrResult) -> None:
    nowhere = by_priority(ddr)[6]
    assert (nowhere.status, nowhere.addresses) == ("no address", [])
    assert "NXDOMAIN" in nowhere.reasons[0]
    [finding] = [f for f in ddr.findings if f.id == "DA-DDR-002"]
    assert finding.evidence["target"] == "nowhere.ddr.test."


@pytest.mark.lab
def test_malformed_and_ignored_records(ddr: DdrResult) -> None:
    rows = {r["priority"]: r for r in ddr.records}
    assert rows[7]["status"] == "malformed" and "MUST NOT use" in rows[7]["problems"][0]
    assert rows[8]["status"] == "malformed" and "declared mandatory" in rows[8]["problems"][0]
    assert rows[8]["text"].startswith("\\# 18 0008")
    assert rows[9]["status"] == "ignored" and "key65000" in rows[9]["problems"][0]
    malformed = sorted(f.evidence["record"] for f in ddr.findings if f.id == "DA-DDR-001")
    assert malformed == sorted([rows[7]["text"], rows[8]["text"]])
    unverified = sorted(f.server or "" for f in ddr.findings if f.id == "DA-DDR-003")
    assert unverified == ["127.53.1.3:853", "127.53.1.5:853"]


@pytest.mark.lab
def test_aliasmode_is_followed_and_opportunistic_discovery_says_so(lab: Lab) -> None:
    config = ProbeConfig(ca_file=str(lab.ca), qname=QNAME, timeout=2.0)
    result = discover_designations(Transport(), DDR_ALIAS_ADDRESS, config)
    statuses = [(r["owner"], r["status"]) for r in result.records]
    assert statuses == [("_dns.resolver.arpa.", "alias"), ("svc.ddr.test.", "designation")]
    [found] = result.endpoints
    assert (found.target, found.address, found.status) == (
        "other.test.",
        DDR_ALIAS_ADDRESS,
        "opportunistic",
    )
    assert found.opportunistic == {
        "applies": True,
        "reason": f"{DDR_ALIAS_ADDRESS} is a loopback address and the designated resolver "
        "has the same address (RFC 9462 §4.3)",
    }


@pytest.mark.lab
def test_a_resolver_without_designations_says_nodata_or_its_rcode(lab: Lab) -> None:
    config = ProbeConfig(ca_file=str(lab.ca), qname=QNAME, timeout=2.0)
    result = discover_designations(Transport(), lab["padded"].address, config)
    assert (result.status, result.rcode, result.endpoints) == ("none", "NXDOMAIN", [])
    silent = discover_designations(Transport(), "127.54.9.1", ProbeConfig(timeout=0.5))
    assert silent.status == "unreachable"
