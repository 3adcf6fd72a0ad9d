"""The Transport itself: ``DOTAUDIT_ALLOWED_NETWORKS`` confines every method to the
networks it names, before any socket is made.

Oracle: the socket counters (:class:`TransportStats`) stay at zero for a refused call,
and a permitted call reaches the network (a closed loopback port answers at once).
"""

from __future__ import annotations

import dns.message
import pytest

from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import (
    ALLOWED_NETWORKS_VARIABLE,
    Deadline,
    ProbeError,
    Transport,
    allowed_networks,
)
from tests.test_probe.test_runner import closed_port


def test_prefixes_parse_and_a_bad_one_allows_nothing() -> None:
    assert allowed_networks(None) is None
    assert [str(n) for n in allowed_networks("127.0.0.0/8, ::1, 192.0.2.7") or ()] == [
        "127.0.0.0/8",
        "::1/128",
        "192.0.2.7/32",
    ]
    assert allowed_networks("not a prefix") == ()


@pytest.fixture
def confined(monkeypatch: pytest.MonkeyPatch) -> Transport:
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, "127.0.0.0/8")
    return Transport()


def test_every_way_out_is_refused_outside_the_networks(confined: Transport) -> None:
    deadline = Deadline(1.0)
    query = dns.message.make_query("example.com", "A")
    context = client_context(verify=False)
    calls = [
        lambda: confined.tcp_connect("192.0.2.1", 853, deadline),
        lambda: confined.open_tcp("192.0.2.1", 853, deadline),
        lambda: confined.tcp_exchange("192.0.2.1", 853, [b"x"], deadline, 0.1),
        lambda: confined.udp_dns("::1", 53, query, deadline),
        lambda: confined.tcp_dns("192.0.2.1", 53, query, deadline),
        lambda: confined.udp_dns_wire("192.0.2.1", 53, query.to_wire(), deadline),
        lambda: confined.tcp_dns_wire("192.0.2.1", 53, query.to_wire(), deadline),
        lambda: confined.udp_quic_version_probe("192.0.2.1", 853, deadline),
        lambda: confined.tls_connect("192.0.2.1", 853, context, None, deadline),
        lambda: confined.doq_exchange("192.0.2.1", 853, b"", deadline, None, False),
        lambda: confined.doh_exchange("192.0.2.1", 443, b"", deadline, None, context),
        lambda: confined.raw_syn("192.0.2.1", 853, 0.1),
        lambda: confined.tcp_connect("dns.example", 853, deadline),
    ]
    for call in calls:
        with pytest.raises(ProbeError) as caught:
            call()
        assert caught.value.kind == "policy"
    assert sum(confined.stats.to_dict().values()) == 0


def test_an_address_inside_is_contacted(confined: Transport) -> None:
    result = confined.tcp_connect("127.0.0.1", closed_port(), Deadline(1.0))
    assert result.klass == "refused"
    assert confined.stats.tcp_connects == 1


def test_unset_means_unconfined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOWED_NETWORKS_VARIABLE)
    net = Transport()
    assert net.tcp_connect("127.0.0.1", closed_port(), Deadline(1.0)).klass == "refused"
