"""The machine index (model/machines.py): rows of several captures joined by Ethernet
address, routers left out, addresses without evidence as machines of their own."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dotaudit.model.findings import make_finding
from dotaudit.model.machines import MachineIndex, _order, client_addresses

MAC = "02:00:00:00:00:0a"


def row(addresses: list[str], macs: list[str], **extra: object) -> dict[str, object]:
    via = [{"address": a, "mac": m, "via": ["arp"]} for a in addresses for m in macs[:1]]
    return {"addresses": addresses, "macs": macs, "hostnames": [], "evidence": via, **extra}


def test_rows_of_two_captures_sharing_a_mac_are_one_machine() -> None:
    index = MachineIndex(
        [row(["192.0.2.10"], [MAC]), row(["2001:db8::a", "192.0.2.10"], [MAC], hostnames=["pc"])]
    )
    machine = index.machine_of("2001:db8::a")
    assert machine is index.machine_of("192.0.2.10")
    assert machine.addresses == ["192.0.2.10", "2001:db8::a"]  # IPv4 first, each once
    assert machine.label == "pc"  # a DHCP host name names the machine
    assert "share the Ethernet address 02:00:00:00:00:0a" in machine.basis()


def test_different_macs_stay_different_machines_and_routers_are_nobodys_client() -> None:
    index = MachineIndex(
        [
            row(["192.0.2.10"], [MAC]),
            row(["192.0.2.11"], ["02:00:00:00:00:0b"]),
            row(["192.0.2.1"], ["02:00:00:00:00:fe"], router=True),
        ]
    )
    assert index.machine_of("192.0.2.10") is not index.machine_of("192.0.2.11")
    router = index.machine_of("192.0.2.1")
    assert router.macs == [] and "no link-layer evidence" in router.basis()


def test_an_address_without_evidence_is_a_machine_of_its_own_once() -> None:
    index = MachineIndex([])
    first = index.machine_of("10.0.0.9")
    assert first is index.machine_of("10.0.0.9") and first.addresses == ["10.0.0.9"]
    assert [m.key for m in index.machines_of(["10.0.0.9", "10.0.0.8", "10.0.0.9"])] == [
        "10.0.0.8",
        "10.0.0.9",
    ]


def test_an_ambiguous_address_says_why_it_is_alone() -> None:
    index = MachineIndex([row(["192.0.2.10"], [], ambiguous_macs=[MAC, "02:00:00:00:00:0b"])])
    assert "seen from 2 Ethernet addresses" in index.machine_of("192.0.2.10").basis()


def test_hostile_rows_are_skipped_not_fatal() -> None:
    index = MachineIndex([{"addresses": "x"}, {"addresses": [None, 3]}, {"macs": [1]}])  # type: ignore[list-item]
    assert index.machine_of("192.0.2.1").addresses == ["192.0.2.1"]


def test_clients_come_from_findings_and_client_sections_not_local_stubs() -> None:
    sections = {
        "plaintext_dns": [
            {"client": "10.0.0.2", "local_stub": False},
            {"client": "127.0.0.1", "local_stub": True},
        ],
        "dot_sessions": [{"client": "10.0.0.3"}],
        "sni_inventory": [{"client": "10.0.0.2"}],
    }
    finding = make_finding("DA-LEAK-005", dedup_key="x", client="10.0.0.4")
    assert client_addresses(sections, [finding]) == ["10.0.0.4", "10.0.0.2", "10.0.0.3"]


def _ipaddress_order(text: str) -> tuple[int, int, str]:
    """The oracle: the standard library's reading of the address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return (9, 0, text)
    return (address.version, int(address), text)


@pytest.mark.parametrize(
    "text",
    ["0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.10", "256.1.1.1", "01.2.3.4", "1.2.3",
     "1.2.3.4.5", "1.2.3.", "\u0661.2.3.4", "+1.2.3.4", " 1.2.3.4", "1.2.3.4 ", "1.2.3.0004",
     "a.b.c.d", "::1", "2001:db8::1", "::ffff:1.2.3.4", "", "pc.lan"],
)  # fmt: skip
def test_address_order_reads_addresses_as_ipaddress_does(text: str) -> None:
    assert _order(text) == _ipaddress_order(text)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_address_orders_by_its_value(value: int) -> None:
    text = str(ipaddress.IPv4Address(value))
    assert _order(text) == (4, value, text) == _ipaddress_order(text)
