"""Grouping addresses into machines (detect/machines.py): each clause of the rule, on both
sides. Oracle: the rule as written in the module docstring and docs/findings.md."""

from __future__ import annotations

from typing import Any

import pytest

from dotaudit.detect import machines as machines_module
from dotaudit.detect.base import Context
from dotaudit.detect.machines import (
    MAX_ANNOUNCED_PREFIXES,
    MAX_MACHINE_ADDRESSES,
    MachineDetector,
    eui64_matches,
)
from dotaudit.model.events import Event
from tests.allocations import bytes_kept
from tests.factories import fed_detector, host_identity

HOST = "02:00:00:00:00:0a"
OTHER = "02:00:00:00:00:0b"
ROUTER = "02:00:00:00:00:fe"


def grouped(events: list[Event]) -> list[dict[str, Any]]:
    return fed_detector(MachineDetector, events).sections()["machines"]


def groups_of(events: list[Event]) -> list[list[str]]:
    return [row["addresses"] for row in grouped(events)]


def test_arp_and_ndp_of_one_mac_are_one_machine() -> None:
    rows = grouped([host_identity(HOST, "192.0.2.10"), host_identity(HOST, "2001:db8:1::a", "ndp")])
    assert [r["addresses"] for r in rows] == [["192.0.2.10", "2001:db8:1::a"]]
    assert rows[0]["evidence"] == [
        {"address": "192.0.2.10", "mac": HOST, "via": ["arp"]},
        {"address": "2001:db8:1::a", "mac": HOST, "via": ["ndp"]},
    ]


def test_a_frame_source_binds_an_address_in_an_on_link_ipv6_prefix_only() -> None:
    ndp = host_identity(HOST, "2001:db8:1::a", "ndp")  # puts 2001:db8:1::/64 on the link
    inside = host_identity(HOST, "2001:db8:1::abcd", "frame")  # a privacy address
    assert groups_of([ndp, inside]) == [["2001:db8:1::a", "2001:db8:1::abcd"]]
    outside = host_identity(OTHER, "2001:db8:2::1", "frame")  # the next /64: off the link
    assert groups_of([ndp, outside]) == [["2001:db8:1::a"]]


def test_ipv4_on_link_is_the_slash_24_of_an_arp_address_without_a_dhcp_mask() -> None:
    arp = host_identity(OTHER, "192.0.2.200")
    assert groups_of([arp, host_identity(HOST, "192.0.2.10", "frame")]) == [
        ["192.0.2.10"],
        ["192.0.2.200"],
    ]
    assert groups_of([arp, host_identity(HOST, "192.0.3.10", "frame")]) == [["192.0.2.200"]]


@pytest.mark.parametrize("subnet", ["192.0.2.0/25", "192.0.2.5/25"])  # address/len too
@pytest.mark.parametrize(("last", "on_link"), [(126, True), (127, True), (128, False)])
def test_a_dhcp_subnet_replaces_the_slash_24(subnet: str, last: int, on_link: bool) -> None:
    ack = host_identity(OTHER, "192.0.2.5", "dhcp", prefix=subnet)
    frame = host_identity(HOST, f"192.0.2.{last}", "frame")
    expected = [["192.0.2.5"], [f"192.0.2.{last}"]] if on_link else [["192.0.2.5"]]
    assert sorted(groups_of([ack, frame])) == sorted(expected)


def test_without_any_on_link_prefix_frames_bind_link_local_and_slaac_only() -> None:
    link_local = host_identity(HOST, "fe80::1234", "frame")
    slaac = host_identity(HOST, "2001:db8:7::ff:fe00:a", "frame")  # EUI-64 of HOST
    stranger = host_identity(HOST, "2001:db8:7::99", "frame")
    v4 = host_identity(HOST, "10.1.2.3", "frame")
    assert groups_of([link_local, slaac, stranger, v4]) == [["2001:db8:7::ff:fe00:a", "fe80::1234"]]


def test_eui64_is_the_modified_interface_identifier_of_that_very_mac() -> None:
    import ipaddress

    assert eui64_matches(ipaddress.ip_address("2001:db8::ff:fe00:a"), HOST)
    assert not eui64_matches(ipaddress.ip_address("2001:db8::ff:fe00:a"), OTHER)
    assert not eui64_matches(ipaddress.ip_address("2001:db8::200:ff:fe00:a"), HOST)  # U/L bit
    assert not eui64_matches(ipaddress.ip_address("192.0.2.1"), HOST)


def test_a_router_mac_binds_its_own_addresses_not_what_it_forwards() -> None:
    events: list[Event] = [
        host_identity(HOST, "192.0.2.10"),
        host_identity(ROUTER, "192.0.2.1"),
        host_identity(ROUTER, "203.0.113.53", "frame"),  # off the link: ROUTER forwards
        host_identity(ROUTER, "192.0.2.77", "frame"),  # on the link, but ROUTER's frames
        host_identity(HOST, "192.0.2.10", "frame"),
    ]
    rows = grouped(events)
    assert [(r["addresses"], r["router"]) for r in rows] == [
        (["192.0.2.1"], True),
        (["192.0.2.10"], False),
    ]


def test_a_router_advertisement_marks_the_mac_a_router() -> None:
    ra = host_identity(ROUTER, "fe80::1", "ndp", router=True)
    frame = host_identity(ROUTER, "fe80::99", "frame")  # link-local, yet a router's frame
    rows = grouped([ra, frame])
    assert [(r["addresses"], r["router"]) for r in rows] == [(["fe80::1"], True)]


def test_a_router_stays_a_router_when_its_next_message_says_nothing_of_it() -> None:
    ra = host_identity(ROUTER, "fe80::1", "ndp", router=True)
    plain = host_identity(ROUTER, "fe80::1", "ndp")  # a later NA without the router flag
    frame = host_identity(ROUTER, "fe80::99", "frame")
    rows = grouped([ra, plain, frame])
    assert [(r["addresses"], r["router"]) for r in rows] == [(["fe80::1"], True)]


@pytest.mark.parametrize("count", [MAX_MACHINE_ADDRESSES, MAX_MACHINE_ADDRESSES + 1])
def test_a_mac_with_too_many_addresses_is_no_machine(count: int) -> None:
    assert MAX_MACHINE_ADDRESSES == 16  # docs/findings.md
    events = [host_identity(HOST, f"192.0.2.{n}") for n in range(1, count + 1)]
    rows = grouped(events)
    if count <= MAX_MACHINE_ADDRESSES:
        assert [len(r["addresses"]) for r in rows] == [count]
    else:
        assert rows == []  # a proxy-ARP router or a NAT: its addresses stay apart


def test_an_address_seen_from_two_macs_joins_neither() -> None:
    rows = grouped(
        [
            host_identity(HOST, "192.0.2.10"),
            host_identity(HOST, "2001:db8:1::a", "ndp"),
            host_identity(OTHER, "192.0.2.10"),
            host_identity(OTHER, "192.0.2.11"),
        ]
    )
    assert [(r["addresses"], r.get("ambiguous_macs")) for r in rows] == [
        (["192.0.2.10"], [HOST, OTHER]),
        (["192.0.2.11"], None),
        (["2001:db8:1::a"], None),
    ]


def test_a_duid_client_identifier_joins_two_macs_a_mac_based_one_does_not() -> None:
    duid = "ff0000000100010001aabbccdd"
    wired = host_identity(HOST, "192.0.2.10", "dhcp", client_id=duid, hostname="laptop")
    wifi = host_identity(OTHER, "192.0.2.20", "dhcp", client_id=duid)
    rows = grouped([wired, wifi])
    assert [(r["addresses"], r["macs"], r["hostnames"]) for r in rows] == [
        (["192.0.2.10", "192.0.2.20"], [HOST, OTHER], ["laptop"])
    ]
    by_mac = "01" + OTHER.replace(":", "")
    rows = grouped([wired, host_identity(OTHER, "192.0.2.20", "dhcp", client_id=by_mac)])
    assert len(rows) == 2


def test_bindings_beyond_the_cap_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machines_module, "MAX_BINDINGS", 2)
    rows = grouped([host_identity(f"02:00:00:00:00:{n:02x}", f"192.0.2.{n}") for n in (1, 2, 3)])
    assert [r["addresses"] for r in rows] == [["192.0.2.1"], ["192.0.2.2"]]
    assert {r["bindings_dropped"] for r in rows} == {1}
    # Every binding past the cap counts, not just the first.
    rows = grouped([host_identity(f"02:00:00:00:00:{n:02x}", f"192.0.2.{n}") for n in (1, 2, 3, 4)])
    assert {r["bindings_dropped"] for r in rows} == {2}


def test_what_one_binding_shows_over_several_events_adds_up() -> None:
    """The same (MAC, address, source) seen again adds to what was seen before: a DHCP
    exchange names the host in one message and its client identifier in another."""
    duid = "ff0000000100010002"
    rows = grouped(
        [
            host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop"),
            host_identity(HOST, "192.0.2.10", "dhcp", client_id=duid),
            host_identity(OTHER, "192.0.2.20", "dhcp", client_id=duid),
        ]
    )
    assert [(r["addresses"], r["macs"], r["hostnames"]) for r in rows] == [
        (["192.0.2.10", "192.0.2.20"], [HOST, OTHER], ["laptop"])
    ]


def test_a_statement_made_again_is_listed_once() -> None:
    rows = grouped(
        [
            host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop"),
            host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop", client_id="ff01"),
            host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop-2", client_id="ff01"),
        ]
    )
    assert [(r["addresses"], r["hostnames"]) for r in rows] == [
        (["192.0.2.10"], ["laptop", "laptop-2"])
    ]
    # Kept once, too: a binding grows only by what is new.
    detector = fed_detector(
        machines_module.MachineDetector,
        [
            host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop", client_id="ff01"),
            host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop", client_id="ff02"),
            host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop-2", client_id="ff01"),
        ],
    )
    (binding,) = detector.bindings.values()
    assert (binding.hostnames, binding.client_ids) == (("laptop", "laptop-2"), ("ff01", "ff02"))


def test_a_binding_that_says_nothing_more_costs_under_300_bytes() -> None:
    """A large network's frames bind tens of thousands of addresses, each with nothing
    but the binding itself. Three empty sets in a dict cost about 930 bytes a binding in
    this test, empty tuples in a slotted record about 160 (the strings are the events')."""
    events = [
        host_identity(
            "".join(("02:00:00:", f"{n >> 16:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}")),
            "".join(("10.1.", str(n >> 8), ".", str(n & 255))),
            "frame",
        )
        for n in range(5000)
    ]
    detector = machines_module.MachineDetector(Context())

    def feed() -> None:
        for event in events:
            detector.on_event(event)

    held = bytes_kept(feed)
    assert len(detector.bindings) == len(events)
    assert held / len(events) < 300


def test_each_machine_names_the_capture_it_was_seen_in() -> None:
    event = host_identity(HOST, "192.0.2.10")
    rows = grouped([event])
    assert [r["file"] for r in rows] == [event.file] and event.file


def test_the_office_capture_has_eight_client_machines_and_a_router(office: Any) -> None:
    rows = office.sections["machines"]
    clients = [r["addresses"] for r in rows if not r["router"]]
    assert len(clients) == 8
    assert ["198.51.100.22", "2001:db8:1::22"] in clients
    assert [r["addresses"] for r in rows if r["router"]] == [["198.51.100.1", "2001:db8:1::1"]]


@pytest.fixture(scope="module")
def office() -> Any:
    from dotaudit.detect.base import Context
    from dotaudit.pipeline import analyze
    from tests.conftest import ROOT

    return analyze([ROOT / "pcaps" / "09-office.pcap"], Context(), workers=1)


@pytest.mark.parametrize("count", [MAX_ANNOUNCED_PREFIXES, MAX_ANNOUNCED_PREFIXES + 1])
def test_announced_prefixes_past_the_cap_put_nothing_on_the_link(count: int) -> None:
    assert MAX_ANNOUNCED_PREFIXES == 256
    # One router announcing ``count`` /64s (RA prefixes with the on-link flag), each from
    # a link-local address of its own; then a host's frame from inside the last of them.
    announced: list[Event] = [
        host_identity(ROUTER, f"fe80::{n:x}", "ndp", router=True, prefix=f"2001:db8:{n:x}::/64")
        for n in range(1, count + 1)
    ]
    last = f"2001:db8:{count:x}::abcd"
    rows = grouped([*announced, host_identity(HOST, last, "frame")])
    hosts = [r["addresses"] for r in rows if HOST in r["macs"]]
    assert hosts == ([[last]] if count <= MAX_ANNOUNCED_PREFIXES else [])


def test_an_ndp_bound_link_local_address_shows_no_on_link_prefix() -> None:
    # With only link-local addresses known, the capture cannot tell a global IPv6
    # address off the link: its frame source is not taken for a router.
    link_local = host_identity(HOST, "fe80::a", "ndp")
    own_v4 = host_identity(OTHER, "192.0.2.11")
    global_frame = host_identity(OTHER, "2001:db8:9::1", "frame")
    rows = grouped([link_local, own_v4, global_frame])
    assert [(r["addresses"], r["router"]) for r in rows] == [
        (["192.0.2.11"], False),
        (["fe80::a"], False),
    ]
    # A global address bound by NDP shows its /64: now the frame from another /64 is a
    # router's.
    global_ndp = host_identity(HOST, "2001:db8:1::a", "ndp")
    rows = grouped([global_ndp, own_v4, global_frame])
    assert [(r["addresses"], r["router"]) for r in rows] == [
        (["192.0.2.11"], True),
        (["2001:db8:1::a"], False),
    ]


def test_a_client_identifier_that_is_just_the_mac_joins_nothing() -> None:
    # RFC 2132 §9.14: type 1 and the hardware address (in hex, as the dissector writes
    # it) names no more than the MAC. Sent also from another MAC, it joins that one to
    # nothing: only identifiers that are not the sender's MAC join (docs/findings.md).
    own = "01" + HOST.replace(":", "")
    assert own == "0102000000000a"
    first = host_identity(HOST, "192.0.2.10", "dhcp", client_id=own)
    second = host_identity(OTHER, "192.0.2.20", "dhcp", client_id=own)
    assert groups_of([first, second]) == [["192.0.2.10"], ["192.0.2.20"]]
    # The same pair with an identifier that is neither MAC: one machine.
    duid = "ff0000000100010001aabbccdd"
    wired = host_identity(HOST, "192.0.2.10", "dhcp", client_id=duid)
    wifi = host_identity(OTHER, "192.0.2.20", "dhcp", client_id=duid)
    assert groups_of([wired, wifi]) == [["192.0.2.10", "192.0.2.20"]]


# OTHER's own address, of the other IP version than the frame from outside: a fact that
# shows nothing of the version the test is about.
OWN_V4 = host_identity(OTHER, "192.0.2.11", "arp")
OWN_V6 = host_identity(OTHER, "fe80::b", "ndp")


@pytest.mark.parametrize(
    ("shown", "own", "stranger"),
    [
        # A DHCP subnet alone (its acknowledged address inside it: no /24 is inferred).
        (host_identity(HOST, "192.0.2.5", "dhcp", prefix="192.0.2.0/25"), OWN_V6, "203.0.113.9"),
        # An RA prefix alone (the router's link-local address shows no /64).
        (
            host_identity(ROUTER, "fe80::1", "ndp", router=True, prefix="2001:db8:1::/64"),
            OWN_V4,
            "2001:db8:9::1",
        ),
        # The /64 of an NDP-bound address alone.
        (host_identity(HOST, "2001:db8:1::a", "ndp"), OWN_V4, "2001:db8:9::1"),
    ],
    ids=["dhcp-subnet", "ra-prefix", "ndp-address"],
)
def test_any_on_link_prefix_of_a_version_shows_a_frame_from_outside_it_is_forwarded(
    shown: Event, own: Event, stranger: str
) -> None:
    outside = host_identity(OTHER, stranger, "frame")
    rows = grouped([shown, own, outside])
    assert [r["router"] for r in rows if OTHER in r["macs"]] == [True]
    assert stranger not in {a for r in rows for a in r["addresses"]}
    # Without the frame from outside, OTHER is no router.
    rows = grouped([shown, own])
    assert [r["router"] for r in rows if OTHER in r["macs"]] == [False]


@pytest.mark.parametrize("mac", ["not-a-mac", "02:00:00:00:0a", "02:00:00:00:00:00:0a"])
def test_eui64_of_no_ethernet_address_matches_nothing(mac: str) -> None:
    import ipaddress

    assert not eui64_matches(ipaddress.ip_address("2001:db8::ff:fe00:a"), mac)
    assert not eui64_matches(ipaddress.ip_address("2001:db8::ff:fe00:0"), mac)


def test_a_binding_without_an_address_names_the_machine_and_skips_nothing() -> None:
    """A DHCP message that names the host before it has an address binds no address;
    its host name still names the MAC, and the bindings after it still count."""
    rows = grouped(
        [
            host_identity(HOST, None, "dhcp", hostname="laptop"),
            host_identity(HOST, "192.0.2.10"),
        ]
    )
    assert [(r["addresses"], r["macs"], r["hostnames"]) for r in rows] == [
        (["192.0.2.10"], [HOST], ["laptop"])
    ]


def test_an_unparseable_address_is_skipped_and_the_bindings_after_it_count() -> None:
    rows = grouped([host_identity(OTHER, "not-an-address"), host_identity(HOST, "192.0.2.10")])
    assert [(r["addresses"], r["macs"]) for r in rows] == [(["192.0.2.10"], [HOST])]


def test_a_frame_source_without_an_address_marks_no_router() -> None:
    ndp = host_identity(HOST, "2001:db8:1::a", "ndp")
    rows = grouped([host_identity(HOST, None, "frame"), ndp])
    assert [(r["addresses"], r["router"]) for r in rows] == [(["2001:db8:1::a"], False)]


def test_only_a_frame_source_off_the_link_is_a_router_not_a_dhcp_statement() -> None:
    """Rule 3 is about frames: a host's own DHCPv6 address outside the NDP-shown /64
    (DHCPv6 puts no prefix on the link) does not make its MAC a router."""
    rows = grouped(
        [
            host_identity(HOST, "2001:db8:2::5", "dhcp"),
            host_identity(OTHER, "2001:db8:1::7", "ndp"),
        ]
    )
    assert [(r["addresses"], r["macs"], r["router"]) for r in rows] == [
        (["2001:db8:1::7"], [OTHER], False),
        (["2001:db8:2::5"], [HOST], False),
    ]


def test_an_address_from_two_macs_one_machine_by_client_id_is_not_ambiguous() -> None:
    """A laptop whose lease moved from its wired to its wireless interface: the two MACs
    share a DUID, so the address is bound to one machine, not to two."""
    duid = "ff0000000100010001aabbccdd"
    rows = grouped(
        [
            host_identity(HOST, "192.0.2.10", "dhcp", client_id=duid),
            host_identity(OTHER, "192.0.2.10", "dhcp", client_id=duid),
        ]
    )
    assert [(r["addresses"], r["macs"], r.get("ambiguous_macs")) for r in rows] == [
        (["192.0.2.10"], [HOST, OTHER], None)
    ]


def test_a_machine_row_holds_exactly_its_capture_addresses_names_and_evidence() -> None:
    lease = host_identity(HOST, "192.0.2.10", "dhcp", hostname="laptop")
    arp = host_identity(HOST, "192.0.2.10")
    rows = grouped([lease, arp, host_identity(HOST, "fe80::a", "ndp")])
    assert rows == [
        {
            "file": lease.file,
            "addresses": ["192.0.2.10", "fe80::a"],
            "macs": [HOST],
            "hostnames": ["laptop"],
            "router": False,
            "evidence": [
                {"address": "192.0.2.10", "mac": HOST, "via": ["arp", "dhcp"]},
                {"address": "fe80::a", "mac": HOST, "via": ["ndp"]},
            ],
            "evidence_count": 2,
        }
    ]


def test_ambiguous_addresses_of_both_versions_are_rows_of_their_own_in_address_order() -> None:
    """An IPv4 and an IPv6 address each claimed by two MACs: neither MAC gets them, and
    each is a row that names the capture and the claimants but no machine."""
    events: list[Event] = [
        host_identity(HOST, "2001:db8:1::a", "ndp"),
        host_identity(OTHER, "2001:db8:1::a", "ndp"),
        host_identity(OTHER, "192.0.2.10"),
        host_identity(HOST, "192.0.2.10"),
    ]
    rows = grouped(events)
    assert rows == [
        {
            "file": events[0].file,
            "addresses": [address],
            "macs": [],
            "hostnames": [],
            "router": False,
            "evidence": [],
            "evidence_count": 0,
            "ambiguous_macs": [HOST, OTHER],
        }
        for address in ("192.0.2.10", "2001:db8:1::a")
    ]
