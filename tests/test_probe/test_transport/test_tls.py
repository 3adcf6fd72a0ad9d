"""DNS over TLS connections against the lab's Unbound: the handshake with each TLS
setting, the chains it returns, queries on the connection and refusals.

Oracles: the lab's construction (tests/lab/pki.py: which leaf, which CA, the pins;
tests/lab/unbound.py: TLS 1.3 unless tls12) and its zone.
"""

from __future__ import annotations

import base64
import hashlib

import dns.message
import pytest
from cryptography import x509

from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import Deadline, ProbeError, Transport
from dotaudit.x509 import spki_der
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import QNAME

pytestmark = pytest.mark.lab


def pin(der: bytes) -> str:
    return base64.b64encode(hashlib.sha256(spki_der(der)).digest()).decode()


def test_strict_handshake_query_and_chains(lab: Lab) -> None:
    padded = lab["padded"]
    net = Transport()
    context = client_context(verify=True, ca_file=str(lab.ca))
    conn = net.tls_connect(padded.address, 853, context, padded.hostname, Deadline(5.0))
    try:
        assert conn.version == "TLSv1.3"
        sent, verified = conn.chain(), conn.verified_chain()
        assert pin(sent[0]) == padded.pin
        anchor = x509.load_pem_x509_certificate(lab.ca.read_bytes())
        assert x509.load_der_x509_certificate(verified[-1]) == anchor
        reply, ms = conn.query(dns.message.make_query(QNAME, "A"), Deadline(2.0))
        assert [rd.to_text() for r in reply.answer for rd in r] == ["198.51.100.80"]
        assert ms > 0 and conn.is_open()
        assert set(conn.timings) == {"connect_ms", "handshake_ms"}
    finally:
        conn.close()
    assert (net.stats.tcp_connects, net.stats.tls_handshakes) == (1, 1)


def test_resumed_session_is_reported(lab: Lab) -> None:
    padded = lab["padded"]
    net = Transport()
    context = client_context(verify=True, ca_file=str(lab.ca))
    first = net.tls_connect(padded.address, 853, context, padded.hostname, Deadline(5.0))
    first.query(dns.message.make_query(QNAME, "A"), Deadline(2.0))  # TLS 1.3 tickets arrive late
    session = first.sock.session
    first.close()
    second = net.tls_connect(padded.address, 853, context, padded.hostname, Deadline(5.0),
                             session)  # fmt: skip
    try:
        assert not first.session_reused and second.session_reused
    finally:
        second.close()


def test_self_signed_leaf_is_refused_then_readable_unverified(lab: Lab) -> None:
    self_signed = lab["self_signed"]
    net = Transport()
    strict = client_context(verify=True, ca_file=str(lab.ca))
    with pytest.raises(ProbeError) as caught:
        net.tls_connect(self_signed.address, 853, strict, self_signed.hostname, Deadline(5.0))
    assert caught.value.kind == "verify" and "self-signed" in str(caught.value)
    loose = client_context(verify=False)
    conn = net.tls_connect(self_signed.address, 853, loose, self_signed.hostname, Deadline(5.0))
    try:
        assert pin(conn.chain()[0]) == self_signed.pin
    finally:
        conn.close()


def test_tls13_offered_to_a_tls12_only_server_is_an_alert(lab: Lab) -> None:
    tls12 = lab["tls12"]
    context = client_context(verify=True, ca_file=str(lab.ca), min_version="TLSv1.3")
    with pytest.raises(ProbeError) as caught:
        Transport().tls_connect(tls12.address, 853, context, tls12.hostname, Deadline(5.0))
    assert caught.value.kind == "alert"


def test_idle_close_is_seen(lab: Lab) -> None:
    # The short_timeout Unbound closes idle connections after 2 s (tests/lab/lab.py).
    short = lab["short_timeout"]
    context = client_context(verify=True, ca_file=str(lab.ca))
    conn = Transport().tls_connect(short.address, 853, context, short.hostname, Deadline(5.0))
    try:
        end, waited = conn.wait_closed(Deadline(5.0))
    finally:
        conn.close()
    assert end in ("closed", "reset") and 1.5 < waited < 3.5


def test_a_failure_says_which_phase_it_ended_in(lab: Lab) -> None:
    from tests.test_probe.test_runner import closed_port

    net = Transport()
    context = client_context(verify=True, ca_file=str(lab.ca))
    with pytest.raises(ProbeError) as refused:
        net.tls_connect("127.0.0.1", closed_port(), context, "dns.test", Deadline(2.0))
    assert (refused.value.kind, refused.value.phase) == ("refused", "connect")
    with pytest.raises(ProbeError) as untrusted:
        net.tls_connect(lab["untrusted"].address, 853, context, "dns.test", Deadline(5.0))
    assert (untrusted.value.kind, untrusted.value.phase) == ("verify", "handshake")
