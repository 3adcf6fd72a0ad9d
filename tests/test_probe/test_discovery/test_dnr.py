"""Encrypted DNS options of DHCP and Router Advertisements (RFC 9463), from the lease
state a system keeps.

Oracles: the option layouts of RFC 9463 (§4.1 Figure 1 for DHCPv6, §5.1 Figures 4 and 5
for DHCPv4, §6.1 Figure 7 for RA), built field by field here and by tests/lab/dhcp.py; and
the lease files ISC dhclient itself writes after a real exchange with dnsmasq (lab).
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest

from dotaudit.probe.discovery.dnr import (
    MAX_FILES,
    MAX_INSTANCES,
    MAX_LEASE_FILE,
    DnrFormatError,
    DnrSource,
    LeasePaths,
    parse_ra_option,
    parse_v4_option,
    parse_v6_option,
    read_dhclient,
    read_dnr,
    read_lease_text,
    read_networkd,
    read_networkmanager,
    read_nmcli,
)
from dotaudit.probe.discovery.resolv_conf import SystemResolvers
from dotaudit.probe.discovery.run import Discovery, summary_lines
from tests.lab import dhcp

ADN = b"\x03dns\x04test\x00"
ALPN_DOT = struct.pack("!HH", 1, 4) + b"\x03dot"


def ra_option(
    priority: int, lifetime: int, adn: bytes, addresses: list[str], params: bytes
) -> bytes:
    addrs = b"".join(ipaddress.IPv6Address(a).packed for a in addresses)
    body = struct.pack("!HIH", priority, lifetime, len(adn)) + adn
    body += struct.pack("!H", len(addrs)) + addrs + struct.pack("!H", len(params)) + params
    size = 2 + len(body)
    pad = (-size) % 8
    return bytes([144, (size + pad) // 8]) + body + b"\0" * pad


def test_v4_instances_one_after_another() -> None:
    data = dhcp.v4_option(1, "dns.test", ["192.0.2.53", "192.0.2.54"], ("dot", "doq"))
    data += dhcp.v4_option(2, "doh.test", ["192.0.2.80"], ("h2",))
    first, second = parse_v4_option(data)
    assert (first.priority, first.adn, first.addresses) == (
        1,
        "dns.test.",
        ["192.0.2.53", "192.0.2.54"],
    )
    assert first.params["alpn"] == ["dot", "doq"] and first.protocols() == ["dot", "doq"]
    assert first.port("dot") == 853
    assert (second.adn, second.protocols(), second.port("doh")) == ("doh.test.", ["doh"], 443)


def test_v4_adn_only_mode() -> None:
    body = struct.pack("!H", 5) + bytes([len(ADN)]) + ADN
    [instance] = parse_v4_option(struct.pack("!H", len(body)) + body)
    assert (instance.adn_only, instance.adn, instance.addresses) == (True, "dns.test.", [])


def test_v6_option_with_port_and_dohpath() -> None:
    params = ALPN_DOT + struct.pack("!HHH", 3, 2, 8853)
    data = (
        struct.pack("!HH", 3, len(ADN))
        + ADN
        + struct.pack("!H", 16)
        + ipaddress.IPv6Address("2001:db8::53").packed
        + params
    )
    instance = parse_v6_option(data)
    assert (instance.priority, instance.addresses, instance.port("dot")) == (
        3,
        ["2001:db8::53"],
        8853,
    )


def test_v6_adn_only_when_nothing_follows_the_name() -> None:
    instance = parse_v6_option(struct.pack("!HH", 1, len(ADN)) + ADN)
    assert instance.adn_only and instance.params == {}


def test_ra_option_with_lifetime_and_padding() -> None:
    option = ra_option(1, 1800, ADN, ["2001:db8::53"], ALPN_DOT)
    assert len(option) % 8 == 0
    instance = parse_ra_option(option)
    assert (instance.addresses, instance.params["lifetime_s"], instance.params["alpn"]) == (
        ["2001:db8::53"],
        1800,
        ["dot"],
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (struct.pack("!H", 40) + b"\x00\x01", "runs past the option"),
        (struct.pack("!HHB", 5, 1, 3) + b"\x03dn", "runs past"),
        (b"\x00", "cut short"),
    ],
)
def test_v4_layout_errors(data: bytes, why: str) -> None:
    with pytest.raises(DnrFormatError, match=why):
        parse_v4_option(data)


def test_v4_addresses_must_be_whole() -> None:
    body = struct.pack("!H", 1) + bytes([len(ADN)]) + ADN + bytes([5]) + b"\xc0\x00\x02\x35\x01"
    with pytest.raises(DnrFormatError, match="multiple of 4"):
        parse_v4_option(struct.pack("!H", len(body)) + body)


def test_a_compressed_or_root_adn_is_refused() -> None:
    compressed = b"\x03dns\xc0\x00"
    body = struct.pack("!H", 1) + bytes([len(compressed)]) + compressed
    with pytest.raises(DnrFormatError):
        parse_v4_option(struct.pack("!H", len(body)) + body)
    with pytest.raises(DnrFormatError, match="root"):
        parse_v6_option(struct.pack("!HH", 1, 1) + b"\x00")


def test_bad_service_parameters_are_a_format_error() -> None:
    params = struct.pack("!HH", 3, 3) + b"\x00\x00\x00"  # port with three octets
    data = struct.pack("!HH", 1, len(ADN)) + ADN + struct.pack("!H", 0) + params
    with pytest.raises(DnrFormatError, match="service parameters"):
        parse_v6_option(data)


def test_ra_length_must_match_its_units() -> None:
    option = bytearray(ra_option(1, 60, ADN, [], ALPN_DOT))
    option[1] += 1
    with pytest.raises(DnrFormatError, match="units of 8"):
        parse_ra_option(bytes(option))


def test_dhclient_hex_and_quoted_values() -> None:
    data = dhcp.v4_option(1, "dns.test", ["192.0.2.53"], ("dot",))
    hexed = ":".join(f"{b:x}" for b in data)
    text = f'lease {{\n  interface "eth0";\n  option unknown-162 {hexed};\n}}\n'
    found = read_dhclient(text, "f")
    assert found.status == "found" and found.instances[0].addresses == ["192.0.2.53"]
    quoted = "".join(
        chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\{b:03o}" for b in data
    )
    text = f'lease {{\n  option v4-dnr "{quoted}";\n}}\n'
    assert read_dhclient(text, "f").instances[0].adn == "dns.test."


def test_dhclient_reads_the_newest_lease_only() -> None:
    old = dhcp.v4_option(1, "old.test", ["192.0.2.1"], ("dot",))
    text = (
        f"lease {{\n  option unknown-162 {':'.join(f'{b:x}' for b in old)};\n}}\n"
        "lease {\n  option subnet-mask 255.255.255.0;\n}\n"
    )
    found = read_dhclient(text, "f")
    assert found.status == "none" and "2 lease(s) read" in found.detail


def test_dhclient_malformed_option_is_reported() -> None:
    found = read_dhclient("lease {\n  option unknown-162 0:5:0:1;\n}\n", "f")
    assert found.status == "malformed" and "option 162" in found.detail


def test_networkd_state_and_detection_by_content() -> None:
    data = dhcp.v4_option(1, "dns.test", ["192.0.2.53"], ("dot",))
    found = read_lease_text(f"ADDRESS=192.0.2.10\nOPTION_162={data.hex()}\n", "n")
    assert found.kind == "systemd-networkd lease" and found.instances[0].adn == "dns.test."
    none = read_networkd("ADDRESS=192.0.2.10\nDNS=192.0.2.1\n", "n")
    assert none.status == "none" and "224-254" in none.detail
    assert read_lease_text("hello\n", "x").status == "none"


def test_nothing_readable_is_said_with_every_place_looked(tmp_path: Path) -> None:
    paths = LeasePaths(
        dhclient=(str(tmp_path / "dh*.leases"),),
        networkmanager=(),
        networkd=(str(tmp_path / "leases" / "*"),),
        nmcli=None,
    )
    found = read_dnr(paths)
    rows = [(s.kind, s.status) for s in found]
    assert ("dhclient lease", "not available") in rows
    assert ("systemd-networkd lease", "not available") in rows
    assert ("Router Advertisement (option 144)", "not available") in rows
    assert all(s.instances == [] for s in found)
    assert found[0].where == str(tmp_path / "dh*.leases") and found[0].detail == "no such file"


def test_an_unreadable_lease_file_is_not_available(tmp_path: Path) -> None:
    found = read_dnr(LeasePaths(given=(str(tmp_path),)))
    assert [(s.status, s.detail.startswith("unreadable")) for s in found] == [
        ("not available", True)
    ]


def hexed(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def test_dhclient_quoted_value_may_hold_a_semicolon() -> None:
    """dhclient quotes an all-printable value, ';' included: the option ends at the
    closing quote, not at the first ';'."""
    data = dhcp.v4_option(0x3B3B, "dns.test", ["59.59.59.59"], ("dot",))
    assert b";" in data
    quoted = "".join(
        chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\{b:03o}" for b in data
    )
    found = read_dhclient(f'lease {{\n  option v4-dnr "{quoted}";\n}}\n', "f")
    assert found.status == "found", found.detail
    assert [(i.priority, i.addresses) for i in found.instances] == [(0x3B3B, ["59.59.59.59"])]


def test_nmcli_options_of_both_families() -> None:
    v4 = dhcp.v4_option(1, "dns.test", ["192.0.2.53"], ("dot",))
    v6 = dhcp.v6_option(2, "dns.test", ["2001:db8::53"], ("doq",))
    text = (
        "DHCP4.OPTION[1]:domain_name_servers = 192.0.2.1\n"
        f"DHCP4.OPTION[2]:unknown_162 = {hexed(v4)}\n"
        f"DHCP6.OPTION[1]:unknown_144 = {v6.hex()}\n"
    )
    found = read_nmcli(text, "nmcli")
    assert found.status == "found" and found.detail == ""
    assert [(i.priority, i.addresses, i.protocols()) for i in found.instances] == [
        (1, ["192.0.2.53"], ["dot"]),
        (2, ["2001:db8::53"], ["doq"]),
    ]


def test_nmcli_without_dnr_and_with_a_broken_one() -> None:
    none = read_nmcli("DHCP4.OPTION[1]:domain_name_servers = 192.0.2.1\n", "nmcli")
    assert none.status == "none" and none.instances == []
    broken = read_nmcli("DHCP4.OPTION[2]:unknown_162 = 00:05:00:01\n", "nmcli")
    assert broken.status == "malformed" and broken.detail.startswith("DHCP4.OPTION[2]")


def test_nmcli_is_run_and_its_failures_are_not_available(tmp_path: Path) -> None:
    """The command really runs (printf stands in for nmcli's output); a missing or
    failing one is "not available", never "none"."""
    v4 = dhcp.v4_option(1, "dns.test", ["192.0.2.53"], ("dot",))
    line = f"DHCP4.OPTION[2]:unknown_162 = {hexed(v4)}\n"
    given = LeasePaths(dhclient=(), networkmanager=(), networkd=(), nmcli=("printf", line))
    [nmcli] = [s for s in read_dnr(given) if s.kind == "NetworkManager (nmcli)"]
    assert nmcli.status == "found" and nmcli.instances[0].adn == "dns.test."
    for argv, detail in (
        ((str(tmp_path / "nmcli"),), "is not installed"),
        (("false",), "exit 1"),
        (None, "not asked"),
    ):
        paths = LeasePaths(dhclient=(), networkmanager=(), networkd=(), nmcli=argv)
        [row] = [s for s in read_dnr(paths) if s.kind == "NetworkManager (nmcli)"]
        assert row.status == "not available" and detail in row.detail, (argv, row)


def test_networkmanager_internal_lease() -> None:
    plain = read_networkmanager("ADDRESS=192.0.2.10\nDNS=192.0.2.1\n", "nm")
    assert plain.status == "none" and "keeps no DHCP options" in plain.detail
    stated = read_networkmanager("ADDRESS=192.0.2.10\nDNR=dns.test 192.0.2.53\n", "nm")
    assert stated.status == "found" and stated.instances == []
    assert stated.detail == "DNR=dns.test 192.0.2.53 (as NetworkManager states it)"


def test_networkd_broken_option_and_its_own_summary() -> None:
    assert read_networkd("OPTION_162=zz\n", "n").status == "malformed"
    assert read_networkd("OPTION_162=0005000100\n", "n").status == "malformed"
    stated = read_networkd("ADDRESS=192.0.2.10\nDNR=dns.test@192.0.2.53\n", "n")
    assert (stated.status, stated.instances) == ("found", [])
    assert stated.detail.startswith("DNR=dns.test@192.0.2.53")


def test_a_stated_entry_is_shown_as_stated_not_as_zero_found() -> None:
    found = Discovery(
        SystemResolvers(),
        dnr=[DnrSource("systemd-networkd lease", "n", "found", "DNR=x (networkd's own summary)")],
    )
    assert summary_lines(found) == ["DNR systemd-networkd lease n: DNR=x (networkd's own summary)"]


@pytest.mark.parametrize("count", [MAX_INSTANCES, MAX_INSTANCES + 1, MAX_INSTANCES + 5])
def test_the_instance_cap_is_said_when_it_bites(count: int) -> None:
    data = b"".join(dhcp.v4_option(i, "dns.test", ["192.0.2.53"], ("dot",)) for i in range(count))
    for found in (
        read_dhclient(f"lease {{\n  option unknown-162 {hexed(data)};\n}}\n", "f"),
        read_networkd(f"OPTION_162={data.hex()}\n", "n"),
        read_nmcli(f"DHCP4.OPTION[1]:unknown_162 = {hexed(data)}\n", "nmcli"),
    ):
        assert found.status == "found"
        assert len(found.instances) == MAX_INSTANCES
        assert ("only the first" in found.detail) is (count > MAX_INSTANCES), found.detail


@pytest.mark.parametrize("extra", [0, 1])
def test_the_file_cap_is_said_when_it_bites(tmp_path: Path, extra: int) -> None:
    for i in range(MAX_FILES + extra):
        (tmp_path / f"dhclient{i:03}.leases").write_text("lease {\n}\n")
    paths = LeasePaths(
        dhclient=(str(tmp_path / "dhclient*.leases"),), networkmanager=(), networkd=(), nmcli=None
    )
    rows = [s for s in read_dnr(paths) if s.kind == "dhclient lease"]
    read = [s for s in rows if s.status == "none"]
    assert len(read) == MAX_FILES
    capped = [s.detail for s in rows if s.status == "not available"]
    assert capped == (["1 more file(s) not read: only the first 64 are"] if extra else [])


@pytest.mark.parametrize(
    ("size", "status"), [(MAX_LEASE_FILE, "none"), (MAX_LEASE_FILE + 1, "not available")]
)
def test_a_lease_file_larger_than_the_cap_is_not_read(
    tmp_path: Path, size: int, status: str
) -> None:
    path = tmp_path / "big.lease"
    head = b"ADDRESS=192.0.2.10\n"
    path.write_bytes(head + b"#" * (size - len(head)))
    [found] = read_dnr(LeasePaths(given=(str(path),)))
    assert found.status == status
    if status == "not available":
        assert found.detail == "unreadable: larger than 4 MiB"


def test_every_kind_of_file_is_read_by_its_own_reader(tmp_path: Path) -> None:
    v4 = dhcp.v4_option(1, "dns.test", ["192.0.2.53"], ("dot",))
    (tmp_path / "dhclient.eth0.leases").write_text(
        f"lease {{\n  option unknown-162 {hexed(v4)};\n}}\n"
    )
    (tmp_path / "internal-x.lease").write_text("ADDRESS=192.0.2.10\n")
    (tmp_path / "networkd").mkdir()
    (tmp_path / "networkd" / "2").write_text(f"OPTION_162={v4.hex()}\n")
    paths = LeasePaths(
        dhclient=(str(tmp_path / "dhclient*.lease*"),),
        networkmanager=(str(tmp_path / "internal-*.lease"),),
        networkd=(str(tmp_path / "networkd" / "*"),),
        nmcli=None,
    )
    rows = [(s.kind, s.status, len(s.instances)) for s in read_dnr(paths)]
    assert rows == [
        ("dhclient lease", "found", 1),
        ("NetworkManager lease", "none", 0),
        ("systemd-networkd lease", "found", 1),
        ("NetworkManager (nmcli)", "not available", 0),
        ("Router Advertisement (option 144)", "not available", 0),
    ]


@pytest.mark.lab
def test_real_dhclient_leases_carry_both_options(dhcp_leases: dhcp.DhcpLeases) -> None:
    """dnsmasq sent option 162 and option 144; dhclient wrote them as unknown options."""
    v4_text = dhcp_leases.v4.read_text()
    v6_text = dhcp_leases.v6.read_text()
    assert "option unknown-162 " in v4_text and "option dhcp6.unknown-144 " in v6_text
    found = read_dnr(LeasePaths(given=(str(dhcp_leases.v4), str(dhcp_leases.v6))))
    v4, v6 = found
    assert (v4.status, v6.status) == ("found", "found")
    assert [(i.priority, i.adn, i.addresses, i.protocols()) for i in v4.instances] == [
        (1, "dns.test.", [dhcp.DNR_V4_ADDRESS], ["dot"])
    ]
    assert [(i.priority, i.adn, i.addresses, i.protocols()) for i in v6.instances] == [
        (2, "dns.test.", [dhcp.DNR_V6_ADDRESS], ["doq"])
    ]
