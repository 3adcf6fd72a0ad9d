"""DNS over HTTPS exchanges: a real one against the lab's dnsdist, and the two bounds the
transport keeps against hostile servers (tests/test_probe/hostile_doh.py): the watchdog
that ends an exchange at its deadline, and the 64 KiB body cap.

Oracles: the lab's construction (dnsdist on 127.53.4.1:443 presenting the valid dns.test
leaf, ALPN h2) and its zone; RFC 8484 §6 (the body is one DNS message, at most 65535
octets).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.message
import pytest

from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import Deadline, ProbeError, SecureExchange, Transport
from tests.lab.lab import Lab
from tests.lab.pki import HOSTNAME, Pki
from tests.test_probe.hostile_doh import HostileDoh
from tests.test_probe.lab_probe import QNAME


def exchange(net: Transport, address: str, port: int, ca: str, seconds: float) -> SecureExchange:
    query = dns.message.make_query(QNAME, "A")
    query.id = 0
    context = client_context(verify=True, ca_file=ca, alpn=("h2",))
    return net.doh_exchange(address, port, query.to_wire(), Deadline(seconds), HOSTNAME,
                            context)  # fmt: skip


@pytest.mark.lab
def test_post_to_dnsdist(lab: Lab) -> None:
    doh = lab["doh"]
    net = Transport()
    found = exchange(net, doh.address, doh.tls_port, str(lab.ca), 5.0)
    assert (found.http_status, found.http_version, found.alpn) == (200, "HTTP/2", "h2")
    assert found.content_type == "application/dns-message"
    reply = dns.message.from_wire(found.wire)
    assert [rd.to_text() for r in reply.answer for rd in r] == ["198.51.100.80"]
    assert found.chain and found.tls_version == "TLSv1.3"
    assert (net.stats.https_requests, net.stats.tcp_connects, net.stats.tls_handshakes) == (1, 1, 1)


def test_trickling_server_cannot_outlast_the_deadline(
    local_pki: Pki, hostile: Callable[..., HostileDoh]
) -> None:
    """httpx's timeouts bound each read; a server that sends an octet every 0.1 s would
    keep every read alive. The watchdog ends the exchange at the deadline."""
    server = hostile("trickle")
    start = time.monotonic()
    with pytest.raises(ProbeError) as caught:
        exchange(Transport(), "127.0.0.1", server.port, str(local_pki.ca_cert), 1.0)
    took = time.monotonic() - start
    assert caught.value.kind == "timeout"
    assert str(caught.value) == (f"DoH to 127.0.0.1:{server.port}: TLS up (ALPN h2), no "
                                 "complete HTTP answer within 1.0 s")  # fmt: skip
    assert took < 2.0, took


def test_oversized_body_is_cut_off(local_pki: Pki, hostile: Callable[..., HostileDoh]) -> None:
    """A 10 MB body: the client stops reading past 64 KiB and hangs up at once (httpcore
    reads the socket only as the body is consumed, so the rest never reaches memory)."""
    server = hostile("http2", lambda query: b"\x00" * 10_000_000)
    start = time.monotonic()
    with pytest.raises(ProbeError) as caught:
        exchange(Transport(), "127.0.0.1", server.port, str(local_pki.ca_cert), 30.0)
    # The cap ends it, not the deadline: a long deadline leaves a loaded machine (a 2-core
    # host under load 16 took 3.6 s) room, and half of it still tells the two apart.
    assert caught.value.kind == "protocol"
    assert str(caught.value).endswith("the body exceeds 65535 octets")
    assert time.monotonic() - start < 15.0
