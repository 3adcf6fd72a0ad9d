"""TARGET parsing: every accepted form, and hostile or malformed text refused."""

from __future__ import annotations

import pytest

from dotaudit.probe.target import TargetError, parse_target


@pytest.mark.parametrize(
    ("text", "address", "port", "name", "hostname"),
    [
        ("9.9.9.9", "9.9.9.9", 853, None, None),
        ("9.9.9.9:8853", "9.9.9.9", 8853, None, None),
        ("::1", "::1", 853, None, None),
        ("2001:db8::53", "2001:db8::53", 853, None, None),
        ("[2001:db8::53]:853", "2001:db8::53", 853, None, None),
        ("[::1]", "::1", 853, None, None),
        ("dns.quad9.net@9.9.9.9", "9.9.9.9", 853, "dns.quad9.net", None),
        ("DNS.Test.@127.53.0.1:8853", "127.53.0.1", 8853, "dns.test", None),
        ("dns.test@[::1]:853", "::1", 853, "dns.test", None),
        ("dns.quad9.net", None, 853, None, "dns.quad9.net"),
        ("dns.quad9.net:8853", None, 8853, None, "dns.quad9.net"),
    ],
)
def test_accepted_forms(
    text: str, address: str | None, port: int, name: str | None, hostname: str | None
) -> None:
    target = parse_target(text)
    assert (target.address, target.port, target.name, target.hostname) == (
        address,
        port,
        name,
        hostname,
    )
    assert target.target == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "9.9.9.9:0",
        "9.9.9.9:65536",
        "9.9.9.9:x",
        "2001:db8::53:853x",
        "[2001:db8::53",
        "[9.9.9.9]:853",
        "[::1]853",
        "dns.test@example.org",  # NAME@ needs an IP
        "bad_@label-@9.9.9.9",
        "-bad.example",
        "a" * 64 + ".example",
        "1.2.3",  # a truncated address is not a host name
        "host name",
        "dns\x1b[31m.test",
        "x" * 600,
    ],
)
def test_refused_forms(text: str) -> None:
    with pytest.raises(TargetError):
        parse_target(text)
