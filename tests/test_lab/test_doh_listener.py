"""The lab's DoH listener (dnsdist on 127.53.4.1:443) answers RFC 8484 requests over
HTTP/2 with the valid dns.test leaf. The oracle is a real client's view of the exchange:
curl with nghttp2 (httpx when curl is missing), plus Python's ssl for the leaf.
"""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from cryptography import x509

from tests.lab.lab import CERT_IPS, DOH_PATH, DOH_PORT, Lab
from tests.lab.pki import HOSTNAME, spki_pin

pytestmark = pytest.mark.lab

QNAME = "www.lab.test"
ADDRESS = "198.51.100.80"
"""What the lab zone (tests/lab/zone.py) says www.lab.test is."""
MEDIA_TYPE = "application/dns-message"


@dataclass(frozen=True)
class Reply:
    http_version: str
    status: int
    content_type: str
    body: bytes


def query_wire() -> bytes:
    query = dns.message.make_query(QNAME, "A", use_edns=0)
    query.id = 0  # RFC 8484 §4.1
    return query.to_wire()


def fetch(lab: Lab, url: str, body: bytes | None, tmp_path: Path, *, by_name: bool) -> Reply:
    """GET (body None) or POST ``url``; ``by_name`` connects to the address but uses
    dns.test for SNI and verification, otherwise the IP SAN must cover the address."""
    if shutil.which("curl") is None:
        return _fetch_httpx(lab, url, body, by_name=by_name)
    out = tmp_path / "body.bin"
    argv = ["curl", "-sS", "--http2", "--max-time", "5", "--cacert", str(lab.ca),
            "-o", str(out), "-w", "%{http_version} %{http_code} %{content_type}",
            "-H", f"accept: {MEDIA_TYPE}"]  # fmt: skip
    if by_name:
        address = lab["doh"].address
        argv += ["--resolve", f"{HOSTNAME}:{DOH_PORT}:{address}"]
        url = url.replace(address, HOSTNAME)
    if body is not None:
        sent = tmp_path / "query.bin"
        sent.write_bytes(body)
        argv += ["-H", f"content-type: {MEDIA_TYPE}", "--data-binary", f"@{sent}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=15)
    assert done.returncode == 0, done.stderr
    version, status, content_type = [*done.stdout.split(" ", 2), "", ""][:3]
    return Reply(version, int(status), content_type, out.read_bytes())


def _fetch_httpx(lab: Lab, url: str, body: bytes | None, *, by_name: bool) -> Reply:
    import httpx

    headers = {"accept": MEDIA_TYPE}
    extensions = {"sni_hostname": HOSTNAME} if by_name else {}
    if by_name:
        headers["host"] = HOSTNAME
    context = ssl.create_default_context(cafile=str(lab.ca))
    with httpx.Client(http2=True, verify=context, timeout=5, trust_env=False) as client:
        if body is None:
            response = client.get(url, headers=headers, extensions=extensions)
        else:
            headers["content-type"] = MEDIA_TYPE
            response = client.post(url, content=body, headers=headers, extensions=extensions)
    version = "2" if response.http_version == "HTTP/2" else response.http_version
    return Reply(version, response.status_code, response.headers.get("content-type", ""),
                 response.content)  # fmt: skip


def answer_of(reply: Reply) -> list[str]:
    message = dns.message.from_wire(reply.body)
    assert message.id == 0 and dns.rcode.to_text(message.rcode()) == "NOERROR"
    return [rd.to_text() for rrset in message.answer for rd in rrset]


def url(lab: Lab) -> str:
    return f"https://{lab['doh'].address}:{DOH_PORT}{DOH_PATH}"


def test_doh_address_is_in_the_certificates(lab: Lab) -> None:
    assert lab["doh"].address in CERT_IPS
    assert lab["doh"].transport == "doh"


@pytest.mark.parametrize("by_name", [True, False], ids=["sni-dns.test", "ip-san"])
def test_post_over_http2_answers(lab: Lab, tmp_path: Path, by_name: bool) -> None:
    reply = fetch(lab, url(lab), query_wire(), tmp_path, by_name=by_name)
    assert (reply.http_version, reply.status, reply.content_type) == ("2", 200, MEDIA_TYPE)
    assert answer_of(reply) == [ADDRESS]


def test_get_with_dns_parameter_answers(lab: Lab, tmp_path: Path) -> None:
    """RFC 8484 §4.1: GET carries the query base64url-encoded, without padding."""
    param = base64.urlsafe_b64encode(query_wire()).rstrip(b"=").decode("ascii")
    reply = fetch(lab, f"{url(lab)}?dns={param}", None, tmp_path, by_name=True)
    assert (reply.http_version, reply.status) == ("2", 200)
    assert answer_of(reply) == [ADDRESS]


def test_other_paths_are_not_dns(lab: Lab, tmp_path: Path) -> None:
    reply = fetch(lab, url(lab).replace(DOH_PATH, "/other"), query_wire(), tmp_path,
                  by_name=True)  # fmt: skip
    assert reply.status == 404 and reply.content_type != MEDIA_TYPE


def test_presents_the_valid_leaf_with_alpn_h2(lab: Lab) -> None:
    context = ssl.create_default_context(cafile=str(lab.ca))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((lab["doh"].address, DOH_PORT), 3) as raw,
        context.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        alpn = tls.selected_alpn_protocol()
    assert der is not None and alpn == "h2"
    pin = spki_pin(x509.load_der_x509_certificate(der))
    assert pin == lab.pki.leaf("valid").pin == lab["doh"].pin
