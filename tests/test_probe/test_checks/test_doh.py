"""The doh check against a real DoH server: dnsdist 1.7's h2o front end
in the lab (tests/lab/lab.py, 127.53.4.1:443, /dns-query), relaying to the padded
Unbound over plain DNS.

Oracles: the lab's construction (which leaf each listener presents, what the zone
answers, that dnsdist relays in cleartext so Unbound does not pad, RFC 8467 §4.1 being
about TLS), dnsdist's own ALPN (h2) and 404 for other paths, and a padded DoT query to
the same Unbound, which does come back padded.
"""

from __future__ import annotations

import functools
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.edns
import dns.message
import dns.query
import jsonschema
import pytest

from dotaudit.probe.base import CheckAttempt, CheckContext, CheckOptions, ProbeConfig
from dotaudit.probe.checks.doh import Doh
from dotaudit.probe.runner import TargetResult, run_check, run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import DOH_PATH, DOH_PORT, DohListener, Lab, dnsdist_argv, doh_only_config
from tests.lab.pki import HOSTNAME, Pki
from tests.lab.ports import require_free, wait_tcp
from tests.test_probe.hostile_doh import HostileDoh
from tests.test_probe.lab_probe import QNAME, probe

LAB = pytest.mark.lab
"""On the tests that use the lab; the hostile-server tests at the end need no root."""

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schema" / "report.schema.json").read_text())
MAX_TLS_CONNECTIONS = 6
TIMEOUT = 2.0
ANSWER = ["A 198.51.100.80"]
"""www.lab.test in the lab zone (tests/lab/zone.py)."""
BAD_LEAVES = {"expired": "127.53.4.2", "wrong_host": "127.53.4.3", "untrusted": "127.53.4.4"}


def doh_attempt(result: TargetResult) -> CheckAttempt:
    found = result.attempt("doh")
    assert found is not None, "doh did not run"
    return found


def probe_address(lab: Lab, address: str, **options: Any) -> TargetResult:
    config = ProbeConfig(ca_file=str(lab.ca), qname=QNAME, timeout=TIMEOUT,
                         options=CheckOptions(**options), checks=frozenset({"doh"}))  # fmt: skip
    return run_target(parse_target(f"{HOSTNAME}@{address}"), config)


@pytest.fixture(scope="module")
def doh_result(lab: Lab) -> TargetResult:
    return probe(lab, "doh", {"doh"})


@pytest.fixture(scope="module")
def bad_doh(lab: Lab) -> Iterator[dict[str, str]]:
    """A second dnsdist serving DoH with the lab's bad leaves, one address each."""
    require_free([(a, DOH_PORT, False) for a in BAD_LEAVES.values()])
    listeners = [DohListener(a, lab.pki.leaf(n).cert, lab.pki.leaf(n).key)
                 for n, a in BAD_LEAVES.items()]  # fmt: skip
    conf = lab.base / "dnsdist-bad-doh.conf"
    source = next(iter(BAD_LEAVES.values()))
    conf.write_text(doh_only_config(listeners, f"{lab['padded'].address}:53", source))
    proc = lab.pm.start("dnsdist-bad-doh", dnsdist_argv(conf))
    try:
        for address in BAD_LEAVES.values():
            wait_tcp(address, DOH_PORT, 10.0, alive=proc.running)
        yield BAD_LEAVES
    finally:
        lab.pm.stop(proc)


@LAB
def test_doh_check_answers_through_dnsdist_but_warns_unpadded(
    lab: Lab, doh_result: TargetResult
) -> None:
    """Everything works except padding: dnsdist relays in cleartext, so the answer to a
    padded query comes back unpadded, which RFC 7830 §4 forbids: a warning."""
    found = doh_attempt(doh_result)
    assert found.status.value == "warn", (found.error_reason, found.evidence)
    assert "RFC 7830" in (found.error_reason or "")
    ev = found.evidence
    assert (ev["port"], ev["path"]) == (DOH_PORT, DOH_PATH)
    assert (ev["http_status"], ev["http_version"], ev["alpn"]) == (200, "HTTP/2", "h2")
    assert ev["content_type"] == "application/dns-message"
    assert (ev["rcode"], ev["answer"], ev["message_id"]) == ("NOERROR", ANSWER, 0)
    assert ev["tls_version"] == "TLSv1.3"
    assert ev["handshake_ms"] > 0 and ev["query_ms"] > 0
    # reach.53 saw 443 open, which is what lets the check run at all.
    reach = doh_result.attempt("reach.53")
    assert reach is not None and reach.evidence["tcp443"]["class"] == "open"


@LAB
def test_doh_certificate_checked_as_for_dot(lab: Lab, doh_result: TargetResult) -> None:
    cert = doh_attempt(doh_result).evidence["certificate"]
    assert cert["present"] and cert["chain_verified"] and cert["name_matches"]
    assert cert["spki_pin"] == lab["doh"].pin == lab.pki.leaf("valid").pin
    assert cert["expiry"] == "pass" and 360 < cert["days_left"] <= 366
    assert cert["signature_hash"] == "sha256"


@LAB
def test_doh_padding_reported_unpadded_through_cleartext_relay(
    lab: Lab, doh_result: TargetResult
) -> None:
    """dnsdist relays the padded query to Unbound over UDP 53, and Unbound pads only over
    TLS: the DoH answer comes back unpadded. The check passes with a note saying so."""
    found = doh_attempt(doh_result)
    ev = found.evidence
    assert lab["doh"].pad is False
    assert ev["query_len"] % 128 == 0
    assert ev["padded"] is False and ev["multiple_of_468"] is False
    assert ev["response_len"] % 468 != 0
    assert found.error_reason and "no padding" in found.error_reason
    assert f"{ev['response_len']}-octet response" in found.error_reason
    # The same padded question over DoT to the Unbound behind dnsdist is padded: the
    # padding is lost on dnsdist's cleartext hop, not refused by the resolver.
    query = dns.message.make_query(QNAME, "A", use_edns=0, pad=128)
    context = ssl.create_default_context(cafile=str(lab.ca))
    direct = dns.query.tls(query, lab["padded"].address, timeout=TIMEOUT, port=853,
                           ssl_context=context, server_hostname=HOSTNAME)  # fmt: skip
    assert any(o.otype == dns.edns.OptionType.PADDING for o in direct.options)


@LAB
def test_doh_within_connection_budget(doh_result: TargetResult) -> None:
    stats = doh_result.stats
    # One verified DoH connection: no unverified retry, no QUIC, one HTTPS request.
    assert (stats["tls_handshakes"], stats["https_requests"], stats["quic_handshakes"]) == (
        1,
        1,
        0,
    ), stats
    assert stats["tls_handshakes"] + stats["quic_handshakes"] <= MAX_TLS_CONNECTIONS


@LAB
def test_doh_not_applicable_on_a_dot_only_address(lab: Lab) -> None:
    found = doh_attempt(probe(lab, "padded", {"doh"}))
    assert found.status.value == "not-applicable"
    assert found.error_reason == "TCP 443 is not open (refused): no DoH service to test"


@LAB
def test_doh_errors_clearly_against_a_dot_port(lab: Lab) -> None:
    """``doh_port=853`` points the check at Unbound's DoT listener. Debian's Unbound is
    built with nghttp2 and selects ALPN h2 on any TLS port when offered it, then reads
    the HTTP/2 preface as a DNS length prefix and waits. The check ends within its
    timeout and says how far it got."""
    padded = lab["padded"]
    result = probe_address(lab, padded.address, doh_port=853)
    found = doh_attempt(result)
    assert found.status.value == "error", found
    assert found.evidence["error_kind"] == "timeout"
    alpn = offered_h2_gets(lab, padded.address, 853) or "none"
    reason = found.error_reason or ""
    assert reason == (f"DoH to {padded.address}:853: TLS up (ALPN {alpn}), "
                      f"no complete HTTP answer within {TIMEOUT:.1f} s")  # fmt: skip
    assert found.elapsed_s < TIMEOUT + 1.0
    assert result.stats["tls_handshakes"] == 1  # a timeout is no reason to retry unverified


def offered_h2_gets(lab: Lab, address: str, port: int) -> str | None:
    """The ALPN a plain client offering h2 and http/1.1 negotiates (the oracle)."""
    context = ssl.create_default_context(cafile=str(lab.ca))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection((address, port), TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        return tls.selected_alpn_protocol()


@LAB
def test_doh_wrong_path_fails_with_http_status(lab: Lab) -> None:
    found = doh_attempt(probe_address(lab, lab["doh"].address, doh_path="/not-dns"))
    assert found.status.value == "fail"
    assert (found.error_reason or "").startswith("HTTP 404 ")
    assert found.evidence["http_status"] == 404


@LAB
@pytest.mark.parametrize(
    ("leaf", "reason_part", "handshakes"),
    [
        ("expired", "expired", 2),
        ("wrong_host", "not for dns.test", 1),
        ("untrusted", "chain: ", 2),
    ],
)
def test_doh_bad_certificates_warn(
    lab: Lab, bad_doh: dict[str, str], leaf: str, reason_part: str, handshakes: int
) -> None:
    """A refused chain costs one unverified retry (2 TLS connections); a good chain for
    another name does not. Either way the answer is still read and reported."""
    result = probe_address(lab, bad_doh[leaf])
    found = doh_attempt(result)
    assert found.status.value == "warn", (found.error_reason, found.evidence)
    assert (found.error_reason or "").startswith("a strict client would refuse it: ")
    assert reason_part in (found.error_reason or "")
    cert = found.evidence["certificate"]
    assert cert["spki_pin"] == lab.pki.leaf(leaf).pin
    assert cert["chain_verified"] is (leaf == "wrong_host")
    assert cert["name_matches"] is (leaf != "wrong_host")
    assert found.evidence["answer"] == ANSWER
    assert result.stats["tls_handshakes"] == handshakes


@LAB
def test_cli_probe_checks_doh(lab: Lab) -> None:
    doh = lab["doh"]
    done = subprocess.run(
        [sys.executable, "-m", "dotaudit", "probe", f"{doh.hostname}@{doh.address}",
         "--ca", str(lab.ca), "--checks", "doh", "--qname", QNAME, "--timeout", str(TIMEOUT),
         "--fail-on", "none", "-q"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    (target,) = report["targets"]
    checks = {c["id"]: c for c in target["checks"]}
    assert set(checks) == {"reach.53", "doh"}  # reach.53 runs first: doh reads it
    assert checks["doh"]["status"] == "warn"  # unpadded answer, see above
    assert checks["doh"]["evidence"]["alpn"] == "h2"
    assert checks["doh"]["evidence"]["answer"] == ANSWER
    assert target["connections"]["https_requests"] == 1
    # DoT was not probed (--checks doh): its verdict says so rather than borrowing DoH's
    # pass, or guessing a refusal from checks that never ran.
    assert (target["verdict"]["strict"], target["verdict"]["opportunistic"]) == (
        "not-tested", "not-tested")  # fmt: skip
    assert any("reach.853 was not run" in r for r in target["verdict"]["reasons"])


# --- hostile DoH servers (no lab needed: tests/test_probe/hostile_doh.py) ----------------
# The watchdog and the body cap are the transport's: tests/test_probe/test_transport/test_doh.py.


def run_doh(pki: Pki, port: int, timeout: float = TIMEOUT) -> CheckAttempt:
    """The doh check alone (no reach.53, whose 443 says nothing about ``port``)."""
    config = ProbeConfig(ca_file=str(pki.ca_cert), qname=QNAME, timeout=timeout,
                         options=CheckOptions(doh_port=port))  # fmt: skip
    return run_check(Doh(), CheckContext(parse_target(f"{HOSTNAME}@127.0.0.1"), config))


def reply_with(query: bytes, *, qid: int | None = None, response: bool = True) -> bytes:
    message = dns.message.from_wire(query)
    if not response:
        return query
    padded = message.edns >= 0 and any(o.otype == 12 for o in message.options)
    # A compliant server pads answers to padded queries to 468 octets (RFC 8467 §4.1).
    reply = dns.message.make_response(message, pad=468 if padded else 0)
    reply.id = message.id if qid is None else qid
    return reply.to_wire()


@pytest.mark.parametrize(
    ("make_body", "reason_part"),
    [
        (functools.partial(reply_with, qid=4242), "message ID 4242, not 0"),
        (functools.partial(reply_with, response=False), "a DNS query, not a response"),
        (lambda query: b"<html>not dns</html>", "is not a DNS message"),
    ],
    ids=["wrong-id", "echoed-query", "not-dns"],
)
def test_answers_that_are_not_ours_fail(
    local_pki: Pki,
    hostile: Callable[..., HostileDoh],
    make_body: Callable[[bytes], bytes],
    reason_part: str,
) -> None:
    found = doh_check_against(local_pki, hostile("http2", make_body))
    assert found.status.value == "fail", (found.error_reason, found.evidence)
    assert reason_part in (found.error_reason or "")
    assert found.evidence["http_status"] == 200 and found.evidence["alpn"] == "h2"


def test_hostile_server_answering_properly_passes(
    local_pki: Pki, hostile: Callable[..., HostileDoh]
) -> None:
    """The control for the cases above: the same server, a proper answer, a pass."""
    found = doh_check_against(local_pki, hostile("http2", reply_with))
    assert found.status.value == "pass", (found.error_reason, found.evidence)
    assert found.evidence["certificate"]["spki_pin"] == local_pki.leaf("valid").pin


def doh_check_against(pki: Pki, server: HostileDoh) -> CheckAttempt:
    return run_doh(pki, server.port)
