"""DNS over QUIC and the QUIC Version Negotiation probe.

Oracles: RFC 9000 §17.2.1 (the Version Negotiation packet's layout), §15 (0x?a?a?a?a
versions are reserved to force negotiation), §14.1 (an Initial datagram carries at
least 1200 octets); the lab's DoQ server (tests/lab/doq_server.py: aioquic, ALPN "doq",
QUIC version 1) and its zone.
"""

from __future__ import annotations

import struct

import dns.message
import pytest

from dotaudit.probe.transport import Deadline, ProbeError, Transport
from dotaudit.probe.transport.doq import _parse_version_negotiation, _quic_vn_trigger
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import QNAME
from tests.test_probe.test_runner import closed_port


def test_trigger_is_a_full_size_initial_with_a_reserved_version() -> None:
    packet = _quic_vn_trigger()
    assert len(packet) == 1200
    assert packet[0] & 0xC0 == 0xC0  # long header
    (version,) = struct.unpack_from("!I", packet, 1)
    assert version & 0x0F0F0F0F == 0x0A0A0A0A


def test_version_negotiation_is_parsed() -> None:
    dcid, scid = bytes(range(8)), bytes(range(8, 16))
    packet = (b"\x80\x00\x00\x00\x00" + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
              + struct.pack("!II", 0x00000001, 0x6B3343CF))  # fmt: skip
    assert _parse_version_negotiation(packet, b"") == [0x00000001, 0x6B3343CF]
    short_header = b"\x40" + packet[1:]
    assert _parse_version_negotiation(short_header, b"") is None
    assert _parse_version_negotiation(b"\x80\x00\x00\x00\x01" + packet[5:], b"") is None
    assert _parse_version_negotiation(b"\x80\x00\x00\x00\x00\x20", b"") is None  # cut in a CID


def test_version_probe_to_a_closed_port_is_refused() -> None:
    with pytest.raises(ProbeError) as caught:
        Transport().udp_quic_version_probe("127.0.0.1", closed_port(), Deadline(2.0))
    assert caught.value.kind == "refused"
    assert "ICMP port unreachable" in str(caught.value) and "TCP RST" not in str(caught.value)


@pytest.mark.lab
def test_lab_doq_server_negotiates_and_answers(lab: Lab) -> None:
    doq = lab["doq"]
    net = Transport()
    assert 0x00000001 in net.udp_quic_version_probe(doq.address, 853, Deadline(2.0))
    query = dns.message.make_query(QNAME, "A")
    query.id = 0
    found = net.doq_exchange(doq.address, 853, query.to_wire(), Deadline(5.0), doq.hostname,
                             str(lab.ca))  # fmt: skip
    assert (found.alpn, found.tls_version) == ("doq", "TLSv1.3")
    reply = dns.message.from_wire(found.wire)
    assert reply.id == 0 and [rd.to_text() for r in reply.answer for rd in r] == ["198.51.100.80"]
    assert found.chain and found.handshake_ms is not None
    assert (net.stats.udp_exchanges, net.stats.quic_handshakes) == (1, 1)


@pytest.mark.lab
def test_doq_refused_chain_is_an_error(lab: Lab) -> None:
    doq = lab["doq"]
    query = dns.message.make_query(QNAME, "A")
    with pytest.raises(ProbeError) as caught:
        # The lab CA is not in the system store: a strict client refuses the chain.
        Transport().doq_exchange(doq.address, 853, query.to_wire(), Deadline(5.0),
                                 doq.hostname, True)  # fmt: skip
    # aioquic closes with "unable to get local issuer certificate"; dnspython reports
    # only that the connection ended, so the kind is protocol (or alert), never a pass.
    assert caught.value.kind in ("alert", "protocol"), caught.value
    assert str(caught.value).startswith(f"DoQ to {doq.address}:853: ")
