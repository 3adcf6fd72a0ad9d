"""Discovery in order (dotaudit/probe/discovery/run.py): which addresses and names the
survey takes from the known list and from the designations.

Oracle: dotaudit/data/resolvers.json (its providers' first addresses and names), and the
rules the module documents (first IPv4; a DoH host used at that address only when it is
also a DoT name; suffix patterns are no host names).
"""

from __future__ import annotations

from dotaudit.model.resolvers import known_resolvers, parse_directory
from dotaudit.probe.discovery.ddr import DdrResult, Endpoint
from dotaudit.probe.discovery.dnr import DnrInstance, DnrSource
from dotaudit.probe.discovery.run import designated_targets, known_targets


def test_known_targets_from_the_packaged_list() -> None:
    targets = {t.label: t for t in known_targets(known_resolvers(), "built-in")}
    quad9 = targets["Quad9"]
    assert (quad9.address, quad9.dot_name, quad9.doh_host, quad9.doq_name) == (
        "9.9.9.9",
        "dns.quad9.net",
        "dns.quad9.net",
        None,
    )
    adguard = targets["AdGuard DNS"]
    assert adguard.doq_name == "dns.adguard-dns.com"
    # OpenDNS's DoH host is not one of its DoT names: its addresses are not listed
    assert targets["OpenDNS (Cisco Umbrella)"].doh_host is None
    assert {t.group for t in targets.values()} == {"public"}
    assert all(":" not in t.address for t in targets.values())


def test_suffix_patterns_and_ipv6_only_entries() -> None:
    directory = parse_directory(
        {
            "resolvers": [
                {
                    "provider": "v6",
                    "addresses": ["2001:db8::53"],
                    "dot_names": [".x.test", "dns.x.test"],
                    "doh_hosts": [".x.test"],
                },
                {"provider": "none", "addresses": []},
            ]
        }
    )
    [target] = known_targets(directory, "f")
    assert (target.address, target.dot_name, target.doh_host) == (
        "2001:db8::53",
        "dns.x.test",
        None,
    )


def test_designations_and_dnr_merge_per_address() -> None:
    ddr = DdrResult("192.0.2.1")
    dot = Endpoint(
        "192.0.2.1",
        1,
        "dns.test.",
        "dot",
        "dot",
        853,
        "r1",
        address="192.0.2.53",
        status="verified",
    )
    doh = Endpoint(
        "192.0.2.1",
        2,
        "dns.test.",
        "doh",
        "h2",
        8443,
        "r2",
        dohpath="/q{?dns}",
        address="192.0.2.53",
        status="not verified",
    )
    nowhere = Endpoint("192.0.2.1", 3, "x.test.", "dot", "dot", 853, "r3")
    ddr.endpoints = [dot, doh, nowhere]
    dnr = DnrSource(
        "dhclient lease",
        "/l",
        "found",
        "",
        [DnrInstance(1, "dnr.test.", ["192.0.2.53", "192.0.2.99"], {"alpn": ["doq"]})],
    )
    targets = {t.address: t for t in designated_targets([ddr], [dnr], {"192.0.2.1"})}
    merged = targets["192.0.2.53"]
    assert (merged.dot_name, merged.doh_host, merged.doh_port, merged.doh_path) == (
        "dns.test",
        "dns.test",
        8443,
        "/q",
    )
    assert merged.doq_name == "dnr.test" and merged.group == "designated"
    assert merged.source == (
        "DDR: designated by 192.0.2.1 (verified); DDR: designated by "
        "192.0.2.1 (not verified); DNR: dhclient lease /l"
    )
    assert set(targets) == {"192.0.2.53", "192.0.2.99"}  # the endpoint without an address: none
