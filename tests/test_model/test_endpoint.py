"""The one address:port spelling of reports (dotaudit/model/endpoint.py).

Oracle: RFC 3986 §3.2.2 (an IPv6 literal goes in brackets before ``:port``)."""

from __future__ import annotations

import pytest

from dotaudit.model.endpoint import host_port


@pytest.mark.parametrize(
    ("address", "port", "spelled"),
    [
        ("192.0.2.1", 853, "192.0.2.1:853"),
        ("::1", 853, "[::1]:853"),
        ("2001:db8::53", 8853, "[2001:db8::53]:8853"),
        ("[::1]", 853, "[::1]:853"),  # already bracketed: not twice
        ("dns.example", 853, "dns.example:853"),
        ("::1", None, "::1"),
    ],
)
def test_host_port(address: str, port: int | None, spelled: str) -> None:
    assert host_port(address, port) == spelled
