"""Every lab service answers as configured, checked with real clients (kdig, Python's
ssl, aioquic). The oracle is the client's own view of the exchange."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.lab.clients import kdig
from tests.lab.lab import VARIANTS, Lab
from tests.lab.pki import HOSTNAME, WRONG_HOSTNAME, spki_pin

pytestmark = pytest.mark.lab
GOOD = ("padded", "unpadded", "no_keepalive", "short_timeout", "tls12", "expiring")
BAD = ("expired", "wrong_host", "self_signed", "untrusted", "intercept")


@pytest.mark.parametrize("name", GOOD)
def test_strict_client_accepts_good_certificates(lab: Lab, name: str) -> None:
    res = kdig(lab[name].address, "www.lab.test", ca=lab.ca, hostname=HOSTNAME)
    assert res.ok, res.stdout + res.stderr
    assert res.answers[0].tls == ("TLS1.2" if name == "tls12" else "TLS1.3")


@pytest.mark.parametrize("name", BAD)
def test_strict_client_rejects_bad_certificates(lab: Lab, name: str) -> None:
    res = kdig(lab[name].address, "www.lab.test", ca=lab.ca, hostname=HOSTNAME)
    assert not res.answers
    assert any("failed to query" in e for e in res.errors), res.stdout + res.stderr


@pytest.mark.parametrize("name", BAD)
def test_opportunistic_client_accepts_anything(lab: Lab, name: str) -> None:
    assert kdig(lab[name].address, "www.lab.test").ok


@pytest.mark.parametrize("name", ("self_signed", "untrusted", "intercept", "expired"))
def test_pin_alone_authenticates(lab: Lab, name: str) -> None:
    right = kdig(lab[name].address, "www.lab.test", pin=lab.pki.leaf(name).pin)
    wrong = kdig(lab[name].address, "www.lab.test", pin=lab.pki.leaf("valid").pin)
    assert right.ok and not wrong.answers


def test_bad_certificates_fail_for_their_own_reason(lab: Lab) -> None:
    # Each fixes only its one defect, so passing proves which defect caused the failure.
    assert kdig(lab["wrong_host"].address, "www.lab.test", ca=lab.ca, hostname=WRONG_HOSTNAME).ok
    rogue = lab.pki.rogue_ca_cert
    assert kdig(lab["untrusted"].address, "www.lab.test", ca=rogue, hostname=HOSTNAME).ok


def test_interceptor_presents_the_rogue_leaf(lab: Lab) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection((lab["intercept"].address, 853), 3) as raw,
        ctx.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    assert der is not None
    assert spki_pin(x509.load_der_x509_certificate(der)) == lab.pki.leaf("intercept").pin


def _padding_and_size(lab: Lab, name: str, qname: str = "www.lab.test") -> tuple[int | None, int]:
    res = kdig(lab[name].address, (qname, "TXT" if qname.startswith("big") else "A"),
               ca=lab.ca, hostname=HOSTNAME)  # fmt: skip
    assert res.ok, res.stdout
    received = res.answers[0].received
    assert received is not None
    return res.answers[0].padding, received


@pytest.mark.parametrize("name", ("padded", "no_keepalive", "tls12"))
def test_padded_answers_fill_468_blocks(lab: Lab, name: str) -> None:
    padding, received = _padding_and_size(lab, name)
    assert padding is not None and received == 468
    _, big = _padding_and_size(lab, "padded", "big.lab.test")
    assert big == 936


def test_unpadded_answers_carry_no_padding(lab: Lab) -> None:
    padding, received = _padding_and_size(lab, "unpadded")
    assert padding is None and received < 468


def test_interceptor_loses_padding(lab: Lab) -> None:
    # dnsdist forwards in cleartext, and Unbound pads only answers that travel over TLS.
    res = kdig(lab["intercept"].address, "www.lab.test")
    assert res.ok
    assert res.answers[0].padding is None
    assert (res.answers[0].received or 0) < 468


@pytest.mark.parametrize(
    ("name", "option"),
    [("padded", "04B0"), ("short_timeout", "0014"), ("no_keepalive", None)],
)
def test_edns_keepalive(lab: Lab, name: str, option: str | None) -> None:
    res = kdig(lab[name].address, "www.lab.test", ca=lab.ca, hostname=HOSTNAME, keepalive=True)
    assert res.ok
    seen = [ln.split(":")[1].strip() for ln in res.stdout.splitlines() if "Option (11)" in ln]
    assert seen == ([option] if option else [])


def test_short_timeout_variant_closes_idle_connections(lab: Lab) -> None:
    ctx = ssl.create_default_context(cafile=str(lab.ca))
    with (
        socket.create_connection((lab["short_timeout"].address, 853), 3) as raw,
        ctx.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        wire = dns.message.make_query("www.lab.test", "A").to_wire()
        tls.sendall(struct.pack("!H", len(wire)) + wire)
        tls.settimeout(8)
        start = time.monotonic()
        got = b""
        while chunk := tls.recv(4096):
            got += chunk
        idle = time.monotonic() - start
    assert len(got) > 2
    assert 1.5 < idle < 5, idle


def test_tls12_variant_refuses_tls13_only_clients(lab: Lab) -> None:
    ctx = ssl.create_default_context(cafile=str(lab.ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with (
        socket.create_connection((lab["tls12"].address, 853), 3) as raw,
        pytest.raises(ssl.SSLError, match=r"(?i)protocol.version|unsupported protocol"),
    ):
        ctx.wrap_socket(raw, server_hostname=HOSTNAME)


@pytest.mark.parametrize("name", [v.name for v in VARIANTS])
def test_plain_dns_on_53_udp_and_tcp(lab: Lab, name: str) -> None:
    query = dns.message.make_query("mail.lab.test", "A")
    for answer in (
        dns.query.udp(query, lab[name].address, timeout=2),
        dns.query.tcp(query, lab[name].address, timeout=2),
    ):
        assert [str(rr) for rr in answer.answer[0]] == ["198.51.100.25"]


def test_quirk_unbound_answers_cleartext_udp_on_853(lab: Lab) -> None:
    query = dns.message.make_query("www.lab.test", "A")
    answer = dns.query.udp(query, lab["padded"].address, port=853, timeout=2)
    assert answer.answer


def test_ipv6_loopback(lab: Lab) -> None:
    assert kdig("::1", "www.lab.test", ca=lab.ca, hostname=HOSTNAME).ok


def test_nothing_recurses(lab: Lab) -> None:
    answer = dns.query.udp(dns.message.make_query("example.com", "A"), "127.53.0.1", timeout=2)
    assert answer.rcode() == dns.rcode.NXDOMAIN


def test_doq_answers_padded_with_id_zero(lab: Lab) -> None:
    from aioquic.asyncio.client import connect
    from aioquic.quic.configuration import QuicConfiguration

    async def ask() -> tuple[bytes, str | None]:
        cfg = QuicConfiguration(is_client=True, alpn_protocols=["doq"], server_name=HOSTNAME)
        cfg.load_verify_locations(str(lab.ca))
        async with connect(lab["doq"].address, 853, configuration=cfg) as client:
            reader, writer = await client.create_stream()
            query = dns.message.make_query("big.lab.test", "TXT", use_edns=0, pad=128)
            query.id = 0
            wire = query.to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            writer.write_eof()
            data = await asyncio.wait_for(reader.read(), 5)
            return data, client._quic.tls.alpn_negotiated

    data, alpn = asyncio.run(ask())
    (length,) = struct.unpack("!H", data[:2])
    assert alpn == "doq"
    assert length == len(data) - 2 and length % 468 == 0
    answer = dns.message.from_wire(data[2:])
    assert answer.id == 0 and answer.answer
