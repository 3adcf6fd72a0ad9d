"""Plaintext DNS over UDP and TCP, and the 2-octet framing DNS over TCP and TLS share.

Oracles: RFC 7766 §8 (the length prefix), RFC 1035 §4.1.1 (ID and QR match a response
to its query), the kernel's ICMP port unreachable on loopback, and the lab zone
(tests/lab/zone.py: www.lab.test A 198.51.100.80) served by the padded Unbound.
"""

from __future__ import annotations

import socket
import threading

import dns.message
import pytest

from dotaudit.probe.transport import Deadline, ProbeError, Transport
from dotaudit.probe.transport.plain_dns import frame, parse_reply, read_framed
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import QNAME
from tests.test_probe.test_runner import closed_port


def test_frame_prefixes_the_length_and_refuses_oversized_messages() -> None:
    assert frame(b"\x12\x34abc") == b"\x00\x05\x12\x34abc"
    assert len(frame(bytes(0xFFFF))) == 0xFFFF + 2
    with pytest.raises(ProbeError, match="limited to 65535 octets"):
        frame(bytes(0x10000))


def test_read_framed_reassembles_a_message_sent_one_octet_at_a_time() -> None:
    message = dns.message.make_response(dns.message.make_query(QNAME, "A")).to_wire()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)

    def dribble() -> None:
        for octet in frame(message):
            theirs.send(bytes([octet]))

    thread = threading.Thread(target=dribble)
    thread.start()
    try:
        assert read_framed(ours, Deadline(5.0)) == message
    finally:
        thread.join()
        ours.close()
        theirs.close()


def test_read_framed_reports_a_close_mid_message() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.sendall(b"\x00\x10short")
    theirs.close()
    with pytest.raises(ProbeError) as caught:
        read_framed(ours, Deadline(2.0))
    ours.close()
    assert caught.value.kind == "closed"


def test_parse_reply_matches_id_and_qr() -> None:
    query = dns.message.make_query(QNAME, "A")
    reply = dns.message.make_response(query)
    assert parse_reply(reply.to_wire(), query) is not None
    other = dns.message.make_response(query)
    other.id = (query.id + 1) % 65536
    assert parse_reply(other.to_wire(), query) is None  # someone else's answer
    assert parse_reply(query.to_wire(), query) is None  # an echo of our own query
    with pytest.raises(ProbeError) as caught:
        parse_reply(b"\x00\x01garbage", query)
    assert caught.value.kind == "malformed"


def test_udp_to_a_closed_port_is_refused() -> None:
    net = Transport()
    with pytest.raises(ProbeError) as caught:
        net.udp_dns("127.0.0.1", closed_port(), dns.message.make_query(QNAME, "A"),
                    Deadline(2.0))  # fmt: skip
    assert caught.value.kind == "refused"
    # UDP has no RST: the kernel reports the ICMP port unreachable as "refused"
    assert "ICMP port unreachable" in str(caught.value) and "TCP" not in str(caught.value)
    assert net.stats.udp_exchanges == 1


@pytest.mark.lab
def test_udp_and_tcp_answers_from_unbound(lab: Lab) -> None:
    net = Transport()
    address = lab["padded"].address
    reply, ms = net.udp_dns(address, 53, dns.message.make_query(QNAME, "A"), Deadline(2.0))
    assert [rd.to_text() for rrset in reply.answer for rd in rrset] == ["198.51.100.80"]
    assert ms > 0
    reply, timings = net.tcp_dns(address, 53, dns.message.make_query(QNAME, "A"), Deadline(2.0))
    assert [rd.to_text() for rrset in reply.answer for rd in rrset] == ["198.51.100.80"]
    assert timings["connect_ms"] is not None and timings["query_ms"] is not None
    assert (net.stats.udp_exchanges, net.stats.tcp_connects) == (1, 1)


@pytest.mark.lab
def test_wire_exchanges_return_the_octets_unparsed(lab: Lab) -> None:
    """The DDR Unbound's answer holds a record dnspython refuses (tests/lab/zone.py, case
    8): the raw exchanges return it whole, over UDP and over TCP alike."""
    from tests.lab.zone import DDR_ADDRESS

    query = dns.message.make_query("_dns.resolver.arpa", "SVCB", use_edns=0, payload=4096)
    net = Transport()
    udp, _ = net.udp_dns_wire(DDR_ADDRESS, 53, query.to_wire(), Deadline(3.0))
    tcp, _ = net.tcp_dns_wire(DDR_ADDRESS, 53, query.to_wire(), Deadline(3.0))
    for wire in (udp, tcp):
        assert wire[:2] == query.to_wire()[:2] and wire[2] & 0x80
        assert bytes.fromhex("000803646e73047465737400000000020001") in wire
        with pytest.raises(Exception):  # noqa: B017 - a whole-message parser gives up
            dns.message.from_wire(wire)
    assert (net.stats.udp_exchanges, net.stats.tcp_connects) == (1, 1)


def test_wire_exchanges_need_a_header() -> None:
    with pytest.raises(ProbeError, match="12-octet header"):
        Transport().udp_dns_wire("127.0.0.1", 53, b"short", Deadline(1.0))
