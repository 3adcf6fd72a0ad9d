"""System resolvers from resolv.conf(5) and behind the systemd-resolved stub.

Oracles: resolv.conf(5) (``nameserver`` lines, ``#``/``;`` comments, IPv6 zone indexes),
resolved.conf(5) (the stub on 127.0.0.53, the proxy on 127.0.0.54, and the upstreams in
/run/systemd/resolve/resolv.conf), and the layout ``resolvectl status`` prints (a "DNS
Servers:" label with continuation lines, ``ADDR#NAME`` for servers with a TLS name).
"""

from __future__ import annotations

from pathlib import Path

from dotaudit.probe.discovery.resolv_conf import (
    SystemPaths,
    parse_nameservers,
    parse_resolvectl,
    read_system_resolvers,
)

RESOLVECTL = """\
Global
       Protocols: +LLMNR +mDNS -DNSOverTLS DNSSEC=no/unsupported
resolv.conf mode: stub
Current DNS Server: 192.0.2.1
       DNS Servers: 192.0.2.1 2001:db8::1#dns.example
                    abcd::53
Fallback DNS Servers: 1.1.1.1#cloudflare-dns.com 9.9.9.9

Link 2 (eth0)
    Current Scopes: DNS
Current DNS Server: 192.0.2.7
       DNS Servers: 192.0.2.7
        DNS Domain: lan
"""


def test_nameserver_lines_in_order_with_their_line_numbers() -> None:
    text = (
        "# comment\nsearch lab.test\nnameserver 192.0.2.1\n; nameserver 192.0.2.9\n"
        "nameserver fe80::1%eth0\nnameserver 192.0.2.1\nnameserver 2001:DB8::53\n"
    )
    found, skipped = parse_nameservers(text, "rc", "system resolver")
    assert [(r.address, r.source) for r in found] == [
        ("192.0.2.1", "rc:3"),
        ("fe80::1%eth0", "rc:5"),
        ("2001:db8::53", "rc:7"),
    ]
    assert skipped == []


def test_lines_that_name_no_address_are_reported_not_used() -> None:
    found, skipped = parse_nameservers("nameserver\nnameserver dns.example\n", "rc", "x")
    assert found == []
    assert skipped == [
        "rc:1: a nameserver line without an address",
        "rc:2: 'dns.example' is not an IP address",
    ]


def test_resolvectl_lists_only_dns_servers_with_continuations() -> None:
    found = parse_resolvectl(RESOLVECTL, "resolvectl status")
    # The fallback servers are used only when nothing else is configured: not listed.
    assert [r.address for r in found] == ["192.0.2.1", "2001:db8::1", "abcd::53", "192.0.2.7"]
    assert {r.role for r in found} == {"upstream of the systemd-resolved stub"}


def test_a_plain_resolv_conf_is_taken_as_it_is(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 198.51.100.1\n")
    found = read_system_resolvers(SystemPaths(str(conf), str(tmp_path / "none"), None))
    assert [(r.address, r.role, r.source) for r in found.resolvers] == [
        ("198.51.100.1", "system resolver", f"{conf}:1")
    ]
    assert found.problems == []
    assert [r.address for r in found.queryable()] == ["198.51.100.1"]


def test_the_stub_is_followed_to_resolveds_upstream_file(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    upstreams = tmp_path / "upstream.conf"
    upstreams.write_text("nameserver 192.0.2.1\nnameserver 127.0.0.53\nnameserver 192.0.2.2\n")
    found = read_system_resolvers(SystemPaths(str(conf), str(upstreams), None))
    assert [(r.address, r.role) for r in found.resolvers] == [
        ("127.0.0.53", "systemd-resolved stub"),
        ("192.0.2.1", "upstream of the systemd-resolved stub"),
        ("192.0.2.2", "upstream of the systemd-resolved stub"),
    ]
    assert found.resolvers[1].source == f"{upstreams}:1"
    # The stub would answer resolver.arpa itself (RFC 9462 §6.1): its upstreams are asked.
    assert [r.address for r in found.queryable()] == ["192.0.2.1", "192.0.2.2"]


def test_the_stub_is_followed_through_resolvectl_when_the_file_is_missing(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.54\n")
    printed = tmp_path / "status.txt"
    printed.write_text(RESOLVECTL)
    command = ("cat", str(printed))  # the real subprocess path, with a known output
    found = read_system_resolvers(SystemPaths(str(conf), str(tmp_path / "gone"), command))
    assert [r.address for r in found.queryable()] == [
        "192.0.2.1",
        "2001:db8::1",
        "abcd::53",
        "192.0.2.7",
    ]
    assert found.resolvers[1].source == f"cat {printed}"


def test_a_stub_whose_upstreams_cannot_be_read_says_where_it_looked(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\n")
    command = ("/nonexistent/resolvectl", "status")
    found = read_system_resolvers(SystemPaths(str(conf), str(tmp_path / "gone"), command))
    [stub] = found.resolvers
    assert stub.role == "systemd-resolved stub"
    assert str(tmp_path / "gone") in stub.note and "/nonexistent/resolvectl" in stub.note
    assert [r.address for r in found.queryable()] == ["127.0.0.53"]  # nothing better known


def test_an_unreadable_resolv_conf_is_a_problem_not_an_empty_answer(tmp_path: Path) -> None:
    found = read_system_resolvers(SystemPaths(str(tmp_path / "missing"), "", None))
    assert found.resolvers == []
    assert len(found.problems) == 1 and "No such file" in found.problems[0]
    empty = tmp_path / "empty"
    empty.write_text("search lab.test\n")
    found = read_system_resolvers(SystemPaths(str(empty), "", None))
    assert found.problems == [f"{empty} names no resolver (no nameserver line)"]


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    found = read_system_resolvers(SystemPaths(str(big), "", None))
    assert found.resolvers == [] and "larger than" in found.problems[0]


def test_a_given_file_naming_the_stub_is_read_as_it_is(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\n")
    found = read_system_resolvers(SystemPaths(str(conf), "", None))
    [stub] = found.resolvers
    assert stub.note == (
        "upstreams not known: not followed: a given resolv.conf is read as it "
        "is, not this host's state"
    )
